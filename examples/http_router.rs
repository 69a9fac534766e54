//! Mounting Pandora's REST API into your own axum app, next to your routes,
//! then calling it once. Runs offline on an ephemeral local port:
//!
//! ```text
//! cargo run -p pandora-examples --example http_router
//! ```

use pandora_core::auth::SecretToken;
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("pandora-router-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::open(dir.join("pandora.db")).await?;
    store.migrate().await?;
    let admin = SecretToken::generate("pa_");
    let pandora = Pandora::builder()
        .store(store)
        .admin_token(&admin)
        .build()?;

    // Your app: your own routes plus Pandora's API.
    let app = axum::Router::new()
        .route(
            "/hello",
            axum::routing::get(|| async { "hello from the host app" }),
        )
        .merge(pandora_http::router(pandora));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let body = r#"{"name":"Acme"}"#;
    let request = format!(
        "POST /api/workspaces HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        admin.expose(),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.lines().next().unwrap_or_default();
    println!("POST /api/workspaces -> {status}");
    if let Some((_, json)) = response.split_once("\r\n\r\n") {
        let v: serde_json::Value = serde_json::from_str(json)?;
        println!("created workspace {}", v["workspace"]["id"]);
    }
    server.abort();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
