//! **Pipeline waterfall**: where a period's pipeline came from and went.
//!
//! Over a period with instants `T0` (its start) and `T1` (its end, or the
//! as-of time if earlier) and the window of its days, for every pipeline
//! and every owner and team:
//!
//! ```text
//! Start + Created + Pulled in + Increased − Decreased − Pushed out − Lost − Won = End
//! ```
//!
//! balances to the cent. **Attribution**: each deal is classified once, by
//! comparing its state at `T0` with its state at `T1`, however often it
//! moved in between:
//!
//! * **Start**: open at `T0` with its close date in the window — at its
//!   `T0` amount. Such a deal's amount at `T1` (or when it left) minus its
//!   `T0` amount is **Increased** or **Decreased**; it then leaves as
//!   **End** (open at `T1`, closing in the window), **Won**, **Lost**
//!   (lost, or deleted), or **Pushed out** (still open, close date moved out
//!   of the window or cleared).
//! * Otherwise, a deal that at `T1` is open and closes in the window, or
//!   closed (won or lost) during the period with its close date in the
//!   window, entered: **Created** if it did not exist at `T0`, **Pulled
//!   in** if it did (close date moved into the window, or reopened after
//!   being closed). Entrants count at their `T1` amount, so amount changes
//!   of a deal that entered are part of its entry, never of Increased or
//!   Decreased. It leaves as above (End, Won or Lost).
//! * A deleted deal counts at its last known state and leaves as Lost
//!   (reason `deleted`); one deleted at or before `T0` is not counted.
//!
//! A deal belongs, for all its movements, to its pipeline and to its owner
//! at `T1` (and that owner's team): an owner's Start is the `T0` pipeline
//! of the deals they hold at `T1`. Each movement lists its deals, largest
//! first, with the change that moved them.
//!
//! Also: a stage-flow matrix (stage at `T0` — or `(created)`/`(pulled in)`
//! — × stage or outcome at `T1`, counts and amounts), conversion between
//! stages among the waterfall's deals (of the deals that were in an open
//! stage during the period, how many reached a later open stage — by the
//! pipeline's display order — or won), and the average days per stage of
//! every stage exit during the period (from entering the stage, or the
//! deal's creation, to leaving it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pandora_core::model::{DealField, StageCategory};
use pandora_core::skill::{
    money, DealEvidence, DealState, Explained, ExplainedBuilder, SettingKind, SettingSpec, Skill,
    SkillContext, SkillDeal, SkillInfo, SkillInputs, SkillReport, StageCatalog,
};
use pandora_core::{Error, Result};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use crate::period::{closes_in, day, instants, last_change};

/// The skill's id.
pub const ID: &str = "pipeline_waterfall";

/// The pipeline waterfall skill (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct PipelineWaterfall;

/// The movements of the equation, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Movement {
    Start,
    Created,
    PulledIn,
    Increased,
    Decreased,
    PushedOut,
    Lost,
    Won,
    End,
}

const MOVEMENTS: [Movement; 9] = [
    Movement::Start,
    Movement::Created,
    Movement::PulledIn,
    Movement::Increased,
    Movement::Decreased,
    Movement::PushedOut,
    Movement::Lost,
    Movement::Won,
    Movement::End,
];

/// How a deal entered the period's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Start,
    Created,
    PulledIn,
    Reopened,
}

/// How it left (or stayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    End,
    Won,
    Lost,
    Deleted,
    PushedOut,
}

/// One deal's classification.
struct Flow<'a> {
    deal: &'a SkillDeal,
    pipeline: String,
    owner: String,
    s0: Option<DealState>,
    r1: DealState,
    entry: Entry,
    exit: Exit,
    a0: Decimal,
    x: Decimal,
}

impl Flow<'_> {
    /// The deal's part of each movement.
    fn parts(&self) -> Vec<(Movement, Decimal)> {
        let mut parts = Vec::with_capacity(3);
        match self.entry {
            Entry::Start => {
                parts.push((Movement::Start, self.a0));
                let d = self.x - self.a0;
                if d > Decimal::ZERO {
                    parts.push((Movement::Increased, d));
                } else if d < Decimal::ZERO {
                    parts.push((Movement::Decreased, -d));
                }
            }
            Entry::Created => parts.push((Movement::Created, self.x)),
            Entry::PulledIn | Entry::Reopened => parts.push((Movement::PulledIn, self.x)),
        }
        parts.push((
            match self.exit {
                Exit::End => Movement::End,
                Exit::Won => Movement::Won,
                Exit::Lost | Exit::Deleted => Movement::Lost,
                Exit::PushedOut => Movement::PushedOut,
            },
            self.x,
        ));
        parts
    }
}

fn movement_key(m: Movement) -> &'static str {
    match m {
        Movement::Start => "start",
        Movement::Created => "created",
        Movement::PulledIn => "pulled_in",
        Movement::Increased => "increased",
        Movement::Decreased => "decreased",
        Movement::PushedOut => "pushed_out",
        Movement::Lost => "lost",
        Movement::Won => "won",
        Movement::End => "end",
    }
}

fn or_none<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "none".into())
}

/// Classifies a deal, or `None` when it has no part in the period.
fn classify<'a>(
    deal: &'a SkillDeal,
    ctx: &SkillContext,
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
) -> Option<Flow<'a>> {
    if deal.deleted_at.is_some_and(|d| d <= t0) {
        return None;
    }
    let r1 = deal.record_at(t1, &ctx.stages)?;
    let deleted = !deal.exists_at(t1);
    let s0 = deal.state_at(t0, &ctx.stages);
    let in_window = closes_in(&r1, &ctx.period);
    let in_start = s0
        .as_ref()
        .is_some_and(|s| s.is_open() && closes_in(s, &ctx.period));
    let entry = if in_start {
        Entry::Start
    } else {
        let closed_in_period =
            !r1.is_open() && s0.as_ref().is_none_or(DealState::is_open) && in_window;
        if !((r1.is_open() && in_window) || closed_in_period) {
            return None;
        }
        match &s0 {
            None => Entry::Created,
            Some(s) if s.is_open() => Entry::PulledIn,
            Some(_) => Entry::Reopened,
        }
    };
    let exit = if deleted {
        Exit::Deleted
    } else {
        match r1.stage_category {
            StageCategory::Won => Exit::Won,
            StageCategory::Lost => Exit::Lost,
            StageCategory::Open if in_window => Exit::End,
            StageCategory::Open => Exit::PushedOut,
        }
    };
    Some(Flow {
        deal,
        pipeline: deal.pipeline.clone().unwrap_or_else(|| "(none)".into()),
        owner: r1
            .owner_source_id
            .clone()
            .unwrap_or_else(|| "(unassigned)".into()),
        a0: s0
            .as_ref()
            .map(DealState::amount_or_zero)
            .unwrap_or_default(),
        x: r1.amount_or_zero(),
        s0,
        r1,
        entry,
        exit,
    })
}

/// Why `flow` is part of `movement`.
fn why(flow: &Flow<'_>, movement: Movement, t0: DateTime<Utc>, t1: DateTime<Utc>) -> String {
    let deal = flow.deal;
    let on = |field: DealField| {
        last_change(deal, field, t0, t1)
            .map(|c| format!(" on {}", day(c.at)))
            .unwrap_or_default()
    };
    let s0 = flow.s0.as_ref();
    let r1 = &flow.r1;
    match movement {
        Movement::Start => format!(
            "open at T0 in stage {}, closing {}",
            or_none(&s0.and_then(|s| s.stage.clone())),
            or_none(&s0.and_then(|s| s.close_date))
        ),
        Movement::Created => format!(
            "created {}; stage {}, closing {}",
            day(deal.created_at),
            or_none(&r1.stage),
            or_none(&r1.close_date)
        ),
        Movement::PulledIn if flow.entry == Entry::Reopened => format!(
            "reopened: stage {} → {}{}",
            or_none(&s0.and_then(|s| s.stage.clone())),
            or_none(&r1.stage),
            on(DealField::Stage)
        ),
        Movement::PulledIn => format!(
            "close date {} → {}{}",
            or_none(&s0.and_then(|s| s.close_date)),
            or_none(&r1.close_date),
            on(DealField::CloseDate)
        ),
        Movement::Increased | Movement::Decreased => format!(
            "amount {} → {}{}",
            money(flow.a0),
            money(flow.x),
            on(DealField::Amount)
        ),
        Movement::PushedOut => format!(
            "close date {} → {}{}",
            or_none(&s0.and_then(|s| s.close_date)),
            or_none(&r1.close_date),
            on(DealField::CloseDate)
        ),
        Movement::Lost if flow.exit == Exit::Deleted => format!(
            "deleted on {}",
            deal.deleted_at.map(day).unwrap_or_default()
        ),
        Movement::Lost => format!(
            "lost (stage {}){}",
            or_none(&r1.stage),
            on(DealField::Stage)
        ),
        Movement::Won => format!("won (stage {}){}", or_none(&r1.stage), on(DealField::Stage)),
        Movement::End => format!(
            "open at T1 in stage {}, closing {}",
            or_none(&r1.stage),
            or_none(&r1.close_date)
        ),
    }
}

/// The part of `movement` in `flow`.
fn part(flow: &Flow<'_>, movement: Movement) -> Decimal {
    flow.parts()
        .into_iter()
        .find(|(m, _)| *m == movement)
        .map(|(_, a)| a)
        .unwrap_or_default()
}

/// One row's nine figures.
struct Figures {
    builders: Vec<ExplainedBuilder>,
}

impl Figures {
    fn new(cap: usize) -> Self {
        Figures {
            builders: MOVEMENTS
                .iter()
                .map(|_| ExplainedBuilder::new(cap))
                .collect(),
        }
    }

    fn add(&mut self, flow: &Flow<'_>, token: usize) {
        for (m, amount) in flow.parts() {
            self.builders[m as usize].push(amount, flow.deal.id, token);
        }
    }

    fn total(&self, m: Movement) -> Decimal {
        self.builders[m as usize].total()
    }

    /// Whether the equation holds exactly.
    fn balanced(&self) -> bool {
        use Movement::*;
        self.total(Start) + self.total(Created) + self.total(PulledIn) + self.total(Increased)
            - self.total(Decreased)
            - self.total(PushedOut)
            - self.total(Lost)
            - self.total(Won)
            == self.total(End)
    }

    fn finish(
        &self,
        flows: &[Flow<'_>],
        t0: DateTime<Utc>,
        t1: DateTime<Utc>,
    ) -> BTreeMap<&'static str, Explained> {
        MOVEMENTS
            .iter()
            .map(|&m| {
                let explained = self.builders[m as usize].finish(|i| {
                    let f = &flows[i];
                    DealEvidence {
                        deal_id: f.deal.id,
                        source_id: f.deal.source_id.clone(),
                        name: f.deal.name.clone(),
                        amount: money(part(f, m)),
                        why: why(f, m, t0, t1),
                    }
                });
                (movement_key(m), explained)
            })
            .collect()
    }
}

#[derive(Serialize)]
struct Row<'a> {
    pipeline: &'a str,
    /// `pipeline`, `team` or `owner`.
    scope: &'static str,
    key: &'a str,
    label: String,
    #[serde(flatten)]
    figures: BTreeMap<&'static str, Explained>,
    balanced: bool,
}

#[derive(Default)]
struct FlowCell {
    count: u64,
    amount_t0: Decimal,
    amount_t1: Decimal,
}

#[derive(Default)]
struct StageStats {
    reached: u64,
    advanced: u64,
    won: u64,
    lost: u64,
    exits: u64,
    micros_in_stage: i64,
}

impl Skill for PipelineWaterfall {
    fn info(&self) -> SkillInfo {
        SkillInfo {
            id: ID,
            display_name: "Pipeline waterfall",
            description: "Where the period's pipeline came from and went: Start + Created + \
                Pulled in + Increased − Decreased − Pushed out − Lost − Won = End, per pipeline, \
                owner and team, with the deals behind every figure, a stage-flow matrix, \
                conversion between stages and days per stage.",
            default_schedule: "0 6 * * 1",
            settings: vec![
                SettingSpec {
                    name: "deals_listed",
                    description: "Deals listed per figure of the summary and of pipeline rows \
                        (the largest first); the others are counted in `more`.",
                    kind: SettingKind::Integer {
                        min: 0,
                        max: 10_000,
                    },
                    default: json!(25),
                },
                SettingSpec {
                    name: "row_deals_listed",
                    description: "Deals listed per figure of owner and team rows.",
                    kind: SettingKind::Integer { min: 0, max: 1_000 },
                    default: json!(5),
                },
                SettingSpec {
                    name: "pipelines",
                    description: "Pipeline ids to report on (empty: every pipeline).",
                    kind: SettingKind::StringList { choices: vec![] },
                    default: json!([]),
                },
            ],
            inputs: SkillInputs::default(),
        }
    }

    fn run(&self, ctx: &SkillContext) -> Result<SkillReport> {
        let (t0, t1) = instants(ctx)?;
        let listed = usize::try_from(ctx.settings.i64("deals_listed", 25)).unwrap_or(0);
        let row_listed = usize::try_from(ctx.settings.i64("row_deals_listed", 5)).unwrap_or(0);
        let pipelines = ctx.settings.strings("pipelines");
        let org = ctx.org();

        let flows: Vec<Flow<'_>> = ctx
            .deals
            .iter()
            .filter(|d| {
                pipelines.is_empty() || d.pipeline.as_ref().is_some_and(|p| pipelines.contains(p))
            })
            .filter_map(|d| classify(d, ctx, t0, t1))
            .collect();

        // Figures: the whole workspace, and rows by (pipeline, scope, key).
        let mut total = Figures::new(listed);
        let mut rows: BTreeMap<(String, u8, String), Figures> = BTreeMap::new();
        let mut labels: BTreeMap<(String, u8, String), String> = BTreeMap::new();
        for (i, f) in flows.iter().enumerate() {
            total.add(f, i);
            let user = org.find(&f.deal.source, &f.owner).map(|u| &ctx.users[u]);
            let team = user
                .and_then(|u| u.fields.team.clone())
                .unwrap_or_else(|| "(no team)".into());
            let owner_label = user
                .and_then(|u| u.fields.name.clone())
                .unwrap_or_else(|| f.owner.clone());
            for (scope, key, label, cap) in [
                (0u8, String::new(), f.pipeline.clone(), listed),
                (1, team.clone(), team.clone(), row_listed),
                (2, f.owner.clone(), owner_label, row_listed),
            ] {
                let k = (f.pipeline.clone(), scope, key);
                labels.entry(k.clone()).or_insert(label);
                rows.entry(k).or_insert_with(|| Figures::new(cap)).add(f, i);
            }
        }
        if !total.balanced() || rows.values().any(|r| !r.balanced()) {
            return Err(Error::internal("the pipeline waterfall does not balance"));
        }

        let row_values = rows
            .iter()
            .map(|((pipeline, scope, key), figures)| {
                let row = Row {
                    pipeline,
                    scope: ["pipeline", "team", "owner"][usize::from(*scope)],
                    key,
                    label: labels
                        .get(&(pipeline.clone(), *scope, key.clone()))
                        .cloned()
                        .unwrap_or_default(),
                    figures: figures.finish(&flows, t0, t1),
                    balanced: figures.balanced(),
                };
                serde_json::to_value(row).map_err(Error::from)
            })
            .collect::<Result<Vec<_>>>()?;

        let mut summary = serde_json::Map::new();
        summary.insert("t0".into(), json!(t0));
        summary.insert("t1".into(), json!(t1));
        summary.insert(
            "window".into(),
            json!({
                "first_day": ctx.period.first_day(),
                "last_day": ctx.period.last_day(),
            }),
        );
        summary.insert("deals".into(), json!(flows.len()));
        for (k, v) in total.finish(&flows, t0, t1) {
            summary.insert(k.into(), serde_json::to_value(v)?);
        }
        summary.insert("balanced".into(), json!(total.balanced()));

        let mut sections = BTreeMap::new();
        sections.insert("stage_flow".into(), stage_flow(&flows));
        sections.insert("conversion".into(), conversion(&flows, &ctx.stages, t0, t1));
        sections.insert(
            "days_in_stage".into(),
            days_in_stage(ctx, &pipelines, t0, t1),
        );
        Ok(SkillReport {
            skill: ID.into(),
            period: ctx.period.clone(),
            as_of: ctx.as_of,
            summary: serde_json::Value::Object(summary),
            rows: row_values,
            sections,
            risk_updates: Vec::new(),
        })
    }
}

/// Stage at `T0` (or how the deal entered) × stage or outcome at `T1`.
fn stage_flow(flows: &[Flow<'_>]) -> serde_json::Value {
    let mut cells: BTreeMap<(String, String, String), FlowCell> = BTreeMap::new();
    for f in flows {
        let from = match f.entry {
            Entry::Start => {
                f.s0.as_ref()
                    .and_then(|s| s.stage.clone())
                    .unwrap_or_else(|| "(none)".into())
            }
            Entry::Created => "(created)".into(),
            Entry::PulledIn | Entry::Reopened => "(pulled in)".into(),
        };
        let to = match f.exit {
            Exit::End => f.r1.stage.clone().unwrap_or_else(|| "(none)".into()),
            Exit::Won => "(won)".into(),
            Exit::Lost => "(lost)".into(),
            Exit::Deleted => "(deleted)".into(),
            Exit::PushedOut => "(pushed out)".into(),
        };
        let cell = cells.entry((f.pipeline.clone(), from, to)).or_default();
        cell.count += 1;
        if f.entry == Entry::Start {
            cell.amount_t0 += f.a0;
        }
        cell.amount_t1 += f.x;
    }
    serde_json::Value::Array(
        cells
            .into_iter()
            .map(|((pipeline, from, to), c)| {
                json!({
                    "pipeline": pipeline,
                    "from": from,
                    "to": to,
                    "count": c.count,
                    "amount_t0": money(c.amount_t0),
                    "amount_t1": money(c.amount_t1),
                })
            })
            .collect(),
    )
}

/// The stages a deal was in during `[t0, t1]`, in order (its stage at `t0`,
/// or at creation, then each stage change).
fn stage_path(
    deal: &SkillDeal,
    stages: &StageCatalog,
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
) -> Vec<String> {
    let from = t0.max(deal.created_at);
    let mut path: Vec<String> = deal
        .record_at(from, stages)
        .and_then(|s| s.stage)
        .into_iter()
        .collect();
    for c in deal.changes_in(DealField::Stage, from, t1) {
        if let Some(s) = &c.new {
            if path.last() != Some(s) {
                path.push(s.clone());
            }
        }
    }
    path
}

/// Display order of a stage within its pipeline (`None` when unknown), and
/// its category.
fn stage_rank(
    stages: &StageCatalog,
    pipeline: Option<&str>,
    stage: &str,
) -> (Option<i32>, StageCategory) {
    match stages.find(pipeline, stage) {
        Some(s) => (s.fields.display_order, s.fields.category),
        None => (None, StageCategory::Open),
    }
}

/// Ordered stage keys of a pipeline: the catalog's, then any other seen, by id.
fn ordered_stages<'a>(
    stages: &'a StageCatalog,
    pipeline: &'a str,
    seen: impl Iterator<Item = &'a String>,
) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = stages
        .of_pipeline(pipeline)
        .map(|s| (s.fields.stage.clone(), s.fields.label.clone()))
        .collect();
    let mut extra: Vec<&String> = seen.filter(|s| !out.iter().any(|(k, _)| k == *s)).collect();
    extra.sort();
    extra.dedup();
    out.extend(extra.into_iter().map(|s| (s.clone(), None)));
    out
}

/// Conversion between stages among the waterfall's deals.
fn conversion(
    flows: &[Flow<'_>],
    stages: &StageCatalog,
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
) -> serde_json::Value {
    let mut stats: BTreeMap<(String, String), StageStats> = BTreeMap::new();
    for f in flows {
        let pipeline = f.deal.pipeline.as_deref();
        let path = stage_path(f.deal, stages, t0, t1);
        for (i, s) in path.iter().enumerate() {
            if path[..i].contains(s) {
                continue;
            }
            let (rank, category) = stage_rank(stages, pipeline, s);
            if category != StageCategory::Open {
                continue;
            }
            let advanced = path[i + 1..].iter().any(|later| {
                let (later_rank, cat) = stage_rank(stages, pipeline, later);
                cat == StageCategory::Won
                    || (cat == StageCategory::Open
                        && matches!((rank, later_rank), (Some(a), Some(b)) if b > a))
            });
            let st = stats.entry((f.pipeline.clone(), s.clone())).or_default();
            st.reached += 1;
            st.advanced += u64::from(advanced);
            st.won += u64::from(f.exit == Exit::Won);
            st.lost += u64::from(matches!(f.exit, Exit::Lost | Exit::Deleted));
        }
    }
    let mut out = Vec::new();
    let pipelines: std::collections::BTreeSet<&String> = stats.keys().map(|(p, _)| p).collect();
    for p in pipelines {
        let seen = stats.keys().filter(|(q, _)| q == p).map(|(_, s)| s);
        for (stage, label) in ordered_stages(stages, p, seen) {
            let Some(st) = stats.get(&(p.clone(), stage.clone())) else {
                continue;
            };
            out.push(json!({
                "pipeline": p,
                "stage": stage,
                "label": label,
                "reached": st.reached,
                "advanced": st.advanced,
                "won": st.won,
                "lost": st.lost,
                "rate": ratio(Decimal::from(st.advanced), Decimal::from(st.reached)),
            }));
        }
    }
    serde_json::Value::Array(out)
}

/// Average days per stage, over every stage exit during `(t0, t1]`.
fn days_in_stage(
    ctx: &SkillContext,
    pipelines: &[String],
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
) -> serde_json::Value {
    let mut stats: BTreeMap<(String, String), StageStats> = BTreeMap::new();
    for deal in &ctx.deals {
        if !pipelines.is_empty()
            && !deal
                .pipeline
                .as_ref()
                .is_some_and(|p| pipelines.contains(p))
        {
            continue;
        }
        let pipeline = deal.pipeline.clone().unwrap_or_else(|| "(none)".into());
        let mut entered = deal.created_at;
        let mut current: Option<String> = deal
            .record_at(deal.created_at, &ctx.stages)
            .and_then(|s| s.stage);
        for c in deal.changes.iter().filter(|c| c.field == DealField::Stage) {
            if c.at > t1 {
                break;
            }
            let left = current.clone().or_else(|| c.old.clone());
            if c.at > t0 {
                if let Some(stage) = left {
                    let st = stats.entry((pipeline.clone(), stage)).or_default();
                    st.exits += 1;
                    st.micros_in_stage += (c.at - entered).num_microseconds().unwrap_or(0).max(0);
                }
            }
            entered = c.at;
            current = c.new.clone();
        }
    }
    let mut out = Vec::new();
    let pipelines: std::collections::BTreeSet<&String> = stats.keys().map(|(p, _)| p).collect();
    for p in pipelines {
        let seen = stats.keys().filter(|(q, _)| q == p).map(|(_, s)| s);
        for (stage, label) in ordered_stages(&ctx.stages, p, seen) {
            let Some(st) = stats.get(&(p.clone(), stage.clone())) else {
                continue;
            };
            let days = Decimal::from(st.micros_in_stage)
                / Decimal::from(86_400_000_000_i64)
                / Decimal::from(st.exits.max(1));
            out.push(json!({
                "pipeline": p,
                "stage": stage,
                "label": label,
                "exits": st.exits,
                "average_days": days.round_dp(1).to_string(),
            }));
        }
    }
    serde_json::Value::Array(out)
}

/// `n / d` to 4 decimal places, `null` when `d` is 0.
pub(crate) fn ratio(n: Decimal, d: Decimal) -> serde_json::Value {
    if d.is_zero() {
        return serde_json::Value::Null;
    }
    let mut r =
        (n / d).round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(4);
    json!(r.to_string())
}
