//! The domain model: workspaces, connections, the records synced from vendors,
//! the deal field history, and run records.
//!
//! Every tenant-owned entity carries its `workspace_id`; records from a source
//! are identified by `(workspace_id, source, source_id)`.

mod connection;
mod history;
mod jobs;
mod quota;
mod records;
mod runs;
mod schedule;
mod stage;
mod webhook;
mod workspace;

pub use connection::{Checkpoint, Connection, ConnectionStatus, NewConnection, StoredCredentials};
pub use history::{deal_as_of, ChangeOrigin, DealChange, DealField, DealSnapshot, NewDealChange};
pub use jobs::{Job, JobKind, NewJob};
pub use quota::{NewQuota, Quota};
pub use records::{
    Account, Contact, Conversation, Deal, DealContact, Document, NewAccount, NewContact,
    NewConversation, NewDeal, NewDealContact, NewDocument, NewTask, NewUser, Participant,
    SourceRef, Task, User,
};
pub use runs::{RunStatus, SkillRun, StreamCounts, SyncMode, SyncRun};
pub use schedule::SkillScheduleOverride;
pub use stage::{NewPipelineStage, PipelineStage, StageCategory};
pub use webhook::{
    diff_alerts, plan_deliveries, Alert, AlertOutcome, AlertSet, DeliveryRequest, DeliveryStatus,
    NewWebhook, PlannedDelivery, RaisedAlert, Webhook, WebhookDelivery, WebhookEvent,
};
pub use workspace::{ApiKey, NewApiKey, NewWorkspace, Workspace, WorkspacePatch};

/// Identifier of a [`Workspace`].
pub type WorkspaceId = uuid::Uuid;

/// A fresh time-ordered (v7) identifier, as every Pandora row uses.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The current time truncated to microseconds, the precision both stores keep.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    truncate_micros(chrono::Utc::now())
}

/// `t` truncated to whole microseconds.
pub fn truncate_micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
