//! The job queue: enqueue and its dedupe key, claims in order with a lease,
//! recovery of jobs whose worker died, fencing of a worker that lost its job,
//! retries, the lost-worker limit, finishing, cancelling, concurrent
//! claimers, tenancy, the scheduler's scan and purging a source.
//!
//! Time is passed in (`now`), so the tests move it forward instead of sleeping.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::fixtures::{deal, new_workspace, write, StoreRef};
use super::runs::{at, connection, counts, queued};
use crate::batch::{Deletion, RecordBatch, RecordKind};
use crate::error::ErrorKind;
use crate::model::{
    ChangeOrigin, ConnectionStatus, DealField, Job, JobKind, NewAccount, NewConnection, NewContact,
    NewConversation, NewDealChange, NewDealContact, NewDocument, NewJob, NewPipelineStage, NewTask,
    NewUser, RunStatus, SourceRef, StageCategory, SyncRun,
};
use crate::store::{active_run_id, lost_worker_error};

/// The lease every claim in these tests takes.
const LEASE: StdDuration = StdDuration::from_secs(60);

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// A job due at `run_after`, with up to `max_attempts` claims.
fn new_job(run_after: DateTime<Utc>, dedupe_key: Option<String>, max_attempts: u32) -> NewJob {
    NewJob {
        payload: serde_json::json!({"mode": "incremental"}),
        max_attempts,
        run_after,
        dedupe_key,
    }
}

/// Enqueues a sync of `conn` created and due at `due` (3 attempts, no dedupe
/// key); returns its run (whose id is the job's).
async fn enqueue(store: &StoreRef, ws: Uuid, conn: Uuid, due: DateTime<Utc>) -> SyncRun {
    enqueue_with(store, ws, conn, due, 3).await
}

async fn enqueue_with(
    store: &StoreRef,
    ws: Uuid,
    conn: Uuid,
    due: DateTime<Utc>,
    max_attempts: u32,
) -> SyncRun {
    let run = queued(ws, conn, due);
    assert!(
        store
            .enqueue_sync(&run, &new_job(due, None, max_attempts))
            .await
            .expect("enqueue"),
        "a job without a dedupe key is always enqueued"
    );
    run
}

async fn claim(store: &StoreRef, worker: &str, now: DateTime<Utc>) -> Option<Job> {
    store.claim_job(worker, now, LEASE).await.expect("claim")
}

async fn job(store: &StoreRef, ws: Uuid, id: Uuid) -> Job {
    store.get_job(ws, id).await.expect("job")
}

async fn run_of(store: &StoreRef, ws: Uuid, id: Uuid) -> SyncRun {
    store.get_sync_run(ws, id).await.expect("run")
}

/// `last_sync_at` and `last_error` of the workspace's connection to `connector`.
async fn outcome(
    store: &StoreRef,
    ws: Uuid,
    connector: &str,
) -> (Option<DateTime<Utc>>, Option<String>) {
    let c = store
        .get_connection(ws, connector)
        .await
        .expect("connection");
    (c.last_sync_at, c.last_error)
}

fn assert_kind<T: std::fmt::Debug>(result: crate::Result<T>, kind: ErrorKind) -> crate::Error {
    let err = result.expect_err("an error");
    assert_eq!(err.kind(), kind, "{err:?}");
    err
}

fn assert_invalid<T: std::fmt::Debug>(result: crate::Result<T>, field: &str) {
    let err = result.expect_err("an error");
    assert!(
        matches!(err, crate::Error::InvalidInput { field: ref f, .. } if f == field),
        "expected invalid {field}: {err:?}"
    );
}

/// Enqueue creates the queued run and its job (same id) together; a dedupe
/// key is held forever by one job of the workspace (a second enqueue of the
/// slot returns `false` and creates nothing, even after the first finished);
/// an active run refuses the enqueue with the conflict naming it; bad input
/// is refused before anything is stored.
pub async fn enqueue_creates_run_and_job_once_per_dedupe_key(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let key = format!("sync:{conn}:1");

    let run = queued(ws, conn, at(1, 9));
    let first = new_job(at(1, 9) + secs(30), Some(key.clone()), 3);
    assert!(store.enqueue_sync(&run, &first).await.expect("enqueue"));
    assert_eq!(run_of(&store, ws, run.id).await, run);
    assert_eq!(
        job(&store, ws, run.id).await,
        Job {
            id: run.id,
            workspace_id: ws,
            kind: JobKind::Sync,
            connection_id: Some(conn),
            payload: first.payload.clone(),
            status: RunStatus::Queued,
            attempts: 0,
            max_attempts: 3,
            run_after: at(1, 9) + secs(30),
            lease_until: None,
            worker: None,
            last_error: None,
            dedupe_key: Some(key.clone()),
            created_at: run.created_at,
            updated_at: run.created_at,
        }
    );

    // The same slot again (another replica's scheduler): false, nothing stored.
    let again = queued(ws, conn, at(1, 9));
    assert!(!store
        .enqueue_sync(&again, &new_job(at(1, 9), Some(key.clone()), 3))
        .await
        .expect("enqueue the slot again"));
    assert_kind(store.get_sync_run(ws, again.id).await, ErrorKind::NotFound);
    assert_kind(store.get_job(ws, again.id).await, ErrorKind::NotFound);

    // Another job of the connection while the first is queued: the active-run conflict.
    let manual = queued(ws, conn, at(1, 10));
    let err = assert_kind(
        store
            .enqueue_sync(
                &manual,
                &new_job(at(1, 10), Some(format!("manual:{conn}")), 3),
            )
            .await,
        ErrorKind::Conflict,
    );
    assert_eq!(active_run_id(&err), Some(run.id), "{err}");
    assert_kind(store.get_sync_run(ws, manual.id).await, ErrorKind::NotFound);
    assert_kind(store.get_job(ws, manual.id).await, ErrorKind::NotFound);
    // Its key was not taken by the refused enqueue.
    let claimed = claim(&store, "w1", at(1, 10)).await.expect("claim");
    assert_eq!(claimed.id, run.id);
    store
        .finish_sync_job(
            run.id,
            "w1",
            RunStatus::Succeeded,
            &BTreeMap::new(),
            None,
            at(1, 11),
        )
        .await
        .expect("finish")
        .expect("held");
    assert!(store
        .enqueue_sync(
            &manual,
            &new_job(at(1, 12), Some(format!("manual:{conn}")), 3)
        )
        .await
        .expect("enqueue once the slot is free"));

    // A finished job still holds its key.
    store
        .cancel_connection_jobs(ws, conn, "test", at(1, 12))
        .await
        .expect("cancel");
    let later = queued(ws, conn, at(2, 9));
    assert!(!store
        .enqueue_sync(&later, &new_job(at(2, 9), Some(key.clone()), 3))
        .await
        .expect("enqueue a finished slot"));
    assert_kind(store.get_sync_run(ws, later.id).await, ErrorKind::NotFound);
    assert_eq!(store.active_sync_run(ws, conn).await.expect("active"), None);

    // The same id twice: a plain conflict, not an active-run one.
    let err = assert_kind(
        store.enqueue_sync(&run, &new_job(at(2, 9), None, 3)).await,
        ErrorKind::Conflict,
    );
    assert_eq!(active_run_id(&err), None, "{err}");

    // Keys are per workspace: another workspace's job may hold the same one.
    let other = new_workspace(&store, "B").await;
    let other_conn = connection(&store, other, "test").await;
    let theirs = queued(other, other_conn, at(1, 9));
    assert!(store
        .enqueue_sync(&theirs, &new_job(at(1, 9), Some(key.clone()), 3))
        .await
        .expect("enqueue in B"));
    assert_eq!(job(&store, other, theirs.id).await.dedupe_key, Some(key));

    // Invalid input; nothing stored.
    let fresh = || queued(ws, conn, at(3, 9));
    let r = fresh();
    assert_invalid(
        store.enqueue_sync(&r, &new_job(at(3, 9), None, 0)).await,
        "max_attempts",
    );
    let running = SyncRun {
        status: RunStatus::Running,
        ..fresh()
    };
    assert_invalid(
        store
            .enqueue_sync(&running, &new_job(at(3, 9), None, 3))
            .await,
        "status",
    );
    let not_an_object = NewJob {
        payload: serde_json::json!([1, 2]),
        ..new_job(at(3, 9), None, 3)
    };
    assert_invalid(store.enqueue_sync(&r, &not_an_object).await, "payload");
    let nowhere = queued(ws, Uuid::now_v7(), at(3, 9));
    assert_kind(
        store
            .enqueue_sync(&nowhere, &new_job(at(3, 9), None, 3))
            .await,
        ErrorKind::NotFound,
    );
    for id in [r.id, running.id, nowhere.id] {
        assert_kind(store.get_job(ws, id).await, ErrorKind::NotFound);
        assert_kind(store.get_sync_run(ws, id).await, ErrorKind::NotFound);
    }
    assert_eq!(store.active_sync_run(ws, conn).await.expect("active"), None);
}

/// Claims take due jobs by `run_after` (not by enqueue order), never a job
/// due later, and never a job whose lease runs; a claim makes the job
/// running with a lease and one more attempt, and starts its run; a renewed
/// lease keeps the job.
pub async fn claims_take_due_jobs_in_order_under_a_lease(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let (c1, c2, c3) = (
        connection(&store, ws, "one").await,
        connection(&store, ws, "two").await,
        connection(&store, ws, "three").await,
    );
    let second = enqueue(&store, ws, c2, at(1, 10)).await;
    let later = enqueue(&store, ws, c3, at(1, 12)).await;
    let first = enqueue(&store, ws, c1, at(1, 9)).await;

    assert!(claim(&store, "w0", at(1, 8)).await.is_none(), "nothing due");
    let waiting = job(&store, ws, first.id).await;
    let now = at(1, 11);
    let got = claim(&store, "w1", now).await.expect("a due job");
    assert_eq!(got.id, first.id, "oldest run_after first");
    assert_eq!(
        got,
        Job {
            status: RunStatus::Running,
            attempts: 1,
            lease_until: Some(now + secs(60)),
            worker: Some("w1".into()),
            updated_at: now,
            ..waiting
        }
    );
    assert_eq!(got, job(&store, ws, first.id).await);
    assert_eq!(
        run_of(&store, ws, first.id).await,
        SyncRun {
            status: RunStatus::Running,
            started_at: Some(now),
            ..first.clone()
        }
    );

    let got = claim(&store, "w2", now).await.expect("the second");
    assert_eq!((got.id, got.attempts), (second.id, 1));
    assert!(
        claim(&store, "w3", now).await.is_none(),
        "the third is due later, the others are leased"
    );
    assert!(claim(&store, "w3", now + secs(30)).await.is_none());
    assert!(
        claim(&store, "w3", now + secs(60)).await.is_none(),
        "a lease ends strictly after lease_until"
    );
    assert_eq!(run_of(&store, ws, later.id).await.status, RunStatus::Queued);

    // Renewed leases hold past their first end.
    for (id, worker) in [(first.id, "w1"), (second.id, "w2")] {
        assert!(store
            .renew_job_lease(id, worker, at(1, 13))
            .await
            .expect("renew"));
        let renewed = job(&store, ws, id).await;
        assert_eq!(
            (renewed.lease_until, renewed.updated_at),
            (Some(at(1, 13)), now),
            "a renewal moves the lease only"
        );
    }
    let got = claim(&store, "w3", at(1, 12))
        .await
        .expect("due exactly now");
    assert_eq!(got.id, later.id);
    assert!(claim(&store, "w4", at(1, 12) + secs(30)).await.is_none());
    assert_eq!(
        job(&store, ws, first.id).await.worker.as_deref(),
        Some("w1")
    );
}

/// A job whose lease ran out (its worker died) is claimed by the next worker
/// (attempt 2, its run still running since the first start); the first
/// worker can no longer renew, finish or retry it, and its calls change
/// nothing; the new holder finishes it.
pub async fn an_expired_lease_passes_the_job_on_and_fences_the_old_worker(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let t0 = at(1, 9);
    let run = enqueue(&store, ws, conn, t0).await;
    assert_eq!(
        claim(&store, "w1", t0)
            .await
            .expect("claim")
            .worker
            .as_deref(),
        Some("w1")
    );
    assert!(claim(&store, "w2", t0 + secs(59)).await.is_none());

    let again = claim(&store, "w2", t0 + secs(61)).await.expect("reclaimed");
    assert_eq!(again.id, run.id);
    assert_eq!(again.attempts, 2);
    assert_eq!(again.worker.as_deref(), Some("w2"));
    assert_eq!(again.lease_until, Some(t0 + secs(121)));
    let run_now = run_of(&store, ws, run.id).await;
    assert_eq!(
        (run_now.status, run_now.started_at),
        (RunStatus::Running, Some(t0))
    );

    let job_before = job(&store, ws, run.id).await;
    assert!(!store
        .renew_job_lease(run.id, "w1", t0 + secs(600))
        .await
        .expect("renew"));
    assert_eq!(
        store
            .finish_sync_job(
                run.id,
                "w1",
                RunStatus::Succeeded,
                &counts((1, 0, 0, 0)),
                None,
                t0 + secs(90),
            )
            .await
            .expect("finish"),
        None
    );
    assert!(!store
        .retry_job(run.id, "w1", "boom", &counts((1, 0, 0, 0)), t0 + secs(600))
        .await
        .expect("retry"));
    assert_eq!(job(&store, ws, run.id).await, job_before);
    assert_eq!(run_of(&store, ws, run.id).await, run_now);
    assert_eq!(outcome(&store, ws, "test").await, (None, None));

    assert!(store
        .renew_job_lease(run.id, "w2", t0 + secs(300))
        .await
        .expect("renew"));
    assert_eq!(
        job(&store, ws, run.id).await.lease_until,
        Some(t0 + secs(300))
    );
    let done = store
        .finish_sync_job(
            run.id,
            "w2",
            RunStatus::Succeeded,
            &counts((2, 0, 0, 0)),
            None,
            t0 + secs(120),
        )
        .await
        .expect("finish")
        .expect("w2 holds it");
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.counts, counts((2, 0, 0, 0)));
    assert!(!store
        .renew_job_lease(run.id, "w2", t0 + secs(600))
        .await
        .expect("renew"));
    assert!(claim(&store, "w3", t0 + secs(3600)).await.is_none());
}

/// The known gap of `Pandora::sync`: a run whose process died stayed
/// `running` forever and blocked the connection. Run through the queue, it
/// blocks only until its lease ends: then its job is claimed again and the
/// run completes, freeing the connection.
pub async fn an_abandoned_running_run_is_recovered_after_its_lease(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let t0 = at(1, 9);
    let run = enqueue(&store, ws, conn, t0).await;
    claim(&store, "dies", t0).await.expect("claim");
    // The worker dies without a word. The run is running and holds the slot.
    let blocked = queued(ws, conn, t0 + secs(30));
    let err = assert_kind(
        store
            .enqueue_sync(&blocked, &new_job(t0 + secs(30), None, 3))
            .await,
        ErrorKind::Conflict,
    );
    assert_eq!(active_run_id(&err), Some(run.id));
    assert_eq!(
        store
            .active_sync_run(ws, conn)
            .await
            .expect("active")
            .map(|r| (r.id, r.status)),
        Some((run.id, RunStatus::Running))
    );

    let rescued = claim(&store, "rescuer", t0 + secs(61))
        .await
        .expect("the abandoned job is claimed again");
    assert_eq!(rescued.id, run.id);
    store
        .finish_sync_job(
            run.id,
            "rescuer",
            RunStatus::Succeeded,
            &counts((5, 0, 0, 0)),
            None,
            t0 + secs(90),
        )
        .await
        .expect("finish")
        .expect("held");
    assert_eq!(store.active_sync_run(ws, conn).await.expect("active"), None);
    assert_eq!(
        outcome(&store, ws, "test").await,
        (Some(t0 + secs(90)), None)
    );
    let next = queued(ws, conn, t0 + secs(120));
    assert!(store
        .enqueue_sync(&next, &new_job(t0 + secs(120), None, 3))
        .await
        .expect("the connection syncs again"));
}

/// `retry_job` puts the job and its run back in the queue with the error and
/// the counts so far; the connection's slot stays taken; the job is claimable
/// from `retry_at` only (as attempt 2, its run started again).
pub async fn retry_requeues_the_job_and_its_run_until_retry_at(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let t0 = at(1, 9);
    let run = enqueue(&store, ws, conn, t0).await;
    claim(&store, "w1", t0).await.expect("claim");

    let retry_at = t0 + secs(300);
    assert!(store
        .retry_job(
            run.id,
            "w1",
            "vendor answered 503",
            &counts((4, 0, 0, 0)),
            retry_at
        )
        .await
        .expect("retry"));
    let j = job(&store, ws, run.id).await;
    assert_eq!(
        (
            j.status,
            j.run_after,
            j.lease_until,
            j.attempts,
            j.last_error.as_deref()
        ),
        (
            RunStatus::Queued,
            retry_at,
            None,
            1,
            Some("vendor answered 503")
        )
    );
    let r = run_of(&store, ws, run.id).await;
    assert_eq!(
        (r.status, r.error.as_deref(), &r.counts, r.finished_at),
        (
            RunStatus::Queued,
            Some("vendor answered 503"),
            &counts((4, 0, 0, 0)),
            None
        )
    );
    let err = assert_kind(
        store
            .enqueue_sync(&queued(ws, conn, t0), &new_job(t0, None, 3))
            .await,
        ErrorKind::Conflict,
    );
    assert_eq!(active_run_id(&err), Some(run.id), "the slot stays taken");
    assert!(!store
        .retry_job(run.id, "w1", "again", &BTreeMap::new(), t0)
        .await
        .expect("retry"));
    assert!(!store
        .renew_job_lease(run.id, "w1", t0 + secs(600))
        .await
        .expect("renew"));

    assert!(claim(&store, "w2", retry_at - secs(1)).await.is_none());
    let again = claim(&store, "w2", retry_at).await.expect("due again");
    assert_eq!((again.id, again.attempts), (run.id, 2));
    let r = run_of(&store, ws, run.id).await;
    assert_eq!(
        (r.status, r.started_at),
        (RunStatus::Running, Some(retry_at))
    );

    let failed = store
        .finish_sync_job(
            run.id,
            "w2",
            RunStatus::Failed,
            &counts((4, 1, 0, 0)),
            Some("still 503".into()),
            retry_at + secs(10),
        )
        .await
        .expect("finish")
        .expect("held");
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (RunStatus::Failed, Some("still 503"))
    );
    let j = job(&store, ws, run.id).await;
    assert_eq!(
        (j.status, j.last_error.as_deref(), j.lease_until),
        (RunStatus::Failed, Some("still 503"), None)
    );
    assert_eq!(
        outcome(&store, ws, "test").await,
        (None, Some("still 503".into()))
    );
}

/// A job whose lease runs out after its last allowed attempt is not claimed
/// again: the claim fails it (job and run, with the lost-worker error, the
/// connection recording it as for any failed run) and takes the next job.
pub async fn a_lost_worker_after_the_last_attempt_fails_the_job(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let flaky = connection(&store, ws, "flaky").await;
    let next = connection(&store, ws, "next").await;
    let t0 = at(1, 9);
    let lost = enqueue_with(&store, ws, flaky, t0, 2).await;
    let behind = enqueue(&store, ws, next, t0 + secs(1)).await;

    assert_eq!(claim(&store, "w1", t0).await.expect("1st").id, lost.id);
    let second = claim(&store, "w2", t0 + secs(61)).await.expect("2nd");
    assert_eq!((second.id, second.attempts), (lost.id, 2));

    let now = t0 + secs(200);
    let got = claim(&store, "w3", now)
        .await
        .expect("the next job is claimed instead");
    assert_eq!((got.id, got.attempts), (behind.id, 1));
    let expected = lost_worker_error(2);
    let j = job(&store, ws, lost.id).await;
    assert_eq!(
        (j.status, j.attempts, j.lease_until, j.last_error.as_deref()),
        (RunStatus::Failed, 2, None, Some(expected.as_str()))
    );
    let r = run_of(&store, ws, lost.id).await;
    assert_eq!(
        (r.status, r.error.as_deref(), r.finished_at),
        (RunStatus::Failed, Some(expected.as_str()), Some(now))
    );
    assert_eq!(
        outcome(&store, ws, "flaky").await,
        (None, Some(expected.clone()))
    );
    assert_eq!(
        store.active_sync_run(ws, flaky).await.expect("active"),
        None
    );
    assert!(!store
        .renew_job_lease(lost.id, "w2", now + secs(60))
        .await
        .expect("renew"));
    assert_eq!(
        store
            .finish_sync_job(
                lost.id,
                "w2",
                RunStatus::Succeeded,
                &BTreeMap::new(),
                None,
                now
            )
            .await
            .expect("finish"),
        None
    );
    assert_eq!(
        claim(&store, "w4", now + secs(3600)).await.map(|j| j.id),
        Some(behind.id),
        "the next job's own lease ran out meanwhile"
    );
    assert!(claim(&store, "w5", now + secs(3600)).await.is_none());
}

/// Finishing a sync job finishes its run and records the outcome on the
/// connection as `finish_sync_run` does: succeeded sets `last_sync_at` and
/// clears the error, failed sets `last_error` only, cancelled neither.
pub async fn finishing_a_sync_job_records_the_outcome(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let mut t = at(1, 9);
    let mut finish = |status: RunStatus, error: Option<&str>| {
        t += secs(3600);
        let (store, error) = (store.clone(), error.map(str::to_string));
        let start = t;
        async move {
            let run = enqueue(&store, ws, conn, start).await;
            claim(&store, "w", start).await.expect("claim");
            assert_invalid(
                store
                    .finish_sync_job(
                        run.id,
                        "w",
                        RunStatus::Running,
                        &BTreeMap::new(),
                        None,
                        start,
                    )
                    .await,
                "status",
            );
            let end = start + secs(60);
            let done = store
                .finish_sync_job(
                    run.id,
                    "w",
                    status,
                    &counts((3, 1, 2, 1)),
                    error.clone(),
                    end,
                )
                .await
                .expect("finish")
                .expect("held");
            assert_eq!(
                done,
                SyncRun {
                    status,
                    counts: counts((3, 1, 2, 1)),
                    error: error.clone(),
                    started_at: Some(start),
                    finished_at: Some(end),
                    ..run.clone()
                }
            );
            assert_eq!(run_of(&store, ws, run.id).await, done);
            let j = job(&store, ws, run.id).await;
            assert_eq!((j.status, j.lease_until), (status, None));
            assert_eq!(
                store
                    .finish_sync_job(run.id, "w", status, &BTreeMap::new(), None, end)
                    .await
                    .expect("finish twice"),
                None,
                "a finished job is no longer held"
            );
            end
        }
    };
    let succeeded = finish(RunStatus::Succeeded, None).await;
    assert_eq!(outcome(&store, ws, "test").await, (Some(succeeded), None));
    finish(RunStatus::Failed, Some("vendor answered 503")).await;
    assert_eq!(
        outcome(&store, ws, "test").await,
        (Some(succeeded), Some("vendor answered 503".into()))
    );
    finish(RunStatus::Cancelled, Some("stopped")).await;
    assert_eq!(
        outcome(&store, ws, "test").await,
        (Some(succeeded), Some("vendor answered 503".into())),
        "a cancelled run changes neither"
    );
    let later = finish(RunStatus::Succeeded, None).await;
    assert_eq!(outcome(&store, ws, "test").await, (Some(later), None));
}

/// `cancel_connection_jobs` cancels the connection's queued and running jobs
/// and finishes their runs as cancelled with the reason (the connection's
/// outcome untouched); the running worker's renew then fails; other
/// connections' jobs are untouched; the connection can be synced again.
pub async fn cancel_connection_jobs_cancels_queued_and_running_jobs(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let (a, b, c) = (
        connection(&store, ws, "a").await,
        connection(&store, ws, "b").await,
        connection(&store, ws, "c").await,
    );
    let t0 = at(1, 9);
    let running = enqueue(&store, ws, a, t0).await;
    assert_eq!(claim(&store, "w1", t0).await.expect("claim").id, running.id);
    let waiting = enqueue(&store, ws, b, t0 + secs(10)).await;
    let elsewhere = enqueue(&store, ws, c, t0 + secs(20)).await;

    let now = t0 + secs(30);
    assert_eq!(
        store
            .cancel_connection_jobs(ws, a, "disconnected", now)
            .await
            .expect("cancel"),
        1
    );
    let j = job(&store, ws, running.id).await;
    assert_eq!((j.status, j.lease_until), (RunStatus::Cancelled, None));
    let r = run_of(&store, ws, running.id).await;
    assert_eq!(
        (r.status, r.error.as_deref(), r.started_at, r.finished_at),
        (
            RunStatus::Cancelled,
            Some("disconnected"),
            Some(t0),
            Some(now)
        )
    );
    assert!(!store
        .renew_job_lease(running.id, "w1", now + secs(60))
        .await
        .expect("renew"));
    assert_eq!(
        store
            .finish_sync_job(
                running.id,
                "w1",
                RunStatus::Succeeded,
                &BTreeMap::new(),
                None,
                now
            )
            .await
            .expect("finish"),
        None
    );
    assert_eq!(
        run_of(&store, ws, running.id).await,
        r,
        "the worker cannot undo it"
    );
    assert_eq!(outcome(&store, ws, "a").await, (None, None));

    assert_eq!(
        store
            .cancel_connection_jobs(ws, b, "disconnected", now)
            .await
            .expect("cancel"),
        1
    );
    let r = run_of(&store, ws, waiting.id).await;
    assert_eq!(
        (r.status, r.started_at, r.finished_at),
        (RunStatus::Cancelled, None, Some(now))
    );
    assert_eq!(
        job(&store, ws, waiting.id).await.status,
        RunStatus::Cancelled
    );

    // Only C's job is left to claim.
    assert_eq!(
        claim(&store, "w2", now + secs(3600)).await.map(|j| j.id),
        Some(elsewhere.id)
    );
    assert!(claim(&store, "w3", now + secs(3600)).await.is_none());
    assert_eq!(
        store
            .cancel_connection_jobs(ws, a, "again", now)
            .await
            .expect("cancel"),
        0
    );
    assert_kind(
        store
            .cancel_connection_jobs(ws, Uuid::now_v7(), "x", now)
            .await,
        ErrorKind::NotFound,
    );
    assert_eq!(store.active_sync_run(ws, a).await.expect("active"), None);
    enqueue(&store, ws, a, now + secs(60)).await;
}

/// 20 workers claim at once over 10 due jobs: no job is claimed twice, and
/// every job is claimed exactly once in all.
pub async fn concurrent_claimers_take_each_job_once(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let t0 = at(1, 9);
    let mut jobs = BTreeSet::new();
    for i in 0..10 {
        let conn = connection(&store, ws, &format!("source-{i}")).await;
        jobs.insert(enqueue(&store, ws, conn, t0 + secs(i)).await.id);
    }
    let now = t0 + secs(60);
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_job(&format!("w{i}"), now, LEASE).await })
        })
        .collect();
    let mut claimed = Vec::new();
    for h in handles {
        if let Some(job) = h.await.expect("task").expect("claim") {
            claimed.push(job);
        }
    }
    let mut seen = BTreeSet::new();
    for j in &claimed {
        assert!(seen.insert(j.id), "job {} claimed twice", j.id);
        assert_eq!(j.attempts, 1);
    }
    // Whatever a claimer skipped while another held it is still claimable.
    while let Some(j) = claim(&store, "drain", now).await {
        assert!(seen.insert(j.id), "job {} claimed twice", j.id);
    }
    assert_eq!(seen, jobs);
    for id in jobs {
        let j = job(&store, ws, id).await;
        assert_eq!((j.status, j.attempts), (RunStatus::Running, 1));
        assert_eq!(run_of(&store, ws, id).await.status, RunStatus::Running);
    }
}

/// Jobs are tenant data: another workspace's job or connection is
/// `NotFound`, nothing of it changes, and jobs go with their connection and
/// workspace.
pub async fn jobs_are_tenant_isolated(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let conn_a = connection(&store, a, "test").await;
    let conn_b = connection(&store, b, "test").await;
    let t0 = at(1, 9);
    let job_a = enqueue(&store, a, conn_a, t0).await;
    let before = job(&store, a, job_a.id).await;

    assert_kind(store.get_job(b, job_a.id).await, ErrorKind::NotFound);
    assert_kind(
        store.cancel_connection_jobs(b, conn_a, "x", t0).await,
        ErrorKind::NotFound,
    );
    // B's run on A's connection.
    let crossing = queued(b, conn_a, t0);
    assert_kind(
        store.enqueue_sync(&crossing, &new_job(t0, None, 3)).await,
        ErrorKind::NotFound,
    );
    assert_kind(store.get_job(a, crossing.id).await, ErrorKind::NotFound);
    assert_kind(store.get_job(b, crossing.id).await, ErrorKind::NotFound);
    assert_eq!(job(&store, a, job_a.id).await, before);
    assert_kind(store.get_job(a, Uuid::now_v7()).await, ErrorKind::NotFound);

    // Jobs go with their connection, and with their workspace.
    let job_b = enqueue(&store, b, conn_b, t0).await;
    store
        .delete_connection(b, conn_b)
        .await
        .expect("delete connection");
    assert_kind(store.get_job(b, job_b.id).await, ErrorKind::NotFound);
    store.delete_workspace(a).await.expect("delete workspace");
    assert_kind(store.get_job(a, job_a.id).await, ErrorKind::NotFound);
    assert!(
        claim(&store, "w", t0 + secs(3600)).await.is_none(),
        "nothing left to claim"
    );
}

/// The scheduler's scan: connections of every workspace whose status is
/// `active` or `error`, ordered by id, page after page.
pub async fn scan_schedulable_connections_pages_every_workspace_by_id(store: StoreRef) {
    let mut expected = Vec::new();
    for name in ["A", "B"] {
        let ws = new_workspace(&store, name).await;
        for (connector, status) in [
            ("hubspot", ConnectionStatus::Active),
            ("gong", ConnectionStatus::Error),
            ("salesforce", ConnectionStatus::NeedsReauth),
            ("pipedrive", ConnectionStatus::Disconnected),
            ("sample", ConnectionStatus::Active),
        ] {
            let c = store
                .upsert_connection(
                    ws,
                    &NewConnection {
                        connector: connector.into(),
                        status,
                        credentials: None,
                        config: serde_json::json!({}),
                    },
                )
                .await
                .expect("connection");
            if matches!(status, ConnectionStatus::Active | ConnectionStatus::Error) {
                expected.push(c);
            }
        }
    }
    expected.sort_by_key(|c| c.id);
    assert_eq!(
        store
            .scan_schedulable_connections(None, 100)
            .await
            .expect("scan"),
        expected
    );
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .scan_schedulable_connections(after, 4)
            .await
            .expect("scan");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.into_iter().map(|c| c.id));
    }
    assert_eq!(
        seen,
        expected.iter().map(|c| c.id).collect::<Vec<_>>(),
        "pages in id order, no skips or repeats"
    );
    assert!(store
        .scan_schedulable_connections(Some(expected[expected.len() - 1].id), 10)
        .await
        .expect("scan")
        .is_empty());
}

/// A page of every record kind (and deal history) from `source`.
fn every_kind(source: &str) -> RecordBatch {
    let refs = vec![SourceRef {
        source: source.into(),
        source_id: "d1".into(),
    }];
    RecordBatch {
        users: vec![
            NewUser {
                source_id: "u1".into(),
                active: true,
                ..Default::default()
            },
            NewUser {
                source_id: "u2".into(),
                manager_source_id: Some("u1".into()),
                active: true,
                ..Default::default()
            },
        ],
        accounts: vec![NewAccount {
            source_id: "a1".into(),
            ..Default::default()
        }],
        contacts: vec![NewContact {
            source_id: "c1".into(),
            account_source_id: Some("a1".into()),
            ..Default::default()
        }],
        stages: ["open", "won"]
            .iter()
            .map(|s| NewPipelineStage {
                pipeline: "default".into(),
                stage: s.to_string(),
                category: StageCategory::Open,
                ..Default::default()
            })
            .collect(),
        deals: vec![
            deal("d1", Some(100), None),
            deal("d2", Some(200), None),
            deal("d3", None, None),
        ],
        deal_contacts: vec![NewDealContact {
            deal_source_id: "d1".into(),
            contact_source_id: "c1".into(),
            role: None,
            is_primary: true,
        }],
        deal_changes: ["open", "won"]
            .iter()
            .enumerate()
            .map(|(i, stage)| NewDealChange {
                deal_source_id: "d1".into(),
                field: DealField::Stage,
                old_value: None,
                new_value: Some(stage.to_string()),
                changed_at: at(1, 9 + i as u32),
                origin: ChangeOrigin::Vendor,
            })
            .collect(),
        conversations: vec![NewConversation {
            source_id: "call-1".into(),
            deal_refs: refs.clone(),
            ..Default::default()
        }],
        tasks: vec![NewTask {
            source_id: "t1".into(),
            deal_refs: refs.clone(),
            ..Default::default()
        }],
        documents: vec![NewDocument {
            source_id: "doc-1".into(),
            deal_refs: refs,
            ..Default::default()
        }],
        ..RecordBatch::new(source)
    }
}

/// Live (not soft-deleted) rows of every kind in a workspace.
async fn live_counts(store: &StoreRef, ws: Uuid) -> Vec<(RecordKind, u64)> {
    let mut out = Vec::new();
    for kind in RecordKind::ALL {
        out.push((kind, store.count_records(ws, kind).await.expect("count")));
    }
    out
}

/// `purge_source` hard-deletes every row of that source in that workspace
/// (every kind, deal history, soft-deleted rows) and returns how many; the
/// workspace's other sources and other workspaces keep theirs.
pub async fn purge_source_deletes_only_that_source_in_that_workspace(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    write(&store, a, &every_kind("test")).await;
    // A soft-deleted row is purged too.
    let mut deletion = RecordBatch::new("test");
    deletion.deletions = vec![Deletion {
        kind: RecordKind::Deal,
        source_id: "d3".into(),
    }];
    write(&store, a, &deletion).await;
    write(&store, a, &every_kind("other")).await;
    write(&store, b, &every_kind("test")).await;
    let a_other_deal = store
        .get_deal_by_source(a, "other", "d1")
        .await
        .expect("deal");
    let b_deal = store
        .get_deal_by_source(b, "test", "d1")
        .await
        .expect("deal");
    let b_before = live_counts(&store, b).await;
    let a_before = live_counts(&store, a).await;

    // 2 users, 1 account, 1 contact, 2 stages, 3 deals, 1 role, 1 conversation,
    // 1 task, 1 document, 2 history rows.
    assert_eq!(
        store.purge_source(a, "test").await.expect("purge"),
        15,
        "every row of the source, soft-deleted and history rows included"
    );
    for id in ["d1", "d2", "d3"] {
        assert_kind(
            store.get_deal_by_source(a, "test", id).await,
            ErrorKind::NotFound,
        );
    }
    let a_after = live_counts(&store, a).await;
    for ((kind, before), (_, after)) in a_before.iter().zip(&a_after) {
        let theirs = match kind {
            RecordKind::Deal => 2, // d3 of "test" was already soft-deleted
            RecordKind::User | RecordKind::PipelineStage => 2,
            _ => 1,
        };
        assert_eq!(
            *after,
            before - theirs,
            "{kind:?}: only the source's rows go"
        );
    }
    assert_eq!(
        store
            .deal_history(a, a_other_deal.id)
            .await
            .expect("history")
            .len(),
        2,
        "the other source keeps its history"
    );
    assert_eq!(live_counts(&store, b).await, b_before, "B is untouched");
    assert_eq!(
        store
            .deal_history(b, b_deal.id)
            .await
            .expect("history")
            .len(),
        2
    );
    assert_eq!(store.purge_source(a, "test").await.expect("again"), 0);
    assert_eq!(store.purge_source(a, "nothing").await.expect("none"), 0);

    // A purged source syncs again from scratch.
    let out = write(&store, a, &every_kind("test")).await;
    assert_eq!(out.of(RecordKind::Deal).inserted, 3);
}
