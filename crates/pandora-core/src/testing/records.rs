//! Batch upserts: idempotency, updates, soft deletes, references, concurrency.

use rust_decimal::Decimal;

use super::fixtures::{deal, deals_batch, new_workspace, write, StoreRef};
use crate::batch::{Deletion, RecordBatch, RecordKind};
use crate::model::{
    NewAccount, NewContact, NewDealContact, NewPipelineStage, NewUser, StageCategory, StreamCounts,
};
use crate::query::{DealFilter, PageRequest};

fn counts(inserted: u64, updated: u64, unchanged: u64, deleted: u64) -> StreamCounts {
    StreamCounts {
        inserted,
        updated,
        unchanged,
        deleted,
    }
}

fn mixed_batch() -> RecordBatch {
    RecordBatch {
        users: vec![
            NewUser {
                source_id: "u1".into(),
                name: Some("Ada".into()),
                email: Some("ada@example.com".into()),
                active: true,
                ..Default::default()
            },
            NewUser {
                source_id: "u2".into(),
                name: Some("Bob".into()),
                manager_source_id: Some("u1".into()),
                team: Some("East".into()),
                active: true,
                ..Default::default()
            },
        ],
        accounts: vec![NewAccount {
            source_id: "a1".into(),
            name: Some("Northwind".into()),
            domain: Some("northwind.example".into()),
            ..Default::default()
        }],
        contacts: vec![NewContact {
            source_id: "c1".into(),
            first_name: Some("Cy".into()),
            email: Some("cy@northwind.example".into()),
            account_source_id: Some("a1".into()),
            ..Default::default()
        }],
        deals: (1..=5)
            .map(|i| {
                let mut d = deal(&format!("d{i}"), Some(1000 * i), Some((2026, 3, i as u32)));
                d.owner_source_id = Some("u2".into());
                d.account_source_id = Some("a1".into());
                d
            })
            .collect(),
        deal_contacts: vec![NewDealContact {
            deal_source_id: "d1".into(),
            contact_source_id: "c1".into(),
            role: Some("champion".into()),
            is_primary: true,
        }],
        ..RecordBatch::new("test")
    }
}

/// The same page twice changes nothing and reports every row unchanged.
pub async fn upsert_is_idempotent(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let batch = mixed_batch();
    let first = write(&store, ws, &batch).await;
    assert_eq!(first.of(RecordKind::User), counts(2, 0, 0, 0));
    assert_eq!(first.of(RecordKind::Account), counts(1, 0, 0, 0));
    assert_eq!(first.of(RecordKind::Contact), counts(1, 0, 0, 0));
    assert_eq!(first.of(RecordKind::Deal), counts(5, 0, 0, 0));
    assert_eq!(first.of(RecordKind::DealContact), counts(1, 0, 0, 0));
    let d1 = store
        .get_deal_by_source(ws, "test", "d1")
        .await
        .expect("d1");

    let second = write(&store, ws, &batch).await;
    assert_eq!(second.of(RecordKind::User), counts(0, 0, 2, 0));
    assert_eq!(second.of(RecordKind::Account), counts(0, 0, 1, 0));
    assert_eq!(second.of(RecordKind::Contact), counts(0, 0, 1, 0));
    assert_eq!(second.of(RecordKind::Deal), counts(0, 0, 5, 0));
    assert_eq!(second.of(RecordKind::DealContact), counts(0, 0, 1, 0));
    let again = store
        .get_deal_by_source(ws, "test", "d1")
        .await
        .expect("d1");
    assert_eq!(
        again, d1,
        "an unchanged row is not touched, updated_at included"
    );

    for (kind, n) in [
        (RecordKind::User, 2),
        (RecordKind::Account, 1),
        (RecordKind::Contact, 1),
        (RecordKind::Deal, 5),
        (RecordKind::DealContact, 1),
    ] {
        assert_eq!(
            store.count_records(ws, kind).await.expect("count"),
            n,
            "{kind:?}"
        );
    }

    // A page that repeats a key keeps its last occurrence.
    let mut dup = deals_batch(vec![deal("d9", Some(1), None), deal("d9", Some(2), None)]);
    dup.deals[1].name = "last wins".into();
    let out = write(&store, ws, &dup).await;
    assert_eq!(out.of(RecordKind::Deal), counts(1, 0, 0, 0));
    let d9 = store
        .get_deal_by_source(ws, "test", "d9")
        .await
        .expect("d9");
    assert_eq!(d9.fields.name, "last wins");
    assert_eq!(d9.fields.amount, Some(Decimal::from(2)));
}

/// A changed record is updated in place by `(workspace, source, source_id)`.
pub async fn update_by_source_key(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    write(&store, ws, &mixed_batch()).await;
    let before = store
        .get_deal_by_source(ws, "test", "d2")
        .await
        .expect("d2");

    let mut changed = deal("d2", None, Some((2026, 6, 30)));
    changed.amount = Some("2500.125".parse().expect("decimal"));
    changed.stage = Some("won".into());
    changed.stage_category = StageCategory::Won;
    changed.owner_source_id = Some("u2".into());
    changed.account_source_id = Some("a1".into());
    let out = write(
        &store,
        ws,
        &deals_batch(vec![changed, deal("d3", Some(3000), Some((2026, 3, 3)))]),
    )
    .await;
    // d3 differs from the first write (no owner/account now), so it is updated too.
    assert_eq!(out.of(RecordKind::Deal), counts(0, 2, 0, 0));

    let after = store
        .get_deal_by_source(ws, "test", "d2")
        .await
        .expect("d2");
    assert_eq!(after.id, before.id, "same row");
    assert_eq!(after.created_at, before.created_at);
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(
        after.fields.amount,
        Some("2500.125".parse().expect("decimal"))
    );
    assert_eq!(after.fields.stage.as_deref(), Some("won"));
    assert_eq!(after.fields.stage_category, StageCategory::Won);
    assert_eq!(
        after.fields.close_date,
        chrono::NaiveDate::from_ymd_opt(2026, 6, 30)
    );
    assert_eq!(store.get_deal(ws, after.id).await.expect("by id"), after);

    // Amounts keep 4 decimal places.
    let mut precise = deal("d4", None, None);
    precise.amount = Some("1234.56789".parse().expect("decimal"));
    write(&store, ws, &deals_batch(vec![precise])).await;
    let d4 = store
        .get_deal_by_source(ws, "test", "d4")
        .await
        .expect("d4");
    assert_eq!(
        d4.fields.amount,
        Some("1234.5679".parse().expect("decimal"))
    );

    // The same source id from another source is another record.
    let mut other = deals_batch(vec![deal("d2", Some(1), None)]);
    other.source = "other".into();
    let out = write(&store, ws, &other).await;
    assert_eq!(out.of(RecordKind::Deal), counts(1, 0, 0, 0));
    let theirs = store
        .get_deal_by_source(ws, "other", "d2")
        .await
        .expect("other d2");
    assert_ne!(theirs.id, after.id);
    assert_eq!(theirs.source, "other");
    assert_eq!(
        store
            .get_deal_by_source(ws, "test", "d2")
            .await
            .expect("d2")
            .fields
            .stage
            .as_deref(),
        Some("won")
    );
}

/// Deletions soft-delete; a record delivered again is restored.
pub async fn soft_delete_and_restore(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    write(&store, ws, &mixed_batch()).await;
    let d1 = store
        .get_deal_by_source(ws, "test", "d1")
        .await
        .expect("d1");

    let mut del = RecordBatch::new("test");
    del.deletions = vec![
        Deletion {
            kind: RecordKind::Deal,
            source_id: "d1".into(),
        },
        Deletion {
            kind: RecordKind::Deal,
            source_id: "never-existed".into(),
        },
        Deletion {
            kind: RecordKind::Contact,
            source_id: "c1".into(),
        },
    ];
    let out = write(&store, ws, &del).await;
    assert_eq!(out.of(RecordKind::Deal), counts(0, 0, 0, 1));
    assert_eq!(out.of(RecordKind::Contact), counts(0, 0, 0, 1));

    let page = store
        .list_deals(ws, &DealFilter::default(), &PageRequest::first(50))
        .await
        .expect("list");
    assert_eq!(page.data.len(), 4);
    assert!(page.data.iter().all(|d| d.fields.source_id != "d1"));
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        4
    );
    assert_eq!(
        store
            .count_records(ws, RecordKind::Contact)
            .await
            .expect("count"),
        0
    );
    assert!(store
        .list_contacts(ws, &PageRequest::first(50))
        .await
        .expect("contacts")
        .data
        .is_empty());
    let deleted = store
        .get_deal(ws, d1.id)
        .await
        .expect("still readable by id");
    assert!(deleted.deleted_at.is_some());

    // Deleting again counts nothing.
    let out = write(&store, ws, &del).await;
    assert_eq!(out.of(RecordKind::Deal), counts(0, 0, 0, 0));

    // The vendor restores it: delivered again, it is live with the same id.
    let original = mixed_batch()
        .deals
        .into_iter()
        .find(|d| d.source_id == "d1")
        .expect("d1");
    let out = write(&store, ws, &deals_batch(vec![original])).await;
    assert_eq!(out.of(RecordKind::Deal), counts(0, 1, 0, 0));
    let restored = store
        .get_deal_by_source(ws, "test", "d1")
        .await
        .expect("d1");
    assert_eq!(restored.id, d1.id);
    assert_eq!(restored.deleted_at, None);
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        5
    );
}

/// Owner, account and manager references resolve to Pandora ids of the same workspace and source.
pub async fn references_are_resolved(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    // Deals first, their owner and account in a later batch: resolved on read.
    let mut early = deal("early", Some(5), None);
    early.owner_source_id = Some("u1".into());
    early.account_source_id = Some("a1".into());
    write(&store, ws, &deals_batch(vec![early])).await;
    let e = store
        .get_deal_by_source(ws, "test", "early")
        .await
        .expect("early");
    assert_eq!((e.owner_id, e.account_id), (None, None));

    write(&store, ws, &mixed_batch()).await;
    let users = store
        .list_users(ws, &PageRequest::first(50))
        .await
        .expect("users")
        .data;
    let u1 = users
        .iter()
        .find(|u| u.fields.source_id == "u1")
        .expect("u1");
    let u2 = users
        .iter()
        .find(|u| u.fields.source_id == "u2")
        .expect("u2");
    assert_eq!(u2.manager_id, Some(u1.id));
    assert_eq!(u2.fields.team.as_deref(), Some("East"));
    assert_eq!(u1.manager_id, None);
    let accounts = store
        .list_accounts(ws, &PageRequest::first(50))
        .await
        .expect("accounts")
        .data;
    assert_eq!(accounts.len(), 1);
    let a1 = &accounts[0];
    let contacts = store
        .list_contacts(ws, &PageRequest::first(50))
        .await
        .expect("contacts")
        .data;
    assert_eq!(contacts[0].account_id, Some(a1.id));

    let e = store
        .get_deal_by_source(ws, "test", "early")
        .await
        .expect("early");
    assert_eq!(e.owner_id, Some(u1.id));
    assert_eq!(e.account_id, Some(a1.id));
    let d1 = store
        .get_deal_by_source(ws, "test", "d1")
        .await
        .expect("d1");
    assert_eq!(d1.owner_id, Some(u2.id));

    // A user of another source with the same source id is not the owner.
    let mut foreign = RecordBatch::new("elsewhere");
    foreign.deals = vec![{
        let mut d = deal("f1", None, None);
        d.owner_source_id = Some("u1".into());
        d
    }];
    write(&store, ws, &foreign).await;
    let f1 = store
        .get_deal_by_source(ws, "elsewhere", "f1")
        .await
        .expect("f1");
    assert_eq!(f1.owner_id, None);
}

/// Stages list by pipeline, then display order.
pub async fn stages_are_listed_in_pipeline_order(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let stage = |pipeline: &str, stage: &str, order: Option<i32>, category| NewPipelineStage {
        pipeline: pipeline.into(),
        pipeline_label: Some(pipeline.to_uppercase()),
        stage: stage.into(),
        label: Some(stage.to_uppercase()),
        category,
        display_order: order,
        probability: Some(0.5),
    };
    let mut batch = RecordBatch::new("test");
    batch.stages = vec![
        stage("sales", "won", Some(3), StageCategory::Won),
        stage("sales", "discovery", Some(1), StageCategory::Open),
        stage("renewals", "open", Some(1), StageCategory::Open),
        stage("sales", "lost", Some(4), StageCategory::Lost),
        stage("sales", "proposal", Some(2), StageCategory::Open),
    ];
    let out = write(&store, ws, &batch).await;
    assert_eq!(out.of(RecordKind::PipelineStage), counts(5, 0, 0, 0));
    let listed: Vec<_> = store
        .list_stages(ws)
        .await
        .expect("stages")
        .into_iter()
        .map(|s| format!("{}/{}", s.fields.pipeline, s.fields.stage))
        .collect();
    assert_eq!(
        listed,
        vec![
            "renewals/open",
            "sales/discovery",
            "sales/proposal",
            "sales/won",
            "sales/lost"
        ]
    );
    let won = store
        .list_stages(ws)
        .await
        .expect("stages")
        .into_iter()
        .find(|s| s.fields.stage == "won")
        .expect("won");
    assert_eq!(won.fields.category, StageCategory::Won);
}

/// Two writers of the same keys at once both succeed and leave one row per key.
pub async fn concurrent_writers_leave_one_row_per_key(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let deals: Vec<_> = (0..300)
        .map(|i| deal(&format!("c{i}"), Some(i), None))
        .collect();
    let batch = deals_batch(deals).prepare().expect("prepare");
    let mut handles = Vec::new();
    for _ in 0..2 {
        let store = store.clone();
        let batch = batch.clone();
        handles.push(tokio::spawn(async move {
            let mut inserted = 0;
            for _ in 0..3 {
                let out = store
                    .write_batch(ws, &batch, None)
                    .await
                    .expect("concurrent write");
                inserted += out.of(RecordKind::Deal).inserted;
            }
            inserted
        }));
    }
    let mut inserted = 0;
    for h in handles {
        inserted += h.await.expect("join");
    }
    assert_eq!(
        inserted, 300,
        "each key inserted exactly once across writers"
    );
    assert_eq!(
        store
            .count_records(ws, RecordKind::Deal)
            .await
            .expect("count"),
        300
    );
    let mut seen = std::collections::HashSet::new();
    let mut page = PageRequest::first(500);
    loop {
        let p = store
            .list_deals(ws, &DealFilter::default(), &page)
            .await
            .expect("list");
        for d in &p.data {
            assert!(
                seen.insert(d.fields.source_id.clone()),
                "duplicate {}",
                d.fields.source_id
            );
        }
        match p.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 300);
}
