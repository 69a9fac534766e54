//! Connectors: the deployment's registry (`/api/connectors`) and a
//! workspace's connections (`/api/workspaces/{id}/connectors/…`): connect
//! with checked credentials, enqueue a sync, health, disconnect, run history.
//!
//! Bodies here answer 400 for every field that is missing, empty, unknown or
//! of the wrong shape, naming it: 422 is kept for credentials the vendor
//! rejected.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pandora_core::connector::ConnectorInfo;
use pandora_core::facade::{Connected, ConnectionHealth, ConnectionSummary, Disconnected};
use pandora_core::model::{SyncMode, SyncRun};
use pandora_core::vault::Credentials;
use pandora_core::{Error, ErrorKind, Pandora};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::{Caller, WorkspaceScope};
use crate::json::OptionalJsonBody;
use crate::params::{page_query, QueryParams};
use crate::problem::Problem;
use crate::routes::SyncRunList;

/// Every connector this deployment offers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorList {
    /// The connectors, by id.
    pub data: Vec<ConnectorInfo>,
}

/// A workspace's connections (at most one per connector).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectionList {
    /// The connections, with the state of their credentials.
    pub data: Vec<ConnectionSummary>,
}

/// The body of `connect`: the credential fields the connector's auth kind
/// takes, at the top level, plus an optional `config`.
#[derive(ToSchema)]
#[schema(example = json!({"api_key": "…", "config": {"region": "eu"}}))]
#[allow(dead_code)] // Documents the body that `connect` parses by hand.
pub(crate) struct ConnectRequest {
    /// `api_key` connectors: the key.
    api_key: Option<String>,
    /// `basic` connectors: the user name.
    username: Option<String>,
    /// `basic` connectors: the password.
    password: Option<String>,
    /// `oauth2` connectors: the access token.
    access_token: Option<String>,
    /// `oauth2` connectors: the refresh token (optional).
    refresh_token: Option<String>,
    /// `oauth2` connectors: when the access token expires (optional).
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `oauth2` connectors: the vendor's API host, e.g. Salesforce's (optional).
    instance_url: Option<String>,
    /// `oauth2` connectors: the scopes granted (optional).
    scopes: Option<Vec<String>>,
    /// Connector configuration (non-secret). Left out: the existing
    /// connection's configuration is kept (`{}` for a new one).
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// The (optional) body of `sync`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// `full` or `incremental` (default). A connection's first run is
    /// always full.
    #[serde(default)]
    pub mode: Option<SyncMode>,
}

/// `?purge=` of `disconnect`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameter parsed by `disconnect`.
pub(crate) struct DisconnectParams {
    /// `true`: also delete every record the connection synced, and the
    /// connection itself with its run history. Default `false`.
    purge: Option<bool>,
}

/// A body problem with the status these routes use: 400 (not 422).
fn bad_request(p: Problem) -> Problem {
    if p.status == StatusCode::UNPROCESSABLE_ENTITY.as_u16() {
        Problem {
            status: StatusCode::BAD_REQUEST.as_u16(),
            ..p
        }
    } else {
        p
    }
}

/// Maps an error caused by a request body of these routes: invalid input is
/// a 400 naming the field.
fn body_problem(err: Error) -> Problem {
    match err {
        Error::InvalidInput { .. } => bad_request(Problem::from_body_error(err)),
        other => Problem::from(other),
    }
}

/// Maps a not-found for `connector` to the registry's answer (listing the
/// known connectors) when the deployment does not offer it.
fn lists_known<'a>(pandora: &'a Pandora, connector: &'a str) -> impl Fn(Error) -> Problem + 'a {
    move |e| {
        if e.kind() == ErrorKind::NotFound {
            if let Err(unknown) = pandora.connectors().get(connector) {
                return Problem::from(unknown);
            }
        }
        Problem::from(e)
    }
}

/// Lists every connector of this deployment: its id, display name, auth
/// kind (which `connect` body it takes) and streams.
#[utoipa::path(
    get,
    path = "/api/connectors",
    tag = "connectors",
    responses(
        (status = 200, description = "Every connector, by id", body = ConnectorList),
        (status = 400, description = "Unknown query parameter"),
    ),
    security(("bearer" = []))
)]
pub async fn list_connectors(
    State(pandora): State<Pandora>,
    _caller: Caller,
    q: QueryParams,
) -> Result<Json<ConnectorList>, Problem> {
    q.finish(&[])?;
    Ok(Json(ConnectorList {
        data: pandora.connectors().infos(),
    }))
}

/// Lists the workspace's connections, with their status and the state of
/// their credentials.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/connectors",
    tag = "connectors",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace's connections", body = ConnectionList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or not the key's"),
    ),
    security(("bearer" = []))
)]
pub async fn list_connections(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<ConnectionList>, Problem> {
    q.finish(&[])?;
    let data = pandora.list_connections(scope.workspace).await?;
    Ok(Json(ConnectionList { data }))
}

/// Connects the workspace to a connector: the connector checks the
/// credentials against the vendor first; only accepted credentials are
/// sealed and stored. Connecting again replaces the credentials (and the
/// config, when given) and makes the connection active.
#[utoipa::path(
    post,
    path = "/api/workspaces/{id}/connectors/{connector}/connect",
    tag = "connectors",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("connector" = String, Path, description = "Connector id, e.g. `sample`"),
    ),
    request_body(content = Option<ConnectRequest>, description = "Credentials by the connector's auth kind, and `config`; optional for a connector that takes no credentials"),
    responses(
        (status = 201, description = "Connected (a new connection)", body = Connected),
        (status = 200, description = "Reconnected (new credentials for an existing connection)", body = Connected),
        (status = 400, description = "Malformed JSON, or a credential or config field missing, empty or unknown (named in `field`)"),
        (status = 404, description = "No such workspace, or unknown connector (the detail lists the known ones)"),
        (status = 413, description = "Body over 1 MiB"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "The vendor rejected the credentials (its reason in the detail); nothing was stored"),
        (status = 503, description = "No credential encryption key configured, or the vendor did not answer in time"),
    ),
    security(("bearer" = []))
)]
pub async fn connect(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    body: Result<OptionalJsonBody<Map<String, Value>>, Problem>,
) -> Result<Response, Problem> {
    let connector = scope.param("connector")?;
    q.finish(&[])?;
    let OptionalJsonBody(mut fields) = body.map_err(bad_request)?;
    let config = match fields.remove("config") {
        None | Some(Value::Null) => None,
        Some(config @ Value::Object(_)) => Some(config),
        Some(_) => {
            return Err(body_problem(Error::invalid(
                "config",
                "must be a JSON object",
            )))
        }
    };
    let credentials = Credentials::from_json(&Value::Object(fields));
    let connected = pandora
        .connect_checked(scope.workspace, connector, credentials, config)
        .await
        .map_err(body_problem)?;
    let status = if connected.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!(
        "/api/workspaces/{}/connectors/{connector}/health",
        scope.workspace
    );
    Ok((status, [(header::LOCATION, location)], Json(connected)).into_response())
}

/// Enqueues a sync of the connection for a worker; answers at once with the
/// queued run. At most one run per connection is queued or running.
#[utoipa::path(
    post,
    path = "/api/workspaces/{id}/connectors/{connector}/sync",
    tag = "connectors",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("connector" = String, Path, description = "Connector id"),
    ),
    request_body(content = Option<SyncRequest>, description = "Optional; `mode` defaults to `incremental` (a first run is always full)"),
    responses(
        (status = 202, description = "Queued; the run (its `id` follows it in the run history)", body = SyncRun),
        (status = 400, description = "Malformed JSON or an invalid field such as `mode`"),
        (status = 404, description = "No such workspace or connection, or unknown connector"),
        (status = 409, description = "A run is already queued or running (its id in `active_run_id`), or the connection is disconnected or needs re-authorization"),
        (status = 413, description = "Body over 1 MiB"),
        (status = 415, description = "Not application/json"),
    ),
    security(("bearer" = []))
)]
pub async fn sync(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    body: Result<OptionalJsonBody<SyncRequest>, Problem>,
) -> Result<(StatusCode, Json<SyncRun>), Problem> {
    let connector = scope.param("connector")?;
    q.finish(&[])?;
    let OptionalJsonBody(request) = body.map_err(bad_request)?;
    let mode = request.mode.unwrap_or(SyncMode::Incremental);
    let run = pandora
        .enqueue_sync(scope.workspace, connector, mode)
        .await
        .map_err(body_problem)?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// The connection's health: status, credential state, last successful sync,
/// last error, active and latest finished runs, and the connector's live
/// check (whose failure is reported in the body, not as an error status).
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/connectors/{connector}/health",
    tag = "connectors",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("connector" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 200, description = "The connection's health", body = ConnectionHealth),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace or connection, or unknown connector"),
    ),
    security(("bearer" = []))
)]
pub async fn health(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<ConnectionHealth>, Problem> {
    let connector = scope.param("connector")?;
    q.finish(&[])?;
    let health = pandora
        .connection_health(scope.workspace, connector)
        .await?;
    Ok(Json(health))
}

/// Disconnects: cancels the connection's queued and running jobs and removes
/// its credentials (the connection stays, `disconnected`, with its run
/// history). `?purge=true` also deletes every record it synced and the
/// connection itself.
#[utoipa::path(
    delete,
    path = "/api/workspaces/{id}/connectors/{connector}/disconnect",
    tag = "connectors",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("connector" = String, Path, description = "Connector id"),
        DisconnectParams,
    ),
    responses(
        (status = 200, description = "Disconnected", body = Disconnected),
        (status = 400, description = "Invalid id, or `purge` not `true` or `false`"),
        (status = 404, description = "No such workspace or connection, or unknown connector"),
    ),
    security(("bearer" = []))
)]
pub async fn disconnect(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    mut q: QueryParams,
) -> Result<Json<Disconnected>, Problem> {
    let connector = scope.param("connector")?;
    let purge = q
        .take_parsed("purge", "true or false", |s| match s {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })?
        .unwrap_or(false);
    q.finish(&["purge"])?;
    let done = pandora
        .disconnect(scope.workspace, connector, purge)
        .await
        .map_err(lists_known(&pandora, connector))?;
    Ok(Json(done))
}

/// The connection's sync runs, newest first, paginated.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/connectors/{connector}/runs",
    tag = "connectors",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("connector" = String, Path, description = "Connector id"),
        crate::openapi::PageParams,
    ),
    responses(
        (status = 200, description = "A page of runs, newest first", body = SyncRunList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace or connection, or unknown connector"),
    ),
    security(("bearer" = []))
)]
pub async fn list_runs(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<SyncRunList>, Problem> {
    let connector = scope.param("connector")?;
    let page = page_query(q)?;
    let runs = pandora
        .sync_runs(scope.workspace, connector, &page)
        .await
        .map_err(lists_known(&pandora, connector))?;
    Ok(Json(runs.into()))
}
