//! `pandora sync <workspace> <connector> [--full]`: one sync in the foreground.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pandora_core::model::{RunStatus, SyncMode, SyncRun};
use pandora_core::sync::SyncOutcome;
use uuid::Uuid;

use crate::config::Config;
use crate::database;
use crate::logging::Logging;
use crate::serve;
use crate::Failure;

/// Runs the sync and prints its summary; a failed run is exit code 1.
pub async fn run(
    config: Config,
    logging: &Logging,
    workspace: Uuid,
    connector: &str,
    full: bool,
) -> Result<(), Failure> {
    let opened = database::open_migrated(&config.database).await?;
    logging.database_opened();
    let pandora = serve::build(&config, opened.store.clone())?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = Instant::now();
    let progress = |o: &SyncOutcome| {
        if let Some(bar) = &bar {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{} records, {:.0} records/s, {} pages",
                o.records(),
                o.records() as f64 / secs,
                o.pages
            ));
        }
    };
    let mode = if full {
        SyncMode::Full
    } else {
        SyncMode::Incremental
    };
    let result = pandora.sync(workspace, connector, mode, &progress).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    opened.close().await;
    let run = result.map_err(|e| Failure::runtime(format!("cannot sync {connector}: {e}")))?;
    print!("{}", summary(&run, started.elapsed()));
    match run.status {
        RunStatus::Succeeded => Ok(()),
        _ => Err(Failure::runtime(format!(
            "sync run {} {}: {}",
            run.id,
            run.status.as_str(),
            run.error.as_deref().unwrap_or("no error recorded")
        ))),
    }
}

/// The run summary: one line for the run, one per table written.
fn summary(run: &SyncRun, elapsed: Duration) -> String {
    let records: u64 = run
        .counts
        .values()
        .map(|c| c.inserted + c.updated + c.unchanged + c.deleted)
        .sum();
    let secs = elapsed.as_secs_f64().max(0.001);
    let mut out = format!(
        "sync run {} ({:?} mode) {} in {:.1} s: {} records, {:.0} records/s\n",
        run.id,
        run.mode,
        run.status.as_str(),
        secs,
        records,
        records as f64 / secs
    );
    for (table, c) in &run.counts {
        out.push_str(&format!(
            "  {table:<16} inserted {:>9}  updated {:>9}  unchanged {:>9}  deleted {:>7}\n",
            c.inserted, c.updated, c.unchanged, c.deleted
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pandora_core::model::StreamCounts;

    #[test]
    fn summary_lists_the_run_and_each_table() {
        let mut counts = std::collections::BTreeMap::new();
        counts.insert(
            "deals".to_string(),
            StreamCounts {
                inserted: 3,
                updated: 1,
                unchanged: 2,
                deleted: 0,
            },
        );
        let run = SyncRun {
            id: Uuid::nil(),
            workspace_id: Uuid::nil(),
            connection_id: Uuid::nil(),
            mode: SyncMode::Full,
            status: RunStatus::Succeeded,
            counts,
            error: None,
            created_at: pandora_core::model::now(),
            started_at: None,
            finished_at: None,
        };
        let text = summary(&run, Duration::from_secs(2));
        assert!(text.contains("succeeded"), "{text}");
        assert!(text.contains("6 records, 3 records/s"), "{text}");
        assert!(
            text.contains("deals") && text.contains("inserted         3"),
            "{text}"
        );
    }
}
