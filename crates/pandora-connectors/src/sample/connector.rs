//! The `sample` connector: the generator behind the [`Connector`] trait.
//!
//! One stream, `sample`, whose cursor is `{"epoch": E, "phase": "full" |
//! "changes", "page": K, "start": T}` while a run is under way and `{"epoch":
//! E, "done": true, "start": T}` when the dataset at epoch E is fully stored.
//! A full sync writes the dataset at epoch 0 (or at the stored epoch, so a
//! forced full re-run changes nothing); every incremental sync advances the
//! simulated clock one day and writes what changed — but never past the
//! run's own time: the simulated world does not run ahead of the real one.
//! An interrupted run resumes after its last stored page.
//!
//! Epoch 0 is at midnight UTC of the config's `start` day, else of the day of
//! the connection's first sync (kept in the cursor as `start`, Unix seconds),
//! so that a freshly connected dataset looks current: its open deals close in
//! the coming months, not in the past.

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

/// The built-in demo and benchmark source (no credentials; config `{"deals": N, "seed": S}`,
/// optionally `"start": "YYYY-MM-DD"`).
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
    /// Epoch 0's time (Unix seconds), fixed by the first sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<i64>,
}

impl Cursor {
    fn at(epoch: u32, phase: Phase, page: u64, start: i64) -> Self {
        Cursor {
            epoch,
            phase: Some(phase),
            page: Some(page),
            done: false,
            start: Some(start),
        }
    }

    fn done(epoch: u32, start: i64) -> Self {
        Cursor {
            epoch,
            phase: None,
            page: None,
            done: true,
            start: Some(start),
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

fn stored_cursor(ctx: &SyncContext) -> Option<Cursor> {
    ctx.cursors
        .get(STREAM)
        .and_then(|c| serde_json::from_value(c.clone()).ok())
}

/// The generator of this connection: its config, with epoch 0 on the
/// config's `start` day, else on the stored anchor, else on the run's day.
fn generator(ctx: &SyncContext, stored: Option<&Cursor>) -> Result<SampleGenerator> {
    let config = SampleConfig::from_json(&ctx.check.config)?;
    let anchor = stored
        .and_then(|c| c.start)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or(ctx.started_at);
    let clock = config.clock(anchor)?;
    Ok(SampleGenerator::new(config)?.with_clock(clock))
}

fn plan(ctx: &SyncContext, stored: Option<Cursor>, generator: &SampleGenerator) -> Plan {
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
                ..
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
        // Incremental: one step of the clock, unless it would pass the run's time.
        (pandora_core::model::SyncMode::Incremental, Some(c)) => {
            if generator.time_at(c.epoch.saturating_add(1)) > ctx.started_at {
                Plan {
                    phase: Phase::Changes,
                    epoch: c.epoch,
                    from: u64::MAX,
                    done_epoch: c.epoch,
                }
            } else {
                Plan {
                    phase: Phase::Changes,
                    epoch: c.epoch,
                    from: 0,
                    done_epoch: c.epoch + 1,
                }
            }
        }
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
        let stored = stored_cursor(ctx);
        let generator = generator(ctx, stored.as_ref())?;
        let start = generator.time_at(0).timestamp();
        let plan = plan(ctx, stored, &generator);
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
                Cursor::done(plan.done_epoch, start)
            } else {
                Cursor::at(plan.epoch, plan.phase, k, start)
            };
            sink.push(page, Some(cursor.checkpoint())).await?;
        }
        if plan.from >= pages {
            // Nothing left to write (e.g. an empty step): still record completion.
            sink.push(
                pandora_core::batch::RecordBatch::new(SOURCE),
                Some(Cursor::done(plan.done_epoch, start).checkpoint()),
            )
            .await?;
        }
        Ok(())
    }
}
