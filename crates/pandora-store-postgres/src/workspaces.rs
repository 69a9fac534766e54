//! [`WorkspaceStore`] for [`PgStore`]: workspaces, API keys, settings.

use async_trait::async_trait;
use pandora_core::model::{self, ApiKey, Workspace, WorkspaceId, WorkspacePatch};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::store::WorkspaceStore;
use pandora_core::{Error, Result};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::errors::DbResultExt;
use crate::{keyset, rows, PgStore};

const WORKSPACE_COLUMNS: &str = "id, name, settings, created_at, updated_at";
const API_KEY_COLUMNS: &str = "id, workspace_id, name, prefix, hash, created_at";

#[async_trait]
impl WorkspaceStore for PgStore {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<()> {
        sqlx::query(
            "INSERT INTO workspaces (id, name, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(workspace.id)
        .bind(&workspace.name)
        .bind(&workspace.settings)
        .bind(workspace.created_at)
        .bind(workspace.updated_at)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace> {
        let row = sqlx::query(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        match row {
            Some(row) => rows::workspace(&row),
            None => Err(Error::not_found("workspace", id)),
        }
    }

    async fn list_workspaces(&self, page: &PageRequest) -> Result<Page<Workspace>> {
        keyset::require_updated_at(page)?;
        let after = keyset::after(page)?;
        let direction = page.sort.direction;
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces w WHERE TRUE"
        ));
        keyset::push_after_updated(&mut qb, "w", direction, after);
        qb.push(" ORDER BY ")
            .push(keyset::order_by("w", "updated_at", false, direction))
            .push(keyset::limit_sql(page));
        let fetched = qb.build().fetch_all(&self.pool).await.db()?;
        let items = fetched
            .iter()
            .map(rows::workspace)
            .collect::<Result<Vec<_>>>()?;
        let sort = page.sort;
        Ok(Page::from_rows(items, page.limit, |w| {
            Cursor::after_updated(w.updated_at, w.id, sort)
        }))
    }

    async fn update_workspace(&self, id: WorkspaceId, patch: &WorkspacePatch) -> Result<Workspace> {
        let row = sqlx::query(&format!(
            "UPDATE workspaces SET name = COALESCE($2, name), settings = COALESCE($3, settings), \
             updated_at = GREATEST($4, updated_at) WHERE id = $1 RETURNING {WORKSPACE_COLUMNS}"
        ))
        .bind(id)
        .bind(patch.name.as_deref())
        .bind(patch.settings.as_ref())
        .bind(model::now())
        .fetch_optional(&self.pool)
        .await
        .db()?;
        match row {
            Some(row) => rows::workspace(&row),
            None => Err(Error::not_found("workspace", id)),
        }
    }

    async fn delete_workspace(&self, id: WorkspaceId) -> Result<()> {
        let done = sqlx::query("DELETE FROM workspaces WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .db()?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("workspace", id));
        }
        Ok(())
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (workspace_id, id, name, prefix, hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.workspace_id)
        .bind(key.id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .db_in(key.workspace_id)?;
        Ok(())
    }

    async fn list_api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKey>> {
        let fetched = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .db()?;
        fetched.iter().map(rows::api_key).collect()
    }

    async fn delete_api_key(&self, workspace: WorkspaceId, key_id: Uuid) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_keys WHERE workspace_id = $1 AND id = $2")
            .bind(workspace)
            .bind(key_id)
            .execute(&self.pool)
            .await
            .db()?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("api_key", key_id));
        }
        Ok(())
    }

    async fn find_api_key(&self, hash: &[u8]) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(rows::api_key).transpose()
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .db()
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        // ON CONFLICT DO NOTHING waits for a concurrent insert of the same key
        // to commit; the following statement (new snapshot) then reads the
        // winner's value.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .db()?;
        let stored: Option<String> = self.get_setting(key).await?;
        stored.ok_or_else(|| Error::internal(format!("setting {key} vanished after being set")))
    }
}
