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
use sqlx::{Executor, QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::codec::time_to_sql;
use crate::codec::{col, id_from_sql, id_to_sql, json_from_sql, opt_time_from_sql, time_from_sql};
use crate::connections::ensure_connection;
use crate::errors::{db_error, db_error_in, is_foreign_key_violation, is_unique_violation};
use crate::paging::UpdatedPage;
use crate::SqliteStore;

const RUN_COLUMNS: &str = "workspace_id, id, connection_id, mode, status, counts, error, \
                           created_at, started_at, finished_at";

/// Attempts at inserting a run when the active run that blocked it finishes
/// before it can be named.
const CREATE_ATTEMPTS: u32 = 3;

#[async_trait]
impl SyncRunStore for SqliteStore {
    async fn create_sync_run(&self, workspace: WorkspaceId, run: &SyncRun) -> Result<()> {
        check_new_sync_run(workspace, run)?;
        let counts = serde_json::to_string(&run.counts)?;
        // A run created running started when it was created, unless told otherwise.
        let started_at = match run.status {
            RunStatus::Running => Some(run.started_at.unwrap_or(run.created_at)),
            _ => run.started_at,
        };
        for _ in 0..CREATE_ATTEMPTS {
            let inserted = sqlx::query(&format!(
                "INSERT INTO sync_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)"
            ))
            .bind(id_to_sql(workspace))
            .bind(id_to_sql(run.id))
            .bind(id_to_sql(run.connection_id))
            .bind(run.mode.as_str())
            .bind(run.status.as_str())
            .bind(&counts)
            .bind(time_to_sql(run.created_at))
            .bind(started_at.map(time_to_sql))
            .execute(self.pool())
            .await;
            let e = match inserted {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if is_foreign_key_violation(&e) {
                return Err(Error::not_found("connection", run.connection_id));
            }
            if !is_unique_violation(&e) {
                return Err(db_error_in(workspace)(e));
            }
            if find_run(self.pool(), workspace, run.id).await?.is_some() {
                return Err(Error::conflict(format!(
                    "sync run {} already exists",
                    run.id
                )));
            }
            if let Some(active) = find_active(self.pool(), workspace, run.connection_id).await? {
                tracing::debug!(
                    workspace_id = %workspace,
                    connection_id = %run.connection_id,
                    active_run = %active.id,
                    "a sync run is already active"
                );
                return Err(active_run_conflict(active.id));
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
        let ws = id_to_sql(workspace);
        let finished = time_to_sql(finished_at);
        // The first statement writes, so the transaction takes the write lock
        // (waiting on the busy timeout) before it reads anything.
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        let row = sqlx::query(&format!(
            "UPDATE sync_runs SET status = ?, counts = ?, error = ?, finished_at = ? \
             WHERE workspace_id = ? AND id = ? AND status IN ('queued', 'running') \
             RETURNING {RUN_COLUMNS}"
        ))
        .bind(status.as_str())
        .bind(serde_json::to_string(counts)?)
        .bind(error.as_deref())
        .bind(finished)
        .bind(&ws)
        .bind(id_to_sql(run_id))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            drop(tx);
            let run = self.get_sync_run(workspace, run_id).await?;
            return Err(Error::conflict(format!(
                "sync run {run_id} is already {}",
                run.status.as_str()
            )));
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
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            RunStatus::Failed => {
                sqlx::query(
                    "UPDATE connections SET last_error = ?, updated_at = max(updated_at, ?) \
                     WHERE workspace_id = ? AND id = ?",
                )
                .bind(error.as_deref().unwrap_or("sync failed"))
                .bind(now)
                .bind(&ws)
                .bind(id_to_sql(run.connection_id))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            _ => {}
        }
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

fn run_from_row(row: &SqliteRow) -> Result<SyncRun> {
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
