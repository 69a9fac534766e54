//! Sync-run records: lifecycle, history, the one-active-run rule, what a run
//! does to its connection, tenancy, and `Pandora::sync` end to end.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::fixtures::{deal, new_workspace, StoreRef};
use super::sync::{pages, quiet, Fault, KeyChecking, Scripted};
use crate::batch::{RecordBatch, RecordKind};
use crate::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, ConnectorRegistry, RecordSink,
    StreamInfo, SyncContext,
};
use crate::error::{ErrorKind, Result};
use crate::model::{
    self, ConnectionStatus, NewConnection, RunStatus, StreamCounts, SyncMode, SyncRun,
};
use crate::query::{Cursor, Direction, PageRequest, Sort, SortKey};
use crate::store::active_run_id;
use crate::Pandora;

/// Creates (or finds) the workspace's connection to `connector`.
pub(super) async fn connection(store: &StoreRef, ws: Uuid, connector: &str) -> Uuid {
    store
        .upsert_connection(
            ws,
            &NewConnection {
                connector: connector.into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config: serde_json::json!({}),
            },
        )
        .await
        .expect("connection")
        .id
}

/// A queued run of `connection`, created at `created_at`.
pub(super) fn queued(ws: Uuid, connection: Uuid, created_at: DateTime<Utc>) -> SyncRun {
    SyncRun {
        id: model::new_id(),
        workspace_id: ws,
        connection_id: connection,
        mode: SyncMode::Incremental,
        status: RunStatus::Queued,
        counts: BTreeMap::new(),
        error: None,
        created_at,
        started_at: None,
        finished_at: None,
    }
}

/// 2026-03-`day` at `hour`:00 UTC.
pub(super) fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0)
        .single()
        .expect("time")
}

/// Counts of a run: deals (inserted, updated, unchanged, deleted), users zero.
pub(super) fn counts(deals: (u64, u64, u64, u64)) -> BTreeMap<String, StreamCounts> {
    let (inserted, updated, unchanged, deleted) = deals;
    BTreeMap::from([
        (
            "deals".to_string(),
            StreamCounts {
                inserted,
                updated,
                unchanged,
                deleted,
            },
        ),
        ("users".to_string(), StreamCounts::default()),
    ])
}

/// Finishes `run` with `status` at `when`, panicking on error.
async fn finish(store: &StoreRef, ws: Uuid, run: Uuid, status: RunStatus, when: DateTime<Utc>) {
    let error = (status == RunStatus::Failed).then(|| "vendor answered 503".to_string());
    store
        .finish_sync_run(ws, run, status, &BTreeMap::new(), error, when)
        .await
        .expect("finish");
}

/// Every run of a connection, page by page.
async fn whole_history(
    store: &StoreRef,
    ws: Uuid,
    connection: Uuid,
    first: PageRequest,
) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut page = first;
    loop {
        let p = store
            .list_sync_runs(ws, connection, &page)
            .await
            .expect("list runs");
        assert!(p.data.len() <= page.limit as usize);
        seen.extend(p.data.iter().map(|r| r.id));
        match p.next_cursor {
            Some(c) => {
                // The cursor survives the trip through a client.
                let c = Cursor::decode(&c.encode(), page.sort).expect("cursor");
                page = page.next(c);
            }
            None => return seen,
        }
    }
}

/// A run goes queued → running → finished, every step checked; the history
/// of a connection is newest first by `(created_at, id)` and paginates
/// without skips or repeats.
pub async fn sync_run_lifecycle_and_history(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let other_conn = connection(&store, ws, "other").await;

    // Queued.
    let run = queued(ws, conn, at(1, 9));
    store.create_sync_run(ws, &run).await.expect("create");
    assert_eq!(store.get_sync_run(ws, run.id).await.expect("get"), run);
    assert_eq!(
        store.active_sync_run(ws, conn).await.expect("active"),
        Some(run.clone())
    );
    assert_eq!(
        store.active_sync_run(ws, other_conn).await.expect("active"),
        None
    );

    // Running.
    let started = store
        .start_sync_run(ws, run.id, at(1, 10))
        .await
        .expect("start");
    assert_eq!(started.status, RunStatus::Running);
    assert_eq!(started.started_at, Some(at(1, 10)));
    assert_eq!(
        store
            .start_sync_run(ws, run.id, at(1, 11))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict,
        "only a queued run starts"
    );
    assert_eq!(
        store.active_sync_run(ws, conn).await.expect("active"),
        Some(started.clone())
    );

    // A finish must end the run.
    for not_final in [RunStatus::Queued, RunStatus::Running] {
        let err = store
            .finish_sync_run(ws, run.id, not_final, &BTreeMap::new(), None, at(1, 12))
            .await
            .unwrap_err();
        assert!(
            matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "status"),
            "{err:?}"
        );
    }

    // Succeeded, with its counts.
    let done = store
        .finish_sync_run(
            ws,
            run.id,
            RunStatus::Succeeded,
            &counts((3, 1, 2, 1)),
            None,
            at(1, 12),
        )
        .await
        .expect("finish");
    assert_eq!(
        done,
        SyncRun {
            status: RunStatus::Succeeded,
            counts: counts((3, 1, 2, 1)),
            started_at: Some(at(1, 10)),
            finished_at: Some(at(1, 12)),
            ..run.clone()
        }
    );
    assert_eq!(store.get_sync_run(ws, run.id).await.expect("get"), done);
    assert_eq!(store.active_sync_run(ws, conn).await.expect("active"), None);
    for err in [
        store
            .finish_sync_run(
                ws,
                run.id,
                RunStatus::Failed,
                &BTreeMap::new(),
                None,
                at(1, 13),
            )
            .await
            .unwrap_err(),
        store
            .start_sync_run(ws, run.id, at(1, 13))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            err.kind(),
            ErrorKind::Conflict,
            "a finished run stays finished"
        );
    }
    assert_eq!(store.get_sync_run(ws, run.id).await.expect("get"), done);

    // The same id twice is a conflict, but not an active-run one.
    let err = store.create_sync_run(ws, &run).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(active_run_id(&err), None, "{err}");

    // Created running: started when created. Cancelled from queued: never started.
    let running = SyncRun {
        status: RunStatus::Running,
        mode: SyncMode::Full,
        ..queued(ws, conn, at(2, 9))
    };
    store
        .create_sync_run(ws, &running)
        .await
        .expect("create running");
    let got = store.get_sync_run(ws, running.id).await.expect("get");
    assert_eq!((got.status, got.mode), (RunStatus::Running, SyncMode::Full));
    assert_eq!(got.started_at, Some(at(2, 9)));
    finish(&store, ws, running.id, RunStatus::Succeeded, at(2, 10)).await;
    let cancelled = queued(ws, conn, at(3, 9));
    store.create_sync_run(ws, &cancelled).await.expect("create");
    finish(&store, ws, cancelled.id, RunStatus::Cancelled, at(3, 10)).await;
    let got = store.get_sync_run(ws, cancelled.id).await.expect("get");
    assert_eq!(
        (got.status, got.started_at, got.finished_at),
        (RunStatus::Cancelled, None, Some(at(3, 10)))
    );

    // Invalid and unknown.
    let err = store
        .create_sync_run(
            ws,
            &SyncRun {
                status: RunStatus::Succeeded,
                ..queued(ws, conn, at(4, 9))
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "status"),
        "{err:?}"
    );
    let err = store
        .create_sync_run(ws, &queued(ws, Uuid::now_v7(), at(4, 9)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "unknown connection: {err}");
    let unknown = Uuid::now_v7();
    assert_eq!(
        store.get_sync_run(ws, unknown).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .start_sync_run(ws, unknown, at(4, 9))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .finish_sync_run(
                ws,
                unknown,
                RunStatus::Failed,
                &BTreeMap::new(),
                None,
                at(4, 9)
            )
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    for err in [
        store
            .list_sync_runs(ws, unknown, &PageRequest::default())
            .await
            .unwrap_err(),
        store.active_sync_run(ws, unknown).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "unknown connection: {err}");
    }

    // History: more runs, two of them created in the same microsecond (ties by id),
    // and a run of another connection that must not show.
    let mut all = vec![run.clone(), running.clone(), cancelled.clone()];
    let tie = at(5, 9);
    for created in [at(4, 9), tie, tie, at(6, 9), at(7, 9)] {
        let r = queued(ws, conn, created);
        store.create_sync_run(ws, &r).await.expect("create");
        finish(
            &store,
            ws,
            r.id,
            RunStatus::Failed,
            created + Duration::minutes(5),
        )
        .await;
        all.push(r);
    }
    let elsewhere = queued(ws, other_conn, at(5, 9));
    store.create_sync_run(ws, &elsewhere).await.expect("create");
    all.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
    let newest_first: Vec<Uuid> = all.iter().map(|r| r.id).collect();

    let first = store
        .list_sync_runs(ws, conn, &PageRequest::first(50))
        .await
        .expect("list");
    assert_eq!(
        first.data.iter().map(|r| r.id).collect::<Vec<_>>(),
        newest_first
    );
    assert!(first.next_cursor.is_none());
    assert_eq!(
        first.data[newest_first.len() - 1],
        done,
        "rows are whole runs"
    );
    for limit in [1, 2, 3] {
        assert_eq!(
            whole_history(&store, ws, conn, PageRequest::first(limit)).await,
            newest_first,
            "limit {limit}"
        );
    }
    let oldest_first = PageRequest {
        limit: 3,
        sort: Sort {
            key: SortKey::UpdatedAt,
            direction: Direction::Asc,
        },
        after: None,
    };
    let mut reversed = newest_first.clone();
    reversed.reverse();
    assert_eq!(
        whole_history(&store, ws, conn, oldest_first).await,
        reversed
    );
    let by_amount = PageRequest {
        sort: Sort {
            key: SortKey::Amount,
            direction: Direction::Desc,
        },
        ..PageRequest::default()
    };
    let err = store
        .list_sync_runs(ws, conn, &by_amount)
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::InvalidInput { ref field, .. } if field == "sort"),
        "{err:?}"
    );
    assert_eq!(
        whole_history(&store, ws, other_conn, PageRequest::first(2)).await,
        vec![elsewhere.id]
    );
}

/// Two concurrent creations of a run for one connection: exactly one
/// succeeds, the other is a conflict naming the winner; once the winner
/// finishes, a new run can start. Other connections are not affected.
pub async fn one_active_sync_run_per_connection(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let other = connection(&store, ws, "other").await;

    for round in 0..8u32 {
        let contenders = [
            queued(ws, conn, model::now()),
            queued(ws, conn, model::now()),
        ];
        let handles: Vec<_> = contenders
            .iter()
            .cloned()
            .map(|run| {
                let store = store.clone();
                tokio::spawn(async move { store.create_sync_run(ws, &run).await })
            })
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.expect("task"));
        }
        let winners: Vec<&SyncRun> = contenders
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(run, _)| run)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = winners[0];
        let err = results
            .into_iter()
            .find_map(|r| r.err())
            .expect("one loser");
        assert_eq!(err.kind(), ErrorKind::Conflict, "round {round}: {err}");
        assert!(
            err.to_string().contains(&winner.id.to_string()),
            "round {round}: the conflict names the active run: {err}"
        );
        assert_eq!(active_run_id(&err), Some(winner.id));
        assert_eq!(
            store
                .active_sync_run(ws, conn)
                .await
                .expect("active")
                .map(|r| r.id),
            Some(winner.id)
        );

        // A later attempt, running or queued, is refused too.
        let late = SyncRun {
            status: RunStatus::Running,
            ..queued(ws, conn, model::now())
        };
        let err = store.create_sync_run(ws, &late).await.unwrap_err();
        assert_eq!(active_run_id(&err), Some(winner.id), "{err}");
        assert_eq!(
            store.get_sync_run(ws, late.id).await.unwrap_err().kind(),
            ErrorKind::NotFound,
            "the refused run is not stored"
        );

        // Another connection of the workspace runs meanwhile.
        let beside = queued(ws, other, model::now());
        store
            .create_sync_run(ws, &beside)
            .await
            .expect("other connection");
        finish(&store, ws, beside.id, RunStatus::Succeeded, model::now()).await;

        // The winner ends (started or not); the slot is free again.
        if round % 2 == 0 {
            store
                .start_sync_run(ws, winner.id, model::now())
                .await
                .expect("start");
        }
        let end = [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ][round as usize % 3];
        finish(&store, ws, winner.id, end, model::now()).await;
        assert_eq!(store.active_sync_run(ws, conn).await.expect("active"), None);
    }
    let history = whole_history(&store, ws, conn, PageRequest::first(50)).await;
    assert_eq!(history.len(), 8, "one run per round");
}

/// `last_sync_at` is set by a succeeded run only; a failed run records
/// `last_error` and leaves `last_sync_at`; a later success clears the error;
/// a cancelled run changes neither.
pub async fn last_sync_at_moves_only_on_success(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;
    let state = || async {
        let c = store.get_connection(ws, "test").await.expect("connection");
        (c.last_sync_at, c.last_error)
    };
    assert_eq!(state().await, (None, None));

    // A failure before any success: an error, still no sync time.
    let r = queued(ws, conn, at(1, 8));
    store.create_sync_run(ws, &r).await.expect("create");
    store
        .start_sync_run(ws, r.id, at(1, 8))
        .await
        .expect("start");
    finish(&store, ws, r.id, RunStatus::Failed, at(1, 9)).await;
    assert_eq!(state().await, (None, Some("vendor answered 503".into())));

    let mut t = 10;
    let mut run = |status: RunStatus| {
        t += 1;
        let (created, finished) = (at(2, t), at(3, t));
        let store = store.clone();
        async move {
            let r = queued(ws, conn, created);
            store.create_sync_run(ws, &r).await.expect("create");
            store
                .start_sync_run(ws, r.id, created)
                .await
                .expect("start");
            finish(&store, ws, r.id, status, finished).await;
            finished
        }
    };
    let first_success = run(RunStatus::Succeeded).await;
    assert_eq!(state().await, (Some(first_success), None));

    run(RunStatus::Failed).await;
    assert_eq!(
        state().await,
        (Some(first_success), Some("vendor answered 503".into())),
        "a failed run never moves last_sync_at"
    );

    run(RunStatus::Cancelled).await;
    assert_eq!(
        state().await,
        (Some(first_success), Some("vendor answered 503".into())),
        "a cancelled run changes nothing"
    );

    let second_success = run(RunStatus::Succeeded).await;
    assert_eq!(state().await, (Some(second_success), None));

    // A failed run without a message still records that it failed.
    let r = queued(ws, conn, at(4, 1));
    store.create_sync_run(ws, &r).await.expect("create");
    store
        .finish_sync_run(
            ws,
            r.id,
            RunStatus::Failed,
            &BTreeMap::new(),
            None,
            at(4, 2),
        )
        .await
        .expect("finish");
    let (last_sync, last_error) = state().await;
    assert_eq!(last_sync, Some(second_success));
    assert!(last_error.is_some_and(|e| !e.is_empty()));
}

/// A run of workspace A is invisible and unchangeable through workspace B,
/// even by its exact id or its connection's; deleting A removes its runs.
pub async fn sync_runs_are_tenant_isolated(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let conn_a = connection(&store, a, "test").await;
    let conn_b = connection(&store, b, "test").await;
    let run_a = queued(a, conn_a, at(1, 9));
    store.create_sync_run(a, &run_a).await.expect("create in A");

    let not_found = |what: &str, r: ErrorKind| {
        assert_eq!(r, ErrorKind::NotFound, "{what} through B");
    };
    not_found(
        "get",
        store.get_sync_run(b, run_a.id).await.unwrap_err().kind(),
    );
    not_found(
        "start",
        store
            .start_sync_run(b, run_a.id, at(1, 10))
            .await
            .unwrap_err()
            .kind(),
    );
    not_found(
        "finish",
        store
            .finish_sync_run(
                b,
                run_a.id,
                RunStatus::Succeeded,
                &BTreeMap::new(),
                None,
                at(1, 11),
            )
            .await
            .unwrap_err()
            .kind(),
    );
    not_found(
        "list",
        store
            .list_sync_runs(b, conn_a, &PageRequest::default())
            .await
            .unwrap_err()
            .kind(),
    );
    not_found(
        "active",
        store.active_sync_run(b, conn_a).await.unwrap_err().kind(),
    );
    not_found(
        "create on A's connection",
        store
            .create_sync_run(b, &queued(b, conn_a, at(1, 12)))
            .await
            .unwrap_err()
            .kind(),
    );
    // A run must name the workspace it is created in.
    let err = store
        .create_sync_run(b, &queued(a, conn_b, at(1, 12)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // Nothing of A changed; B's connection has its own slot.
    assert_eq!(store.get_sync_run(a, run_a.id).await.expect("get"), run_a);
    let conn = store.get_connection(a, "test").await.expect("connection");
    assert_eq!((conn.last_sync_at, conn.last_error), (None, None));
    let run_b = queued(b, conn_b, at(1, 13));
    store
        .create_sync_run(b, &run_b)
        .await
        .expect("B runs beside A's active run");
    assert_eq!(
        whole_history(&store, b, conn_b, PageRequest::first(10)).await,
        vec![run_b.id]
    );

    store.delete_workspace(a).await.expect("delete A");
    assert_eq!(
        store.get_sync_run(a, run_a.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.get_sync_run(b, run_b.id).await.expect("B's run"),
        run_b
    );
}

fn pandora_with(store: &StoreRef, connector: impl Connector + 'static) -> Pandora {
    Pandora::builder()
        .shared_store(store.clone())
        .connectors(ConnectorRegistry::new().with(connector))
        .build()
        .expect("build")
}

fn scripted(fault: Fault) -> Scripted {
    Scripted {
        pages: pages(),
        fault,
    }
}

/// `Pandora::sync` records each run: the first is full whatever was asked
/// (until one succeeds), a connector error gives a `failed` run (returned,
/// not an `Err`) with its message and the counts stored before it, and
/// `last_sync_at` moves only with a success. Errors that prevent the run are
/// `Err`, an active run among them.
pub async fn pandora_sync_records_runs(store: StoreRef) {
    let ok = pandora_with(&store, scripted(Fault::None));
    let failing = pandora_with(&store, scripted(Fault::ErrorAt(2)));
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "test").await;

    // First run: full, although incremental was asked.
    let first = ok
        .sync(ws, "test", SyncMode::Incremental, &quiet)
        .await
        .expect("first sync");
    assert_eq!(
        (first.status, first.mode),
        (RunStatus::Succeeded, SyncMode::Full)
    );
    assert_eq!(first.counts["deals"].inserted, 50);
    assert_eq!(first.error, None);
    assert_eq!(first.connection_id, conn);
    let (started, finished) = (
        first.started_at.expect("started"),
        first.finished_at.expect("finished"),
    );
    assert!(first.created_at <= started && started <= finished);
    let c = store.get_connection(ws, "test").await.expect("connection");
    assert_eq!((c.last_sync_at, c.last_error), (Some(finished), None));

    // A vendor error: a failed run, Ok; last_sync_at stays.
    let failed = failing
        .sync(ws, "test", SyncMode::Full, &quiet)
        .await
        .expect("a connector error fails the run, not the call");
    assert_eq!(
        (failed.status, failed.mode),
        (RunStatus::Failed, SyncMode::Full)
    );
    let message = failed.error.clone().expect("error recorded");
    assert!(message.contains("vendor answered 503"), "{message}");
    assert_eq!(
        failed.counts["deals"].unchanged, 20,
        "the pages stored before the error are counted"
    );
    assert!(failed.finished_at.is_some());
    let c = store.get_connection(ws, "test").await.expect("connection");
    assert_eq!(
        (c.last_sync_at, c.last_error),
        (Some(finished), Some(message))
    );
    assert_eq!(store.active_sync_run(ws, conn).await.expect("active"), None);

    // After a success, incremental is incremental; the error is cleared.
    let third = ok
        .sync(ws, "test", SyncMode::Incremental, &quiet)
        .await
        .expect("third sync");
    assert_eq!(
        (third.status, third.mode),
        (RunStatus::Succeeded, SyncMode::Incremental)
    );
    assert_eq!(
        third.counts["deals"].unchanged, 30,
        "resumed after the failed run's last checkpoint"
    );
    let c = store.get_connection(ws, "test").await.expect("connection");
    assert_eq!((c.last_sync_at, c.last_error), (third.finished_at, None));

    // The history, newest first, through the facade.
    let history = ok
        .sync_runs(ws, "test", &PageRequest::first(10))
        .await
        .expect("history");
    assert_eq!(
        history.data.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![third.id, failed.id, first.id]
    );
    assert_eq!(history.data[1], failed);
    assert_eq!(ok.sync_run(ws, first.id).await.expect("run"), first);

    // A connection whose first run fails: no last_sync_at; the next is full again.
    let fresh = new_workspace(&store, "B").await;
    connection(&store, fresh, "test").await;
    let failed_first = pandora_with(&store, scripted(Fault::ErrorAt(0)))
        .sync(fresh, "test", SyncMode::Incremental, &quiet)
        .await
        .expect("failed run");
    assert_eq!(
        (failed_first.status, failed_first.mode),
        (RunStatus::Failed, SyncMode::Full)
    );
    let c = store
        .get_connection(fresh, "test")
        .await
        .expect("connection");
    assert_eq!(c.last_sync_at, None);
    assert!(c.last_error.is_some());
    let retried = ok
        .sync(fresh, "test", SyncMode::Incremental, &quiet)
        .await
        .expect("retry");
    assert_eq!(
        (retried.status, retried.mode),
        (RunStatus::Succeeded, SyncMode::Full),
        "still full: no run had succeeded"
    );
    assert_eq!(retried.counts["deals"].inserted, 50);

    // An active run: Err(Conflict) naming it, and no run recorded.
    let manual = queued(ws, conn, model::now());
    store
        .create_sync_run(ws, &manual)
        .await
        .expect("manual run");
    let err = ok
        .sync(ws, "test", SyncMode::Full, &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(active_run_id(&err), Some(manual.id), "{err}");
    finish(&store, ws, manual.id, RunStatus::Cancelled, model::now()).await;
    let history = ok
        .sync_runs(ws, "test", &PageRequest::first(10))
        .await
        .expect("history");
    assert_eq!(history.data.len(), 4, "three syncs and the manual run");

    // Unknown connector, unconnected workspace: Err, nothing recorded.
    let err = ok
        .sync(ws, "hubspot", SyncMode::Full, &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let unconnected = new_workspace(&store, "C").await;
    let err = ok
        .sync(unconnected, "test", SyncMode::Full, &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        ok.sync_runs(unconnected, "test", &PageRequest::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );

    // A rejected credential fails the run with the vendor's reason, never the secret.
    use crate::vault::{Credentials, LocalVault, MasterKey};
    let keyed = Pandora::builder()
        .shared_store(store.clone())
        .vault(LocalVault::new(MasterKey::from_bytes(&[7u8; 32])))
        .connectors(ConnectorRegistry::new().with(KeyChecking))
        .build()
        .expect("build");
    keyed
        .connect(
            ws,
            "keyed",
            Credentials::from_json(&serde_json::json!({"api_key": "wrong-key-s3cr3t"})),
            serde_json::json!({}),
        )
        .await
        .expect("connect");
    let rejected = keyed
        .sync(ws, "keyed", SyncMode::Full, &quiet)
        .await
        .expect("failed run");
    assert_eq!(rejected.status, RunStatus::Failed);
    let message = rejected.error.expect("error");
    assert!(message.contains("rejected"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        50,
        "the keyed connector stored nothing"
    );
}

/// A connector whose sync waits until the test lets it go.
struct Gated {
    started: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Connector for Gated {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: "gated",
            display_name: "Gated test source",
            auth: AuthKind::None,
            streams: vec![StreamInfo {
                name: "deals",
                kinds: vec![RecordKind::Deal],
                incremental: false,
            }],
        }
    }

    async fn check(&self, _ctx: &CheckContext) -> Result<CheckOutcome> {
        Ok(CheckOutcome {
            ok: true,
            detail: None,
        })
    }

    async fn sync(&self, _ctx: &SyncContext, sink: &mut dyn RecordSink) -> Result<()> {
        self.started.notify_one();
        self.release.notified().await;
        let mut page = RecordBatch::new("gated");
        page.deals = vec![deal("g1", Some(1), None)];
        sink.push(page, None).await
    }
}

/// Two `Pandora::sync` calls for one connection at once: one runs, the
/// other is refused with the running run's id; afterwards syncs run again.
pub async fn concurrent_syncs_of_a_connection_give_one_run(store: StoreRef) {
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let pandora = pandora_with(
        &store,
        Gated {
            started: started.clone(),
            release: release.clone(),
        },
    );
    let ws = new_workspace(&store, "A").await;
    let conn = connection(&store, ws, "gated").await;

    let first = {
        let pandora = pandora.clone();
        tokio::spawn(async move { pandora.sync(ws, "gated", SyncMode::Full, &quiet).await })
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), started.notified())
        .await
        .expect("the first sync starts");
    let running = store
        .active_sync_run(ws, conn)
        .await
        .expect("active")
        .expect("a run is active");
    assert_eq!(running.status, RunStatus::Running);

    // Bounded: were the second sync let through, it would wait on the gate.
    let second = pandora.sync(ws, "gated", SyncMode::Incremental, &quiet);
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), second)
        .await
        .expect("the second sync is refused at once, not run")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(active_run_id(&err), Some(running.id));

    release.notify_one();
    let done = first.await.expect("task").expect("first sync");
    assert_eq!(done.id, running.id);
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.counts["deals"].inserted, 1);

    release.notify_one();
    let again = pandora
        .sync(ws, "gated", SyncMode::Incremental, &quiet)
        .await
        .expect("a sync after the first finished");
    assert_eq!(
        (again.status, again.mode),
        (RunStatus::Succeeded, SyncMode::Incremental)
    );
    let history = pandora
        .sync_runs(ws, "gated", &PageRequest::first(10))
        .await
        .expect("history");
    assert_eq!(
        history.data.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![again.id, done.id],
        "two runs, none for the refused call"
    );
}
