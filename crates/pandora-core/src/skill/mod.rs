//! The `Skill` trait: analytics over a workspace's data as of a time.
//!
//! A skill describes itself ([`SkillInfo`]: id, display name, default
//! schedule, settings schema with defaults) and runs
//! ([`Skill::run`]): given a [`SkillContext`] — the workspace's deals rebuilt
//! from their field history, stages, users with their manager tree and
//! quotas, contacts, deal–contact roles and conversations, all *as of* one
//! time, plus the period and the settings — it returns a [`SkillReport`].
//!
//! A skill is a pure function of its context: it reads no store, no clock and
//! no randomness, and its output never depends on hash-map iteration order,
//! so the same context gives the same report, byte for byte. The
//! [`loader`] builds a context from a store in bounded pages; the facade
//! (`Pandora::run_skill`) records each run as a
//! [`SkillRun`](crate::model::SkillRun).
//!
//! Skills live in the `pandora-skills` crate, one file each, and are offered
//! through a [`SkillRegistry`] (`pandora_skills::all()`), which also carries
//! the [`PeriodCalendar`] that turns labels such as `2026-Q2` into periods.

mod context;
pub mod cron;
pub mod loader;
mod report;
mod settings;
mod store;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use context::{
    DealState, FieldChange, OrgTree, PreviousReport, QuotaSource, SkillContext, SkillDeal,
    StageCatalog,
};
pub use report::{money, DealEvidence, DealRiskUpdate, Explained, ExplainedBuilder, SkillReport};
pub use settings::{SettingKind, SettingSpec, Settings};
pub use store::{check_new_quotas, check_new_skill_run, ScannedDeal, SkillStore};

use crate::error::{Error, Result};

/// What a skill is: shown by `GET /api/skills`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillInfo {
    /// Stable id, e.g. `"pipeline_waterfall"`.
    pub id: &'static str,
    /// Display name.
    pub display_name: &'static str,
    /// One sentence on what the skill answers.
    pub description: &'static str,
    /// When the skill runs by default: a cron expression (minute hour
    /// day-of-month month day-of-week), in UTC.
    pub default_schedule: &'static str,
    /// The settings a workspace may change, with their types, bounds and defaults.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub settings: Vec<SettingSpec>,
    /// Which optional inputs the loader must provide.
    pub inputs: SkillInputs,
}

/// The optional parts of a [`SkillContext`] a skill reads. Deals with their
/// history, stages, users and quotas are always loaded; contacts, roles and
/// conversations only when asked for (they cost time at scale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillInputs {
    /// Contacts and deal–contact roles.
    pub contacts: bool,
    /// Conversations.
    pub conversations: bool,
}

/// An analytics skill: a pure function from a [`SkillContext`] to a [`SkillReport`].
pub trait Skill: Send + Sync {
    /// What the skill is.
    fn info(&self) -> SkillInfo;

    /// Computes the report. Must be deterministic: no store, no clock, no
    /// randomness, no hash-map iteration order in the output. An error fails
    /// the run (e.g. [`Error::InvalidInput`] on `period` for a period the
    /// skill cannot answer).
    fn run(&self, ctx: &SkillContext) -> Result<SkillReport>;
}

/// A period of time a skill reports on: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Period {
    /// Canonical label, e.g. `2026-Q2`, `2026-05` or `2026-04-01..2026-06-30`.
    pub label: String,
    /// First instant of the period.
    pub start: DateTime<Utc>,
    /// First instant after the period.
    pub end: DateTime<Utc>,
}

impl Period {
    /// The first calendar day (UTC) of the period.
    pub fn first_day(&self) -> NaiveDate {
        self.start.date_naive()
    }

    /// The last calendar day (UTC) of the period.
    pub fn last_day(&self) -> NaiveDate {
        (self.end - chrono::Duration::microseconds(1)).date_naive()
    }

    /// Whether `day` falls in the period (a close date "in the window").
    pub fn contains_day(&self, day: NaiveDate) -> bool {
        self.first_day() <= day && day <= self.last_day()
    }

    /// Whether `t` falls in `[start, end)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// Turns period labels into [`Period`]s (quarters, months, explicit ranges…).
/// `pandora_skills::period::Calendar` is the deployment's.
pub trait PeriodCalendar: Send + Sync {
    /// Parses a label; [`Error::InvalidInput`] on `period` when it is not one.
    fn parse(&self, label: &str) -> Result<Period>;
    /// The default period of a run as of `at` (e.g. its quarter).
    fn containing(&self, at: DateTime<Utc>) -> Period;
}

/// The skills a deployment offers, by id, and its period calendar.
#[derive(Clone, Default)]
pub struct SkillRegistry {
    skills: BTreeMap<&'static str, Arc<dyn Skill>>,
    calendar: Option<Arc<dyn PeriodCalendar>>,
}

impl std::fmt::Debug for SkillRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.skills.keys()).finish()
    }
}

impl SkillRegistry {
    /// An empty registry (no skills, no calendar).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a skill under its id.
    pub fn with(mut self, skill: impl Skill + 'static) -> Self {
        let id = skill.info().id;
        self.skills.insert(id, Arc::new(skill));
        self
    }

    /// Sets the period calendar.
    pub fn calendar(mut self, calendar: impl PeriodCalendar + 'static) -> Self {
        self.calendar = Some(Arc::new(calendar));
        self
    }

    /// The skill with this id; [`Error::NotFound`] listing the known ones.
    pub fn get(&self, id: &str) -> Result<Arc<dyn Skill>> {
        self.skills.get(id).cloned().ok_or_else(|| {
            Error::not_found("skill", format!("{id} (known: {})", self.ids().join(", ")))
        })
    }

    /// Every skill id, sorted.
    pub fn ids(&self) -> Vec<&'static str> {
        self.skills.keys().copied().collect()
    }

    /// Every skill's description, by id.
    pub fn infos(&self) -> Vec<SkillInfo> {
        self.skills.values().map(|s| s.info()).collect()
    }

    /// Parses a period label with the calendar ([`Error::InvalidInput`] on
    /// `period` when it is not a period, or when there is no calendar).
    pub fn parse_period(&self, label: &str) -> Result<Period> {
        match &self.calendar {
            Some(c) => c.parse(label),
            None => Err(Error::invalid(
                "period",
                "cannot be parsed: this deployment has no period calendar",
            )),
        }
    }

    /// The default period as of `at`: the calendar's, or, without a
    /// calendar, the calendar quarter (UTC) holding `at`.
    pub fn default_period(&self, at: DateTime<Utc>) -> Period {
        match &self.calendar {
            Some(c) => c.containing(at),
            None => utc_quarter(at),
        }
    }
}

/// The calendar quarter (UTC) holding `at`, labelled like `2026-Q2`.
fn utc_quarter(at: DateTime<Utc>) -> Period {
    use chrono::Datelike;
    let d = at.date_naive();
    let q = (d.month0() / 3) + 1;
    let first = |y: i32, m: u32| {
        NaiveDate::from_ymd_opt(y, m, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .unwrap_or(at)
    };
    let start = first(d.year(), (q - 1) * 3 + 1);
    let end = if q == 4 {
        first(d.year() + 1, 1)
    } else {
        first(d.year(), q * 3 + 1)
    };
    Period {
        label: format!("{}-Q{q}", d.year()),
        start,
        end,
    }
}
