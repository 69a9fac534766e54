//! [`SyncRunStore`]: sync-run records and the one-active-run-per-connection rule.
//!
//! The rule is the partial unique index `sync_runs_one_active` (migration
//! 003): a second queued or running run of a connection fails to insert,
//! whichever connection or process inserts it; the store then looks up the
//! run that holds the slot and names it in the [`Error::Conflict`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::model::{self, RunStatus, StreamCounts, SyncMode, SyncRun, WorkspaceId};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::store::{
    active_run_conflict, check_finish_status, check_new_sync_run, SyncRunStore,
};
use pandora_core::{Error, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{Executor, QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::codec::time_to_sql;
use crate::codec::{col, id_from_sql, id_to_sql, json_from_sql, opt_time_from_sql, time_from_sql};
use crate::connections::ensure_connection;
use crate::errors::{db_error, db_error_in, is_foreign_key_violation, is_unique_violation};
use crate::paging::UpdatedPage;
use crate::SqliteStore;

/// Columns a sync-run query selects, as [`run_from_row`] reads them.
pub(crate) const RUN_COLUMNS: &str =
    "workspace_id, id, connection_id, mode, status, counts, error, \
                           created_at, started_at, finished_at";

#[async_trait]
impl SyncRunStore for SqliteStore {
    async fn create_sync_run(&self, workspace: WorkspaceId, run: &SyncRun) -> Result<()> {
        check_new_sync_run(workspace, run)?;
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        for _ in 0..CREATE_ATTEMPTS {
            let e = match insert_run(&mut conn, run).await? {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(error) = run_insert_error(&mut conn, run, e).await {
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
            "UPDATE sync_runs SET status = 'running', started_at = ? \
             WHERE workspace_id = ? AND id = ? AND status = 'queued' RETURNING {RUN_COLUMNS}"
        ))
        .bind(time_to_sql(started_at))
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(run_id))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        match row {
            Some(row) => run_from_row(&row),
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
        // The first statement writes, so the transaction takes the write lock
        // (waiting on the busy timeout) before it reads anything.
        let mut tx = self.pool().begin().await.map_err(db_error)?;
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
        tx.commit().await.map_err(db_error)?;
        Ok(run)
    }

    async fn get_sync_run(&self, workspace: WorkspaceId, run_id: Uuid) -> Result<SyncRun> {
        find_run(self.pool(), workspace, run_id)
            .await?
            .ok_or_else(|| Error::not_found("sync run", run_id))
    }

    async fn list_sync_runs(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<SyncRun>> {
        let request = UpdatedPage::parse(page)?;
        ensure_connection(self.pool(), workspace, connection_id).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE workspace_id = "
        ));
        qb.push_bind(id_to_sql(workspace));
        qb.push(" AND connection_id = ");
        qb.push_bind(id_to_sql(connection_id));
        request.push_tail_on(&mut qb, "created_at", "id");
        let rows = qb.build().fetch_all(self.pool()).await.map_err(db_error)?;
        let runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(runs, page.limit, |r| {
            Cursor::after_sync_run(r, page.sort)
        }))
    }

    async fn active_sync_run(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
    ) -> Result<Option<SyncRun>> {
        ensure_connection(self.pool(), workspace, connection_id).await?;
        find_active(self.pool(), workspace, connection_id).await
    }
}

/// Attempts at inserting a run when the active run that blocked it finishes
/// before it can be named.
const CREATE_ATTEMPTS: u32 = 3;

/// Inserts a new run (checked by [`check_new_sync_run`]) in its workspace. A
/// run created running started when it was created, unless told otherwise.
///
/// The outer error is one that is not the insert's (encoding); the inner one
/// is the database's answer to the insert, for [`run_insert_error`].
pub(crate) async fn insert_run(
    conn: &mut SqliteConnection,
    run: &SyncRun,
) -> Result<std::result::Result<(), sqlx::Error>> {
    let counts = serde_json::to_string(&run.counts)?;
    let started_at = match run.status {
        RunStatus::Running => Some(run.started_at.unwrap_or(run.created_at)),
        _ => run.started_at,
    };
    Ok(sqlx::query(&format!(
        "INSERT INTO sync_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)"
    ))
    .bind(id_to_sql(run.workspace_id))
    .bind(id_to_sql(run.id))
    .bind(id_to_sql(run.connection_id))
    .bind(run.mode.as_str())
    .bind(run.status.as_str())
    .bind(&counts)
    .bind(time_to_sql(run.created_at))
    .bind(started_at.map(time_to_sql))
    .execute(conn)
    .await
    .map(|_| ()))
}

/// What [`insert_run`] failing with `e` means (looked up on `conn`, in the
/// same transaction if there is one): the connection is not the workspace's
/// → `NotFound`; the run id exists → `Conflict`; another run is active →
/// [`active_run_conflict`] naming it. `None` when no run holds the slot any
/// more (it finished meanwhile: try again).
pub(crate) async fn run_insert_error(
    conn: &mut SqliteConnection,
    run: &SyncRun,
    e: sqlx::Error,
) -> Option<Error> {
    let workspace = run.workspace_id;
    if is_foreign_key_violation(&e) {
        return Some(Error::not_found("connection", run.connection_id));
    }
    if !is_unique_violation(&e) {
        return Some(db_error_in(workspace)(e));
    }
    match find_run(&mut *conn, workspace, run.id).await {
        Ok(Some(_)) => {
            return Some(Error::conflict(format!(
                "sync run {} already exists",
                run.id
            )))
        }
        Ok(None) => {}
        Err(e) => return Some(e),
    }
    match find_active(&mut *conn, workspace, run.connection_id).await {
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
/// is queued or running, on `conn` (in the caller's transaction), and records
/// the outcome on its connection: succeeded → `last_sync_at = finished_at`,
/// `last_error` cleared; failed → `last_error = error` (a default message
/// when none), `last_sync_at` untouched; cancelled → neither. `counts`
/// replaces the run's counts when given. `None` (and nothing changed) when
/// the run is not active or not there.
///
/// The one implementation of what a finished run does, shared by
/// [`SyncRunStore::finish_sync_run`] and the job queue.
pub(crate) async fn end_active_run(
    conn: &mut SqliteConnection,
    workspace: WorkspaceId,
    run_id: Uuid,
    status: RunStatus,
    counts: Option<&BTreeMap<String, StreamCounts>>,
    error: Option<&str>,
    finished_at: DateTime<Utc>,
) -> Result<Option<SyncRun>> {
    let ws = id_to_sql(workspace);
    let finished = time_to_sql(finished_at);
    let counts = counts.map(serde_json::to_string).transpose()?;
    let row = sqlx::query(&format!(
        "UPDATE sync_runs SET status = ?, counts = coalesce(?, counts), error = ?, \
             finished_at = ? \
         WHERE workspace_id = ? AND id = ? AND status IN ('queued', 'running') \
         RETURNING {RUN_COLUMNS}"
    ))
    .bind(status.as_str())
    .bind(counts)
    .bind(error)
    .bind(finished)
    .bind(&ws)
    .bind(id_to_sql(run_id))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let run = run_from_row(&row)?;
    let now = time_to_sql(model::now());
    match status {
        RunStatus::Succeeded => {
            sqlx::query(
                "UPDATE connections SET last_sync_at = ?, last_error = NULL, \
                 updated_at = max(updated_at, ?) WHERE workspace_id = ? AND id = ?",
            )
            .bind(finished)
            .bind(now)
            .bind(&ws)
            .bind(id_to_sql(run.connection_id))
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        }
        RunStatus::Failed => {
            sqlx::query(
                "UPDATE connections SET last_error = ?, updated_at = max(updated_at, ?) \
                 WHERE workspace_id = ? AND id = ?",
            )
            .bind(error.unwrap_or("sync failed"))
            .bind(now)
            .bind(&ws)
            .bind(id_to_sql(run.connection_id))
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        }
        _ => {}
    }
    Ok(Some(run))
}

/// The run `run_id` of `workspace`, if any.
async fn find_run<'c, E>(
    executor: E,
    workspace: WorkspaceId,
    run_id: Uuid,
) -> Result<Option<SyncRun>>
where
    E: Executor<'c, Database = Sqlite>,
{
    sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs WHERE workspace_id = ? AND id = ?"
    ))
    .bind(id_to_sql(workspace))
    .bind(id_to_sql(run_id))
    .fetch_optional(executor)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(run_from_row)
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
    E: Executor<'c, Database = Sqlite>,
{
    sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs \
         WHERE workspace_id = ? AND connection_id = ? AND status IN ('queued', 'running')"
    ))
    .bind(id_to_sql(workspace))
    .bind(id_to_sql(connection_id))
    .fetch_optional(executor)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(run_from_row)
    .transpose()
}

/// A `sync_runs` row.
pub(crate) fn run_from_row(row: &SqliteRow) -> Result<SyncRun> {
    let mode: &str = col(row, "mode")?;
    let mode = SyncMode::parse(mode).ok_or_else(|| {
        tracing::error!(mode, "unknown sync mode in the database");
        Error::internal("stored sync_runs.mode is not a known mode")
    })?;
    let status: &str = col(row, "status")?;
    let status = RunStatus::parse(status).ok_or_else(|| {
        tracing::error!(status, "unknown run status in the database");
        Error::internal("stored sync_runs.status is not a known status")
    })?;
    Ok(SyncRun {
        id: id_from_sql(col(row, "id")?, "sync_runs.id")?,
        workspace_id: id_from_sql(col(row, "workspace_id")?, "sync_runs.workspace_id")?,
        connection_id: id_from_sql(col(row, "connection_id")?, "sync_runs.connection_id")?,
        mode,
        status,
        counts: json_from_sql(col(row, "counts")?, "sync_runs.counts")?,
        error: col(row, "error")?,
        created_at: time_from_sql(col(row, "created_at")?, "sync_runs.created_at")?,
        started_at: opt_time_from_sql(col(row, "started_at")?, "sync_runs.started_at")?,
        finished_at: opt_time_from_sql(col(row, "finished_at")?, "sync_runs.finished_at")?,
    })
}
