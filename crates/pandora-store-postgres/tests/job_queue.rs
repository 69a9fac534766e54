//! The job queue on PostgreSQL beyond the conformance suite: the claim reads
//! the partial index of unfinished jobs, whatever the number of finished ones.

use std::time::Duration;

use pandora_core::model::{self, JobKind, RunStatus, Workspace, WorkspaceId};
use pandora_core::store::{JobStore, WorkspaceStore};
use pandora_store_postgres::{testing, PgStore};

async fn workspace(store: &PgStore) -> WorkspaceId {
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

/// `count` skill jobs (no connection, so no run) in `status`, due before the SQL time `due`.
async fn insert_jobs(store: &PgStore, ws: WorkspaceId, count: i32, status: &str, due: &str) {
    sqlx::query(&format!(
        "INSERT INTO jobs (workspace_id, id, kind, connection_id, payload, status, attempts, \
             max_attempts, run_after, created_at, updated_at) \
         SELECT $1, gen_random_uuid(), 'skill', NULL, '{{}}', $2, 1, 3, \
             {due} - i * interval '1 second', now(), now() \
         FROM generate_series(1, $3) AS i"
    ))
    .bind(ws)
    .bind(status)
    .bind(count)
    .execute(store.pool())
    .await
    .expect("insert jobs");
}

#[tokio::test]
async fn claims_read_only_unfinished_jobs_through_the_claim_index() {
    let store = testing::fresh_store().await;
    let ws = workspace(&store).await;
    // A long history of finished jobs, all of them "due" long ago.
    for status in ["succeeded", "failed", "cancelled"] {
        insert_jobs(&store, ws, 20_000, status, "now() - interval '1 day'").await;
    }
    insert_jobs(&store, ws, 3, "queued", "now()").await;
    sqlx::query("ANALYZE jobs")
        .execute(store.pool())
        .await
        .expect("analyze");

    // The claim's candidate query, as in src/jobs.rs.
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT workspace_id, id, kind, status, attempts, max_attempts FROM jobs \
         WHERE status IN ('queued', 'running') AND run_after <= $1 \
           AND (status = 'queued' OR lease_until < $1) \
         ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(model::now())
    .fetch_all(store.pool())
    .await
    .expect("explain");
    let plan = plan.join("\n");
    assert!(plan.contains("jobs_claim_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");

    let now = model::now() + chrono::Duration::seconds(1);
    let mut claimed = Vec::new();
    while let Some(job) = store
        .claim_job("w", now, Duration::from_secs(60))
        .await
        .expect("claim")
    {
        assert_eq!(
            (job.kind, job.status, job.attempts),
            (JobKind::Skill, RunStatus::Running, 2)
        );
        claimed.push(job.run_after);
    }
    assert_eq!(claimed.len(), 3, "only the queued jobs");
    assert!(claimed.windows(2).all(|w| w[0] <= w[1]), "oldest first");
}
