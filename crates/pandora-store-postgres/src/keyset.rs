//! Keyset pagination: turning a [`PageRequest`] into `WHERE` / `ORDER BY` SQL.
//!
//! Order is `(sort value, id)`, both in the request's direction, with rows
//! whose sort value is NULL after all others in either direction. Conditions
//! are row comparisons, `(value, id) < ($v, $id)`, which PostgreSQL turns into
//! an index range that starts right at the cursor, whatever the page depth.

use chrono::{DateTime, NaiveDate, Utc};
use pandora_core::query::{Cursor, CursorValue, Direction, PageRequest, SortKey};
use pandora_core::{Error, Result};
use rust_decimal::Decimal;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

/// A non-NULL sort value of a cursor, typed by sort key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SortValue {
    /// `updated_at`.
    Timestamp(DateTime<Utc>),
    /// `close_date`.
    Date(NaiveDate),
    /// `amount`.
    Decimal(Decimal),
    /// `risk_score`.
    Integer(i16),
}

/// Where a page starts: strictly after this position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum After {
    /// After `(value, id)`, among the rows with a sort value.
    Value(SortValue, Uuid),
    /// Among the rows whose sort value is NULL, after `id`.
    Null(Uuid),
}

/// Validates `page` (limit, cursor made for this sort, value of the right type).
pub(crate) fn after(page: &PageRequest) -> Result<Option<After>> {
    page.validate()?;
    let Some(Cursor { sort, value, id }) = &page.after else {
        return Ok(None);
    };
    let after = match (sort.key, value) {
        (SortKey::UpdatedAt, CursorValue::Timestamp(t)) => {
            After::Value(SortValue::Timestamp(*t), *id)
        }
        (SortKey::CloseDate, CursorValue::Date(d)) => After::Value(SortValue::Date(*d), *id),
        (SortKey::Amount, CursorValue::Decimal(a)) => After::Value(SortValue::Decimal(*a), *id),
        (SortKey::Risk, CursorValue::Integer(r)) => match i16::try_from(*r) {
            Ok(r) => After::Value(SortValue::Integer(r), *id),
            Err(_) => {
                return Err(Error::invalid(
                    "cursor",
                    "is not a cursor returned by this list",
                ))
            }
        },
        (SortKey::CloseDate | SortKey::Amount | SortKey::Risk, CursorValue::Null) => {
            After::Null(*id)
        }
        _ => {
            return Err(Error::invalid(
                "cursor",
                "is not a cursor returned by this list",
            ))
        }
    };
    Ok(Some(after))
}

/// Rejects sorts other than `updated_at` (every list but deals).
pub(crate) fn require_updated_at(page: &PageRequest) -> Result<()> {
    if page.sort.key != SortKey::UpdatedAt {
        return Err(Error::invalid(
            "sort",
            "this list can only be sorted by updated_at",
        ));
    }
    Ok(())
}

/// `ASC` / `DESC`.
fn dir_sql(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    }
}

/// The comparison meaning "after" in `direction`.
pub(crate) fn after_op(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => ">",
        Direction::Desc => "<",
    }
}

/// `ORDER BY` items for `column` (nullable ones keep NULLs last), then id.
///
/// A NOT NULL column gets no `NULLS` clause so that a single ascending index
/// serves both directions (scanned backwards for `DESC`).
pub(crate) fn order_by(alias: &str, column: &str, nullable: bool, direction: Direction) -> String {
    let dir = dir_sql(direction);
    if nullable {
        format!("{alias}.{column} {dir} NULLS LAST, {alias}.id {dir}")
    } else {
        format!("{alias}.{column} {dir}, {alias}.id {dir}")
    }
}

/// Pushes ` AND (alias.column, alias.id) <op> (value, id)`.
pub(crate) fn push_after_value(
    qb: &mut QueryBuilder<'_, Postgres>,
    alias: &str,
    column: &str,
    direction: Direction,
    value: SortValue,
    id: Uuid,
) {
    let op = after_op(direction);
    qb.push(format_args!(" AND ({alias}.{column}, {alias}.id) {op} ("));
    match value {
        SortValue::Timestamp(t) => qb.push_bind(t).push("::timestamptz, "),
        SortValue::Date(d) => qb.push_bind(d).push("::date, "),
        SortValue::Decimal(a) => qb.push_bind(a).push("::numeric, "),
        SortValue::Integer(r) => qb.push_bind(r).push("::int2, "),
    };
    qb.push_bind(id).push("::uuid)");
}

/// Pushes the keyset condition of a list sorted by the NOT NULL `updated_at`
/// (whose cursors always carry a value).
pub(crate) fn push_after_updated(
    qb: &mut QueryBuilder<'_, Postgres>,
    alias: &str,
    direction: Direction,
    after: Option<After>,
) {
    if let Some(After::Value(value, id)) = after {
        push_after_value(qb, alias, "updated_at", direction, value, id);
    }
}

/// ` LIMIT n` with one more row than the page, to know whether another follows.
///
/// Written as a literal (the limit is a validated integer): with a parameter,
/// a generic plan would have to guess the limit and could prefer a full sort
/// over walking the sort index.
pub(crate) fn limit_sql(page: &PageRequest) -> String {
    format!(" LIMIT {}", u64::from(page.limit) + 1)
}
