//! Tests of the skill module: settings, the as-of rebuild of deals (the same
//! answers as `deal_as_of`), the org tree, bounded explanations.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::loader::from_history;
use super::*;
use crate::model::{
    deal_as_of, ChangeOrigin, Deal, DealChange, DealField, NewDeal, NewPipelineStage, NewUser,
    PipelineStage, StageCategory, User,
};

fn specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec {
            name: "limit",
            description: "",
            kind: SettingKind::Integer { min: 0, max: 10 },
            default: json!(5),
        },
        SettingSpec {
            name: "mode",
            description: "",
            kind: SettingKind::String {
                choices: vec!["a", "b"],
            },
            default: json!("a"),
        },
        SettingSpec {
            name: "map",
            description: "",
            kind: SettingKind::StringMap {
                values: vec!["x", "y"],
            },
            default: json!({}),
        },
    ]
}

fn field_of(e: crate::Error) -> String {
    match e {
        crate::Error::InvalidInput { field, .. } => field,
        other => panic!("{other:?}"),
    }
}

#[test]
fn settings_layer_over_defaults_and_name_the_bad_field() {
    let specs = specs();
    let s =
        Settings::resolve(&specs, &[&json!({"limit": 7}), &json!({"mode": "b"})]).expect("valid");
    assert_eq!(s.to_value(), json!({"limit": 7, "mode": "b", "map": {}}));
    assert_eq!(s.i64("limit", 0), 7);
    assert_eq!(s.str("mode"), Some("b"));
    let bad = |v| field_of(Settings::resolve(&specs, &[&v]).unwrap_err());
    assert_eq!(bad(json!({"limit": 11})), "settings.limit");
    assert_eq!(bad(json!({"limit": 1.5})), "settings.limit");
    assert_eq!(bad(json!({"mode": "c"})), "settings.mode");
    assert_eq!(bad(json!({"map": {"k": "z"}})), "settings.map.k");
    assert_eq!(bad(json!({"other": 1})), "settings.other");
    assert_eq!(bad(json!([1])), "settings");
    assert!(Settings::resolve(&specs, &[&serde_json::Value::Null]).is_ok());
}

#[test]
fn explained_figures_keep_the_largest_parts_only() {
    let mut b = ExplainedBuilder::new(2);
    for i in 0..1_000u128 {
        b.push(Decimal::from(i as i64 % 7), Uuid::from_u128(i), i as usize);
    }
    let e = b.finish(|t| DealEvidence {
        deal_id: Uuid::from_u128(t as u128),
        source_id: t.to_string(),
        name: String::new(),
        amount: String::new(),
        why: String::new(),
    });
    assert_eq!(e.count, 1_000);
    assert_eq!(e.more, 998);
    // The largest part is 6; the two smallest ids holding 6 are 6 and 13.
    assert_eq!(
        e.deals
            .iter()
            .map(|d| d.source_id.as_str())
            .collect::<Vec<_>>(),
        ["6", "13"]
    );
    let total: i64 = (0..1_000).map(|i| i % 7).sum();
    assert_eq!(e.amount, money(Decimal::from(total)));
    assert_eq!(money(Decimal::new(15, 1)), "1.50");
    assert_eq!(money(Decimal::new(123456, 4)), "12.3456");
}

fn user(n: u128, manager: Option<u128>) -> User {
    User {
        id: Uuid::from_u128(n),
        workspace_id: Uuid::nil(),
        source: "s".into(),
        fields: NewUser {
            source_id: format!("u{n}"),
            manager_source_id: manager.map(|m| format!("u{m}")),
            properties: json!({}),
            ..Default::default()
        },
        manager_id: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        deleted_at: None,
    }
}

#[test]
fn the_org_tree_breaks_cycles_and_orders_bottom_up() {
    // 1 ← 2 ← 3, and a cycle 4 → 5 → 4, and 6 reporting to an unknown user.
    let users = vec![
        user(1, None),
        user(2, Some(1)),
        user(3, Some(2)),
        user(4, Some(5)),
        user(5, Some(4)),
        user(6, Some(99)),
    ];
    let org = OrgTree::new(&users);
    assert_eq!(org.roots, vec![0, 3, 5]);
    assert_eq!(org.manager[4], Some(3));
    assert_eq!(org.reports[0], vec![1]);
    let order = org.bottom_up();
    assert_eq!(order.len(), 6);
    let pos = |i| order.iter().position(|&x| x == i).expect("listed");
    assert!(pos(2) < pos(1) && pos(1) < pos(0) && pos(4) < pos(3));
    assert_eq!(org.depths(), vec![0, 1, 2, 0, 1, 0]);
    assert_eq!(org.find("s", "u3"), Some(2));
}

const STAGES: [(&str, StageCategory); 4] = [
    ("a", StageCategory::Open),
    ("b", StageCategory::Open),
    ("w", StageCategory::Won),
    ("l", StageCategory::Lost),
];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("t")
}

fn stages() -> Vec<PipelineStage> {
    STAGES
        .iter()
        .enumerate()
        .map(|(i, (s, c))| PipelineStage {
            id: Uuid::from_u128(i as u128),
            workspace_id: Uuid::nil(),
            source: "s".into(),
            fields: NewPipelineStage {
                pipeline: "p".into(),
                stage: (*s).into(),
                category: *c,
                ..Default::default()
            },
        })
        .collect()
}

prop_compose! {
    fn history()(
        created in 0..50i64,
        stage in 0..4usize,
        amount in proptest::option::of(0..1000i64),
        events in proptest::collection::vec((0..100i64, 0..3usize, 0..4usize, proptest::option::of(0..1000i64), any::<bool>()), 0..8),
    ) -> (Deal, Vec<DealChange>) {
        let mut changes = Vec::new();
        for (n, (day, field, s, a, with_old)) in events.into_iter().enumerate() {
            let (field, old, new) = match field {
                0 => (DealField::Stage, Some(STAGES[(s + 1) % 4].0.to_string()), Some(STAGES[s].0.to_string())),
                1 => (DealField::Amount, Some("1".to_string()), a.map(|a| a.to_string())),
                _ => (DealField::CloseDate, None, Some(format!("2026-02-{:02}", s + 1))),
            };
            changes.push(DealChange {
                id: Uuid::from_u128(n as u128 + 1),
                workspace_id: Uuid::nil(),
                deal_id: Uuid::nil(),
                field,
                old_value: if with_old { old } else { None },
                new_value: new,
                changed_at: base() + Duration::days(day),
                origin: ChangeOrigin::Vendor,
            });
        }
        let deal = Deal {
            id: Uuid::from_u128(7),
            workspace_id: Uuid::nil(),
            source: "s".into(),
            fields: NewDeal {
                source_id: "d".into(),
                name: "d".into(),
                pipeline: Some("p".into()),
                stage: Some(STAGES[stage].0.into()),
                stage_category: STAGES[stage].1,
                amount: amount.map(Decimal::from),
                source_created_at: Some(base() + Duration::days(created)),
                ..Default::default()
            },
            owner_id: None,
            account_id: None,
            computed: None,
            created_at: base(),
            updated_at: base(),
            deleted_at: None,
        };
        (deal, changes)
    }
}

proptest! {
    /// Rebuilding a deal at `t` from a context as of `as_of >= t` gives what
    /// `deal_as_of` gives from the whole history.
    #[test]
    fn state_at_agrees_with_deal_as_of((deal, changes) in history(), t in 0..120i64, later in 0..60i64) {
        let stages = stages();
        let at = base() + Duration::days(t);
        let as_of = at + Duration::days(later);
        let expected = deal_as_of(&deal, &changes, &stages, at);
        let got = from_history(&deal, &changes, &stages, as_of)
            .and_then(|d| d.state_at(at, &StageCatalog::new(stages.clone())));
        match (expected, got) {
            (None, None) => {}
            (Some(e), Some(g)) => {
                prop_assert_eq!(e.stage, g.stage);
                prop_assert_eq!(e.stage_category, g.stage_category);
                prop_assert_eq!(e.amount, g.amount);
                prop_assert_eq!(e.close_date, g.close_date);
            }
            (e, g) => prop_assert!(false, "{:?} vs {:?}", e, g),
        }
    }
}
