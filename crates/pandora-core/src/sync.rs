//! The sync engine: runs a connector and writes what it pushes.
//!
//! Each page the connector pushes is validated, completed with the field
//! history the vendor did not give (a deal whose stage, amount, close date,
//! forecast category or owner differs from what is stored gets an *observed*
//! change at its vendor modification time), then written with its checkpoint
//! in one transaction
//! ([`RecordStore::write_batch`](crate::store::RecordStore::write_batch)),
//! together with the [computed fields](crate::computed) of the page's deals,
//! computed at the run's start from their stored history plus the page's
//! changes (see [`recompute::attach_computed`]). A failure at page k leaves pages before
//! k and their checkpoints stored, so the next run resumes there; replaying
//! a page changes nothing.
//!
//! A connector whose vendor cannot say what was deleted since its last sync
//! hands the engine the complete list of the vendor's ids instead
//! ([`RecordSink::reconcile`]): the live records of that kind from the
//! source whose ids are not in it are soft-deleted.
//!
//! A run that succeeds then refreshes the workspace's won-deal baseline when
//! [`recompute::baseline_is_due`]: after every full sync, and after any sync
//! when the cached baseline is missing or a day old.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;

use crate::batch::{Deletion, PreparedBatch, RecordBatch, RecordKind};
use crate::connector::{Connector, RecordSink, StreamCheckpoint, SyncContext};
use crate::error::{Error, Result};
use crate::model::{self, ChangeOrigin, Checkpoint, Deal, DealField, NewDealChange, StreamCounts};
use crate::query::{DealFilter, PageRequest, MAX_LIMIT};
use crate::recompute::{self, ComputeContext};
use crate::store::Store;

/// What a sync did so far (or in all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Write counts per record table (`"deals"`, `"contacts"`, …).
    pub counts: BTreeMap<String, StreamCounts>,
    /// Pages written.
    pub pages: u64,
    /// Field-history rows the engine observed (the vendor gave none).
    pub observed_changes: u64,
    /// Field-history rows stored (vendor and observed).
    pub changes_inserted: u64,
    /// Deals whose computed fields were computed with their page (the store
    /// wrote them for those the page changed).
    pub deals_computed: u64,
    /// Whether the run refreshed the workspace's won-deal baseline at its end.
    pub baseline_refreshed: bool,
}

impl SyncOutcome {
    /// Records written (inserted, updated, unchanged and deleted), over every table.
    pub fn records(&self) -> u64 {
        self.counts
            .values()
            .map(|c| c.inserted + c.updated + c.unchanged + c.deleted)
            .sum()
    }
}

/// Called after every page with the outcome so far.
pub type SyncProgress<'a> = &'a (dyn Fn(&SyncOutcome) + Send + Sync);

struct EngineSink<'a> {
    store: &'a dyn Store,
    ctx: &'a SyncContext,
    source: &'static str,
    outcome: SyncOutcome,
    progress: SyncProgress<'a>,
    /// The stage catalog and baseline, read at the first page with deals
    /// and kept up to date with the pages' stages.
    compute: Option<ComputeContext>,
}

/// Observed changes for the deals of `page` whose tracked fields differ from
/// what is stored (`stored`, by source id) and for which the page carries no
/// vendor change.
fn observe_changes(page: &PreparedBatch, stored: &HashMap<String, Deal>) -> Vec<NewDealChange> {
    let reported: HashSet<(&str, DealField)> = page
        .deal_changes
        .iter()
        .map(|c| (c.deal_source_id.as_str(), c.field))
        .collect();
    let mut observed = Vec::new();
    for deal in page.deals.iter().map(|p| &p.record) {
        let Some(before) = stored.get(&deal.source_id) else {
            continue;
        };
        for field in DealField::ALL {
            if reported.contains(&(deal.source_id.as_str(), field)) {
                continue;
            }
            let (old, new) = (field.value_of(&before.fields), field.value_of(deal));
            if old != new {
                observed.push(NewDealChange {
                    deal_source_id: deal.source_id.clone(),
                    field,
                    old_value: old,
                    new_value: new,
                    changed_at: deal.source_updated_at.unwrap_or_else(model::now),
                    origin: ChangeOrigin::Observed,
                });
            }
        }
    }
    observed
}

#[async_trait]
impl RecordSink for EngineSink<'_> {
    async fn push(
        &mut self,
        mut page: RecordBatch,
        checkpoint: Option<StreamCheckpoint>,
    ) -> Result<()> {
        if page.source.is_empty() {
            page.source = self.source.to_string();
        }
        if page.source != self.source {
            return Err(Error::invalid(
                "source",
                format!(
                    "a {} page may only hold {} records, not {}",
                    self.source, self.source, page.source
                ),
            ));
        }
        let workspace = self.ctx.check.workspace_id;
        let mut prepared = page.prepare()?;
        let stored = recompute::stored_deals(self.store, workspace, &prepared).await?;
        let observed = observe_changes(&prepared, &stored);
        let observed_n = observed.len() as u64;
        prepared.deal_changes.extend(observed);
        let mut computed_n = 0;
        if !prepared.deals.is_empty() || !prepared.deal_changes.is_empty() {
            let compute = match &mut self.compute {
                Some(c) => c,
                None => self.compute.insert(
                    ComputeContext::load(self.store, workspace, self.ctx.started_at).await?,
                ),
            };
            compute.merge_stages(workspace, &prepared);
            computed_n =
                recompute::attach_computed(self.store, workspace, &mut prepared, &stored, compute)
                    .await?;
        } else if let Some(compute) = &mut self.compute {
            compute.merge_stages(workspace, &prepared);
        }
        let checkpoint = checkpoint.map(|c| Checkpoint {
            connection_id: self.ctx.connection_id,
            stream: c.stream,
            cursor: c.cursor,
        });
        let written = self
            .store
            .write_batch(workspace, &prepared, checkpoint.as_ref())
            .await?;
        for (kind, counts) in written.counts {
            self.outcome
                .counts
                .entry(kind.table().to_string())
                .or_default()
                .add(counts);
        }
        self.outcome.pages += 1;
        self.outcome.observed_changes += observed_n;
        self.outcome.deals_computed += computed_n;
        self.outcome.changes_inserted += written.changes_inserted;
        (self.progress)(&self.outcome);
        Ok(())
    }

    async fn reconcile(
        &mut self,
        kind: RecordKind,
        live: &HashSet<String>,
        checkpoint: Option<StreamCheckpoint>,
    ) -> Result<u64> {
        let stored =
            stored_source_ids(self.store, self.ctx.check.workspace_id, self.source, kind).await?;
        let gone: Vec<Deletion> = stored
            .into_iter()
            .filter(|id| !live.contains(id))
            .map(|source_id| Deletion { kind, source_id })
            .collect();
        let deleted = gone.len() as u64;
        tracing::info!(
            connection_id = %self.ctx.connection_id,
            kind = kind.table(),
            vendor_ids = live.len(),
            deleted,
            "reconciled stored ids with the vendor's"
        );
        let mut pages: Vec<Vec<Deletion>> = gone
            .chunks(RECONCILE_PAGE)
            .map(<[Deletion]>::to_vec)
            .collect();
        let last = pages.pop().unwrap_or_default();
        for deletions in pages {
            let page = RecordBatch {
                deletions,
                ..RecordBatch::new(self.source)
            };
            self.push(page, None).await?;
        }
        let page = RecordBatch {
            deletions: last,
            ..RecordBatch::new(self.source)
        };
        self.push(page, checkpoint).await?;
        Ok(deleted)
    }
}

/// Deletions per page written by a reconciliation.
const RECONCILE_PAGE: usize = 500;

/// The vendor ids of the live records of `kind` from `source` (pipeline
/// stages: `pipeline/stage`), read page by page through the store's lists.
async fn stored_source_ids(
    store: &dyn Store,
    workspace: uuid::Uuid,
    source: &str,
    kind: RecordKind,
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(MAX_LIMIT);
    macro_rules! collect_pages {
        ($list:expr) => {
            loop {
                let rows = $list(&page).await?;
                ids.extend(
                    rows.data
                        .iter()
                        .filter(|r| r.source == source)
                        .map(|r| r.fields.source_id.clone()),
                );
                match rows.next_cursor {
                    Some(c) => page = page.next(c),
                    None => break,
                }
            }
        };
    }
    match kind {
        RecordKind::User => collect_pages!(|p| store.list_users(workspace, p)),
        RecordKind::Account => collect_pages!(|p| store.list_accounts(workspace, p)),
        RecordKind::Contact => collect_pages!(|p| store.list_contacts(workspace, p)),
        RecordKind::Deal => {
            let all = DealFilter::default();
            collect_pages!(|p| store.list_deals(workspace, &all, p))
        }
        RecordKind::PipelineStage => ids.extend(
            store
                .list_stages(workspace)
                .await?
                .into_iter()
                .filter(|s| s.source == source)
                .map(|s| s.fields.source_id()),
        ),
        other => {
            return Err(Error::invalid(
                "kind",
                format!("the store cannot list {} to reconcile them", other.table()),
            ))
        }
    }
    Ok(ids)
}

/// Runs one sync of `connector` with `ctx`, writing every page it pushes
/// with its deals' computed fields, then, if the connector succeeded,
/// refreshes the workspace's won-deal baseline when it is due
/// ([`recompute::baseline_is_due`]; a failed refresh fails the run, and the
/// next run tries again). When the workspace had no baseline yet, every deal
/// is computed again with the new one ([`recompute::recompute_deals`]), so
/// that a first sync's deals carry their stage velocities.
///
/// On error, the pages written before it stay written (with their
/// checkpoints); the error is returned with the outcome so far dropped.
pub async fn run_sync(
    store: &dyn Store,
    connector: &dyn Connector,
    ctx: &SyncContext,
    progress: SyncProgress<'_>,
) -> Result<SyncOutcome> {
    let info = connector.info();
    let mut sink = EngineSink {
        store,
        ctx,
        source: info.id,
        outcome: SyncOutcome::default(),
        progress,
        compute: None,
    };
    tracing::info!(
        workspace_id = %ctx.check.workspace_id,
        connection_id = %ctx.connection_id,
        connector = info.id,
        mode = ?ctx.mode,
        "sync started"
    );
    connector.sync(ctx, &mut sink).await?;
    let workspace = ctx.check.workspace_id;
    let now = model::now();
    let cached = store.get_workspace_baseline(workspace).await?;
    if cached.is_none() {
        // The workspace's first baseline: its deals were computed without
        // won-deal comparisons, so compute them all again with it.
        recompute::recompute_deals(store, workspace, now).await?;
        sink.outcome.baseline_refreshed = true;
    } else if recompute::baseline_is_due(cached.as_ref(), ctx.mode, now) {
        recompute::refresh_baseline(store, workspace, now).await?;
        sink.outcome.baseline_refreshed = true;
    }
    tracing::info!(
        connection_id = %ctx.connection_id,
        pages = sink.outcome.pages,
        records = sink.outcome.records(),
        "sync finished"
    );
    Ok(sink.outcome)
}
