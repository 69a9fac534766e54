//! Records synced from vendors, as connectors deliver them (`New*`) and as the
//! store returns them (with id, workspace, timestamps and resolved references).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::stage::StageCategory;

/// A reference to a record of some source, e.g. a Salesforce opportunity linked from a Gong call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceRef {
    /// Source (connector id) of the referenced record.
    pub source: String,
    /// The vendor's id of the referenced record.
    pub source_id: String,
}

/// A rep or other CRM user, with manager and team for rollups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUser {
    /// The vendor's id.
    pub source_id: String,
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Job title or role.
    pub title: Option<String>,
    /// Vendor id of the user's manager.
    pub manager_source_id: Option<String>,
    /// Team name.
    pub team: Option<String>,
    /// Whether the user is active in the vendor.
    pub active: bool,
    /// Vendor-specific extra properties.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: serde_json::Value,
}

/// A company.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewAccount {
    /// The vendor's id.
    pub source_id: String,
    /// Company name.
    pub name: Option<String>,
    /// Web domain.
    pub domain: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Vendor id of the owning user.
    pub owner_source_id: Option<String>,
    /// Created in the vendor.
    pub source_created_at: Option<DateTime<Utc>>,
    /// Last modified in the vendor.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// Vendor-specific extra properties.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: serde_json::Value,
}

/// A person at a customer or prospect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewContact {
    /// The vendor's id.
    pub source_id: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Vendor id of the contact's account.
    pub account_source_id: Option<String>,
    /// Created in the vendor.
    pub source_created_at: Option<DateTime<Utc>>,
    /// Last modified in the vendor.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// Vendor-specific extra properties.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: serde_json::Value,
}

/// An opportunity in a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewDeal {
    /// The vendor's id.
    pub source_id: String,
    /// Deal name.
    pub name: String,
    /// Amount (at most 4 decimal places are kept).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "12500.00"))]
    pub amount: Option<Decimal>,
    /// ISO 4217 currency code.
    pub currency: Option<String>,
    /// Pipeline id.
    pub pipeline: Option<String>,
    /// Stage id within the pipeline.
    pub stage: Option<String>,
    /// Stage display label.
    pub stage_label: Option<String>,
    /// Normalized stage category.
    pub stage_category: StageCategory,
    /// Display order of the stage within its pipeline.
    pub stage_order: Option<i32>,
    /// Win probability, 0–1.
    pub probability: Option<f64>,
    /// Vendor forecast category (e.g. `"commit"`).
    pub forecast_category: Option<String>,
    /// Vendor id of the owning user.
    pub owner_source_id: Option<String>,
    /// Vendor id of the deal's account.
    pub account_source_id: Option<String>,
    /// Expected or actual close date.
    pub close_date: Option<NaiveDate>,
    /// Created in the vendor.
    pub source_created_at: Option<DateTime<Utc>>,
    /// Last modified in the vendor.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// Vendor-specific extra properties.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: serde_json::Value,
}

/// A contact's role on a deal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewDealContact {
    /// Vendor id of the deal.
    pub deal_source_id: String,
    /// Vendor id of the contact.
    pub contact_source_id: String,
    /// Role, e.g. `"decision_maker"`.
    pub role: Option<String>,
    /// Whether this is the deal's primary contact.
    pub is_primary: bool,
}

/// A participant of a [`NewConversation`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Participant {
    /// Name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Whether the participant belongs to the workspace's company.
    pub internal: Option<bool>,
}

/// A recorded call or meeting (Gong, Fireflies).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewConversation {
    /// The vendor's id.
    pub source_id: String,
    /// Title.
    pub title: Option<String>,
    /// Start time.
    pub started_at: Option<DateTime<Utc>>,
    /// Duration in seconds.
    pub duration_seconds: Option<i64>,
    /// Participants.
    pub participants: Vec<Participant>,
    /// Deals the conversation is linked to.
    pub deal_refs: Vec<SourceRef>,
    /// Accounts the conversation is linked to.
    pub account_refs: Vec<SourceRef>,
    /// Link to the recording.
    pub url: Option<String>,
    /// Vendor-specific extra properties.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: serde_json::Value,
}

/// A task or work item (Monday).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTask {
    /// The vendor's id.
    pub source_id: String,
    /// Title.
    pub title: Option<String>,
    /// Status label.
    pub status: Option<String>,
    /// Assignee's email.
    pub assignee_email: Option<String>,
    /// Due date.
    pub due_date: Option<NaiveDate>,
    /// Deals the task is linked to.
    pub deal_refs: Vec<SourceRef>,
    /// Link to the item.
    pub url: Option<String>,
    /// Last modified in the vendor.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// Vendor-specific extra properties.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: serde_json::Value,
}

/// A file (Google Drive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewDocument {
    /// The vendor's id.
    pub source_id: String,
    /// Title.
    pub title: Option<String>,
    /// MIME type.
    pub mime_type: Option<String>,
    /// Link to the file.
    pub url: Option<String>,
    /// Owner's email.
    pub owner_email: Option<String>,
    /// Deals the document is linked to.
    pub deal_refs: Vec<SourceRef>,
    /// Last modified in the vendor.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// Vendor-specific extra properties.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: serde_json::Value,
}

macro_rules! stored_record {
    ($(#[$doc:meta])* $name:ident($new:ident) { $($(#[$fdoc:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name {
            /// Pandora's id of the record.
            pub id: Uuid,
            /// Owning workspace.
            pub workspace_id: Uuid,
            /// Source (connector id) the record came from.
            pub source: String,
            /// The record's fields as the source delivered them.
            #[serde(flatten)]
            pub fields: $new,
            $($(#[$fdoc])* pub $field: $ty,)*
            /// When Pandora first stored the record.
            pub created_at: DateTime<Utc>,
            /// When Pandora last changed the record.
            pub updated_at: DateTime<Utc>,
            /// When the source reported the record deleted.
            pub deleted_at: Option<DateTime<Utc>>,
        }
    };
}

stored_record!(
    /// A stored [`NewUser`], with its manager resolved.
    User(NewUser) {
        /// Pandora id of the user's manager, when synced.
        manager_id: Option<Uuid>,
    }
);
stored_record!(
    /// A stored [`NewAccount`].
    Account(NewAccount) {}
);
stored_record!(
    /// A stored [`NewContact`], with its account resolved.
    Contact(NewContact) {
        /// Pandora id of the contact's account, when synced.
        account_id: Option<Uuid>,
    }
);
stored_record!(
    /// A stored [`NewDeal`], with owner and account resolved.
    Deal(NewDeal) {
        /// Pandora id of the owning user, when synced.
        owner_id: Option<Uuid>,
        /// Pandora id of the deal's account, when synced.
        account_id: Option<Uuid>,
        /// The deal's computed fields (age, days in stage, velocity, risk
        /// score and reasons; see [`crate::computed`]) as stored with it:
        /// recomputed whenever the deal or its history changes, at the time
        /// of that sync or ingest (`computed_at`). `None` until first
        /// computed (e.g. a deal written straight to a store).
        computed: Option<crate::computed::ComputedFields>,
    }
);
stored_record!(
    /// A stored [`NewDealContact`].
    DealContact(NewDealContact) {}
);
stored_record!(
    /// A stored [`NewConversation`].
    Conversation(NewConversation) {}
);
stored_record!(
    /// A stored [`NewTask`].
    Task(NewTask) {}
);
stored_record!(
    /// A stored [`NewDocument`].
    Document(NewDocument) {}
);
