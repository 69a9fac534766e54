//! Log output: `tracing-subscriber` with an `EnvFilter`, on stderr.
//!
//! While the database is being opened, the stores' own warnings are muted
//! unless the operator asked for logs (`RUST_LOG` or `DEBUG`): a failure there
//! is reported once, as the one `error:` line of `main`, not twice.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Directives that mute the stores while they open.
const QUIET_STORES: &str = "pandora_store_sqlite=off,pandora_store_postgres=off";

/// The installed subscriber's filter, to lift the start-up muting.
pub struct Logging {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    filter: String,
}

fn parse(filter: &str) -> EnvFilter {
    EnvFilter::builder()
        .parse(filter)
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber with `filter` (already validated by
/// [`crate::config::log_filter`]); `explicit` when the operator chose it.
pub fn init(filter: &str, explicit: bool) -> Logging {
    let startup = if explicit {
        filter.to_string()
    } else {
        format!("{filter},{QUIET_STORES}")
    };
    let (layer, handle) = reload::Layer::new(parse(&startup));
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init()
        .is_ok();
    Logging {
        handle: installed.then_some(handle),
        filter: filter.to_string(),
    }
}

impl Logging {
    /// Restores the configured filter once the database is open.
    pub fn database_opened(&self) {
        if let Some(handle) = &self.handle {
            if let Err(e) = handle.reload(parse(&self.filter)) {
                tracing::warn!(error = %e, "cannot restore the log filter");
            }
        }
    }
}
