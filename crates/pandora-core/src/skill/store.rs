//! [`SkillStore`]: skill runs, per-workspace skill settings, quotas, and the
//! bounded scans the context loader reads a workspace through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::DealRiskUpdate;
use crate::error::{Error, Result};
use crate::model::{
    Conversation, DealChange, DealContact, NewDeal, NewQuota, Quota, RunStatus, SkillRun,
    SkillScheduleOverride, WorkspaceId,
};
use crate::query::{Page, PageRequest};

/// A deal as the loader scans it: its fields, the metadata that says when it
/// existed, and its whole field history (by time, ties by id).
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedDeal {
    /// Pandora id.
    pub id: Uuid,
    /// Source (connector id).
    pub source: String,
    /// The deal as last delivered.
    pub fields: NewDeal,
    /// When Pandora first stored it.
    pub created_at: DateTime<Utc>,
    /// When it was soft-deleted, if it is.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Its field history, oldest first (ties by id).
    pub changes: Vec<DealChange>,
}

/// Persistence of skills: runs, settings, quotas, and scans of a workspace's
/// data in keyset pages (so a context of a million deals loads in bounded
/// queries). See `docs/store-contract.md`.
#[async_trait]
pub trait SkillStore: Send + Sync {
    /// Stores a new run, `queued` or `running` (`run.workspace_id` must be
    /// `workspace`; else [`Error::InvalidInput`] on `workspace_id` or
    /// `status`). [`Error::NotFound`] for a missing workspace;
    /// [`Error::Conflict`] when the id is taken.
    async fn create_skill_run(&self, workspace: WorkspaceId, run: &SkillRun) -> Result<()>;

    /// Ends a queued or running run with `status` (`succeeded`, `failed` or
    /// `cancelled`), its report and error, and returns it.
    /// [`Error::NotFound`] when the workspace has no such run;
    /// [`Error::Conflict`] when it is already finished;
    /// [`Error::InvalidInput`] (field `status`) for a status that is not final.
    async fn finish_skill_run(
        &self,
        workspace: WorkspaceId,
        run_id: Uuid,
        status: RunStatus,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        finished_at: DateTime<Utc>,
    ) -> Result<SkillRun>;

    /// One run of the workspace ([`Error::NotFound`] otherwise).
    async fn get_skill_run(&self, workspace: WorkspaceId, run_id: Uuid) -> Result<SkillRun>;

    /// A skill's runs, newest first: ordered by `(started_at, id)` in
    /// `page.sort.direction` (descending by default), keyset-paginated with
    /// [`Cursor::after_updated`](crate::query::Cursor::after_updated) over
    /// `(started_at, id)`; only the `updated_at` sort key is accepted (it
    /// stands for `started_at`).
    async fn list_skill_runs(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        page: &PageRequest,
    ) -> Result<Page<SkillRun>>;

    /// The skill's latest succeeded run — of the period labelled `period`
    /// when given — by `(started_at, id)`, if any.
    async fn latest_skill_run(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        period: Option<&str>,
    ) -> Result<Option<SkillRun>>;

    /// The workspace's stored settings of a skill (a JSON object), if any.
    async fn get_skill_settings(
        &self,
        workspace: WorkspaceId,
        skill: &str,
    ) -> Result<Option<serde_json::Value>>;

    /// Replaces the workspace's stored settings of a skill.
    /// [`Error::NotFound`] for a missing workspace.
    async fn put_skill_settings(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        settings: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Writes a deal-risk run's scores on the workspace's deals: each
    /// deal's `risk_score` (what `min_risk` and `sort=risk` read) and the
    /// risk score and reasons inside its computed fields. Deals of another
    /// workspace, unknown ids and deals without computed fields are left
    /// alone. Returns how many deals changed.
    async fn set_deal_risk(
        &self,
        workspace: WorkspaceId,
        updates: &[DealRiskUpdate],
    ) -> Result<u64>;

    /// Stores the workspace's schedule of a skill (replacing any).
    /// [`Error::NotFound`] for a missing workspace.
    async fn put_skill_schedule(
        &self,
        workspace: WorkspaceId,
        schedule: &SkillScheduleOverride,
    ) -> Result<()>;

    /// The workspace's schedule overrides, ordered by skill.
    async fn list_skill_schedules(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<SkillScheduleOverride>>;

    /// Sets quotas, in one transaction: each row replaces the quota of its
    /// `(user, period)`. Returns the stored rows, in the order given. A user
    /// id that is not one of the workspace's users fails the whole call with
    /// [`Error::InvalidInput`] on `quotas[i].user_id`; an amount that does
    /// not fit, on `quotas[i].amount`.
    async fn put_quotas(
        &self,
        workspace: WorkspaceId,
        quotas: &[NewQuota],
        now: DateTime<Utc>,
    ) -> Result<Vec<Quota>>;

    /// The workspace's quotas (of one period when given), ordered by
    /// `(period, user_id)`.
    async fn list_quotas(&self, workspace: WorkspaceId, period: Option<&str>)
        -> Result<Vec<Quota>>;

    /// Deals of the workspace (soft-deleted ones included) with their field
    /// history, ordered by id, strictly after `after`, at most `limit`.
    async fn scan_deals(
        &self,
        workspace: WorkspaceId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ScannedDeal>>;

    /// Live deal–contact roles, ordered by id, strictly after `after`, at most `limit`.
    async fn scan_deal_contacts(
        &self,
        workspace: WorkspaceId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DealContact>>;

    /// Live conversations, ordered by id, strictly after `after`, at most `limit`.
    async fn scan_conversations(
        &self,
        workspace: WorkspaceId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;
}

/// Checks the arguments of [`SkillStore::create_skill_run`] that need no
/// database (shared by the stores).
pub fn check_new_skill_run(workspace: WorkspaceId, run: &SkillRun) -> Result<()> {
    if run.workspace_id != workspace {
        return Err(Error::invalid(
            "workspace_id",
            "the run must belong to the workspace it is created in",
        ));
    }
    if !run.status.is_active() {
        return Err(Error::invalid(
            "status",
            "a new skill run must be queued or running",
        ));
    }
    if run.skill.trim().is_empty() {
        return Err(Error::invalid("skill", "must not be empty"));
    }
    Ok(())
}

/// Checks the rows of [`SkillStore::put_quotas`] that need no database:
/// non-empty period, amount not negative, at most one row per `(user, period)`.
pub fn check_new_quotas(quotas: &[NewQuota]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, q) in quotas.iter().enumerate() {
        if q.period.trim().is_empty() {
            return Err(Error::invalid(
                format!("quotas[{i}].period"),
                "must not be empty",
            ));
        }
        if q.amount.is_sign_negative() && !q.amount.is_zero() {
            return Err(Error::invalid(
                format!("quotas[{i}].amount"),
                "must not be negative",
            ));
        }
        if !seen.insert((q.user_id, q.period.clone())) {
            return Err(Error::invalid(
                format!("quotas[{i}]"),
                "repeats the user and period of an earlier row",
            ));
        }
    }
    Ok(())
}
