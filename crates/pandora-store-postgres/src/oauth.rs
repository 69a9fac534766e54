//! [`OAuthStore`] (migration 006): pending OAuth authorizations and the
//! token-refresh lease of a connection.
//!
//! * **Single use**: consuming an authorization is one
//!   `DELETE … RETURNING` scoped by workspace, connector, nonce and expiry;
//!   of concurrent consumers the row lock lets exactly one delete it.
//! * **Lease**: one `INSERT … ON CONFLICT DO UPDATE … WHERE lease_until <=
//!   now RETURNING`: a free (absent or expired) lease is taken, a live one
//!   is left alone; concurrent takers serialize on the row. No lock outlives
//!   the statement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::auth::SecretToken;
use pandora_core::model::{StoredCredentials, WorkspaceId};
use pandora_core::store::{OAuthStore, PendingAuthorization};
use pandora_core::{Error, Result};
use uuid::Uuid;

use crate::errors::{is_foreign_key_violation, is_unique_violation, DbResultExt};
use crate::PgStore;

#[async_trait]
impl OAuthStore for PgStore {
    async fn create_authorization(&self, pending: &PendingAuthorization) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO oauth_authorizations \
                 (workspace_id, nonce, connector, code_verifier, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(pending.workspace_id)
        .bind(pending.nonce)
        .bind(&pending.connector)
        .bind(pending.code_verifier.as_ref().map(SecretToken::expose))
        .bind(pending.created_at)
        .bind(pending.expires_at)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                "an OAuth authorization with this nonce already exists",
            )),
            Err(e) => Err(e).db_in(pending.workspace_id),
        }
    }

    async fn consume_authorization(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        nonce: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>> {
        let row: Option<(String, Option<String>, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "DELETE FROM oauth_authorizations \
             WHERE workspace_id = $1 AND nonce = $2 AND connector = $3 AND expires_at > $4 \
             RETURNING connector, code_verifier, created_at, expires_at",
        )
        .bind(workspace)
        .bind(nonce)
        .bind(connector)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        Ok(row.map(
            |(connector, verifier, created_at, expires_at)| PendingAuthorization {
                workspace_id: workspace,
                nonce,
                connector,
                code_verifier: verifier.map(SecretToken::from_string),
                created_at,
                expires_at,
            },
        ))
    }

    async fn purge_authorizations(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM oauth_authorizations WHERE expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .db()?;
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
             VALUES ($1, $2, $3, $5) \
             ON CONFLICT (workspace_id, connection_id) DO UPDATE \
                 SET holder = excluded.holder, lease_until = excluded.lease_until \
                 WHERE token_refresh_leases.lease_until <= $4 \
             RETURNING holder",
        )
        .bind(workspace)
        .bind(connection_id)
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_optional(&self.pool)
        .await;
        match taken {
            Ok(row) => Ok(row.is_some()),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(Error::not_found("connection", connection_id))
            }
            Err(e) => Err(e).db(),
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
             WHERE workspace_id = $1 AND connection_id = $2 AND holder = $3",
        )
        .bind(workspace)
        .bind(connection_id)
        .bind(holder)
        .execute(&self.pool)
        .await
        .db()?;
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
             SET status = 'needs_reauth', last_error = $4, updated_at = GREATEST(updated_at, $5) \
             WHERE workspace_id = $1 AND id = $2 AND credentials = $3 \
               AND status <> 'disconnected'",
        )
        .bind(workspace)
        .bind(connection_id)
        .bind(&expected.0)
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(done.rows_affected() > 0)
    }
}
