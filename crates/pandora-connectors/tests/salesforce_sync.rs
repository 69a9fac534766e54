//! The Salesforce connector against a local Salesforce
//! (`support/salesforce_sim.rs`): every stream across `nextRecordsUrl`
//! pages, stage mapping, opportunity history as field changes, managers and
//! contact roles, datetimes without a colon, incremental SOQL, getDeleted
//! deletions and the reconciliation a stale cursor forces, session refresh,
//! the daily limit, retries, error arrays, and the check. No test reaches
//! Salesforce.

#[path = "support/salesforce_sim.rs"]
mod sim;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use pandora_connectors::salesforce::{SalesforceConnector, SalesforceHosts, SalesforceTuning};
use pandora_connectors::vendor::RetryPolicy;
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

const Q: &str = "/services/data/v62.0/query";

fn id(prefix: &str, i: usize) -> String {
    format!("{prefix}SIM00000000{i}AAA")
}

fn tuning() -> SalesforceTuning {
    SalesforceTuning {
        retry: RetryPolicy {
            max_attempts: 4,
            max_throttled: 5,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(40),
            deadline: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(5),
        },
        ..SalesforceTuning::default()
    }
}

fn connector() -> SalesforceConnector {
    SalesforceConnector::new(SalesforceHosts::new(Some("https://login.example")))
        .with_tuning(tuning())
}

fn check_ctx(uri: &str, token: &str) -> CheckContext {
    CheckContext {
        workspace_id: Uuid::now_v7(),
        config: json!({}),
        credentials: Some(Credentials::from_json(
            &json!({"access_token": token, "refresh_token": "r-1", "instance_url": uri}),
        )),
        tokens: None,
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn ctx(uri: &str, mode: SyncMode, cursors: BTreeMap<String, Value>, at: &str) -> SyncContext {
    SyncContext {
        check: check_ctx(uri, "token-1"),
        connection_id: Uuid::now_v7(),
        mode,
        cursors,
        started_at: t(at),
    }
}

/// Keeps every page pushed and every reconciliation asked for.
#[derive(Default)]
struct MemSink {
    pages: Vec<(RecordBatch, Option<StreamCheckpoint>)>,
    reconciled: Vec<(RecordKind, HashSet<String>)>,
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

    async fn reconcile(
        &mut self,
        kind: RecordKind,
        live: &HashSet<String>,
        checkpoint: Option<StreamCheckpoint>,
    ) -> pandora_core::Result<u64> {
        self.reconciled.push((kind, live.clone()));
        self.pages
            .push((RecordBatch::new("salesforce"), checkpoint));
        Ok(0)
    }
}

impl MemSink {
    fn all(&self) -> RecordBatch {
        let mut b = RecordBatch::new("salesforce");
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

    fn reconciled(&self, kind: RecordKind) -> Option<&HashSet<String>> {
        self.reconciled
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, ids)| ids)
    }
}

/// An org of 3 users (two report to the first), 5 accounts, 3 contacts,
/// 3 opportunities with their history, and contact roles (one deleted);
/// pages of 2 records.
fn org() -> State {
    let (a, b, c) = (id("005", 1), id("005", 2), id("005", 3));
    let o = |i| id("006", i);
    let mut s = State {
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
            sim::user(
                &c,
                "Cy",
                "Berg",
                Some(&a),
                None,
                "2026-03-03T09:00:00.000+0000",
            ),
        ],
        accounts: (1..=5)
            .map(|i| {
                sim::account(
                    &id("001", i),
                    &format!("Account {i}"),
                    Some(&format!("http://www.account{i}.example/")),
                    &b,
                    &format!("2026-03-0{i}T10:00:00.000+0000"),
                )
            })
            .collect(),
        contacts: (1..=3)
            .map(|i| {
                sim::contact(
                    &id("003", i),
                    &format!("First{i}"),
                    "Buyer",
                    Some(&id("001", 1)),
                    &format!("2026-03-0{i}T11:00:00.000+0000"),
                )
            })
            .collect(),
        opportunities: vec![
            sim::opportunity(
                &o(1),
                "Big renewal",
                "Closed Won",
                Some(5000.0),
                "2026-03-20",
                &b,
                Some(&id("001", 2)),
                "2026-03-05T12:00:00.000+0000",
            ),
            sim::opportunity(
                &o(2),
                "Lost one",
                "Closed Lost",
                Some(1200.0),
                "2026-03-15",
                &c,
                Some(&id("001", 3)),
                "2026-03-06T12:00:00.000+0000",
            ),
            sim::opportunity(
                &o(3),
                "Open one",
                "Qualification",
                None,
                "2026-04-30",
                &b,
                None,
                "2026-03-07T12:00:00.000+0000",
            ),
        ],
        history: vec![
            sim::history(
                "008SIM000000001AAA",
                &o(1),
                "Prospecting",
                Some(4000.0),
                "2026-03-31",
                "Pipeline",
                "2026-02-10T08:00:00.000+0000",
            ),
            sim::history(
                "008SIM000000002AAA",
                &o(1),
                "Negotiation/Review",
                Some(5000.0),
                "2026-03-31",
                "Forecast",
                "2026-03-01T12:00:00.000+0000",
            ),
            sim::history(
                "008SIM000000003AAA",
                &o(1),
                "Closed Won",
                Some(5000.0),
                "2026-03-20",
                "Closed",
                "2026-03-05T12:00:00.000+0000",
            ),
            sim::history(
                "008SIM000000004AAA",
                &o(2),
                "Prospecting",
                Some(1200.0),
                "2026-03-15",
                "Pipeline",
                "2026-02-10T08:00:00.000+0000",
            ),
            sim::history(
                "008SIM000000005AAA",
                &o(2),
                "Closed Lost",
                Some(1200.0),
                "2026-03-15",
                "Omitted",
                "2026-03-06T12:00:00.000+0000",
            ),
            sim::history(
                "008SIM000000006AAA",
                &o(3),
                "Qualification",
                None,
                "2026-04-30",
                "Pipeline",
                "2026-02-10T08:00:00.000+0000",
            ),
        ],
        contact_roles: vec![
            sim::contact_role(
                "00KSIM000000001AAA",
                &o(1),
                &id("003", 1),
                Some("Decision Maker"),
                true,
                "2026-03-05T12:00:00.000+0000",
            ),
            sim::contact_role(
                "00KSIM000000002AAA",
                &o(1),
                &id("003", 2),
                Some("Economic Buyer"),
                false,
                "2026-03-05T12:00:01.000+0000",
            ),
            sim::contact_role(
                "00KSIM000000003AAA",
                &o(2),
                &id("003", 3),
                Some("Evaluator"),
                false,
                "2026-03-06T12:00:00.000+0000",
            ),
        ],
        ..State::default()
    };
    s.contact_roles[2]["IsDeleted"] = json!(true);
    s
}

async fn full_sync(uri: &str) -> MemSink {
    let mut sink = MemSink::default();
    connector()
        .sync(
            &ctx(uri, SyncMode::Full, BTreeMap::new(), "2026-03-10T00:00:00Z"),
            &mut sink,
        )
        .await
        .expect("full sync");
    sink
}

#[tokio::test]
async fn a_full_sync_follows_next_records_url_for_every_stream_with_the_bearer_token() {
    let (server, sim) = Sim::start(org()).await;
    let sink = full_sync(&server.uri()).await;
    let all = sink.all();
    assert_eq!(all.users.len(), 3);
    assert_eq!(all.accounts.len(), 5);
    assert_eq!(all.contacts.len(), 3);
    assert_eq!(all.stages.len(), 6);
    assert_eq!(all.deals.len(), 3);
    assert_eq!(all.deal_contacts.len(), 2);

    // The first page of each object by SOQL, the rest by nextRecordsUrl (a relative path).
    for object in ["User", "Account", "Contact", "Opportunity"] {
        let first = sim
            .seen()
            .into_iter()
            .filter(|s| s.object.as_deref() == Some(object) && s.path.starts_with(Q))
            .collect::<Vec<_>>();
        assert!(first.len() >= 2, "{object}: {}", first.len());
        assert!(first[0].soql().is_some(), "{object} starts with SOQL");
        assert!(
            first[1..]
                .iter()
                .any(|s| s.path.starts_with(&format!("{Q}/0r8SIM")) && s.soql().is_none()),
            "{object} followed nextRecordsUrl"
        );
    }
    assert_eq!(
        sim.soql_for("Account")[0],
        "SELECT Id, Name, Website, Industry, Type, OwnerId, NumberOfEmployees, AnnualRevenue, \
         BillingCity, BillingCountry, CreatedDate, SystemModstamp FROM Account \
         ORDER BY SystemModstamp ASC, Id ASC"
    );
    // Contact roles through queryAll (deleted ones come with IsDeleted).
    let roles = sim.seen_under("/services/data/v62.0/queryAll");
    assert_eq!(roles[0].object.as_deref(), Some("OpportunityContactRole"));
    // Every request carried the token as a bearer, to the instance_url of the credentials.
    assert!(sim
        .seen()
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer token-1")));
    assert!(sim.seen().iter().all(|s| s.status == 200));

    // Cursors: the last (SystemModstamp, Id) read; deletions from the run start.
    let cursors = sink.cursors();
    assert_eq!(
        cursors["accounts"],
        json!({"since": {"updated_at": "2026-03-05T10:00:00Z", "id": id("001", 5)}, "deleted_since": "2026-03-10T00:00:00Z"})
    );
    assert_eq!(cursors["opportunities"]["since"]["id"], json!(id("006", 3)));
    assert!(cursors["users"].get("deleted_since").is_none());
    assert!(cursors.contains_key("stages") && cursors.contains_key("contact_roles"));
    // A full read hands every id read to the engine to reconcile.
    assert_eq!(
        sink.reconciled(RecordKind::Account).map(HashSet::len),
        Some(5)
    );
    assert_eq!(sink.reconciled(RecordKind::Deal).map(HashSet::len), Some(3));
    assert!(sink.reconciled(RecordKind::User).is_none());
}

#[tokio::test]
async fn stages_map_to_won_lost_and_open_with_probability_and_order() {
    let (server, _sim) = Sim::start(org()).await;
    let all = full_sync(&server.uri()).await.all();
    let stage = |name: &str| {
        all.stages
            .iter()
            .find(|s| s.stage == name)
            .expect("stage")
            .clone()
    };
    let won = stage("Closed Won");
    assert_eq!(
        (won.category, won.probability, won.display_order),
        (StageCategory::Won, Some(1.0), Some(5))
    );
    assert_eq!(stage("Closed Lost").category, StageCategory::Lost);
    assert_eq!(stage("Closed Lost").probability, Some(0.0));
    let open = stage("Qualification");
    assert_eq!(
        (open.category, open.probability, open.display_order),
        (StageCategory::Open, Some(0.2), Some(2))
    );
    assert_eq!(open.pipeline, "opportunity");
    let deal = |i| {
        all.deals
            .iter()
            .find(|d| d.source_id == id("006", i))
            .expect("deal")
            .clone()
    };
    assert_eq!(deal(1).stage_category, StageCategory::Won);
    assert_eq!(deal(2).stage_category, StageCategory::Lost);
    let d3 = deal(3);
    assert_eq!(
        (d3.stage_category, d3.stage_order, d3.probability),
        (StageCategory::Open, Some(2), Some(0.2)),
        "the stage's default probability when the opportunity has none"
    );
    assert_eq!(d3.stage_label.as_deref(), Some("Qualification"));
    assert_eq!(deal(1).forecast_category.as_deref(), Some("Closed"));
    assert_eq!(deal(1).owner_source_id, Some(id("005", 2)));
    assert_eq!(deal(1).account_source_id, Some(id("001", 2)));
    assert_eq!(deal(1).amount, Some("5000".parse().expect("decimal")));
}

#[tokio::test]
async fn opportunity_history_becomes_changes_of_stage_amount_close_date_and_forecast_category() {
    let (server, sim) = Sim::start(org()).await;
    let sink = full_sync(&server.uri()).await;
    let all = sink.all();
    let changes = |field: DealField| -> Vec<(Option<String>, Option<String>, DateTime<Utc>)> {
        all.deal_changes
            .iter()
            .filter(|c| c.deal_source_id == id("006", 1) && c.field == field)
            .map(|c| (c.old_value.clone(), c.new_value.clone(), c.changed_at))
            .collect()
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        changes(DealField::Stage),
        vec![
            (None, s("Prospecting"), t("2026-02-10T08:00:00Z")),
            (
                s("Prospecting"),
                s("Negotiation/Review"),
                t("2026-03-01T12:00:00Z")
            ),
            (
                s("Negotiation/Review"),
                s("Closed Won"),
                t("2026-03-05T12:00:00Z")
            ),
        ]
    );
    assert_eq!(
        changes(DealField::Amount),
        vec![
            (None, s("4000"), t("2026-02-10T08:00:00Z")),
            (s("4000"), s("5000"), t("2026-03-01T12:00:00Z")),
        ]
    );
    assert_eq!(
        changes(DealField::CloseDate),
        vec![
            (None, s("2026-03-31"), t("2026-02-10T08:00:00Z")),
            (s("2026-03-31"), s("2026-03-20"), t("2026-03-05T12:00:00Z")),
        ]
    );
    assert_eq!(
        changes(DealField::ForecastCategory)
            .into_iter()
            .map(|c| c.1)
            .collect::<Vec<_>>(),
        vec![s("Pipeline"), s("Commit"), s("Closed")],
        "history's API values (Forecast) become the labels deals carry (Commit)"
    );
    assert!(all
        .deal_changes
        .iter()
        .all(|c| c.origin == ChangeOrigin::Vendor));
    // Each change travels in the page of its deal (the engine observes nothing twice).
    for (page, _) in &sink.pages {
        let deals: HashSet<&str> = page.deals.iter().map(|d| d.source_id.as_str()).collect();
        assert!(page
            .deal_changes
            .iter()
            .all(|c| deals.contains(c.deal_source_id.as_str())));
    }
    // The history of a page's opportunities, by OpportunityId, across its own pages.
    let history = sim.soql_for("OpportunityHistory");
    assert_eq!(
        history[0],
        format!(
            "SELECT Id, OpportunityId, StageName, Amount, CloseDate, ForecastCategory, CreatedDate \
             FROM OpportunityHistory WHERE OpportunityId IN ('{}', '{}') \
             ORDER BY OpportunityId ASC, CreatedDate ASC, Id ASC",
            id("006", 1),
            id("006", 2)
        )
    );
}

#[tokio::test]
async fn users_keep_their_managers_and_contact_roles_link_opportunities_to_contacts() {
    let (server, _sim) = Sim::start(org()).await;
    let all = full_sync(&server.uri()).await.all();
    let user = |i| {
        all.users
            .iter()
            .find(|u| u.source_id == id("005", i))
            .expect("user")
            .clone()
    };
    assert_eq!(user(1).manager_source_id, None);
    assert_eq!(user(2).manager_source_id, Some(id("005", 1)));
    assert_eq!(user(3).manager_source_id, Some(id("005", 1)));
    assert_eq!(user(2).team.as_deref(), Some("AE East"));
    assert_eq!(
        user(3).team.as_deref(),
        Some("Sales"),
        "no role: the department"
    );
    assert_eq!(user(2).name.as_deref(), Some("Ben Okafor"));
    assert_eq!(user(2).email.as_deref(), Some("ben@example.com"));
    assert!(user(2).active);

    let roles: Vec<(String, String, Option<String>, bool)> = all
        .deal_contacts
        .iter()
        .map(|r| {
            (
                r.deal_source_id.clone(),
                r.contact_source_id.clone(),
                r.role.clone(),
                r.is_primary,
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            (
                id("006", 1),
                id("003", 1),
                Some("Decision Maker".into()),
                true
            ),
            (
                id("006", 1),
                id("003", 2),
                Some("Economic Buyer".into()),
                false
            ),
        ]
    );
    // The deleted role (IsDeleted, from queryAll) soft-deletes its (opportunity, contact) pair.
    assert!(all
        .deletions
        .iter()
        .any(|d| d.kind == RecordKind::DealContact
            && d.source_id == format!("{}/{}", id("006", 2), id("003", 3))));
}

#[tokio::test]
async fn fields_the_user_cannot_see_are_not_asked_for_and_multi_currency_orgs_give_currencies() {
    let mut state = org();
    state.hidden = vec![
        "Account.Website".into(),
        "Account.AnnualRevenue".into(),
        "User.UserRoleId".into(),
    ];
    let (server, sim) = Sim::start(state).await;
    let single = full_sync(&server.uri()).await.all();
    let account_soql = &sim.soql_for("Account")[0];
    assert!(
        !account_soql.contains("Website") && !account_soql.contains("AnnualRevenue"),
        "{account_soql}"
    );
    assert!(!sim.soql_for("User")[0].contains("UserRole.Name"));
    assert!(!sim.soql_for("Opportunity")[0].contains("CurrencyIsoCode"));
    assert_eq!(single.accounts.len(), 5);
    assert_eq!(single.accounts[0].domain, None);
    assert_eq!(
        single.users[1].team.as_deref(),
        Some("Sales"),
        "no role readable: the department"
    );
    assert_eq!(single.deals[0].currency, None, "a single-currency org");
    // One describe per object and run.
    let describes: Vec<String> = sim
        .seen_under("/services/data/v62.0/sobjects/")
        .into_iter()
        .filter(|s| s.path.ends_with("/describe/"))
        .filter_map(|s| s.object)
        .collect();
    assert_eq!(
        describes,
        vec![
            "User",
            "Account",
            "Contact",
            "OpportunityStage",
            "Opportunity",
            "OpportunityHistory",
            "OpportunityContactRole"
        ]
    );

    let mut state = org();
    state.multi_currency = true;
    let (server, sim) = Sim::start(state).await;
    let multi = full_sync(&server.uri()).await.all();
    assert!(sim.soql_for("Opportunity")[0].contains("Amount, CurrencyIsoCode, StageName"));
    assert!(multi
        .deals
        .iter()
        .all(|d| d.currency.as_deref() == Some("EUR")));

    // A field the sync cannot do without is a clear configuration error.
    let mut state = org();
    state.hidden = vec!["Contact.SystemModstamp".into()];
    let (server, _sim) = Sim::start(state).await;
    let err = connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Full,
                BTreeMap::new(),
                "2026-03-10T00:00:00Z",
            ),
            &mut MemSink::default(),
        )
        .await
        .expect_err("no SystemModstamp");
    assert!(
        err.to_string()
            .contains("cannot read Contact.SystemModstamp"),
        "{err}"
    );
}

#[tokio::test]
async fn datetimes_without_a_colon_in_the_offset_are_read_to_the_instant() {
    let (server, _sim) = Sim::start(org()).await;
    let all = full_sync(&server.uri()).await.all();
    let acc = &all.accounts[0];
    assert_eq!(acc.source_id, id("001", 1));
    assert_eq!(acc.source_updated_at, Some(t("2026-03-01T10:00:00Z")));
    assert_eq!(acc.source_created_at, Some(t("2026-02-01T10:00:00Z")));
    assert_eq!(acc.domain.as_deref(), Some("account1.example"));
    let deal = all
        .deals
        .iter()
        .find(|d| d.source_id == id("006", 1))
        .expect("deal");
    assert_eq!(deal.source_updated_at, Some(t("2026-03-05T12:00:00Z")));
    assert_eq!(deal.close_date, NaiveDate::from_ymd_opt(2026, 3, 20));
}

#[tokio::test]
async fn an_incremental_sync_asks_only_for_what_changed() {
    let (server, sim) = Sim::start(org()).await;
    let first = full_sync(&server.uri()).await;
    {
        let mut s = sim.state();
        s.accounts[4]["Name"] = json!("Renamed");
        s.accounts[4]["SystemModstamp"] = json!("2026-03-11T09:30:00.000+0000");
        s.opportunities[2]["StageName"] = json!("Proposal/Price Quote");
        s.opportunities[2]["SystemModstamp"] = json!("2026-03-11T08:00:00.000+0000");
        let row = sim::history(
            "008SIM000000007AAA",
            &id("006", 3),
            "Proposal/Price Quote",
            None,
            "2026-04-30",
            "BestCase",
            "2026-03-11T08:00:00.000+0000",
        );
        s.history.push(row);
        s.seen.clear();
    }
    let mut second = MemSink::default();
    connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Incremental,
                first.cursors(),
                "2026-03-12T00:00:00Z",
            ),
            &mut second,
        )
        .await
        .expect("incremental");

    // The WHERE sent: after the cursor's (SystemModstamp, Id), 5 minutes earlier.
    assert_eq!(
        sim.soql_for("Account")[0],
        format!(
            "SELECT Id, Name, Website, Industry, Type, OwnerId, NumberOfEmployees, AnnualRevenue, \
             BillingCity, BillingCountry, CreatedDate, SystemModstamp FROM Account \
             WHERE SystemModstamp > 2026-03-05T09:55:00Z OR (SystemModstamp = 2026-03-05T09:55:00Z AND Id > '{}') \
             ORDER BY SystemModstamp ASC, Id ASC",
            id("001", 5)
        )
    );
    for (object, since) in [
        ("User", "2026-03-03T08:55:00Z"),
        ("Contact", "2026-03-03T10:55:00Z"),
        ("Opportunity", "2026-03-07T11:55:00Z"),
        ("OpportunityContactRole", "2026-03-06T11:55:00Z"),
    ] {
        let q = &sim.soql_for(object)[0];
        assert!(
            q.contains(&format!(
                "WHERE SystemModstamp > {since} OR (SystemModstamp = {since} AND Id > '"
            )),
            "{object}: {q}"
        );
    }
    let all = second.all();
    assert_eq!(all.accounts.len(), 1, "only the changed account");
    assert_eq!(all.accounts[0].name.as_deref(), Some("Renamed"));
    assert_eq!(all.deals.len(), 1, "only the changed opportunity");
    assert_eq!(all.deals[0].stage.as_deref(), Some("Proposal/Price Quote"));
    let stage_changes: Vec<_> = all
        .deal_changes
        .iter()
        .filter(|c| c.field == DealField::Stage)
        .map(|c| c.new_value.clone())
        .collect();
    assert_eq!(
        stage_changes,
        vec![
            Some("Qualification".into()),
            Some("Proposal/Price Quote".into())
        ],
        "the changed opportunity's whole history, its new row included"
    );
    // Unchanged records come back only when the overlap reaches them: the
    // last user and contact read, at most.
    assert_eq!(
        all.users
            .iter()
            .map(|u| u.source_id.clone())
            .collect::<Vec<_>>(),
        vec![id("005", 3)]
    );
    assert_eq!(
        all.contacts
            .iter()
            .map(|c| c.source_id.clone())
            .collect::<Vec<_>>(),
        vec![id("003", 3)]
    );
    // Deletions: getDeleted from the last run's start to this one's, for each object that has them.
    let deleted: Vec<_> = sim
        .seen_under("/services/data/v62.0/sobjects/")
        .into_iter()
        .filter(|s| s.path.ends_with("/deleted/"))
        .collect();
    let objects: Vec<_> = deleted.iter().filter_map(|s| s.object.clone()).collect();
    assert_eq!(objects, vec!["Account", "Contact", "Opportunity"]);
    assert_eq!(
        deleted[0].path,
        "/services/data/v62.0/sobjects/Account/deleted/"
    );
    assert_eq!(deleted[0].query["start"], "2026-03-10T00:00:00+00:00");
    assert_eq!(deleted[0].query["end"], "2026-03-12T00:00:00+00:00");
    assert!(second.reconciled.is_empty());
    let cursors = second.cursors();
    assert_eq!(
        cursors["accounts"]["since"],
        json!({"updated_at": "2026-03-11T09:30:00Z", "id": id("001", 5)})
    );
    assert_eq!(
        cursors["opportunities"]["deleted_since"],
        json!("2026-03-12T00:00:00Z"),
        "latestDateCovered"
    );
}

#[tokio::test]
async fn records_salesforce_deleted_are_soft_deleted() {
    let (server, sim) = Sim::start(org()).await;
    let first = full_sync(&server.uri()).await;
    {
        let mut s = sim.state();
        s.delete("Account", &id("001", 3), "2026-03-11T10:00:00.000+0000");
        s.delete("Opportunity", &id("006", 2), "2026-03-11T11:00:00.000+0000");
        // Deleted before the last run started: not reported again.
        s.delete("Contact", &id("003", 3), "2026-03-09T11:00:00.000+0000");
    }
    let mut second = MemSink::default();
    connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Incremental,
                first.cursors(),
                "2026-03-12T00:00:00Z",
            ),
            &mut second,
        )
        .await
        .expect("incremental");
    let deleted: Vec<(RecordKind, String)> = second
        .all()
        .deletions
        .into_iter()
        .filter(|d| d.kind != RecordKind::DealContact)
        .map(|d| (d.kind, d.source_id))
        .collect();
    assert_eq!(
        deleted,
        vec![
            (RecordKind::Account, id("001", 3)),
            (RecordKind::Deal, id("006", 2)),
        ]
    );
    assert!(
        second.reconciled.is_empty(),
        "the delete log covered the window"
    );
}

#[tokio::test]
async fn a_deletion_cursor_older_than_earliest_date_available_forces_a_reconciliation() {
    let (server, sim) = Sim::start(org()).await;
    let first = full_sync(&server.uri()).await;
    {
        let mut s = sim.state();
        // The delete log was purged after the last run started; account 4 is
        // gone without a trace.
        s.earliest_available = "2026-03-11T00:00:00.000+0000".into();
        s.accounts.remove(3);
        s.seen.clear();
    }
    let mut second = MemSink::default();
    connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Incremental,
                first.cursors(),
                "2026-03-12T00:00:00Z",
            ),
            &mut second,
        )
        .await
        .expect("incremental");
    assert!(
        sim.soql_for("Account")
            .contains(&"SELECT Id FROM Account ORDER BY Id ASC".to_string()),
        "every id listed"
    );
    let ids = second.reconciled(RecordKind::Account).expect("reconciled");
    assert_eq!(ids.len(), 4);
    assert!(!ids.contains(&id("001", 4)));
    assert_eq!(
        second.cursors()["accounts"]["deleted_since"],
        json!("2026-03-12T00:00:00Z")
    );

    // A cursor beyond the delete log's 15 days is reconciled without asking getDeleted.
    sim.state().seen.clear();
    let mut old = first.cursors();
    old.get_mut("contacts").expect("contacts")["deleted_since"] = json!("2026-02-01T00:00:00Z");
    let mut third = MemSink::default();
    connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Incremental,
                old,
                "2026-03-12T00:00:00Z",
            ),
            &mut third,
        )
        .await
        .expect("incremental");
    assert!(third.reconciled(RecordKind::Contact).is_some());
    assert!(sim
        .seen_under("/services/data/v62.0/sobjects/Contact/deleted")
        .is_empty());
}

/// A token source that starts with a stale token and counts its refreshes.
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
        assert_eq!(stale.expose(), "expired-session");
        *self.current.lock().expect("lock") = "token-1".into();
        Ok(SecretToken::from_string("token-1".into()))
    }
}

#[tokio::test]
async fn invalid_session_id_refreshes_the_token_once_and_retries() {
    let (server, sim) = Sim::start(org()).await;
    let tokens = Arc::new(CountingTokens {
        current: Mutex::new("expired-session".into()),
        refreshes: AtomicUsize::new(0),
    });
    let mut run = ctx(
        &server.uri(),
        SyncMode::Full,
        BTreeMap::new(),
        "2026-03-10T00:00:00Z",
    );
    run.check.tokens = Some(tokens.clone());
    let mut sink = MemSink::default();
    connector().sync(&run, &mut sink).await.expect("sync");
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    let seen = sim.seen();
    assert_eq!(seen[0].status, 401);
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer expired-session"));
    assert_eq!(seen[1].query, seen[0].query, "the same request again");
    assert!(seen[1..]
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer token-1") && s.status == 200));
    assert_eq!(sink.all().deals.len(), 3);
}

#[tokio::test]
async fn request_limit_exceeded_stops_the_sync_with_an_error_naming_the_daily_limit() {
    let mut state = org();
    state.api_used = 14_997;
    let (server, sim) = Sim::start(state).await;
    let err = connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Full,
                BTreeMap::new(),
                "2026-03-10T00:00:00Z",
            ),
            &mut MemSink::default(),
        )
        .await
        .expect_err("stopped");
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Rejected, "not retried by the worker");
    assert!(
        text.contains("daily API request limit")
            && text.contains("REQUEST_LIMIT_EXCEEDED")
            && text.contains("15000 of 15000 requests used"),
        "{text}"
    );
    let seen = sim.seen();
    assert_eq!(seen.last().map(|s| s.status), Some(403));
    assert_eq!(
        seen.len(),
        4,
        "three answered, the fourth refused, no retry"
    );
}

#[tokio::test]
async fn a_5xx_is_retried_and_error_arrays_are_surfaced_without_retry() {
    let (server, sim) = Sim::start(org()).await;
    sim.fail_object(
        Q,
        "Contact",
        2,
        sim::sf_error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable"),
    );
    let mut sink = MemSink::default();
    connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Full,
                BTreeMap::new(),
                "2026-03-10T00:00:00Z",
            ),
            &mut sink,
        )
        .await
        .expect("sync after two 503s");
    let contacts: Vec<u16> = sim
        .seen()
        .iter()
        .filter(|s| s.object.as_deref() == Some("Contact") && s.soql().is_some())
        .map(|s| s.status)
        .collect();
    assert_eq!(contacts, vec![0, 0, 200], "two faults, then the answer");
    assert_eq!(sink.all().contacts.len(), 3);

    let (server, sim) = Sim::start(org()).await;
    sim.fail_object(
        Q,
        "Account",
        1,
        ResponseTemplate::new(400).set_body_json(json!([{
            "message": "\nSELECT Id, Name, Website FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Website' on entity 'Account'.",
            "errorCode": "INVALID_FIELD"
        }])),
    );
    let err = connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Full,
                BTreeMap::new(),
                "2026-03-10T00:00:00Z",
            ),
            &mut MemSink::default(),
        )
        .await
        .expect_err("400");
    let text = err.to_string();
    assert!(
        text.contains(
            "salesforce GET /services/data/v62.0/query (FROM Account): HTTP 400: INVALID_FIELD:"
        ) && text.contains("No such column 'Website'"),
        "{text}"
    );
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(
        sim.seen()
            .iter()
            .filter(|s| s.object.as_deref() == Some("Account") && s.path.starts_with(Q))
            .count(),
        1,
        "a 400 is never retried"
    );
}

#[tokio::test]
async fn a_malformed_page_fails_naming_the_vendor_the_endpoint_and_the_reason() {
    let (server, sim) = Sim::start(org()).await;
    sim.fail_object(
        &format!("{Q}/0r8SIM"),
        "Contact",
        1,
        ResponseTemplate::new(200).set_body_raw(
            r#"{"totalSize": 3, "done": true, "records": [{"Id": "003"#,
            "application/json",
        ),
    );
    let mut sink = MemSink::default();
    let err = connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Full,
                BTreeMap::new(),
                "2026-03-10T00:00:00Z",
            ),
            &mut sink,
        )
        .await
        .expect_err("malformed");
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(
        text.contains(
            "salesforce GET /services/data/v62.0/query/… (FROM Contact): malformed response"
        ) && text.contains("JSON"),
        "{text}"
    );
    assert!(!text.contains("token-1"));
    // The first page of contacts was pushed with its checkpoint before the failure.
    assert_eq!(sink.all().contacts.len(), 2);
    assert_eq!(
        sink.cursors()["contacts"]["since"]["id"],
        json!(id("003", 2))
    );

    // A page that is not done but gives no nextRecordsUrl is malformed too.
    let (server, sim) = Sim::start(org()).await;
    sim.fail_object(
        Q,
        "User",
        1,
        ResponseTemplate::new(200)
            .set_body_json(json!({"totalSize": 9, "done": false, "records": []})),
    );
    let err = connector()
        .sync(
            &ctx(
                &server.uri(),
                SyncMode::Full,
                BTreeMap::new(),
                "2026-03-10T00:00:00Z",
            ),
            &mut MemSink::default(),
        )
        .await
        .expect_err("malformed");
    assert!(err.to_string().contains("no nextRecordsUrl"), "{err}");
}

#[tokio::test]
async fn check_reports_the_daily_budget_or_the_vendors_refusal() {
    let (server, sim) = Sim::start(org()).await;
    let c = connector();
    let ok = c
        .check(&check_ctx(&server.uri(), "token-1"))
        .await
        .expect("check");
    assert!(ok.ok);
    let detail = ok.detail.expect("detail");
    assert_eq!(detail, "API budget: 14879 of 15000 daily requests left");
    assert_eq!(
        sim.seen()[0].soql(),
        Some("SELECT Id FROM Opportunity LIMIT 1")
    );

    let refused = c
        .check(&check_ctx(&server.uri(), "wrong"))
        .await
        .expect("check");
    assert!(!refused.ok);
    assert_eq!(
        refused.detail.as_deref(),
        Some("Salesforce refused the credentials: INVALID_SESSION_ID: Session expired or invalid")
    );

    // config.base_url overrides the instance_url of the credentials.
    let mut ctx = check_ctx("http://127.0.0.1:9", "token-1");
    ctx.config = json!({"base_url": server.uri()});
    assert!(c.check(&ctx).await.expect("check").ok);
    // No API host at all is a configuration error.
    let mut ctx = check_ctx("", "token-1");
    ctx.credentials = Some(Credentials::from_json(&json!({"access_token": "token-1"})));
    let err = c.check(&ctx).await.expect_err("no host");
    assert!(err.to_string().contains("instance_url"), "{err}");
}
