//! The bearer token a connector sends, and its refresh on a 401.

use std::sync::Arc;

use pandora_core::auth::SecretToken;
use pandora_core::connector::{CheckContext, TokenSource};
use pandora_core::oauth::StoredTokens;

use super::VendorError;

enum Kind {
    Source(Arc<dyn TokenSource>),
    Static(SecretToken),
}

/// Where a connector's access token comes from: the context's
/// [`TokenSource`] when there is one (OAuth connections: refreshed before
/// expiry, and on a 401 through [`refresh`](Self::refresh), once per
/// connection across the deployment), else the `access_token` of the opened
/// credentials (a token the vendor issued directly, e.g. a HubSpot
/// private-app token), which cannot be refreshed. `Debug` shows no token.
pub struct BearerAuth {
    kind: Kind,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            Kind::Source(_) => "BearerAuth(token source)",
            Kind::Static(_) => "BearerAuth(static token)",
        })
    }
}

impl BearerAuth {
    /// From a check or sync context: its token source, else the access
    /// token of its credentials (stored OAuth tokens: `{"access_token", …}`).
    pub fn from_context(vendor: &'static str, ctx: &CheckContext) -> Result<Self, VendorError> {
        if let Some(source) = &ctx.tokens {
            return Ok(Self::from_source(source.clone()));
        }
        let Some(credentials) = &ctx.credentials else {
            return Err(VendorError::Config {
                vendor,
                message: "the connection has no credentials".into(),
            });
        };
        let tokens: StoredTokens = credentials.parse().map_err(|e| VendorError::Config {
            vendor,
            message: format!("credentials: {e}"),
        })?;
        Ok(Self::from_token(SecretToken::from_string(
            tokens.access_token,
        )))
    }

    /// A fixed token (never refreshed).
    pub fn from_token(token: SecretToken) -> Self {
        BearerAuth {
            kind: Kind::Static(token),
        }
    }

    /// Tokens from a [`TokenSource`].
    pub fn from_source(source: Arc<dyn TokenSource>) -> Self {
        BearerAuth {
            kind: Kind::Source(source),
        }
    }

    /// Whether a 401 can be answered by a refresh.
    pub fn can_refresh(&self) -> bool {
        matches!(self.kind, Kind::Source(_))
    }

    /// The token to send now.
    pub async fn token(&self) -> pandora_core::Result<SecretToken> {
        match &self.kind {
            Kind::Source(s) => s.access_token().await,
            Kind::Static(t) => Ok(t.clone()),
        }
    }

    /// The vendor refused `stale`: a fresh token from the source (`None` for
    /// a fixed token, which cannot be refreshed).
    pub async fn refresh(&self, stale: &SecretToken) -> Option<pandora_core::Result<SecretToken>> {
        match &self.kind {
            Kind::Source(s) => Some(s.refresh(stale).await),
            Kind::Static(_) => None,
        }
    }
}

/// The scopes recorded with the opened credentials, when any.
pub(crate) fn stored_scopes(ctx: &CheckContext) -> Vec<String> {
    ctx.credentials
        .as_ref()
        .and_then(|c| c.parse::<StoredTokens>().ok())
        .map(|t| t.scopes)
        .unwrap_or_default()
}
