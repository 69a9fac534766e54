//! Liveness and readiness probes (no authentication).

use axum::extract::State;
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

/// Whether the database answers.
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
    pandora.ready().await?;
    Ok(Json(Status { status: "ready" }))
}
