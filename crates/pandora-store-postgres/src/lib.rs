//! # pandora-store-postgres
//!
//! The PostgreSQL implementation of Pandora's [`Store`](pandora_core::store::Store)
//! traits, on [`sqlx`].
//!
//! ```no_run
//! # async fn demo() -> pandora_core::Result<()> {
//! use pandora_store_postgres::PgStore;
//! let store = PgStore::connect("postgres://pandora@localhost/pandora").await?;
//! store.migrate().await?; // idempotent; safe when several replicas start at once
//! # Ok(()) }
//! ```
//!
//! Semantics follow `docs/store-contract.md`: every query is scoped by
//! workspace, records are upserted on `(workspace, source, source_id)` with
//! set-based SQL and counted as inserted / updated / unchanged by content
//! hash, lists use keyset pagination with NULLs last.
//!
//! With the feature `testing`, `testing` starts a throwaway PostgreSQL server
//! for tests and benchmarks.

mod connections;
mod deals;
mod errors;
mod jobs;
mod keyset;
mod oauth;
mod records;
mod rows;
mod skill_scan;
mod skills;
mod sync_runs;
mod webhooks;
mod workspaces;
mod write;

#[cfg(feature = "testing")]
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use pandora_core::store::StoreHealth;
use pandora_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::errors::DbResultExt;

/// The schema migrations, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections a pool made by [`PgStore::connect`] keeps at most.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How long [`PgStore::connect`] and later queries wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`StoreHealth::ping`] waits for an answer.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Pandora's store on PostgreSQL. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opts = self.pool.connect_options();
        f.debug_struct("PgStore")
            .field("host", &opts.get_host())
            .field("port", &opts.get_port())
            .field("database", &opts.get_database())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`).
    ///
    /// Opens one connection right away so that a wrong address or password
    /// fails here, with an [`Error::Unavailable`] naming the host (never the
    /// password). Does not migrate: call [`PgStore::migrate`].
    pub async fn connect(url: &str) -> Result<PgStore> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Like [`PgStore::connect`], with a pool of at most `max_connections`.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<PgStore> {
        let invalid = || {
            Error::invalid(
                "database_url",
                "is not a valid PostgreSQL URL (expected postgres://user:password@host:port/database)",
            )
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid());
        }
        let options = PgConnectOptions::from_str(url).map_err(|_| invalid())?;
        let options = options.application_name("pandora");
        let target = describe_target(&options);

        // One direct connection first: the pool would retry a refused
        // connection until its timeout and then only say "timed out".
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await;
        match probe {
            Ok(Ok(conn)) => {
                if let Err(e) = conn.close().await {
                    tracing::debug!(error = %e, "closing the probe connection failed");
                }
            }
            Ok(Err(e)) => return Err(connect_error(&target, &e)),
            Err(_) => {
                return Err(Error::unavailable(format!(
                    "cannot connect to PostgreSQL at {target}: timed out after {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        }

        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        tracing::info!(%target, "connected to PostgreSQL");
        Ok(PgStore { pool })
    }

    /// Wraps an existing pool (e.g. one configured by the embedder).
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore { pool }
    }

    /// Applies the pending schema migrations. Idempotent; sqlx takes an
    /// advisory lock, so replicas starting together are safe.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => errors::map_db_error(e, None),
            other => {
                tracing::error!(error = %other, "PostgreSQL migration failed");
                Error::internal(format!("database migration failed: {other}"))
            }
        })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `host:port/database` of a connection target, for messages.
fn describe_target(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    )
}

/// An [`Error::Unavailable`] explaining why connecting to `target` failed.
fn connect_error(target: &str, e: &sqlx::Error) -> Error {
    let reason = match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::PoolTimedOut => "timed out".to_string(),
        sqlx::Error::Configuration(c) => format!("configuration: {c}"),
        sqlx::Error::Protocol(p) => format!("protocol: {p}"),
        _ => "connection failed".to_string(),
    };
    tracing::warn!(%target, %reason, "cannot connect to PostgreSQL");
    Error::unavailable(format!(
        "cannot connect to PostgreSQL at {target}: {reason}"
    ))
}

#[async_trait]
impl StoreHealth for PgStore {
    async fn ping(&self) -> Result<()> {
        let query = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(PING_TIMEOUT, query).await {
            Ok(done) => done.db().map(|_| ()),
            Err(_) => Err(Error::unavailable(format!(
                "the database did not answer within {}s",
                PING_TIMEOUT.as_secs()
            ))),
        }
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
