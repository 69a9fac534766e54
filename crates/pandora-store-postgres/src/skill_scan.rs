//! `RecordStore::scan_skill_deals`: a workspace's deals with their field
//! history, for skill contexts, in two ordered streams merged by deal id.
//!
//! The deals come from their promoted columns (plus the two fields only the
//! JSON holds: `forecast_category` and `source_created_at`), never the
//! vendor's `properties`; the changes by deal id along the identity index,
//! each deal's few sorted here by `(changed_at, id)`. The two queries run on
//! two connections at once, so the server produces one while this process
//! decodes the other. With fewer than two connections free, the scan reads
//! keyset pages on one connection instead.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use pandora_core::model::{ChangeOrigin, DealChange, DealField, NewDeal, StageCategory};
use pandora_core::skill::ScannedDeal;
use pandora_core::Result;
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use pandora_core::model::WorkspaceId;

use crate::errors::{corrupt, DbResultExt};

/// Deals per page when the scan falls back to pages on one connection.
const PAGE: i64 = 10_000;

const DEAL_COLUMNS: &str = "id, source, source_id, name, amount, currency, pipeline, stage, \
     stage_category, close_date, data->>'forecast_category', data->>'source_created_at', \
     owner_source_id, account_source_id, created_at, deleted_at";

const CHANGE_COLUMNS: &str =
    "deal_id, id, field, old_value, new_value, changed_at, origin FROM deal_changes";

/// The visitor `RecordStore::scan_skill_deals` hands each deal to.
pub(crate) type Visit<'a> = &'a mut (dyn FnMut(ScannedDeal) -> Result<()> + Send);

/// `RecordStore::scan_skill_deals`.
pub(crate) async fn scan_skill_deals(
    pool: &PgPool,
    workspace: WorkspaceId,
    visit: Visit<'_>,
) -> Result<()> {
    let mut deals_conn = pool.acquire().await.db()?;
    let Some(mut changes_conn) = pool.try_acquire() else {
        return paged(&mut deals_conn, workspace, visit).await;
    };
    let deals_sql = format!("SELECT {DEAL_COLUMNS} FROM deals WHERE workspace_id = $1 ORDER BY id");
    let changes_sql = format!("SELECT {CHANGE_COLUMNS} WHERE workspace_id = $1 ORDER BY deal_id");
    let mut deals = sqlx::query(&deals_sql)
        .bind(workspace)
        .fetch(&mut *deals_conn);
    let mut changes = sqlx::query(&changes_sql)
        .bind(workspace)
        .fetch(&mut *changes_conn);
    let mut pending: Option<DealChange> = None;
    let mut changes_done = false;
    while let Some(row) = deals.try_next().await.db()? {
        let mut deal = scanned_deal(&row)?;
        loop {
            let change = match pending.take() {
                Some(c) => c,
                None if changes_done => break,
                None => match changes.try_next().await.db()? {
                    Some(r) => deal_change(&r, workspace)?,
                    None => {
                        changes_done = true;
                        break;
                    }
                },
            };
            if change.deal_id > deal.id {
                pending = Some(change);
                break;
            }
            // A change of an earlier id has no deal (the foreign key forbids it).
            if change.deal_id == deal.id {
                deal.changes.push(change);
            }
        }
        deal.changes.sort_by_key(|c| (c.changed_at, c.id));
        visit(deal)?;
    }
    Ok(())
}

/// The same scan in keyset pages on one connection.
async fn paged(conn: &mut PgConnection, workspace: WorkspaceId, visit: Visit<'_>) -> Result<()> {
    let deals_sql = format!(
        "SELECT {DEAL_COLUMNS} FROM deals WHERE workspace_id = $1 \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    let changes_sql = format!(
        "SELECT {CHANGE_COLUMNS} WHERE workspace_id = $1 AND deal_id BETWEEN $2 AND $3 \
         ORDER BY deal_id, changed_at, id"
    );
    let mut after: Option<Uuid> = None;
    loop {
        let rows = sqlx::query(&deals_sql)
            .bind(workspace)
            .bind(after)
            .bind(PAGE)
            .fetch_all(&mut *conn)
            .await
            .db()?;
        let mut deals = rows.iter().map(scanned_deal).collect::<Result<Vec<_>>>()?;
        let (Some(first), Some(last)) = (deals.first(), deals.last()) else {
            return Ok(());
        };
        let (first, last) = (first.id, last.id);
        let rows = sqlx::query(&changes_sql)
            .bind(workspace)
            .bind(first)
            .bind(last)
            .fetch_all(&mut *conn)
            .await
            .db()?;
        let mut at = 0;
        for row in &rows {
            let change = deal_change(row, workspace)?;
            while at < deals.len() && deals[at].id < change.deal_id {
                at += 1;
            }
            if let Some(deal) = deals.get_mut(at).filter(|d| d.id == change.deal_id) {
                deal.changes.push(change);
            }
        }
        let full = deals.len() as i64 == PAGE;
        for deal in deals {
            visit(deal)?;
        }
        if !full {
            return Ok(());
        }
        after = Some(last);
    }
}

/// A row of `DEAL_COLUMNS`.
fn scanned_deal(row: &PgRow) -> Result<ScannedDeal> {
    let category: &str = row.try_get(8).db()?;
    let stage_category = StageCategory::parse(category)
        .ok_or_else(|| corrupt("deal", format!("unknown stage category {category:?}")))?;
    let source_created_at = match row.try_get::<Option<&str>, _>(11).db()? {
        Some(t) => Some(
            t.parse::<DateTime<Utc>>()
                .map_err(|e| corrupt("deal", format!("source_created_at {t:?}: {e}")))?,
        ),
        None => None,
    };
    Ok(ScannedDeal {
        id: row.try_get(0).db()?,
        source: row.try_get(1).db()?,
        fields: NewDeal {
            source_id: row.try_get(2).db()?,
            name: row.try_get(3).db()?,
            amount: row
                .try_get::<Option<Decimal>, _>(4)
                .db()?
                .map(|a| a.normalize()),
            currency: row.try_get(5).db()?,
            pipeline: row.try_get(6).db()?,
            stage: row.try_get(7).db()?,
            stage_category,
            close_date: row.try_get(9).db()?,
            forecast_category: row.try_get(10).db()?,
            source_created_at,
            owner_source_id: row.try_get(12).db()?,
            account_source_id: row.try_get(13).db()?,
            properties: serde_json::Value::Null,
            ..Default::default()
        },
        created_at: row.try_get(14).db()?,
        deleted_at: row.try_get(15).db()?,
        changes: Vec::new(),
    })
}

/// A row of `CHANGE_COLUMNS`.
fn deal_change(row: &PgRow, workspace: WorkspaceId) -> Result<DealChange> {
    let field: &str = row.try_get(2).db()?;
    let origin: &str = row.try_get(6).db()?;
    Ok(DealChange {
        deal_id: row.try_get(0).db()?,
        id: row.try_get(1).db()?,
        workspace_id: workspace,
        field: DealField::parse(field)
            .ok_or_else(|| corrupt("deal change", format!("unknown field {field:?}")))?,
        old_value: row.try_get(3).db()?,
        new_value: row.try_get(4).db()?,
        changed_at: row.try_get(5).db()?,
        origin: ChangeOrigin::parse(origin)
            .ok_or_else(|| corrupt("deal change", format!("unknown origin {origin:?}")))?,
    })
}
