//! The `Connector` trait: how a vendor's data gets into Pandora.
//!
//! A connector describes itself ([`ConnectorInfo`]), checks credentials
//! ([`Connector::check`]) and syncs ([`Connector::sync`]): given a
//! [`SyncContext`] (opened credentials, configuration, the mode, and the
//! cursors stored by earlier runs) it pushes pages of normalized records, each
//! with the checkpoint that follows it, into a [`RecordSink`]. It never
//! touches the store: the sync engine ([`crate::sync`]) writes each page and
//! its checkpoint in one transaction, so a crash resumes from the last page
//! with nothing lost and nothing doubled.

mod cursor;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use cursor::TimeIdCursor;

use crate::auth::SecretToken;
use crate::batch::{RecordBatch, RecordKind};
use crate::error::Result;
use crate::model::SyncMode;
use crate::vault::Credentials;

/// How a connector authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// No credentials (e.g. the built-in `sample` connector).
    None,
    /// `{"api_key": …}`.
    ApiKey,
    /// `{"username": …, "password": …}`.
    Basic,
    /// `{"access_token": …, "refresh_token": …}`, refreshed through a [`TokenSource`].
    /// On the wire: `"oauth2"`.
    #[serde(rename = "oauth2")]
    OAuth2,
}

/// One stream a connector yields (e.g. `"deals"`), with its own cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamInfo {
    /// Stream name, the key of its checkpoint.
    pub name: &'static str,
    /// Record kinds the stream delivers.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub kinds: Vec<RecordKind>,
    /// Whether the stream can resume from a cursor (else every run reads it whole).
    pub incremental: bool,
}

/// What a connector is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorInfo {
    /// Stable id, e.g. `"hubspot"`; also the `source` of its records.
    pub id: &'static str,
    /// Display name.
    pub display_name: &'static str,
    /// How it authenticates.
    pub auth: AuthKind,
    /// The streams it yields, in the order it syncs them.
    pub streams: Vec<StreamInfo>,
}

/// A connector's answer to a health or credential check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckOutcome {
    /// Whether the vendor accepted the credentials and answered.
    pub ok: bool,
    /// The vendor's reason when not ok, or a short note (never a secret).
    pub detail: Option<String>,
}

/// Hands out OAuth access tokens, refreshing them when they expire. The
/// connector never sees refresh tokens or the vault.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A valid access token (refreshed first when it is about to expire).
    async fn access_token(&self) -> Result<SecretToken>;
    /// The vendor rejected `stale` as expired: refresh (once, shared by every
    /// caller) and return the new token.
    async fn refresh(&self, stale: &SecretToken) -> Result<SecretToken>;
}

/// Everything a connector may use to check credentials.
#[derive(Clone)]
pub struct CheckContext {
    /// The workspace.
    pub workspace_id: Uuid,
    /// Connector configuration (non-secret).
    pub config: serde_json::Value,
    /// Opened credentials, when the connector takes any.
    pub credentials: Option<Credentials>,
    /// OAuth token source, for OAuth connectors.
    pub tokens: Option<Arc<dyn TokenSource>>,
}

impl std::fmt::Debug for CheckContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckContext")
            .field("workspace_id", &self.workspace_id)
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Everything a connector may use during a sync.
#[derive(Debug, Clone)]
pub struct SyncContext {
    /// Credentials, configuration and token source.
    pub check: CheckContext,
    /// The connection being synced.
    pub connection_id: Uuid,
    /// Full (ignore cursors) or incremental (resume from them).
    pub mode: SyncMode,
    /// Cursors stored by earlier runs, by stream.
    pub cursors: BTreeMap<String, serde_json::Value>,
    /// When the run started (connectors use it, not the clock, to bound their reads).
    pub started_at: DateTime<Utc>,
}

impl SyncContext {
    /// The stored cursor of `stream`, in an incremental run.
    pub fn cursor(&self, stream: &str) -> Option<&serde_json::Value> {
        match self.mode {
            SyncMode::Full => None,
            SyncMode::Incremental => self.cursors.get(stream),
        }
    }
}

/// Where a connector pushes its pages.
#[async_trait]
pub trait RecordSink: Send {
    /// Stores `page` and, when given, the cursor of `stream` that follows it,
    /// atomically. An error means nothing of this page was stored: the
    /// connector must stop and return it.
    async fn push(&mut self, page: RecordBatch, checkpoint: Option<StreamCheckpoint>)
        -> Result<()>;

    /// Soft-deletes every live record of `kind` from this source whose
    /// vendor id is not in `live` — the vendor's complete list of ids, for
    /// when its deletion log no longer reaches back to the last sync — then
    /// stores `checkpoint`. Returns how many records it deleted. Deletions
    /// are written in pages; the checkpoint comes with the last one, so a
    /// run that fails midway reconciles again next time.
    ///
    /// The default refuses: a sink that keeps no records cannot tell which
    /// ones are gone.
    async fn reconcile(
        &mut self,
        kind: RecordKind,
        live: &HashSet<String>,
        checkpoint: Option<StreamCheckpoint>,
    ) -> Result<u64> {
        let _ = (live, checkpoint);
        Err(crate::Error::unavailable(format!(
            "this sink cannot reconcile {} ids: it keeps no records",
            kind.table()
        )))
    }
}

/// The cursor of one stream after a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamCheckpoint {
    /// Stream name.
    pub stream: String,
    /// Connector-defined cursor.
    pub cursor: serde_json::Value,
}

/// A source of GTM data.
#[async_trait]
pub trait Connector: Send + Sync {
    /// What the connector is.
    fn info(&self) -> ConnectorInfo;

    /// Checks credentials and configuration against the vendor (on connect and in health).
    async fn check(&self, ctx: &CheckContext) -> Result<CheckOutcome>;

    /// Pushes every page of the sync into `sink`, in stream order, each with
    /// the checkpoint that follows it.
    async fn sync(&self, ctx: &SyncContext, sink: &mut dyn RecordSink) -> Result<()>;

    /// The vendor's OAuth 2.0 flow, for connectors whose auth kind is
    /// [`AuthKind::OAuth2`] (`None` for the others).
    fn oauth(&self) -> Option<Arc<dyn crate::oauth::OAuthProvider>> {
        None
    }
}

/// The connectors a deployment knows, by id.
#[derive(Clone, Default)]
pub struct ConnectorRegistry {
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
}

impl std::fmt::Debug for ConnectorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.connectors.keys()).finish()
    }
}

impl ConnectorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a connector under its id.
    pub fn with(mut self, connector: impl Connector + 'static) -> Self {
        let id = connector.info().id;
        self.connectors.insert(id, Arc::new(connector));
        self
    }

    /// The connector with this id.
    pub fn get(&self, id: &str) -> Result<Arc<dyn Connector>> {
        self.connectors.get(id).cloned().ok_or_else(|| {
            crate::Error::not_found(
                "connector",
                format!("{id} (known: {})", self.ids().join(", ")),
            )
        })
    }

    /// Every connector id, sorted.
    pub fn ids(&self) -> Vec<&'static str> {
        self.connectors.keys().copied().collect()
    }

    /// Every connector's description, by id.
    pub fn infos(&self) -> Vec<ConnectorInfo> {
        self.connectors.values().map(|c| c.info()).collect()
    }
}
