//! Workers: claim jobs from the store's queue and run them, holding a lease.
//!
//! A [`Worker`] claims a due job (the store's claim is atomic across
//! processes: `FOR UPDATE SKIP LOCKED` on PostgreSQL), renews its lease every
//! third of the lease while it runs, and records the outcome. If the lease
//! cannot be renewed (the job was cancelled, or the worker stalled so long
//! that another claimed it) the attempt is dropped at once. A failed attempt
//! is retried after an exponential backoff with jitter ([`Backoff`]) while
//! the job has attempts left and the error may pass (the vendor or database
//! was unavailable, or an unexpected failure); other errors (bad input,
//! rejected credentials, something missing) fail the job at once. A worker
//! that dies leaves its job `running` until the lease runs out; the next
//! worker then claims it again and the sync resumes from its checkpoints.
//!
//! A worker also runs the [`scheduler`] on a timer, unless
//! told not to.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::task::JoinSet;

use crate::error::{Error, ErrorKind, Result};
use crate::facade::JobOutcome;
use crate::model::{self, Job};
use crate::scheduler;
use crate::sync::SyncOutcome;
use crate::Pandora;

/// Exponential backoff with jitter between attempts of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failed attempt (before jitter).
    pub base: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(30 * 60),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based): `base · 2^(attempt-1)`,
    /// capped at `max`, then scaled by `0.5 + jitter / 2` ("equal jitter":
    /// at least half the delay, so retries spread out but never come
    /// early). `jitter` is a uniform draw from `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        raw.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// Whether a failed attempt with this error may pass on retry.
pub fn is_retryable(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Internal)
}

/// The retry time of a failed attempt of `job` at `now`: `None` when the job
/// has no attempts left or the error will not pass on retry.
pub fn retry_at(
    job: &Job,
    error: &Error,
    backoff: &Backoff,
    now: DateTime<Utc>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    if job.attempts >= job.max_attempts || !is_retryable(error) {
        return None;
    }
    let delay = chrono::Duration::from_std(backoff.delay(job.attempts, jitter)).ok()?;
    Some(now + delay)
}

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The name the worker claims jobs under (unique per process), e.g.
    /// `host-1234-ab12`.
    pub id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claim lasts without renewal; a job whose worker died is
    /// claimed again this long after its last renewal.
    pub lease: Duration,
    /// How long to wait before looking again when no job is due.
    pub poll_interval: Duration,
    /// Delays between attempts of a failed job.
    pub backoff: Backoff,
    /// How often to run the scheduler (`None`: never, e.g. when another
    /// process schedules).
    pub schedule_every: Option<Duration>,
    /// The sync interval of connections that set none.
    pub default_sync_interval: Duration,
    /// How long [`Worker::run`] waits for running attempts after its
    /// shutdown signal before dropping them (their jobs are claimed again
    /// once their leases run out).
    pub shutdown_grace: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            id: default_worker_id(),
            concurrency: 2,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            backoff: Backoff::default(),
            schedule_every: Some(Duration::from_secs(30)),
            default_sync_interval: scheduler::DEFAULT_SYNC_INTERVAL,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A worker name unique to this process: host name, process id and a random suffix.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "pandora".to_string());
    let suffix: u16 = rand::thread_rng().gen();
    format!("{host}-{}-{suffix:04x}", std::process::id())
}

/// What a worker did with one claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    /// The job as claimed.
    pub job: Job,
    /// How the attempt ended.
    pub outcome: JobOutcome,
}

/// Claims jobs from the queue and runs them. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Worker {
    pandora: Pandora,
    options: Arc<WorkerOptions>,
}

impl Worker {
    /// A worker for `pandora`'s store and connectors.
    pub fn new(pandora: Pandora, options: WorkerOptions) -> Result<Self> {
        if options.concurrency == 0 {
            return Err(Error::invalid(
                "concurrency",
                "a worker runs at least one job at a time",
            ));
        }
        if options.lease < Duration::from_secs(1) {
            return Err(Error::invalid("lease", "must be at least one second"));
        }
        if options.id.trim().is_empty() {
            return Err(Error::invalid("id", "must not be empty"));
        }
        Ok(Worker {
            pandora,
            options: Arc::new(options),
        })
    }

    /// The worker's options.
    pub fn options(&self) -> &WorkerOptions {
        &self.options
    }

    /// Claims one due job, if any, and runs this attempt to its end.
    pub async fn run_next(&self) -> Result<Option<JobReport>> {
        let store = self.pandora.store();
        let Some(job) = store
            .claim_job(&self.options.id, model::now(), self.options.lease)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.run_claimed(job).await?))
    }

    /// Runs an attempt of a job this worker has claimed, renewing its lease
    /// meanwhile; drops the attempt when the lease is lost.
    async fn run_claimed(&self, job: Job) -> Result<JobReport> {
        tracing::info!(
            job_id = %job.id,
            workspace_id = %job.workspace_id,
            kind = job.kind.as_str(),
            attempt = job.attempts,
            worker = %self.options.id,
            "job claimed"
        );
        let backoff = self.options.backoff;
        let retry = move |job: &Job, e: &Error| {
            retry_at(job, e, &backoff, model::now(), rand::thread_rng().gen())
        };
        let last_log = std::sync::Mutex::new(std::time::Instant::now());
        let started = std::time::Instant::now();
        let job_id = job.id;
        let progress = |o: &SyncOutcome| {
            let Ok(mut last) = last_log.lock() else {
                return;
            };
            if last.elapsed() >= Duration::from_secs(10) {
                *last = std::time::Instant::now();
                let secs = started.elapsed().as_secs_f64().max(0.001);
                tracing::info!(
                    %job_id,
                    records = o.records(),
                    records_per_sec = (o.records() as f64 / secs).round(),
                    "sync progress"
                );
            }
        };
        let work = self
            .pandora
            .execute_job(&job, &self.options.id, &retry, &progress);
        let outcome = tokio::select! {
            outcome = work => outcome?,
            lost = self.keep_lease(job.id) => {
                lost?;
                tracing::warn!(%job_id, worker = %self.options.id, "lease lost (job cancelled or claimed by another worker); attempt dropped");
                JobOutcome::Lost
            }
        };
        Ok(JobReport { job, outcome })
    }

    /// Renews the lease of `job_id` every third of the lease; returns when
    /// the worker no longer holds it (or renewal keeps failing until it has
    /// run out).
    async fn keep_lease(&self, job_id: uuid::Uuid) -> Result<()> {
        let lease = self.options.lease;
        let mut held_until = std::time::Instant::now() + lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            let until = model::now()
                + chrono::Duration::from_std(lease)
                    .unwrap_or_else(|_| chrono::Duration::seconds(60));
            match self
                .pandora
                .store()
                .renew_job_lease(job_id, &self.options.id, until)
                .await
            {
                Ok(true) => held_until = std::time::Instant::now() + lease,
                Ok(false) => return Ok(()),
                Err(e) => {
                    tracing::warn!(%job_id, error = %e, "lease renewal failed");
                    if std::time::Instant::now() >= held_until {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Runs jobs (up to `concurrency` at once) and the scheduler until
    /// `shutdown` completes; then stops claiming and waits up to
    /// `shutdown_grace` for the running attempts to end, and drops the rest
    /// (another worker claims them once their leases run out). Store errors are logged and retried after the poll
    /// interval; they never stop the worker.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut running: JoinSet<()> = JoinSet::new();
        let mut next_schedule = tokio::time::Instant::now();
        tracing::info!(
            worker = %self.options.id,
            concurrency = self.options.concurrency,
            lease_secs = self.options.lease.as_secs(),
            scheduler = self.options.schedule_every.is_some(),
            "worker started"
        );
        loop {
            if let Some(every) = self.options.schedule_every {
                if tokio::time::Instant::now() >= next_schedule {
                    next_schedule = tokio::time::Instant::now() + every;
                    if let Err(e) = scheduler::schedule_syncs(
                        &self.pandora,
                        model::now(),
                        self.options.default_sync_interval,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "scheduler tick failed");
                    }
                    // After the syncs, so that a sync due in this slot is
                    // queued before the skills look for running syncs.
                    if let Err(e) =
                        scheduler::skills::schedule_skills(&self.pandora, model::now()).await
                    {
                        tracing::warn!(error = %e, "skill scheduler tick failed");
                    }
                }
            }
            let mut claimed_any = false;
            while running.len() < self.options.concurrency {
                match self
                    .pandora
                    .store()
                    .claim_job(&self.options.id, model::now(), self.options.lease)
                    .await
                {
                    Ok(Some(job)) => {
                        claimed_any = true;
                        let worker = self.clone();
                        running.spawn(async move {
                            let id = job.id;
                            if let Err(e) = worker.run_claimed(job).await {
                                tracing::error!(job_id = %id, error = %e, "job attempt could not be recorded");
                            }
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a job failed");
                        break;
                    }
                }
            }
            let wait = if claimed_any && running.len() < self.options.concurrency {
                Duration::ZERO
            } else {
                self.options.poll_interval
            };
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(worker = %self.options.id, running = running.len(), "worker stopping; waiting for running jobs");
        let drain = async { while running.join_next().await.is_some() {} };
        if tokio::time::timeout(self.options.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                worker = %self.options.id,
                "jobs still running after {}s; leaving them to be retried once their leases run out",
                self.options.shutdown_grace.as_secs()
            );
            running.abort_all();
            while running.join_next().await.is_some() {}
        }
        tracing::info!(worker = %self.options.id, "worker stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_equal_jitter() {
        let b = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(100),
        };
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(10));
        assert_eq!(b.delay(2, 1.0), Duration::from_secs(20));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(40));
        assert_eq!(b.delay(4, 1.0), Duration::from_secs(80));
        assert_eq!(b.delay(5, 1.0), Duration::from_secs(100));
        assert_eq!(b.delay(40, 1.0), Duration::from_secs(100));
        // Jitter keeps at least half the delay.
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(20));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(30));
        assert_eq!(b.delay(0, 1.0), Duration::from_secs(10));
    }

    fn job(attempts: u32, max_attempts: u32) -> Job {
        let now = model::now();
        Job {
            id: model::new_id(),
            workspace_id: model::new_id(),
            kind: crate::model::JobKind::Sync,
            connection_id: None,
            payload: serde_json::json!({}),
            status: crate::model::RunStatus::Running,
            attempts,
            max_attempts,
            run_after: now,
            lease_until: None,
            worker: None,
            last_error: None,
            dedupe_key: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn only_passing_errors_with_attempts_left_are_retried() {
        let b = Backoff::default();
        let now = model::now();
        let transient = Error::unavailable("vendor answered 503");
        let at = retry_at(&job(1, 3), &transient, &b, now, 1.0).expect("retried");
        assert_eq!(at - now, chrono::Duration::seconds(10));
        let at = retry_at(&job(2, 3), &transient, &b, now, 1.0).expect("retried");
        assert_eq!(at - now, chrono::Duration::seconds(20));
        assert_eq!(retry_at(&job(3, 3), &transient, &b, now, 1.0), None);
        let bad = Error::invalid("config.deals", "must be at least 100");
        assert_eq!(retry_at(&job(1, 3), &bad, &b, now, 1.0), None);
        assert_eq!(
            retry_at(
                &job(1, 3),
                &Error::unauthorized("token revoked"),
                &b,
                now,
                1.0
            ),
            None
        );
    }
}
