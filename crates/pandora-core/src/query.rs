//! Keyset pagination and list filters.
//!
//! A cursor is opaque to clients: base64url of a small JSON object holding the
//! sort key and value and the id of the last row of the previous page. Stores
//! receive it decoded ([`Cursor`]) and continue strictly after `(value, id)` in
//! sort order, so pages never skip or repeat rows, whatever is inserted between
//! them. Rows whose sort value is NULL come last in either direction (for
//! [`SortKey::Risk`]: deals not computed yet).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::computed::MAX_RISK_SCORE;
use crate::error::{Error, Result};
use crate::model::{Deal, StageCategory, SyncRun};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;

/// The column a list is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// When Pandora last changed the row (every list).
    #[default]
    UpdatedAt,
    /// Deal close date.
    CloseDate,
    /// Deal amount.
    Amount,
    /// Deal risk score (0–100, from the deal's computed fields); deals
    /// without computed fields come last in either direction.
    Risk,
}

impl SortKey {
    /// Parses `updated_at`, `close_date`, `amount` or `risk`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "updated_at" => SortKey::UpdatedAt,
            "close_date" => SortKey::CloseDate,
            "amount" => SortKey::Amount,
            "risk" => SortKey::Risk,
            _ => return None,
        })
    }

    /// The name [`SortKey::parse`] reads, e.g. `"close_date"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::UpdatedAt => "updated_at",
            SortKey::CloseDate => "close_date",
            SortKey::Amount => "amount",
            SortKey::Risk => "risk",
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest (newest) first.
    #[default]
    Desc,
}

/// A sort order: key and direction; ties broken by id in the same direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    /// Column.
    pub key: SortKey,
    /// Direction.
    pub direction: Direction,
}

/// The sort value of the last row of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum CursorValue {
    /// A timestamp.
    Timestamp(DateTime<Utc>),
    /// A date.
    Date(NaiveDate),
    /// A decimal.
    Decimal(Decimal),
    /// An integer (the risk score).
    Integer(i64),
    /// The row's sort value was NULL.
    Null,
}

/// A decoded position in a list: continue strictly after `(value, id)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort the cursor was made for.
    pub sort: Sort,
    /// Sort value of the last row returned.
    pub value: CursorValue,
    /// Id of the last row returned.
    pub id: Uuid,
}

impl Cursor {
    /// The opaque string handed to clients.
    pub fn encode(&self) -> String {
        // Serializing these plain types cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a client's cursor, checking that it was made for `sort`.
    pub fn decode(s: &str, sort: Sort) -> Result<Self> {
        let bad = || Error::invalid("cursor", "is not a cursor returned by this list");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if c.sort != sort {
            return Err(Error::invalid(
                "cursor",
                "was made for another sort order; start again without a cursor",
            ));
        }
        let value_fits = matches!(
            (c.sort.key, &c.value),
            (_, CursorValue::Null)
                | (SortKey::UpdatedAt, CursorValue::Timestamp(_))
                | (SortKey::CloseDate, CursorValue::Date(_))
                | (SortKey::Amount, CursorValue::Decimal(_))
        ) || matches!(
            (c.sort.key, &c.value),
            (SortKey::Risk, CursorValue::Integer(v)) if (0..=i64::from(MAX_RISK_SCORE)).contains(v)
        );
        if !value_fits || (c.sort.key == SortKey::UpdatedAt && c.value == CursorValue::Null) {
            return Err(bad());
        }
        Ok(c)
    }

    /// The cursor after `deal` in `sort`.
    pub fn after_deal(deal: &Deal, sort: Sort) -> Self {
        let value = match sort.key {
            SortKey::UpdatedAt => CursorValue::Timestamp(deal.updated_at),
            SortKey::CloseDate => deal
                .fields
                .close_date
                .map_or(CursorValue::Null, CursorValue::Date),
            SortKey::Amount => deal
                .fields
                .amount
                .map_or(CursorValue::Null, CursorValue::Decimal),
            SortKey::Risk => deal.computed.as_ref().map_or(CursorValue::Null, |c| {
                CursorValue::Integer(i64::from(c.risk_score))
            }),
        };
        Cursor {
            sort,
            value,
            id: deal.id,
        }
    }

    /// The cursor after a row sorted by `updated_at`.
    pub fn after_updated(updated_at: DateTime<Utc>, id: Uuid, sort: Sort) -> Self {
        Cursor {
            sort,
            value: CursorValue::Timestamp(updated_at),
            id,
        }
    }

    /// The cursor after a sync run in its history, which is ordered by
    /// `(created_at, id)`. Its sort key is [`SortKey::UpdatedAt`], the one
    /// key of every list but deals: for run histories it stands for the
    /// run's creation time.
    pub fn after_sync_run(run: &SyncRun, sort: Sort) -> Self {
        Cursor {
            sort,
            value: CursorValue::Timestamp(run.created_at),
            id: run.id,
        }
    }
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// Rows per page, 1–[`MAX_LIMIT`].
    pub limit: u32,
    /// Sort order.
    pub sort: Sort,
    /// Continue after this position; `None` for the first page.
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            sort: Sort::default(),
            after: None,
        }
    }
}

impl PageRequest {
    /// A first page of `limit` rows in the default order.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            limit,
            ..Default::default()
        }
    }

    /// Builds a request from client input, validating the limit and the cursor.
    pub fn parse(limit: Option<u32>, sort: Sort, cursor: Option<&str>) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = cursor.map(|c| Cursor::decode(c, sort)).transpose()?;
        Ok(PageRequest { limit, sort, after })
    }

    /// The same request continued after `cursor`.
    pub fn next(&self, cursor: Cursor) -> Self {
        PageRequest {
            after: Some(cursor),
            ..self.clone()
        }
    }

    /// Checks that the limit is in range (for stores called directly).
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if let Some(c) = &self.after {
            if c.sort != self.sort {
                return Err(Error::invalid("cursor", "was made for another sort order"));
            }
        }
        Ok(())
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row, if
    /// present, only tells that there is a next page.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page {
            data: rows,
            next_cursor,
        }
    }
}

/// Filters of the deal list. Every field narrows the result; `None` ignores it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DealFilter {
    /// Stage id.
    pub stage: Option<String>,
    /// Pipeline id.
    pub pipeline: Option<String>,
    /// Pandora id of the owner.
    pub owner_id: Option<Uuid>,
    /// Stage category.
    pub status: Option<StageCategory>,
    /// Close date on or after.
    pub close_date_from: Option<NaiveDate>,
    /// Close date on or before.
    pub close_date_to: Option<NaiveDate>,
    /// Changed in Pandora at or after.
    pub updated_since: Option<DateTime<Utc>>,
    /// Amount at least.
    pub min_amount: Option<Decimal>,
    /// Amount at most.
    pub max_amount: Option<Decimal>,
    /// Name contains (case-insensitive).
    pub q: Option<String>,
    /// Risk score at least (0–100). Deals without computed fields never match.
    pub min_risk: Option<u8>,
}

impl DealFilter {
    /// Rejects contradictory or out-of-range filters.
    pub fn validate(&self) -> Result<()> {
        if let (Some(a), Some(b)) = (self.close_date_from, self.close_date_to) {
            if a > b {
                return Err(Error::invalid(
                    "close_date_from",
                    "must not be after close_date_to",
                ));
            }
        }
        if let (Some(a), Some(b)) = (self.min_amount, self.max_amount) {
            if a > b {
                return Err(Error::invalid("min_amount", "must not exceed max_amount"));
            }
        }
        if let Some(q) = &self.q {
            if q.chars().count() > 200 {
                return Err(Error::invalid("q", "must be at most 200 characters"));
            }
        }
        if let Some(min) = self.min_risk {
            if min > MAX_RISK_SCORE {
                return Err(Error::invalid(
                    "min_risk",
                    format!("must be between 0 and {MAX_RISK_SCORE}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort(key: SortKey, direction: Direction) -> Sort {
        Sort { key, direction }
    }

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_sort() {
        let s = sort(SortKey::Amount, Direction::Asc);
        let c = Cursor {
            sort: s,
            value: CursorValue::Decimal("12.3400".parse().expect("decimal")),
            id: Uuid::now_v7(),
        };
        let encoded = c.encode();
        assert!(encoded
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_eq!(Cursor::decode(&encoded, s).expect("decode"), c);
        let err = Cursor::decode(&encoded, Sort::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "cursor"));
    }

    #[test]
    fn garbage_cursors_are_invalid_input() {
        for bad in ["", "not base64!", "e30", "eyJ4IjoxfQ"] {
            let err = Cursor::decode(bad, Sort::default()).unwrap_err();
            assert!(
                matches!(err, Error::InvalidInput { ref field, .. } if field == "cursor"),
                "{bad}: {err:?}"
            );
        }
        // A value of the wrong type for the sort key.
        let forged = Cursor {
            sort: sort(SortKey::CloseDate, Direction::Desc),
            value: CursorValue::Decimal(Decimal::ONE),
            id: Uuid::nil(),
        };
        assert!(Cursor::decode(&forged.encode(), forged.sort).is_err());
    }

    #[test]
    fn limits_are_checked() {
        for bad in [0, MAX_LIMIT + 1] {
            let err = PageRequest::parse(Some(bad), Sort::default(), None).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "limit"));
        }
        assert_eq!(
            PageRequest::parse(None, Sort::default(), None)
                .expect("default")
                .limit,
            DEFAULT_LIMIT
        );
        assert_eq!(
            PageRequest::parse(Some(MAX_LIMIT), Sort::default(), None)
                .expect("max")
                .limit,
            MAX_LIMIT
        );
    }

    #[test]
    fn page_from_rows_uses_the_extra_row_only_as_a_signal() {
        let cursor_of = |n: &u32| Cursor {
            sort: Sort::default(),
            value: CursorValue::Null,
            id: Uuid::from_u128(u128::from(*n)),
        };
        let p = Page::from_rows(vec![1, 2, 3], 2, cursor_of);
        assert_eq!(p.data, vec![1, 2]);
        assert_eq!(p.next_cursor.map(|c| c.id), Some(Uuid::from_u128(2)));
        let p = Page::from_rows(vec![1, 2], 2, cursor_of);
        assert_eq!(p.data, vec![1, 2]);
        assert!(p.next_cursor.is_none());
    }

    #[test]
    fn contradictory_filters_are_rejected() {
        let f = DealFilter {
            close_date_from: NaiveDate::from_ymd_opt(2026, 2, 1),
            close_date_to: NaiveDate::from_ymd_opt(2026, 1, 1),
            ..Default::default()
        };
        assert!(
            matches!(f.validate(), Err(Error::InvalidInput { ref field, .. }) if field == "close_date_from")
        );
        let f = DealFilter {
            min_amount: Some(Decimal::TEN),
            max_amount: Some(Decimal::ONE),
            ..Default::default()
        };
        assert!(
            matches!(f.validate(), Err(Error::InvalidInput { ref field, .. }) if field == "min_amount")
        );
        assert!(DealFilter::default().validate().is_ok());
        let f = DealFilter {
            min_risk: Some(101),
            ..Default::default()
        };
        assert!(
            matches!(f.validate(), Err(Error::InvalidInput { ref field, .. }) if field == "min_risk")
        );
        for ok in [0, 100] {
            let f = DealFilter {
                min_risk: Some(ok),
                ..Default::default()
            };
            assert!(f.validate().is_ok());
        }
    }

    #[test]
    fn risk_cursors_carry_a_score_in_range() {
        let s = sort(SortKey::Risk, Direction::Desc);
        for value in [
            CursorValue::Integer(0),
            CursorValue::Integer(100),
            CursorValue::Null,
        ] {
            let c = Cursor {
                sort: s,
                value,
                id: Uuid::now_v7(),
            };
            assert_eq!(Cursor::decode(&c.encode(), s).expect("decode"), c);
        }
        for value in [
            CursorValue::Integer(101),
            CursorValue::Integer(-1),
            CursorValue::Decimal(Decimal::ONE),
        ] {
            let c = Cursor {
                sort: s,
                value,
                id: Uuid::nil(),
            };
            assert!(Cursor::decode(&c.encode(), s).is_err(), "{c:?}");
        }
        // An integer is no value for the other keys.
        let c = Cursor {
            sort: sort(SortKey::Amount, Direction::Asc),
            value: CursorValue::Integer(5),
            id: Uuid::nil(),
        };
        assert!(Cursor::decode(&c.encode(), c.sort).is_err());
        for key in [
            SortKey::UpdatedAt,
            SortKey::CloseDate,
            SortKey::Amount,
            SortKey::Risk,
        ] {
            assert_eq!(SortKey::parse(key.as_str()), Some(key));
        }
    }
}
