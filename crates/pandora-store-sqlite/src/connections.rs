//! [`ConnectionStore`]: connections and their sync checkpoints; and
//! [`CredentialStore`]: the deployment-wide credential scans of the vault's
//! maintenance commands.

use std::collections::BTreeMap;

use async_trait::async_trait;
use pandora_core::model::{
    self, Connection, ConnectionStatus, NewConnection, StoredCredentials, WorkspaceId,
};
use pandora_core::store::{ConnectionStore, CredentialRow, CredentialStore};
use pandora_core::{Error, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{Executor, Sqlite};
use uuid::Uuid;

use crate::codec::{
    col, id_from_sql, id_to_sql, json_from_sql, opt_time_from_sql, time_from_sql, time_to_sql,
};
use crate::errors::{db_error, db_error_in};
use crate::SqliteStore;

/// Columns a connection query selects, as [`connection_from_row`] reads them.
pub(crate) const CONNECTION_COLUMNS: &str =
    "workspace_id, id, connector, status, credentials, config, \
     last_sync_at, last_error, created_at, updated_at";

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn upsert_connection(
        &self,
        workspace: WorkspaceId,
        new: &NewConnection,
    ) -> Result<Connection> {
        let now = time_to_sql(model::now());
        let row = sqlx::query(&format!(
            "INSERT INTO connections \
                 (workspace_id, id, connector, status, credentials, config, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (workspace_id, connector) DO UPDATE SET \
                 status = excluded.status, credentials = excluded.credentials, \
                 config = excluded.config, updated_at = excluded.updated_at \
             RETURNING {CONNECTION_COLUMNS}"
        ))
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(model::new_id()))
        .bind(&new.connector)
        .bind(new.status.as_str())
        .bind(new.credentials.as_ref().map(|c| c.0.as_str()))
        .bind(serde_json::to_string(&new.config)?)
        .bind(now)
        .bind(now)
        .fetch_one(self.pool())
        .await
        .map_err(db_error_in(workspace))?;
        connection_from_row(&row)
    }

    async fn get_connection(&self, workspace: WorkspaceId, connector: &str) -> Result<Connection> {
        let row = sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = ? AND connector = ?"
        ))
        .bind(id_to_sql(workspace))
        .bind(connector)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found("connection", connector))?;
        connection_from_row(&row)
    }

    async fn list_connections(&self, workspace: WorkspaceId) -> Result<Vec<Connection>> {
        let rows = sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = ? ORDER BY connector"
        ))
        .bind(id_to_sql(workspace))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(connection_from_row).collect()
    }

    async fn delete_connection(&self, workspace: WorkspaceId, connection_id: Uuid) -> Result<()> {
        let done = sqlx::query("DELETE FROM connections WHERE workspace_id = ? AND id = ?")
            .bind(id_to_sql(workspace))
            .bind(id_to_sql(connection_id))
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("connection", connection_id));
        }
        Ok(())
    }

    async fn get_checkpoints(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        ensure_connection(&mut *conn, workspace, connection_id).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT stream, cursor FROM sync_checkpoints \
             WHERE workspace_id = ? AND connection_id = ? ORDER BY stream",
        )
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(connection_id))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|(stream, cursor)| {
                Ok((stream, json_from_sql(&cursor, "sync_checkpoints.cursor")?))
            })
            .collect()
    }
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn scan_credentials(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CredentialRow>> {
        // Deployment-wide by design (operator maintenance). Ids are BLOBs of the
        // UUID's bytes, so SQLite's BLOB order is the UUID order.
        // Two statements so that each is a plain range scan of the index.
        let query = match after {
            Some(after) => sqlx::query(
                "SELECT workspace_id, id, connector, credentials FROM connections \
                 WHERE credentials IS NOT NULL AND id > ?1 ORDER BY id LIMIT ?2",
            )
            .bind(id_to_sql(after)),
            None => sqlx::query(
                "SELECT workspace_id, id, connector, credentials FROM connections \
                 WHERE credentials IS NOT NULL ORDER BY id LIMIT ?1",
            ),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(CredentialRow {
                    workspace_id: id_from_sql(
                        col(row, "workspace_id")?,
                        "connections.workspace_id",
                    )?,
                    connection_id: id_from_sql(col(row, "id")?, "connections.id")?,
                    connector: col(row, "connector")?,
                    credentials: StoredCredentials(col(row, "credentials")?),
                })
            })
            .collect()
    }

    async fn count_credentials(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM connections WHERE credentials IS NOT NULL")
                .fetch_one(self.pool())
                .await
                .map_err(db_error)?;
        u64::try_from(count).map_err(|_| Error::internal("negative row count"))
    }

    async fn swap_credentials(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        expected: &StoredCredentials,
        new: &StoredCredentials,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE connections SET credentials = ? \
             WHERE workspace_id = ? AND id = ? AND credentials = ?",
        )
        .bind(new.0.as_str())
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(connection_id))
        .bind(expected.0.as_str())
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }
}

/// Fails with [`Error::NotFound`] unless `connection_id` is a connection of `workspace`.
pub(crate) async fn ensure_connection<'c, E>(
    executor: E,
    workspace: WorkspaceId,
    connection_id: Uuid,
) -> Result<()>
where
    E: Executor<'c, Database = Sqlite>,
{
    sqlx::query("SELECT 1 FROM connections WHERE workspace_id = ? AND id = ?")
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(connection_id))
        .fetch_optional(executor)
        .await
        .map_err(db_error)?
        .map(|_| ())
        .ok_or_else(|| Error::not_found("connection", connection_id))
}

/// A `connections` row.
pub(crate) fn connection_from_row(row: &SqliteRow) -> Result<Connection> {
    let status: &str = col(row, "status")?;
    let status = ConnectionStatus::parse(status).ok_or_else(|| {
        tracing::error!(status, "unknown connection status in the database");
        Error::internal("stored connections.status is not a known status")
    })?;
    let credentials: Option<String> = col(row, "credentials")?;
    Ok(Connection {
        id: id_from_sql(col(row, "id")?, "connections.id")?,
        workspace_id: id_from_sql(col(row, "workspace_id")?, "connections.workspace_id")?,
        connector: col(row, "connector")?,
        status,
        credentials: credentials.map(StoredCredentials),
        config: json_from_sql(col(row, "config")?, "connections.config")?,
        last_sync_at: opt_time_from_sql(col(row, "last_sync_at")?, "connections.last_sync_at")?,
        last_error: col(row, "last_error")?,
        created_at: time_from_sql(col(row, "created_at")?, "connections.created_at")?,
        updated_at: time_from_sql(col(row, "updated_at")?, "connections.updated_at")?,
    })
}
