//! Storing a connection's credentials through the facade: sealed by the vault
//! (`CREDENTIAL_ENCRYPTION_KEY`) before the store sees them, opened again for
//! a connector. Works on the same SQLite file as a running `pandora serve`.
//!
//! ```text
//! CREDENTIAL_ENCRYPTION_KEY=$(pandora keygen) \
//!   cargo run -p pandora-examples --example connect -- store   # create a workspace and a connection
//! cargo run -p pandora-examples --example connect -- check     # open every connection's credentials
//! ```
//!
//! The database is `PANDORA_SQLITE_PATH` (default `pandora.db`).

use pandora_core::model::NewWorkspace;
use pandora_core::query::PageRequest;
use pandora_core::vault::{Credentials, LocalVault};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("PANDORA_SQLITE_PATH").unwrap_or_else(|_| "pandora.db".into());
    let store = SqliteStore::open(&path).await?;
    store.migrate().await?;
    let vault = LocalVault::from_env()?;
    let pandora = Pandora::builder().store(store).vault(vault).build()?;

    match std::env::args().nth(1).as_deref() {
        Some("store") => {
            let ws = pandora
                .create_workspace(NewWorkspace {
                    name: "Connect example".into(),
                    ..Default::default()
                })
                .await?;
            let creds = Credentials::from_json(&serde_json::json!({"api_key": "example-secret"}));
            let conn = pandora
                .connect(ws.workspace.id, "sample", creds, serde_json::json!({}))
                .await?;
            println!(
                "workspace {} connection {} credentials {}",
                ws.workspace.id,
                conn.id,
                Pandora::credential_state(&conn)
            );
        }
        Some("check") => {
            let mut page = PageRequest::first(500);
            loop {
                let workspaces = pandora.list_workspaces(&page).await?;
                for ws in &workspaces.data {
                    for conn in pandora.store().list_connections(ws.id).await? {
                        let opened = pandora.open_credentials(&conn).await;
                        println!(
                            "connection {} ({}): {} — {}",
                            conn.id,
                            conn.connector,
                            Pandora::credential_state(&conn),
                            match opened {
                                Ok(Some(_)) => "opens".to_string(),
                                Ok(None) => "no credentials".to_string(),
                                Err(e) => format!("does not open: {e}"),
                            }
                        );
                    }
                }
                match workspaces.next_cursor {
                    Some(c) => page = page.next(c),
                    None => break,
                }
            }
        }
        _ => eprintln!("usage: connect store|check"),
    }
    Ok(())
}
