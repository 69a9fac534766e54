//! [`RecordStore`] for [`PgStore`]: the lists other than deals, stages and
//! counts here; writes in [`crate::write`], deals in [`crate::deals`].

use std::collections::HashMap;

use async_trait::async_trait;
use pandora_core::batch::{BatchOutcome, PreparedBatch, RecordKind};
use pandora_core::computed::StoredBaseline;
use pandora_core::model::{
    Account, Checkpoint, Contact, Deal, DealChange, PipelineStage, User, WorkspaceId,
};
use pandora_core::query::{Cursor, DealFilter, Page, PageRequest};
use pandora_core::store::{CommitGate, ComputedUpdate, RecordStore};
use pandora_core::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::errors::DbResultExt;
use crate::{deals, keyset, rows, write, PgStore};

/// A reference resolved by a list: `alias.id AS column` of the live row of
/// `table` whose source key is `(r.source, r.<via>)`.
struct Reference {
    table: &'static str,
    via: &'static str,
    column: &'static str,
}

/// A live-record list sorted by `updated_at`, optionally resolving one reference.
async fn list_by_updated_at<T>(
    pool: &PgPool,
    workspace: WorkspaceId,
    page: &PageRequest,
    table: &'static str,
    reference: Option<Reference>,
    decode: fn(&PgRow) -> Result<T>,
    updated_at_of: fn(&T) -> (chrono::DateTime<chrono::Utc>, Uuid),
) -> Result<Page<T>> {
    keyset::require_updated_at(page)?;
    let after = keyset::after(page)?;
    let direction = page.sort.direction;
    let extra = match &reference {
        Some(Reference { via, .. }) => format!(", t.{via}"),
        None => String::new(),
    };

    let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
    qb.push(rows::RECORD_COLUMNS);
    if let Some(Reference { column, .. }) = &reference {
        qb.push(format_args!(", x.id AS {column}"));
    }
    qb.push(format_args!(
        " FROM (SELECT t.id, t.workspace_id, t.source, t.data, t.created_at, t.updated_at, \
         t.deleted_at{extra} FROM {table} t WHERE t.workspace_id = "
    ))
    .push_bind(workspace)
    .push(" AND t.deleted_at IS NULL");
    keyset::push_after_updated(&mut qb, "t", direction, after);
    qb.push(" ORDER BY ")
        .push(keyset::order_by("t", "updated_at", false, direction))
        .push(keyset::limit_sql(page))
        .push(") r");
    if let Some(Reference { table, via, .. }) = &reference {
        qb.push(format_args!(
            " LEFT JOIN {table} x ON x.workspace_id = r.workspace_id AND x.source = r.source \
             AND x.source_id = r.{via} AND x.deleted_at IS NULL"
        ));
    }
    qb.push(" ORDER BY ")
        .push(keyset::order_by("r", "updated_at", false, direction));

    let fetched = qb.build().fetch_all(pool).await.db()?;
    let items = fetched.iter().map(decode).collect::<Result<Vec<_>>>()?;
    let sort = page.sort;
    Ok(Page::from_rows(items, page.limit, |item| {
        let (updated_at, id) = updated_at_of(item);
        Cursor::after_updated(updated_at, id, sort)
    }))
}

#[async_trait]
impl RecordStore for PgStore {
    async fn write_batch(
        &self,
        workspace: WorkspaceId,
        batch: &PreparedBatch,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<BatchOutcome> {
        write::write_batch(&self.pool, workspace, batch, checkpoint).await
    }

    async fn write_batch_gated(
        &self,
        workspace: WorkspaceId,
        batch: &PreparedBatch,
        checkpoint: Option<&Checkpoint>,
        gate: CommitGate,
    ) -> Result<BatchOutcome> {
        write::write_batch_gated(&self.pool, workspace, batch, checkpoint, Some(gate)).await
    }

    async fn list_deals(
        &self,
        workspace: WorkspaceId,
        filter: &DealFilter,
        page: &PageRequest,
    ) -> Result<Page<Deal>> {
        deals::list_deals(&self.pool, workspace, filter, page).await
    }

    async fn get_deal(&self, workspace: WorkspaceId, id: Uuid) -> Result<Deal> {
        deals::get_deal(&self.pool, workspace, id).await
    }

    async fn get_deal_by_source(
        &self,
        workspace: WorkspaceId,
        source: &str,
        source_id: &str,
    ) -> Result<Deal> {
        deals::get_deal_by_source(&self.pool, workspace, source, source_id).await
    }

    async fn deals_by_source(
        &self,
        workspace: WorkspaceId,
        source: &str,
        source_ids: &[String],
    ) -> Result<Vec<Deal>> {
        deals::deals_by_source(&self.pool, workspace, source, source_ids).await
    }

    async fn deal_history(&self, workspace: WorkspaceId, deal_id: Uuid) -> Result<Vec<DealChange>> {
        deals::deal_history(&self.pool, workspace, deal_id).await
    }

    async fn deal_histories(
        &self,
        workspace: WorkspaceId,
        deal_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<DealChange>>> {
        deals::deal_histories(&self.pool, workspace, deal_ids).await
    }

    async fn set_deal_computed(
        &self,
        workspace: WorkspaceId,
        updates: &[ComputedUpdate],
    ) -> Result<u64> {
        deals::set_deal_computed(&self.pool, workspace, updates).await
    }

    async fn get_workspace_baseline(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<StoredBaseline>> {
        let row: Option<(
            Json<pandora_core::computed::WorkspaceBaseline>,
            chrono::DateTime<chrono::Utc>,
        )> = sqlx::query_as(
            "SELECT baseline, computed_at FROM workspace_baselines WHERE workspace_id = $1",
        )
        .bind(workspace)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        Ok(row.map(|(Json(baseline), computed_at)| StoredBaseline {
            baseline,
            computed_at,
        }))
    }

    async fn put_workspace_baseline(
        &self,
        workspace: WorkspaceId,
        baseline: &StoredBaseline,
    ) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO workspace_baselines (workspace_id, baseline, computed_at) \
             SELECT id, $2, $3 FROM workspaces WHERE id = $1 \
             ON CONFLICT (workspace_id) DO UPDATE SET \
             baseline = EXCLUDED.baseline, computed_at = EXCLUDED.computed_at",
        )
        .bind(workspace)
        .bind(Json(&baseline.baseline))
        .bind(baseline.computed_at)
        .execute(&self.pool)
        .await
        .db()?;
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
        let reference = Reference {
            table: "accounts",
            via: "account_source_id",
            column: "account_id",
        };
        list_by_updated_at(
            &self.pool,
            workspace,
            page,
            "contacts",
            Some(reference),
            rows::contact,
            |c| (c.updated_at, c.id),
        )
        .await
    }

    async fn list_accounts(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<Account>> {
        list_by_updated_at(
            &self.pool,
            workspace,
            page,
            "accounts",
            None,
            rows::account,
            |a| (a.updated_at, a.id),
        )
        .await
    }

    async fn list_users(&self, workspace: WorkspaceId, page: &PageRequest) -> Result<Page<User>> {
        let reference = Reference {
            table: "users",
            via: "manager_source_id",
            column: "manager_id",
        };
        list_by_updated_at(
            &self.pool,
            workspace,
            page,
            "users",
            Some(reference),
            rows::user,
            |u| (u.updated_at, u.id),
        )
        .await
    }

    async fn list_stages(&self, workspace: WorkspaceId) -> Result<Vec<PipelineStage>> {
        let fetched = sqlx::query(
            "SELECT id, workspace_id, source, data FROM pipeline_stages \
             WHERE workspace_id = $1 AND deleted_at IS NULL \
             ORDER BY pipeline, display_order NULLS LAST, stage, source, id",
        )
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .db()?;
        fetched.iter().map(rows::stage).collect()
    }

    async fn count_records(&self, workspace: WorkspaceId, kind: RecordKind) -> Result<u64> {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE workspace_id = $1 AND deleted_at IS NULL",
            kind.table()
        );
        let count: i64 = sqlx::query_scalar(&sql)
            .bind(workspace)
            .fetch_one(&self.pool)
            .await
            .db()?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn scan_skill_deals(
        &self,
        workspace: WorkspaceId,
        visit: &mut (dyn FnMut(pandora_core::skill::ScannedDeal) -> Result<()> + Send),
    ) -> Result<()> {
        crate::skill_scan::scan_skill_deals(&self.pool, workspace, visit).await
    }
}
