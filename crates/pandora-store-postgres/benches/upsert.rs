//! Upsert throughput of `write_batch` for deals, against `COPY` of the same
//! rows into a table with the same indexes.
//!
//! ```text
//! cargo bench -p pandora-store-postgres --bench upsert
//! PANDORA_BENCH_DEALS=100000 cargo bench -p pandora-store-postgres --bench upsert
//! ```
//!
//! Environment: `PANDORA_BENCH_DEALS` (default 1,000,000), `PANDORA_BENCH_PAGE`
//! (deals per `write_batch`; default: the best of a short calibration run),
//! `PANDORA_TEST_DATABASE_URL` (a server to use instead of a throwaway one).

mod common;

use std::time::{Duration, Instant};

use common::{deals_batch, env_usize, rate, thousands, workspace, SOURCE};
use pandora_core::batch::{PreparedBatch, RecordKind};
use pandora_core::model::{self, WorkspaceId};
use pandora_core::store::RecordStore;
use pandora_store_postgres::{testing, PgStore};
use sqlx::Connection;

const CANDIDATE_PAGES: [usize; 4] = [1_000, 2_500, 5_000, 10_000];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    runtime.block_on(run());
}

async fn store() -> PgStore {
    let url = testing::fresh_database_url().await;
    PgStore::connect_with(&url, 2)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn checkpoint(store: &PgStore) {
    sqlx::query("CHECKPOINT")
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("CHECKPOINT: {e}"));
}

fn pages(total: usize, page: usize) -> impl Iterator<Item = std::ops::Range<u64>> {
    (0..total)
        .step_by(page)
        .map(move |start| start as u64..(start + page).min(total) as u64)
}

/// Writes deals `0..total` in pages; returns the time spent in `write_batch`
/// (preparing the batches is the caller's work and not counted).
async fn upsert_all(
    store: &PgStore,
    ws: WorkspaceId,
    total: usize,
    page: usize,
    expect: fn(&pandora_core::model::StreamCounts) -> u64,
) -> Duration {
    let mut spent = Duration::ZERO;
    let mut counted = 0;
    for range in pages(total, page) {
        let prepared: PreparedBatch = deals_batch(range)
            .prepare()
            .unwrap_or_else(|e| panic!("prepare: {e}"));
        let started = Instant::now();
        let outcome = store
            .write_batch(ws, &prepared, None)
            .await
            .unwrap_or_else(|e| panic!("write_batch: {e}"));
        spent += started.elapsed();
        counted += expect(&outcome.of(RecordKind::Deal));
    }
    assert_eq!(counted as usize, total, "unexpected counts");
    spent
}

async fn calibrate(total: usize) -> usize {
    let sample = (total / 10).clamp(10_000, 50_000);
    println!(
        "calibrating the page size on {} deals each:",
        thousands(sample as f64)
    );
    let mut best = (0.0, CANDIDATE_PAGES[0]);
    for page in CANDIDATE_PAGES {
        let store = store().await;
        let ws = workspace(&store).await;
        let spent = upsert_all(&store, ws, sample, page, |c| c.inserted).await;
        let r = rate(sample, spent);
        println!("  page {:>6}: {:>10} deals/s", page, thousands(r));
        if r > best.0 {
            best = (r, page);
        }
        store.pool().close().await;
    }
    best.1
}

/// COPY text format of one value.
fn copy_text(out: &mut String, value: Option<&str>) {
    let Some(v) = value else {
        out.push_str("\\N");
        return;
    };
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

const COPY_COLUMNS: &str = "workspace_id, id, source, source_id, data, content_hash, created_at, \
     updated_at, name, amount, currency, pipeline, stage, stage_category, close_date, \
     owner_source_id, account_source_id, source_updated_at";

/// The same rows `write_batch` stores, as COPY text chunks (one per page).
fn copy_chunks(ws: WorkspaceId, total: usize, page: usize) -> Vec<Vec<u8>> {
    let now = model::now().to_rfc3339();
    pages(total, page)
        .map(|range| {
            let prepared = deals_batch(range)
                .prepare()
                .unwrap_or_else(|e| panic!("prepare: {e}"));
            let mut text = String::with_capacity(prepared.deals.len() * 1_000);
            for p in &prepared.deals {
                let d = &p.record;
                let hash = format!("\\x{}", hex(&p.hash));
                let fields: [Option<String>; 18] = [
                    Some(ws.to_string()),
                    Some(model::new_id().to_string()),
                    Some(SOURCE.to_string()),
                    Some(p.source_id.clone()),
                    Some(p.json.clone()),
                    Some(hash),
                    Some(now.clone()),
                    Some(now.clone()),
                    Some(d.name.clone()),
                    d.amount.map(|a| a.to_string()),
                    d.currency.clone(),
                    d.pipeline.clone(),
                    d.stage.clone(),
                    Some(d.stage_category.as_str().to_string()),
                    d.close_date.map(|c| c.to_string()),
                    d.owner_source_id.clone(),
                    d.account_source_id.clone(),
                    d.source_updated_at.map(|t| t.to_rfc3339()),
                ];
                for (k, f) in fields.iter().enumerate() {
                    if k > 0 {
                        text.push('\t');
                    }
                    copy_text(&mut text, f.as_deref());
                }
                text.push('\n');
            }
            text.into_bytes()
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn copy_all(store: &PgStore, chunks: &[Vec<u8>]) -> (u64, Duration) {
    let mut conn = store
        .pool()
        .acquire()
        .await
        .unwrap_or_else(|e| panic!("acquire: {e}"));
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("COPY bench_copy ({COPY_COLUMNS}) FROM STDIN"))
        .await
        .unwrap_or_else(|e| panic!("COPY: {e}"));
    for chunk in chunks {
        copy.send(chunk.as_slice())
            .await
            .unwrap_or_else(|e| panic!("COPY send: {e}"));
    }
    let rows = copy
        .finish()
        .await
        .unwrap_or_else(|e| panic!("COPY finish: {e}"));
    (rows, started.elapsed())
}

async fn run() {
    let total = env_usize("PANDORA_BENCH_DEALS", 1_000_000);
    println!("upsert benchmark: {} deals", thousands(total as f64));
    if std::env::var(testing::DATABASE_URL_ENV).is_err() {
        println!("(throwaway local server: fsync=off, synchronous_commit=off; the ratio to COPY is what carries over)");
    }
    let page = match std::env::var("PANDORA_BENCH_PAGE") {
        Ok(_) => env_usize("PANDORA_BENCH_PAGE", 5_000),
        Err(_) => calibrate(total).await,
    };
    println!("page size: {page} deals per write_batch");

    let store = store().await;
    let ws = workspace(&store).await;
    checkpoint(&store).await;
    let inserted = upsert_all(&store, ws, total, page, |c| c.inserted).await;
    let upsert_rate = rate(total, inserted);

    checkpoint(&store).await;
    let unchanged = upsert_all(&store, ws, total, page, |c| c.unchanged).await;
    let unchanged_rate = rate(total, unchanged);

    sqlx::query("CREATE TABLE bench_copy (LIKE deals INCLUDING ALL)")
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("create bench_copy: {e}"));
    let chunks = copy_chunks(ws, total, page);
    checkpoint(&store).await;
    let (copied, copy_time) = copy_all(&store, &chunks).await;
    assert_eq!(copied as usize, total);
    let copy_rate = rate(total, copy_time);

    let mut conn = store
        .pool()
        .acquire()
        .await
        .unwrap_or_else(|e| panic!("acquire: {e}"));
    let same: bool = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM deals) = (SELECT count(*) FROM bench_copy) \
         AND (SELECT pg_relation_size('deals') > 0)",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("check: {e}"));
    assert!(same, "both tables hold every row");
    let _ = conn.ping().await;
    drop(conn);

    println!();
    let row = |what: &str, time: Duration, per_second: f64| {
        println!(
            "| {what:<40} | {:>8.2} s | {:>10} |",
            time.as_secs_f64(),
            thousands(per_second)
        );
    };
    println!(
        "| {:<40} | {:>10} | {:>10} |",
        "operation", "time", "rows/s"
    );
    println!("|{:-<42}|{:-<12}|{:-<12}|", "", "", "");
    row(
        &format!("write_batch, new deals (pages of {page})"),
        inserted,
        upsert_rate,
    );
    row("write_batch, unchanged deals", unchanged, unchanged_rate);
    row("COPY into bench_copy (same indexes)", copy_time, copy_rate);
    println!();
    println!(
        "upsert / COPY = {:.2} (target >= 0.50)",
        upsert_rate / copy_rate
    );
    store.pool().close().await;
}
