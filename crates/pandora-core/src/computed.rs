//! Computed deal fields: velocity (deal age, days in current stage, average
//! days per stage, stage velocity against won deals) and a risk score with the
//! reasons that raised it.
//!
//! Everything here is a pure function of its arguments: no store, no clock
//! (the current time is the `now` parameter), no randomness and no hash-map
//! iteration, so the same input always gives the same output. The sync engine
//! calls [`compute`] whenever a deal or its history changes and stores the
//! [`ComputedFields`] with the deal; [`WorkspaceBaseline::from_won_deals`]
//! (or a [`BaselineAccumulator`] fed page by page) summarises the
//! workspace's won deals for the comparisons. Keeping the stored fields and
//! the cached baseline up to date is the job of the `recompute` module.
//!
//! # Definitions
//!
//! All durations are in days, as fractional numbers (elapsed milliseconds ÷
//! 86,400,000), never negative. Times are UTC.
//!
//! - **Deal start**: the deal's `source_created_at` (creation in the vendor),
//!   or, when the vendor gave none, its `created_at` (first synced). A start
//!   after `now` is taken as `now`.
//! - **History**: only changes at or before `now` are used; changes after
//!   `now` are ignored. Changes are ordered by `changed_at`, then by id, so the
//!   order in which the history is passed does not matter. A change's
//!   *previous value* is its `old_value` when the vendor gave one, and
//!   otherwise the `new_value` of the change before it of the same field
//!   (vendors such as HubSpot report only new values).
//! - **Closed**: a deal whose `stage_category` is `won` or `lost`.
//! - **Close time** (closed deals only): the time of the latest stage change
//!   that moved the deal into its current stage; without one, the start of
//!   the day of its `close_date`; without one, its `source_updated_at`;
//!   without one, `now`. It is then clamped between the deal start and `now`.
//! - **Deal end**: the close time for closed deals, `now` for open ones.
//! - **Deal age**: deal end − deal start.
//! - **Stage intervals**: the deal's life from start to end, cut at every stage
//!   change that moved it to a different stage (see [`stage_intervals`]).
//! - **Days in current stage**: for an open deal, `now` − the start of its
//!   last stage interval (the latest stage change, else the deal start); for a
//!   closed deal, `now` − its close time (the time since it closed).
//! - **Average days per stage**: the mean length of the deal's stage
//!   intervals; `None` when it has none.
//! - **Stage velocity**: days in current stage ÷ the median length of the
//!   workspace's won deals' intervals in the same pipeline and stage. 1.0 is
//!   exactly as fast as a typical won deal; 2.0 twice as slow. `None` for
//!   closed deals, when no baseline is given, or when the baseline has no
//!   median for the stage.
//! - **Risk score**: the sum of the points of the [`RiskReason`]s, capped at
//!   [`MAX_RISK_SCORE`]; 0 with no reasons for closed deals. Each signal is
//!   described on its [`RiskCode`] variant, with its weight as a constant.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{Deal, DealChange, DealField, PipelineStage, StageCategory};

// ---------------------------------------------------------------------------
// Weights and thresholds
// ---------------------------------------------------------------------------

/// The highest risk score; the sum of the reasons' points is capped at it.
pub const MAX_RISK_SCORE: u8 = 100;

/// Fewest samples a baseline median needs: a stage (or the sales cycle) with
/// fewer won-deal samples gets no median, so comparisons with it are `None`.
pub const MIN_BASELINE_SAMPLES: u32 = 3;

/// Stage velocity at or above which an open deal is [`RiskCode::StalledInStage`].
pub const STALLED_RATIO: f64 = 2.0;
/// Stage velocity at or above which a stalled deal scores
/// [`SEVERELY_STALLED_POINTS`] instead of [`STALLED_POINTS`].
pub const SEVERELY_STALLED_RATIO: f64 = 4.0;
/// Fewest days in the current stage for a deal to count as stalled, whatever
/// its velocity (so that a two-day median does not flag a four-day deal).
pub const STALLED_MIN_DAYS: i64 = 7;
/// Days in the current stage at or above which a deal counts as stalled when
/// the baseline has no median for its stage.
pub const STALLED_FALLBACK_DAYS: i64 = 60;
/// Points for [`RiskCode::StalledInStage`] (velocity ≥ [`STALLED_RATIO`], or
/// the fallback without a median).
pub const STALLED_POINTS: u8 = 25;
/// Points for [`RiskCode::StalledInStage`] at velocity ≥ [`SEVERELY_STALLED_RATIO`].
pub const SEVERELY_STALLED_POINTS: u8 = 35;

/// Points for [`RiskCode::CloseDatePassed`].
pub const CLOSE_DATE_PASSED_POINTS: u8 = 25;

/// Points for each push counted by [`RiskCode::CloseDatePushed`].
pub const CLOSE_DATE_PUSH_POINTS: u8 = 10;
/// Most points [`RiskCode::CloseDatePushed`] can give, however many pushes.
pub const CLOSE_DATE_PUSH_MAX_POINTS: u8 = 30;

/// Points for [`RiskCode::AmountDecreased`].
pub const AMOUNT_DECREASED_POINTS: u8 = 15;

/// Days without activity at or above which a deal is [`RiskCode::Inactive`].
pub const INACTIVE_DAYS: i64 = 30;
/// Points for [`RiskCode::Inactive`].
pub const INACTIVE_POINTS: u8 = 15;

/// How recent (in days, inclusive) an owner change must be for
/// [`RiskCode::OwnerChanged`].
pub const OWNER_CHANGE_WINDOW_DAYS: i64 = 14;
/// Points for [`RiskCode::OwnerChanged`].
pub const OWNER_CHANGED_POINTS: u8 = 10;

/// Points for [`RiskCode::MissingAmount`].
pub const MISSING_AMOUNT_POINTS: u8 = 10;
/// Points for [`RiskCode::MissingCloseDate`].
pub const MISSING_CLOSE_DATE_POINTS: u8 = 10;

/// Deal age, as a multiple of the won deals' median sales cycle, at or above
/// which an open deal is [`RiskCode::BeyondSalesCycle`].
pub const BEYOND_CYCLE_RATIO: f64 = 1.5;
/// Points for [`RiskCode::BeyondSalesCycle`].
pub const BEYOND_CYCLE_POINTS: u8 = 15;

const MS_PER_DAY: f64 = 86_400_000.0;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// A signal that raised a deal's risk score.
///
/// Signals apply to open deals only. Variants are declared in the order used
/// to break ties between reasons with equal points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskCode {
    /// Far slower than won deals in the current stage: stage velocity ≥
    /// [`STALLED_RATIO`] and at least [`STALLED_MIN_DAYS`] days in the stage
    /// ([`STALLED_POINTS`], or [`SEVERELY_STALLED_POINTS`] at velocity ≥
    /// [`SEVERELY_STALLED_RATIO`]). When the baseline has no median for the
    /// stage: at least [`STALLED_FALLBACK_DAYS`] days in it ([`STALLED_POINTS`]).
    StalledInStage,
    /// The close date is before `now`'s UTC date while the deal is open
    /// ([`CLOSE_DATE_PASSED_POINTS`]). A close date of today has not passed.
    CloseDatePassed,
    /// The close date was moved later at least once: every close-date change
    /// whose new date is after its previous value (see the module docs) counts
    /// as a push; [`CLOSE_DATE_PUSH_POINTS`] per push, at most
    /// [`CLOSE_DATE_PUSH_MAX_POINTS`]. Setting a first close date, or moving it
    /// earlier, is not a push.
    CloseDatePushed,
    /// The current amount is below the highest amount the deal's history
    /// records (any old or new amount value) ([`AMOUNT_DECREASED_POINTS`]).
    AmountDecreased,
    /// No sign of activity for at least [`INACTIVE_DAYS`] days
    /// ([`INACTIVE_POINTS`]). The last activity is the latest of the deal's
    /// `source_updated_at`, its latest history change and its start, none
    /// counted later than `now`.
    Inactive,
    /// The owner changed within the last [`OWNER_CHANGE_WINDOW_DAYS`] days
    /// (inclusive) ([`OWNER_CHANGED_POINTS`]): an owner change after the deal
    /// start whose previous owner is known and differs from a non-empty new
    /// owner. A first assignment is not a change.
    OwnerChanged,
    /// The deal has no amount ([`MISSING_AMOUNT_POINTS`]).
    MissingAmount,
    /// The deal has no close date ([`MISSING_CLOSE_DATE_POINTS`]).
    MissingCloseDate,
    /// The deal is older than [`BEYOND_CYCLE_RATIO`] × the won deals' median
    /// sales cycle (inclusive) ([`BEYOND_CYCLE_POINTS`]). Needs a baseline with
    /// a sales-cycle median.
    BeyondSalesCycle,
}

impl RiskCode {
    /// Every code, in declaration order.
    pub const ALL: [RiskCode; 9] = [
        RiskCode::StalledInStage,
        RiskCode::CloseDatePassed,
        RiskCode::CloseDatePushed,
        RiskCode::AmountDecreased,
        RiskCode::Inactive,
        RiskCode::OwnerChanged,
        RiskCode::MissingAmount,
        RiskCode::MissingCloseDate,
        RiskCode::BeyondSalesCycle,
    ];

    /// The stable string used in JSON and storage, e.g. `"stalled_in_stage"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskCode::StalledInStage => "stalled_in_stage",
            RiskCode::CloseDatePassed => "close_date_passed",
            RiskCode::CloseDatePushed => "close_date_pushed",
            RiskCode::AmountDecreased => "amount_decreased",
            RiskCode::Inactive => "inactive",
            RiskCode::OwnerChanged => "owner_changed",
            RiskCode::MissingAmount => "missing_amount",
            RiskCode::MissingCloseDate => "missing_close_date",
            RiskCode::BeyondSalesCycle => "beyond_sales_cycle",
        }
    }

    /// Parses the string [`RiskCode::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        RiskCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One reason a deal's risk score was raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskReason {
    /// The signal.
    pub code: RiskCode,
    /// Points it added to the score (before the cap at [`MAX_RISK_SCORE`]).
    pub points: u8,
    /// A human-readable explanation with the numbers behind it.
    pub detail: String,
}

/// A stretch of a deal's life spent in one stage; see [`stage_intervals`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageInterval {
    /// Stage id; `None` when unknown (a deal whose history starts with a
    /// change without old value, or a closed deal without stage history).
    pub stage: Option<String>,
    /// The stage's category: from the workspace's stage catalog (matched on
    /// stage id, and on pipeline when the deal has one); else the deal's own
    /// category if it is the deal's current stage; else open.
    pub category: StageCategory,
    /// When the deal entered the stage (or the deal start).
    pub start: DateTime<Utc>,
    /// When it left it (or the deal end).
    pub end: DateTime<Utc>,
}

impl StageInterval {
    /// Length of the interval in days.
    pub fn days(&self) -> f64 {
        days_between(self.start, self.end)
    }
}

/// The median time won deals spent in one stage of one pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageBaseline {
    /// Pipeline id (`None` for deals without pipeline).
    pub pipeline: Option<String>,
    /// Stage id.
    pub stage: String,
    /// Median length, in days, of the won deals' intervals in this stage.
    pub median_days: f64,
    /// Number of intervals the median was taken over (at least
    /// [`MIN_BASELINE_SAMPLES`]).
    pub samples: u32,
}

/// What a workspace's won deals look like, to compare open deals with.
///
/// Build it with [`WorkspaceBaseline::from_won_deals`]. `Default` is an empty
/// baseline, with which every comparison is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkspaceBaseline {
    /// Number of won deals the baseline was built from.
    pub won_deals: u32,
    /// Median deal age (sales cycle, start to close time) of the won deals, in
    /// days; `None` with fewer than [`MIN_BASELINE_SAMPLES`] won deals.
    pub median_sales_cycle_days: Option<f64>,
    /// Per-stage medians, sorted by pipeline then stage. Only stages with at
    /// least [`MIN_BASELINE_SAMPLES`] samples appear.
    pub stages: Vec<StageBaseline>,
}

impl WorkspaceBaseline {
    /// Summarises a workspace's won deals, each given with its history.
    ///
    /// Deals that are not won (`stage_category` other than `won`) or are
    /// deleted are skipped. For each won deal, its [deal age](self) is one
    /// sales-cycle sample, and each of its [stage intervals](stage_intervals)
    /// with a known stage, an open category and a positive length is one
    /// sample for that (pipeline, stage); a stage visited twice gives two
    /// samples. Medians are of the sorted samples (the mean of the two middle
    /// ones for an even count), so the order of `deals` does not matter.
    pub fn from_won_deals<'a, I>(deals: I, stages: &[PipelineStage], now: DateTime<Utc>) -> Self
    where
        I: IntoIterator<Item = (&'a Deal, &'a [DealChange])>,
    {
        let mut acc = BaselineAccumulator::new();
        for (deal, history) in deals {
            acc.add(deal, history, stages, now);
        }
        acc.finish()
    }

    /// The median for `stage` of `pipeline` (both must match exactly).
    pub fn stage(&self, pipeline: Option<&str>, stage: &str) -> Option<&StageBaseline> {
        self.stages
            .binary_search_by(|s| (s.pipeline.as_deref(), s.stage.as_str()).cmp(&(pipeline, stage)))
            .ok()
            .map(|i| &self.stages[i])
    }
}

/// Builds a [`WorkspaceBaseline`] from won deals given a few at a time, so
/// that a workspace's won deals can be read page by page.
///
/// It keeps only the samples (one number per won deal and one per stage
/// visit), never the deals; [`finish`](Self::finish) takes the medians. Adding
/// every deal once, in any order and in any number of calls, gives exactly
/// what [`WorkspaceBaseline::from_won_deals`] gives for the same deals.
#[derive(Debug, Clone, Default)]
pub struct BaselineAccumulator {
    won_deals: u32,
    cycles: Vec<f64>,
    per_stage: std::collections::BTreeMap<(Option<String>, String), Vec<f64>>,
}

impl BaselineAccumulator {
    /// An accumulator with no deals yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one deal with its history (see
    /// [`WorkspaceBaseline::from_won_deals`] for what a deal contributes;
    /// deals that are not won, or are deleted, contribute nothing).
    pub fn add(
        &mut self,
        deal: &Deal,
        history: &[DealChange],
        stages: &[PipelineStage],
        now: DateTime<Utc>,
    ) {
        if deal.fields.stage_category != StageCategory::Won || deal.deleted_at.is_some() {
            return;
        }
        self.won_deals = self.won_deals.saturating_add(1);
        let timeline = Timeline::build(deal, history, stages, now);
        self.cycles.push(days_between(timeline.start, timeline.end));
        for interval in &timeline.intervals {
            let Some(stage) = &interval.stage else {
                continue;
            };
            if interval.category != StageCategory::Open || interval.end <= interval.start {
                continue;
            }
            self.per_stage
                .entry((deal.fields.pipeline.clone(), stage.clone()))
                .or_default()
                .push(interval.days());
        }
    }

    /// Number of won deals added so far.
    pub fn won_deals(&self) -> u32 {
        self.won_deals
    }

    /// The baseline of every deal added.
    pub fn finish(self) -> WorkspaceBaseline {
        let BaselineAccumulator {
            won_deals,
            mut cycles,
            per_stage,
        } = self;
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
}

/// A workspace's baseline as cached by the store, with when it was built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredBaseline {
    /// The baseline.
    pub baseline: WorkspaceBaseline,
    /// The `now` it was built at (see [`WorkspaceBaseline::from_won_deals`]).
    pub computed_at: DateTime<Utc>,
}

/// A deal's computed fields, as stored with the deal. See the
/// [module docs](self) for the definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComputedFields {
    /// The `now` the fields were computed at.
    pub computed_at: DateTime<Utc>,
    /// Deal age in days: from the deal start to its close time if closed, else
    /// to `now`.
    pub deal_age_days: f64,
    /// For a closed deal, its close time; `None` for open deals.
    pub closed_at: Option<DateTime<Utc>>,
    /// When the deal entered its current stage: for an open deal the start of
    /// its last stage interval (latest stage change, else deal start); for a
    /// closed deal its close time.
    pub stage_entered_at: DateTime<Utc>,
    /// Days from `stage_entered_at` to `now`.
    pub days_in_current_stage: f64,
    /// Number of stage intervals (stage visits, a stage entered twice counts
    /// twice) in the deal's life so far.
    pub stages_visited: u32,
    /// Mean length in days of the stage intervals; `None` when there are none
    /// (a closed deal that closed at its start).
    pub avg_days_per_stage: Option<f64>,
    /// Days in current stage ÷ the won deals' median for that pipeline and
    /// stage; `None` for closed deals or without a median.
    pub stage_velocity: Option<f64>,
    /// How many times the close date was moved later.
    pub close_date_pushes: u32,
    /// Risk score, 0–100: the reasons' points summed, capped at 100.
    pub risk_score: u8,
    /// The reasons, highest points first (ties in [`RiskCode`] order).
    pub risk_reasons: Vec<RiskReason>,
}

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

/// Computes all of a deal's fields.
///
/// `history` is the deal's field history (any order; changes after `now` are
/// ignored), `stages` the workspace's stage catalog, `baseline` the
/// workspace's won-deal baseline if there is one, and `now` the time to
/// compute at.
pub fn compute(
    deal: &Deal,
    history: &[DealChange],
    stages: &[PipelineStage],
    baseline: Option<&WorkspaceBaseline>,
    now: DateTime<Utc>,
) -> ComputedFields {
    let timeline = Timeline::build(deal, history, stages, now);
    let deal_age_days = days_between(timeline.start, timeline.end);
    let days_in_current_stage = days_between(timeline.stage_entered_at, now);
    let stages_visited = u32::try_from(timeline.intervals.len()).unwrap_or(u32::MAX);
    let avg_days_per_stage = if timeline.intervals.is_empty() {
        None
    } else {
        let total: f64 = timeline.intervals.iter().map(StageInterval::days).sum();
        Some(total / f64::from(stages_visited))
    };
    let stage_median = match (&timeline.closed_at, &deal.fields.stage, baseline) {
        (None, Some(stage), Some(b)) => b
            .stage(deal.fields.pipeline.as_deref(), stage)
            .map(|s| s.median_days)
            .filter(|m| *m > 0.0),
        _ => None,
    };
    let stage_velocity = stage_median.map(|m| days_in_current_stage / m);
    let pushes = close_date_pushes(&timeline.changes);
    let close_date_pushes = u32::try_from(pushes.len()).unwrap_or(u32::MAX);

    let mut fields = ComputedFields {
        computed_at: now,
        deal_age_days,
        closed_at: timeline.closed_at,
        stage_entered_at: timeline.stage_entered_at,
        days_in_current_stage,
        stages_visited,
        avg_days_per_stage,
        stage_velocity,
        close_date_pushes,
        risk_score: 0,
        risk_reasons: Vec::new(),
    };
    if timeline.closed_at.is_none() {
        let reasons = risk_reasons(
            deal,
            &timeline,
            &fields,
            stage_median,
            &pushes,
            baseline,
            now,
        );
        fields.risk_score = risk_score(&reasons);
        fields.risk_reasons = reasons;
    }
    fields
}

/// The deal's stage intervals from its start to its end (see the
/// [module docs](self)), oldest first.
///
/// The stage at the start is the previous value of the first stage change
/// (possibly unknown), or, without stage history, the deal's current stage
/// for an open deal and unknown for a closed one. Each stage change at or
/// before `now` whose new stage differs from the stage the deal is in at that
/// point ends one interval and starts the next; a change that repeats the
/// current stage does not. Change times are clamped into the deal's life.
/// For an open deal the last interval is labelled with the deal's current
/// stage (if its history says otherwise, the unrecorded move is assumed to
/// have happened at the latest recorded stage change) and runs to `now`; it is
/// kept even if empty. A closed deal's intervals end at its close time, so the
/// closed stage itself is not an interval. Other empty intervals are dropped,
/// and neighbours left with the same stage are merged.
pub fn stage_intervals(
    deal: &Deal,
    history: &[DealChange],
    stages: &[PipelineStage],
    now: DateTime<Utc>,
) -> Vec<StageInterval> {
    Timeline::build(deal, history, stages, now).intervals
}

/// A deal's life laid out once, shared by every field.
struct Timeline<'a> {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    stage_entered_at: DateTime<Utc>,
    intervals: Vec<StageInterval>,
    /// Changes at or before `now`, in (changed_at, id) order.
    changes: Vec<&'a DealChange>,
}

impl<'a> Timeline<'a> {
    fn build(
        deal: &Deal,
        history: &'a [DealChange],
        stages: &[PipelineStage],
        now: DateTime<Utc>,
    ) -> Self {
        let start = deal_start(deal).min(now);
        let mut changes: Vec<&DealChange> =
            history.iter().filter(|c| c.changed_at <= now).collect();
        changes.sort_by_key(|c| (c.changed_at, c.id));
        let closed = deal.fields.stage_category != StageCategory::Open;

        // Stage segments: (stage, entered at), consecutive stages distinct.
        let stage_changes: Vec<&DealChange> = changes
            .iter()
            .copied()
            .filter(|c| c.field == DealField::Stage)
            .collect();
        let initial = match stage_changes.first() {
            Some(first) => first.old_value.clone(),
            None if closed => None,
            None => deal.fields.stage.clone(),
        };
        let mut segments: Vec<(Option<String>, DateTime<Utc>)> = vec![(initial, start)];
        for c in &stage_changes {
            if segments.last().is_some_and(|(s, _)| *s == c.new_value) {
                continue;
            }
            segments.push((c.new_value.clone(), c.changed_at.clamp(start, now)));
        }

        let closed_at = closed.then(|| {
            let from_history = match segments.last() {
                Some((stage, at)) if segments.len() > 1 && stage.is_some() => {
                    (*stage == deal.fields.stage).then_some(*at)
                }
                _ => None,
            };
            from_history
                .or_else(|| deal.fields.close_date.map(start_of_day))
                .or(deal.fields.source_updated_at)
                .unwrap_or(now)
                .clamp(start, now)
        });
        if !closed {
            if let Some(last) = segments.last_mut() {
                last.0 = deal.fields.stage.clone();
            }
        }
        let end = closed_at.unwrap_or(now);

        let category = |stage: &Option<String>| -> StageCategory {
            let Some(s) = stage else {
                return StageCategory::Open;
            };
            stages
                .iter()
                .find(|st| {
                    &st.fields.stage == s
                        && deal
                            .fields
                            .pipeline
                            .as_ref()
                            .is_none_or(|p| p == &st.fields.pipeline)
                })
                .map(|st| st.fields.category)
                .unwrap_or(if deal.fields.stage.as_ref() == Some(s) {
                    deal.fields.stage_category
                } else {
                    StageCategory::Open
                })
        };

        let n = segments.len();
        let mut intervals: Vec<StageInterval> = Vec::with_capacity(n);
        for (i, (stage, from)) in segments.iter().enumerate() {
            let is_last = i + 1 == n;
            let to = segments.get(i + 1).map_or(end, |(_, t)| *t).min(end);
            let from = (*from).min(end);
            let keep = to > from || (is_last && !closed);
            if !keep {
                continue;
            }
            match intervals.last_mut() {
                Some(prev) if prev.stage == *stage => prev.end = to,
                _ => intervals.push(StageInterval {
                    stage: stage.clone(),
                    category: category(stage),
                    start: from,
                    end: to,
                }),
            }
        }
        let stage_entered_at = match closed_at {
            Some(at) => at,
            None => intervals.last().map_or(start, |i| i.start),
        };
        Timeline {
            start,
            end,
            closed_at,
            stage_entered_at,
            intervals,
            changes,
        }
    }
}

/// One push of the close date: from `from` to the later `to`.
struct Push {
    from: NaiveDate,
    to: NaiveDate,
}

fn close_date_pushes(changes: &[&DealChange]) -> Vec<Push> {
    let mut pushes = Vec::new();
    let mut last: Option<&str> = None;
    for c in changes.iter().filter(|c| c.field == DealField::CloseDate) {
        let previous = c.old_value.as_deref().or(last);
        if let (Some(from), Some(to)) = (
            previous.and_then(|v| NaiveDate::from_str(v).ok()),
            c.new_value
                .as_deref()
                .and_then(|v| NaiveDate::from_str(v).ok()),
        ) {
            if to > from {
                pushes.push(Push { from, to });
            }
        }
        last = c.new_value.as_deref();
    }
    pushes
}

fn risk_reasons(
    deal: &Deal,
    timeline: &Timeline<'_>,
    fields: &ComputedFields,
    stage_median: Option<f64>,
    pushes: &[Push],
    baseline: Option<&WorkspaceBaseline>,
    now: DateTime<Utc>,
) -> Vec<RiskReason> {
    let mut reasons = Vec::new();
    let mut add = |code: RiskCode, points: u8, detail: String| {
        reasons.push(RiskReason {
            code,
            points,
            detail,
        });
    };
    let stage_name = deal.fields.stage.as_deref().unwrap_or("(none)");
    let in_stage = now - timeline.stage_entered_at;

    // Stalled in stage.
    match (fields.stage_velocity, stage_median) {
        (Some(ratio), Some(median)) => {
            if ratio >= STALLED_RATIO && in_stage >= Duration::days(STALLED_MIN_DAYS) {
                let points = if ratio >= SEVERELY_STALLED_RATIO {
                    SEVERELY_STALLED_POINTS
                } else {
                    STALLED_POINTS
                };
                add(
                    RiskCode::StalledInStage,
                    points,
                    format!(
                        "{:.1} days in stage \"{stage_name}\", {ratio:.1}× the won-deal median of {median:.1} days",
                        fields.days_in_current_stage
                    ),
                );
            }
        }
        _ => {
            if in_stage >= Duration::days(STALLED_FALLBACK_DAYS) {
                add(
                    RiskCode::StalledInStage,
                    STALLED_POINTS,
                    format!(
                        "{:.1} days in stage \"{stage_name}\" (no won-deal median for the stage; threshold {STALLED_FALLBACK_DAYS} days)",
                        fields.days_in_current_stage
                    ),
                );
            }
        }
    }

    // Close date passed.
    let today = now.date_naive();
    if let Some(close) = deal.fields.close_date {
        if close < today {
            let overdue = (today - close).num_days();
            add(
                RiskCode::CloseDatePassed,
                CLOSE_DATE_PASSED_POINTS,
                format!(
                    "close date {close} passed {overdue} day(s) ago and the deal is still open"
                ),
            );
        }
    }

    // Close date pushed.
    if let Some(latest) = pushes.last() {
        let n = pushes.len();
        let points = u8::try_from(n)
            .unwrap_or(u8::MAX)
            .saturating_mul(CLOSE_DATE_PUSH_POINTS)
            .min(CLOSE_DATE_PUSH_MAX_POINTS);
        add(
            RiskCode::CloseDatePushed,
            points,
            format!(
                "close date pushed {n} time(s), most recently from {} to {}",
                latest.from, latest.to
            ),
        );
    }

    // Amount decreased.
    if let Some(current) = deal.fields.amount {
        let peak = timeline
            .changes
            .iter()
            .filter(|c| c.field == DealField::Amount)
            .flat_map(|c| [c.old_value.as_deref(), c.new_value.as_deref()])
            .flatten()
            .filter_map(|v| Decimal::from_str(v).ok())
            .max();
        if let Some(peak) = peak.filter(|p| current < *p) {
            let pct = if peak > Decimal::ZERO {
                ((peak - current) * Decimal::from(100) / peak).round_dp(1)
            } else {
                Decimal::ZERO
            };
            add(
                RiskCode::AmountDecreased,
                AMOUNT_DECREASED_POINTS,
                format!(
                    "amount down from {} to {} ({}% below its peak)",
                    peak.normalize(),
                    current.normalize(),
                    pct.normalize()
                ),
            );
        }
    }

    // Inactive.
    let last_activity = [
        Some(timeline.start),
        deal.fields.source_updated_at.map(|t| t.min(now)),
        timeline.changes.last().map(|c| c.changed_at),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(timeline.start);
    if now - last_activity >= Duration::days(INACTIVE_DAYS) {
        add(
            RiskCode::Inactive,
            INACTIVE_POINTS,
            format!(
                "no activity for {:.1} days (last {})",
                days_between(last_activity, now),
                last_activity.to_rfc3339()
            ),
        );
    }

    // Owner changed recently.
    let mut last_owner: Option<&str> = None;
    let mut handover: Option<(&str, &str, DateTime<Utc>)> = None;
    for c in timeline
        .changes
        .iter()
        .filter(|c| c.field == DealField::Owner)
    {
        let previous = c.old_value.as_deref().or(last_owner);
        if let (Some(from), Some(to)) = (previous, c.new_value.as_deref()) {
            if from != to
                && c.changed_at > timeline.start
                && now - c.changed_at <= Duration::days(OWNER_CHANGE_WINDOW_DAYS)
            {
                handover = Some((from, to, c.changed_at));
            }
        }
        last_owner = c.new_value.as_deref();
    }
    if let Some((from, to, at)) = handover {
        add(
            RiskCode::OwnerChanged,
            OWNER_CHANGED_POINTS,
            format!(
                "owner changed from {from} to {to} {:.1} days ago",
                days_between(at, now)
            ),
        );
    }

    // Missing fields.
    if deal.fields.amount.is_none() {
        add(
            RiskCode::MissingAmount,
            MISSING_AMOUNT_POINTS,
            "the deal has no amount".into(),
        );
    }
    if deal.fields.close_date.is_none() {
        add(
            RiskCode::MissingCloseDate,
            MISSING_CLOSE_DATE_POINTS,
            "the deal has no close date".into(),
        );
    }

    // Beyond the typical sales cycle.
    if let Some(cycle) = baseline
        .and_then(|b| b.median_sales_cycle_days)
        .filter(|c| *c > 0.0)
    {
        if fields.deal_age_days >= BEYOND_CYCLE_RATIO * cycle {
            add(
                RiskCode::BeyondSalesCycle,
                BEYOND_CYCLE_POINTS,
                format!(
                    "{:.1} days old, {:.1}× the won-deal median sales cycle of {cycle:.1} days",
                    fields.deal_age_days,
                    fields.deal_age_days / cycle
                ),
            );
        }
    }

    reasons.sort_by(|a, b| b.points.cmp(&a.points).then(a.code.cmp(&b.code)));
    reasons
}

/// The risk score for `reasons`: their points summed, capped at [`MAX_RISK_SCORE`].
pub fn risk_score(reasons: &[RiskReason]) -> u8 {
    let sum: u32 = reasons.iter().map(|r| u32::from(r.points)).sum();
    u8::try_from(sum.min(u32::from(MAX_RISK_SCORE))).unwrap_or(MAX_RISK_SCORE)
}

/// The deal start: `source_created_at`, else `created_at` (not clamped).
fn deal_start(deal: &Deal) -> DateTime<Utc> {
    deal.fields.source_created_at.unwrap_or(deal.created_at)
}

fn start_of_day(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Days from `from` to `to`, never negative.
fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let ms = (to - from).num_milliseconds().max(0);
    // Exact for any realistic span (< 2^53 ms, about 285,000 years).
    ms as f64 / MS_PER_DAY
}

/// Median of at least [`MIN_BASELINE_SAMPLES`] samples; sorts them.
fn median(samples: &mut [f64]) -> Option<f64> {
    if samples.len() < MIN_BASELINE_SAMPLES as usize {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    Some(if samples.len() % 2 == 0 {
        (samples[mid - 1] + samples[mid]) / 2.0
    } else {
        samples[mid]
    })
}

#[cfg(test)]
mod tests;
