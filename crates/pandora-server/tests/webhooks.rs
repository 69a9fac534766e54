//! Alerts delivered by webhooks, end to end over a real SQLite store and a
//! local HTTP receiver: live `deal_risk` / `single_thread_alert` runs raise
//! alerts, deliveries go through the job queue and a real [`Worker`] (with a
//! backoff of milliseconds), and the receiver checks each signature with the
//! recipe of `docs/webhooks.md`, independently of Pandora's own code.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use hmac::{Hmac, Mac};
use pandora_core::batch::RecordBatch;
use pandora_core::facade::{SkillRunRequest, DELIVERY_MAX_ATTEMPTS};
use pandora_core::model::{
    DeliveryStatus, NewDeal, NewPipelineStage, NewUser, NewWebhook, NewWorkspace, RunStatus,
    StageCategory, WebhookDelivery,
};
use pandora_core::query::PageRequest;
use pandora_core::vault::{LocalVault, MasterKey};
use pandora_core::worker::{Backoff, Worker, WorkerOptions};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A local webhook receiver: `POST /{name}` answers the statuses queued for
/// `name` in turn, then its default (200 unless set).
#[derive(Clone, Default)]
struct Receiver {
    queued: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
    defaults: Arc<Mutex<HashMap<String, u16>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/{name}", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, addr)
    }

    fn queue(&self, name: &str, statuses: &[u16]) {
        self.queued
            .lock()
            .unwrap()
            .entry(name.into())
            .or_default()
            .extend(statuses);
    }

    fn always(&self, name: &str, status: u16) {
        self.defaults.lock().unwrap().insert(name.into(), status);
    }

    fn requests(&self, name: &str) -> Vec<Received> {
        let path = format!("/{name}");
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    r.received.lock().unwrap().push(Received {
        path: format!("/{name}"),
        headers,
        body,
    });
    let next = r
        .queued
        .lock()
        .unwrap()
        .get_mut(&name)
        .and_then(|q| q.pop_front());
    let status = next
        .or_else(|| r.defaults.lock().unwrap().get(&name).copied())
        .unwrap_or(200);
    let status = StatusCode::from_u16(status).expect("status");
    (status, if status.is_success() { "ok" } else { "boom" })
}

/// The facade over a fresh SQLite file, with a vault key and every skill.
async fn facade(dir: &std::path::Path) -> Pandora {
    let store = SqliteStore::open(dir.join("pandora.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    Pandora::builder()
        .store(store)
        .vault(LocalVault::new(MasterKey::from_bytes(&[7; 32])))
        .skills(pandora_skills::all())
        .build()
        .expect("build")
}

/// A workspace with one high-risk deal (`RISKY`: its close date passed, no
/// buyer conversation, single-threaded, no senior contact — 65 points) and
/// one medium (`SAFE`: closes in three months — 45 points).
async fn workspace(p: &Pandora) -> Uuid {
    let ws = p
        .create_workspace(NewWorkspace {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .expect("workspace")
        .workspace
        .id;
    let today = Utc::now().date_naive();
    let created = Utc::now() - chrono::Duration::days(120);
    let stages = [
        ("lead", StageCategory::Open),
        ("won", StageCategory::Won),
        ("lost", StageCategory::Lost),
    ]
    .iter()
    .enumerate()
    .map(|(i, (s, c))| NewPipelineStage {
        pipeline: "sales".into(),
        stage: (*s).into(),
        category: *c,
        display_order: Some(i as i32 + 1),
        ..Default::default()
    })
    .collect();
    let deal = |id: &str, amount: i64, close: chrono::NaiveDate| NewDeal {
        source_id: id.into(),
        name: id.to_uppercase(),
        amount: Some(amount.into()),
        currency: Some("USD".into()),
        pipeline: Some("sales".into()),
        stage: Some("lead".into()),
        stage_category: StageCategory::Open,
        owner_source_id: Some("rep".into()),
        close_date: Some(close),
        source_created_at: Some(created),
        properties: json!({}),
        ..Default::default()
    };
    let batch = RecordBatch {
        stages,
        users: vec![NewUser {
            source_id: "rep".into(),
            name: Some("Rep".into()),
            email: Some("rep@acme.test".into()),
            active: true,
            properties: json!({}),
            ..Default::default()
        }],
        deals: vec![
            deal("risky", 5000, today - chrono::Duration::days(30)),
            deal("safe", 7000, today + chrono::Duration::days(90)),
        ],
        ..RecordBatch::new("crm")
    };
    p.ingest(ws, &batch, None).await.expect("ingest");
    ws
}

/// A worker whose retries come after milliseconds.
fn worker(p: &Pandora) -> Worker {
    Worker::new(
        p.clone(),
        WorkerOptions {
            id: format!("test-worker-{}", Uuid::now_v7()),
            backoff: Backoff {
                base: Duration::from_millis(20),
                max: Duration::from_millis(40),
            },
            schedule_every: None,
            ..Default::default()
        },
    )
    .expect("worker")
}

/// Runs due jobs until every delivery of these endpoints is finished.
async fn settle(p: &Pandora, w: &Worker, ws: Uuid, hooks: &[Uuid]) -> Vec<Vec<WebhookDelivery>> {
    let start = Instant::now();
    loop {
        while w.run_next().await.expect("run next").is_some() {}
        let mut all = Vec::new();
        for h in hooks {
            let page = p
                .webhook_deliveries(ws, *h, &PageRequest::first(100))
                .await
                .expect("deliveries");
            all.push(page.data);
        }
        let finished = all.iter().flatten().all(|d| {
            matches!(
                d.status,
                DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::Cancelled
            )
        });
        if finished {
            return all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "deliveries not finished: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn hook(
    p: &Pandora,
    ws: Uuid,
    addr: SocketAddr,
    name: &str,
    events: &[&str],
) -> (Uuid, String) {
    let created = p
        .create_webhook(
            ws,
            NewWebhook {
                url: format!("http://{addr}/{name}"),
                events: events.iter().map(|e| e.to_string()).collect(),
                description: Some(name.into()),
            },
        )
        .await
        .expect("create webhook");
    (created.webhook.id, created.secret.expose().to_string())
}

async fn run(p: &Pandora, ws: Uuid, skill: &str) -> Uuid {
    let run = p
        .run_skill(ws, skill, &SkillRunRequest::default())
        .await
        .expect("run");
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    run.id
}

/// The documented recipe, written here from the doc: lowercase hex of
/// HMAC-SHA256 keyed by the secret over `"<timestamp>.<raw body>"`.
fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .expect("ascii header")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_delivery_is_retried_after_a_5xx_and_then_delivered() {
    let dir = tempfile::tempdir().expect("dir");
    let p = facade(dir.path()).await;
    let ws = workspace(&p).await;
    let (receiver, addr) = Receiver::start().await;
    receiver.queue("flaky", &[500]);
    let (risk_hook, secret) = hook(&p, ws, addr, "flaky", &["deal.high_risk"]).await;
    let (thread_hook, thread_secret) =
        hook(&p, ws, addr, "threads", &["deal.single_threaded"]).await;
    assert!(secret.starts_with("whsec_") && secret.len() == "whsec_".len() + 43);
    let w = worker(&p);

    let run_id = run(&p, ws, "deal_risk").await;
    let all = settle(&p, &w, ws, &[risk_hook, thread_hook]).await;
    assert!(all[1].is_empty(), "deal_risk raises no single-thread alert");
    let [d] = all[0].as_slice() else {
        panic!("one delivery: {:?}", all[0])
    };
    assert_eq!(d.status, DeliveryStatus::Delivered, "{d:?}");
    assert_eq!((d.attempts, d.response_status), (2, Some(200)));
    assert!(
        d.last_error.as_deref().unwrap_or_default().contains("500"),
        "{d:?}"
    );

    let got = receiver.requests("flaky");
    assert_eq!(got.len(), 2, "one 500, then the retry");
    for r in &got {
        let ts = header(r, "Pandora-Webhook-Timestamp");
        assert_eq!(
            header(r, "Pandora-Webhook-Signature"),
            expected_signature(&secret, ts, &r.body)
        );
        assert_ne!(
            header(r, "Pandora-Webhook-Signature"),
            expected_signature(&thread_secret, ts, &r.body),
            "each endpoint has its own secret"
        );
        let age = Utc::now().timestamp() - ts.parse::<i64>().expect("unix seconds");
        assert!((0..300).contains(&age), "fresh timestamp: {age}");
        assert_eq!(header(r, "Pandora-Webhook-Id"), d.id.to_string());
        assert_eq!(header(r, "Content-Type"), "application/json");
        assert_eq!(r.body, got[0].body, "every attempt sends the same bytes");
    }
    let body: Value = serde_json::from_slice(&got[0].body).expect("json body");
    assert_eq!(body, d.payload);
    assert_eq!(body["id"], d.id.to_string());
    assert_eq!(body["skill"], "deal_risk");
    assert_eq!(body["skill_run_id"], run_id.to_string());
    let alerts = body["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1, "only the high-risk deal: {body}");
    let a = &alerts[0];
    assert_eq!(a["event"], "deal.high_risk");
    assert_eq!(a["deal"]["name"], "RISKY");
    assert_eq!(a["deal"]["amount"], "5000.00");
    assert_eq!(a["deal"]["owner_source_id"], "rep");
    assert_eq!(a["evidence"]["band"], "high");
    assert_eq!(a["evidence"]["risk_score"], 65);
    let signals: Vec<&str> = a["evidence"]["signals"]
        .as_array()
        .expect("signals")
        .iter()
        .filter_map(|s| s["signal"].as_str())
        .collect();
    assert!(signals.contains(&"close_date_passed"), "{signals:?}");

    // The single-thread alert skill raises its own event, to its endpoint.
    run(&p, ws, "single_thread_alert").await;
    let all = settle(&p, &w, ws, &[risk_hook, thread_hook]).await;
    assert_eq!(all[0].len(), 1, "nothing new for the risk endpoint");
    let [t] = all[1].as_slice() else {
        panic!("one delivery: {:?}", all[1])
    };
    assert_eq!((t.status, t.attempts), (DeliveryStatus::Delivered, 1));
    let alerts = t.payload["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 2, "both open deals have nobody engaged");
    assert!(alerts.iter().all(|a| a["event"] == "deal.single_threaded"));
    assert!(alerts.iter().all(|a| a["evidence"]["engaged_count"] == 0));
    let r = &receiver.requests("threads")[0];
    let ts = header(r, "Pandora-Webhook-Timestamp");
    assert_eq!(
        header(r, "Pandora-Webhook-Signature"),
        expected_signature(&thread_secret, ts, &r.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_sent_once_while_it_holds_and_again_when_it_returns() {
    let dir = tempfile::tempdir().expect("dir");
    let p = facade(dir.path()).await;
    let ws = workspace(&p).await;
    let (receiver, addr) = Receiver::start().await;
    let (h, _) = hook(
        &p,
        ws,
        addr,
        "ok",
        &["deal.high_risk", "deal.single_threaded"],
    )
    .await;
    let w = worker(&p);

    run(&p, ws, "deal_risk").await;
    run(&p, ws, "deal_risk").await;
    let all = settle(&p, &w, ws, &[h]).await;
    assert_eq!(all[0].len(), 1, "the same data twice: one delivery");
    assert_eq!(receiver.requests("ok").len(), 1);

    // Runs that are not live (a past as-of time, or settings of their own)
    // raise and clear nothing.
    let past = SkillRunRequest {
        as_of: Some(Utc::now() - chrono::Duration::days(400)),
        ..Default::default()
    };
    let r = p.run_skill(ws, "deal_risk", &past).await.expect("run");
    assert_eq!(r.status, RunStatus::Succeeded);
    let own = SkillRunRequest {
        settings: Some(json!({"band_high": 40})),
        ..Default::default()
    };
    p.run_skill(ws, "deal_risk", &own).await.expect("run");
    assert_eq!(p.store().list_alerts(ws).await.expect("alerts").len(), 1);

    // The workspace raises its bar: the deal is medium now, the alert clears.
    p.put_skill_settings(ws, "deal_risk", json!({"band_high": 70}))
        .await
        .expect("settings");
    run(&p, ws, "deal_risk").await;
    assert!(p.store().list_alerts(ws).await.expect("alerts").is_empty());
    // And lowers it again: high again, so alerted again.
    p.put_skill_settings(ws, "deal_risk", json!({}))
        .await
        .expect("settings");
    run(&p, ws, "deal_risk").await;
    run(&p, ws, "deal_risk").await;
    let all = settle(&p, &w, ws, &[h]).await;
    assert_eq!(all[0].len(), 2, "{:?}", all[0]);
    assert!(all[0].iter().all(|d| d.status == DeliveryStatus::Delivered));
    assert_eq!(receiver.requests("ok").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_does_not_block_the_run_or_the_others() {
    let dir = tempfile::tempdir().expect("dir");
    let p = facade(dir.path()).await;
    let ws = workspace(&p).await;
    let (receiver, addr) = Receiver::start().await;
    receiver.always("down", 503);
    receiver.always("gone", 410);
    let (down, _) = hook(&p, ws, addr, "down", &["deal.high_risk"]).await;
    let (gone, _) = hook(&p, ws, addr, "gone", &["deal.high_risk"]).await;
    let (ok, _) = hook(&p, ws, addr, "ok", &["deal.high_risk"]).await;
    let w = worker(&p);

    run(&p, ws, "deal_risk").await;
    let all = settle(&p, &w, ws, &[down, gone, ok]).await;
    let one = |i: usize| {
        assert_eq!(all[i].len(), 1, "{:?}", all[i]);
        all[i][0].clone()
    };
    let (down_d, gone_d, ok_d) = (one(0), one(1), one(2));
    assert_eq!((ok_d.status, ok_d.attempts), (DeliveryStatus::Delivered, 1));
    assert_eq!(down_d.status, DeliveryStatus::Failed, "{down_d:?}");
    assert_eq!(
        down_d.attempts, DELIVERY_MAX_ATTEMPTS,
        "retried until out of attempts"
    );
    assert_eq!(down_d.response_status, Some(503));
    assert!(down_d
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("503"));
    assert!(down_d.finished_at.is_some());
    assert_eq!(
        receiver.requests("down").len(),
        DELIVERY_MAX_ATTEMPTS as usize
    );
    assert_eq!(gone_d.status, DeliveryStatus::Failed, "{gone_d:?}");
    assert_eq!(
        (gone_d.attempts, gone_d.response_status),
        (1, Some(410)),
        "a 4xx is not retried"
    );
    assert_eq!(receiver.requests("gone").len(), 1);

    // The endpoint never reached with a connection: retried, then failed,
    // and deleting an endpoint cancels what it had not received.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (unreachable, _) = hook(&p, ws, closed, "nobody", &["deal.high_risk"]).await;
    p.put_skill_settings(ws, "deal_risk", json!({"band_high": 70}))
        .await
        .expect("settings");
    run(&p, ws, "deal_risk").await;
    p.put_skill_settings(ws, "deal_risk", json!({}))
        .await
        .expect("settings");
    run(&p, ws, "deal_risk").await;
    let all = settle(&p, &w, ws, &[unreachable]).await;
    let d = &all[0][0];
    assert_eq!(
        (d.status, d.response_status),
        (DeliveryStatus::Failed, None)
    );
    assert!(
        d.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("connect"),
        "{d:?}"
    );
    p.delete_webhook(ws, down).await.expect("delete");
    assert!(p.get_webhook(ws, down).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_live_run_raises_its_alerts_when_a_worker_runs_it() {
    let dir = tempfile::tempdir().expect("dir");
    let p = facade(dir.path()).await;
    let ws = workspace(&p).await;
    let (receiver, addr) = Receiver::start().await;
    let (h, secret) = hook(&p, ws, addr, "ok", &["deal.high_risk"]).await;
    let w = worker(&p);

    let queued = p
        .enqueue_skill_run(ws, "deal_risk", &SkillRunRequest::default())
        .await
        .expect("enqueue");
    let all = settle(&p, &w, ws, &[h]).await;
    let run = p.skill_run(ws, "deal_risk", queued.id).await.expect("run");
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let [d] = all[0].as_slice() else {
        panic!("one delivery: {:?}", all[0])
    };
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    assert_eq!(d.payload["skill_run_id"], queued.id.to_string());
    let r = &receiver.requests("ok")[0];
    let ts = header(r, "Pandora-Webhook-Timestamp");
    assert_eq!(
        header(r, "Pandora-Webhook-Signature"),
        expected_signature(&secret, ts, &r.body)
    );
}
