//! `/api/workspaces/{id}/api-keys`: create (shown once), list (no secrets), revoke.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pandora_core::model::{ApiKey, NewApiKey};
use pandora_core::{CreatedApiKey, Pandora};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::WorkspaceScope;
use crate::json::OptionalJsonBody;
use crate::params::QueryParams;
use crate::problem::Problem;

/// An API key just created.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    /// The key itself. It is shown only in this response.
    pub api_key: String,
    /// The key's record (its id revokes it).
    pub key: ApiKey,
}

impl From<CreatedApiKey> for CreatedApiKeyResponse {
    fn from(c: CreatedApiKey) -> Self {
        CreatedApiKeyResponse {
            api_key: c.api_key.expose().to_string(),
            key: c.key,
        }
    }
}

/// A workspace's API keys, oldest first (never the keys themselves).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys' records.
    pub data: Vec<ApiKey>,
}

/// Creates an API key for the workspace; the body is optional.
#[utoipa::path(
    post,
    path = "/api/workspaces/{id}/api-keys",
    tag = "api-keys",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    request_body(content = Option<NewApiKey>, description = "Optional; the name defaults to \"default\""),
    responses(
        (status = 201, description = "Created; the key is shown only this once", body = CreatedApiKeyResponse),
        (status = 400, description = "Invalid id or malformed JSON"),
        (status = 404, description = "No such workspace, or not the key's"),
        (status = 413, description = "Body over 1 MiB"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "Invalid field"),
    ),
    security(("bearer" = []))
)]
pub async fn create_api_key(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    OptionalJsonBody(new): OptionalJsonBody<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKeyResponse>), Problem> {
    q.finish(&[])?;
    let created = pandora
        .create_api_key(scope.workspace, new)
        .await
        .map_err(Problem::from_body_error)?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Lists the workspace's API keys (ids, names and prefixes; no secrets).
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/api-keys",
    tag = "api-keys",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace's keys", body = ApiKeyList),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn list_api_keys(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<ApiKeyList>, Problem> {
    q.finish(&[])?;
    let data = pandora.list_api_keys(scope.workspace).await?;
    Ok(Json(ApiKeyList { data }))
}

/// Revokes an API key of the workspace.
#[utoipa::path(
    delete,
    path = "/api/workspaces/{id}/api-keys/{keyId}",
    tag = "api-keys",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("keyId" = uuid::Uuid, Path, description = "API key id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No such workspace or key"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_api_key(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<StatusCode, Problem> {
    let key_id = scope.uuid_param("keyId")?;
    q.finish(&[])?;
    pandora.delete_api_key(scope.workspace, key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
