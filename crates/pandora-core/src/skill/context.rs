//! What a skill sees: the workspace's data as of one time.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use super::{Period, Settings};
use crate::model::{
    Contact, Conversation, DealContact, DealField, PipelineStage, Quota, StageCategory, User,
    WorkspaceId,
};

/// Everything a skill may read: the workspace's data as it stood at `as_of`,
/// the period to report on, and the settings.
///
/// Deals carry their field history up to `as_of`, so a skill can rebuild any
/// deal at any time up to then ([`SkillDeal::state_at`]). Lists are sorted
/// (deals, users, contacts, roles and conversations by id; stages as the
/// store lists them), so iterating them is deterministic.
#[derive(Debug, Clone)]
pub struct SkillContext {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The time the data is taken as of: nothing later is visible.
    pub as_of: DateTime<Utc>,
    /// The period to report on.
    pub period: Period,
    /// The effective settings (every setting of the skill's schema).
    pub settings: Settings,
    /// The workspace's pipeline stages.
    pub stages: StageCatalog,
    /// Deals that existed at `as_of` (deleted ones too, with `deleted_at`).
    pub deals: Vec<SkillDeal>,
    /// Users (reps and managers), as they are now: users have no history.
    pub users: Vec<User>,
    /// Quotas set for the workspace (every period).
    pub quotas: Vec<Quota>,
    /// Contacts, when the skill asked for them (no history: as they are now).
    pub contacts: Vec<Contact>,
    /// Deal–contact roles, when the skill asked for contacts.
    pub deal_contacts: Vec<DealContact>,
    /// Conversations that started at or before `as_of` (or have no start
    /// time), when the skill asked for them.
    pub conversations: Vec<Conversation>,
    /// The latest succeeded run of the same skill for the same period, if any.
    pub previous: Option<PreviousReport>,
}

/// The report of an earlier run, for "change since the previous run".
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousReport {
    /// The run's id.
    pub run_id: Uuid,
    /// The time its data was taken as of.
    pub as_of: DateTime<Utc>,
    /// Its report (JSON).
    pub report: serde_json::Value,
}

/// Where a user's quota for a period comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaSource {
    /// Set through Pandora (`PUT /quotas`).
    Set,
    /// The user's vendor record (`properties.quota` with `quota_period`
    /// `quarter` or `month`), used when none was set for the period.
    Vendor,
}

impl SkillContext {
    /// The quota of `user` for the period labelled `period`: one set through
    /// Pandora for exactly that label; failing that, the vendor's
    /// (`properties.quota` when `properties.quota_period` is `quarter` and
    /// the label is a quarter such as `2026-Q2`, or `month` and the label is
    /// a month such as `2026-05`).
    pub fn quota_of(&self, user: &User, period: &str) -> Option<(Decimal, QuotaSource)> {
        if let Some(q) = self
            .quotas
            .iter()
            .find(|q| q.user_id == user.id && q.period == period)
        {
            return Some((q.amount, QuotaSource::Set));
        }
        let props = &user.fields.properties;
        let kind = props.get("quota_period")?.as_str()?;
        let fits = match kind {
            "quarter" => is_quarter_label(period),
            "month" => is_month_label(period),
            _ => false,
        };
        if !fits {
            return None;
        }
        let amount = match props.get("quota")? {
            serde_json::Value::Number(n) => n.to_string().parse::<Decimal>().ok()?,
            serde_json::Value::String(s) => s.parse::<Decimal>().ok()?,
            _ => return None,
        };
        Some((amount.round_dp(4), QuotaSource::Vendor))
    }

    /// The manager tree of the context's users.
    pub fn org(&self) -> OrgTree {
        OrgTree::new(&self.users)
    }
}

/// `YYYY-Qn`.
fn is_quarter_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && &b[4..6] == b"-Q"
        && (b'1'..=b'4').contains(&b[6])
}

/// `YYYY-MM`.
fn is_month_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..].iter().all(u8::is_ascii_digit)
        && matches!(s[5..].parse::<u32>(), Ok(1..=12))
}

/// The workspace's stage catalog, to categorise a deal's past stages.
#[derive(Debug, Clone, Default)]
pub struct StageCatalog {
    stages: Vec<PipelineStage>,
    /// Pipeline → stage → index (looked up by `&str`, without allocating).
    by_pipeline: BTreeMap<String, BTreeMap<String, usize>>,
    by_stage: BTreeMap<String, usize>,
}

impl StageCatalog {
    /// A catalog of `stages` (as [`RecordStore::list_stages`] orders them;
    /// the first of duplicates wins).
    ///
    /// [`RecordStore::list_stages`]: crate::store::RecordStore::list_stages
    pub fn new(stages: Vec<PipelineStage>) -> Self {
        let mut by_pipeline: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let mut by_stage = BTreeMap::new();
        for (i, s) in stages.iter().enumerate() {
            by_pipeline
                .entry(s.fields.pipeline.clone())
                .or_default()
                .entry(s.fields.stage.clone())
                .or_insert(i);
            by_stage.entry(s.fields.stage.clone()).or_insert(i);
        }
        StageCatalog {
            stages,
            by_pipeline,
            by_stage,
        }
    }

    /// Every stage, in catalog order.
    pub fn all(&self) -> &[PipelineStage] {
        &self.stages
    }

    /// The stage `stage` of `pipeline` (any pipeline when `None`).
    pub fn find(&self, pipeline: Option<&str>, stage: &str) -> Option<&PipelineStage> {
        let i = match pipeline {
            Some(p) => self.by_pipeline.get(p)?.get(stage).copied(),
            None => self.by_stage.get(stage).copied(),
        }?;
        self.stages.get(i)
    }

    /// The stages of `pipeline`, in display order.
    pub fn of_pipeline<'a>(&'a self, pipeline: &'a str) -> impl Iterator<Item = &'a PipelineStage> {
        self.stages
            .iter()
            .filter(move |s| s.fields.pipeline == pipeline)
    }
}

/// One change of a deal field, as a skill reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field.
    pub field: DealField,
    /// When.
    pub at: DateTime<Utc>,
    /// Value before.
    pub old: Option<String>,
    /// Value after.
    pub new: Option<String>,
}

/// A deal's fields at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct DealState {
    /// Stage id.
    pub stage: Option<String>,
    /// Stage category.
    pub stage_category: StageCategory,
    /// Amount.
    pub amount: Option<Decimal>,
    /// Close date.
    pub close_date: Option<NaiveDate>,
    /// Vendor forecast category.
    pub forecast_category: Option<String>,
    /// Vendor id of the owner.
    pub owner_source_id: Option<String>,
}

impl DealState {
    /// The amount, 0 when unset.
    pub fn amount_or_zero(&self) -> Decimal {
        self.amount.unwrap_or_default()
    }

    /// Whether the deal is open.
    pub fn is_open(&self) -> bool {
        self.stage_category == StageCategory::Open
    }
}

/// A deal as a skill sees it: what does not change over time, its state at
/// the context's `as_of`, and its field history up to then.
#[derive(Debug, Clone, PartialEq)]
pub struct SkillDeal {
    /// Pandora id.
    pub id: Uuid,
    /// Source (connector id).
    pub source: String,
    /// The vendor's id.
    pub source_id: String,
    /// Name.
    pub name: String,
    /// Pipeline id.
    pub pipeline: Option<String>,
    /// Currency.
    pub currency: Option<String>,
    /// Vendor id of the account.
    pub account_source_id: Option<String>,
    /// When the deal came to exist (created in the source, else in Pandora).
    pub created_at: DateTime<Utc>,
    /// When the deal was deleted, if at or before `as_of`.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Its fields at `as_of` (as last known, if deleted).
    pub latest: DealState,
    /// Its field changes up to `as_of`, by time (ties by change id).
    pub changes: Vec<FieldChange>,
}

impl SkillDeal {
    /// Whether the deal existed (created, not deleted) at `t`. A deletion
    /// at exactly `t` counts as done.
    pub fn exists_at(&self, t: DateTime<Utc>) -> bool {
        self.created_at <= t && self.deleted_at.is_none_or(|d| d > t)
    }

    /// The deal as it stood at `t` (at or before the context's `as_of`);
    /// `None` when it did not exist then (not created yet, or deleted).
    ///
    /// The same rule as [`deal_as_of`](crate::model::deal_as_of): each
    /// field's value is the new value of its latest change at or before `t`,
    /// else the old value of its first change after `t`, else its value at
    /// `as_of`. A past stage is categorised from the catalog; a stage missing
    /// from it keeps the category it has at `as_of` when it is that stage, and
    /// counts as open otherwise.
    pub fn state_at(&self, t: DateTime<Utc>, stages: &StageCatalog) -> Option<DealState> {
        if !self.exists_at(t) {
            return None;
        }
        self.record_at(t, stages)
    }

    /// Like [`state_at`](Self::state_at), ignoring a deletion: the deal's
    /// last known state for a deleted deal. `None` only before it was created.
    pub fn record_at(&self, t: DateTime<Utc>, stages: &StageCatalog) -> Option<DealState> {
        if self.created_at > t {
            return None;
        }
        // Each field from the change that decides it, else the value at
        // `as_of` (typed, so not printed and parsed again).
        let stage = match self.pick(DealField::Stage, t) {
            Pick::Change(v) => v.map(str::to_owned),
            Pick::Latest => self.latest.stage.clone(),
        };
        let stage_category = self.category_of(stage.as_deref(), stages);
        let amount = match self.pick(DealField::Amount, t) {
            Pick::Change(v) => v.and_then(|v| v.parse().ok()),
            Pick::Latest => self.latest.amount,
        };
        let close_date = match self.pick(DealField::CloseDate, t) {
            Pick::Change(v) => v.and_then(|v| v.parse().ok()),
            Pick::Latest => self.latest.close_date,
        };
        let text = |field: DealField, latest: &Option<String>| match self.pick(field, t) {
            Pick::Change(v) => v.map(str::to_owned),
            Pick::Latest => latest.clone(),
        };
        Some(DealState {
            stage,
            stage_category,
            amount,
            close_date,
            forecast_category: text(DealField::ForecastCategory, &self.latest.forecast_category),
            owner_source_id: text(DealField::Owner, &self.latest.owner_source_id),
        })
    }

    /// The category of the deal's stage at `t` (the stage of
    /// [`state_at`](Self::state_at)`(t)`, categorised the same way), without
    /// building the rest of the state; `None` when it did not exist then.
    pub fn stage_category_at(
        &self,
        t: DateTime<Utc>,
        stages: &StageCatalog,
    ) -> Option<StageCategory> {
        if !self.exists_at(t) {
            return None;
        }
        let stage = match self.pick(DealField::Stage, t) {
            Pick::Change(v) => v,
            Pick::Latest => self.latest.stage.as_deref(),
        };
        Some(self.category_of(stage, stages))
    }

    /// The category of `stage` for this deal: the catalog's; a stage missing
    /// from it keeps the category at `as_of` when it is that stage, and
    /// counts as open otherwise.
    fn category_of(&self, stage: Option<&str>, stages: &StageCatalog) -> StageCategory {
        match stage {
            None => StageCategory::Open,
            Some(s) => match stages.find(self.pipeline.as_deref(), s) {
                Some(st) => st.fields.category,
                None if self.latest.stage.as_deref() == Some(s) => self.latest.stage_category,
                None => StageCategory::Open,
            },
        }
    }

    /// The changes of `field` in `(from, to]`, oldest first.
    pub fn changes_in(
        &self,
        field: DealField,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = &FieldChange> {
        self.changes
            .iter()
            .filter(move |c| c.field == field && c.at > from && c.at <= to)
    }

    /// Which value `field` has at `t`: the new value of its latest change at
    /// or before `t`, else the old value of its first change after `t`, else
    /// the value at `as_of` (changes are ordered by time).
    fn pick(&self, field: DealField, t: DateTime<Utc>) -> Pick<'_> {
        let mut before: Option<&FieldChange> = None;
        for c in self.changes.iter().filter(|c| c.field == field) {
            if c.at <= t {
                before = Some(c);
            } else {
                return Pick::Change(match before {
                    Some(b) => b.new.as_deref(),
                    None => c.old.as_deref(),
                });
            }
        }
        match before {
            Some(b) => Pick::Change(b.new.as_deref()),
            None => Pick::Latest,
        }
    }
}

/// Where a field's value at a time comes from.
enum Pick<'a> {
    /// A change's old or new value.
    Change(Option<&'a str>),
    /// The value at `as_of` (no change of the field).
    Latest,
}

/// The manager tree of a set of users: who reports to whom, by index into
/// the user list. A manager of another source, unknown, or closing a cycle
/// is ignored (the user becomes a root).
#[derive(Debug, Clone)]
pub struct OrgTree {
    /// Each user's manager (index), if any.
    pub manager: Vec<Option<usize>>,
    /// Each user's direct reports (indexes), by user id.
    pub reports: Vec<Vec<usize>>,
    /// Users without a manager, by user id.
    pub roots: Vec<usize>,
    by_key: BTreeMap<(String, String), usize>,
}

impl OrgTree {
    /// The tree of `users` (given sorted by id, children come out sorted by id).
    pub fn new(users: &[User]) -> Self {
        let by_key: BTreeMap<(String, String), usize> = users
            .iter()
            .enumerate()
            .map(|(i, u)| ((u.source.clone(), u.fields.source_id.clone()), i))
            .collect();
        let mut manager: Vec<Option<usize>> = users
            .iter()
            .map(|u| {
                u.fields
                    .manager_source_id
                    .as_ref()
                    .and_then(|m| by_key.get(&(u.source.clone(), m.clone())).copied())
            })
            .collect();
        // Break cycles: walk up from each user; a user met twice closes a
        // cycle, which is cut at the user of the smallest index in it.
        for start in 0..users.len() {
            let mut seen = Vec::new();
            let mut at = Some(start);
            while let Some(i) = at {
                if let Some(pos) = seen.iter().position(|&s| s == i) {
                    let cycle = &seen[pos..];
                    if let Some(&cut) = cycle.iter().min() {
                        manager[cut] = None;
                    }
                    break;
                }
                seen.push(i);
                at = manager[i];
            }
        }
        let mut reports = vec![Vec::new(); users.len()];
        let mut roots = Vec::new();
        for (i, m) in manager.iter().enumerate() {
            match m {
                Some(m) => reports[*m].push(i),
                None => roots.push(i),
            }
        }
        OrgTree {
            manager,
            reports,
            roots,
            by_key,
        }
    }

    /// The index of the user `(source, source_id)`.
    pub fn find(&self, source: &str, source_id: &str) -> Option<usize> {
        self.by_key
            .get(&(source.to_owned(), source_id.to_owned()))
            .copied()
    }

    /// Users in an order where every user comes after all of its reports
    /// (for bottom-up rollups).
    pub fn bottom_up(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.manager.len());
        let mut stack: Vec<(usize, bool)> = self.roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                out.push(i);
            } else {
                stack.push((i, true));
                for &c in self.reports[i].iter().rev() {
                    stack.push((c, false));
                }
            }
        }
        out
    }

    /// The depth of each user (roots are 0).
    pub fn depths(&self) -> Vec<usize> {
        let mut depth = vec![0; self.manager.len()];
        for i in self.bottom_up().into_iter().rev() {
            if let Some(m) = self.manager[i] {
                depth[i] = depth[m] + 1;
            }
        }
        depth
    }
}
