//! The forecast rollup against a hand-computed three-level manager tree: a
//! CRO over a manager (with deals and a quota of their own) and a rep; the
//! manager over two reps, one without quota; plus a deal of no known user.

mod common;

use common::{d, t, DealSpec, Fixture};
use pandora_core::skill::{PreviousReport, Skill, SkillReport};
use pandora_skills::period;
use pandora_skills::ForecastRollup;
use serde_json::{json, Value};
use uuid::Uuid;

/// The tree, period 2026-Q2, run as of 2026-06-15 (so deals are taken as they
/// stand then). Categories (own deals):
///
/// | owner | deals | pipeline | best case | commit | closed | omitted |
/// |---|---|---|---|---|---|---|
/// | rep1 (quota 100, set) | A won 100; B vendor "Commit" 200; C stage proposal → best_case (setting) 50; D lost 80 | 0 | 50 | 200 | 100 | 80 |
/// | rep2 (no quota) | E vendor "Pipeline" 300; F vendor "closed" but open → commit 40; G closes in Q3 (out) | 300 | 0 | 40 | 0 | 0 |
/// | mgr (quota 300, set) | H won 70; I demo, no mapping → default pipeline 30 | 30 | 0 | 0 | 70 | 0 |
/// | rep3 (quota 50 from the vendor record) | J won 25; K vendor "Best Case" 60 | 0 | 60 | 0 | 25 | 0 |
/// | (unassigned) | L vendor "commit" 10, owner "ghost" | 0 | 0 | 10 | 0 | 0 |
///
/// Rollups (pipeline, best, commit, closed, omitted) and cumulative (closed,
/// commit = commit + closed, best case = best + commit + closed, open
/// pipeline = pipeline + best + commit):
///
/// * rep1: closed 100, commit 300, best case 350, open 250; attainment
///   100/100 = 1.0000, gap 0, coverage none (quota met).
/// * rep2: closed 0, commit 40, best case 40, open 340; no quota.
/// * mgr = own + rep1 + rep2 = (330, 50, 240, 170, 80): closed 170, commit
///   410, best case 460, open 620; quota 300: attainment 0.5667, gap 130,
///   coverage 620/130 = 4.7692.
/// * rep3: closed 25, commit 25, best case 85, open 60; quota 50: attainment
///   0.5000, gap 25, coverage 2.4000.
/// * cro = mgr + rep3 = (330, 110, 240, 195, 80): closed 195, commit 435,
///   best case 545, open 680; quota = mgr 300 + rep3 50 = 350 (team sum):
///   attainment 0.5571, gap 155, coverage 680/155 = 4.3871.
/// * company = cro + unassigned = (330, 110, 250, 195, 80): closed 195,
///   commit 445, best case 555, open 690; quota 350: attainment 0.5571,
///   gap 155, coverage 690/155 = 4.4516.
struct Tree {
    fixture: Fixture,
    ids: [(String, Uuid); 5],
}

fn tree() -> Tree {
    let mut f = Fixture::default();
    f.sales_pipeline();
    let cro = f.user("cro", None, "Leadership");
    let mgr = f.user("mgr", Some("cro"), "East");
    let rep1 = f.user("rep1", Some("mgr"), "East");
    let rep2 = f.user("rep2", Some("mgr"), "East");
    let rep3 = f.user("rep3", Some("cro"), "West");
    f.quota(mgr, "2026-Q2", 300);
    f.quota(rep1, "2026-Q2", 100);
    f.quota(rep1, "2026-Q3", 999);
    f.users[4].fields.properties = json!({"quota": 50, "quota_period": "quarter"});
    let created = t(3, 1, 0);
    let mut deal =
        |name: &str, stage: &str, amount: i64, month: u32, owner: &str, fc: Option<&str>| {
            f.deal(DealSpec {
                name,
                pipeline: "sales",
                stage,
                amount,
                close: d(month, 20),
                owner,
                created,
                forecast: fc,
            })
        };
    deal("A", "won", 100, 5, "rep1", None);
    deal("B", "proposal", 200, 6, "rep1", Some("Commit"));
    deal("C", "proposal", 50, 6, "rep1", None);
    deal("D", "lost", 80, 4, "rep1", Some("Commit"));
    deal("E", "demo", 300, 6, "rep2", Some("Pipeline"));
    deal("F", "demo", 40, 5, "rep2", Some("closed"));
    deal("G", "demo", 999, 8, "rep2", Some("Commit"));
    deal("H", "won", 70, 4, "mgr", None);
    deal("I", "demo", 30, 6, "mgr", None);
    deal("J", "won", 25, 5, "rep3", None);
    deal("K", "lead", 60, 6, "rep3", Some("Best Case"));
    deal("L", "lead", 10, 6, "ghost", Some("commit"));
    Tree {
        ids: [
            ("cro".into(), cro),
            ("mgr".into(), mgr),
            ("rep1".into(), rep1),
            ("rep2".into(), rep2),
            ("rep3".into(), rep3),
        ],
        fixture: f,
    }
}

fn run(tree: &Tree, previous: Option<PreviousReport>) -> SkillReport {
    let ctx = tree.fixture.context(
        period::parse("2026-Q2").expect("period"),
        t(6, 15, 0),
        &ForecastRollup.info().settings,
        json!({"stage_categories": {"proposal": "best_case"}}),
        previous,
    );
    ForecastRollup.run(&ctx).expect("report")
}

fn row<'a>(report: &'a SkillReport, key: &str) -> &'a Value {
    report
        .rows
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key}"))
}

/// `[pipeline, best_case, commit, closed, omitted]` of a `rollup` or `own` object.
fn categories(v: &Value) -> [String; 5] {
    ["pipeline", "best_case", "commit", "closed", "omitted"]
        .map(|k| v[k]["amount"].as_str().unwrap_or_default().to_string())
}

fn cumulative(v: &Value) -> [String; 4] {
    ["closed", "commit", "best_case", "open_pipeline"]
        .map(|k| v["cumulative"][k].as_str().unwrap_or_default().to_string())
}

fn quota_figures(v: &Value) -> [Value; 5] {
    ["quota", "quota_source", "attainment", "gap", "coverage"].map(|k| v[k].clone())
}

#[test]
fn three_level_tree_rolls_up_by_hand() {
    let tree = tree();
    let report = run(&tree, None);
    let id = |name: &str| {
        tree.ids
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.to_string())
            .expect("user")
    };
    let s = |v: &str| v.to_string();

    let rep1 = row(&report, &id("rep1"));
    assert_eq!(
        categories(&rep1["own"]),
        [s("0.00"), s("50.00"), s("200.00"), s("100.00"), s("80.00")]
    );
    assert_eq!(
        cumulative(rep1),
        [s("100.00"), s("300.00"), s("350.00"), s("250.00")]
    );
    assert_eq!(
        quota_figures(rep1),
        [
            json!("100.00"),
            json!("set"),
            json!("1.0000"),
            json!("0.00"),
            Value::Null
        ]
    );
    let why: Vec<&str> = rep1["own"]["best_case"]["deals"]
        .as_array()
        .expect("deals")
        .iter()
        .map(|d| d["why"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(why, ["stage proposal mapped to best_case (setting)"]);
    assert_eq!(
        rep1["own"]["commit"]["deals"][0]["why"],
        json!("vendor forecast category \"Commit\"")
    );
    assert_eq!(
        rep1["own"]["omitted"]["deals"][0]["why"],
        json!("lost (stage lost)")
    );

    let rep2 = row(&report, &id("rep2"));
    assert_eq!(
        categories(&rep2["rollup"]),
        [s("300.00"), s("0.00"), s("40.00"), s("0.00"), s("0.00")]
    );
    assert_eq!(
        cumulative(rep2),
        [s("0.00"), s("40.00"), s("40.00"), s("340.00")]
    );
    assert_eq!(
        quota_figures(rep2),
        [
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null
        ]
    );

    let mgr = row(&report, &id("mgr"));
    assert_eq!(
        categories(&mgr["own"]),
        [s("30.00"), s("0.00"), s("0.00"), s("70.00"), s("0.00")]
    );
    assert_eq!(
        categories(&mgr["rollup"]),
        [
            s("330.00"),
            s("50.00"),
            s("240.00"),
            s("170.00"),
            s("80.00")
        ]
    );
    assert_eq!(
        cumulative(mgr),
        [s("170.00"), s("410.00"), s("460.00"), s("620.00")]
    );
    assert_eq!(
        quota_figures(mgr),
        [
            json!("300.00"),
            json!("set"),
            json!("0.5667"),
            json!("130.00"),
            json!("4.7692")
        ]
    );
    assert_eq!(mgr["depth"], json!(1));
    assert_eq!(mgr["reports"], json!([id("rep1"), id("rep2")]));

    let rep3 = row(&report, &id("rep3"));
    assert_eq!(
        cumulative(rep3),
        [s("25.00"), s("25.00"), s("85.00"), s("60.00")]
    );
    assert_eq!(
        quota_figures(rep3),
        [
            json!("50.00"),
            json!("vendor"),
            json!("0.5000"),
            json!("25.00"),
            json!("2.4000")
        ]
    );

    let cro = row(&report, &id("cro"));
    assert_eq!(
        categories(&cro["rollup"]),
        [
            s("330.00"),
            s("110.00"),
            s("240.00"),
            s("195.00"),
            s("80.00")
        ]
    );
    assert_eq!(
        cumulative(cro),
        [s("195.00"), s("435.00"), s("545.00"), s("680.00")]
    );
    assert_eq!(
        quota_figures(cro),
        [
            json!("350.00"),
            json!("team_sum"),
            json!("0.5571"),
            json!("155.00"),
            json!("4.3871")
        ]
    );
    assert_eq!(cro["depth"], json!(0));

    let unassigned = row(&report, "(unassigned)");
    assert_eq!(
        categories(&unassigned["own"]),
        [s("0.00"), s("0.00"), s("10.00"), s("0.00"), s("0.00")]
    );

    let summary = &report.summary;
    assert_eq!(
        categories(&summary["rollup"]),
        [
            s("330.00"),
            s("110.00"),
            s("250.00"),
            s("195.00"),
            s("80.00")
        ]
    );
    assert_eq!(
        cumulative(summary),
        [s("195.00"), s("445.00"), s("555.00"), s("690.00")]
    );
    assert_eq!(
        quota_figures(summary),
        [
            json!("350.00"),
            json!("team_sum"),
            json!("0.5571"),
            json!("155.00"),
            json!("4.4516")
        ]
    );
    assert_eq!(summary["deals"], json!(11), "G closes in Q3");
    assert_eq!(summary["change"], Value::Null, "no previous run");

    // Rows come in tree order: cro, mgr, rep1, rep2, rep3, then unassigned.
    let keys: Vec<&str> = report
        .rows
        .iter()
        .map(|r| r["key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            id("cro").as_str(),
            &id("mgr"),
            &id("rep1"),
            &id("rep2"),
            &id("rep3"),
            "(unassigned)"
        ]
    );
}

#[test]
fn change_since_the_previous_run_of_the_period() {
    let mut tree = tree();
    let first = run(&tree, None);
    // B (rep1's 200 commit) is won; E (rep2's 300 pipeline) grows to 350.
    let b = tree
        .fixture
        .deals
        .iter()
        .position(|(d, _)| d.fields.name == "B")
        .expect("B");
    tree.fixture.deals[b].0.fields.stage = Some("won".into());
    tree.fixture.deals[b].0.fields.stage_category = pandora_core::model::StageCategory::Won;
    let e = tree
        .fixture
        .deals
        .iter()
        .position(|(d, _)| d.fields.name == "E")
        .expect("E");
    tree.fixture.deals[e].0.fields.amount = Some(350.into());
    let previous = PreviousReport {
        run_id: Uuid::from_u128(7),
        as_of: t(6, 14, 0),
        report: serde_json::to_value(&first).expect("json"),
    };
    let second = run(&tree, Some(previous));
    let rep1 = tree.ids[2].1.to_string();
    let change = &row(&second, &rep1)["change"];
    assert_eq!(change["closed"], json!("200.00"));
    assert_eq!(change["commit"], json!("0.00"), "commit includes closed");
    assert_eq!(change["open_pipeline"], json!("-200.00"));
    assert_eq!(change["commit_category"], json!("-200.00"));
    let cro = tree.ids[0].1.to_string();
    let change = &row(&second, &cro)["change"];
    assert_eq!(change["closed"], json!("200.00"));
    assert_eq!(
        change["open_pipeline"],
        json!("-150.00"),
        "-200 commit + 50 pipeline"
    );
    assert_eq!(second.summary["change"]["best_case"], json!("0.00"));
    assert_eq!(
        second.summary["previous_run"]["run_id"],
        json!(Uuid::from_u128(7))
    );
}

#[test]
fn settings_change_the_categories() {
    let tree = tree();
    let ctx = tree.fixture.context(
        period::parse("2026-Q2").expect("period"),
        t(6, 15, 0),
        &ForecastRollup.info().settings,
        json!({"use_vendor_category": false, "default_category": "commit"}),
        None,
    );
    let report = ForecastRollup.run(&ctx).expect("report");
    // Open deals all default to commit: B 200, C 50, E 300, F 40, I 30, K 60, L 10.
    assert_eq!(
        categories(&report.summary["rollup"]),
        ["0.00", "0.00", "690.00", "195.00", "80.00"].map(String::from)
    );
}
