//! OAuth: pending authorizations (single use, expiry, tenancy), the
//! token-refresh lease, `needs_reauth`, and the facade's token sources over a
//! real store (one refresh for many callers and for two facades).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::fixtures::{new_workspace, StoreRef};
use crate::auth::SecretToken;
use crate::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, ConnectorRegistry, RecordSink,
    SyncContext, TokenSource,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{self, ConnectionStatus, NewConnection, StoredCredentials, SyncMode};
use crate::oauth::{
    OAuthClient, OAuthProvider, RefreshError, StoredTokens, TokenRefreshSettings, TokenSet,
};
use crate::store::PendingAuthorization;
use crate::vault::{Credentials, LocalVault, MasterKey};
use crate::Pandora;

fn pending(
    workspace: Uuid,
    connector: &str,
    expires_at: DateTime<Utc>,
    verifier: Option<&str>,
) -> PendingAuthorization {
    PendingAuthorization {
        workspace_id: workspace,
        nonce: Uuid::new_v4(),
        connector: connector.to_string(),
        code_verifier: verifier.map(|v| SecretToken::from_string(v.to_string())),
        created_at: model::now(),
        expires_at,
    }
}

fn in_secs(secs: i64) -> DateTime<Utc> {
    // Whole microseconds, as stores keep them.
    let t = model::now() + chrono::Duration::seconds(secs);
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("in range")
}

async fn connection(store: &StoreRef, ws: Uuid, connector: &str, credentials: &str) -> Uuid {
    store
        .upsert_connection(
            ws,
            &NewConnection {
                connector: connector.into(),
                status: ConnectionStatus::Active,
                credentials: Some(StoredCredentials(credentials.into())),
                config: serde_json::json!({}),
            },
        )
        .await
        .expect("connection")
        .id
}

/// Of many concurrent consumers of one pending authorization exactly one
/// gets it (with its PKCE verifier); it is gone afterwards.
pub async fn oauth_authorization_is_consumed_once_under_concurrency(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let p = pending(ws, "hubspot", in_secs(600), Some("verifier-123"));
    store.create_authorization(&p).await.expect("create");
    let now = model::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let nonce = p.nonce;
            tokio::spawn(
                async move { store.consume_authorization(ws, "hubspot", nonce, now).await },
            )
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        if let Some(got) = t.await.expect("task").expect("consume") {
            won.push(got);
        }
    }
    assert_eq!(won.len(), 1, "exactly one consumer wins");
    let got = &won[0];
    assert_eq!(got.workspace_id, ws);
    assert_eq!(got.nonce, p.nonce);
    assert_eq!(got.connector, "hubspot");
    assert_eq!(
        got.code_verifier.as_ref().map(SecretToken::expose),
        Some("verifier-123")
    );
    assert_eq!(got.expires_at, p.expires_at);
    assert!(store
        .consume_authorization(ws, "hubspot", p.nonce, now)
        .await
        .expect("replay")
        .is_none());
    // Without PKCE, the verifier is absent.
    let plain = pending(ws, "hubspot", in_secs(600), None);
    store.create_authorization(&plain).await.expect("create");
    let got = store
        .consume_authorization(ws, "hubspot", plain.nonce, now)
        .await
        .expect("consume")
        .expect("present");
    assert!(got.code_verifier.is_none());
}

/// An authorization is refused from its expiry on (and left for the purge);
/// the purge removes only what expired before the given time.
pub async fn expired_oauth_authorization_is_refused_and_purged(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let expires = in_secs(60);
    let p = pending(ws, "salesforce", expires, Some("v"));
    store.create_authorization(&p).await.expect("create");
    for now in [expires, expires + chrono::Duration::seconds(1)] {
        assert!(store
            .consume_authorization(ws, "salesforce", p.nonce, now)
            .await
            .expect("consume")
            .is_none());
    }
    let fresh = pending(ws, "salesforce", in_secs(3600), None);
    store.create_authorization(&fresh).await.expect("create");
    // Nothing expired before `expires`: nothing purged.
    assert_eq!(store.purge_authorizations(expires).await.expect("purge"), 0);
    assert_eq!(
        store
            .purge_authorizations(expires + chrono::Duration::microseconds(1))
            .await
            .expect("purge"),
        1
    );
    // The live one is still there, one microsecond before its expiry too.
    let just_before = fresh.expires_at - chrono::Duration::microseconds(1);
    assert!(store
        .consume_authorization(ws, "salesforce", fresh.nonce, just_before)
        .await
        .expect("consume")
        .is_some());
}

/// An authorization is consumed only through its workspace and connector;
/// a wrong one changes nothing. Unknown workspaces and taken nonces are
/// refused; deleting the workspace removes its authorizations.
pub async fn oauth_authorizations_are_bound_to_workspace_and_connector(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let now = model::now();
    let p = pending(a, "hubspot", in_secs(600), None);
    store.create_authorization(&p).await.expect("create");
    for (ws, connector) in [(b, "hubspot"), (a, "salesforce"), (b, "salesforce")] {
        assert!(
            store
                .consume_authorization(ws, connector, p.nonce, now)
                .await
                .expect("consume")
                .is_none(),
            "{connector} via another workspace or connector"
        );
    }
    assert!(store
        .consume_authorization(a, "hubspot", p.nonce, now)
        .await
        .expect("consume")
        .is_some());

    let missing = pending(Uuid::now_v7(), "hubspot", in_secs(600), None);
    let e = store.create_authorization(&missing).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let twice = pending(a, "hubspot", in_secs(600), None);
    store.create_authorization(&twice).await.expect("create");
    let e = store.create_authorization(&twice).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");

    store.delete_workspace(a).await.expect("delete");
    assert_eq!(
        store
            .purge_authorizations(in_secs(100_000))
            .await
            .expect("purge"),
        0,
        "deleting the workspace removed its authorizations"
    );
}

/// Of many concurrent takers of a connection's refresh lease exactly one
/// gets it; it is free again once released by its holder or run out.
pub async fn refresh_lease_is_taken_once_under_concurrency_and_expires(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "hubspot", "sealed").await;
    let now = in_secs(0);
    let until = now + chrono::Duration::seconds(60);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let holder = format!("holder-{i}");
                let got = store
                    .take_refresh_lease(ws, conn, &holder, now, until)
                    .await;
                (holder, got)
            })
        })
        .collect();
    let mut holders = Vec::new();
    for t in tasks {
        let (holder, got) = t.await.expect("task");
        if got.expect("take") {
            holders.push(holder);
        }
    }
    assert_eq!(holders.len(), 1, "exactly one taker wins: {holders:?}");
    let holder = holders.remove(0);
    let later = now + chrono::Duration::seconds(30);
    assert!(!store
        .take_refresh_lease(
            ws,
            conn,
            "late",
            later,
            later + chrono::Duration::seconds(60)
        )
        .await
        .expect("take"));
    // Only the holder releases it.
    assert!(!store
        .release_refresh_lease(ws, conn, "late")
        .await
        .expect("release"));
    assert!(store
        .release_refresh_lease(ws, conn, &holder)
        .await
        .expect("release"));
    assert!(store
        .take_refresh_lease(
            ws,
            conn,
            "second",
            later,
            later + chrono::Duration::seconds(60)
        )
        .await
        .expect("take after release"));
    // A holder that never releases: free from its lease_until on.
    let end = later + chrono::Duration::seconds(60);
    assert!(!store
        .take_refresh_lease(
            ws,
            conn,
            "third",
            end - chrono::Duration::microseconds(1),
            end
        )
        .await
        .expect("take"));
    assert!(store
        .take_refresh_lease(ws, conn, "third", end, end + chrono::Duration::seconds(60))
        .await
        .expect("take after expiry"));
    assert!(!store
        .release_refresh_lease(ws, conn, "second")
        .await
        .expect("stale holder"));
}

/// Leases are per connection and scoped by workspace: another workspace's
/// connection is not found, and deleting a connection frees its lease.
pub async fn refresh_leases_are_tenant_isolated(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let conn_a = connection(&store, a, "hubspot", "sealed-a").await;
    let conn_b = connection(&store, b, "hubspot", "sealed-b").await;
    let now = model::now();
    let until = now + chrono::Duration::seconds(60);
    for (ws, conn) in [(b, conn_a), (a, Uuid::now_v7())] {
        let e = store
            .take_refresh_lease(ws, conn, "x", now, until)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
    assert!(store
        .take_refresh_lease(a, conn_a, "x", now, until)
        .await
        .expect("a"));
    assert!(store
        .take_refresh_lease(b, conn_b, "y", now, until)
        .await
        .expect("b: another connection's lease is independent"));
    assert!(!store
        .release_refresh_lease(b, conn_a, "x")
        .await
        .expect("release via B"));
    store.delete_connection(a, conn_a).await.expect("delete");
    let again = connection(&store, a, "hubspot", "sealed-a").await;
    assert!(store
        .take_refresh_lease(a, again, "z", now, until)
        .await
        .expect("a fresh connection has a free lease"));
}

/// `mark_needs_reauth` is a compare-and-swap on the credentials, scoped by
/// workspace, and leaves disconnected connections alone.
pub async fn mark_needs_reauth_is_compare_and_swap(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let conn = connection(&store, a, "hubspot", "sealed-1").await;
    let now = model::now();
    let old = StoredCredentials("sealed-0".into());
    let current = StoredCredentials("sealed-1".into());
    assert!(!store
        .mark_needs_reauth(a, conn, &old, "refused", now)
        .await
        .expect("mark"));
    assert!(!store
        .mark_needs_reauth(b, conn, &current, "refused", now)
        .await
        .expect("mark via B"));
    let c = store.get_connection(a, "hubspot").await.expect("get");
    assert_eq!(c.status, ConnectionStatus::Active);
    assert!(store
        .mark_needs_reauth(
            a,
            conn,
            &current,
            "the vendor refused the refresh token",
            now
        )
        .await
        .expect("mark"));
    let c = store.get_connection(a, "hubspot").await.expect("get");
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert_eq!(
        c.last_error.as_deref(),
        Some("the vendor refused the refresh token")
    );
    assert_eq!(c.credentials, Some(current.clone()), "credentials kept");
    assert!(c.updated_at >= now - chrono::Duration::seconds(1));
    // Not schedulable any more.
    let scan = store
        .scan_schedulable_connections(None, 100)
        .await
        .expect("scan");
    assert!(scan.iter().all(|s| s.id != conn));
    // A disconnected connection stays disconnected.
    store
        .upsert_connection(
            a,
            &NewConnection {
                connector: "gong".into(),
                status: ConnectionStatus::Disconnected,
                credentials: Some(StoredCredentials("sealed-g".into())),
                config: serde_json::json!({}),
            },
        )
        .await
        .expect("gong");
    let gong = store.get_connection(a, "gong").await.expect("gong");
    assert!(!store
        .mark_needs_reauth(a, gong.id, &StoredCredentials("sealed-g".into()), "x", now)
        .await
        .expect("mark"));
}

// ---- token sources over a real store ---------------------------------------

/// How the test provider's token endpoint answers a refresh.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// New access and refresh tokens (`access-N`, `refresh-N`).
    Rotate,
    /// `invalid_grant`.
    InvalidGrant,
    /// A 503.
    Unavailable,
}

/// A token endpoint in memory that counts its calls.
struct CountingProvider {
    calls: AtomicUsize,
    refresh_tokens_seen: Mutex<Vec<String>>,
    answer: Answer,
}

impl CountingProvider {
    fn new(answer: Answer) -> Arc<Self> {
        Arc::new(CountingProvider {
            calls: AtomicUsize::new(0),
            refresh_tokens_seen: Mutex::new(Vec::new()),
            answer,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl OAuthProvider for CountingProvider {
    fn uses_pkce(&self) -> bool {
        false
    }

    fn authorize_url(
        &self,
        _client: &OAuthClient,
        state: &str,
        _challenge: Option<&str>,
    ) -> Result<String> {
        Ok(format!("https://vendor.invalid/authorize?state={state}"))
    }

    async fn exchange_code(
        &self,
        _client: &OAuthClient,
        _code: &str,
        _verifier: Option<&str>,
    ) -> Result<TokenSet> {
        Err(Error::internal("not used"))
    }

    async fn refresh(
        &self,
        client: &OAuthClient,
        refresh_token: &SecretToken,
    ) -> std::result::Result<TokenSet, RefreshError> {
        assert_eq!(client.client_secret.expose(), "client-secret");
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.refresh_tokens_seen
            .lock()
            .expect("lock")
            .push(refresh_token.expose().to_string());
        // Long enough for every other caller to pile up behind this refresh.
        tokio::time::sleep(Duration::from_millis(150)).await;
        match self.answer {
            Answer::Rotate => Ok(TokenSet {
                access_token: SecretToken::from_string(format!("access-{}", n + 1)),
                refresh_token: Some(SecretToken::from_string(format!("refresh-{}", n + 1))),
                expires_at: Some(model::now() + chrono::Duration::minutes(30)),
                instance_url: None,
                scopes: vec![],
            }),
            Answer::InvalidGrant => Err(RefreshError::InvalidGrant(
                "invalid_grant: refresh token revoked".into(),
            )),
            Answer::Unavailable => Err(RefreshError::Other(Error::unavailable(
                "token endpoint answered 503",
            ))),
        }
    }
}

/// An OAuth connector whose sync asks its token source for a token.
struct OAuthTest {
    provider: Arc<CountingProvider>,
    tokens_seen: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Connector for OAuthTest {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: "oauth-test",
            display_name: "OAuth test source",
            auth: AuthKind::OAuth2,
            streams: vec![],
        }
    }

    async fn check(&self, ctx: &CheckContext) -> Result<CheckOutcome> {
        let tokens = ctx
            .tokens
            .as_ref()
            .ok_or_else(|| Error::internal("no token source"))?;
        tokens.access_token().await?;
        Ok(CheckOutcome {
            ok: true,
            detail: None,
        })
    }

    async fn sync(&self, ctx: &SyncContext, _sink: &mut dyn RecordSink) -> Result<()> {
        let tokens = ctx
            .check
            .tokens
            .as_ref()
            .ok_or_else(|| Error::internal("an OAuth connection's sync gets a token source"))?;
        let token = tokens.access_token().await?;
        self.tokens_seen
            .lock()
            .expect("lock")
            .push(token.expose().to_string());
        Ok(())
    }

    fn oauth(&self) -> Option<Arc<dyn OAuthProvider>> {
        Some(self.provider.clone())
    }
}

struct Setup {
    facades: Vec<Pandora>,
    provider: Arc<CountingProvider>,
    tokens_seen: Arc<Mutex<Vec<String>>>,
    workspace: Uuid,
}

/// Two facades over `store`, an `oauth-test` connection whose access token
/// expired (`access-1`, refresh token `refresh-1`).
async fn setup(store: &StoreRef, answer: Answer) -> Setup {
    let provider = CountingProvider::new(answer);
    let tokens_seen = Arc::new(Mutex::new(Vec::new()));
    let facades: Vec<Pandora> = (0..2)
        .map(|_| {
            Pandora::builder()
                .shared_store(store.clone())
                .vault(LocalVault::new(MasterKey::from_bytes(&[9u8; 32])))
                .connectors(ConnectorRegistry::new().with(OAuthTest {
                    provider: provider.clone(),
                    tokens_seen: tokens_seen.clone(),
                }))
                .oauth_client(
                    "oauth-test",
                    OAuthClient {
                        client_id: "client-id".into(),
                        client_secret: SecretToken::from_string("client-secret".into()),
                        redirect_uri: "https://pandora.invalid/api/auth/oauth-test/callback".into(),
                    },
                )
                .oauth_state_secret(&SecretToken::from_string("s".repeat(32)))
                .token_refresh(TokenRefreshSettings {
                    backoff: Duration::from_millis(10),
                    poll: Duration::from_millis(20),
                    ..TokenRefreshSettings::default()
                })
                .build()
                .expect("build")
        })
        .collect();
    let workspace = new_workspace(store, "A").await;
    let expired = StoredTokens {
        access_token: "access-1".into(),
        refresh_token: Some("refresh-1".into()),
        expires_at: Some(model::now() - chrono::Duration::minutes(1)),
        instance_url: None,
        scopes: vec!["crm".into()],
    };
    facades[0]
        .connect(
            workspace,
            "oauth-test",
            Credentials::from_json(&serde_json::to_value(&expired).expect("json")),
            serde_json::json!({}),
        )
        .await
        .expect("connect");
    Setup {
        facades,
        provider,
        tokens_seen,
        workspace,
    }
}

async fn stored_tokens(pandora: &Pandora, ws: Uuid) -> StoredTokens {
    let c = pandora.connection(ws, "oauth-test").await.expect("get");
    pandora
        .open_credentials(&c)
        .await
        .expect("open")
        .expect("credentials")
        .parse()
        .expect("tokens")
}

/// Many concurrent token requests of one connection needing a refresh, from
/// two facades over one store, cause one call to the token endpoint; the
/// rotated refresh token is stored and sent by the next refresh; a sync of
/// the connection receives the token source.
pub async fn two_facades_refresh_a_connection_once(store: StoreRef) {
    let s = setup(&store, Answer::Rotate).await;
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let pandora = s.facades[i % 2].clone();
            let ws = s.workspace;
            tokio::spawn(async move {
                let source = pandora
                    .token_source(ws, "oauth-test")
                    .await
                    .expect("source")
                    .expect("an OAuth connector has a token source");
                source.access_token().await.map(|t| t.expose().to_string())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("token"), "access-2");
    }
    assert_eq!(s.provider.calls(), 1, "one refresh for 30 callers");
    let stored = stored_tokens(&s.facades[1], s.workspace).await;
    assert_eq!(stored.access_token, "access-2");
    assert_eq!(stored.refresh_token.as_deref(), Some("refresh-2"));
    assert_eq!(stored.scopes, vec!["crm".to_string()], "kept");
    assert!(stored.expires_at.expect("expiry") > model::now());
    let conn = s.facades[0]
        .connection(s.workspace, "oauth-test")
        .await
        .expect("get");
    assert_eq!(Pandora::credential_state(&conn), "encrypted");

    // A source of the other facade, alive (so its cache holds access-2)
    // while the first facade refreshes again.
    let held = s.facades[0]
        .token_source(s.workspace, "oauth-test")
        .await
        .expect("source")
        .expect("source");
    assert_eq!(
        held.access_token().await.expect("token").expose(),
        "access-2"
    );

    // The vendor refuses access-2 (e.g. revoked session): the next refresh
    // sends the rotated refresh token.
    let source = s.facades[1]
        .token_source(s.workspace, "oauth-test")
        .await
        .expect("source")
        .expect("source");
    let fresh = TokenSource::refresh(
        source.as_ref(),
        &SecretToken::from_string("access-2".into()),
    )
    .await
    .expect("refresh");
    assert_eq!(fresh.expose(), "access-3");
    assert_eq!(
        *s.provider.refresh_tokens_seen.lock().expect("lock"),
        vec!["refresh-1".to_string(), "refresh-2".to_string()]
    );
    // A stale token refused again is answered with the current one, no call:
    // in the process that refreshed it, and in the other one (whose cache
    // still holds access-2: it finds access-3 stored once it has the lease).
    let again = TokenSource::refresh(
        source.as_ref(),
        &SecretToken::from_string("access-2".into()),
    )
    .await
    .expect("refresh");
    assert_eq!(again.expose(), "access-3");
    let elsewhere =
        TokenSource::refresh(held.as_ref(), &SecretToken::from_string("access-2".into()))
            .await
            .expect("refresh");
    assert_eq!(elsewhere.expose(), "access-3");
    assert_eq!(s.provider.calls(), 2);
    drop(held);

    // A sync receives the token source.
    s.facades[0]
        .sync_now(s.workspace, "oauth-test", SyncMode::Full, &|_| {})
        .await
        .expect("sync");
    assert_eq!(
        *s.tokens_seen.lock().expect("lock"),
        vec!["access-3".to_string()]
    );
}

/// `invalid_grant` marks the connection `needs_reauth` once: later calls
/// fail without asking the vendor, syncs are refused, health says so.
pub async fn invalid_grant_marks_the_connection_needs_reauth(store: StoreRef) {
    let s = setup(&store, Answer::InvalidGrant).await;
    let pandora = &s.facades[0];
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let pandora = s.facades[i % 2].clone();
            let ws = s.workspace;
            tokio::spawn(async move {
                let source = pandora
                    .token_source(ws, "oauth-test")
                    .await
                    .expect("source")
                    .expect("source");
                source.access_token().await
            })
        })
        .collect();
    for t in tasks {
        let e = t.await.expect("task").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
        assert!(e.to_string().contains("authorized again"), "{e}");
    }
    assert_eq!(s.provider.calls(), 1, "invalid_grant is never retried");
    let c = pandora
        .connection(s.workspace, "oauth-test")
        .await
        .expect("get");
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert!(c
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("refresh token")));
    // Again, through a new source: no call to the vendor.
    let source = pandora
        .token_source(s.workspace, "oauth-test")
        .await
        .expect("source")
        .expect("source");
    assert!(source.access_token().await.is_err());
    assert!(TokenSource::refresh(
        source.as_ref(),
        &SecretToken::from_string("access-1".into())
    )
    .await
    .is_err());
    assert_eq!(s.provider.calls(), 1);
    let e = pandora
        .enqueue_sync(s.workspace, "oauth-test", SyncMode::Incremental)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let health = pandora
        .connection_health(s.workspace, "oauth-test")
        .await
        .expect("health");
    assert_eq!(health.status, ConnectionStatus::NeedsReauth);
    assert!(!health.check.ok);
    assert!(
        health
            .check
            .error
            .as_deref()
            .is_some_and(|e| e.contains("authorized again")),
        "{health:?}"
    );
    assert_eq!(s.provider.calls(), 1);
}

/// A token endpoint that keeps failing (5xx) is retried a few times, then
/// the call fails as unavailable and the connection stays active.
pub async fn token_endpoint_failures_are_retried_and_leave_the_connection_active(store: StoreRef) {
    let s = setup(&store, Answer::Unavailable).await;
    let pandora = &s.facades[0];
    let source = pandora
        .token_source(s.workspace, "oauth-test")
        .await
        .expect("source")
        .expect("source");
    let e = source.access_token().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(
        s.provider.calls(),
        TokenRefreshSettings::default().attempts as usize
    );
    let c = pandora
        .connection(s.workspace, "oauth-test")
        .await
        .expect("get");
    assert_eq!(c.status, ConnectionStatus::Active);
    // The stored tokens are untouched, and the lease was released: the next
    // call tries again at once.
    assert_eq!(
        stored_tokens(pandora, s.workspace)
            .await
            .refresh_token
            .as_deref(),
        Some("refresh-1")
    );
    assert!(source.access_token().await.is_err());
    assert_eq!(
        s.provider.calls(),
        2 * TokenRefreshSettings::default().attempts as usize
    );
}
