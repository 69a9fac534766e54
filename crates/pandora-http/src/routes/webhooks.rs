//! `/api/workspaces/{id}/webhooks`: a workspace's webhook endpoints
//! (register — the signing secret shown once —, list, read, delete) and
//! their deliveries. See `docs/webhooks.md` for the payload and signature.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pandora_core::facade::CreatedWebhook;
use pandora_core::model::{NewWebhook, Webhook, WebhookDelivery};
use pandora_core::query::Page;
use pandora_core::Pandora;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::WorkspaceScope;
use crate::json::JsonBody;
use crate::params::{page_query, QueryParams};
use crate::problem::Problem;

/// An endpoint just registered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhookResponse {
    /// The endpoint.
    pub webhook: Webhook,
    /// Its signing secret (`whsec_…`). It is shown only in this response:
    /// keep it to verify the `Pandora-Webhook-Signature` of deliveries.
    pub secret: String,
}

impl From<CreatedWebhook> for CreatedWebhookResponse {
    fn from(c: CreatedWebhook) -> Self {
        CreatedWebhookResponse {
            secret: c.secret.expose().to_string(),
            webhook: c.webhook,
        }
    }
}

/// A workspace's webhook endpoints, oldest first (never their secrets).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookList {
    /// The endpoints.
    pub data: Vec<Webhook>,
}

/// A page of an endpoint's deliveries, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDeliveryList {
    /// The rows of this page.
    pub data: Vec<WebhookDelivery>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<WebhookDelivery>> for WebhookDeliveryList {
    fn from(page: Page<WebhookDelivery>) -> Self {
        WebhookDeliveryList {
            data: page.data,
            next_cursor: page.next_cursor.map(|c| c.encode()),
        }
    }
}

/// Registers a webhook endpoint: its URL and the events it wants
/// (`deal.high_risk`, `deal.single_threaded`). The signing secret is in the
/// response, and only there.
#[utoipa::path(
    post,
    path = "/api/workspaces/{id}/webhooks",
    tag = "webhooks",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    request_body(content = NewWebhook, description = "URL, events, optional description"),
    responses(
        (status = 201, description = "Registered; the secret is shown only this once", body = CreatedWebhookResponse),
        (status = 400, description = "Invalid id or malformed JSON"),
        (status = 404, description = "No such workspace, or not the key's"),
        (status = 409, description = "The workspace has the most endpoints allowed (20)"),
        (status = 413, description = "Body over 1 MiB"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "Invalid field, named in `field`: `url` (not an absolute http or https URL), `events` (none) or `events[i]` (unknown), `description`"),
        (status = 503, description = "No credential encryption key is configured (`vault-key-missing`): secrets are never stored in the clear"),
    ),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    body: Result<JsonBody<NewWebhook>, Problem>,
) -> Result<(StatusCode, Json<CreatedWebhookResponse>), Problem> {
    q.finish(&[])?;
    let JsonBody(new) = body?;
    let created = pandora
        .create_webhook(scope.workspace, new)
        .await
        .map_err(Problem::from_body_error)?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Lists the workspace's webhook endpoints (no secrets).
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/webhooks",
    tag = "webhooks",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The endpoints, oldest first", body = WebhookList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<WebhookList>, Problem> {
    q.finish(&[])?;
    let data = pandora.list_webhooks(scope.workspace).await?;
    Ok(Json(WebhookList { data }))
}

/// One webhook endpoint (no secret).
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/webhooks/{webhookId}",
    tag = "webhooks",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("webhookId" = uuid::Uuid, Path, description = "Webhook id"),
    ),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace or webhook"),
    ),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<Webhook>, Problem> {
    let id = scope.uuid_param("webhookId")?;
    q.finish(&[])?;
    Ok(Json(pandora.get_webhook(scope.workspace, id).await?))
}

/// Deletes a webhook endpoint with its delivery history; deliveries not
/// sent yet are cancelled.
#[utoipa::path(
    delete,
    path = "/api/workspaces/{id}/webhooks/{webhookId}",
    tag = "webhooks",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("webhookId" = uuid::Uuid, Path, description = "Webhook id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace or webhook"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<StatusCode, Problem> {
    let id = scope.uuid_param("webhookId")?;
    q.finish(&[])?;
    pandora.delete_webhook(scope.workspace, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, newest first, paginated: each with its
/// payload, status (`pending`, `sending`, `delivered`, `failed`,
/// `cancelled`), attempts, last error and the answer's HTTP status.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/webhooks/{webhookId}/deliveries",
    tag = "webhooks",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("webhookId" = uuid::Uuid, Path, description = "Webhook id"),
        crate::openapi::PageParams,
    ),
    responses(
        (status = 200, description = "A page of deliveries, newest first", body = WebhookDeliveryList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace or webhook"),
    ),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<WebhookDeliveryList>, Problem> {
    let id = scope.uuid_param("webhookId")?;
    let page = page_query(q)?;
    let deliveries = pandora
        .webhook_deliveries(scope.workspace, id, &page)
        .await?;
    Ok(Json(deliveries.into()))
}
