//! Reading deals: the filtered, keyset-paginated list, single deals, field
//! history; storing recomputed fields.
//!
//! # How a page is read
//!
//! The list is ordered by `(sort value, id)` in the requested direction, with
//! rows whose sort value is NULL after all others in either direction. SQLite
//! keeps NULLs at the low end of an index, so a single `ORDER BY` cannot walk
//! one index in "NULLs last" order both ways. A page is therefore read in up to
//! two segments, each a range scan of the sort key's partial index
//! (`deals_live_by_*`):
//!
//! 1. rows with a value, strictly after the cursor (`(value, id) > (?, ?)`, or `<`);
//! 2. if the page is not full yet, rows whose value is NULL, ordered by id
//!    (after the cursor's id when the cursor itself is in this segment).

use std::collections::HashMap;

use pandora_core::model::{ChangeOrigin, Deal, DealChange, DealField, WorkspaceId};
use pandora_core::query::{Cursor, CursorValue, DealFilter, Direction, Page, PageRequest, SortKey};
use pandora_core::store::ComputedUpdate;
use pandora_core::{Error, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::codec::{
    amount_lower_bound_e4, amount_to_e4, amount_upper_bound_e4, col, date_bound_to_sql,
    id_from_sql, id_to_sql, json_from_sql, opt_id_from_sql, opt_time_from_sql, time_from_sql,
    time_to_sql,
};
use crate::errors::db_error;
use crate::paging::{
    after_operator, bad_cursor, fetch_size, order_keyword, push_after, push_order_limit,
};
use crate::records::resolved_ref;

/// The columns of a deal row, with its owner and account resolved.
fn deal_select() -> String {
    format!(
        "SELECT d.id, d.source, d.data, d.created_at, d.updated_at, d.deleted_at, d.computed, \
         {} AS owner_id, {} AS account_id FROM deals d",
        resolved_ref("users", "d", "owner_source_id"),
        resolved_ref("accounts", "d", "account_source_id"),
    )
}

/// Deals of `workspace` matching `filter`, one page.
pub(crate) async fn list_deals(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    filter: &DealFilter,
    page: &PageRequest,
) -> Result<Page<Deal>> {
    page.validate()?;
    filter.validate()?;
    let Some(conditions) = Conditions::new(pool, workspace, filter).await? else {
        // The owner filter names no user of this workspace: nothing matches.
        return Ok(Page::from_rows(Vec::new(), page.limit, |d| {
            Cursor::after_deal(d, page.sort)
        }));
    };
    let sort = SortColumn::of(page.sort.key);
    let direction = page.sort.direction;
    let after = page
        .after
        .as_ref()
        .map(|c| Position::of(c, page.sort.key))
        .transpose()?;
    let fetch = fetch_size(page);

    let mut rows = Vec::new();
    let nulls_after = match &after {
        Some(Position::Null(id)) => Some(*id),
        other => {
            let after_value = match other {
                Some(Position::Value(value, id)) => Some((value, *id)),
                _ => None,
            };
            rows = values_segment("", &conditions, &sort, direction, after_value, fetch)
                .build()
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
            None
        }
    };
    let missing = fetch - i64::try_from(rows.len()).unwrap_or(fetch);
    if sort.nullable && missing > 0 {
        let more = nulls_segment("", &conditions, &sort, direction, nulls_after, missing)
            .build()
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
        rows.extend(more);
    }

    let deals = rows
        .iter()
        .map(|r| deal_from_row(r, workspace))
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(deals, page.limit, |d| {
        Cursor::after_deal(d, page.sort)
    }))
}

/// Segment 1 of a page: rows whose sort value is not NULL, strictly after
/// `after` when given, in sort order. `head` prefixes the statement (tests
/// pass `EXPLAIN QUERY PLAN `).
fn values_segment(
    head: &str,
    conditions: &Conditions,
    sort: &SortColumn,
    direction: Direction,
    after: Option<(&SortValue, Uuid)>,
    fetch: i64,
) -> QueryBuilder<'static, Sqlite> {
    let mut qb = conditions.select(head);
    if sort.nullable {
        qb.push(format_args!(" AND {} IS NOT NULL", sort.column));
    }
    match after {
        Some((SortValue::Int(v), id)) => {
            push_after(&mut qb, sort.column, "d.id", direction, *v, id)
        }
        Some((SortValue::Text(v), id)) => {
            push_after(&mut qb, sort.column, "d.id", direction, v.clone(), id)
        }
        None => {}
    }
    push_order_limit(&mut qb, sort.column, "d.id", direction, fetch);
    qb
}

/// Segment 2 of a page: rows whose sort value is NULL, by id, strictly after
/// `after_id` when given.
fn nulls_segment(
    head: &str,
    conditions: &Conditions,
    sort: &SortColumn,
    direction: Direction,
    after_id: Option<Uuid>,
    fetch: i64,
) -> QueryBuilder<'static, Sqlite> {
    let mut qb = conditions.select(head);
    qb.push(format_args!(" AND {} IS NULL", sort.column));
    if let Some(id) = after_id {
        qb.push(format_args!(" AND d.id {} ", after_operator(direction)));
        qb.push_bind(id_to_sql(id));
    }
    qb.push(format_args!(
        " ORDER BY d.id {} LIMIT ",
        order_keyword(direction)
    ));
    qb.push_bind(fetch);
    qb
}

/// One deal by id (soft-deleted ones too).
pub(crate) async fn get_deal(pool: &SqlitePool, workspace: WorkspaceId, id: Uuid) -> Result<Deal> {
    let row = sqlx::query(&format!(
        "{} WHERE d.workspace_id = ? AND d.id = ?",
        deal_select()
    ))
    .bind(id_to_sql(workspace))
    .bind(id_to_sql(id))
    .fetch_optional(pool)
    .await
    .map_err(db_error)?
    .ok_or_else(|| Error::not_found("deal", id))?;
    deal_from_row(&row, workspace)
}

/// One deal by its source key (soft-deleted ones too).
pub(crate) async fn get_deal_by_source(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    source: &str,
    source_id: &str,
) -> Result<Deal> {
    let row = sqlx::query(&format!(
        "{} WHERE d.workspace_id = ? AND d.source = ? AND d.source_id = ?",
        deal_select()
    ))
    .bind(id_to_sql(workspace))
    .bind(source)
    .bind(source_id)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?
    .ok_or_else(|| Error::not_found("deal", format!("{source}/{source_id}")))?;
    deal_from_row(&row, workspace)
}

/// The deals of `source` with these source ids (soft-deleted ones too).
pub(crate) async fn deals_by_source(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    source: &str,
    source_ids: &[String],
) -> Result<Vec<Deal>> {
    if source_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::to_string(source_ids)
        .map_err(|e| Error::internal(format!("source ids as JSON: {e}")))?;
    let rows = sqlx::query(&format!(
        "{} WHERE d.workspace_id = ? AND d.source = ? \
         AND d.source_id IN (SELECT value FROM json_each(?))",
        deal_select()
    ))
    .bind(id_to_sql(workspace))
    .bind(source)
    .bind(ids)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| deal_from_row(row, workspace))
        .collect()
}

/// A deal's field history, by `(changed_at, id)`.
pub(crate) async fn deal_history(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    deal_id: Uuid,
) -> Result<Vec<DealChange>> {
    let mut conn = pool.acquire().await.map_err(db_error)?;
    sqlx::query("SELECT 1 FROM deals WHERE workspace_id = ? AND id = ?")
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(deal_id))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found("deal", deal_id))?;
    let rows = sqlx::query(
        "SELECT id, field, old_value, new_value, changed_at, origin FROM deal_changes \
         WHERE workspace_id = ? AND deal_id = ? ORDER BY changed_at, id",
    )
    .bind(id_to_sql(workspace))
    .bind(id_to_sql(deal_id))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| change_from_row(row, workspace, deal_id))
        .collect()
}

/// Ids bound per statement when a list of ids is sent as parameters.
const IDS_PER_STATEMENT: usize = 10_000;

/// The field histories of the workspace's deals with these ids, each by
/// `(changed_at, id)`; one statement per 10,000 ids.
pub(crate) async fn deal_histories(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    deal_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<DealChange>>> {
    let mut out: HashMap<Uuid, Vec<DealChange>> = HashMap::new();
    for chunk in deal_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT deal_id, id, field, old_value, new_value, changed_at, origin \
             FROM deal_changes WHERE workspace_id = ",
        );
        qb.push_bind(id_to_sql(workspace));
        qb.push(" AND deal_id IN (");
        let mut ids = qb.separated(", ");
        for id in chunk {
            ids.push_bind(id_to_sql(*id));
        }
        qb.push(") ORDER BY deal_id, changed_at, id");
        let rows = qb.build().fetch_all(pool).await.map_err(db_error)?;
        for row in &rows {
            let deal_id = id_from_sql(col(row, "deal_id")?, "deal_changes.deal_id")?;
            out.entry(deal_id)
                .or_default()
                .push(change_from_row(row, workspace, deal_id)?);
        }
    }
    Ok(out)
}

/// Stores recomputed fields on the deals still at their expected
/// `updated_at`, in one transaction; returns how many.
pub(crate) async fn set_deal_computed(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    updates: &[ComputedUpdate],
) -> Result<u64> {
    if updates.is_empty() {
        return Ok(0);
    }
    let encoded = updates
        .iter()
        .map(|u| {
            let json = serde_json::to_string(&u.fields)?;
            Ok((u, json))
        })
        .collect::<Result<Vec<_>>>()?;
    let ws = id_to_sql(workspace);
    let mut tx = pool.begin().await.map_err(db_error)?;
    let mut done = 0;
    for (u, json) in &encoded {
        let updated = sqlx::query(
            "UPDATE deals SET risk_score = ?, computed = ? \
             WHERE workspace_id = ? AND id = ? AND updated_at = ?",
        )
        .bind(i64::from(u.fields.risk_score))
        .bind(json.as_str())
        .bind(ws.as_slice())
        .bind(id_to_sql(u.deal_id))
        .bind(time_to_sql(u.expected_updated_at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        done += updated.rows_affected();
    }
    tx.commit().await.map_err(db_error)?;
    Ok(done)
}

fn deal_from_row(row: &SqliteRow, workspace: WorkspaceId) -> Result<Deal> {
    let computed: Option<&str> = col(row, "computed")?;
    Ok(Deal {
        id: id_from_sql(col(row, "id")?, "deals.id")?,
        workspace_id: workspace,
        source: col(row, "source")?,
        fields: json_from_sql(col(row, "data")?, "deals.data")?,
        owner_id: opt_id_from_sql(col(row, "owner_id")?, "users.id")?,
        account_id: opt_id_from_sql(col(row, "account_id")?, "accounts.id")?,
        computed: computed
            .map(|c| json_from_sql(c, "deals.computed"))
            .transpose()?,
        created_at: time_from_sql(col(row, "created_at")?, "deals.created_at")?,
        updated_at: time_from_sql(col(row, "updated_at")?, "deals.updated_at")?,
        deleted_at: opt_time_from_sql(col(row, "deleted_at")?, "deals.deleted_at")?,
    })
}

fn change_from_row(row: &SqliteRow, workspace: WorkspaceId, deal_id: Uuid) -> Result<DealChange> {
    let field: &str = col(row, "field")?;
    let origin: &str = col(row, "origin")?;
    Ok(DealChange {
        id: id_from_sql(col(row, "id")?, "deal_changes.id")?,
        workspace_id: workspace,
        deal_id,
        field: DealField::parse(field)
            .ok_or_else(|| Error::internal("stored deal_changes.field is not a known field"))?,
        old_value: col(row, "old_value")?,
        new_value: col(row, "new_value")?,
        changed_at: time_from_sql(col(row, "changed_at")?, "deal_changes.changed_at")?,
        origin: ChangeOrigin::parse(origin)
            .ok_or_else(|| Error::internal("stored deal_changes.origin is not a known origin"))?,
    })
}

/// The column a sort key reads, and whether it can be NULL.
struct SortColumn {
    column: &'static str,
    nullable: bool,
}

impl SortColumn {
    fn of(key: SortKey) -> SortColumn {
        match key {
            SortKey::UpdatedAt => SortColumn {
                column: "d.updated_at",
                nullable: false,
            },
            SortKey::CloseDate => SortColumn {
                column: "d.close_date",
                nullable: true,
            },
            SortKey::Amount => SortColumn {
                column: "d.amount_e4",
                nullable: true,
            },
            SortKey::Risk => SortColumn {
                column: "d.risk_score",
                nullable: true,
            },
        }
    }
}

/// A sort value as stored.
#[derive(Debug, Clone)]
enum SortValue {
    Int(i64),
    Text(String),
}

/// Where the previous page ended: in the segment of rows with a value, or among the NULLs.
#[derive(Debug, Clone)]
enum Position {
    Value(SortValue, Uuid),
    Null(Uuid),
}

impl Position {
    /// Decodes a cursor for `key`, rejecting a value of the wrong type.
    fn of(cursor: &Cursor, key: SortKey) -> Result<Position> {
        let value = match (key, &cursor.value) {
            (SortKey::UpdatedAt, CursorValue::Timestamp(t)) => SortValue::Int(time_to_sql(*t)),
            (SortKey::CloseDate, CursorValue::Date(d)) => SortValue::Text(date_bound_to_sql(*d)),
            (SortKey::Amount, CursorValue::Decimal(a)) => {
                SortValue::Int(amount_to_e4(*a, "cursor").map_err(|_| bad_cursor())?)
            }
            (SortKey::Risk, CursorValue::Integer(r)) => SortValue::Int(*r),
            (SortKey::CloseDate | SortKey::Amount | SortKey::Risk, CursorValue::Null) => {
                return Ok(Position::Null(cursor.id))
            }
            _ => return Err(bad_cursor()),
        };
        Ok(Position::Value(value, cursor.id))
    }
}

/// The filter, encoded as stored, ready to append to a query.
#[derive(Debug, Default)]
struct Conditions {
    workspace: Vec<u8>,
    stage: Option<String>,
    pipeline: Option<String>,
    /// `(source, source_id)` of the owner.
    owner: Option<(String, String)>,
    status: Option<&'static str>,
    close_date_from: Option<String>,
    close_date_to: Option<String>,
    updated_since: Option<i64>,
    min_amount_e4: Option<i64>,
    max_amount_e4: Option<i64>,
    q: Option<String>,
    min_risk: Option<i64>,
}

impl Conditions {
    /// Encodes `filter`; `None` when it cannot match anything (unknown owner).
    async fn new(
        pool: &SqlitePool,
        workspace: WorkspaceId,
        filter: &DealFilter,
    ) -> Result<Option<Conditions>> {
        let owner = match filter.owner_id {
            None => None,
            Some(user) => {
                let found: Option<(String, String)> = sqlx::query_as(
                    "SELECT source, source_id FROM users WHERE workspace_id = ? AND id = ?",
                )
                .bind(id_to_sql(workspace))
                .bind(id_to_sql(user))
                .fetch_optional(pool)
                .await
                .map_err(db_error)?;
                match found {
                    Some(key) => Some(key),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(Conditions {
            workspace: id_to_sql(workspace),
            stage: filter.stage.clone(),
            pipeline: filter.pipeline.clone(),
            owner,
            status: filter.status.map(|s| s.as_str()),
            close_date_from: filter.close_date_from.map(date_bound_to_sql),
            close_date_to: filter.close_date_to.map(date_bound_to_sql),
            updated_since: filter.updated_since.map(time_to_sql),
            min_amount_e4: filter.min_amount.map(amount_lower_bound_e4),
            max_amount_e4: filter.max_amount.map(amount_upper_bound_e4),
            q: filter.q.clone(),
            min_risk: filter.min_risk.map(i64::from),
        }))
    }

    /// `SELECT … FROM deals d WHERE <workspace, live, filters>`, ready for more conditions.
    fn select(&self, head: &str) -> QueryBuilder<'static, Sqlite> {
        let mut qb = QueryBuilder::new(format!("{head}{}", deal_select()));
        qb.push(" WHERE d.workspace_id = ");
        qb.push_bind(self.workspace.clone());
        qb.push(" AND d.deleted_at IS NULL");
        if let Some(stage) = &self.stage {
            qb.push(" AND d.stage = ").push_bind(stage.clone());
        }
        if let Some(pipeline) = &self.pipeline {
            qb.push(" AND d.pipeline = ").push_bind(pipeline.clone());
        }
        if let Some((source, source_id)) = &self.owner {
            qb.push(" AND d.source = ").push_bind(source.clone());
            qb.push(" AND d.owner_source_id = ")
                .push_bind(source_id.clone());
        }
        if let Some(status) = self.status {
            qb.push(" AND d.stage_category = ").push_bind(status);
        }
        if let Some(from) = &self.close_date_from {
            qb.push(" AND d.close_date >= ").push_bind(from.clone());
        }
        if let Some(to) = &self.close_date_to {
            qb.push(" AND d.close_date <= ").push_bind(to.clone());
        }
        if let Some(since) = self.updated_since {
            qb.push(" AND d.updated_at >= ").push_bind(since);
        }
        if let Some(min) = self.min_amount_e4 {
            qb.push(" AND d.amount_e4 >= ").push_bind(min);
        }
        if let Some(max) = self.max_amount_e4 {
            qb.push(" AND d.amount_e4 <= ").push_bind(max);
        }
        if let Some(min) = self.min_risk {
            qb.push(" AND d.risk_score >= ").push_bind(min);
        }
        if let Some(q) = &self.q {
            // instr() takes q literally (no LIKE wildcards); lower() folds ASCII.
            qb.push(" AND instr(lower(d.name), lower(")
                .push_bind(q.clone())
                .push(")) > 0");
        }
        qb
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::SqlitePoolOptions;
    use sqlx::Row;

    use super::*;
    use crate::store::MIGRATOR;

    async fn plan_of(pool: &SqlitePool, mut qb: QueryBuilder<'static, Sqlite>) -> String {
        let rows = qb.build().fetch_all(pool).await.expect("explain");
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Every sort, direction and segment is a range scan of the sort key's
    /// partial index, already in order (no temporary B-tree for ORDER BY).
    #[tokio::test]
    async fn every_sort_reads_its_index_in_order() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        MIGRATOR.run(&pool).await.expect("migrate");
        let conditions = Conditions {
            workspace: vec![0; 16],
            ..Default::default()
        };
        let id = Uuid::now_v7();
        for (key, index) in [
            (SortKey::UpdatedAt, "deals_live_by_updated"),
            (SortKey::CloseDate, "deals_live_by_close_date"),
            (SortKey::Amount, "deals_live_by_amount"),
            (SortKey::Risk, "deals_live_by_risk"),
        ] {
            let sort = SortColumn::of(key);
            let value = match key {
                SortKey::CloseDate => SortValue::Text("2024-01-01".into()),
                _ => SortValue::Int(5),
            };
            for direction in [Direction::Asc, Direction::Desc] {
                let mut plans = Vec::new();
                for after in [None, Some((&value, id))] {
                    let head = "EXPLAIN QUERY PLAN ";
                    let qb = values_segment(head, &conditions, &sort, direction, after, 51);
                    plans.push(plan_of(&pool, qb).await);
                    if sort.nullable {
                        let after_id = after.map(|(_, id)| id);
                        let qb = nulls_segment(head, &conditions, &sort, direction, after_id, 51);
                        plans.push(plan_of(&pool, qb).await);
                    }
                }
                for plan in plans {
                    assert!(plan.contains(index), "{key:?} {direction:?}: {plan}");
                    assert!(
                        !plan.contains("TEMP B-TREE"),
                        "{key:?} {direction:?}: {plan}"
                    );
                }
            }
        }
    }
}
