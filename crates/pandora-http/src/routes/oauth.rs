//! OAuth 2.0 flows (`/api/auth/{connector}/…`), e.g. `salesforce` and
//! `hubspot`:
//!
//! * `GET /api/auth/{connector}/authorize?workspaceId=…` (workspace key or
//!   admin token) answers 302 to the vendor's consent page, or
//!   `{"authorize_url": …}` when the client asks for JSON (`Accept:
//!   application/json` or `?format=json`).
//! * `GET /api/auth/{connector}/callback?code=…&state=…` is where the vendor
//!   sends the user's browser back. It carries no bearer token: the signed,
//!   single-use `state` authenticates it. It exchanges the code, seals the
//!   tokens, creates or updates the connection, and redirects to
//!   `PANDORA_OAUTH_SUCCESS_URL` when set (else a small JSON or HTML
//!   confirmation).
//!
//! Neither the code, the state nor any token is ever logged or answered
//! (the request span records the path, never the query string).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use pandora_core::auth::Principal;
use pandora_core::facade::ConnectionSummary;
use pandora_core::{ErrorKind, Pandora};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{workspace_not_found, Caller};
use crate::params::{parse_uuid, QueryParams};
use crate::problem::Problem;

/// Longest vendor error text echoed in a problem, in characters.
const MAX_VENDOR_ERROR: usize = 300;

/// The JSON answer of `authorize`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorizeResponse {
    /// The vendor's consent page: open it in the user's browser.
    pub authorize_url: String,
    /// Until when the flow can be completed (the `state` expires then).
    pub expires_at: DateTime<Utc>,
}

/// The JSON answer of a successful `callback` without a success URL.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OAuthConnected {
    /// Always `true`.
    pub connected: bool,
    /// The connection (never its credentials).
    pub connection: ConnectionSummary,
}

/// `?workspaceId=` and `?format=` of `authorize`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters `authorize` parses by hand.
pub(crate) struct AuthorizeParams {
    /// The workspace to connect.
    #[param(rename = "workspaceId")]
    workspace_id: uuid::Uuid,
    /// `json` for `{"authorize_url": …}` instead of a 302 (as
    /// `Accept: application/json` does).
    #[param(pattern = "^(json|redirect)$")]
    format: Option<String>,
}

/// The query of `callback`, as the vendor sends it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters `callback` parses by hand.
pub(crate) struct CallbackParams {
    /// The authorization code.
    code: Option<String>,
    /// The signed state issued by `authorize`.
    state: Option<String>,
    /// The vendor's error code when the user or the vendor refused (e.g. `access_denied`).
    error: Option<String>,
    /// The vendor's explanation of `error`.
    error_description: Option<String>,
}

/// Whether the client asked for JSON (`Accept: application/json`).
fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// Whether the client is a browser (`Accept: text/html`).
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// A 302 to `location`, never cached.
fn redirect(location: &str) -> Result<Response, Problem> {
    let value = HeaderValue::from_str(location).map_err(|_| {
        tracing::error!("a redirect location is not a valid header value");
        Problem::internal()
    })?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, value),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Text safe inside HTML.
fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Vendor-supplied text, bounded and without control characters.
fn vendor_text(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(MAX_VENDOR_ERROR) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

/// Starts an OAuth 2.0 authorization of the workspace with the vendor: 302
/// to its consent page (with a signed, single-use `state` valid for 10
/// minutes, and a PKCE challenge where the vendor uses PKCE), or the URL as
/// JSON (`Accept: application/json` or `?format=json`).
#[utoipa::path(
    get,
    path = "/api/auth/{connector}/authorize",
    tag = "oauth",
    params(
        ("connector" = String, Path, description = "Connector id, e.g. `hubspot` or `salesforce`"),
        AuthorizeParams,
    ),
    responses(
        (status = 302, description = "To the vendor's consent page (`Location`)"),
        (status = 200, description = "The consent page's URL, when JSON was asked for", body = AuthorizeResponse),
        (status = 400, description = "`workspaceId` missing or not a UUID, or an unknown parameter"),
        (status = 404, description = "No such workspace (or not the key's), unknown connector, or a connector without an OAuth flow"),
        (status = 503, description = "The vendor's OAuth application is not configured (the detail names the variable, e.g. `HUBSPOT_CLIENT_ID`), or no credential encryption key"),
    ),
    security(("bearer" = []))
)]
pub async fn authorize(
    State(pandora): State<Pandora>,
    Caller(principal): Caller,
    Path(connector): Path<String>,
    headers: HeaderMap,
    mut q: QueryParams,
) -> Result<Response, Problem> {
    let workspace = q
        .take("workspaceId")?
        .ok_or_else(|| Problem::invalid_param("workspaceId", "workspaceId is required"))?;
    let workspace = parse_uuid("workspaceId", &workspace)?;
    let json = match q.take("format")?.as_deref() {
        None => accepts_json(&headers),
        Some("json") => true,
        Some("redirect") => false,
        Some(_) => {
            return Err(Problem::invalid_param(
                "format",
                "format must be json or redirect",
            ))
        }
    };
    q.finish(&["workspaceId", "format"])?;
    match principal {
        Principal::Admin => match pandora.get_workspace(workspace).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(workspace_not_found(workspace))
            }
            Err(e) => return Err(e.into()),
        },
        Principal::Workspace { workspace_id, .. } if workspace_id == workspace => {}
        Principal::Workspace { .. } => return Err(workspace_not_found(workspace)),
    }
    let start = pandora.oauth_authorize(workspace, &connector).await?;
    if json {
        let body = AuthorizeResponse {
            authorize_url: start.url,
            expires_at: start.expires_at,
        };
        return Ok((
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(body),
        )
            .into_response());
    }
    redirect(&start.url)
}

/// Finishes an OAuth 2.0 authorization (the vendor sends the user's browser
/// here): checks the signed, single-use `state`, exchanges `code` for
/// tokens, seals them, and creates or updates the workspace's connection.
/// Then 302 to `PANDORA_OAUTH_SUCCESS_URL` (with `connector`, `workspaceId`
/// and `status=connected` added to its query) when set, else a confirmation
/// (HTML for browsers, JSON otherwise). No bearer token: the state
/// authenticates the request.
#[utoipa::path(
    get,
    path = "/api/auth/{connector}/callback",
    tag = "oauth",
    params(
        ("connector" = String, Path, description = "Connector id, e.g. `hubspot` or `salesforce`"),
        CallbackParams,
    ),
    responses(
        (status = 302, description = "Connected; to `PANDORA_OAUTH_SUCCESS_URL`"),
        (status = 200, description = "Connected (JSON; browsers get a small HTML page)", body = OAuthConnected),
        (status = 400, description = "The vendor answered an error (e.g. `access_denied`, in `field` `error`), `code` is missing, or `state` is missing, malformed, tampered with, foreign, expired or already used; nothing changed"),
        (status = 404, description = "Unknown connector, or one without an OAuth flow"),
        (status = 422, description = "The vendor refused the code"),
        (status = 503, description = "The vendor's OAuth application is not configured (the detail names the variable), no credential encryption key, or the vendor did not answer"),
    )
)]
pub async fn callback(
    State(pandora): State<Pandora>,
    Path(connector): Path<String>,
    headers: HeaderMap,
    mut q: QueryParams,
) -> Result<Response, Problem> {
    // Vendors add parameters of their own (e.g. Salesforce's
    // `sfdc_community_url`): unknown ones are ignored here.
    if let Some(error) = q.take("error").ok().flatten() {
        let description = q
            .take("error_description")
            .ok()
            .flatten()
            .map(|d| format!(": {}", vendor_text(&d)))
            .unwrap_or_default();
        tracing::info!(connector = %connector, error = %vendor_text(&error), "OAuth authorization refused by the vendor or the user");
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "oauth-denied",
            "Authorization refused",
            format!(
                "{connector} did not authorize the connection ({}){description}",
                vendor_text(&error)
            ),
        )
        .with_field("error"));
    }
    let state = q
        .take("state")?
        .ok_or_else(|| Problem::invalid_param("state", "state is required"))?;
    let code = q
        .take("code")?
        .ok_or_else(|| Problem::invalid_param("code", "code is required"))?;
    let connection = pandora.oauth_callback(&connector, &code, &state).await?;
    let workspace = connection.workspace_id;
    if let Some(url) = pandora.oauth_success_url() {
        let separator = if url.contains('?') { '&' } else { '?' };
        let location = format!(
            "{url}{separator}connector={connector}&workspaceId={workspace}&status=connected"
        );
        return redirect(&location);
    }
    if accepts_html(&headers) && !accepts_json(&headers) {
        let name = html_escape(&connector);
        let page = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Connected to {name}</title></head>\
             <body><h1>Connected to {name}</h1>\
             <p>Workspace <code>{workspace}</code> is now connected to {name}. \
             You can close this window.</p></body></html>\n"
        );
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            page,
        )
            .into_response());
    }
    let credentials = Pandora::credential_state(&connection).to_string();
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(OAuthConnected {
            connected: true,
            connection: ConnectionSummary {
                connection,
                credentials,
            },
        }),
    )
        .into_response())
}
