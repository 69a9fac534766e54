//! OAuth 2.0 through the real router over a real SQLite store, against a
//! token endpoint simulated by wiremock: the authorize → callback flow, the
//! signed single-use state, PKCE, and token refresh (single-flight, rotation,
//! `invalid_grant`, retries).
//!
//! The vendor side is a test [`OAuthProvider`] defined here that speaks
//! real OAuth over HTTP (form-encoded token requests with the client
//! credentials), as a connector's provider does.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use http_body_util::BodyExt;
use pandora_core::auth::{SecretToken, ADMIN_TOKEN_PREFIX};
use pandora_core::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, ConnectorRegistry, RecordSink,
    SyncContext, TokenSource,
};
use pandora_core::model::{ConnectionStatus, NewWorkspace};
use pandora_core::oauth::{
    OAuthClient, OAuthProvider, Pkce, RefreshError, StateCodec, StatePayload, StoredTokens,
    TokenRefreshSettings, TokenSet,
};
use pandora_core::store::Store;
use pandora_core::vault::{Credentials, LocalVault, MasterKey};
use pandora_core::{Error, Pandora};
use pandora_store_sqlite::SqliteStore;
use reqwest::Url;
use serde_json::{json, Value};
use tower::ServiceExt;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SESSION_SECRET: &str = "an-oauth-state-secret-of-at-least-32-characters";
const CLIENT_ID: &str = "test-client-id";
const CLIENT_SECRET: &str = "test-client-secret-value";

// ---- logs ---------------------------------------------------------------------

/// Everything this test binary logs, at every level.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logs().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .try_init();
    });
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

// ---- the vendor ----------------------------------------------------------------

/// A vendor's OAuth flow over HTTP, against `base` (a wiremock server).
struct WireProvider {
    base: String,
    pkce: bool,
    http: reqwest::Client,
}

impl WireProvider {
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<Value, (u16, Value)> {
        let res = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
            .send()
            .await
            .map_err(|_| (0, Value::Null))?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == 200 {
            Ok(body)
        } else {
            Err((status, body))
        }
    }
}

fn token_set(body: &Value) -> Result<TokenSet, Error> {
    let access = body["access_token"]
        .as_str()
        .ok_or_else(|| Error::internal("no access_token"))?;
    Ok(TokenSet {
        access_token: SecretToken::from_string(access.to_string()),
        refresh_token: body["refresh_token"]
            .as_str()
            .map(|r| SecretToken::from_string(r.to_string())),
        expires_at: body["expires_in"]
            .as_i64()
            .map(|s| Utc::now() + chrono::Duration::seconds(s)),
        instance_url: body["instance_url"].as_str().map(str::to_string),
        scopes: body["scope"]
            .as_str()
            .map(|s| s.split(' ').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

#[async_trait]
impl OAuthProvider for WireProvider {
    fn uses_pkce(&self) -> bool {
        self.pkce
    }

    fn authorize_url(
        &self,
        client: &OAuthClient,
        state: &str,
        code_challenge: Option<&str>,
    ) -> Result<String, Error> {
        let mut url = Url::parse(&format!("{}/oauth/authorize", self.base))
            .map_err(|_| Error::internal("base"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("state", state);
        if let Some(challenge) = code_challenge {
            url.query_pairs_mut()
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
        Ok(url.to_string())
    }

    async fn exchange_code(
        &self,
        client: &OAuthClient,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenSet, Error> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.expose()),
        ];
        if let Some(v) = code_verifier {
            form.push(("code_verifier", v));
        }
        match self.token_request(&form).await {
            Ok(body) => token_set(&body),
            Err((400, _)) => Err(Error::rejected("the vendor refused the code")),
            Err(_) => Err(Error::unavailable("token endpoint failed")),
        }
    }

    async fn refresh(
        &self,
        client: &OAuthClient,
        refresh_token: &SecretToken,
    ) -> Result<TokenSet, RefreshError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.expose()),
        ];
        match self.token_request(&form).await {
            Ok(body) => token_set(&body).map_err(RefreshError::Other),
            Err((400, body)) if body["error"] == "invalid_grant" => Err(
                RefreshError::InvalidGrant(body["error_description"].as_str().unwrap_or("").into()),
            ),
            Err((status, _)) => Err(RefreshError::Other(Error::unavailable(format!(
                "token endpoint answered {status}"
            )))),
        }
    }
}

/// An OAuth connector over a [`WireProvider`]; its check and sync ask for a
/// token.
struct Crm {
    id: &'static str,
    provider: Arc<WireProvider>,
}

#[async_trait]
impl Connector for Crm {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: self.id,
            display_name: "Test CRM",
            auth: AuthKind::OAuth2,
            streams: vec![],
        }
    }

    async fn check(&self, ctx: &CheckContext) -> pandora_core::Result<CheckOutcome> {
        let tokens = ctx
            .tokens
            .as_ref()
            .expect("an OAuth check gets a token source");
        tokens.access_token().await?;
        Ok(CheckOutcome {
            ok: true,
            detail: None,
        })
    }

    async fn sync(
        &self,
        ctx: &SyncContext,
        _sink: &mut dyn RecordSink,
    ) -> pandora_core::Result<()> {
        ctx.check
            .tokens
            .as_ref()
            .expect("an OAuth sync gets a token source")
            .access_token()
            .await?;
        Ok(())
    }

    fn oauth(&self) -> Option<Arc<dyn OAuthProvider>> {
        Some(self.provider.clone())
    }
}

// ---- the API -------------------------------------------------------------------

struct Res {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Res {
    #[track_caller]
    fn problem(&self, status: u16) -> Option<String> {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            self.text
        );
        self.body["field"].as_str().map(str::to_string)
    }

    fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }
}

/// Options of a test deployment.
#[derive(Default)]
struct Options {
    state_ttl: Option<Duration>,
    success_url: Option<&'static str>,
}

/// A deployment: a router over a SQLite store, the vendor simulator, and
/// three OAuth connectors — `crmone` (no PKCE, like HubSpot), `crmtwo`
/// (PKCE, like Salesforce) and `crmthree` (no application configured).
struct Env {
    app: Router,
    pandora: Pandora,
    vendor: MockServer,
    admin: String,
    bodies: Mutex<Vec<String>>,
    dir: tempfile::TempDir,
}

fn client(connector: &str) -> OAuthClient {
    OAuthClient {
        client_id: CLIENT_ID.into(),
        client_secret: SecretToken::from_string(CLIENT_SECRET.into()),
        redirect_uri: format!("http://localhost:3000/api/auth/{connector}/callback"),
    }
}

fn settings() -> TokenRefreshSettings {
    TokenRefreshSettings {
        backoff: Duration::from_millis(20),
        poll: Duration::from_millis(20),
        ..TokenRefreshSettings::default()
    }
}

fn registry(vendor: &MockServer) -> ConnectorRegistry {
    let provider = |pkce| {
        Arc::new(WireProvider {
            base: vendor.uri(),
            pkce,
            http: reqwest::Client::new(),
        })
    };
    ConnectorRegistry::new()
        .with(Crm {
            id: "crmone",
            provider: provider(false),
        })
        .with(Crm {
            id: "crmtwo",
            provider: provider(true),
        })
        .with(Crm {
            id: "crmthree",
            provider: provider(false),
        })
}

/// A facade over `store` with this test's OAuth configuration.
fn facade(store: Arc<dyn Store>, vendor: &MockServer, admin: &SecretToken, o: &Options) -> Pandora {
    let mut b = Pandora::builder()
        .shared_store(store)
        .admin_token(admin)
        .vault(LocalVault::new(MasterKey::from_bytes(&[5u8; 32])))
        .connectors(registry(vendor))
        .oauth_client("crmone", client("crmone"))
        .oauth_client("crmtwo", client("crmtwo"))
        .oauth_state_secret(&SecretToken::from_string(SESSION_SECRET.into()))
        .token_refresh(settings());
    if let Some(ttl) = o.state_ttl {
        b = b.oauth_state_ttl(ttl);
    }
    if let Some(url) = o.success_url {
        b = b.oauth_success_url(url);
    }
    b.build().unwrap()
}

async fn env_with(o: Options) -> Env {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let vendor = MockServer::start().await;
    let admin = SecretToken::generate(ADMIN_TOKEN_PREFIX);
    let pandora = facade(Arc::new(store), &vendor, &admin, &o);
    Env {
        app: pandora_http::router(pandora.clone()),
        pandora,
        vendor,
        admin: admin.expose().to_string(),
        bodies: Mutex::new(Vec::new()),
        dir,
    }
}

async fn env() -> Env {
    env_with(Options::default()).await
}

impl Env {
    async fn call(&self, uri: &str, token: Option<&str>, accept: Option<&str>) -> Res {
        self.request(Method::GET, uri, token, accept, None).await
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        accept: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
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
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        for v in headers.values() {
            self.bodies
                .lock()
                .unwrap()
                .push(v.to_str().unwrap_or_default().to_string());
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            text,
            body,
        }
    }

    /// A workspace and its key.
    async fn workspace(&self, name: &str) -> (uuid::Uuid, String) {
        let created = self
            .pandora
            .create_workspace(NewWorkspace {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        (created.workspace.id, created.api_key.expose().to_string())
    }

    /// Starts a flow with `key`; returns the consent URL's query.
    async fn authorize(&self, connector: &str, ws: uuid::Uuid, key: &str) -> Vec<(String, String)> {
        let res = self
            .call(
                &format!("/api/auth/{connector}/authorize?workspaceId={ws}"),
                Some(key),
                Some("application/json"),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let url = Url::parse(res.body["authorize_url"].as_str().unwrap()).unwrap();
        assert_eq!(url.path(), "/oauth/authorize");
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The token endpoint answers a code exchange with tokens.
    async fn answer_exchange(&self, access: &str, refresh: &str) {
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 1800,
                "token_type": "bearer",
                "scope": "crm.objects.deals.read oauth"
            })))
            .mount(&self.vendor)
            .await;
    }

    /// The form bodies the token endpoint received, in order.
    async fn token_requests(&self) -> Vec<Vec<(String, String)>> {
        self.vendor
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/oauth/token")
            .map(|r| {
                assert_eq!(
                    r.headers.get("content-type").map(|v| v.to_str().unwrap()),
                    Some("application/x-www-form-urlencoded")
                );
                Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(&r.body)))
                    .unwrap()
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .collect()
    }

    async fn stored_tokens(&self, ws: uuid::Uuid, connector: &str) -> StoredTokens {
        let c = self.pandora.connection(ws, connector).await.unwrap();
        self.pandora
            .open_credentials(&c)
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Asserts that no answer and no log line holds any of `secrets`.
    fn assert_never_shown(&self, secrets: &[&str]) {
        let bodies = self.bodies.lock().unwrap().join("\n");
        let logs = logged();
        for s in secrets {
            assert!(!bodies.contains(s), "an API answer shows {s}");
            assert!(!logs.contains(s), "the log shows {s}");
        }
    }
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn callback_uri(connector: &str, code: &str, state: &str) -> String {
    let mut url = Url::parse(&format!("http://x/api/auth/{connector}/callback")).unwrap();
    url.query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", state);
    format!("{}?{}", url.path(), url.query().unwrap())
}

// ---- the flow ------------------------------------------------------------------

#[tokio::test]
async fn the_full_flow_connects_with_sealed_tokens() {
    let env = env().await;
    let (ws, key) = env.workspace("Acme").await;

    // Without Accept: JSON, a 302 to the consent page.
    let res = env
        .call(
            &format!("/api/auth/crmone/authorize?workspaceId={ws}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert!(res
        .location()
        .starts_with(&format!("{}/oauth/authorize?", env.vendor.uri())));
    assert_eq!(res.headers[header::CACHE_CONTROL], "no-store");
    // ?format=json, and the admin token, work too.
    let res = env
        .call(
            &format!("/api/auth/crmone/authorize?workspaceId={ws}&format=json"),
            Some(&env.admin),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body["expires_at"].is_string());

    let q = env.authorize("crmone", ws, &key).await;
    assert_eq!(param(&q, "client_id"), Some(CLIENT_ID));
    assert_eq!(
        param(&q, "redirect_uri"),
        Some("http://localhost:3000/api/auth/crmone/callback"),
        "the configured callback URL, exactly"
    );
    assert_eq!(param(&q, "code_challenge"), None, "crmone uses no PKCE");
    let state = param(&q, "state").unwrap().to_string();

    env.answer_exchange("access-from-exchange-1", "refresh-from-exchange-1")
        .await;
    let res = env
        .call(&callback_uri("crmone", "the-code-123", &state), None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["connected"], true);
    assert_eq!(res.body["connection"]["connector"], "crmone");
    assert_eq!(res.body["connection"]["workspace_id"], ws.to_string());
    assert_eq!(res.body["connection"]["status"], "active");
    assert_eq!(res.body["connection"]["credentials"], "encrypted");

    // The code exchange: form-encoded, with the client's credentials.
    let requests = env.token_requests().await;
    assert_eq!(requests.len(), 1);
    let form = &requests[0];
    assert_eq!(param(form, "grant_type"), Some("authorization_code"));
    assert_eq!(param(form, "code"), Some("the-code-123"));
    assert_eq!(param(form, "client_id"), Some(CLIENT_ID));
    assert_eq!(param(form, "client_secret"), Some(CLIENT_SECRET));
    assert_eq!(
        param(form, "redirect_uri"),
        Some("http://localhost:3000/api/auth/crmone/callback")
    );
    assert_eq!(param(form, "code_verifier"), None);

    // Sealed at rest; opened, the vendor's tokens.
    let c = env.pandora.connection(ws, "crmone").await.unwrap();
    let raw = &c.credentials.as_ref().unwrap().0;
    assert!(raw.starts_with("pv1."), "sealed");
    assert!(!raw.contains("access-from-exchange-1"));
    let tokens = env.stored_tokens(ws, "crmone").await;
    assert_eq!(tokens.access_token, "access-from-exchange-1");
    assert_eq!(
        tokens.refresh_token.as_deref(),
        Some("refresh-from-exchange-1")
    );
    assert!(tokens.expires_at.unwrap() > Utc::now() + chrono::Duration::minutes(25));
    assert_eq!(tokens.scopes, ["crm.objects.deals.read", "oauth"]);

    // The connection is listed and healthy, through the API.
    let res = env
        .call(
            &format!("/api/workspaces/{ws}/connectors/crmone/health"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["status"], "active");
    assert_eq!(res.body["check"]["ok"], true, "{}", res.text);

    // Authorizing again updates the same connection.
    let q = env.authorize("crmone", ws, &key).await;
    let state = param(&q, "state").unwrap().to_string();
    let res = env
        .call(&callback_uri("crmone", "code-2", &state), None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["connection"]["id"], c.id.to_string());

    // The log capture works: the flow is in it (its secrets are not).
    assert!(logged().contains("OAuth authorization completed"));
    env.assert_never_shown(&[
        "access-from-exchange-1",
        "refresh-from-exchange-1",
        CLIENT_SECRET,
        "the-code-123",
        SESSION_SECRET,
    ]);
}

#[tokio::test]
async fn pkce_verifier_is_sent_on_exchange_and_matches_the_challenge() {
    let env = env().await;
    let (ws, key) = env.workspace("Acme").await;
    let q = env.authorize("crmtwo", ws, &key).await;
    assert_eq!(param(&q, "code_challenge_method"), Some("S256"));
    let challenge = param(&q, "code_challenge").unwrap().to_string();
    assert_eq!(challenge.len(), 43);
    let state = param(&q, "state").unwrap().to_string();
    env.answer_exchange("sf-access", "sf-refresh").await;
    let res = env
        .call(&callback_uri("crmtwo", "sf-code", &state), None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let requests = env.token_requests().await;
    let verifier = param(&requests[0], "code_verifier")
        .expect("the verifier is sent with the code")
        .to_string();
    assert_eq!(Pkce::challenge_of(&verifier), challenge);
    assert!(
        !state.contains(&verifier),
        "the verifier is kept server-side"
    );
    env.assert_never_shown(&[&verifier, "sf-access", "sf-refresh"]);
}

/// A fresh, valid flow of `connector` for `ws`: its state.
async fn fresh_state(env: &Env, connector: &str, ws: uuid::Uuid, key: &str) -> String {
    let q = env.authorize(connector, ws, key).await;
    param(&q, "state").unwrap().to_string()
}

#[tokio::test]
async fn a_tampered_foreign_replayed_or_missing_state_is_refused_and_changes_nothing() {
    let env = env().await;
    let (a, key_a) = env.workspace("A").await;
    let (b, _) = env.workspace("B").await;
    env.answer_exchange("acc", "ref").await;
    let state = fresh_state(&env, "crmone", a, &key_a).await;

    let refused = |res: Res| {
        assert_eq!(res.problem(400).as_deref(), Some("state"), "{}", res.text);
    };
    // Tampered: one character changed, anywhere.
    for i in [0, 10, state.len() / 2, state.len() - 1] {
        let mut chars: Vec<char> = state.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        refused(
            env.call(&callback_uri("crmone", "c", &tampered), None, None)
                .await,
        );
    }
    refused(
        env.call(&callback_uri("crmone", "c", "garbage"), None, None)
            .await,
    );
    // Another vendor's callback.
    refused(
        env.call(&callback_uri("crmtwo", "c", &state), None, None)
            .await,
    );
    // Signed with another secret.
    let codec = StateCodec::new(SESSION_SECRET.as_bytes()).unwrap();
    let payload = codec.verify(&state).unwrap();
    let foreign = StateCodec::new(&[1u8; 32]).unwrap().sign(&payload).unwrap();
    refused(
        env.call(&callback_uri("crmone", "c", &foreign), None, None)
            .await,
    );
    // Validly signed but naming another workspace (or nonce): no such pending
    // authorization there.
    for forged in [
        StatePayload {
            workspace_id: b,
            ..payload.clone()
        },
        StatePayload {
            nonce: uuid::Uuid::new_v4(),
            ..payload.clone()
        },
    ] {
        let forged = codec.sign(&forged).unwrap();
        refused(
            env.call(&callback_uri("crmone", "c", &forged), None, None)
                .await,
        );
    }
    // Missing.
    let res = env
        .call("/api/auth/crmone/callback?code=c", None, None)
        .await;
    assert_eq!(res.problem(400).as_deref(), Some("state"));

    // Nothing changed: no code was exchanged, no connection exists...
    assert!(env.token_requests().await.is_empty());
    for ws in [a, b] {
        assert!(env.pandora.list_connections(ws).await.unwrap().is_empty());
    }
    // ...and the genuine state still works, once.
    let res = env
        .call(&callback_uri("crmone", "c", &state), None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(env.token_requests().await.len(), 1);
    let before = env.pandora.connection(a, "crmone").await.unwrap();
    let res = env
        .call(&callback_uri("crmone", "c2", &state), None, None)
        .await;
    let field = res.problem(400);
    assert_eq!(field.as_deref(), Some("state"));
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        res.text
    );
    assert_eq!(
        env.token_requests().await.len(),
        1,
        "a replay exchanges nothing"
    );
    assert_eq!(env.pandora.connection(a, "crmone").await.unwrap(), before);
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let env = env_with(Options {
        state_ttl: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let (ws, key) = env.workspace("A").await;
    env.answer_exchange("acc", "ref").await;
    let state = fresh_state(&env, "crmone", ws, &key).await;
    // The expiry is kept to the second: past it for sure after 2 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = env
        .call(&callback_uri("crmone", "c", &state), None, None)
        .await;
    assert_eq!(res.problem(400).as_deref(), Some("state"));
    assert!(
        res.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        res.text
    );
    assert!(env.token_requests().await.is_empty());
    assert!(env.pandora.list_connections(ws).await.unwrap().is_empty());
}

#[tokio::test]
async fn vendor_errors_missing_code_and_bad_requests_answer_problems() {
    let env = env().await;
    let (ws, key) = env.workspace("A").await;
    let (other, _) = env.workspace("B").await;

    // The user refused on the consent page.
    let res = env
        .call(
            "/api/auth/crmone/callback?error=access_denied&error_description=The+user+denied+access&state=whatever",
            None,
            None,
        )
        .await;
    assert_eq!(res.problem(400).as_deref(), Some("error"));
    assert_eq!(res.body["type"], "urn:pandora:problem:oauth-denied");
    let detail = res.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("access_denied") && detail.contains("The user denied access"),
        "{detail}"
    );

    // No code: 400 naming it, and the state is not used up.
    let state = fresh_state(&env, "crmone", ws, &key).await;
    let mut url = Url::parse("http://x/api/auth/crmone/callback").unwrap();
    url.query_pairs_mut().append_pair("state", &state);
    let res = env
        .call(
            &format!("{}?{}", url.path(), url.query().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(res.problem(400).as_deref(), Some("code"));
    env.answer_exchange("acc", "ref").await;
    // Vendors add parameters of their own: ignored.
    let uri = format!(
        "{}&sfdc_community_url=x",
        callback_uri("crmone", "c", &state)
    );
    let res = env.call(&uri, None, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);

    // authorize: parameters, keys and connectors.
    for (uri, status, field) in [
        (
            "/api/auth/crmone/authorize".to_string(),
            400,
            Some("workspaceId"),
        ),
        (
            "/api/auth/crmone/authorize?workspaceId=nope".to_string(),
            400,
            Some("workspaceId"),
        ),
        (
            format!("/api/auth/crmone/authorize?workspaceId={ws}&format=xml"),
            400,
            Some("format"),
        ),
        (
            format!("/api/auth/crmone/authorize?workspaceId={ws}&x=1"),
            400,
            Some("x"),
        ),
        (
            format!("/api/auth/crmone/authorize?workspaceId={other}"),
            404,
            None,
        ),
        (
            format!("/api/auth/nope/authorize?workspaceId={ws}"),
            404,
            None,
        ),
    ] {
        let res = env.call(&uri, Some(&key), None).await;
        assert_eq!(res.problem(status).as_deref(), field, "{uri}");
    }
    let res = env
        .call(
            &format!("/api/auth/crmone/authorize?workspaceId={ws}"),
            None,
            None,
        )
        .await;
    res.problem(401);

    // A vendor whose application is not configured: 503 naming the variable.
    let res = env
        .call(
            &format!("/api/auth/crmthree/authorize?workspaceId={ws}"),
            Some(&key),
            None,
        )
        .await;
    res.problem(503);
    assert_eq!(res.body["type"], "urn:pandora:problem:oauth-not-configured");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("CRMTHREE_CLIENT_ID"),
        "{}",
        res.text
    );
    let res = env
        .call(&callback_uri("crmthree", "c", "s"), None, None)
        .await;
    res.problem(503);
    assert!(res.body["detail"]
        .as_str()
        .unwrap()
        .contains("CRMTHREE_CLIENT_ID"));
}

#[tokio::test]
async fn success_url_redirects_and_browsers_get_a_page() {
    let env = env_with(Options {
        success_url: Some("https://app.example.com/settings?tab=crm"),
        ..Default::default()
    })
    .await;
    let (ws, key) = env.workspace("A").await;
    env.answer_exchange("acc", "ref").await;
    let state = fresh_state(&env, "crmone", ws, &key).await;
    let res = env
        .call(
            &callback_uri("crmone", "c", &state),
            None,
            Some("text/html"),
        )
        .await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.text);
    assert_eq!(
        res.location(),
        format!("https://app.example.com/settings?tab=crm&connector=crmone&workspaceId={ws}&status=connected")
    );

    let plain = env_with(Options::default()).await;
    let (ws, key) = plain.workspace("A").await;
    plain.answer_exchange("acc", "ref").await;
    let state = fresh_state(&plain, "crmone", ws, &key).await;
    let res = plain
        .call(
            &callback_uri("crmone", "c", &state),
            None,
            Some("text/html,application/xhtml+xml;q=0.9"),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res.text.contains("Connected to crmone"), "{}", res.text);
    assert!(!res.text.contains("acc"));
}

// ---- token refresh ------------------------------------------------------------------

/// Connects `crmone` for a new workspace with tokens whose access token
/// expired a minute ago.
async fn expired_connection(env: &Env) -> uuid::Uuid {
    let (ws, _) = env.workspace("A").await;
    let tokens = json!({
        "access_token": "old-access",
        "refresh_token": "refresh-0",
        "expires_at": (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        "scopes": ["crm.objects.deals.read"],
    });
    env.pandora
        .connect(ws, "crmone", Credentials::from_json(&tokens), json!({}))
        .await
        .unwrap();
    ws
}

/// The token endpoint answers each refresh with the next tokens
/// (`access-N`, `refresh-N`), slowly enough for callers to pile up.
async fn answer_refreshes(env: &Env) {
    struct Rotating(std::sync::atomic::AtomicUsize);
    impl wiremock::Respond for Rotating {
        fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(200))
                .set_body_json(json!({
                    "access_token": format!("access-{n}"),
                    "refresh_token": format!("refresh-{n}"),
                    "expires_in": 1800,
                }))
        }
    }
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(Rotating(std::sync::atomic::AtomicUsize::new(0)))
        .mount(&env.vendor)
        .await;
}

async fn token_of(pandora: &Pandora, ws: uuid::Uuid) -> pandora_core::Result<String> {
    let source = pandora
        .token_source(ws, "crmone")
        .await?
        .expect("an OAuth connection has a token source");
    source.access_token().await.map(|t| t.expose().to_string())
}

#[tokio::test]
async fn thirty_concurrent_token_requests_refresh_once_and_rotation_is_persisted() {
    let env = env().await;
    let ws = expired_connection(&env).await;
    answer_refreshes(&env).await;
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let pandora = env.pandora.clone();
            tokio::spawn(async move { token_of(&pandora, ws).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "access-1");
    }
    let requests = env.token_requests().await;
    assert_eq!(
        requests.len(),
        1,
        "exactly one token request for 30 callers"
    );
    let form = &requests[0];
    assert_eq!(param(form, "grant_type"), Some("refresh_token"));
    assert_eq!(param(form, "refresh_token"), Some("refresh-0"));
    assert_eq!(param(form, "client_id"), Some(CLIENT_ID));
    assert_eq!(param(form, "client_secret"), Some(CLIENT_SECRET));
    let stored = env.stored_tokens(ws, "crmone").await;
    assert_eq!(stored.access_token, "access-1");
    assert_eq!(stored.refresh_token.as_deref(), Some("refresh-1"));
    assert_eq!(stored.scopes, ["crm.objects.deals.read"], "kept");

    // The vendor says the session expired: the next refresh sends the
    // rotated refresh token.
    let source = env
        .pandora
        .token_source(ws, "crmone")
        .await
        .unwrap()
        .unwrap();
    let fresh = source
        .refresh(&SecretToken::from_string("access-1".into()))
        .await
        .unwrap();
    assert_eq!(fresh.expose(), "access-2");
    let requests = env.token_requests().await;
    assert_eq!(requests.len(), 2);
    assert_eq!(param(&requests[1], "refresh_token"), Some("refresh-1"));
    assert_eq!(
        env.stored_tokens(ws, "crmone")
            .await
            .refresh_token
            .as_deref(),
        Some("refresh-2")
    );
    env.assert_never_shown(&[
        "refresh-0",
        "refresh-1",
        "refresh-2",
        "access-1",
        "access-2",
    ]);
}

#[tokio::test]
async fn two_deployments_over_one_database_refresh_once() {
    let env = env().await;
    let ws = expired_connection(&env).await;
    answer_refreshes(&env).await;
    // A second deployment: its own store handle (own pool) on the same file.
    let other_store = SqliteStore::open(env.dir.path().join("pandora.db"))
        .await
        .unwrap();
    let other = facade(
        Arc::new(other_store),
        &env.vendor,
        &SecretToken::generate(ADMIN_TOKEN_PREFIX),
        &Options::default(),
    );
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let pandora = if i % 2 == 0 {
                env.pandora.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move { token_of(&pandora, ws).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "access-1");
    }
    assert_eq!(env.token_requests().await.len(), 1);
}

#[tokio::test]
async fn invalid_grant_marks_needs_reauth_shows_in_health_and_never_loops() {
    let env = env().await;
    let ws = expired_connection(&env).await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "expired access/refresh token"
        })))
        .mount(&env.vendor)
        .await;
    let e = token_of(&env.pandora, ws).await.unwrap_err();
    assert!(e.to_string().contains("authorized again"), "{e}");
    assert_eq!(env.token_requests().await.len(), 1);
    let c = env.pandora.connection(ws, "crmone").await.unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);

    let key = env
        .pandora
        .create_api_key(ws, Default::default())
        .await
        .unwrap();
    let key = key.api_key.expose().to_string();
    let res = env
        .call(
            &format!("/api/workspaces/{ws}/connectors/crmone/health"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["status"], "needs_reauth");
    assert!(res.body["last_error"]
        .as_str()
        .unwrap()
        .contains("expired access/refresh token"));
    assert!(res.body["check"]["error"]
        .as_str()
        .unwrap()
        .contains("authorized again"));
    let res = env
        .request(
            Method::POST,
            &format!("/api/workspaces/{ws}/connectors/crmone/sync"),
            Some(&key),
            None,
            None,
        )
        .await;
    res.problem(409);

    // Every later call fails at once, without asking the vendor again.
    assert!(token_of(&env.pandora, ws).await.is_err());
    assert!(env
        .pandora
        .sync(ws, "crmone", pandora_core::model::SyncMode::Full, &|_| {})
        .await
        .unwrap()
        .error
        .is_some());
    assert_eq!(env.token_requests().await.len(), 1, "never loops");

    // Authorizing again makes it active.
    env.answer_exchange("new-access", "new-refresh").await;
    let state = fresh_state(&env, "crmone", ws, &key).await;
    let res = env
        .call(&callback_uri("crmone", "c", &state), None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let c = env.pandora.connection(ws, "crmone").await.unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(token_of(&env.pandora, ws).await.unwrap(), "new-access");
}

#[tokio::test]
async fn token_endpoint_429_and_5xx_are_retried_and_the_connection_stays_active() {
    let env = env().await;
    let ws = expired_connection(&env).await;
    // 429, then 503, then tokens.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&env.vendor)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&env.vendor)
        .await;
    answer_refreshes(&env).await;
    assert_eq!(token_of(&env.pandora, ws).await.unwrap(), "access-1");
    assert_eq!(env.token_requests().await.len(), 3);
    let c = env.pandora.connection(ws, "crmone").await.unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);

    // A token endpoint that keeps failing: a few attempts, an error that may
    // pass, and the connection stays active with its tokens.
    let env = self::env().await;
    let ws = expired_connection(&env).await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&env.vendor)
        .await;
    let e = token_of(&env.pandora, ws).await.unwrap_err();
    assert_eq!(e.kind(), pandora_core::ErrorKind::Unavailable, "{e}");
    assert_eq!(
        env.token_requests().await.len(),
        TokenRefreshSettings::default().attempts as usize
    );
    let c = env.pandora.connection(ws, "crmone").await.unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(
        env.stored_tokens(ws, "crmone")
            .await
            .refresh_token
            .as_deref(),
        Some("refresh-0")
    );
}

#[tokio::test]
async fn connecting_with_expired_tokens_stores_the_refreshed_ones() {
    let env = env().await;
    let (ws, key) = env.workspace("A").await;
    answer_refreshes(&env).await;
    let res = env
        .request(
            Method::POST,
            &format!("/api/workspaces/{ws}/connectors/crmone/connect"),
            Some(&key),
            None,
            Some(json!({
                "access_token": "pasted-access",
                "refresh_token": "pasted-refresh",
                "expires_at": (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339(),
            })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let requests = env.token_requests().await;
    assert_eq!(requests.len(), 1);
    assert_eq!(param(&requests[0], "refresh_token"), Some("pasted-refresh"));
    let stored = env.stored_tokens(ws, "crmone").await;
    assert_eq!(stored.access_token, "access-1");
    assert_eq!(
        stored.refresh_token.as_deref(),
        Some("refresh-1"),
        "the rotated one"
    );
    env.assert_never_shown(&["pasted-access", "pasted-refresh", "access-1", "refresh-1"]);
}

// ---- HubSpot's own provider ------------------------------------------------------

/// The HubSpot connector's `OAuthProvider` (pandora-connectors) through the
/// same machinery, against a simulator standing in for both HubSpot hosts.
#[tokio::test]
async fn hubspots_provider_completes_the_flow_and_refreshes_through_pandora() {
    use pandora_connectors::hubspot::HubSpotHosts;
    use pandora_connectors::VendorHosts;

    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let hubspot = MockServer::start().await;
    let hosts = HubSpotHosts::new(Some(&hubspot.uri()), Some(&hubspot.uri()));
    let pandora = Pandora::builder()
        .store(store)
        .vault(LocalVault::new(MasterKey::from_bytes(&[6u8; 32])))
        .connectors(pandora_connectors::all_with(
            VendorHosts::default().with_hubspot(hosts),
        ))
        .oauth_client("hubspot", client("hubspot"))
        .oauth_state_secret(&SecretToken::from_string(SESSION_SECRET.into()))
        .token_refresh(settings())
        .build()
        .unwrap();
    let ws = pandora
        .create_workspace(NewWorkspace {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .workspace
        .id;

    let start = pandora.oauth_authorize(ws, "hubspot").await.unwrap();
    let url = Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth/authorize");
    let q: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(
        param(&q, "redirect_uri"),
        Some("http://localhost:3000/api/auth/hubspot/callback")
    );
    assert!(param(&q, "scope")
        .unwrap()
        .contains("crm.objects.deals.read"));
    let state = param(&q, "state").unwrap().to_string();

    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer",
            "access_token": "hs-access-1",
            "refresh_token": "hs-refresh-1",
            "expires_in": 1800
        })))
        .mount(&hubspot)
        .await;
    let connection = pandora
        .oauth_callback("hubspot", "hs-code", &state)
        .await
        .unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active);

    // HubSpot tokens expire after 30 minutes: one whose expiry is near is
    // refreshed before use, once for many callers.
    let near = json!({
        "access_token": "hs-access-1",
        "refresh_token": "hs-refresh-1",
        "expires_at": (Utc::now() + chrono::Duration::minutes(2)).to_rfc3339(),
    });
    pandora
        .connect(ws, "hubspot", Credentials::from_json(&near), json!({}))
        .await
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(150))
                .set_body_json(json!({
                    "token_type": "bearer",
                    "access_token": "hs-access-2",
                    "refresh_token": "hs-refresh-2",
                    "expires_in": 1800
                })),
        )
        .mount(&hubspot)
        .await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pandora = pandora.clone();
            tokio::spawn(async move {
                let source = pandora.token_source(ws, "hubspot").await.unwrap().unwrap();
                source.access_token().await.unwrap().expose().to_string()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "hs-access-2");
    }
    let refreshes: Vec<String> = hubspot
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter(|b| b.contains("grant_type=refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert!(refreshes[0].contains("refresh_token=hs-refresh-1"));
    assert!(refreshes[0].contains(&format!("client_secret={CLIENT_SECRET}")));
    let c = pandora.connection(ws, "hubspot").await.unwrap();
    let stored: StoredTokens = pandora
        .open_credentials(&c)
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(stored.refresh_token.as_deref(), Some("hs-refresh-2"));
}
