//! Salesforce's OAuth 2.0 web server flow with PKCE ([`OAuthProvider`]).
//!
//! Consent page: `{login_url}/services/oauth2/authorize?response_type=code&client_id&redirect_uri&scope&state&code_challenge&code_challenge_method=S256`
//! (`login_url` defaults to `https://login.salesforce.com`; a sandbox uses
//! `https://test.salesforce.com`, an org may use its My Domain). Tokens: a
//! form POST to `{login_url}/services/oauth2/token` with
//! `grant_type=authorization_code` (and the PKCE `code_verifier`) or
//! `refresh_token`. The answer carries `instance_url` — the org's API host —
//! and no `expires_in`: an expired session answers `INVALID_SESSION_ID`, and
//! the token source refreshes then. A refresh may return a new refresh token
//! (rotation), which replaces the old one. A refused refresh token answers
//! 400 `{"error": "invalid_grant"}`.

use std::sync::Arc;

use async_trait::async_trait;
use pandora_core::auth::SecretToken;
use pandora_core::oauth::{OAuthClient, OAuthProvider, RefreshError, TokenSet};
use pandora_core::Error;

use super::payloads::TokenResponse;
use super::rate::SalesforceRules;
use super::SalesforceHosts;
use crate::vendor::{split_scopes, token_form, Request, RetryPolicy, VendorClient, VendorError};

/// The scopes Pandora asks for: the REST API, and a refresh token.
pub const SCOPES: &[&str] = &["api", "refresh_token"];

/// Salesforce's [`OAuthProvider`], against a configurable login host.
#[derive(Clone)]
pub struct SalesforceOAuth {
    hosts: SalesforceHosts,
    http: reqwest::Client,
}

impl std::fmt::Debug for SalesforceOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceOAuth")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl SalesforceOAuth {
    /// The flow against `hosts`, over `http`.
    pub fn new(hosts: SalesforceHosts, http: reqwest::Client) -> Self {
        SalesforceOAuth { hosts, http }
    }

    /// One token request; the caller (the core's token refresher) retries, so no retry here.
    async fn token_request(&self, form: Vec<(String, String)>) -> Result<TokenSet, VendorError> {
        let client = VendorClient::new(self.http.clone(), Arc::new(SalesforceRules), "")
            .with_retry(RetryPolicy::no_retry());
        let r = Request::post(self.hosts.token_url())
            .form(form)
            .unauthenticated()
            .label("POST /services/oauth2/token");
        let t: TokenResponse = client.send(&r).await?;
        if t.access_token.trim().is_empty() {
            return Err(VendorError::Malformed {
                vendor: super::SOURCE,
                endpoint: "POST /services/oauth2/token".into(),
                reason: "the answer has an empty access_token".into(),
            });
        }
        Ok(TokenSet {
            access_token: SecretToken::from_string(t.access_token),
            refresh_token: t
                .refresh_token
                .filter(|r| !r.is_empty())
                .map(SecretToken::from_string),
            expires_at: None,
            instance_url: t
                .instance_url
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
            scopes: split_scopes(t.scope),
        })
    }
}

#[async_trait]
impl OAuthProvider for SalesforceOAuth {
    fn uses_pkce(&self) -> bool {
        true
    }

    fn authorize_url(
        &self,
        client: &OAuthClient,
        state: &str,
        code_challenge: Option<&str>,
    ) -> Result<String, Error> {
        let mut url = reqwest::Url::parse(&self.hosts.authorize_url())
            .map_err(|e| Error::invalid("SALESFORCE_LOGIN_URL", format!("not a URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &client.client_id)
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
        let mut form = token_form(client, "authorization_code");
        form.push(("code".into(), code.into()));
        form.push(("redirect_uri".into(), client.redirect_uri.clone()));
        if let Some(v) = code_verifier {
            form.push(("code_verifier".into(), v.into()));
        }
        let set = self.token_request(form).await.map_err(|e| match e {
            // A bad, reused or unverified code is the caller's to fix, not an outage.
            VendorError::Status { status, .. } if status < 500 && status != 429 => {
                Error::rejected(e.to_string())
            }
            e => e.into(),
        })?;
        if set.instance_url.is_none() {
            return Err(Error::rejected(
                "salesforce POST /services/oauth2/token: the answer has no instance_url (the org's API host)",
            ));
        }
        Ok(set)
    }

    async fn refresh(
        &self,
        client: &OAuthClient,
        refresh_token: &SecretToken,
    ) -> Result<TokenSet, RefreshError> {
        let mut form = token_form(client, "refresh_token");
        form.push(("refresh_token".into(), refresh_token.expose().to_string()));
        self.token_request(form).await.map_err(|e| match &e {
            VendorError::Status {
                status,
                code: Some(code),
                message,
                ..
            } if *status < 500 && *status != 429 && code.eq_ignore_ascii_case("invalid_grant") => {
                RefreshError::InvalidGrant(format!("salesforce: {message}"))
            }
            _ => RefreshError::Other(e.into()),
        })
    }
}
