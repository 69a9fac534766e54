//! `/api/workspaces` and `/api/workspaces/{id}`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pandora_core::auth::Principal;
use pandora_core::model::{ApiKey, NewWorkspace, Workspace, WorkspacePatch};
use pandora_core::query::{Page, Sort};
use pandora_core::{CreatedWorkspace, ErrorKind, Pandora};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{workspace_not_found, Caller, WorkspaceScope};
use crate::json::JsonBody;
use crate::params::{QueryParams, PAGE_PARAMS};
use crate::problem::Problem;
use crate::routes::WorkspaceList;

/// A workspace just created, with its first API key (shown only this once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWorkspaceResponse {
    /// The workspace.
    pub workspace: Workspace,
    /// The workspace's first API key. It is shown only in this response.
    #[schema(example = "pk_3q2+7w…")]
    pub api_key: String,
    /// The key's record (its id revokes it).
    pub key: ApiKey,
}

impl From<CreatedWorkspace> for CreatedWorkspaceResponse {
    fn from(c: CreatedWorkspace) -> Self {
        CreatedWorkspaceResponse {
            workspace: c.workspace,
            api_key: c.api_key.expose().to_string(),
            key: c.key,
        }
    }
}

/// Maps a workspace-level not-found to the one body every caller sees.
fn scoped(id: uuid::Uuid) -> impl Fn(pandora_core::Error) -> Problem {
    move |e| {
        if e.kind() == ErrorKind::NotFound {
            workspace_not_found(id)
        } else {
            Problem::from_body_error(e)
        }
    }
}

/// Creates a workspace and its first API key (admin only).
#[utoipa::path(
    post,
    path = "/api/workspaces",
    tag = "workspaces",
    request_body = NewWorkspace,
    responses(
        (status = 201, description = "Created; the API key is shown only this once", body = CreatedWorkspaceResponse),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "Not the admin token"),
        (status = 413, description = "Body over 1 MiB"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "Invalid field"),
    ),
    security(("bearer" = []))
)]
pub async fn create_workspace(
    State(pandora): State<Pandora>,
    caller: Caller,
    JsonBody(new): JsonBody<NewWorkspace>,
) -> Result<Response, Problem> {
    caller.require_admin("create workspaces")?;
    let created = pandora
        .create_workspace(new)
        .await
        .map_err(Problem::from_body_error)?;
    let location = format!("/api/workspaces/{}", created.workspace.id);
    let body = CreatedWorkspaceResponse::from(created);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// Lists workspaces: all of them for the admin, only its own for a workspace key.
#[utoipa::path(
    get,
    path = "/api/workspaces",
    tag = "workspaces",
    params(crate::openapi::PageParams),
    responses(
        (status = 200, description = "A page of workspaces, most recently changed first", body = WorkspaceList),
        (status = 400, description = "Invalid query parameter"),
    ),
    security(("bearer" = []))
)]
pub async fn list_workspaces(
    State(pandora): State<Pandora>,
    Caller(principal): Caller,
    mut q: QueryParams,
) -> Result<Json<WorkspaceList>, Problem> {
    let page = q.page(Sort::default())?;
    q.finish(PAGE_PARAMS)?;
    let page = match principal {
        Principal::Admin => pandora.list_workspaces(&page).await?,
        Principal::Workspace { workspace_id, .. } => {
            // A one-row list: a cursor can only point past its end.
            let data = if page.after.is_some() {
                Vec::new()
            } else {
                match pandora.get_workspace(workspace_id).await {
                    Ok(w) => vec![w],
                    Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(e.into()),
                }
            };
            Page {
                data,
                next_cursor: None,
            }
        }
    };
    Ok(Json(page.into()))
}

/// One workspace.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace", body = Workspace),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn get_workspace(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<Workspace>, Problem> {
    q.finish(&[])?;
    let ws = pandora
        .get_workspace(scope.workspace)
        .await
        .map_err(scoped(scope.workspace))?;
    Ok(Json(ws))
}

/// Renames a workspace or replaces its settings.
#[utoipa::path(
    patch,
    path = "/api/workspaces/{id}",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    request_body = WorkspacePatch,
    responses(
        (status = 200, description = "The updated workspace", body = Workspace),
        (status = 400, description = "Invalid id or malformed JSON"),
        (status = 404, description = "No such workspace, or not the key's"),
        (status = 413, description = "Body over 1 MiB"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "Invalid field"),
    ),
    security(("bearer" = []))
)]
pub async fn update_workspace(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    JsonBody(patch): JsonBody<WorkspacePatch>,
) -> Result<Json<Workspace>, Problem> {
    q.finish(&[])?;
    let ws = pandora
        .update_workspace(scope.workspace, patch)
        .await
        .map_err(scoped(scope.workspace))?;
    Ok(Json(ws))
}

/// Deletes a workspace and all of its data, API keys included.
#[utoipa::path(
    delete,
    path = "/api/workspaces/{id}",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_workspace(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<StatusCode, Problem> {
    q.finish(&[])?;
    pandora
        .delete_workspace(scope.workspace)
        .await
        .map_err(scoped(scope.workspace))?;
    Ok(StatusCode::NO_CONTENT)
}
