//! The single-thread alert on a hand-built workspace, and each way a
//! conversation is matched to a deal.

mod common;

use std::fmt::Write as _;

use common::{d, t, DealSpec, Fixture};
use expect_test::expect;
use pandora_core::skill::{Skill, SkillReport};
use pandora_skills::period;
use pandora_skills::SingleThreadAlert;
use serde_json::{json, Value};

fn open_deal(f: &mut Fixture, name: &str, stage: &str, amount: i64, created: u32) -> usize {
    f.deal(DealSpec {
        name,
        pipeline: "sales",
        stage,
        amount,
        close: d(6, 30),
        owner: "rep1",
        created: t(created / 100, created % 100, 0),
        forecast: None,
    })
}

fn run(f: &Fixture, settings: Value) -> SkillReport {
    let ctx = f.context(
        period::parse("2026-Q2").expect("period"),
        t(6, 15, 0),
        &SingleThreadAlert.info().settings,
        settings,
        None,
    );
    SingleThreadAlert.run(&ctx).expect("report")
}

fn render(r: &SkillReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "at {} from {} internal {} checked {} {} alerts {} {} by_engaged {}",
        s["evaluated_at"].as_str().unwrap_or_default(),
        s["lookback_from"].as_str().unwrap_or_default(),
        s["internal_domains"],
        s["deals_checked"]["count"],
        s["deals_checked"]["amount"],
        s["alerts"]["count"],
        s["alerts"]["amount"],
        s["by_engaged_count"],
    );
    for row in &r.rows {
        let _ = writeln!(
            out,
            "{} {} {} engaged={} sole={} last={} {} {} missing={} roles={}",
            row["name"].as_str().unwrap_or_default(),
            row["stage"].as_str().unwrap_or_default(),
            row["amount"].as_str().unwrap_or_default(),
            row["engaged_count"],
            row["sole_contact"]["email"],
            row["last_touch"]["day"],
            row["last_touch"]["title"],
            row["last_touch"]["matched_by"],
            row["roles_missing"],
            row["contacts_with_roles"]
                .as_array()
                .map(|a| a
                    .iter()
                    .map(|c| format!(
                        "{}:{}",
                        c["name"].as_str().unwrap_or_default(),
                        c["role"].as_str().unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
        );
        let _ = writeln!(out, "  {}", row["why"].as_str().unwrap_or_default());
    }
    out
}

/// Period 2026-Q2, as of 2026-06-15 00:00, so the evaluation time is
/// 2026-06-15 00:00 and the 30-day look-back starts 2026-05-16 00:00. Users
/// rep1@seller.io and mgr@seller.io make `seller.io` the internal domain.
/// `min_amount` 100.
///
/// | deal | account | amount | what happened | engaged (30 d) | alert |
/// |---|---|---|---|---|---|
/// | A proposal | acme | 600 | roles: Ann champion, Bob economic buyer; "Acme pricing" 06-01 with Ann + rep1 + mgr (internal, ignored); "Acme intro" 05-10 with Bob (before the look-back) | Ann (role) | yes: missing decision_maker |
/// | B demo | globex | 400 | "Globex demo" 06-05 with Carol (contact of globex, no roles → account) and dave@globex.com (no contact → domain globex) | Carol, Dave | no (2) |
/// | D demo | umbrella | 350, created 06-03 | "Umbrella discovery" 05-20 00:00 with Gina (contact of umbrella, no roles): 14 days before creation, inside ±14 → account; "Umbrella early" 05-19 12:00 with hank@umbrella.com: 14.5 days before creation → not matched | Gina (account) | yes: missing all three roles |
/// | E demo | acme | 50 | below min_amount | – | not checked |
/// | F won | acme | 700 | closed | – | not checked |
/// | G lead | (none) | 900 | never touched | nobody | yes |
///
/// Checked: A, B, D, G = 4 deals, 2250.00. Alerts, largest first: G 900, A
/// 600, D 350 = 3 deals, 1850.00; by engaged count: 0 → G (900), 1 → A, D
/// (950). Ann's and Bob's calls match A by role only (roles come first), so
/// they do not reach E (same account).
fn workspace() -> Fixture {
    let mut f = Fixture::default();
    f.sales_pipeline();
    f.user("mgr", None, "East");
    f.user("rep1", Some("mgr"), "East");
    let a = open_deal(&mut f, "A", "proposal", 600, 301);
    f.account(a, "acme");
    let b = open_deal(&mut f, "B", "demo", 400, 301);
    f.account(b, "globex");
    let dd = open_deal(&mut f, "D", "demo", 350, 603);
    f.account(dd, "umbrella");
    let e = open_deal(&mut f, "E", "demo", 50, 301);
    f.account(e, "acme");
    let w = open_deal(&mut f, "F", "won", 700, 301);
    f.account(w, "acme");
    open_deal(&mut f, "G", "lead", 900, 301);
    f.contact("Ann Archer", "ann@acme.com", "VP Operations", "acme");
    f.contact("Bob Baker", "bob@acme.com", "CFO", "acme");
    f.contact("Carol Cole", "carol@globex.com", "Analyst", "globex");
    f.contact("Gina Gray", "gina@umbrella.com", "Director", "umbrella");
    f.role(a, "ann", "Champion");
    f.role(a, "bob", "economic_buyer");
    f.call(
        "Acme pricing",
        t(6, 1, 15),
        &["ann@acme.com", "rep1@seller.io", "MGR@Seller.io"],
        &[],
    );
    f.call("Acme intro", t(5, 10, 15), &["bob@acme.com"], &[]);
    f.call(
        "Globex demo",
        t(6, 5, 15),
        &["carol@globex.com", "dave@globex.com", "rep1@seller.io"],
        &[],
    );
    f.call(
        "Umbrella discovery",
        t(5, 20, 0),
        &["gina@umbrella.com"],
        &[],
    );
    f.call("Umbrella early", t(5, 19, 12), &["hank@umbrella.com"], &[]);
    f
}

#[test]
fn single_thread_alert_by_hand() {
    let report = run(&workspace(), json!({"min_amount": 100}));
    expect![[r#"
        at 2026-06-15T00:00:00Z from 2026-05-16T00:00:00Z internal ["seller.io"] checked 4 "2250.00" alerts 3 "1850.00" by_engaged {"0":{"amount":"900.00","count":1},"1":{"amount":"950.00","count":2}}
        G lead 900.00 engaged=0 sole=null last=null null null missing=["economic_buyer","decision_maker","champion"] roles=
          no external contact engaged in the last 30 days (never touched); no economic_buyer, no decision_maker, no champion
        A proposal 600.00 engaged=1 sole="ann@acme.com" last="2026-06-01" "Acme pricing" "role" missing=["decision_maker"] roles=Ann Archer:Champion,Bob Baker:economic_buyer
          1 external contact engaged in the last 30 days: Ann Archer (last 2026-06-01 via role); no decision_maker
        D demo 350.00 engaged=1 sole="gina@umbrella.com" last="2026-05-20" "Umbrella discovery" "account" missing=["economic_buyer","decision_maker","champion"] roles=
          1 external contact engaged in the last 30 days: Gina Gray (last 2026-05-20 via account); no economic_buyer, no decision_maker, no champion
    "#]]
    .assert_eq(&render(&report));
}

fn engaged_of(report: &SkillReport, deal: &str) -> Option<Vec<String>> {
    report.rows.iter().find(|r| r["name"] == deal).map(|r| {
        r["engaged"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}:{}",
                    p["email"].as_str().unwrap_or_default(),
                    p["last_touch"]["matched_by"].as_str().unwrap_or_default()
                )
            })
            .collect()
    })
}

/// A small workspace: deal X (acme, 500) and deal Y (acme, 300).
fn pair() -> (Fixture, usize, usize) {
    let mut f = Fixture::default();
    f.sales_pipeline();
    f.user("rep1", None, "East");
    let x = open_deal(&mut f, "X", "demo", 500, 301);
    f.account(x, "acme");
    let y = open_deal(&mut f, "Y", "demo", 300, 301);
    f.account(y, "acme");
    (f, x, y)
}

#[test]
fn role_path_matches_only_the_contacts_deals() {
    let (mut f, x, _) = pair();
    f.contact("Ann Archer", "ann@acme.com", "", "acme");
    f.role(x, "ann", "champion");
    f.call("Call", t(6, 1, 0), &["ann@acme.com"], &[]);
    let r = run(&f, json!({}));
    assert_eq!(engaged_of(&r, "X"), Some(vec!["ann@acme.com:role".into()]));
    assert_eq!(engaged_of(&r, "Y"), Some(vec![]));
}

#[test]
fn account_path_when_the_contact_has_no_role() {
    let (mut f, _, _) = pair();
    f.contact("Ann Archer", "ann@acme.com", "", "acme");
    f.call("Call", t(6, 1, 0), &["ann@acme.com"], &[]);
    let r = run(&f, json!({}));
    for deal in ["X", "Y"] {
        assert_eq!(
            engaged_of(&r, deal),
            Some(vec!["ann@acme.com:account".into()])
        );
    }
}

#[test]
fn domain_path_for_a_participant_who_is_not_a_contact() {
    let (mut f, _, _) = pair();
    f.contact("Ann Archer", "ann@acme.com", "", "acme");
    f.call("Call", t(6, 1, 0), &["zed@ACME.com"], &[]);
    let r = run(&f, json!({}));
    assert_eq!(
        engaged_of(&r, "X"),
        Some(vec!["zed@acme.com:domain".into()])
    );
    // A domain shared by two accounts matches neither.
    f.contact("Other Person", "other@acme.com", "", "acme-holdings");
    let r = run(&f, json!({}));
    assert_eq!(engaged_of(&r, "X"), Some(vec![]));
}

#[test]
fn linked_path_from_the_vendor() {
    let (mut f, x, _) = pair();
    f.call("Call", t(6, 1, 0), &["someone@elsewhere.org"], &[x]);
    let r = run(&f, json!({}));
    assert_eq!(
        engaged_of(&r, "X"),
        Some(vec!["someone@elsewhere.org:linked".into()])
    );
    assert_eq!(engaged_of(&r, "Y"), Some(vec![]));
}

#[test]
fn match_window_is_fourteen_days_either_side() {
    // Deal Z created 06-03 00:00. A call exactly 14 days earlier matches;
    // one an hour earlier does not.
    let mut f = Fixture::default();
    f.sales_pipeline();
    f.user("rep1", None, "East");
    let z = open_deal(&mut f, "Z", "demo", 500, 603);
    f.account(z, "acme");
    f.contact("Ann Archer", "ann@acme.com", "", "acme");
    f.contact("Bob Baker", "bob@acme.com", "", "acme");
    f.call("On the edge", t(5, 20, 0), &["ann@acme.com"], &[]);
    f.call("Too early", t(5, 19, 23), &["bob@acme.com"], &[]);
    let r = run(&f, json!({}));
    assert_eq!(
        engaged_of(&r, "Z"),
        Some(vec!["ann@acme.com:account".into()])
    );
    // A 0-day window matches neither.
    let r = run(&f, json!({"match_window_days": 0}));
    assert_eq!(engaged_of(&r, "Z"), Some(vec![]));
    // Roles too: a role on a deal closed long before the call does not
    // count, the contact's account's open deal does.
    let mut f = Fixture::default();
    f.sales_pipeline();
    f.user("rep1", None, "East");
    let old = f.deal(DealSpec {
        name: "Old",
        pipeline: "sales",
        stage: "won",
        amount: 100,
        close: d(1, 31),
        owner: "rep1",
        created: t(1, 2, 0),
        forecast: None,
    });
    f.change(
        old,
        pandora_core::model::DealField::Stage,
        "demo",
        "won",
        t(1, 31, 0),
    );
    f.account(old, "acme");
    let z = open_deal(&mut f, "Z", "demo", 500, 301);
    f.account(z, "acme");
    f.contact("Ann Archer", "ann@acme.com", "", "acme");
    f.role(old, "ann", "champion");
    f.call("Call", t(6, 1, 0), &["ann@acme.com"], &[]);
    let r = run(&f, json!({}));
    assert_eq!(
        engaged_of(&r, "Z"),
        Some(vec!["ann@acme.com:account".into()])
    );
}

#[test]
fn internal_participants_are_ignored() {
    let (mut f, x, _) = pair();
    f.contact("Ann Archer", "ann@acme.com", "", "acme");
    f.role(x, "ann", "champion");
    // rep1@seller.io is internal by the users' domain; the partner is
    // internal only once the setting names its domain.
    f.call(
        "Call",
        t(6, 1, 0),
        &["ann@acme.com", "rep1@seller.io", "pat@partner.net"],
        &[x],
    );
    let r = run(&f, json!({}));
    assert_eq!(
        engaged_of(&r, "X"),
        None,
        "Ann and the partner: two people, no alert"
    );
    assert_eq!(r.summary["internal_domains"], json!(["seller.io"]));
    let r = run(
        &f,
        json!({"internal_domains": ["seller.io", "@Partner.net"]}),
    );
    assert_eq!(
        engaged_of(&r, "X"),
        Some(vec!["ann@acme.com:linked".into()])
    );
    assert_eq!(
        r.summary["internal_domains"],
        json!(["partner.net", "seller.io"])
    );
}

#[test]
fn lookback_stages_and_threshold_settings() {
    let (mut f, x, _) = pair();
    f.contact("Ann Archer", "ann@acme.com", "", "acme");
    f.contact("Bob Baker", "bob@acme.com", "", "acme");
    f.role(x, "ann", "champion");
    f.role(x, "bob", "economic_buyer");
    f.call("Recent", t(6, 10, 0), &["ann@acme.com"], &[]);
    f.call("Older", t(5, 1, 0), &["bob@acme.com"], &[]);
    // 30 days: only Ann → alert; 60 days: Ann and Bob → none.
    let r = run(&f, json!({}));
    assert_eq!(engaged_of(&r, "X"), Some(vec!["ann@acme.com:role".into()]));
    assert_eq!(r.rows[0]["roles_missing"], json!(["decision_maker"]));
    let r = run(&f, json!({"lookback_days": 60}));
    assert_eq!(engaged_of(&r, "X"), None);
    // Stage filter and amount threshold.
    let r = run(&f, json!({"stages": ["proposal"]}));
    assert_eq!(r.summary["deals_checked"]["count"], json!(0));
    let r = run(&f, json!({"min_amount": 400}));
    assert_eq!(r.summary["deals_checked"]["count"], json!(1));
}
