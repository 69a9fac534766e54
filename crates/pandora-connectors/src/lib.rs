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
