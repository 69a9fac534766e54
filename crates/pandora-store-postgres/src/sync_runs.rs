//! [`SyncRunStore`] for [`PgStore`]: sync-run records and the
//! one-active-run-per-connection rule.
//!
//! The rule is the partial unique index `sync_runs_one_active_idx`
//! (migration 003): a concurrent second insert for the same connection waits
//! for the first to commit, then fails with a unique violation, whichever
//! process or replica made it; the store then looks up the run that holds the
//! slot and names it in the [`Error::Conflict`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::model::{self, RunStatus, StreamCounts, SyncRun, WorkspaceId};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::store::{
    active_run_conflict, check_finish_status, check_new_sync_run, SyncRunStore,
};
use pandora_core::{Error, Result};
use sqlx::types::Json;
use sqlx::{Executor, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::errors::{is_foreign_key_violation, is_unique_violation, map_db_error, DbResultExt};
use crate::keyset::{self, After, SortValue};
use crate::rows::{self, SYNC_RUN_COLUMNS};
use crate::PgStore;

#[async_trait]
impl SyncRunStore for PgStore {
    async fn create_sync_run(&self, workspace: WorkspaceId, run: &SyncRun) -> Result<()> {
        check_new_sync_run(workspace, run)?;
        for _ in 0..CREATE_ATTEMPTS {
            let e = match insert_run(&self.pool, run).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(error) = run_insert_error(&self.pool, run, e).await {
                return Err(error);
            }
            // The run that held the slot finished meanwhile: try again.
        }
        Err(Error::unavailable(
            "the connection's sync runs keep changing; retry",
        ))
    }

    async fn start_sync_run(
        &self,
        workspace: WorkspaceId,
        run_id: Uuid,
        started_at: DateTime<Utc>,
    ) -> Result<SyncRun> {
        let row = sqlx::query(&format!(
            "UPDATE sync_runs SET status = 'running', started_at = $3 \
             WHERE workspace_id = $1 AND id = $2 AND status = 'queued' \
             RETURNING {SYNC_RUN_COLUMNS}"
        ))
        .bind(workspace)
        .bind(run_id)
        .bind(started_at)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        match row {
            Some(row) => rows::sync_run(&row),
            None => {
                let run = self.get_sync_run(workspace, run_id).await?;
                Err(Error::conflict(format!(
                    "sync run {run_id} is {}, not queued",
                    run.status.as_str()
                )))
            }
        }
    }

    async fn finish_sync_run(
        &self,
        workspace: WorkspaceId,
        run_id: Uuid,
        status: RunStatus,
        counts: &BTreeMap<String, StreamCounts>,
        error: Option<String>,
        finished_at: DateTime<Utc>,
    ) -> Result<SyncRun> {
        check_finish_status(status)?;
        let mut tx = self.pool.begin().await.db()?;
        let ended = end_active_run(
            &mut tx,
            workspace,
            run_id,
            status,
            Some(counts),
            error.as_deref(),
            finished_at,
        )
        .await?;
        let Some(run) = ended else {
            drop(tx);
            let run = self.get_sync_run(workspace, run_id).await?;
            return Err(Error::conflict(format!(
                "sync run {run_id} is already {}",
                run.status.as_str()
            )));
        };
        tx.commit().await.db()?;
        Ok(run)
    }

    async fn get_sync_run(&self, workspace: WorkspaceId, run_id: Uuid) -> Result<SyncRun> {
        find_run(&self.pool, workspace, run_id)
            .await?
            .ok_or_else(|| Error::not_found("sync run", run_id))
    }

    async fn list_sync_runs(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<SyncRun>> {
        keyset::require_updated_at(page)?;
        let after = keyset::after(page)?;
        ensure_connection(&self.pool, workspace, connection_id).await?;
        let direction = page.sort.direction;
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {SYNC_RUN_COLUMNS} FROM sync_runs r WHERE r.workspace_id = "
        ));
        qb.push_bind(workspace)
            .push(" AND r.connection_id = ")
            .push_bind(connection_id);
        if let Some(After::Value(SortValue::Timestamp(t), id)) = after {
            keyset::push_after_value(
                &mut qb,
                "r",
                "created_at",
                direction,
                SortValue::Timestamp(t),
                id,
            );
        }
        qb.push(" ORDER BY ")
            .push(keyset::order_by("r", "created_at", false, direction))
            .push(keyset::limit_sql(page));
        let fetched = qb.build().fetch_all(&self.pool).await.db()?;
        let runs = fetched
            .iter()
            .map(rows::sync_run)
            .collect::<Result<Vec<_>>>()?;
        let sort = page.sort;
        Ok(Page::from_rows(runs, page.limit, |r| {
            Cursor::after_sync_run(r, sort)
        }))
    }

    async fn active_sync_run(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
    ) -> Result<Option<SyncRun>> {
        ensure_connection(&self.pool, workspace, connection_id).await?;
        find_active(&self.pool, workspace, connection_id).await
    }
}

/// Attempts at inserting a run when the active run that blocked it finishes
/// before it can be named (also the job queue's enqueue).
pub(crate) const CREATE_ATTEMPTS: u32 = 3;

/// Inserts a new run (checked by [`check_new_sync_run`]) in its workspace. A
/// run created running started when it was created, unless told otherwise.
pub(crate) async fn insert_run<'c, E>(executor: E, run: &SyncRun) -> sqlx::Result<()>
where
    E: Executor<'c, Database = Postgres>,
{
    let started_at = match run.status {
        RunStatus::Running => Some(run.started_at.unwrap_or(run.created_at)),
        _ => run.started_at,
    };
    sqlx::query(
        "INSERT INTO sync_runs (workspace_id, id, connection_id, mode, status, counts, \
             error, created_at, started_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, NULL)",
    )
    .bind(run.workspace_id)
    .bind(run.id)
    .bind(run.connection_id)
    .bind(run.mode.as_str())
    .bind(run.status.as_str())
    .bind(Json(&run.counts))
    .bind(run.created_at)
    .bind(started_at)
    .execute(executor)
    .await
    .map(|_| ())
}

/// What [`insert_run`] failing with `e` means, looked up once its transaction
/// is over: the connection is not the workspace's → `NotFound`; the run id
/// exists → `Conflict`; another run is active → [`active_run_conflict`]
/// naming it. `None` when the active run that refused the insert has finished
/// meanwhile (try again).
pub(crate) async fn run_insert_error(
    pool: &PgPool,
    run: &SyncRun,
    e: sqlx::Error,
) -> Option<Error> {
    let workspace = run.workspace_id;
    if is_foreign_key_violation(&e) {
        return Some(Error::not_found("connection", run.connection_id));
    }
    if !is_unique_violation(&e) {
        return Some(map_db_error(e, Some(workspace)));
    }
    match find_run(pool, workspace, run.id).await {
        Ok(Some(_)) => {
            return Some(Error::conflict(format!(
                "sync run {} already exists",
                run.id
            )))
        }
        Ok(None) => {}
        Err(e) => return Some(e),
    }
    match find_active(pool, workspace, run.connection_id).await {
        Ok(Some(active)) => {
            tracing::debug!(
                workspace_id = %workspace,
                connection_id = %run.connection_id,
                active_run = %active.id,
                "a sync run is already active"
            );
            Some(active_run_conflict(active.id))
        }
        Ok(None) => None,
        Err(e) => Some(e),
    }
}

/// Ends run `run_id` of `workspace` with `status` (a finished status) if it
/// is queued or running, in the caller's transaction, and records the outcome
/// on its connection: succeeded → `last_sync_at = finished_at`, `last_error`
/// cleared; failed → `last_error = error` (a default message when none),
/// `last_sync_at` untouched; cancelled → neither. `counts` replaces the run's
/// counts when given. `None` (and nothing changed) when the run is not active
/// or not there.
///
/// The one implementation of what a finished run does, shared by
/// [`SyncRunStore::finish_sync_run`] and the job queue.
pub(crate) async fn end_active_run(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    run_id: Uuid,
    status: RunStatus,
    counts: Option<&BTreeMap<String, StreamCounts>>,
    error: Option<&str>,
    finished_at: DateTime<Utc>,
) -> Result<Option<SyncRun>> {
    let row = sqlx::query(&format!(
        "UPDATE sync_runs SET status = $3, counts = COALESCE($4, counts), error = $5, \
             finished_at = $6 \
         WHERE workspace_id = $1 AND id = $2 AND status IN ('queued', 'running') \
         RETURNING {SYNC_RUN_COLUMNS}"
    ))
    .bind(workspace)
    .bind(run_id)
    .bind(status.as_str())
    .bind(counts.map(Json))
    .bind(error)
    .bind(finished_at)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let run = rows::sync_run(&row)?;
    let now = model::now();
    match status {
        RunStatus::Succeeded => {
            sqlx::query(
                "UPDATE connections SET last_sync_at = $3, last_error = NULL, \
                 updated_at = GREATEST(updated_at, $4) WHERE workspace_id = $1 AND id = $2",
            )
            .bind(workspace)
            .bind(run.connection_id)
            .bind(finished_at)
            .bind(now)
            .execute(&mut *conn)
            .await
            .db()?;
        }
        RunStatus::Failed => {
            sqlx::query(
                "UPDATE connections SET last_error = $3, \
                 updated_at = GREATEST(updated_at, $4) WHERE workspace_id = $1 AND id = $2",
            )
            .bind(workspace)
            .bind(run.connection_id)
            .bind(error.unwrap_or("sync failed"))
            .bind(now)
            .execute(&mut *conn)
            .await
            .db()?;
        }
        _ => {}
    }
    Ok(Some(run))
}

/// Fails with [`Error::NotFound`] unless `connection_id` is a connection of `workspace`.
pub(crate) async fn ensure_connection<'c, E>(
    executor: E,
    workspace: WorkspaceId,
    connection_id: Uuid,
) -> Result<()>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query("SELECT 1 FROM connections WHERE workspace_id = $1 AND id = $2")
        .bind(workspace)
        .bind(connection_id)
        .fetch_optional(executor)
        .await
        .db()?
        .map(|_| ())
        .ok_or_else(|| Error::not_found("connection", connection_id))
}

/// The run `run_id` of `workspace`, if any.
async fn find_run<'c, E>(
    executor: E,
    workspace: WorkspaceId,
    run_id: Uuid,
) -> Result<Option<SyncRun>>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query(&format!(
        "SELECT {SYNC_RUN_COLUMNS} FROM sync_runs WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace)
    .bind(run_id)
    .fetch_optional(executor)
    .await
    .db()?
    .as_ref()
    .map(rows::sync_run)
    .transpose()
}

/// The queued or running run of a connection, if any (read through the
/// partial unique index).
async fn find_active<'c, E>(
    executor: E,
    workspace: WorkspaceId,
    connection_id: Uuid,
) -> Result<Option<SyncRun>>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query(&format!(
        "SELECT {SYNC_RUN_COLUMNS} FROM sync_runs \
         WHERE workspace_id = $1 AND connection_id = $2 AND status IN ('queued', 'running')"
    ))
    .bind(workspace)
    .bind(connection_id)
    .fetch_optional(executor)
    .await
    .db()?
    .as_ref()
    .map(rows::sync_run)
    .transpose()
}
