//! The five skills over a synced `sample` workspace in PostgreSQL (default
//! 1,000,000 deals and their field history): loading the skill context,
//! computing each skill on it, and end to end (load + all five), with the
//! process's peak RSS.
//!
//! The load is measured against a baseline in the same run: sqlx streaming
//! the same rows of `deals` and `deal_changes` (the columns the loader
//! needs), decoded to their column types but building nothing — the floor a
//! loader over this driver and schema could reach.
//!
//! Syncing a million deals takes minutes, so the database can be kept
//! between runs: with `PANDORA_BENCH_PGDATA=/some/dir` the PostgreSQL
//! cluster lives in that directory, the synced workspace is kept in a
//! database named after its size and seed, and a later run with the same
//! size reuses it (skipping the sync). Without it, a throwaway database is
//! synced each run.
//!
//! ```text
//! cargo bench -p pandora-store-postgres --bench skills_sample
//! PANDORA_BENCH_DEALS=100000 PANDORA_BENCH_PGDATA=/tmp/pandora-bench-pg \
//!     cargo bench -p pandora-store-postgres --bench skills_sample
//! ```
//!
//! `PANDORA_BENCH_REPEAT` (default 3) runs the load and the computations
//! that many times and reports the fastest, and the median, of each.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use pandora_core::model::{ConnectionStatus, NewConnection, NewWorkspace, SyncMode, WorkspaceId};
use pandora_core::query::PageRequest;
use pandora_core::skill::loader::{load_context, LoadRequest};
use pandora_core::skill::{Settings, SkillContext, SkillInputs};
use pandora_core::store::{Store, WorkspaceStore};
use pandora_core::Pandora;
use pandora_store_postgres::{testing, PgStore};
use sqlx::Row;

/// The sample's epoch 0: the data is as of this day.
const START: &str = "2026-05-15";
/// The period reported on: the quarter holding `START`, half gone.
const PERIOD: &str = "2026-Q2";
/// The workspace's name once its full sync succeeded (the marker a kept
/// database is reused on).
const SYNCED: &str = "Skills bench (synced)";
const SEED: u64 = 42;

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

fn no_progress(_: &pandora_core::sync::SyncOutcome) {}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Fastest and median of `samples`.
fn best_median(samples: &[Duration]) -> (Duration, Duration) {
    let mut s = samples.to_vec();
    s.sort();
    (s[0], s[s.len() / 2])
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().take(3).collect();
            format!("load average {}", f.join(" "))
        })
        .unwrap_or_default()
}

/// The store with the synced sample workspace: reused from a kept cluster
/// when it is there, else synced now.
async fn synced_store(deals: usize, config: &serde_json::Value) -> (PgStore, WorkspaceId) {
    let url = match std::env::var_os("PANDORA_BENCH_PGDATA") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            testing::kept_server_url(&dir).await;
            let name = format!(
                "pandora_bench_skills_{deals}_{SEED}_{}",
                START.replace('-', "")
            );
            if testing::ensure_database(&name).await {
                let url = testing::database_url(&name).await;
                let store = PgStore::connect_with(&url, 4)
                    .await
                    .unwrap_or_else(|e| panic!("connect: {e}"));
                let found = store
                    .list_workspaces(&PageRequest::first(100))
                    .await
                    .expect("workspaces")
                    .data
                    .into_iter()
                    .find(|w| w.name == SYNCED);
                if let Some(ws) = found {
                    println!(
                        "reusing the synced workspace in {} (database {name})",
                        dir.display()
                    );
                    return (store, ws.id);
                }
                println!("database {name} holds no finished sync: syncing again");
                store.pool().close().await;
                testing::drop_database(&name).await;
                testing::ensure_database(&name).await;
            }
            testing::database_url(&name).await
        }
        _ => testing::fresh_database_url().await,
    };
    let store = PgStore::connect_with(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let pandora = Pandora::builder()
        .store(store.clone())
        .connectors(pandora_connectors::all())
        .build()
        .expect("build");
    let ws = pandora
        .create_workspace(NewWorkspace {
            name: "Skills bench".into(),
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
                config: config.clone(),
            },
        )
        .await
        .expect("connection");
    let started = Instant::now();
    let run = pandora
        .sync(ws, "sample", SyncMode::Full, &no_progress)
        .await
        .expect("full sync");
    assert!(run.error.is_none(), "full sync failed: {:?}", run.error);
    // Fresh statistics for the planner, as autovacuum would give a settled database.
    sqlx::query("VACUUM ANALYZE")
        .execute(store.pool())
        .await
        .expect("vacuum analyze");
    pandora
        .store()
        .update_workspace(
            ws,
            &pandora_core::model::WorkspacePatch {
                name: Some(SYNCED.into()),
                settings: None,
            },
        )
        .await
        .expect("mark synced");
    println!(
        "synced {deals} sample deals in {} (peak RSS so far {:.0} MB)",
        secs(started.elapsed()),
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    (store, ws)
}

/// The baseline: stream the loader's rows of `deals` and `deal_changes`,
/// decoding each column, building nothing. Returns (deal rows, change rows).
async fn raw_read(store: &PgStore, ws: WorkspaceId) -> (u64, u64) {
    let mut conn = store.pool().acquire().await.expect("connection");
    let mut deals = 0u64;
    let mut bytes = 0usize;
    let mut rows = sqlx::query(
        "SELECT id, source, data, created_at, deleted_at FROM deals \
         WHERE workspace_id = $1 ORDER BY id",
    )
    .bind(ws)
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.expect("deals") {
        let _: uuid::Uuid = row.get(0);
        let s: &str = row.get(1);
        let data: &[u8] = row.get_unchecked(2);
        let _: DateTime<Utc> = row.get(3);
        let _: Option<DateTime<Utc>> = row.get(4);
        bytes += s.len() + data.len();
        deals += 1;
    }
    drop(rows);
    let mut changes = 0u64;
    let mut rows = sqlx::query(
        "SELECT id, deal_id, field, old_value, new_value, changed_at FROM deal_changes \
         WHERE workspace_id = $1 ORDER BY deal_id, changed_at, id",
    )
    .bind(ws)
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.expect("changes") {
        let _: uuid::Uuid = row.get(0);
        let _: uuid::Uuid = row.get(1);
        let f: &str = row.get(2);
        let o: Option<&str> = row.get(3);
        let n: Option<&str> = row.get(4);
        let _: DateTime<Utc> = row.get(5);
        bytes += f.len() + o.map_or(0, str::len) + n.map_or(0, str::len);
        changes += 1;
    }
    std::hint::black_box(bytes);
    (deals, changes)
}

async fn count(store: &PgStore, table: &str, ws: WorkspaceId) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE workspace_id = $1"
    ))
    .bind(ws)
    .fetch_one(store.pool())
    .await
    .expect("count")
}

async fn run() {
    let deals = common::env_usize("PANDORA_BENCH_DEALS", 1_000_000);
    let repeat = common::env_usize("PANDORA_BENCH_REPEAT", 3).max(1);
    let config = serde_json::json!({"deals": deals, "seed": SEED, "start": START});
    let (store, ws) = synced_store(deals, &config).await;
    let registry = pandora_skills::all();
    let period = registry.parse_period(PERIOD).expect("period");
    let as_of: DateTime<Utc> = NaiveDate::parse_from_str(START, "%Y-%m-%d")
        .expect("start")
        .and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_utc();
    let skills: Vec<_> = registry
        .ids()
        .into_iter()
        .map(|id| registry.get(id).expect("skill"))
        .collect();
    // One context for all five: the union of their inputs.
    let inputs = skills.iter().fold(SkillInputs::default(), |acc, s| {
        let i = s.info().inputs;
        SkillInputs {
            contacts: acc.contacts || i.contacts,
            conversations: acc.conversations || i.conversations,
        }
    });
    let settings: Vec<Settings> = skills
        .iter()
        .map(|s| Settings::resolve(&s.info().settings, &[]).expect("defaults"))
        .collect();

    println!(
        "\nskills over the sample workspace: {} deals (seed {SEED}, start {START}), period {PERIOD}, as of {as_of}; {repeat} rounds; {}",
        common::thousands(deals as f64),
        uptime()
    );
    for (table, label) in [
        ("deals", "deals"),
        ("deal_changes", "field-history rows"),
        ("users", "users"),
        ("contacts", "contacts"),
        ("deal_contacts", "deal–contact roles"),
        ("conversations", "conversations"),
    ] {
        println!(
            "  stored {label}: {}",
            common::thousands(count(&store, table, ws).await as f64)
        );
    }

    let dyn_store: &dyn Store = &store;
    let mut baseline = Vec::new();
    let mut loads = Vec::new();
    let mut computes: Vec<Vec<Duration>> = vec![Vec::new(); skills.len()];
    let mut totals = Vec::new();
    let mut ends = Vec::new();
    let mut ctx: Option<SkillContext> = None;
    for round in 0..repeat {
        // Baseline first, so that both read a warm cache alike.
        let started = Instant::now();
        let (raw_deals, raw_changes) = raw_read(&store, ws).await;
        baseline.push(started.elapsed());

        drop(ctx.take());
        let started = Instant::now();
        let loaded = load_context(
            dyn_store,
            LoadRequest {
                workspace: ws,
                as_of,
                period: period.clone(),
                settings: settings[0].clone(),
                inputs,
                previous: None,
            },
        )
        .await
        .expect("load");
        let load = started.elapsed();
        loads.push(load);
        let mut loaded = loaded;

        let started = Instant::now();
        let mut report_bytes = Vec::new();
        for (k, skill) in skills.iter().enumerate() {
            loaded.settings = settings[k].clone();
            let t = Instant::now();
            let report = skill.run(&loaded).expect("skill run");
            computes[k].push(t.elapsed());
            report_bytes.push(serde_json::to_vec(&report).expect("json").len());
        }
        let total = started.elapsed();
        totals.push(total);
        if round == 0 {
            // What three of the skills share: matching conversations to deals.
            let t = Instant::now();
            let engagement = pandora_skills::engagement::Engagement::build(&loaded, &[], 14);
            let touches: usize = engagement.touches.values().map(Vec::len).sum();
            println!(
                "  (of which each of single_thread_alert, deal_risk, rep_scorecard matches conversations to deals: {} for {} touches)",
                secs(t.elapsed()),
                common::thousands(touches as f64)
            );
        }
        ends.push(load + total);
        if round == 0 {
            let changes: usize = loaded.deals.iter().map(|d| d.changes.len()).sum();
            println!(
                "  loaded: {} deals with {} changes, {} users, {} contacts, {} roles, {} conversations (raw read: {} deal rows, {} change rows)",
                common::thousands(loaded.deals.len() as f64),
                common::thousands(changes as f64),
                common::thousands(loaded.users.len() as f64),
                common::thousands(loaded.contacts.len() as f64),
                common::thousands(loaded.deal_contacts.len() as f64),
                common::thousands(loaded.conversations.len() as f64),
                common::thousands(raw_deals as f64),
                common::thousands(raw_changes as f64),
            );
            for (k, skill) in skills.iter().enumerate() {
                println!(
                    "  report {}: {} bytes of JSON",
                    skill.info().id,
                    common::thousands(report_bytes[k] as f64)
                );
            }
        }
        println!(
            "  round {}: load {}, compute {}, end to end {} (baseline raw read {})",
            round + 1,
            secs(load),
            secs(total),
            secs(load + total),
            secs(baseline[round])
        );
        ctx = Some(loaded);
    }

    let (b, bm) = best_median(&baseline);
    let (l, lm) = best_median(&loads);
    println!("\nresults (fastest / median of {repeat}):");
    println!(
        "  baseline (sqlx raw read of deals + changes): {} / {}",
        secs(b),
        secs(bm)
    );
    println!(
        "  load the context from PostgreSQL:            {} / {}  = {:.2}× the baseline",
        secs(l),
        secs(lm),
        l.as_secs_f64() / b.as_secs_f64()
    );
    for (k, skill) in skills.iter().enumerate() {
        let (c, cm) = best_median(&computes[k]);
        println!(
            "  compute {:<22}               {} / {}",
            skill.info().id,
            secs(c),
            secs(cm)
        );
    }
    let (t, tm) = best_median(&totals);
    let (e, em) = best_median(&ends);
    println!(
        "  compute, all five:                           {} / {}  (target < 1 s)",
        secs(t),
        secs(tm)
    );
    println!(
        "  end to end (load + all five):                {} / {}  (target < 5 s)",
        secs(e),
        secs(em)
    );
    println!(
        "  peak RSS: {:.0} MB; {}",
        peak_rss_mb().unwrap_or(f64::NAN),
        uptime()
    );
}
