//! Shared by the benchmarks: deterministic, realistic deals and small helpers.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use pandora_core::batch::RecordBatch;
use pandora_core::model::{self, NewDeal, NewUser, StageCategory, Workspace, WorkspaceId};
use pandora_core::store::WorkspaceStore;
use pandora_store_postgres::PgStore;
use rust_decimal::Decimal;

/// The source every benchmark record comes from.
pub const SOURCE: &str = "hubspot";
/// Users (deal owners) in the benchmark workspace.
pub const OWNERS: u64 = 200;

/// A size from the environment, e.g. `PANDORA_BENCH_DEALS`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
        Err(_) => default,
    }
}

/// SplitMix64: a well-mixed 64-bit value for `(i, field)`.
fn mix(i: u64, field: u64) -> u64 {
    let mut z = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(field.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const STAGES: [(&str, &str, StageCategory, f64); 6] = [
    (
        "appointmentscheduled",
        "Appointment scheduled",
        StageCategory::Open,
        0.2,
    ),
    (
        "qualifiedtobuy",
        "Qualified to buy",
        StageCategory::Open,
        0.4,
    ),
    (
        "presentationscheduled",
        "Presentation scheduled",
        StageCategory::Open,
        0.6,
    ),
    (
        "decisionmakerboughtin",
        "Decision maker bought-in",
        StageCategory::Open,
        0.8,
    ),
    ("closedwon", "Closed won", StageCategory::Won, 1.0),
    ("closedlost", "Closed lost", StageCategory::Lost, 0.0),
];

const WORDS: [&str; 16] = [
    "renewal",
    "expansion",
    "pilot",
    "enterprise",
    "security",
    "review",
    "procurement",
    "champion",
    "budget",
    "quarter",
    "integration",
    "migration",
    "pricing",
    "legal",
    "onboarding",
    "rollout",
];

fn pick<'a>(items: &[&'a str], v: u64) -> &'a str {
    items[(v % items.len() as u64) as usize]
}

/// Deal number `i`: the same on every call. Varied stages, amounts (5% none),
/// close dates over two years (3% none), 200 owners, 20,000 accounts, and
/// about 300 bytes of vendor properties.
pub fn deal(i: u64) -> NewDeal {
    let r = |field| mix(i, field);
    let (stage, label, category, probability) = STAGES[(r(1) % STAGES.len() as u64) as usize];
    let base = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let created = base + TimeDelta::seconds((r(8) % 40_000_000) as i64);
    let description: Vec<&str> = (0..18).map(|k| pick(&WORDS, r(20 + k))).collect();
    NewDeal {
        source_id: format!("{}", 10_000_000_000 + i),
        name: format!(
            "{} {} — {}",
            pick(
                &["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark"],
                r(9)
            ),
            i,
            pick(&WORDS, r(10))
        ),
        amount: (r(2) % 20 != 0).then(|| Decimal::new((100_000 + r(3) % 50_000_000) as i64, 2)),
        currency: Some(pick(&["USD", "USD", "USD", "EUR", "GBP"], r(11)).to_string()),
        pipeline: Some(pick(&["default", "default", "renewals"], r(12)).to_string()),
        stage: Some(stage.to_string()),
        stage_label: Some(label.to_string()),
        stage_category: category,
        stage_order: Some((r(1) % STAGES.len() as u64) as i32),
        probability: Some(probability),
        forecast_category: Some(pick(&["pipeline", "best_case", "commit", "closed"], r(13)).into()),
        owner_source_id: Some(format!("user-{}", r(6) % OWNERS)),
        account_source_id: Some(format!("account-{}", r(7) % 20_000)),
        close_date: (r(4) % 33 != 0).then(|| {
            NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default()
                + TimeDelta::days((r(5) % 730) as i64)
        }),
        source_created_at: Some(created),
        source_updated_at: Some(created + TimeDelta::seconds((r(14) % 5_000_000) as i64)),
        properties: serde_json::json!({
            "hs_priority": pick(&["low", "medium", "high"], r(15)),
            "dealtype": pick(&["newbusiness", "existingbusiness"], r(16)),
            "lead_source": pick(&["inbound", "outbound", "partner", "event"], r(17)),
            "num_associated_contacts": r(18) % 12,
            "hs_forecast_amount": (r(19) % 1_000_000) as f64 / 100.0,
            "description": description.join(" "),
        }),
    }
}

/// The deal owners.
pub fn owners() -> Vec<NewUser> {
    (0..OWNERS)
        .map(|u| NewUser {
            source_id: format!("user-{u}"),
            email: Some(format!("rep{u}@example.com")),
            name: Some(format!("Rep {u}")),
            manager_source_id: (u >= 10).then(|| format!("user-{}", u % 10)),
            active: true,
            properties: serde_json::json!({}),
            ..Default::default()
        })
        .collect()
}

/// A batch of deals `range`.
pub fn deals_batch(range: std::ops::Range<u64>) -> RecordBatch {
    RecordBatch {
        deals: range.map(deal).collect(),
        ..RecordBatch::new(SOURCE)
    }
}

/// Creates the benchmark workspace.
pub async fn workspace(store: &PgStore) -> WorkspaceId {
    let now = model::now();
    let ws = Workspace {
        id: model::new_id(),
        name: "Benchmark".into(),
        settings: serde_json::json!({}),
        created_at: now,
        updated_at: now,
    };
    store
        .create_workspace(&ws)
        .await
        .unwrap_or_else(|e| panic!("create workspace: {e}"));
    ws.id
}

/// `count / elapsed` per second.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// `12,345` style.
pub fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The `p`-th percentile (0–100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}
