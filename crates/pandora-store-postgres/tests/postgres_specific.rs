//! PostgreSQL-specific checks beyond the conformance suite: migrations,
//! the test harness, connection errors, error mapping and concurrent writers.

use std::sync::Arc;

use chrono::NaiveDate;
use pandora_core::batch::{RecordBatch, RecordKind};
use pandora_core::model::{
    self, ApiKey, ChangeOrigin, DealField, NewDeal, NewDealChange, StageCategory, Workspace,
    WorkspaceId,
};
use pandora_core::query::{DealFilter, PageRequest, Sort, SortKey};
use pandora_core::store::{RecordStore, StoreHealth, WorkspaceStore};
use pandora_core::ErrorKind;
use pandora_store_postgres::{testing, PgStore};
use rust_decimal::Decimal;

async fn workspace(store: &PgStore) -> WorkspaceId {
    let now = model::now();
    let ws = Workspace {
        id: model::new_id(),
        name: "Acme".into(),
        settings: serde_json::json!({}),
        created_at: now,
        updated_at: now,
    };
    store.create_workspace(&ws).await.expect("create workspace");
    ws.id
}

fn deal(i: usize) -> NewDeal {
    NewDeal {
        source_id: format!("deal-{i:06}"),
        name: format!("Deal {i}"),
        amount: (i % 7 != 0).then(|| Decimal::new(i as i64 * 1_000 + 25, 2)),
        currency: Some("USD".into()),
        pipeline: Some("default".into()),
        stage: Some(["qualified", "proposal", "closedwon"][i % 3].into()),
        stage_category: [StageCategory::Open, StageCategory::Open, StageCategory::Won][i % 3],
        close_date: (i % 5 != 0).then(|| {
            NaiveDate::from_ymd_opt(2026, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
                .expect("valid date")
        }),
        owner_source_id: Some(format!("user-{}", i % 10)),
        properties: serde_json::json!({"i": i}),
        ..Default::default()
    }
}

fn deals_batch(range: impl Iterator<Item = usize>) -> RecordBatch {
    RecordBatch {
        deals: range.map(deal).collect(),
        ..RecordBatch::new("hubspot")
    }
}

#[tokio::test]
async fn migrations_applied_twice_are_a_no_op() {
    let store = testing::fresh_store().await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .expect("count migrations");
    let embedded = sqlx::migrate!("./migrations").iter().count() as i64;
    assert!(embedded >= 2);
    assert_eq!(applied, embedded, "each embedded migration applied once");
}

#[tokio::test]
async fn the_harness_runs_a_real_postgresql_server() {
    let store = testing::fresh_store().await;
    let version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(store.pool())
        .await
        .expect("version");
    assert!(version.contains("PostgreSQL"), "{version}");
    store.ping().await.expect("ping");
    assert_eq!(store.backend(), "postgres");

    // Each fresh store is its own empty database.
    let other = testing::fresh_store().await;
    let ws = workspace(&store).await;
    assert!(other.get_workspace(ws).await.is_err());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_password_is_not_shown() {
    // A port nobody listens on: bind, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("postgres://pandora:hunter2-secret@127.0.0.1:{port}/pandora");
    let err = PgStore::connect(&url)
        .await
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_malformed_url_is_invalid_input_and_not_echoed() {
    let err = PgStore::connect("mysql://root:hunter2@db/x")
        .await
        .expect_err("not a postgres URL");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test]
async fn connect_then_migrate_on_the_test_server() {
    let url = testing::fresh_database_url().await;
    let store = PgStore::connect(&url).await.expect("connect");
    store
        .migrate()
        .await
        .expect("migrate is a no-op on a migrated database");
    let ws = workspace(&store).await;
    assert_eq!(store.get_workspace(ws).await.expect("get").id, ws);
}

#[tokio::test]
async fn database_errors_are_mapped_by_meaning() {
    let store = testing::fresh_store().await;
    let ws = workspace(&store).await;

    // Duplicate primary key → Conflict.
    let dup = store.get_workspace(ws).await.expect("get");
    let err = store.create_workspace(&dup).await.expect_err("duplicate");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // Foreign key to a missing workspace → NotFound naming the workspace.
    let missing = model::new_id();
    let key = ApiKey {
        id: model::new_id(),
        workspace_id: missing,
        name: "k".into(),
        prefix: "pk_x".into(),
        hash: vec![1, 2, 3],
        created_at: model::now(),
    };
    let err = store.create_api_key(&key).await.expect_err("no workspace");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");

    // Writing into a missing workspace → NotFound.
    let batch = deals_batch(0..3).prepare().expect("valid");
    let err = store
        .write_batch(missing, &batch, None)
        .await
        .expect_err("no workspace");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // A NUL character PostgreSQL cannot store → InvalidInput, nothing stored.
    let mut bad = deals_batch(0..3);
    bad.deals[1].properties = serde_json::json!({"note": "a\u{0}b"});
    let err = store
        .write_batch(ws, &bad.prepare().expect("valid"), None)
        .await
        .expect_err("NUL");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn large_pages_count_inserted_updated_and_unchanged() {
    let store = testing::fresh_store().await;
    let ws = workspace(&store).await;
    let mut batch = deals_batch(0..5_000);

    let first = store
        .write_batch(ws, &batch.prepare().expect("valid"), None)
        .await
        .expect("insert");
    assert_eq!(first.of(RecordKind::Deal).inserted, 5_000);

    let again = store
        .write_batch(ws, &batch.prepare().expect("valid"), None)
        .await
        .expect("unchanged");
    assert_eq!(again.of(RecordKind::Deal).unchanged, 5_000);

    for d in batch.deals.iter_mut().step_by(2) {
        d.name.push_str(" (renamed)");
    }
    let changed = store
        .write_batch(ws, &batch.prepare().expect("valid"), None)
        .await
        .expect("update");
    let counts = changed.of(RecordKind::Deal);
    assert_eq!(
        (counts.updated, counts.unchanged, counts.inserted),
        (2_500, 2_500, 0)
    );
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        5_000
    );

    // Every row is reachable by keyset pagination, in every sort, exactly once.
    for key in [SortKey::UpdatedAt, SortKey::CloseDate, SortKey::Amount] {
        for direction in [
            pandora_core::query::Direction::Asc,
            pandora_core::query::Direction::Desc,
        ] {
            let mut page = PageRequest {
                limit: 500,
                sort: Sort { key, direction },
                after: None,
            };
            let mut seen = std::collections::HashSet::new();
            loop {
                let got = store
                    .list_deals(ws, &DealFilter::default(), &page)
                    .await
                    .expect("page");
                for d in &got.data {
                    assert!(seen.insert(d.id), "{key:?} {direction:?} repeated a row");
                }
                match got.next_cursor {
                    Some(c) => page = page.next(c),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 5_000, "{key:?} {direction:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_overlapping_keys_all_succeed() {
    let store = Arc::new(testing::fresh_store().await);
    let ws = workspace(&store).await;
    let mut tasks = Vec::new();
    for writer in 0..6_usize {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for round in 0..5_usize {
                // Overlapping windows, delivered in different orders.
                let start = (writer * 100 + round * 37) % 600;
                let mut batch = deals_batch(start..start + 400);
                if writer % 2 == 1 {
                    batch.deals.reverse();
                }
                for d in &mut batch.deals {
                    d.name = format!("{} w{writer} r{round}", d.name);
                }
                batch.deal_changes = batch
                    .deals
                    .iter()
                    .take(50)
                    .map(|d| NewDealChange {
                        deal_source_id: d.source_id.clone(),
                        field: DealField::Stage,
                        old_value: Some("qualified".into()),
                        new_value: d.stage.clone(),
                        changed_at: chrono::DateTime::from_timestamp(1_700_000_000, 0)
                            .expect("valid time"),
                        origin: ChangeOrigin::Vendor,
                    })
                    .collect();
                let prepared = batch.prepare().expect("valid");
                store
                    .write_batch(ws, &prepared, None)
                    .await
                    .expect("concurrent write succeeds");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT DISTINCT source, source_id FROM deals WHERE workspace_id = $1) k",
    )
    .bind(ws)
    .fetch_one(store.pool())
    .await
    .expect("count keys");
    let rows = store
        .count_records(ws, RecordKind::Deal)
        .await
        .expect("count");
    assert_eq!(rows as i64, keys, "one row per key");
    let changes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deal_changes WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(store.pool())
            .await
            .expect("count changes");
    let distinct_changes: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT deal_id) FROM deal_changes WHERE workspace_id = $1",
    )
    .bind(ws)
    .fetch_one(store.pool())
    .await
    .expect("count deals with changes");
    assert_eq!(changes, distinct_changes, "each change stored once");
}

#[tokio::test]
async fn deep_keyset_pages_use_the_sort_indexes() {
    let store = testing::fresh_store().await;
    let ws = workspace(&store).await;
    for chunk in 0..4 {
        let batch = deals_batch(chunk * 5_000..(chunk + 1) * 5_000);
        store
            .write_batch(ws, &batch.prepare().expect("valid"), None)
            .await
            .expect("load");
    }
    sqlx::query("ANALYZE deals")
        .execute(store.pool())
        .await
        .expect("analyze");
    for (column, direction) in [
        ("amount", "DESC"),
        ("amount", "ASC"),
        ("close_date", "DESC"),
    ] {
        let op = if direction == "DESC" { "<" } else { ">" };
        let sql = format!(
            "EXPLAIN SELECT id FROM deals d WHERE d.workspace_id = $1 AND d.deleted_at IS NULL \
             AND (d.{column}, d.id) {op} ((SELECT {column} FROM deals WHERE source_id = 'deal-010000'), $2::uuid) \
             ORDER BY d.{column} {direction} NULLS LAST, d.id {direction} LIMIT 51"
        );
        let plan: Vec<String> = sqlx::query_scalar(&sql)
            .bind(ws)
            .bind(model::new_id())
            .fetch_all(store.pool())
            .await
            .expect("explain");
        let plan = plan.join("\n");
        assert!(plan.contains(&format!("deals_live_{column}_")), "{plan}");
        assert!(!plan.contains("Seq Scan on deals d"), "{plan}");
        assert!(!plan.contains("Sort Key"), "{plan}");
    }
}

/// Computed fields with only a risk score (what the list reads).
fn scored(risk: u8) -> pandora_core::computed::ComputedFields {
    let t = model::now();
    pandora_core::computed::ComputedFields {
        computed_at: t,
        deal_age_days: 1.0,
        closed_at: None,
        stage_entered_at: t,
        days_in_current_stage: 1.0,
        stages_visited: 1,
        avg_days_per_stage: Some(1.0),
        stage_velocity: None,
        close_date_pushes: 0,
        risk_score: risk,
        risk_reasons: Vec::new(),
    }
}

#[tokio::test]
async fn risk_pages_and_the_min_risk_filter_use_the_risk_indexes() {
    let store = testing::fresh_store().await;
    let ws = workspace(&store).await;
    for chunk in 0..4 {
        let batch = deals_batch(chunk * 5_000..(chunk + 1) * 5_000);
        let mut prepared = batch.prepare().expect("valid");
        for (i, d) in batch.deals.iter().enumerate() {
            // One deal in 10 not computed yet.
            if i % 10 != 0 {
                prepared
                    .set_computed(&d.source_id, scored((i % 101) as u8))
                    .expect("computed");
            }
        }
        store.write_batch(ws, &prepared, None).await.expect("load");
    }
    sqlx::query("ANALYZE deals")
        .execute(store.pool())
        .await
        .expect("analyze");
    for direction in ["DESC", "ASC"] {
        let op = if direction == "DESC" { "<" } else { ">" };
        for min_risk in ["", " AND d.risk_score >= 90::int2"] {
            let sql = format!(
                "EXPLAIN SELECT id FROM deals d WHERE d.workspace_id = $1 AND d.deleted_at IS NULL{min_risk} \
                 AND (d.risk_score, d.id) {op} ($2::int2, $3::uuid) \
                 ORDER BY d.risk_score {direction} NULLS LAST, d.id {direction} LIMIT 51"
            );
            let plan: Vec<String> = sqlx::query_scalar(&sql)
                .bind(ws)
                .bind(50_i16)
                .bind(model::new_id())
                .fetch_all(store.pool())
                .await
                .expect("explain");
            let plan = plan.join("\n");
            assert!(plan.contains("deals_live_risk_"), "{plan}");
            assert!(!plan.contains("Seq Scan on deals d"), "{plan}");
            assert!(!plan.contains("Sort Key"), "{plan}");
        }
    }
    // And the store's own pages reach every deal once, NULLs last.
    for direction in [
        pandora_core::query::Direction::Asc,
        pandora_core::query::Direction::Desc,
    ] {
        let mut page = PageRequest {
            limit: 500,
            sort: Sort {
                key: SortKey::Risk,
                direction,
            },
            after: None,
        };
        let mut seen = std::collections::HashSet::new();
        let mut nulls_started = false;
        loop {
            let got = store
                .list_deals(ws, &DealFilter::default(), &page)
                .await
                .expect("page");
            for d in &got.data {
                assert!(seen.insert(d.id), "{direction:?} repeated a row");
                match &d.computed {
                    None => nulls_started = true,
                    Some(_) => assert!(!nulls_started, "{direction:?}: a score after a NULL"),
                }
            }
            match got.next_cursor {
                Some(c) => page = page.next(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 20_000, "{direction:?}");
    }
}
