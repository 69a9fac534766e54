//! Workspaces, API keys, settings and connections.

use std::collections::HashSet;

use uuid::Uuid;

use super::fixtures::{new_workspace, StoreRef};
use crate::error::ErrorKind;
use crate::model::{
    self, ApiKey, ConnectionStatus, NewConnection, StoredCredentials, WorkspacePatch,
};
use crate::query::PageRequest;

/// Create, get, list (paginated), update and delete workspaces.
pub async fn workspace_crud(store: StoreRef) {
    let a = new_workspace(&store, "Acme").await;
    let b = new_workspace(&store, "Globex").await;
    let c = new_workspace(&store, "Initech").await;

    let got = store.get_workspace(a).await.expect("get");
    assert_eq!(got.name, "Acme");
    assert_eq!(got.settings, serde_json::json!({}));

    // Paginate two at a time: every workspace exactly once.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = store.list_workspaces(&page).await.expect("list");
        assert!(p.data.len() <= 2);
        seen.extend(p.data.iter().map(|w| w.id));
        match p.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "each workspace once: {seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 3);
    for id in [a, b, c] {
        assert!(seen.contains(&id));
    }

    let before = store.get_workspace(b).await.expect("get");
    let updated = store
        .update_workspace(
            b,
            &WorkspacePatch {
                name: Some("Globex Corp".into()),
                settings: Some(serde_json::json!({"fiscal_year_start": 2})),
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.name, "Globex Corp");
    assert_eq!(updated.settings["fiscal_year_start"], 2);
    assert!(updated.updated_at >= before.updated_at);
    assert_eq!(updated.created_at, before.created_at);
    let renamed_only = store
        .update_workspace(
            b,
            &WorkspacePatch {
                name: Some("Globex".into()),
                settings: None,
            },
        )
        .await
        .expect("update name only");
    assert_eq!(
        renamed_only.settings["fiscal_year_start"], 2,
        "absent patch fields stay as they are"
    );
    assert_eq!(store.get_workspace(b).await.expect("get").name, "Globex");

    let missing = Uuid::now_v7();
    assert_eq!(
        store.get_workspace(missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .update_workspace(missing, &WorkspacePatch::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.delete_workspace(missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    store.delete_workspace(c).await.expect("delete");
    assert_eq!(
        store.get_workspace(c).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let left = store
        .list_workspaces(&PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(left.data.len(), 2);
}

fn key(ws: Uuid, name: &str, secret: &str) -> ApiKey {
    ApiKey {
        id: model::new_id(),
        workspace_id: ws,
        name: name.into(),
        prefix: secret.chars().take(6).collect(),
        hash: crate::auth::hash_token(secret),
        created_at: model::now(),
    }
}

/// API keys: create, list oldest first, find by hash, delete within the workspace only.
pub async fn api_keys(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let k1 = key(a, "ci", "pk_first-secret");
    let k2 = key(a, "laptop", "pk_second-secret");
    store.create_api_key(&k1).await.expect("create k1");
    store.create_api_key(&k2).await.expect("create k2");

    let listed = store.list_api_keys(a).await.expect("list");
    assert_eq!(
        listed.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![k1.id, k2.id]
    );
    assert_eq!(listed[0].hash, k1.hash);
    assert!(store.list_api_keys(b).await.expect("list b").is_empty());

    let found = store
        .find_api_key(&crate::auth::hash_token("pk_second-secret"))
        .await
        .expect("find")
        .expect("present");
    assert_eq!((found.id, found.workspace_id), (k2.id, a));
    assert!(store
        .find_api_key(&crate::auth::hash_token("pk_unknown"))
        .await
        .expect("find")
        .is_none());

    // Same hash twice is a conflict.
    let dup = key(b, "dup", "pk_first-secret");
    assert_eq!(
        store.create_api_key(&dup).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    // A key for a workspace that does not exist.
    let orphan = key(Uuid::now_v7(), "orphan", "pk_orphan");
    assert_eq!(
        store.create_api_key(&orphan).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Deleting through another workspace does nothing.
    assert_eq!(
        store.delete_api_key(b, k1.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.find_api_key(&k1.hash).await.expect("find").is_some());
    store.delete_api_key(a, k1.id).await.expect("delete");
    assert!(store.find_api_key(&k1.hash).await.expect("find").is_none());
    assert_eq!(
        store.delete_api_key(a, k1.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// `init_setting` stores the first value only, even under a race.
pub async fn settings_are_initialised_once(store: StoreRef) {
    assert_eq!(store.get_setting("admin").await.expect("get"), None);
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            store.init_setting("admin", &format!("v{i}")).await
        }));
    }
    let mut results = HashSet::new();
    for h in handles {
        results.insert(h.await.expect("join").expect("init"));
    }
    assert_eq!(
        results.len(),
        1,
        "every racer sees the same value: {results:?}"
    );
    let stored = store.get_setting("admin").await.expect("get").expect("set");
    assert!(results.contains(&stored));
    assert_eq!(
        store.init_setting("admin", "later").await.expect("init"),
        stored
    );
}

/// Connections: one per workspace and connector, replaced in place, deleted with their checkpoints.
pub async fn connections(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let new = NewConnection {
        connector: "hubspot".into(),
        status: ConnectionStatus::Active,
        credentials: Some(StoredCredentials("sealed-blob".into())),
        config: serde_json::json!({"portal": 42}),
    };
    let c = store.upsert_connection(ws, &new).await.expect("create");
    assert_eq!(c.connector, "hubspot");
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(c.credentials, Some(StoredCredentials("sealed-blob".into())));
    assert_eq!(c.config["portal"], 42);
    assert_eq!(c.last_sync_at, None);

    let replaced = store
        .upsert_connection(
            ws,
            &NewConnection {
                status: ConnectionStatus::NeedsReauth,
                credentials: None,
                config: serde_json::json!({}),
                ..new.clone()
            },
        )
        .await
        .expect("replace");
    assert_eq!(replaced.id, c.id, "same connection, replaced in place");
    assert_eq!(replaced.status, ConnectionStatus::NeedsReauth);
    assert_eq!(replaced.credentials, None);
    assert_eq!(replaced.created_at, c.created_at);

    let other = store
        .upsert_connection(
            ws,
            &NewConnection {
                connector: "gong".into(),
                ..new.clone()
            },
        )
        .await
        .expect("second connector");
    let listed = store.list_connections(ws).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|c| c.connector.as_str())
            .collect::<Vec<_>>(),
        vec!["gong", "hubspot"]
    );
    assert_eq!(
        store.get_connection(ws, "hubspot").await.expect("get").id,
        c.id
    );
    assert_eq!(
        store
            .get_connection(ws, "salesforce")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(store
        .get_checkpoints(ws, c.id)
        .await
        .expect("checkpoints")
        .is_empty());

    store.delete_connection(ws, other.id).await.expect("delete");
    assert_eq!(
        store.get_connection(ws, "gong").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .delete_connection(ws, other.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(store.list_connections(ws).await.expect("list").len(), 1);
}
