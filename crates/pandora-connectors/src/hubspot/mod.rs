//! The HubSpot connector: owners, companies, contacts, deal pipelines and
//! deals (with their contacts, companies and field history) from HubSpot's
//! CRM v3 API.
//!
//! This folder is the pattern for a vendor connector:
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the [`Connector`] impl: info, check, sync; hosts and tuning |
//! | `api.rs` | one method per endpoint, over the shared [`VendorClient`] |
//! | `payloads.rs` | serde types of the vendor's JSON, quirks absorbed |
//! | `normalize.rs` | vendor records → Pandora records, pure |
//! | `streams.rs` | stream order, cursors and checkpoints |
//! | `rate.rs` | the vendor's [`VendorRules`]: rate headers, 429 policies, error bodies |
//! | `oauth.rs` | its [`OAuthProvider`](pandora_core::oauth::OAuthProvider) |
//!
//! What every vendor shares (retries, the rate budget, tokens, paging) lives
//! in [`crate::vendor`].
//!
//! Credentials are stored OAuth tokens (`{"access_token", "refresh_token",
//! …}`) or a private-app token as `{"access_token": "pat-…"}`; the
//! connection's `config.base_url` overrides the API host.
//!
//! [`VendorClient`]: crate::vendor::VendorClient
//! [`VendorRules`]: crate::vendor::VendorRules

pub mod api;
pub mod normalize;
pub mod oauth;
pub mod payloads;
pub mod rate;
pub mod streams;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pandora_core::batch::RecordKind;
use pandora_core::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, RecordSink, StreamInfo,
    SyncContext,
};
use pandora_core::Result;
use uuid::Uuid;

use crate::vendor::{BearerAuth, RateBudget, RateWindow, RetryPolicy, VendorClient};
use api::HubSpotApi;
use oauth::HubSpotOAuth;
use rate::HubSpotRules;
use streams::Session;

pub use oauth::SCOPES;

/// The connector id, also the `source` of its records.
pub const SOURCE: &str = "hubspot";

/// The hosts the connector talks to. [`Default`] is HubSpot's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpotHosts {
    /// API host (`https://api.hubapi.com`); a connection's `config.base_url` overrides it.
    pub api_base_url: String,
    /// Host of the consent page (`https://app.hubspot.com`).
    pub oauth_base_url: String,
    /// Token endpoint (`https://api.hubapi.com/oauth/v1/token`).
    pub token_url: String,
}

impl Default for HubSpotHosts {
    fn default() -> Self {
        HubSpotHosts::new(None, None)
    }
}

impl HubSpotHosts {
    /// From the deployment's `HUBSPOT_OAUTH_BASE_URL` and
    /// `HUBSPOT_API_BASE_URL` (`None`: HubSpot's hosts). The token endpoint
    /// is `/oauth/v1/token` on the API host.
    pub fn new(oauth_base_url: Option<&str>, api_base_url: Option<&str>) -> Self {
        let api = api_base_url
            .unwrap_or("https://api.hubapi.com")
            .trim_end_matches('/')
            .to_string();
        HubSpotHosts {
            token_url: format!("{api}/oauth/v1/token"),
            api_base_url: api,
            oauth_base_url: oauth_base_url
                .unwrap_or("https://app.hubspot.com")
                .trim_end_matches('/')
                .to_string(),
        }
    }
}

/// Page sizes, search behaviour, retries and rate windows. [`Default`] is
/// what HubSpot allows; tests and benchmarks shrink it.
#[derive(Debug, Clone)]
pub struct HubSpotTuning {
    /// List page size (HubSpot's maximum: 100).
    pub page_size: u32,
    /// Deals per request when their history is read (HubSpot's maximum: 50).
    pub history_page_size: u32,
    /// Search page size (HubSpot's maximum: 200).
    pub search_page_size: u32,
    /// Results one search query can page through (HubSpot: 10,000).
    pub search_result_cap: u32,
    /// How far before the cursor incremental searches start (search lags writes).
    pub search_overlap: chrono::Duration,
    /// Retries of each request.
    pub retry: RetryPolicy,
    /// The account's rate windows before headers say otherwise.
    pub budget: Vec<RateWindow>,
    /// The search endpoints' own windows.
    pub search_budget: Vec<RateWindow>,
}

impl Default for HubSpotTuning {
    fn default() -> Self {
        HubSpotTuning {
            page_size: 100,
            history_page_size: 50,
            search_page_size: 100,
            search_result_cap: 10_000,
            search_overlap: chrono::Duration::minutes(5),
            retry: RetryPolicy::default(),
            budget: vec![rate::TEN_SECONDLY, rate::SECONDLY],
            search_budget: vec![rate::SEARCH],
        }
    }
}

#[derive(Clone)]
struct Budgets {
    general: Arc<RateBudget>,
    search: Arc<RateBudget>,
}

/// The HubSpot connector.
#[derive(Clone)]
pub struct HubSpotConnector {
    hosts: HubSpotHosts,
    tuning: HubSpotTuning,
    http: reqwest::Client,
    /// One budget per account (workspace and API host) in this process, shared by its syncs and checks.
    budgets: Arc<Mutex<HashMap<(Uuid, String), Budgets>>>,
}

impl std::fmt::Debug for HubSpotConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotConnector")
            .field("hosts", &self.hosts)
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl Default for HubSpotConnector {
    fn default() -> Self {
        HubSpotConnector::new(HubSpotHosts::default())
    }
}

impl HubSpotConnector {
    /// The connector against `hosts`.
    pub fn new(hosts: HubSpotHosts) -> Self {
        HubSpotConnector {
            hosts,
            tuning: HubSpotTuning::default(),
            http: VendorClient::default_http(),
            budgets: Arc::default(),
        }
    }

    /// With other page sizes, retries or rate windows.
    pub fn with_tuning(mut self, tuning: HubSpotTuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The hosts.
    pub fn hosts(&self) -> &HubSpotHosts {
        &self.hosts
    }

    fn api_base(&self, config: &serde_json::Value) -> String {
        config
            .get("base_url")
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(&self.hosts.api_base_url)
            .trim_end_matches('/')
            .to_string()
    }

    fn budgets(&self, workspace: Uuid, base: &str) -> Budgets {
        let mut all = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        all.entry((workspace, base.to_string()))
            .or_insert_with(|| Budgets {
                general: Arc::new(RateBudget::new(self.tuning.budget.iter().copied())),
                search: Arc::new(RateBudget::new(self.tuning.search_budget.iter().copied())),
            })
            .clone()
    }

    fn api(&self, ctx: &CheckContext) -> Result<HubSpotApi> {
        let base = self.api_base(&ctx.config);
        let budgets = self.budgets(ctx.workspace_id, &base);
        let client = VendorClient::new(self.http.clone(), Arc::new(HubSpotRules), &base)
            .with_auth(BearerAuth::from_context(SOURCE, ctx)?)
            .with_budget(budgets.general)
            .with_retry(self.tuning.retry.clone());
        Ok(HubSpotApi::new(client, budgets.search))
    }
}

/// The health note: API budget left and the granted scopes, e.g.
/// `"API budget: 108 of 110 requests left per 10 s; scopes: oauth, crm.objects.deals.read"`.
fn health_detail(api: &HubSpotApi, scopes: &[String]) -> String {
    let snap = api.client().budget().snapshot();
    let mut parts = Vec::new();
    // The longest window the vendor reported on (HubSpot: the 10-second one).
    if let Some(w) = snap
        .windows
        .iter()
        .filter(|w| w.reported_remaining.is_some())
        .max_by_key(|w| w.limit.interval)
    {
        parts.push(format!(
            "API budget: {} of {} requests left per {} s",
            w.reported_remaining.unwrap_or_default(),
            w.limit.max,
            w.limit.interval.as_secs_f64()
        ));
    }
    if let Some((limit, remaining)) = snap.daily {
        parts.push(format!("daily: {remaining} of {limit} left"));
    }
    crate::vendor::health_detail("HubSpot", parts, scopes)
}

#[async_trait]
impl Connector for HubSpotConnector {
    fn info(&self) -> ConnectorInfo {
        let stream = |name, kinds: &[RecordKind], incremental| StreamInfo {
            name,
            kinds: kinds.to_vec(),
            incremental,
        };
        ConnectorInfo {
            id: SOURCE,
            display_name: "HubSpot",
            auth: AuthKind::OAuth2,
            streams: vec![
                stream(streams::STREAMS[0], &[RecordKind::User], false),
                stream(streams::STREAMS[1], &[RecordKind::Account], true),
                stream(streams::STREAMS[2], &[RecordKind::Contact], true),
                stream(streams::STREAMS[3], &[RecordKind::PipelineStage], false),
                stream(
                    streams::STREAMS[4],
                    &[RecordKind::Deal, RecordKind::DealContact],
                    true,
                ),
            ],
        }
    }

    async fn check(&self, ctx: &CheckContext) -> Result<CheckOutcome> {
        let api = self.api(ctx)?;
        if let Err(e) = api.owners(None, false, 1).await {
            return match e.status() {
                Some(401 | 403) => Ok(CheckOutcome {
                    ok: false,
                    detail: Some(format!(
                        "HubSpot refused the credentials: {}",
                        e.vendor_message().unwrap_or("no reason given")
                    )),
                }),
                _ => Err(e.into()),
            };
        }
        let scopes = match api.token_info().await {
            Ok(info) if !info.scopes.is_empty() => info.scopes,
            Ok(_) => crate::vendor::stored_scopes(ctx),
            Err(e) => {
                tracing::debug!(error = %e, "token info unavailable");
                crate::vendor::stored_scopes(ctx)
            }
        };
        Ok(CheckOutcome {
            ok: true,
            detail: Some(health_detail(&api, &scopes)),
        })
    }

    async fn sync(&self, ctx: &SyncContext, sink: &mut dyn RecordSink) -> Result<()> {
        let api = self.api(&ctx.check)?;
        let mut session = Session {
            api: &api,
            ctx,
            tuning: &self.tuning,
            catalog: Default::default(),
            custom: Vec::new(),
        };
        session.run(sink).await
    }

    fn oauth(&self) -> Option<Arc<dyn pandora_core::oauth::OAuthProvider>> {
        Some(Arc::new(HubSpotOAuth::new(
            self.hosts.clone(),
            self.http.clone(),
        )))
    }
}
