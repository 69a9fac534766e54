//! **Forecast rollup**: what each manager's organisation will close in the
//! period, by forecast category, against quota.
//!
//! The deals are those whose close date falls in the period, as they stand
//! at the period's end (or at the as-of time if earlier). Each is in one
//! category:
//!
//! * **Closed**: won. **Omitted**: lost.
//! * An open deal: its vendor forecast category when it is one of
//!   `pipeline`, `best case` (or `upside`), `commit`, `omitted` (or `omit`)
//!   — compared without case, spaces or punctuation; an open deal labelled
//!   `closed` counts as Commit. Otherwise the workspace's
//!   `stage_categories` setting maps its stage; otherwise
//!   `default_category` (Pipeline).
//!
//! Per user, the figures of their own deals (each listed with why it is in
//! its category) and of their whole organisation: a manager's rollup is the
//! sum of their reports' rollups plus their own deals, at every level. Deals
//! whose owner is not a synced user roll up in an `(unassigned)` row.
//! Cumulative figures: **Closed**; **Commit** = Commit + Closed; **Best
//! case** = Best case + Commit + Closed; **Open pipeline** = Pipeline + Best
//! case + Commit (never Closed or Omitted).
//!
//! Quota: the user's own quota for the period (set through Pandora, else
//! from the vendor's user record), else the sum of their reports' quotas; a
//! user with neither has none. **Attainment** = Closed ÷ quota; **gap** =
//! quota − Closed; **coverage** = Open pipeline ÷ (quota − Closed), none
//! once the quota is met. **Change**: each figure minus the same figure in
//! the previous succeeded run of the same period.

use std::collections::BTreeMap;

use pandora_core::model::StageCategory;
use pandora_core::skill::{
    money, DealEvidence, DealState, Explained, ExplainedBuilder, QuotaSource, SettingKind,
    SettingSpec, Skill, SkillContext, SkillDeal, SkillInfo, SkillInputs, SkillReport,
};
use pandora_core::{Error, Result};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::period::{closes_in, evaluation_time};
use crate::pipeline_waterfall::ratio;

/// The skill's id.
pub const ID: &str = "forecast_rollup";

/// The forecast rollup skill (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct ForecastRollup;

/// A forecast category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    Pipeline,
    BestCase,
    Commit,
    Closed,
    Omitted,
}

const CATEGORIES: [Category; 5] = [
    Category::Pipeline,
    Category::BestCase,
    Category::Commit,
    Category::Closed,
    Category::Omitted,
];

impl Category {
    fn key(self) -> &'static str {
        match self {
            Category::Pipeline => "pipeline",
            Category::BestCase => "best_case",
            Category::Commit => "commit",
            Category::Closed => "closed",
            Category::Omitted => "omitted",
        }
    }

    /// A vendor's or a setting's name for a category.
    fn parse(s: &str) -> Option<Category> {
        let k: String = s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match k.as_str() {
            "pipeline" => Category::Pipeline,
            "bestcase" | "upside" => Category::BestCase,
            "commit" => Category::Commit,
            "closed" => Category::Closed,
            "omit" | "omitted" => Category::Omitted,
            _ => return None,
        })
    }
}

/// The category of a deal's state, and why.
fn categorize(
    state: &DealState,
    use_vendor: bool,
    stage_map: &BTreeMap<String, String>,
    default: Category,
) -> (Category, String) {
    let stage = state.stage.clone().unwrap_or_else(|| "none".into());
    match state.stage_category {
        StageCategory::Won => return (Category::Closed, format!("won (stage {stage})")),
        StageCategory::Lost => return (Category::Omitted, format!("lost (stage {stage})")),
        StageCategory::Open => {}
    }
    let open = |c: Category| {
        if c == Category::Closed {
            Category::Commit
        } else {
            c
        }
    };
    if use_vendor {
        if let Some(v) = &state.forecast_category {
            if let Some(c) = Category::parse(v) {
                return (open(c), format!("vendor forecast category {v:?}"));
            }
        }
    }
    if let Some(c) = state
        .stage
        .as_ref()
        .and_then(|s| stage_map.get(s))
        .and_then(|c| Category::parse(c))
    {
        return (
            open(c),
            format!("stage {stage} mapped to {} (setting)", open(c).key()),
        );
    }
    (default, format!("stage {stage}: default category"))
}

/// A deal in the forecast.
struct Entry<'a> {
    deal: &'a SkillDeal,
    amount: Decimal,
    why: String,
}

/// Amounts and counts per category.
#[derive(Clone, Default)]
struct Totals {
    amount: [Decimal; 5],
    count: [u64; 5],
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        for i in 0..5 {
            self.amount[i] += other.amount[i];
            self.count[i] += other.count[i];
        }
    }

    fn get(&self, c: Category) -> Decimal {
        self.amount[c as usize]
    }

    /// The cumulative figures.
    fn cumulative(&self) -> [(&'static str, Decimal); 4] {
        use Category::*;
        [
            ("closed", self.get(Closed)),
            ("commit", self.get(Commit) + self.get(Closed)),
            (
                "best_case",
                self.get(BestCase) + self.get(Commit) + self.get(Closed),
            ),
            (
                "open_pipeline",
                self.get(Pipeline) + self.get(BestCase) + self.get(Commit),
            ),
        ]
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for c in CATEGORIES {
            m.insert(
                c.key().into(),
                json!({"amount": money(self.get(c)), "count": self.count[c as usize]}),
            );
        }
        Value::Object(m)
    }

    fn cumulative_json(&self) -> Value {
        Value::Object(
            self.cumulative()
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(money(v))))
                .collect(),
        )
    }
}

/// A node of the rollup: a user, or the unassigned bucket.
struct Node {
    own: Vec<ExplainedBuilder>,
    own_totals: Totals,
    rolled: Totals,
    quota: Option<(Decimal, &'static str)>,
}

impl Node {
    fn new(cap: usize) -> Self {
        Node {
            own: CATEGORIES
                .iter()
                .map(|_| ExplainedBuilder::new(cap))
                .collect(),
            own_totals: Totals::default(),
            rolled: Totals::default(),
            quota: None,
        }
    }
}

/// Quota-derived figures of a rollup: quota, attainment, gap, coverage.
fn against_quota(rolled: &Totals, quota: Option<(Decimal, &'static str)>) -> Map<String, Value> {
    let mut m = Map::new();
    let closed = rolled.get(Category::Closed);
    let open = rolled.cumulative()[3].1;
    match quota {
        Some((q, source)) => {
            m.insert("quota".into(), json!(money(q)));
            m.insert("quota_source".into(), json!(source));
            m.insert("attainment".into(), ratio(closed, q));
            m.insert("gap".into(), json!(money(q - closed)));
            let remaining = q - closed;
            m.insert(
                "coverage".into(),
                if remaining > Decimal::ZERO {
                    ratio(open, remaining)
                } else {
                    Value::Null
                },
            );
        }
        None => {
            for k in ["quota", "quota_source", "attainment", "gap", "coverage"] {
                m.insert(k.into(), Value::Null);
            }
        }
    }
    m
}

/// The figures compared across runs, as `name → amount`.
fn comparable(row: &Value) -> BTreeMap<String, Decimal> {
    let mut out = BTreeMap::new();
    if let Some(cum) = row.get("cumulative").and_then(Value::as_object) {
        for (k, v) in cum {
            if let Some(d) = v.as_str().and_then(|s| s.parse().ok()) {
                out.insert(k.clone(), d);
            }
        }
    }
    if let Some(cats) = row.get("rollup").and_then(Value::as_object) {
        for (k, v) in cats {
            if let Some(d) = v
                .get("amount")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            {
                out.insert(format!("{k}_category"), d);
            }
        }
    }
    if let Some(d) = row
        .get("quota")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
    {
        out.insert("quota".into(), d);
    }
    out
}

/// Each figure of `now` minus the same figure of `before` (missing counts as 0).
fn change(now: &Value, before: Option<&Value>) -> Value {
    let Some(before) = before else {
        return Value::Null;
    };
    let (a, b) = (comparable(now), comparable(before));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    Value::Object(
        keys.into_iter()
            .map(|k| {
                let d =
                    a.get(k).copied().unwrap_or_default() - b.get(k).copied().unwrap_or_default();
                (k.clone(), json!(money(d)))
            })
            .collect(),
    )
}

impl Skill for ForecastRollup {
    fn info(&self) -> SkillInfo {
        SkillInfo {
            id: ID,
            display_name: "Forecast rollup",
            description: "What each manager's organisation will close in the period: \
                Pipeline, Best case, Commit, Closed and Omitted, per user and rolled up the \
                manager tree, against quota (attainment, gap, coverage), with the change since \
                the previous run of the period.",
            default_schedule: "0 7 * * 1-5",
            settings: vec![
                SettingSpec {
                    name: "stage_categories",
                    description: "Forecast category of open deals by stage id, used when the \
                        vendor gives none: pipeline, best_case, commit or omitted.",
                    kind: SettingKind::StringMap {
                        values: vec!["pipeline", "best_case", "commit", "omitted"],
                    },
                    default: json!({}),
                },
                SettingSpec {
                    name: "default_category",
                    description: "Category of an open deal with no vendor category and no \
                        mapped stage.",
                    kind: SettingKind::String {
                        choices: vec!["pipeline", "best_case", "commit", "omitted"],
                    },
                    default: json!("pipeline"),
                },
                SettingSpec {
                    name: "use_vendor_category",
                    description: "Whether the vendor's forecast category comes before the \
                        stage mapping.",
                    kind: SettingKind::Boolean,
                    default: json!(true),
                },
                SettingSpec {
                    name: "deals_listed",
                    description: "Deals listed per category of each user's own deals (the \
                        largest first); the others are counted in `more`.",
                    kind: SettingKind::Integer {
                        min: 0,
                        max: 10_000,
                    },
                    default: json!(10),
                },
            ],
            inputs: SkillInputs::default(),
        }
    }

    fn run(&self, ctx: &SkillContext) -> Result<SkillReport> {
        let at = evaluation_time(ctx);
        let listed = usize::try_from(ctx.settings.i64("deals_listed", 10)).unwrap_or(0);
        let use_vendor = ctx.settings.bool("use_vendor_category", true);
        let stage_map = ctx.settings.string_map("stage_categories");
        let default = ctx
            .settings
            .str("default_category")
            .and_then(Category::parse)
            .unwrap_or(Category::Pipeline);
        let org = ctx.org();
        let n = ctx.users.len();
        // Nodes 0..n are the users; node n is "(unassigned)".
        let mut nodes: Vec<Node> = (0..=n).map(|_| Node::new(listed)).collect();
        let mut entries: Vec<Entry<'_>> = Vec::new();
        for deal in &ctx.deals {
            let Some(state) = deal.state_at(at, &ctx.stages) else {
                continue;
            };
            if !closes_in(&state, &ctx.period) {
                continue;
            }
            let (category, why) = categorize(&state, use_vendor, &stage_map, default);
            let node = state
                .owner_source_id
                .as_deref()
                .and_then(|o| org.find(&deal.source, o))
                .unwrap_or(n);
            let amount = state.amount_or_zero();
            let token = entries.len();
            entries.push(Entry { deal, amount, why });
            let node = &mut nodes[node];
            node.own[category as usize].push(amount, deal.id, token);
            node.own_totals.amount[category as usize] += amount;
            node.own_totals.count[category as usize] += 1;
        }

        // Roll up: every user after all of its reports.
        for i in org.bottom_up() {
            let mut rolled = nodes[i].own_totals.clone();
            let mut team_quota: Option<Decimal> = None;
            for &r in &org.reports[i] {
                rolled.add(&nodes[r].rolled);
                if let Some((q, _)) = nodes[r].quota {
                    *team_quota.get_or_insert(Decimal::ZERO) += q;
                }
            }
            let own_quota = ctx.quota_of(&ctx.users[i], &ctx.period.label);
            nodes[i].quota = match (own_quota, team_quota) {
                (Some((q, QuotaSource::Set)), _) => Some((q, "set")),
                (Some((q, QuotaSource::Vendor)), _) => Some((q, "vendor")),
                (None, Some(q)) => Some((q, "team_sum")),
                (None, None) => None,
            };
            nodes[i].rolled = rolled;
        }
        let unassigned_totals = nodes[n].own_totals.clone();
        nodes[n].rolled = unassigned_totals;

        let previous_rows: BTreeMap<String, &Value> = ctx
            .previous
            .as_ref()
            .and_then(|p| p.report.get("rows"))
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| Some((r.get("key")?.as_str()?.to_string(), r)))
                    .collect()
            })
            .unwrap_or_default();

        let describe = |i: usize| {
            let e = &entries[i];
            DealEvidence {
                deal_id: e.deal.id,
                source_id: e.deal.source_id.clone(),
                name: e.deal.name.clone(),
                amount: money(e.amount),
                why: e.why.clone(),
            }
        };
        let depths = org.depths();
        let mut rows = Vec::new();
        // Users in tree order (roots by id, then depth first), then unassigned.
        let mut tree_order = Vec::with_capacity(n + 1);
        let mut stack: Vec<usize> = org.roots.iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            tree_order.push(i);
            stack.extend(org.reports[i].iter().rev());
        }
        for i in tree_order.into_iter().chain(std::iter::once(n)) {
            let node = &nodes[i];
            let has_deals = node.rolled.count.iter().any(|&c| c > 0);
            if i == n && !has_deals {
                continue;
            }
            if i < n && !has_deals && node.quota.is_none() {
                continue;
            }
            let own: BTreeMap<&'static str, Explained> = CATEGORIES
                .iter()
                .map(|&c| (c.key(), node.own[c as usize].finish(describe)))
                .collect();
            let mut row = Map::new();
            if i < n {
                let u = &ctx.users[i];
                row.insert("key".into(), json!(u.id.to_string()));
                row.insert("user_id".into(), json!(u.id));
                row.insert("source_id".into(), json!(u.fields.source_id));
                row.insert("name".into(), json!(u.fields.name));
                row.insert(
                    "manager_id".into(),
                    json!(org.manager[i].map(|m| ctx.users[m].id)),
                );
                row.insert("depth".into(), json!(depths[i]));
                row.insert(
                    "reports".into(),
                    json!(org.reports[i]
                        .iter()
                        .map(|&r| ctx.users[r].id)
                        .collect::<Vec<_>>()),
                );
            } else {
                row.insert("key".into(), json!("(unassigned)"));
                row.insert("user_id".into(), Value::Null);
                row.insert("source_id".into(), Value::Null);
                row.insert("name".into(), json!("(unassigned)"));
                row.insert("manager_id".into(), Value::Null);
                row.insert("depth".into(), json!(0));
                row.insert("reports".into(), json!([]));
            }
            row.insert("own".into(), serde_json::to_value(own)?);
            row.insert("rollup".into(), node.rolled.to_json());
            row.insert("cumulative".into(), node.rolled.cumulative_json());
            row.extend(against_quota(&node.rolled, node.quota));
            let mut value = Value::Object(row);
            let key = value["key"].as_str().unwrap_or_default().to_string();
            let delta = change(&value, previous_rows.get(&key).copied());
            if let Value::Object(m) = &mut value {
                m.insert("change".into(), delta);
            }
            rows.push(value);
        }

        // The company: every root's rollup plus the unassigned deals.
        let mut company = nodes[n].rolled.clone();
        let mut company_quota: Option<Decimal> = None;
        for &r in &org.roots {
            company.add(&nodes[r].rolled);
            if let Some((q, _)) = nodes[r].quota {
                *company_quota.get_or_insert(Decimal::ZERO) += q;
            }
        }
        let mut summary = Map::new();
        summary.insert("evaluated_at".into(), json!(at));
        summary.insert("deals".into(), json!(entries.len()));
        summary.insert("rollup".into(), company.to_json());
        summary.insert("cumulative".into(), company.cumulative_json());
        summary.extend(against_quota(
            &company,
            company_quota.map(|q| (q, "team_sum")),
        ));
        let mut summary = Value::Object(summary);
        let previous_summary = ctx.previous.as_ref().and_then(|p| p.report.get("summary"));
        let delta = change(&summary, previous_summary);
        if let Value::Object(m) = &mut summary {
            m.insert("change".into(), delta);
            m.insert(
                "previous_run".into(),
                match &ctx.previous {
                    Some(p) => json!({"run_id": p.run_id, "as_of": p.as_of}),
                    None => Value::Null,
                },
            );
        }
        // Every manager's rollup is its reports' plus its own deals.
        for i in 0..n {
            let mut sum = nodes[i].own_totals.clone();
            for &r in &org.reports[i] {
                sum.add(&nodes[r].rolled);
            }
            if sum.amount != nodes[i].rolled.amount {
                return Err(Error::internal("the forecast rollup does not add up"));
            }
        }
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
