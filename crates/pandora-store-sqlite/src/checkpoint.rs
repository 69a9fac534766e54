//! WAL checkpoints in the background.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a *checkpoint*
//! copies them back into the database file and syncs it. By default SQLite
//! checkpoints inside the commit that pushes the WAL past 1,000 pages, so a
//! large batch pays for copying and syncing its pages before `write_batch`
//! returns (about half of its time). Here a background task runs a `PASSIVE`
//! checkpoint (which never blocks readers or the writer) shortly after batches
//! commit, on its own pool connection, while the next batch is written.
//!
//! The connections keep a higher `wal_autocheckpoint` as a safety net, so the
//! WAL stays bounded if this task cannot keep up or is not running (no Tokio
//! runtime, runtime shut down).

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::Notify;

/// Shortest pause between two background checkpoints (requests in between are coalesced).
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How often the task checks whether its store is gone.
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);

/// Handle of the background checkpoint task: dropping every handle stops it.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    wake: Arc<Notify>,
}

impl Checkpointer {
    /// Starts the task on the current Tokio runtime; `None` outside of one.
    pub(crate) fn start(pool: &SqlitePool) -> Option<Checkpointer> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let wake = Arc::new(Notify::new());
        runtime.spawn(run(pool.clone(), Arc::downgrade(&wake)));
        Some(Checkpointer { wake })
    }

    /// Asks for a checkpoint soon (after a batch committed).
    pub(crate) fn request(&self) {
        self.wake.notify_one();
    }
}

async fn run(pool: SqlitePool, wake: Weak<Notify>) {
    // Ends when every store handle is gone (the Notify is dropped) or the pool is closed.
    while let Some(notify) = wake.upgrade() {
        let requested = tokio::time::timeout(LIVENESS_INTERVAL, notify.notified())
            .await
            .is_ok();
        drop(notify);
        if pool.is_closed() {
            break;
        }
        if requested {
            checkpoint(&pool).await;
            tokio::time::sleep(MIN_INTERVAL).await;
        }
    }
    tracing::trace!("SQLite checkpoint task stopped");
}

async fn checkpoint(pool: &SqlitePool) {
    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await
    {
        Ok((busy, wal_frames, checkpointed)) => {
            tracing::trace!(busy, wal_frames, checkpointed, "WAL checkpoint")
        }
        // Not fatal: the next request (or SQLite's own autocheckpoint) retries.
        Err(e) => tracing::debug!(error = %e, "background WAL checkpoint failed"),
    }
}
