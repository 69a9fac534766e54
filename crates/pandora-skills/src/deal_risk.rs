//! **Deal risk**: a points model over open deals, every fired signal named
//! with its evidence.
//!
//! Deals are scored as they stand at the evaluation time `T1` (the period's
//! end, or the as-of time when earlier): every deal open then. The deal's
//! own measurements come from [`pandora_core::computed`] (the module that
//! computes the risk fields stored on each deal), run on the deal rebuilt at
//! `T1`: days in the current stage, the won deals' median for that stage
//! (a [`WorkspaceBaseline`] of the deals won at `T1`, medians needing at
//! least [`MIN_BASELINE_SAMPLES`] samples) and the number of close-date
//! pushes. The signals that need contacts and conversations are matched by
//! [`crate::engagement`]. Signals and default points:
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
//! The score is the sum of the fired signals' points, capped at 100. Bands:
//! **low** below `band_medium` (25), **medium** below `band_high` (50),
//! **high** below `band_critical` (75), **critical** from it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use pandora_core::computed::{
    compute, BaselineAccumulator, WorkspaceBaseline, MIN_BASELINE_SAMPLES,
};
use pandora_core::model::{ChangeOrigin, Deal, DealChange, DealField, NewDeal, StageCategory};
use pandora_core::skill::{
    money, DealState, SettingKind, SettingSpec, Skill, SkillContext, SkillDeal, SkillInfo,
    SkillInputs, SkillReport,
};
use pandora_core::Result;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::engagement::{contact_name, Engagement};
use crate::period::{day, evaluation_time};
use crate::single_thread_alert::engagement_settings;

/// The skill's id.
pub const ID: &str = "deal_risk";

/// The deal risk skill (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct DealRisk;

/// The signals, their weight settings and default points.
pub const SIGNALS: [(&str, i64); 9] = [
    ("no_buyer_conversation", 20),
    ("single_threaded", 15),
    ("close_date_pushed_once", 10),
    ("close_date_pushed_twice", 20),
    ("stage_time_over_1_5x", 10),
    ("stage_time_over_2x", 20),
    ("amount_cut", 15),
    ("close_date_passed", 20),
    ("no_senior_contact", 10),
];

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

fn weight_setting(signal: &str) -> &'static str {
    match signal {
        "no_buyer_conversation" => "weight_no_buyer_conversation",
        "single_threaded" => "weight_single_threaded",
        "close_date_pushed_once" => "weight_close_date_pushed_once",
        "close_date_pushed_twice" => "weight_close_date_pushed_twice",
        "stage_time_over_1_5x" => "weight_stage_time_over_1_5x",
        "stage_time_over_2x" => "weight_stage_time_over_2x",
        "amount_cut" => "weight_amount_cut",
        "close_date_passed" => "weight_close_date_passed",
        _ => "weight_no_senior_contact",
    }
}

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

/// The close dates a deal went through up to `at`: its first known value,
/// then each change's new value.
fn close_date_chain(deal: &SkillDeal, at: DateTime<Utc>) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for c in deal
        .changes
        .iter()
        .filter(|c| c.field == DealField::CloseDate && c.at <= at)
    {
        if chain.is_empty() {
            if let Some(old) = &c.old {
                chain.push(old.clone());
            }
        }
        if let Some(new) = &c.new {
            if chain.last() != Some(new) {
                chain.push(new.clone());
            }
        }
    }
    chain
}

/// The highest amount in a deal's history up to `at` (any old or new value).
fn highest_amount(deal: &SkillDeal, at: DateTime<Utc>) -> Option<Decimal> {
    deal.changes
        .iter()
        .filter(|c| c.field == DealField::Amount && c.at <= at)
        .flat_map(|c| [c.old.as_deref(), c.new.as_deref()])
        .flatten()
        .filter_map(|v| v.parse::<Decimal>().ok())
        .max()
}

/// The band of a score.
fn band(score: i64, medium: i64, high: i64, critical: i64) -> &'static str {
    if score >= critical {
        "critical"
    } else if score >= high {
        "high"
    } else if score >= medium {
        "medium"
    } else {
        "low"
    }
}

const BANDS: [&str; 4] = ["low", "medium", "high", "critical"];

impl Skill for DealRisk {
    fn info(&self) -> SkillInfo {
        let mut settings: Vec<SettingSpec> = SIGNALS
            .iter()
            .map(|&(signal, points)| SettingSpec {
                name: weight_setting(signal),
                description: "Points the signal adds to the score when it fires (0 turns it off).",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(points),
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
                name: "amount_cut_percent",
                description: "`amount_cut` fires when the amount is at least this many \
                    percent below its highest value.",
                kind: SettingKind::Integer { min: 1, max: 100 },
                default: json!(20),
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
                default: json!(25),
            },
            SettingSpec {
                name: "band_high",
                description: "Lowest score of the high band.",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(50),
            },
            SettingSpec {
                name: "band_critical",
                description: "Lowest score of the critical band.",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(75),
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
        let weights: BTreeMap<&str, i64> = SIGNALS
            .iter()
            .map(|&(sig, d)| (sig, s.i64(weight_setting(sig), d)))
            .collect();
        let conv_days = s.i64("no_conversation_days", 14);
        let thread_days = s.i64("single_thread_days", 30);
        let cut_percent = Decimal::from(s.i64("amount_cut_percent", 20));
        let senior = s.strings("senior_titles");
        let (b_med, b_high, b_crit) = (
            s.i64("band_medium", 25),
            s.i64("band_high", 50),
            s.i64("band_critical", 75),
        );
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

        let mut scored: Vec<(i64, Decimal, usize, Value)> = Vec::new();
        let mut bands: BTreeMap<&str, (u64, Decimal)> = BTreeMap::new();
        let mut fired_counts: BTreeMap<&str, u64> = BTreeMap::new();
        for (i, state, record, history) in &open {
            let deal = &ctx.deals[*i];
            let computed = compute(record, history, stages, Some(&baseline), at);
            let mut fired: Vec<(&str, String)> = Vec::new();

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
                fired.push(("no_buyer_conversation", ev));
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
                fired.push(("single_threaded", ev));
            }

            // Close date pushes (counted by the computed fields).
            let pushes = computed.close_date_pushes;
            if pushes > 0 {
                let ev = format!(
                    "close date pushed {pushes}×: {}",
                    close_date_chain(deal, at).join(" → ")
                );
                fired.push((
                    if pushes >= 2 {
                        "close_date_pushed_twice"
                    } else {
                        "close_date_pushed_once"
                    },
                    ev,
                ));
            }

            // Time in stage against the won deals' median.
            if let (Some(v), Some(stage)) = (computed.stage_velocity, state.stage.as_deref()) {
                if v > 1.5 {
                    let median = baseline
                        .stage(deal.pipeline.as_deref(), stage)
                        .map(|b| (b.median_days, b.samples));
                    let ev = match median {
                        Some((m, n)) => format!(
                            "{:.1} days in stage {stage}: {v:.2}× the won deals' median of {m:.1} days ({n} samples)",
                            computed.days_in_current_stage
                        ),
                        None => format!("{v:.2}× the won deals' median in stage {stage}"),
                    };
                    fired.push((
                        if v > 2.0 {
                            "stage_time_over_2x"
                        } else {
                            "stage_time_over_1_5x"
                        },
                        ev,
                    ));
                }
            }

            // Amount cut from its highest value.
            if let (Some(now), Some(high)) = (state.amount, highest_amount(deal, at)) {
                if high > Decimal::ZERO
                    && now * Decimal::from(100) <= high * (Decimal::from(100) - cut_percent)
                {
                    let pct = ((high - now) * Decimal::from(100) / high).round_dp(1);
                    fired.push((
                        "amount_cut",
                        format!("amount cut {pct}%: {} → {}", money(high), money(now)),
                    ));
                }
            }

            // Close date in the past.
            if let Some(cd) = state.close_date {
                let today = at.date_naive();
                if cd < today {
                    fired.push((
                        "close_date_passed",
                        match (today - cd).num_days() {
                            1 => format!("close date {cd} passed 1 day ago"),
                            n => format!("close date {cd} passed {n} days ago"),
                        },
                    ));
                }
            }

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
                fired.push(("no_senior_contact", ev));
            }

            let mut signals: Vec<Value> = Vec::new();
            let mut total = 0i64;
            for (sig, ev) in fired {
                let points = weights.get(sig).copied().unwrap_or(0);
                if points == 0 {
                    continue;
                }
                total += points;
                *fired_counts.entry(sig).or_default() += 1;
                signals.push(json!({"signal": sig, "points": points, "evidence": ev}));
            }
            let score = total.min(100);
            let b = band(score, b_med, b_high, b_crit);
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
        }
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        let count = scored.len() as u64;
        let rows: Vec<Value> = scored.into_iter().take(listed).map(|r| r.3).collect();
        let by_band: BTreeMap<&str, Value> = BANDS
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
            "bands": {"medium": b_med, "high": b_high, "critical": b_crit},
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
        })
    }
}
