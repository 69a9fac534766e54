//! The webhook endpoints through the real router over a real SQLite store:
//! registering (201 with the secret once, never again), validation (422
//! naming `url`, `events`, `events[i]`), no vault key (503
//! `vault-key-missing`), list, read, delete, deliveries (paginated), and
//! workspace scoping (another workspace's key or id → 404).

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use pandora_core::auth::{SecretToken, ADMIN_TOKEN_PREFIX};
use pandora_core::vault::{LocalVault, MasterKey};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Api {
    app: Router,
    admin: String,
    _dir: tempfile::TempDir,
}

struct Res {
    status: StatusCode,
    body: Value,
    raw: String,
}

impl Res {
    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.raw);
        &self.body
    }

    /// Asserts a problem with `status`; returns its `field`.
    #[track_caller]
    fn problem(&self, status: u16) -> Option<String> {
        assert_eq!(self.status.as_u16(), status, "{}", self.raw);
        assert!(self.body["detail"].is_string(), "{}", self.raw);
        self.body["field"].as_str().map(str::to_string)
    }
}

async fn api(with_key: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let admin = SecretToken::generate(ADMIN_TOKEN_PREFIX);
    let vault = if with_key {
        LocalVault::new(MasterKey::from_bytes(&[3; 32]))
    } else {
        LocalVault::without_key()
    };
    let pandora = Pandora::builder()
        .store(store)
        .admin_token(&admin)
        .vault(vault)
        .build()
        .unwrap();
    Api {
        app: pandora_http::router(pandora),
        admin: admin.expose().to_string(),
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
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Res { status, body, raw }
    }

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
        (
            body["workspace"]["id"].as_str().unwrap().to_string(),
            body["api_key"].as_str().unwrap().to_string(),
        )
    }
}

#[tokio::test]
async fn webhooks_are_registered_with_a_secret_shown_once() {
    let api = api(true).await;
    let (ws, key) = api.workspace("Acme").await;
    let base = format!("/api/workspaces/{ws}/webhooks");
    let res = api
        .call(
            Method::POST,
            &base,
            &key,
            Some(json!({
                "url": "https://hooks.example.com/pandora",
                "events": ["deal.single_threaded", "deal.high_risk"],
                "description": "revops channel",
            })),
        )
        .await;
    let created = res.ok(201).clone();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 43,
        "{secret}"
    );
    let hook = &created["webhook"];
    let id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["workspace_id"], ws.as_str());
    assert_eq!(hook["url"], "https://hooks.example.com/pandora");
    assert_eq!(
        hook["events"],
        json!(["deal.high_risk", "deal.single_threaded"])
    );
    assert_eq!(hook["description"], "revops channel");

    let list = api.call(Method::GET, &base, &key, None).await;
    assert_eq!(list.ok(200)["data"][0]["id"], id.as_str());
    let one = api
        .call(Method::GET, &format!("{base}/{id}"), &key, None)
        .await;
    assert_eq!(one.ok(200)["id"], id.as_str());
    let deliveries = api
        .call(
            Method::GET,
            &format!("{base}/{id}/deliveries?limit=10"),
            &key,
            None,
        )
        .await;
    assert_eq!(deliveries.ok(200)["data"], json!([]));
    assert!(deliveries.body["next_cursor"].is_null());
    for res in [&list, &one, &deliveries] {
        assert!(
            !res.raw.contains(&secret),
            "secret shown again: {}",
            res.raw
        );
        assert!(!res.raw.contains("secret"), "{}", res.raw);
    }
    let bad_limit = api
        .call(
            Method::GET,
            &format!("{base}/{id}/deliveries?limit=0"),
            &key,
            None,
        )
        .await;
    assert_eq!(bad_limit.problem(400).as_deref(), Some("limit"));

    let del = api
        .call(Method::DELETE, &format!("{base}/{id}"), &key, None)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    for (method, uri) in [
        (Method::GET, format!("{base}/{id}")),
        (Method::DELETE, format!("{base}/{id}")),
        (Method::GET, format!("{base}/{id}/deliveries")),
    ] {
        api.call(method, &uri, &key, None).await.problem(404);
    }
    let bad_id = api
        .call(Method::GET, &format!("{base}/not-a-uuid"), &key, None)
        .await;
    assert_eq!(bad_id.problem(400).as_deref(), Some("webhookId"));
}

#[tokio::test]
async fn invalid_webhooks_are_422_naming_the_field() {
    let api = api(true).await;
    let (ws, key) = api.workspace("Acme").await;
    let base = format!("/api/workspaces/{ws}/webhooks");
    let cases = [
        (
            json!({"url": "ftp://example.com/x", "events": ["deal.high_risk"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["deal.high_risk"]}),
            "url",
        ),
        (
            json!({"url": "/relative/path", "events": ["deal.high_risk"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com/x", "events": []}),
            "events",
        ),
        (json!({"url": "https://example.com/x"}), "events"),
        (
            json!({"url": "https://example.com/x", "events": ["deal.high_risk", "deal.won"]}),
            "events[1]",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["deal.high_risk"], "description": "x".repeat(201)}),
            "description",
        ),
    ];
    for (body, field) in cases {
        let res = api
            .call(Method::POST, &base, &key, Some(body.clone()))
            .await;
        assert_eq!(res.problem(422).as_deref(), Some(field), "{body}");
    }
    let list = api.call(Method::GET, &base, &key, None).await;
    assert_eq!(list.ok(200)["data"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn without_a_vault_key_no_webhook_is_stored() {
    let api = api(false).await;
    let (ws, key) = api.workspace("Acme").await;
    let base = format!("/api/workspaces/{ws}/webhooks");
    let res = api
        .call(
            Method::POST,
            &base,
            &key,
            Some(json!({"url": "https://example.com/x", "events": ["deal.high_risk"]})),
        )
        .await;
    res.problem(503);
    assert_eq!(res.body["type"], "urn:pandora:problem:vault-key-missing");
    assert!(res.raw.contains("CREDENTIAL_ENCRYPTION_KEY"), "{}", res.raw);
    assert_eq!(
        api.call(Method::GET, &base, &key, None).await.ok(200)["data"],
        json!([])
    );
}

#[tokio::test]
async fn another_workspace_sees_nothing() {
    let api = api(true).await;
    let (a, key_a) = api.workspace("A").await;
    let (b, key_b) = api.workspace("B").await;
    let base_a = format!("/api/workspaces/{a}/webhooks");
    let created = api
        .call(
            Method::POST,
            &base_a,
            &key_a,
            Some(json!({"url": "https://example.com/a", "events": ["deal.high_risk"]})),
        )
        .await;
    let id = created.ok(201)["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"url": "https://example.com/b", "events": ["deal.high_risk"]});
    // B's key on A's workspace: 404 on every route.
    for (method, uri, body) in [
        (Method::POST, base_a.clone(), Some(body.clone())),
        (Method::GET, base_a.clone(), None),
        (Method::GET, format!("{base_a}/{id}"), None),
        (Method::DELETE, format!("{base_a}/{id}"), None),
        (Method::GET, format!("{base_a}/{id}/deliveries"), None),
    ] {
        api.call(method, &uri, &key_b, body).await.problem(404);
    }
    // A's webhook id under B's workspace, with B's key: 404 too.
    let base_b = format!("/api/workspaces/{b}/webhooks");
    for (method, uri) in [
        (Method::GET, format!("{base_b}/{id}")),
        (Method::DELETE, format!("{base_b}/{id}")),
        (Method::GET, format!("{base_b}/{id}/deliveries")),
    ] {
        api.call(method, &uri, &key_b, None).await.problem(404);
    }
    assert_eq!(
        api.call(Method::GET, &base_b, &key_b, None).await.ok(200)["data"],
        json!([])
    );
    // A's webhook is untouched; the admin sees it.
    let one = api
        .call(Method::GET, &format!("{base_a}/{id}"), &api.admin, None)
        .await;
    assert_eq!(one.ok(200)["url"], "https://example.com/a");
    api.call(Method::GET, &base_a, "pk_not-a-key", None)
        .await
        .problem(401);
}
