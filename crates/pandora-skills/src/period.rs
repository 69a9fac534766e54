//! Periods and the as-of helpers every skill shares.
//!
//! Labels ([`Calendar`], the deployment's
//! [`PeriodCalendar`]):
//!
//! | label | period (UTC, `[start, end)`) |
//! |---|---|
//! | `2026-Q2` (or `2026-q2`) | 2026-04-01 – 2026-07-01 |
//! | `2026-05` | 2026-05-01 – 2026-06-01 |
//! | `2026` | 2026-01-01 – 2027-01-01 |
//! | `2026-04-01..2026-05-15` | 2026-04-01 – 2026-05-16 (both days included) |
//!
//! A run without a period reports on the calendar quarter holding its
//! as-of time.
//!
//! Skills look at a deal at two instants: `T0`, the period's start, and
//! `T1`, its end — or the run's as-of time when that is earlier (a period
//! still under way). A change at exactly an instant is already applied at
//! it, so the end state of one quarter is the start state of the next.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use pandora_core::model::DealField;
use pandora_core::skill::{
    DealState, FieldChange, Period, PeriodCalendar, SkillContext, SkillDeal,
};
use pandora_core::{Error, Result};

/// Calendar periods: quarters, months, years and explicit day ranges, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calendar;

impl PeriodCalendar for Calendar {
    fn parse(&self, label: &str) -> Result<Period> {
        parse(label)
    }

    fn containing(&self, at: DateTime<Utc>) -> Period {
        let d = at.date_naive();
        quarter(d.year(), d.month0() / 3 + 1).unwrap_or_else(|_| Period {
            label: d.to_string(),
            start: at,
            end: at,
        })
    }
}

fn invalid(label: &str) -> Error {
    Error::invalid(
        "period",
        format!(
            "{label:?} is not a period: use a quarter (2026-Q2), a month (2026-05), a year \
             (2026) or a day range (2026-04-01..2026-05-15)"
        ),
    )
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Parses a period label (see the module's table).
pub fn parse(label: &str) -> Result<Period> {
    let s = label.trim();
    if let Some((a, b)) = s.split_once("..") {
        let (Ok(first), Ok(last)) = (
            NaiveDate::parse_from_str(a.trim(), "%Y-%m-%d"),
            NaiveDate::parse_from_str(b.trim(), "%Y-%m-%d"),
        ) else {
            return Err(invalid(label));
        };
        return range(first, last);
    }
    let year = |y: &str| -> Option<i32> {
        (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
            .then(|| y.parse().ok())
            .flatten()
    };
    match s.split_once('-') {
        None => match year(s) {
            Some(y) => {
                let (Some(first), Some(next)) = (
                    NaiveDate::from_ymd_opt(y, 1, 1),
                    NaiveDate::from_ymd_opt(y + 1, 1, 1),
                ) else {
                    return Err(invalid(label));
                };
                Ok(Period {
                    label: format!("{y:04}"),
                    start: midnight(first),
                    end: midnight(next),
                })
            }
            None => Err(invalid(label)),
        },
        Some((y, rest)) => {
            let y = year(y).ok_or_else(|| invalid(label))?;
            if let Some(q) = rest.strip_prefix(['Q', 'q']) {
                match q {
                    "1" | "2" | "3" | "4" => quarter(y, q.parse().unwrap_or(1)),
                    _ => Err(invalid(label)),
                }
            } else if rest.len() == 2 && rest.bytes().all(|b| b.is_ascii_digit()) {
                match rest.parse::<u32>() {
                    Ok(m @ 1..=12) => month(y, m),
                    _ => Err(invalid(label)),
                }
            } else {
                Err(invalid(label))
            }
        }
    }
}

/// Quarter `q` (1–4) of year `y`, labelled `YYYY-Qq`.
pub fn quarter(y: i32, q: u32) -> Result<Period> {
    let first = NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1);
    let next = if q == 4 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, q * 3 + 1, 1)
    };
    match (first, next) {
        (Some(f), Some(n)) if (1..=4).contains(&q) => Ok(Period {
            label: format!("{y:04}-Q{q}"),
            start: midnight(f),
            end: midnight(n),
        }),
        _ => Err(invalid(&format!("{y}-Q{q}"))),
    }
}

/// Month `m` (1–12) of year `y`, labelled `YYYY-MM`.
pub fn month(y: i32, m: u32) -> Result<Period> {
    let first = NaiveDate::from_ymd_opt(y, m, 1);
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    match (first, next) {
        (Some(f), Some(n)) => Ok(Period {
            label: format!("{y:04}-{m:02}"),
            start: midnight(f),
            end: midnight(n),
        }),
        _ => Err(invalid(&format!("{y}-{m:02}"))),
    }
}

/// The days `first` to `last`, both included, labelled `first..last`.
pub fn range(first: NaiveDate, last: NaiveDate) -> Result<Period> {
    if last < first {
        return Err(Error::invalid("period", "the range ends before it starts"));
    }
    let next = last.succ_opt().ok_or_else(|| invalid(&last.to_string()))?;
    Ok(Period {
        label: format!("{first}..{last}"),
        start: midnight(first),
        end: midnight(next),
    })
}

/// `T0` and `T1` of a run: the period's start, and its end or the as-of
/// time when that is earlier. [`Error::InvalidInput`] on `period` when the
/// period starts after the as-of time (nothing of it has happened yet).
pub fn instants(ctx: &SkillContext) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let t0 = ctx.period.start;
    let t1 = ctx.period.end.min(ctx.as_of);
    if t1 < t0 {
        return Err(Error::invalid(
            "period",
            format!(
                "{} starts after the data's as-of time {}",
                ctx.period.label,
                ctx.as_of.to_rfc3339()
            ),
        ));
    }
    Ok((t0, t1))
}

/// The time a point-in-time skill (e.g. the forecast) looks at: the
/// period's end, or the as-of time when that is earlier.
pub fn evaluation_time(ctx: &SkillContext) -> DateTime<Utc> {
    ctx.period.end.min(ctx.as_of)
}

/// Whether the state's close date falls in the period ("in the window").
pub fn closes_in(state: &DealState, period: &Period) -> bool {
    state.close_date.is_some_and(|d| period.contains_day(d))
}

/// The last change of `field` in `(from, to]`, if any.
pub fn last_change(
    deal: &SkillDeal,
    field: DealField,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<&FieldChange> {
    deal.changes_in(field, from, to).last()
}

/// A day as reports show it (`YYYY-MM-DD`).
pub fn day(t: DateTime<Utc>) -> String {
    t.date_naive().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().expect("t")
    }

    #[test]
    fn labels_parse_to_canonical_periods() {
        let q = parse("2026-q4").expect("quarter");
        assert_eq!(
            (q.label.as_str(), q.start, q.end),
            ("2026-Q4", at(2026, 10, 1), at(2027, 1, 1))
        );
        assert_eq!(
            q.last_day(),
            NaiveDate::from_ymd_opt(2026, 12, 31).expect("d")
        );
        let m = parse(" 2026-02 ").expect("month");
        assert_eq!(
            (m.label.as_str(), m.start, m.end),
            ("2026-02", at(2026, 2, 1), at(2026, 3, 1))
        );
        let m = parse("2026-12").expect("december");
        assert_eq!(m.end, at(2027, 1, 1));
        let y = parse("2026").expect("year");
        assert_eq!((y.start, y.end), (at(2026, 1, 1), at(2027, 1, 1)));
        let r = parse("2026-04-01..2026-05-15").expect("range");
        assert_eq!(
            (r.label.as_str(), r.end),
            ("2026-04-01..2026-05-15", at(2026, 5, 16))
        );
        assert!(r.contains_day(NaiveDate::from_ymd_opt(2026, 5, 15).expect("d")));
        for bad in [
            "",
            "Q2",
            "2026-Q5",
            "2026-13",
            "2026-5",
            "26-Q1",
            "2026-05-01..2026-04-01",
            "x..y",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidInput { ref field, .. } if field == "period"),
                "{bad}"
            );
        }
        assert_eq!(Calendar.containing(at(2026, 5, 20)).label, "2026-Q2");
    }
}
