//! [`ConnectionStore`] and [`CredentialStore`] for [`PgStore`]: connections,
//! their checkpoints, and the vault's deployment-wide credential scans.

use std::collections::BTreeMap;

use async_trait::async_trait;
use pandora_core::model::{self, Connection, NewConnection, StoredCredentials, WorkspaceId};
use pandora_core::store::{ConnectionStore, CredentialRow, CredentialStore, CredentialSwap};
use pandora_core::{Error, Result};
use sqlx::Row;
use uuid::Uuid;

use crate::errors::DbResultExt;
use crate::{rows, PgStore};

/// Columns a connection query selects, as [`rows::connection`] reads them.
pub(crate) const CONNECTION_COLUMNS: &str =
    "id, workspace_id, connector, status, credentials, config, \
     last_sync_at, last_error, created_at, updated_at";

#[async_trait]
impl ConnectionStore for PgStore {
    async fn upsert_connection(
        &self,
        workspace: WorkspaceId,
        new: &NewConnection,
    ) -> Result<Connection> {
        let now = model::now();
        let row = sqlx::query(&format!(
            "INSERT INTO connections AS c (workspace_id, id, connector, status, credentials, \
                 config, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (workspace_id, connector) DO UPDATE SET \
                 status = EXCLUDED.status, credentials = EXCLUDED.credentials, \
                 config = EXCLUDED.config, updated_at = GREATEST(EXCLUDED.updated_at, c.updated_at) \
             RETURNING {CONNECTION_COLUMNS}"
        ))
        .bind(workspace)
        .bind(model::new_id())
        .bind(&new.connector)
        .bind(new.status.as_str())
        .bind(new.credentials.as_ref().map(|c| c.0.as_str()))
        .bind(&new.config)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .db_in(workspace)?;
        rows::connection(&row)
    }

    async fn get_connection(&self, workspace: WorkspaceId, connector: &str) -> Result<Connection> {
        let row = sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE workspace_id = $1 AND connector = $2"
        ))
        .bind(workspace)
        .bind(connector)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        match row {
            Some(row) => rows::connection(&row),
            None => Err(Error::not_found("connection", connector)),
        }
    }

    async fn list_connections(&self, workspace: WorkspaceId) -> Result<Vec<Connection>> {
        let fetched = sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = $1 \
             ORDER BY connector"
        ))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .db()?;
        fetched.iter().map(rows::connection).collect()
    }

    async fn delete_connection(&self, workspace: WorkspaceId, connection_id: Uuid) -> Result<()> {
        let done = sqlx::query("DELETE FROM connections WHERE workspace_id = $1 AND id = $2")
            .bind(workspace)
            .bind(connection_id)
            .execute(&self.pool)
            .await
            .db()?;
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
        // The connection row tells whether it is the workspace's; a
        // connection without checkpoints yields one row of NULLs.
        let fetched = sqlx::query(
            "SELECT s.stream, s.cursor FROM connections c \
             LEFT JOIN sync_checkpoints s \
                 ON s.workspace_id = c.workspace_id AND s.connection_id = c.id \
             WHERE c.workspace_id = $1 AND c.id = $2",
        )
        .bind(workspace)
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        if fetched.is_empty() {
            return Err(Error::not_found("connection", connection_id));
        }
        let mut checkpoints = BTreeMap::new();
        for row in &fetched {
            let stream: Option<String> = row.try_get("stream").db()?;
            let cursor: Option<serde_json::Value> = row.try_get("cursor").db()?;
            if let (Some(stream), Some(cursor)) = (stream, cursor) {
                checkpoints.insert(stream, cursor);
            }
        }
        Ok(checkpoints)
    }
}

#[async_trait]
impl CredentialStore for PgStore {
    async fn scan_credentials(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CredentialRow>> {
        // Deployment-wide by design (operator maintenance), ordered by id;
        // two statements so that each is a plain range scan of the index.
        let query = match after {
            Some(after) => sqlx::query(
                "SELECT workspace_id, id, connector, credentials FROM connections \
                 WHERE credentials IS NOT NULL AND id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after),
            None => sqlx::query(
                "SELECT workspace_id, id, connector, credentials FROM connections \
                 WHERE credentials IS NOT NULL ORDER BY id LIMIT $1",
            ),
        };
        let fetched = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .db()?;
        fetched
            .iter()
            .map(|row| {
                Ok(CredentialRow {
                    workspace_id: row.try_get("workspace_id").db()?,
                    connection_id: row.try_get("id").db()?,
                    connector: row.try_get("connector").db()?,
                    credentials: StoredCredentials(row.try_get("credentials").db()?),
                })
            })
            .collect()
    }

    async fn count_credentials(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM connections WHERE credentials IS NOT NULL")
                .fetch_one(&self.pool)
                .await
                .db()?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn swap_credentials(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        expected: &StoredCredentials,
        new: &StoredCredentials,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE connections SET credentials = $4 \
             WHERE workspace_id = $1 AND id = $2 AND credentials = $3",
        )
        .bind(workspace)
        .bind(connection_id)
        .bind(&expected.0)
        .bind(&new.0)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(done.rows_affected() > 0)
    }

    async fn swap_credentials_batch(&self, swaps: &[CredentialSwap]) -> Result<u64> {
        if swaps.is_empty() {
            return Ok(0);
        }
        let workspaces: Vec<Uuid> = swaps.iter().map(|s| s.workspace_id).collect();
        let ids: Vec<Uuid> = swaps.iter().map(|s| s.connection_id).collect();
        let expected: Vec<&str> = swaps.iter().map(|s| s.expected.0.as_str()).collect();
        let new: Vec<&str> = swaps.iter().map(|s| s.new.0.as_str()).collect();
        // One statement: every row is compared and swapped on its own.
        let done = sqlx::query(
            "UPDATE connections c SET credentials = s.new \
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) \
                  AS s(workspace_id, id, expected, new) \
             WHERE c.workspace_id = s.workspace_id AND c.id = s.id \
               AND c.credentials = s.expected",
        )
        .bind(&workspaces)
        .bind(&ids)
        .bind(&expected)
        .bind(&new)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(done.rows_affected())
    }
}
