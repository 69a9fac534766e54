//! # pandora-http
//!
//! Pandora's REST API as an [`axum::Router`], to serve on its own (the
//! `pandora` binary does) or to mount into any axum app:
//!
//! ```no_run
//! # async fn demo(pandora: pandora_core::Pandora) -> std::io::Result<()> {
//! let app = axum::Router::new().merge(pandora_http::router(pandora));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The adapter talks only to the [`Pandora`] facade. Every request but the
//! probes, the OpenAPI document and the OAuth callback (which the vendor
//! sends the user's browser to, authenticated by its signed, single-use
//! `state`) needs `Authorization: Bearer <token>`: the
//! admin token may do everything; a workspace API key only touches its own
//! workspace, and any other workspace id answers 404 exactly like a missing
//! one. Every 4xx/5xx body is an RFC 9457 [`Problem`]; every response carries
//! an `x-request-id`. The routes are listed in [`ROUTES`] and described by the
//! OpenAPI document at `/api/openapi.json` ([`ApiDoc`]).

pub mod auth;
pub mod json;
pub mod middleware;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod routes;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use pandora_core::Pandora;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

pub use openapi::ApiDoc;
pub use problem::Problem;

/// Largest request body accepted (1 MiB); larger ones answer 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every route of the API as `(method, path)`, in axum's path syntax.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/workspaces"),
    ("GET", "/api/workspaces"),
    ("GET", "/api/workspaces/{id}"),
    ("PATCH", "/api/workspaces/{id}"),
    ("DELETE", "/api/workspaces/{id}"),
    ("GET", "/api/workspaces/{id}/deals"),
    ("GET", "/api/workspaces/{id}/deals/{dealId}"),
    ("GET", "/api/workspaces/{id}/deals/{dealId}/stage-history"),
    ("GET", "/api/workspaces/{id}/contacts"),
    ("GET", "/api/workspaces/{id}/accounts"),
    ("GET", "/api/workspaces/{id}/users"),
    ("POST", "/api/workspaces/{id}/api-keys"),
    ("GET", "/api/workspaces/{id}/api-keys"),
    ("DELETE", "/api/workspaces/{id}/api-keys/{keyId}"),
    ("GET", "/api/connectors"),
    ("GET", "/api/workspaces/{id}/connectors"),
    (
        "POST",
        "/api/workspaces/{id}/connectors/{connector}/connect",
    ),
    ("POST", "/api/workspaces/{id}/connectors/{connector}/sync"),
    ("GET", "/api/workspaces/{id}/connectors/{connector}/health"),
    (
        "DELETE",
        "/api/workspaces/{id}/connectors/{connector}/disconnect",
    ),
    ("GET", "/api/workspaces/{id}/connectors/{connector}/runs"),
    ("GET", "/api/skills"),
    ("POST", "/api/workspaces/{id}/skills/{skill}/run"),
    ("GET", "/api/workspaces/{id}/skills/{skill}/runs"),
    ("GET", "/api/workspaces/{id}/skills/{skill}/runs/{runId}"),
    ("GET", "/api/workspaces/{id}/skills/{skill}/latest"),
    ("GET", "/api/workspaces/{id}/skills/{skill}/settings"),
    ("PUT", "/api/workspaces/{id}/skills/{skill}/settings"),
    ("GET", "/api/workspaces/{id}/skills/{skill}/schedule"),
    ("PUT", "/api/workspaces/{id}/skills/{skill}/schedule"),
    ("PUT", "/api/workspaces/{id}/quotas"),
    ("GET", "/api/workspaces/{id}/quotas"),
    ("POST", "/api/workspaces/{id}/webhooks"),
    ("GET", "/api/workspaces/{id}/webhooks"),
    ("GET", "/api/workspaces/{id}/webhooks/{webhookId}"),
    ("DELETE", "/api/workspaces/{id}/webhooks/{webhookId}"),
    (
        "GET",
        "/api/workspaces/{id}/webhooks/{webhookId}/deliveries",
    ),
    ("GET", "/api/auth/{connector}/authorize"),
    ("GET", "/api/auth/{connector}/callback"),
];

/// Pandora's REST API over `pandora`, with its middleware (request ids,
/// tracing, body limit, problem bodies, panic recovery).
pub fn router(pandora: Pandora) -> Router {
    with_middleware(
        routes::routes()
            .fallback(middleware::no_such_route)
            .with_state(pandora),
    )
}

/// Wraps `router` in the API's middleware: request ids (`x-request-id`, set
/// when absent and echoed), a tracing span per request, recovery from panics
/// (500 problem), problem bodies for bare error statuses, and the
/// [`MAX_BODY_BYTES`] limit (413).
pub fn with_middleware(router: Router) -> Router {
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(middleware::request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                ),
        )
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(
            middleware::problem_for_bare_errors,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    router.layer(layers)
}
