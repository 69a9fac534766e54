//! Computed deal fields in the store: written with the batch that changes a
//! deal or its history, left alone by a replay, listable by `min_risk` and
//! `sort=risk`, workspace-scoped; the baseline cache and its refresh.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::fixtures::{deal, deals_batch, new_workspace, write, StoreRef};
use super::pagination::{assert_ordered, walk};
use super::sync::{context, quiet, Fault, Scripted};
use crate::batch::{RecordBatch, RecordKind};
use crate::computed::{
    self, ComputedFields, RiskCode, RiskReason, StageBaseline, StoredBaseline, WorkspaceBaseline,
};
use crate::error::ErrorKind;
use crate::model::{
    self, ChangeOrigin, Deal, DealField, NewDeal, NewDealChange, NewPipelineStage, StageCategory,
    SyncMode, WorkspaceId,
};
use crate::query::{DealFilter, Direction, PageRequest, Sort, SortKey};
use crate::recompute::{self, SCAN_PAGE};
use crate::store::ComputedUpdate;
use crate::sync::run_sync;
use crate::Pandora;

fn pandora(store: &StoreRef) -> Pandora {
    Pandora::builder()
        .shared_store(store.clone())
        .build()
        .expect("build")
}

fn days_ago(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    now - Duration::days(days)
}

fn change(
    deal: &str,
    field: DealField,
    old: Option<&str>,
    new: Option<&str>,
    at: DateTime<Utc>,
) -> NewDealChange {
    NewDealChange {
        deal_source_id: deal.into(),
        field,
        old_value: old.map(Into::into),
        new_value: new.map(Into::into),
        changed_at: at,
        origin: ChangeOrigin::Vendor,
    }
}

/// The stages of the fixture pipeline `default`.
fn stages() -> Vec<NewPipelineStage> {
    [
        ("qualified", StageCategory::Open),
        ("proposal", StageCategory::Open),
        ("negotiation", StageCategory::Open),
        ("won", StageCategory::Won),
        ("lost", StageCategory::Lost),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (stage, category))| NewPipelineStage {
        pipeline: "default".into(),
        stage: stage.into(),
        category,
        display_order: Some(i as i32),
        ..Default::default()
    })
    .collect()
}

/// A baseline with medians for `qualified` and `proposal` and a sales cycle.
fn baseline(computed_at: DateTime<Utc>) -> StoredBaseline {
    let stage = |stage: &str, median_days: f64| StageBaseline {
        pipeline: Some("default".into()),
        stage: stage.into(),
        median_days,
        samples: 5,
    };
    StoredBaseline {
        baseline: WorkspaceBaseline {
            won_deals: 5,
            median_sales_cycle_days: Some(40.0),
            stages: vec![stage("proposal", 12.5), stage("qualified", 7.0)],
        },
        computed_at,
    }
}

/// Asserts two computations agree: floats within 1e-9 (a JSON round trip
/// may move the last bit), everything else exactly.
#[track_caller]
fn assert_same(stored: &ComputedFields, expected: &ComputedFields, what: &str) {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    let close_opt = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => close(a, b),
        (None, None) => true,
        _ => false,
    };
    assert!(
        close(stored.deal_age_days, expected.deal_age_days)
            && close(stored.days_in_current_stage, expected.days_in_current_stage)
            && close_opt(stored.avg_days_per_stage, expected.avg_days_per_stage)
            && close_opt(stored.stage_velocity, expected.stage_velocity),
        "{what}: stored {stored:?}\nexpected {expected:?}"
    );
    let exact = |f: &ComputedFields| {
        (
            f.computed_at,
            f.closed_at,
            f.stage_entered_at,
            f.stages_visited,
            f.close_date_pushes,
            f.risk_score,
            f.risk_reasons.clone(),
        )
    };
    assert_eq!(exact(stored), exact(expected), "{what}");
}

/// Checks every deal of `ws` named in `ids`: it has computed fields, and
/// they are what [`computed::compute_with`] gives for the deal as stored
/// (with its stored fields, whose entity risk signals carry over), its
/// stored history, the stored stage catalog, `baseline` and the workspace's
/// risk settings, at the stored `computed_at` (which must be `at` when
/// given).
async fn assert_matches_compute(
    store: &StoreRef,
    ws: WorkspaceId,
    ids: &[&str],
    baseline: Option<&WorkspaceBaseline>,
    at: Option<DateTime<Utc>>,
) {
    let catalog = store.list_stages(ws).await.expect("stages");
    let risk = recompute::risk_settings(store.as_ref(), ws)
        .await
        .expect("risk settings");
    for id in ids {
        let d = store
            .get_deal_by_source(ws, "test", id)
            .await
            .expect("deal");
        let stored = d
            .computed
            .clone()
            .unwrap_or_else(|| panic!("{id}: no computed fields"));
        if let Some(at) = at {
            assert_eq!(stored.computed_at, at, "{id}: computed at the run's time");
        }
        let history = store.deal_history(ws, d.id).await.expect("history");
        let expected =
            computed::compute_with(&d, &history, &catalog, baseline, stored.computed_at, &risk);
        assert_same(&stored, &expected, id);
    }
}

/// Deals exercising most fields and signals, with their history, relative to `now`.
fn rich_batch(now: DateTime<Utc>) -> RecordBatch {
    let mut b = RecordBatch::new("test");
    b.stages = stages();
    let date = |days: i64| Some((now + Duration::days(days)).date_naive());
    // a: moved to proposal 80 days ago, close date pushed twice (and now
    // passed), amount cut, owner changed 3 days ago.
    let mut a = deal("a", Some(1000), None);
    a.source_created_at = Some(days_ago(now, 120));
    a.source_updated_at = Some(days_ago(now, 3));
    a.stage = Some("proposal".into());
    a.close_date = date(-5);
    a.owner_source_id = Some("rep2".into());
    // b: no vendor creation time, no history.
    let mut b_deal = deal("b", Some(500), None);
    b_deal.close_date = date(30);
    // c: won ten days ago.
    let mut c = deal("c", Some(800), None);
    c.source_created_at = Some(days_ago(now, 50));
    c.stage = Some("won".into());
    c.stage_category = StageCategory::Won;
    c.close_date = date(-10);
    // d: open, no amount, no close date, inactive for 45 days.
    let mut d = deal("d", None, None);
    d.source_created_at = Some(days_ago(now, 45));
    b.deals = vec![a, b_deal, c, d];
    b.deal_changes = vec![
        change(
            "a",
            DealField::Stage,
            Some("qualified"),
            Some("proposal"),
            days_ago(now, 80),
        ),
        change(
            "a",
            DealField::CloseDate,
            None,
            Some(&date(-40).expect("date").to_string()),
            days_ago(now, 119),
        ),
        change(
            "a",
            DealField::CloseDate,
            None,
            Some(&date(-20).expect("date").to_string()),
            days_ago(now, 60),
        ),
        change(
            "a",
            DealField::CloseDate,
            None,
            Some(&date(-5).expect("date").to_string()),
            days_ago(now, 30),
        ),
        change(
            "a",
            DealField::Amount,
            Some("2000"),
            Some("1000"),
            days_ago(now, 20),
        ),
        change(
            "a",
            DealField::Owner,
            Some("rep1"),
            Some("rep2"),
            days_ago(now, 3),
        ),
        change(
            "c",
            DealField::Stage,
            Some("proposal"),
            Some("won"),
            days_ago(now, 10),
        ),
    ];
    b
}

/// Synced and ingested deals carry computed fields equal to
/// [`computed::compute_with`] over the same input: the stored deal, its
/// stored history, the stage catalog, the cached baseline and the
/// workspace's risk settings (its stored `deal_risk` settings), at the
/// run's time.
pub async fn computed_fields_match_compute_for_synced_and_ingested_deals(store: StoreRef) {
    let now = model::now();
    let ids = ["a", "b", "c", "d"];

    // Ingest, with a cached baseline.
    let ingested = new_workspace(&store, "ingested").await;
    let cached = baseline(now);
    store
        .put_workspace_baseline(ingested, &cached)
        .await
        .expect("baseline");
    let out = pandora(&store)
        .ingest(ingested, &rich_batch(now), None)
        .await
        .expect("ingest");
    assert_eq!(out.of(RecordKind::Deal).inserted, 4);
    assert_matches_compute(&store, ingested, &ids, Some(&cached.baseline), None).await;
    let a = store
        .get_deal_by_source(ingested, "test", "a")
        .await
        .expect("a");
    let a_fields = a.computed.expect("computed");
    assert!(a_fields.stage_velocity.is_some(), "{a_fields:?}");
    assert_eq!(a_fields.close_date_pushes, 2);
    let codes: Vec<RiskCode> = a_fields.risk_reasons.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [
            RiskCode::CloseDatePushedTwice,
            RiskCode::StageTimeOver2x,
            RiskCode::AmountCut,
            RiskCode::CloseDatePassed,
        ]
    );
    assert_eq!(a_fields.risk_score, 20 + 20 + 15 + 20);
    let c = store
        .get_deal_by_source(ingested, "test", "c")
        .await
        .expect("c");
    assert_eq!(
        c.computed.expect("computed").risk_score,
        0,
        "won deals score 0"
    );

    // Sync: a first page, then one that moves a deal (reported stage change,
    // observed amount change) and brings history for another without its
    // record; with the workspace's own risk weights (its deal_risk settings).
    let synced = new_workspace(&store, "synced").await;
    store
        .put_workspace_baseline(synced, &cached)
        .await
        .expect("baseline");
    store
        .put_skill_settings(
            synced,
            crate::risk::SKILL_ID,
            &serde_json::json!({
                "weight_amount_cut": 0,
                "weight_close_date_passed": 45,
                "deals_listed": 10,
            }),
            now,
        )
        .await
        .expect("settings");
    let first = rich_batch(now);
    let mut second = RecordBatch::new("test");
    let mut b_moved = first.deals[1].clone();
    b_moved.stage = Some("negotiation".into());
    b_moved.amount = Some(400.into());
    b_moved.source_updated_at = Some(now - Duration::hours(5));
    second.deals = vec![b_moved];
    second.deal_changes = vec![
        change(
            "b",
            DealField::Stage,
            Some("qualified"),
            Some("negotiation"),
            now - Duration::hours(6),
        ),
        change(
            "d",
            DealField::CloseDate,
            Some("2099-01-01"),
            Some("2099-02-01"),
            now - Duration::hours(2),
        ),
    ];
    let ctx = context(&store, synced, SyncMode::Incremental).await;
    let out = run_sync(
        store.as_ref(),
        &Scripted {
            pages: vec![first, second],
            fault: Fault::None,
        },
        &ctx,
        &quiet,
    )
    .await
    .expect("sync");
    assert_eq!(out.observed_changes, 1, "b's amount");
    assert_eq!(out.deals_computed, 4 + 2);
    assert!(!out.baseline_refreshed, "a fresh baseline is kept");
    assert_matches_compute(
        &store,
        synced,
        &ids,
        Some(&cached.baseline),
        Some(ctx.started_at),
    )
    .await;
    let b = store
        .get_deal_by_source(synced, "test", "b")
        .await
        .expect("b");
    let b_fields = b.computed.expect("computed");
    assert_eq!(b.fields.stage.as_deref(), Some("negotiation"));
    assert_eq!(
        b_fields.stage_velocity, None,
        "recomputed in its new stage, which has no median"
    );
    let d = store
        .get_deal_by_source(synced, "test", "d")
        .await
        .expect("d");
    assert!(
        d.computed
            .expect("computed")
            .risk_reasons
            .iter()
            .any(|r| r.code == RiskCode::CloseDatePushedOnce),
        "history alone recomputes d"
    );
    let a = store
        .get_deal_by_source(synced, "test", "a")
        .await
        .expect("a");
    let points: Vec<(RiskCode, u8)> = a
        .computed
        .expect("computed")
        .risk_reasons
        .iter()
        .map(|r| (r.code, r.points))
        .collect();
    assert_eq!(
        points,
        [
            (RiskCode::CloseDatePushedTwice, 20),
            (RiskCode::StageTimeOver2x, 20),
            (RiskCode::CloseDatePassed, 45),
        ],
        "the workspace's weights; 0 turns amount_cut off"
    );
}

/// A page that changes a deal's stage updates its computed fields in the
/// same write; a page that fails stores neither; history alone recomputes
/// without moving `updated_at`; a deal written without computed fields has
/// none.
pub async fn a_page_that_changes_a_deal_updates_its_computed_fields(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let p = pandora(&store);
    let now = model::now();
    let cached = baseline(now);
    store
        .put_workspace_baseline(ws, &cached)
        .await
        .expect("baseline");
    let mut x = deal("x", Some(1000), Some((2099, 6, 1)));
    x.source_created_at = Some(days_ago(now, 100));
    x.source_updated_at = Some(days_ago(now, 1));
    let mut first = deals_batch(vec![x.clone()]);
    first.stages = stages();
    p.ingest(ws, &first, None).await.expect("first");
    let before = store.get_deal_by_source(ws, "test", "x").await.expect("x");
    let f1 = before.computed.clone().expect("computed");
    assert!(f1.days_in_current_stage >= 100.0, "{f1:?}");
    let stalled = |f: &ComputedFields| {
        f.risk_reasons
            .iter()
            .any(|r| r.code == RiskCode::StageTimeOver2x)
    };
    assert!(stalled(&f1), "100 days in a stage of median 7: {f1:?}");

    // The stage moves one day ago.
    let moved_at = days_ago(model::now(), 1);
    x.stage = Some("proposal".into());
    let mut second = deals_batch(vec![x.clone()]);
    second.deal_changes = vec![change(
        "x",
        DealField::Stage,
        Some("qualified"),
        Some("proposal"),
        moved_at,
    )];
    let out = p.ingest(ws, &second, None).await.expect("second");
    assert_eq!(
        (out.of(RecordKind::Deal).updated, out.changes_inserted),
        (1, 1)
    );
    let after = store.get_deal_by_source(ws, "test", "x").await.expect("x");
    let f2 = after.computed.clone().expect("computed");
    assert_eq!(after.fields.stage.as_deref(), Some("proposal"));
    assert_eq!(f2.stage_entered_at, moved_at);
    assert!(f2.days_in_current_stage < 2.0, "{f2:?}");
    assert_eq!(f2.stages_visited, 2);
    assert!(!stalled(&f2), "{f2:?}");
    assert_eq!(f2.risk_score, f1.risk_score - 20);
    assert!(f2.computed_at > f1.computed_at);

    // A page that fails (history of an unknown deal) stores nothing of it.
    let mut failing = deals_batch(vec![NewDeal {
        stage: Some("negotiation".into()),
        ..x.clone()
    }]);
    failing.deal_changes = vec![
        change(
            "x",
            DealField::Stage,
            Some("proposal"),
            Some("negotiation"),
            model::now(),
        ),
        change(
            "ghost",
            DealField::Stage,
            None,
            Some("proposal"),
            model::now(),
        ),
    ];
    let err = p.ingest(ws, &failing, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let unchanged = store.get_deal_by_source(ws, "test", "x").await.expect("x");
    assert_eq!(unchanged.fields.stage.as_deref(), Some("proposal"));
    assert_eq!(unchanged.computed, after.computed);

    // History alone (the record not in the page) recomputes the deal, and
    // leaves its updated_at alone.
    let mut pushed = RecordBatch::new("test");
    pushed.deal_changes = vec![change(
        "x",
        DealField::CloseDate,
        Some("2099-05-01"),
        Some("2099-06-01"),
        now - Duration::hours(2),
    )];
    let out = p.ingest(ws, &pushed, None).await.expect("history only");
    assert_eq!(out.changes_inserted, 1);
    assert_eq!(out.of(RecordKind::Deal), Default::default());
    let later = store.get_deal_by_source(ws, "test", "x").await.expect("x");
    let f3 = later.computed.clone().expect("computed");
    assert_eq!(f3.close_date_pushes, 1);
    assert!(f3.computed_at > f2.computed_at);
    assert_eq!(later.updated_at, after.updated_at);
    assert_matches_compute(&store, ws, &["x"], Some(&cached.baseline), None).await;

    // The entity signals of the last deal_risk run, as its write-back
    // stores them, are kept by the next change while the deal is open...
    let mut by_skill = f3.clone();
    by_skill.risk_reasons.insert(
        0,
        RiskReason {
            code: RiskCode::SingleThreaded,
            points: 15,
            detail: "single-threaded: no external contact engaged in the last 30 days".into(),
        },
    );
    by_skill.risk_score += 15;
    let n = store
        .set_deal_computed(
            ws,
            &[ComputedUpdate {
                deal_id: later.id,
                expected_updated_at: later.updated_at,
                fields: by_skill,
            }],
        )
        .await
        .expect("write-back");
    assert_eq!(n, 1);
    let mut pushed_again = RecordBatch::new("test");
    pushed_again.deal_changes = vec![change(
        "x",
        DealField::CloseDate,
        Some("2099-06-01"),
        Some("2099-07-01"),
        now - Duration::hours(1),
    )];
    p.ingest(ws, &pushed_again, None)
        .await
        .expect("pushed again");
    let kept = store.get_deal_by_source(ws, "test", "x").await.expect("x");
    let f4 = kept.computed.clone().expect("computed");
    let codes: Vec<RiskCode> = f4.risk_reasons.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [RiskCode::SingleThreaded, RiskCode::CloseDatePushedTwice],
        "{f4:?}"
    );
    assert_eq!(f4.risk_score, 15 + 20);
    assert_matches_compute(&store, ws, &["x"], Some(&cached.baseline), None).await;
    // ...and dropped when it closes.
    let mut won = x.clone();
    won.stage = Some("won".into());
    won.stage_category = StageCategory::Won;
    p.ingest(ws, &deals_batch(vec![won]), None)
        .await
        .expect("won");
    let closed = store.get_deal_by_source(ws, "test", "x").await.expect("x");
    let f5 = closed.computed.clone().expect("computed");
    assert_eq!((f5.risk_score, f5.risk_reasons.len()), (0, 0), "{f5:?}");

    // Written straight to the store without computed fields: none.
    x.amount = Some(900.into());
    write(&store, ws, &deals_batch(vec![x])).await;
    let raw = store.get_deal_by_source(ws, "test", "x").await.expect("x");
    assert_eq!(raw.computed, None);
}

/// Replaying a page changes nothing: the same counts as any replay
/// (unchanged, no history), and the stored computed fields stay as they were
/// (though computing again would now give other numbers).
pub async fn replaying_a_page_leaves_computed_fields_alone(store: StoreRef) {
    let now = model::now();
    let ws = new_workspace(&store, "A").await;
    let p = pandora(&store);
    let page = rich_batch(now);
    p.ingest(ws, &page, None).await.expect("first");
    let read = |ws| {
        let store = store.clone();
        async move {
            let mut by_id: HashMap<String, Deal> = HashMap::new();
            for id in ["a", "b", "c", "d"] {
                let d = store
                    .get_deal_by_source(ws, "test", id)
                    .await
                    .expect("deal");
                by_id.insert(id.to_string(), d);
            }
            by_id
        }
    };
    let before = read(ws).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let out = p.ingest(ws, &page, None).await.expect("replay");
    assert_eq!(out.of(RecordKind::Deal).unchanged, 4);
    assert_eq!(
        (
            out.of(RecordKind::Deal).inserted,
            out.of(RecordKind::Deal).updated,
            out.changes_inserted
        ),
        (0, 0, 0)
    );
    assert_eq!(read(ws).await, before, "ingest replay");

    // The same through the sync engine: a full re-run of the same pages.
    let synced = new_workspace(&store, "synced").await;
    let connector = Scripted {
        pages: vec![rich_batch(now)],
        fault: Fault::None,
    };
    let ctx = context(&store, synced, SyncMode::Full).await;
    run_sync(store.as_ref(), &connector, &ctx, &quiet)
        .await
        .expect("first sync");
    let before = read(synced).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let ctx = context(&store, synced, SyncMode::Full).await;
    let out = run_sync(store.as_ref(), &connector, &ctx, &quiet)
        .await
        .expect("replay sync");
    let deals = out.counts["deals"];
    assert_eq!((deals.inserted, deals.updated, deals.unchanged), (0, 0, 4));
    assert_eq!((out.observed_changes, out.changes_inserted), (0, 0));
    assert_eq!(read(synced).await, before, "sync replay");
}

/// Fields with only a risk score, for the list tests.
fn scored(risk: u8) -> ComputedFields {
    let t = model::now();
    ComputedFields {
        computed_at: t,
        deal_age_days: 1.0,
        closed_at: None,
        stage_entered_at: t,
        days_in_current_stage: 1.0,
        stages_visited: 1,
        avg_days_per_stage: Some(1.0),
        stage_velocity: None,
        close_date_pushes: 0,
        risk_score: risk,
        risk_reasons: Vec::new(),
    }
}

/// Writes `deals` straight to the store, each with the risk score given (or
/// without computed fields).
async fn write_scored(store: &StoreRef, ws: WorkspaceId, deals: &[(String, Option<u8>)]) {
    let batch = deals_batch(
        deals
            .iter()
            .map(|(id, _)| deal(id, Some(100), Some((2026, 5, 1))))
            .collect(),
    );
    let mut prepared = batch.prepare().expect("prepare");
    for (id, risk) in deals {
        if let Some(r) = risk {
            prepared.set_computed(id, scored(*r)).expect("computed");
        }
    }
    store.write_batch(ws, &prepared, None).await.expect("write");
}

fn risk_of(d: &Deal) -> Option<u8> {
    d.computed.as_ref().map(|c| c.risk_score)
}

/// `min_risk` filters on the stored score (deals without one never match),
/// and `sort=risk` orders by `(risk_score, id)` in both directions with
/// deals without a score last, paging across ties without skipping or
/// repeating, also while rows are inserted between pages.
pub async fn risk_filter_and_sort_paginate_in_both_directions(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let other = new_workspace(&store, "B").await;
    let scores = [0u8, 10, 10, 35, 50, 50, 50, 100];
    let mut deals: Vec<(String, Option<u8>)> = (0..40)
        .map(|i| (format!("r{i:02}"), Some(scores[i % scores.len()])))
        .collect();
    deals.extend((0..7).map(|i| (format!("none{i}"), None)));
    write_scored(&store, ws, &deals).await;
    // Noise: a deleted risky deal, and another workspace's.
    write_scored(&store, ws, &[("gone".into(), Some(100))]).await;
    let mut gone = RecordBatch::new("test");
    gone.deletions = vec![crate::batch::Deletion {
        kind: RecordKind::Deal,
        source_id: "gone".into(),
    }];
    write(&store, ws, &gone).await;
    write_scored(&store, other, &[("theirs".into(), Some(100))]).await;

    let expected: HashMap<String, Option<u8>> = deals.iter().cloned().collect();
    for direction in [Direction::Asc, Direction::Desc] {
        let sort = Sort {
            key: SortKey::Risk,
            direction,
        };
        for limit in [1, 3, 8, 50] {
            let all = walk(&store, ws, &DealFilter::default(), sort, limit).await;
            assert_eq!(all.len(), 47, "{direction:?} by {limit}");
            let ids: HashSet<&str> = all.iter().map(|d| d.fields.source_id.as_str()).collect();
            assert_eq!(ids.len(), 47, "no repeats");
            for d in &all {
                assert_eq!(
                    risk_of(d),
                    expected[&d.fields.source_id],
                    "{}",
                    d.fields.source_id
                );
            }
            assert_ordered(&all, sort);
            assert!(all[40..].iter().all(|d| d.computed.is_none()), "NULLs last");
        }
        // min_risk: inclusive, across pages, never the deals without a score.
        for (min, n) in [(0u8, 40usize), (10, 35), (50, 20), (100, 5), (99, 5)] {
            let filter = DealFilter {
                min_risk: Some(min),
                ..Default::default()
            };
            let all = walk(&store, ws, &filter, sort, 2).await;
            assert_eq!(all.len(), n, "min_risk={min} {direction:?}");
            assert!(all.iter().all(|d| risk_of(d).is_some_and(|r| r >= min)));
            assert_ordered(&all, sort);
            // And with the default sort.
            let by_updated = walk(&store, ws, &filter, Sort::default(), 7).await;
            assert_eq!(by_updated.len(), n);
        }
    }

    // Rows inserted between pages, tying with the cursor's score.
    let sort = Sort {
        key: SortKey::Risk,
        direction: Direction::Desc,
    };
    let mut seen: Vec<Deal> = Vec::new();
    let mut page = PageRequest {
        limit: 4,
        sort,
        after: None,
    };
    let mut inserted = 0;
    loop {
        let p = store
            .list_deals(ws, &DealFilter::default(), &page)
            .await
            .expect("list");
        seen.extend(p.data);
        inserted += 1;
        write_scored(&store, ws, &[(format!("new{inserted:02}"), Some(50))]).await;
        match p.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for d in &seen {
        *counts.entry(d.fields.source_id.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "repeated rows");
    for (id, _) in &deals {
        assert!(counts.contains_key(id.as_str()), "{id} skipped");
    }
    assert_ordered(&seen, sort);
}

/// The new reads and writes are scoped by workspace: histories, computed
/// updates, the baseline cache and the risk filter never cross workspaces.
pub async fn computed_reads_and_writes_are_workspace_scoped(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let now = model::now();
    let p = pandora(&store);
    p.ingest(a, &rich_batch(now), None).await.expect("a");
    p.ingest(b, &deals_batch(vec![deal("b1", Some(1), None)]), None)
        .await
        .expect("b");
    let deal_a = store.get_deal_by_source(a, "test", "a").await.expect("a");
    let deal_b = store.get_deal_by_source(b, "test", "b1").await.expect("b1");

    // deal_histories: oldest first, only the workspace's deals.
    let histories = store
        .deal_histories(a, &[deal_a.id, deal_b.id, Uuid::now_v7()])
        .await
        .expect("histories");
    assert_eq!(histories.keys().copied().collect::<Vec<_>>(), [deal_a.id]);
    let h = &histories[&deal_a.id];
    assert_eq!(h.len(), 6);
    assert_eq!(h, &store.deal_history(a, deal_a.id).await.expect("history"));
    assert!(h
        .windows(2)
        .all(|w| (w[0].changed_at, w[0].id) < (w[1].changed_at, w[1].id)));
    assert!(store
        .deal_histories(b, &[deal_a.id])
        .await
        .expect("histories")
        .is_empty());
    assert!(store
        .deal_histories(a, &[])
        .await
        .expect("histories")
        .is_empty());

    // set_deal_computed: only the workspace's deals, only if unchanged since read.
    let update = |d: &Deal, risk: u8, expected_updated_at| ComputedUpdate {
        deal_id: d.id,
        expected_updated_at,
        fields: scored(risk),
    };
    let n = store
        .set_deal_computed(b, &[update(&deal_a, 77, deal_a.updated_at)])
        .await
        .expect("set");
    assert_eq!(n, 0);
    let stale = deal_a.updated_at - Duration::seconds(1);
    let n = store
        .set_deal_computed(
            a,
            &[
                update(&deal_a, 77, stale),
                update(&deal_b, 77, deal_b.updated_at),
            ],
        )
        .await
        .expect("set");
    assert_eq!(n, 0, "stale, and another workspace's");
    assert_eq!(
        store.get_deal(a, deal_a.id).await.expect("a").computed,
        deal_a.computed
    );
    let n = store
        .set_deal_computed(a, &[update(&deal_a, 77, deal_a.updated_at)])
        .await
        .expect("set");
    assert_eq!(n, 1);
    let now_a = store.get_deal(a, deal_a.id).await.expect("a");
    assert_eq!(risk_of(&now_a), Some(77));
    assert_eq!(now_a.updated_at, deal_a.updated_at, "updated_at stays");
    assert_eq!(
        store.get_deal(b, deal_b.id).await.expect("b").computed,
        deal_b.computed
    );

    // The risk filter and sort see only the workspace's deals.
    let risky = DealFilter {
        min_risk: Some(77),
        ..Default::default()
    };
    let sort = Sort {
        key: SortKey::Risk,
        direction: Direction::Desc,
    };
    assert!(walk(&store, b, &risky, sort, 10).await.is_empty());
    let in_a = walk(&store, a, &risky, sort, 10).await;
    assert_eq!(in_a.first().map(|d| d.id), Some(deal_a.id));

    // The baseline cache.
    assert_eq!(store.get_workspace_baseline(a).await.expect("get"), None);
    let cached = baseline(now);
    store.put_workspace_baseline(a, &cached).await.expect("put");
    assert_eq!(
        store.get_workspace_baseline(a).await.expect("get"),
        Some(cached.clone())
    );
    assert_eq!(store.get_workspace_baseline(b).await.expect("get"), None);
    let newer = StoredBaseline {
        computed_at: now + Duration::seconds(1),
        baseline: WorkspaceBaseline::default(),
    };
    store.put_workspace_baseline(a, &newer).await.expect("put");
    assert_eq!(
        store.get_workspace_baseline(a).await.expect("get"),
        Some(newer),
        "replaced"
    );
    let err = store
        .put_workspace_baseline(Uuid::now_v7(), &cached)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    store.delete_workspace(a).await.expect("delete");
    assert_eq!(store.get_workspace_baseline(a).await.expect("get"), None);
    assert!(store
        .deal_histories(a, &[deal_a.id])
        .await
        .expect("histories")
        .is_empty());
}

/// A won deal closing `span` days after it started on day `start` (before
/// `now`), after visits to qualified and proposal.
fn won(
    i: usize,
    now: DateTime<Utc>,
    start: i64,
    qualified: i64,
    span: i64,
) -> (NewDeal, Vec<NewDealChange>) {
    let id = format!("w{i:04}");
    let at = |day: i64| days_ago(now, 400) + Duration::days(day) + Duration::minutes(i as i64);
    let mut d = deal(&id, Some(1000 + i as i64), None);
    d.source_created_at = Some(at(start));
    d.stage = Some("won".into());
    d.stage_category = StageCategory::Won;
    d.close_date = Some(at(start + span).date_naive());
    let changes = vec![
        change(&id, DealField::Stage, None, Some("qualified"), at(start)),
        change(
            &id,
            DealField::Stage,
            Some("qualified"),
            Some("proposal"),
            at(start + qualified),
        ),
        change(
            &id,
            DealField::Stage,
            Some("proposal"),
            Some("won"),
            at(start + span),
        ),
    ];
    (d, changes)
}

/// `refresh_baseline` reads every won deal page by page and caches what
/// `WorkspaceBaseline::from_won_deals` gives over all of them; syncs refresh
/// it after a full run or when it is missing or a day old; `recompute_deals`
/// stores fresh fields on every deal.
pub async fn baseline_refresh_and_recompute_cover_the_workspace(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let now = model::now();
    let mut batch = RecordBatch::new("test");
    batch.stages = stages();
    let n_won = SCAN_PAGE as usize + 17;
    for i in 0..n_won {
        let (d, changes) = won(
            i,
            now,
            (i % 50) as i64,
            3 + (i % 11) as i64,
            20 + (i % 37) as i64,
        );
        batch.deals.push(d);
        batch.deal_changes.extend(changes);
    }
    for i in 0..13 {
        let mut d = deal(&format!("open{i}"), Some(10), Some((2099, 1, 1)));
        d.source_created_at = Some(days_ago(now, 30 + i));
        batch.deals.push(d);
    }
    let p = pandora(&store);
    p.ingest(ws, &batch, None).await.expect("ingest");

    // What the baseline must be: every won deal with its history, at once.
    let all = walk(&store, ws, &DealFilter::default(), Sort::default(), 500).await;
    assert_eq!(all.len(), n_won + 13);
    let mut with_history = Vec::new();
    for d in &all {
        let h = store.deal_history(ws, d.id).await.expect("history");
        with_history.push((d.clone(), h));
    }
    let catalog = store.list_stages(ws).await.expect("stages");
    let at = model::now();
    let expected = WorkspaceBaseline::from_won_deals(
        with_history.iter().map(|(d, h)| (d, h.as_slice())),
        &catalog,
        at,
    );
    assert_eq!(expected.won_deals as usize, n_won);
    assert!(expected.stages.len() == 2 && expected.median_sales_cycle_days.is_some());

    let refreshed = recompute::refresh_baseline(store.as_ref(), ws, at)
        .await
        .expect("refresh");
    assert_eq!(refreshed.baseline, expected);
    assert_eq!(refreshed.computed_at, at);
    assert_eq!(
        store.get_workspace_baseline(ws).await.expect("get"),
        Some(refreshed.clone())
    );

    // recompute_deals: every live deal, with the fresh baseline.
    let out = p.recompute_deals(ws).await.expect("recompute");
    assert_eq!(
        (out.deals, out.updated),
        (all.len() as u64, all.len() as u64)
    );
    assert_eq!(out.baseline.baseline, expected, "nothing changed since");
    for (d, h) in &with_history {
        let stored = store
            .get_deal(ws, d.id)
            .await
            .expect("deal")
            .computed
            .expect("computed");
        let want = computed::compute(
            d,
            h,
            &catalog,
            Some(&out.baseline.baseline),
            out.baseline.computed_at,
        );
        assert_same(&stored, &want, &d.fields.source_id);
    }
    let open = store
        .get_deal_by_source(ws, "test", "open0")
        .await
        .expect("open0")
        .computed
        .expect("computed");
    assert!(
        open.stage_velocity.is_some(),
        "the baseline is used: {open:?}"
    );
    assert_eq!(
        p.recompute_deals(Uuid::now_v7()).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // The sync engine's policy.
    let synced = new_workspace(&store, "synced").await;
    let connector = Scripted {
        pages: vec![deals_batch(vec![deal("s1", Some(5), None)])],
        fault: Fault::None,
    };
    let sync = |mode| {
        let store = store.clone();
        let connector = &connector;
        async move {
            let ctx = context(&store, synced, mode).await;
            run_sync(store.as_ref(), connector, &ctx, &quiet)
                .await
                .expect("sync")
        }
    };
    assert!(
        sync(SyncMode::Incremental).await.baseline_refreshed,
        "missing"
    );
    let first = store
        .get_workspace_baseline(synced)
        .await
        .expect("get")
        .expect("cached");
    assert!(
        !sync(SyncMode::Incremental).await.baseline_refreshed,
        "fresh"
    );
    assert!(sync(SyncMode::Full).await.baseline_refreshed, "full");
    let after_full = store
        .get_workspace_baseline(synced)
        .await
        .expect("get")
        .expect("cached");
    assert!(after_full.computed_at > first.computed_at);
    store
        .put_workspace_baseline(
            synced,
            &StoredBaseline {
                computed_at: model::now() - Duration::hours(25),
                ..after_full
            },
        )
        .await
        .expect("age it");
    assert!(
        sync(SyncMode::Incremental).await.baseline_refreshed,
        "a day old"
    );
    let failing = Scripted {
        pages: vec![deals_batch(vec![deal("s2", Some(5), None)])],
        fault: Fault::ErrorAt(0),
    };
    let before = store.get_workspace_baseline(synced).await.expect("get");
    let ctx = context(&store, synced, SyncMode::Full).await;
    run_sync(store.as_ref(), &failing, &ctx, &quiet)
        .await
        .unwrap_err();
    assert_eq!(
        store.get_workspace_baseline(synced).await.expect("get"),
        before,
        "a failed run refreshes nothing"
    );
}
