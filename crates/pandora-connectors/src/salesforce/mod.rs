//! The Salesforce connector: users (with their managers), accounts,
//! contacts, the opportunity stage picklist, opportunities with their field
//! history, and opportunity contact roles, from Salesforce's REST API (SOQL).
//!
//! Laid out as the HubSpot connector is:
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the [`Connector`] impl: info, check, sync; hosts and tuning |
//! | `api.rs` | one method per endpoint (query, queryAll, describe, getDeleted), over the shared [`VendorClient`] |
//! | `soql.rs` | the SOQL sent: field lists, literals, the cursor filter |
//! | `payloads.rs` | serde types of the vendor's JSON, quirks absorbed |
//! | `normalize.rs` | vendor records → Pandora records, pure |
//! | `streams.rs` | stream order, cursors, checkpoints, deletions |
//! | `rate.rs` | the vendor's [`VendorRules`]: `Sforce-Limit-Info`, error arrays, `REQUEST_LIMIT_EXCEEDED` |
//! | `oauth.rs` | its [`OAuthProvider`](pandora_core::oauth::OAuthProvider) (PKCE) |
//!
//! Credentials are stored OAuth tokens `{"access_token", "refresh_token",
//! "instance_url"}`; the API host is their `instance_url`, which the
//! connection's `config.base_url` overrides. An expired session answers 401
//! `INVALID_SESSION_ID`: the shared client asks the token source for a
//! refresh once and retries.
//!
//! [`VendorClient`]: crate::vendor::VendorClient
//! [`VendorRules`]: crate::vendor::VendorRules

pub mod api;
pub mod normalize;
pub mod oauth;
pub mod payloads;
pub mod rate;
pub mod soql;
pub mod streams;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pandora_core::batch::RecordKind;
use pandora_core::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, RecordSink, StreamInfo,
    SyncContext,
};
use pandora_core::oauth::StoredTokens;
use pandora_core::Result;
use uuid::Uuid;

use crate::vendor::{BearerAuth, RateBudget, RateWindow, RetryPolicy, VendorClient, VendorError};
use api::{QueryKind, SalesforceApi};
use oauth::SalesforceOAuth;
use payloads::SfId;
use rate::SalesforceRules;
use streams::Session;

pub use oauth::SCOPES;

/// The connector id, also the `source` of its records.
pub const SOURCE: &str = "salesforce";

/// The REST API version the connector speaks.
pub const API_VERSION: &str = "v62.0";

/// The hosts the connector talks to (the API host is per connection: the
/// `instance_url` of its tokens). [`Default`] is Salesforce's production login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesforceHosts {
    /// Login host of the OAuth flow (`https://login.salesforce.com`; a
    /// sandbox: `https://test.salesforce.com`; or an org's My Domain).
    pub login_url: String,
}

impl Default for SalesforceHosts {
    fn default() -> Self {
        SalesforceHosts::new(None)
    }
}

impl SalesforceHosts {
    /// From the deployment's `SALESFORCE_LOGIN_URL` (`None`: `https://login.salesforce.com`).
    pub fn new(login_url: Option<&str>) -> Self {
        SalesforceHosts {
            login_url: login_url
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .unwrap_or("https://login.salesforce.com")
                .trim_end_matches('/')
                .to_string(),
        }
    }

    /// The consent page: `{login_url}/services/oauth2/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/services/oauth2/authorize", self.login_url)
    }

    /// The token endpoint: `{login_url}/services/oauth2/token`.
    pub fn token_url(&self) -> String {
        format!("{}/services/oauth2/token", self.login_url)
    }
}

/// API version, overlap, history batching, the deletion window, retries and
/// pacing. [`Default`] is what Salesforce allows; tests shrink it.
#[derive(Debug, Clone)]
pub struct SalesforceTuning {
    /// REST API version (`v62.0`).
    pub api_version: String,
    /// How far before the cursor incremental reads start (late commits).
    pub overlap: chrono::Duration,
    /// Opportunities per `OpportunityHistory` query (`OpportunityId IN (…)`
    /// keeps the URL well under Salesforce's limit at 200).
    pub history_chunk: usize,
    /// How long Salesforce keeps deleted records for getDeleted (15 days);
    /// a deletion cursor older than that is reconciled by listing ids.
    pub deleted_window: chrono::Duration,
    /// Retries of each request.
    pub retry: RetryPolicy,
    /// Client-side pacing (none by default: Salesforce limits requests per
    /// 24 hours, reported by `Sforce-Limit-Info`, not per second).
    pub budget: Vec<RateWindow>,
}

impl Default for SalesforceTuning {
    fn default() -> Self {
        SalesforceTuning {
            api_version: API_VERSION.into(),
            overlap: chrono::Duration::minutes(5),
            history_chunk: 200,
            deleted_window: chrono::Duration::days(15),
            retry: RetryPolicy::default(),
            budget: Vec::new(),
        }
    }
}

/// The Salesforce connector.
#[derive(Clone)]
pub struct SalesforceConnector {
    hosts: SalesforceHosts,
    tuning: SalesforceTuning,
    http: reqwest::Client,
    /// One budget per org (workspace and API host) in this process, shared by its syncs and checks.
    budgets: Arc<Mutex<Budgets>>,
}

/// The budgets of the orgs a connector talks to, by (workspace, API host).
type Budgets = HashMap<(Uuid, String), Arc<RateBudget>>;

impl std::fmt::Debug for SalesforceConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceConnector")
            .field("hosts", &self.hosts)
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl Default for SalesforceConnector {
    fn default() -> Self {
        SalesforceConnector::new(SalesforceHosts::default())
    }
}

impl SalesforceConnector {
    /// The connector against `hosts`.
    pub fn new(hosts: SalesforceHosts) -> Self {
        SalesforceConnector {
            hosts,
            tuning: SalesforceTuning::default(),
            http: VendorClient::default_http(),
            budgets: Arc::default(),
        }
    }

    /// With another API version, overlap, retries or pacing.
    pub fn with_tuning(mut self, tuning: SalesforceTuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The hosts.
    pub fn hosts(&self) -> &SalesforceHosts {
        &self.hosts
    }

    /// The connection's API host: `config.base_url`, else the `instance_url`
    /// of its credentials.
    fn api_base(&self, ctx: &CheckContext) -> std::result::Result<String, VendorError> {
        let configured = ctx
            .config
            .get("base_url")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let from_tokens = || {
            ctx.credentials
                .as_ref()
                .and_then(|c| c.parse::<StoredTokens>().ok())
                .and_then(|t| t.instance_url)
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
        };
        configured
            .or_else(from_tokens)
            .map(|u| u.trim_end_matches('/').to_string())
            .ok_or(VendorError::Config {
                vendor: SOURCE,
                message: "no API host: the credentials carry no instance_url and config.base_url is not set".into(),
            })
    }

    fn budget(&self, workspace: Uuid, base: &str) -> Arc<RateBudget> {
        let mut all = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        all.entry((workspace, base.to_string()))
            .or_insert_with(|| Arc::new(RateBudget::new(self.tuning.budget.iter().copied())))
            .clone()
    }

    fn api(&self, ctx: &CheckContext) -> Result<SalesforceApi> {
        let base = self.api_base(ctx)?;
        let client = VendorClient::new(self.http.clone(), Arc::new(SalesforceRules), &base)
            .with_auth(BearerAuth::from_context(SOURCE, ctx)?)
            .with_budget(self.budget(ctx.workspace_id, &base))
            .with_retry(self.tuning.retry.clone());
        Ok(SalesforceApi::new(client, self.tuning.api_version.clone()))
    }
}

/// The health note: daily API budget left and the granted scopes, e.g.
/// `"API budget: 14109 of 15000 daily requests left; scopes: api, refresh_token"`.
fn health_detail(api: &SalesforceApi, scopes: &[String]) -> String {
    let mut parts = Vec::new();
    if let Some((limit, remaining)) = api.client().budget().snapshot().daily {
        parts.push(format!(
            "API budget: {remaining} of {limit} daily requests left"
        ));
    }
    crate::vendor::health_detail("Salesforce", parts, scopes)
}

#[async_trait]
impl Connector for SalesforceConnector {
    fn info(&self) -> ConnectorInfo {
        let stream = |name, kinds: &[RecordKind], incremental| StreamInfo {
            name,
            kinds: kinds.to_vec(),
            incremental,
        };
        ConnectorInfo {
            id: SOURCE,
            display_name: "Salesforce",
            auth: AuthKind::OAuth2,
            streams: vec![
                stream(streams::STREAMS[0], &[RecordKind::User], true),
                stream(streams::STREAMS[1], &[RecordKind::Account], true),
                stream(streams::STREAMS[2], &[RecordKind::Contact], true),
                stream(streams::STREAMS[3], &[RecordKind::PipelineStage], false),
                stream(streams::STREAMS[4], &[RecordKind::Deal], true),
                stream(streams::STREAMS[5], &[RecordKind::DealContact], true),
            ],
        }
    }

    /// One cheap query (`SELECT Id FROM Opportunity LIMIT 1`: the token
    /// works and may read opportunities); a 401 or 403 is a refusal with
    /// Salesforce's message, and the daily API budget left is reported.
    async fn check(&self, ctx: &CheckContext) -> Result<CheckOutcome> {
        let api = self.api(ctx)?;
        let probe = "SELECT Id FROM Opportunity LIMIT 1";
        if let Err(e) = api.query::<SfId>(QueryKind::Query, probe).await {
            return match e {
                VendorError::LimitReached { message, .. } => Ok(CheckOutcome {
                    ok: false,
                    detail: Some(message),
                }),
                e if matches!(e.status(), Some(401 | 403)) => Ok(CheckOutcome {
                    ok: false,
                    detail: Some(format!(
                        "Salesforce refused the credentials: {}",
                        e.vendor_message().unwrap_or("no reason given")
                    )),
                }),
                e => Err(e.into()),
            };
        }
        Ok(CheckOutcome {
            ok: true,
            detail: Some(health_detail(&api, &crate::vendor::stored_scopes(ctx))),
        })
    }

    async fn sync(&self, ctx: &SyncContext, sink: &mut dyn RecordSink) -> Result<()> {
        let api = self.api(&ctx.check)?;
        let mut session = Session {
            api: &api,
            ctx,
            tuning: &self.tuning,
            catalog: Default::default(),
            readable: Default::default(),
        };
        session.run(sink).await
    }

    fn oauth(&self) -> Option<Arc<dyn pandora_core::oauth::OAuthProvider>> {
        Some(Arc::new(SalesforceOAuth::new(
            self.hosts.clone(),
            self.http.clone(),
        )))
    }
}
