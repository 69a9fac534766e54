//! `pandora sync`: one sync of the `sample` source in the foreground, through the real binary.

use std::path::Path;
use std::process::Output;

mod common;

use pandora_core::model::{ConnectionStatus, NewConnection, NewWorkspace};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use uuid::Uuid;

fn pandora(dir: &Path, args: &[&str]) -> Output {
    common::pandora(dir)
        .args(args)
        .output()
        .expect("run pandora")
}

/// A workspace with a `sample` connection of 150 deals, in `dir/pandora.db`.
async fn seed(dir: &Path) -> Uuid {
    let store = SqliteStore::open(dir.join("pandora.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let p = Pandora::builder()
        .store(store.clone())
        .build()
        .expect("build");
    let ws = p
        .create_workspace(NewWorkspace {
            name: "Acme".into(),
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
                config: serde_json::json!({"deals": 150, "seed": 3, "start": "2026-01-05"}),
            },
        )
        .await
        .expect("connection");
    store.close().await;
    ws
}

#[tokio::test]
async fn sync_runs_the_sample_source_and_reports_the_run() {
    let dir = tempfile::tempdir().expect("dir");
    let ws = seed(dir.path()).await.to_string();

    let first = pandora(dir.path(), &["sync", &ws, "sample"]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("(Full mode) succeeded"),
        "the first run is full: {stdout}"
    );
    let deals = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("deals"))
        .expect("deals line");
    assert!(deals.contains("inserted       150"), "{deals}");

    let second = pandora(dir.path(), &["sync", &ws, "sample"]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("(Incremental mode) succeeded"), "{stdout}");

    let unknown = pandora(dir.path(), &["sync", &ws, "hubspott"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("known: hubspot, salesforce, sample"),
        "{stderr}"
    );

    let unconnected = pandora(dir.path(), &["sync", &ws, "hubspot"]);
    let stderr = String::from_utf8_lossy(&unconnected.stderr);
    assert_eq!(unconnected.status.code(), Some(1));
    assert!(stderr.contains("connection hubspot not found"), "{stderr}");

    let bad = pandora(dir.path(), &["sync", "not-a-uuid", "sample"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "clap rejects a bad workspace id"
    );
}
