//! Skill runs in the job queue (`JobStore::enqueue_skill`,
//! `finish_skill_job`, and what claim, retry and a lost worker do to a skill
//! run), per-workspace skill schedules, and the skill scheduler on top of
//! them: a slot enqueued once, after the workspace's syncs.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{new_workspace, StoreRef};
use super::runs::{connection, counts, queued};
use crate::error::{ErrorKind, Result};
use crate::model::{self, JobKind, NewJob, RunStatus, SkillRun, SkillScheduleOverride};
use crate::scheduler::skills::{schedule_skills, skill_slot_key, SkillScheduleReport};
use crate::skill::{Skill, SkillContext, SkillInfo, SkillInputs, SkillRegistry, SkillReport};
use crate::Pandora;

const LEASE: StdDuration = StdDuration::from_secs(60);

/// 2026-05-`day` at `hour`:`minute` UTC.
fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, day, hour, minute, 0)
        .single()
        .expect("time")
}

/// A queued run of `skill` created at `t`.
fn queued_run(ws: Uuid, skill: &str, t: DateTime<Utc>) -> SkillRun {
    SkillRun {
        id: model::new_id(),
        workspace_id: ws,
        skill: skill.into(),
        period: Some("2026-Q2".into()),
        period_start: Some(at(1, 0, 0) - Duration::days(30)),
        period_end: Some(at(1, 0, 0) + Duration::days(61)),
        as_of: t,
        settings: json!({}),
        status: RunStatus::Queued,
        report: None,
        error: None,
        started_at: t,
        finished_at: None,
    }
}

fn job(t: DateTime<Utc>, live: bool, key: Option<&str>, max_attempts: u32) -> NewJob {
    NewJob {
        payload: json!({"skill": "count", "live": live}),
        max_attempts,
        run_after: t,
        dedupe_key: key.map(str::to_string),
    }
}

/// A skill that counts the deals it sees; default schedule every day at 07:00.
struct CountDeals;

impl Skill for CountDeals {
    fn info(&self) -> SkillInfo {
        SkillInfo {
            id: "count",
            display_name: "Count deals",
            description: "Counts the deals.",
            default_schedule: "0 7 * * *",
            settings: vec![],
            inputs: SkillInputs::default(),
        }
    }

    fn run(&self, ctx: &SkillContext) -> Result<SkillReport> {
        Ok(SkillReport {
            skill: "count".into(),
            period: ctx.period.clone(),
            as_of: ctx.as_of,
            summary: json!({"deals": ctx.deals.len()}),
            rows: vec![],
            sections: Default::default(),
            risk_updates: Vec::new(),
        })
    }
}

fn pandora(store: &StoreRef) -> Pandora {
    Pandora::builder()
        .shared_store(store.clone())
        .skills(SkillRegistry::new().with(CountDeals))
        .build()
        .expect("build")
}

/// Enqueue creates the queued run and its job (same id, kind skill, no
/// connection) once per dedupe key; the claim starts the run (a live run
/// takes its `as_of` at the claim); a retry puts it back to queued with the
/// error; finishing records the report, fenced by the worker.
pub async fn skill_jobs_start_retry_and_finish_their_runs(store: StoreRef) {
    let ws = new_workspace(&store, "skill jobs").await;
    let t0 = at(4, 6, 0);
    let run = queued_run(ws, "count", t0);
    assert!(store
        .enqueue_skill(&run, &job(t0, true, Some("skill:count:1"), 3))
        .await
        .expect("enqueue"));
    assert!(store.job_key_taken(ws, "skill:count:1").await.expect("key"));
    assert!(!store.job_key_taken(ws, "skill:count:2").await.expect("key"));
    // The same slot again: nothing created.
    let again = queued_run(ws, "count", t0);
    assert!(!store
        .enqueue_skill(&again, &job(t0, true, Some("skill:count:1"), 3))
        .await
        .expect("enqueue"));
    assert_eq!(
        store
            .get_skill_run(ws, again.id)
            .await
            .map(|_| ())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let stored = store.get_skill_run(ws, run.id).await.expect("run");
    assert_eq!(stored.status, RunStatus::Queued);
    let queued_job = store.get_job(ws, run.id).await.expect("job");
    assert_eq!(queued_job.kind, JobKind::Skill);
    assert_eq!(queued_job.connection_id, None);

    // A run that is not queued, or no attempts, is refused.
    let mut running = queued_run(ws, "count", t0);
    running.status = RunStatus::Running;
    let err = store
        .enqueue_skill(&running, &job(t0, true, None, 3))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = store
        .enqueue_skill(&queued_run(ws, "count", t0), &job(t0, true, None, 0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // Claim: running, started and (live) as of the claim.
    let t1 = at(4, 7, 0);
    let claimed = store
        .claim_job("w1", t1, LEASE)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(claimed.id, run.id);
    let started = store.get_skill_run(ws, run.id).await.expect("run");
    assert_eq!(started.status, RunStatus::Running);
    assert_eq!(started.started_at, t1);
    assert_eq!(started.as_of, t1);

    // Retry: queued again with the error, claimable from retry_at.
    let t2 = t1 + Duration::minutes(5);
    assert!(store
        .retry_job(
            run.id,
            "w1",
            "database unavailable",
            &Default::default(),
            t2
        )
        .await
        .expect("retry"));
    let requeued = store.get_skill_run(ws, run.id).await.expect("run");
    assert_eq!(requeued.status, RunStatus::Queued);
    assert_eq!(requeued.error.as_deref(), Some("database unavailable"));
    assert!(store
        .claim_job("w2", t1, LEASE)
        .await
        .expect("claim")
        .is_none());
    let claimed = store
        .claim_job("w2", t2, LEASE)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(claimed.attempts, 2);
    assert_eq!(
        store.get_skill_run(ws, run.id).await.expect("run").as_of,
        t2
    );

    // The old worker no longer holds it: finishing changes nothing.
    let report = json!({"summary": {"deals": 3}});
    assert!(store
        .finish_skill_job(run.id, "w1", RunStatus::Succeeded, Some(&report), None, t2)
        .await
        .expect("finish")
        .is_none());
    // A sync job's finish refuses a skill job.
    let err = store
        .finish_sync_job(
            run.id,
            "w2",
            RunStatus::Succeeded,
            &counts((0, 0, 0, 0)),
            None,
            t2,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let t3 = t2 + Duration::seconds(3);
    let done = store
        .finish_skill_job(run.id, "w2", RunStatus::Succeeded, Some(&report), None, t3)
        .await
        .expect("finish")
        .expect("held");
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.report.as_ref(), Some(&report));
    assert_eq!(done.finished_at, Some(t3));
    assert_eq!(
        store.get_job(ws, run.id).await.expect("job").status,
        RunStatus::Succeeded
    );
    // A run that is not live keeps the as_of it was enqueued with.
    let past = queued_run(ws, "count", at(2, 0, 0));
    store
        .enqueue_skill(&past, &job(t3, false, None, 3))
        .await
        .expect("enqueue");
    store
        .claim_job("w3", t3, LEASE)
        .await
        .expect("claim")
        .expect("a job");
    let claimed_past = store.get_skill_run(ws, past.id).await.expect("run");
    assert_eq!(claimed_past.as_of, at(2, 0, 0));
    assert_eq!(claimed_past.started_at, t3);
}

/// A skill job whose worker died after its last attempt fails, and so does
/// its run, with the lost-worker error.
pub async fn a_lost_skill_job_fails_its_run(store: StoreRef) {
    let ws = new_workspace(&store, "lost skill").await;
    let t0 = at(6, 6, 0);
    let run = queued_run(ws, "count", t0);
    store
        .enqueue_skill(&run, &job(t0, true, None, 1))
        .await
        .expect("enqueue");
    store
        .claim_job("w1", t0, LEASE)
        .await
        .expect("claim")
        .expect("a job");
    // The lease runs out; the next claim finds it out of attempts.
    let later = t0 + Duration::minutes(5);
    assert!(store
        .claim_job("w2", later, LEASE)
        .await
        .expect("claim")
        .is_none());
    let failed = store.get_skill_run(ws, run.id).await.expect("run");
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some(crate::store::lost_worker_error(1).as_str())
    );
    assert_eq!(
        store.get_job(ws, run.id).await.expect("job").status,
        RunStatus::Failed
    );
}

/// Schedules are stored per workspace and skill, replaced by a second put.
pub async fn skill_schedules_are_stored_per_workspace(store: StoreRef) {
    let a = new_workspace(&store, "schedules a").await;
    let b = new_workspace(&store, "schedules b").await;
    assert!(store
        .list_skill_schedules(a)
        .await
        .expect("list")
        .is_empty());
    let mut s = SkillScheduleOverride {
        skill: "deal_risk".into(),
        cron: Some("0 8 * * 1-5".into()),
        enabled: true,
        updated_at: at(1, 9, 0),
    };
    store.put_skill_schedule(a, &s).await.expect("put");
    s.cron = None;
    s.enabled = false;
    s.updated_at = at(1, 10, 0);
    store.put_skill_schedule(a, &s).await.expect("put");
    let off = SkillScheduleOverride {
        skill: "forecast_rollup".into(),
        cron: Some("30 6 * * *".into()),
        enabled: true,
        updated_at: at(1, 11, 0),
    };
    store.put_skill_schedule(a, &off).await.expect("put");
    assert_eq!(
        store.list_skill_schedules(a).await.expect("list"),
        vec![s, off]
    );
    assert!(store
        .list_skill_schedules(b)
        .await
        .expect("list")
        .is_empty());
    let err = store
        .put_skill_schedule(
            model::new_id(),
            &SkillScheduleOverride {
                skill: "x".into(),
                cron: None,
                enabled: true,
                updated_at: at(1, 9, 0),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// The scheduler: nothing before the workspace first synced; while a sync
/// is queued the slot waits; once it is done the slot's run is enqueued
/// once, however many ticks run (concurrently, as replicas would); a
/// disabled schedule enqueues nothing; a queued run then executes through
/// a worker with its data as of the claim.
pub async fn scheduled_skills_run_once_per_slot_after_syncs(store: StoreRef) {
    let pandora = pandora(&store);
    let ws = new_workspace(&store, "scheduled").await;
    let conn = connection(&store, ws, "test").await;
    let slot = at(11, 7, 0);
    let tick = |now| {
        let pandora = pandora.clone();
        async move { schedule_skills(&pandora, now).await.expect("tick") }
    };
    // Never synced: no run.
    let r: SkillScheduleReport = tick(slot + Duration::minutes(1)).await;
    assert_eq!(r.no_data, 1, "{r:?}");
    assert_eq!(r.enqueued, 0);

    // A sync queued: the slot waits for it.
    let sync = queued(ws, conn, slot - Duration::minutes(30));
    store.create_sync_run(ws, &sync).await.expect("sync");
    store
        .start_sync_run(ws, sync.id, slot - Duration::minutes(30))
        .await
        .expect("start");
    store
        .finish_sync_run(
            ws,
            sync.id,
            RunStatus::Succeeded,
            &counts((1, 0, 0, 0)),
            None,
            slot - Duration::minutes(20),
        )
        .await
        .expect("finish");
    let second = queued(ws, conn, slot);
    store.create_sync_run(ws, &second).await.expect("sync");
    let r = tick(slot + Duration::minutes(2)).await;
    assert_eq!(r.waiting_for_sync, 1, "{r:?}");
    let key = skill_slot_key("count", slot);
    assert!(!store.job_key_taken(ws, &key).await.expect("key"));

    // The sync done: four concurrent ticks enqueue the slot once.
    store
        .finish_sync_run(
            ws,
            second.id,
            RunStatus::Succeeded,
            &counts((0, 0, 1, 0)),
            None,
            slot + Duration::minutes(3),
        )
        .await
        .expect("finish");
    let now = slot + Duration::minutes(4);
    let (a, b, c, d) = tokio::join!(tick(now), tick(now), tick(now), tick(now));
    let reports = [a, b, c, d];
    let enqueued: u64 = reports.iter().map(|r| r.enqueued).sum();
    let taken: u64 = reports.iter().map(|r| r.slot_taken).sum();
    assert_eq!((enqueued, taken), (1, 3), "{reports:?}");
    assert!(store.job_key_taken(ws, &key).await.expect("key"));
    assert_eq!(tick(now + Duration::minutes(5)).await.slot_taken, 1);

    // A worker runs it: succeeded, as of the claim.
    let worker = crate::worker::Worker::new(
        pandora.clone(),
        crate::worker::WorkerOptions {
            schedule_every: None,
            ..Default::default()
        },
    )
    .expect("worker");
    let ran = worker.run_next().await.expect("run");
    assert!(ran.is_some());
    let runs = store
        .list_skill_runs(ws, "count", &crate::query::PageRequest::first(10))
        .await
        .expect("runs");
    assert_eq!(runs.data.len(), 1, "{runs:?}");
    assert_eq!(
        runs.data[0].status,
        RunStatus::Succeeded,
        "{runs:?} {ran:?}"
    );
    let latest = store
        .latest_skill_run(ws, "count", None)
        .await
        .expect("latest")
        .expect("a succeeded run");
    assert_eq!(latest.status, RunStatus::Succeeded);
    assert_eq!(
        latest.report.expect("report")["summary"],
        json!({"deals": 0})
    );
    assert!(
        latest.as_of > now,
        "a live run takes its data as of the claim"
    );

    // Turned off: the next slot enqueues nothing.
    let view = pandora
        .put_skill_schedule(
            ws,
            "count",
            crate::facade::SkillSchedulePut {
                cron: None,
                enabled: false,
            },
        )
        .await
        .expect("put");
    assert!(!view.enabled);
    assert_eq!(view.next_run_at, None);
    let r = tick(at(12, 7, 1)).await;
    assert_eq!((r.disabled, r.enqueued), (1, 0), "{r:?}");
    assert!(!store
        .job_key_taken(ws, &skill_slot_key("count", at(12, 7, 0)))
        .await
        .expect("key"));
    // A custom expression: validated, and in force.
    let err = pandora
        .put_skill_schedule(
            ws,
            "count",
            crate::facade::SkillSchedulePut {
                cron: Some("61 * * * *".into()),
                enabled: true,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "cron"),
        "{err:?}"
    );
    let view = pandora
        .put_skill_schedule(
            ws,
            "count",
            crate::facade::SkillSchedulePut {
                cron: Some("15 */6 * * *".into()),
                enabled: true,
            },
        )
        .await
        .expect("put");
    assert_eq!(view.cron, "15 */6 * * *");
    assert_eq!(view.default_cron, "0 7 * * *");
    let r = tick(at(12, 12, 20)).await;
    assert_eq!(r.enqueued, 1, "{r:?}");
    assert!(store
        .job_key_taken(ws, &skill_slot_key("count", at(12, 12, 15)))
        .await
        .expect("key"));
}

/// A computed-fields value with risk score `risk` and no reasons.
fn scored(risk: u8) -> crate::computed::ComputedFields {
    let t = at(1, 0, 0);
    crate::computed::ComputedFields {
        computed_at: t,
        deal_age_days: 1.0,
        closed_at: None,
        stage_entered_at: t,
        days_in_current_stage: 1.0,
        stages_visited: 1,
        avg_days_per_stage: Some(1.0),
        stage_velocity: None,
        close_date_pushes: 0,
        risk_score: risk,
        risk_reasons: Vec::new(),
    }
}

/// A deal-risk run's scores written back: the deal's `risk_score` (what
/// `min_risk` and `sort=risk` read) and the score and reasons in its
/// computed fields change; deals without computed fields, unknown ids and
/// another workspace's deals do not.
pub async fn deal_risk_is_written_back_on_the_workspaces_deals(store: StoreRef) {
    use crate::computed::{RiskCode, RiskReason};
    use crate::query::{DealFilter, PageRequest};
    use crate::skill::DealRiskUpdate;

    let a = new_workspace(&store, "risk a").await;
    let b = new_workspace(&store, "risk b").await;
    let write = |ws, ids: &[(&str, Option<u8>)]| {
        let batch = super::fixtures::deals_batch(
            ids.iter()
                .map(|(id, _)| super::fixtures::deal(id, Some(100), Some((2026, 6, 1))))
                .collect(),
        );
        let mut prepared = batch.prepare().expect("prepare");
        for (id, risk) in ids {
            if let Some(r) = risk {
                prepared.set_computed(id, scored(*r)).expect("computed");
            }
        }
        let store = store.clone();
        async move { store.write_batch(ws, &prepared, None).await.expect("write") }
    };
    write(a, &[("d1", Some(10)), ("d2", Some(20)), ("d3", None)]).await;
    write(b, &[("d1", Some(10))]).await;
    let id = |ws, source_id: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_deal_by_source(ws, "test", source_id)
                .await
                .expect("deal")
                .id
        }
    };
    let (a1, a3, b1) = (id(a, "d1").await, id(a, "d3").await, id(b, "d1").await);
    let reasons = vec![RiskReason {
        code: RiskCode::ALL[0],
        points: 80,
        detail: "evidence".into(),
    }];
    let update = |deal_id, score: u8| DealRiskUpdate {
        deal_id,
        score,
        reasons: reasons.clone(),
    };
    let changed = store
        .set_deal_risk(
            a,
            &[
                update(a1, 80),
                update(a3, 50),
                update(b1, 90),
                update(model::new_id(), 70),
            ],
        )
        .await
        .expect("set");
    assert_eq!(changed, 1);
    let d1 = store.get_deal(a, a1).await.expect("deal");
    let c = d1.computed.expect("computed");
    assert_eq!((c.risk_score, &c.risk_reasons), (80, &reasons));
    assert_eq!(c.days_in_current_stage, 1.0, "the other fields are kept");
    assert!(store
        .get_deal(a, a3)
        .await
        .expect("deal")
        .computed
        .is_none());
    let other = store
        .get_deal(b, b1)
        .await
        .expect("deal")
        .computed
        .expect("computed");
    assert_eq!(other.risk_score, 10);
    let risky = store
        .list_deals(
            a,
            &DealFilter {
                min_risk: Some(50),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .expect("list");
    assert_eq!(
        risky.data.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![a1]
    );
}
