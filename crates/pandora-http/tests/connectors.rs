//! The connector endpoints through the real router over a real SQLite store
//! (in a temporary directory) with a credential vault: the registry,
//! connect (credentials checked by the connector before they are sealed),
//! sync (queued, one active run per connection), health, disconnect (with
//! purge), run history, and workspace scoping.
//!
//! Two connectors: the built-in `sample` (no credentials) and `acme`, a test
//! connector taking an API key that accepts only [`GOOD_KEY`].

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use pandora_core::auth::{SecretToken, ADMIN_TOKEN_PREFIX};
use pandora_core::batch::RecordKind;
use pandora_core::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, RecordSink, StreamInfo,
    SyncContext,
};
use pandora_core::model::{ConnectionStatus, NewConnection, StoredCredentials};
use pandora_core::vault::{LocalVault, MasterKey};
use pandora_core::worker::{Worker, WorkerOptions};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The only key `acme` accepts.
const GOOD_KEY: &str = "acme-live-7f3k9q2x";
/// A key `acme` refuses.
const BAD_KEY: &str = "acme-live-revoked-55";
/// A key whose check never answers in time.
const SLOW_KEY: &str = "acme-live-slow-0001";
/// What `acme` says when it refuses a key.
const REASON: &str = "401 Unauthorized: the API key is invalid or revoked";

/// A vendor taking an API key: accepts [`GOOD_KEY`], refuses others with a
/// vendor-like reason, hangs on [`SLOW_KEY`]. Its sync writes nothing.
struct Acme;

#[async_trait]
impl Connector for Acme {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: "acme",
            display_name: "Acme CRM",
            auth: AuthKind::ApiKey,
            streams: vec![StreamInfo {
                name: "deals",
                kinds: vec![RecordKind::Deal],
                incremental: true,
            }],
        }
    }

    async fn check(&self, ctx: &CheckContext) -> pandora_core::Result<CheckOutcome> {
        #[derive(serde::Deserialize)]
        struct Key {
            api_key: String,
        }
        let creds = ctx
            .credentials
            .as_ref()
            .expect("an api_key connector is checked with credentials");
        let key: Key = creds.parse()?;
        if key.api_key == SLOW_KEY {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Ok(if key.api_key == GOOD_KEY {
            CheckOutcome {
                ok: true,
                detail: Some("authenticated as acme account 42".into()),
            }
        } else {
            CheckOutcome {
                ok: false,
                detail: Some(REASON.into()),
            }
        })
    }

    async fn sync(
        &self,
        _ctx: &SyncContext,
        _sink: &mut dyn RecordSink,
    ) -> pandora_core::Result<()> {
        Ok(())
    }
}

/// A router over a fresh SQLite database with a vault key, the `sample` and
/// `acme` connectors and a known admin token.
struct Api {
    app: Router,
    pandora: Pandora,
    admin: String,
    /// Every response body seen, to check that none holds a secret.
    bodies: Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

/// A response: status, headers and the body (JSON, or `Value::Null` when empty).
struct Res {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Res {
    /// Asserts an RFC 9457 problem with `status`, returning its `field`.
    #[track_caller]
    fn problem(&self, status: u16) -> Option<String> {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            self.body
        );
        for key in ["type", "title", "detail"] {
            assert!(self.body[key].is_string(), "{key} missing: {}", self.body);
        }
        assert_eq!(self.body["status"], status);
        self.body["field"].as_str().map(str::to_string)
    }

    /// Asserts `status` and returns the body.
    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        &self.body
    }
}

async fn api_with(vault: Option<LocalVault>) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let admin = SecretToken::generate(ADMIN_TOKEN_PREFIX);
    let mut builder = Pandora::builder()
        .store(store)
        .admin_token(&admin)
        .connectors(
            // A fixed registry, so the lists below do not move as vendors are added.
            pandora_core::connector::ConnectorRegistry::new()
                .with(pandora_connectors::sample::SampleConnector)
                .with(Acme),
        )
        .check_timeout(Duration::from_millis(300));
    if let Some(vault) = vault {
        builder = builder.vault(vault);
    }
    let pandora = builder.build().unwrap();
    Api {
        app: pandora_http::router(pandora.clone()),
        pandora,
        admin: admin.expose().to_string(),
        bodies: Mutex::new(Vec::new()),
        _dir: dir,
    }
}

async fn api() -> Api {
    api_with(Some(LocalVault::new(MasterKey::from_bytes(&[7; 32])))).await
}

fn request(method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    req.body(body).unwrap()
}

/// Sends `req` through `app`; returns the response and its body text.
async fn send(app: Router, req: Request<Body>) -> (Res, String) {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    assert!(headers.contains_key("x-request-id"));
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
    };
    (
        Res {
            status,
            headers,
            body,
        },
        text,
    )
}

impl Api {
    async fn send(&self, req: Request<Body>) -> Res {
        let (res, text) = send(self.app.clone(), req).await;
        self.bodies.lock().unwrap().push(text);
        res
    }

    async fn call(&self, method: Method, uri: &str, token: &str, body: Option<Value>) -> Res {
        self.send(request(method, uri, Some(token), body)).await
    }

    async fn get(&self, uri: &str, token: &str) -> Res {
        self.call(Method::GET, uri, token, None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Option<Value>) -> Res {
        self.call(Method::POST, uri, token, body).await
    }

    /// Creates a workspace; returns its id and key.
    async fn workspace(&self, name: &str) -> (String, String) {
        let res = self
            .post(
                "/api/workspaces",
                &self.admin,
                Some(json!({ "name": name })),
            )
            .await;
        let body = res.ok(201);
        (
            body["workspace"]["id"].as_str().unwrap().to_string(),
            body["api_key"].as_str().unwrap().to_string(),
        )
    }

    /// Connects `ws` to `sample` with 100 deals; returns the connection.
    async fn connect_sample(&self, ws: &str, key: &str) -> Value {
        let res = self
            .post(
                &format!("/api/workspaces/{ws}/connectors/sample/connect"),
                key,
                Some(json!({"config": {"deals": 100, "seed": 7}})),
            )
            .await;
        assert!(
            res.status == StatusCode::CREATED || res.status == StatusCode::OK,
            "{}",
            res.body
        );
        res.body
    }

    /// The connector ids of `ws`'s connections, with their status.
    async fn connections(&self, ws: &str, key: &str) -> Vec<(String, String)> {
        let res = self
            .get(&format!("/api/workspaces/{ws}/connectors"), key)
            .await;
        res.ok(200)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["connector"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Runs the next queued job, as a worker would.
    async fn run_next_job(&self) {
        let worker = Worker::new(
            self.pandora.clone(),
            WorkerOptions {
                schedule_every: None,
                ..WorkerOptions::default()
            },
        )
        .unwrap();
        let report = worker.run_next().await.unwrap();
        assert!(report.is_some(), "no job was queued");
    }

    /// Asserts that no response body so far contains `secret`.
    #[track_caller]
    fn assert_never_answered(&self, secret: &str) {
        for body in self.bodies.lock().unwrap().iter() {
            assert!(!body.contains(secret), "a response leaked a secret: {body}");
        }
    }
}

fn uuid(s: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(s).unwrap()
}

// ---- registry -----------------------------------------------------------------

#[tokio::test]
async fn the_registry_lists_every_connector_with_auth_kind_and_streams() {
    let api = api().await;
    let (_, key) = api.workspace("Acme").await;
    for token in [&api.admin, &key] {
        let res = api.get("/api/connectors", token).await;
        let data = res.ok(200)["data"].as_array().unwrap().clone();
        let ids: Vec<&str> = data.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["acme", "sample"]);
        let sample = &data[1];
        assert_eq!(sample["auth"], "none");
        assert_eq!(sample["display_name"], "Sample data");
        assert_eq!(sample["streams"][0]["name"], "sample");
        assert_eq!(sample["streams"][0]["incremental"], true);
        assert!(sample["streams"][0]["kinds"]
            .as_array()
            .unwrap()
            .contains(&json!("deal")));
        assert_eq!(data[0]["auth"], "api_key");
        assert_eq!(data[0]["streams"][0]["kinds"], json!(["deal"]));
    }
    let res = api
        .send(request(Method::GET, "/api/connectors", None, None))
        .await;
    res.problem(401);
    api.get("/api/connectors?limit=1", &key)
        .await
        .problem(400)
        .map(|f| assert_eq!(f, "limit"))
        .unwrap();
}

// ---- connect ------------------------------------------------------------------

#[tokio::test]
async fn connecting_stores_sealed_credentials_and_lists_the_connection() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    assert!(api.connections(&ws, &key).await.is_empty());

    let res = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/sample/connect"),
            &key,
            Some(json!({"config": {"deals": 100, "seed": 7}})),
        )
        .await;
    let body = res.ok(201).clone();
    assert_eq!(body["connector"], "sample");
    assert_eq!(body["status"], "active");
    // `sample` takes no credentials: there is nothing to seal.
    assert_eq!(body["credentials"], "missing");
    assert_eq!(body["config"], json!({"deals": 100, "seed": 7}));
    assert_eq!(body["workspace_id"], ws.as_str());
    assert_eq!(body["check"]["ok"], true);
    assert_eq!(
        res.headers[header::LOCATION],
        format!("/api/workspaces/{ws}/connectors/sample/health")
    );
    let id = body["id"].as_str().unwrap().to_string();
    let stored = api
        .pandora
        .store()
        .get_connection(uuid(&ws), "sample")
        .await
        .unwrap();
    assert!(stored.credentials.is_none());
    // A connector with credentials: stored sealed, never answered back.
    let res = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/acme/connect"),
            &key,
            Some(json!({"api_key": GOOD_KEY})),
        )
        .await;
    assert_eq!(res.ok(201)["credentials"], "encrypted");
    assert!(!res.body.to_string().contains(GOOD_KEY));
    let sealed = api
        .pandora
        .store()
        .get_connection(uuid(&ws), "acme")
        .await
        .unwrap()
        .credentials
        .unwrap()
        .0;
    assert!(sealed.starts_with("pv1."));
    assert!(!sealed.contains(GOOD_KEY));
    api.call(
        Method::DELETE,
        &format!("/api/workspaces/{ws}/connectors/acme/disconnect?purge=true"),
        &key,
        None,
    )
    .await
    .ok(200);

    assert_eq!(
        api.connections(&ws, &key).await,
        [("sample".to_string(), "active".to_string())]
    );
    let list = api
        .get(&format!("/api/workspaces/{ws}/connectors"), &key)
        .await;
    assert_eq!(list.body["data"][0]["id"], id.as_str());
    assert_eq!(list.body["data"][0]["credentials"], "missing");

    // Connecting again: 200, the same connection; no config keeps the config.
    let res = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/sample/connect"),
            &key,
            None,
        )
        .await;
    assert_eq!(res.ok(200)["id"], id.as_str());
    assert_eq!(res.body["config"], json!({"deals": 100, "seed": 7}));
    // A new config replaces it.
    let res = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/sample/connect"),
            &key,
            Some(json!({"config": {"deals": 200}})),
        )
        .await;
    assert_eq!(res.ok(200)["config"], json!({"deals": 200}));
    assert_eq!(api.connections(&ws, &key).await.len(), 1);
}

#[tokio::test]
async fn an_unknown_connector_is_404_listing_the_known_ones() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let base = format!("/api/workspaces/{ws}/connectors/salesforcex");
    let cases = [
        (
            Method::POST,
            format!("{base}/connect"),
            Some(json!({"api_key": "x"})),
        ),
        (Method::POST, format!("{base}/sync"), None),
        (Method::GET, format!("{base}/health"), None),
        (Method::DELETE, format!("{base}/disconnect"), None),
        (Method::GET, format!("{base}/runs"), None),
    ];
    for (method, uri, body) in cases {
        let res = api.call(method.clone(), &uri, &key, body).await;
        res.problem(404);
        assert_eq!(res.body["type"], "urn:pandora:problem:not-found");
        let detail = res.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("salesforcex") && detail.contains("known: acme, sample"),
            "{method} {uri}: {detail}"
        );
    }
    assert!(api.connections(&ws, &key).await.is_empty());
}

#[tokio::test]
async fn credentials_the_vendor_rejects_are_422_and_never_stored() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let connect = format!("/api/workspaces/{ws}/connectors/acme/connect");

    let res = api
        .post(&connect, &key, Some(json!({"api_key": BAD_KEY})))
        .await;
    assert_eq!(res.problem(422), None);
    assert_eq!(res.body["type"], "urn:pandora:problem:vendor-rejected");
    assert_eq!(
        res.body["detail"],
        format!("acme rejected the credentials: {REASON}")
    );
    assert!(api.connections(&ws, &key).await.is_empty());
    assert!(api
        .pandora
        .store()
        .list_connections(uuid(&ws))
        .await
        .unwrap()
        .is_empty());

    // The good key connects; a bad one afterwards leaves it untouched.
    let res = api
        .post(&connect, &key, Some(json!({"api_key": GOOD_KEY})))
        .await;
    let body = res.ok(201);
    assert_eq!(body["check"]["detail"], "authenticated as acme account 42");
    let before = api
        .pandora
        .store()
        .get_connection(uuid(&ws), "acme")
        .await
        .unwrap();
    api.post(&connect, &key, Some(json!({"api_key": BAD_KEY})))
        .await
        .problem(422);
    let after = api
        .pandora
        .store()
        .get_connection(uuid(&ws), "acme")
        .await
        .unwrap();
    assert_eq!(before.credentials, after.credentials);
    let opened = api.pandora.open_credentials(&after).await.unwrap().unwrap();
    assert_eq!(opened.expose_json().unwrap()["api_key"], GOOD_KEY);

    // A check that does not answer in time: 503, nothing changed.
    let res = api
        .post(&connect, &key, Some(json!({"api_key": SLOW_KEY})))
        .await;
    res.problem(503);
    let later = api
        .pandora
        .store()
        .get_connection(uuid(&ws), "acme")
        .await
        .unwrap();
    assert_eq!(later.credentials, after.credentials);

    for secret in [GOOD_KEY, BAD_KEY, SLOW_KEY] {
        api.assert_never_answered(secret);
    }
}

#[tokio::test]
async fn connect_bodies_are_validated_naming_the_field() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let acme = format!("/api/workspaces/{ws}/connectors/acme/connect");
    let sample = format!("/api/workspaces/{ws}/connectors/sample/connect");
    let cases = [
        (&acme, json!({}), Some("api_key")),
        (&acme, json!({"config": {}}), Some("api_key")),
        (&acme, json!({"api_key": ""}), Some("api_key")),
        (&acme, json!({"api_key": 42}), Some("api_key")),
        (
            &acme,
            json!({"api_key": GOOD_KEY, "password": "hunter2"}),
            Some("password"),
        ),
        (
            &acme,
            json!({"api_key": GOOD_KEY, "config": 5}),
            Some("config"),
        ),
        (
            &acme,
            json!({"api_key": GOOD_KEY, "config": {"sync_interval_minutes": -1}}),
            Some("config.sync_interval_minutes"),
        ),
        (&sample, json!({"api_key": "hunter2"}), Some("api_key")),
        (
            &sample,
            json!({"config": {"deals": 5}}),
            Some("config.deals"),
        ),
        (&sample, json!(["hunter2"]), None),
    ];
    for (uri, body, field) in cases {
        let res = api.post(uri, &key, Some(body.clone())).await;
        assert_eq!(res.problem(400).as_deref(), field, "{uri} {body}");
        assert_eq!(res.body["type"], "urn:pandora:problem:invalid-body");
    }
    // Malformed JSON, and a body that is not JSON.
    let req = Request::post(&acme)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"api_key": "#))
        .unwrap();
    api.send(req).await.problem(400);
    let req = Request::post(&acme)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("api_key=x"))
        .unwrap();
    api.send(req).await.problem(415);

    assert!(api.connections(&ws, &key).await.is_empty());
    api.assert_never_answered("hunter2");
    api.assert_never_answered(GOOD_KEY);
}

#[tokio::test]
async fn connect_without_a_vault_key_stores_no_credentials() {
    let api = api_with(None).await;
    let (ws, key) = api.workspace("Acme").await;
    // A connector with credentials cannot be connected without a key to seal them.
    let res = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/acme/connect"),
            &key,
            Some(json!({"api_key": GOOD_KEY})),
        )
        .await;
    res.problem(503);
    assert_eq!(res.body["type"], "urn:pandora:problem:vault-key-missing");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("CREDENTIAL_ENCRYPTION_KEY is not set"),
        "{}",
        res.body
    );
    assert!(api.connections(&ws, &key).await.is_empty());
    // One that takes none has nothing to seal.
    let res = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/sample/connect"),
            &key,
            None,
        )
        .await;
    let body = res.ok(201);
    assert_eq!(body["status"], "active");
    assert_eq!(body["credentials"], "missing");
    assert_eq!(api.connections(&ws, &key).await.len(), 1);
}

// ---- sync ---------------------------------------------------------------------

#[tokio::test]
async fn sync_queues_a_run_and_a_second_one_conflicts_naming_it() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let sync = format!("/api/workspaces/{ws}/connectors/sample/sync");

    // Not connected yet: 404 for the connection.
    let res = api.post(&sync, &key, None).await;
    res.problem(404);
    assert_eq!(res.body["detail"], "connection sample not found");

    api.connect_sample(&ws, &key).await;
    let res = api
        .post(&sync, &key, Some(json!({"mode": "incremental"})))
        .await;
    let run = res.ok(202).clone();
    // The first run is full whatever was asked.
    assert_eq!(run["mode"], "full");
    assert_eq!(run["status"], "queued");
    let run_id = run["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.pandora
            .sync_run(uuid(&ws), uuid(&run_id))
            .await
            .unwrap()
            .status
            .as_str(),
        "queued"
    );

    // A second request while it is queued: 409 naming it.
    for body in [None, Some(json!({"mode": "full"}))] {
        let res = api.post(&sync, &key, body).await;
        res.problem(409);
        assert_eq!(res.body["type"], "urn:pandora:problem:sync-active");
        assert_eq!(res.body["active_run_id"], run_id.as_str());
        assert!(res.body["detail"].as_str().unwrap().contains(&run_id));
    }

    // Bad bodies: 400 naming the field.
    for (body, field) in [
        (json!({"mode": "partial"}), "mode"),
        (json!({"mode": 1}), "mode"),
        (json!({"mode": "full", "force": true}), "force"),
    ] {
        let res = api.post(&sync, &key, Some(body.clone())).await;
        assert_eq!(res.problem(400).as_deref(), Some(field), "{body}");
    }

    // Once it ran, an incremental sync is incremental.
    api.run_next_job().await;
    let run = api
        .pandora
        .sync_run(uuid(&ws), uuid(&run_id))
        .await
        .unwrap();
    assert_eq!(run.status.as_str(), "succeeded", "{:?}", run.error);
    let res = api.post(&sync, &key, None).await;
    assert_eq!(res.ok(202)["mode"], "incremental");
    assert_ne!(res.body["id"], run_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_syncs_give_one_run_and_one_conflict() {
    let api = api().await;
    for round in 0..5 {
        let (ws, key) = api.workspace(&format!("W{round}")).await;
        api.connect_sample(&ws, &key).await;
        let uri = format!("/api/workspaces/{ws}/connectors/sample/sync");
        let a = tokio::spawn(send(
            api.app.clone(),
            request(Method::POST, &uri, Some(&key), None),
        ));
        let b = tokio::spawn(send(
            api.app.clone(),
            request(Method::POST, &uri, Some(&key), None),
        ));
        let (a, b) = (a.await.unwrap().0, b.await.unwrap().0);
        let (accepted, conflict) = match (a.status.as_u16(), b.status.as_u16()) {
            (202, 409) => (a, b),
            (409, 202) => (b, a),
            other => panic!("round {round}: expected one 202 and one 409, got {other:?}"),
        };
        conflict.problem(409);
        assert_eq!(conflict.body["active_run_id"], accepted.body["id"]);
        let runs = api
            .get(
                &format!("/api/workspaces/{ws}/connectors/sample/runs"),
                &key,
            )
            .await;
        assert_eq!(runs.ok(200)["data"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn runs_are_listed_newest_first_and_paginated() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    api.connect_sample(&ws, &key).await;
    let runs = format!("/api/workspaces/{ws}/connectors/sample/runs");
    assert_eq!(api.get(&runs, &key).await.ok(200)["data"], json!([]));

    let mut ids = Vec::new();
    for _ in 0..3 {
        let res = api
            .post(
                &format!("/api/workspaces/{ws}/connectors/sample/sync"),
                &key,
                None,
            )
            .await;
        ids.push(res.ok(202)["id"].as_str().unwrap().to_string());
        api.run_next_job().await;
    }
    ids.reverse();

    let first = api.get(&format!("{runs}?limit=2"), &key).await;
    let body = first.ok(200);
    let page: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(body["data"][0]["status"], "succeeded");
    assert_eq!(body["data"][2], Value::Null);
    let cursor = body["next_cursor"].as_str().unwrap();
    let second = api
        .get(&format!("{runs}?limit=2&cursor={cursor}"), &key)
        .await;
    let body = second.ok(200);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["id"], ids[2].as_str());
    assert_eq!(body["data"][0]["mode"], "full");
    assert_eq!(body["next_cursor"], Value::Null);

    for (query, field) in [
        ("limit=0", "limit"),
        ("cursor=nope", "cursor"),
        ("order=asc", "order"),
    ] {
        let res = api.get(&format!("{runs}?{query}"), &key).await;
        assert_eq!(res.problem(400).as_deref(), Some(field), "{query}");
    }
    // A known connector the workspace never connected: 404 for the connection.
    let res = api
        .get(&format!("/api/workspaces/{ws}/connectors/acme/runs"), &key)
        .await;
    res.problem(404);
    assert_eq!(res.body["detail"], "connection acme not found");
}

// ---- health -------------------------------------------------------------------

#[tokio::test]
async fn health_reports_state_runs_and_the_live_check() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let health = format!("/api/workspaces/{ws}/connectors/acme/health");
    api.get(&health, &key).await.problem(404);

    let connected = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/acme/connect"),
            &key,
            Some(json!({"api_key": GOOD_KEY})),
        )
        .await;
    let id = connected.ok(201)["id"].clone();
    let res = api.get(&health, &key).await;
    let body = res.ok(200).clone();
    assert_eq!(body["connector"], "acme");
    assert_eq!(body["connection_id"], id);
    assert_eq!(body["status"], "active");
    assert_eq!(body["credentials"], "encrypted");
    assert_eq!(body["last_sync_at"], Value::Null);
    assert_eq!(body["last_error"], Value::Null);
    assert_eq!(body["active_run"], Value::Null);
    assert_eq!(body["last_run"], Value::Null);
    assert_eq!(body["check"]["ok"], true);
    assert_eq!(body["check"]["detail"], "authenticated as acme account 42");
    assert_eq!(body["check"]["error"], Value::Null);
    assert!(body["check"]["duration_ms"].is_u64(), "{body}");

    // A queued run is the active run; once it ran, the last run and last sync.
    let run = api
        .post(
            &format!("/api/workspaces/{ws}/connectors/acme/sync"),
            &key,
            None,
        )
        .await;
    let run_id = run.ok(202)["id"].clone();
    let body = api.get(&health, &key).await.ok(200).clone();
    assert_eq!(body["active_run"]["id"], run_id);
    assert_eq!(body["active_run"]["status"], "queued");
    assert_eq!(body["last_run"], Value::Null);
    api.run_next_job().await;
    let body = api.get(&health, &key).await.ok(200).clone();
    assert_eq!(body["active_run"], Value::Null);
    assert_eq!(body["last_run"]["id"], run_id);
    assert_eq!(body["last_run"]["status"], "succeeded");
    assert!(body["last_sync_at"].is_string(), "{body}");

    // Legacy plaintext credentials: reported unencrypted, still checked.
    let store = api.pandora.store();
    let plaintext = |key: &str| NewConnection {
        connector: "acme".into(),
        status: ConnectionStatus::Active,
        credentials: Some(StoredCredentials(json!({ "api_key": key }).to_string())),
        config: json!({}),
    };
    store
        .upsert_connection(uuid(&ws), &plaintext(GOOD_KEY))
        .await
        .unwrap();
    let body = api.get(&health, &key).await.ok(200).clone();
    assert_eq!(body["credentials"], "unencrypted");
    assert_eq!(body["check"]["ok"], true);

    // A key the vendor now refuses: the endpoint answers, the check says why.
    store
        .upsert_connection(uuid(&ws), &plaintext(BAD_KEY))
        .await
        .unwrap();
    let body = api.get(&health, &key).await.ok(200).clone();
    assert_eq!(body["check"]["ok"], false);
    assert_eq!(body["check"]["detail"], REASON);

    // A check that does not answer in time: reported, not an error status.
    store
        .upsert_connection(uuid(&ws), &plaintext(SLOW_KEY))
        .await
        .unwrap();
    let body = api.get(&health, &key).await.ok(200).clone();
    assert_eq!(body["check"]["ok"], false);
    assert!(
        body["check"]["error"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{body}"
    );
    assert!(
        body["check"]["duration_ms"].as_u64().unwrap() >= 300,
        "{body}"
    );

    // Credentials that do not open: reported too.
    store
        .upsert_connection(
            uuid(&ws),
            &NewConnection {
                credentials: Some(StoredCredentials("pv1.AAAA".into())),
                ..plaintext(GOOD_KEY)
            },
        )
        .await
        .unwrap();
    let body = api.get(&health, &key).await.ok(200).clone();
    assert_eq!(body["credentials"], "unreadable");
    assert_eq!(body["check"]["ok"], false);
    assert!(
        body["check"]["error"]
            .as_str()
            .unwrap()
            .starts_with("not run: the credentials do not open"),
        "{body}"
    );

    api.get(&format!("{health}?verbose=1"), &key)
        .await
        .problem(400);
    for secret in [GOOD_KEY, BAD_KEY, SLOW_KEY] {
        api.assert_never_answered(secret);
    }
}

/// A connection to a connector this deployment no longer offers (e.g. one
/// removed from the registry) can still be inspected and removed.
#[tokio::test]
async fn a_connection_to_a_connector_no_longer_offered_can_be_seen_and_removed() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    api.pandora
        .store()
        .upsert_connection(
            uuid(&ws),
            &NewConnection {
                connector: "retired".into(),
                status: ConnectionStatus::Active,
                credentials: Some(StoredCredentials(r#"{"api_key":"old"}"#.into())),
                config: json!({}),
            },
        )
        .await
        .unwrap();
    let base = format!("/api/workspaces/{ws}/connectors/retired");
    let res = api.get(&format!("{base}/health"), &key).await;
    let body = res.ok(200);
    assert_eq!(body["credentials"], "unencrypted");
    assert_eq!(body["check"]["ok"], false);
    assert_eq!(
        body["check"]["error"],
        "not run: this deployment does not offer the retired connector"
    );
    api.get(&format!("{base}/runs"), &key).await.ok(200);
    // Syncing it is refused with the registry's answer.
    let res = api.post(&format!("{base}/sync"), &key, None).await;
    res.problem(404);
    assert!(res.body["detail"]
        .as_str()
        .unwrap()
        .contains("known: acme, sample"));
    let res = api
        .call(
            Method::DELETE,
            &format!("{base}/disconnect?purge=true"),
            &key,
            None,
        )
        .await;
    assert_eq!(res.ok(200)["purged"], true);
    assert!(api.connections(&ws, &key).await.is_empty());
}

// ---- disconnect ---------------------------------------------------------------

#[tokio::test]
async fn disconnect_cancels_queued_runs_and_blocks_syncs() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let base = format!("/api/workspaces/{ws}/connectors/acme");
    api.post(
        &format!("{base}/connect"),
        &key,
        Some(json!({"api_key": GOOD_KEY})),
    )
    .await
    .ok(201);
    let run = api.post(&format!("{base}/sync"), &key, None).await;
    let run_id = run.ok(202)["id"].as_str().unwrap().to_string();

    for bad in ["purge=yes", "purge=", "purge=1", "force=true"] {
        let res = api
            .call(
                Method::DELETE,
                &format!("{base}/disconnect?{bad}"),
                &key,
                None,
            )
            .await;
        let field = res.problem(400).unwrap();
        assert!(bad.starts_with(&field), "{bad}: {field}");
    }
    // Nothing happened on those.
    assert_eq!(
        api.pandora
            .sync_run(uuid(&ws), uuid(&run_id))
            .await
            .unwrap()
            .status
            .as_str(),
        "queued"
    );

    let res = api
        .call(
            Method::DELETE,
            &format!("{base}/disconnect?purge=false"),
            &key,
            None,
        )
        .await;
    let body = res.ok(200);
    assert_eq!(body["cancelled_jobs"], 1);
    assert_eq!(body["purged"], false);
    let run = api
        .pandora
        .sync_run(uuid(&ws), uuid(&run_id))
        .await
        .unwrap();
    assert_eq!(run.status.as_str(), "cancelled");

    // The connection stays, disconnected and without credentials.
    assert_eq!(
        api.connections(&ws, &key).await,
        [("acme".to_string(), "disconnected".to_string())]
    );
    let health = api.get(&format!("{base}/health"), &key).await;
    let body = health.ok(200);
    assert_eq!(body["status"], "disconnected");
    assert_eq!(body["credentials"], "missing");
    assert_eq!(body["last_run"]["status"], "cancelled");
    assert_eq!(body["check"]["ok"], false);
    assert_eq!(
        body["check"]["error"],
        "not run: the connection is disconnected"
    );
    let runs = api.get(&format!("{base}/runs"), &key).await;
    assert_eq!(runs.ok(200)["data"][0]["status"], "cancelled");

    // Syncing a disconnected connection: 409, no run named.
    let res = api.post(&format!("{base}/sync"), &key, None).await;
    res.problem(409);
    assert_eq!(res.body["type"], "urn:pandora:problem:conflict");
    assert!(res.body.get("active_run_id").is_none());
    assert!(res.body["detail"]
        .as_str()
        .unwrap()
        .contains("disconnected"));

    // Connecting again makes it syncable.
    api.post(
        &format!("{base}/connect"),
        &key,
        Some(json!({"api_key": GOOD_KEY})),
    )
    .await
    .ok(200);
    api.post(&format!("{base}/sync"), &key, None).await.ok(202);
}

#[tokio::test]
async fn disconnect_with_purge_deletes_the_synced_data() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let (other, other_key) = api.workspace("Other").await;
    for (w, k) in [(&ws, &key), (&other, &other_key)] {
        api.connect_sample(w, k).await;
        api.post(
            &format!("/api/workspaces/{w}/connectors/sample/sync"),
            k,
            None,
        )
        .await
        .ok(202);
        api.run_next_job().await;
    }
    let deals = |w: &str| {
        let store = api.pandora.store().clone();
        let w = uuid(w);
        async move { store.count_records(w, RecordKind::Deal).await.unwrap() }
    };
    assert_eq!(deals(&ws).await, 100);
    assert_eq!(deals(&other).await, 100);
    let listed = api
        .get(&format!("/api/workspaces/{ws}/deals?limit=1"), &key)
        .await;
    assert_eq!(listed.ok(200)["data"].as_array().unwrap().len(), 1);

    let res = api
        .call(
            Method::DELETE,
            &format!("/api/workspaces/{ws}/connectors/sample/disconnect?purge=true"),
            &key,
            None,
        )
        .await;
    let body = res.ok(200);
    assert_eq!(body["purged"], true);
    assert_eq!(body["cancelled_jobs"], 0);
    assert!(body["purged_rows"].as_u64().unwrap() >= 100, "{body}");

    assert_eq!(deals(&ws).await, 0);
    let listed = api.get(&format!("/api/workspaces/{ws}/deals"), &key).await;
    assert_eq!(listed.ok(200)["data"], json!([]));
    assert!(api.connections(&ws, &key).await.is_empty());
    api.get(
        &format!("/api/workspaces/{ws}/connectors/sample/runs"),
        &key,
    )
    .await
    .problem(404);
    api.get(
        &format!("/api/workspaces/{ws}/connectors/sample/health"),
        &key,
    )
    .await
    .problem(404);
    // A second disconnect finds nothing.
    api.call(
        Method::DELETE,
        &format!("/api/workspaces/{ws}/connectors/sample/disconnect"),
        &key,
        None,
    )
    .await
    .problem(404);

    // The other workspace keeps everything.
    assert_eq!(deals(&other).await, 100);
    assert_eq!(
        api.connections(&other, &other_key).await,
        [("sample".to_string(), "active".to_string())]
    );
}

// ---- tenancy ------------------------------------------------------------------

#[tokio::test]
async fn another_workspace_key_gets_404_on_every_connector_route() {
    let api = api().await;
    let (a, key_a) = api.workspace("A").await;
    let (b, key_b) = api.workspace("B").await;
    api.connect_sample(&b, &key_b).await;
    let run = api
        .post(
            &format!("/api/workspaces/{b}/connectors/sample/sync"),
            &key_b,
            None,
        )
        .await;
    let run_id = run.ok(202)["id"].clone();
    let missing = uuid::Uuid::now_v7().to_string();

    let routes = |ws: &str| -> Vec<(Method, String, Option<Value>)> {
        let base = format!("/api/workspaces/{ws}/connectors");
        vec![
            (Method::GET, base.clone(), None),
            (
                Method::POST,
                format!("{base}/sample/connect"),
                Some(json!({"config": {"deals": 100}})),
            ),
            (
                Method::POST,
                format!("{base}/sample/sync"),
                Some(json!({"mode": "full"})),
            ),
            (Method::GET, format!("{base}/sample/health"), None),
            (
                Method::DELETE,
                format!("{base}/sample/disconnect?purge=true"),
                None,
            ),
            (Method::GET, format!("{base}/sample/runs"), None),
        ]
    };
    for ws in [&b, &missing] {
        for (method, uri, body) in routes(ws) {
            let res = api.call(method.clone(), &uri, &key_a, body).await;
            res.problem(404);
            assert_eq!(
                res.body["detail"],
                format!("workspace {ws} not found"),
                "{method} {uri}"
            );
        }
    }
    // The admin on a missing workspace gets the very same body.
    for (method, uri, body) in routes(&missing) {
        let res = api.call(method.clone(), &uri, &api.admin, body).await;
        res.problem(404);
        assert_eq!(res.body["detail"], format!("workspace {missing} not found"));
    }
    // A workspace key on its own workspace sees none of B's connections.
    assert!(api.connections(&a, &key_a).await.is_empty());

    // Nothing of B changed.
    let health = api
        .get(
            &format!("/api/workspaces/{b}/connectors/sample/health"),
            &key_b,
        )
        .await;
    let body = health.ok(200);
    assert_eq!(body["status"], "active");
    assert_eq!(body["active_run"]["id"], run_id);
    let conn = api
        .pandora
        .store()
        .get_connection(uuid(&b), "sample")
        .await
        .unwrap();
    assert_eq!(conn.config, json!({"deals": 100, "seed": 7}));
}

// ---- OpenAPI ------------------------------------------------------------------

#[tokio::test]
async fn the_openapi_document_describes_the_connector_routes() {
    let api = api().await;
    let res = api
        .send(request(Method::GET, "/api/openapi.json", None, None))
        .await;
    let doc = res.ok(200);
    let paths = &doc["paths"];
    let connect = &paths["/api/workspaces/{id}/connectors/{connector}/connect"]["post"];
    for status in ["200", "201", "400", "404", "422", "503"] {
        assert!(
            connect["responses"][status].is_object(),
            "connect: {status} undocumented"
        );
    }
    assert!(
        connect["responses"]["422"]["content"]["application/problem+json"].is_object(),
        "422 is not a problem"
    );
    let sync = &paths["/api/workspaces/{id}/connectors/{connector}/sync"]["post"];
    assert!(sync["responses"]["202"].is_object());
    assert!(sync["responses"]["409"].is_object());
    let disconnect = &paths["/api/workspaces/{id}/connectors/{connector}/disconnect"]["delete"];
    assert!(disconnect["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "purge"));
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "ConnectorList",
        "ConnectionList",
        "Connected",
        "ConnectionHealth",
        "LiveCheck",
        "SyncRunList",
        "Disconnected",
        "ConnectRequest",
        "SyncRequest",
    ] {
        assert!(schemas[schema].is_object(), "{schema} schema missing");
    }
    assert!(schemas["Problem"]["properties"]["active_run_id"].is_object());
}
