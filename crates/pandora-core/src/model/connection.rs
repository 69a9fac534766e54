use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Lifecycle state of a [`Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Credentials stored and working.
    Active,
    /// The vendor rejected the credentials; a user must reconnect.
    NeedsReauth,
    /// Last sync failed.
    Error,
    /// Credentials removed.
    Disconnected,
}

impl ConnectionStatus {
    /// The stable string stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::NeedsReauth => "needs_reauth",
            ConnectionStatus::Error => "error",
            ConnectionStatus::Disconnected => "disconnected",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => ConnectionStatus::Active,
            "needs_reauth" => ConnectionStatus::NeedsReauth,
            "error" => ConnectionStatus::Error,
            "disconnected" => ConnectionStatus::Disconnected,
            _ => return None,
        })
    }
}

/// Credentials as they rest in the store (sealed by the vault, or legacy plaintext).
///
/// Its `Debug` never prints the content.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredentials(pub String);

impl fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredCredentials([redacted])")
    }
}

/// One workspace's link to one connector (at most one per workspace and connector).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Connection {
    /// Connection id.
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Connector id, e.g. `"hubspot"`.
    pub connector: String,
    /// Lifecycle state.
    pub status: ConnectionStatus,
    /// Stored credentials; never serialized.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub credentials: Option<StoredCredentials>,
    /// Connector configuration (non-secret).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: serde_json::Value,
    /// End of the last successful sync.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Last error message, if the last sync failed.
    pub last_error: Option<String>,
    /// When the connection was created.
    pub created_at: DateTime<Utc>,
    /// When the connection was last changed.
    pub updated_at: DateTime<Utc>,
}

/// What is needed to create or replace a [`Connection`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewConnection {
    /// Connector id.
    pub connector: String,
    /// Initial status.
    pub status: ConnectionStatus,
    /// Credentials, already sealed.
    pub credentials: Option<StoredCredentials>,
    /// Connector configuration.
    pub config: serde_json::Value,
}

/// A per-stream sync cursor, stored in the same transaction as the page it follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Connection the cursor belongs to.
    pub connection_id: Uuid,
    /// Stream name, e.g. `"deals"`.
    pub stream: String,
    /// Connector-defined cursor value.
    pub cursor: serde_json::Value,
}
