//! Query and path parameters, parsed by hand so that every bad value — and
//! every unknown or repeated parameter — answers a 400 problem naming it.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use pandora_core::computed::MAX_RISK_SCORE;
use pandora_core::model::StageCategory;
use pandora_core::query::{DealFilter, Direction, PageRequest, Sort, SortKey, MAX_LIMIT};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::problem::Problem;

/// Parses a UUID path parameter, or a 400 naming it.
pub fn parse_uuid(name: &str, raw: &str) -> Result<Uuid, Problem> {
    // `Uuid::parse_str` also accepts braced and URN forms; only the plain
    // hyphenated form is an id here.
    if raw.len() != 36 {
        return Err(bad_uuid(name));
    }
    Uuid::parse_str(raw).map_err(|_| bad_uuid(name))
}

fn bad_uuid(name: &str) -> Problem {
    Problem::invalid_param(
        name,
        format!("{name} must be a UUID such as 0190a5b4-7a0e-7cc1-9b1f-3a6f1c2d4e5f"),
    )
}

/// The query string of a request as a map, each parameter at most once.
///
/// Handlers [`take`](QueryParams::take) what they understand and call
/// [`finish`](QueryParams::finish), which rejects whatever is left.
#[derive(Debug, Default)]
pub struct QueryParams {
    values: BTreeMap<String, String>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| Problem::invalid_param("query", "the query string is malformed"))?;
        QueryParams::from_pairs(pairs)
    }
}

impl QueryParams {
    /// Builds the map, rejecting a parameter given twice.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, Problem> {
        let mut values = BTreeMap::new();
        for (k, v) in pairs {
            if values.contains_key(&k) {
                return Err(Problem::invalid_param(
                    k.clone(),
                    format!("{k} is given more than once"),
                ));
            }
            values.insert(k, v);
        }
        Ok(QueryParams { values })
    }

    /// Removes and returns a parameter; an empty value is a 400.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, Problem> {
        match self.values.remove(name) {
            Some(v) if v.is_empty() => Err(Problem::invalid_param(
                name,
                format!("{name} must not be empty; leave it out instead"),
            )),
            other => Ok(other),
        }
    }

    /// Removes a parameter and parses it with `parse`, whose error message
    /// says what the value should look like.
    pub fn take_parsed<T>(
        &mut self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, Problem> {
        match self.take(name)? {
            None => Ok(None),
            Some(raw) => parse(&raw)
                .map(Some)
                .ok_or_else(|| Problem::invalid_param(name, format!("{name} must be {expected}"))),
        }
    }

    /// Fails with a 400 naming the first parameter nobody took.
    pub fn finish(self, allowed: &[&str]) -> Result<(), Problem> {
        match self.values.into_keys().next() {
            None => Ok(()),
            Some(k) => Err(Problem::invalid_param(
                k.clone(),
                if allowed.is_empty() {
                    format!("unknown query parameter {k}; this route takes none")
                } else {
                    format!(
                        "unknown query parameter {k}; expected one of: {}",
                        allowed.join(", ")
                    )
                },
            )),
        }
    }

    /// `limit` and `cursor` for a list sorted by `sort`.
    pub fn page(&mut self, sort: Sort) -> Result<PageRequest, Problem> {
        let limit = self.take_parsed(
            "limit",
            &format!("an integer between 1 and {MAX_LIMIT}"),
            |s| s.parse::<u32>().ok(),
        )?;
        let cursor = self.take("cursor")?;
        Ok(PageRequest::parse(limit, sort, cursor.as_deref())?)
    }
}

/// Parameters of every list.
pub const PAGE_PARAMS: &[&str] = &["limit", "cursor"];

/// Parameters of the deal list.
pub const DEAL_PARAMS: &[&str] = &[
    "limit",
    "cursor",
    "sort",
    "order",
    "stage",
    "pipeline",
    "owner_id",
    "status",
    "close_date_from",
    "close_date_to",
    "updated_since",
    "min_amount",
    "max_amount",
    "q",
    "min_risk",
];

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        // An unencoded `+` of an offset arrives as a space.
        .or_else(|_| DateTime::parse_from_rfc3339(&s.replace(' ', "+")))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    // Plain decimal notation only (no exponent), as amounts are written.
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+')
    {
        return None;
    }
    Decimal::from_str(s).ok()
}

/// Parses the deal list's query: filters, sort and page.
///
/// `sort` names the key (`updated_at`, `close_date`, `amount` or `risk`),
/// optionally prefixed by `-` for descending (`sort=-risk`); `order` (`asc`
/// or `desc`, default `desc`) gives the direction of an unprefixed key, and
/// may not ask `asc` of a `-` key.
pub fn deal_query(mut q: QueryParams) -> Result<(DealFilter, PageRequest), Problem> {
    let (key, descending) = q
        .take_parsed(
            "sort",
            "one of updated_at, close_date, amount, risk (prefix - for descending, e.g. -risk)",
            |s| {
                let (descending, name) = match s.strip_prefix('-') {
                    Some(name) => (true, name),
                    None => (false, s),
                };
                SortKey::parse(name).map(|key| (key, descending))
            },
        )?
        .unwrap_or_default();
    let order = q.take_parsed("order", "asc or desc", |s| match s {
        "asc" => Some(Direction::Asc),
        "desc" => Some(Direction::Desc),
        _ => None,
    })?;
    let direction = match (descending, order) {
        (true, Some(Direction::Asc)) => {
            return Err(Problem::invalid_param(
                "order",
                format!(
                    "order=asc contradicts sort=-{}; use sort={} for ascending",
                    key.as_str(),
                    key.as_str()
                ),
            ))
        }
        (true, _) => Direction::Desc,
        (false, order) => order.unwrap_or_default(),
    };
    let page = q.page(Sort { key, direction })?;
    let filter = DealFilter {
        stage: q.take("stage")?,
        pipeline: q.take("pipeline")?,
        owner_id: q.take_parsed("owner_id", "a UUID", |s| {
            (s.len() == 36).then(|| Uuid::parse_str(s).ok()).flatten()
        })?,
        status: q.take_parsed("status", "one of open, won, lost", StageCategory::parse)?,
        close_date_from: q.take_parsed("close_date_from", "a date as YYYY-MM-DD", parse_date)?,
        close_date_to: q.take_parsed("close_date_to", "a date as YYYY-MM-DD", parse_date)?,
        updated_since: q.take_parsed(
            "updated_since",
            "an RFC 3339 timestamp such as 2024-05-01T00:00:00Z",
            parse_timestamp,
        )?,
        min_amount: q.take_parsed(
            "min_amount",
            "a decimal number such as 1000.50",
            parse_decimal,
        )?,
        max_amount: q.take_parsed(
            "max_amount",
            "a decimal number such as 1000.50",
            parse_decimal,
        )?,
        q: q.take("q")?,
        min_risk: q.take_parsed("min_risk", "an integer between 0 and 100", |s| {
            s.parse::<u8>().ok().filter(|r| *r <= MAX_RISK_SCORE)
        })?,
    };
    q.finish(DEAL_PARAMS)?;
    filter.validate()?;
    Ok((filter, page))
}

/// Parses the query of a plain list (only `limit` and `cursor`).
pub fn page_query(mut q: QueryParams) -> Result<PageRequest, Problem> {
    let page = q.page(Sort::default())?;
    q.finish(PAGE_PARAMS)?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn field_of(p: Problem) -> String {
        assert_eq!(p.status, 400, "{p:?}");
        p.field.unwrap()
    }

    #[test]
    fn deal_query_parses_every_filter() {
        let (f, page) = deal_query(q(&[
            ("limit", "10"),
            ("sort", "amount"),
            ("order", "asc"),
            ("stage", "s1"),
            ("pipeline", "p"),
            ("owner_id", "0190a5b4-7a0e-7cc1-9b1f-3a6f1c2d4e5f"),
            ("status", "won"),
            ("close_date_from", "2024-01-01"),
            ("close_date_to", "2024-12-31"),
            ("updated_since", "2024-05-01T00:00:00 02:00"),
            ("min_amount", "10.5"),
            ("max_amount", "100"),
            ("q", "acme"),
        ]))
        .unwrap();
        assert_eq!(page.limit, 10);
        assert_eq!(page.sort.key, SortKey::Amount);
        assert_eq!(page.sort.direction, Direction::Asc);
        assert_eq!(f.status, Some(StageCategory::Won));
        assert_eq!(f.min_amount, Some(Decimal::new(105, 1)));
        assert_eq!(
            f.updated_since.unwrap().to_rfc3339(),
            "2024-04-30T22:00:00+00:00"
        );
        assert_eq!(f.q.as_deref(), Some("acme"));
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let cases: &[(&str, &str)] = &[
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "ten"),
            ("cursor", "nope"),
            ("sort", "name"),
            ("order", "up"),
            ("owner_id", "42"),
            ("status", "pending"),
            ("close_date_from", "2024-13-01"),
            ("close_date_to", "01/02/2024"),
            ("updated_since", "yesterday"),
            ("min_amount", "1e3"),
            ("max_amount", "lots"),
            ("min_risk", "101"),
            ("min_risk", "-1"),
            ("min_risk", "high"),
            ("sort", "-"),
            ("sort", "--risk"),
            ("sort", "risky"),
            ("stage", ""),
            ("bogus", "1"),
        ];
        for (k, v) in cases {
            let err = deal_query(q(&[(k, v)])).unwrap_err();
            assert_eq!(field_of(err), *k, "{k}={v}");
        }
        let err = deal_query(q(&[("min_amount", "5"), ("max_amount", "1")])).unwrap_err();
        assert_eq!(field_of(err), "min_amount");
        let err = deal_query(q(&[("sort", "-risk"), ("order", "asc")])).unwrap_err();
        assert_eq!(field_of(err), "order");
    }

    #[test]
    fn risk_sorts_and_the_min_risk_filter() {
        let sort_of = |pairs: &[(&str, &str)]| {
            let (_, page) = deal_query(q(pairs)).unwrap();
            (page.sort.key, page.sort.direction)
        };
        assert_eq!(
            sort_of(&[("sort", "risk")]),
            (SortKey::Risk, Direction::Desc)
        );
        assert_eq!(
            sort_of(&[("sort", "risk"), ("order", "asc")]),
            (SortKey::Risk, Direction::Asc)
        );
        assert_eq!(
            sort_of(&[("sort", "-risk")]),
            (SortKey::Risk, Direction::Desc)
        );
        assert_eq!(
            sort_of(&[("sort", "-risk"), ("order", "desc")]),
            (SortKey::Risk, Direction::Desc)
        );
        assert_eq!(
            sort_of(&[("sort", "-amount")]),
            (SortKey::Amount, Direction::Desc)
        );
        for (raw, want) in [("0", 0u8), ("55", 55), ("100", 100)] {
            let (f, _) = deal_query(q(&[("min_risk", raw)])).unwrap();
            assert_eq!(f.min_risk, Some(want));
        }
    }

    #[test]
    fn repeated_and_unknown_parameters_are_rejected() {
        let err = QueryParams::from_pairs(vec![
            ("limit".into(), "1".into()),
            ("limit".into(), "2".into()),
        ])
        .unwrap_err();
        assert_eq!(field_of(err), "limit");
        assert_eq!(
            field_of(page_query(q(&[("stage", "x")])).unwrap_err()),
            "stage"
        );
        assert_eq!(page_query(q(&[])).unwrap().limit, 50);
    }

    #[test]
    fn uuids_must_be_hyphenated() {
        assert!(parse_uuid("id", "0190a5b4-7a0e-7cc1-9b1f-3a6f1c2d4e5f").is_ok());
        for bad in [
            "nope",
            "0190a5b47a0e7cc19b1f3a6f1c2d4e5f",
            "{0190a5b4-7a0e-7cc1-9b1f-3a6f1c2d4e5f}",
        ] {
            assert_eq!(field_of(parse_uuid("dealId", bad).unwrap_err()), "dealId");
        }
    }
}
