//! The `sample` connector through the real sync engine and a real SQLite store:
//! incremental syncs reach exactly the state that a full generation at the
//! same epoch gives, and a forced full re-run changes nothing.

use std::collections::BTreeMap;

use pandora_connectors::sample::{SampleConfig, SampleGenerator};
use pandora_core::batch::RecordKind;
use pandora_core::model::{
    ChangeOrigin, ConnectionStatus, DealField, NewConnection, NewDeal, NewWorkspace, SyncMode,
};
use pandora_core::query::{DealFilter, PageRequest};
use pandora_core::sync::SyncOutcome;
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use uuid::Uuid;

fn config() -> serde_json::Value {
    serde_json::json!({"deals": 300, "seed": 11, "start": "2026-01-05"})
}

fn quiet(_: &SyncOutcome) {}

async fn pandora(dir: &std::path::Path) -> Pandora {
    let store = SqliteStore::open(dir.join("pandora.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    Pandora::builder()
        .store(store)
        .connectors(pandora_connectors::all())
        .build()
        .expect("build")
}

async fn workspace(p: &Pandora, name: &str) -> Uuid {
    let ws = p
        .create_workspace(NewWorkspace {
            name: name.into(),
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
                config: config(),
            },
        )
        .await
        .expect("connection");
    ws
}

type History = Vec<(
    DealField,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
    ChangeOrigin,
)>;

/// Live deals with their history, by source id.
async fn state(p: &Pandora, ws: Uuid) -> BTreeMap<String, (NewDeal, History)> {
    let mut out = BTreeMap::new();
    let mut page = PageRequest::first(500);
    loop {
        let listed = p
            .list_deals(ws, &DealFilter::default(), &page)
            .await
            .expect("list");
        for d in &listed.data {
            let history = p
                .deal_history(ws, d.id)
                .await
                .expect("history")
                .into_iter()
                .map(|c| (c.field, c.new_value, c.changed_at, c.origin))
                .collect();
            out.insert(d.fields.source_id.clone(), (d.fields.clone(), history));
        }
        match listed.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_syncs_reach_the_state_of_a_full_generation() {
    let dir = tempfile::tempdir().expect("dir");
    let p = pandora(dir.path()).await;
    let synced = workspace(&p, "synced").await;

    let first = p
        .sync_now(synced, "sample", SyncMode::Incremental, &quiet)
        .await
        .expect("first sync (full: nothing stored yet)");
    assert_eq!(first.counts["deals"].inserted, 300);
    assert_eq!(
        first.observed_changes, 0,
        "the generator gives every change"
    );
    for _ in 0..4 {
        let step = p
            .sync_now(synced, "sample", SyncMode::Incremental, &quiet)
            .await
            .expect("incremental");
        assert_eq!(step.observed_changes, 0);
        assert!(
            step.records() < first.records() / 5,
            "a step writes only what changed"
        );
    }

    // The reference: the dataset at epoch 4 written in one go.
    let reference = workspace(&p, "reference").await;
    let generator =
        SampleGenerator::new(SampleConfig::from_json(&config()).expect("config")).expect("gen");
    for page in generator.full_sync(4) {
        p.ingest(reference, &page, None).await.expect("ingest");
    }
    let (a, b) = (state(&p, synced).await, state(&p, reference).await);
    assert_eq!(a.len(), b.len());
    assert_eq!(a, b, "incremental syncs equal a full generation at epoch 4");
    for kind in [
        RecordKind::User,
        RecordKind::Account,
        RecordKind::Contact,
        RecordKind::DealContact,
        RecordKind::Conversation,
    ] {
        assert_eq!(
            p.store().count_records(synced, kind).await.expect("count"),
            p.store()
                .count_records(reference, kind)
                .await
                .expect("count"),
            "{kind:?}"
        );
    }

    // A forced full re-run reads the stored epoch again and changes nothing:
    // no new rows or history, the same live state. (Deals deleted in the
    // source are replayed as their last state then deleted in the same page,
    // so they count once as updated and once as deleted.)
    let before = state(&p, synced).await;
    let again = p
        .sync_now(synced, "sample", SyncMode::Full, &quiet)
        .await
        .expect("full re-run");
    for (table, c) in &again.counts {
        assert_eq!(c.inserted, 0, "{table}");
        assert_eq!(
            c.updated, c.deleted,
            "{table}: only deleted rows are replayed"
        );
    }
    assert_eq!(again.changes_inserted, 0);
    assert_eq!(state(&p, synced).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_start_the_dataset_is_current_and_never_runs_ahead_of_real_time() {
    let dir = tempfile::tempdir().expect("dir");
    let p = pandora(dir.path()).await;
    let ws = workspace(&p, "Now").await;
    p.store()
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "sample".into(),
                status: ConnectionStatus::Active,
                credentials: None,
                config: serde_json::json!({"deals": 200, "seed": 5}),
            },
        )
        .await
        .expect("connection");
    let before = chrono::Utc::now();
    let first = p
        .sync(ws, "sample", SyncMode::Full, &quiet)
        .await
        .expect("sync");
    assert!(first.error.is_none(), "{:?}", first.error);
    let deals = p
        .list_deals(ws, &DealFilter::default(), &PageRequest::default())
        .await
        .expect("deals")
        .data;
    let latest = deals
        .iter()
        .filter_map(|d| d.fields.source_updated_at)
        .max()
        .expect("modification times");
    // Epoch 0 is today's midnight (UTC): the latest change is from the last day, never the future.
    assert!(latest <= chrono::Utc::now(), "{latest}");
    assert!(
        latest > before - chrono::Duration::days(2),
        "the dataset looks current: latest change {latest}"
    );
    // The first sync's baseline reached every deal: open deals carry their
    // velocity against won deals.
    assert!(
        deals
            .iter()
            .filter_map(|d| d.computed.as_ref())
            .any(|c| c.stage_velocity.is_some()),
        "no open deal has a stage velocity"
    );
    // An incremental sync right after would move the simulated clock past
    // the real one: it writes nothing.
    let second = p
        .sync(ws, "sample", SyncMode::Incremental, &quiet)
        .await
        .expect("sync");
    assert!(second.error.is_none(), "{:?}", second.error);
    let written: u64 = second
        .counts
        .values()
        .map(|c| c.inserted + c.updated + c.deleted)
        .sum();
    assert_eq!(written, 0, "{:?}", second.counts);
}
