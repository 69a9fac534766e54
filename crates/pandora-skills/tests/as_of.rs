//! As-of correctness: a skill run as of a past time on a store holding the
//! whole history equals the same run on a store holding only the data as it
//! was then (deals as they stood, history up to then, nothing created or
//! deleted later).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use pandora_core::batch::{Deletion, RecordBatch, RecordKind};
use pandora_core::facade::SkillRunRequest;
use pandora_core::model::{
    ChangeOrigin, DealField, NewDeal, NewDealChange, NewPipelineStage, NewUser, NewWorkspace,
    RunStatus, StageCategory,
};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn t(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, hour, 0, 0)
        .single()
        .expect("time")
}

/// The time the past runs are as of.
fn x() -> DateTime<Utc> {
    t(5, 15, 12)
}

struct Spec {
    name: &'static str,
    created: DateTime<Utc>,
    stage: &'static str,
    amount: i64,
    close: (u32, u32),
    owner: &'static str,
    forecast: Option<&'static str>,
    changes: Vec<(DealField, &'static str, DateTime<Utc>)>,
    deleted_later: bool,
}

fn category(stage: &str) -> StageCategory {
    match stage {
        "won" => StageCategory::Won,
        "lost" => StageCategory::Lost,
        _ => StageCategory::Open,
    }
}

/// The deals: created, changed and deleted on both sides of `x()`.
fn specs() -> Vec<Spec> {
    use DealField::*;
    vec![
        Spec {
            name: "P1",
            created: t(3, 1, 0),
            stage: "demo",
            amount: 100,
            close: (5, 20),
            owner: "alice",
            forecast: Some("Commit"),
            changes: vec![(Amount, "120", t(4, 10, 9)), (Stage, "won", t(5, 20, 9))],
            deleted_later: false,
        },
        Spec {
            name: "P2",
            created: t(3, 3, 0),
            stage: "lead",
            amount: 200,
            close: (6, 10),
            owner: "bob",
            forecast: None,
            changes: vec![
                (CloseDate, "2026-07-10", t(5, 1, 9)),
                (CloseDate, "2026-06-05", t(6, 1, 9)),
            ],
            deleted_later: false,
        },
        Spec {
            name: "P3",
            created: t(4, 20, 0),
            stage: "demo",
            amount: 300,
            close: (6, 1),
            owner: "alice",
            forecast: None,
            changes: vec![],
            deleted_later: true,
        },
        Spec {
            name: "P4",
            created: t(5, 20, 0),
            stage: "lead",
            amount: 400,
            close: (6, 15),
            owner: "bob",
            forecast: None,
            changes: vec![],
            deleted_later: false,
        },
        Spec {
            name: "P5",
            created: t(2, 1, 0),
            stage: "proposal",
            amount: 500,
            close: (5, 30),
            owner: "alice",
            forecast: Some("Best Case"),
            changes: vec![(Amount, "550", t(4, 1, 0)), (Stage, "lost", x())],
            deleted_later: false,
        },
        Spec {
            name: "P6",
            created: t(3, 1, 0),
            stage: "demo",
            amount: 600,
            close: (7, 20),
            owner: "bob",
            forecast: None,
            changes: vec![
                (CloseDate, "2026-06-20", t(5, 16, 9)),
                (Owner, "alice", t(5, 17, 9)),
            ],
            deleted_later: false,
        },
    ]
}

/// The value a field had before `spec`'s changes.
fn initial(spec: &Spec, field: DealField) -> String {
    match field {
        DealField::Stage => spec.stage.into(),
        DealField::Amount => spec.amount.to_string(),
        DealField::CloseDate => NaiveDate::from_ymd_opt(2026, spec.close.0, spec.close.1)
            .expect("date")
            .to_string(),
        DealField::Owner => spec.owner.into(),
        DealField::ForecastCategory => spec.forecast.unwrap_or_default().into(),
    }
}

/// The deal after its changes up to `until`, and those changes.
fn deal_until(spec: &Spec, until: DateTime<Utc>) -> (NewDeal, Vec<NewDealChange>) {
    let value = |f: DealField| initial(spec, f);
    let mut stage = value(DealField::Stage);
    let mut amount = value(DealField::Amount);
    let mut close = value(DealField::CloseDate);
    let mut owner = value(DealField::Owner);
    let mut changes = Vec::new();
    for (field, new, at) in spec.changes.iter().filter(|(_, _, at)| *at <= until) {
        let slot = match field {
            DealField::Stage => &mut stage,
            DealField::Amount => &mut amount,
            DealField::CloseDate => &mut close,
            DealField::Owner => &mut owner,
            DealField::ForecastCategory => unreachable!("not used"),
        };
        changes.push(NewDealChange {
            deal_source_id: spec.name.to_lowercase(),
            field: *field,
            old_value: Some(slot.clone()),
            new_value: Some((*new).into()),
            changed_at: *at,
            origin: ChangeOrigin::Vendor,
        });
        *slot = (*new).into();
    }
    let deal = NewDeal {
        source_id: spec.name.to_lowercase(),
        name: spec.name.into(),
        amount: Some(amount.parse::<Decimal>().expect("amount")),
        currency: Some("USD".into()),
        pipeline: Some("sales".into()),
        stage_category: category(&stage),
        stage: Some(stage),
        forecast_category: spec.forecast.map(Into::into),
        owner_source_id: Some(owner),
        close_date: Some(close.parse().expect("date")),
        source_created_at: Some(spec.created),
        properties: json!({}),
        ..Default::default()
    };
    (deal, changes)
}

/// A batch with the stages and users, and the deals as of `until`
/// (`None`: with their whole history).
fn batch(until: Option<DateTime<Utc>>) -> RecordBatch {
    let stages = ["lead", "demo", "proposal", "won", "lost"]
        .iter()
        .enumerate()
        .map(|(i, s)| NewPipelineStage {
            pipeline: "sales".into(),
            stage: (*s).into(),
            category: category(s),
            display_order: Some(i as i32 + 1),
            ..Default::default()
        })
        .collect();
    let users = ["alice", "bob"]
        .iter()
        .map(|u| NewUser {
            source_id: (*u).into(),
            name: Some(u.to_uppercase()),
            team: Some("Sales".into()),
            active: true,
            properties: json!({"quota": 1000, "quota_period": "quarter"}),
            ..Default::default()
        })
        .collect();
    let mut deals = Vec::new();
    let mut changes = Vec::new();
    for spec in specs() {
        if until.is_some_and(|u| spec.created > u) {
            continue;
        }
        let (deal, ch) = deal_until(&spec, until.unwrap_or(t(12, 31, 0)));
        deals.push(deal);
        changes.extend(ch);
    }
    RecordBatch {
        stages,
        users,
        deals,
        deal_changes: changes,
        ..RecordBatch::new("test")
    }
}

async fn pandora(dir: &tempfile::TempDir, name: &str) -> Pandora {
    let store = SqliteStore::open(dir.path().join(name))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    Pandora::builder()
        .store(store)
        .skills(pandora_skills::all())
        .build()
        .expect("pandora")
}

/// The report without the ids each store generates.
fn normalized(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["deal_id", "user_id", "manager_id", "reports", "run_id"] {
                    m.remove(k);
                }
                if m.get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| uuid::Uuid::parse_str(k).is_ok())
                {
                    m.remove("key");
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_run_equals_a_run_on_the_data_as_it_was() {
    let dir = tempfile::tempdir().expect("dir");
    let full = pandora(&dir, "full.db").await;
    let then = pandora(&dir, "then.db").await;
    let ws_full = full
        .create_workspace(NewWorkspace {
            name: "full".into(),
            ..Default::default()
        })
        .await
        .expect("ws")
        .workspace
        .id;
    let ws_then = then
        .create_workspace(NewWorkspace {
            name: "then".into(),
            ..Default::default()
        })
        .await
        .expect("ws")
        .workspace
        .id;
    full.ingest(ws_full, &batch(None), None)
        .await
        .expect("full history");
    let deletions = RecordBatch {
        deletions: specs()
            .iter()
            .filter(|s| s.deleted_later)
            .map(|s| Deletion {
                kind: RecordKind::Deal,
                source_id: s.name.to_lowercase(),
            })
            .collect(),
        ..RecordBatch::new("test")
    };
    full.ingest(ws_full, &deletions, None)
        .await
        .expect("deleted now");
    then.ingest(ws_then, &batch(Some(x())), None)
        .await
        .expect("data as of x");

    let request = SkillRunRequest {
        period: Some("2026-Q2".into()),
        as_of: Some(x()),
        settings: Some(json!({"deals_listed": 100, "row_deals_listed": 100})),
    };
    let forecast_request = SkillRunRequest {
        settings: Some(json!({"deals_listed": 100})),
        ..request.clone()
    };
    for (skill, request) in [
        ("pipeline_waterfall", &request),
        ("forecast_rollup", &forecast_request),
        ("rep_scorecard", &forecast_request),
        ("deal_risk", &forecast_request),
        ("single_thread_alert", &forecast_request),
    ] {
        let past = full.run_skill(ws_full, skill, request).await.expect("run");
        let reference = then.run_skill(ws_then, skill, request).await.expect("run");
        assert_eq!(past.status, RunStatus::Succeeded, "{:?}", past.error);
        assert_eq!(
            reference.status,
            RunStatus::Succeeded,
            "{:?}",
            reference.error
        );
        assert_eq!(past.as_of, x());
        let (a, b) = (
            normalized(past.report.expect("report")),
            normalized(reference.report.expect("report")),
        );
        assert_eq!(a, b, "{skill}");
        // And the as-of time matters: today's run sees P1 won, P4, P6 moved.
        let now = full
            .run_skill(
                ws_full,
                skill,
                &SkillRunRequest {
                    as_of: None,
                    ..request.clone()
                },
            )
            .await
            .expect("run");
        assert_ne!(normalized(now.report.expect("report")), a, "{skill}");
    }
}
