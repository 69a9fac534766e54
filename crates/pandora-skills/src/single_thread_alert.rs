//! **Single-thread alert**: open deals that hang on one person (or none) on
//! the buyer's side.
//!
//! A deal is considered when, at the evaluation time (the period's end, or
//! the as-of time when earlier), it is open, its amount is at least
//! `min_amount`, and its stage is one of `stages` (any open stage when the
//! setting is empty). It raises an alert when at most `max_engaged` (1)
//! distinct external people were engaged on it in the last `lookback_days`
//! (30) days, inclusive of both ends: attended a conversation matched to
//! the deal (see [`crate::engagement`]: vendor link, contact role, the
//! contact's account, or the account of the email domain, within
//! ±`match_window_days` (14) of the call; internal participants recognised
//! by the workspace's own email domains).
//!
//! Each alert names the sole engaged person (or none), their last touch
//! (conversation, day, how it was matched), the contacts with a role on the
//! deal, and the roles of `required_roles` no contact on the deal holds
//! (e.g. no economic buyer). Alerts are listed largest amount first.

use std::collections::BTreeMap;

use chrono::Duration;
use pandora_core::model::StageCategory;
use pandora_core::skill::{
    money, SettingKind, SettingSpec, Skill, SkillContext, SkillInfo, SkillInputs, SkillReport,
};
use pandora_core::Result;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::engagement::{contact_name, role_key, Engagement, Touch};
use crate::period::{day, evaluation_time};

/// The skill's id.
pub const ID: &str = "single_thread_alert";

/// The single-thread alert skill (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleThreadAlert;

/// The settings shared with deal risk's single-threading signal.
pub(crate) fn engagement_settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec {
            name: "internal_domains",
            description: "The workspace's own email domains: conversation participants \
                with these domains are internal. Empty: the domains of the users' emails.",
            kind: SettingKind::StringList { choices: vec![] },
            default: json!([]),
        },
        SettingSpec {
            name: "match_window_days",
            description: "A participant matched by contact role, account or email domain \
                engages deals open within this many days either side of the call.",
            kind: SettingKind::Integer { min: 0, max: 365 },
            default: json!(14),
        },
    ]
}

/// A touch as reports show it.
pub(crate) fn touch_json(ctx: &SkillContext, t: &Touch) -> Value {
    let conv = &ctx.conversations[t.conversation];
    json!({
        "at": t.at,
        "day": day(t.at),
        "conversation_id": conv.id,
        "conversation_source_id": conv.fields.source_id,
        "title": conv.fields.title,
        "matched_by": t.path.as_str(),
    })
}

/// A person as reports show them.
pub(crate) fn person_json(ctx: &SkillContext, t: &Touch) -> Value {
    let contact = t.contact.map(|c| &ctx.contacts[c]);
    json!({
        "name": t.name,
        "email": t.email,
        "contact_id": contact.map(|c| c.id),
        "contact_source_id": contact.map(|c| c.fields.source_id.clone()),
        "title": contact.and_then(|c| c.fields.title.clone()),
    })
}

impl Skill for SingleThreadAlert {
    fn info(&self) -> SkillInfo {
        let mut settings = vec![
            SettingSpec {
                name: "min_amount",
                description: "Smallest amount of a deal to check (a deal without an amount \
                    counts 0).",
                kind: SettingKind::Number {
                    min: 0.0,
                    max: 1e15,
                },
                default: json!(0),
            },
            SettingSpec {
                name: "stages",
                description: "Stage ids of the open deals to check; empty: every open stage.",
                kind: SettingKind::StringList { choices: vec![] },
                default: json!([]),
            },
            SettingSpec {
                name: "lookback_days",
                description: "Engagement counts when it happened within this many days \
                    before the evaluation time.",
                kind: SettingKind::Integer { min: 1, max: 365 },
                default: json!(30),
            },
            SettingSpec {
                name: "max_engaged",
                description: "A deal with at most this many external people engaged is \
                    single-threaded.",
                kind: SettingKind::Integer { min: 0, max: 100 },
                default: json!(1),
            },
            SettingSpec {
                name: "required_roles",
                description: "Contact roles a deal should have; the alert lists those no \
                    contact on the deal holds.",
                kind: SettingKind::StringList { choices: vec![] },
                default: json!(["economic_buyer", "decision_maker", "champion"]),
            },
            SettingSpec {
                name: "deals_listed",
                description: "Alerts listed (the largest deals first); the others are \
                    counted in the summary.",
                kind: SettingKind::Integer {
                    min: 0,
                    max: 100_000,
                },
                default: json!(100),
            },
        ];
        settings.extend(engagement_settings());
        SkillInfo {
            id: ID,
            display_name: "Single-thread alert",
            description: "Open deals with at most one external contact engaged recently: \
                who the sole contact is, when they were last touched, and which roles \
                (economic buyer, champion…) are missing.",
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
        let min_amount = Decimal::try_from(s.f64("min_amount", 0.0)).unwrap_or_default();
        let stages = s.strings("stages");
        let lookback = s.i64("lookback_days", 30);
        let max_engaged = usize::try_from(s.i64("max_engaged", 1)).unwrap_or(1);
        let required: Vec<String> = s
            .strings("required_roles")
            .iter()
            .map(|r| role_key(r))
            .collect();
        let listed = usize::try_from(s.i64("deals_listed", 100)).unwrap_or(0);
        let engagement = Engagement::build(
            ctx,
            &s.strings("internal_domains"),
            s.i64("match_window_days", 14),
        );
        let from = at - Duration::days(lookback);

        let mut considered = 0u64;
        let mut considered_amount = Decimal::ZERO;
        let mut by_engaged: BTreeMap<usize, (u64, Decimal)> = BTreeMap::new();
        let mut alerts: Vec<(Decimal, usize, Value)> = Vec::new();
        for (i, deal) in ctx.deals.iter().enumerate() {
            let Some(state) = deal.state_at(at, &ctx.stages) else {
                continue;
            };
            if state.stage_category != StageCategory::Open {
                continue;
            }
            let amount = state.amount_or_zero();
            if amount < min_amount {
                continue;
            }
            if !stages.is_empty()
                && !state
                    .stage
                    .as_ref()
                    .is_some_and(|st| stages.iter().any(|x| x == st))
            {
                continue;
            }
            considered += 1;
            considered_amount += amount;
            let engaged = engagement.engaged(i, from, at);
            if engaged.len() > max_engaged {
                continue;
            }
            let e = by_engaged.entry(engaged.len()).or_default();
            e.0 += 1;
            e.1 += amount;

            let present = engagement.roles_of(i);
            let missing: Vec<&String> = required.iter().filter(|r| !present.contains(*r)).collect();
            let role_contacts: Vec<Value> = engagement
                .roles
                .get(&i)
                .into_iter()
                .flatten()
                .map(|(c, role)| {
                    let c = &ctx.contacts[*c];
                    json!({
                        "contact_id": c.id,
                        "contact_source_id": c.fields.source_id,
                        "name": contact_name(c),
                        "title": c.fields.title,
                        "role": role,
                    })
                })
                .collect();
            let people: Vec<Value> = engaged
                .values()
                .map(|t| {
                    let mut p = person_json(ctx, t);
                    p["last_touch"] = touch_json(ctx, t);
                    p
                })
                .collect();
            let sole = if engaged.len() == 1 {
                people.first().cloned().unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            // The last touch by anyone external, up to the evaluation time
            // (older than the look-back when nobody was engaged in it).
            let last = engagement
                .touches
                .get(&i)
                .into_iter()
                .flatten()
                .rfind(|t| t.at <= at);
            let last_touch = match last {
                Some(t) => {
                    let mut v = touch_json(ctx, t);
                    v["person"] = json!(t.name);
                    v
                }
                None => Value::Null,
            };
            let mut why = match engaged.values().next() {
                Some(t) if engaged.len() == 1 => format!(
                    "1 external contact engaged in the last {lookback} days: {} (last {} via {})",
                    t.name,
                    day(t.at),
                    t.path.as_str()
                ),
                _ if engaged.is_empty() => match last {
                    Some(t) => format!(
                        "no external contact engaged in the last {lookback} days (last touch {} with {})",
                        day(t.at),
                        t.name
                    ),
                    None => format!(
                        "no external contact engaged in the last {lookback} days (never touched)"
                    ),
                },
                _ => format!(
                    "{} external contacts engaged in the last {lookback} days",
                    engaged.len()
                ),
            };
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|r| format!("no {r}")).collect();
                why.push_str("; ");
                why.push_str(&names.join(", "));
            }
            let row = json!({
                "deal_id": deal.id,
                "source_id": deal.source_id,
                "name": deal.name,
                "owner_source_id": state.owner_source_id,
                "stage": state.stage,
                "amount": money(amount),
                "close_date": state.close_date,
                "engaged_count": engaged.len(),
                "sole_contact": sole,
                "engaged": people,
                "last_touch": last_touch,
                "contacts_with_roles": role_contacts,
                "roles_present": present,
                "roles_missing": missing,
                "why": why,
            });
            alerts.push((amount, i, row));
        }
        alerts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let alert_count = alerts.len() as u64;
        let alert_amount: Decimal = alerts.iter().map(|a| a.0).sum();
        let rows: Vec<Value> = alerts.into_iter().take(listed).map(|a| a.2).collect();
        let breakdown: BTreeMap<String, Value> = by_engaged
            .iter()
            .map(|(k, (n, a))| (k.to_string(), json!({"count": n, "amount": money(*a)})))
            .collect();
        let summary = json!({
            "evaluated_at": at,
            "lookback_from": from,
            "internal_domains": engagement.internal_domains,
            "deals_checked": {"count": considered, "amount": money(considered_amount)},
            "alerts": {"count": alert_count, "amount": money(alert_amount)},
            "by_engaged_count": breakdown,
            "listed": rows.len(),
            "more": alert_count - rows.len() as u64,
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
