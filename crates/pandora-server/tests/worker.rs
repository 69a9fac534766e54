//! `pandora worker` processes sharing one real PostgreSQL queue: every job
//! runs exactly once, and a job whose worker is killed is claimed again once
//! its lease runs out.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;

use pandora_core::model::{
    ConnectionStatus, JobKind, NewConnection, NewWorkspace, RunStatus, SyncMode,
};
use pandora_core::Pandora;
use pandora_store_postgres::PgStore;
use uuid::Uuid;

/// `pandora worker` on `url`, its logs in `log`, named `name` in job records.
fn start_worker(dir: &Path, url: &str, name: &str, lease_secs: u32, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    common::pandora(dir)
        .arg("worker")
        .env("DATABASE_URL", url)
        .env("HOSTNAME", name)
        .env("PANDORA_SCHEDULER", "off")
        .env("PANDORA_WORKER_CONCURRENCY", "2")
        .env("PANDORA_JOB_LEASE_SECONDS", lease_secs.to_string())
        .env("RUST_LOG", "info,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("start pandora worker")
}

async fn facade(url: &str) -> Pandora {
    let store = PgStore::connect(url).await.expect("connect");
    Pandora::builder()
        .store(store)
        .connectors(pandora_connectors::all())
        .build()
        .expect("build")
}

/// A workspace with a `sample` connection of `deals` deals; returns its id.
async fn sample_workspace(p: &Pandora, name: &str, deals: u32, seed: u32) -> Uuid {
    let ws = p
        .create_workspace(NewWorkspace {
            name: name.into(),
            ..Default::default()
        })
        .await
        .expect("workspace")
        .workspace
        .id;
    p.store()
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "sample".into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config: serde_json::json!({"deals": deals, "seed": seed}),
            },
        )
        .await
        .expect("connection");
    ws
}

/// Waits (up to `limit`) until `done` holds, checking every 200 ms.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The job ids a worker's log says it claimed, in order.
fn claimed(log: &Path) -> Vec<Uuid> {
    let text = std::fs::read_to_string(log).expect("read log");
    text.lines()
        .filter(|l| l.contains("job claimed"))
        .filter_map(|l| {
            let at = l.find("job_id=")? + "job_id=".len();
            Uuid::parse_str(l.get(at..at + 36)?).ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_run_each_of_fifty_jobs_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let url = pandora_store_postgres::testing::fresh_database_url().await;
    let p = facade(&url).await;
    let mut runs = BTreeMap::new();
    for i in 0..50u32 {
        let ws = sample_workspace(&p, &format!("Tenant {i}"), 100, i).await;
        let run = p
            .enqueue_sync(ws, "sample", SyncMode::Incremental)
            .await
            .expect("enqueue");
        runs.insert(run.id, ws);
    }
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let mut a = start_worker(dir.path(), &url, "worker-a", 30, &log_a);
    let mut b = start_worker(dir.path(), &url, "worker-b", 30, &log_b);

    let store = p.store().clone();
    let check = runs.clone();
    wait_for(Duration::from_secs(240), "50 finished runs", || {
        let store = store.clone();
        let check = check.clone();
        async move {
            for (id, ws) in &check {
                match store.get_sync_run(*ws, *id).await {
                    Ok(r) if r.status.is_finished() => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();

    let (by_a, by_b) = (claimed(&log_a), claimed(&log_b));
    let mut all: Vec<Uuid> = by_a.iter().chain(&by_b).copied().collect();
    all.sort();
    let expected: Vec<Uuid> = runs.keys().copied().collect();
    assert_eq!(
        all, expected,
        "every job claimed exactly once over both workers"
    );
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both workers took jobs: {} and {}",
        by_a.len(),
        by_b.len()
    );
    for (id, ws) in &runs {
        let run = store.get_sync_run(*ws, *id).await.expect("run");
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
        assert_eq!(run.mode, SyncMode::Full, "a first run is full");
        assert_eq!(run.counts["deals"].inserted, 100);
        let job = store.get_job(*ws, *id).await.expect("job");
        assert_eq!(job.kind, JobKind::Sync);
        assert_eq!(job.attempts, 1, "job {id} ran once");
        let worker = job.worker.expect("worker recorded");
        let expected_worker = if by_a.contains(id) {
            "worker-a"
        } else {
            "worker-b"
        };
        assert!(worker.starts_with(expected_worker), "{worker}");
        let conn = store
            .get_connection(*ws, "sample")
            .await
            .expect("connection");
        assert!(conn.last_sync_at.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_job_is_retried_once_its_lease_runs_out() {
    let dir = tempfile::tempdir().expect("dir");
    let url = pandora_store_postgres::testing::fresh_database_url().await;
    let p = facade(&url).await;
    let deals = 4000u64;
    let ws = sample_workspace(&p, "Big", deals as u32, 7).await;
    let run = p
        .enqueue_sync(ws, "sample", SyncMode::Full)
        .await
        .expect("enqueue");
    let store = p.store().clone();

    let lease = 4u32;
    let log_a = dir.path().join("a.log");
    let mut a = start_worker(dir.path(), &url, "doomed", lease, &log_a);
    // Kill it mid-sync: some deals written, not all.
    wait_for(Duration::from_secs(120), "the first pages", || {
        let store = store.clone();
        async move {
            let n = store
                .count_records(ws, pandora_core::batch::RecordKind::Deal)
                .await
                .expect("count");
            n > 0
        }
    })
    .await;
    a.kill().expect("kill worker");
    a.wait().expect("reap worker");
    let killed_at = chrono::Utc::now();
    let written = store
        .count_records(ws, pandora_core::batch::RecordKind::Deal)
        .await
        .expect("count");
    assert!(
        written < deals,
        "killed before the end ({written} of {deals} deals)"
    );
    let job = store.get_job(ws, run.id).await.expect("job");
    assert_eq!(
        job.status,
        RunStatus::Running,
        "the dead worker's job still looks running"
    );
    assert_eq!(job.attempts, 1);
    let lease_until = job.lease_until.expect("lease");

    let log_b = dir.path().join("b.log");
    let mut b = start_worker(dir.path(), &url, "rescuer", lease, &log_b);
    wait_for(
        Duration::from_secs(240),
        "the retried run to finish",
        || {
            let store = store.clone();
            async move {
                store
                    .get_sync_run(ws, run.id)
                    .await
                    .is_ok_and(|r| r.status.is_finished())
            }
        },
    )
    .await;
    let _ = b.kill();
    let _ = b.wait();

    let finished = store.get_sync_run(ws, run.id).await.expect("run");
    assert_eq!(
        finished.status,
        RunStatus::Succeeded,
        "{:?}",
        finished.error
    );
    let job = store.get_job(ws, run.id).await.expect("job");
    assert_eq!(job.attempts, 2, "claimed again after the lease ran out");
    assert!(job
        .worker
        .as_deref()
        .is_some_and(|w| w.starts_with("rescuer")));
    assert!(
        job.updated_at >= lease_until,
        "not claimed before the lease ran out"
    );
    assert!(job.updated_at > killed_at - chrono::Duration::seconds(1));
    assert_eq!(claimed(&log_b), vec![run.id]);
    assert_eq!(
        store
            .count_records(ws, pandora_core::batch::RecordKind::Deal)
            .await
            .expect("count"),
        deals,
        "every deal once"
    );
    let conn = store
        .get_connection(ws, "sample")
        .await
        .expect("connection");
    assert!(conn.last_sync_at.is_some());
}
