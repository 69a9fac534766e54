//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the model's `ToSchema` derives, served at `/api/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref};
use utoipa::{IntoParams, Modify, OpenApi};

use crate::problem::{Problem, PROBLEM_JSON};
use crate::routes::{
    self, api_keys, connectors, data, health, oauth, skills, webhooks, workspaces,
};

/// `limit` and `cursor`, taken by every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents parameters parsed by `params::QueryParams`.
pub(crate) struct PageParams {
    /// Rows per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Filters, sort and page of the deal list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents parameters parsed by `params::deal_query`.
pub(crate) struct DealListParams {
    /// Rows per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page (made for the same sort and order).
    cursor: Option<String>,
    /// Sort column: `updated_at` (default), `close_date`, `amount` or `risk`
    /// (the risk score; deals not computed yet come last). A leading `-`
    /// sorts descending (`-risk`: riskiest first). Deals without a value
    /// come last in either direction.
    #[param(pattern = "^-?(updated_at|close_date|amount|risk)$")]
    sort: Option<String>,
    /// Sort direction of an unprefixed `sort`: `asc` or `desc` (default).
    /// `asc` with a `-` sort is a 400.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
    /// Stage id.
    stage: Option<String>,
    /// Pipeline id.
    pipeline: Option<String>,
    /// Pandora id of the owning user.
    owner_id: Option<uuid::Uuid>,
    /// Stage category: `open`, `won` or `lost`.
    #[param(pattern = "^(open|won|lost)$")]
    status: Option<String>,
    /// Close date on or after (YYYY-MM-DD).
    close_date_from: Option<chrono::NaiveDate>,
    /// Close date on or before (YYYY-MM-DD).
    close_date_to: Option<chrono::NaiveDate>,
    /// Changed in Pandora at or after (RFC 3339).
    updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Amount at least (decimal).
    #[param(value_type = Option<String>, example = "1000.00")]
    min_amount: Option<String>,
    /// Amount at most (decimal).
    #[param(value_type = Option<String>, example = "50000.00")]
    max_amount: Option<String>,
    /// Name contains (case-insensitive, at most 200 characters).
    q: Option<String>,
    /// Risk score at least, 0–100 (deals whose computed fields are not
    /// computed yet never match).
    #[param(minimum = 0, maximum = 100)]
    min_risk: Option<u8>,
}

/// Pandora's REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pandora API",
        description = "GTM intelligence: workspaces, their connectors and CRM data, and API keys. \
            Every error is an RFC 9457 problem (application/problem+json)."
    ),
    paths(
        health::healthz,
        health::readyz,
        openapi_json,
        workspaces::create_workspace,
        workspaces::list_workspaces,
        workspaces::get_workspace,
        workspaces::update_workspace,
        workspaces::delete_workspace,
        data::list_deals,
        data::get_deal,
        data::stage_history,
        data::list_contacts,
        data::list_accounts,
        data::list_users,
        api_keys::create_api_key,
        api_keys::list_api_keys,
        api_keys::delete_api_key,
        connectors::list_connectors,
        connectors::list_connections,
        connectors::connect,
        connectors::sync,
        connectors::health,
        connectors::disconnect,
        connectors::list_runs,
        oauth::authorize,
        oauth::callback,
        skills::list_skills,
        skills::run,
        skills::list_runs,
        skills::get_run,
        skills::latest,
        skills::get_settings,
        skills::put_settings,
        skills::get_schedule,
        skills::put_schedule,
        skills::put_quotas,
        skills::list_quotas,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
    ),
    components(schemas(
        Problem,
        routes::WorkspaceList,
        routes::DealList,
        routes::ContactList,
        routes::AccountList,
        routes::UserList,
        routes::SyncRunList,
        connectors::ConnectorList,
        connectors::ConnectionList,
        connectors::ConnectRequest,
        connectors::SyncRequest,
        oauth::AuthorizeResponse,
        oauth::OAuthConnected,
        routes::SkillRunList,
        skills::SkillList,
        skills::QuotasRequest,
        skills::QuotaList,
        webhooks::CreatedWebhookResponse,
        webhooks::WebhookList,
        webhooks::WebhookDeliveryList,
    )),
    modifiers(&ProblemResponses),
    tags(
        (name = "workspaces", description = "Tenants (admin creates; a key sees its own)"),
        (name = "data", description = "A workspace's synced CRM data"),
        (name = "api-keys", description = "Workspace-scoped API keys"),
        (name = "connectors", description = "Connectors and a workspace's connections: connect, sync, health, disconnect, runs"),
        (name = "oauth", description = "OAuth 2.0 flows that connect a workspace to a vendor (authorize with a key; the vendor calls back with a signed state)"),
        (name = "skills", description = "Skills (pipeline waterfall, forecast rollup, …): run them, their results and settings, and quotas"),
        (name = "webhooks", description = "Webhook endpoints that receive alerts (deal.high_risk, deal.single_threaded), signed with a secret shown once; their deliveries"),
        (name = "health", description = "Probes (no authentication)"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer scheme, and makes every error response of every operation
/// an `application/problem+json` [`Problem`] (with 401 and 500 everywhere
/// authentication is required).
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let problem = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut op.responses.responses;
                if secured {
                    responses.entry("401".into()).or_insert_with(|| {
                        utoipa::openapi::Response::new("Missing or invalid bearer token").into()
                    });
                    responses.entry("500".into()).or_insert_with(|| {
                        utoipa::openapi::Response::new("Unexpected error (details in the log)")
                            .into()
                    });
                }
                for (status, response) in responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, utoipa::openapi::RefOr::T(r)) = (is_error, response) {
                        if r.content.is_empty() {
                            r.content.insert(PROBLEM_JSON.into(), problem());
                        }
                    }
                }
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static OpenApiDoc {
    static DOC: OnceLock<OpenApiDoc> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json"))
)]
pub async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON
        .get_or_init(|| document().to_json().unwrap_or_else(|_| "{}".into()))
        .clone();
    ([(header::CONTENT_TYPE, "application/json")], body)
}
