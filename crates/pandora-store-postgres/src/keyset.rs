//! Keyset pagination: turning a [`PageRequest`] into `WHERE` / `ORDER BY` SQL.
//!
//! Order is `(sort value, id)`, both in the request's direction, with rows
//! whose sort value is NULL after all others in either direction. The
//! conditions are written as row comparisons so that PostgreSQL can start the
//! index scan right at the cursor, whatever the depth of the page.

use chrono::{DateTime, NaiveDate, Utc};
use pandora_core::query::{Cursor, CursorValue, Direction, PageRequest, SortKey};
use pandora_core::{Error, Result};
use rust_decimal::Decimal;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

/// A validated cursor value, typed by sort key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum After {
    /// After `(updated_at, id)`.
    Timestamp(DateTime<Utc>, Uuid),
    /// After `(close_date, id)`.
    Date(NaiveDate, Uuid),
    /// After `(amount, id)`.
    Decimal(Decimal, Uuid),
    /// Among the NULL-valued rows, after `id`.
    Null(Uuid),
}

/// Validates `page` (limit, cursor made for this sort and of the right type).
pub(crate) fn after(page: &PageRequest) -> Result<Option<After>> {
    page.validate()?;
    let Some(Cursor { sort, value, id }) = &page.after else {
        return Ok(None);
    };
    let after = match (sort.key, value) {
        (SortKey::UpdatedAt, CursorValue::Timestamp(t)) => After::Timestamp(*t, *id),
        (SortKey::CloseDate, CursorValue::Date(d)) => After::Date(*d, *id),
        (SortKey::Amount, CursorValue::Decimal(a)) => After::Decimal(*a, *id),
        (SortKey::CloseDate | SortKey::Amount, CursorValue::Null) => After::Null(*id),
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
pub(crate) fn dir_sql(direction: Direction) -> &'static str {
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
/// serves both directions.
pub(crate) fn order_by(alias: &str, column: &str, nullable: bool, direction: Direction) -> String {
    let dir = dir_sql(direction);
    if nullable {
        format!("{alias}.{column} {dir} NULLS LAST, {alias}.id {dir}")
    } else {
        format!("{alias}.{column} {dir}, {alias}.id {dir}")
    }
}

/// Pushes ` AND (alias.column, alias.id) <op> (value, id)` for a non-NULL cursor value.
pub(crate) fn push_after_value(
    qb: &mut QueryBuilder<'_, Postgres>,
    alias: &str,
    column: &str,
    direction: Direction,
    after: After,
) {
    let op = after_op(direction);
    if let After::Null(_) = after {
        // A NULL-valued cursor has no value to compare with; callers continue
        // among the NULL rows themselves. Never match rather than guess.
        qb.push(" AND FALSE");
        return;
    }
    qb.push(format_args!(" AND ({alias}.{column}, {alias}.id) {op} ("));
    match after {
        After::Timestamp(t, id) => {
            qb.push_bind(t).push("::timestamptz, ").push_bind(id);
        }
        After::Date(d, id) => {
            qb.push_bind(d).push("::date, ").push_bind(id);
        }
        After::Decimal(a, id) => {
            qb.push_bind(a).push("::numeric, ").push_bind(id);
        }
        After::Null(_) => {}
    }
    qb.push("::uuid)");
}

/// Pushes the keyset condition of a list sorted by the NOT NULL `updated_at`.
pub(crate) fn push_after_updated(
    qb: &mut QueryBuilder<'_, Postgres>,
    alias: &str,
    direction: Direction,
    after: Option<After>,
) {
    if let Some(a) = after {
        push_after_value(qb, alias, "updated_at", direction, a);
    }
}

/// `LIMIT` value: one more row than the page, to know whether another follows.
pub(crate) fn fetch_limit(page: &PageRequest) -> i64 {
    i64::from(page.limit) + 1
}
