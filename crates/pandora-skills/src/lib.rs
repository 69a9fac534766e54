//! # pandora-skills
//!
//! Pandora's analytics skills, one file each, and the deployment's registry
//! ([`all`]). A skill is a pure function of a
//! [`SkillContext`](pandora_core::skill::SkillContext): the workspace's data
//! as of a time, the period and the settings (see
//! [`pandora_core::skill`]). The definitions are in `docs/skills.md`.
//!
//! ```
//! let skills = pandora_skills::all();
//! assert!(skills.ids().contains(&"pipeline_waterfall"));
//! assert_eq!(skills.parse_period("2026-q2")?.label, "2026-Q2");
//! # Ok::<(), pandora_core::Error>(())
//! ```
//!
//! Adding a skill: a file here implementing
//! [`Skill`](pandora_core::skill::Skill), a `mod` line, and a `.with(…)`
//! line in [`all`]. No core file changes.

pub mod deal_risk;
pub mod engagement;
pub mod forecast_rollup;
pub mod period;
pub mod pipeline_waterfall;
pub mod rep_scorecard;
pub mod single_thread_alert;

pub use deal_risk::DealRisk;
pub use forecast_rollup::ForecastRollup;
pub use pipeline_waterfall::PipelineWaterfall;
pub use rep_scorecard::RepScorecard;
pub use single_thread_alert::SingleThreadAlert;

use pandora_core::skill::SkillRegistry;

/// Every skill this crate offers, with the calendar of [`period`].
pub fn all() -> SkillRegistry {
    SkillRegistry::new()
        .calendar(period::Calendar)
        .with(PipelineWaterfall)
        .with(ForecastRollup)
        .with(SingleThreadAlert)
        .with(DealRisk)
        .with(RepScorecard)
}
