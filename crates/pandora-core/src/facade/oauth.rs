//! OAuth 2.0 flows and token sources: starting an authorization (a signed,
//! single-use `state`, PKCE when the vendor uses it), finishing it (the code
//! exchanged, the tokens sealed, the connection created or updated), and the
//! [`ManagedTokenSource`] handed to a connector for an OAuth connection.
//!
//! The applications (`OAuthClient`s) and the state secret are the
//! deployment's, given to the [builder](PandoraBuilder::oauth_client).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Pandora, PandoraBuilder};
use crate::auth::SecretToken;
use crate::connector::{AuthKind, Connector, TokenSource};
use crate::error::{Error, Result};
use crate::model::{self, Connection, WorkspaceId};
use crate::oauth::{
    client_not_configured, CheckTokenSource, Flights, ManagedTokenSource, OAuthClient,
    OAuthProvider, Pkce, SourceParts, StateCodec, StatePayload, StoredTokens, TokenRefreshSettings,
};
use crate::store::PendingAuthorization;
use crate::vault::Credentials;

/// How long an authorization's `state` is accepted by default: 10 minutes.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);

/// How long expired pending authorizations are kept before they are purged.
const PURGE_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The OAuth part of a [`PandoraBuilder`].
#[derive(Default)]
pub(crate) struct OAuthBuilder {
    clients: BTreeMap<String, OAuthClient>,
    secret: Option<SecretToken>,
    state_ttl: Option<Duration>,
    success_url: Option<String>,
    refresh: Option<TokenRefreshSettings>,
}

/// The OAuth configuration of a built [`Pandora`].
pub(crate) struct OAuthConfig {
    clients: BTreeMap<String, OAuthClient>,
    codec: Option<StateCodec>,
    state_ttl: Duration,
    success_url: Option<String>,
    refresh: TokenRefreshSettings,
    /// The in-process refresh flights, by connection.
    pub(crate) flights: Flights,
}

impl OAuthBuilder {
    pub(crate) fn build(self) -> Result<OAuthConfig> {
        let codec = match &self.secret {
            Some(secret) => Some(StateCodec::new(secret.expose().as_bytes()).map_err(|_| {
                Error::invalid(
                    "session_secret",
                    format!(
                        "the OAuth state secret (SESSION_SECRET) must be at least {} characters long",
                        crate::oauth::MIN_STATE_SECRET_LEN
                    ),
                )
            })?),
            None => None,
        };
        if codec.is_none() && !self.clients.is_empty() {
            return Err(Error::invalid(
                "session_secret",
                "an OAuth client is configured, so the OAuth state secret (SESSION_SECRET) is required",
            ));
        }
        Ok(OAuthConfig {
            clients: self.clients,
            codec,
            state_ttl: self.state_ttl.unwrap_or(DEFAULT_STATE_TTL),
            success_url: self.success_url,
            refresh: self.refresh.unwrap_or_default(),
            flights: Flights::default(),
        })
    }
}

impl PandoraBuilder {
    /// The OAuth application of `connector` (e.g. `"hubspot"`, from
    /// `HUBSPOT_CLIENT_ID`, `HUBSPOT_CLIENT_SECRET`, `HUBSPOT_CALLBACK_URL`).
    /// Without one, the connector's flow answers [`Error::Unavailable`]
    /// naming the missing variable (see [`crate::oauth::missing_variable`]),
    /// and its tokens cannot be refreshed. Needs an
    /// [`oauth_state_secret`](Self::oauth_state_secret).
    pub fn oauth_client(mut self, connector: &str, client: OAuthClient) -> Self {
        self.oauth.clients.insert(connector.to_string(), client);
        self
    }

    /// The secret that signs the OAuth `state` (`SESSION_SECRET`), at least
    /// 32 characters long; required when an OAuth client is configured.
    pub fn oauth_state_secret(mut self, secret: &SecretToken) -> Self {
        self.oauth.secret = Some(secret.clone());
        self
    }

    /// How long a `state` is accepted; default [`DEFAULT_STATE_TTL`].
    pub fn oauth_state_ttl(mut self, ttl: Duration) -> Self {
        self.oauth.state_ttl = Some(ttl);
        self
    }

    /// Where a user's browser is sent once an OAuth flow has connected
    /// (`PANDORA_OAUTH_SUCCESS_URL`); see [`Pandora::oauth_success_url`].
    pub fn oauth_success_url(mut self, url: impl Into<String>) -> Self {
        self.oauth.success_url = Some(url.into());
        self
    }

    /// How OAuth access tokens are refreshed; default
    /// [`TokenRefreshSettings::default`].
    pub fn token_refresh(mut self, settings: TokenRefreshSettings) -> Self {
        self.oauth.refresh = Some(settings);
        self
    }
}

/// The start of an authorization: where to send the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeStart {
    /// The vendor's consent page, carrying the signed `state` (and the PKCE
    /// challenge when the vendor uses PKCE).
    pub url: String,
    /// Until when the callback is accepted.
    pub expires_at: DateTime<Utc>,
}

/// The invalid-`state` error of a callback.
fn bad_state(message: impl Into<String>) -> Error {
    Error::invalid("state", message)
}

impl Pandora {
    /// The connector's OAuth provider and the deployment's application for it.
    fn oauth_parts(
        &self,
        connector: &str,
    ) -> Result<(Arc<dyn OAuthProvider>, &OAuthClient, &StateCodec)> {
        let imp = self.inner.connectors.get(connector)?;
        let provider = match (imp.info().auth, imp.oauth()) {
            (AuthKind::OAuth2, Some(p)) => p,
            _ => return Err(Error::not_found("OAuth flow of connector", connector)),
        };
        let config = &self.inner.oauth;
        let client = config
            .clients
            .get(connector)
            .ok_or_else(|| client_not_configured(connector))?;
        // The builder refuses clients without a secret.
        let codec = config
            .codec
            .as_ref()
            .ok_or_else(|| client_not_configured(connector))?;
        Ok((provider, client, codec))
    }

    /// Where a user's browser is sent after a successful flow, if configured.
    pub fn oauth_success_url(&self) -> Option<&str> {
        self.inner.oauth.success_url.as_deref()
    }

    /// Starts connecting the workspace to `connector` with OAuth: stores a
    /// pending authorization (its nonce, and the PKCE verifier when the
    /// vendor uses PKCE, kept here and never put in the URL) and returns the
    /// vendor's consent URL with a `state` signed for this workspace and
    /// connector, accepted once within the
    /// [state TTL](PandoraBuilder::oauth_state_ttl).
    ///
    /// Errors: unknown connector, or one without an OAuth flow, and a
    /// missing workspace: [`Error::NotFound`]; no OAuth application
    /// configured for the connector: [`Error::Unavailable`] naming the
    /// variable ([`crate::oauth::missing_variable`]); no credential
    /// encryption key (the tokens could not be stored): [`Error::Unavailable`].
    pub async fn oauth_authorize(
        &self,
        workspace: WorkspaceId,
        connector: &str,
    ) -> Result<AuthorizeStart> {
        let (provider, client, codec) = self.oauth_parts(connector)?;
        if self.inner.vault.current_key_id().is_none() {
            return Err(crate::vault::VaultError::NoKey.into());
        }
        let store = &self.inner.store;
        store.get_workspace(workspace).await?;
        let now = model::now();
        if let Err(e) = store.purge_authorizations(now - PURGE_AFTER).await {
            tracing::warn!(error = %e, "purging expired OAuth authorizations failed");
        }
        let ttl = chrono::Duration::from_std(self.inner.oauth.state_ttl)
            .map_err(|_| Error::invalid("state_ttl", "is too long"))?;
        // The state carries whole seconds: so does the stored expiry.
        let expires_at = DateTime::from_timestamp((now + ttl).timestamp(), 0)
            .ok_or_else(|| Error::internal("state expiry out of range"))?;
        let pkce = provider.uses_pkce().then(Pkce::generate);
        let pending = PendingAuthorization {
            workspace_id: workspace,
            nonce: Uuid::new_v4(),
            connector: connector.to_string(),
            code_verifier: pkce.as_ref().map(|p| p.verifier().clone()),
            created_at: now,
            expires_at,
        };
        let state = codec.sign(&StatePayload {
            connector: connector.to_string(),
            workspace_id: workspace,
            nonce: pending.nonce,
            expires_at,
            pkce: pkce.is_some(),
        })?;
        let url = provider.authorize_url(client, &state, pkce.as_ref().map(Pkce::challenge))?;
        store.create_authorization(&pending).await?;
        tracing::info!(workspace_id = %workspace, connector, pkce = pkce.is_some(), "OAuth authorization started");
        Ok(AuthorizeStart { url, expires_at })
    }

    /// Finishes an OAuth flow at its callback: checks the `state` (signed by
    /// this deployment, for this connector, not expired, and consumed now —
    /// a second use fails), exchanges `code` with the vendor (with the PKCE
    /// verifier kept by [`Pandora::oauth_authorize`]), seals the tokens and
    /// creates or updates the workspace's connection (active, its config
    /// kept). Returns the connection (never its credentials).
    ///
    /// Errors: a state that is malformed, tampered with, foreign, for
    /// another connector, expired or already used: [`Error::InvalidInput`]
    /// on `state`, and nothing changes; an empty `code`:
    /// [`Error::InvalidInput`] on `code`; the vendor refusing the code: its
    /// error (typically [`Error::Rejected`]); otherwise as
    /// [`Pandora::oauth_authorize`].
    pub async fn oauth_callback(
        &self,
        connector: &str,
        code: &str,
        state: &str,
    ) -> Result<Connection> {
        let (provider, client, codec) = self.oauth_parts(connector)?;
        let payload = codec.verify(state).map_err(|e| bad_state(e.to_string()))?;
        if payload.connector != connector {
            return Err(bad_state(format!(
                "was issued for the {} flow, not {connector}",
                payload.connector
            )));
        }
        let now = model::now();
        if payload.expires_at <= now {
            return Err(bad_state("has expired; start the authorization again"));
        }
        if code.trim().is_empty() {
            return Err(Error::invalid("code", "is required"));
        }
        if self.inner.vault.current_key_id().is_none() {
            return Err(crate::vault::VaultError::NoKey.into());
        }
        let workspace = payload.workspace_id;
        let pending = self
            .inner
            .store
            .consume_authorization(workspace, connector, payload.nonce, now)
            .await?
            .ok_or_else(|| {
                bad_state("was already used, or has expired; start the authorization again")
            })?;
        if pending.code_verifier.is_some() != payload.pkce {
            return Err(bad_state("does not match its authorization"));
        }
        let tokens = provider
            .exchange_code(
                client,
                code,
                pending.code_verifier.as_ref().map(SecretToken::expose),
            )
            .await?;
        let stored = StoredTokens::from_token_set(&tokens);
        let credentials = Credentials::from_json(&serde_json::to_value(&stored)?);
        let config = match self.inner.store.get_connection(workspace, connector).await {
            Ok(existing) => existing.config,
            Err(Error::NotFound { .. }) => serde_json::json!({}),
            Err(e) => return Err(e),
        };
        let connection = self
            .connect(workspace, connector, credentials, config)
            .await?;
        self.inner
            .oauth
            .flights
            .forget(workspace, connection.id)
            .await;
        tracing::info!(workspace_id = %workspace, connector, connection_id = %connection.id, "OAuth authorization completed");
        Ok(connection)
    }

    /// The token source of the workspace's connection to `connector`, as a
    /// sync or check of it receives it: `None` when the connector does not
    /// authenticate with OAuth. Sources of one connection made by one
    /// `Pandora` share their refreshes.
    pub async fn token_source(
        &self,
        workspace: WorkspaceId,
        connector: &str,
    ) -> Result<Option<Arc<ManagedTokenSource>>> {
        let imp = self.inner.connectors.get(connector)?;
        let connection = self
            .inner
            .store
            .get_connection(workspace, connector)
            .await?;
        Ok(self.managed_source(imp.as_ref(), &connection))
    }

    fn managed_source(
        &self,
        imp: &dyn Connector,
        connection: &Connection,
    ) -> Option<Arc<ManagedTokenSource>> {
        if imp.info().auth != AuthKind::OAuth2 {
            return None;
        }
        let provider = imp.oauth()?;
        let config = &self.inner.oauth;
        let parts = SourceParts {
            store: self.inner.store.clone(),
            vault: self.inner.vault.clone(),
            provider,
            client: config.clients.get(&connection.connector).cloned(),
            settings: config.refresh.clone(),
            flight: config.flights.of(connection.workspace_id, connection.id),
        };
        Some(Arc::new(ManagedTokenSource::new(
            parts,
            connection.workspace_id,
            &connection.connector,
            connection.id,
        )))
    }

    /// The token source a sync or health check of `connection` hands `imp`.
    pub(crate) fn connection_tokens(
        &self,
        imp: &dyn Connector,
        connection: &Connection,
    ) -> Option<Arc<dyn TokenSource>> {
        self.managed_source(imp, connection)
            .map(|s| s as Arc<dyn TokenSource>)
    }

    /// The token source of a credential check before the credentials are
    /// stored: refreshes in memory (see [`CheckTokenSource`]).
    pub(crate) fn check_tokens(
        &self,
        imp: &dyn Connector,
        connector: &str,
        credentials: &Credentials,
    ) -> Option<Arc<CheckTokenSource>> {
        if imp.info().auth != AuthKind::OAuth2 {
            return None;
        }
        let provider = imp.oauth()?;
        let tokens: StoredTokens = credentials.parse().ok()?;
        let config = &self.inner.oauth;
        Some(Arc::new(CheckTokenSource::new(
            provider,
            config.clients.get(connector).cloned(),
            connector,
            config.refresh.clone(),
            tokens,
        )))
    }
}
