//! The Salesforce connector through the real sync engine over SQLite:
//! references resolve (owners, accounts, managers), the vendor's history is
//! stored without observed duplicates, getDeleted soft-deletes, a stale
//! deletion cursor reconciles the stored ids, and a malformed page fails
//! the run while the pages checkpointed before it stay.

#[path = "support/salesforce_sim.rs"]
mod sim;

use std::time::Duration;

use chrono::{DateTime, Utc};
use pandora_connectors::salesforce::{SalesforceConnector, SalesforceHosts, SalesforceTuning};
use pandora_connectors::vendor::RetryPolicy;
use pandora_core::batch::RecordKind;
use pandora_core::connector::{CheckContext, SyncContext};
use pandora_core::model::{
    ChangeOrigin, ConnectionStatus, DealField, NewConnection, NewWorkspace, SyncMode,
};
use pandora_core::query::PageRequest;
use pandora_core::sync::{run_sync, SyncOutcome};
use pandora_core::vault::Credentials;
use pandora_core::{ErrorKind, Pandora};
use pandora_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use sim::{Sim, State};
use uuid::Uuid;
use wiremock::ResponseTemplate;

fn quiet(_: &SyncOutcome) {}

fn id(prefix: &str, i: usize) -> String {
    format!("{prefix}SIM00000000{i}AAA")
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn connector() -> SalesforceConnector {
    SalesforceConnector::new(SalesforceHosts::default()).with_tuning(SalesforceTuning {
        retry: RetryPolicy {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        ..SalesforceTuning::default()
    })
}

fn org() -> State {
    let (a, b) = (id("005", 1), id("005", 2));
    State {
        page_size: 2,
        users: vec![
            sim::user(
                &a,
                "Ana",
                "Lopez",
                None,
                Some("VP Sales"),
                "2026-03-01T09:00:00.000+0000",
            ),
            sim::user(
                &b,
                "Ben",
                "Okafor",
                Some(&a),
                Some("AE East"),
                "2026-03-02T09:00:00.000+0000",
            ),
        ],
        accounts: (1..=4)
            .map(|i| {
                sim::account(
                    &id("001", i),
                    &format!("Account {i}"),
                    None,
                    &b,
                    &format!("2026-03-0{i}T10:00:00.000+0000"),
                )
            })
            .collect(),
        contacts: vec![sim::contact(
            &id("003", 1),
            "Dana",
            "Buyer",
            Some(&id("001", 1)),
            "2026-03-01T11:00:00.000+0000",
        )],
        opportunities: vec![
            sim::opportunity(
                &id("006", 1),
                "Renewal",
                "Negotiation/Review",
                Some(900.5),
                "2026-04-30",
                &b,
                Some(&id("001", 1)),
                "2026-03-05T12:00:00.000+0000",
            ),
            sim::opportunity(
                &id("006", 2),
                "Expansion",
                "Prospecting",
                Some(300.0),
                "2026-05-31",
                &b,
                Some(&id("001", 2)),
                "2026-03-06T12:00:00.000+0000",
            ),
        ],
        history: vec![
            sim::history(
                "008SIM000000001AAA",
                &id("006", 1),
                "Prospecting",
                Some(500.0),
                "2026-04-30",
                "Pipeline",
                "2026-02-10T08:00:00.000+0000",
            ),
            sim::history(
                "008SIM000000002AAA",
                &id("006", 1),
                "Negotiation/Review",
                Some(900.5),
                "2026-04-30",
                "Forecast",
                "2026-03-05T12:00:00.000+0000",
            ),
            sim::history(
                "008SIM000000003AAA",
                &id("006", 2),
                "Prospecting",
                Some(300.0),
                "2026-05-31",
                "Pipeline",
                "2026-03-06T12:00:00.000+0000",
            ),
        ],
        contact_roles: vec![sim::contact_role(
            "00KSIM000000001AAA",
            &id("006", 1),
            &id("003", 1),
            Some("Decision Maker"),
            true,
            "2026-03-05T12:00:00.000+0000",
        )],
        ..State::default()
    }
}

struct Env {
    p: Pandora,
    ws: Uuid,
    connection: Uuid,
    uri: String,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new(uri: String) -> Env {
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
                    connector: "salesforce".into(),
                    status: ConnectionStatus::Active,
                    credentials: None,
                    config: json!({}),
                },
            )
            .await
            .expect("connection")
            .id;
        Env {
            p,
            ws,
            connection,
            uri,
            _dir: dir,
        }
    }

    async fn cursors(&self) -> std::collections::BTreeMap<String, Value> {
        self.p
            .store()
            .get_checkpoints(self.ws, self.connection)
            .await
            .expect("cursors")
    }

    async fn sync(&self, mode: SyncMode, at: &str) -> pandora_core::Result<SyncOutcome> {
        let ctx = SyncContext {
            check: CheckContext {
                workspace_id: self.ws,
                config: json!({}),
                credentials: Some(Credentials::from_json(&json!({
                    "access_token": "token-1", "refresh_token": "r-1", "instance_url": self.uri
                }))),
                tokens: None,
            },
            connection_id: self.connection,
            mode,
            cursors: self.cursors().await,
            started_at: t(at),
        };
        run_sync(self.p.store().as_ref(), &connector(), &ctx, &quiet).await
    }

    async fn count(&self, kind: RecordKind) -> u64 {
        self.p
            .store()
            .count_records(self.ws, kind)
            .await
            .expect("count")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_resolve_references_store_history_soft_delete_and_reconcile() {
    let (server, sim) = Sim::start(org()).await;
    let env = Env::new(server.uri()).await;

    // 1. The first sync: everything, with references resolved.
    let first = env
        .sync(SyncMode::Incremental, "2026-03-10T00:00:00Z")
        .await
        .expect("first sync");
    assert_eq!(env.count(RecordKind::User).await, 2);
    assert_eq!(env.count(RecordKind::Account).await, 4);
    assert_eq!(env.count(RecordKind::Contact).await, 1);
    assert_eq!(env.count(RecordKind::PipelineStage).await, 6);
    assert_eq!(env.count(RecordKind::Deal).await, 2);
    assert_eq!(env.count(RecordKind::DealContact).await, 1);
    assert_eq!(first.observed_changes, 0);
    let deals = env
        .p
        .store()
        .deals_by_source(env.ws, "salesforce", &[id("006", 1)])
        .await
        .expect("deal");
    let renewal = &deals[0];
    assert!(
        renewal.owner_id.is_some(),
        "OwnerId resolved to the synced user"
    );
    assert!(
        renewal.account_id.is_some(),
        "AccountId resolved to the synced account"
    );
    assert_eq!(
        renewal.fields.amount,
        Some("900.5".parse().expect("decimal"))
    );
    let users = env
        .p
        .store()
        .list_users(env.ws, &PageRequest::first(10))
        .await
        .expect("users");
    let ben = users
        .data
        .iter()
        .find(|u| u.fields.source_id == id("005", 2))
        .expect("ben");
    let ana = users
        .data
        .iter()
        .find(|u| u.fields.source_id == id("005", 1))
        .expect("ana");
    assert_eq!(
        ben.manager_id,
        Some(ana.id),
        "ManagerId resolved for rollups"
    );
    let history = env
        .p
        .store()
        .deal_history(env.ws, renewal.id)
        .await
        .expect("history");
    let stages: Vec<_> = history
        .iter()
        .filter(|c| c.field == DealField::Stage)
        .map(|c| (c.new_value.clone(), c.changed_at, c.origin))
        .collect();
    assert_eq!(
        stages,
        vec![
            (
                Some("Prospecting".into()),
                t("2026-02-10T08:00:00Z"),
                ChangeOrigin::Vendor
            ),
            (
                Some("Negotiation/Review".into()),
                t("2026-03-05T12:00:00Z"),
                ChangeOrigin::Vendor
            ),
        ]
    );
    assert!(history.iter().all(|c| c.origin == ChangeOrigin::Vendor));

    // 2. Salesforce deletes an account and an opportunity, and the renewal's
    //    close date moves (a new history row); the next run soft-deletes from
    //    the delete log and stores only the one new change, from the vendor.
    {
        let mut s = sim.state();
        s.delete("Account", &id("001", 3), "2026-03-11T10:00:00.000+0000");
        s.delete("Opportunity", &id("006", 2), "2026-03-11T11:00:00.000+0000");
        s.opportunities[0]["CloseDate"] = json!("2026-05-15");
        s.opportunities[0]["SystemModstamp"] = json!("2026-03-11T09:00:00.000+0000");
        let row = sim::history(
            "008SIM000000004AAA",
            &id("006", 1),
            "Negotiation/Review",
            Some(900.5),
            "2026-05-15",
            "Forecast",
            "2026-03-11T09:00:00.000+0000",
        );
        s.history.push(row);
    }
    let second = env
        .sync(SyncMode::Incremental, "2026-03-12T00:00:00Z")
        .await
        .expect("second sync");
    assert_eq!(env.count(RecordKind::Account).await, 3);
    assert_eq!(env.count(RecordKind::Deal).await, 1);
    assert_eq!(second.counts["accounts"].deleted, 1);
    assert_eq!(second.changes_inserted, 1, "the new close date only");
    assert_eq!(second.observed_changes, 0, "the vendor reported it");
    let close: Vec<_> = env
        .p
        .store()
        .deal_history(env.ws, renewal.id)
        .await
        .expect("history")
        .into_iter()
        .filter(|c| c.field == DealField::CloseDate)
        .map(|c| (c.old_value, c.new_value, c.changed_at))
        .collect();
    assert_eq!(
        close.last().cloned(),
        Some((
            Some("2026-04-30".to_string()),
            Some("2026-05-15".to_string()),
            t("2026-03-11T09:00:00Z")
        ))
    );
    let gone = env
        .p
        .store()
        .deals_by_source(env.ws, "salesforce", &[id("006", 2)])
        .await
        .expect("deal");
    assert!(gone[0].deleted_at.is_some(), "soft-deleted, still readable");

    // 3. The delete log is purged past the cursor and account 1 vanished
    //    without a trace: the run lists every id and reconciles.
    {
        let mut s = sim.state();
        s.earliest_available = "2026-03-13T00:00:00.000+0000".into();
        s.accounts.retain(|a| a["Id"] != id("001", 1));
    }
    let third = env
        .sync(SyncMode::Incremental, "2026-03-14T00:00:00Z")
        .await
        .expect("third sync");
    assert_eq!(env.count(RecordKind::Account).await, 2);
    assert_eq!(third.counts["accounts"].deleted, 1);
    assert_eq!(env.count(RecordKind::Deal).await, 1, "nothing else went");
    assert_eq!(env.count(RecordKind::Contact).await, 1);
    assert_eq!(
        env.cursors().await["accounts"]["deleted_since"],
        json!("2026-03-14T00:00:00Z")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_fails_the_run_keeps_earlier_pages_and_the_next_run_resumes_there() {
    let (server, sim) = Sim::start(org()).await;
    sim.fail_object(
        "/services/data/v62.0/query/0r8SIM",
        "Account",
        1,
        ResponseTemplate::new(200).set_body_raw(
            r#"{"totalSize": 4, "done": true, "records": [{"#,
            "application/json",
        ),
    );
    let env = Env::new(server.uri()).await;
    let err = env
        .sync(SyncMode::Incremental, "2026-03-10T00:00:00Z")
        .await
        .expect_err("malformed page");
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(
        text.contains("salesforce")
            && text.contains("GET /services/data/v62.0/query/… (FROM Account)")
            && text.contains("malformed response")
            && text.contains("JSON"),
        "{text}"
    );
    assert!(!text.contains("token-1"));
    // Users and the first page of accounts stay, with their checkpoint.
    assert_eq!(env.count(RecordKind::User).await, 2);
    assert_eq!(env.count(RecordKind::Account).await, 2);
    let cursors = env.cursors().await;
    assert_eq!(cursors["accounts"]["since"]["id"], json!(id("001", 2)));

    // The next run resumes after the last account stored and finishes.
    sim.state().seen.clear();
    let outcome = env
        .sync(SyncMode::Incremental, "2026-03-10T01:00:00Z")
        .await
        .expect("resumed");
    let soql = sim.soql_for("Account");
    assert!(
        soql[0].contains(&format!(
            "WHERE SystemModstamp > 2026-03-02T09:55:00Z OR (SystemModstamp = 2026-03-02T09:55:00Z AND Id > '{}')",
            id("001", 2)
        )),
        "resumed, not restarted: {}",
        soql[0]
    );
    assert_eq!(env.count(RecordKind::Account).await, 4);
    assert_eq!(env.count(RecordKind::Deal).await, 2);
    assert_eq!(outcome.counts["accounts"].inserted, 2);
    // The interrupted full read left no deletion cursor: the ids were listed and reconciled.
    assert!(soql.contains(&"SELECT Id FROM Account ORDER BY Id ASC".to_string()));
    assert_eq!(
        env.cursors().await["accounts"]["deleted_since"],
        json!("2026-03-10T01:00:00Z")
    );
}
