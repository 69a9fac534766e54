//! Builders shared by the conformance tests.

use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::batch::RecordBatch;
use crate::model::{self, NewDeal, StageCategory, Workspace, WorkspaceId};
use crate::store::Store;

/// The store handle every conformance test receives.
pub type StoreRef = Arc<dyn Store>;

/// Creates a workspace named `name` directly in the store.
pub async fn new_workspace(store: &StoreRef, name: &str) -> WorkspaceId {
    let now = model::now();
    let ws = Workspace {
        id: model::new_id(),
        name: name.to_string(),
        settings: serde_json::json!({}),
        created_at: now,
        updated_at: now,
    };
    store.create_workspace(&ws).await.expect("create workspace");
    ws.id
}

/// An open deal with a name, an amount and a close date.
pub fn deal(source_id: &str, amount: Option<i64>, close: Option<(i32, u32, u32)>) -> NewDeal {
    NewDeal {
        source_id: source_id.to_string(),
        name: format!("Deal {source_id}"),
        amount: amount.map(Decimal::from),
        currency: Some("USD".into()),
        pipeline: Some("default".into()),
        stage: Some("qualified".into()),
        stage_label: Some("Qualified".into()),
        stage_category: StageCategory::Open,
        stage_order: Some(1),
        probability: Some(0.2),
        close_date: close.map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("valid date")),
        properties: serde_json::json!({"hs_priority": "high"}),
        ..Default::default()
    }
}

/// A batch of `deals` from the `test` source.
pub fn deals_batch(deals: Vec<NewDeal>) -> RecordBatch {
    RecordBatch {
        deals,
        ..RecordBatch::new("test")
    }
}

/// Writes a batch, panicking with the error if it fails.
pub async fn write(
    store: &StoreRef,
    ws: WorkspaceId,
    batch: &RecordBatch,
) -> crate::batch::BatchOutcome {
    let prepared = batch.prepare().expect("valid batch");
    store
        .write_batch(ws, &prepared, None)
        .await
        .expect("write batch")
}
