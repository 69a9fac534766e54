//! Deal risk: each signal fires on a deal built to trigger it, and only
//! then; weights from settings change the score.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use common::{d, t, DealSpec, Fixture};
use expect_test::expect;
use pandora_core::model::DealField;
use pandora_core::skill::{Skill, SkillReport};
use pandora_skills::deal_risk::is_senior;
use pandora_skills::period;
use pandora_skills::DealRisk;
use serde_json::{json, Value};

/// How a test deal differs from a healthy one.
#[derive(Default)]
struct Twist {
    stage: Option<&'static str>,
    demo_since: Option<(u32, u32)>,
    close: Option<(u32, u32)>,
    pushes: &'static [(&'static str, &'static str, (u32, u32))],
    amount_from: Option<i64>,
    amount: Option<i64>,
    calls: Option<&'static [(u32, u32)]>,
    titles: Option<(&'static str, &'static str)>,
}

/// A deal; healthy unless twisted: stage proposal (no won-deal median),
/// 1000, closing 2026-06-30, created 2026-03-01, two contacts with roles (a
/// "VP Sales" and an "Analyst"), the VP on a call 2026-06-10 and the analyst
/// on one 2026-06-12. `calls` gives other days for the two calls (the first
/// with the VP, the second with the analyst; a single day: the VP only).
fn deal(f: &mut Fixture, name: &'static str, tw: Twist) {
    let i = f.deal(DealSpec {
        name,
        pipeline: "sales",
        stage: tw.stage.unwrap_or("proposal"),
        amount: tw.amount.unwrap_or(1000),
        close: tw.close.map(|(m, dd)| d(m, dd)).unwrap_or(d(6, 30)),
        owner: "rep1",
        created: t(3, 1, 0),
        forecast: None,
    });
    if let Some((m, dd)) = tw.demo_since {
        f.change(i, DealField::Stage, "lead", "demo", t(m, dd, 0));
    }
    for (old, new, (m, dd)) in tw.pushes {
        f.change(i, DealField::CloseDate, old, new, t(*m, *dd, 0));
    }
    if let Some(from) = tw.amount_from {
        let now = tw.amount.unwrap_or(1000);
        f.change(
            i,
            DealField::Amount,
            &from.to_string(),
            &now.to_string(),
            t(4, 1, 0),
        );
    }
    let (t1, t2) = tw.titles.unwrap_or(("VP Sales", "Analyst"));
    let lower = name.to_lowercase();
    let vp_email = format!("{lower}1@buyer.com");
    let an_email = format!("{lower}2@buyer.com");
    let vp = f.contact(&format!("{lower}1 One"), &vp_email, t1, "");
    let an = f.contact(&format!("{lower}2 Two"), &an_email, t2, "");
    f.role(i, &vp, "economic_buyer");
    f.role(i, &an, "champion");
    let calls = tw.calls.unwrap_or(&[(6, 10), (6, 12)]);
    for (k, (m, dd)) in calls.iter().enumerate() {
        let who = if k == 0 { &vp_email } else { &an_email };
        f.call(
            &format!("{name} call {k}"),
            t(*m, *dd, 0),
            &[who.as_str(), "rep1@seller.io"],
            &[],
        );
    }
}

/// Three won deals, each 10 days in lead (01-01 → 01-11) and 10 days in
/// demo (01-11 → 01-21): the medians of lead and demo are 10 days.
fn won(f: &mut Fixture) {
    for name in ["W1", "W2", "W3"] {
        let i = f.deal(DealSpec {
            name,
            pipeline: "sales",
            stage: "won",
            amount: 500,
            close: d(1, 21),
            owner: "rep1",
            created: t(1, 1, 0),
            forecast: None,
        });
        f.change(i, DealField::Stage, "lead", "demo", t(1, 11, 0));
        f.change(i, DealField::Stage, "demo", "won", t(1, 21, 0));
    }
}

/// As of 2026-06-15 00:00 (period 2026-Q2). Each deal and the one signal
/// built to fire on it (default points):
///
/// | deal | twist | fires |
/// |---|---|---|
/// | Healthy | none | nothing (0, low) |
/// | Quiet | calls 05-25 and 05-26: two people in 30 days, none in 14 | no_buyer_conversation 20 |
/// | Lonely | only the VP's call 06-10 | single_threaded 15 |
/// | Push1 | close 05-31 → 06-30 on 05-20 | close_date_pushed_once 10 |
/// | Push2 | 03-31 → 04-30 (03-25), 04-30 → 06-30 (04-25) | close_date_pushed_twice 20 |
/// | Slow | in demo since 05-29: 17 days = 1.70× the median of 10 | stage_time_over_1_5x 10 |
/// | Stuck | in demo since 05-20: 26 days = 2.60× | stage_time_over_2x 20 |
/// | Cut | 1000 → 800 (exactly 20 %) | amount_cut 15 |
/// | Late | closes 06-14, one day before T1 | close_date_passed 20 |
/// | Junior | titles "Analyst" and "Engineer" | no_senior_contact 10 |
/// | Near | in demo since 05-31 (exactly 1.5×, not above), 1000 → 810 (19 %), closes 06-15 (today, not passed), pulled in 07-31 → 06-15 (not a push) | nothing |
/// | Doom | no calls, no contacts' titles senior ("Intern", "Intern"), pushed twice to 06-01, demo since 05-01 (4.5×), 2000 → 1000 (50 %) | everything: 20+15+20+20+15+20+10 = 120, capped 100, critical |
///
/// 12 open deals: Doom critical (1000.00); the other 11 low, 9 × 1000 + Cut
/// 800 + Near 810 = 10610.00. The baseline: 3 won deals, medians for lead
/// and demo (2 stages). Rows: score, then amount, descending.
fn workspace() -> Fixture {
    let mut f = Fixture::default();
    f.sales_pipeline();
    f.user("rep1", None, "East");
    won(&mut f);
    deal(&mut f, "Healthy", Twist::default());
    deal(
        &mut f,
        "Quiet",
        Twist {
            calls: Some(&[(5, 25), (5, 26)]),
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Lonely",
        Twist {
            calls: Some(&[(6, 10)]),
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Push1",
        Twist {
            pushes: &[("2026-05-31", "2026-06-30", (5, 20))],
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Push2",
        Twist {
            pushes: &[
                ("2026-03-31", "2026-04-30", (3, 25)),
                ("2026-04-30", "2026-06-30", (4, 25)),
            ],
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Slow",
        Twist {
            stage: Some("demo"),
            demo_since: Some((5, 29)),
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Stuck",
        Twist {
            stage: Some("demo"),
            demo_since: Some((5, 20)),
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Cut",
        Twist {
            amount_from: Some(1000),
            amount: Some(800),
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Late",
        Twist {
            close: Some((6, 14)),
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Junior",
        Twist {
            titles: Some(("Analyst", "Engineer")),
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Near",
        Twist {
            stage: Some("demo"),
            demo_since: Some((5, 31)),
            amount_from: Some(1000),
            amount: Some(810),
            close: Some((6, 15)),
            pushes: &[("2026-07-31", "2026-06-15", (5, 1))],
            ..Default::default()
        },
    );
    deal(
        &mut f,
        "Doom",
        Twist {
            stage: Some("demo"),
            demo_since: Some((5, 1)),
            close: Some((6, 1)),
            pushes: &[
                ("2026-03-31", "2026-04-30", (3, 25)),
                ("2026-04-30", "2026-06-01", (4, 25)),
            ],
            amount_from: Some(2000),
            amount: Some(1000),
            calls: Some(&[]),
            titles: Some(("Intern", "Intern")),
        },
    );
    f
}

fn run(f: &Fixture, settings: Value) -> SkillReport {
    let ctx = f.context(
        period::parse("2026-Q2").expect("period"),
        t(6, 15, 0),
        &DealRisk.info().settings,
        settings,
        None,
    );
    DealRisk.run(&ctx).expect("report")
}

/// Each deal's fired signals.
fn fired(r: &SkillReport) -> BTreeMap<String, Vec<String>> {
    r.rows
        .iter()
        .map(|row| {
            (
                row["name"].as_str().unwrap_or_default().to_string(),
                row["signals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s["signal"].as_str().unwrap_or_default().to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn each_signal_fires_on_its_deal_and_only_there() {
    let r = run(&workspace(), json!({}));
    let got = fired(&r);
    let want: BTreeMap<String, Vec<String>> = [
        ("Healthy", vec![]),
        ("Quiet", vec!["no_buyer_conversation"]),
        ("Lonely", vec!["single_threaded"]),
        ("Push1", vec!["close_date_pushed_once"]),
        ("Push2", vec!["close_date_pushed_twice"]),
        ("Slow", vec!["stage_time_over_1_5x"]),
        ("Stuck", vec!["stage_time_over_2x"]),
        ("Cut", vec!["amount_cut"]),
        ("Late", vec!["close_date_passed"]),
        ("Junior", vec!["no_senior_contact"]),
        ("Near", vec![]),
        (
            "Doom",
            vec![
                "no_buyer_conversation",
                "single_threaded",
                "close_date_pushed_twice",
                "stage_time_over_2x",
                "amount_cut",
                "close_date_passed",
                "no_senior_contact",
            ],
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(got, want);
}

fn render(r: &SkillReport) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let _ = writeln!(
        out,
        "at {} open {} bands {} baseline {}",
        s["evaluated_at"].as_str().unwrap_or_default(),
        s["open_deals"],
        s["by_band"],
        s["baseline"]
    );
    for row in &r.rows {
        let _ = writeln!(
            out,
            "{} {} {} {}",
            row["name"].as_str().unwrap_or_default(),
            row["score"],
            row["band"].as_str().unwrap_or_default(),
            row["amount"].as_str().unwrap_or_default(),
        );
        for sig in row["signals"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                sig["signal"].as_str().unwrap_or_default(),
                sig["points"],
                sig["evidence"].as_str().unwrap_or_default()
            );
        }
    }
    out
}

#[test]
fn deal_risk_report_by_hand() {
    let r = run(&workspace(), json!({}));
    expect![[r#"
        at 2026-06-15T00:00:00Z open 12 bands {"critical":{"amount":"1000.00","count":1},"high":{"amount":"0.00","count":0},"low":{"amount":"10610.00","count":11},"medium":{"amount":"0.00","count":0}} baseline {"min_samples":3,"stages_with_median":2,"won_deals":3}
        Doom 100 critical 1000.00
          no_buyer_conversation 20: no conversation with the buyer in 14 days (never)
          single_threaded 15: single-threaded: no external contact engaged in the last 30 days
          close_date_pushed_twice 20: close date pushed 2×: 2026-03-31 → 2026-04-30 → 2026-06-01
          stage_time_over_2x 20: 45.0 days in stage demo: 4.50× the won deals' median of 10.0 days (3 samples)
          amount_cut 15: amount cut 50%: 2000.00 → 1000.00
          close_date_passed 20: close date 2026-06-01 passed 14 days ago
          no_senior_contact 10: no contact with a senior title: doom1 One (Intern), doom2 Two (Intern)
        Quiet 20 low 1000.00
          no_buyer_conversation 20: no conversation with the buyer in 14 days (last 2026-05-26: "Quiet call 1" with quiet2 Two)
        Push2 20 low 1000.00
          close_date_pushed_twice 20: close date pushed 2×: 2026-03-31 → 2026-04-30 → 2026-06-30
        Stuck 20 low 1000.00
          stage_time_over_2x 20: 26.0 days in stage demo: 2.60× the won deals' median of 10.0 days (3 samples)
        Late 20 low 1000.00
          close_date_passed 20: close date 2026-06-14 passed 1 day ago
        Lonely 15 low 1000.00
          single_threaded 15: single-threaded: only lonely1 One engaged in the last 30 days
        Cut 15 low 800.00
          amount_cut 15: amount cut 20%: 1000.00 → 800.00
        Push1 10 low 1000.00
          close_date_pushed_once 10: close date pushed 1×: 2026-05-31 → 2026-06-30
        Slow 10 low 1000.00
          stage_time_over_1_5x 10: 17.0 days in stage demo: 1.70× the won deals' median of 10.0 days (3 samples)
        Junior 10 low 1000.00
          no_senior_contact 10: no contact with a senior title: junior1 One (Analyst), junior2 Two (Engineer)
        Healthy 0 low 1000.00
        Near 0 low 810.00
    "#]]
    .assert_eq(&render(&r));
}

#[test]
fn weights_from_settings_change_the_score() {
    let f = workspace();
    let score = |r: &SkillReport, name: &str| {
        r.rows
            .iter()
            .find(|row| row["name"] == name)
            .map(|row| (row["score"].clone(), row["band"].clone()))
    };
    let r = run(&f, json!({}));
    assert_eq!(score(&r, "Lonely"), Some((json!(15), json!("low"))));
    assert_eq!(score(&r, "Cut"), Some((json!(15), json!("low"))));
    let r = run(
        &f,
        json!({"weight_single_threaded": 60, "weight_amount_cut": 0, "band_high": 40}),
    );
    assert_eq!(score(&r, "Lonely"), Some((json!(60), json!("high"))));
    // A weight of 0 turns the signal off: it is not listed.
    assert_eq!(score(&r, "Cut"), Some((json!(0), json!("low"))));
    assert_eq!(fired(&r)["Cut"], Vec::<String>::new());
    // Thresholds: a 19 % cut fires at 15 %.
    let r = run(&f, json!({"amount_cut_percent": 15}));
    assert_eq!(fired(&r)["Near"], vec!["amount_cut".to_string()]);
}

#[test]
fn every_open_deal_gets_a_risk_update_equal_to_its_row() {
    let f = workspace();
    let r = run(
        &f,
        json!({"deals_listed": 2, "weight_no_senior_contact": 0}),
    );
    assert_eq!(r.rows.len(), 2);
    assert_eq!(
        r.risk_updates.len() as u64,
        r.summary["open_deals"].as_u64().expect("open deals"),
        "every open deal, listed or not"
    );
    for row in &r.rows {
        let update = r
            .risk_updates
            .iter()
            .find(|u| json!(u.deal_id) == row["deal_id"])
            .expect("an update per row");
        assert_eq!(json!(update.score), row["score"]);
        let signals: Vec<Value> = update
            .reasons
            .iter()
            .map(|r| json!({"signal": r.code.as_str(), "points": r.points, "evidence": r.detail}))
            .collect();
        assert_eq!(json!(signals), row["signals"]);
    }
    assert!(r
        .risk_updates
        .iter()
        .flat_map(|u| &u.reasons)
        .all(|r| r.code.as_str() != "no_senior_contact" && r.points > 0));
}

#[test]
fn senior_titles_match_whole_words() {
    let p: Vec<String> = ["vp", "vice president", "head", "director", "chief"]
        .map(String::from)
        .to_vec();
    assert!(is_senior("VP Sales", &p));
    assert!(is_senior("Vice President, Operations", &p));
    assert!(is_senior("Head of IT", &p));
    assert!(is_senior("Chief Revenue Officer", &p));
    assert!(!is_senior("Supervisor", &p));
    assert!(!is_senior("Vice Chair", &p));
    assert!(!is_senior("Headcount Planner", &p));
}
