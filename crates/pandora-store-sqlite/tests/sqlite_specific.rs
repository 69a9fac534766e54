//! Behaviour specific to the SQLite store: the file, the schema's encodings,
//! migrations, opening errors.

mod common;

use chrono::{DateTime, NaiveDate};
use pandora_core::batch::{Deletion, RecordBatch, RecordKind};
use pandora_core::model::{
    self, ChangeOrigin, DealField, NewDeal, NewDealChange, StageCategory, Workspace, WorkspaceId,
};
use pandora_core::query::{DealFilter, PageRequest};
use pandora_core::store::{RecordStore, StoreHealth, WorkspaceStore};
use pandora_core::ErrorKind;
use pandora_store_sqlite::SqliteStore;
use rust_decimal::Decimal;

async fn new_workspace(store: &SqliteStore) -> WorkspaceId {
    let now = model::now();
    let ws = Workspace {
        id: model::new_id(),
        name: "Acme".into(),
        settings: serde_json::json!({"fiscal_year_start": 2}),
        created_at: now,
        updated_at: now,
    };
    store.create_workspace(&ws).await.expect("create workspace");
    ws.id
}

fn deal(source_id: &str) -> NewDeal {
    NewDeal {
        source_id: source_id.into(),
        name: format!("Deal {source_id}"),
        stage_category: StageCategory::Open,
        properties: serde_json::json!({}),
        ..Default::default()
    }
}

async fn write(
    store: &SqliteStore,
    ws: WorkspaceId,
    batch: &RecordBatch,
) -> pandora_core::Result<pandora_core::batch::BatchOutcome> {
    store.write_batch(ws, &batch.prepare()?, None).await
}

#[tokio::test]
async fn migrating_twice_is_a_no_op() {
    let store = common::fresh_store().await;
    let ws = new_workspace(&store).await;
    store.migrate().await.expect("second migration");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .expect("count migrations");
    let embedded = sqlx::migrate!("./migrations").iter().count() as i64;
    assert!(embedded >= 2);
    assert_eq!(applied, embedded, "each embedded migration applied once");
    assert_eq!(
        store.get_workspace(ws).await.expect("workspace kept").name,
        "Acme"
    );
}

#[tokio::test]
async fn reopening_the_file_keeps_the_data() {
    let path = common::kept_dir().join("pandora.db");
    let ws;
    {
        let store = SqliteStore::open(&path).await.expect("open");
        store.migrate().await.expect("migrate");
        ws = new_workspace(&store).await;
        let mut batch = RecordBatch::new("hubspot");
        batch.deals.push(deal("d1"));
        write(&store, ws, &batch).await.expect("write");
        store.close().await;
        assert_eq!(
            store.ping().await.map_err(|e| e.kind()),
            Err(ErrorKind::Unavailable)
        );
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    store.migrate().await.expect("migrate again");
    let deal = store
        .get_deal_by_source(ws, "hubspot", "d1")
        .await
        .expect("deal kept");
    assert_eq!(deal.fields.name, "Deal d1");
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        1
    );
}

#[tokio::test]
async fn connections_use_wal_and_foreign_keys() {
    let store = common::fresh_store().await;
    let mut conn = store.pool().acquire().await.expect("connection");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .expect("journal_mode");
    let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .expect("foreign_keys");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .expect("synchronous");
    assert_eq!(journal, "wal");
    assert_eq!(fks, 1);
    assert_eq!(sync, 1, "NORMAL");
    assert_eq!(store.backend(), "sqlite");
}

#[tokio::test]
async fn encodings_round_trip() {
    let store = common::fresh_store().await;
    let ws = new_workspace(&store).await;
    let updated = DateTime::from_timestamp_micros(1_718_000_000_123_456).expect("timestamp");
    let amount: Decimal = "1234.5678".parse().expect("decimal");
    let close = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
    let mut batch = RecordBatch::new("hubspot");
    batch.deals.push(NewDeal {
        amount: Some(amount),
        close_date: Some(close),
        source_updated_at: Some(updated),
        ..deal("d1")
    });
    batch.deal_changes.push(NewDealChange {
        deal_source_id: "d1".into(),
        field: DealField::Amount,
        old_value: None,
        new_value: Some("1234.5678".into()),
        changed_at: updated,
        origin: ChangeOrigin::Vendor,
    });
    write(&store, ws, &batch).await.expect("write");

    // Through the store.
    let got = store
        .get_deal_by_source(ws, "hubspot", "d1")
        .await
        .expect("deal");
    assert_eq!(got.fields.amount, Some(amount));
    assert_eq!(got.fields.close_date, Some(close));
    assert_eq!(got.fields.source_updated_at, Some(updated));
    let history = store.deal_history(ws, got.id).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].changed_at, updated);

    // As stored.
    let (id, amount_e4, close_text, source_updated, updated_type): (
        Vec<u8>,
        i64,
        String,
        i64,
        String,
    ) = sqlx::query_as(
        "SELECT id, amount_e4, close_date, source_updated_at, typeof(updated_at) FROM deals",
    )
    .fetch_one(store.pool())
    .await
    .expect("raw row");
    assert_eq!(id, got.id.as_bytes().to_vec());
    assert_eq!(amount_e4, 12_345_678);
    assert_eq!(close_text, "2024-02-29");
    assert_eq!(source_updated, 1_718_000_000_123_456);
    assert_eq!(updated_type, "integer");
    let changed_at: i64 = sqlx::query_scalar("SELECT changed_at FROM deal_changes")
        .fetch_one(store.pool())
        .await
        .expect("raw change");
    assert_eq!(changed_at, 1_718_000_000_123_456);

    // Filters and sorts compare the encoded values.
    let filter = DealFilter {
        min_amount: Some("1234.5678".parse().expect("decimal")),
        max_amount: Some("1234.5678".parse().expect("decimal")),
        close_date_from: Some(close),
        close_date_to: Some(close),
        ..Default::default()
    };
    let page = store
        .list_deals(ws, &filter, &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(page.data.len(), 1);
    let above = DealFilter {
        min_amount: Some("1234.56781".parse().expect("decimal")),
        ..Default::default()
    };
    let page = store
        .list_deals(ws, &above, &PageRequest::first(10))
        .await
        .expect("list");
    assert!(page.data.is_empty());
}

#[tokio::test]
async fn an_amount_that_does_not_fit_rejects_the_whole_batch() {
    let store = common::fresh_store().await;
    let ws = new_workspace(&store).await;
    let mut batch = RecordBatch::new("hubspot");
    batch.deals.push(deal("ok"));
    batch.deals.push(NewDeal {
        amount: Some(Decimal::from(10_i64.pow(15))),
        ..deal("huge")
    });
    let err = write(&store, ws, &batch).await.expect_err("too large");
    match err {
        pandora_core::Error::InvalidInput { field, .. } => assert_eq!(field, "deals.amount"),
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn a_close_date_past_year_9999_is_rejected() {
    let store = common::fresh_store().await;
    let ws = new_workspace(&store).await;
    let mut batch = RecordBatch::new("hubspot");
    batch.deals.push(NewDeal {
        close_date: NaiveDate::from_ymd_opt(10_000, 1, 1),
        ..deal("far")
    });
    let err = write(&store, ws, &batch).await.expect_err("out of range");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_failed_batch_leaves_nothing_and_the_next_one_works() {
    let store = common::fresh_store().await;
    let ws = new_workspace(&store).await;
    let mut batch = RecordBatch::new("hubspot");
    batch.deals.push(deal("d1"));
    batch.deletions.push(Deletion {
        kind: RecordKind::Deal,
        source_id: "d0".into(),
    });
    batch.deal_changes.push(NewDealChange {
        deal_source_id: "missing".into(),
        field: DealField::Stage,
        old_value: None,
        new_value: Some("won".into()),
        changed_at: model::now(),
        origin: ChangeOrigin::Observed,
    });
    let err = write(&store, ws, &batch).await.expect_err("unknown deal");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        0
    );
    // The connection went back to the pool without an open transaction.
    batch.deal_changes.clear();
    for _ in 0..3 {
        write(&store, ws, &batch).await.expect("write");
    }
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        1
    );
}

#[tokio::test]
async fn writing_to_a_missing_workspace_is_not_found() {
    let store = common::fresh_store().await;
    let mut batch = RecordBatch::new("hubspot");
    batch.deals.push(deal("d1"));
    let err = write(&store, model::new_id(), &batch)
        .await
        .expect_err("no workspace");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn opening_an_unusable_path_is_a_clear_error() {
    // A regular file where a directory should be: fails even for root.
    let dir = common::kept_dir();
    let file = dir.join("not-a-directory");
    std::fs::write(&file, b"x").expect("write file");
    let path = file.join("pandora.db");
    let err = SqliteStore::open(&path).await.expect_err("cannot open");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let message = err.to_string();
    assert!(message.contains("cannot open SQLite database"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");

    // A file that is not a database opens lazily but fails to migrate, without panicking.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, vec![b'j'; 8192]).expect("write junk");
    match SqliteStore::open(&junk).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable),
        Ok(store) => assert!(store.migrate().await.is_err()),
    }
}

#[tokio::test]
async fn credentials_are_scanned_by_id_and_swapped_only_when_unchanged() {
    use pandora_core::model::{ConnectionStatus, NewConnection, StoredCredentials};
    use pandora_core::store::{ConnectionStore, CredentialStore};

    let store = common::fresh_store().await;
    let (a, b) = (new_workspace(&store).await, new_workspace(&store).await);
    let mut ids = Vec::new();
    for (ws, connector) in [(a, "hubspot"), (b, "hubspot"), (b, "gong")] {
        let new = NewConnection {
            connector: connector.into(),
            status: ConnectionStatus::Active,
            credentials: Some(StoredCredentials(format!("secret-{connector}"))),
            config: serde_json::json!({}),
        };
        ids.push(
            store
                .upsert_connection(ws, &new)
                .await
                .expect("connection")
                .id,
        );
    }
    ids.sort();
    assert_eq!(store.count_credentials().await.expect("count"), 3);
    let first = store.scan_credentials(None, 2).await.expect("scan");
    let rest = store
        .scan_credentials(Some(first[1].connection_id), 2)
        .await
        .expect("scan");
    let scanned: Vec<_> = first.iter().chain(&rest).map(|r| r.connection_id).collect();
    assert_eq!(scanned, ids);

    let row = &first[0];
    let new = StoredCredentials("sealed".into());
    let stale = StoredCredentials("stale".into());
    assert!(!store
        .swap_credentials(row.workspace_id, row.connection_id, &stale, &new)
        .await
        .expect("swap"));
    let other = if row.workspace_id == a { b } else { a };
    assert!(!store
        .swap_credentials(other, row.connection_id, &row.credentials, &new)
        .await
        .expect("swap"));
    assert!(store
        .swap_credentials(row.workspace_id, row.connection_id, &row.credentials, &new)
        .await
        .expect("swap"));
}

fn deals_batch(prefix: &str, count: usize) -> RecordBatch {
    let mut batch = RecordBatch::new("hubspot");
    batch.deals = (0..count).map(|i| deal(&format!("{prefix}-{i}"))).collect();
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_batch_rolls_back_and_releases_the_write_lock() {
    let store = common::fresh_store().await;
    let ws = new_workspace(&store).await;
    let big = deals_batch("big", 20_000).prepare().expect("prepare");
    // Drop the write at various points: acquiring, beginning, writing (all
    // long before 20,000 deals are written). Each time the next batch must
    // get the write lock and nothing of the abandoned one may remain.
    for (round, millis) in [0, 1, 2, 3, 5, 8, 13, 20, 50].into_iter().enumerate() {
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(millis),
            store.write_batch(ws, &big, None),
        )
        .await;
        assert!(
            abandoned.is_err(),
            "the batch should still have been running"
        );
        let small = deals_batch(&format!("small{round}"), 10);
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            write(&store, ws, &small),
        )
        .await
        .expect("the write lock was released")
        .expect("write");
        assert_eq!(outcome.of(RecordKind::Deal).inserted, 10);
        let expected = 10 * (round as u64 + 1);
        let count = store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count");
        assert_eq!(count, expected, "after dropping the batch at {millis} ms");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writers_do_not_starve_readers() {
    let store = common::fresh_store().await;
    let ws = new_workspace(&store).await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch = deals_batch(&format!("w{w}"), 200);
            write(&store, ws, &batch).await.map(|_| ())
        }));
    }
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .list_deals(ws, &DealFilter::default(), &PageRequest::first(50))
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("no error");
    }
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        3200
    );
}
