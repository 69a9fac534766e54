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
use sqlx::{Executor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::errors::{is_foreign_key_violation, is_unique_violation, map_db_error, DbResultExt};
use crate::keyset::{self, After, SortValue};
use crate::rows::{self, SYNC_RUN_COLUMNS};
use crate::PgStore;

/// Attempts at inserting a run when the active run that blocked it finishes
/// before it can be named.
const CREATE_ATTEMPTS: u32 = 3;

#[async_trait]
impl SyncRunStore for PgStore {
    async fn create_sync_run(&self, workspace: WorkspaceId, run: &SyncRun) -> Result<()> {
        check_new_sync_run(workspace, run)?;
        // A run created running started when it was created, unless told otherwise.
        let started_at = match run.status {
            RunStatus::Running => Some(run.started_at.unwrap_or(run.created_at)),
            _ => run.started_at,
        };
        for _ in 0..CREATE_ATTEMPTS {
            let inserted = sqlx::query(
                "INSERT INTO sync_runs (workspace_id, id, connection_id, mode, status, counts, \
                     error, created_at, started_at, finished_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, NULL)",
            )
            .bind(workspace)
            .bind(run.id)
            .bind(run.connection_id)
            .bind(run.mode.as_str())
            .bind(run.status.as_str())
            .bind(Json(&run.counts))
            .bind(run.created_at)
            .bind(started_at)
            .execute(&self.pool)
            .await;
            let e = match inserted {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if is_foreign_key_violation(&e) {
                return Err(Error::not_found("connection", run.connection_id));
            }
            if !is_unique_violation(&e) {
                return Err(map_db_error(e, Some(workspace)));
            }
            if find_run(&self.pool, workspace, run.id).await?.is_some() {
                return Err(Error::conflict(format!(
                    "sync run {} already exists",
                    run.id
                )));
            }
            if let Some(active) = find_active(&self.pool, workspace, run.connection_id).await? {
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
        let row = sqlx::query(&format!(
            "UPDATE sync_runs SET status = $3, counts = $4, error = $5, finished_at = $6 \
             WHERE workspace_id = $1 AND id = $2 AND status IN ('queued', 'running') \
             RETURNING {SYNC_RUN_COLUMNS}"
        ))
        .bind(workspace)
        .bind(run_id)
        .bind(status.as_str())
        .bind(Json(counts))
        .bind(error.as_deref())
        .bind(finished_at)
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let Some(row) = row else {
            drop(tx);
            let run = self.get_sync_run(workspace, run_id).await?;
            return Err(Error::conflict(format!(
                "sync run {run_id} is already {}",
                run.status.as_str()
            )));
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
                .execute(&mut *tx)
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
                .bind(error.as_deref().unwrap_or("sync failed"))
                .bind(now)
                .execute(&mut *tx)
                .await
                .db()?;
            }
            _ => {}
        }
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

/// Fails with [`Error::NotFound`] unless `connection_id` is a connection of `workspace`.
async fn ensure_connection<'c, E>(
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
