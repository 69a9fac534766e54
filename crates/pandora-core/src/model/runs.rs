//! Records of sync and skill runs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether a sync reads everything or only what changed since the last cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Read everything.
    Full,
    /// Resume from the stored cursors.
    Incremental,
}

impl SyncMode {
    /// The stable string stored in the database (`"full"`, `"incremental"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Incremental => "incremental",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "full" => SyncMode::Full,
            "incremental" => SyncMode::Incremental,
            _ => return None,
        })
    }
}

/// State of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// Being worked on.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl RunStatus {
    /// The stable string stored in the database (`"queued"`, `"running"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether the run is waiting or being worked on (at most one such sync
    /// run per connection).
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// Whether the run is over (succeeded, failed or cancelled).
    pub fn is_finished(self) -> bool {
        !self.is_active()
    }
}

/// Per-stream write counts of a sync run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamCounts {
    /// New rows.
    pub inserted: u64,
    /// Changed rows.
    pub updated: u64,
    /// Rows delivered again without change.
    pub unchanged: u64,
    /// Rows soft-deleted.
    pub deleted: u64,
}

impl StreamCounts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: StreamCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.deleted += other.deleted;
    }
}

/// One run of a connector's sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRun {
    /// Run id.
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Connection synced.
    pub connection_id: Uuid,
    /// Full or incremental.
    pub mode: SyncMode,
    /// State.
    pub status: RunStatus,
    /// Per-stream counts.
    pub counts: BTreeMap<String, StreamCounts>,
    /// Error, when failed.
    pub error: Option<String>,
    /// When the run was queued.
    pub created_at: DateTime<Utc>,
    /// When a worker started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One run of a skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillRun {
    /// Run id.
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Skill id.
    pub skill: String,
    /// Period label the run covers (e.g. `2026-Q2`).
    pub period: Option<String>,
    /// Start of the period (inclusive).
    pub period_start: Option<DateTime<Utc>>,
    /// End of the period (exclusive).
    pub period_end: Option<DateTime<Utc>>,
    /// The time the data was taken as of: the skill saw the workspace as it
    /// stood then.
    pub as_of: DateTime<Utc>,
    /// Settings used (every setting, defaults included).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    /// State.
    pub status: RunStatus,
    /// The report (JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub report: Option<serde_json::Value>,
    /// Error, when failed.
    pub error: Option<String>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_strings_round_trip_and_match_serde() {
        for s in [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ] {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::json!(s.as_str())
            );
            assert_eq!(s.is_active(), !s.is_finished());
        }
        for m in [SyncMode::Full, SyncMode::Incremental] {
            assert_eq!(SyncMode::parse(m.as_str()), Some(m));
            assert_eq!(
                serde_json::to_value(m).expect("json"),
                serde_json::json!(m.as_str())
            );
        }
        assert_eq!(RunStatus::parse("done"), None);
        assert_eq!(SyncMode::parse("partial"), None);
    }
}
