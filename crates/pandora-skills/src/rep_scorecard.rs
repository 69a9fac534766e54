//! **Rep scorecard**: each rep's period, component by component, against
//! their team.
//!
//! Reps are the active users without reports in the manager tree; a rep's
//! team is their `team` field (else `(no team)`). Over the period `[T0, T1]`
//! (see [`crate::period::instants`]), a deal counts for the rep who owns it
//! at `T1`. A deal is **won** (**lost**) in the period when it is won (lost)
//! at `T1` and was not at `T0`; its close time is its last stage change in
//! `(T0, T1]`, else its creation. Components (raw figure → what is scored):
//!
//! | component | raw figure | better |
//! |---|---|---|
//! | `quota_attainment` | won amount ÷ quota, capped at 1.5 (none without quota) | higher |
//! | `win_rate_count` | won ÷ (won + lost) deals | higher |
//! | `win_rate_amount` | won ÷ (won + lost) amount | higher |
//! | `pipeline_created` | amount (at creation) of deals created in `[T0, T1]` ÷ target, target = `pipeline_multiple` (3) × remaining quota (quota − won, none when ≤ 0 or without quota) | higher |
//! | `sales_cycle` | mean days from creation to close time of the won deals | lower |
//! | `deal_size` | won amount ÷ won deals | higher |
//! | `multi_threaded` | share of the rep's open deals at `T1` with at least two external people engaged in the last `lookback_days` (30), matched as in [`crate::engagement`] | higher |
//! | `conversations` | conversations started in `[T0, T1]` with the rep's email among the participants | higher |
//!
//! Each component with a raw figure is normalized 0–100 against the team's
//! median `m` of that component (over the team's reps that have one):
//! higher-is-better scores `50 × v ÷ m`, lower-is-better `50 × m ÷ v`, both
//! capped at 100; with `m` = 0, a `v` of 0 scores 50 and any other 100 (0
//! for a lower-is-better `v` > 0); a lower-is-better `v` of 0 scores 100.
//! The **composite** is the weighted mean of the scored components (weights
//! `weight_<component>`, renormalized over the components the rep has),
//! rounded to one decimal; ranks within the team and the company by
//! composite, highest first (ties by user id). A rep with no scored
//! component has no composite and no rank.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use pandora_core::model::{DealField, StageCategory};
use pandora_core::skill::{
    money, DealEvidence, ExplainedBuilder, SettingKind, SettingSpec, Skill, SkillContext,
    SkillInfo, SkillInputs, SkillReport,
};
use pandora_core::Result;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::engagement::Engagement;
use crate::period::{day, instants};
use crate::single_thread_alert::engagement_settings;

/// The skill's id.
pub const ID: &str = "rep_scorecard";

/// The rep scorecard skill (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct RepScorecard;

/// The components: name, default weight, whether higher is better.
pub const COMPONENTS: [(&str, i64, bool); 8] = [
    ("quota_attainment", 30, true),
    ("win_rate_count", 10, true),
    ("win_rate_amount", 10, true),
    ("pipeline_created", 15, true),
    ("sales_cycle", 10, false),
    ("deal_size", 10, true),
    ("multi_threaded", 10, true),
    ("conversations", 5, true),
];

fn weight_setting(c: &str) -> &'static str {
    match c {
        "quota_attainment" => "weight_quota_attainment",
        "win_rate_count" => "weight_win_rate_count",
        "win_rate_amount" => "weight_win_rate_amount",
        "pipeline_created" => "weight_pipeline_created",
        "sales_cycle" => "weight_sales_cycle",
        "deal_size" => "weight_deal_size",
        "multi_threaded" => "weight_multi_threaded",
        _ => "weight_conversations",
    }
}

/// A rep's tallies.
struct Tally {
    won: ExplainedBuilder,
    lost: ExplainedBuilder,
    created: ExplainedBuilder,
    cycle_days: Vec<f64>,
    open: u64,
    multi: u64,
    conversations: u64,
}

fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The 0–100 score of `v` against the median `m`.
fn normalize(v: f64, m: f64, higher: bool) -> f64 {
    let s = if higher {
        if m == 0.0 {
            if v == 0.0 {
                50.0
            } else {
                100.0
            }
        } else {
            50.0 * v / m
        }
    } else if v == 0.0 {
        100.0
    } else if m == 0.0 {
        0.0
    } else {
        50.0 * m / v
    };
    s.clamp(0.0, 100.0)
}

/// The time a deal closed in `(t0, t1]`: its last stage change then, else its creation.
fn close_time(
    deal: &pandora_core::skill::SkillDeal,
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
) -> DateTime<Utc> {
    deal.changes_in(DealField::Stage, t0, t1)
        .last()
        .map(|c| c.at)
        .unwrap_or(deal.created_at)
}

impl Skill for RepScorecard {
    fn info(&self) -> SkillInfo {
        let mut settings: Vec<SettingSpec> = COMPONENTS
            .iter()
            .map(|&(c, w, _)| SettingSpec {
                name: weight_setting(c),
                description: "Weight of the component in the composite (0 leaves it out).",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(w),
            })
            .collect();
        settings.extend([
            SettingSpec {
                name: "pipeline_multiple",
                description: "Pipeline-created target as a multiple of the remaining quota.",
                kind: SettingKind::Number {
                    min: 0.0,
                    max: 100.0,
                },
                default: json!(3),
            },
            SettingSpec {
                name: "attainment_cap",
                description: "Quota attainment is capped at this ratio.",
                kind: SettingKind::Number {
                    min: 0.0,
                    max: 100.0,
                },
                default: json!(1.5),
            },
            SettingSpec {
                name: "lookback_days",
                description: "An open deal is multi-threaded with two or more external \
                    people engaged in this many days before T1.",
                kind: SettingKind::Integer { min: 1, max: 365 },
                default: json!(30),
            },
            SettingSpec {
                name: "deals_listed",
                description: "Deals listed behind each of won, lost and created (the \
                    largest first).",
                kind: SettingKind::Integer {
                    min: 0,
                    max: 10_000,
                },
                default: json!(10),
            },
        ]);
        settings.extend(engagement_settings());
        SkillInfo {
            id: ID,
            display_name: "Rep scorecard",
            description: "Each rep's quota attainment, win rates, pipeline created, sales \
                cycle, deal size, multi-threading and conversations, scored 0-100 against \
                the team's median, with a weighted composite and ranks in team and company.",
            default_schedule: "0 7 * * 1",
            settings,
            inputs: SkillInputs {
                contacts: true,
                conversations: true,
            },
        }
    }

    fn run(&self, ctx: &SkillContext) -> Result<SkillReport> {
        let s = &ctx.settings;
        let (t0, t1) = instants(ctx)?;
        let listed = usize::try_from(s.i64("deals_listed", 10)).unwrap_or(0);
        let multiple = Decimal::try_from(s.f64("pipeline_multiple", 3.0)).unwrap_or_default();
        let cap = s.f64("attainment_cap", 1.5);
        let lookback = s.i64("lookback_days", 30);
        let weights: Vec<f64> = COMPONENTS
            .iter()
            .map(|&(c, w, _)| s.i64(weight_setting(c), w) as f64)
            .collect();
        let org = ctx.org();
        let reps: Vec<usize> = (0..ctx.users.len())
            .filter(|&i| org.reports[i].is_empty() && ctx.users[i].fields.active)
            .collect();
        let rep_of: BTreeMap<(&str, &str), usize> = reps
            .iter()
            .map(|&i| {
                let u = &ctx.users[i];
                ((u.source.as_str(), u.fields.source_id.as_str()), i)
            })
            .collect();
        let engagement = Engagement::build(
            ctx,
            &s.strings("internal_domains"),
            s.i64("match_window_days", 14),
        );
        let mut tallies: BTreeMap<usize, Tally> = reps
            .iter()
            .map(|&i| {
                (
                    i,
                    Tally {
                        won: ExplainedBuilder::new(listed),
                        lost: ExplainedBuilder::new(listed),
                        created: ExplainedBuilder::new(listed),
                        cycle_days: Vec::new(),
                        open: 0,
                        multi: 0,
                        conversations: 0,
                    },
                )
            })
            .collect();
        let mut why: Vec<(usize, String)> = Vec::new();
        for (di, deal) in ctx.deals.iter().enumerate() {
            let Some(end) = deal.state_at(t1, &ctx.stages) else {
                continue;
            };
            let Some(rep) = end
                .owner_source_id
                .as_deref()
                .and_then(|o| rep_of.get(&(deal.source.as_str(), o)))
            else {
                continue;
            };
            let Some(t) = tallies.get_mut(rep) else {
                continue;
            };
            let start = deal.state_at(t0, &ctx.stages);
            let amount = end.amount_or_zero();
            let was = start.as_ref().map(|s| s.stage_category);
            match end.stage_category {
                StageCategory::Won if was != Some(StageCategory::Won) => {
                    let closed = close_time(deal, t0, t1);
                    let days = (closed - deal.created_at).num_milliseconds() as f64 / 86_400_000.0;
                    t.cycle_days.push(days.max(0.0));
                    t.won.push(amount, deal.id, why.len());
                    why.push((
                        di,
                        format!("won {} ({:.1} days from creation)", day(closed), days),
                    ));
                }
                StageCategory::Lost if was != Some(StageCategory::Lost) => {
                    t.lost.push(amount, deal.id, why.len());
                    why.push((di, format!("lost {}", day(close_time(deal, t0, t1)))));
                }
                StageCategory::Open => {
                    t.open += 1;
                    if engagement
                        .engaged(di, t1 - Duration::days(lookback), t1)
                        .len()
                        >= 2
                    {
                        t.multi += 1;
                    }
                }
                _ => {}
            }
            if t0 <= deal.created_at && deal.created_at <= t1 {
                let at_creation = deal
                    .state_at(deal.created_at, &ctx.stages)
                    .map(|s| s.amount_or_zero())
                    .unwrap_or_default();
                t.created.push(at_creation, deal.id, why.len());
                why.push((di, format!("created {}", day(deal.created_at))));
            }
        }
        let email_of: BTreeMap<String, usize> = reps
            .iter()
            .filter_map(|&i| {
                ctx.users[i]
                    .fields
                    .email
                    .as_deref()
                    .map(|e| (e.trim().to_ascii_lowercase(), i))
            })
            .collect();
        for c in &ctx.conversations {
            let Some(at) = c.fields.started_at else {
                continue;
            };
            if c.deleted_at.is_some() || at < t0 || at > t1 {
                continue;
            }
            let held: BTreeSet<usize> = c
                .fields
                .participants
                .iter()
                .filter_map(|p| p.email.as_deref())
                .filter_map(|e| email_of.get(&e.trim().to_ascii_lowercase()).copied())
                .collect();
            for r in held {
                if let Some(t) = tallies.get_mut(&r) {
                    t.conversations += 1;
                }
            }
        }

        // Raw figures.
        let team_of = |i: usize| {
            ctx.users[i]
                .fields
                .team
                .clone()
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| "(no team)".into())
        };
        let mut raw: BTreeMap<usize, [Option<f64>; 8]> = BTreeMap::new();
        let mut detail: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
        for (&i, t) in &tallies {
            let won = t.won.total();
            let lost = t.lost.total();
            let quota = ctx.quota_of(&ctx.users[i], &ctx.period.label);
            let attainment = quota
                .filter(|(q, _)| *q > Decimal::ZERO)
                .map(|(q, _)| (f(won) / f(q)).min(cap));
            let decided = t.won.count() + t.lost.count();
            let win_count = (decided > 0).then(|| t.won.count() as f64 / decided as f64);
            let win_amount = (won + lost > Decimal::ZERO).then(|| f(won) / f(won + lost));
            let remaining = quota.map(|(q, _)| q - won);
            let target = remaining
                .filter(|r| *r > Decimal::ZERO)
                .map(|r| r * multiple)
                .filter(|t| *t > Decimal::ZERO);
            let pipeline = target.map(|tg| f(t.created.total()) / f(tg));
            let cycle = (!t.cycle_days.is_empty())
                .then(|| t.cycle_days.iter().sum::<f64>() / t.cycle_days.len() as f64);
            let size = (t.won.count() > 0).then(|| f(won) / t.won.count() as f64);
            let multi = (t.open > 0).then(|| t.multi as f64 / t.open as f64);
            let conv = Some(t.conversations as f64);
            raw.insert(
                i,
                [
                    attainment, win_count, win_amount, pipeline, cycle, size, multi, conv,
                ],
            );
            let describe = |k: usize| {
                let (di, w) = &why[k];
                let d = &ctx.deals[*di];
                let amount = d
                    .state_at(t1, &ctx.stages)
                    .map(|s| s.amount_or_zero())
                    .unwrap_or_default();
                DealEvidence {
                    deal_id: d.id,
                    source_id: d.source_id.clone(),
                    name: d.name.clone(),
                    amount: money(amount),
                    why: w.clone(),
                }
            };
            let mut m = Map::new();
            m.insert(
                "quota_attainment".into(),
                json!({
                    "value": attainment.map(r4),
                    "won": t.won.finish(describe),
                    "quota": quota.map(|(q, _)| money(q)),
                    "cap": cap,
                }),
            );
            m.insert(
                "win_rate_count".into(),
                json!({"value": win_count.map(r4), "won": t.won.count(), "lost": t.lost.count()}),
            );
            m.insert(
                "win_rate_amount".into(),
                json!({"value": win_amount.map(r4), "won": money(won), "lost": t.lost.finish(describe)}),
            );
            m.insert(
                "pipeline_created".into(),
                json!({
                    "value": pipeline.map(r4),
                    "created": t.created.finish(describe),
                    "remaining_quota": remaining.map(money),
                    "target": target.map(money),
                }),
            );
            m.insert(
                "sales_cycle".into(),
                json!({"value": cycle.map(r1), "won_deals": t.cycle_days.len()}),
            );
            m.insert(
                "deal_size".into(),
                json!({"value": size.map(r4), "won": money(won), "won_deals": t.won.count()}),
            );
            m.insert(
                "multi_threaded".into(),
                json!({"value": multi.map(r4), "open_deals": t.open, "multi_threaded": t.multi}),
            );
            m.insert("conversations".into(), json!({"value": t.conversations}));
            detail.insert(i, m);
        }

        // Team medians and scores.
        let mut teams: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in &reps {
            teams.entry(team_of(i)).or_default().push(i);
        }
        let mut composite: BTreeMap<usize, Option<f64>> = BTreeMap::new();
        let mut medians: BTreeMap<String, Value> = BTreeMap::new();
        let mut scores: BTreeMap<(usize, usize), f64> = BTreeMap::new();
        for (team, members) in &teams {
            let mut team_medians = Map::new();
            for (k, &(name, _, higher)) in COMPONENTS.iter().enumerate() {
                let m = median(members.iter().filter_map(|i| raw[i][k]).collect());
                team_medians.insert(name.into(), json!(m.map(r4)));
                for &i in members {
                    let score = match (raw[&i][k], m) {
                        (Some(v), Some(m)) => Some(normalize(v, m, higher)),
                        _ => None,
                    };
                    if let Some(sc) = score {
                        scores.insert((i, k), sc);
                    }
                    if let Some(Value::Object(c)) = detail.get_mut(&i).and_then(|d| d.get_mut(name))
                    {
                        c.insert("team_median".into(), json!(m.map(r4)));
                        c.insert("score".into(), json!(score.map(r1)));
                        c.insert("weight".into(), json!(weights[k]));
                    }
                }
            }
            medians.insert(team.clone(), Value::Object(team_medians));
            for &i in members {
                let (mut sum, mut w) = (0.0, 0.0);
                for (k, weight) in weights.iter().enumerate() {
                    if let Some(&sc) = scores.get(&(i, k)) {
                        sum += sc * weight;
                        w += weight;
                    }
                }
                composite.insert(i, (w > 0.0).then(|| r1(sum / w)));
            }
        }
        let order = |ids: &[usize]| -> Vec<usize> {
            let mut v: Vec<usize> = ids
                .iter()
                .copied()
                .filter(|i| composite[i].is_some())
                .collect();
            v.sort_by(|a, b| {
                composite[b]
                    .unwrap_or(0.0)
                    .total_cmp(&composite[a].unwrap_or(0.0))
                    .then_with(|| ctx.users[*a].id.cmp(&ctx.users[*b].id))
            });
            v
        };
        let company = order(&reps);
        let company_rank: BTreeMap<usize, usize> = company
            .iter()
            .enumerate()
            .map(|(r, &i)| (i, r + 1))
            .collect();
        let mut team_rank: BTreeMap<usize, usize> = BTreeMap::new();
        for members in teams.values() {
            for (r, i) in order(members).into_iter().enumerate() {
                team_rank.insert(i, r + 1);
            }
        }
        let mut ordered = company.clone();
        ordered.extend(
            reps.iter()
                .copied()
                .filter(|i| composite[i].is_none())
                .collect::<Vec<_>>(),
        );
        let rows: Vec<Value> = ordered
            .into_iter()
            .map(|i| {
                let u = &ctx.users[i];
                json!({
                    "user_id": u.id,
                    "source_id": u.fields.source_id,
                    "name": u.fields.name,
                    "team": team_of(i),
                    "composite": composite[&i],
                    "rank_in_team": team_rank.get(&i),
                    "rank_in_company": company_rank.get(&i),
                    "components": Value::Object(detail.remove(&i).unwrap_or_default()),
                })
            })
            .collect();
        let summary = json!({
            "t0": t0,
            "t1": t1,
            "reps": reps.len(),
            "ranked": company.len(),
            "weights": COMPONENTS.iter().zip(&weights).map(|(c, w)| (c.0.to_string(), json!(w))).collect::<Map<String, Value>>(),
            "team_medians": medians,
        });
        Ok(SkillReport {
            skill: ID.into(),
            period: ctx.period.clone(),
            as_of: ctx.as_of,
            summary,
            rows,
            sections: BTreeMap::new(),
            risk_updates: Vec::new(),
        })
    }
}
