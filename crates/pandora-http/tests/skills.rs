//! The skill endpoints through the real router over a real SQLite store:
//! the registry, runs (202, and `?wait=true`), run history, latest result,
//! settings (422 naming the field), quotas, unknown skills (404 listing the
//! known ones) and workspace scoping (another workspace's key → 404).

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use pandora_core::auth::{SecretToken, ADMIN_TOKEN_PREFIX};
use pandora_core::batch::RecordBatch;
use pandora_core::model::{
    ChangeOrigin, DealField, NewDeal, NewDealChange, NewPipelineStage, NewUser, StageCategory,
};
use pandora_core::worker::{Worker, WorkerOptions};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Api {
    app: Router,
    pandora: Pandora,
    admin: String,
    /// Stops the background worker that runs queued skill runs when dropped.
    _worker: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

struct Res {
    status: StatusCode,
    body: Value,
}

impl Res {
    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        &self.body
    }

    /// Asserts a problem with `status`; returns its `field`.
    #[track_caller]
    fn problem(&self, status: u16) -> Option<String> {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
        self.body["field"].as_str().map(str::to_string)
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let admin = SecretToken::generate(ADMIN_TOKEN_PREFIX);
    let pandora = Pandora::builder()
        .store(store)
        .admin_token(&admin)
        .skills(pandora_skills::all())
        .build()
        .unwrap();
    // A worker beside the API, as `pandora serve` runs one: queued runs
    // execute, and `?wait=true` sees them finish.
    let worker = Worker::new(
        pandora.clone(),
        WorkerOptions {
            poll_interval: std::time::Duration::from_millis(20),
            schedule_every: None,
            ..WorkerOptions::default()
        },
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    Api {
        app: pandora_http::router(pandora.clone()),
        pandora,
        admin: admin.expose().to_string(),
        _worker: stop,
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, method: Method, uri: &str, token: &str, body: Option<Value>) -> Res {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Res { status, body }
    }

    async fn get(&self, uri: &str, token: &str) -> Res {
        self.call(Method::GET, uri, token, None).await
    }

    /// Creates a workspace with a small sales team and pipeline; returns its id and key.
    async fn workspace(&self, name: &str) -> (String, String) {
        let res = self
            .call(
                Method::POST,
                "/api/workspaces",
                &self.admin,
                Some(json!({"name": name})),
            )
            .await;
        let body = res.ok(201);
        let ws = body["workspace"]["id"].as_str().unwrap().to_string();
        let key = body["api_key"].as_str().unwrap().to_string();
        let t = |m, d| Utc.with_ymd_and_hms(2026, m, d, 9, 0, 0).single().unwrap();
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
        let deal = |id: &str, stage: &str, cat, amount: i64, close: (u32, u32)| NewDeal {
            source_id: id.into(),
            name: id.to_uppercase(),
            amount: Some(amount.into()),
            pipeline: Some("sales".into()),
            stage: Some(stage.into()),
            stage_category: cat,
            owner_source_id: Some("rep".into()),
            close_date: chrono::NaiveDate::from_ymd_opt(2026, close.0, close.1),
            source_created_at: Some(t(3, 1)),
            properties: json!({}),
            ..Default::default()
        };
        let batch = RecordBatch {
            stages,
            users: vec![
                NewUser {
                    source_id: "boss".into(),
                    name: Some("Boss".into()),
                    active: true,
                    properties: json!({}),
                    ..Default::default()
                },
                NewUser {
                    source_id: "rep".into(),
                    name: Some("Rep".into()),
                    manager_source_id: Some("boss".into()),
                    active: true,
                    properties: json!({}),
                    ..Default::default()
                },
            ],
            deals: vec![
                deal("d1", "won", StageCategory::Won, 100, (5, 10)),
                deal("d2", "lead", StageCategory::Open, 200, (6, 10)),
            ],
            deal_changes: vec![NewDealChange {
                deal_source_id: "d1".into(),
                field: DealField::Stage,
                old_value: Some("lead".into()),
                new_value: Some("won".into()),
                changed_at: t(5, 10),
                origin: ChangeOrigin::Vendor,
            }],
            ..RecordBatch::new("test")
        };
        self.pandora
            .ingest(ws.parse().unwrap(), &batch, None)
            .await
            .unwrap();
        (ws, key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_lists_skills_with_their_settings() {
    let api = api().await;
    let (_, key) = api.workspace("acme").await;
    let body = api.get("/api/skills", &key).await;
    let data = body.ok(200)["data"].as_array().unwrap().clone();
    let ids: Vec<&str> = data.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "deal_risk",
            "forecast_rollup",
            "pipeline_waterfall",
            "rep_scorecard",
            "single_thread_alert"
        ]
    );
    let waterfall = data
        .iter()
        .find(|s| s["id"] == "pipeline_waterfall")
        .unwrap();
    assert!(waterfall["default_schedule"].is_string());
    let listed = waterfall["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "deals_listed")
        .unwrap();
    assert_eq!(listed["type"], "integer");
    assert_eq!(listed["default"], 25);
    assert_eq!(listed["min"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_history_latest_and_errors() {
    let api = api().await;
    let (ws, key) = api.workspace("acme").await;
    let base = format!("/api/workspaces/{ws}/skills/pipeline_waterfall");
    let body = json!({"period": "2026-q2", "as_of": "2026-07-15T00:00:00Z"});

    // ?wait=true: the finished run with its report.
    let res = api
        .call(
            Method::POST,
            &format!("{base}/run?wait=true"),
            &key,
            Some(body.clone()),
        )
        .await;
    let run = res.ok(200).clone();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["period"], "2026-Q2");
    assert_eq!(run["report"]["summary"]["won"]["amount"], "100.00");
    assert_eq!(run["report"]["summary"]["end"]["amount"], "200.00");
    assert_eq!(run["settings"]["deals_listed"], 25);

    // Without wait: 202 with the queued run, which the worker finishes.
    let res = api
        .call(
            Method::POST,
            &format!("{base}/run"),
            &key,
            Some(body.clone()),
        )
        .await;
    let started = res.ok(202).clone();
    assert_eq!(started["status"], "queued");
    let id = started["id"].as_str().unwrap().to_string();
    let mut finished = Value::Null;
    for _ in 0..100 {
        finished = api
            .get(&format!("{base}/runs/{id}"), &key)
            .await
            .ok(200)
            .clone();
        if finished["status"] != "running" && finished["status"] != "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(finished["status"], "succeeded", "{finished}");

    // A period that starts after as_of: the run fails and says why.
    let res = api
        .call(
            Method::POST,
            &format!("{base}/run?wait=true"),
            &key,
            Some(json!({"period": "2026-Q3", "as_of": "2026-05-01T00:00:00Z"})),
        )
        .await;
    let failed = res.ok(200);
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("period"),
        "{failed}"
    );

    // History: newest first, one per page.
    let page1 = api
        .get(&format!("{base}/runs?limit=2"), &key)
        .await
        .ok(200)
        .clone();
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert_eq!(page1["data"][0]["status"], "failed");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = api
        .get(&format!("{base}/runs?limit=2&cursor={cursor}"), &key)
        .await
        .ok(200)
        .clone();
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["data"][0]["id"], run["id"]);

    // Latest succeeded run, of a period (canonicalized) or any.
    let latest = api
        .get(&format!("{base}/latest?period=2026-q2"), &key)
        .await
        .ok(200)
        .clone();
    assert_eq!(latest["id"].as_str(), Some(id.as_str()));
    api.get(&format!("{base}/latest"), &key).await.ok(200);
    api.get(&format!("{base}/latest?period=2025-Q1"), &key)
        .await
        .problem(404);
    assert_eq!(
        api.get(&format!("{base}/latest?period=soon"), &key)
            .await
            .problem(400)
            .as_deref(),
        Some("period")
    );
    // A run of another skill is not this skill's.
    api.get(
        &format!("/api/workspaces/{ws}/skills/forecast_rollup/runs/{id}"),
        &key,
    )
    .await
    .problem(404);

    // Bad requests name the field.
    for (body, field) in [
        (json!({"period": "2026-Q9"}), "period"),
        (json!({"as_of": "2999-01-01T00:00:00Z"}), "as_of"),
        (
            json!({"settings": {"deals_listed": -1}}),
            "settings.deals_listed",
        ),
        (json!({"settings": {"bogus": 1}}), "settings.bogus"),
        (json!({"bogus": 1}), "bogus"),
    ] {
        let res = api
            .call(Method::POST, &format!("{base}/run"), &key, Some(body))
            .await;
        assert_eq!(res.problem(422).as_deref(), Some(field));
    }

    // Unknown skill: 404 listing the known ones, on every skill route.
    for (method, path) in [
        (Method::POST, "run"),
        (Method::GET, "runs"),
        (Method::GET, "latest"),
        (Method::GET, "settings"),
        (Method::PUT, "settings"),
    ] {
        let res = api
            .call(
                method,
                &format!("/api/workspaces/{ws}/skills/nope/{path}"),
                &key,
                Some(json!({})),
            )
            .await;
        res.problem(404);
        let detail = res.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("pipeline_waterfall") && detail.contains("forecast_rollup"),
            "{detail}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_validated_and_used() {
    let api = api().await;
    let (ws, key) = api.workspace("acme").await;
    let url = format!("/api/workspaces/{ws}/skills/forecast_rollup/settings");
    let view = api.get(&url, &key).await.ok(200).clone();
    assert_eq!(view["settings"]["deals_listed"], 10);
    assert_eq!(view["overrides"], json!({}));
    assert!(view["schema"].as_array().unwrap().len() >= 4);

    let put = |body| api.call(Method::PUT, &url, &key, Some(body));
    let view = put(json!({"deals_listed": 3, "stage_categories": {"lead": "commit"}}))
        .await
        .ok(200)
        .clone();
    assert_eq!(view["settings"]["deals_listed"], 3);
    assert_eq!(view["settings"]["default_category"], "pipeline");
    assert_eq!(
        view["overrides"],
        json!({"deals_listed": 3, "stage_categories": {"lead": "commit"}})
    );
    for (body, field) in [
        (json!({"deals_listed": 100_000}), "settings.deals_listed"),
        (json!({"deals_listed": "ten"}), "settings.deals_listed"),
        (
            json!({"use_vendor_category": 1}),
            "settings.use_vendor_category",
        ),
        (
            json!({"default_category": "maybe"}),
            "settings.default_category",
        ),
        (
            json!({"stage_categories": {"lead": "sure"}}),
            "settings.stage_categories.lead",
        ),
        (json!({"nope": true}), "settings.nope"),
    ] {
        assert_eq!(put(body).await.problem(422).as_deref(), Some(field));
    }
    put(json!([1])).await.problem(422);
    assert_eq!(
        api.get(&url, &key).await.ok(200)["settings"]["deals_listed"],
        3,
        "unchanged"
    );

    // The stored mapping is used: the open lead deal is Commit.
    let run = api
        .call(
            Method::POST,
            &format!("/api/workspaces/{ws}/skills/forecast_rollup/run?wait=true"),
            &key,
            Some(json!({"period": "2026-Q2", "as_of": "2026-06-15T00:00:00Z"})),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["report"]["summary"]["rollup"]["commit"]["amount"],
        "200.00"
    );
    assert_eq!(run["settings"]["deals_listed"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_shown_changed_validated_and_turned_off() {
    let api = api().await;
    let (ws, key) = api.workspace("acme").await;
    let url = format!("/api/workspaces/{ws}/skills/deal_risk/schedule");
    let view = api.get(&url, &key).await.ok(200).clone();
    assert_eq!(view["cron"], "0 7 * * 1-5");
    assert_eq!(view["default_cron"], "0 7 * * 1-5");
    assert_eq!(view["enabled"], true);
    assert!(view["next_run_at"].is_string(), "{view}");
    assert_eq!(view["updated_at"], Value::Null);

    let put = |body| api.call(Method::PUT, &url, &key, Some(body));
    let view = put(json!({"cron": "30  8 * * mon-fri"}))
        .await
        .ok(200)
        .clone();
    assert_eq!(view["cron"], "30 8 * * mon-fri");
    let next: chrono::DateTime<Utc> = view["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next.format("%H:%M").to_string(), "08:30");
    assert_eq!(
        api.get(&url, &key).await.ok(200)["cron"],
        "30 8 * * mon-fri"
    );
    let off = put(json!({"enabled": false})).await.ok(200).clone();
    assert_eq!(off["enabled"], false);
    assert_eq!(off["cron"], "0 7 * * 1-5", "no cron: back to the default");
    assert_eq!(off["next_run_at"], Value::Null);
    for body in [
        json!({"cron": "0 25 * * *"}),
        json!({"cron": "every day"}),
        json!({"cron": 7}),
        json!({"cron": "0 7 * * *", "when": "now"}),
    ] {
        let res = put(body.clone()).await;
        assert_eq!(res.status.as_u16(), 422, "{body}: {}", res.body);
    }
    assert_eq!(
        put(json!({"cron": "0 25 * * *"}))
            .await
            .problem(422)
            .as_deref(),
        Some("cron")
    );
    // Unchanged by the refused requests.
    assert_eq!(api.get(&url, &key).await.ok(200)["enabled"], false);
    api.get(&format!("/api/workspaces/{ws}/skills/nope/schedule"), &key)
        .await
        .problem(404);
}

#[tokio::test]
async fn quotas_are_set_listed_and_rolled_up() {
    let api = api().await;
    let (ws, key) = api.workspace("acme").await;
    let users = api
        .get(&format!("/api/workspaces/{ws}/users"), &key)
        .await
        .ok(200)
        .clone();
    let id_of = |name: &str| {
        users["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["source_id"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let rep = id_of("rep");
    let url = format!("/api/workspaces/{ws}/quotas");
    let body = json!({"quotas": [
        {"user_id": rep, "period": "2026-q2", "amount": "400.00"},
        {"user_id": rep, "period": "2026-Q3", "amount": "500"},
    ]});
    let stored = api
        .call(Method::PUT, &url, &key, Some(body))
        .await
        .ok(200)
        .clone();
    assert_eq!(stored["data"][0]["period"], "2026-Q2");
    assert_eq!(stored["data"][0]["amount"], "400");
    // Replace one.
    api.call(
        Method::PUT,
        &url,
        &key,
        Some(json!({"quotas": [{"user_id": rep, "period": "2026-Q2", "amount": "250"}]})),
    )
    .await
    .ok(200);
    let list = api.get(&url, &key).await.ok(200).clone();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let q2 = api
        .get(&format!("{url}?period=2026-Q2"), &key)
        .await
        .ok(200)
        .clone();
    assert_eq!(q2["data"][0]["amount"], "250");

    for (body, field) in [
        (
            json!({"quotas": [{"user_id": uuid::Uuid::now_v7(), "period": "2026-Q2", "amount": "1"}]}),
            "quotas[0].user_id",
        ),
        (
            json!({"quotas": [{"user_id": rep, "period": "someday", "amount": "1"}]}),
            "quotas[0].period",
        ),
        (
            json!({"quotas": [{"user_id": rep, "period": "2026-Q2", "amount": "-1"}]}),
            "quotas[0].amount",
        ),
        (
            json!({"quotas": [{"user_id": rep, "period": "2026-Q2"}]}),
            "quotas[0]",
        ),
    ] {
        let res = api.call(Method::PUT, &url, &key, Some(body)).await;
        let got = res.problem(422).unwrap_or_default();
        assert!(got.starts_with(field), "{got} for {field}");
    }

    // The forecast uses it: 100 closed of 250, and the boss's quota is the team's.
    let run = api
        .call(
            Method::POST,
            &format!("/api/workspaces/{ws}/skills/forecast_rollup/run?wait=true"),
            &key,
            Some(json!({"period": "2026-Q2", "as_of": "2026-06-15T00:00:00Z"})),
        )
        .await
        .ok(200)
        .clone();
    let rows = run["report"]["rows"].as_array().unwrap();
    let rep_row = rows.iter().find(|r| r["key"] == rep.as_str()).unwrap();
    assert_eq!(rep_row["quota"], "250.00");
    assert_eq!(rep_row["attainment"], "0.4000");
    let boss_row = rows
        .iter()
        .find(|r| r["key"] == id_of("boss").as_str())
        .unwrap();
    assert_eq!(boss_row["quota_source"], "team_sum");
    assert_eq!(run["report"]["summary"]["gap"], "150.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_workspaces_key_gets_404_everywhere() {
    let api = api().await;
    let (ws, key) = api.workspace("acme").await;
    let (_, other_key) = api.workspace("other").await;
    let run = api
        .call(
            Method::POST,
            &format!("/api/workspaces/{ws}/skills/pipeline_waterfall/run?wait=true"),
            &key,
            Some(json!({"period": "2026-Q2"})),
        )
        .await
        .ok(200)
        .clone();
    let id = run["id"].as_str().unwrap();
    let base = format!("/api/workspaces/{ws}/skills/pipeline_waterfall");
    for (method, uri, body) in [
        (Method::POST, format!("{base}/run"), None),
        (Method::GET, format!("{base}/runs"), None),
        (Method::GET, format!("{base}/runs/{id}"), None),
        (Method::GET, format!("{base}/latest"), None),
        (Method::GET, format!("{base}/settings"), None),
        (Method::PUT, format!("{base}/settings"), Some(json!({}))),
        (Method::GET, format!("{base}/schedule"), None),
        (
            Method::PUT,
            format!("{base}/schedule"),
            Some(json!({"enabled": false})),
        ),
        (Method::GET, format!("/api/workspaces/{ws}/quotas"), None),
        (
            Method::PUT,
            format!("/api/workspaces/{ws}/quotas"),
            Some(json!({"quotas": []})),
        ),
    ] {
        let res = api.call(method.clone(), &uri, &other_key, body).await;
        assert_eq!(
            res.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            res.body
        );
    }
    // The run is still only the owner's.
    api.get(&format!("{base}/runs/{id}"), &key).await.ok(200);
}
