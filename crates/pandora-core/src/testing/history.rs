//! Deal field history, as-of reconstruction, and batch/checkpoint atomicity.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::fixtures::{deal, deals_batch, new_workspace, write, StoreRef};
use crate::batch::{RecordBatch, RecordKind};
use crate::error::ErrorKind;
use crate::model::{
    deal_as_of, ChangeOrigin, Checkpoint, ConnectionStatus, DealField, NewAccount, NewConnection,
    NewDealChange, NewPipelineStage, StageCategory,
};

fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0)
        .single()
        .expect("valid time")
}

fn change(
    field: DealField,
    old: Option<&str>,
    new: Option<&str>,
    at: DateTime<Utc>,
) -> NewDealChange {
    NewDealChange {
        deal_source_id: "h1".into(),
        field,
        old_value: old.map(str::to_string),
        new_value: new.map(str::to_string),
        changed_at: at,
        origin: ChangeOrigin::Vendor,
    }
}

/// History comes back oldest first whatever the order it was delivered in,
/// repeats are ignored, an unknown deal fails the batch, and a deal can be
/// rebuilt as of any past time.
pub async fn deal_history_order_and_as_of(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let mut current = deal("h1", Some(7500), Some((2026, 3, 31)));
    current.stage = Some("won".into());
    current.stage_category = StageCategory::Won;
    current.owner_source_id = Some("rep2".into());
    current.source_created_at = Some(t(1, 9));
    let mut batch = deals_batch(vec![current]);
    batch.stages = ["discovery", "proposal", "won"]
        .iter()
        .enumerate()
        .map(|(i, s)| NewPipelineStage {
            pipeline: "default".into(),
            stage: s.to_string(),
            category: if *s == "won" {
                StageCategory::Won
            } else {
                StageCategory::Open
            },
            display_order: Some(i as i32),
            ..Default::default()
        })
        .collect();
    // Delivered newest first, as HubSpot's propertiesWithHistory does.
    batch.deal_changes = vec![
        change(DealField::Stage, Some("proposal"), Some("won"), t(20, 12)),
        change(DealField::Amount, Some("5000"), Some("7500"), t(12, 8)),
        change(
            DealField::CloseDate,
            Some("2026-02-28"),
            Some("2026-03-31"),
            t(12, 8),
        ),
        change(
            DealField::Stage,
            Some("discovery"),
            Some("proposal"),
            t(10, 15),
        ),
        change(DealField::Owner, Some("rep1"), Some("rep2"), t(5, 10)),
        change(DealField::Stage, None, Some("discovery"), t(1, 9)),
    ];
    let out = write(&store, ws, &batch).await;
    assert_eq!(out.changes_inserted, 6);
    let d = store
        .get_deal_by_source(ws, "test", "h1")
        .await
        .expect("h1");
    let history = store.deal_history(ws, d.id).await.expect("history");
    assert_eq!(history.len(), 6);
    let times: Vec<_> = history.iter().map(|c| c.changed_at).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "oldest first");
    assert_eq!(history[0].field, DealField::Stage);
    assert_eq!(history[0].new_value.as_deref(), Some("discovery"));
    assert_eq!(history[0].old_value, None);
    assert_eq!(history[0].origin, ChangeOrigin::Vendor);
    assert!(history
        .iter()
        .all(|c| c.deal_id == d.id && c.workspace_id == ws));
    assert_eq!(history.last().map(|c| c.changed_at), Some(t(20, 12)));

    // Replaying the same history stores nothing new; an observed change is added.
    let mut replay = batch.clone();
    replay.deal_changes.push(NewDealChange {
        origin: ChangeOrigin::Observed,
        ..change(DealField::ForecastCategory, None, Some("commit"), t(21, 0))
    });
    let out = write(&store, ws, &replay).await;
    assert_eq!(out.changes_inserted, 1);
    assert_eq!(out.of(RecordKind::Deal).unchanged, 1);
    let history = store.deal_history(ws, d.id).await.expect("history");
    assert_eq!(history.len(), 7);
    assert_eq!(history[6].origin, ChangeOrigin::Observed);

    // A change for a deal that does not exist fails the whole batch.
    let mut bad = RecordBatch::new("test");
    bad.accounts = vec![NewAccount {
        source_id: "acc-in-bad-batch".into(),
        ..Default::default()
    }];
    bad.deal_changes = vec![NewDealChange {
        deal_source_id: "ghost".into(),
        ..change(DealField::Stage, None, Some("x"), t(2, 0))
    }];
    let err = store
        .write_batch(ws, &bad.prepare().expect("prepare"), None)
        .await
        .unwrap_err();
    match &err {
        crate::Error::InvalidInput { field, .. } => {
            assert_eq!(field, "deal_changes.deal_source_id")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(
        store
            .count_records(ws, RecordKind::Account)
            .await
            .expect("count"),
        0
    );

    // As-of reconstruction from the stored rows.
    let stages = store.list_stages(ws).await.expect("stages");
    let at = |time| deal_as_of(&d, &history, &stages, time);
    assert_eq!(at(t(1, 8)), None, "did not exist before its creation");
    let s = at(t(3, 0)).expect("exists");
    assert_eq!(s.stage.as_deref(), Some("discovery"));
    assert_eq!(s.stage_category, StageCategory::Open);
    assert_eq!(s.amount, Some(Decimal::from(5000)));
    assert_eq!(s.close_date, NaiveDate::from_ymd_opt(2026, 2, 28));
    assert_eq!(s.owner_source_id.as_deref(), Some("rep1"));
    assert_eq!(s.forecast_category, None);
    let s = at(t(11, 0)).expect("exists");
    assert_eq!(s.stage.as_deref(), Some("proposal"));
    assert_eq!(s.owner_source_id.as_deref(), Some("rep2"));
    assert_eq!(s.amount, Some(Decimal::from(5000)));
    // A change takes effect at its exact instant.
    let s = at(t(12, 8)).expect("exists");
    assert_eq!(s.amount, Some(Decimal::from(7500)));
    assert_eq!(s.close_date, NaiveDate::from_ymd_opt(2026, 3, 31));
    let s = at(t(20, 12) - Duration::microseconds(1)).expect("exists");
    assert_eq!(s.stage.as_deref(), Some("proposal"));
    let s = at(t(25, 0)).expect("exists");
    assert_eq!(s.stage.as_deref(), Some("won"));
    assert_eq!(s.stage_category, StageCategory::Won);
    assert_eq!(s.forecast_category.as_deref(), Some("commit"));
}

/// A batch and its checkpoint are committed together: an error inside the
/// transaction leaves neither.
pub async fn batch_and_checkpoint_commit_together(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = store
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "sample".into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config: serde_json::json!({}),
            },
        )
        .await
        .expect("connection");
    let cp = |cursor: &str| Checkpoint {
        connection_id: conn.id,
        stream: "deals".into(),
        cursor: serde_json::json!({"updated_after": cursor, "id": "d1"}),
    };
    let accounts = |ids: &[&str]| {
        let mut b = RecordBatch::new("test");
        b.accounts = ids
            .iter()
            .map(|i| NewAccount {
                source_id: i.to_string(),
                ..Default::default()
            })
            .collect();
        b
    };

    let out = store
        .write_batch(
            ws,
            &accounts(&["a1", "a2"]).prepare().expect("prepare"),
            Some(&cp("2026-01-01")),
        )
        .await
        .expect("first page");
    assert_eq!(out.of(RecordKind::Account).inserted, 2);
    let stored = store
        .get_checkpoints(ws, conn.id)
        .await
        .expect("checkpoints");
    assert_eq!(stored.get("deals"), Some(&cp("2026-01-01").cursor));

    // Second page fails inside the transaction: neither its records nor its checkpoint remain.
    let mut failing = accounts(&["a3", "a4"]);
    failing.deals = vec![deal("d1", Some(1), None)];
    failing.deal_changes = vec![NewDealChange {
        deal_source_id: "not-a-deal".into(),
        field: DealField::Amount,
        old_value: None,
        new_value: Some("1".into()),
        changed_at: t(1, 0),
        origin: ChangeOrigin::Vendor,
    }];
    let err = store
        .write_batch(
            ws,
            &failing.prepare().expect("prepare"),
            Some(&cp("2026-02-01")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        store
            .count_records(ws, RecordKind::Account)
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .get_checkpoints(ws, conn.id)
            .await
            .expect("checkpoints")
            .get("deals"),
        Some(&cp("2026-01-01").cursor),
        "checkpoint unchanged"
    );

    // A checkpoint for a connection that does not exist fails the batch too.
    let mut orphan = cp("2026-03-01");
    orphan.connection_id = uuid::Uuid::now_v7();
    let err = store
        .write_batch(
            ws,
            &accounts(&["a5"]).prepare().expect("prepare"),
            Some(&orphan),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        store
            .count_records(ws, RecordKind::Account)
            .await
            .expect("count"),
        2
    );

    // The retried page succeeds and moves the cursor; a second stream is independent.
    store
        .write_batch(
            ws,
            &accounts(&["a3", "a4"]).prepare().expect("prepare"),
            Some(&cp("2026-02-01")),
        )
        .await
        .expect("retry");
    store
        .write_batch(
            ws,
            &RecordBatch::new("test").prepare().expect("prepare"),
            Some(&Checkpoint {
                stream: "accounts".into(),
                ..cp("x")
            }),
        )
        .await
        .expect("other stream");
    let stored = store
        .get_checkpoints(ws, conn.id)
        .await
        .expect("checkpoints");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored.get("deals"), Some(&cp("2026-02-01").cursor));
    assert_eq!(
        store
            .count_records(ws, RecordKind::Account)
            .await
            .expect("count"),
        4
    );
}
