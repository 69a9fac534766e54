//! # pandora-store-sqlite
//!
//! Pandora's embedded store: every store trait of
//! [`pandora_core::store`] on one SQLite database file, through `sqlx`. The
//! default for a single process; the PostgreSQL store is for several.
//!
//! ```no_run
//! use pandora_core::Pandora;
//! use pandora_store_sqlite::SqliteStore;
//!
//! # async fn demo() -> pandora_core::Result<()> {
//! let store = SqliteStore::open("pandora.db").await?;
//! store.migrate().await?;
//! let pandora = Pandora::builder().store(store).build()?;
//! # let _ = pandora; Ok(()) }
//! ```
//!
//! The schema (`migrations/`) is the PostgreSQL store's, in SQLite dialect:
//! ids are 16-byte BLOBs, timestamps INTEGER microseconds since the epoch,
//! amounts INTEGER `amount_e4` (amount × 10⁴), dates TEXT `YYYY-MM-DD`.
//! `docs/store-contract.md` describes the behaviour every store shares.

mod checkpoint;
mod codec;
mod connections;
mod deals;
mod errors;
mod jobs;
mod oauth;
mod paging;
mod records;
mod skills;
mod store;
mod sync_runs;
mod webhooks;
mod workspaces;
mod write;

pub use store::SqliteStore;
