//! Cron expressions for skill schedules: the five POSIX fields (minute, hour,
//! day of month, month, day of week), evaluated in UTC.
//!
//! Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a
//! comma-separated list of those; months and weekdays also take their
//! three-letter English names (`jan`, `mon`), and weekday 7 is Sunday like 0.
//! As in Vixie cron, when both day of month and day of week are restricted a
//! day matches when *either* does.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

/// How far back [`Cron::latest_at_or_before`] looks: more than four years, so
/// that `0 0 29 2 *` (a leap day) always has an occurrence.
const MAX_DAYS_BACK: i64 = 366 * 4 + 31;

/// A parsed cron expression.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Day of month given as other than `*`.
    days_restricted: bool,
    /// Day of week given as other than `*`.
    weekdays_restricted: bool,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.source)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// One field's bounds and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const WEEKDAY: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Cron {
    /// Parses an expression; the error says which field is wrong and why.
    pub fn parse(expression: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "must have five fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        let minutes = parse_field(fields[0], &MINUTE)?;
        let hours = parse_field(fields[1], &HOUR)?;
        let days = parse_field(fields[2], &DAY)?;
        let months = parse_field(fields[3], &MONTH)?;
        let mut weekdays = parse_field(fields[4], &WEEKDAY)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        Ok(Cron {
            source: fields.join(" "),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_restricted: fields[2] != "*",
            weekdays_restricted: fields[4] != "*",
        })
    }

    /// Whether the schedule fires on `date`.
    fn matches_day(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().num_days_from_sunday()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The last time in `date` at or before `hour:minute` at which the
    /// schedule fires, if any.
    fn latest_in_day(&self, max_hour: u32, max_minute: u32) -> Option<(u32, u32)> {
        for hour in (0..=max_hour).rev() {
            if self.hours & (1 << hour) == 0 {
                continue;
            }
            let limit = if hour == max_hour { max_minute } else { 59 };
            if let Some(minute) = (0..=limit).rev().find(|m| self.minutes & (1 << m) != 0) {
                return Some((hour, minute));
            }
        }
        None
    }

    /// The latest time at or before `t` at which the schedule fires (whole
    /// minutes), or `None` when it never fired in the last four years (e.g.
    /// `0 0 31 2 *`).
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut date = t.date_naive();
        let (mut max_hour, mut max_minute) = (t.hour(), t.minute());
        for _ in 0..MAX_DAYS_BACK {
            if self.matches_day(date) {
                if let Some((h, m)) = self.latest_in_day(max_hour, max_minute) {
                    let naive = date.and_hms_opt(h, m, 0)?;
                    return Some(Utc.from_utc_datetime(&naive));
                }
            }
            date = date.pred_opt()?;
            (max_hour, max_minute) = (23, 59);
        }
        None
    }

    /// The first time strictly after `t` at which the schedule fires, or
    /// `None` when it does not within four years.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Start at the next whole minute.
        let start = t.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut date = start.date_naive();
        let (mut min_hour, mut min_minute) = (start.hour(), start.minute());
        for _ in 0..MAX_DAYS_BACK {
            if self.matches_day(date) {
                for hour in min_hour..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let from = if hour == min_hour { min_minute } else { 0 };
                    if let Some(minute) = (from..60).find(|m| self.minutes & (1 << m) != 0) {
                        let naive = date.and_hms_opt(hour, minute, 0)?;
                        return Some(Utc.from_utc_datetime(&naive));
                    }
                }
            }
            date = date.succ_opt()?;
            (min_hour, min_minute) = (0, 0);
        }
        None
    }
}

/// Parses one field into a bit set of its allowed values.
fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let bad = |why: &str| format!("{} field {text:?}: {why}", field.name);
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad("a step must be a whole number above 0"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, field)?, value(b, field)?)
        } else {
            let v = value(range, field)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if part.contains('/') { field.max } else { v })
        };
        if lo > hi {
            return Err(bad("a range must go from low to high"));
        }
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

/// One value of a field: a number within bounds, or a name.
fn value(text: &str, field: &Field) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        // Month names start at 1, weekday names at 0 (Sunday).
        return Ok(i as u32 + if field.min == 1 { 1 } else { 0 });
    }
    match text.parse::<u32>() {
        Ok(v) if (field.min..=field.max).contains(&v) => Ok(v),
        _ => Err(format!(
            "{} field: {text:?} is not a value from {} to {}",
            field.name, field.min, field.max
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn weekday_mornings() {
        let c = Cron::parse("0 7 * * 1-5").expect("parse");
        // Wednesday 2026-11-25 09:30 → that morning.
        assert_eq!(
            c.latest_at_or_before(at("2026-11-25T09:30:00Z")),
            Some(at("2026-11-25T07:00:00Z"))
        );
        // Wednesday 06:59 → Tuesday.
        assert_eq!(
            c.latest_at_or_before(at("2026-11-25T06:59:59Z")),
            Some(at("2026-11-24T07:00:00Z"))
        );
        // Exactly on time counts.
        assert_eq!(
            c.latest_at_or_before(at("2026-11-25T07:00:00Z")),
            Some(at("2026-11-25T07:00:00Z"))
        );
        // Monday 2026-11-30 06:00 → Friday the 27th.
        assert_eq!(
            c.latest_at_or_before(at("2026-11-30T06:00:00Z")),
            Some(at("2026-11-27T07:00:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-11-27T07:00:00Z")),
            Some(at("2026-11-30T07:00:00Z"))
        );
    }

    #[test]
    fn steps_lists_names_and_sunday_seven() {
        let c = Cron::parse("*/15 9-17/4 * jan,JUL sun").expect("parse");
        assert_eq!(c.minutes, (1 << 0) | (1 << 15) | (1 << 30) | (1 << 45));
        assert_eq!(c.hours, (1 << 9) | (1 << 13) | (1 << 17));
        assert_eq!(c.months, (1 << 1) | (1 << 7));
        assert_eq!(c.weekdays, 1);
        assert_eq!(Cron::parse("0 0 * * 7").expect("parse").weekdays, 1);
        assert_eq!(
            Cron::parse("5/20 * * * *").expect("parse").minutes,
            (1 << 5) | (1 << 25) | (1 << 45)
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // The 1st of the month, or any Monday.
        let c = Cron::parse("0 0 1 * mon").expect("parse");
        // Thursday 2026-10-01 and Monday 2026-10-05 both fire.
        assert_eq!(
            c.latest_at_or_before(at("2026-10-04T12:00:00Z")),
            Some(at("2026-10-01T00:00:00Z"))
        );
        assert_eq!(
            c.latest_at_or_before(at("2026-10-06T12:00:00Z")),
            Some(at("2026-10-05T00:00:00Z"))
        );
    }

    #[test]
    fn leap_day_and_never() {
        let c = Cron::parse("30 12 29 2 *").expect("parse");
        assert_eq!(
            c.latest_at_or_before(at("2026-11-25T00:00:00Z")),
            Some(at("2024-02-29T12:30:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-11-25T00:00:00Z")),
            Some(at("2028-02-29T12:30:00Z"))
        );
        let never = Cron::parse("0 0 31 2 *").expect("parse");
        assert_eq!(never.latest_at_or_before(at("2026-11-25T00:00:00Z")), None);
    }

    #[test]
    fn errors_name_the_field() {
        for (expr, needle) in [
            ("0 7 * *", "five fields"),
            ("60 * * * *", "minute field"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day of month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day of week field"),
            ("*/0 * * * *", "step"),
            ("10-5 * * * *", "low to high"),
            ("* * * foo *", "month field"),
        ] {
            let e = Cron::parse(expr).expect_err(expr);
            assert!(e.contains(needle), "{expr}: {e}");
        }
    }

    #[test]
    fn every_default_schedule_parses_and_displays_normalized() {
        let c = Cron::parse("  0   6 * *  1 ").expect("parse");
        assert_eq!(c.to_string(), "0 6 * * 1");
        assert_eq!(format!("{c:?}"), "Cron(\"0 6 * * 1\")");
    }
}
