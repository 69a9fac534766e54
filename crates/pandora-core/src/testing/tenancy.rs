//! Tenant isolation and workspace deletion.

use super::fixtures::{deal, deals_batch, new_workspace, write, StoreRef};
use crate::batch::{Deletion, RecordBatch, RecordKind};
use crate::error::ErrorKind;
use crate::model::{
    self, ApiKey, ChangeOrigin, Checkpoint, ConnectionStatus, DealField, NewConnection,
    NewDealChange,
};
use crate::query::{DealFilter, PageRequest};

fn connection(connector: &str) -> NewConnection {
    NewConnection {
        connector: connector.into(),
        status: ConnectionStatus::Active,
        credentials: None,
        config: serde_json::json!({}),
    }
}

/// A record of workspace A is never returned or changed through workspace B, even by its exact id.
pub async fn tenant_isolation(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    // Both workspaces hold a deal with the same source key.
    let mut batch_a = deals_batch(vec![deal("shared", Some(100), Some((2026, 1, 1)))]);
    batch_a.deal_changes = vec![NewDealChange {
        deal_source_id: "shared".into(),
        field: DealField::Stage,
        old_value: Some("new".into()),
        new_value: Some("qualified".into()),
        changed_at: model::now(),
        origin: ChangeOrigin::Vendor,
    }];
    write(&store, a, &batch_a).await;
    write(
        &store,
        b,
        &deals_batch(vec![deal("shared", Some(999), None)]),
    )
    .await;
    let deal_a = store
        .get_deal_by_source(a, "test", "shared")
        .await
        .expect("a");
    let deal_b = store
        .get_deal_by_source(b, "test", "shared")
        .await
        .expect("b");
    assert_ne!(deal_a.id, deal_b.id);
    assert_eq!(deal_b.fields.amount, Some(999.into()));

    // Reads through B by A's id.
    assert_eq!(
        store.get_deal(b, deal_a.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.deal_history(b, deal_a.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .deal_history(a, deal_a.id)
            .await
            .expect("history")
            .len(),
        1
    );
    let listed = store
        .list_deals(b, &DealFilter::default(), &PageRequest::first(50))
        .await
        .expect("list b");
    assert_eq!(
        listed.data.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![deal_b.id]
    );
    assert!(listed.data.iter().all(|d| d.workspace_id == b));

    // Writes through B leave A alone.
    let mut del = RecordBatch::new("test");
    del.deletions = vec![Deletion {
        kind: RecordKind::Deal,
        source_id: "shared".into(),
    }];
    write(&store, b, &del).await;
    assert!(store
        .get_deal(a, deal_a.id)
        .await
        .expect("a")
        .deleted_at
        .is_none());
    assert_eq!(
        store
            .count_records(a, RecordKind::Deal)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        store
            .count_records(b, RecordKind::Deal)
            .await
            .expect("count"),
        0
    );

    // A history row in B cannot name A's deal.
    let mut change_b = RecordBatch::new("test");
    change_b.deal_changes = batch_a.deal_changes.clone();
    change_b.deal_changes[0].deal_source_id = "only-in-a".into();
    write(&store, a, &deals_batch(vec![deal("only-in-a", None, None)])).await;
    let err = store
        .write_batch(b, &change_b.prepare().expect("prepare"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // Connections and checkpoints.
    let conn_a = store
        .upsert_connection(a, &connection("hubspot"))
        .await
        .expect("conn a");
    let checkpoint = Checkpoint {
        connection_id: conn_a.id,
        stream: "deals".into(),
        cursor: serde_json::json!({"after": "secret-cursor-of-a"}),
    };
    store
        .write_batch(
            a,
            &RecordBatch::new("test").prepare().expect("prepare"),
            Some(&checkpoint),
        )
        .await
        .expect("checkpoint a");
    assert_eq!(
        store.get_connection(b, "hubspot").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.list_connections(b).await.expect("list").is_empty());
    assert_eq!(
        store
            .delete_connection(b, conn_a.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(store.get_connection(a, "hubspot").await.is_ok());
    match store.get_checkpoints(b, conn_a.id).await {
        Ok(map) => assert!(map.is_empty(), "B must not read A's cursors"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
    }
    let err = store
        .write_batch(
            b,
            &RecordBatch::new("test").prepare().expect("prepare"),
            Some(&checkpoint),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "B cannot write A's checkpoint"
    );
    assert_eq!(
        store.get_checkpoints(a, conn_a.id).await.expect("cp")["deals"],
        serde_json::json!({"after": "secret-cursor-of-a"})
    );

    // API keys.
    let key = ApiKey {
        id: model::new_id(),
        workspace_id: a,
        name: "k".into(),
        prefix: "pk_".into(),
        hash: crate::auth::hash_token("pk_a"),
        created_at: model::now(),
    };
    store.create_api_key(&key).await.expect("key");
    assert!(store.list_api_keys(b).await.expect("keys").is_empty());
    assert_eq!(
        store.delete_api_key(b, key.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(store.list_api_keys(a).await.expect("keys").len(), 1);
}

/// Deleting a workspace removes every row it owns and nothing of others.
pub async fn delete_workspace_removes_its_data(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    for ws in [a, b] {
        write(
            &store,
            ws,
            &deals_batch(vec![deal("d1", Some(1), None), deal("d2", Some(2), None)]),
        )
        .await;
        store
            .upsert_connection(ws, &connection("hubspot"))
            .await
            .expect("conn");
    }
    let deal_a = store.get_deal_by_source(a, "test", "d1").await.expect("d1");
    let key = ApiKey {
        id: model::new_id(),
        workspace_id: a,
        name: "k".into(),
        prefix: "pk_".into(),
        hash: crate::auth::hash_token("pk_gone"),
        created_at: model::now(),
    };
    store.create_api_key(&key).await.expect("key");

    store.delete_workspace(a).await.expect("delete");
    assert_eq!(
        store.get_deal(a, deal_a.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.find_api_key(&key.hash).await.expect("find").is_none());
    match store.count_records(a, RecordKind::Deal).await {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
    }
    match store.list_connections(a).await {
        Ok(c) => assert!(c.is_empty()),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
    }
    // B is untouched.
    assert_eq!(
        store
            .count_records(b, RecordKind::Deal)
            .await
            .expect("count"),
        2
    );
    assert_eq!(store.list_connections(b).await.expect("conns").len(), 1);
    // Writing into a deleted workspace fails and stores nothing.
    let err = store
        .write_batch(
            a,
            &deals_batch(vec![deal("d3", None, None)])
                .prepare()
                .expect("prepare"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
