//! [`SqliteStore`]: opening the database file, migrations, health.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pandora_core::store::StoreHealth;
use pandora_core::{Error, Result};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::checkpoint::Checkpointer;
use crate::errors::db_error;

/// The schema, embedded at build time from `migrations/`.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for another connection's lock before failing busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a free connection before [`Error::Unavailable`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections in the pool: WAL lets readers run beside the one writer.
const MAX_CONNECTIONS: u32 = 8;
/// Page cache per connection, in KiB (SQLite's negative `cache_size`): large
/// enough for a big batch's dirty index pages, so they are not spilled to the
/// WAL before the commit. Filled lazily; at most 8 × 32 MiB for the pool.
const CACHE_KIB: i64 = 32 * 1024;
/// Bytes of the database file read through memory mapping instead of `read()`.
const MMAP_BYTES: u64 = 256 * 1024 * 1024;
/// WAL pages after which a commit checkpoints by itself (64 MiB of 4 KiB
/// pages): a safety net, as the background [`Checkpointer`] normally keeps the
/// WAL far smaller.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16 * 1024;
/// Size the WAL file is truncated to after a checkpoint resets it, in bytes.
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// Pandora's store on an embedded SQLite database file: the default for a
/// single process.
///
/// Cheap to clone; clones share one connection pool. The file is opened in WAL
/// mode (readers never block the writer) with `synchronous=NORMAL`, a 5 s busy
/// timeout and foreign keys enforced on every connection.
///
/// SQLite has one writer at a time. Batches from this process queue on an
/// async lock *before* taking a pool connection (so waiting writers never
/// starve readers of connections), then run in a `BEGIN IMMEDIATE`
/// transaction, which waits on the busy timeout for writers of other
/// processes instead of failing on a lock upgrade. WAL checkpoints run in the
/// background, off the write path.
///
/// ```no_run
/// # async fn demo() -> pandora_core::Result<()> {
/// let store = pandora_store_sqlite::SqliteStore::open("pandora.db").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Held while a batch is written: one batch at a time per store (and its clones).
    batch_writer: Arc<Mutex<()>>,
    checkpointer: Option<Arc<Checkpointer>>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`.
    ///
    /// Does not change the schema: call [`SqliteStore::migrate`] before use.
    /// Fails with [`Error::Unavailable`] naming the path when the file cannot
    /// be opened or created (missing directory, no permission, not a database).
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("cache_size", format!("-{CACHE_KIB}"))
            .pragma("mmap_size", MMAP_BYTES.to_string())
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| {
                tracing::error!(path = %path.display(), error = %e, "cannot open SQLite database");
                Error::unavailable(format!(
                    "cannot open SQLite database at {}: {}",
                    path.display(),
                    open_failure(&e)
                ))
            })?;
        tracing::debug!(path = %path.display(), "SQLite database opened");
        let checkpointer = Checkpointer::start(&pool).map(Arc::new);
        Ok(SqliteStore {
            pool,
            batch_writer: Arc::default(),
            checkpointer,
        })
    }

    /// Wraps an existing pool. The caller is responsible for its options:
    /// foreign keys must be on and a busy timeout set; WAL is recommended.
    /// Checkpoints are left to SQLite's own `wal_autocheckpoint`.
    pub fn from_pool(pool: SqlitePool) -> SqliteStore {
        SqliteStore {
            pool,
            batch_writer: Arc::default(),
            checkpointer: None,
        }
    }

    /// Applies the embedded migrations not applied yet; a no-op when the schema is current.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| {
            tracing::error!(error = %e, "SQLite migration failed");
            Error::internal(format!("migrating the SQLite database failed: {e}"))
        })?;
        tracing::debug!("SQLite schema is current");
        Ok(())
    }

    /// The connection pool, for queries this store does not offer.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for this store's turn to write a batch.
    pub(crate) async fn batch_turn(&self) -> MutexGuard<'_, ()> {
        self.batch_writer.lock().await
    }

    /// Tells the background checkpointer that a batch was committed.
    pub(crate) fn wal_grew(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.request();
        }
    }

    /// Closes every connection (waiting for those in use); later calls fail
    /// with [`Error::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Why opening failed, in words safe to show (the SQLite message, or the I/O error).
fn open_failure(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out".to_owned(),
        other => other.to_string(),
    }
}

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
