//! [`RecordStore`]: the trait's entry points, and the lists other than deals.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::batch::{BatchOutcome, PreparedBatch, RecordKind};
use pandora_core::computed::StoredBaseline;
use pandora_core::model::{
    Account, Checkpoint, Contact, Deal, DealChange, NewPipelineStage, PipelineStage, User,
    WorkspaceId,
};
use pandora_core::query::{Cursor, DealFilter, Page, PageRequest};
use pandora_core::store::{ComputedUpdate, RecordStore};
use pandora_core::{Error, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::codec::{
    col, id_from_sql, id_to_sql, json_from_sql, opt_id_from_sql, opt_time_from_sql, time_from_sql,
    time_to_sql,
};
use crate::errors::db_error;
use crate::paging::UpdatedPage;
use crate::{deals, write, SqliteStore};

/// A scalar subquery giving the id of the live `target` row of the same
/// workspace and source whose `source_id` is `{alias}.{source_id_column}`
/// (NULL when not synced or soft-deleted). Answered from the unique index on
/// `(workspace_id, source, source_id)`.
pub(crate) fn resolved_ref(target: &str, alias: &str, source_id_column: &str) -> String {
    format!(
        "(SELECT r.id FROM {target} r WHERE r.workspace_id = {alias}.workspace_id \
         AND r.source = {alias}.source AND r.source_id = {alias}.{source_id_column} \
         AND r.deleted_at IS NULL)"
    )
}

/// The metadata columns every record row carries.
struct RecordMeta {
    id: Uuid,
    source: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl RecordMeta {
    fn from_row(row: &SqliteRow, table: &str) -> Result<RecordMeta> {
        Ok(RecordMeta {
            id: id_from_sql(col(row, "id")?, table)?,
            source: col(row, "source")?,
            created_at: time_from_sql(col(row, "created_at")?, table)?,
            updated_at: time_from_sql(col(row, "updated_at")?, table)?,
            deleted_at: opt_time_from_sql(col(row, "deleted_at")?, table)?,
        })
    }
}

impl SqliteStore {
    /// One page of the live rows of `kind`, sorted by `updated_at`, each
    /// decoded by `decode` from the row, its metadata and the resolved
    /// reference (`ref_id`, when `reference` names one as `(table, column)`).
    async fn list_live<T>(
        &self,
        kind: RecordKind,
        reference: Option<(&str, &str)>,
        workspace: WorkspaceId,
        page: &PageRequest,
        decode: impl Fn(&SqliteRow, RecordMeta, Option<Uuid>) -> Result<T>,
        updated_of: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    ) -> Result<Page<T>> {
        let request = UpdatedPage::parse(page)?;
        let table = kind.table();
        let ref_select = reference
            .map(|(target, column)| resolved_ref(target, "t", column))
            .unwrap_or_else(|| "NULL".to_owned());
        let mut qb = QueryBuilder::new(format!(
            "SELECT t.id, t.source, t.data, t.created_at, t.updated_at, t.deleted_at, \
             {ref_select} AS ref_id FROM {table} t WHERE t.workspace_id = "
        ));
        qb.push_bind(id_to_sql(workspace));
        qb.push(" AND t.deleted_at IS NULL");
        request.push_tail(&mut qb, "t");
        let rows = qb.build().fetch_all(self.pool()).await.map_err(db_error)?;
        let items = rows
            .iter()
            .map(|row| {
                let meta = RecordMeta::from_row(row, table)?;
                let ref_id = opt_id_from_sql(col(row, "ref_id")?, table)?;
                decode(row, meta, ref_id)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |item| {
            let (updated_at, id) = updated_of(item);
            Cursor::after_updated(updated_at, id, page.sort)
        }))
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn write_batch(
        &self,
        workspace: WorkspaceId,
        batch: &PreparedBatch,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<BatchOutcome> {
        let outcome = {
            let _turn = self.batch_turn().await;
            write::write_batch(self.pool(), workspace, batch, checkpoint).await?
        };
        self.wal_grew();
        Ok(outcome)
    }

    async fn list_deals(
        &self,
        workspace: WorkspaceId,
        filter: &DealFilter,
        page: &PageRequest,
    ) -> Result<Page<Deal>> {
        deals::list_deals(self.pool(), workspace, filter, page).await
    }

    async fn get_deal(&self, workspace: WorkspaceId, id: Uuid) -> Result<Deal> {
        deals::get_deal(self.pool(), workspace, id).await
    }

    async fn get_deal_by_source(
        &self,
        workspace: WorkspaceId,
        source: &str,
        source_id: &str,
    ) -> Result<Deal> {
        deals::get_deal_by_source(self.pool(), workspace, source, source_id).await
    }

    async fn deals_by_source(
        &self,
        workspace: WorkspaceId,
        source: &str,
        source_ids: &[String],
    ) -> Result<Vec<Deal>> {
        deals::deals_by_source(self.pool(), workspace, source, source_ids).await
    }

    async fn deal_history(&self, workspace: WorkspaceId, deal_id: Uuid) -> Result<Vec<DealChange>> {
        deals::deal_history(self.pool(), workspace, deal_id).await
    }

    async fn deal_histories(
        &self,
        workspace: WorkspaceId,
        deal_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<DealChange>>> {
        deals::deal_histories(self.pool(), workspace, deal_ids).await
    }

    async fn set_deal_computed(
        &self,
        workspace: WorkspaceId,
        updates: &[ComputedUpdate],
    ) -> Result<u64> {
        let done = {
            // A writer like a batch: wait for this store's turn.
            let _turn = self.batch_turn().await;
            deals::set_deal_computed(self.pool(), workspace, updates).await?
        };
        self.wal_grew();
        Ok(done)
    }

    async fn get_workspace_baseline(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<StoredBaseline>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT baseline, computed_at FROM workspace_baselines WHERE workspace_id = ?",
        )
        .bind(id_to_sql(workspace))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.map(|(baseline, computed_at)| {
            Ok(StoredBaseline {
                baseline: json_from_sql(&baseline, "workspace_baselines.baseline")?,
                computed_at: time_from_sql(computed_at, "workspace_baselines.computed_at")?,
            })
        })
        .transpose()
    }

    async fn put_workspace_baseline(
        &self,
        workspace: WorkspaceId,
        baseline: &StoredBaseline,
    ) -> Result<()> {
        let json = serde_json::to_string(&baseline.baseline)?;
        let done = sqlx::query(
            "INSERT INTO workspace_baselines (workspace_id, baseline, computed_at) \
             SELECT id, ?, ? FROM workspaces WHERE id = ? \
             ON CONFLICT (workspace_id) DO UPDATE SET \
             baseline = excluded.baseline, computed_at = excluded.computed_at",
        )
        .bind(json)
        .bind(time_to_sql(baseline.computed_at))
        .bind(id_to_sql(workspace))
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("workspace", workspace));
        }
        Ok(())
    }

    async fn list_contacts(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<Contact>> {
        self.list_live(
            RecordKind::Contact,
            Some(("accounts", "account_source_id")),
            workspace,
            page,
            |row, meta, account_id| {
                Ok(Contact {
                    id: meta.id,
                    workspace_id: workspace,
                    source: meta.source,
                    fields: json_from_sql(col(row, "data")?, "contacts.data")?,
                    account_id,
                    created_at: meta.created_at,
                    updated_at: meta.updated_at,
                    deleted_at: meta.deleted_at,
                })
            },
            |c| (c.updated_at, c.id),
        )
        .await
    }

    async fn list_accounts(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<Account>> {
        self.list_live(
            RecordKind::Account,
            None,
            workspace,
            page,
            |row, meta, _| {
                Ok(Account {
                    id: meta.id,
                    workspace_id: workspace,
                    source: meta.source,
                    fields: json_from_sql(col(row, "data")?, "accounts.data")?,
                    created_at: meta.created_at,
                    updated_at: meta.updated_at,
                    deleted_at: meta.deleted_at,
                })
            },
            |a| (a.updated_at, a.id),
        )
        .await
    }

    async fn list_users(&self, workspace: WorkspaceId, page: &PageRequest) -> Result<Page<User>> {
        self.list_live(
            RecordKind::User,
            Some(("users", "manager_source_id")),
            workspace,
            page,
            |row, meta, manager_id| {
                Ok(User {
                    id: meta.id,
                    workspace_id: workspace,
                    source: meta.source,
                    fields: json_from_sql(col(row, "data")?, "users.data")?,
                    manager_id,
                    created_at: meta.created_at,
                    updated_at: meta.updated_at,
                    deleted_at: meta.deleted_at,
                })
            },
            |u| (u.updated_at, u.id),
        )
        .await
    }

    async fn list_stages(&self, workspace: WorkspaceId) -> Result<Vec<PipelineStage>> {
        let rows = sqlx::query(
            "SELECT id, source, data FROM pipeline_stages \
             WHERE workspace_id = ? AND deleted_at IS NULL",
        )
        .bind(id_to_sql(workspace))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        let mut stages = rows
            .iter()
            .map(|row| {
                Ok(PipelineStage {
                    id: id_from_sql(col(row, "id")?, "pipeline_stages.id")?,
                    workspace_id: workspace,
                    source: col(row, "source")?,
                    fields: json_from_sql::<NewPipelineStage>(
                        col(row, "data")?,
                        "pipeline_stages.data",
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // By pipeline, display order (NULLs last), stage; then source and id for a stable order.
        stages.sort_by(|a, b| {
            let (fa, fb) = (&a.fields, &b.fields);
            fa.pipeline
                .cmp(&fb.pipeline)
                .then_with(|| match (fa.display_order, fb.display_order) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| fa.stage.cmp(&fb.stage))
                .then_with(|| a.source.cmp(&b.source))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(stages)
    }

    async fn count_records(&self, workspace: WorkspaceId, kind: RecordKind) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} WHERE workspace_id = ? AND deleted_at IS NULL",
            kind.table()
        ))
        .bind(id_to_sql(workspace))
        .fetch_one(self.pool())
        .await
        .map_err(db_error)?;
        u64::try_from(count).map_err(|_| Error::internal("negative row count"))
    }

    /// Keyset pages of `SKILL_SCAN_PAGE` deals with their history (one
    /// writer-free read each), without the vendor's properties.
    async fn scan_skill_deals(
        &self,
        workspace: WorkspaceId,
        visit: &mut (dyn FnMut(pandora_core::skill::ScannedDeal) -> Result<()> + Send),
    ) -> Result<()> {
        let mut after = None;
        loop {
            let page = pandora_core::skill::SkillStore::scan_deals(
                self,
                workspace,
                after,
                SKILL_SCAN_PAGE,
            )
            .await?;
            let full = page.len() == SKILL_SCAN_PAGE as usize;
            after = page.last().map(|d| d.id);
            for mut deal in page {
                deal.fields.properties = serde_json::Value::Null;
                visit(deal)?;
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// Deals per page of `RecordStore::scan_skill_deals`.
const SKILL_SCAN_PAGE: u32 = 5_000;
