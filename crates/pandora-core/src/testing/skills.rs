//! Skill persistence (`SkillStore`): run lifecycle and history, the latest
//! succeeded run of a period, per-workspace settings, quotas, the loader's
//! scans, and tenancy.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{deal, new_workspace, write, StoreRef};
use crate::batch::{Deletion, RecordBatch, RecordKind};
use crate::error::ErrorKind;
use crate::model::{
    self, ChangeOrigin, DealField, NewConversation, NewDealChange, NewDealContact, NewQuota,
    NewUser, RunStatus, SkillRun,
};
use crate::query::{Direction, PageRequest, Sort, SortKey};

/// 2026-04-`day` at `hour`:00 UTC.
fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, day, hour, 0, 0)
        .single()
        .expect("time")
}

/// A running run of `skill` for `period`, started at `started_at`.
fn running(ws: Uuid, skill: &str, period: &str, started_at: DateTime<Utc>) -> SkillRun {
    SkillRun {
        id: model::new_id(),
        workspace_id: ws,
        skill: skill.into(),
        period: Some(period.into()),
        period_start: Some(at(1, 0)),
        period_end: Some(
            Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0)
                .single()
                .expect("t"),
        ),
        as_of: started_at,
        settings: json!({"deals_listed": 10}),
        status: RunStatus::Running,
        report: None,
        error: None,
        started_at,
        finished_at: None,
    }
}

/// Writes users `u1`…`u{n}` of the `test` source; returns their ids by source id order.
async fn users(store: &StoreRef, ws: Uuid, n: usize) -> Vec<Uuid> {
    let batch = RecordBatch {
        users: (1..=n)
            .map(|i| NewUser {
                source_id: format!("u{i}"),
                name: Some(format!("User {i}")),
                active: true,
                properties: json!({}),
                ..Default::default()
            })
            .collect(),
        ..RecordBatch::new("test")
    };
    write(store, ws, &batch).await;
    let mut all = store
        .list_users(ws, &PageRequest::first(100))
        .await
        .expect("users")
        .data;
    all.sort_by(|a, b| a.fields.source_id.cmp(&b.fields.source_id));
    all.into_iter().map(|u| u.id).collect()
}

fn quota(user: Uuid, period: &str, amount: &str) -> NewQuota {
    NewQuota {
        user_id: user,
        period: period.into(),
        amount: amount.parse().expect("decimal"),
        currency: Some("USD".into()),
    }
}

/// Runs are created running, finished once with their report, listed newest
/// first in keyset pages, and the latest succeeded run of a period is found.
pub async fn skill_run_lifecycle_and_history(store: StoreRef) {
    let ws = new_workspace(&store, "skills").await;
    let first = running(ws, "forecast_rollup", "2026-Q2", at(2, 9));
    store.create_skill_run(ws, &first).await.expect("create");
    assert_eq!(store.get_skill_run(ws, first.id).await.expect("get"), first);
    let err = store.create_skill_run(ws, &first).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // Arguments checked before the database.
    let mut other_ws = running(ws, "forecast_rollup", "2026-Q2", at(2, 9));
    other_ws.workspace_id = model::new_id();
    let err = store.create_skill_run(ws, &other_ws).await.unwrap_err();
    assert!(matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "workspace_id"));
    let mut finished = running(ws, "forecast_rollup", "2026-Q2", at(2, 9));
    finished.status = RunStatus::Succeeded;
    let err = store.create_skill_run(ws, &finished).await.unwrap_err();
    assert!(matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "status"));
    let missing = model::new_id();
    let err = store
        .create_skill_run(missing, &running(missing, "x", "2026-Q2", at(2, 9)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // Finish once, with the report.
    let report = json!({"summary": {"closed": "10.00"}, "rows": [{"a": [1, 2]}]});
    let err = store
        .finish_skill_run(ws, first.id, RunStatus::Running, None, None, at(2, 10))
        .await
        .unwrap_err();
    assert!(matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "status"));
    let done = store
        .finish_skill_run(
            ws,
            first.id,
            RunStatus::Succeeded,
            Some(&report),
            None,
            at(2, 10),
        )
        .await
        .expect("finish");
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.report.as_ref(), Some(&report));
    assert_eq!(done.finished_at, Some(at(2, 10)));
    assert_eq!(done.settings, first.settings);
    assert_eq!(done.as_of, first.as_of);
    assert_eq!(
        (done.period_start, done.period_end),
        (first.period_start, first.period_end)
    );
    let err = store
        .finish_skill_run(ws, first.id, RunStatus::Failed, None, Some("x"), at(2, 11))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let err = store
        .finish_skill_run(
            ws,
            model::new_id(),
            RunStatus::Failed,
            None,
            None,
            at(2, 11),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // More runs: a failed one, one of another period, one of another skill.
    let failed = running(ws, "forecast_rollup", "2026-Q2", at(3, 9));
    store.create_skill_run(ws, &failed).await.expect("create");
    store
        .finish_skill_run(
            ws,
            failed.id,
            RunStatus::Failed,
            None,
            Some("boom"),
            at(3, 10),
        )
        .await
        .expect("fail");
    let q3 = running(ws, "forecast_rollup", "2026-Q3", at(4, 9));
    store.create_skill_run(ws, &q3).await.expect("create");
    store
        .finish_skill_run(
            ws,
            q3.id,
            RunStatus::Succeeded,
            Some(&json!({})),
            None,
            at(4, 10),
        )
        .await
        .expect("finish");
    let other_skill = running(ws, "pipeline_waterfall", "2026-Q2", at(5, 9));
    store
        .create_skill_run(ws, &other_skill)
        .await
        .expect("create");

    let latest = store
        .latest_skill_run(ws, "forecast_rollup", Some("2026-Q2"))
        .await
        .expect("latest")
        .expect("one");
    assert_eq!(
        latest.id, first.id,
        "the failed run is not the latest result"
    );
    let latest_any = store
        .latest_skill_run(ws, "forecast_rollup", None)
        .await
        .expect("latest")
        .expect("one");
    assert_eq!(latest_any.id, q3.id);
    assert!(store
        .latest_skill_run(ws, "pipeline_waterfall", None)
        .await
        .expect("latest")
        .is_none());

    // History: newest first, two per page, then oldest first.
    let page = PageRequest::first(2);
    let p1 = store
        .list_skill_runs(ws, "forecast_rollup", &page)
        .await
        .expect("page 1");
    let ids: Vec<Uuid> = p1.data.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![q3.id, failed.id]);
    let p2 = store
        .list_skill_runs(
            ws,
            "forecast_rollup",
            &page.next(p1.next_cursor.expect("more")),
        )
        .await
        .expect("page 2");
    assert_eq!(
        p2.data.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![first.id]
    );
    assert!(p2.next_cursor.is_none());
    let asc = PageRequest {
        limit: 10,
        sort: Sort {
            key: SortKey::UpdatedAt,
            direction: Direction::Asc,
        },
        after: None,
    };
    let all = store
        .list_skill_runs(ws, "forecast_rollup", &asc)
        .await
        .expect("asc");
    assert_eq!(
        all.data.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![first.id, failed.id, q3.id]
    );
    let by_amount = PageRequest {
        sort: Sort {
            key: SortKey::Amount,
            direction: Direction::Desc,
        },
        ..PageRequest::first(10)
    };
    let err = store
        .list_skill_runs(ws, "forecast_rollup", &by_amount)
        .await
        .unwrap_err();
    assert!(matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "sort"));
}

/// A workspace's settings of a skill are stored and replaced whole, per skill.
pub async fn skill_settings_are_stored_per_skill(store: StoreRef) {
    let ws = new_workspace(&store, "settings").await;
    assert!(store
        .get_skill_settings(ws, "forecast_rollup")
        .await
        .expect("get")
        .is_none());
    let first = json!({"deals_listed": 5, "stage_categories": {"contract": "commit"}});
    store
        .put_skill_settings(ws, "forecast_rollup", &first, at(1, 0))
        .await
        .expect("put");
    assert_eq!(
        store
            .get_skill_settings(ws, "forecast_rollup")
            .await
            .expect("get"),
        Some(first)
    );
    let second = json!({"deals_listed": 7});
    store
        .put_skill_settings(ws, "forecast_rollup", &second, at(1, 1))
        .await
        .expect("replace");
    assert_eq!(
        store
            .get_skill_settings(ws, "forecast_rollup")
            .await
            .expect("get"),
        Some(second)
    );
    assert!(store
        .get_skill_settings(ws, "pipeline_waterfall")
        .await
        .expect("get")
        .is_none());
    let err = store
        .put_skill_settings(ws, "forecast_rollup", &json!([1]), at(1, 2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let missing = model::new_id();
    let err = store
        .put_skill_settings(missing, "forecast_rollup", &json!({}), at(1, 2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Quotas: one per (user, period), replaced by a later put; listed by
/// (period, user); a user not of the workspace fails the whole put.
pub async fn quotas_are_replaced_per_user_and_period(store: StoreRef) {
    let ws = new_workspace(&store, "quotas").await;
    let u = users(&store, ws, 2).await;
    let stored = store
        .put_quotas(
            ws,
            &[
                quota(u[0], "2026-Q2", "300000"),
                quota(u[1], "2026-Q2", "150000.5"),
                quota(u[0], "2026-Q3", "0.1234"),
            ],
            at(1, 0),
        )
        .await
        .expect("put");
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[1].amount, "150000.5".parse::<Decimal>().expect("d"));
    assert_eq!(stored[2].amount, "0.1234".parse::<Decimal>().expect("d"));
    assert!(stored
        .iter()
        .all(|q| q.workspace_id == ws && q.updated_at == at(1, 0)));

    // Replace one.
    store
        .put_quotas(ws, &[quota(u[0], "2026-Q2", "320000")], at(2, 0))
        .await
        .expect("replace");
    let all = store.list_quotas(ws, None).await.expect("list");
    let mut expected = [
        (u[0], "2026-Q2", "320000"),
        (u[1], "2026-Q2", "150000.5"),
        (u[0], "2026-Q3", "0.1234"),
    ];
    expected.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    assert_eq!(
        all.iter()
            .map(|q| (q.user_id, q.period.as_str(), q.amount))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(u, p, a)| (*u, *p, a.parse::<Decimal>().expect("d")))
            .collect::<Vec<_>>()
    );
    let q3 = store.list_quotas(ws, Some("2026-Q3")).await.expect("list");
    assert_eq!(q3.len(), 1);
    assert_eq!(q3[0].currency.as_deref(), Some("USD"));

    // An unknown user fails the whole put, naming the row.
    let err = store
        .put_quotas(
            ws,
            &[
                quota(u[1], "2026-Q4", "1"),
                quota(model::new_id(), "2026-Q4", "1"),
            ],
            at(3, 0),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "quotas[1].user_id"),
        "{err:?}"
    );
    assert!(store
        .list_quotas(ws, Some("2026-Q4"))
        .await
        .expect("list")
        .is_empty());
    // Rows checked before the database.
    let err = store
        .put_quotas(ws, &[quota(u[0], "2026-Q2", "-1")], at(3, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "quotas[0].amount")
    );
    let err = store
        .put_quotas(
            ws,
            &[quota(u[0], "2026-Q2", "1"), quota(u[0], "2026-Q2", "2")],
            at(3, 0),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "quotas[1]"));
}

/// The loader's scans: every deal (soft-deleted ones too) by id with its
/// whole history in order; live roles and conversations by id.
pub async fn skill_scans_page_by_id(store: StoreRef) {
    let ws = new_workspace(&store, "scans").await;
    let change = |deal: &str, field, old: Option<&str>, new: Option<&str>, t| NewDealChange {
        deal_source_id: deal.into(),
        field,
        old_value: old.map(Into::into),
        new_value: new.map(Into::into),
        changed_at: t,
        origin: ChangeOrigin::Vendor,
    };
    let batch = RecordBatch {
        deals: (1..=5)
            .map(|i| deal(&format!("d{i}"), Some(i * 100), Some((2026, 5, i as u32))))
            .collect(),
        deal_changes: vec![
            change("d2", DealField::Amount, Some("100"), Some("200"), at(3, 0)),
            change(
                "d2",
                DealField::Stage,
                Some("new"),
                Some("qualified"),
                at(2, 0),
            ),
            change(
                "d4",
                DealField::CloseDate,
                Some("2026-06-01"),
                Some("2026-05-04"),
                at(5, 0),
            ),
        ],
        deal_contacts: (1..=3)
            .map(|i| NewDealContact {
                deal_source_id: format!("d{i}"),
                contact_source_id: format!("c{i}"),
                role: Some("champion".into()),
                is_primary: i == 1,
            })
            .collect(),
        conversations: (1..=3)
            .map(|i| NewConversation {
                source_id: format!("call{i}"),
                title: Some(format!("Call {i}")),
                started_at: Some(at(i, 12)),
                properties: json!({}),
                ..Default::default()
            })
            .collect(),
        ..RecordBatch::new("test")
    };
    write(&store, ws, &batch).await;
    let deletions = RecordBatch {
        deletions: vec![
            Deletion {
                kind: RecordKind::Deal,
                source_id: "d3".into(),
            },
            Deletion {
                kind: RecordKind::DealContact,
                source_id: "d2/c2".into(),
            },
            Deletion {
                kind: RecordKind::Conversation,
                source_id: "call2".into(),
            },
        ],
        ..RecordBatch::new("test")
    };
    write(&store, ws, &deletions).await;
    // Noise in another workspace.
    let other = new_workspace(&store, "other").await;
    write(&store, other, &batch).await;

    let mut scanned = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_deals(ws, after, 2).await.expect("scan");
        assert!(page.len() <= 2);
        let done = page.len() < 2;
        after = page.last().map(|d| d.id);
        scanned.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(scanned.len(), 5, "soft-deleted deals are scanned too");
    assert!(scanned.windows(2).all(|w| w[0].id < w[1].id), "by id");
    let by_source = |s: &str| {
        scanned
            .iter()
            .find(|d| d.fields.source_id == s)
            .expect("scanned")
    };
    assert!(by_source("d3").deleted_at.is_some());
    assert!(by_source("d1").deleted_at.is_none());
    let d2 = by_source("d2");
    assert_eq!(
        d2.changes.iter().map(|c| c.field).collect::<Vec<_>>(),
        vec![DealField::Stage, DealField::Amount],
        "history by time"
    );
    assert!(d2
        .changes
        .iter()
        .all(|c| c.deal_id == d2.id && c.workspace_id == ws));
    assert_eq!(by_source("d4").changes.len(), 1);
    assert!(by_source("d5").changes.is_empty());
    assert_eq!(by_source("d5").fields.amount, Some(Decimal::from(500)));
    let real = store.get_deal(ws, d2.id).await.expect("deal");
    assert_eq!(
        (d2.source.as_str(), d2.created_at),
        (real.source.as_str(), real.created_at)
    );

    let roles = store.scan_deal_contacts(ws, None, 10).await.expect("roles");
    assert_eq!(roles.len(), 2, "live roles only");
    assert!(roles.windows(2).all(|w| w[0].id < w[1].id));
    let rest = store
        .scan_deal_contacts(ws, Some(roles[0].id), 10)
        .await
        .expect("roles after");
    assert_eq!(rest, roles[1..].to_vec());
    let calls = store.scan_conversations(ws, None, 1).await.expect("calls");
    assert_eq!(calls.len(), 1);
    let more = store
        .scan_conversations(ws, Some(calls[0].id), 10)
        .await
        .expect("calls after");
    assert_eq!(more.len(), 1, "live conversations only");
    assert!(calls.iter().chain(&more).all(|c| c.workspace_id == ws));
}

/// Another workspace's runs, settings, quotas and data are out of reach;
/// deleting a workspace removes its runs, settings and quotas.
pub async fn skills_are_tenant_isolated(store: StoreRef) {
    let a = new_workspace(&store, "a").await;
    let b = new_workspace(&store, "b").await;
    let run = running(a, "forecast_rollup", "2026-Q2", at(2, 9));
    store.create_skill_run(a, &run).await.expect("create");
    let err = store.get_skill_run(b, run.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = store
        .finish_skill_run(b, run.id, RunStatus::Cancelled, None, None, at(2, 10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        store.get_skill_run(a, run.id).await.expect("get").status,
        RunStatus::Running,
        "untouched"
    );
    let mut foreign = run.clone();
    foreign.id = model::new_id();
    let err = store.create_skill_run(b, &foreign).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(store
        .list_skill_runs(b, "forecast_rollup", &PageRequest::first(10))
        .await
        .expect("list")
        .data
        .is_empty());
    store
        .finish_skill_run(
            a,
            run.id,
            RunStatus::Succeeded,
            Some(&json!({})),
            None,
            at(2, 10),
        )
        .await
        .expect("finish");
    assert!(store
        .latest_skill_run(b, "forecast_rollup", None)
        .await
        .expect("latest")
        .is_none());

    store
        .put_skill_settings(a, "forecast_rollup", &json!({"x": 1}), at(1, 0))
        .await
        .expect("put");
    assert!(store
        .get_skill_settings(b, "forecast_rollup")
        .await
        .expect("get")
        .is_none());

    let ua = users(&store, a, 1).await;
    store
        .put_quotas(a, &[quota(ua[0], "2026-Q2", "10")], at(1, 0))
        .await
        .expect("quota");
    let err = store
        .put_quotas(b, &[quota(ua[0], "2026-Q2", "10")], at(1, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "quotas[0].user_id"),
        "a user of another workspace: {err:?}"
    );
    assert!(store.list_quotas(b, None).await.expect("list").is_empty());

    write(
        &store,
        a,
        &super::fixtures::deals_batch(vec![deal("d1", Some(1), None)]),
    )
    .await;
    assert!(store
        .scan_deals(b, None, 10)
        .await
        .expect("scan")
        .is_empty());
    assert_eq!(store.scan_deals(a, None, 10).await.expect("scan").len(), 1);

    store.delete_workspace(a).await.expect("delete");
    let err = store.get_skill_run(a, run.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(store.list_quotas(a, None).await.expect("list").is_empty());
    assert!(store
        .get_skill_settings(a, "forecast_rollup")
        .await
        .expect("get")
        .is_none());
    let _ = Duration::zero();
}
