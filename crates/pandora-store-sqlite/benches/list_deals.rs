//! Latency of `list_deals` on a large SQLite store.
//!
//! Loads `PANDORA_BENCH_DEALS` (default 1,000,000) realistic deals — with
//! owners, accounts, stages, some NULL amounts and close dates — into a fresh
//! database file, then times `list_deals` with `limit = 50`: the first page and
//! a page half-way through the list (its cursor reached by paging with the
//! largest pages), for several sorts, `PANDORA_BENCH_SAMPLES` (default 200)
//! samples each. Prints the load throughput and a p50/p99 table. Deals are
//! written in batches of `PANDORA_BENCH_BATCH` (default 5,000).
//!
//! ```text
//! cargo bench -p pandora-store-sqlite --bench list_deals
//! PANDORA_BENCH_DEALS=100000 cargo bench -p pandora-store-sqlite --bench list_deals
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use pandora_core::batch::RecordBatch;
use pandora_core::model::{
    self, NewAccount, NewDeal, NewPipelineStage, NewUser, StageCategory, Workspace, WorkspaceId,
};
use pandora_core::query::{DealFilter, Direction, PageRequest, Sort, SortKey, MAX_LIMIT};
use pandora_core::store::{RecordStore, WorkspaceStore};
use pandora_store_sqlite::SqliteStore;
use rust_decimal::Decimal;

type BenchResult<T> = Result<T, Box<dyn Error>>;

const SOURCE: &str = "hubspot";
const OWNERS: usize = 250;
const STAGES: [(&str, StageCategory); 7] = [
    ("appointmentscheduled", StageCategory::Open),
    ("qualifiedtobuy", StageCategory::Open),
    ("presentationscheduled", StageCategory::Open),
    ("decisionmakerboughtin", StageCategory::Open),
    ("contractsent", StageCategory::Open),
    ("closedwon", StageCategory::Won),
    ("closedlost", StageCategory::Lost),
];
const PRIORITIES: [&str; 3] = ["low", "medium", "high"];
const PRODUCTS: [&str; 6] = [
    "Platform",
    "Expansion",
    "Renewal",
    "Pilot",
    "Add-on",
    "Services",
];

/// A small deterministic generator (SplitMix64), so every run loads the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn env_usize(name: &str, default: usize) -> BenchResult<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v.trim().replace('_', "").parse()?),
        Err(_) => Ok(default),
    }
}

fn main() -> BenchResult<()> {
    let deals = env_usize("PANDORA_BENCH_DEALS", 1_000_000)?;
    let samples = env_usize("PANDORA_BENCH_SAMPLES", 200)?.max(1);
    let batch = env_usize("PANDORA_BENCH_BATCH", 5_000)?.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(deals, samples, batch))
}

async fn run(deals: usize, samples: usize, batch: usize) -> BenchResult<()> {
    let dir = tempfile::TempDir::new()?;
    let store = SqliteStore::open(dir.path().join("bench.db")).await?;
    store.migrate().await?;
    let ws = create_workspace(&store).await?;

    println!("loading {deals} deals (batches of {batch}) ...");
    let load = load(&store, ws, deals, batch).await?;
    let writing: Duration = load.batches.iter().sum();
    println!(
        "loaded {deals} deals in {:.1} s: {:.0} deals/s end to end (generate, prepare, write)",
        load.total.as_secs_f64(),
        deals as f64 / load.total.as_secs_f64(),
    );
    println!(
        "write_batch alone: {:.0} deals/s; per {batch}-deal batch p50 {:.1} ms, p99 {:.1} ms",
        deals as f64 / writing.as_secs_f64(),
        ms(percentile(&load.batches, 50.0)),
        ms(percentile(&load.batches, 99.0)),
    );
    let file_mib = std::fs::metadata(dir.path().join("bench.db"))?.len() as f64 / 1_048_576.0;
    println!("database file: {file_mib:.0} MiB (plus WAL)");

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
    let filter = DealFilter::default();
    println!();
    println!("list_deals, limit 50, {samples} samples each");
    println!(
        "{:<27} {:<18} {:>10} {:>10} {:>10}",
        "sort", "page", "p50 ms", "p99 ms", "mean ms"
    );
    for (label, sort) in sorts {
        let first = PageRequest {
            limit: 50,
            sort,
            after: None,
        };
        let deep_cursor = cursor_at(&store, ws, sort, deals / 2).await?;
        let deep = PageRequest {
            after: deep_cursor,
            ..first.clone()
        };
        for (page_label, request) in [
            ("first".to_owned(), first),
            (format!("deep (~{})", deals / 2), deep),
        ] {
            let times = measure(&store, ws, &filter, &request, samples).await?;
            println!(
                "{:<27} {:<18} {:>10.2} {:>10.2} {:>10.2}",
                label,
                page_label,
                ms(percentile(&times, 50.0)),
                ms(percentile(&times, 99.0)),
                ms(mean(&times)),
            );
        }
    }
    store.close().await;
    Ok(())
}

async fn create_workspace(store: &SqliteStore) -> BenchResult<WorkspaceId> {
    let now = model::now();
    let ws = Workspace {
        id: model::new_id(),
        name: "Bench".into(),
        settings: serde_json::json!({}),
        created_at: now,
        updated_at: now,
    };
    store.create_workspace(&ws).await?;
    Ok(ws.id)
}

struct Load {
    total: Duration,
    batches: Vec<Duration>,
}

/// Writes owners, accounts and stages, then `count` deals, timing the deal batches.
async fn load(
    store: &SqliteStore,
    ws: WorkspaceId,
    count: usize,
    batch_size: usize,
) -> BenchResult<Load> {
    let mut rng = Rng(42);
    let accounts = (count / 20).max(1);
    let mut refs = RecordBatch::new(SOURCE);
    refs.users = (0..OWNERS)
        .map(|i| NewUser {
            source_id: format!("u{i}"),
            email: Some(format!("rep{i}@example.com")),
            name: Some(format!("Rep {i}")),
            manager_source_id: (i >= 10).then(|| format!("u{}", i % 10)),
            team: Some(format!("Team {}", i % 10)),
            active: true,
            properties: serde_json::json!({}),
            ..Default::default()
        })
        .collect();
    refs.stages = STAGES
        .iter()
        .enumerate()
        .map(|(i, (stage, category))| NewPipelineStage {
            pipeline: "default".into(),
            stage: (*stage).into(),
            category: *category,
            display_order: i32::try_from(i).ok(),
            ..Default::default()
        })
        .collect();
    store.write_batch(ws, &refs.prepare()?, None).await?;
    for start in (0..accounts).step_by(batch_size) {
        let mut batch = RecordBatch::new(SOURCE);
        batch.accounts = (start..(start + batch_size).min(accounts))
            .map(|i| NewAccount {
                source_id: format!("a{i}"),
                name: Some(format!("Account {i}")),
                domain: Some(format!("account{i}.example.com")),
                industry: Some(["Software", "Retail", "Finance", "Health"][i % 4].into()),
                owner_source_id: Some(format!("u{}", i % OWNERS)),
                properties: serde_json::json!({}),
                ..Default::default()
            })
            .collect();
        store.write_batch(ws, &batch.prepare()?, None).await?;
    }

    let base = NaiveDate::from_ymd_opt(2024, 1, 1).ok_or("bad date")?;
    let epoch: DateTime<Utc> = DateTime::from_timestamp(1_704_067_200, 0).ok_or("bad time")?;
    let mut batches = Vec::new();
    let started = Instant::now();
    for start in (0..count).step_by(batch_size) {
        let mut batch = RecordBatch::new(SOURCE);
        batch.deals = (start..(start + batch_size).min(count))
            .map(|i| realistic_deal(&mut rng, i, accounts, base, epoch))
            .collect();
        let prepared = batch.prepare()?;
        let t = Instant::now();
        store.write_batch(ws, &prepared, None).await?;
        batches.push(t.elapsed());
    }
    Ok(Load {
        total: started.elapsed(),
        batches,
    })
}

fn realistic_deal(
    rng: &mut Rng,
    i: usize,
    accounts: usize,
    base: NaiveDate,
    epoch: DateTime<Utc>,
) -> NewDeal {
    let (stage, category) = STAGES[rng.below(STAGES.len() as u64) as usize];
    let account = rng.below(accounts as u64);
    let amount = (!rng.chance(8)).then(|| {
        // 500.00 – 250,000.00, two decimals.
        Decimal::new(50_000 + rng.below(24_950_000) as i64, 2)
    });
    let close_date = (!rng.chance(5)).then(|| base + Days::days(rng.below(730) as i64));
    let created = epoch + Days::seconds(rng.below(63_072_000) as i64);
    NewDeal {
        source_id: format!("{}", 10_000_000 + i),
        name: format!(
            "Account {account} – {} {}",
            PRODUCTS[rng.below(PRODUCTS.len() as u64) as usize],
            2024 + rng.below(3)
        ),
        amount,
        currency: Some(if rng.chance(80) { "USD" } else { "EUR" }.into()),
        pipeline: Some("default".into()),
        stage: Some(stage.into()),
        stage_label: Some(stage.replace('_', " ")),
        stage_category: category,
        stage_order: None,
        probability: Some(rng.below(101) as f64 / 100.0),
        forecast_category: Some(["pipeline", "best_case", "commit"][rng.below(3) as usize].into()),
        owner_source_id: Some(format!("u{}", rng.below(OWNERS as u64))),
        account_source_id: Some(format!("a{account}")),
        close_date,
        source_created_at: Some(created),
        source_updated_at: Some(created + Days::seconds(rng.below(5_000_000) as i64)),
        properties: serde_json::json!({
            "hs_priority": PRIORITIES[rng.below(3) as usize],
            "dealtype": if rng.chance(70) { "newbusiness" } else { "existingbusiness" },
            "hs_num_associated_contacts": rng.below(12),
        }),
    }
}

/// The cursor after about `skip` rows in `sort`, reached with the largest pages.
async fn cursor_at(
    store: &SqliteStore,
    ws: WorkspaceId,
    sort: Sort,
    skip: usize,
) -> BenchResult<Option<pandora_core::query::Cursor>> {
    let filter = DealFilter::default();
    let mut request = PageRequest {
        limit: MAX_LIMIT,
        sort,
        after: None,
    };
    let mut seen = 0;
    let mut cursor = None;
    while seen < skip {
        let page = store.list_deals(ws, &filter, &request).await?;
        seen += page.data.len();
        match page.next_cursor {
            Some(next) => {
                cursor = Some(next.clone());
                request = request.next(next);
            }
            None => break,
        }
    }
    Ok(cursor)
}

async fn measure(
    store: &SqliteStore,
    ws: WorkspaceId,
    filter: &DealFilter,
    request: &PageRequest,
    samples: usize,
) -> BenchResult<Vec<Duration>> {
    for _ in 0..5 {
        store.list_deals(ws, filter, request).await?;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let page = store.list_deals(ws, filter, request).await?;
        times.push(t.elapsed());
        if page.data.len() != request.limit as usize {
            return Err(format!("expected a full page, got {} rows", page.data.len()).into());
        }
    }
    Ok(times)
}

fn percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn mean(times: &[Duration]) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    times.iter().sum::<Duration>() / times.len() as u32
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
