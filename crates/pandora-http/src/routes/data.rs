//! A workspace's synced data: deals (with stage history), contacts, accounts, users.

use axum::extract::State;
use axum::Json;
use pandora_core::model::{Deal, DealChange};
use pandora_core::Pandora;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::WorkspaceScope;
use crate::params::{deal_query, page_query, QueryParams};
use crate::problem::Problem;
use crate::routes::{AccountList, ContactList, DealList, UserList};

/// A deal's stage changes, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageHistory {
    /// The changes of the deal's stage, oldest first.
    pub data: Vec<DealChange>,
}

/// Lists a workspace's deals, filtered and sorted.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/deals",
    tag = "data",
    params(("id" = uuid::Uuid, Path, description = "Workspace id"), crate::openapi::DealListParams),
    responses(
        (status = 200, description = "A page of deals", body = DealList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn list_deals(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<DealList>, Problem> {
    let (filter, page) = deal_query(q)?;
    let page = pandora.list_deals(scope.workspace, &filter, &page).await?;
    Ok(Json(page.into()))
}

/// One deal.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/deals/{dealId}",
    tag = "data",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("dealId" = uuid::Uuid, Path, description = "Deal id"),
    ),
    responses(
        (status = 200, description = "The deal", body = Deal),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No such workspace or deal"),
    ),
    security(("bearer" = []))
)]
pub async fn get_deal(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<Deal>, Problem> {
    let deal_id = scope.uuid_param("dealId")?;
    q.finish(&[])?;
    Ok(Json(pandora.get_deal(scope.workspace, deal_id).await?))
}

/// A deal's stage history, oldest first.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/deals/{dealId}/stage-history",
    tag = "data",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("dealId" = uuid::Uuid, Path, description = "Deal id"),
    ),
    responses(
        (status = 200, description = "The deal's stage changes", body = StageHistory),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No such workspace or deal"),
    ),
    security(("bearer" = []))
)]
pub async fn stage_history(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<StageHistory>, Problem> {
    let deal_id = scope.uuid_param("dealId")?;
    q.finish(&[])?;
    // The deal must exist in this workspace, whatever the store answers for
    // the history of an unknown one.
    pandora.get_deal(scope.workspace, deal_id).await?;
    let data = pandora.stage_history(scope.workspace, deal_id).await?;
    Ok(Json(StageHistory { data }))
}

/// Lists a workspace's contacts, most recently changed first.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/contacts",
    tag = "data",
    params(("id" = uuid::Uuid, Path, description = "Workspace id"), crate::openapi::PageParams),
    responses(
        (status = 200, description = "A page of contacts", body = ContactList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn list_contacts(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<ContactList>, Problem> {
    let page = page_query(q)?;
    Ok(Json(
        pandora.list_contacts(scope.workspace, &page).await?.into(),
    ))
}

/// Lists a workspace's accounts, most recently changed first.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/accounts",
    tag = "data",
    params(("id" = uuid::Uuid, Path, description = "Workspace id"), crate::openapi::PageParams),
    responses(
        (status = 200, description = "A page of accounts", body = AccountList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn list_accounts(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<AccountList>, Problem> {
    let page = page_query(q)?;
    Ok(Json(
        pandora.list_accounts(scope.workspace, &page).await?.into(),
    ))
}

/// Lists a workspace's users (reps) with manager and team, most recently changed first.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/users",
    tag = "data",
    params(("id" = uuid::Uuid, Path, description = "Workspace id"), crate::openapi::PageParams),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<UserList>, Problem> {
    let page = page_query(q)?;
    Ok(Json(
        pandora.list_users(scope.workspace, &page).await?.into(),
    ))
}
