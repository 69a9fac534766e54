//! The HubSpot connector against a local HubSpot (`support/hubspot_sim.rs`):
//! every stream across pages, stage mapping, history, custom properties,
//! archived records, incremental search and its 10,000-result cap, token
//! refresh, rate limits, retries, malformed pages, and the check. No test
//! reaches HubSpot.

#[path = "support/hubspot_sim.rs"]
mod sim;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_connectors::hubspot::{HubSpotConnector, HubSpotHosts, HubSpotTuning};
use pandora_connectors::vendor::{RateWindow, RetryPolicy};
use pandora_core::auth::SecretToken;
use pandora_core::batch::{RecordBatch, RecordKind};
use pandora_core::connector::{
    CheckContext, Connector, RecordSink, StreamCheckpoint, SyncContext, TokenSource,
};
use pandora_core::model::{ChangeOrigin, DealField, StageCategory, SyncMode};
use pandora_core::vault::Credentials;
use pandora_core::ErrorKind;
use serde_json::{json, Value};
use sim::{Sim, State};
use uuid::Uuid;
use wiremock::ResponseTemplate;

/// Small pages so every stream spans several; no pacing; fast retries.
fn tuning() -> HubSpotTuning {
    HubSpotTuning {
        page_size: 2,
        history_page_size: 2,
        search_page_size: 2,
        search_result_cap: 10_000,
        search_overlap: chrono::Duration::minutes(5),
        retry: RetryPolicy {
            max_attempts: 4,
            max_throttled: 5,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(40),
            deadline: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(5),
        },
        budget: vec![RateWindow::new(100_000, Duration::from_secs(1))],
        search_budget: vec![RateWindow::new(100_000, Duration::from_secs(1))],
    }
}

fn connector(uri: &str, tuning: HubSpotTuning) -> HubSpotConnector {
    HubSpotConnector::new(HubSpotHosts::new(Some(uri), Some(uri))).with_tuning(tuning)
}

fn check_ctx(uri: &str, token: &str) -> CheckContext {
    CheckContext {
        workspace_id: Uuid::now_v7(),
        config: json!({"base_url": uri}),
        credentials: Some(Credentials::from_json(&json!({"access_token": token}))),
        tokens: None,
    }
}

fn ctx(uri: &str, mode: SyncMode, cursors: BTreeMap<String, Value>) -> SyncContext {
    SyncContext {
        check: check_ctx(uri, "token-1"),
        connection_id: Uuid::now_v7(),
        mode,
        cursors,
        started_at: t("2026-03-10T00:00:00.000Z"),
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

/// Keeps every page pushed; fails the push of page `fail_at` when set.
#[derive(Default)]
struct MemSink {
    pages: Vec<(RecordBatch, Option<StreamCheckpoint>)>,
}

#[async_trait]
impl RecordSink for MemSink {
    async fn push(
        &mut self,
        page: RecordBatch,
        checkpoint: Option<StreamCheckpoint>,
    ) -> pandora_core::Result<()> {
        page.prepare()?;
        self.pages.push((page, checkpoint));
        Ok(())
    }
}

impl MemSink {
    fn all(&self) -> RecordBatch {
        let mut b = RecordBatch::new("hubspot");
        for (p, _) in &self.pages {
            b.users.extend(p.users.clone());
            b.accounts.extend(p.accounts.clone());
            b.contacts.extend(p.contacts.clone());
            b.stages.extend(p.stages.clone());
            b.deals.extend(p.deals.clone());
            b.deal_contacts.extend(p.deal_contacts.clone());
            b.deal_changes.extend(p.deal_changes.clone());
            b.deletions.extend(p.deletions.clone());
        }
        b
    }

    /// The last checkpoint of each stream.
    fn cursors(&self) -> BTreeMap<String, Value> {
        self.pages
            .iter()
            .filter_map(|(_, c)| c.clone())
            .map(|c| (c.stream, c.cursor))
            .collect()
    }
}

fn portal() -> State {
    let mut s = State {
        owners: vec![
            sim::owner("101", "ana@example.com", "Ana", "Lopez", false),
            sim::owner("102", "ben@example.com", "Ben", "Okafor", false),
            sim::owner("103", "cy@example.com", "Cy", "Berg", false),
            sim::owner("104", "old@example.com", "Old", "Rep", true),
        ],
        companies: (1..=5)
            .map(|i| {
                sim::company(
                    &format!("500{i}"),
                    &format!("Company {i}"),
                    &format!("c{i}.example.com"),
                    &format!("2026-03-0{i}T10:00:00.000Z"),
                )
            })
            .collect(),
        contacts: (1..=3)
            .map(|i| {
                sim::contact(
                    &format!("700{i}"),
                    &format!("First{i}"),
                    "Buyer",
                    Some("5001"),
                    &format!("2026-03-0{i}T11:00:00.000Z"),
                )
            })
            .collect(),
        deal_properties: sim::deal_property_defs(&["region", "competitor"]),
        ..State::default()
    };
    let d1 = sim::with_history(
        sim::with_history(
            sim::with_property(
                sim::linked(
                    sim::deal(
                        "9001",
                        "Big renewal",
                        "closedwon",
                        Some("5000.00"),
                        Some("101"),
                        "2026-03-05T12:00:00.000Z",
                    ),
                    "5002",
                    &["7001", "7002"],
                ),
                "region",
                "EMEA",
            ),
            "dealstage",
            &[
                (Some("closedwon"), "2026-03-05T12:00:00.000Z"),
                (Some("contractsent"), "2026-03-03T12:00:00.000Z"),
                (Some("appointmentscheduled"), "2026-02-01T08:00:00.000Z"),
            ],
        ),
        "amount",
        &[
            (Some("5000.00"), "2026-03-04T12:00:00.000Z"),
            (Some("4000"), "2026-02-01T08:00:00.000Z"),
        ],
    );
    s.deals = vec![
        d1,
        sim::deal(
            "9002",
            "Lost one",
            "closedlost",
            Some("1200"),
            Some("102"),
            "2026-03-06T12:00:00.000Z",
        ),
        sim::deal(
            "9003",
            "Open one",
            "qualifiedtobuy",
            None,
            Some("101"),
            "2026-03-07T12:00:00.000Z",
        ),
        sim::archived(
            sim::deal(
                "9004",
                "Gone",
                "appointmentscheduled",
                Some("10"),
                None,
                "2026-03-01T12:00:00.000Z",
            ),
            "2026-03-08T09:00:00.000Z",
        ),
        sim::archived(
            sim::deal(
                "9005",
                "Long gone",
                "appointmentscheduled",
                None,
                None,
                "2026-02-01T12:00:00.000Z",
            ),
            "2026-03-02T09:00:00.000Z",
        ),
    ];
    s
}

#[tokio::test]
async fn a_full_sync_reads_every_stream_across_pages_with_the_bearer_token() {
    let (server, sim) = Sim::start(portal()).await;
    let c = connector(&server.uri(), tuning());
    let mut sink = MemSink::default();
    c.sync(
        &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
        &mut sink,
    )
    .await
    .expect("sync");
    let all = sink.all();
    assert_eq!(all.users.len(), 4);
    assert!(
        !all.users
            .iter()
            .find(|u| u.source_id == "104")
            .expect("old")
            .active
    );
    assert_eq!(all.users[0].team.as_deref(), Some("Enterprise"));
    assert_eq!(all.accounts.len(), 5);
    assert_eq!(all.contacts.len(), 3);
    assert_eq!(all.contacts[0].account_source_id.as_deref(), Some("5001"));
    assert_eq!(all.stages.len(), 5);
    assert_eq!(all.deals.len(), 3);
    let deleted: Vec<_> = all
        .deletions
        .iter()
        .map(|d| (d.kind, d.source_id.as_str()))
        .collect();
    assert_eq!(
        deleted,
        vec![(RecordKind::Deal, "9004"), (RecordKind::Deal, "9005")],
        "the archived deals"
    );

    // Multi-page: owners, companies, contacts and deals each took several pages with `after`.
    for prefix in [
        "/crm/v3/owners",
        "/crm/v3/objects/companies",
        "/crm/v3/objects/contacts",
        "/crm/v3/objects/deals",
    ] {
        let seen = sim.seen_under(prefix);
        assert!(seen.len() >= 3, "{prefix}: {}", seen.len());
        assert!(
            seen.iter().any(|s| s.query.contains_key("after")),
            "{prefix} paged with after"
        );
    }
    // Every request carried the token as a bearer.
    assert!(sim
        .seen()
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer token-1")));
    // Deals were listed with their history (50 at most per page) and associations.
    let deal_list = sim.seen_under("/crm/v3/objects/deals");
    let live = deal_list
        .iter()
        .find(|s| s.query.get("archived").map(String::as_str) == Some("false"))
        .expect("live list");
    assert_eq!(
        live.query["propertiesWithHistory"],
        "dealstage,amount,closedate,hubspot_owner_id"
    );
    assert_eq!(live.query["associations"], "companies,contacts");
    assert!(
        live.query["properties"].split(',').any(|p| p == "region"),
        "custom properties asked for"
    );

    // The final cursors: each object stream caught up to the run start.
    let cursors = sink.cursors();
    for s in ["companies", "contacts", "deals"] {
        assert_eq!(
            cursors[s]["since"]["updated_at"],
            json!("2026-03-10T00:00:00Z"),
            "{s}"
        );
        assert!(cursors[s].get("list").is_none());
    }
    assert!(cursors.contains_key("owners") && cursors.contains_key("pipelines"));
}

#[tokio::test]
async fn stages_map_to_won_lost_and_open_from_string_metadata() {
    let (server, _sim) = Sim::start(portal()).await;
    let mut sink = MemSink::default();
    connector(&server.uri(), tuning())
        .sync(
            &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
            &mut sink,
        )
        .await
        .expect("sync");
    let all = sink.all();
    let stage = |id: &str| {
        all.stages
            .iter()
            .find(|s| s.stage == id)
            .expect("stage")
            .clone()
    };
    assert_eq!(stage("closedwon").category, StageCategory::Won);
    assert_eq!(stage("closedwon").probability, Some(1.0));
    assert_eq!(stage("closedlost").category, StageCategory::Lost);
    assert_eq!(stage("closedlost").probability, Some(0.0));
    assert_eq!(stage("qualifiedtobuy").category, StageCategory::Open);
    assert_eq!(stage("qualifiedtobuy").display_order, Some(1));
    assert_eq!(
        stage("qualifiedtobuy").pipeline_label.as_deref(),
        Some("Sales Pipeline")
    );
    let deal = |id: &str| {
        all.deals
            .iter()
            .find(|d| d.source_id == id)
            .expect("deal")
            .clone()
    };
    assert_eq!(deal("9001").stage_category, StageCategory::Won);
    assert_eq!(deal("9002").stage_category, StageCategory::Lost);
    let open = deal("9003");
    assert_eq!(
        (open.stage_category, open.stage_order, open.probability),
        (StageCategory::Open, Some(1), Some(0.4))
    );
    assert_eq!(open.stage_label.as_deref(), Some("Qualified To Buy"));
}

#[tokio::test]
async fn history_newest_first_becomes_field_changes_and_custom_properties_land_on_the_deal() {
    let (server, _sim) = Sim::start(portal()).await;
    let mut sink = MemSink::default();
    connector(&server.uri(), tuning())
        .sync(
            &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
            &mut sink,
        )
        .await
        .expect("sync");
    let all = sink.all();
    let big = all
        .deals
        .iter()
        .find(|d| d.source_id == "9001")
        .expect("deal");
    assert_eq!(big.properties, json!({"region": "EMEA"}));
    assert_eq!(
        big.owner_source_id.as_deref(),
        Some("101"),
        "hubspot_owner_id is the owner id"
    );
    assert_eq!(big.account_source_id.as_deref(), Some("5002"));
    assert_eq!(big.amount, Some("5000".parse().expect("decimal")));
    let stages: Vec<(Option<&str>, Option<&str>, DateTime<Utc>)> = all
        .deal_changes
        .iter()
        .filter(|c| c.deal_source_id == "9001" && c.field == DealField::Stage)
        .map(|c| (c.old_value.as_deref(), c.new_value.as_deref(), c.changed_at))
        .collect();
    assert_eq!(
        stages,
        vec![
            (
                None,
                Some("appointmentscheduled"),
                t("2026-02-01T08:00:00Z")
            ),
            (
                Some("appointmentscheduled"),
                Some("contractsent"),
                t("2026-03-03T12:00:00Z")
            ),
            (
                Some("contractsent"),
                Some("closedwon"),
                t("2026-03-05T12:00:00Z")
            ),
        ]
    );
    let amounts: Vec<_> = all
        .deal_changes
        .iter()
        .filter(|c| c.deal_source_id == "9001" && c.field == DealField::Amount)
        .map(|c| c.new_value.clone())
        .collect();
    assert_eq!(
        amounts,
        vec![Some("4000".to_string()), Some("5000".to_string())]
    );
    assert!(all
        .deal_changes
        .iter()
        .all(|c| c.origin == ChangeOrigin::Vendor));
    let roles: HashSet<_> = all
        .deal_contacts
        .iter()
        .filter(|r| r.deal_source_id == "9001")
        .map(|r| r.contact_source_id.clone())
        .collect();
    assert_eq!(
        roles,
        HashSet::from(["7001".to_string(), "7002".to_string()])
    );
}

#[tokio::test]
async fn an_incremental_sync_searches_only_what_changed_and_soft_deletes_newly_archived() {
    let (server, sim) = Sim::start(portal()).await;
    let c = connector(&server.uri(), tuning());
    let mut first = MemSink::default();
    c.sync(
        &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
        &mut first,
    )
    .await
    .expect("full");
    // After the full sync: one deal modified, one company modified, one deal archived.
    {
        let mut s = sim.state();
        s.deals[2]["properties"]["hs_lastmodifieddate"] = json!("2026-03-11T08:00:00.000Z");
        s.deals[2]["properties"]["dealstage"] = json!("contractsent");
        s.companies[4]["properties"]["hs_lastmodifieddate"] = json!("2026-03-11T09:30:00.000Z");
        s.companies[4]["properties"]["name"] = json!("Renamed");
        let gone = sim::archived(s.deals[1].clone(), "2026-03-11T10:00:00.000Z");
        s.deals[1] = gone;
        s.seen.clear();
    }
    let mut second = MemSink::default();
    let mut run = ctx(&server.uri(), SyncMode::Incremental, first.cursors());
    run.started_at = t("2026-03-12T00:00:00Z");
    c.sync(&run, &mut second).await.expect("incremental");

    let searches = sim.seen_under("/crm/v3/objects/deals/search");
    assert!(!searches.is_empty());
    let body = searches[0].body.clone().expect("body");
    // Since the full sync started (2026-03-10T00:00:00Z) minus the 5-minute overlap.
    let expected = t("2026-03-09T23:55:00Z").timestamp_millis().to_string();
    assert_eq!(
        body["filterGroups"],
        json!([{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": expected}]}])
    );
    assert_eq!(
        body["sorts"],
        json!([{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}])
    );
    let contacts = sim.seen_under("/crm/v3/objects/contacts/search");
    assert_eq!(
        contacts[0].body.as_ref().expect("body")["filterGroups"][0]["filters"][0]["propertyName"],
        "lastmodifieddate"
    );
    // No live list read: only the archived list.
    assert!(sim
        .seen_under("/crm/v3/objects/")
        .iter()
        .filter(|s| s.method == "GET")
        .all(|s| s.query.get("archived").map(String::as_str) == Some("true")));

    let all = second.all();
    assert_eq!(all.deals.len(), 1, "only the changed deal");
    assert_eq!(all.deals[0].source_id, "9003");
    assert_eq!(all.deals[0].stage.as_deref(), Some("contractsent"));
    assert_eq!(all.deals[0].account_source_id, None);
    assert_eq!(all.accounts.len(), 1);
    assert_eq!(all.accounts[0].name.as_deref(), Some("Renamed"));
    // The deal archived since the last run is deleted; those archived
    // before are not repeated (but for 9004, inside the overlap window).
    let deleted: HashSet<_> = all.deletions.iter().map(|d| d.source_id.as_str()).collect();
    assert_eq!(deleted, HashSet::from(["9002", "9004"]));
    // Re-read by batch with history, associations from v4.
    assert!(!sim
        .seen_under("/crm/v3/objects/deals/batch/read")
        .is_empty());
    assert!(!sim
        .seen_under("/crm/v4/associations/deals/companies/batch/read")
        .is_empty());
    let cursors = second.cursors();
    assert_eq!(
        cursors["deals"]["since"]["updated_at"],
        json!("2026-03-11T08:00:00Z")
    );
    assert_eq!(cursors["deals"]["since"]["id"], json!("9003"));
    assert_eq!(
        cursors["deals"]["archived_since"],
        json!("2026-03-11T10:00:00Z")
    );
}

#[tokio::test]
async fn the_search_cap_restarts_the_window_and_loses_nothing() {
    // 12,000 companies modified after the cursor, in 3-record ties; pages of 200:
    // the 10,000-result cap is reached once and the window restarts.
    let state = State {
        companies: (0..12_000)
            .map(|i| {
                sim::company(
                    &format!("{}", 100_000 + i),
                    &format!("C{i}"),
                    "x.example.com",
                    &sim::iso(sim::ms("2026-03-10T00:00:00.000Z") + (i / 3) as i64 * 1000),
                )
            })
            .collect(),
        ..State::default()
    };
    let (server, sim) = Sim::start(state).await;
    let mut tune = tuning();
    tune.search_page_size = 200;
    let c = connector(&server.uri(), tune);
    let cursor = json!({"since": {"updated_at": "2026-03-10T00:00:00Z", "id": ""}});
    let mut sink = MemSink::default();
    let mut run = ctx(
        &server.uri(),
        SyncMode::Incremental,
        BTreeMap::from([("companies".to_string(), cursor)]),
    );
    run.cursors.insert(
        "contacts".into(),
        json!({"since": {"updated_at": "2026-03-10T00:00:00Z", "id": ""}}),
    );
    run.cursors.insert(
        "deals".into(),
        json!({"since": {"updated_at": "2026-03-10T00:00:00Z", "id": ""}}),
    );
    c.sync(&run, &mut sink).await.expect("sync");

    let ids: HashSet<String> = sink
        .all()
        .accounts
        .iter()
        .map(|a| a.source_id.clone())
        .collect();
    assert_eq!(ids.len(), 12_000, "every company, once");
    assert_eq!(
        sink.all().accounts.len(),
        12_000,
        "no duplicates after the restart"
    );
    let searches = sim.seen_under("/crm/v3/objects/companies/search");
    assert!(
        searches.iter().all(|s| s.status == 200),
        "never paged past the cap"
    );
    let starts: Vec<String> = searches
        .iter()
        .map(|s| {
            s.body.as_ref().expect("body")["filterGroups"][0]["filters"][0]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let distinct: Vec<&String> = starts.iter().fold(vec![], |mut v, s| {
        if v.last() != Some(&s) {
            v.push(s);
        }
        v
    });
    assert_eq!(distinct.len(), 2, "one restart");
    // The restart begins at the last modification time seen in the first window.
    let last_seen = sim::ms("2026-03-10T00:00:00.000Z") + (9_999 / 3) * 1000;
    assert_eq!(distinct[1], &last_seen.to_string());
}

/// A token source that starts with a stale token and counts its calls.
struct CountingTokens {
    current: Mutex<String>,
    refreshes: AtomicUsize,
}

#[async_trait]
impl TokenSource for CountingTokens {
    async fn access_token(&self) -> pandora_core::Result<SecretToken> {
        Ok(SecretToken::from_string(
            self.current.lock().expect("lock").clone(),
        ))
    }
    async fn refresh(&self, stale: &SecretToken) -> pandora_core::Result<SecretToken> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        assert_eq!(stale.expose(), "stale-token");
        *self.current.lock().expect("lock") = "token-1".into();
        Ok(SecretToken::from_string("token-1".into()))
    }
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let (server, sim) = Sim::start(portal()).await;
    let tokens = Arc::new(CountingTokens {
        current: Mutex::new("stale-token".into()),
        refreshes: AtomicUsize::new(0),
    });
    let mut run = ctx(&server.uri(), SyncMode::Full, BTreeMap::new());
    run.check.tokens = Some(tokens.clone());
    run.check.credentials = None;
    let mut sink = MemSink::default();
    connector(&server.uri(), tuning())
        .sync(&run, &mut sink)
        .await
        .expect("sync");
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    let seen = sim.seen();
    assert_eq!(seen[0].status, 401);
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer stale-token"));
    assert!(seen[1..]
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer token-1")));
    assert_eq!(sink.all().deals.len(), 3);
}

#[tokio::test]
async fn a_401_with_a_fixed_token_fails_clearly_without_retrying() {
    let (server, sim) = Sim::start(portal()).await;
    let mut run = ctx(&server.uri(), SyncMode::Full, BTreeMap::new());
    run.check = check_ctx(&server.uri(), "revoked-private-app-token");
    let err = connector(&server.uri(), tuning())
        .sync(&run, &mut MemSink::default())
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let text = err.to_string();
    assert!(
        text.contains("hubspot")
            && text.contains("GET /crm/v3/owners")
            && text.contains("Authentication credentials not found"),
        "{text}"
    );
    assert!(!text.contains("revoked-private-app-token"));
    assert_eq!(sim.seen().len(), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_waits_exactly_that_long() {
    let (server, sim) = Sim::start(portal()).await;
    sim.fail(
        "/crm/v3/owners",
        1,
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_json(json!({"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "policyName": "SECONDLY"})),
    );
    connector(&server.uri(), tuning())
        .sync(
            &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
            &mut MemSink::default(),
        )
        .await
        .expect("sync");
    let owners = sim.seen_under("/crm/v3/owners");
    let gap = owners[1].at.duration_since(owners[0].at);
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_millis(1500),
        "{gap:?}"
    );
}

#[tokio::test]
async fn a_ten_secondly_429_without_retry_after_waits_out_the_window() {
    let (server, sim) = Sim::start(portal()).await;
    sim.fail(
        "/crm/v3/objects/companies",
        1,
        ResponseTemplate::new(429)
            .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "300")
            .insert_header("X-HubSpot-RateLimit-Max", "110")
            .insert_header("X-HubSpot-RateLimit-Remaining", "0")
            .set_body_json(json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"})),
    );
    connector(&server.uri(), tuning())
        .sync(
            &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
            &mut MemSink::default(),
        )
        .await
        .expect("sync");
    let companies = sim.seen_under("/crm/v3/objects/companies");
    let gap = companies[1].at.duration_since(companies[0].at);
    assert!(gap >= Duration::from_millis(300), "{gap:?}");
}

#[tokio::test]
async fn the_daily_limit_stops_the_sync_with_a_clear_error() {
    let (server, sim) = Sim::start(portal()).await;
    sim.fail(
        "/crm/v3/objects/contacts",
        1,
        ResponseTemplate::new(429).set_body_json(json!({"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT", "policyName": "DAILY"})),
    );
    let err = connector(&server.uri(), tuning())
        .sync(
            &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
            &mut MemSink::default(),
        )
        .await
        .expect_err("stopped");
    let text = err.to_string();
    assert!(
        text.contains("daily") && text.contains("GET /crm/v3/objects/contacts"),
        "{text}"
    );
    assert_eq!(err.kind(), ErrorKind::Rejected, "not retried by the worker");
    assert_eq!(
        sim.seen_under("/crm/v3/objects/contacts").len(),
        1,
        "no retry"
    );
    assert!(
        sim.seen_under("/crm/v3/objects/deals").is_empty(),
        "the sync stopped"
    );
}

#[tokio::test]
async fn a_5xx_is_retried_and_other_4xx_are_not() {
    let (server, sim) = Sim::start(portal()).await;
    sim.fail(
        "/crm/v3/pipelines",
        2,
        ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"),
    );
    let mut sink = MemSink::default();
    connector(&server.uri(), tuning())
        .sync(
            &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
            &mut sink,
        )
        .await
        .expect("sync after two 502s");
    assert_eq!(sim.seen_under("/crm/v3/pipelines").len(), 3);
    assert_eq!(sink.all().stages.len(), 5);

    let (server, sim) = Sim::start(portal()).await;
    sim.fail(
        "/crm/v3/owners",
        1,
        ResponseTemplate::new(400).set_body_json(json!({"status": "error", "message": "Invalid input JSON on line 1", "category": "VALIDATION_ERROR"})),
    );
    let err = connector(&server.uri(), tuning())
        .sync(
            &ctx(&server.uri(), SyncMode::Full, BTreeMap::new()),
            &mut MemSink::default(),
        )
        .await
        .expect_err("400");
    assert!(
        err.to_string().contains("HTTP 400: Invalid input JSON"),
        "{err}"
    );
    assert_eq!(sim.seen().len(), 1, "a 400 is never retried");
}

#[tokio::test]
async fn check_reports_budget_and_scopes_or_the_vendors_refusal() {
    let mut state = portal();
    state.rate_headers = true;
    let (server, _sim) = Sim::start(state).await;
    let c = connector(&server.uri(), tuning());
    let ok = c
        .check(&check_ctx(&server.uri(), "token-1"))
        .await
        .expect("check");
    assert!(ok.ok);
    let detail = ok.detail.expect("detail");
    assert!(detail.contains("of 110 requests left per 10 s"), "{detail}");
    assert!(
        detail.contains("scopes: oauth, crm.objects.deals.read"),
        "{detail}"
    );
    let refused = c
        .check(&check_ctx(&server.uri(), "wrong"))
        .await
        .expect("check");
    assert!(!refused.ok);
    assert!(refused
        .detail
        .expect("detail")
        .contains("Authentication credentials not found"));
}
