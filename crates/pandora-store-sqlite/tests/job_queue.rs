//! The job queue on SQLite beyond the conformance suite: the claim reads the
//! partial index of unfinished jobs, and claimers of two stores on one file
//! (two processes, in effect) never take the same job.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pandora_core::model::{
    self, ConnectionStatus, NewConnection, NewJob, RunStatus, SyncMode, SyncRun, Workspace,
    WorkspaceId,
};
use pandora_core::store::{ConnectionStore, JobStore, WorkspaceStore};
use pandora_store_sqlite::SqliteStore;

async fn workspace(store: &SqliteStore) -> WorkspaceId {
    let now = model::now();
    let ws = Workspace {
        id: model::new_id(),
        name: "Acme".into(),
        settings: serde_json::json!({}),
        created_at: now,
        updated_at: now,
    };
    store.create_workspace(&ws).await.expect("create workspace");
    ws.id
}

#[tokio::test]
async fn the_claim_query_reads_the_claim_index() {
    let store = common::fresh_store().await;
    // The claim's candidate query, as in src/jobs.rs.
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN \
         SELECT workspace_id, id, kind, status, attempts, max_attempts FROM jobs \
         WHERE status IN ('queued', 'running') AND run_after <= ?1 \
           AND (status = 'queued' OR lease_until < ?1) \
         ORDER BY run_after, id LIMIT 1",
    )
    .bind(0_i64)
    .fetch_all(store.pool())
    .await
    .expect("explain");
    let plan: Vec<String> = plan.into_iter().map(|(_, _, _, detail)| detail).collect();
    let plan = plan.join("\n");
    assert!(plan.contains("USING INDEX jobs_claim"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimers_of_two_stores_on_one_file_take_each_job_once() {
    let path = common::kept_dir().join("pandora.db");
    let first = SqliteStore::open(&path).await.expect("open");
    first.migrate().await.expect("migrate");
    let second = SqliteStore::open(&path).await.expect("open again");
    let ws = workspace(&first).await;
    let now = model::now();
    let mut jobs = BTreeSet::new();
    for i in 0..8 {
        let conn = first
            .upsert_connection(
                ws,
                &NewConnection {
                    connector: format!("source-{i}"),
                    status: ConnectionStatus::Active,
                    credentials: None,
                    config: serde_json::json!({}),
                },
            )
            .await
            .expect("connection");
        let run = SyncRun {
            id: model::new_id(),
            workspace_id: ws,
            connection_id: conn.id,
            mode: SyncMode::Incremental,
            status: RunStatus::Queued,
            counts: BTreeMap::new(),
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        let job = NewJob {
            payload: serde_json::json!({}),
            max_attempts: 3,
            run_after: now,
            dedupe_key: None,
        };
        assert!(first.enqueue_sync(&run, &job).await.expect("enqueue"));
        jobs.insert(run.id);
    }
    // Each store has its own writer turn: only SQLite's lock orders them.
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let store = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                store
                    .claim_job(&format!("w{i}"), now, Duration::from_secs(60))
                    .await
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for h in handles {
        if let Some(job) = h.await.expect("task").expect("claim") {
            assert!(seen.insert(job.id), "job {} claimed twice", job.id);
        }
    }
    assert_eq!(seen, jobs, "one claim per job, none skipped");
}
