//! The rep scorecard on a hand-built workspace: two teams, four reps.

mod common;

use std::fmt::Write as _;

use common::{d, t, DealSpec, Fixture};
use expect_test::expect;
use pandora_core::model::DealField;
use pandora_core::skill::{Skill, SkillReport};
use pandora_skills::period;
use pandora_skills::RepScorecard;
use serde_json::{json, Value};

/// A deal of `owner` created `created` (month, day) in `stage`; closed
/// deals get a stage change from proposal at `closed`.
fn deal(
    f: &mut Fixture,
    name: &'static str,
    owner: &'static str,
    stage: &'static str,
    amount: i64,
    created: (u32, u32),
    closed: Option<(u32, u32)>,
) -> usize {
    let i = f.deal(DealSpec {
        name,
        pipeline: "sales",
        stage,
        amount,
        close: d(6, 30),
        owner,
        created: t(created.0, created.1, 0),
        forecast: None,
    });
    if let Some((m, dd)) = closed {
        f.change(i, DealField::Stage, "proposal", stage, t(m, dd, 0));
    }
    i
}

/// Period 2026-Q2 as of 2026-07-15: T0 = 04-01, T1 = 07-01. East: mgr1
/// over r1, r2, r3; West: mgr2 over r4 (managers are not reps).
///
/// | rep | quota | won (created → won, days) | lost | open at T1 | created in Q2 | conversations |
/// |---|---|---|---|---|---|---|
/// | r1 | 1000 | A 600 (03-01 → 05-01, 61), B 400 (04-01 → 04-21, 20) | C 200 | D 500, Ann and Bob engaged 06-20 (multi) | B, C, D = 1100 | 1 (06-20) |
/// | r2 | 1000 | E 300 (04-01 → 06-01, 61) | F 300, G 400 | H 1000 (Cy only, 06-25), I 200 (none) | E, F, G, H, I = 2200 | 1 (06-25) |
/// | r3 | 500 | J 250 (05-01 → 05-11, 10) | – | – | J = 250 | 2 (05-05, 05-06) |
/// | r4 | 2000 | K 4000 (04-01 → 06-01, 61) | – | – | K = 4000 | 0 |
///
/// Raw figures (attainment, win count, win amount, pipeline ÷ 3 × remaining
/// quota, cycle, size, multi, conversations):
///
/// * r1: 1.0, 2/3, 1000/1200 = .8333, none (quota met), 40.5, 500, 1.0, 1
/// * r2: .3, 1/3, 300/1000 = .3, 2200/2100 = 1.0476, 61, 300, 0/2 = 0, 1
/// * r3: .5, 1.0, 1.0, 250/750 = .3333, 10, 250, none (no open deals), 2
/// * r4: 4000/2000 = 2.0 capped 1.5, 1.0, 1.0, none, 61, 4000, none, 0
///
/// East medians: .5, .6667, .8333, 29/42 = .6905, 40.5, 300, .5, 1. Scores
/// (50 × v ÷ m capped at 100; cycle 50 × m ÷ v):
///
/// * r1: 100, 50, 50, –, 50, 83.3, 100, 50 → (3000 + 500 + 500 + 500 +
///   833.3 + 1000 + 250) ÷ 85 = 77.5
/// * r2: 30, 25, 18, 75.9 (50 × 44/29), 33.2, 50, 0, 50 → (900 + 250 + 180 +
///   1137.9 + 332.0 + 500 + 0 + 250) ÷ 100 = 35.5
/// * r3: 50, 75, 60, 24.1 (50 × 14/29), 100 (202.5 capped), 41.7, –, 100 →
///   (1500 + 750 + 600 + 362.1 + 1000 + 416.7 + 500) ÷ 90 = 57.0
/// * r4, alone in West: every scored component 50 (conversations 0 against a
///   median 0 also 50) → 50.0
///
/// Company ranks: r1 77.5, r3 57.0, r4 50.0, r2 35.5; East ranks r1, r3, r2.
fn workspace() -> Fixture {
    let mut f = Fixture::default();
    f.sales_pipeline();
    f.user("mgr1", None, "East");
    let r1 = f.user("r1", Some("mgr1"), "East");
    let r2 = f.user("r2", Some("mgr1"), "East");
    let r3 = f.user("r3", Some("mgr1"), "East");
    f.user("mgr2", None, "West");
    let r4 = f.user("r4", Some("mgr2"), "West");
    f.quota(r1, "2026-Q2", 1000);
    f.quota(r2, "2026-Q2", 1000);
    f.quota(r3, "2026-Q2", 500);
    f.quota(r4, "2026-Q2", 2000);
    deal(&mut f, "A", "r1", "won", 600, (3, 1), Some((5, 1)));
    deal(&mut f, "B", "r1", "won", 400, (4, 1), Some((4, 21)));
    deal(&mut f, "C", "r1", "lost", 200, (4, 10), Some((6, 1)));
    let dd = deal(&mut f, "D", "r1", "proposal", 500, (5, 1), None);
    deal(&mut f, "E", "r2", "won", 300, (4, 1), Some((6, 1)));
    deal(&mut f, "F", "r2", "lost", 300, (4, 1), Some((5, 1)));
    deal(&mut f, "G", "r2", "lost", 400, (4, 5), Some((5, 15)));
    let h = deal(&mut f, "H", "r2", "proposal", 1000, (4, 15), None);
    deal(&mut f, "I", "r2", "demo", 200, (5, 1), None);
    deal(&mut f, "J", "r3", "won", 250, (5, 1), Some((5, 11)));
    deal(&mut f, "K", "r4", "won", 4000, (4, 1), Some((6, 1)));
    let ann = f.contact("Ann Archer", "ann@acme.com", "VP", "");
    let bob = f.contact("Bob Baker", "bob@acme.com", "CFO", "");
    let cy = f.contact("Cy Cole", "cy@globex.com", "Analyst", "");
    f.role(dd, &ann, "champion");
    f.role(dd, &bob, "economic_buyer");
    f.role(h, &cy, "champion");
    f.call(
        "D review",
        t(6, 20, 0),
        &["ann@acme.com", "bob@acme.com", "r1@seller.io"],
        &[],
    );
    f.call(
        "H review",
        t(6, 25, 0),
        &["cy@globex.com", "r2@seller.io"],
        &[],
    );
    f.call(
        "Prospecting 1",
        t(5, 5, 0),
        &["r3@seller.io", "x@nowhere.org"],
        &[],
    );
    f.call(
        "Prospecting 2",
        t(5, 6, 0),
        &["r3@seller.io", "y@nowhere.org"],
        &[],
    );
    f
}

fn run(f: &Fixture, settings: Value) -> SkillReport {
    let ctx = f.context(
        period::parse("2026-Q2").expect("period"),
        t(7, 15, 0),
        &RepScorecard.info().settings,
        settings,
        None,
    );
    RepScorecard.run(&ctx).expect("report")
}

fn render(r: &SkillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "reps {} ranked {} medians {}",
        r.summary["reps"], r.summary["ranked"], r.summary["team_medians"]
    );
    for row in &r.rows {
        let _ = writeln!(
            out,
            "{} {} composite {} team #{} company #{}",
            row["source_id"].as_str().unwrap_or_default(),
            row["team"].as_str().unwrap_or_default(),
            row["composite"],
            row["rank_in_team"],
            row["rank_in_company"],
        );
        for (name, c) in row["components"].as_object().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {name}: value {} median {} score {}",
                c["value"], c["team_median"], c["score"]
            );
        }
    }
    out
}

#[test]
fn rep_scorecard_by_hand() {
    let r = run(&workspace(), json!({}));
    expect![[r#"
        reps 4 ranked 4 medians {"East":{"conversations":1.0,"deal_size":300.0,"multi_threaded":0.5,"pipeline_created":0.6905,"quota_attainment":0.5,"sales_cycle":40.5,"win_rate_amount":0.8333,"win_rate_count":0.6667},"West":{"conversations":0.0,"deal_size":4000.0,"multi_threaded":null,"pipeline_created":null,"quota_attainment":1.5,"sales_cycle":61.0,"win_rate_amount":1.0,"win_rate_count":1.0}}
        r1 East composite 77.5 team #1 company #1
          conversations: value 1 median 1.0 score 50.0
          deal_size: value 500.0 median 300.0 score 83.3
          multi_threaded: value 1.0 median 0.5 score 100.0
          pipeline_created: value null median 0.6905 score null
          quota_attainment: value 1.0 median 0.5 score 100.0
          sales_cycle: value 40.5 median 40.5 score 50.0
          win_rate_amount: value 0.8333 median 0.8333 score 50.0
          win_rate_count: value 0.6667 median 0.6667 score 50.0
        r3 East composite 57.0 team #2 company #2
          conversations: value 2 median 1.0 score 100.0
          deal_size: value 250.0 median 300.0 score 41.7
          multi_threaded: value null median 0.5 score null
          pipeline_created: value 0.3333 median 0.6905 score 24.1
          quota_attainment: value 0.5 median 0.5 score 50.0
          sales_cycle: value 10.0 median 40.5 score 100.0
          win_rate_amount: value 1.0 median 0.8333 score 60.0
          win_rate_count: value 1.0 median 0.6667 score 75.0
        r4 West composite 50.0 team #1 company #3
          conversations: value 0 median 0.0 score 50.0
          deal_size: value 4000.0 median 4000.0 score 50.0
          multi_threaded: value null median null score null
          pipeline_created: value null median null score null
          quota_attainment: value 1.5 median 1.5 score 50.0
          sales_cycle: value 61.0 median 61.0 score 50.0
          win_rate_amount: value 1.0 median 1.0 score 50.0
          win_rate_count: value 1.0 median 1.0 score 50.0
        r2 East composite 35.5 team #3 company #4
          conversations: value 1 median 1.0 score 50.0
          deal_size: value 300.0 median 300.0 score 50.0
          multi_threaded: value 0.0 median 0.5 score 0.0
          pipeline_created: value 1.0476 median 0.6905 score 75.9
          quota_attainment: value 0.3 median 0.5 score 30.0
          sales_cycle: value 61.0 median 40.5 score 33.2
          win_rate_amount: value 0.3 median 0.8333 score 18.0
          win_rate_count: value 0.3333 median 0.6667 score 25.0
    "#]]
    .assert_eq(&render(&r));
    // The raw figures behind r2's components.
    let r2 = &r.rows[3];
    assert_eq!(r2["source_id"], "r2");
    let c = &r2["components"];
    assert_eq!(c["pipeline_created"]["created"]["amount"], "2200.00");
    assert_eq!(c["pipeline_created"]["target"], "2100.00");
    assert_eq!(c["win_rate_amount"]["lost"]["amount"], "700.00");
    assert_eq!(c["multi_threaded"]["open_deals"], 2);
}

#[test]
fn weights_change_the_composite() {
    // Only attainment counts: r1 100, r4 50, r3 50, r2 30.
    let only_attainment: Value = json!({
        "weight_win_rate_count": 0, "weight_win_rate_amount": 0,
        "weight_pipeline_created": 0, "weight_sales_cycle": 0, "weight_deal_size": 0,
        "weight_multi_threaded": 0, "weight_conversations": 0,
    });
    let r = run(&workspace(), only_attainment);
    let got: Vec<(String, Value)> = r
        .rows
        .iter()
        .map(|row| {
            (
                row["source_id"].as_str().unwrap_or_default().to_string(),
                row["composite"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("r1".to_string(), json!(100.0)),
            ("r3".to_string(), json!(50.0)),
            ("r4".to_string(), json!(50.0)),
            ("r2".to_string(), json!(30.0)),
        ]
    );
}
