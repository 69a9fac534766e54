//! `pandora serve`: the REST API, with a job worker beside it unless
//! `PANDORA_WORKER_CONCURRENCY=0`, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pandora_core::auth::SecretToken;
use pandora_core::store::Store;
use pandora_core::vault::{CredentialVault, LocalVault, KEY_VAR, PREVIOUS_KEYS_VAR};
use pandora_core::Pandora;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::Config;
use crate::database;
use crate::logging::Logging;
use crate::Failure;

/// How long in-flight requests may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Prints a generated admin token once, on stderr, where it cannot be missed.
fn print_admin_banner(token: &SecretToken) {
    let rule = "=".repeat(78);
    eprintln!(
        "\n{rule}\n\
         Pandora generated an admin token. It is printed only this once and only\n\
         its hash is stored; keep it somewhere safe (or set PANDORA_ADMIN_TOKEN).\n\n\
         Admin token (shown once, store it now): {}\n\
         {rule}\n",
        token.expose()
    );
}

/// Resolves when Ctrl-C or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Says once, at start, under which key credentials are sealed — or that
/// none is set, so that credentials cannot be stored.
fn log_vault(vault: &LocalVault) {
    let ids = vault.key_ids();
    match vault.current_key_id() {
        Some(current) => tracing::info!(
            key_id = %current,
            previous_keys = ids.len() - 1,
            "credentials are sealed under master key {current}"
        ),
        None if ids.is_empty() => tracing::warn!(
            "{KEY_VAR} is not set: connector credentials cannot be stored until it is \
             (they are never stored unencrypted); generate a key with `pandora keygen`"
        ),
        None => tracing::warn!(
            previous_keys = ids.len(),
            "{KEY_VAR} is not set, only {PREVIOUS_KEYS_VAR}: credentials sealed under those \
             keys open, but none can be stored until {KEY_VAR} is set; generate a key with \
             `pandora keygen`"
        ),
    }
}

/// Says once, at start, which OAuth flows are open (never a secret).
fn log_oauth(config: &Config) {
    for (vendor, client) in [
        ("hubspot", &config.oauth.hubspot),
        ("salesforce", &config.oauth.salesforce),
    ] {
        match client {
            Some(c) => tracing::info!(
                vendor,
                callback = %c.redirect_uri,
                "OAuth flow open at /api/auth/{vendor}/authorize"
            ),
            None => tracing::debug!(vendor, "no OAuth application configured"),
        }
    }
}

/// The vendor hosts of the configuration (the vendors' own where unset).
fn vendor_hosts(config: &Config) -> pandora_connectors::VendorHosts {
    let oauth = &config.oauth;
    pandora_connectors::VendorHosts::default()
        .with_hubspot(pandora_connectors::hubspot::HubSpotHosts::new(
            oauth.hubspot_oauth_base_url.as_deref(),
            oauth.hubspot_api_base_url.as_deref(),
        ))
        .with_salesforce(pandora_connectors::salesforce::SalesforceHosts::new(
            oauth.salesforce_login_url.as_deref(),
        ))
}

/// Builds the facade over the opened store, with every connector of
/// `pandora-connectors` (against the configured vendor hosts), every skill of
/// `pandora-skills`, and the configured OAuth applications.
pub fn build(config: &Config, store: Arc<dyn Store>) -> Result<Pandora, Failure> {
    let mut builder = Pandora::builder()
        .shared_store(store)
        .vault(config.vault.clone())
        .connectors(pandora_connectors::all_with(vendor_hosts(config)))
        .skills(pandora_skills::all());
    if let Some(token) = &config.admin_token {
        builder = builder.admin_token(token);
    }
    let oauth = &config.oauth;
    if let Some(secret) = &oauth.session_secret {
        builder = builder.oauth_state_secret(secret);
    }
    if let Some(client) = &oauth.hubspot {
        builder = builder.oauth_client("hubspot", client.clone());
    }
    if let Some(client) = &oauth.salesforce {
        builder = builder.oauth_client("salesforce", client.clone());
    }
    if let Some(url) = &oauth.success_url {
        builder = builder.oauth_success_url(url.clone());
    }
    builder
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start: {e}")))
}

/// Runs the server until a shutdown signal; returns once it has stopped.
pub async fn run(config: Config, logging: &Logging) -> Result<(), Failure> {
    log_vault(&config.vault);
    log_oauth(&config);
    let opened = database::open_migrated(&config.database).await?;
    logging.database_opened();
    tracing::info!(database = %database::describe(&config.database), "database ready");
    let result = serve(&config, build(&config, opened.store.clone())?).await;
    opened.close().await;
    result
}

async fn serve(config: &Config, pandora: Pandora) -> Result<(), Failure> {
    match pandora.ensure_admin_token().await {
        Ok(Some(token)) => print_admin_banner(&token),
        Ok(None) if config.admin_token.is_some() => {
            tracing::info!("using the admin token from PANDORA_ADMIN_TOKEN");
        }
        Ok(None) => tracing::info!("using the admin token generated at first start"),
        Err(e) => {
            return Err(Failure::runtime(format!(
                "cannot set up the admin token: {e}"
            )))
        }
    }

    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Failure::runtime(format!("cannot listen on {}: {e}", config.addr)))?;
    let addr: SocketAddr = listener.local_addr().unwrap_or(config.addr);
    tracing::info!("listening on http://{addr}");

    let worker = if config.jobs.concurrency > 0 {
        let worker = crate::worker::worker(config, pandora.clone())?;
        let stop = Arc::new(Notify::new());
        let stop_signal = stop.clone();
        let task = tokio::spawn(worker.run(async move { stop_signal.notified().await }));
        Some((stop, task))
    } else {
        tracing::info!("PANDORA_WORKER_CONCURRENCY=0: serving the API only; run `pandora worker` to process jobs");
        None
    };

    let app = pandora_http::router(pandora);
    let stopping = Arc::new(Notify::new());
    let signal_stopping = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        signal_stopping.notify_one();
    });
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.map_err(|e| Failure::runtime(format!("server error: {e}")))?,
        () = deadline => tracing::warn!(
            "requests still running {}s after the shutdown signal; exiting anyway",
            SHUTDOWN_GRACE.as_secs()
        ),
    }
    if let Some((stop, task)) = worker {
        stop.notify_one();
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "the worker task ended abnormally");
        }
    }
    tracing::info!("stopped");
    Ok(())
}
