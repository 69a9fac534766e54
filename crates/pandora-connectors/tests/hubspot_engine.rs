//! The HubSpot connector through the real sync engine over SQLite: a
//! malformed page fails the run with an error naming the vendor, the
//! endpoint and the reason, the pages checkpointed before it stay, and the
//! next run resumes at the failed page.

#[path = "support/hubspot_sim.rs"]
mod sim;

use std::time::Duration;

use pandora_connectors::hubspot::{HubSpotConnector, HubSpotHosts, HubSpotTuning};
use pandora_connectors::vendor::{RateWindow, RetryPolicy};
use pandora_core::batch::RecordKind;
use pandora_core::connector::{CheckContext, SyncContext};
use pandora_core::model::{ConnectionStatus, NewConnection, NewWorkspace, SyncMode};
use pandora_core::sync::{run_sync, SyncOutcome};
use pandora_core::vault::Credentials;
use pandora_core::{ErrorKind, Pandora};
use pandora_store_sqlite::SqliteStore;
use serde_json::json;
use sim::{Sim, State};
use wiremock::ResponseTemplate;

fn quiet(_: &SyncOutcome) {}

fn tuning() -> HubSpotTuning {
    HubSpotTuning {
        page_size: 2,
        history_page_size: 2,
        search_page_size: 2,
        retry: RetryPolicy {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        budget: vec![RateWindow::new(100_000, Duration::from_secs(1))],
        search_budget: vec![RateWindow::new(100_000, Duration::from_secs(1))],
        ..HubSpotTuning::default()
    }
}

fn portal() -> State {
    State {
        owners: vec![
            sim::owner("101", "ana@example.com", "Ana", "Lopez", false),
            sim::owner("102", "ben@example.com", "Ben", "Okafor", false),
        ],
        companies: (1..=5)
            .map(|i| {
                sim::company(
                    &format!("500{i}"),
                    &format!("Company {i}"),
                    "example.com",
                    &format!("2026-03-0{i}T10:00:00.000Z"),
                )
            })
            .collect(),
        deals: vec![sim::linked(
            sim::deal(
                "9001",
                "Renewal",
                "contractsent",
                Some("900.50"),
                Some("101"),
                "2026-03-05T12:00:00.000Z",
            ),
            "5001",
            &[],
        )],
        ..State::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_fails_the_run_keeps_earlier_pages_and_the_next_run_resumes_there() {
    let (server, sim) = Sim::start(portal()).await;
    sim.fail_page(
        "/crm/v3/objects/companies",
        "NTI2",
        ResponseTemplate::new(200).set_body_raw(
            r#"{"results": [{"id": "5003", "properties": {"#,
            "application/json",
        ),
    );
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let p = Pandora::builder().store(store).build().expect("build");
    let ws = p
        .create_workspace(NewWorkspace {
            name: "acme".into(),
            ..Default::default()
        })
        .await
        .expect("workspace")
        .workspace
        .id;
    let connection = p
        .store()
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "hubspot".into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config: json!({"base_url": server.uri()}),
            },
        )
        .await
        .expect("connection");
    let connector =
        HubSpotConnector::new(HubSpotHosts::new(None, Some(&server.uri()))).with_tuning(tuning());
    let ctx = |cursors| SyncContext {
        check: CheckContext {
            workspace_id: ws,
            config: json!({}),
            credentials: Some(Credentials::from_json(&json!({"access_token": "token-1"}))),
            tokens: None,
        },
        connection_id: connection.id,
        mode: SyncMode::Incremental,
        cursors,
        started_at: pandora_core::model::now(),
    };

    let err = run_sync(
        p.store().as_ref(),
        &connector,
        &ctx(Default::default()),
        &quiet,
    )
    .await
    .expect_err("malformed page");
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(
        text.contains("hubspot")
            && text.contains("GET /crm/v3/objects/companies")
            && text.contains("malformed response")
            && text.contains("JSON"),
        "{text}"
    );
    assert!(!text.contains("token-1"));
    // Owners and the first page of companies stay, with their checkpoint.
    let count = |kind| {
        let store = p.store().clone();
        async move { store.count_records(ws, kind).await.expect("count") }
    };
    assert_eq!(count(RecordKind::User).await, 2);
    assert_eq!(count(RecordKind::Account).await, 2);
    let cursors = p
        .store()
        .get_checkpoints(ws, connection.id)
        .await
        .expect("cursors");
    assert_eq!(cursors["companies"]["list"]["after"], json!("NTI2"));

    // The next run resumes at the failed page and finishes.
    let before = sim.seen().len();
    let outcome = run_sync(p.store().as_ref(), &connector, &ctx(cursors), &quiet)
        .await
        .expect("resumed");
    let companies: Vec<_> = sim.seen()[before..]
        .iter()
        .filter(|s| s.path == "/crm/v3/objects/companies")
        .map(|s| s.query.get("after").cloned())
        .collect();
    assert_eq!(
        companies[0].as_deref(),
        Some("NTI2"),
        "resumed, not restarted"
    );
    assert_eq!(count(RecordKind::Account).await, 5);
    assert_eq!(count(RecordKind::Deal).await, 1);
    assert_eq!(count(RecordKind::PipelineStage).await, 5);
    assert_eq!(outcome.counts["accounts"].inserted, 3);
    let deal = p
        .store()
        .deals_by_source(ws, "hubspot", &["9001".to_string()])
        .await
        .expect("deal");
    assert_eq!(deal[0].fields.account_source_id.as_deref(), Some("5001"));
    assert!(
        deal[0].owner_id.is_some(),
        "owner resolved to the synced user"
    );
}
