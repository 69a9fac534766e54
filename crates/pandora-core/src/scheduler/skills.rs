//! Scheduled skill runs: each skill runs in each workspace on its cron
//! schedule (the skill's default, or the workspace's own; see
//! [`Pandora::put_skill_schedule`]).
//!
//! A tick looks, per workspace and skill, at the schedule's latest slot at or
//! before now (the last time the cron fired). The slot's run is enqueued with
//! the dedupe key `skill:<skill>:<slot unix seconds>`, which the store keeps
//! unique per workspace, so replicas ticking at once enqueue it once. It is
//! enqueued only:
//! - when the slot is less than [`CATCH_UP`] old (a deployment down for a
//!   week does not replay it; it runs the latest slot once);
//! - when the workspace has synced at least once (no data, no report);
//! - once the workspace's syncs are done: while any of its connections has a
//!   sync queued or running, the run waits (the sync scheduler runs first in
//!   the same tick, so a sync due in this slot is queued by then), for at
//!   most [`MAX_SYNC_WAIT`] after the slot.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::facade::SkillRunRequest;
use crate::query::{PageRequest, MAX_LIMIT};
use crate::skill::cron::Cron;
use crate::Pandora;

/// Oldest slot a tick still enqueues.
pub const CATCH_UP: Duration = Duration::from_secs(24 * 3600);

/// Longest a slot's run waits for the workspace's syncs.
pub const MAX_SYNC_WAIT: Duration = Duration::from_secs(3600);

/// What one [`schedule_skills`] tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SkillScheduleReport {
    /// Workspaces looked at.
    pub workspaces: u64,
    /// Runs enqueued by this tick.
    pub enqueued: u64,
    /// Skipped: the slot's run was already enqueued (by this or another replica).
    pub slot_taken: u64,
    /// Skipped: the workspace turned the schedule off.
    pub disabled: u64,
    /// Skipped: no slot within [`CATCH_UP`].
    pub not_due: u64,
    /// Skipped: the workspace has never synced.
    pub no_data: u64,
    /// Deferred: a sync of the workspace is queued or running.
    pub waiting_for_sync: u64,
}

/// The dedupe key of a skill's slot.
pub fn skill_slot_key(skill: &str, slot: DateTime<Utc>) -> String {
    format!("skill:{skill}:{}", slot.timestamp())
}

/// The slot a tick at `now` would run for `cron`: its latest firing at or
/// before `now`, when less than [`CATCH_UP`] old.
pub fn due_slot(cron: &Cron, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let slot = cron.latest_at_or_before(now)?;
    let age = now.signed_duration_since(slot).to_std().ok()?;
    (age < CATCH_UP).then_some(slot)
}

/// One tick at `now`: enqueues every due scheduled skill run of every
/// workspace (see the module docs). A workspace whose schedules cannot be
/// read is logged and skipped.
pub async fn schedule_skills(pandora: &Pandora, now: DateTime<Utc>) -> Result<SkillScheduleReport> {
    let store = pandora.store();
    let mut report = SkillScheduleReport::default();
    let mut page = PageRequest::first(MAX_LIMIT);
    loop {
        let workspaces = store.list_workspaces(&page).await?;
        for ws in &workspaces.data {
            report.workspaces += 1;
            if let Err(e) = schedule_workspace(pandora, ws.id, now, &mut report).await {
                tracing::warn!(workspace_id = %ws.id, error = %e, "skill scheduling skipped a workspace");
            }
        }
        match workspaces.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    if report.enqueued > 0 {
        tracing::info!(enqueued = report.enqueued, "scheduled skill runs enqueued");
    }
    Ok(report)
}

/// Whether the workspace has synced, and whether a sync of it is active:
/// read once per workspace, when a slot needs it.
struct SyncState {
    synced: bool,
    syncing: bool,
}

async fn schedule_workspace(
    pandora: &Pandora,
    workspace: uuid::Uuid,
    now: DateTime<Utc>,
    report: &mut SkillScheduleReport,
) -> Result<()> {
    let store = pandora.store();
    let overrides = store.list_skill_schedules(workspace).await?;
    let mut sync_state: Option<SyncState> = None;
    for info in pandora.skills().infos() {
        let custom = overrides.iter().find(|o| o.skill == info.id);
        if custom.is_some_and(|o| !o.enabled) {
            report.disabled += 1;
            continue;
        }
        let expression = custom
            .and_then(|o| o.cron.as_deref())
            .unwrap_or(info.default_schedule);
        let cron = match Cron::parse(expression) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(workspace_id = %workspace, skill = info.id, error = %e, "invalid skill schedule skipped");
                report.not_due += 1;
                continue;
            }
        };
        let Some(slot) = due_slot(&cron, now) else {
            report.not_due += 1;
            continue;
        };
        let key = skill_slot_key(info.id, slot);
        if store.job_key_taken(workspace, &key).await? {
            report.slot_taken += 1;
            continue;
        }
        let state = match &sync_state {
            Some(s) => s,
            None => sync_state.insert(read_sync_state(pandora, workspace).await?),
        };
        if !state.synced {
            report.no_data += 1;
            continue;
        }
        let waited = now.signed_duration_since(slot).to_std().unwrap_or_default();
        if state.syncing && waited < MAX_SYNC_WAIT {
            report.waiting_for_sync += 1;
            continue;
        }
        let request = SkillRunRequest::default();
        match pandora
            .enqueue_skill_job(workspace, info.id, &request, Some(key))
            .await?
        {
            (_, true) => report.enqueued += 1,
            (_, false) => report.slot_taken += 1,
        }
    }
    Ok(())
}

async fn read_sync_state(pandora: &Pandora, workspace: uuid::Uuid) -> Result<SyncState> {
    let store = pandora.store();
    let connections = store.list_connections(workspace).await?;
    let mut state = SyncState {
        synced: connections.iter().any(|c| c.last_sync_at.is_some()),
        syncing: false,
    };
    for c in &connections {
        if store.active_sync_run(workspace, c.id).await?.is_some() {
            state.syncing = true;
            break;
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_slot_is_due_for_a_day_then_skipped() {
        let cron = Cron::parse("0 7 * * *").expect("cron");
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        assert_eq!(due_slot(&cron, at(25, 7, 0)), Some(at(25, 7, 0)));
        assert_eq!(due_slot(&cron, at(25, 9, 30)), Some(at(25, 7, 0)));
        assert_eq!(due_slot(&cron, at(26, 6, 59)), Some(at(25, 7, 0)));
        // Monthly: the slot of the 1st is stale by the 3rd.
        let monthly = Cron::parse("0 7 1 * *").expect("cron");
        assert_eq!(due_slot(&monthly, at(3, 7, 0)), None);
        assert_eq!(
            skill_slot_key("deal_risk", at(25, 7, 0)),
            format!("skill:deal_risk:{}", at(25, 7, 0).timestamp())
        );
    }
}
