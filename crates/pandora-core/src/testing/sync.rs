//! The sync engine over a real store: resume after a failure, observed history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};

use super::fixtures::{deal, new_workspace, StoreRef};
use crate::batch::{RecordBatch, RecordKind};
use crate::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, RecordSink, StreamCheckpoint,
    StreamInfo, SyncContext,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    self, ChangeOrigin, ConnectionStatus, DealField, NewConnection, NewDealChange, SyncMode,
};
use crate::query::{DealFilter, PageRequest};
use crate::sync::run_sync;

/// How a scripted sync misbehaves at one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    /// The vendor answers an error at this page.
    ErrorAt(usize),
    /// The connector hangs at this page (the run is then dropped, as a killed process would be).
    HangAt(usize),
}

/// A connector that replays fixed pages; its cursor is the index of the last page stored.
pub(super) struct Scripted {
    pub(super) pages: Vec<RecordBatch>,
    pub(super) fault: Fault,
}

#[async_trait]
impl Connector for Scripted {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: "test",
            display_name: "Scripted test source",
            auth: AuthKind::None,
            streams: vec![StreamInfo {
                name: "deals",
                kinds: vec![RecordKind::Deal],
                incremental: true,
            }],
        }
    }

    async fn check(&self, _ctx: &CheckContext) -> Result<CheckOutcome> {
        Ok(CheckOutcome {
            ok: true,
            detail: None,
        })
    }

    async fn sync(&self, ctx: &SyncContext, sink: &mut dyn RecordSink) -> Result<()> {
        let start = ctx
            .cursor("deals")
            .and_then(|c| c["page"].as_u64())
            .map_or(0, |p| p as usize + 1);
        for (i, page) in self.pages.iter().enumerate().skip(start) {
            match self.fault {
                Fault::ErrorAt(k) if k == i => {
                    return Err(Error::unavailable("vendor answered 503"))
                }
                Fault::HangAt(k) if k == i => std::future::pending::<()>().await,
                _ => {}
            }
            sink.push(
                page.clone(),
                Some(StreamCheckpoint {
                    stream: "deals".into(),
                    cursor: serde_json::json!({"page": i}),
                }),
            )
            .await?;
        }
        Ok(())
    }
}

/// Five pages of ten deals each.
pub(super) fn pages() -> Vec<RecordBatch> {
    (0..5)
        .map(|p| {
            let mut b = RecordBatch::new("test");
            b.deals = (0..10)
                .map(|i| {
                    deal(
                        &format!("p{p}-d{i}"),
                        Some(100 * (p * 10 + i)),
                        Some((2026, 6, 1)),
                    )
                })
                .collect();
            b
        })
        .collect()
}

pub(super) async fn context(store: &StoreRef, ws: uuid::Uuid, mode: SyncMode) -> SyncContext {
    let conn = store
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "test".into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config: serde_json::json!({}),
            },
        )
        .await
        .expect("connection");
    SyncContext {
        check: CheckContext {
            workspace_id: ws,
            config: serde_json::json!({}),
            credentials: None,
            tokens: None,
        },
        connection_id: conn.id,
        mode,
        cursors: store
            .get_checkpoints(ws, conn.id)
            .await
            .expect("checkpoints"),
        started_at: model::now(),
    }
}

async fn all_deals(
    store: &StoreRef,
    ws: uuid::Uuid,
) -> BTreeMap<String, (crate::model::NewDeal, Option<chrono::DateTime<Utc>>)> {
    store
        .list_deals(ws, &DealFilter::default(), &PageRequest::first(500))
        .await
        .expect("list")
        .data
        .into_iter()
        .map(|d| (d.fields.source_id.clone(), (d.fields, d.deleted_at)))
        .collect()
}

pub(super) fn quiet(_: &crate::sync::SyncOutcome) {}

/// A sync failing at page k (vendor error, or a dropped run standing in for a
/// killed process) keeps pages before k with their checkpoint; the next run
/// resumes there and ends with exactly the data of a clean run.
pub async fn sync_resumes_after_a_failure_with_nothing_lost_or_doubled(store: StoreRef) {
    // The reference: a clean run.
    let clean_ws = new_workspace(&store, "clean").await;
    let ctx = context(&store, clean_ws, SyncMode::Full).await;
    let out = run_sync(
        store.as_ref(),
        &Scripted {
            pages: pages(),
            fault: Fault::None,
        },
        &ctx,
        &quiet,
    )
    .await
    .expect("clean run");
    assert_eq!((out.pages, out.counts["deals"].inserted), (5, 50));
    let reference = all_deals(&store, clean_ws).await;

    for fault in [Fault::ErrorAt(3), Fault::HangAt(3)] {
        let ws = new_workspace(&store, "faulty").await;
        let ctx = context(&store, ws, SyncMode::Full).await;
        let connector = Scripted {
            pages: pages(),
            fault,
        };
        match fault {
            Fault::ErrorAt(_) => {
                let err = run_sync(store.as_ref(), &connector, &ctx, &quiet)
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Unavailable);
            }
            _ => {
                let run = run_sync(store.as_ref(), &connector, &ctx, &quiet);
                assert!(
                    tokio::time::timeout(std::time::Duration::from_millis(300), run)
                        .await
                        .is_err(),
                    "the run hangs and is dropped"
                );
            }
        }
        assert_eq!(
            store
                .count_records(ws, RecordKind::Deal)
                .await
                .expect("count"),
            30,
            "{fault:?}: pages 0-2 kept"
        );
        let cursors = store
            .get_checkpoints(ws, ctx.connection_id)
            .await
            .expect("checkpoints");
        assert_eq!(
            cursors["deals"],
            serde_json::json!({"page": 2}),
            "{fault:?}"
        );

        // The next run resumes after page 2 and finishes.
        let resumed = context(&store, ws, SyncMode::Incremental).await;
        let out = run_sync(
            store.as_ref(),
            &Scripted {
                pages: pages(),
                fault: Fault::None,
            },
            &resumed,
            &quiet,
        )
        .await
        .expect("resumed run");
        assert_eq!(out.pages, 2, "{fault:?}: only pages 3 and 4 are read again");
        assert_eq!(out.counts["deals"].inserted, 20);
        assert_eq!(
            all_deals(&store, ws).await,
            reference,
            "{fault:?}: row for row the clean run's data"
        );

        // A full re-run replays every page and changes nothing.
        let full = context(&store, ws, SyncMode::Full).await;
        let out = run_sync(
            store.as_ref(),
            &Scripted {
                pages: pages(),
                fault: Fault::None,
            },
            &full,
            &quiet,
        )
        .await
        .expect("full re-run");
        assert_eq!(
            (
                out.counts["deals"].unchanged,
                out.counts["deals"].inserted,
                out.counts["deals"].updated
            ),
            (50, 0, 0)
        );
    }
}

/// A changed deal field the vendor gave no history for is recorded as an
/// observed change at the vendor's modification time; reported ones are not doubled.
pub async fn sync_records_observed_changes(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let t1 = Utc
        .with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .expect("time");
    let t2 = Utc
        .with_ymd_and_hms(2026, 3, 5, 17, 30, 0)
        .single()
        .expect("time");
    let mut before = deal("d1", Some(1000), Some((2026, 6, 30)));
    before.source_updated_at = Some(t1);
    before.owner_source_id = Some("rep1".into());
    let mut first = RecordBatch::new("test");
    first.deals = vec![before.clone()];

    let second = second_page(&before, t2);

    let ctx = context(&store, ws, SyncMode::Full).await;
    let out = run_sync(
        store.as_ref(),
        &Scripted {
            pages: vec![first, second],
            fault: Fault::None,
        },
        &ctx,
        &quiet,
    )
    .await
    .expect("sync");
    assert_eq!(out.observed_changes, 2, "amount and close date");
    let d = store
        .get_deal_by_source(ws, "test", "d1")
        .await
        .expect("d1");
    let history = store.deal_history(ws, d.id).await.expect("history");
    let by_field = |f: DealField| history.iter().filter(|c| c.field == f).collect::<Vec<_>>();
    let stage = by_field(DealField::Stage);
    assert_eq!(stage.len(), 1);
    assert_eq!(stage[0].origin, ChangeOrigin::Vendor);
    let amount = by_field(DealField::Amount);
    assert_eq!(amount.len(), 1);
    assert_eq!(
        (
            amount[0].old_value.as_deref(),
            amount[0].new_value.as_deref()
        ),
        (Some("1000"), Some("1500"))
    );
    assert_eq!(amount[0].origin, ChangeOrigin::Observed);
    assert_eq!(amount[0].changed_at, t2);
    let close = by_field(DealField::CloseDate);
    assert_eq!(
        (close[0].old_value.as_deref(), close[0].new_value.as_deref()),
        (Some("2026-06-30"), Some("2026-07-31"))
    );
    assert!(
        by_field(DealField::Owner).is_empty(),
        "unchanged fields record nothing"
    );

    // Replaying the last page observes nothing and stores nothing twice.
    let replay = Scripted {
        pages: vec![second_page(&before, t2)],
        fault: Fault::None,
    };
    let again = context(&store, ws, SyncMode::Full).await;
    let out = run_sync(store.as_ref(), &replay, &again, &quiet)
        .await
        .expect("replay");
    assert_eq!((out.observed_changes, out.changes_inserted), (0, 0));
    assert_eq!(out.counts["deals"].unchanged, 1);
    assert_eq!(
        store.deal_history(ws, d.id).await.expect("history").len(),
        3
    );
}

/// The deal moved on: new stage (reported by the vendor), amount and close date (not reported).
fn second_page(before: &crate::model::NewDeal, t2: chrono::DateTime<Utc>) -> RecordBatch {
    let mut after = before.clone();
    after.source_updated_at = Some(t2);
    after.stage = Some("proposal".into());
    after.amount = Some(1500.into());
    after.close_date = chrono::NaiveDate::from_ymd_opt(2026, 7, 31);
    let mut second = RecordBatch::new("test");
    second.deals = vec![after];
    second.deal_changes = vec![NewDealChange {
        deal_source_id: "d1".into(),
        field: DealField::Stage,
        old_value: Some("qualified".into()),
        new_value: Some("proposal".into()),
        changed_at: t2 - chrono::Duration::hours(1),
        origin: ChangeOrigin::Vendor,
    }];
    second
}

/// A connector that accepts one API key, and says what it was handed.
pub(super) struct KeyChecking;

#[async_trait]
impl Connector for KeyChecking {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: "keyed",
            display_name: "Key-checking test source",
            auth: AuthKind::ApiKey,
            streams: vec![StreamInfo {
                name: "deals",
                kinds: vec![RecordKind::Deal],
                incremental: false,
            }],
        }
    }

    async fn check(&self, ctx: &CheckContext) -> Result<CheckOutcome> {
        let key = ctx
            .credentials
            .as_ref()
            .map(|c| c.expose_json())
            .transpose()?;
        let ok = key.is_some_and(|k| k["api_key"] == "right-key");
        Ok(CheckOutcome {
            ok,
            detail: (!ok).then(|| "invalid API key".to_string()),
        })
    }

    async fn sync(&self, ctx: &SyncContext, sink: &mut dyn RecordSink) -> Result<()> {
        if !self.check(&ctx.check).await?.ok {
            return Err(Error::unauthorized("the vendor rejected the API key"));
        }
        let mut page = RecordBatch::new("keyed");
        page.deals = vec![deal("k1", Some(1), None)];
        sink.push(page, None).await
    }
}

/// `Pandora::sync_now` hands the connector opened credentials (never the vault or the sealed form).
pub async fn connectors_receive_opened_credentials(store: StoreRef) {
    use crate::vault::{Credentials, LocalVault, MasterKey};
    let pandora = crate::Pandora::builder()
        .shared_store(store.clone())
        .vault(LocalVault::new(MasterKey::from_bytes(&[6u8; 32])))
        .connectors(crate::connector::ConnectorRegistry::new().with(KeyChecking))
        .build()
        .expect("build");
    let good = new_workspace(&store, "good").await;
    let bad = new_workspace(&store, "bad").await;
    for (ws, key) in [(good, "right-key"), (bad, "wrong-key")] {
        pandora
            .connect(
                ws,
                "keyed",
                Credentials::from_json(&serde_json::json!({"api_key": key})),
                serde_json::json!({}),
            )
            .await
            .expect("connect");
    }
    let out = pandora
        .sync_now(good, "keyed", SyncMode::Full, &quiet)
        .await
        .expect("sync");
    assert_eq!(out.counts["deals"].inserted, 1);
    let err = pandora
        .sync_now(bad, "keyed", SyncMode::Full, &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        store
            .count_records(bad, RecordKind::Deal)
            .await
            .expect("count"),
        0
    );

    let err = pandora
        .sync_now(good, "hubspot", SyncMode::Full, &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("known: keyed"), "{err}");
    let other = new_workspace(&store, "unconnected").await;
    let err = pandora
        .sync_now(other, "keyed", SyncMode::Full, &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// `write_batch_gated` commits only when its gate opens: a failed gate
/// stores nothing (records nor checkpoint); two batches written at once,
/// the second gated on the first, both commit, and the checkpoint is the
/// second's.
pub async fn gated_writes_commit_in_gate_order(store: StoreRef) {
    use crate::model::Checkpoint;
    use crate::store::CommitGate;

    let ws = new_workspace(&store, "A").await;
    let ctx = context(&store, ws, SyncMode::Full).await;
    let cp = |page: u64| Checkpoint {
        connection_id: ctx.connection_id,
        stream: "deals".into(),
        cursor: serde_json::json!({ "page": page }),
    };
    let page = |p: usize| pages()[p].prepare().expect("prepare");

    let closed: CommitGate = Box::pin(async { Err(Error::unavailable("page 0 failed")) });
    let err = store
        .write_batch_gated(ws, &page(1), Some(&cp(1)), closed)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        0,
        "nothing of a batch whose gate failed"
    );
    let cursors = store
        .get_checkpoints(ws, ctx.connection_id)
        .await
        .expect("checkpoints");
    assert!(cursors.is_empty(), "no checkpoint either: {cursors:?}");

    let (open, gate) = tokio::sync::oneshot::channel::<()>();
    let second_gate: CommitGate = Box::pin(async move {
        gate.await
            .map_err(|_| Error::unavailable("the first batch failed"))
    });
    let (page0, page1) = (page(0), page(1));
    let (cp0, cp1) = (cp(0), cp(1));
    let first = async {
        let out = store
            .write_batch_gated(ws, &page0, Some(&cp0), Box::pin(std::future::ready(Ok(()))))
            .await;
        if out.is_ok() {
            let _ = open.send(());
        }
        out
    };
    let second = store.write_batch_gated(ws, &page1, Some(&cp1), second_gate);
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.expect("first").of(RecordKind::Deal).inserted, 10);
    assert_eq!(second.expect("second").of(RecordKind::Deal).inserted, 10);
    let cursors = store
        .get_checkpoints(ws, ctx.connection_id)
        .await
        .expect("checkpoints");
    assert_eq!(cursors["deals"], serde_json::json!({"page": 1}));
}

/// A page the store rejects stops the sync with the store's error even
/// though later pages were already read and written behind it: the pages
/// before it stay with their checkpoint, nothing after it is stored, and
/// the next run (the page fixed) resumes at it.
pub async fn a_page_that_fails_to_write_stores_nothing_after_it(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let ctx = context(&store, ws, SyncMode::Full).await;
    let mut broken = pages();
    broken[2].deal_changes.push(NewDealChange {
        deal_source_id: "no-such-deal".into(),
        field: DealField::Amount,
        old_value: None,
        new_value: Some("1".into()),
        changed_at: model::now(),
        origin: ChangeOrigin::Vendor,
    });
    let err = run_sync(
        store.as_ref(),
        &Scripted {
            pages: broken,
            fault: Fault::None,
        },
        &ctx,
        &quiet,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let stored: Vec<String> = all_deals(&store, ws).await.into_keys().collect();
    let expected: Vec<String> = (0..2)
        .flat_map(|p| (0..10).map(move |i| format!("p{p}-d{i}")))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(stored, expected, "pages 0 and 1, nothing after");
    let cursors = store
        .get_checkpoints(ws, ctx.connection_id)
        .await
        .expect("checkpoints");
    assert_eq!(cursors["deals"], serde_json::json!({"page": 1}));

    let resumed = context(&store, ws, SyncMode::Incremental).await;
    let out = run_sync(
        store.as_ref(),
        &Scripted {
            pages: pages(),
            fault: Fault::None,
        },
        &resumed,
        &quiet,
    )
    .await
    .expect("resumed run");
    assert_eq!((out.pages, out.counts["deals"].inserted), (3, 30));
}
