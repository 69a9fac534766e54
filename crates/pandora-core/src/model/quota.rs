//! Quotas: the amount a user is expected to close in a period.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A quota as a client sets it: `amount` for `user_id` in `period`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewQuota {
    /// Pandora id of the user (see the workspace's users).
    pub user_id: Uuid,
    /// Period label, e.g. `2026-Q2` or `2026-05` (stored in its canonical form).
    pub period: String,
    /// Amount (at most 4 decimal places are kept).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "300000.00"))]
    pub amount: Decimal,
    /// ISO 4217 currency code, when known.
    #[serde(default)]
    pub currency: Option<String>,
}

/// A stored quota: at most one per `(workspace, user, period)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quota {
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Pandora id of the user.
    pub user_id: Uuid,
    /// Canonical period label.
    pub period: String,
    /// Amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "300000.00"))]
    pub amount: Decimal,
    /// ISO 4217 currency code, when known.
    pub currency: Option<String>,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}
