//! Token sources for OAuth connections: access tokens handed to connectors,
//! refreshed once per connection across the whole deployment.
//!
//! A refresh is single-flight at two levels:
//!
//! * **in the process**: every [`ManagedTokenSource`] of a connection made by
//!   one [`Pandora`](crate::Pandora) shares one async mutex and one cached
//!   copy of the tokens, so concurrent syncs, checks and workers of that
//!   process wait for the refresh in flight and take its result;
//! * **across processes**: the refresher first takes the connection's lease
//!   row ([`OAuthStore::take_refresh_lease`]) — a row with an expiry, not a
//!   database lock, so nothing is held across the vendor's HTTP call — then
//!   re-reads the stored credentials: when their access token is no longer
//!   the stale one, another process refreshed already and that token is used
//!   as is. A process that finds the lease taken polls the stored
//!   credentials until they change (or the lease runs out and it may take
//!   it).
//!
//! The new tokens are sealed and written with the compare-and-swap
//! [`CredentialStore::swap_credentials`](crate::store::CredentialStore::swap_credentials);
//! a new refresh token or instance URL from the vendor always replaces the
//! old one ([`StoredTokens::updated_by`]). `invalid_grant` marks the
//! connection `needs_reauth` ([`OAuthStore::mark_needs_reauth`]) and every
//! later call fails at once, without asking the vendor again; 429, 5xx and
//! network errors are retried with backoff and leave the connection active.
//!
//! [`OAuthStore::take_refresh_lease`]: crate::store::OAuthStore::take_refresh_lease
//! [`OAuthStore::mark_needs_reauth`]: crate::store::OAuthStore::mark_needs_reauth

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use uuid::Uuid;

use super::{
    client_not_configured, OAuthClient, OAuthProvider, RefreshError, StoredTokens, TokenSet,
};
use crate::auth::SecretToken;
use crate::connector::TokenSource;
use crate::error::{Error, Result};
use crate::model::{self, ConnectionStatus, StoredCredentials, WorkspaceId};
use crate::store::Store;
use crate::vault::{Binding, CredentialVault, Credentials};

/// How access tokens are refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRefreshSettings {
    /// Refresh a token the vendor said expires when less than this remains
    /// (default 5 minutes).
    pub margin: Duration,
    /// How long a process holds a connection's refresh lease at most
    /// (default 60 s); the refresh, retries included, is cut off before it
    /// ends. A process that died holding it delays the others this long.
    pub lease: Duration,
    /// Calls to the token endpoint per refresh when it answers 429, 5xx or
    /// not at all (default 3).
    pub attempts: u32,
    /// Backoff before the second call, doubled for each later one, with
    /// equal jitter (default 500 ms).
    pub backoff: Duration,
    /// How often a process waiting for another's refresh re-reads the
    /// credentials (default 100 ms).
    pub poll: Duration,
}

impl Default for TokenRefreshSettings {
    fn default() -> Self {
        TokenRefreshSettings {
            margin: Duration::from_secs(300),
            lease: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_millis(500),
            poll: Duration::from_millis(100),
        }
    }
}

impl TokenRefreshSettings {
    /// Whether `tokens` should be refreshed before use.
    fn expiring(&self, tokens: &StoredTokens) -> bool {
        let margin = chrono::Duration::from_std(self.margin).unwrap_or(chrono::Duration::MAX);
        tokens
            .expires_at
            .is_some_and(|at| at.signed_duration_since(model::now()) <= margin)
    }

    /// The wait before attempt `attempt` (2, 3, …): equal jitter over
    /// `backoff × 2^(attempt − 2)`.
    fn delay(&self, attempt: u32) -> Duration {
        let full = self
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(2)));
        let half = full / 2;
        let jitter =
            rand::thread_rng().gen_range(0..=half.as_micros().min(u128::from(u64::MAX))) as u64;
        half + Duration::from_micros(jitter)
    }
}

/// Calls the vendor's token endpoint with `refresh_token`, retrying what may
/// pass ([`RefreshError::Other`]: 429, 5xx, network) with backoff;
/// [`RefreshError::InvalidGrant`] is returned at once.
pub(crate) async fn refresh_with_retries(
    provider: &dyn OAuthProvider,
    client: &OAuthClient,
    refresh_token: &SecretToken,
    settings: &TokenRefreshSettings,
    connector: &str,
) -> std::result::Result<TokenSet, RefreshError> {
    let attempts = settings.attempts.max(1);
    let mut attempt = 1;
    loop {
        match provider.refresh(client, refresh_token).await {
            Ok(set) => return Ok(set),
            Err(RefreshError::InvalidGrant(reason)) => {
                return Err(RefreshError::InvalidGrant(reason))
            }
            Err(RefreshError::Other(e)) if attempt < attempts => {
                attempt += 1;
                let delay = settings.delay(attempt);
                tracing::warn!(
                    connector,
                    attempt,
                    attempts,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %e,
                    "token refresh failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
            Err(RefreshError::Other(e)) => return Err(RefreshError::Other(e)),
        }
    }
}

/// The error of a connection that must be authorized again.
pub(crate) fn needs_reauth_error(connector: &str, reason: Option<&str>) -> Error {
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Error::rejected(format!(
        "the {connector} connection needs to be authorized again{reason}"
    ))
}

/// The tokens of a connection as stored, and their sealed form (the value a
/// compare-and-swap expects).
#[derive(Clone)]
struct Current {
    sealed: StoredCredentials,
    tokens: StoredTokens,
}

/// One connection's shared state in a process: the refresh in flight (the
/// mutex) and the tokens last seen.
#[derive(Default)]
pub(crate) struct Flight {
    cached: tokio::sync::Mutex<Option<Current>>,
}

/// The in-process flights of a [`Pandora`](crate::Pandora), by connection.
#[derive(Default)]
pub(crate) struct Flights {
    map: std::sync::Mutex<HashMap<(WorkspaceId, Uuid), Weak<Flight>>>,
}

impl Flights {
    /// The flight of a connection (shared while any source of it lives).
    pub(crate) fn of(&self, workspace: WorkspaceId, connection: Uuid) -> Arc<Flight> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = map.get(&(workspace, connection)).and_then(Weak::upgrade) {
            return flight;
        }
        map.retain(|_, f| f.strong_count() > 0);
        let flight = Arc::new(Flight::default());
        map.insert((workspace, connection), Arc::downgrade(&flight));
        flight
    }

    /// Drops what this process cached of a connection's tokens (after it was
    /// authorized again).
    pub(crate) async fn forget(&self, workspace: WorkspaceId, connection: Uuid) {
        let flight = {
            let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&(workspace, connection)).and_then(Weak::upgrade)
        };
        if let Some(flight) = flight {
            *flight.cached.lock().await = None;
        }
    }
}

/// The [`TokenSource`] of one stored OAuth connection (see the module
/// documentation): hands out its access token, refreshed before the expiry
/// the vendor gave and when the vendor refuses it, once per connection
/// across every process sharing the store. Made by the facade for every
/// sync and check of an OAuth connection (see
/// [`Pandora::token_source`](crate::Pandora::token_source)).
pub struct ManagedTokenSource {
    store: Arc<dyn Store>,
    vault: Arc<dyn CredentialVault>,
    provider: Arc<dyn OAuthProvider>,
    client: Option<OAuthClient>,
    connector: String,
    workspace_id: WorkspaceId,
    connection_id: Uuid,
    settings: TokenRefreshSettings,
    flight: Arc<Flight>,
}

impl std::fmt::Debug for ManagedTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedTokenSource")
            .field("connector", &self.connector)
            .field("workspace_id", &self.workspace_id)
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// What a source needs besides its connection.
pub(crate) struct SourceParts {
    pub store: Arc<dyn Store>,
    pub vault: Arc<dyn CredentialVault>,
    pub provider: Arc<dyn OAuthProvider>,
    pub client: Option<OAuthClient>,
    pub settings: TokenRefreshSettings,
    pub flight: Arc<Flight>,
}

impl ManagedTokenSource {
    /// The source of the workspace's connection `connection_id` to `connector`.
    pub(crate) fn new(
        parts: SourceParts,
        workspace_id: WorkspaceId,
        connector: &str,
        connection_id: Uuid,
    ) -> Self {
        ManagedTokenSource {
            store: parts.store,
            vault: parts.vault,
            provider: parts.provider,
            client: parts.client,
            connector: connector.to_string(),
            workspace_id,
            connection_id,
            settings: parts.settings,
            flight: parts.flight,
        }
    }

    /// The connection this source serves.
    pub fn connection_id(&self) -> Uuid {
        self.connection_id
    }

    fn binding(&self) -> Binding {
        Binding {
            workspace_id: self.workspace_id,
            connection_id: self.connection_id,
        }
    }

    /// The stored tokens, read now. Fails without asking the vendor when the
    /// connection needs re-authorization, was disconnected or replaced.
    async fn load(&self) -> Result<Current> {
        let connection = self
            .store
            .get_connection(self.workspace_id, &self.connector)
            .await?;
        if connection.id != self.connection_id {
            return Err(Error::conflict(format!(
                "the {} connection was replaced while in use",
                self.connector
            )));
        }
        match connection.status {
            ConnectionStatus::NeedsReauth => {
                return Err(needs_reauth_error(
                    &self.connector,
                    connection.last_error.as_deref(),
                ))
            }
            ConnectionStatus::Disconnected => {
                return Err(Error::conflict(format!(
                    "the {} connection is disconnected",
                    self.connector
                )))
            }
            ConnectionStatus::Active | ConnectionStatus::Error => {}
        }
        let sealed = connection
            .credentials
            .ok_or_else(|| needs_reauth_error(&self.connector, Some("it holds no credentials")))?;
        let tokens: StoredTokens = self.vault.open(self.binding(), &sealed).await?.parse()?;
        Ok(Current { sealed, tokens })
    }

    /// The cached tokens, loaded first when there are none.
    async fn cached(&self, cached: &mut Option<Current>) -> Result<Current> {
        if let Some(current) = cached.as_ref() {
            return Ok(current.clone());
        }
        let current = self.load().await?;
        *cached = Some(current.clone());
        Ok(current)
    }

    /// Refreshes `stale` under the in-process flight (held by the caller):
    /// takes the store lease, or waits for whoever holds it.
    async fn refresh_in_flight(
        &self,
        cached: &mut Option<Current>,
        stale: &str,
    ) -> Result<SecretToken> {
        // Waiting longer than a lease means its holder died and the lease
        // ran out more than once: give up (the caller may retry later).
        let give_up = Instant::now() + self.settings.lease.saturating_mul(2);
        loop {
            let holder = Uuid::new_v4().to_string();
            let now = model::now();
            let until = now
                + chrono::Duration::from_std(self.settings.lease)
                    .unwrap_or(chrono::Duration::seconds(60));
            let taken = self
                .store
                .take_refresh_lease(self.workspace_id, self.connection_id, &holder, now, until)
                .await?;
            if taken {
                let outcome = self.refresh_under_lease(stale).await;
                if let Err(e) = self
                    .store
                    .release_refresh_lease(self.workspace_id, self.connection_id, &holder)
                    .await
                {
                    tracing::warn!(connection_id = %self.connection_id, error = %e, "releasing the token-refresh lease failed; it expires by itself");
                }
                return match outcome {
                    Ok((current, keep)) => {
                        let token = SecretToken::from_string(current.tokens.access_token.clone());
                        *cached = keep.then_some(current);
                        Ok(token)
                    }
                    Err(e) => {
                        *cached = None;
                        Err(e)
                    }
                };
            }
            // Another process is refreshing: wait for its result.
            tokio::time::sleep(self.settings.poll).await;
            let current = match self.load().await {
                Ok(c) => c,
                Err(e) => {
                    *cached = None;
                    return Err(e);
                }
            };
            if current.tokens.access_token != stale && !self.settings.expiring(&current.tokens) {
                tracing::debug!(connection_id = %self.connection_id, "token refreshed by another process");
                let token = SecretToken::from_string(current.tokens.access_token.clone());
                *cached = Some(current);
                return Ok(token);
            }
            if Instant::now() > give_up {
                return Err(Error::unavailable(format!(
                    "timed out waiting for another process to refresh the {} token",
                    self.connector
                )));
            }
        }
    }

    /// With the lease held: re-reads the stored tokens (another process may
    /// have refreshed them already), else refreshes and stores the result.
    /// Returns the tokens to use and whether they are what the store holds.
    async fn refresh_under_lease(&self, stale: &str) -> Result<(Current, bool)> {
        let current = self.load().await?;
        if current.tokens.access_token != stale && !self.settings.expiring(&current.tokens) {
            tracing::debug!(connection_id = %self.connection_id, "token already refreshed");
            return Ok((current, true));
        }
        let Some(refresh_token) = current.tokens.refresh_token.clone() else {
            let reason = "the vendor refused its access token and it holds no refresh token";
            self.mark_needs_reauth(&current.sealed, reason).await?;
            return Err(needs_reauth_error(&self.connector, Some(reason)));
        };
        let Some(client) = &self.client else {
            return Err(client_not_configured(&self.connector));
        };
        let refresh_token = SecretToken::from_string(refresh_token);
        // The whole refresh ends well before the lease does, so that no other
        // process takes the lease while this one may still write.
        let budget = self.settings.lease.mul_f64(0.75);
        let answer = tokio::time::timeout(
            budget,
            refresh_with_retries(
                self.provider.as_ref(),
                client,
                &refresh_token,
                &self.settings,
                &self.connector,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(RefreshError::Other(Error::unavailable(format!(
                "the {} token endpoint did not answer within {} s",
                self.connector,
                budget.as_secs()
            ))))
        });
        let set = match answer {
            Ok(set) => set,
            Err(RefreshError::InvalidGrant(reason)) => {
                let reason = format!("the vendor refused its refresh token: {reason}");
                self.mark_needs_reauth(&current.sealed, &reason).await?;
                return Err(needs_reauth_error(&self.connector, Some(&reason)));
            }
            Err(RefreshError::Other(e)) => {
                tracing::warn!(connection_id = %self.connection_id, connector = %self.connector, error = %e, "token refresh failed");
                return Err(e);
            }
        };
        let tokens = current.tokens.updated_by(&set);
        let credentials = Credentials::from_json(&serde_json::to_value(&tokens)?);
        let sealed = self.vault.seal(self.binding(), &credentials).await?;
        let swapped = self
            .store
            .swap_credentials(
                self.workspace_id,
                self.connection_id,
                &current.sealed,
                &sealed,
            )
            .await?;
        tracing::info!(
            workspace_id = %self.workspace_id,
            connection_id = %self.connection_id,
            connector = %self.connector,
            rotated = set.refresh_token.is_some(),
            stored = swapped,
            "access token refreshed"
        );
        // Not stored: the credentials changed meanwhile (the connection was
        // authorized again); the fresh token is still good for this call.
        Ok((Current { sealed, tokens }, swapped))
    }

    async fn mark_needs_reauth(&self, expected: &StoredCredentials, reason: &str) -> Result<()> {
        let message = needs_reauth_error(&self.connector, Some(reason)).to_string();
        let marked = self
            .store
            .mark_needs_reauth(
                self.workspace_id,
                self.connection_id,
                expected,
                &message,
                model::now(),
            )
            .await?;
        tracing::warn!(
            workspace_id = %self.workspace_id,
            connection_id = %self.connection_id,
            connector = %self.connector,
            marked,
            "connection needs to be authorized again"
        );
        Ok(())
    }
}

#[async_trait]
impl TokenSource for ManagedTokenSource {
    async fn access_token(&self) -> Result<SecretToken> {
        let mut cached = self.flight.cached.lock().await;
        let current = self.cached(&mut cached).await?;
        if !self.settings.expiring(&current.tokens) {
            return Ok(SecretToken::from_string(current.tokens.access_token));
        }
        self.refresh_in_flight(&mut cached, &current.tokens.access_token)
            .await
    }

    async fn refresh(&self, stale: &SecretToken) -> Result<SecretToken> {
        let mut cached = self.flight.cached.lock().await;
        let current = self.cached(&mut cached).await?;
        if current.tokens.access_token != stale.expose() && !self.settings.expiring(&current.tokens)
        {
            // Refreshed by another caller while this one waited.
            return Ok(SecretToken::from_string(current.tokens.access_token));
        }
        self.refresh_in_flight(&mut cached, stale.expose()).await
    }
}

/// The token source of a credential check before anything is stored
/// ([`Pandora::connect_checked`](crate::Pandora::connect_checked)): refreshes
/// in memory, and the caller stores the refreshed tokens (a rotated refresh
/// token must not be lost).
pub(crate) struct CheckTokenSource {
    provider: Arc<dyn OAuthProvider>,
    client: Option<OAuthClient>,
    connector: String,
    settings: TokenRefreshSettings,
    tokens: tokio::sync::Mutex<StoredTokens>,
    refreshed: AtomicBool,
}

impl CheckTokenSource {
    /// A source over `tokens`, not stored yet.
    pub(crate) fn new(
        provider: Arc<dyn OAuthProvider>,
        client: Option<OAuthClient>,
        connector: &str,
        settings: TokenRefreshSettings,
        tokens: StoredTokens,
    ) -> Self {
        CheckTokenSource {
            provider,
            client,
            connector: connector.to_string(),
            settings,
            tokens: tokio::sync::Mutex::new(tokens),
            refreshed: AtomicBool::new(false),
        }
    }

    /// The tokens after the check, when it refreshed them.
    pub(crate) async fn refreshed_tokens(&self) -> Option<StoredTokens> {
        if self.refreshed.load(Ordering::SeqCst) {
            Some(self.tokens.lock().await.clone())
        } else {
            None
        }
    }

    async fn refresh_locked(&self, tokens: &mut StoredTokens) -> Result<SecretToken> {
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Err(Error::rejected(format!(
                "{} refused the access token, and no refresh_token was given",
                self.connector
            )));
        };
        let Some(client) = &self.client else {
            return Err(client_not_configured(&self.connector));
        };
        let set = refresh_with_retries(
            self.provider.as_ref(),
            client,
            &SecretToken::from_string(refresh_token),
            &self.settings,
            &self.connector,
        )
        .await
        .map_err(|e| match e {
            RefreshError::InvalidGrant(reason) => Error::rejected(format!(
                "{} refused the refresh token: {reason}",
                self.connector
            )),
            RefreshError::Other(e) => e,
        })?;
        *tokens = tokens.updated_by(&set);
        self.refreshed.store(true, Ordering::SeqCst);
        Ok(SecretToken::from_string(tokens.access_token.clone()))
    }
}

#[async_trait]
impl TokenSource for CheckTokenSource {
    async fn access_token(&self) -> Result<SecretToken> {
        let mut tokens = self.tokens.lock().await;
        if self.settings.expiring(&tokens) && tokens.refresh_token.is_some() {
            return self.refresh_locked(&mut tokens).await;
        }
        Ok(SecretToken::from_string(tokens.access_token.clone()))
    }

    async fn refresh(&self, stale: &SecretToken) -> Result<SecretToken> {
        let mut tokens = self.tokens.lock().await;
        if tokens.access_token != stale.expose() {
            return Ok(SecretToken::from_string(tokens.access_token.clone()));
        }
        self.refresh_locked(&mut tokens).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expiring_within_the_margin_are_refreshed() {
        let s = TokenRefreshSettings::default();
        let at = |secs: i64| StoredTokens {
            access_token: "a".into(),
            refresh_token: None,
            expires_at: Some(model::now() + chrono::Duration::seconds(secs)),
            instance_url: None,
            scopes: vec![],
        };
        assert!(s.expiring(&at(-10)));
        assert!(s.expiring(&at(299)));
        assert!(!s.expiring(&at(600)));
        let never = StoredTokens {
            expires_at: None,
            ..at(0)
        };
        assert!(!s.expiring(&never));
    }

    #[test]
    fn backoff_doubles_with_equal_jitter() {
        let s = TokenRefreshSettings {
            backoff: Duration::from_millis(400),
            ..Default::default()
        };
        for _ in 0..50 {
            let d2 = s.delay(2);
            assert!(d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(400));
            let d3 = s.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
        }
    }
}
