//! The API's routes, one module per resource, and the response types they share.

pub mod api_keys;
pub mod connectors;
pub mod data;
pub mod health;
pub mod oauth;
pub mod skills;
pub mod webhooks;
pub mod workspaces;

use axum::routing::{delete, get, post};
use axum::Router;
use pandora_core::query::Page;
use pandora_core::Pandora;
use serde::Serialize;
use utoipa::ToSchema;

/// Every route of the API, without middleware.
pub(crate) fn routes() -> Router<Pandora> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/openapi.json", get(crate::openapi::openapi_json))
        .route(
            "/api/workspaces",
            get(workspaces::list_workspaces).post(workspaces::create_workspace),
        )
        .route(
            "/api/workspaces/{id}",
            get(workspaces::get_workspace)
                .patch(workspaces::update_workspace)
                .delete(workspaces::delete_workspace),
        )
        .route("/api/workspaces/{id}/deals", get(data::list_deals))
        .route("/api/workspaces/{id}/deals/{dealId}", get(data::get_deal))
        .route(
            "/api/workspaces/{id}/deals/{dealId}/stage-history",
            get(data::stage_history),
        )
        .route("/api/workspaces/{id}/contacts", get(data::list_contacts))
        .route("/api/workspaces/{id}/accounts", get(data::list_accounts))
        .route("/api/workspaces/{id}/users", get(data::list_users))
        .route(
            "/api/workspaces/{id}/api-keys",
            get(api_keys::list_api_keys).post(api_keys::create_api_key),
        )
        .route(
            "/api/workspaces/{id}/api-keys/{keyId}",
            delete(api_keys::delete_api_key),
        )
        .route("/api/connectors", get(connectors::list_connectors))
        .route(
            "/api/workspaces/{id}/connectors",
            get(connectors::list_connections),
        )
        .route(
            "/api/workspaces/{id}/connectors/{connector}/connect",
            post(connectors::connect),
        )
        .route(
            "/api/workspaces/{id}/connectors/{connector}/sync",
            post(connectors::sync),
        )
        .route(
            "/api/workspaces/{id}/connectors/{connector}/health",
            get(connectors::health),
        )
        .route(
            "/api/workspaces/{id}/connectors/{connector}/disconnect",
            delete(connectors::disconnect),
        )
        .route(
            "/api/workspaces/{id}/connectors/{connector}/runs",
            get(connectors::list_runs),
        )
        .route("/api/auth/{connector}/authorize", get(oauth::authorize))
        .route("/api/auth/{connector}/callback", get(oauth::callback))
        .route("/api/skills", get(skills::list_skills))
        .route("/api/workspaces/{id}/skills/{skill}/run", post(skills::run))
        .route(
            "/api/workspaces/{id}/skills/{skill}/runs",
            get(skills::list_runs),
        )
        .route(
            "/api/workspaces/{id}/skills/{skill}/runs/{runId}",
            get(skills::get_run),
        )
        .route(
            "/api/workspaces/{id}/skills/{skill}/latest",
            get(skills::latest),
        )
        .route(
            "/api/workspaces/{id}/skills/{skill}/settings",
            get(skills::get_settings).put(skills::put_settings),
        )
        .route(
            "/api/workspaces/{id}/skills/{skill}/schedule",
            get(skills::get_schedule).put(skills::put_schedule),
        )
        .route(
            "/api/workspaces/{id}/quotas",
            get(skills::list_quotas).put(skills::put_quotas),
        )
        .route(
            "/api/workspaces/{id}/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/api/workspaces/{id}/webhooks/{webhookId}",
            get(webhooks::get_webhook).delete(webhooks::delete_webhook),
        )
        .route(
            "/api/workspaces/{id}/webhooks/{webhookId}/deliveries",
            get(webhooks::list_deliveries),
        )
}

/// Defines a page-of-rows response type for `$item`.
macro_rules! list_type {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, ToSchema)]
        pub struct $name {
            /// The rows of this page.
            pub data: Vec<$item>,
            /// Pass as `cursor` to read the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }

        impl From<Page<$item>> for $name {
            fn from(page: Page<$item>) -> Self {
                $name {
                    data: page.data,
                    next_cursor: page.next_cursor.map(|c| c.encode()),
                }
            }
        }
    };
}

list_type!(
    /// A page of workspaces.
    WorkspaceList,
    pandora_core::model::Workspace
);
list_type!(
    /// A page of deals.
    DealList,
    pandora_core::model::Deal
);
list_type!(
    /// A page of contacts.
    ContactList,
    pandora_core::model::Contact
);
list_type!(
    /// A page of accounts.
    AccountList,
    pandora_core::model::Account
);
list_type!(
    /// A page of users (reps), with manager and team.
    UserList,
    pandora_core::model::User
);
list_type!(
    /// A page of a connection's sync runs, newest first.
    SyncRunList,
    pandora_core::model::SyncRun
);
list_type!(
    /// A page of a skill's runs, newest first.
    SkillRunList,
    pandora_core::model::SkillRun
);
