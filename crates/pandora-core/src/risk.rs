//! The deal risk model: one model, used when a deal is synced and by the
//! `deal_risk` skill.
//!
//! A deal's risk score is the sum of the points of the **signals** that fire
//! for it, capped at [`MAX_RISK_SCORE`]. There are nine signals
//! ([`RiskCode`], in this order):
//!
//! | signal | fires when | default points |
//! |---|---|---|
//! | `no_buyer_conversation` | no conversation with the buyer recently (*entity signal*) | 20 |
//! | `single_threaded` | at most one external person engaged recently (*entity signal*) | 15 |
//! | `close_date_pushed_once` | the close date was moved later exactly once | 10 |
//! | `close_date_pushed_twice` | … [`PUSHED_TWICE`] times or more (instead of once) | 20 |
//! | `stage_time_over_1_5x` | days in the current stage above [`STAGE_TIME_OVER_1_5X`] × the won deals' median for the stage, up to [`STAGE_TIME_OVER_2X`] × | 10 |
//! | `stage_time_over_2x` | … above [`STAGE_TIME_OVER_2X`] × (instead of 1.5×) | 20 |
//! | `amount_cut` | the amount is at least `amount_cut_percent` ([`DEFAULT_AMOUNT_CUT_PERCENT`]) % below the highest amount in its history | 15 |
//! | `close_date_passed` | the close date is before the evaluation day | 20 |
//! | `no_senior_contact` | no contact on the deal has a senior title (*entity signal*) | 10 |
//!
//! Six signals need only the deal, its field history and the workspace's
//! won-deal baseline (the *deal-only* signals): [`deal_signals`] evaluates
//! them, the same way at sync time and in the skill. The three *entity
//! signals* need contacts and conversations, which only the skill reads;
//! they are evaluated by the `deal_risk` skill (`pandora-skills`), which
//! writes its scores back on the deals. When a deal is synced, its stored
//! score is recomputed from the deal-only signals at the sync's time plus
//! the entity signals of the last skill run, carried over from the deal's
//! stored reasons while it stays open (see [`crate::computed`]).
//!
//! Points are workspace settings: the `deal_risk` skill's settings
//! `weight_<signal>` ([`RiskCode::weight_setting`]), 0 turning a signal off;
//! `amount_cut_percent` sets the `amount_cut` threshold. The sync reads them
//! from the workspace's stored settings of [`SKILL_ID`]
//! ([`RiskSettings::from_settings`]). [`score`] turns fired signals into a
//! score and its [`RiskReason`]s.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::computed::{ComputedFields, WorkspaceBaseline};
use crate::model::{Deal, DealChange, DealField};
use crate::skill::money;

/// The id of the skill whose settings hold the model's settings (weights,
/// `amount_cut_percent`), and which evaluates every signal.
pub const SKILL_ID: &str = "deal_risk";

/// The highest risk score; the sum of the fired signals' points is capped at it.
pub const MAX_RISK_SCORE: u8 = 100;

/// The highest weight a signal can have.
pub const MAX_WEIGHT: u8 = 100;

/// Pushes of the close date from which `close_date_pushed_twice` fires
/// instead of `close_date_pushed_once`.
pub const PUSHED_TWICE: u32 = 2;

/// Days in stage ÷ the won deals' median above which (strictly)
/// `stage_time_over_1_5x` fires.
pub const STAGE_TIME_OVER_1_5X: f64 = 1.5;

/// Days in stage ÷ the won deals' median above which (strictly)
/// `stage_time_over_2x` fires instead of `stage_time_over_1_5x`.
pub const STAGE_TIME_OVER_2X: f64 = 2.0;

/// The setting of the `amount_cut` threshold, in percent.
pub const AMOUNT_CUT_PERCENT_SETTING: &str = "amount_cut_percent";

/// The default of [`AMOUNT_CUT_PERCENT_SETTING`]: `amount_cut` fires at
/// 20 % or more below the highest amount.
pub const DEFAULT_AMOUNT_CUT_PERCENT: u8 = 20;

/// A signal of the model. Variants are in the model's order, which is also
/// the order of a deal's reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RiskCode {
    /// No conversation with an external participant matched to the deal
    /// recently (entity signal, evaluated by the skill).
    #[serde(rename = "no_buyer_conversation")]
    NoBuyerConversation,
    /// At most one external person engaged recently (entity signal,
    /// evaluated by the skill).
    #[serde(rename = "single_threaded")]
    SingleThreaded,
    /// The close date was moved later exactly once: a close-date change whose
    /// new date is after its previous value (see [`crate::computed`]).
    #[serde(rename = "close_date_pushed_once")]
    CloseDatePushedOnce,
    /// The close date was moved later [`PUSHED_TWICE`] times or more.
    #[serde(rename = "close_date_pushed_twice")]
    CloseDatePushedTwice,
    /// Days in the current stage above [`STAGE_TIME_OVER_1_5X`] × the won
    /// deals' median for the stage, and at most [`STAGE_TIME_OVER_2X`] ×.
    #[serde(rename = "stage_time_over_1_5x")]
    StageTimeOver1_5x,
    /// Days in the current stage above [`STAGE_TIME_OVER_2X`] × the won
    /// deals' median for the stage.
    #[serde(rename = "stage_time_over_2x")]
    StageTimeOver2x,
    /// The amount is at least `amount_cut_percent` % below the highest
    /// amount in its history (any old or new value).
    #[serde(rename = "amount_cut")]
    AmountCut,
    /// The close date is before the evaluation time's UTC day (a close date
    /// of today has not passed).
    #[serde(rename = "close_date_passed")]
    CloseDatePassed,
    /// No contact on the deal (with a role, or engaged ever) has a senior
    /// title (entity signal, evaluated by the skill).
    #[serde(rename = "no_senior_contact")]
    NoSeniorContact,
}

impl RiskCode {
    /// Every signal, in the model's order.
    pub const ALL: [RiskCode; 9] = [
        RiskCode::NoBuyerConversation,
        RiskCode::SingleThreaded,
        RiskCode::CloseDatePushedOnce,
        RiskCode::CloseDatePushedTwice,
        RiskCode::StageTimeOver1_5x,
        RiskCode::StageTimeOver2x,
        RiskCode::AmountCut,
        RiskCode::CloseDatePassed,
        RiskCode::NoSeniorContact,
    ];

    /// The stable id used in JSON, storage and reports, e.g. `"amount_cut"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskCode::NoBuyerConversation => "no_buyer_conversation",
            RiskCode::SingleThreaded => "single_threaded",
            RiskCode::CloseDatePushedOnce => "close_date_pushed_once",
            RiskCode::CloseDatePushedTwice => "close_date_pushed_twice",
            RiskCode::StageTimeOver1_5x => "stage_time_over_1_5x",
            RiskCode::StageTimeOver2x => "stage_time_over_2x",
            RiskCode::AmountCut => "amount_cut",
            RiskCode::CloseDatePassed => "close_date_passed",
            RiskCode::NoSeniorContact => "no_senior_contact",
        }
    }

    /// Parses the id [`RiskCode::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        RiskCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The name of the setting of the signal's points, `weight_<signal>`.
    pub fn weight_setting(self) -> &'static str {
        match self {
            RiskCode::NoBuyerConversation => "weight_no_buyer_conversation",
            RiskCode::SingleThreaded => "weight_single_threaded",
            RiskCode::CloseDatePushedOnce => "weight_close_date_pushed_once",
            RiskCode::CloseDatePushedTwice => "weight_close_date_pushed_twice",
            RiskCode::StageTimeOver1_5x => "weight_stage_time_over_1_5x",
            RiskCode::StageTimeOver2x => "weight_stage_time_over_2x",
            RiskCode::AmountCut => "weight_amount_cut",
            RiskCode::CloseDatePassed => "weight_close_date_passed",
            RiskCode::NoSeniorContact => "weight_no_senior_contact",
        }
    }

    /// The signal's default points.
    pub fn default_points(self) -> u8 {
        match self {
            RiskCode::NoBuyerConversation => 20,
            RiskCode::SingleThreaded => 15,
            RiskCode::CloseDatePushedOnce => 10,
            RiskCode::CloseDatePushedTwice => 20,
            RiskCode::StageTimeOver1_5x => 10,
            RiskCode::StageTimeOver2x => 20,
            RiskCode::AmountCut => 15,
            RiskCode::CloseDatePassed => 20,
            RiskCode::NoSeniorContact => 10,
        }
    }

    /// Whether the signal needs other entities than the deal (contacts,
    /// conversations): only the skill evaluates it; the sync carries it over
    /// from the deal's stored reasons.
    pub fn needs_entities(self) -> bool {
        matches!(
            self,
            RiskCode::NoBuyerConversation | RiskCode::SingleThreaded | RiskCode::NoSeniorContact
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Points per signal. `Default` gives each signal its
/// [default points](RiskCode::default_points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskWeights {
    points: [u8; 9],
}

impl Default for RiskWeights {
    fn default() -> Self {
        RiskWeights {
            points: RiskCode::ALL.map(RiskCode::default_points),
        }
    }
}

impl RiskWeights {
    /// The weights of a settings object (such as the workspace's stored
    /// `deal_risk` settings): each `weight_<signal>` key with an integer
    /// value sets that signal's points (clamped to 0–[`MAX_WEIGHT`]); other
    /// keys and other values are ignored, leaving the defaults. Anything
    /// but an object gives the defaults.
    pub fn from_settings(settings: &Value) -> Self {
        let mut weights = RiskWeights::default();
        for code in RiskCode::ALL {
            if let Some(v) = settings.get(code.weight_setting()).and_then(Value::as_i64) {
                weights.set(code, clamp_percent(v));
            }
        }
        weights
    }

    /// The signal's points (0: the signal is off).
    pub fn get(&self, code: RiskCode) -> u8 {
        self.points[code.index()]
    }

    /// Sets the signal's points (at most [`MAX_WEIGHT`]).
    pub fn set(&mut self, code: RiskCode, points: u8) {
        self.points[code.index()] = points.min(MAX_WEIGHT);
    }

    /// Every signal with its points, in the model's order.
    pub fn iter(&self) -> impl Iterator<Item = (RiskCode, u8)> + '_ {
        RiskCode::ALL.into_iter().map(|c| (c, self.get(c)))
    }
}

/// Everything the model is set with: the weights, and the threshold of
/// `amount_cut`. `Default` is the model's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskSettings {
    /// Points per signal.
    pub weights: RiskWeights,
    /// `amount_cut` fires when the amount is at least this many percent
    /// below its highest value.
    pub amount_cut_percent: u8,
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            weights: RiskWeights::default(),
            amount_cut_percent: DEFAULT_AMOUNT_CUT_PERCENT,
        }
    }
}

impl RiskSettings {
    /// The model's settings of a settings object (such as the workspace's
    /// stored `deal_risk` settings): the weights ([`RiskWeights::from_settings`])
    /// and an integer [`AMOUNT_CUT_PERCENT_SETTING`] (clamped to 0–100);
    /// anything else is ignored, leaving the defaults.
    pub fn from_settings(settings: &Value) -> Self {
        RiskSettings {
            weights: RiskWeights::from_settings(settings),
            amount_cut_percent: settings
                .get(AMOUNT_CUT_PERCENT_SETTING)
                .and_then(Value::as_i64)
                .map_or(DEFAULT_AMOUNT_CUT_PERCENT, clamp_percent),
        }
    }
}

fn clamp_percent(v: i64) -> u8 {
    u8::try_from(v.clamp(0, 100)).unwrap_or(MAX_WEIGHT)
}

/// A signal that fired, with its evidence (a human-readable sentence with the
/// numbers behind it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredSignal {
    /// The signal.
    pub code: RiskCode,
    /// Why it fired, e.g. `"amount cut 20%: 1000.00 → 800.00"`.
    pub evidence: String,
}

impl FiredSignal {
    /// A fired signal.
    pub fn new(code: RiskCode, evidence: impl Into<String>) -> Self {
        FiredSignal {
            code,
            evidence: evidence.into(),
        }
    }
}

/// One reason a deal's risk score was raised: a fired signal with its points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskReason {
    /// The signal.
    pub code: RiskCode,
    /// Points it added to the score (before the cap at [`MAX_RISK_SCORE`]).
    pub points: u8,
    /// The signal's evidence.
    pub detail: String,
}

/// A score and the reasons behind it; see [`score`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskScore {
    /// The reasons' points summed, capped at [`MAX_RISK_SCORE`].
    pub score: u8,
    /// The fired signals with a non-zero weight, in the model's order.
    pub reasons: Vec<RiskReason>,
}

/// Scores fired signals with `weights`: each signal adds its weight; a
/// signal of weight 0 is dropped; the sum is capped at [`MAX_RISK_SCORE`].
/// Reasons come out in the model's order, one per signal (the first given
/// when a signal is given twice).
pub fn score(fired: impl IntoIterator<Item = FiredSignal>, weights: &RiskWeights) -> RiskScore {
    let mut fired: Vec<FiredSignal> = fired.into_iter().collect();
    fired.sort_by_key(|f| f.code);
    fired.dedup_by_key(|f| f.code);
    let reasons: Vec<RiskReason> = fired
        .into_iter()
        .filter_map(|f| {
            let points = weights.get(f.code);
            (points > 0).then_some(RiskReason {
                code: f.code,
                points,
                detail: f.evidence,
            })
        })
        .collect();
    RiskScore {
        score: risk_score(&reasons),
        reasons,
    }
}

/// The score of `reasons`: their points summed, capped at [`MAX_RISK_SCORE`].
pub fn risk_score(reasons: &[RiskReason]) -> u8 {
    let sum: u32 = reasons.iter().map(|r| u32::from(r.points)).sum();
    u8::try_from(sum.min(u32::from(MAX_RISK_SCORE))).unwrap_or(MAX_RISK_SCORE)
}

/// The six deal-only signals of an open deal as it stands at `at`, in the
/// model's order, each with its evidence.
///
/// `deal` is the deal at `at`; `history` its field history (any order;
/// changes after `at` are ignored); `measures` its computed fields at `at`
/// against `baseline` ([`crate::computed::measure`] or
/// [`crate::computed::compute`]), which give the close-date pushes, the
/// days in the current stage and the stage velocity; `baseline` the
/// workspace's won-deal baseline (the stage median's sample count for the
/// evidence). Signals:
///
/// - pushes ([`ComputedFields::close_date_pushes`]): one →
///   `close_date_pushed_once`, [`PUSHED_TWICE`] or more →
///   `close_date_pushed_twice`; evidence: the close dates the deal went
///   through (its first known value, then each change's new value),
///   `"close date pushed 2×: 2026-03-31 → 2026-04-30 → 2026-06-30"`;
/// - stage velocity above [`STAGE_TIME_OVER_2X`] → `stage_time_over_2x`,
///   else above [`STAGE_TIME_OVER_1_5X`] → `stage_time_over_1_5x` (no
///   velocity, so no signal, without a median for the stage):
///   `"26.0 days in stage demo: 2.60× the won deals' median of 10.0 days (3 samples)"`;
/// - the amount at most (100 − `amount_cut_percent`) % of the highest
///   amount in the history (a positive one) → `amount_cut`:
///   `"amount cut 20%: 1000.00 → 800.00"` (the cut rounded to 0.1 %);
/// - the close date before `at`'s UTC day → `close_date_passed`:
///   `"close date 2026-04-10 passed 1 day ago"`.
///
/// The caller decides whether the deal is open; closed deals have no risk.
pub fn deal_signals(
    deal: &Deal,
    history: &[DealChange],
    measures: &ComputedFields,
    baseline: Option<&WorkspaceBaseline>,
    at: DateTime<Utc>,
    settings: &RiskSettings,
) -> Vec<FiredSignal> {
    let mut changes: Vec<&DealChange> = history.iter().filter(|c| c.changed_at <= at).collect();
    changes.sort_by_key(|c| (c.changed_at, c.id));
    deal_signals_sorted(deal, &changes, measures, baseline, at, settings)
}

/// [`deal_signals`] over changes already filtered to `at` and sorted by
/// `(changed_at, id)`.
pub(crate) fn deal_signals_sorted(
    deal: &Deal,
    changes: &[&DealChange],
    measures: &ComputedFields,
    baseline: Option<&WorkspaceBaseline>,
    at: DateTime<Utc>,
    settings: &RiskSettings,
) -> Vec<FiredSignal> {
    let mut fired = Vec::new();

    // Close date pushes.
    let pushes = measures.close_date_pushes;
    if pushes > 0 {
        let code = if pushes >= PUSHED_TWICE {
            RiskCode::CloseDatePushedTwice
        } else {
            RiskCode::CloseDatePushedOnce
        };
        fired.push(FiredSignal::new(
            code,
            format!(
                "close date pushed {pushes}×: {}",
                close_date_chain(changes).join(" → ")
            ),
        ));
    }

    // Time in stage against the won deals' median.
    if let (Some(v), Some(stage)) = (measures.stage_velocity, deal.fields.stage.as_deref()) {
        if v > STAGE_TIME_OVER_1_5X {
            let median = baseline
                .and_then(|b| b.stage(deal.fields.pipeline.as_deref(), stage))
                .map(|b| (b.median_days, b.samples));
            let evidence = match median {
                Some((m, n)) => format!(
                    "{:.1} days in stage {stage}: {v:.2}× the won deals' median of {m:.1} days ({n} samples)",
                    measures.days_in_current_stage
                ),
                None => format!("{v:.2}× the won deals' median in stage {stage}"),
            };
            let code = if v > STAGE_TIME_OVER_2X {
                RiskCode::StageTimeOver2x
            } else {
                RiskCode::StageTimeOver1_5x
            };
            fired.push(FiredSignal::new(code, evidence));
        }
    }

    // Amount cut from its highest value.
    if let (Some(now), Some(high)) = (deal.fields.amount, highest_amount(changes)) {
        let hundred = Decimal::from(100);
        let cut = Decimal::from(settings.amount_cut_percent);
        if high > Decimal::ZERO && now * hundred <= high * (hundred - cut) {
            let pct = ((high - now) * hundred / high).round_dp(1);
            fired.push(FiredSignal::new(
                RiskCode::AmountCut,
                format!("amount cut {pct}%: {} → {}", money(high), money(now)),
            ));
        }
    }

    // Close date in the past.
    if let Some(cd) = deal.fields.close_date {
        let today = at.date_naive();
        if cd < today {
            fired.push(FiredSignal::new(
                RiskCode::CloseDatePassed,
                match (today - cd).num_days() {
                    1 => format!("close date {cd} passed 1 day ago"),
                    n => format!("close date {cd} passed {n} days ago"),
                },
            ));
        }
    }
    fired
}

/// The close dates a deal went through: the first close-date change's old
/// value (if any), then each change's new value, repeats dropped.
fn close_date_chain(changes: &[&DealChange]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for c in changes.iter().filter(|c| c.field == DealField::CloseDate) {
        if chain.is_empty() {
            if let Some(old) = &c.old_value {
                chain.push(old.clone());
            }
        }
        if let Some(new) = &c.new_value {
            if chain.last() != Some(new) {
                chain.push(new.clone());
            }
        }
    }
    chain
}

/// The highest amount in the changes (any old or new value).
fn highest_amount(changes: &[&DealChange]) -> Option<Decimal> {
    changes
        .iter()
        .filter(|c| c.field == DealField::Amount)
        .flat_map(|c| [c.old_value.as_deref(), c.new_value.as_deref()])
        .flatten()
        .filter_map(|v| Decimal::from_str(v).ok())
        .max()
}

/// Lowest scores of the bands above `low`. `Default`: medium from 25, high
/// from 50, critical from 75.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskBands {
    /// Lowest score of the medium band.
    pub medium: i64,
    /// Lowest score of the high band.
    pub high: i64,
    /// Lowest score of the critical band.
    pub critical: i64,
}

impl Default for RiskBands {
    fn default() -> Self {
        RiskBands {
            medium: 25,
            high: 50,
            critical: 75,
        }
    }
}

impl RiskBands {
    /// The band names, lowest first.
    pub const NAMES: [&'static str; 4] = ["low", "medium", "high", "critical"];

    /// The band of a score: `"critical"` from `critical`, else `"high"` from
    /// `high`, else `"medium"` from `medium`, else `"low"`.
    pub fn band(&self, score: i64) -> &'static str {
        if score >= self.critical {
            "critical"
        } else if score >= self.high {
            "high"
        } else if score >= self.medium {
            "medium"
        } else {
            "low"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_round_trip_with_their_settings_and_defaults() {
        for code in RiskCode::ALL {
            assert_eq!(RiskCode::parse(code.as_str()), Some(code));
            assert_eq!(
                serde_json::to_value(code).expect("serialize"),
                Value::String(code.as_str().into())
            );
            assert_eq!(
                code.weight_setting(),
                format!("weight_{}", code.as_str()),
                "{code:?}"
            );
        }
        assert_eq!(RiskCode::parse("nope"), None);
        let defaults: Vec<(&str, u8)> = RiskWeights::default()
            .iter()
            .map(|(c, p)| (c.as_str(), p))
            .collect();
        assert_eq!(
            defaults,
            [
                ("no_buyer_conversation", 20),
                ("single_threaded", 15),
                ("close_date_pushed_once", 10),
                ("close_date_pushed_twice", 20),
                ("stage_time_over_1_5x", 10),
                ("stage_time_over_2x", 20),
                ("amount_cut", 15),
                ("close_date_passed", 20),
                ("no_senior_contact", 10),
            ]
        );
        let entity: Vec<RiskCode> = RiskCode::ALL
            .into_iter()
            .filter(|c| c.needs_entities())
            .collect();
        assert_eq!(
            entity,
            [
                RiskCode::NoBuyerConversation,
                RiskCode::SingleThreaded,
                RiskCode::NoSeniorContact
            ]
        );
    }

    #[test]
    fn settings_read_weight_keys_and_the_amount_cut_and_ignore_the_rest() {
        let s = RiskSettings::from_settings(&json!({
            "weight_amount_cut": 40,
            "weight_close_date_passed": 0,
            "weight_single_threaded": 250,
            "weight_no_senior_contact": "many",
            "amount_cut_percent": 35,
            "deals_listed": 3,
            "band_high": 60,
        }));
        assert_eq!(s.weights.get(RiskCode::AmountCut), 40);
        assert_eq!(s.weights.get(RiskCode::CloseDatePassed), 0);
        assert_eq!(s.weights.get(RiskCode::SingleThreaded), MAX_WEIGHT);
        assert_eq!(s.weights.get(RiskCode::NoSeniorContact), 10);
        assert_eq!(s.weights.get(RiskCode::StageTimeOver2x), 20);
        assert_eq!(s.amount_cut_percent, 35);
        assert_eq!(
            RiskSettings::from_settings(&json!({})),
            RiskSettings::default()
        );
        assert_eq!(
            RiskSettings::from_settings(&Value::Null),
            RiskSettings::default()
        );
    }

    #[test]
    fn score_sums_weights_drops_zero_orders_and_caps() {
        let fired = || {
            vec![
                FiredSignal::new(RiskCode::CloseDatePassed, "late"),
                FiredSignal::new(RiskCode::NoBuyerConversation, "quiet"),
                FiredSignal::new(RiskCode::AmountCut, "cut"),
                FiredSignal::new(RiskCode::CloseDatePassed, "again"),
            ]
        };
        let s = score(fired(), &RiskWeights::default());
        assert_eq!(s.score, 20 + 20 + 15);
        let got: Vec<(RiskCode, u8, &str)> = s
            .reasons
            .iter()
            .map(|r| (r.code, r.points, r.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (RiskCode::NoBuyerConversation, 20, "quiet"),
                (RiskCode::AmountCut, 15, "cut"),
                (RiskCode::CloseDatePassed, 20, "late"),
            ]
        );
        let mut w = RiskWeights::default();
        w.set(RiskCode::AmountCut, 0);
        w.set(RiskCode::NoBuyerConversation, 70);
        let s = score(fired(), &w);
        assert_eq!(s.score, 90);
        assert!(s.reasons.iter().all(|r| r.code != RiskCode::AmountCut));
        w.set(RiskCode::CloseDatePassed, 100);
        assert_eq!(score(fired(), &w).score, MAX_RISK_SCORE);
        assert_eq!(score(Vec::new(), &w), RiskScore::default());
    }

    #[test]
    fn bands() {
        let b = RiskBands::default();
        let got: Vec<&str> = [0, 24, 25, 49, 50, 74, 75, 100]
            .into_iter()
            .map(|s| b.band(s))
            .collect();
        assert_eq!(
            got,
            ["low", "low", "medium", "medium", "high", "high", "critical", "critical"]
        );
    }
}
