//! How much of HubSpot's rate limit a long sync uses.
//!
//! A local HubSpot (the tests' simulator) enforces 110 requests per rolling
//! 10 s, answering 429 (`TEN_SECONDLY_ROLLING`) beyond it, and sends
//! HubSpot's rate-limit headers. The connector, with its default tuning
//! (110 per 10 s and 11 per second, padded by a small margin), syncs an
//! endless deal list for `HUBSPOT_BENCH_SECS` seconds (default 30). Printed:
//! requests per second, the ratio to the allowed 11 per second (goal: at
//! least 0.90), and the number of 429 answers (goal: 0).
//!
//! `cargo bench -p pandora-connectors --bench hubspot_rate`

#[path = "../tests/support/hubspot_sim.rs"]
mod sim;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pandora_connectors::hubspot::{HubSpotConnector, HubSpotHosts};
use pandora_core::batch::RecordBatch;
use pandora_core::connector::{CheckContext, Connector, RecordSink, StreamCheckpoint, SyncContext};
use pandora_core::model::SyncMode;
use pandora_core::vault::Credentials;
use serde_json::json;

/// Counts pages and stops the sync once the time is up.
struct StopAfter {
    until: Instant,
    deals: usize,
}

#[async_trait]
impl RecordSink for StopAfter {
    async fn push(
        &mut self,
        page: RecordBatch,
        _: Option<StreamCheckpoint>,
    ) -> pandora_core::Result<()> {
        self.deals += page.deals.len();
        if Instant::now() >= self.until {
            return Err(pandora_core::Error::internal("benchmark time is up"));
        }
        Ok(())
    }
}

fn main() {
    let secs: u64 = std::env::var("HUBSPOT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let limit = 110usize;
        let window = Duration::from_secs(10);
        let state = sim::State {
            enforce: Some((limit, window)),
            rate_headers: true,
            // Far more than the run can read: 50 deals per request.
            synthetic_deals: secs as usize * 20 * 50 + 1_000,
            owners: vec![sim::owner("101", "ana@example.com", "Ana", "Lopez", false)],
            ..sim::State::default()
        };
        let (server, sim) = sim::Sim::start(state).await;
        let connector = HubSpotConnector::new(HubSpotHosts::new(None, Some(&server.uri())));
        let ctx = SyncContext {
            check: CheckContext {
                workspace_id: uuid::Uuid::now_v7(),
                config: json!({}),
                credentials: Some(Credentials::from_json(&json!({"access_token": "token-1"}))),
                tokens: None,
            },
            connection_id: uuid::Uuid::now_v7(),
            mode: SyncMode::Full,
            cursors: BTreeMap::new(),
            started_at: pandora_core::model::now(),
        };
        let mut sink = StopAfter {
            until: Instant::now() + Duration::from_secs(secs),
            deals: 0,
        };
        let started = Instant::now();
        let result = connector.sync(&ctx, &mut sink).await;
        let elapsed = started.elapsed();
        if let Err(e) = &result {
            if !e.to_string().contains("benchmark time is up") {
                panic!("sync failed: {e}");
            }
        }
        let seen = sim.seen();
        let requests = seen.len();
        let throttled = sim.state().throttled;
        let span = match (seen.first(), seen.last()) {
            (Some(a), Some(b)) => b.at.duration_since(a.at),
            _ => elapsed,
        };
        let allowed = limit as f64 / window.as_secs_f64();
        let rate = (requests.saturating_sub(1)) as f64 / span.as_secs_f64();
        println!(
            "hubspot_rate: {secs} s run, {requests} requests, {} deals",
            sink.deals
        );
        println!(
            "hubspot_rate: {rate:.2} requests/s against an allowed {allowed:.1}/s: ratio {:.3}",
            rate / allowed
        );
        println!("hubspot_rate: 429 answers: {throttled}");
        if rate / allowed < 0.90 || throttled > 0 {
            eprintln!("hubspot_rate: below the goal (ratio >= 0.90 with no 429)");
            std::process::exit(1);
        }
    });
}
