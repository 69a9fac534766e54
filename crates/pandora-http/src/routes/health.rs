//! Liveness and readiness probes (no authentication).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pandora_core::Pandora;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::Problem;

/// Body of a successful probe.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Status {
    /// `"ok"` (process alive) or `"ready"` (database reachable).
    pub status: &'static str,
}

/// Whether the process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = Status))
)]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// How long `/readyz` waits for the database before answering 503.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the database answers (within [`READY_TIMEOUT`]).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The database answers", body = Status),
        (status = 503, description = "The database is unreachable")
    )
)]
pub async fn readyz(State(pandora): State<Pandora>) -> Result<Json<Status>, Problem> {
    match tokio::time::timeout(READY_TIMEOUT, pandora.ready()).await {
        Ok(result) => result?,
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer in time");
            return Err(Problem::for_status(StatusCode::SERVICE_UNAVAILABLE));
        }
    }
    Ok(Json(Status { status: "ready" }))
}
