//! [`WorkspaceStore`]: workspaces, API keys and deployment-wide settings.

use async_trait::async_trait;
use pandora_core::model::{self, ApiKey, Workspace, WorkspaceId, WorkspacePatch};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::store::WorkspaceStore;
use pandora_core::{Error, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::codec::{col, id_from_sql, id_to_sql, json_from_sql, time_from_sql, time_to_sql};
use crate::errors::{db_error, db_error_in};
use crate::paging::UpdatedPage;
use crate::SqliteStore;

const WORKSPACE_COLUMNS: &str = "id, name, settings, created_at, updated_at";
const API_KEY_COLUMNS: &str = "workspace_id, id, name, prefix, hash, created_at";

#[async_trait]
impl WorkspaceStore for SqliteStore {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<()> {
        sqlx::query(
            "INSERT INTO workspaces (id, name, settings, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_to_sql(workspace.id))
        .bind(&workspace.name)
        .bind(serde_json::to_string(&workspace.settings)?)
        .bind(time_to_sql(workspace.created_at))
        .bind(time_to_sql(workspace.updated_at))
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace> {
        let row = sqlx::query(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = ?"
        ))
        .bind(id_to_sql(id))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found("workspace", id))?;
        workspace_from_row(&row)
    }

    async fn list_workspaces(&self, page: &PageRequest) -> Result<Page<Workspace>> {
        let request = UpdatedPage::parse(page)?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE 1 = 1"
        ));
        request.push_tail(&mut qb, "workspaces");
        let rows = qb.build().fetch_all(self.pool()).await.map_err(db_error)?;
        let workspaces = rows
            .iter()
            .map(workspace_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(workspaces, page.limit, |w| {
            Cursor::after_updated(w.updated_at, w.id, page.sort)
        }))
    }

    async fn update_workspace(&self, id: WorkspaceId, patch: &WorkspacePatch) -> Result<Workspace> {
        let settings = patch
            .settings
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let row = sqlx::query(&format!(
            "UPDATE workspaces SET name = coalesce(?, name), settings = coalesce(?, settings), \
             updated_at = ? WHERE id = ? RETURNING {WORKSPACE_COLUMNS}"
        ))
        .bind(patch.name.as_deref())
        .bind(settings)
        .bind(time_to_sql(model::now()))
        .bind(id_to_sql(id))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found("workspace", id))?;
        workspace_from_row(&row)
    }

    async fn delete_workspace(&self, id: WorkspaceId) -> Result<()> {
        let done = sqlx::query("DELETE FROM workspaces WHERE id = ?")
            .bind(id_to_sql(id))
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("workspace", id));
        }
        tracing::debug!(workspace_id = %id, "workspace and its rows deleted");
        Ok(())
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(id_to_sql(key.workspace_id))
        .bind(id_to_sql(key.id))
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(time_to_sql(key.created_at))
        .execute(self.pool())
        .await
        .map_err(db_error_in(key.workspace_id))?;
        Ok(())
    }

    async fn list_api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE workspace_id = ? ORDER BY created_at, id"
        ))
        .bind(id_to_sql(workspace))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn delete_api_key(&self, workspace: WorkspaceId, key_id: Uuid) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_keys WHERE workspace_id = ? AND id = ?")
            .bind(id_to_sql(workspace))
            .bind(id_to_sql(key_id))
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("api_key", key_id));
        }
        Ok(())
    }

    async fn find_api_key(&self, hash: &[u8]) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = ?"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        // A stored value never changes, so reading after a racing insert is safe.
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        self.get_setting(key)
            .await?
            .ok_or_else(|| Error::internal("setting vanished right after it was stored"))
    }
}

fn workspace_from_row(row: &SqliteRow) -> Result<Workspace> {
    Ok(Workspace {
        id: id_from_sql(col(row, "id")?, "workspaces.id")?,
        name: col(row, "name")?,
        settings: json_from_sql(col(row, "settings")?, "workspaces.settings")?,
        created_at: time_from_sql(col(row, "created_at")?, "workspaces.created_at")?,
        updated_at: time_from_sql(col(row, "updated_at")?, "workspaces.updated_at")?,
    })
}

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: id_from_sql(col(row, "id")?, "api_keys.id")?,
        workspace_id: id_from_sql(col(row, "workspace_id")?, "api_keys.workspace_id")?,
        name: col(row, "name")?,
        prefix: col(row, "prefix")?,
        hash: col(row, "hash")?,
        created_at: time_from_sql(col(row, "created_at")?, "api_keys.created_at")?,
    })
}
