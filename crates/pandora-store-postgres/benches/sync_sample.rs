//! End-to-end sync of the `sample` source into PostgreSQL: a full sync of
//! 1,000,000 deals (about 12 million records: users, accounts, contacts,
//! stages, deals, field history, roles, calls), then incremental syncs of one
//! simulated day each (about 1% of deals change).
//!
//! Prints records/s and the process's peak RSS, against a baseline measured
//! in the same run: the generator alone producing the same pages (what the
//! sync could reach if writing cost nothing). An incremental sync should cost
//! about as much per record as the full sync does, i.e. its time follows the
//! changes, not the workspace.
//!
//! ```text
//! cargo bench -p pandora-store-postgres --bench sync_sample
//! PANDORA_BENCH_DEALS=100000 cargo bench -p pandora-store-postgres --bench sync_sample
//! ```
//!
//! Last measured at 1,000,000 deals (2 shared cores, load average 1.4–2.4,
//! one page write in flight): 6,739,703 records + 5,703,684 field-history
//! rows = 12,443,387 rows in 845.5 s = 7,971 records/s, 14,717 rows/s, peak
//! RSS 210 MB (the engine then kept every page's keys; fixed since);
//! incremental day 1: 39,117 records in 6.89 s. Before: 699.7 s, 9,632
//! records/s, 17,784 rows/s, 36 MB.

mod common;

use std::time::Instant;

use pandora_connectors::sample::{SampleConfig, SampleGenerator};
use pandora_core::model::{ConnectionStatus, NewConnection, NewWorkspace, SyncMode, SyncRun};
use pandora_core::Pandora;
use pandora_store_postgres::{testing, PgStore};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    runtime.block_on(run());
}

/// Peak resident set size of this process, in MB (`VmHWM`, Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn records(run: &SyncRun) -> u64 {
    run.counts
        .values()
        .map(|c| c.inserted + c.updated + c.unchanged + c.deleted)
        .sum()
}

fn no_progress(_: &pandora_core::sync::SyncOutcome) {}

async fn run() {
    let deals = common::env_usize("PANDORA_BENCH_DEALS", 1_000_000);
    // A start in the past, so that every incremental sync advances one simulated day.
    let config = serde_json::json!({"deals": deals, "seed": 42, "start": "2026-01-05"});

    // Baseline: the generator alone, over the same pages.
    let generator =
        SampleGenerator::new(SampleConfig::from_json(&config).expect("config")).expect("generator");
    let started = Instant::now();
    let generated: u64 = generator.full_sync(0).map(|page| page.len() as u64).sum();
    let gen_time = started.elapsed();
    let gen_rate = common::rate(generated as usize, gen_time);
    println!(
        "sample, {deals} deals: generator alone {} records in {:.1} s = {} records/s",
        common::thousands(generated as f64),
        gen_time.as_secs_f64(),
        common::thousands(gen_rate)
    );

    let url = testing::fresh_database_url().await;
    let store = PgStore::connect_with(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let pandora = Pandora::builder()
        .store(store)
        .connectors(pandora_connectors::all())
        .build()
        .expect("build");
    let ws = pandora
        .create_workspace(NewWorkspace {
            name: "Bench".into(),
            ..Default::default()
        })
        .await
        .expect("workspace")
        .workspace
        .id;
    pandora
        .store()
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "sample".into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config,
            },
        )
        .await
        .expect("connection");

    let started = Instant::now();
    let full = pandora
        .sync(ws, "sample", SyncMode::Full, &no_progress)
        .await
        .expect("full sync");
    let full_time = started.elapsed();
    assert!(full.error.is_none(), "full sync failed: {:?}", full.error);
    let full_records = records(&full);
    let full_rate = common::rate(full_records as usize, full_time);
    // The run's counts cover record tables; the field-history rows it also
    // stored are the rest of what the generator produced (into an empty
    // workspace, every generated row is written).
    let history_rows = generated.saturating_sub(full_records);
    let rows_rate = common::rate(generated as usize, full_time);
    println!(
        "full sync into PostgreSQL: {} records + {} field-history rows = {} rows in {:.1} s = {} records/s, {} rows/s ({:.2}× the generator alone); peak RSS {:.0} MB",
        common::thousands(full_records as f64),
        common::thousands(history_rows as f64),
        common::thousands(generated as f64),
        full_time.as_secs_f64(),
        common::thousands(full_rate),
        common::thousands(rows_rate),
        rows_rate / gen_rate,
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    let per_record_full = full_time.as_secs_f64() / full_records as f64;

    for day in 1..=2 {
        let started = Instant::now();
        let inc = pandora
            .sync(ws, "sample", SyncMode::Incremental, &no_progress)
            .await
            .expect("incremental sync");
        let inc_time = started.elapsed();
        assert!(
            inc.error.is_none(),
            "incremental sync failed: {:?}",
            inc.error
        );
        let inc_records = records(&inc);
        let per_record = inc_time.as_secs_f64() / inc_records.max(1) as f64;
        println!(
            "incremental sync, day {day}: {} records ({:.2}% of the full sync) in {:.2} s = {:.1}% of the full sync's time; {:.1} µs per record vs {:.1} µs in the full sync ({:.2}×); peak RSS {:.0} MB",
            common::thousands(inc_records as f64),
            100.0 * inc_records as f64 / full_records as f64,
            inc_time.as_secs_f64(),
            100.0 * inc_time.as_secs_f64() / full_time.as_secs_f64(),
            per_record * 1e6,
            per_record_full * 1e6,
            per_record / per_record_full,
            peak_rss_mb().unwrap_or(f64::NAN)
        );
    }
}
