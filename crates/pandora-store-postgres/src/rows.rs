//! Decoding result rows into model types.
//!
//! Records are read from `data` (the JSON the connector delivered) plus the
//! metadata columns; the SQL that feeds these functions selects the columns
//! under the names used here.

use pandora_core::model::{
    Account, ApiKey, ChangeOrigin, Connection, ConnectionStatus, Contact, Deal, DealChange,
    DealField, PipelineStage, RunStatus, StoredCredentials, SyncMode, SyncRun, User, Workspace,
};
use pandora_core::Result;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

use crate::errors::{corrupt, DbResultExt};

/// Columns every record query selects, prefixed by the table alias `r`.
pub(crate) const RECORD_COLUMNS: &str =
    "r.id, r.workspace_id, r.source, r.data, r.created_at, r.updated_at, r.deleted_at";

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).db()
}

fn data<T: DeserializeOwned>(row: &PgRow, what: &str) -> Result<T> {
    row.try_get::<Json<T>, _>("data")
        .map(|Json(v)| v)
        .map_err(|e| corrupt(what, e))
}

/// The common fields of a stored record.
struct Meta {
    id: uuid::Uuid,
    workspace_id: uuid::Uuid,
    source: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn meta(row: &PgRow) -> Result<Meta> {
    Ok(Meta {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        source: get(row, "source")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        deleted_at: get(row, "deleted_at")?,
    })
}

/// A deal row (with `owner_id`, `account_id`, `computed`).
pub(crate) fn deal(row: &PgRow) -> Result<Deal> {
    let m = meta(row)?;
    Ok(Deal {
        id: m.id,
        workspace_id: m.workspace_id,
        source: m.source,
        fields: data(row, "deal")?,
        owner_id: get(row, "owner_id")?,
        account_id: get(row, "account_id")?,
        computed: row
            .try_get::<Option<Json<_>>, _>("computed")
            .map(|c| c.map(|Json(v)| v))
            .map_err(|e| corrupt("deal computed fields", e))?,
        created_at: m.created_at,
        updated_at: m.updated_at,
        deleted_at: m.deleted_at,
    })
}

/// A user row (with `manager_id`).
pub(crate) fn user(row: &PgRow) -> Result<User> {
    let m = meta(row)?;
    Ok(User {
        id: m.id,
        workspace_id: m.workspace_id,
        source: m.source,
        fields: data(row, "user")?,
        manager_id: get(row, "manager_id")?,
        created_at: m.created_at,
        updated_at: m.updated_at,
        deleted_at: m.deleted_at,
    })
}

/// A contact row (with `account_id`).
pub(crate) fn contact(row: &PgRow) -> Result<Contact> {
    let m = meta(row)?;
    Ok(Contact {
        id: m.id,
        workspace_id: m.workspace_id,
        source: m.source,
        fields: data(row, "contact")?,
        account_id: get(row, "account_id")?,
        created_at: m.created_at,
        updated_at: m.updated_at,
        deleted_at: m.deleted_at,
    })
}

/// An account row.
pub(crate) fn account(row: &PgRow) -> Result<Account> {
    let m = meta(row)?;
    Ok(Account {
        id: m.id,
        workspace_id: m.workspace_id,
        source: m.source,
        fields: data(row, "account")?,
        created_at: m.created_at,
        updated_at: m.updated_at,
        deleted_at: m.deleted_at,
    })
}

/// A pipeline stage row.
pub(crate) fn stage(row: &PgRow) -> Result<PipelineStage> {
    Ok(PipelineStage {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        source: get(row, "source")?,
        fields: data(row, "pipeline stage")?,
    })
}

/// A `deal_changes` row.
pub(crate) fn deal_change(row: &PgRow) -> Result<DealChange> {
    let field: String = get(row, "field")?;
    let origin: String = get(row, "origin")?;
    Ok(DealChange {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        deal_id: get(row, "deal_id")?,
        field: DealField::parse(&field)
            .ok_or_else(|| corrupt("deal change", format!("unknown field {field:?}")))?,
        old_value: get(row, "old_value")?,
        new_value: get(row, "new_value")?,
        changed_at: get(row, "changed_at")?,
        origin: ChangeOrigin::parse(&origin)
            .ok_or_else(|| corrupt("deal change", format!("unknown origin {origin:?}")))?,
    })
}

/// A `workspaces` row.
pub(crate) fn workspace(row: &PgRow) -> Result<Workspace> {
    Ok(Workspace {
        id: get(row, "id")?,
        name: get(row, "name")?,
        settings: get(row, "settings")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// An `api_keys` row.
pub(crate) fn api_key(row: &PgRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        hash: get(row, "hash")?,
        created_at: get(row, "created_at")?,
    })
}

/// A `connections` row.
pub(crate) fn connection(row: &PgRow) -> Result<Connection> {
    let status: String = get(row, "status")?;
    let credentials: Option<String> = get(row, "credentials")?;
    Ok(Connection {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        connector: get(row, "connector")?,
        status: ConnectionStatus::parse(&status)
            .ok_or_else(|| corrupt("connection", format!("unknown status {status:?}")))?,
        credentials: credentials.map(StoredCredentials),
        config: get(row, "config")?,
        last_sync_at: get(row, "last_sync_at")?,
        last_error: get(row, "last_error")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// Columns a sync-run query selects, in the order [`sync_run`] reads them.
pub(crate) const SYNC_RUN_COLUMNS: &str = "id, workspace_id, connection_id, mode, status, \
     counts, error, created_at, started_at, finished_at";

/// A `sync_runs` row.
pub(crate) fn sync_run(row: &PgRow) -> Result<SyncRun> {
    let mode: String = get(row, "mode")?;
    let status: String = get(row, "status")?;
    let counts = row
        .try_get::<Json<_>, _>("counts")
        .map(|Json(v)| v)
        .map_err(|e| corrupt("sync run counts", e))?;
    Ok(SyncRun {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        connection_id: get(row, "connection_id")?,
        mode: SyncMode::parse(&mode)
            .ok_or_else(|| corrupt("sync run", format!("unknown mode {mode:?}")))?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| corrupt("sync run", format!("unknown status {status:?}")))?,
        counts,
        error: get(row, "error")?,
        created_at: get(row, "created_at")?,
        started_at: get(row, "started_at")?,
        finished_at: get(row, "finished_at")?,
    })
}
