//! A workspace's schedule of a skill: when the scheduler runs it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a workspace changed about a skill's schedule (a skill it never
/// changed runs on its default schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillScheduleOverride {
    /// The skill.
    pub skill: String,
    /// Its cron expression (five fields, UTC); `None`: the skill's default.
    pub cron: Option<String>,
    /// `false`: the scheduler does not run the skill in this workspace.
    pub enabled: bool,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}
