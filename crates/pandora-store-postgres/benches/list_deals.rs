//! Latency of `list_deals` (50 per page) with many deals loaded: the first
//! page and a page half-way through the list, per sort order.
//!
//! ```text
//! cargo bench -p pandora-store-postgres --bench list_deals
//! PANDORA_BENCH_DEALS=100000 cargo bench -p pandora-store-postgres --bench list_deals
//! ```
//!
//! Environment: `PANDORA_BENCH_DEALS` (default 1,000,000),
//! `PANDORA_BENCH_SAMPLES` (timed calls per case, default 200),
//! `PANDORA_TEST_DATABASE_URL` (a server to use instead of a throwaway one).

mod common;

use std::time::{Duration, Instant};

use common::{deals_batch, env_usize, ms, owners, percentile, rate, thousands, workspace, SOURCE};
use pandora_core::batch::RecordBatch;
use pandora_core::model::{StageCategory, WorkspaceId};
use pandora_core::query::{DealFilter, Direction, PageRequest, Sort, SortKey, MAX_LIMIT};
use pandora_core::store::RecordStore;
use pandora_store_postgres::{testing, PgStore};

const LOAD_PAGE: usize = 5_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    runtime.block_on(run());
}

async fn load(store: &PgStore, ws: WorkspaceId, total: usize) -> Duration {
    let users = RecordBatch {
        users: owners(),
        ..RecordBatch::new(SOURCE)
    };
    store
        .write_batch(ws, &users.prepare().unwrap_or_else(|e| panic!("{e}")), None)
        .await
        .unwrap_or_else(|e| panic!("write users: {e}"));
    let started = Instant::now();
    for start in (0..total).step_by(LOAD_PAGE) {
        let end = (start + LOAD_PAGE).min(total);
        let batch = deals_batch(start as u64..end as u64);
        let prepared = batch.prepare().unwrap_or_else(|e| panic!("prepare: {e}"));
        store
            .write_batch(ws, &prepared, None)
            .await
            .unwrap_or_else(|e| panic!("write deals: {e}"));
    }
    let spent = started.elapsed();
    sqlx::query("VACUUM ANALYZE")
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("VACUUM ANALYZE: {e}"));
    spent
}

/// The request for the page after `skip` rows (walked with the largest pages).
async fn deep_request(
    store: &PgStore,
    ws: WorkspaceId,
    filter: &DealFilter,
    sort: Sort,
    skip: usize,
) -> PageRequest {
    let mut walk = PageRequest {
        limit: MAX_LIMIT,
        sort,
        after: None,
    };
    let mut walked = 0;
    while walked < skip {
        let page = store
            .list_deals(ws, filter, &walk)
            .await
            .unwrap_or_else(|e| panic!("walk: {e}"));
        walked += page.data.len();
        match page.next_cursor {
            Some(c) => walk = walk.next(c),
            None => break,
        }
    }
    PageRequest {
        limit: 50,
        sort,
        after: walk.after,
    }
}

async fn time(
    store: &PgStore,
    ws: WorkspaceId,
    filter: &DealFilter,
    request: &PageRequest,
    samples: usize,
) -> (Duration, Duration, usize) {
    // Warm-up: plans cached on the connection, pages in memory.
    let mut rows = 0;
    for _ in 0..5 {
        rows = store
            .list_deals(ws, filter, request)
            .await
            .unwrap_or_else(|e| panic!("list: {e}"))
            .data
            .len();
    }
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let page = store
            .list_deals(ws, filter, request)
            .await
            .unwrap_or_else(|e| panic!("list: {e}"));
        took.push(started.elapsed());
        std::hint::black_box(page);
    }
    took.sort();
    (percentile(&took, 50.0), percentile(&took, 99.0), rows)
}

async fn run() {
    let total = env_usize("PANDORA_BENCH_DEALS", 1_000_000);
    let samples = env_usize("PANDORA_BENCH_SAMPLES", 200).max(1);
    println!(
        "list_deals benchmark: {} deals, {samples} samples per case",
        thousands(total as f64)
    );

    let url = testing::fresh_database_url().await;
    let store = PgStore::connect_with(&url, 2)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let ws = workspace(&store).await;
    let loaded = load(&store, ws, total).await;
    println!(
        "loaded in {:.1} s ({} deals/s, pages of {LOAD_PAGE})",
        loaded.as_secs_f64(),
        thousands(rate(total, loaded))
    );

    let owner_id = store
        .list_users(ws, &PageRequest::first(1))
        .await
        .unwrap_or_else(|e| panic!("users: {e}"))
        .data
        .first()
        .map(|u| u.id);
    let sorts = [
        ("updated_at desc (default)", Sort::default()),
        (
            "amount desc",
            Sort {
                key: SortKey::Amount,
                direction: Direction::Desc,
            },
        ),
        (
            "amount asc",
            Sort {
                key: SortKey::Amount,
                direction: Direction::Asc,
            },
        ),
        (
            "close_date asc",
            Sort {
                key: SortKey::CloseDate,
                direction: Direction::Asc,
            },
        ),
    ];
    let no_filter = DealFilter::default();
    let owner_open = DealFilter {
        owner_id,
        status: Some(StageCategory::Open),
        ..Default::default()
    };

    println!();
    println!("| sort                       | filter     | page            | rows | p50       | p99       |");
    println!("|----------------------------|------------|-----------------|------|-----------|-----------|");
    let print =
        |sort: &str, filter: &str, page: &str, (p50, p99, rows): (Duration, Duration, usize)| {
            println!(
                "| {sort:<26} | {filter:<10} | {page:<15} | {rows:>4} | {:>9} | {:>9} |",
                ms(p50),
                ms(p99)
            );
        };
    for (name, sort) in sorts {
        let first = PageRequest {
            limit: 50,
            sort,
            after: None,
        };
        print(
            name,
            "none",
            "first",
            time(&store, ws, &no_filter, &first, samples).await,
        );
        let deep = deep_request(&store, ws, &no_filter, sort, total / 2).await;
        let label = format!("after {}", thousands((total / 2) as f64));
        print(
            name,
            "none",
            &label,
            time(&store, ws, &no_filter, &deep, samples).await,
        );
    }
    let sort = Sort::default();
    let first = PageRequest {
        limit: 50,
        sort,
        after: None,
    };
    print(
        "updated_at desc (default)",
        "owner+open",
        "first",
        time(&store, ws, &owner_open, &first, samples).await,
    );
    store.pool().close().await;
}
