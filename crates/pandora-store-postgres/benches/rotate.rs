//! Time to rotate the master key over 100,000 stored credentials (re-wrap
//! every data key, compare-and-swap per row), against a plain pass that only
//! opens every credential (`verify`), measured in the same run.
//!
//! ```text
//! cargo bench -p pandora-store-postgres --bench rotate
//! PANDORA_BENCH_CONNECTIONS=10000 cargo bench -p pandora-store-postgres --bench rotate
//! ```

use std::time::Instant;

use pandora_core::model::{self, Workspace};
use pandora_core::store::{CredentialStore, WorkspaceStore};
use pandora_core::vault::maintenance::{self, RunOptions};
use pandora_core::vault::{Binding, CredentialVault, Credentials, LocalVault, MasterKey};
use pandora_store_postgres::{testing, PgStore};

const PER_WORKSPACE: usize = 1_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    runtime.block_on(run());
}

fn no_progress(_: u64) {}

async fn run() {
    let total: usize = std::env::var("PANDORA_BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let url = testing::fresh_database_url().await;
    let store = PgStore::connect_with(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let old = LocalVault::new(MasterKey::from_bytes(&[1u8; 32]));
    let ring = LocalVault::new(MasterKey::from_bytes(&[2u8; 32]))
        .with_previous([MasterKey::from_bytes(&[1u8; 32])]);

    // Load: connections sealed under the old key, inserted in bulk.
    let load = Instant::now();
    let creds = Credentials::from_json(&serde_json::json!({
        "access_token": "x".repeat(120), "refresh_token": "y".repeat(40)
    }));
    let mut made = 0;
    while made < total {
        let now = model::now();
        let ws = Workspace {
            id: model::new_id(),
            name: format!("ws-{made}"),
            settings: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        };
        store
            .create_workspace(&ws)
            .await
            .unwrap_or_else(|e| panic!("workspace: {e}"));
        let n = PER_WORKSPACE.min(total - made);
        let mut ids = Vec::with_capacity(n);
        let mut connectors = Vec::with_capacity(n);
        let mut sealed = Vec::with_capacity(n);
        for i in 0..n {
            let id = model::new_id();
            let b = Binding {
                workspace_id: ws.id,
                connection_id: id,
            };
            sealed.push(
                old.seal(b, &creds)
                    .await
                    .unwrap_or_else(|e| panic!("seal: {e}"))
                    .0,
            );
            ids.push(id);
            connectors.push(format!("c{i}"));
        }
        sqlx::query(
            "INSERT INTO connections (workspace_id, id, connector, status, credentials, config, created_at, updated_at) \
             SELECT $1, u.id, u.connector, 'active', u.credentials, '{}'::jsonb, now(), now() \
             FROM unnest($2::uuid[], $3::text[], $4::text[]) AS u(id, connector, credentials)",
        )
        .bind(ws.id)
        .bind(&ids)
        .bind(&connectors)
        .bind(&sealed)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("insert: {e}"));
        made += n;
    }
    let load = load.elapsed();
    assert_eq!(
        store.count_credentials().await.expect("count") as usize,
        total
    );

    let t = Instant::now();
    let before = maintenance::verify(&store, &ring, RunOptions::default(), &no_progress)
        .await
        .expect("verify");
    let verify_secs = t.elapsed().as_secs_f64();
    assert_eq!(before.failed.len(), 0);

    let t = Instant::now();
    let report = maintenance::rotate_key(&store, &ring, RunOptions::default(), &no_progress)
        .await
        .expect("rotate");
    let rotate_secs = t.elapsed().as_secs_f64();
    assert_eq!(report.changed as usize, total);
    assert!(report.failed.is_empty());

    let new_only = LocalVault::new(MasterKey::from_bytes(&[2u8; 32]));
    let after = maintenance::verify(&store, &new_only, RunOptions::default(), &no_progress)
        .await
        .expect("verify");
    assert_eq!((after.already as usize, after.failed.len()), (total, 0));

    println!(
        "key rotation on PostgreSQL, {total} connections (loaded in {:.1} s)",
        load.as_secs_f64()
    );
    println!(
        "  rotate-key  {rotate_secs:>8.2} s  ({:>8.0} credentials/s)",
        total as f64 / rotate_secs
    );
    println!("  verify      {verify_secs:>8.2} s  ({:>8.0} credentials/s)  baseline: open every credential, no writes", total as f64 / verify_secs);
    println!("  rotate / verify = {:.1}x", rotate_secs / verify_secs);
}
