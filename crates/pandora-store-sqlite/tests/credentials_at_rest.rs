//! After `Pandora::connect`, no token appears anywhere in the database: not
//! in any row of any table, and not in the raw bytes of the database files.

mod common;

use pandora_core::model::NewWorkspace;
use pandora_core::vault::{Credentials, LocalVault, MasterKey};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use sqlx::Row;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_token_string_is_stored_in_any_table_or_file() {
    let dir = common::kept_dir();
    let path = dir.join("pandora.db");
    let store = SqliteStore::open(&path).await.expect("open");
    store.migrate().await.expect("migrate");
    let pool = store.pool().clone();
    let pandora = Pandora::builder()
        .store(store.clone())
        .vault(LocalVault::new(MasterKey::from_bytes(&[4u8; 32])))
        .build()
        .expect("build");
    let ws = pandora
        .create_workspace(NewWorkspace {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .expect("workspace");
    let secrets = ["access-TOKEN-5b1d0c9e7f", "refresh-TOKEN-8a2e4f6d1c"];
    pandora
        .connect(
            ws.workspace.id,
            "hubspot",
            Credentials::from_json(&serde_json::json!({
                "access_token": secrets[0],
                "refresh_token": secrets[1],
            })),
            serde_json::json!({}),
        )
        .await
        .expect("connect");

    // Every column of every row, as text or bytes.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    assert!(tables.iter().any(|t| t == "connections"), "{tables:?}");
    for table in &tables {
        let columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&pool)
                .await
                .expect("columns");
        for column in columns {
            let rows = sqlx::query(&format!(
                "SELECT CAST(\"{column}\" AS BLOB) AS v FROM \"{table}\""
            ))
            .fetch_all(&pool)
            .await
            .expect("scan");
            for row in rows {
                let v: Option<Vec<u8>> = row.get("v");
                for secret in secrets {
                    assert!(
                        !v.as_deref().is_some_and(|b| contains(b, secret.as_bytes())),
                        "{secret} found in {table}.{column}"
                    );
                }
            }
        }
    }
    let sealed: String = sqlx::query_scalar("SELECT credentials FROM connections")
        .fetch_one(&pool)
        .await
        .expect("credentials");
    assert!(sealed.starts_with("pv1."));

    // And the files themselves, after closing (WAL checkpointed).
    store.close().await;
    for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
        let bytes = std::fs::read(entry.path()).expect("read");
        for secret in secrets {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} in {:?}",
                entry.path()
            );
        }
    }
}
