//! `pandora skills list` and `pandora skills run`, through the real binary
//! over a synced `sample` workspace in SQLite.

use std::path::Path;
use std::process::Output;

mod common;

use pandora_core::model::{ConnectionStatus, NewConnection, NewWorkspace, SyncMode};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use serde_json::Value;
use uuid::Uuid;

fn pandora(dir: &Path, args: &[&str]) -> Output {
    common::pandora(dir)
        .args(args)
        .output()
        .expect("run pandora")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The facade over `dir/pandora.db`, with the sample connector and every skill.
async fn facade(dir: &Path) -> (SqliteStore, Pandora) {
    let store = SqliteStore::open(dir.join("pandora.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let p = Pandora::builder()
        .store(store.clone())
        .connectors(pandora_connectors::all())
        .skills(pandora_skills::all())
        .build()
        .expect("build");
    (store, p)
}

/// A workspace with a synced `sample` connection of 300 deals, in `dir/pandora.db`.
async fn seed(dir: &Path) -> Uuid {
    let (store, p) = facade(dir).await;
    let ws = p
        .create_workspace(NewWorkspace {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .expect("workspace")
        .workspace
        .id;
    p.store()
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "sample".into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config: serde_json::json!({"deals": 300, "seed": 3, "start": "2026-01-05"}),
            },
        )
        .await
        .expect("connection");
    p.sync(ws, "sample", SyncMode::Full, &|_| {})
        .await
        .expect("sync");
    store.close().await;
    ws
}

/// An explained figure's amount, in cents.
fn cents(summary: &Value, figure: &str) -> i64 {
    let amount = summary[figure]["amount"]
        .as_str()
        .unwrap_or_else(|| panic!("{figure}: {summary}"));
    let (whole, frac) = amount.split_once('.').expect("decimal");
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    let frac: i64 = format!("{frac:0<2}")[..2].parse().expect("cents");
    whole.parse::<i64>().expect("whole") * 100 + sign * frac
}

/// `1234567.50` as the table shows it: `1,234,567.50`.
fn grouped(amount: &str) -> String {
    let (whole, frac) = amount.split_once('.').expect("decimal");
    let digits: Vec<char> = whole.chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && digits[i - 1] != '-' {
            out.push(',');
        }
        out.push(*c);
    }
    format!("{out}.{frac}")
}

#[test]
fn skills_list_shows_every_skill_with_its_settings() {
    let dir = tempfile::tempdir().expect("dir");
    let out = pandora(dir.path(), &["skills", "list"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for info in pandora_skills::all().infos() {
        let line = text
            .lines()
            .find(|l| l.starts_with(info.id))
            .unwrap_or_else(|| panic!("{} missing: {text}", info.id));
        assert!(line.contains(info.display_name), "{line}");
        assert!(line.contains(info.default_schedule), "{line}");
        for setting in &info.settings {
            assert!(text.contains(setting.name), "{}: {text}", setting.name);
        }
    }
    for id in [
        "deal_risk",
        "forecast_rollup",
        "pipeline_waterfall",
        "rep_scorecard",
        "single_thread_alert",
    ] {
        assert!(text.contains(id), "{id}: {text}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains("deals_listed") && l.contains("25")),
        "a setting shows its default: {text}"
    );
    assert!(
        !dir.path().join("pandora.db").exists(),
        "listing opens no database"
    );
}

#[tokio::test]
async fn skills_run_prints_and_records_the_report() {
    let dir = tempfile::tempdir().expect("dir");
    let ws = seed(dir.path()).await;
    let id = ws.to_string();

    // --json: the whole report, whose summary balances.
    let out = pandora(
        dir.path(),
        &[
            "skills",
            "run",
            &id,
            "pipeline_waterfall",
            "--period",
            "2026-Q1",
            "--json",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let report: Value = serde_json::from_str(&text).expect("stdout is JSON");
    assert_eq!(report["skill"], "pipeline_waterfall");
    assert_eq!(report["period"]["label"], "2026-Q1");
    let summary = &report["summary"];
    assert_eq!(summary["balanced"], true, "{summary}");
    assert!(summary["deals"].as_u64().expect("deals") > 0, "{summary}");
    let c = |f: &str| cents(summary, f);
    assert_eq!(
        c("start") + c("created") + c("pulled_in") + c("increased")
            - c("decreased")
            - c("pushed_out")
            - c("lost")
            - c("won"),
        c("end"),
        "{summary}"
    );
    assert!(report["rows"].as_array().is_some_and(|r| !r.is_empty()));

    // Recorded as the API records it: the latest run of the period has this report.
    let (store, p) = facade(dir.path()).await;
    let run = p
        .latest_skill_run(ws, "pipeline_waterfall", Some("2026-Q1"))
        .await
        .expect("a recorded run");
    store.close().await;
    assert_eq!(run.period.as_deref(), Some("2026-Q1"));
    assert_eq!(run.report.as_ref(), Some(&report));

    // The table: the summary's figures with thousands separators, the rows, and how to get the rest.
    let out = pandora(
        dir.path(),
        &[
            "skills",
            "run",
            &id,
            "pipeline_waterfall",
            "--period",
            "2026-Q1",
        ],
    );
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{table}{}", stderr(&out));
    assert!(table.starts_with("pipeline_waterfall 2026-Q1"), "{table}");
    for figure in [
        "start",
        "created",
        "pulled_in",
        "increased",
        "decreased",
        "pushed_out",
        "lost",
        "won",
        "end",
    ] {
        let amount = grouped(summary[figure]["amount"].as_str().expect("amount"));
        let count = &summary[figure]["count"];
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{figure} ")))
            .unwrap_or_else(|| panic!("{figure} missing: {table}"));
        assert!(
            line.contains(&format!("{amount} ({count})")),
            "{figure}: {line}"
        );
    }
    assert!(table.contains("Rows ("), "{table}");
    assert!(table.contains("--json prints the whole report"), "{table}");

    // Errors: one line on stderr, exit 1.
    let unknown = pandora(dir.path(), &["skills", "run", &id, "pipeline_waterfal"]);
    let err = stderr(&unknown);
    assert_eq!(unknown.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "known: deal_risk, forecast_rollup, pipeline_waterfall, rep_scorecard, single_thread_alert"
        ),
        "{err}"
    );
    assert!(stdout(&unknown).is_empty());

    let other = Uuid::new_v4().to_string();
    let nowhere = pandora(dir.path(), &["skills", "run", &other, "deal_risk"]);
    let err = stderr(&nowhere);
    assert_eq!(nowhere.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("workspace"), "{err}");

    let bad_period = pandora(
        dir.path(),
        &["skills", "run", &id, "deal_risk", "--period", "2026-Q5"],
    );
    let err = stderr(&bad_period);
    assert_eq!(bad_period.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("period"), "{err}");

    let future = pandora(
        dir.path(),
        &[
            "skills",
            "run",
            &id,
            "deal_risk",
            "--as-of",
            "2999-01-01T00:00:00Z",
        ],
    );
    let err = stderr(&future);
    assert_eq!(future.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("future"), "{err}");

    let usage = pandora(
        dir.path(),
        &["skills", "run", &id, "deal_risk", "--as-of", "yesterday"],
    );
    assert_eq!(usage.status.code(), Some(2), "clap rejects a bad time");
}

/// A live deal-risk run writes every open deal's score and signals on the
/// deal, so the deals list sorted by risk agrees with the run; a run over
/// the past or with trial settings changes no deal.
#[tokio::test]
async fn a_live_deal_risk_run_is_what_sort_by_risk_shows() {
    use pandora_core::facade::SkillRunRequest;
    use pandora_core::query::{DealFilter, Direction, PageRequest, Sort, SortKey};

    let dir = tempfile::tempdir().expect("dir");
    let ws = seed(dir.path()).await;
    let (_store, p) = facade(dir.path()).await;
    let scores = |p: Pandora| async move {
        let mut all = std::collections::BTreeMap::new();
        let mut page = PageRequest::first(500);
        loop {
            let got = p
                .store()
                .list_deals(ws, &DealFilter::default(), &page)
                .await
                .expect("deals");
            for d in got.data {
                let c = d.computed.expect("computed fields");
                let codes: Vec<String> = c
                    .risk_reasons
                    .iter()
                    .map(|r| r.code.as_str().to_string())
                    .collect();
                all.insert(d.id, (c.risk_score, codes));
            }
            match got.next_cursor {
                Some(c) => page = page.next(c),
                None => break,
            }
        }
        all
    };
    let before = scores(p.clone()).await;

    // Not live: as of a past time, or with trial settings: nothing written.
    let past = SkillRunRequest {
        as_of: Some(chrono::Utc::now() - chrono::Duration::days(3)),
        ..Default::default()
    };
    let trial = SkillRunRequest {
        settings: Some(serde_json::json!({"weight_single_threaded": 100})),
        ..Default::default()
    };
    for request in [&past, &trial] {
        let run = p.run_skill(ws, "deal_risk", request).await.expect("run");
        assert_eq!(
            run.status,
            pandora_core::model::RunStatus::Succeeded,
            "{:?}",
            run.error
        );
        assert_eq!(scores(p.clone()).await, before);
    }

    // Live: every open deal's score and signals are the run's.
    let request = SkillRunRequest {
        settings: None,
        ..Default::default()
    };
    let run = p.run_skill(ws, "deal_risk", &request).await.expect("run");
    let report = run.report.expect("report");
    let after = scores(p.clone()).await;
    let rows = report["rows"].as_array().expect("rows");
    assert!(rows.len() > 10, "{}", report["summary"]);
    for row in rows {
        let id: Uuid = row["deal_id"].as_str().expect("id").parse().expect("uuid");
        let mut signals: Vec<String> = row["signals"]
            .as_array()
            .expect("signals")
            .iter()
            .map(|s| s["signal"].as_str().expect("signal").to_string())
            .collect();
        signals.sort();
        let (score, codes) = &after[&id];
        let mut codes = codes.clone();
        codes.sort();
        assert_eq!(
            i64::from(*score),
            row["score"].as_i64().expect("score"),
            "{row}"
        );
        assert_eq!(codes, signals, "{row}");
    }
    assert_ne!(
        after, before,
        "the run added the signals that need contacts and calls"
    );

    // The list sorted by risk: the report's order of scores.
    let top = p
        .store()
        .list_deals(
            ws,
            &DealFilter::default(),
            &PageRequest {
                sort: Sort {
                    key: SortKey::Risk,
                    direction: Direction::Desc,
                },
                ..PageRequest::first(20)
            },
        )
        .await
        .expect("sorted");
    let listed: Vec<i64> = top
        .data
        .iter()
        .map(|d| i64::from(d.computed.as_ref().expect("computed").risk_score))
        .collect();
    let reported: Vec<i64> = rows
        .iter()
        .take(20)
        .map(|r| r["score"].as_i64().expect("score"))
        .collect();
    assert_eq!(listed, reported);
}
