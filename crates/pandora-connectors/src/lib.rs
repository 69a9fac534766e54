//! # pandora-connectors
//!
//! Pandora's connectors: one folder per source under `src/<vendor>/`.
//!
//! * [`sample`] — a deterministic, realistic GTM dataset (reps, accounts,
//!   contacts, a pipeline, deals with field history, deal–contact roles and
//!   calls) at any size from 100 to 1,000,000 deals, evolving one simulated
//!   day per incremental sync. The demo and benchmark source; it needs no
//!   credentials.

pub mod sample;

use pandora_core::connector::ConnectorRegistry;

/// Every connector this crate provides, ready for
/// [`PandoraBuilder::connectors`](pandora_core::PandoraBuilder::connectors).
pub fn all() -> ConnectorRegistry {
    ConnectorRegistry::new().with(sample::SampleConnector)
}
