//! Stored credentials: the vault's maintenance commands and `Pandora::connect`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::fixtures::{new_workspace, StoreRef};
use crate::error::ErrorKind;
use crate::model::{ConnectionStatus, NewConnection, StoredCredentials};
use crate::vault::maintenance::{self, RunOptions};
use crate::vault::{CredentialState, CredentialVault, Credentials, LocalVault, MasterKey};
use crate::Pandora;

fn no_progress(_: u64) {}

async fn plaintext_connection(
    store: &StoreRef,
    ws: uuid::Uuid,
    connector: &str,
    token: &str,
) -> uuid::Uuid {
    store
        .upsert_connection(
            ws,
            &NewConnection {
                connector: connector.into(),
                status: ConnectionStatus::Active,
                credentials: Some(StoredCredentials(format!(r#"{{"api_key":"{token}"}}"#))),
                config: serde_json::json!({}),
            },
        )
        .await
        .expect("connection")
        .id
}

/// Scanning pages through every workspace's credentials by connection id; swapping is compare-and-swap.
pub async fn credentials_scan_and_swap(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let mut ids = Vec::new();
    for (ws, name) in [
        (a, "hubspot"),
        (a, "gong"),
        (b, "hubspot"),
        (b, "monday"),
        (b, "fireflies"),
    ] {
        ids.push(plaintext_connection(&store, ws, name, name).await);
    }
    // A connection without credentials is not scanned.
    store
        .upsert_connection(
            a,
            &NewConnection {
                connector: "drive".into(),
                status: ConnectionStatus::Disconnected,
                credentials: None,
                config: serde_json::json!({}),
            },
        )
        .await
        .expect("no creds");
    ids.sort();
    assert_eq!(store.count_credentials().await.expect("count"), 5);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_credentials(after, 2).await.expect("scan");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.connection_id);
        seen.extend(page);
    }
    assert_eq!(
        seen.iter().map(|r| r.connection_id).collect::<Vec<_>>(),
        ids
    );
    let row = seen
        .iter()
        .find(|r| r.workspace_id == b && r.connector == "monday")
        .expect("monday");
    assert_eq!(
        row.credentials,
        StoredCredentials(r#"{"api_key":"monday"}"#.into())
    );

    let new = StoredCredentials("pv1.replaced".into());
    assert!(!store
        .swap_credentials(
            row.workspace_id,
            row.connection_id,
            &StoredCredentials("stale".into()),
            &new
        )
        .await
        .expect("swap"));
    assert!(
        !store
            .swap_credentials(a, row.connection_id, &row.credentials, &new)
            .await
            .expect("other workspace"),
        "a swap through another workspace changes nothing"
    );
    assert!(store
        .swap_credentials(row.workspace_id, row.connection_id, &row.credentials, &new)
        .await
        .expect("swap"));
    assert_eq!(
        store
            .get_connection(b, "monday")
            .await
            .expect("get")
            .credentials,
        Some(new)
    );
}

/// Legacy plaintext credentials are read, reported unencrypted, then encrypted in place, once.
pub async fn plaintext_credentials_are_read_then_encrypted(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    for i in 0..7 {
        plaintext_connection(&store, ws, &format!("c{i}"), &format!("secret-{i}")).await;
    }
    let vault = LocalVault::new(MasterKey::from_bytes(&[3u8; 32]));
    let pandora = Pandora::builder()
        .shared_store(store.clone())
        .vault(vault.clone())
        .build()
        .expect("build");
    let c0 = store.get_connection(ws, "c0").await.expect("c0");
    assert_eq!(Pandora::credential_state(&c0), "unencrypted");
    let opened = pandora
        .open_credentials(&c0)
        .await
        .expect("open")
        .expect("some");
    assert_eq!(opened.expose_json().expect("json")["api_key"], "secret-0");

    let dry = maintenance::encrypt_existing(
        store.as_ref(),
        &vault,
        RunOptions {
            dry_run: true,
            batch_size: 3,
            ..Default::default()
        },
        &no_progress,
    )
    .await
    .expect("dry run");
    assert_eq!((dry.found, dry.changed, dry.already), (7, 7, 0));
    assert_eq!(
        Pandora::credential_state(&store.get_connection(ws, "c0").await.expect("c0")),
        "unencrypted",
        "a dry run writes nothing"
    );

    let report = maintenance::encrypt_existing(
        store.as_ref(),
        &vault,
        RunOptions {
            batch_size: 3,
            ..Default::default()
        },
        &no_progress,
    )
    .await
    .expect("encrypt");
    assert_eq!(
        (
            report.found,
            report.changed,
            report.already,
            report.failed.len()
        ),
        (7, 7, 0, 0)
    );
    for i in 0..7 {
        let c = store
            .get_connection(ws, &format!("c{i}"))
            .await
            .expect("conn");
        assert_eq!(Pandora::credential_state(&c), "encrypted");
        let stored = c.credentials.clone().expect("creds");
        assert!(!stored.0.contains("secret-"), "sealed in place");
        let opened = pandora
            .open_credentials(&c)
            .await
            .expect("open")
            .expect("some");
        assert_eq!(
            opened.expose_json().expect("json")["api_key"],
            format!("secret-{i}")
        );
    }
    let again =
        maintenance::encrypt_existing(store.as_ref(), &vault, RunOptions::default(), &no_progress)
            .await
            .expect("twice");
    assert_eq!((again.found, again.changed, again.already), (7, 0, 7));
}

/// A rotation interrupted halfway and resumed ends with every row under the
/// new key, and every row stays readable throughout.
pub async fn key_rotation_is_resumable_and_never_blocks_reads(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let old = LocalVault::new(MasterKey::from_bytes(&[1u8; 32]));
    let old_pandora = Pandora::builder()
        .shared_store(store.clone())
        .vault(old.clone())
        .build()
        .expect("build");
    for i in 0..24 {
        let creds =
            Credentials::from_json(&serde_json::json!({"access_token": format!("tok-{i}")}));
        old_pandora
            .connect(ws, &format!("c{i:02}"), creds, serde_json::json!({}))
            .await
            .expect("connect");
    }
    // Servers run with the new ring: new key current, old key previous.
    let ring = LocalVault::new(MasterKey::from_bytes(&[2u8; 32]))
        .with_previous([MasterKey::from_bytes(&[1u8; 32])]);
    let new_only = LocalVault::new(MasterKey::from_bytes(&[2u8; 32]));
    let pandora = Pandora::builder()
        .shared_store(store.clone())
        .vault(ring.clone())
        .build()
        .expect("build");

    // A reader opens every credential in a loop while the rotation runs.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (pandora, store, done) = (pandora.clone(), store.clone(), done.clone());
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) || reads == 0 {
                for c in store.list_connections(ws).await.expect("list") {
                    let opened = pandora
                        .open_credentials(&c)
                        .await
                        .expect("readable throughout")
                        .expect("some");
                    assert!(opened.expose_json().expect("json")["access_token"]
                        .as_str()
                        .expect("token")
                        .starts_with("tok-"));
                    reads += 1;
                }
                tokio::task::yield_now().await;
            }
            reads
        })
    };

    let first = maintenance::rotate_key(
        store.as_ref(),
        &ring,
        RunOptions {
            batch_size: 5,
            stop_after: Some(10),
            ..Default::default()
        },
        &no_progress,
    )
    .await
    .expect("rotate, interrupted");
    assert!(first.interrupted);
    assert_eq!(first.census.sealed.values().sum::<u64>(), first.found);
    assert_eq!(first.changed, 10);
    let resumed = maintenance::rotate_key(
        store.as_ref(),
        &ring,
        RunOptions {
            batch_size: 5,
            ..Default::default()
        },
        &no_progress,
    )
    .await
    .expect("resume");
    assert!(!resumed.interrupted);
    assert_eq!(
        (
            resumed.found,
            resumed.changed,
            resumed.already,
            resumed.failed.len()
        ),
        (24, 14, 10, 0)
    );
    done.store(true, Ordering::SeqCst);
    assert!(reader.await.expect("reader") >= 24);

    let new_key = new_only.current_key_id();
    for c in store.list_connections(ws).await.expect("list") {
        assert_eq!(
            CredentialState::of(c.credentials.as_ref().expect("creds")),
            CredentialState::Sealed(new_key.expect("id"))
        );
    }
    // With the old key dropped, everything still opens.
    let verified = maintenance::verify(
        store.as_ref(),
        &new_only,
        RunOptions::default(),
        &no_progress,
    )
    .await
    .expect("verify");
    assert_eq!(
        (verified.found, verified.already, verified.failed.len()),
        (24, 24, 0)
    );
    assert_eq!(verified.census.sealed_under(new_key.expect("id")), 24);
    assert_eq!(verified.census.others(new_key.expect("id")), 0);
    // Verify names the key a blob is sealed under when the ring lacks it.
    let stranger = LocalVault::new(MasterKey::from_bytes(&[9u8; 32]));
    let failed = maintenance::verify(
        store.as_ref(),
        &stranger,
        RunOptions::default(),
        &no_progress,
    )
    .await
    .expect("verify");
    assert_eq!(failed.failed.len(), 24);
    assert_eq!(failed.failed[0].key_id, new_key);
    assert!(failed.failed[0]
        .reason
        .contains(&new_key.expect("id").to_string()));
}

/// `Pandora::connect` seals before storing; without a key it refuses and stores nothing.
pub async fn connect_seals_credentials(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let keyless = Pandora::builder()
        .shared_store(store.clone())
        .build()
        .expect("build");
    let creds = Credentials::from_json(&serde_json::json!({"api_key": "very-secret-token"}));
    let err = keyless
        .connect(ws, "gong", creds.clone(), serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("CREDENTIAL_ENCRYPTION_KEY"));
    assert!(store.list_connections(ws).await.expect("list").is_empty());

    let vault = LocalVault::new(MasterKey::from_bytes(&[5u8; 32]));
    let pandora = Pandora::builder()
        .shared_store(store.clone())
        .vault(vault)
        .build()
        .expect("build");
    let conn = pandora
        .connect(
            ws,
            "gong",
            creds.clone(),
            serde_json::json!({"region": "eu"}),
        )
        .await
        .expect("connect");
    let stored = store.get_connection(ws, "gong").await.expect("get");
    assert_eq!(stored.id, conn.id);
    assert_eq!(stored.config["region"], "eu");
    let sealed = stored.credentials.clone().expect("creds");
    assert!(sealed.0.starts_with("pv1.") && !sealed.0.contains("very-secret-token"));
    assert_eq!(
        pandora.open_credentials(&stored).await.expect("open"),
        Some(creds.clone())
    );
    // Reconnecting keeps the connection and reseals.
    let again = pandora
        .connect(ws, "gong", creds, serde_json::json!({}))
        .await
        .expect("reconnect");
    assert_eq!(again.id, conn.id);
    assert_ne!(again.credentials, Some(sealed), "fresh data key and nonces");
    // The blob is bound to its connection: copied onto another, it does not open.
    let other = pandora
        .connect(
            ws,
            "fireflies",
            Credentials::from_json(&serde_json::json!({})),
            serde_json::json!({}),
        )
        .await
        .expect("other");
    let misplaced = crate::model::Connection {
        credentials: again.credentials.clone(),
        ..other
    };
    assert!(pandora.open_credentials(&misplaced).await.is_err());
}
