//! [`JobStore`]: the job queue (migration 005).
//!
//! Every call that reads before it writes (enqueue, claim, finish, retry,
//! cancel, purge) takes this store's writer turn, then runs in a
//! `BEGIN IMMEDIATE` transaction: SQLite has one writer, so a claim's read of
//! the next due job and its update are atomic, and two claimers — in this
//! process or another — never take the same job.
//!
//! * **Enqueue**: the job (`INSERT … ON CONFLICT (workspace_id, dedupe_key)
//!   DO NOTHING`: a taken slot inserts nothing → `Ok(false)`), then its sync
//!   run (the one-active-run index of migration 003).
//! * **Claim**: the first job by `(run_after, id)` over the partial index
//!   `jobs_claim` (unfinished jobs only) that is queued and due or running
//!   with an expired lease. A job whose lease expired after its last attempt
//!   is failed (job and run) and the claim goes on to the next.
//! * **Fencing**: renew, finish and retry change a job only `WHERE id = … AND
//!   worker = … AND status = 'running'`, so a worker that lost its job changes
//!   nothing. Worker names must therefore be unique per worker.
//!
//! Every time comes from the caller (`now`, `lease_until`, `retry_at`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::batch::RecordKind;
use pandora_core::model::{
    self, Connection, Job, JobKind, NewJob, RunStatus, SkillRun, StreamCounts, SyncRun, WorkspaceId,
};
use pandora_core::store::{
    check_finish_status, check_new_skill_job, check_new_sync_job, lease_end, lost_worker_error,
    JobStore,
};
use pandora_core::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::codec::{
    col, id_from_sql, id_to_sql, json_from_sql, opt_id_from_sql, opt_time_from_sql, time_from_sql,
    time_to_sql,
};
use crate::connections::{connection_from_row, ensure_connection, CONNECTION_COLUMNS};
use crate::errors::{db_error, db_error_in, is_foreign_key_violation, is_unique_violation};
use crate::skills::{end_skill_run, insert_skill_run, SkillRunEnd};
use crate::sync_runs::{end_active_run, insert_run, run_insert_error};
use crate::SqliteStore;

/// Columns a job query selects, as [`job_from_row`] reads them.
const JOB_COLUMNS: &str = "workspace_id, id, kind, connection_id, payload, status, attempts, \
     max_attempts, run_after, lease_until, worker, last_error, dedupe_key, created_at, updated_at";

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue_sync(&self, run: &SyncRun, job: &NewJob) -> Result<bool> {
        check_new_sync_job(run, job)?;
        let _turn = self.batch_turn().await;
        let mut tx = Immediate::begin(self.pool()).await?;
        let new = QueuedJob {
            workspace: run.workspace_id,
            id: run.id,
            kind: JobKind::Sync,
            connection: Some(run.connection_id),
            created_at: run.created_at,
        };
        if !insert_job(tx.conn(), &new, job).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        match insert_run(tx.conn(), run).await? {
            Ok(()) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(e) => {
                // Looked up in the same transaction: the slot cannot free meanwhile.
                let error = run_insert_error(tx.conn(), run, e)
                    .await
                    .unwrap_or_else(|| Error::internal("inserting the sync run failed"));
                tx.rollback().await?;
                Err(error)
            }
        }
    }

    async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<Job>> {
        let lease_until = time_to_sql(lease_end(now, lease)?);
        let now_sql = time_to_sql(now);
        let _turn = self.batch_turn().await;
        let mut tx = Immediate::begin(self.pool()).await?;
        loop {
            let candidate = sqlx::query(
                "SELECT workspace_id, id, kind, status, attempts, max_attempts FROM jobs \
                 WHERE status IN ('queued', 'running') AND run_after <= ?1 \
                   AND (status = 'queued' OR lease_until < ?1) \
                 ORDER BY run_after, id LIMIT 1",
            )
            .bind(now_sql)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_error)?;
            let Some(candidate) = candidate else {
                // Commits the lost jobs failed on the way, if any.
                tx.commit().await?;
                return Ok(None);
            };
            let workspace = id_from_sql(col(&candidate, "workspace_id")?, "jobs.workspace_id")?;
            let id = id_from_sql(col(&candidate, "id")?, "jobs.id")?;
            let kind = parse_kind(&candidate)?;
            let status: String = col(&candidate, "status")?;
            let attempts: i64 = col(&candidate, "attempts")?;
            let max_attempts: i64 = col(&candidate, "max_attempts")?;

            if status == RunStatus::Running.as_str() && attempts >= max_attempts {
                let error = lost_worker_error(u32::try_from(attempts).unwrap_or(0));
                fail_lost_job(tx.conn(), workspace, id, kind, &error, now).await?;
                continue;
            }

            let row = sqlx::query(&format!(
                "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, \
                     attempts = attempts + 1, updated_at = ? \
                 WHERE workspace_id = ? AND id = ? RETURNING {JOB_COLUMNS}"
            ))
            .bind(worker)
            .bind(lease_until)
            .bind(now_sql)
            .bind(id_to_sql(workspace))
            .bind(id_to_sql(id))
            .fetch_one(tx.conn())
            .await
            .map_err(db_error)?;
            let job = job_from_row(&row)?;
            if kind == JobKind::Sync {
                sqlx::query(
                    "UPDATE sync_runs SET status = 'running', started_at = ? \
                     WHERE workspace_id = ? AND id = ? AND status = 'queued'",
                )
                .bind(now_sql)
                .bind(id_to_sql(workspace))
                .bind(id_to_sql(id))
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
            } else if kind == JobKind::Skill {
                let live = job.payload.get("live") == Some(&serde_json::Value::Bool(true));
                sqlx::query(
                    "UPDATE skill_runs SET status = 'running', started_at = ?1, \
                         as_of = CASE WHEN ?2 THEN ?1 ELSE as_of END \
                     WHERE workspace_id = ?3 AND id = ?4 AND status = 'queued'",
                )
                .bind(now_sql)
                .bind(live)
                .bind(id_to_sql(workspace))
                .bind(id_to_sql(id))
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
            }
            tx.commit().await?;
            tracing::debug!(
                workspace_id = %workspace,
                job_id = %id,
                worker,
                attempt = job.attempts,
                "job claimed"
            );
            return Ok(Some(job));
        }
    }

    async fn renew_job_lease(
        &self,
        job_id: Uuid,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        // One statement: atomic on its own.
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND status = 'running'",
        )
        .bind(time_to_sql(lease_until))
        .bind(id_to_sql(job_id))
        .bind(worker)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_sync_job(
        &self,
        job_id: Uuid,
        worker: &str,
        status: RunStatus,
        counts: &BTreeMap<String, StreamCounts>,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<SyncRun>> {
        check_finish_status(status)?;
        // The job keeps the error of its last failed attempt when it succeeds.
        let job_error = match status {
            RunStatus::Succeeded => None,
            _ => error.as_deref(),
        };
        let _turn = self.batch_turn().await;
        let mut tx = Immediate::begin(self.pool()).await?;
        let Some((workspace, kind)) =
            end_held_job(tx.conn(), job_id, worker, status, job_error, now).await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        if kind != JobKind::Sync {
            return Err(Error::invalid("job_id", "is not a sync job"));
        }
        let run = end_active_run(
            tx.conn(),
            workspace,
            job_id,
            status,
            Some(counts),
            error.as_deref(),
            now,
        )
        .await?
        .ok_or_else(|| run_not_active(job_id))?;
        tx.commit().await?;
        Ok(Some(run))
    }

    async fn retry_job(
        &self,
        job_id: Uuid,
        worker: &str,
        error: &str,
        counts: &BTreeMap<String, StreamCounts>,
        retry_at: DateTime<Utc>,
    ) -> Result<bool> {
        let counts = serde_json::to_string(counts)?;
        let _turn = self.batch_turn().await;
        let mut tx = Immediate::begin(self.pool()).await?;
        let held = sqlx::query(
            "UPDATE jobs SET status = 'queued', run_after = ?, lease_until = NULL, \
                 last_error = ?, updated_at = max(updated_at, ?) \
             WHERE id = ? AND worker = ? AND status = 'running' \
             RETURNING workspace_id, kind",
        )
        .bind(time_to_sql(retry_at))
        .bind(error)
        .bind(time_to_sql(model::now()))
        .bind(id_to_sql(job_id))
        .bind(worker)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        let Some(held) = held else {
            tx.rollback().await?;
            return Ok(false);
        };
        let kind = parse_kind(&held)?;
        if kind == JobKind::Skill {
            let workspace: Vec<u8> = col(&held, "workspace_id")?;
            sqlx::query(
                "UPDATE skill_runs SET status = 'queued', error = ? \
                 WHERE workspace_id = ? AND id = ? AND status IN ('queued', 'running')",
            )
            .bind(error)
            .bind(workspace)
            .bind(id_to_sql(job_id))
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        }
        if kind == JobKind::Sync {
            let workspace: Vec<u8> = col(&held, "workspace_id")?;
            let requeued = sqlx::query(
                "UPDATE sync_runs SET status = 'queued', error = ?, counts = ? \
                 WHERE workspace_id = ? AND id = ? AND status IN ('queued', 'running')",
            )
            .bind(error)
            .bind(&counts)
            .bind(workspace)
            .bind(id_to_sql(job_id))
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
            if requeued.rows_affected() == 0 {
                return Err(run_not_active(job_id));
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn cancel_connection_jobs(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let _turn = self.batch_turn().await;
        let mut tx = Immediate::begin(self.pool()).await?;
        ensure_connection(tx.conn(), workspace, connection_id).await?;
        let cancelled = sqlx::query(
            "UPDATE jobs SET status = 'cancelled', lease_until = NULL, \
                 updated_at = max(updated_at, ?) \
             WHERE workspace_id = ? AND connection_id = ? AND status IN ('queued', 'running') \
             RETURNING id, kind",
        )
        .bind(time_to_sql(now))
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(connection_id))
        .fetch_all(tx.conn())
        .await
        .map_err(db_error)?;
        for row in &cancelled {
            if parse_kind(row)? == JobKind::Sync {
                let id = id_from_sql(col(row, "id")?, "jobs.id")?;
                end_active_run(
                    tx.conn(),
                    workspace,
                    id,
                    RunStatus::Cancelled,
                    None,
                    Some(reason),
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
        if !cancelled.is_empty() {
            tracing::info!(
                workspace_id = %workspace,
                connection_id = %connection_id,
                jobs = cancelled.len(),
                "cancelled the connection's jobs"
            );
        }
        Ok(cancelled.len() as u64)
    }

    async fn get_job(&self, workspace: WorkspaceId, job_id: Uuid) -> Result<Job> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE workspace_id = ? AND id = ?"
        ))
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(job_id))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found("job", job_id))?;
        job_from_row(&row)
    }

    async fn job_key_taken(&self, workspace: WorkspaceId, dedupe_key: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM jobs WHERE workspace_id = ? AND dedupe_key = ?")
            .bind(id_to_sql(workspace))
            .bind(dedupe_key)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }

    async fn enqueue_skill(&self, run: &SkillRun, job: &NewJob) -> Result<bool> {
        check_new_skill_job(run, job)?;
        let _turn = self.batch_turn().await;
        let mut tx = Immediate::begin(self.pool()).await?;
        let new = QueuedJob {
            workspace: run.workspace_id,
            id: run.id,
            kind: JobKind::Skill,
            connection: None,
            created_at: run.started_at,
        };
        if !insert_job(tx.conn(), &new, job).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_skill_run(tx.conn(), run).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn finish_skill_job(
        &self,
        job_id: Uuid,
        worker: &str,
        status: RunStatus,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<SkillRun>> {
        check_finish_status(status)?;
        let job_error = match status {
            RunStatus::Succeeded => None,
            _ => error,
        };
        let _turn = self.batch_turn().await;
        let mut tx = Immediate::begin(self.pool()).await?;
        let Some((workspace, kind)) =
            end_held_job(tx.conn(), job_id, worker, status, job_error, now).await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        if kind != JobKind::Skill {
            return Err(Error::invalid("job_id", "is not a skill job"));
        }
        let end = SkillRunEnd {
            status,
            report,
            error,
            finished_at: now,
        };
        let run = end_skill_run(tx.conn(), workspace, job_id, end)
            .await?
            .ok_or_else(|| {
                Error::conflict(format!(
                    "the skill run of job {job_id} is no longer queued or running"
                ))
            })?;
        tx.commit().await?;
        Ok(Some(run))
    }

    async fn scan_schedulable_connections(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Connection>> {
        // Deployment-wide by design (the scheduler). Ids are BLOBs of the
        // UUID's bytes, so BLOB order is UUID order. Two statements so that
        // each is a plain range scan of connections_schedulable_id.
        let sql = match after {
            Some(_) => format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections \
                 WHERE status IN ('active', 'error') AND id > ?1 ORDER BY id LIMIT ?2"
            ),
            None => format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections \
                 WHERE status IN ('active', 'error') ORDER BY id LIMIT ?1"
            ),
        };
        let mut query = sqlx::query(&sql);
        if let Some(after) = after {
            query = query.bind(id_to_sql(after));
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(connection_from_row).collect()
    }

    async fn purge_source(&self, workspace: WorkspaceId, source: &str) -> Result<u64> {
        let ws = id_to_sql(workspace);
        let deleted = {
            let _turn = self.batch_turn().await;
            let mut tx = Immediate::begin(self.pool()).await?;
            // Children first: the deals' history, then each kind, referencing
            // kinds after the kinds that reference them.
            let mut deleted = sqlx::query(
                "DELETE FROM deal_changes WHERE workspace_id = ?1 AND deal_id IN \
                     (SELECT id FROM deals WHERE workspace_id = ?1 AND source = ?2)",
            )
            .bind(&ws)
            .bind(source)
            .execute(tx.conn())
            .await
            .map_err(db_error)?
            .rows_affected();
            for kind in RecordKind::ALL.iter().rev() {
                deleted += sqlx::query(&format!(
                    "DELETE FROM {} WHERE workspace_id = ? AND source = ?",
                    kind.table()
                ))
                .bind(&ws)
                .bind(source)
                .execute(tx.conn())
                .await
                .map_err(db_error)?
                .rows_affected();
            }
            tx.commit().await?;
            deleted
        };
        self.wal_grew();
        tracing::info!(workspace_id = %workspace, source, rows = deleted, "purged a source");
        Ok(deleted)
    }
}

/// A `BEGIN IMMEDIATE` transaction on a pool connection of its own: the
/// write lock is taken up front (waiting on the busy timeout for writers of
/// other processes), so what the transaction reads cannot change before it
/// writes.
///
/// Unless it commits or rolls back, the connection is closed instead of going
/// back to the pool, which rolls back whatever an error or a dropped future
/// left open (as `write.rs` does for batches).
struct Immediate {
    conn: PoolConnection<Sqlite>,
    ended: bool,
}

impl Immediate {
    async fn begin(pool: &SqlitePool) -> Result<Immediate> {
        let conn = pool.acquire().await.map_err(db_error)?;
        let mut tx = Immediate { conn, ended: false };
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *tx.conn)
            .await
            .map_err(db_error)?;
        Ok(tx)
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT")
            .execute(&mut *self.conn)
            .await
            .map_err(db_error)?;
        self.ended = true;
        Ok(())
    }

    async fn rollback(mut self) -> Result<()> {
        sqlx::query("ROLLBACK")
            .execute(&mut *self.conn)
            .await
            .map_err(db_error)?;
        self.ended = true;
        Ok(())
    }
}

impl Drop for Immediate {
    fn drop(&mut self) {
        if !self.ended {
            self.conn.close_on_drop();
        }
    }
}

/// The identity of a job to insert (the rest comes from its [`NewJob`]).
struct QueuedJob {
    workspace: Uuid,
    id: Uuid,
    kind: JobKind,
    connection: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// Inserts a queued job; `false` (nothing inserted) when its dedupe key is
/// already held by a job of the workspace. A missing workspace or
/// connection → `NotFound`; a taken id → `Conflict`.
async fn insert_job(conn: &mut SqliteConnection, new: &QueuedJob, job: &NewJob) -> Result<bool> {
    let payload = serde_json::to_string(&job.payload)?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?7, NULL, NULL, NULL, ?8, ?9, ?9) \
         ON CONFLICT (workspace_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING"
    ))
    .bind(id_to_sql(new.workspace))
    .bind(id_to_sql(new.id))
    .bind(new.kind.as_str())
    .bind(new.connection.map(id_to_sql))
    .bind(&payload)
    .bind(i64::from(job.max_attempts))
    .bind(time_to_sql(job.run_after))
    .bind(job.dedupe_key.as_deref())
    .bind(time_to_sql(new.created_at))
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 0 => {
            tracing::debug!(
                workspace_id = %new.workspace,
                dedupe_key = job.dedupe_key.as_deref(),
                "job already enqueued"
            );
            Ok(false)
        }
        Ok(_) => Ok(true),
        Err(e) if is_foreign_key_violation(&e) => Err(match new.connection {
            Some(c) => Error::not_found("connection", c),
            None => Error::not_found("workspace", new.workspace),
        }),
        Err(e) if is_unique_violation(&e) => {
            Err(Error::conflict(format!("job {} already exists", new.id)))
        }
        Err(e) => Err(db_error_in(new.workspace)(e)),
    }
}

/// Ends a running job `worker` holds with `status` (keeping the last error
/// when `error` is `None`): its workspace and kind, or `None` when `worker`
/// no longer holds it.
async fn end_held_job(
    conn: &mut SqliteConnection,
    job_id: Uuid,
    worker: &str,
    status: RunStatus,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, JobKind)>> {
    let held = sqlx::query(
        "UPDATE jobs SET status = ?, lease_until = NULL, \
             last_error = coalesce(?, last_error), updated_at = ? \
         WHERE id = ? AND worker = ? AND status = 'running' \
         RETURNING workspace_id, kind",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(time_to_sql(now))
    .bind(id_to_sql(job_id))
    .bind(worker)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some(held) = held else {
        return Ok(None);
    };
    let workspace = id_from_sql(col(&held, "workspace_id")?, "jobs.workspace_id")?;
    Ok(Some((workspace, parse_kind(&held)?)))
}

/// Fails a running job whose lease expired after its last attempt, and its
/// sync run (the connection records the error as for any failed run).
async fn fail_lost_job(
    conn: &mut SqliteConnection,
    workspace: Uuid,
    id: Uuid,
    kind: JobKind,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'failed', lease_until = NULL, last_error = ?, updated_at = ? \
         WHERE workspace_id = ? AND id = ?",
    )
    .bind(error)
    .bind(time_to_sql(now))
    .bind(id_to_sql(workspace))
    .bind(id_to_sql(id))
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    if kind == JobKind::Skill {
        let end = SkillRunEnd {
            status: RunStatus::Failed,
            report: None,
            error: Some(error),
            finished_at: now,
        };
        end_skill_run(conn, workspace, id, end).await?;
    }
    if kind == JobKind::Sync {
        end_active_run(
            conn,
            workspace,
            id,
            RunStatus::Failed,
            None,
            Some(error),
            now,
        )
        .await?;
    }
    tracing::warn!(workspace_id = %workspace, job_id = %id, "job failed: its worker was lost after the last attempt");
    Ok(())
}

/// The job's run is no longer queued or running although the job was: it was
/// finished through [`SyncRunStore`](pandora_core::store::SyncRunStore).
fn run_not_active(job_id: Uuid) -> Error {
    Error::conflict(format!(
        "the sync run of job {job_id} is no longer queued or running"
    ))
}

fn parse_kind(row: &SqliteRow) -> Result<JobKind> {
    let kind: &str = col(row, "kind")?;
    JobKind::parse(kind).ok_or_else(|| {
        tracing::error!(kind, "unknown job kind in the database");
        Error::internal("stored jobs.kind is not a known kind")
    })
}

/// A `jobs` row.
fn job_from_row(row: &SqliteRow) -> Result<Job> {
    let status: &str = col(row, "status")?;
    let status = RunStatus::parse(status).ok_or_else(|| {
        tracing::error!(status, "unknown job status in the database");
        Error::internal("stored jobs.status is not a known status")
    })?;
    let count = |column: &str| -> Result<u32> {
        let n: i64 = col(row, column)?;
        u32::try_from(n).map_err(|_| {
            tracing::error!(column, n, "job count out of range in the database");
            Error::internal("a stored job count is out of range")
        })
    };
    Ok(Job {
        id: id_from_sql(col(row, "id")?, "jobs.id")?,
        workspace_id: id_from_sql(col(row, "workspace_id")?, "jobs.workspace_id")?,
        kind: parse_kind(row)?,
        connection_id: opt_id_from_sql(col(row, "connection_id")?, "jobs.connection_id")?,
        payload: json_from_sql(col(row, "payload")?, "jobs.payload")?,
        status,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        run_after: time_from_sql(col(row, "run_after")?, "jobs.run_after")?,
        lease_until: opt_time_from_sql(col(row, "lease_until")?, "jobs.lease_until")?,
        worker: col(row, "worker")?,
        last_error: col(row, "last_error")?,
        dedupe_key: col(row, "dedupe_key")?,
        created_at: time_from_sql(col(row, "created_at")?, "jobs.created_at")?,
        updated_at: time_from_sql(col(row, "updated_at")?, "jobs.updated_at")?,
    })
}
