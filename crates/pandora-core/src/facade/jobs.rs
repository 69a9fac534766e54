//! Queued syncs: enqueueing a connection's sync as a job, running a claimed
//! sync job (what a [`Worker`](crate::worker::Worker) calls), and
//! disconnecting a connection (which cancels its jobs).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{run_error, Pandora};
use crate::error::{Error, Result};
use crate::model::{
    self, Connection, ConnectionStatus, Job, JobKind, NewConnection, NewJob, RunStatus, SkillRun,
    StreamCounts, SyncMode, SyncRun, WorkspaceId,
};

/// Attempts a queued sync gets before it stays failed.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// What [`Pandora::disconnect`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disconnected {
    /// The connection.
    pub connection_id: Uuid,
    /// Queued or running jobs cancelled.
    pub cancelled_jobs: u64,
    /// Whether the synced data (and the connection itself) was deleted.
    pub purged: bool,
    /// Rows deleted by the purge.
    pub purged_rows: u64,
}

/// How one attempt at a claimed job ended (see [`Pandora::execute_job`]).
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// The sync job finished (succeeded, failed for good, or cancelled) with this run.
    Finished(SyncRun),
    /// The skill job finished (succeeded, or failed for good) with this run.
    SkillFinished(SkillRun),
    /// The webhook delivery job finished (delivered, failed for good, or
    /// cancelled) with this delivery.
    DeliveryFinished(crate::model::WebhookDelivery),
    /// The attempt failed and the job is queued again from `retry_at`.
    Retrying {
        /// When it may be claimed again.
        retry_at: DateTime<Utc>,
        /// Why the attempt failed.
        error: String,
    },
    /// The worker no longer held the job (cancelled, or claimed again after
    /// its lease ran out); nothing was recorded by this attempt.
    Lost,
}

/// Decides when a failed attempt is retried: `Some(retry_at)`, or `None` to
/// fail the job for good.
pub type RetryPolicy<'a> = &'a (dyn Fn(&Job, &Error) -> Option<DateTime<Utc>> + Send + Sync);

impl Pandora {
    /// Enqueues a sync of the workspace's connection to `connector` for a
    /// worker, and returns its queued run (the run id is the job id).
    ///
    /// The first run of a connection (none succeeded yet) is always full. A
    /// connection that already has a queued or running run: the
    /// [`Error::Conflict`] naming it (read back with
    /// [`active_run_id`](crate::store::active_run_id)). A disconnected
    /// connection, or one that needs re-authorization: [`Error::Conflict`]
    /// saying so. Unknown connector: [`Error::NotFound`] listing the known ones.
    pub async fn enqueue_sync(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        mode: SyncMode,
    ) -> Result<SyncRun> {
        self.inner.connectors.get(connector)?;
        let connection = self
            .inner
            .store
            .get_connection(workspace, connector)
            .await?;
        match connection.status {
            ConnectionStatus::Disconnected => {
                return Err(Error::conflict(format!(
                    "the {connector} connection is disconnected; connect it again before syncing"
                )))
            }
            ConnectionStatus::NeedsReauth => {
                return Err(Error::conflict(format!(
                    "the {connector} connection needs to be authorized again before syncing"
                )))
            }
            ConnectionStatus::Active | ConnectionStatus::Error => {}
        }
        let (run, _) = self
            .enqueue_sync_job(&connection, mode, None, model::now())
            .await?;
        Ok(run)
    }

    /// Enqueues a sync job of `connection` (the scheduler's and
    /// [`Pandora::enqueue_sync`]'s common path). Returns the run and whether
    /// it was enqueued (`false`: `dedupe_key` was already taken).
    pub(crate) async fn enqueue_sync_job(
        &self,
        connection: &Connection,
        mode: SyncMode,
        dedupe_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(SyncRun, bool)> {
        let mode = if connection.last_sync_at.is_none() {
            SyncMode::Full
        } else {
            mode
        };
        let run = SyncRun {
            id: model::new_id(),
            workspace_id: connection.workspace_id,
            connection_id: connection.id,
            mode,
            status: RunStatus::Queued,
            counts: BTreeMap::new(),
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        let job = NewJob {
            payload: serde_json::json!({ "connector": connection.connector }),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_after: now,
            dedupe_key,
        };
        let enqueued = self.inner.store.enqueue_sync(&run, &job).await?;
        if enqueued {
            tracing::info!(
                workspace_id = %connection.workspace_id,
                connector = %connection.connector,
                run_id = %run.id,
                mode = mode.as_str(),
                "sync enqueued"
            );
        }
        Ok((run, enqueued))
    }

    /// Disconnects the workspace's connection to `connector`: cancels its
    /// queued and running jobs (a worker running one stops at its next lease
    /// renewal), removes its credentials and marks it `disconnected`,
    /// keeping its run history. With `purge`, also deletes every record it
    /// synced and the connection itself (its runs and cursors with it).
    pub async fn disconnect(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        purge: bool,
    ) -> Result<Disconnected> {
        let store = &self.inner.store;
        let connection = store.get_connection(workspace, connector).await?;
        // Disconnected first, so that no scheduler tick enqueues a sync
        // between the cancellation and the status change.
        store
            .upsert_connection(
                workspace,
                &NewConnection {
                    connector: connector.to_string(),
                    status: ConnectionStatus::Disconnected,
                    credentials: None,
                    config: connection.config.clone(),
                },
            )
            .await?;
        let cancelled_jobs = store
            .cancel_connection_jobs(
                workspace,
                connection.id,
                "cancelled: the connection was disconnected",
                model::now(),
            )
            .await?;
        let mut purged_rows = 0;
        if purge {
            purged_rows = store.purge_source(workspace, connector).await?;
            store.delete_connection(workspace, connection.id).await?;
        }
        tracing::info!(
            workspace_id = %workspace,
            connector,
            connection_id = %connection.id,
            cancelled_jobs,
            purge,
            purged_rows,
            "connection disconnected"
        );
        Ok(Disconnected {
            connection_id: connection.id,
            cancelled_jobs,
            purged: purge,
            purged_rows,
        })
    }

    /// Runs one attempt of a job `worker` has claimed, to its end, and
    /// records the outcome in the store: finished (succeeded, or failed when
    /// `retry` gives no retry time), or queued again from the time `retry`
    /// gives.
    ///
    /// The attempt's counts add to those the run kept from earlier attempts.
    /// The caller keeps the lease alive while this runs, and drops this
    /// future when the lease is lost (nothing is recorded then).
    pub async fn execute_job(
        &self,
        job: &Job,
        worker: &str,
        retry: RetryPolicy<'_>,
        progress: crate::sync::SyncProgress<'_>,
    ) -> Result<JobOutcome> {
        match job.kind {
            JobKind::Sync => self.execute_sync_job(job, worker, retry, progress).await,
            JobKind::Skill => self.execute_skill_job(job, worker, retry).await,
            JobKind::Webhook => self.execute_webhook_job(job, worker, retry).await,
        }
    }

    async fn execute_sync_job(
        &self,
        job: &Job,
        worker: &str,
        retry: RetryPolicy<'_>,
        progress: crate::sync::SyncProgress<'_>,
    ) -> Result<JobOutcome> {
        let store = &self.inner.store;
        let run = store.get_sync_run(job.workspace_id, job.id).await?;
        let before = run.counts.clone();
        let connection = match self
            .connection_by_id(job.workspace_id, run.connection_id)
            .await?
        {
            Some(c) => c,
            None => {
                let error = "the connection no longer exists".to_string();
                return self
                    .finish_job(job, worker, RunStatus::Cancelled, &before, Some(error))
                    .await;
            }
        };
        let result = match self.inner.connectors.get(&connection.connector) {
            Ok(imp) => {
                self.run_connector_counted(imp.as_ref(), &connection, run.mode, progress)
                    .await
            }
            Err(e) => Err((e, BTreeMap::new())),
        };
        match result {
            Ok(outcome) => {
                let counts = add_counts(&before, &outcome.counts);
                self.finish_job(job, worker, RunStatus::Succeeded, &counts, None)
                    .await
            }
            Err((e, partial)) => {
                let counts = add_counts(&before, &partial);
                let error = run_error(&e);
                tracing::warn!(
                    workspace_id = %job.workspace_id,
                    run_id = %job.id,
                    attempt = job.attempts,
                    max_attempts = job.max_attempts,
                    error = %error,
                    "sync attempt failed"
                );
                match retry(job, &e) {
                    Some(retry_at) => {
                        if store
                            .retry_job(job.id, worker, &error, &counts, retry_at)
                            .await?
                        {
                            Ok(JobOutcome::Retrying { retry_at, error })
                        } else {
                            Ok(JobOutcome::Lost)
                        }
                    }
                    None => {
                        self.finish_job(job, worker, RunStatus::Failed, &counts, Some(error))
                            .await
                    }
                }
            }
        }
    }

    async fn finish_job(
        &self,
        job: &Job,
        worker: &str,
        status: RunStatus,
        counts: &BTreeMap<String, StreamCounts>,
        error: Option<String>,
    ) -> Result<JobOutcome> {
        let finished = self
            .inner
            .store
            .finish_sync_job(job.id, worker, status, counts, error, model::now())
            .await?;
        Ok(match finished {
            Some(run) => {
                tracing::info!(
                    workspace_id = %job.workspace_id,
                    run_id = %job.id,
                    status = run.status.as_str(),
                    "job finished"
                );
                JobOutcome::Finished(run)
            }
            None => JobOutcome::Lost,
        })
    }

    /// The workspace's connection with this id, if it still exists.
    async fn connection_by_id(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<Option<Connection>> {
        Ok(self
            .inner
            .store
            .list_connections(workspace)
            .await?
            .into_iter()
            .find(|c| c.id == id))
    }
}

/// `a + b`, table by table.
fn add_counts(
    a: &BTreeMap<String, StreamCounts>,
    b: &BTreeMap<String, StreamCounts>,
) -> BTreeMap<String, StreamCounts> {
    let mut sum = a.clone();
    for (table, counts) in b {
        sum.entry(table.clone()).or_default().add(*counts);
    }
    sum
}
