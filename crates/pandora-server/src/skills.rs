//! `pandora skills list` and `pandora skills run <workspace> <skill>`: the
//! registry as a table, and one run in the foreground, recorded as the API
//! records it ([`Pandora::run_skill`](pandora_core::Pandora::run_skill)).

use std::io::Write;

use chrono::{DateTime, Utc};
use pandora_core::facade::SkillRunRequest;
use pandora_core::model::{RunStatus, SkillRun};
use pandora_core::skill::{SettingKind, SettingSpec, SkillInfo};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::config::Config;
use crate::database;
use crate::logging::Logging;
use crate::serve;
use crate::Failure;

/// Rows of a report the table shows; `--json` prints them all.
const ROWS_SHOWN: usize = 20;

/// Widest cell of a report table, in characters (longer ones end in `…`).
const MAX_CELL: usize = 48;

/// Keys shown first, in this order (the waterfall's equation reads left to
/// right); the others follow in the report's (alphabetical) order.
const KEY_ORDER: &[&str] = &[
    "t0",
    "t1",
    "window",
    "deals",
    "pipeline",
    "scope",
    "key",
    "label",
    "name",
    "start",
    "created",
    "pulled_in",
    "increased",
    "decreased",
    "pushed_out",
    "lost",
    "won",
    "end",
];

/// `pandora skills list`: the skills `serve` registers, without a database.
pub fn list() -> Result<(), Failure> {
    write_stdout(&registry_table(&pandora_skills::all().infos()))
}

/// `pandora skills run`: runs the skill, prints the report; a failed run is exit code 1.
pub async fn run(
    config: Config,
    logging: &Logging,
    workspace: Uuid,
    skill: &str,
    period: Option<String>,
    as_of: Option<DateTime<Utc>>,
    json: bool,
) -> Result<(), Failure> {
    let opened = database::open_migrated(&config.database).await?;
    logging.database_opened();
    let pandora = serve::build(&config, opened.store.clone())?;
    let request = SkillRunRequest {
        period,
        as_of,
        settings: None,
    };
    let result = pandora.run_skill(workspace, skill, &request).await;
    opened.close().await;
    let run = result.map_err(|e| Failure::runtime(format!("cannot run {skill}: {e}")))?;
    let report = match (&run.status, &run.report) {
        (RunStatus::Succeeded, Some(report)) => report,
        _ => {
            return Err(Failure::runtime(format!(
                "skill run {} {}: {}",
                run.id,
                run.status.as_str(),
                run.error.as_deref().unwrap_or("no report recorded")
            )))
        }
    };
    let text = if json {
        let mut text = serde_json::to_string_pretty(report)
            .map_err(|e| Failure::runtime(format!("cannot print the report: {e}")))?;
        text.push('\n');
        text
    } else {
        report_table(&run, report)
    };
    write_stdout(&text)
}

/// Writes `text` on stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::runtime(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// The registry: one line per skill, then each skill's settings.
fn registry_table(infos: &[SkillInfo]) -> String {
    let rows: Vec<Vec<String>> = infos
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.display_name.to_string(),
                i.default_schedule.to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &["SKILL", "NAME", "DEFAULT SCHEDULE (cron, UTC)"],
        &rows,
        "",
    );
    for info in infos {
        out.push_str(&format!("\n{}: {}\n", info.id, info.description));
        if info.settings.is_empty() {
            out.push_str("  (no settings)\n");
            continue;
        }
        let rows: Vec<Vec<String>> = info
            .settings
            .iter()
            .map(|s| vec![s.name.to_string(), kind(s), compact(&s.default)])
            .collect();
        out.push_str(&table(&["SETTING", "TYPE", "DEFAULT"], &rows, "  "));
    }
    out
}

/// A setting's type, with its bounds or choices.
fn kind(spec: &SettingSpec) -> String {
    let choices = |c: &[&str]| {
        if c.is_empty() {
            String::new()
        } else {
            format!(" of {}", c.join("|"))
        }
    };
    match &spec.kind {
        SettingKind::Integer { min, max } => format!("integer {min}..={max}"),
        SettingKind::Number { min, max } => format!("number {min}..={max}"),
        SettingKind::Boolean => "boolean".to_string(),
        SettingKind::String { choices: c } => format!("string{}", choices(c)),
        SettingKind::StringList { choices: c } => format!("list{}", choices(c)),
        SettingKind::StringMap { values } => format!("map to {}", values.join("|")),
    }
}

/// A JSON value on one line.
fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A report: what was run, the summary, the first rows, and what `--json` adds.
fn report_table(run: &SkillRun, report: &Value) -> String {
    let period = report.get("period");
    let field = |v: Option<&Value>, k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let mut out = format!(
        "{} {} [{} .. {}) as of {}\nrun {} {}\n\nSummary\n",
        run.skill,
        field(period, "label"),
        field(period, "start"),
        field(period, "end"),
        field(Some(report), "as_of"),
        run.id,
        run.status.as_str(),
    );
    let empty = Map::new();
    let summary = report
        .get("summary")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let lines: Vec<Vec<String>> = ordered(summary.keys())
        .into_iter()
        .map(|k| vec![k.to_string(), cell(&summary[k])])
        .collect();
    out.push_str(&table(&["FIGURE", "VALUE"], &lines, "  "));

    let rows: Vec<&Map<String, Value>> = report
        .get("rows")
        .and_then(Value::as_array)
        .map(|rows| rows.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    out.push_str(&format!("\nRows ({})\n", rows.len()));
    if !rows.is_empty() {
        let columns = ordered(rows.iter().flat_map(|r| r.keys()));
        let cells: Vec<Vec<String>> = rows
            .iter()
            .take(ROWS_SHOWN)
            .map(|r| {
                columns
                    .iter()
                    .map(|c| r.get(*c).map(cell).unwrap_or_default())
                    .collect()
            })
            .collect();
        out.push_str(&table(&columns, &cells, "  "));
    }
    let sections: Vec<&str> = report
        .get("sections")
        .and_then(Value::as_object)
        .map(|s| s.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut more = Vec::new();
    if rows.len() > ROWS_SHOWN {
        more.push(format!(
            "showing {ROWS_SHOWN} of {} rows",
            format_number(&rows.len().to_string())
        ));
    }
    more.push("a figure reads amount (deals)".to_string());
    if !sections.is_empty() {
        more.push(format!("sections not shown: {}", sections.join(", ")));
    }
    out.push_str(&format!(
        "\n{}; --json prints the whole report, with the deals behind each figure.\n",
        more.join("; ")
    ));
    out
}

/// Distinct keys, those of [`KEY_ORDER`] first, then in first-seen order.
fn ordered<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for k in keys {
        if !seen.contains(&k.as_str()) {
            seen.push(k);
        }
    }
    let rank = |k: &str| {
        KEY_ORDER
            .iter()
            .position(|o| *o == k)
            .unwrap_or(KEY_ORDER.len())
    };
    // A stable sort: keys outside KEY_ORDER keep their order.
    seen.sort_by_key(|k| rank(k));
    seen
}

/// A value as a table shows it: an explained figure as `amount (count)`,
/// numbers and amounts with thousands separators, small objects and lists
/// inline, anything long cut.
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(&n.to_string()),
        Value::String(s) if is_amount(s) => format_number(s),
        Value::String(s) => s.clone(),
        Value::Object(o) => match (o.get("amount"), o.get("count"), o.get("deals")) {
            (Some(amount), Some(count), Some(_)) => format!("{} ({})", cell(amount), cell(count)),
            _ => o
                .iter()
                .map(|(k, v)| format!("{k} {}", cell(v)))
                .collect::<Vec<_>>()
                .join(", "),
        },
        Value::Array(a) if a.iter().all(|v| !v.is_object() && !v.is_array()) => {
            a.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        Value::Array(a) => format!("[{} items]", a.len()),
    };
    match text.char_indices().nth(MAX_CELL) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A decimal string as reports write amounts (`"1500.00"`, `"-12.3456"`);
/// bare integers (a year, an id) are left alone.
fn is_amount(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    match digits.split_once('.') {
        Some((whole, frac)) => {
            !whole.is_empty()
                && !frac.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// `1234567.5` → `1,234,567.5`; anything not a plain decimal is returned as is.
fn format_number(s: &str) -> String {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Whether a cell is a number, or an explained figure `amount (count)`
/// (right-aligned).
fn is_numeric(cell: &str) -> bool {
    let number = |s: &str| {
        let plain: String = s.chars().filter(|c| *c != ',').collect();
        !plain.is_empty() && plain.parse::<f64>().is_ok()
    };
    match cell.split_once(" (") {
        Some((amount, count)) => number(amount) && count.strip_suffix(')').is_some_and(number),
        None => number(cell),
    }
}

/// A plain-text table: a header line, then the rows; columns as wide as
/// their widest cell, numeric columns right-aligned.
fn table(headers: &[&str], rows: &[Vec<String>], indent: &str) -> String {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .chain([headers[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let numeric: Vec<bool> = (0..headers.len())
        .map(|i| {
            let mut cells = rows
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|c| !c.is_empty());
            cells.clone().next().is_some() && cells.all(|c| is_numeric(c))
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = indent.to_string();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(c.chars().count());
            if numeric[i] {
                text.push_str(&" ".repeat(pad));
                text.push_str(c);
            } else {
                text.push_str(c);
                text.push_str(&" ".repeat(pad));
            }
        }
        format!("{}\n", text.trim_end())
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(format_number("0"), "0");
        assert_eq!(format_number("999"), "999");
        assert_eq!(format_number("1000"), "1,000");
        assert_eq!(format_number("-1234567.8900"), "-1,234,567.8900");
        assert_eq!(format_number("123456.5"), "123,456.5");
        assert_eq!(format_number("n/a"), "n/a");
        assert!(is_amount("1500.00") && is_amount("-0.5"));
        assert!(!is_amount("2026") && !is_amount("1.") && !is_amount("2026-Q1"));
    }

    #[test]
    fn cells_show_explained_figures_and_cut_long_values() {
        let explained = json!({"amount": "1234500.00", "count": 12, "deals": [], "more": 0});
        assert_eq!(cell(&explained), "1,234,500.00 (12)");
        assert_eq!(cell(&json!("2026")), "2026");
        assert_eq!(cell(&json!(12345)), "12,345");
        assert_eq!(cell(&json!(0.25)), "0.25");
        assert_eq!(
            cell(&json!({"first_day": "2026-01-01", "last_day": "2026-03-31"})),
            "first_day 2026-01-01, last_day 2026-03-31"
        );
        assert_eq!(cell(&json!([{"a": 1}, {"a": 2}])), "[2 items]");
        assert_eq!(cell(&json!("x".repeat(100))).chars().count(), MAX_CELL + 1);
    }

    #[test]
    fn keys_follow_the_equation_then_the_report() {
        let keys: Vec<String> = ["balanced", "end", "lost", "start", "won", "zeta", "created"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            ordered(&keys),
            ["start", "created", "lost", "won", "end", "balanced", "zeta"]
        );
    }

    #[test]
    fn numeric_cells() {
        assert!(is_numeric("1,000.00 (2)") && is_numeric("-3") && is_numeric("0.25"));
        assert!(!is_numeric("0 7 * * 1-5") && !is_numeric("2026-01-01") && !is_numeric(""));
        assert!(!is_numeric("5 (x)") && !is_numeric("true"));
    }

    #[test]
    fn tables_align_numbers_right() {
        let rows = vec![
            vec!["a".to_string(), "1,000.00 (2)".to_string()],
            vec!["bbb".to_string(), "5.00 (1)".to_string()],
        ];
        assert_eq!(
            table(&["K", "AMOUNT"], &rows, ""),
            "K          AMOUNT\na    1,000.00 (2)\nbbb      5.00 (1)\n"
        );
    }

    #[test]
    fn the_registry_lists_every_skill_and_setting() {
        let infos = pandora_skills::all().infos();
        let text = registry_table(&infos);
        for info in &infos {
            assert!(text.contains(info.id), "{text}");
            assert!(text.contains(info.default_schedule), "{text}");
            for s in &info.settings {
                assert!(text.contains(s.name), "{text}");
            }
        }
        assert!(
            text.contains("deals_listed") && text.contains("integer"),
            "{text}"
        );
    }
}
