//! Jobs: the units of background work (syncs now, skills later) that workers
//! claim from the store's queue.
//!
//! A job executes one run: a sync job's id *is* the id of the [`SyncRun`]
//! it executes (created together, in one transaction), so a run's history and
//! its job's attempts are one thing seen from two sides.
//!
//! [`SyncRun`]: crate::model::SyncRun

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::RunStatus;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Runs a connector's sync (the job id is the sync run's id).
    Sync,
    /// Runs a skill (the job id is the skill run's id).
    Skill,
    /// Sends a webhook delivery (the job id is the delivery's id).
    Webhook,
}

impl JobKind {
    /// The stable string stored in the database (`"sync"`, `"skill"`, `"webhook"`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::Skill => "skill",
            JobKind::Webhook => "webhook",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sync" => JobKind::Sync,
            "skill" => JobKind::Skill,
            "webhook" => JobKind::Webhook,
            _ => return None,
        })
    }
}

/// A job in the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    /// Job id; also the id of the run it executes.
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// What the job does.
    pub kind: JobKind,
    /// The connection a sync job syncs.
    pub connection_id: Option<Uuid>,
    /// Kind-specific parameters (JSON object; e.g. a skill's period).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
    /// `queued` (waiting, or waiting to be retried), `running` (claimed by a
    /// worker holding a lease), then `succeeded`, `failed` or `cancelled`.
    pub status: RunStatus,
    /// Claims so far (the first run is attempt 1).
    pub attempts: u32,
    /// Claims allowed before the job stays failed.
    pub max_attempts: u32,
    /// Not claimed before this time (backoff after a failure).
    pub run_after: DateTime<Utc>,
    /// While running: the worker's lease ends here; past it, another worker
    /// may claim the job again (its worker is presumed dead).
    pub lease_until: Option<DateTime<Utc>>,
    /// The worker that holds (or last held) the job.
    pub worker: Option<String>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Key that at most one job of the workspace ever holds (the
    /// scheduler's `sync:<connection>:<slot>`), so replicas never enqueue a
    /// slot twice.
    pub dedupe_key: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What is needed to enqueue a [`Job`] (its id, workspace and connection come
/// from the run it executes).
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Kind-specific parameters (JSON object).
    pub payload: serde_json::Value,
    /// Claims allowed before the job stays failed (at least 1).
    pub max_attempts: u32,
    /// Not claimed before this time.
    pub run_after: DateTime<Utc>,
    /// See [`Job::dedupe_key`].
    pub dedupe_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_match_serde() {
        for k in [JobKind::Sync, JobKind::Skill, JobKind::Webhook] {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(JobKind::parse("export"), None);
    }
}
