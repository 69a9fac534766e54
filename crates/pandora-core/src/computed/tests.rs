use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use chrono::TimeZone;
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
        reason(&f, RiskCode::StalledInStage).map(|r| r.points),
        Some(SEVERELY_STALLED_POINTS)
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

// --- risk signals -----------------------------------------------------------

#[test]
fn stalled_at_twice_the_median_inclusive() {
    let h = vec![stage_change(Some("discovery"), "proposal", 80)];
    // 20 days in stage.
    let at = |median: f64| {
        compute(
            &deal(),
            &h,
            &catalog(),
            Some(&baseline_with("proposal", median, None)),
            now(),
        )
    };
    let f = at(10.0);
    assert_eq!(f.stage_velocity, Some(2.0));
    let r = reason(&f, RiskCode::StalledInStage).expect("stalled");
    assert_eq!(r.points, STALLED_POINTS);
    assert_eq!(
        r.detail,
        "20.0 days in stage \"proposal\", 2.0× the won-deal median of 10.0 days"
    );
    assert_eq!(f.risk_score, STALLED_POINTS);
    assert!(reason(&at(10.5), RiskCode::StalledInStage).is_none());
    let severe = at(5.0);
    assert_eq!(
        reason(&severe, RiskCode::StalledInStage).map(|r| r.points),
        Some(SEVERELY_STALLED_POINTS)
    );
    assert_eq!(
        reason(&at(5.1), RiskCode::StalledInStage).map(|r| r.points),
        Some(STALLED_POINTS)
    );
}

#[test]
fn stalled_needs_a_minimum_number_of_days() {
    let b = baseline_with("proposal", 1.0, None);
    let six = vec![stage_change(Some("discovery"), "proposal", 94)];
    let f = compute(&deal(), &six, &catalog(), Some(&b), now());
    assert_eq!(f.stage_velocity, Some(6.0));
    assert!(reason(&f, RiskCode::StalledInStage).is_none());
    let seven = vec![stage_change(Some("discovery"), "proposal", 93)];
    let f = compute(&deal(), &seven, &catalog(), Some(&b), now());
    assert!(reason(&f, RiskCode::StalledInStage).is_some());
}

#[test]
fn stalled_without_a_median_uses_an_absolute_threshold() {
    let mut deal = deal();
    deal.fields.source_created_at = Some(now() - Duration::days(STALLED_FALLBACK_DAYS));
    let f = run(&deal, &[]);
    let r = reason(&f, RiskCode::StalledInStage).expect("stalled");
    assert_eq!(r.points, STALLED_POINTS);
    assert!(r.detail.contains("no won-deal median"), "{}", r.detail);
    deal.fields.source_created_at =
        Some(now() - Duration::days(STALLED_FALLBACK_DAYS) + Duration::seconds(1));
    assert!(reason(&run(&deal, &[]), RiskCode::StalledInStage).is_none());
}

#[test]
fn close_date_passed_boundaries() {
    let mut deal = deal();
    deal.fields.close_date = Some(d(100));
    assert!(
        run(&deal, &[]).risk_reasons.is_empty(),
        "closing today is not late"
    );
    deal.fields.close_date = Some(d(99));
    let f = run(&deal, &[]);
    assert_eq!(codes(&f), [RiskCode::CloseDatePassed]);
    assert_eq!(f.risk_score, CLOSE_DATE_PASSED_POINTS);
    assert_eq!(
        f.risk_reasons[0].detail,
        "close date 2026-04-10 passed 1 day(s) ago and the deal is still open"
    );
    // Late in the day: today's date still has not passed.
    let late = now() + Duration::hours(23);
    deal.fields.close_date = Some(d(100));
    let f = compute(&deal, &[], &catalog(), None, late);
    assert!(reason(&f, RiskCode::CloseDatePassed).is_none());
}

#[test]
fn close_date_pushed_twice_with_vendor_history_without_old_values() {
    let h = vec![
        change(DealField::CloseDate, None, Some("2026-04-20"), t(60)), // first set
        change(DealField::CloseDate, None, Some("2026-05-01"), t(65)), // push
        change(DealField::CloseDate, None, Some("2026-04-25"), t(70)), // pulled in
        change(DealField::CloseDate, None, Some("2026-05-11"), t(75)), // push
    ];
    let f = run(&deal(), &h);
    assert_eq!(f.close_date_pushes, 2);
    assert_eq!(codes(&f), [RiskCode::CloseDatePushed]);
    assert_eq!(f.risk_reasons[0].points, 2 * CLOSE_DATE_PUSH_POINTS);
    assert_eq!(
        f.risk_reasons[0].detail,
        "close date pushed 2 time(s), most recently from 2026-04-25 to 2026-05-11"
    );
}

#[test]
fn close_date_pushes_with_old_values_and_the_cap() {
    let h: Vec<_> = (0..5)
        .map(|i| {
            let from = d(110 + i * 5).to_string();
            let to = d(115 + i * 5).to_string();
            change(DealField::CloseDate, Some(&from), Some(&to), t(61 + i))
        })
        .collect();
    let f = run(&deal(), &h);
    assert_eq!(f.close_date_pushes, 5);
    assert_eq!(
        reason(&f, RiskCode::CloseDatePushed).map(|r| r.points),
        Some(CLOSE_DATE_PUSH_MAX_POINTS)
    );
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
fn amount_decreased_from_its_peak() {
    let h = vec![
        change(DealField::Amount, None, Some("1500"), t(60)),
        change(DealField::Amount, Some("1500"), Some("2000"), t(70)),
        change(DealField::Amount, Some("2000"), Some("1000"), t(80)),
    ];
    let f = run(&deal(), &h);
    assert_eq!(codes(&f), [RiskCode::AmountDecreased]);
    assert_eq!(f.risk_score, AMOUNT_DECREASED_POINTS);
    assert_eq!(
        f.risk_reasons[0].detail,
        "amount down from 2000 to 1000 (50% below its peak)"
    );
    // Back at the peak: no signal.
    let mut recovered = deal();
    recovered.fields.amount = Some(Decimal::from(2000));
    assert!(run(&recovered, &h).risk_reasons.is_empty());
    // Only increases: no signal.
    let up = vec![change(DealField::Amount, Some("500"), Some("1000"), t(80))];
    assert!(run(&deal(), &up).risk_reasons.is_empty());
}

#[test]
fn inactive_boundaries() {
    let mut deal = deal();
    deal.fields.source_updated_at = Some(now() - Duration::days(INACTIVE_DAYS));
    let f = run(&deal, &[]);
    assert_eq!(codes(&f), [RiskCode::Inactive]);
    assert_eq!(f.risk_score, INACTIVE_POINTS);
    deal.fields.source_updated_at =
        Some(now() - Duration::days(INACTIVE_DAYS) + Duration::seconds(1));
    assert!(run(&deal, &[]).risk_reasons.is_empty());
}

#[test]
fn inactive_counts_history_and_the_start_as_activity() {
    let mut deal = deal();
    deal.fields.source_updated_at = Some(t(50));
    // A recent change is activity.
    let h = vec![change(
        DealField::ForecastCategory,
        None,
        Some("commit"),
        t(95),
    )];
    assert!(reason(&run(&deal, &h), RiskCode::Inactive).is_none());
    // A change after now is not.
    let later = vec![change(
        DealField::ForecastCategory,
        None,
        Some("commit"),
        t(101),
    )];
    assert!(reason(&run(&deal, &later), RiskCode::Inactive).is_some());
    // Without source_updated_at, the start counts: created 40 days ago.
    deal.fields.source_updated_at = None;
    assert!(reason(&run(&deal, &[]), RiskCode::Inactive).is_some());
    deal.fields.source_created_at = Some(t(90));
    assert!(reason(&run(&deal, &[]), RiskCode::Inactive).is_none());
    // An update stamped in the future counts as now.
    deal.fields.source_updated_at = Some(t(200));
    assert!(reason(&run(&deal, &[]), RiskCode::Inactive).is_none());
}

#[test]
fn owner_changed_within_the_window_inclusive() {
    let window = Duration::days(OWNER_CHANGE_WINDOW_DAYS);
    let h = vec![change(
        DealField::Owner,
        Some("u1"),
        Some("u2"),
        now() - window,
    )];
    let f = run(&deal(), &h);
    assert_eq!(codes(&f), [RiskCode::OwnerChanged]);
    assert_eq!(f.risk_score, OWNER_CHANGED_POINTS);
    assert_eq!(
        f.risk_reasons[0].detail,
        "owner changed from u1 to u2 14.0 days ago"
    );
    let h = vec![change(
        DealField::Owner,
        Some("u1"),
        Some("u2"),
        now() - window - Duration::seconds(1),
    )];
    assert!(run(&deal(), &h).risk_reasons.is_empty());
}

#[test]
fn owner_first_assignment_and_creation_are_not_changes() {
    // First assignment of an unowned deal.
    let h = vec![change(DealField::Owner, None, Some("u1"), t(95))];
    assert!(run(&deal(), &h).risk_reasons.is_empty());
    // A change at the deal start is the initial owner.
    let mut young = deal();
    young.fields.source_created_at = Some(t(95));
    let h = vec![change(DealField::Owner, Some("u0"), Some("u1"), t(95))];
    assert!(run(&young, &h).risk_reasons.is_empty());
    // Same owner again, or owner cleared.
    let h = vec![
        change(DealField::Owner, Some("u1"), Some("u1"), t(95)),
        change(DealField::Owner, Some("u1"), None, t(96)),
    ];
    assert!(run(&deal(), &h).risk_reasons.is_empty());
    // Vendor history without old values: the previous entry is the old owner.
    let h = vec![
        change(DealField::Owner, None, Some("u1"), t(60)),
        change(DealField::Owner, None, Some("u2"), t(95)),
    ];
    assert_eq!(codes(&run(&deal(), &h)), [RiskCode::OwnerChanged]);
}

#[test]
fn missing_amount_and_close_date() {
    let mut deal = deal();
    deal.fields.amount = None;
    let f = run(&deal, &[]);
    assert_eq!(codes(&f), [RiskCode::MissingAmount]);
    assert_eq!(f.risk_score, MISSING_AMOUNT_POINTS);
    deal.fields.close_date = None;
    let f = run(&deal, &[]);
    assert_eq!(
        codes(&f),
        [RiskCode::MissingAmount, RiskCode::MissingCloseDate]
    );
    assert_eq!(
        f.risk_score,
        MISSING_AMOUNT_POINTS + MISSING_CLOSE_DATE_POINTS
    );
}

#[test]
fn beyond_the_won_sales_cycle_inclusive() {
    // Median cycle 20 days: the threshold is 30 days of age.
    let b = baseline_with("proposal", 100.0, Some(20.0));
    let aged = |age: Duration| {
        let mut deal = deal();
        deal.fields.source_created_at = Some(now() - age);
        compute(&deal, &[], &catalog(), Some(&b), now())
    };
    let at = aged(Duration::days(30));
    assert_eq!(codes(&at), [RiskCode::BeyondSalesCycle]);
    assert_eq!(at.risk_score, BEYOND_CYCLE_POINTS);
    assert_eq!(
        at.risk_reasons[0].detail,
        "30.0 days old, 1.5× the won-deal median sales cycle of 20.0 days"
    );
    assert!(aged(Duration::days(30) - Duration::seconds(1))
        .risk_reasons
        .is_empty());
    let no_cycle = baseline_with("proposal", 100.0, None);
    let f = compute(&deal(), &[], &catalog(), Some(&no_cycle), now());
    assert!(f.risk_reasons.is_empty());
}

/// A deal with every signal but the owner change and missing fields.
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
fn reasons_sum_to_the_score_capped_at_100_and_sort_by_points() {
    let (deal, h, b) = troubled();
    let f = compute(&deal, &h, &catalog(), Some(&b), now());
    let got: Vec<_> = f.risk_reasons.iter().map(|r| (r.code, r.points)).collect();
    assert_eq!(
        got,
        [
            (RiskCode::StalledInStage, SEVERELY_STALLED_POINTS),
            (RiskCode::CloseDatePushed, CLOSE_DATE_PUSH_MAX_POINTS),
            (RiskCode::CloseDatePassed, CLOSE_DATE_PASSED_POINTS),
            (RiskCode::AmountDecreased, AMOUNT_DECREASED_POINTS),
            (RiskCode::Inactive, INACTIVE_POINTS),
            (RiskCode::BeyondSalesCycle, BEYOND_CYCLE_POINTS),
        ]
    );
    let sum: u32 = f.risk_reasons.iter().map(|r| u32::from(r.points)).sum();
    assert!(sum > 100);
    assert_eq!(f.risk_score, MAX_RISK_SCORE);
    assert_eq!(risk_score(&f.risk_reasons), MAX_RISK_SCORE);
    assert_eq!(risk_score(&f.risk_reasons[3..]), 45);
    assert_eq!(risk_score(&[]), 0);
}

#[test]
fn closed_deals_score_zero() {
    let (deal, h, b) = troubled();
    for (stage, category) in [("won", StageCategory::Won), ("lost", StageCategory::Lost)] {
        let mut closed_deal = closed(deal.clone(), stage, category);
        closed_deal.fields.amount = None;
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
    assert_eq!(json["risk_reasons"][0]["code"], "stalled_in_stage");
    assert_eq!(json["risk_score"], 100);
    let back: ComputedFields = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, a);
    let b_json = serde_json::to_string(&b).expect("serialize");
    assert_eq!(
        serde_json::from_str::<WorkspaceBaseline>(&b_json).expect("deserialize"),
        b
    );
}

#[test]
fn risk_codes_round_trip() {
    for code in RiskCode::ALL {
        assert_eq!(RiskCode::parse(code.as_str()), Some(code));
        assert_eq!(
            serde_json::to_value(code).expect("serialize"),
            serde_json::Value::String(code.as_str().into())
        );
    }
    assert_eq!(RiskCode::parse("nope"), None);
}
