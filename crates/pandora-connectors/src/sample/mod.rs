//! The `sample` source: a deterministic GTM dataset generator.
//!
//! [`SampleGenerator`] turns a [`SampleConfig`] (`{"deals": N, "seed": S}`)
//! and an epoch of a [`SampleClock`] into pages of
//! [`RecordBatch`](pandora_core::batch::RecordBatch)es with source
//! [`SOURCE`]: a full sync at any epoch ([`SampleGenerator::full_sync`]), or
//! what changed in one step of the clock ([`SampleGenerator::changes_since`]).
//! Every page is a pure function of `(config, clock, epoch, page number)` and
//! can be produced alone, so a million deals stream in memory bounded by the
//! page size, and a sync can resume at any page.
//!
//! ```
//! use pandora_connectors::sample::{SampleConfig, SampleGenerator};
//!
//! let config = SampleConfig::from_json(&serde_json::json!({"deals": 200, "seed": 7}))?;
//! let generator = SampleGenerator::new(config)?.with_page_size(1_000);
//! let deals: usize = generator.full_sync(0).map(|page| page.deals.len()).sum();
//! assert_eq!(deals, 200);
//! // The next simulated day: about 1% of deals change, a few are created or deleted.
//! for page in generator.changes_since(0) {
//!     assert_eq!(page.source, "sample");
//! }
//! # Ok::<(), pandora_core::Error>(())
//! ```
//!
//! How the dataset is built — deals' journeys through the pipeline before
//! epoch 0, and the per-epoch "touches" after it — is described in the
//! `deal` module's source; why it is consistent across epochs, on
//! [`SampleGenerator`].

mod config;
mod connector;
mod deal;
mod generator;
mod names;
mod rng;
mod world;

#[cfg(test)]
mod tests;

pub use config::{SampleClock, SampleConfig};
pub use connector::{SampleConnector, STREAM};
pub use generator::{Changes, FullSync, SampleGenerator};

/// The source (connector id) of every record the generator yields.
pub const SOURCE: &str = "sample";
