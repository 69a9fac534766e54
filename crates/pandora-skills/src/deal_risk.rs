//! **Deal risk**: a points model over open deals, every fired signal named
//! with its evidence.
//!
//! Deals are scored as they stand at the evaluation time `T1` (the period's
//! end, or the as-of time when earlier): every deal open then. The model —
//! signals, default points, thresholds, scoring — is
//! [`pandora_core::risk`], the one the sync engine also uses for the score
//! stored on each deal. The six deal-only signals are evaluated by
//! [`risk::deal_signals`] on the deal rebuilt at `T1`, with its measurements
//! from [`pandora_core::computed`] (days in the current stage, the won
//! deals' median for that stage — a [`WorkspaceBaseline`] of the deals won
//! at `T1`, medians needing at least [`MIN_BASELINE_SAMPLES`] samples — and
//! the number of close-date pushes). The three signals that need contacts
//! and conversations are evaluated here, matched by [`crate::engagement`].
//! Signals and default points:
//!
//! | signal | fires when | points |
//! |---|---|---|
//! | `no_buyer_conversation` | no conversation with an external participant matched to the deal in the last `no_conversation_days` (14) days | 20 |
//! | `single_threaded` | at most one external person engaged in the last `single_thread_days` (30) days | 15 |
//! | `close_date_pushed_once` | the close date was moved later exactly once | 10 |
//! | `close_date_pushed_twice` | … twice or more | 20 |
//! | `stage_time_over_1_5x` | days in the current stage above 1.5× the won deals' median for the stage (and at most 2×) | 10 |
//! | `stage_time_over_2x` | … above 2× | 20 |
//! | `amount_cut` | the amount is at least 20 % below the highest amount in its history | 15 |
//! | `close_date_passed` | the close date is before `T1`'s day | 20 |
//! | `no_senior_contact` | no contact on the deal (with a role, or engaged ever) has a senior title | 10 |
//!
//! The score is the sum of the fired signals' points, capped at 100
//! ([`risk::score`]). Bands: **low** below `band_medium` (25), **medium**
//! below `band_high` (50), **high** below `band_critical` (75), **critical**
//! from it.
//!
//! Every open deal's score and reasons are also returned as the report's
//! `risk_updates`, which a live run writes back on the deals; the sync then
//! keeps their entity signals until the next run (see
//! [`pandora_core::computed`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use pandora_core::computed::{
    measure, BaselineAccumulator, WorkspaceBaseline, MIN_BASELINE_SAMPLES,
};
use pandora_core::model::{ChangeOrigin, Deal, DealChange, NewDeal, StageCategory};
use pandora_core::risk::{
    self, FiredSignal, RiskBands, RiskCode, RiskSettings, AMOUNT_CUT_PERCENT_SETTING,
    DEFAULT_AMOUNT_CUT_PERCENT,
};
use pandora_core::skill::{
    money, DealRiskUpdate, DealState, SettingKind, SettingSpec, Skill, SkillContext, SkillDeal,
    SkillInfo, SkillInputs, SkillReport,
};
use pandora_core::Result;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::engagement::{contact_name, Engagement};
use crate::period::{day, evaluation_time};
use crate::single_thread_alert::engagement_settings;

/// The skill's id.
pub const ID: &str = risk::SKILL_ID;

/// The deal risk skill (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct DealRisk;

/// Title words that make a contact senior, by default.
const SENIOR: [&str; 16] = [
    "chief",
    "ceo",
    "cfo",
    "coo",
    "cto",
    "cio",
    "cro",
    "cmo",
    "president",
    "vp",
    "vice president",
    "svp",
    "evp",
    "head",
    "director",
    "founder",
];

/// The words of a text, lower-cased.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `title` contains one of `patterns` as whole words.
pub fn is_senior(title: &str, patterns: &[String]) -> bool {
    let t = words(title);
    patterns.iter().any(|p| {
        let p = words(p);
        !p.is_empty() && t.windows(p.len()).any(|w| w == p.as_slice())
    })
}

/// The deal as it stood at `at`, with its history up to then, in the shape
/// [`pandora_core::computed`] takes.
fn as_record(deal: &SkillDeal, state: &DealState, at: DateTime<Utc>) -> (Deal, Vec<DealChange>) {
    let record = Deal {
        id: deal.id,
        workspace_id: Uuid::nil(),
        source: deal.source.clone(),
        fields: NewDeal {
            source_id: deal.source_id.clone(),
            name: deal.name.clone(),
            amount: state.amount,
            currency: deal.currency.clone(),
            pipeline: deal.pipeline.clone(),
            stage: state.stage.clone(),
            stage_category: state.stage_category,
            forecast_category: state.forecast_category.clone(),
            owner_source_id: state.owner_source_id.clone(),
            account_source_id: deal.account_source_id.clone(),
            close_date: state.close_date,
            source_created_at: Some(deal.created_at),
            properties: json!({}),
            ..Default::default()
        },
        owner_id: None,
        account_id: None,
        computed: None,
        created_at: deal.created_at,
        updated_at: at,
        deleted_at: None,
    };
    let history = deal
        .changes
        .iter()
        .filter(|c| c.at <= at)
        .enumerate()
        .map(|(k, c)| DealChange {
            id: Uuid::from_u128(k as u128 + 1),
            workspace_id: Uuid::nil(),
            deal_id: deal.id,
            field: c.field,
            old_value: c.old.clone(),
            new_value: c.new.clone(),
            changed_at: c.at,
            origin: ChangeOrigin::Vendor,
        })
        .collect();
    (record, history)
}

impl Skill for DealRisk {
    fn info(&self) -> SkillInfo {
        let mut settings: Vec<SettingSpec> = RiskCode::ALL
            .iter()
            .map(|&code| SettingSpec {
                name: code.weight_setting(),
                description: "Points the signal adds to the score when it fires (0 turns it off).",
                kind: SettingKind::Integer {
                    min: 0,
                    max: i64::from(risk::MAX_WEIGHT),
                },
                default: json!(code.default_points()),
            })
            .collect();
        settings.extend([
            SettingSpec {
                name: "no_conversation_days",
                description: "`no_buyer_conversation` fires without a conversation with the \
                    buyer in this many days.",
                kind: SettingKind::Integer { min: 1, max: 365 },
                default: json!(14),
            },
            SettingSpec {
                name: "single_thread_days",
                description: "`single_threaded` fires with at most one external person \
                    engaged in this many days.",
                kind: SettingKind::Integer { min: 1, max: 365 },
                default: json!(30),
            },
            SettingSpec {
                name: AMOUNT_CUT_PERCENT_SETTING,
                description: "`amount_cut` fires when the amount is at least this many \
                    percent below its highest value.",
                kind: SettingKind::Integer { min: 1, max: 100 },
                default: json!(DEFAULT_AMOUNT_CUT_PERCENT),
            },
            SettingSpec {
                name: "senior_titles",
                description: "Words or phrases of a title (whole words, any case) that make \
                    a contact senior.",
                kind: SettingKind::StringList { choices: vec![] },
                default: json!(SENIOR),
            },
            SettingSpec {
                name: "band_medium",
                description: "Lowest score of the medium band.",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(RiskBands::default().medium),
            },
            SettingSpec {
                name: "band_high",
                description: "Lowest score of the high band.",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(RiskBands::default().high),
            },
            SettingSpec {
                name: "band_critical",
                description: "Lowest score of the critical band.",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(RiskBands::default().critical),
            },
            SettingSpec {
                name: "deals_listed",
                description: "Deals listed (the riskiest first); the others are counted in \
                    the summary.",
                kind: SettingKind::Integer {
                    min: 0,
                    max: 1_000_000,
                },
                default: json!(100),
            },
        ]);
        settings.extend(engagement_settings());
        SkillInfo {
            id: ID,
            display_name: "Deal risk",
            description: "Which open deals are in trouble: a points score from signals \
                (no buyer conversation, single-threaded, pushed close dates, slow stage, \
                amount cut, past close date, no senior contact), banded low to critical, \
                with every signal's evidence.",
            default_schedule: "0 7 * * 1-5",
            settings,
            inputs: SkillInputs {
                contacts: true,
                conversations: true,
            },
        }
    }

    fn run(&self, ctx: &SkillContext) -> Result<SkillReport> {
        let s = &ctx.settings;
        let at = evaluation_time(ctx);
        let model = RiskSettings::from_settings(&s.to_value());
        let weights: BTreeMap<&str, u8> = model
            .weights
            .iter()
            .map(|(code, points)| (code.as_str(), points))
            .collect();
        let conv_days = s.i64("no_conversation_days", 14);
        let thread_days = s.i64("single_thread_days", 30);
        let senior = s.strings("senior_titles");
        let defaults = RiskBands::default();
        let bands_at = RiskBands {
            medium: s.i64("band_medium", defaults.medium),
            high: s.i64("band_high", defaults.high),
            critical: s.i64("band_critical", defaults.critical),
        };
        let listed = usize::try_from(s.i64("deals_listed", 100)).unwrap_or(0);
        let engagement = Engagement::build(
            ctx,
            &s.strings("internal_domains"),
            s.i64("match_window_days", 14),
        );
        let stages = ctx.stages.all();

        // The won deals' baseline at T1, and the open deals.
        let mut acc = BaselineAccumulator::new();
        let mut open: Vec<(usize, DealState, Deal, Vec<DealChange>)> = Vec::new();
        for (i, deal) in ctx.deals.iter().enumerate() {
            let Some(state) = deal.state_at(at, &ctx.stages) else {
                continue;
            };
            match state.stage_category {
                StageCategory::Won => {
                    let (record, history) = as_record(deal, &state, at);
                    acc.add(&record, &history, stages, at);
                }
                StageCategory::Open => {
                    let (record, history) = as_record(deal, &state, at);
                    open.push((i, state, record, history));
                }
                StageCategory::Lost => {}
            }
        }
        let baseline: WorkspaceBaseline = acc.finish();

        let mut scored: Vec<(u8, Decimal, usize, Value)> = Vec::new();
        let mut bands: BTreeMap<&str, (u64, Decimal)> = BTreeMap::new();
        let mut fired_counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut risk_updates: Vec<DealRiskUpdate> = Vec::with_capacity(open.len());
        for (i, state, record, history) in &open {
            let deal = &ctx.deals[*i];
            let computed = measure(record, history, stages, Some(&baseline), at);
            let mut fired: Vec<FiredSignal> = Vec::new();

            // Conversations with the buyer.
            let last = engagement
                .touches
                .get(i)
                .into_iter()
                .flatten()
                .rfind(|t| t.at <= at);
            if last.is_none_or(|t| t.at < at - Duration::days(conv_days)) {
                let ev = match last {
                    Some(t) => format!(
                        "no conversation with the buyer in {conv_days} days (last {}: {:?} with {})",
                        day(t.at),
                        ctx.conversations[t.conversation]
                            .fields
                            .title
                            .clone()
                            .unwrap_or_default(),
                        t.name
                    ),
                    None => format!("no conversation with the buyer in {conv_days} days (never)"),
                };
                fired.push(FiredSignal::new(RiskCode::NoBuyerConversation, ev));
            }
            let engaged = engagement.engaged(*i, at - Duration::days(thread_days), at);
            if engaged.len() <= 1 {
                let ev = match engaged.values().next() {
                    Some(t) => format!(
                        "single-threaded: only {} engaged in the last {thread_days} days",
                        t.name
                    ),
                    None => format!(
                        "single-threaded: no external contact engaged in the last {thread_days} days"
                    ),
                };
                fired.push(FiredSignal::new(RiskCode::SingleThreaded, ev));
            }

            // The deal-only signals: pushes, time in stage, amount cut, close
            // date passed.
            fired.extend(risk::deal_signals(
                record,
                history,
                &computed,
                Some(&baseline),
                at,
                &model,
            ));

            // A senior contact among those with a role or ever engaged.
            let mut people: BTreeSet<usize> = engagement
                .roles
                .get(i)
                .into_iter()
                .flatten()
                .map(|(c, _)| *c)
                .collect();
            people.extend(
                engagement
                    .touches
                    .get(i)
                    .into_iter()
                    .flatten()
                    .filter(|t| t.at <= at)
                    .filter_map(|t| t.contact),
            );
            let has_senior = people.iter().any(|&c| {
                ctx.contacts[c]
                    .fields
                    .title
                    .as_deref()
                    .is_some_and(|t| is_senior(t, &senior))
            });
            if !has_senior {
                let titles: Vec<String> = people
                    .iter()
                    .map(|&c| {
                        let c = &ctx.contacts[c];
                        format!(
                            "{} ({})",
                            contact_name(c),
                            c.fields.title.as_deref().unwrap_or("no title")
                        )
                    })
                    .collect();
                let ev = if titles.is_empty() {
                    "no contact with a senior title: no contacts".to_string()
                } else {
                    format!("no contact with a senior title: {}", titles.join(", "))
                };
                fired.push(FiredSignal::new(RiskCode::NoSeniorContact, ev));
            }

            let risk = risk::score(fired, &model.weights);
            let mut signals: Vec<Value> = Vec::new();
            for r in &risk.reasons {
                *fired_counts.entry(r.code.as_str()).or_default() += 1;
                signals.push(
                    json!({"signal": r.code.as_str(), "points": r.points, "evidence": r.detail}),
                );
            }
            let score = risk.score;
            let b = bands_at.band(i64::from(score));
            let amount = state.amount_or_zero();
            let e = bands.entry(b).or_default();
            e.0 += 1;
            e.1 += amount;
            let row = json!({
                "deal_id": deal.id,
                "source_id": deal.source_id,
                "name": deal.name,
                "owner_source_id": state.owner_source_id,
                "stage": state.stage,
                "amount": money(amount),
                "close_date": state.close_date,
                "score": score,
                "band": b,
                "signals": signals,
                "days_in_stage": (computed.days_in_current_stage * 10.0).round() / 10.0,
                "stage_velocity": computed.stage_velocity.map(|v| (v * 100.0).round() / 100.0),
            });
            scored.push((score, amount, *i, row));
            risk_updates.push(DealRiskUpdate {
                deal_id: deal.id,
                score,
                reasons: risk.reasons,
            });
        }
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        let count = scored.len() as u64;
        let rows: Vec<Value> = scored.into_iter().take(listed).map(|r| r.3).collect();
        let by_band: BTreeMap<&str, Value> = RiskBands::NAMES
            .iter()
            .map(|&b| {
                let (n, a) = bands.get(b).copied().unwrap_or_default();
                (b, json!({"count": n, "amount": money(a)}))
            })
            .collect();
        let summary = json!({
            "evaluated_at": at,
            "open_deals": count,
            "by_band": by_band,
            "signals_fired": fired_counts,
            "weights": weights,
            "bands": {"medium": bands_at.medium, "high": bands_at.high, "critical": bands_at.critical},
            "baseline": {
                "won_deals": baseline.won_deals,
                "stages_with_median": baseline.stages.len(),
                "min_samples": MIN_BASELINE_SAMPLES,
            },
            "listed": rows.len(),
            "more": count - rows.len() as u64,
        });
        Ok(SkillReport {
            skill: ID.into(),
            period: ctx.period.clone(),
            as_of: ctx.as_of,
            summary,
            rows,
            sections: BTreeMap::new(),
            risk_updates,
        })
    }
}
