//! After `Pandora::connect`, no token appears anywhere in the database: every
//! row of every table is read back as text and searched.

use pandora_core::model::NewWorkspace;
use pandora_core::vault::{Credentials, LocalVault, MasterKey};
use pandora_core::Pandora;
use pandora_store_postgres::testing;
use sqlx::Row;

#[tokio::test]
async fn no_token_string_is_stored_in_any_table() {
    let store = testing::fresh_store().await;
    let pool = store.pool().clone();
    let pandora = Pandora::builder()
        .store(store)
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
    let secrets = [
        "access-TOKEN-5b1d0c9e7f",
        "refresh-TOKEN-8a2e4f6d1c",
        "private-app-key-3c7a9b",
    ];
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
    pandora
        .connect(
            ws.workspace.id,
            "gong",
            Credentials::from_json(&serde_json::json!({ "api_key": secrets[2] })),
            serde_json::json!({}),
        )
        .await
        .expect("connect");

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(table_name) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    assert!(tables.iter().any(|t| t == "connections"), "{tables:?}");
    let mut rows_seen = 0;
    for table in &tables {
        let rows = sqlx::query(&format!("SELECT t::text AS row FROM {table} t"))
            .fetch_all(&pool)
            .await
            .expect("scan");
        for row in rows {
            let text: String = row.get("row");
            rows_seen += 1;
            for secret in secrets {
                assert!(
                    !text.to_lowercase().contains(&secret.to_lowercase()),
                    "{secret} found in table {table}"
                );
            }
        }
    }
    let sealed: Vec<String> =
        sqlx::query_scalar("SELECT credentials FROM connections ORDER BY connector")
            .fetch_all(&pool)
            .await
            .expect("credentials");
    assert_eq!(sealed.len(), 2);
    assert!(sealed.iter().all(|c| c.starts_with("pv1.")));
    assert!(rows_seen > 2, "scanned {rows_seen} rows");
}
