//! Reading deals: the filtered, keyset-paginated list, single deals and
//! their field history; storing recomputed fields.
//!
//! A page is selected from `deals` alone (so the sort index drives the scan
//! and stops after `limit + 1` rows), then joined to `users` and `accounts`
//! to resolve `owner_id` and `account_id`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pandora_core::model::{Deal, DealChange, WorkspaceId};
use pandora_core::query::{Cursor, DealFilter, Page, PageRequest, SortKey};
use pandora_core::store::ComputedUpdate;
use pandora_core::{Error, Result};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::errors::DbResultExt;
use crate::keyset::{self, After};
use crate::rows;

/// Columns of a deal page, before the reference joins.
const PAGE_COLUMNS: &str = "d.id, d.workspace_id, d.source, d.data, d.created_at, d.updated_at, \
     d.deleted_at, d.owner_source_id, d.account_source_id, d.amount, d.close_date, \
     d.risk_score, d.computed";

/// The deal columns a query selects besides [`rows::RECORD_COLUMNS`].
const DEAL_COLUMNS: &str = ", r.computed";

/// Joins that resolve a deal's owner and account (live rows of the same
/// workspace and source); `r` is the deal.
const REFERENCE_JOINS: &str = "\
    LEFT JOIN users o ON o.workspace_id = r.workspace_id AND o.source = r.source \
        AND o.source_id = r.owner_source_id AND o.deleted_at IS NULL \
    LEFT JOIN accounts a ON a.workspace_id = r.workspace_id AND a.source = r.source \
        AND a.source_id = r.account_source_id AND a.deleted_at IS NULL";

/// The sort column of a deal list and whether it can be NULL.
fn sort_column(key: SortKey) -> (&'static str, bool) {
    match key {
        SortKey::UpdatedAt => ("updated_at", false),
        SortKey::CloseDate => ("close_date", true),
        SortKey::Amount => ("amount", true),
        SortKey::Risk => ("risk_score", true),
    }
}

/// The `(source, source_id)` of a live user of the workspace.
async fn owner_key(
    pool: &PgPool,
    workspace: WorkspaceId,
    owner_id: Uuid,
) -> Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT source, source_id FROM users \
         WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(workspace)
    .bind(owner_id)
    .fetch_optional(pool)
    .await
    .db()
}

/// Escapes `%`, `_` and `\` so that `q` matches literally inside `ILIKE`.
fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A validated filter, with the owner resolved to its source key.
struct Filters<'a> {
    workspace: WorkspaceId,
    filter: &'a DealFilter,
    owner: Option<(String, String)>,
    name_pattern: Option<String>,
}

impl Filters<'_> {
    /// Pushes `WHERE …` for live deals of the workspace matching the filter.
    fn push(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        let f = self.filter;
        qb.push(" WHERE d.workspace_id = ")
            .push_bind(self.workspace)
            .push(" AND d.deleted_at IS NULL");
        if let Some(stage) = &f.stage {
            qb.push(" AND d.stage = ").push_bind(stage.clone());
        }
        if let Some(pipeline) = &f.pipeline {
            qb.push(" AND d.pipeline = ").push_bind(pipeline.clone());
        }
        if let Some((source, source_id)) = &self.owner {
            qb.push(" AND d.source = ")
                .push_bind(source.clone())
                .push(" AND d.owner_source_id = ")
                .push_bind(source_id.clone());
        }
        if let Some(status) = f.status {
            qb.push(" AND d.stage_category = ")
                .push_bind(status.as_str());
        }
        if let Some(from) = f.close_date_from {
            qb.push(" AND d.close_date >= ").push_bind(from);
        }
        if let Some(to) = f.close_date_to {
            qb.push(" AND d.close_date <= ").push_bind(to);
        }
        if let Some(since) = f.updated_since {
            qb.push(" AND d.updated_at >= ").push_bind(since);
        }
        if let Some(min) = f.min_amount {
            qb.push(" AND d.amount >= ").push_bind(min);
        }
        if let Some(max) = f.max_amount {
            qb.push(" AND d.amount <= ").push_bind(max);
        }
        if let Some(pattern) = &self.name_pattern {
            qb.push(" AND d.name ILIKE ").push_bind(pattern.clone());
        }
        if let Some(min) = f.min_risk {
            qb.push(" AND d.risk_score >= ")
                .push_bind(i16::from(min))
                .push("::int2");
        }
    }
}

/// One `SELECT … ORDER BY … LIMIT` over `deals`, with an extra condition.
fn push_branch(
    qb: &mut QueryBuilder<'_, Postgres>,
    filters: &Filters<'_>,
    order: &str,
    limit: &str,
    extra: impl FnOnce(&mut QueryBuilder<'_, Postgres>),
) {
    qb.push("(SELECT ").push(PAGE_COLUMNS).push(" FROM deals d");
    filters.push(qb);
    extra(qb);
    qb.push(" ORDER BY ").push(order).push(limit).push(")");
}

/// `RecordStore::list_deals`.
pub(crate) async fn list_deals(
    pool: &PgPool,
    workspace: WorkspaceId,
    filter: &DealFilter,
    page: &PageRequest,
) -> Result<Page<Deal>> {
    filter.validate()?;
    let after = keyset::after(page)?;
    let owner = match filter.owner_id {
        Some(owner_id) => match owner_key(pool, workspace, owner_id).await? {
            Some(key) => Some(key),
            // An unknown owner matches nothing.
            None => {
                return Ok(Page {
                    data: Vec::new(),
                    next_cursor: None,
                })
            }
        },
        None => None,
    };
    let filters = Filters {
        workspace,
        filter,
        owner,
        name_pattern: filter.q.as_deref().map(like_pattern),
    };

    let sort = page.sort;
    let (column, nullable) = sort_column(sort.key);
    let direction = sort.direction;
    let inner_order = keyset::order_by("d", column, nullable, direction);
    let outer_order = keyset::order_by("r", column, nullable, direction);
    let limit = keyset::limit_sql(page);
    let op = keyset::after_op(direction);

    let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
    qb.push(rows::RECORD_COLUMNS)
        .push(DEAL_COLUMNS)
        .push(", o.id AS owner_id, a.id AS account_id FROM (");
    match after {
        None => push_branch(&mut qb, &filters, &inner_order, &limit, |_| {}),
        Some(After::Null(id)) => {
            // Already among the NULL-valued rows: continue by id.
            push_branch(&mut qb, &filters, &inner_order, &limit, |qb| {
                qb.push(format_args!(" AND d.{column} IS NULL AND d.id {op} "))
                    .push_bind(id)
                    .push("::uuid");
            });
        }
        Some(After::Value(value, id)) => {
            // Rows after the cursor among the non-NULL values, then (for a
            // nullable column) every NULL-valued row. Each branch is one
            // index range scan; the outer ORDER BY merges at most 2 pages.
            push_branch(&mut qb, &filters, &inner_order, &limit, |qb| {
                keyset::push_after_value(qb, "d", column, direction, value, id);
            });
            if nullable {
                qb.push(" UNION ALL ");
                push_branch(&mut qb, &filters, &inner_order, &limit, |qb| {
                    qb.push(format_args!(" AND d.{column} IS NULL"));
                });
            }
        }
    }
    qb.push(") r ")
        .push(REFERENCE_JOINS)
        .push(" ORDER BY ")
        .push(outer_order)
        .push(&limit);

    let fetched = qb.build().fetch_all(pool).await.db()?;
    let deals = fetched.iter().map(rows::deal).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(deals, page.limit, |d| {
        Cursor::after_deal(d, sort)
    }))
}

/// `RecordStore::get_deal` and `get_deal_by_source`: the deal matching
/// `condition` (soft-deleted ones too).
async fn get_deal_where(
    pool: &PgPool,
    workspace: WorkspaceId,
    build: impl FnOnce(&mut QueryBuilder<'_, Postgres>),
) -> Result<Vec<Deal>> {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
    qb.push(rows::RECORD_COLUMNS)
        .push(DEAL_COLUMNS)
        .push(", o.id AS owner_id, a.id AS account_id FROM deals r ")
        .push(REFERENCE_JOINS)
        .push(" WHERE r.workspace_id = ")
        .push_bind(workspace);
    build(&mut qb);
    let fetched = qb.build().fetch_all(pool).await.db()?;
    fetched.iter().map(rows::deal).collect()
}

/// `RecordStore::get_deal`.
pub(crate) async fn get_deal(pool: &PgPool, workspace: WorkspaceId, id: Uuid) -> Result<Deal> {
    get_deal_where(pool, workspace, |qb| {
        qb.push(" AND r.id = ").push_bind(id);
    })
    .await?
    .pop()
    .ok_or_else(|| Error::not_found("deal", id))
}

/// `RecordStore::get_deal_by_source`.
pub(crate) async fn get_deal_by_source(
    pool: &PgPool,
    workspace: WorkspaceId,
    source: &str,
    source_id: &str,
) -> Result<Deal> {
    let (s, sid) = (source.to_string(), source_id.to_string());
    get_deal_where(pool, workspace, |qb| {
        qb.push(" AND r.source = ")
            .push_bind(s)
            .push(" AND r.source_id = ")
            .push_bind(sid);
    })
    .await?
    .pop()
    .ok_or_else(|| Error::not_found("deal", format!("{source}/{source_id}")))
}

/// `RecordStore::deals_by_source`.
///
/// The sync engine calls this for every page, over tables that grow while
/// it runs, so their statistics are often far behind. Each id is therefore
/// looked up by its own index probe (a `LATERAL … LIMIT 1` subquery, which
/// the planner can neither flatten nor turn into a scan of the workspace's
/// deals), as are the owner and the account; a plan chosen while the tables
/// looked empty otherwise scanned every deal of the workspace for each page.
pub(crate) async fn deals_by_source(
    pool: &PgPool,
    workspace: WorkspaceId,
    source: &str,
    source_ids: &[String],
) -> Result<Vec<Deal>> {
    if source_ids.is_empty() {
        return Ok(Vec::new());
    }
    const SQL: &str = "\
        SELECT r.id, r.workspace_id, r.source, r.data, r.created_at, r.updated_at, \
            r.deleted_at, r.computed, o.id AS owner_id, a.id AS account_id \
        FROM (SELECT DISTINCT unnest($3::text[]) AS source_id) AS k \
        CROSS JOIN LATERAL (SELECT d.* FROM deals d WHERE d.workspace_id = $1 \
            AND d.source = $2 AND d.source_id = k.source_id LIMIT 1) AS r \
        LEFT JOIN LATERAL (SELECT u.id FROM users u WHERE u.workspace_id = $1 \
            AND u.source = $2 AND u.source_id = r.owner_source_id AND u.deleted_at IS NULL \
            LIMIT 1) AS o ON true \
        LEFT JOIN LATERAL (SELECT c.id FROM accounts c WHERE c.workspace_id = $1 \
            AND c.source = $2 AND c.source_id = r.account_source_id AND c.deleted_at IS NULL \
            LIMIT 1) AS a ON true";
    let fetched = sqlx::query(SQL)
        .bind(workspace)
        .bind(source)
        .bind(source_ids)
        .fetch_all(pool)
        .await
        .db()?;
    fetched.iter().map(rows::deal).collect()
}

/// `RecordStore::deal_history`: the deal's changes by `(changed_at, id)`.
pub(crate) async fn deal_history(
    pool: &PgPool,
    workspace: WorkspaceId,
    deal_id: Uuid,
) -> Result<Vec<DealChange>> {
    // One query that also tells whether the deal exists in the workspace:
    // a deal without history yields one row of NULL change columns.
    let fetched = sqlx::query(
        "SELECT c.id, d.workspace_id, d.id AS deal_id, c.field, c.old_value, c.new_value, \
                c.changed_at, c.origin \
         FROM deals d \
         LEFT JOIN deal_changes c ON c.workspace_id = d.workspace_id AND c.deal_id = d.id \
         WHERE d.workspace_id = $1 AND d.id = $2 \
         ORDER BY c.changed_at, c.id",
    )
    .bind(workspace)
    .bind(deal_id)
    .fetch_all(pool)
    .await
    .db()?;
    if fetched.is_empty() {
        return Err(Error::not_found("deal", deal_id));
    }
    let mut changes = Vec::with_capacity(fetched.len());
    for row in &fetched {
        let id: Option<Uuid> = sqlx::Row::try_get(row, "id").db()?;
        if id.is_some() {
            changes.push(rows::deal_change(row)?);
        }
    }
    Ok(changes)
}

/// `RecordStore::deal_histories`: one query, each deal's changes by
/// `(changed_at, id)`.
pub(crate) async fn deal_histories(
    pool: &PgPool,
    workspace: WorkspaceId,
    deal_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<DealChange>>> {
    let mut out: HashMap<Uuid, Vec<DealChange>> = HashMap::new();
    if deal_ids.is_empty() {
        return Ok(out);
    }
    let fetched = sqlx::query(
        "SELECT c.id, c.workspace_id, c.deal_id, c.field, c.old_value, c.new_value, \
                c.changed_at, c.origin \
         FROM deal_changes c \
         WHERE c.workspace_id = $1 AND c.deal_id = ANY($2::uuid[]) \
         ORDER BY c.deal_id, c.changed_at, c.id",
    )
    .bind(workspace)
    .bind(deal_ids)
    .fetch_all(pool)
    .await
    .db()?;
    for row in &fetched {
        let change = rows::deal_change(row)?;
        out.entry(change.deal_id).or_default().push(change);
    }
    Ok(out)
}

/// `RecordStore::set_deal_computed`: one `UPDATE … FROM unnest(…)`, each row
/// only if its `updated_at` is still the expected one.
pub(crate) async fn set_deal_computed(
    pool: &PgPool,
    workspace: WorkspaceId,
    updates: &[ComputedUpdate],
) -> Result<u64> {
    if updates.is_empty() {
        return Ok(0);
    }
    let mut sorted: Vec<&ComputedUpdate> = updates.iter().collect();
    // Lock rows in id order, as concurrent writers do by source id.
    sorted.sort_by_key(|u| u.deal_id);
    let ids: Vec<Uuid> = sorted.iter().map(|u| u.deal_id).collect();
    let expected: Vec<DateTime<Utc>> = sorted.iter().map(|u| u.expected_updated_at).collect();
    let risk: Vec<i16> = sorted
        .iter()
        .map(|u| i16::from(u.fields.risk_score))
        .collect();
    let computed: Vec<String> = sorted
        .iter()
        .map(|u| serde_json::to_string(&u.fields))
        .collect::<std::result::Result<_, _>>()?;
    let done = sqlx::query(
        "UPDATE deals d SET risk_score = u.risk_score, computed = u.computed::jsonb \
         FROM (SELECT unnest($2::uuid[]) AS id, unnest($3::timestamptz[]) AS expected, \
               unnest($4::int2[]) AS risk_score, unnest($5::text[]) AS computed) u \
         WHERE d.workspace_id = $1 AND d.id = u.id AND d.updated_at = u.expected",
    )
    .bind(workspace)
    .bind(&ids[..])
    .bind(&expected[..])
    .bind(&risk[..])
    .bind(&computed[..])
    .execute(pool)
    .await
    .db()?;
    Ok(done.rows_affected())
}
