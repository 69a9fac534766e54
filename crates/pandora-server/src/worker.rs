//! `pandora worker`: a job worker (and the scheduler) without the API; also
//! the worker `pandora serve` runs beside the API.

use pandora_core::worker::{Worker, WorkerOptions};
use pandora_core::Pandora;

use crate::config::Config;
use crate::database;
use crate::logging::Logging;
use crate::serve::{build, shutdown_signal};
use crate::Failure;

/// The worker options the configuration asks for (at least one job at a time).
pub fn options(config: &Config) -> WorkerOptions {
    let jobs = &config.jobs;
    WorkerOptions {
        concurrency: jobs.concurrency.max(1),
        lease: jobs.lease,
        schedule_every: jobs
            .scheduler
            .then(|| std::time::Duration::from_secs(30).min(jobs.default_sync_interval)),
        default_sync_interval: jobs.default_sync_interval,
        ..WorkerOptions::default()
    }
}

/// A worker over `pandora`, configured by `config`.
pub fn worker(config: &Config, pandora: Pandora) -> Result<Worker, Failure> {
    Worker::new(pandora, options(config))
        .map_err(|e| Failure::config(format!("cannot start the worker: {e}")))
}

/// Runs a worker until a shutdown signal; returns once it has stopped.
pub async fn run(config: Config, logging: &Logging) -> Result<(), Failure> {
    if config.jobs.concurrency == 0 {
        return Err(Failure::config(
            "PANDORA_WORKER_CONCURRENCY=0 leaves `pandora worker` nothing to do; set it to 1 or more",
        ));
    }
    let opened = database::open_migrated(&config.database).await?;
    logging.database_opened();
    tracing::info!(database = %database::describe(&config.database), "database ready");
    let worker = worker(&config, build(&config, opened.store.clone())?)?;
    worker.run(shutdown_signal()).await;
    opened.close().await;
    Ok(())
}
