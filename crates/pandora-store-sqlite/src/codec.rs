//! How values are stored in SQLite, which has no UUID, timestamp, decimal or
//! date types:
//!
//! | value     | column                | encoding                                        |
//! |-----------|-----------------------|-------------------------------------------------|
//! | UUID      | `BLOB`                | its 16 bytes                                    |
//! | timestamp | `INTEGER`             | microseconds since the Unix epoch (UTC)         |
//! | amount    | `INTEGER` `amount_e4` | amount × 10⁴ (at most 4 decimal places)         |
//! | date      | `TEXT`                | `YYYY-MM-DD` (years 0000–9999, so text sorts as dates) |
//! | JSON      | `TEXT`                | serialized JSON                                 |
//!
//! Encoding and decoding are kept here so every module stores values the same way.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use pandora_core::{Error, Result};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};
use uuid::Uuid;

/// `10⁴`, the scale of `amount_e4`.
const E4: i64 = 10_000;

/// Largest year a stored date may have (four digits keep text order = date order).
const MAX_YEAR: i32 = 9999;

// ---- columns --------------------------------------------------------------

/// Column `name` of `row`, decoded as `T` (a missing column or a wrong type is an internal error).
pub(crate) fn col<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name).map_err(crate::errors::db_error)
}

// ---- UUIDs ----------------------------------------------------------------

/// A UUID as stored: its 16 bytes.
pub(crate) fn id_to_sql(id: Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// A stored UUID (`column` names it in the error).
pub(crate) fn id_from_sql(bytes: &[u8], column: &str) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| corrupt(column, "is not a 16-byte UUID"))
}

/// An optional stored UUID.
pub(crate) fn opt_id_from_sql(bytes: Option<&[u8]>, column: &str) -> Result<Option<Uuid>> {
    bytes.map(|b| id_from_sql(b, column)).transpose()
}

// ---- timestamps -----------------------------------------------------------

/// A timestamp as stored: microseconds since the epoch (sub-microsecond digits are dropped).
pub(crate) fn time_to_sql(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored timestamp.
pub(crate) fn time_from_sql(micros: i64, column: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(column, "is not a timestamp in range"))
}

/// An optional stored timestamp.
pub(crate) fn opt_time_from_sql(
    micros: Option<i64>,
    column: &str,
) -> Result<Option<DateTime<Utc>>> {
    micros.map(|m| time_from_sql(m, column)).transpose()
}

// ---- amounts --------------------------------------------------------------

/// An amount as stored (`amount × 10⁴`). Fails with [`Error::InvalidInput`] on
/// `field` when the amount has more than 4 decimal places or does not fit.
pub(crate) fn amount_to_e4(amount: Decimal, field: &str) -> Result<i64> {
    exact_e4(amount).ok_or_else(|| {
        Error::invalid(
            field,
            "must have at most 4 decimal places and fit in ±922,337,203,685,477.5807",
        )
    })
}

/// The smallest `amount_e4` that is `>= amount` (saturating), for `amount >= bound` filters.
pub(crate) fn amount_lower_bound_e4(amount: Decimal) -> i64 {
    scaled(amount).map_or_else(
        || saturate(amount),
        |s| s.ceil().to_i64().unwrap_or_else(|| saturate(amount)),
    )
}

/// The largest `amount_e4` that is `<= amount` (saturating), for `amount <= bound` filters.
pub(crate) fn amount_upper_bound_e4(amount: Decimal) -> i64 {
    scaled(amount).map_or_else(
        || saturate(amount),
        |s| s.floor().to_i64().unwrap_or_else(|| saturate(amount)),
    )
}

fn scaled(amount: Decimal) -> Option<Decimal> {
    amount.checked_mul(Decimal::from(E4))
}

fn exact_e4(amount: Decimal) -> Option<i64> {
    let s = scaled(amount)?;
    if s.fract() != Decimal::ZERO {
        return None;
    }
    s.to_i64()
}

fn saturate(amount: Decimal) -> i64 {
    if amount.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    }
}

// ---- dates ----------------------------------------------------------------

/// A date as stored (`YYYY-MM-DD`). Fails with [`Error::InvalidInput`] on
/// `field` for years outside 0000–9999, which would not sort as text.
pub(crate) fn date_to_sql(date: NaiveDate, field: &str) -> Result<String> {
    if !(0..=MAX_YEAR).contains(&date.year()) {
        return Err(Error::invalid(field, "year must be between 0000 and 9999"));
    }
    Ok(format_date(date))
}

/// A date as a comparison bound against stored dates (filters and cursors):
/// years beyond 9999 compare after every stored date, negative years before.
pub(crate) fn date_bound_to_sql(date: NaiveDate) -> String {
    match date.year() {
        y if y > MAX_YEAR => "99999".to_owned(), // '9' > '-' at index 4
        y if y < 0 => String::new(),
        _ => format_date(date),
    }
}

fn format_date(date: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

// ---- JSON -----------------------------------------------------------------

/// A stored JSON value (`column` names it in the error).
pub(crate) fn json_from_sql<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        tracing::error!(column, error = %e, "stored JSON does not decode");
        corrupt(column, "does not hold the expected JSON")
    })
}

/// A value that cannot have been written by this store: the database was changed by hand or is damaged.
fn corrupt(column: &str, what: &str) -> Error {
    tracing::error!(column, what, "unexpected value in the SQLite database");
    Error::internal(format!("stored {column} {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = Uuid::now_v7();
        assert_eq!(id_from_sql(&id_to_sql(id), "id").ok(), Some(id));
        assert!(id_from_sql(&[1, 2, 3], "id").is_err());
    }

    #[test]
    fn timestamps_keep_microseconds() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default();
        assert_eq!(time_to_sql(t), 1_700_000_000_123_456);
        assert_eq!(time_from_sql(time_to_sql(t), "t").ok(), Some(t));
        assert!(time_from_sql(i64::MAX, "t").is_err());
    }

    #[test]
    fn amounts_scale_by_ten_thousand() {
        let a: Decimal = "1234.5678".parse().unwrap_or_default();
        assert_eq!(amount_to_e4(a, "a").ok(), Some(12_345_678));
        let neg: Decimal = "-0.0001".parse().unwrap_or_default();
        assert_eq!(amount_to_e4(neg, "a").ok(), Some(-1));
        let too_precise: Decimal = "1.00001".parse().unwrap_or_default();
        assert!(amount_to_e4(too_precise, "a").is_err());
        assert!(amount_to_e4(Decimal::MAX, "a").is_err());
    }

    #[test]
    fn amount_bounds_round_inwards_and_saturate() {
        let a: Decimal = "1.00005".parse().unwrap_or_default();
        assert_eq!(amount_lower_bound_e4(a), 10_001);
        assert_eq!(amount_upper_bound_e4(a), 10_000);
        assert_eq!(amount_lower_bound_e4(-a), -10_000);
        assert_eq!(amount_upper_bound_e4(-a), -10_001);
        assert_eq!(amount_lower_bound_e4(Decimal::MAX), i64::MAX);
        assert_eq!(amount_upper_bound_e4(Decimal::MIN), i64::MIN);
    }

    #[test]
    fn dates_are_text_that_sorts() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap_or_default();
        assert_eq!(date_to_sql(d, "d").ok().as_deref(), Some("2024-02-29"));
        let early = NaiveDate::from_ymd_opt(5, 1, 1).unwrap_or_default();
        assert_eq!(date_to_sql(early, "d").ok().as_deref(), Some("0005-01-01"));
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap_or_default();
        assert!(date_to_sql(far, "d").is_err());
        assert!(date_bound_to_sql(far).as_str() > "9999-12-31");
        let bc = NaiveDate::from_ymd_opt(-1, 1, 1).unwrap_or_default();
        assert!(date_bound_to_sql(bc).as_str() < "0000-01-01");
    }
}
