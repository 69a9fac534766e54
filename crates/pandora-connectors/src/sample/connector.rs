//! The `sample` connector: the generator behind the [`Connector`] trait.
//!
//! One stream, `sample`, whose cursor is `{"epoch": E, "phase": "full" |
//! "changes", "page": K}` while a run is under way and `{"epoch": E, "done":
//! true}` when the dataset at epoch E is fully stored. A full sync writes the
//! dataset at epoch 0 (or at the stored epoch, so a forced full re-run
//! changes nothing); every incremental sync advances the simulated clock one
//! step and writes what changed. An interrupted run resumes after its last
//! stored page.

use async_trait::async_trait;
use pandora_core::batch::RecordKind;
use pandora_core::connector::{
    AuthKind, CheckContext, CheckOutcome, Connector, ConnectorInfo, RecordSink, StreamCheckpoint,
    StreamInfo, SyncContext,
};
use pandora_core::Result;
use serde::{Deserialize, Serialize};

use super::{SampleConfig, SampleGenerator, SOURCE};

/// The only stream of the sample connector.
pub const STREAM: &str = "sample";

/// The built-in demo and benchmark source (no credentials; config `{"deals": N, "seed": S}`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SampleConnector;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Full,
    Changes,
}

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    epoch: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u64>,
    #[serde(default)]
    done: bool,
}

impl Cursor {
    fn at(epoch: u32, phase: Phase, page: u64) -> Self {
        Cursor {
            epoch,
            phase: Some(phase),
            page: Some(page),
            done: false,
        }
    }

    fn done(epoch: u32) -> Self {
        Cursor {
            epoch,
            phase: None,
            page: None,
            done: true,
        }
    }

    fn checkpoint(self) -> StreamCheckpoint {
        StreamCheckpoint {
            stream: STREAM.into(),
            cursor: serde_json::to_value(self).unwrap_or_default(),
        }
    }
}

/// What a run does: write `phase` pages of `epoch` from page `from`, then mark `done_epoch` complete.
struct Plan {
    phase: Phase,
    epoch: u32,
    from: u64,
    done_epoch: u32,
}

fn plan(ctx: &SyncContext) -> Plan {
    let stored: Option<Cursor> = ctx
        .cursors
        .get(STREAM)
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let full = |epoch| Plan {
        phase: Phase::Full,
        epoch,
        from: 0,
        done_epoch: epoch,
    };
    match (ctx.mode, stored) {
        // Nothing stored yet: the dataset at epoch 0.
        (_, None) => full(0),
        // An interrupted run of either kind resumes after its last page.
        (
            _,
            Some(Cursor {
                epoch,
                phase: Some(phase),
                page: Some(page),
                done: false,
            }),
        ) => Plan {
            phase,
            epoch,
            from: page + 1,
            done_epoch: if phase == Phase::Full {
                epoch
            } else {
                epoch + 1
            },
        },
        // A forced full sync re-reads the stored epoch.
        (pandora_core::model::SyncMode::Full, Some(c)) => full(c.epoch),
        // Incremental: one step of the clock.
        (pandora_core::model::SyncMode::Incremental, Some(c)) => Plan {
            phase: Phase::Changes,
            epoch: c.epoch,
            from: 0,
            done_epoch: c.epoch + 1,
        },
    }
}

#[async_trait]
impl Connector for SampleConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: SOURCE,
            display_name: "Sample data",
            auth: AuthKind::None,
            streams: vec![StreamInfo {
                name: STREAM,
                kinds: RecordKind::ALL.to_vec(),
                incremental: true,
            }],
        }
    }

    async fn check(&self, ctx: &CheckContext) -> Result<CheckOutcome> {
        SampleConfig::from_json(&ctx.config)?;
        Ok(CheckOutcome {
            ok: true,
            detail: None,
        })
    }

    async fn sync(&self, ctx: &SyncContext, sink: &mut dyn RecordSink) -> Result<()> {
        let generator = SampleGenerator::new(SampleConfig::from_json(&ctx.check.config)?)?;
        let plan = plan(ctx);
        let pages = match plan.phase {
            Phase::Full => generator.full_page_count(plan.epoch),
            Phase::Changes => generator.change_page_count(plan.epoch),
        };
        for k in plan.from..pages {
            let page = match plan.phase {
                Phase::Full => generator.full_page(plan.epoch, k),
                Phase::Changes => generator.change_page(plan.epoch, k),
            };
            let Some(page) = page else { break };
            let last = k + 1 == pages;
            let cursor = if last {
                Cursor::done(plan.done_epoch)
            } else {
                Cursor::at(plan.epoch, plan.phase, k)
            };
            sink.push(page, Some(cursor.checkpoint())).await?;
        }
        if plan.from >= pages {
            // Nothing left to write (e.g. an empty step): still record completion.
            sink.push(
                pandora_core::batch::RecordBatch::new(SOURCE),
                Some(Cursor::done(plan.done_epoch).checkpoint()),
            )
            .await?;
        }
        Ok(())
    }
}
