//! OAuth 2.0 (authorization code) contract between the core and the vendor
//! connectors, and the vendor-neutral machinery around it.
//!
//! A vendor's connector implements [`OAuthProvider`]: how to build its
//! consent URL, exchange a code, and refresh a token, against hosts it is
//! configured with. The core owns everything vendor-neutral:
//!
//! * the signed, single-use `state` ([`StateCodec`]: HMAC-SHA256 under
//!   `SESSION_SECRET`, bound to workspace, connector and expiry; its nonce is
//!   a pending authorization in the store, consumed once);
//! * PKCE ([`Pkce`], S256) for providers that [use it](OAuthProvider::uses_pkce),
//!   the verifier kept server-side;
//! * sealing the tokens and creating or updating the connection
//!   (`Pandora::oauth_authorize` / `Pandora::oauth_callback`);
//! * refreshing them once per connection across the whole deployment
//!   ([`ManagedTokenSource`], a [`TokenSource`] handed to the connector in
//!   its context).
//!
//! Stored OAuth credentials are the JSON of [`StoredTokens`].
//!
//! [`TokenSource`]: crate::connector::TokenSource

mod pkce;
mod state;
mod tokens;

pub use pkce::Pkce;
pub use state::{StateCodec, StateError, StatePayload, MIN_STATE_SECRET_LEN};
pub(crate) use tokens::{CheckTokenSource, Flights, SourceParts};
pub use tokens::{ManagedTokenSource, TokenRefreshSettings};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::SecretToken;
use crate::error::Error;

/// A registered OAuth application: its client id and secret and the redirect
/// URI registered with the vendor (used exactly). `Debug` hides the secret.
#[derive(Clone)]
pub struct OAuthClient {
    /// Client id (public).
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretToken,
    /// The redirect (callback) URI registered with the vendor.
    pub redirect_uri: String,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// What a vendor's token endpoint answered (a code exchange or a refresh).
#[derive(Clone)]
pub struct TokenSet {
    /// The access token.
    pub access_token: SecretToken,
    /// A refresh token, when the vendor sent one (a refresh may rotate it:
    /// the new one must replace the old, which the vendor may revoke).
    pub refresh_token: Option<SecretToken>,
    /// When the access token expires, when the vendor says (`expires_in`).
    pub expires_at: Option<DateTime<Utc>>,
    /// The API host to use from now on, when the vendor says (Salesforce's
    /// `instance_url`).
    pub instance_url: Option<String>,
    /// Scopes granted, when the vendor says.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("instance_url", &self.instance_url)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The vendor refused the refresh token for good (`invalid_grant`:
    /// revoked, expired, or already rotated): the connection needs to be
    /// authorized again. Never retried.
    #[error("the vendor refused the refresh token ({0}); the connection must be authorized again")]
    InvalidGrant(String),
    /// Anything else (network, 429, 5xx, malformed answer): may pass on retry.
    #[error(transparent)]
    Other(#[from] Error),
}

/// The OAuth credentials Pandora stores (sealed) for a connection: the
/// tokens plus what the vendor said about them.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredTokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token, if any (absent for e.g. a HubSpot private-app token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Salesforce's API host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_url: Option<String>,
    /// Scopes granted, if known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("instance_url", &self.instance_url)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl StoredTokens {
    /// `self` updated by a token endpoint's answer: a new refresh token or
    /// instance URL replaces the old one; an absent one keeps it.
    pub fn updated_by(&self, new: &TokenSet) -> StoredTokens {
        StoredTokens {
            access_token: new.access_token.expose().to_string(),
            refresh_token: new
                .refresh_token
                .as_ref()
                .map(|t| t.expose().to_string())
                .or_else(|| self.refresh_token.clone()),
            expires_at: new.expires_at,
            instance_url: new
                .instance_url
                .clone()
                .or_else(|| self.instance_url.clone()),
            scopes: if new.scopes.is_empty() {
                self.scopes.clone()
            } else {
                new.scopes.clone()
            },
        }
    }

    /// The tokens of a first exchange.
    pub fn from_token_set(new: &TokenSet) -> StoredTokens {
        StoredTokens {
            access_token: new.access_token.expose().to_string(),
            refresh_token: new.refresh_token.as_ref().map(|t| t.expose().to_string()),
            expires_at: new.expires_at,
            instance_url: new.instance_url.clone(),
            scopes: new.scopes.clone(),
        }
    }
}

/// What the message of an OAuth "not configured" [`Error::Unavailable`]
/// starts with.
const NOT_CONFIGURED: &str = "OAuth is not configured for this connector: ";

/// The environment variable prefix of a connector's OAuth application:
/// `HUBSPOT` for `hubspot` (its variables are `HUBSPOT_CLIENT_ID`,
/// `HUBSPOT_CLIENT_SECRET` and `HUBSPOT_CALLBACK_URL`).
pub fn variable_prefix(connector: &str) -> String {
    connector
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The [`Error::Unavailable`] of a flow or refresh for a connector whose
/// OAuth application is not configured; it names the missing variable
/// (`<PREFIX>_CLIENT_ID`), which [`missing_variable`] reads back (e.g. for a
/// 503 that names it).
pub fn client_not_configured(connector: &str) -> Error {
    let prefix = variable_prefix(connector);
    Error::unavailable(format!(
        "{NOT_CONFIGURED}{prefix}_CLIENT_ID is not set (set {prefix}_CLIENT_ID, \
         {prefix}_CLIENT_SECRET and {prefix}_CALLBACK_URL to connect {connector} with OAuth)"
    ))
}

/// The variable an error of [`client_not_configured`] names, if it is one.
pub fn missing_variable(error: &Error) -> Option<&str> {
    match error {
        Error::Unavailable { message } => message
            .strip_prefix(NOT_CONFIGURED)
            .and_then(|rest| rest.split(' ').next())
            .filter(|v| !v.is_empty()),
        _ => None,
    }
}

/// A vendor's OAuth 2.0 authorization-code flow, implemented by its connector.
#[async_trait]
pub trait OAuthProvider: Send + Sync {
    /// Whether the flow uses PKCE (S256); Salesforce does.
    fn uses_pkce(&self) -> bool;

    /// The vendor consent page URL for `client`, carrying `state` (and the
    /// S256 `code_challenge` when [`uses_pkce`](Self::uses_pkce)).
    fn authorize_url(
        &self,
        client: &OAuthClient,
        state: &str,
        code_challenge: Option<&str>,
    ) -> Result<String, Error>;

    /// Exchanges an authorization code (with the PKCE verifier, if any) for tokens.
    async fn exchange_code(
        &self,
        client: &OAuthClient,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenSet, Error>;

    /// Refreshes an access token. [`RefreshError::InvalidGrant`] only when the
    /// vendor refused the refresh token itself; 429/5xx/network are
    /// [`RefreshError::Other`] (retried with backoff by the caller).
    async fn refresh(
        &self,
        client: &OAuthClient,
        refresh_token: &SecretToken,
    ) -> Result<TokenSet, RefreshError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(refresh: Option<&str>, instance: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: SecretToken::from_string("new-access".into()),
            refresh_token: refresh.map(|r| SecretToken::from_string(r.into())),
            expires_at: None,
            instance_url: instance.map(str::to_string),
            scopes: vec![],
        }
    }

    #[test]
    fn a_refresh_keeps_what_the_vendor_did_not_resend_and_replaces_what_it_did() {
        let old = StoredTokens {
            access_token: "old-access".into(),
            refresh_token: Some("old-refresh".into()),
            expires_at: None,
            instance_url: Some("https://na1.example".into()),
            scopes: vec!["crm".into()],
        };
        let kept = old.updated_by(&set(None, None));
        assert_eq!(kept.access_token, "new-access");
        assert_eq!(kept.refresh_token.as_deref(), Some("old-refresh"));
        assert_eq!(kept.instance_url.as_deref(), Some("https://na1.example"));
        assert_eq!(kept.scopes, vec!["crm".to_string()]);
        let rotated = old.updated_by(&set(Some("new-refresh"), Some("https://na2.example")));
        assert_eq!(rotated.refresh_token.as_deref(), Some("new-refresh"));
        assert_eq!(rotated.instance_url.as_deref(), Some("https://na2.example"));
    }

    #[test]
    fn not_configured_errors_name_the_variable() {
        let e = client_not_configured("hubspot");
        assert_eq!(e.kind(), crate::ErrorKind::Unavailable);
        assert_eq!(missing_variable(&e), Some("HUBSPOT_CLIENT_ID"));
        assert!(e.to_string().contains("HUBSPOT_CALLBACK_URL"), "{e}");
        let e = client_not_configured("salesforce");
        assert_eq!(missing_variable(&e), Some("SALESFORCE_CLIENT_ID"));
        assert_eq!(variable_prefix("google-drive"), "GOOGLE_DRIVE");
        assert_eq!(missing_variable(&Error::unavailable("db down")), None);
        assert_eq!(missing_variable(&Error::internal("x")), None);
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let s = set(Some("secret-refresh"), None);
        let client = OAuthClient {
            client_id: "id".into(),
            client_secret: SecretToken::from_string("secret-client".into()),
            redirect_uri: "https://x/cb".into(),
        };
        let stored = StoredTokens::from_token_set(&s);
        let all = format!("{s:?} {client:?} {stored:?}");
        for secret in ["new-access", "secret-refresh", "secret-client"] {
            assert!(!all.contains(secret), "{all}");
        }
    }
}
