//! HubSpot's OAuth 2.0 authorization-code flow ([`OAuthProvider`]).
//!
//! Consent page: `{oauth_base_url}/oauth/authorize?client_id&redirect_uri&scope&state`
//! (default host `https://app.hubspot.com`). Tokens: a form POST to
//! `{token_url}` (default `https://api.hubapi.com/oauth/v1/token`) with
//! `grant_type=authorization_code` or `refresh_token`. Access tokens live
//! 30 minutes (`expires_in`); a refused refresh token answers 400 with
//! `BAD_REFRESH_TOKEN` (or `invalid_grant`).

use std::sync::Arc;

use async_trait::async_trait;
use pandora_core::auth::SecretToken;
use pandora_core::oauth::{OAuthClient, OAuthProvider, RefreshError, TokenSet};
use pandora_core::Error;

use super::payloads::TokenResponse;
use super::rate::HubSpotRules;
use super::HubSpotHosts;
use crate::vendor::{split_scopes, token_form, Request, RetryPolicy, VendorClient, VendorError};

/// The scopes Pandora asks for: read access to owners, companies, contacts,
/// deals and the deal schema (custom properties, pipelines).
pub const SCOPES: &[&str] = &[
    "oauth",
    "crm.objects.owners.read",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
    "crm.objects.deals.read",
    "crm.schemas.deals.read",
];

/// Error codes of a refresh token HubSpot refuses for good.
const REFUSED_GRANT: &[&str] = &["invalid_grant", "BAD_REFRESH_TOKEN"];

/// HubSpot's [`OAuthProvider`], against configurable hosts.
#[derive(Clone)]
pub struct HubSpotOAuth {
    hosts: HubSpotHosts,
    http: reqwest::Client,
}

impl std::fmt::Debug for HubSpotOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotOAuth")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl HubSpotOAuth {
    /// The flow against `hosts`, over `http`.
    pub fn new(hosts: HubSpotHosts, http: reqwest::Client) -> Self {
        HubSpotOAuth { hosts, http }
    }

    /// One token request; the caller (the core's token refresher) retries, so no retry here.
    async fn token_request(&self, form: Vec<(String, String)>) -> Result<TokenSet, VendorError> {
        let client = VendorClient::new(self.http.clone(), Arc::new(HubSpotRules), "")
            .with_retry(RetryPolicy::no_retry());
        let r = Request::post(self.hosts.token_url.clone())
            .form(form)
            .unauthenticated()
            .label("POST /oauth/v1/token");
        let t: TokenResponse = client.send(&r).await?;
        let scopes = t.scopes.unwrap_or_else(|| split_scopes(t.scope));
        Ok(TokenSet {
            access_token: SecretToken::from_string(t.access_token),
            refresh_token: t.refresh_token.map(SecretToken::from_string),
            expires_at: t
                .expires_in
                .map(|s| pandora_core::model::now() + chrono::Duration::seconds(s)),
            instance_url: None,
            scopes,
        })
    }
}

/// The token request's form: grant, app credentials, and the redirect URI HubSpot wants on every grant.
fn base_form(client: &OAuthClient, grant: &str) -> Vec<(String, String)> {
    let mut form = token_form(client, grant);
    form.push(("redirect_uri".into(), client.redirect_uri.clone()));
    form
}

#[async_trait]
impl OAuthProvider for HubSpotOAuth {
    fn uses_pkce(&self) -> bool {
        false
    }

    fn authorize_url(
        &self,
        client: &OAuthClient,
        state: &str,
        code_challenge: Option<&str>,
    ) -> Result<String, Error> {
        let base = format!(
            "{}/oauth/authorize",
            self.hosts.oauth_base_url.trim_end_matches('/')
        );
        let mut url = reqwest::Url::parse(&base)
            .map_err(|e| Error::invalid("HUBSPOT_OAUTH_BASE_URL", format!("not a URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", &client.redirect_uri)
                .append_pair("scope", &SCOPES.join(" "))
                .append_pair("state", state);
            if let Some(c) = code_challenge {
                q.append_pair("code_challenge", c)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url.into())
    }

    async fn exchange_code(
        &self,
        client: &OAuthClient,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenSet, Error> {
        let mut form = base_form(client, "authorization_code");
        form.push(("code".into(), code.into()));
        if let Some(v) = code_verifier {
            form.push(("code_verifier".into(), v.into()));
        }
        self.token_request(form).await.map_err(|e| match e {
            // A bad or reused code is the caller's to fix, not a vendor outage.
            VendorError::Status { status, .. } if status < 500 && status != 429 => {
                Error::rejected(e.to_string())
            }
            e => e.into(),
        })
    }

    async fn refresh(
        &self,
        client: &OAuthClient,
        refresh_token: &SecretToken,
    ) -> Result<TokenSet, RefreshError> {
        let mut form = base_form(client, "refresh_token");
        form.push(("refresh_token".into(), refresh_token.expose().to_string()));
        self.token_request(form).await.map_err(|e| match &e {
            VendorError::Status {
                status,
                code: Some(code),
                message,
                ..
            } if *status < 500 && REFUSED_GRANT.iter().any(|g| g.eq_ignore_ascii_case(code)) => {
                RefreshError::InvalidGrant(format!("hubspot: {message}"))
            }
            _ => RefreshError::Other(e.into()),
        })
    }
}
