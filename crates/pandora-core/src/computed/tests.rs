use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use chrono::{Duration, TimeZone};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::model::{ChangeOrigin, NewDeal, NewPipelineStage};

// Day 0 is 2026-01-01; `now` is day 100 (2026-04-11) at midnight.
fn t(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
        + Duration::days(day)
}

fn d(day: i64) -> NaiveDate {
    t(day).date_naive()
}

fn now() -> DateTime<Utc> {
    t(100)
}

const EPS: f64 = 1e-9;

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < EPS,
        "expected {expected}, got {actual}"
    );
}

/// A healthy open deal in stage `proposal`: created on day 60, amount 1000,
/// closing on day 120, updated on day 99, no history. It scores 0.
fn deal() -> Deal {
    Deal {
        id: Uuid::from_u128(1),
        workspace_id: Uuid::from_u128(2),
        source: "sample".into(),
        fields: NewDeal {
            source_id: "d1".into(),
            name: "Deal".into(),
            amount: Some(Decimal::from(1000)),
            pipeline: Some("p".into()),
            stage: Some("proposal".into()),
            stage_category: StageCategory::Open,
            close_date: Some(d(120)),
            source_created_at: Some(t(60)),
            source_updated_at: Some(t(99)),
            ..Default::default()
        },
        owner_id: None,
        account_id: None,
        computed: None,
        created_at: t(61),
        updated_at: t(99),
        deleted_at: None,
    }
}

fn closed(mut deal: Deal, stage: &str, category: StageCategory) -> Deal {
    deal.fields.stage = Some(stage.into());
    deal.fields.stage_category = category;
    deal
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1_000);

/// A change with an id greater than every earlier one (ties sort by id).
fn change(field: DealField, old: Option<&str>, new: Option<&str>, at: DateTime<Utc>) -> DealChange {
    DealChange {
        id: Uuid::from_u128(u128::from(NEXT_ID.fetch_add(1, AtomicOrdering::Relaxed))),
        workspace_id: Uuid::from_u128(2),
        deal_id: Uuid::from_u128(1),
        field,
        old_value: old.map(Into::into),
        new_value: new.map(Into::into),
        changed_at: at,
        origin: ChangeOrigin::Vendor,
    }
}

fn stage_change(old: Option<&str>, new: &str, day: i64) -> DealChange {
    change(DealField::Stage, old, Some(new), t(day))
}

fn catalog() -> Vec<PipelineStage> {
    [
        ("discovery", StageCategory::Open),
        ("proposal", StageCategory::Open),
        ("negotiation", StageCategory::Open),
        ("won", StageCategory::Won),
        ("lost", StageCategory::Lost),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (stage, category))| PipelineStage {
        id: Uuid::from_u128(100 + i as u128),
        workspace_id: Uuid::from_u128(2),
        source: "sample".into(),
        fields: NewPipelineStage {
            pipeline: "p".into(),
            stage: stage.into(),
            category,
            display_order: Some(i32::try_from(i).expect("small")),
            ..Default::default()
        },
    })
    .collect()
}

fn baseline_with(stage: &str, median_days: f64, cycle: Option<f64>) -> WorkspaceBaseline {
    WorkspaceBaseline {
        won_deals: 3,
        median_sales_cycle_days: cycle,
        stages: vec![StageBaseline {
            pipeline: Some("p".into()),
            stage: stage.into(),
            median_days,
            samples: 3,
        }],
    }
}

fn run(deal: &Deal, history: &[DealChange]) -> ComputedFields {
    compute(deal, history, &catalog(), None, now())
}

fn codes(f: &ComputedFields) -> Vec<RiskCode> {
    f.risk_reasons.iter().map(|r| r.code).collect()
}

fn reason(f: &ComputedFields, code: RiskCode) -> Option<&RiskReason> {
    f.risk_reasons.iter().find(|r| r.code == code)
}

// --- deal age ---------------------------------------------------------------

#[test]
fn healthy_open_deal_without_history() {
    let f = run(&deal(), &[]);
    assert_close(f.deal_age_days, 40.0);
    assert_eq!(f.closed_at, None);
    assert_eq!(f.stage_entered_at, t(60));
    assert_close(f.days_in_current_stage, 40.0);
    assert_eq!(f.stages_visited, 1);
    assert_eq!(f.avg_days_per_stage, Some(40.0));
    assert_eq!(f.stage_velocity, None);
    assert_eq!(f.close_date_pushes, 0);
    assert_eq!(f.risk_score, 0, "{:?}", f.risk_reasons);
    assert!(f.risk_reasons.is_empty());
    assert_eq!(f.computed_at, now());
}

#[test]
fn age_falls_back_to_created_at() {
    let mut deal = deal();
    deal.fields.source_created_at = None;
    let f = run(&deal, &[]);
    assert_close(f.deal_age_days, 39.0);
    assert_eq!(f.stage_entered_at, t(61));
}

#[test]
fn age_is_fractional() {
    let mut deal = deal();
    deal.fields.source_created_at = Some(now() - Duration::hours(36));
    assert_close(run(&deal, &[]).deal_age_days, 1.5);
}

#[test]
fn deal_created_after_now_is_zero_days_old() {
    let mut deal = deal();
    deal.fields.source_created_at = Some(t(101));
    let f = run(&deal, &[]);
    assert_close(f.deal_age_days, 0.0);
    assert_close(f.days_in_current_stage, 0.0);
    assert_eq!(f.stage_entered_at, now());
    assert_eq!(f.stages_visited, 1, "the current stage, empty");
    assert_eq!(f.avg_days_per_stage, Some(0.0));
}

#[test]
fn deal_created_exactly_now() {
    let mut deal = deal();
    deal.fields.source_created_at = Some(now());
    let f = run(&deal, &[]);
    assert_close(f.deal_age_days, 0.0);
    assert_close(f.days_in_current_stage, 0.0);
}

#[test]
fn closed_deal_age_stops_at_the_move_into_its_closed_stage() {
    let deal = closed(deal(), "won", StageCategory::Won);
    let h = vec![
        stage_change(Some("discovery"), "proposal", 70),
        stage_change(Some("proposal"), "won", 80),
    ];
    let f = run(&deal, &h);
    assert_close(f.deal_age_days, 20.0);
    assert_eq!(f.closed_at, Some(t(80)));
    assert_eq!(f.stage_entered_at, t(80));
    assert_close(f.days_in_current_stage, 20.0);
    assert_eq!(f.stages_visited, 2, "the closed stage is not an interval");
    assert_eq!(f.avg_days_per_stage, Some(10.0));
}

#[test]
fn closed_deal_without_stage_history_closes_on_its_close_date() {
    let mut deal = closed(deal(), "lost", StageCategory::Lost);
    deal.fields.close_date = Some(d(90));
    let f = run(&deal, &[]);
    assert_eq!(f.closed_at, Some(t(90)));
    assert_close(f.deal_age_days, 30.0);
    assert_close(f.days_in_current_stage, 10.0);
    let intervals = stage_intervals(&deal, &[], &catalog(), now());
    assert_eq!(intervals.len(), 1);
    assert_eq!(
        intervals[0].stage, None,
        "the stage before closing is unknown"
    );
    assert_eq!(intervals[0].category, StageCategory::Open);
}

#[test]
fn closed_deal_close_time_is_clamped_into_its_life() {
    // Close date in the future: clamped to now.
    let deal = closed(deal(), "won", StageCategory::Won);
    let f = run(&deal, &[]);
    assert_eq!(f.closed_at, Some(now()));
    assert_close(f.deal_age_days, 40.0);
    assert_close(f.days_in_current_stage, 0.0);
    // Close date before the deal start: clamped to the start.
    let mut early = deal.clone();
    early.fields.close_date = Some(d(10));
    let f = run(&early, &[]);
    assert_eq!(f.closed_at, Some(t(60)));
    assert_close(f.deal_age_days, 0.0);
    assert_eq!(f.stages_visited, 0);
    assert_eq!(f.avg_days_per_stage, None);
}

#[test]
fn closed_deal_falls_back_to_source_updated_at_then_now() {
    let mut deal = closed(deal(), "won", StageCategory::Won);
    deal.fields.close_date = None;
    assert_eq!(run(&deal, &[]).closed_at, Some(t(99)));
    deal.fields.source_updated_at = None;
    assert_eq!(run(&deal, &[]).closed_at, Some(now()));
}

#[test]
fn closed_deal_whose_history_misses_the_close_uses_the_close_date() {
    // History ends in an open stage; the deal is won without a recorded move.
    let mut deal = closed(deal(), "won", StageCategory::Won);
    deal.fields.close_date = Some(d(85));
    let h = vec![stage_change(Some("discovery"), "proposal", 70)];
    let f = run(&deal, &h);
    assert_eq!(f.closed_at, Some(t(85)));
    let intervals = stage_intervals(&deal, &h, &catalog(), now());
    let stages: Vec<_> = intervals.iter().map(|i| i.stage.as_deref()).collect();
    assert_eq!(stages, [Some("discovery"), Some("proposal")]);
    assert_eq!(intervals[1].end, t(85));
}

// --- days in current stage --------------------------------------------------

#[test]
fn days_in_stage_since_the_last_stage_change() {
    let mut deal = deal();
    deal.fields.stage = Some("negotiation".into());
    let h = vec![
        stage_change(Some("discovery"), "proposal", 70),
        stage_change(Some("proposal"), "negotiation", 90),
    ];
    let f = run(&deal, &h);
    assert_eq!(f.stage_entered_at, t(90));
    assert_close(f.days_in_current_stage, 10.0);
}

#[test]
fn history_order_does_not_matter() {
    let mut deal = deal();
    deal.fields.stage = Some("negotiation".into());
    let h = vec![
        stage_change(Some("discovery"), "proposal", 70),
        change(
            DealField::CloseDate,
            Some("2026-04-20"),
            Some("2026-05-01"),
            t(75),
        ),
        stage_change(Some("proposal"), "negotiation", 90),
        change(DealField::Amount, Some("2000"), Some("1000"), t(95)),
    ];
    let mut reversed = h.clone();
    reversed.reverse();
    let mut rotated = h.clone();
    rotated.rotate_left(1);
    let sorted = run(&deal, &h);
    assert_eq!(run(&deal, &reversed), sorted);
    assert_eq!(run(&deal, &rotated), sorted);
    assert_eq!(sorted.stage_entered_at, t(90));
}

#[test]
fn equal_change_times_are_ordered_by_id() {
    let mut deal = deal();
    deal.fields.stage = Some("negotiation".into());
    // Two moves at the same instant: proposal then negotiation (ids ascending).
    let h = vec![
        stage_change(Some("discovery"), "proposal", 80),
        stage_change(Some("proposal"), "negotiation", 80),
    ];
    let intervals = stage_intervals(&deal, &[h[1].clone(), h[0].clone()], &catalog(), now());
    let stages: Vec<_> = intervals.iter().map(|i| i.stage.as_deref()).collect();
    assert_eq!(stages, [Some("discovery"), Some("negotiation")]);
    assert_eq!(run(&deal, &h).stage_entered_at, t(80));
}

#[test]
fn changes_after_now_are_ignored_and_a_change_at_now_counts() {
    let mut deal = deal();
    deal.fields.stage = Some("proposal".into());
    let future = vec![
        stage_change(Some("discovery"), "proposal", 70),
        stage_change(Some("proposal"), "negotiation", 101),
    ];
    let f = run(&deal, &future);
    assert_eq!(f.stage_entered_at, t(70));
    assert_close(f.days_in_current_stage, 30.0);

    deal.fields.stage = Some("negotiation".into());
    let at_now = vec![
        stage_change(Some("discovery"), "proposal", 70),
        stage_change(Some("proposal"), "negotiation", 100),
    ];
    let f = run(&deal, &at_now);
    assert_eq!(f.stage_entered_at, now());
    assert_close(f.days_in_current_stage, 0.0);
    assert_eq!(f.stages_visited, 3, "the empty current stage is kept");
}

#[test]
fn a_change_repeating_the_current_stage_does_not_reset_the_clock() {
    // The vendor's record and the engine's observation of the same move.
    let h = vec![
        stage_change(Some("discovery"), "proposal", 70),
        stage_change(Some("discovery"), "proposal", 75),
    ];
    let f = run(&deal(), &h);
    assert_eq!(f.stage_entered_at, t(70));
    assert_eq!(f.stages_visited, 2);
}

#[test]
fn history_behind_the_current_stage_relabels_the_last_interval() {
    // History says negotiation; the deal is in proposal with no recorded move.
    let h = vec![stage_change(Some("discovery"), "negotiation", 80)];
    let intervals = stage_intervals(&deal(), &h, &catalog(), now());
    let stages: Vec<_> = intervals.iter().map(|i| i.stage.as_deref()).collect();
    assert_eq!(stages, [Some("discovery"), Some("proposal")]);
    assert_eq!(run(&deal(), &h).stage_entered_at, t(80));
}

#[test]
fn closed_deal_days_in_stage_is_time_since_close() {
    let deal = closed(deal(), "lost", StageCategory::Lost);
    let h = vec![stage_change(Some("proposal"), "lost", 95)];
    let f = run(&deal, &h);
    assert_eq!(f.stage_entered_at, t(95));
    assert_close(f.days_in_current_stage, 5.0);
}

// --- average days per stage -------------------------------------------------

#[test]
fn average_days_per_stage_with_vendor_history_without_old_values() {
    // HubSpot style: the first entry is the initial stage at creation.
    let mut deal = deal();
    deal.fields.stage = Some("negotiation".into());
    let h = vec![
        change(DealField::Stage, None, Some("discovery"), t(60)),
        change(DealField::Stage, None, Some("proposal"), t(70)),
        change(DealField::Stage, None, Some("negotiation"), t(90)),
    ];
    let intervals = stage_intervals(&deal, &h, &catalog(), now());
    let got: Vec<_> = intervals
        .iter()
        .map(|i| (i.stage.as_deref(), i.days()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("discovery"), 10.0),
            (Some("proposal"), 20.0),
            (Some("negotiation"), 10.0)
        ]
    );
    let f = run(&deal, &h);
    assert_eq!(f.stages_visited, 3);
    assert_close(f.avg_days_per_stage.expect("avg"), 40.0 / 3.0);
}

#[test]
fn unknown_initial_stage_is_an_interval() {
    let h = vec![change(DealField::Stage, None, Some("proposal"), t(70))];
    let intervals = stage_intervals(&deal(), &h, &catalog(), now());
    assert_eq!(intervals.len(), 2);
    assert_eq!(intervals[0].stage, None);
    assert_eq!(intervals[0].days(), 10.0);
    assert_eq!(run(&deal(), &h).avg_days_per_stage, Some(20.0));
}

#[test]
fn revisited_stages_count_once_per_visit() {
    let h = vec![
        stage_change(Some("discovery"), "proposal", 70),
        stage_change(Some("proposal"), "discovery", 80),
        stage_change(Some("discovery"), "proposal", 90),
    ];
    let f = run(&deal(), &h);
    assert_eq!(f.stages_visited, 4);
    assert_eq!(f.avg_days_per_stage, Some(10.0));
    assert_eq!(f.stage_entered_at, t(90));
}

#[test]
fn a_round_trip_at_one_instant_leaves_no_trace() {
    let h = vec![
        stage_change(Some("proposal"), "negotiation", 80),
        stage_change(Some("negotiation"), "proposal", 80),
    ];
    let f = run(&deal(), &h);
    assert_eq!(f.stages_visited, 1);
    assert_eq!(f.stage_entered_at, t(60));
}

#[test]
fn changes_before_the_deal_start_are_clamped_to_it() {
    let h = vec![stage_change(Some("discovery"), "proposal", 50)];
    let f = run(&deal(), &h);
    assert_eq!(f.stage_entered_at, t(60));
    assert_eq!(f.stages_visited, 1);
    assert_close(f.deal_age_days, 40.0);
}

#[test]
fn stage_categories_come_from_the_catalog_else_the_deal() {
    let mut deal = closed(deal(), "closed_won_custom", StageCategory::Won);
    deal.fields.close_date = Some(d(90));
    let h = vec![
        stage_change(Some("mystery"), "lost", 70),
        stage_change(Some("lost"), "proposal", 75),
        stage_change(Some("proposal"), "closed_won_custom", 90),
    ];
    let intervals = stage_intervals(&deal, &h, &catalog(), now());
    let got: Vec<_> = intervals
        .iter()
        .map(|i| (i.stage.as_deref(), i.category))
        .collect();
    assert_eq!(
        got,
        [
            (Some("mystery"), StageCategory::Open),
            (Some("lost"), StageCategory::Lost),
            (Some("proposal"), StageCategory::Open),
        ]
    );
    let f = run(&deal, &h);
    assert_eq!(f.closed_at, Some(t(90)));
    assert_eq!(f.risk_score, 0);
}

#[test]
fn catalog_stages_of_another_pipeline_do_not_match() {
    let mut deal = deal();
    deal.fields.pipeline = Some("other".into());
    let h = vec![stage_change(Some("lost"), "proposal", 70)];
    let intervals = stage_intervals(&deal, &h, &catalog(), now());
    assert_eq!(intervals[0].category, StageCategory::Open);
}

// --- stage velocity ---------------------------------------------------------

#[test]
fn velocity_is_days_in_stage_over_the_won_median() {
    let h = vec![stage_change(Some("discovery"), "proposal", 90)];
    let b = baseline_with("proposal", 5.0, None);
    let f = compute(&deal(), &h, &catalog(), Some(&b), now());
    assert_eq!(f.stage_velocity, Some(2.0));
}

#[test]
fn velocity_is_none_without_a_matching_median() {
    let h = vec![stage_change(Some("discovery"), "proposal", 90)];
    assert_eq!(run(&deal(), &h).stage_velocity, None, "no baseline");
    let empty = WorkspaceBaseline::default();
    let f = compute(&deal(), &h, &catalog(), Some(&empty), now());
    assert_eq!(f.stage_velocity, None, "empty baseline");
    let other_stage = baseline_with("negotiation", 5.0, None);
    let f = compute(&deal(), &h, &catalog(), Some(&other_stage), now());
    assert_eq!(f.stage_velocity, None, "stage not in baseline");
    let mut other_pipeline = deal();
    other_pipeline.fields.pipeline = Some("q".into());
    let b = baseline_with("proposal", 5.0, None);
    let f = compute(&other_pipeline, &h, &catalog(), Some(&b), now());
    assert_eq!(f.stage_velocity, None, "pipeline differs");
    let zero = baseline_with("proposal", 0.0, None);
    let f = compute(&deal(), &h, &catalog(), Some(&zero), now());
    assert_eq!(f.stage_velocity, None, "zero median");
}

#[test]
fn velocity_is_none_for_closed_deals() {
    let deal = closed(deal(), "won", StageCategory::Won);
    let b = baseline_with("won", 5.0, None);
    let f = compute(&deal, &[], &catalog(), Some(&b), now());
    assert_eq!(f.stage_velocity, None);
}

// --- baseline ---------------------------------------------------------------

/// A won deal created on `start` with `(stage, days)` visits, then won.
fn won_deal(n: u128, start: i64, visits: &[(&str, i64)]) -> (Deal, Vec<DealChange>) {
    let mut deal = closed(deal(), "won", StageCategory::Won);
    deal.id = Uuid::from_u128(n);
    deal.fields.source_created_at = Some(t(start));
    let mut h = Vec::new();
    let mut day = start;
    let mut previous = visits.first().map(|(s, _)| *s);
    for (i, (_, days)) in visits.iter().enumerate() {
        day += days;
        let next = visits.get(i + 1).map_or("won", |(s, _)| *s);
        h.push(stage_change(previous, next, day));
        previous = Some(next);
    }
    (deal, h)
}

#[test]
fn baseline_takes_medians_of_won_deals_only() {
    let a = won_deal(11, 0, &[("discovery", 10), ("proposal", 5)]);
    let b = won_deal(12, 0, &[("discovery", 20), ("proposal", 7)]);
    let c = won_deal(
        13,
        0,
        &[("discovery", 30), ("proposal", 9), ("negotiation", 1)],
    );
    let e = won_deal(14, 0, &[("discovery", 40), ("proposal", 11)]);
    let mut lost = won_deal(15, 0, &[("discovery", 99), ("proposal", 99)]);
    lost.0 = closed(lost.0, "lost", StageCategory::Lost);
    let mut deleted = won_deal(16, 0, &[("discovery", 99), ("proposal", 99)]);
    deleted.0.deleted_at = Some(t(99));
    let open = (deal(), Vec::new());

    let all = [&a, &b, &c, &e, &lost, &deleted, &open];
    let input = |v: &[&(Deal, Vec<DealChange>)]| -> WorkspaceBaseline {
        WorkspaceBaseline::from_won_deals(
            v.iter().map(|(d, h)| (d, h.as_slice())),
            &catalog(),
            now(),
        )
    };
    let baseline = input(&all);
    assert_eq!(baseline.won_deals, 4);
    // Cycles: 15, 27, 40, 51 -> (27 + 40) / 2.
    assert_eq!(baseline.median_sales_cycle_days, Some(33.5));
    let stages: Vec<_> = baseline
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.median_days, s.samples))
        .collect();
    // negotiation has one sample (< MIN_BASELINE_SAMPLES): absent.
    assert_eq!(stages, [("discovery", 25.0, 4), ("proposal", 8.0, 4)]);
    assert_eq!(
        baseline.stage(Some("p"), "proposal").map(|s| s.median_days),
        Some(8.0)
    );
    assert!(baseline.stage(None, "proposal").is_none());

    let mut reversed = all;
    reversed.reverse();
    assert_eq!(input(&reversed), baseline, "order does not matter");

    let three = input(&[&a, &b, &c]);
    assert_eq!(three.median_sales_cycle_days, Some(27.0), "odd count");
    assert_eq!(input(&[&a, &b]).median_sales_cycle_days, None, "too few");
}

#[test]
fn baseline_skips_closed_and_unknown_stage_intervals() {
    let mut deals = Vec::new();
    for n in 0..3 {
        let mut deal = closed(deal(), "won", StageCategory::Won);
        deal.id = Uuid::from_u128(20 + n);
        // Unknown stage, then a lost spell, then proposal, then won.
        let h = vec![
            change(DealField::Stage, None, Some("lost"), t(70)),
            stage_change(Some("lost"), "proposal", 80),
            stage_change(Some("proposal"), "won", 90),
        ];
        deals.push((deal, h));
    }
    let baseline = WorkspaceBaseline::from_won_deals(
        deals.iter().map(|(d, h)| (d, h.as_slice())),
        &catalog(),
        now(),
    );
    let stages: Vec<_> = baseline.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, ["proposal"]);
    assert_eq!(baseline.median_sales_cycle_days, Some(30.0));
}

#[test]
fn baseline_feeds_velocity_end_to_end() {
    let won: Vec<_> = (0..3)
        .map(|n| won_deal(30 + n, 0, &[("discovery", 4), ("proposal", 5)]))
        .collect();
    let baseline = WorkspaceBaseline::from_won_deals(
        won.iter().map(|(d, h)| (d, h.as_slice())),
        &catalog(),
        now(),
    );
    let h = vec![stage_change(Some("discovery"), "proposal", 80)];
    let f = compute(&deal(), &h, &catalog(), Some(&baseline), now());
    assert_eq!(f.stage_velocity, Some(4.0));
    assert_eq!(
        reason(&f, RiskCode::StageTimeOver2x).map(|r| r.points),
        Some(20)
    );
}

/// `from_won_deals` as it was before the accumulator existed, kept verbatim
/// to prove the accumulator changed no result.
fn reference_from_won_deals(
    deals: &[(Deal, Vec<DealChange>)],
    stages: &[PipelineStage],
    now: DateTime<Utc>,
) -> WorkspaceBaseline {
    use std::collections::BTreeMap;
    let mut won_deals = 0u32;
    let mut cycles: Vec<f64> = Vec::new();
    let mut per_stage: BTreeMap<(Option<String>, String), Vec<f64>> = BTreeMap::new();
    for (deal, history) in deals {
        if deal.fields.stage_category != StageCategory::Won || deal.deleted_at.is_some() {
            continue;
        }
        won_deals += 1;
        let timeline = Timeline::build(deal, history, stages, now);
        cycles.push(days_between(timeline.start, timeline.end));
        for interval in &timeline.intervals {
            let Some(stage) = &interval.stage else {
                continue;
            };
            if interval.category != StageCategory::Open || interval.end <= interval.start {
                continue;
            }
            per_stage
                .entry((deal.fields.pipeline.clone(), stage.clone()))
                .or_default()
                .push(interval.days());
        }
    }
    let stages = per_stage
        .into_iter()
        .filter_map(|((pipeline, stage), mut samples)| {
            let n = u32::try_from(samples.len()).unwrap_or(u32::MAX);
            let median_days = median(&mut samples)?;
            Some(StageBaseline {
                pipeline,
                stage,
                median_days,
                samples: n,
            })
        })
        .collect();
    WorkspaceBaseline {
        won_deals,
        median_sales_cycle_days: median(&mut cycles),
        stages,
    }
}

#[test]
fn accumulating_in_pages_equals_the_one_shot_baseline() {
    // 61 deals: won ones in two pipelines with 1-4 visits of varied lengths
    // (fractional days too), plus lost, open and deleted ones to skip.
    let names = ["discovery", "proposal", "negotiation"];
    let mut deals: Vec<(Deal, Vec<DealChange>)> = Vec::new();
    for n in 0..61i64 {
        let visits: Vec<(&str, i64)> = (0..(n % 4 + 1))
            .map(|v| (names[((n + v) % 3) as usize], (n * 7 + v * 3) % 13 + 1))
            .collect();
        let (mut deal, mut history) = won_deal(500 + n as u128, n % 9, &visits);
        if n % 5 == 0 {
            deal.fields.pipeline = Some("other".into());
        }
        if n % 6 == 0 {
            // Half a day later: fractional samples.
            for c in &mut history {
                c.changed_at += Duration::hours(12);
            }
        }
        match n % 11 {
            3 => deal = closed(deal, "lost", StageCategory::Lost),
            5 => deal = closed(deal, "proposal", StageCategory::Open),
            7 => deal.deleted_at = Some(t(99)),
            _ => {}
        }
        deals.push((deal, history));
    }
    let expected = reference_from_won_deals(&deals, &catalog(), now());
    assert!(expected.won_deals > 40, "{expected:?}");
    assert!(expected.stages.len() >= 4, "{expected:?}");

    let one_shot = WorkspaceBaseline::from_won_deals(
        deals.iter().map(|(d, h)| (d, h.as_slice())),
        &catalog(),
        now(),
    );
    assert_eq!(one_shot, expected, "from_won_deals is unchanged");

    for page in [1, 2, 7, 60, 100] {
        for reversed in [false, true] {
            let mut order: Vec<&(Deal, Vec<DealChange>)> = deals.iter().collect();
            if reversed {
                order.reverse();
            }
            let mut acc = BaselineAccumulator::new();
            for chunk in order.chunks(page) {
                for (d, h) in chunk {
                    acc.add(d, h, &catalog(), now());
                }
            }
            assert_eq!(acc.won_deals(), expected.won_deals);
            assert_eq!(
                acc.finish(),
                expected,
                "pages of {page}, reversed {reversed}"
            );
        }
    }
    assert_eq!(
        BaselineAccumulator::new().finish(),
        WorkspaceBaseline::default()
    );
}

// --- risk signals (the model of crate::risk) --------------------------------

fn with(
    risk: &RiskSettings,
    deal: &Deal,
    h: &[DealChange],
    b: Option<&WorkspaceBaseline>,
) -> ComputedFields {
    compute_with(deal, h, &catalog(), b, now(), risk)
}

#[test]
fn a_healthy_deal_fires_nothing() {
    let f = run(&deal(), &[]);
    assert_eq!(f.risk_score, 0);
    assert!(f.risk_reasons.is_empty());
    let b = baseline_with("proposal", 100.0, Some(20.0));
    let f = compute(&deal(), &[], &catalog(), Some(&b), now());
    assert!(f.risk_reasons.is_empty(), "{f:?}");
}

#[test]
fn stage_time_over_one_and_a_half_and_twice_the_median_exclusive() {
    let b = baseline_with("proposal", 10.0, None);
    let at = |entered: i64| {
        let h = vec![stage_change(Some("discovery"), "proposal", entered)];
        compute(&deal(), &h, &catalog(), Some(&b), now())
    };
    // Exactly 1.5×: nothing.
    let f = at(85);
    assert_eq!(f.stage_velocity, Some(1.5));
    assert!(f.risk_reasons.is_empty(), "{f:?}");
    // Above 1.5×.
    let f = at(84);
    assert_eq!(codes(&f), [RiskCode::StageTimeOver1_5x]);
    assert_eq!(f.risk_score, 10);
    assert_eq!(
        f.risk_reasons[0].detail,
        "16.0 days in stage proposal: 1.60× the won deals' median of 10.0 days (3 samples)"
    );
    // Exactly 2×: still the 1.5× signal.
    let f = at(80);
    assert_eq!(f.stage_velocity, Some(2.0));
    assert_eq!(codes(&f), [RiskCode::StageTimeOver1_5x]);
    // Above 2×: the 2× signal instead.
    let f = at(79);
    assert_eq!(codes(&f), [RiskCode::StageTimeOver2x]);
    assert_eq!(f.risk_score, 20);
    assert_eq!(
        f.risk_reasons[0].detail,
        "21.0 days in stage proposal: 2.10× the won deals' median of 10.0 days (3 samples)"
    );
    // No median for the stage (or no baseline): no stage signal, however long.
    let h = vec![stage_change(Some("discovery"), "proposal", 1)];
    let other = baseline_with("negotiation", 1.0, None);
    assert!(compute(&deal(), &h, &catalog(), Some(&other), now())
        .risk_reasons
        .is_empty());
    assert!(run(&deal(), &h).risk_reasons.is_empty());
}

#[test]
fn close_date_passed_is_before_today() {
    let mut deal = deal();
    deal.fields.close_date = Some(d(100));
    assert!(
        run(&deal, &[]).risk_reasons.is_empty(),
        "closing today is not late"
    );
    deal.fields.close_date = Some(d(99));
    let f = run(&deal, &[]);
    assert_eq!(codes(&f), [RiskCode::CloseDatePassed]);
    assert_eq!(f.risk_score, 20);
    assert_eq!(
        f.risk_reasons[0].detail,
        "close date 2026-04-10 passed 1 day ago"
    );
    deal.fields.close_date = Some(d(90));
    assert_eq!(
        run(&deal, &[]).risk_reasons[0].detail,
        "close date 2026-04-01 passed 10 days ago"
    );
    // Late in the day: today's date still has not passed.
    let late = now() + Duration::hours(23);
    deal.fields.close_date = Some(d(100));
    let f = compute(&deal, &[], &catalog(), None, late);
    assert!(f.risk_reasons.is_empty());
    // No close date: nothing.
    deal.fields.close_date = None;
    assert!(run(&deal, &[]).risk_reasons.is_empty());
}

#[test]
fn one_push_fires_once_and_two_fire_twice_with_the_dates_gone_through() {
    let first = change(DealField::CloseDate, None, Some("2026-04-20"), t(60)); // first set
    let push = change(DealField::CloseDate, None, Some("2026-05-01"), t(65));
    let f = run(&deal(), std::slice::from_ref(&first));
    assert!(f.risk_reasons.is_empty(), "setting a first date is no push");
    let f = run(&deal(), &[first.clone(), push.clone()]);
    assert_eq!(f.close_date_pushes, 1);
    assert_eq!(codes(&f), [RiskCode::CloseDatePushedOnce]);
    assert_eq!(f.risk_score, 10);
    assert_eq!(
        f.risk_reasons[0].detail,
        "close date pushed 1×: 2026-04-20 → 2026-05-01"
    );
    // Vendor history without old values: pulled in, then pushed again.
    let h = vec![
        first,
        push,
        change(DealField::CloseDate, None, Some("2026-04-25"), t(70)), // pulled in
        change(DealField::CloseDate, None, Some("2026-05-11"), t(75)), // push
    ];
    let f = run(&deal(), &h);
    assert_eq!(f.close_date_pushes, 2);
    assert_eq!(codes(&f), [RiskCode::CloseDatePushedTwice]);
    assert_eq!(f.risk_score, 20);
    assert_eq!(
        f.risk_reasons[0].detail,
        "close date pushed 2×: 2026-04-20 → 2026-05-01 → 2026-04-25 → 2026-05-11"
    );
    // Five pushes with old values: still the one signal.
    let h: Vec<_> = (0..5)
        .map(|i| {
            let from = d(110 + i * 5).to_string();
            let to = d(115 + i * 5).to_string();
            change(DealField::CloseDate, Some(&from), Some(&to), t(61 + i))
        })
        .collect();
    let f = run(&deal(), &h);
    assert_eq!(f.close_date_pushes, 5);
    assert_eq!(codes(&f), [RiskCode::CloseDatePushedTwice]);
    // A push after now is not counted; clearing and moving earlier are not pushes.
    let h = vec![
        change(DealField::CloseDate, Some("2026-05-01"), None, t(70)),
        change(
            DealField::CloseDate,
            Some("2026-05-01"),
            Some("2026-04-30"),
            t(71),
        ),
        change(
            DealField::CloseDate,
            Some("2026-04-30"),
            Some("2026-06-30"),
            t(101),
        ),
    ];
    let f = run(&deal(), &h);
    assert_eq!(f.close_date_pushes, 0);
    assert!(f.risk_reasons.is_empty());
}

#[test]
fn amount_cut_from_its_highest_value_inclusive() {
    let cut_to = |amount: i64| {
        let mut deal = deal();
        deal.fields.amount = Some(Decimal::from(amount));
        let h = vec![
            change(DealField::Amount, None, Some("1500"), t(60)),
            change(DealField::Amount, Some("1500"), Some("2000"), t(70)),
            change(
                DealField::Amount,
                Some("2000"),
                Some(&amount.to_string()),
                t(80),
            ),
        ];
        (deal, h)
    };
    // Exactly 20 % below the highest value.
    let (deal, h) = cut_to(1600);
    let f = run(&deal, &h);
    assert_eq!(codes(&f), [RiskCode::AmountCut]);
    assert_eq!(f.risk_score, 15);
    assert_eq!(
        f.risk_reasons[0].detail,
        "amount cut 20%: 2000.00 → 1600.00"
    );
    // Less than 20 %.
    let (deal, h) = cut_to(1601);
    assert!(run(&deal, &h).risk_reasons.is_empty());
    let (deal, h) = cut_to(1000);
    assert_eq!(
        run(&deal, &h).risk_reasons[0].detail,
        "amount cut 50%: 2000.00 → 1000.00"
    );
    // The threshold is a setting.
    let quarter = RiskSettings {
        amount_cut_percent: 25,
        ..Default::default()
    };
    let (deal, h) = cut_to(1600);
    assert!(with(&quarter, &deal, &h, None).risk_reasons.is_empty());
    let (deal, h) = cut_to(1500);
    assert_eq!(
        codes(&with(&quarter, &deal, &h, None)),
        [RiskCode::AmountCut]
    );
    // Back at the highest value, or only increases: nothing.
    let (mut deal, h) = cut_to(1000);
    deal.fields.amount = Some(Decimal::from(2000));
    assert!(run(&deal, &h).risk_reasons.is_empty());
    let up = vec![change(DealField::Amount, Some("500"), Some("1000"), t(80))];
    assert!(run(&self::deal(), &up).risk_reasons.is_empty());
}

#[test]
fn signals_outside_the_model_do_not_fire() {
    // What the previous model flagged: no amount, no close date, inactive,
    // a recent owner change, an old deal. None is a signal now.
    let mut deal = deal();
    deal.fields.amount = None;
    deal.fields.close_date = None;
    deal.fields.source_created_at = Some(t(1));
    deal.fields.source_updated_at = Some(t(2));
    let h = vec![change(DealField::Owner, Some("u1"), Some("u2"), t(99))];
    let b = baseline_with("negotiation", 5.0, Some(10.0));
    let f = compute(&deal, &h, &catalog(), Some(&b), now());
    assert_eq!(f.risk_score, 0, "{f:?}");
}

/// A deal with every deal-only signal: close date pushed three times and
/// passed, amount cut, 40 days in a stage whose median is 5.
fn troubled() -> (Deal, Vec<DealChange>, WorkspaceBaseline) {
    let mut deal = deal();
    deal.fields.close_date = Some(d(65));
    deal.fields.source_updated_at = Some(t(62));
    let h = vec![
        change(
            DealField::CloseDate,
            Some("2026-02-20"),
            Some("2026-02-28"),
            t(61),
        ),
        change(
            DealField::CloseDate,
            Some("2026-02-28"),
            Some("2026-03-02"),
            t(62),
        ),
        change(
            DealField::CloseDate,
            Some("2026-03-02"),
            Some("2026-03-07"),
            t(63),
        ),
        change(DealField::Amount, Some("3000"), Some("1000"), t(64)),
    ];
    (deal, h, baseline_with("proposal", 5.0, Some(20.0)))
}

#[test]
fn reasons_in_model_order_with_their_evidence_summing_to_the_score() {
    let (deal, h, b) = troubled();
    let f = compute(&deal, &h, &catalog(), Some(&b), now());
    let got: Vec<_> = f
        .risk_reasons
        .iter()
        .map(|r| (r.code, r.points, r.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                RiskCode::CloseDatePushedTwice,
                20,
                "close date pushed 3×: 2026-02-20 → 2026-02-28 → 2026-03-02 → 2026-03-07"
            ),
            (
                RiskCode::StageTimeOver2x,
                20,
                "40.0 days in stage proposal: 8.00× the won deals' median of 5.0 days (3 samples)"
            ),
            (
                RiskCode::AmountCut,
                15,
                "amount cut 66.7%: 3000.00 → 1000.00"
            ),
            (
                RiskCode::CloseDatePassed,
                20,
                "close date 2026-03-07 passed 35 days ago"
            ),
        ]
    );
    assert_eq!(f.risk_score, 75);
    assert_eq!(risk::risk_score(&f.risk_reasons), 75);
    // compute = measure + risk::deal_signals + risk::score.
    let m = measure(&deal, &h, &catalog(), Some(&b), now());
    assert_eq!((m.risk_score, m.risk_reasons.len()), (0, 0));
    let fired = risk::deal_signals(&deal, &h, &m, Some(&b), now(), &RiskSettings::default());
    let scored = risk::score(fired, &risk::RiskWeights::default());
    assert_eq!(
        ComputedFields {
            risk_score: scored.score,
            risk_reasons: scored.reasons,
            ..m
        },
        f
    );
}

#[test]
fn weights_change_the_score_and_zero_drops_a_signal() {
    let (deal, h, b) = troubled();
    let mut risk = RiskSettings::default();
    risk.weights.set(RiskCode::AmountCut, 30);
    risk.weights.set(RiskCode::CloseDatePassed, 0);
    let f = with(&risk, &deal, &h, Some(&b));
    let got: Vec<_> = f.risk_reasons.iter().map(|r| (r.code, r.points)).collect();
    assert_eq!(
        got,
        [
            (RiskCode::CloseDatePushedTwice, 20),
            (RiskCode::StageTimeOver2x, 20),
            (RiskCode::AmountCut, 30),
        ]
    );
    assert_eq!(f.risk_score, 70);
    // Read from the workspace's deal_risk settings.
    let from_settings = RiskSettings::from_settings(&serde_json::json!({
        "weight_amount_cut": 30,
        "weight_close_date_passed": 0,
        "deals_listed": 5,
    }));
    assert_eq!(from_settings, risk);
}

#[test]
fn the_score_is_capped_at_100() {
    let (deal, h, b) = troubled();
    let mut risk = RiskSettings::default();
    risk.weights.set(RiskCode::CloseDatePushedTwice, 60);
    risk.weights.set(RiskCode::StageTimeOver2x, 60);
    let f = with(&risk, &deal, &h, Some(&b));
    let sum: u32 = f.risk_reasons.iter().map(|r| u32::from(r.points)).sum();
    assert_eq!(sum, 60 + 60 + 15 + 20);
    assert_eq!(f.risk_score, MAX_RISK_SCORE);
}

/// Stored fields as the last `deal_risk` run left them: the three entity
/// signals, and a deal-only one evaluated then.
fn stored_by_the_skill() -> ComputedFields {
    let reason = |code, points, detail: &str| RiskReason {
        code,
        points,
        detail: detail.into(),
    };
    ComputedFields {
        risk_score: 70,
        risk_reasons: vec![
            reason(
                RiskCode::NoBuyerConversation,
                20,
                "no conversation with the buyer in 14 days (never)",
            ),
            reason(
                RiskCode::SingleThreaded,
                15,
                "single-threaded: only Ann Lee engaged in the last 30 days",
            ),
            reason(
                RiskCode::CloseDatePassed,
                20,
                "close date 2026-04-01 passed 3 days ago",
            ),
            reason(
                RiskCode::NoSeniorContact,
                10,
                "no contact with a senior title: no contacts",
            ),
        ],
        ..run(&deal(), &[])
    }
}

#[test]
fn entity_reasons_are_carried_from_the_stored_fields_while_open() {
    let mut open = deal();
    open.computed = Some(stored_by_the_skill());
    let f = run(&open, &[]);
    let got: Vec<_> = f.risk_reasons.iter().map(|r| (r.code, r.points)).collect();
    // The entity signals stay; the deal-only one is evaluated again (the
    // close date, day 120, has not passed).
    assert_eq!(
        got,
        [
            (RiskCode::NoBuyerConversation, 20),
            (RiskCode::SingleThreaded, 15),
            (RiskCode::NoSeniorContact, 10),
        ]
    );
    assert_eq!(
        f.risk_reasons[1].detail,
        "single-threaded: only Ann Lee engaged in the last 30 days"
    );
    assert_eq!(f.risk_score, 45);
    // With the deal-only signals, in model order, re-weighted, capped.
    let (mut troubled_deal, h, b) = troubled();
    troubled_deal.computed = Some(stored_by_the_skill());
    let f = compute(&troubled_deal, &h, &catalog(), Some(&b), now());
    assert_eq!(
        codes(&f),
        [
            RiskCode::NoBuyerConversation,
            RiskCode::SingleThreaded,
            RiskCode::CloseDatePushedTwice,
            RiskCode::StageTimeOver2x,
            RiskCode::AmountCut,
            RiskCode::CloseDatePassed,
            RiskCode::NoSeniorContact,
        ]
    );
    assert_eq!(
        reason(&f, RiskCode::CloseDatePassed).map(|r| r.detail.as_str()),
        Some("close date 2026-03-07 passed 35 days ago"),
        "evaluated now, not carried"
    );
    assert_eq!(f.risk_score, MAX_RISK_SCORE);
    let mut risk = RiskSettings::default();
    risk.weights.set(RiskCode::SingleThreaded, 0);
    risk.weights.set(RiskCode::NoBuyerConversation, 5);
    let f = with(&risk, &open, &[], None);
    let got: Vec<_> = f.risk_reasons.iter().map(|r| (r.code, r.points)).collect();
    assert_eq!(
        got,
        [
            (RiskCode::NoBuyerConversation, 5),
            (RiskCode::NoSeniorContact, 10)
        ]
    );
    // Computing again from what was stored keeps them.
    open.computed = Some(f.clone());
    assert_eq!(with(&risk, &open, &[], None), f);
}

#[test]
fn entity_reasons_are_dropped_when_the_deal_closes() {
    for (stage, category) in [("won", StageCategory::Won), ("lost", StageCategory::Lost)] {
        let mut closed_deal = closed(deal(), stage, category);
        closed_deal.computed = Some(stored_by_the_skill());
        let f = run(&closed_deal, &[]);
        assert_eq!(f.risk_score, 0);
        assert!(f.risk_reasons.is_empty());
    }
}

#[test]
fn closed_deals_score_zero() {
    let (deal, h, b) = troubled();
    for (stage, category) in [("won", StageCategory::Won), ("lost", StageCategory::Lost)] {
        let closed_deal = closed(deal.clone(), stage, category);
        let f = compute(&closed_deal, &h, &catalog(), Some(&b), now());
        assert_eq!(f.risk_score, 0);
        assert!(f.risk_reasons.is_empty());
        assert_eq!(f.close_date_pushes, 3, "pushes are still counted");
    }
}

#[test]
fn same_input_same_output_and_serde_round_trip() {
    let (deal, h, b) = troubled();
    let a = compute(&deal, &h, &catalog(), Some(&b), now());
    let again = compute(&deal, &h, &catalog(), Some(&b), now());
    assert_eq!(a, again);
    let json = serde_json::to_value(&a).expect("serialize");
    assert_eq!(json["risk_reasons"][0]["code"], "close_date_pushed_twice");
    assert_eq!(json["risk_reasons"][1]["code"], "stage_time_over_2x");
    assert_eq!(json["risk_score"], 75);
    let back: ComputedFields = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, a);
    let b_json = serde_json::to_string(&b).expect("serialize");
    assert_eq!(
        serde_json::from_str::<WorkspaceBaseline>(&b_json).expect("deserialize"),
        b
    );
}

#[test]
fn stored_reasons_of_the_previous_model_are_dropped_when_read() {
    let mut json = serde_json::to_value(stored_by_the_skill()).expect("serialize");
    json["risk_reasons"] = serde_json::json!([
        {"code": "stalled_in_stage", "points": 35, "detail": "old"},
        {"code": "close_date_passed", "points": 25, "detail": "kept"},
        {"code": "inactive", "points": 15, "detail": "old"},
    ]);
    let back: ComputedFields = serde_json::from_value(json).expect("deserialize");
    assert_eq!(
        back.risk_reasons,
        [RiskReason {
            code: RiskCode::CloseDatePassed,
            points: 25,
            detail: "kept".into()
        }]
    );
}
