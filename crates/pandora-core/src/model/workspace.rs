use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant: one revenue team's data, connections and API keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workspace {
    /// Workspace id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Free-form settings (skill settings, schedules, …).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    /// When the workspace was created.
    pub created_at: DateTime<Utc>,
    /// When the workspace was last changed.
    pub updated_at: DateTime<Utc>,
}

/// What is needed to create a [`Workspace`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// Display name (1–200 characters).
    pub name: String,
    /// Optional settings object.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<serde_json::Value>,
}

/// A partial update of a [`Workspace`]; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatch {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New settings object (replaces the old one).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<serde_json::Value>,
}

/// A workspace-scoped API key as stored: its hash, never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Key id.
    pub id: Uuid,
    /// Workspace the key grants access to.
    pub workspace_id: Uuid,
    /// Human label.
    pub name: String,
    /// First characters of the key, to recognise it (not enough to use it).
    pub prefix: String,
    /// SHA-256 of the key.
    #[serde(skip)]
    pub hash: Vec<u8>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
}

/// What is needed to create an [`ApiKey`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// Human label (1–200 characters); defaults to `"default"`.
    #[serde(default)]
    pub name: Option<String>,
}
