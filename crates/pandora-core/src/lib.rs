//! # pandora-core
//!
//! Pandora's domain model, the traits every part implements ([`store::Store`]
//! and, in later layers, connectors, skills and the credential vault), and the
//! [`Pandora`] facade that composes them.
//!
//! This crate knows no SQL, no HTTP framework and no vendor.
//!
//! ```no_run
//! # async fn demo(store: impl pandora_core::store::Store + 'static) -> pandora_core::Result<()> {
//! use pandora_core::{Pandora, model::NewWorkspace};
//! let pandora = Pandora::builder().store(store).build()?;
//! let created = pandora
//!     .create_workspace(NewWorkspace { name: "Acme".into(), ..Default::default() })
//!     .await?;
//! println!("workspace {}", created.workspace.id);
//! # Ok(()) }
//! ```

pub mod auth;
pub mod batch;
pub mod computed;
pub mod connector;
pub mod error;
pub mod facade;
pub mod model;
pub mod oauth;
pub mod query;
pub mod recompute;
pub mod risk;
pub mod scheduler;
pub mod skill;
pub mod store;
pub mod sync;
pub mod vault;
pub mod worker;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
pub use facade::{CreatedApiKey, CreatedWorkspace, Pandora, PandoraBuilder};
