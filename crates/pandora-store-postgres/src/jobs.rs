//! [`JobStore`] for [`PgStore`]: the job queue (migration 005).
//!
//! * **Enqueue**: the job, then its sync run, in one transaction. The job's
//!   `INSERT … ON CONFLICT (workspace_id, dedupe_key) DO NOTHING` makes a
//!   second enqueue of a slot (from any replica) wait for the first to commit
//!   and then insert nothing → `Ok(false)`; the run's insert enforces the
//!   one-active-run rule (migration 003).
//! * **Claim**: one transaction. `SELECT … ORDER BY run_after, id LIMIT 1
//!   FOR UPDATE SKIP LOCKED` over the partial index `jobs_claim_idx`
//!   (unfinished jobs only) finds the first job that is queued and due or
//!   running with an expired lease, skipping rows other claimers hold; a
//!   concurrent claimer that committed first makes PostgreSQL re-check the
//!   row, which then no longer matches. A job whose lease expired after its
//!   last attempt is failed (job and run) and the claim goes on to the next.
//! * **Fencing**: renew, finish and retry change a job only `WHERE id = … AND
//!   worker = … AND status = 'running'`: a worker whose job was claimed again,
//!   finished or cancelled changes nothing. Worker names must therefore be
//!   unique per worker.
//!
//! Every time comes from the caller (`now`, `lease_until`, `retry_at`), never
//! from the database clock.

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
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::connections::CONNECTION_COLUMNS;
use crate::errors::{corrupt, is_foreign_key_violation, is_unique_violation, DbResultExt};
use crate::skills::{end_skill_run, insert_skill_run, SkillRunEnd};
use crate::sync_runs::{
    end_active_run, ensure_connection, insert_run, run_insert_error, CREATE_ATTEMPTS,
};
use crate::{rows, PgStore};

/// Columns a job query selects, as [`job_from_row`] reads them.
const JOB_COLUMNS: &str = "workspace_id, id, kind, connection_id, payload, status, attempts, \
     max_attempts, run_after, lease_until, worker, last_error, dedupe_key, created_at, updated_at";

#[async_trait]
impl JobStore for PgStore {
    async fn enqueue_sync(&self, run: &SyncRun, job: &NewJob) -> Result<bool> {
        check_new_sync_job(run, job)?;
        let max_attempts = count_to_sql(job.max_attempts, "max_attempts")?;
        for _ in 0..CREATE_ATTEMPTS {
            let mut tx = self.pool.begin().await.db()?;
            let new = QueuedJob {
                workspace: run.workspace_id,
                id: run.id,
                kind: JobKind::Sync,
                connection: Some(run.connection_id),
                created_at: run.created_at,
            };
            if !insert_job(&mut tx, &new, job, max_attempts).await? {
                tx.rollback().await.db()?;
                return Ok(false);
            }
            let e = match insert_run(&mut *tx, run).await {
                Ok(()) => {
                    tx.commit().await.db()?;
                    return Ok(true);
                }
                Err(e) => e,
            };
            // The failed statement aborted the transaction: end it before
            // looking up which run holds the slot.
            drop(tx);
            if let Some(error) = run_insert_error(&self.pool, run, e).await {
                return Err(error);
            }
            // The run that held the slot finished meanwhile: try again.
        }
        Err(Error::unavailable(
            "the connection's sync runs keep changing; retry",
        ))
    }

    async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<Job>> {
        let lease_until = lease_end(now, lease)?;
        let mut tx = self.pool.begin().await.db()?;
        loop {
            let candidate = sqlx::query(
                "SELECT workspace_id, id, kind, status, attempts, max_attempts FROM jobs \
                 WHERE status IN ('queued', 'running') AND run_after <= $1 \
                   AND (status = 'queued' OR lease_until < $1) \
                 ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
            let Some(candidate) = candidate else {
                // Commits the lost jobs failed on the way, if any.
                tx.commit().await.db()?;
                return Ok(None);
            };
            let workspace: Uuid = candidate.try_get("workspace_id").db()?;
            let id: Uuid = candidate.try_get("id").db()?;
            let kind = parse_kind(&candidate)?;
            let status: String = candidate.try_get("status").db()?;
            let attempts: i32 = candidate.try_get("attempts").db()?;
            let max_attempts: i32 = candidate.try_get("max_attempts").db()?;

            if status == RunStatus::Running.as_str() && attempts >= max_attempts {
                let error = lost_worker_error(u32::try_from(attempts).unwrap_or(0));
                fail_lost_job(&mut tx, workspace, id, kind, &error, now).await?;
                continue;
            }

            let row = sqlx::query(&format!(
                "UPDATE jobs SET status = 'running', worker = $3, lease_until = $4, \
                     attempts = attempts + 1, updated_at = $5 \
                 WHERE workspace_id = $1 AND id = $2 RETURNING {JOB_COLUMNS}"
            ))
            .bind(workspace)
            .bind(id)
            .bind(worker)
            .bind(lease_until)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .db()?;
            let job = job_from_row(&row)?;
            if kind == JobKind::Sync {
                sqlx::query(
                    "UPDATE sync_runs SET status = 'running', started_at = $3 \
                     WHERE workspace_id = $1 AND id = $2 AND status = 'queued'",
                )
                .bind(workspace)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .db()?;
            } else if kind == JobKind::Skill {
                let live = job.payload.get("live") == Some(&serde_json::Value::Bool(true));
                sqlx::query(
                    "UPDATE skill_runs SET status = 'running', started_at = $3, \
                         as_of = CASE WHEN $4 THEN $3 ELSE as_of END \
                     WHERE workspace_id = $1 AND id = $2 AND status = 'queued'",
                )
                .bind(workspace)
                .bind(id)
                .bind(now)
                .bind(live)
                .execute(&mut *tx)
                .await
                .db()?;
            }
            tx.commit().await.db()?;
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
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $3 \
             WHERE id = $1 AND worker = $2 AND status = 'running'",
        )
        .bind(job_id)
        .bind(worker)
        .bind(lease_until)
        .execute(&self.pool)
        .await
        .db()?;
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
        let mut tx = self.pool.begin().await.db()?;
        let Some((workspace, kind)) =
            end_held_job(&mut tx, job_id, worker, status, job_error, now).await?
        else {
            return Ok(None);
        };
        if kind != JobKind::Sync {
            return Err(Error::invalid("job_id", "is not a sync job"));
        }
        let run = end_active_run(
            &mut tx,
            workspace,
            job_id,
            status,
            Some(counts),
            error.as_deref(),
            now,
        )
        .await?
        .ok_or_else(|| run_not_active(job_id))?;
        tx.commit().await.db()?;
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
        let mut tx = self.pool.begin().await.db()?;
        let held = sqlx::query(
            "UPDATE jobs SET status = 'queued', run_after = $3, lease_until = NULL, \
                 last_error = $4, updated_at = GREATEST(updated_at, $5) \
             WHERE id = $1 AND worker = $2 AND status = 'running' \
             RETURNING workspace_id, kind",
        )
        .bind(job_id)
        .bind(worker)
        .bind(retry_at)
        .bind(error)
        .bind(model::now())
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let Some(held) = held else {
            return Ok(false);
        };
        let workspace: Uuid = held.try_get("workspace_id").db()?;
        let kind = parse_kind(&held)?;
        if kind == JobKind::Skill {
            sqlx::query(
                "UPDATE skill_runs SET status = 'queued', error = $3 \
                 WHERE workspace_id = $1 AND id = $2 AND status IN ('queued', 'running')",
            )
            .bind(workspace)
            .bind(job_id)
            .bind(error)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        if kind == JobKind::Sync {
            let requeued = sqlx::query(
                "UPDATE sync_runs SET status = 'queued', error = $3, counts = $4 \
                 WHERE workspace_id = $1 AND id = $2 AND status IN ('queued', 'running')",
            )
            .bind(workspace)
            .bind(job_id)
            .bind(error)
            .bind(Json(counts))
            .execute(&mut *tx)
            .await
            .db()?;
            if requeued.rows_affected() == 0 {
                return Err(run_not_active(job_id));
            }
        }
        tx.commit().await.db()?;
        Ok(true)
    }

    async fn cancel_connection_jobs(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await.db()?;
        ensure_connection(&mut *tx, workspace, connection_id).await?;
        let cancelled = sqlx::query(
            "UPDATE jobs SET status = 'cancelled', lease_until = NULL, \
                 updated_at = GREATEST(updated_at, $3) \
             WHERE workspace_id = $1 AND connection_id = $2 AND status IN ('queued', 'running') \
             RETURNING id, kind",
        )
        .bind(workspace)
        .bind(connection_id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        for row in &cancelled {
            if parse_kind(row)? == JobKind::Sync {
                let id: Uuid = row.try_get("id").db()?;
                end_active_run(
                    &mut tx,
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
        tx.commit().await.db()?;
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
            "SELECT {JOB_COLUMNS} FROM jobs WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .db()?
        .ok_or_else(|| Error::not_found("job", job_id))?;
        job_from_row(&row)
    }

    async fn job_key_taken(&self, workspace: WorkspaceId, dedupe_key: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM jobs WHERE workspace_id = $1 AND dedupe_key = $2")
            .bind(workspace)
            .bind(dedupe_key)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        Ok(row.is_some())
    }

    async fn enqueue_skill(&self, run: &SkillRun, job: &NewJob) -> Result<bool> {
        check_new_skill_job(run, job)?;
        let max_attempts = count_to_sql(job.max_attempts, "max_attempts")?;
        let mut tx = self.pool.begin().await.db()?;
        let new = QueuedJob {
            workspace: run.workspace_id,
            id: run.id,
            kind: JobKind::Skill,
            connection: None,
            created_at: run.started_at,
        };
        if !insert_job(&mut tx, &new, job, max_attempts).await? {
            tx.rollback().await.db()?;
            return Ok(false);
        }
        insert_skill_run(&mut *tx, run).await?;
        tx.commit().await.db()?;
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
        let mut tx = self.pool.begin().await.db()?;
        let Some((workspace, kind)) =
            end_held_job(&mut tx, job_id, worker, status, job_error, now).await?
        else {
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
        let run = end_skill_run(&mut tx, workspace, job_id, end)
            .await?
            .ok_or_else(|| {
                Error::conflict(format!(
                    "the skill run of job {job_id} is no longer queued or running"
                ))
            })?;
        tx.commit().await.db()?;
        Ok(Some(run))
    }

    async fn scan_schedulable_connections(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Connection>> {
        // Deployment-wide by design (the scheduler), ordered by id; two
        // statements so that each is a plain range scan of
        // connections_schedulable_id_idx.
        let fetched = match after {
            Some(after) => {
                sqlx::query(&format!(
                    "SELECT {CONNECTION_COLUMNS} FROM connections \
                     WHERE status IN ('active', 'error') AND id > $1 ORDER BY id LIMIT $2"
                ))
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {CONNECTION_COLUMNS} FROM connections \
                     WHERE status IN ('active', 'error') ORDER BY id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
            }
        }
        .db()?;
        fetched.iter().map(rows::connection).collect()
    }

    async fn purge_source(&self, workspace: WorkspaceId, source: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await.db()?;
        // Children first: the deals' history, then each kind, referencing
        // kinds after the kinds that reference them.
        let mut deleted = sqlx::query(
            "DELETE FROM deal_changes c USING deals d \
             WHERE c.workspace_id = $1 AND d.workspace_id = $1 AND c.deal_id = d.id \
               AND d.source = $2",
        )
        .bind(workspace)
        .bind(source)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        for kind in RecordKind::ALL.iter().rev() {
            deleted += sqlx::query(&format!(
                "DELETE FROM {} WHERE workspace_id = $1 AND source = $2",
                kind.table()
            ))
            .bind(workspace)
            .bind(source)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
        }
        tx.commit().await.db()?;
        tracing::info!(workspace_id = %workspace, source, rows = deleted, "purged a source");
        Ok(deleted)
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
/// already held by a job of the workspace (a concurrent insert of the same
/// key waits for the first to commit). A missing workspace or connection →
/// `NotFound`; a taken id → `Conflict`.
async fn insert_job(
    conn: &mut PgConnection,
    new: &QueuedJob,
    job: &NewJob,
    max_attempts: i32,
) -> Result<bool> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, NULL, NULL, NULL, $8, $9, $9) \
         ON CONFLICT (workspace_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING"
    ))
    .bind(new.workspace)
    .bind(new.id)
    .bind(new.kind.as_str())
    .bind(new.connection)
    .bind(&job.payload)
    .bind(max_attempts)
    .bind(job.run_after)
    .bind(job.dedupe_key.as_deref())
    .bind(new.created_at)
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
        Err(e) => Err(crate::errors::map_db_error(e, Some(new.workspace))),
    }
}

/// Ends a running job `worker` holds with `status` (keeping the last error
/// when `error` is `None`): its workspace and kind, or `None` when `worker`
/// no longer holds it.
async fn end_held_job(
    conn: &mut PgConnection,
    job_id: Uuid,
    worker: &str,
    status: RunStatus,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, JobKind)>> {
    let held = sqlx::query(
        "UPDATE jobs SET status = $3, lease_until = NULL, \
             last_error = COALESCE($4, last_error), updated_at = $5 \
         WHERE id = $1 AND worker = $2 AND status = 'running' \
         RETURNING workspace_id, kind",
    )
    .bind(job_id)
    .bind(worker)
    .bind(status.as_str())
    .bind(error)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    let Some(held) = held else {
        return Ok(None);
    };
    Ok(Some((
        held.try_get("workspace_id").db()?,
        parse_kind(&held)?,
    )))
}

/// Fails a running job whose lease expired after its last attempt, and its
/// sync run (the connection records the error as for any failed run).
async fn fail_lost_job(
    conn: &mut PgConnection,
    workspace: Uuid,
    id: Uuid,
    kind: JobKind,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'failed', lease_until = NULL, last_error = $3, updated_at = $4 \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(error)
    .bind(now)
    .execute(&mut *conn)
    .await
    .db()?;
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

/// A count as stored (`INTEGER`).
fn count_to_sql(n: u32, field: &str) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::invalid(field, "is too large"))
}

/// The job's run is no longer queued or running although the job was: it was
/// finished through [`SyncRunStore`](pandora_core::store::SyncRunStore).
fn run_not_active(job_id: Uuid) -> Error {
    Error::conflict(format!(
        "the sync run of job {job_id} is no longer queued or running"
    ))
}

fn parse_kind(row: &PgRow) -> Result<JobKind> {
    let kind: String = row.try_get("kind").db()?;
    JobKind::parse(&kind).ok_or_else(|| corrupt("job", format!("unknown kind {kind:?}")))
}

/// A `jobs` row.
fn job_from_row(row: &PgRow) -> Result<Job> {
    let status: String = row.try_get("status").db()?;
    let count = |column: &str| -> Result<u32> {
        let n: i32 = row.try_get(column).db()?;
        u32::try_from(n).map_err(|_| corrupt("job", format!("negative {column}")))
    };
    Ok(Job {
        id: row.try_get("id").db()?,
        workspace_id: row.try_get("workspace_id").db()?,
        kind: parse_kind(row)?,
        connection_id: row.try_get("connection_id").db()?,
        payload: row.try_get("payload").db()?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| corrupt("job", format!("unknown status {status:?}")))?,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        run_after: row.try_get("run_after").db()?,
        lease_until: row.try_get("lease_until").db()?,
        worker: row.try_get("worker").db()?,
        last_error: row.try_get("last_error").db()?,
        dedupe_key: row.try_get("dedupe_key").db()?,
        created_at: row.try_get("created_at").db()?,
        updated_at: row.try_get("updated_at").db()?,
    })
}
