//! Computed deal fields: velocity (deal age, days in current stage, average
//! days per stage, stage velocity against won deals) and a risk score with the
//! reasons that raised it.
//!
//! Everything here is a pure function of its arguments: no store, no clock
//! (the current time is the `now` parameter), no randomness and no hash-map
//! iteration, so the same input always gives the same output. The sync engine
//! calls [`compute_with`] (with the workspace's risk settings) whenever a deal
//! or its history changes and stores the [`ComputedFields`] with the deal; [`WorkspaceBaseline::from_won_deals`]
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
//! - **Risk score** (open deals; 0 with no reasons for closed deals): the
//!   [risk model](crate::risk)'s score of the deal's fired signals with the
//!   workspace's weights ([`compute_with`]; [`compute`] uses the defaults):
//!   the six *deal-only* signals evaluated at `now` by
//!   [`risk::deal_signals`] (close date pushed once / twice or more, days in
//!   stage over 1.5× / 2× the won-deal median, amount cut, close date
//!   passed), plus the three *entity signals* (no buyer conversation,
//!   single-threaded, no senior contact) carried over from the deal's
//!   previously stored reasons (`deal.computed`): the `deal_risk` skill
//!   evaluates those and writes its scores back on the deals, and a sync
//!   keeps them until the next run, or until the deal closes. Carried
//!   reasons keep their evidence and take the current weights.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Deal, DealChange, DealField, PipelineStage, StageCategory};
use crate::risk::{self, FiredSignal, RiskSettings};

pub use crate::risk::{RiskCode, RiskReason, MAX_RISK_SCORE};

/// Fewest samples a baseline median needs: a stage (or the sales cycle) with
/// fewer won-deal samples gets no median, so comparisons with it are `None`.
pub const MIN_BASELINE_SAMPLES: u32 = 3;

const MS_PER_DAY: f64 = 86_400_000.0;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

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
    /// The reasons, in the [risk model](crate::risk)'s signal order. Stored
    /// reasons whose code is not one of the model's signals (written by an
    /// earlier version) are dropped when read.
    #[serde(deserialize_with = "known_reasons")]
    pub risk_reasons: Vec<RiskReason>,
}

/// Reads stored reasons, skipping those whose code the model no longer has.
fn known_reasons<'de, D>(deserializer: D) -> Result<Vec<RiskReason>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Stored {
        code: String,
        points: u8,
        detail: String,
    }
    let stored = Vec::<Stored>::deserialize(deserializer)?;
    Ok(stored
        .into_iter()
        .filter_map(|r| {
            Some(RiskReason {
                code: RiskCode::parse(&r.code)?,
                points: r.points,
                detail: r.detail,
            })
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

/// Computes all of a deal's fields, the risk with the model's default
/// settings: [`compute_with`] and [`RiskSettings::default`].
pub fn compute(
    deal: &Deal,
    history: &[DealChange],
    stages: &[PipelineStage],
    baseline: Option<&WorkspaceBaseline>,
    now: DateTime<Utc>,
) -> ComputedFields {
    compute_with(
        deal,
        history,
        stages,
        baseline,
        now,
        &RiskSettings::default(),
    )
}

/// Computes all of a deal's fields, the risk with `risk` (the workspace's
/// weights and `amount_cut` threshold).
///
/// `history` is the deal's field history (any order; changes after `now` are
/// ignored), `stages` the workspace's stage catalog, `baseline` the
/// workspace's won-deal baseline if there is one, and `now` the time to
/// compute at. For an open deal, the risk is the deal-only signals
/// ([`risk::deal_signals`]) plus the entity signals among the reasons of
/// `deal.computed` (the previously stored fields), scored with
/// `risk.weights` ([`risk::score`]); see the [module docs](self).
pub fn compute_with(
    deal: &Deal,
    history: &[DealChange],
    stages: &[PipelineStage],
    baseline: Option<&WorkspaceBaseline>,
    now: DateTime<Utc>,
    risk: &RiskSettings,
) -> ComputedFields {
    let timeline = Timeline::build(deal, history, stages, now);
    let mut fields = measure_timeline(deal, &timeline, baseline, now);
    if timeline.closed_at.is_none() {
        let carried = deal
            .computed
            .iter()
            .flat_map(|c| &c.risk_reasons)
            .filter(|r| r.code.needs_entities())
            .map(|r| FiredSignal::new(r.code, r.detail.clone()));
        let fired =
            risk::deal_signals_sorted(deal, &timeline.changes, &fields, baseline, now, risk);
        let scored = risk::score(carried.chain(fired), &risk.weights);
        fields.risk_score = scored.score;
        fields.risk_reasons = scored.reasons;
    }
    fields
}

/// A deal's measurements only: every field of [`compute`] but the risk
/// (`risk_score` 0, no reasons). What [`risk::deal_signals`] takes as the
/// deal's measures.
pub fn measure(
    deal: &Deal,
    history: &[DealChange],
    stages: &[PipelineStage],
    baseline: Option<&WorkspaceBaseline>,
    now: DateTime<Utc>,
) -> ComputedFields {
    let timeline = Timeline::build(deal, history, stages, now);
    measure_timeline(deal, &timeline, baseline, now)
}

fn measure_timeline(
    deal: &Deal,
    timeline: &Timeline<'_>,
    baseline: Option<&WorkspaceBaseline>,
    now: DateTime<Utc>,
) -> ComputedFields {
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
    let close_date_pushes = close_date_pushes(&timeline.changes);
    ComputedFields {
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
    }
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

/// How many close-date changes moved the date later than its previous
/// value (see the module docs).
fn close_date_pushes(changes: &[&DealChange]) -> u32 {
    let mut pushes = 0u32;
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
                pushes = pushes.saturating_add(1);
            }
        }
        last = c.new_value.as_deref();
    }
    pushes
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
