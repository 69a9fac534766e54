//! Keyset pagination helpers shared by the lists.
//!
//! A page is read as `ORDER BY (sort value, id)` in the requested direction,
//! continuing strictly after the cursor's `(value, id)` with a row-value
//! comparison, which SQLite answers with a range scan of the matching index.

use pandora_core::query::{Cursor, CursorValue, Direction, PageRequest, SortKey};
use pandora_core::{Error, Result};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::codec::{id_to_sql, time_to_sql};

/// `ASC` or `DESC`.
pub(crate) fn order_keyword(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    }
}

/// The comparison that means "after" in `direction`.
pub(crate) fn after_operator(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => ">",
        Direction::Desc => "<",
    }
}

/// Rows to fetch for a page: one more than the limit tells whether a next page exists.
pub(crate) fn fetch_size(page: &PageRequest) -> i64 {
    i64::from(page.limit) + 1
}

/// Appends ` AND (value_col, id_col) <op> (value, id)`: rows strictly after the cursor.
pub(crate) fn push_after<'args, T>(
    qb: &mut QueryBuilder<'args, Sqlite>,
    value_col: &str,
    id_col: &str,
    direction: Direction,
    value: T,
    id: Uuid,
) where
    T: 'args + sqlx::Encode<'args, Sqlite> + sqlx::Type<Sqlite>,
{
    qb.push(format_args!(
        " AND ({value_col}, {id_col}) {} (",
        after_operator(direction)
    ));
    qb.push_bind(value);
    qb.push(", ");
    qb.push_bind(id_to_sql(id));
    qb.push(")");
}

/// Appends ` ORDER BY value_col <dir>, id_col <dir> LIMIT n`.
pub(crate) fn push_order_limit(
    qb: &mut QueryBuilder<'_, Sqlite>,
    value_col: &str,
    id_col: &str,
    direction: Direction,
    limit: i64,
) {
    let dir = order_keyword(direction);
    qb.push(format_args!(
        " ORDER BY {value_col} {dir}, {id_col} {dir} LIMIT "
    ));
    qb.push_bind(limit);
}

/// A validated request for a list sorted by `updated_at` only (every list but deals).
pub(crate) struct UpdatedPage {
    /// Direction of the sort.
    pub direction: Direction,
    /// `(updated_at, id)` of the last row of the previous page.
    pub after: Option<(i64, Uuid)>,
    /// Rows to fetch (limit + 1).
    pub fetch: i64,
}

impl UpdatedPage {
    /// Checks the request: limit in range, sort key `updated_at`, cursor a timestamp.
    pub(crate) fn parse(page: &PageRequest) -> Result<UpdatedPage> {
        page.validate()?;
        if page.sort.key != SortKey::UpdatedAt {
            return Err(Error::invalid(
                "sort",
                "this list can only be sorted by updated_at",
            ));
        }
        let after = page.after.as_ref().map(updated_cursor).transpose()?;
        Ok(UpdatedPage {
            direction: page.sort.direction,
            after,
            fetch: fetch_size(page),
        })
    }

    /// Appends the cursor condition and the order and limit, for columns
    /// `{alias}.updated_at` and `{alias}.id`.
    pub(crate) fn push_tail(&self, qb: &mut QueryBuilder<'_, Sqlite>, alias: &str) {
        let value_col = format!("{alias}.updated_at");
        let id_col = format!("{alias}.id");
        self.push_tail_on(qb, &value_col, &id_col);
    }

    /// Appends the cursor condition and the order and limit for a list whose
    /// time order is `value_col` (e.g. `created_at` for sync runs), ties by `id_col`.
    pub(crate) fn push_tail_on(
        &self,
        qb: &mut QueryBuilder<'_, Sqlite>,
        value_col: &str,
        id_col: &str,
    ) {
        if let Some((value, id)) = self.after {
            push_after(qb, value_col, id_col, self.direction, value, id);
        }
        push_order_limit(qb, value_col, id_col, self.direction, self.fetch);
    }
}

fn updated_cursor(cursor: &Cursor) -> Result<(i64, Uuid)> {
    match cursor.value {
        CursorValue::Timestamp(t) => Ok((time_to_sql(t), cursor.id)),
        _ => Err(bad_cursor()),
    }
}

/// The error for a cursor whose value does not fit its sort.
pub(crate) fn bad_cursor() -> Error {
    Error::invalid("cursor", "is not a cursor returned by this list")
}
