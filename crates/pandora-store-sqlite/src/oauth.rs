//! [`OAuthStore`] (migration 006): pending OAuth authorizations and the
//! token-refresh lease of a connection.
//!
//! Each call is one statement in autocommit: SQLite's single writer makes a
//! consuming `DELETE … RETURNING` and the lease's
//! `INSERT … ON CONFLICT DO UPDATE … WHERE lease_until <= now RETURNING`
//! atomic across connections and processes (waiting on the busy timeout).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::auth::SecretToken;
use pandora_core::model::{StoredCredentials, WorkspaceId};
use pandora_core::store::{OAuthStore, PendingAuthorization};
use pandora_core::{Error, Result};
use uuid::Uuid;

use crate::codec::{id_to_sql, time_from_sql, time_to_sql};
use crate::errors::{db_error, db_error_in, is_foreign_key_violation, is_unique_violation};
use crate::SqliteStore;

#[async_trait]
impl OAuthStore for SqliteStore {
    async fn create_authorization(&self, pending: &PendingAuthorization) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO oauth_authorizations \
                 (workspace_id, nonce, connector, code_verifier, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id_to_sql(pending.workspace_id))
        .bind(id_to_sql(pending.nonce))
        .bind(&pending.connector)
        .bind(pending.code_verifier.as_ref().map(SecretToken::expose))
        .bind(time_to_sql(pending.created_at))
        .bind(time_to_sql(pending.expires_at))
        .execute(self.pool())
        .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                "an OAuth authorization with this nonce already exists",
            )),
            Err(e) => Err(db_error_in(pending.workspace_id)(e)),
        }
    }

    async fn consume_authorization(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        nonce: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>> {
        let row: Option<(String, Option<String>, i64, i64)> = sqlx::query_as(
            "DELETE FROM oauth_authorizations \
             WHERE workspace_id = ? AND nonce = ? AND connector = ? AND expires_at > ? \
             RETURNING connector, code_verifier, created_at, expires_at",
        )
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(nonce))
        .bind(connector)
        .bind(time_to_sql(now))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.map(|(connector, verifier, created_at, expires_at)| {
            Ok(PendingAuthorization {
                workspace_id: workspace,
                nonce,
                connector,
                code_verifier: verifier.map(SecretToken::from_string),
                created_at: time_from_sql(created_at, "oauth_authorizations.created_at")?,
                expires_at: time_from_sql(expires_at, "oauth_authorizations.expires_at")?,
            })
        })
        .transpose()
    }

    async fn purge_authorizations(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM oauth_authorizations WHERE expires_at < ?")
            .bind(time_to_sql(before))
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn take_refresh_lease(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let taken = sqlx::query_scalar::<_, String>(
            "INSERT INTO token_refresh_leases (workspace_id, connection_id, holder, lease_until) \
             VALUES (?1, ?2, ?3, ?5) \
             ON CONFLICT (workspace_id, connection_id) DO UPDATE \
                 SET holder = excluded.holder, lease_until = excluded.lease_until \
                 WHERE token_refresh_leases.lease_until <= ?4 \
             RETURNING holder",
        )
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(connection_id))
        .bind(holder)
        .bind(time_to_sql(now))
        .bind(time_to_sql(until))
        .fetch_optional(self.pool())
        .await;
        match taken {
            Ok(row) => Ok(row.is_some()),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(Error::not_found("connection", connection_id))
            }
            Err(e) => Err(db_error(e)),
        }
    }

    async fn release_refresh_lease(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        holder: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM token_refresh_leases \
             WHERE workspace_id = ? AND connection_id = ? AND holder = ?",
        )
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(connection_id))
        .bind(holder)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn mark_needs_reauth(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        expected: &StoredCredentials,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE connections \
             SET status = 'needs_reauth', last_error = ?4, updated_at = MAX(updated_at, ?5) \
             WHERE workspace_id = ?1 AND id = ?2 AND credentials = ?3 \
               AND status <> 'disconnected'",
        )
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(connection_id))
        .bind(expected.0.as_str())
        .bind(error)
        .bind(time_to_sql(now))
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }
}
