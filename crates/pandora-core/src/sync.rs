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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::task::Poll;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};

use crate::batch::{BatchOutcome, Deletion, PreparedBatch, RecordBatch, RecordKind};
use crate::connector::{Connector, RecordSink, StreamCheckpoint, SyncContext};
use crate::error::{Error, Result};
use crate::model::{self, ChangeOrigin, Checkpoint, Deal, DealField, NewDealChange, StreamCounts};
use crate::query::{DealFilter, PageRequest, MAX_LIMIT};
use crate::recompute::{self, ComputeContext};
use crate::store::{CommitGate, Store};

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

/// Pages written at once. With 2, one commits while the next runs its
/// statements behind it (gated on the first's commit): 1.4× the throughput
/// at 100,000 sample deals, but the 1,000,000-deal bench then failed once
/// with the pool (4 connections) exhausted, not yet explained; until it is,
/// one write at a time (the connector and the preparation of later pages
/// still run alongside it).
const WRITES_IN_FLIGHT: usize = 1;

/// Prepared pages waiting for the writer, besides those in flight.
const STAGED_PAGES: usize = 1;

/// A page prepared by the sink, ready to write.
struct Staged {
    /// Position in the run (from 0).
    seq: u64,
    batch: PreparedBatch,
    checkpoint: Option<Checkpoint>,
    observed: u64,
    computed: u64,
}

/// How far the writer got.
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    /// Pages committed: every page with `seq < pages`.
    pages: u64,
    /// The writer stopped on an error (pages from `pages` on are not stored).
    failed: bool,
}

/// The sink the connector pushes into: it validates and completes each page
/// (observed history, computed fields) and hands it to the writer
/// ([`write_pages`]), which runs concurrently in the same task.
struct EngineSink<'a> {
    store: &'a dyn Store,
    ctx: &'a SyncContext,
    source: &'static str,
    /// The stage catalog and baseline, read at the first page with deals
    /// and kept up to date with the pages' stages.
    compute: Option<ComputeContext>,
    pages: mpsc::Sender<Staged>,
    written: watch::Receiver<Written>,
    next_seq: u64,
    /// The record keys of the pages handed to the writer and perhaps not
    /// committed yet, by position.
    unsettled: VecDeque<(u64, HashSet<u64>)>,
}

/// The error a push answers once the writer has stopped; the run returns
/// the writer's own error instead.
fn writer_stopped() -> Error {
    Error::unavailable("an earlier page of this sync could not be stored")
}

/// The record keys a page writes or reads history of, hashed: `(kind,
/// source id)` of its records and deletions, and its changes' deals. Two
/// pages without a common key touch no common row but the checkpoint's (a
/// hash collision only costs a wait).
fn page_keys(batch: &PreparedBatch) -> HashSet<u64> {
    let key = |kind: RecordKind, source_id: &str| {
        let mut h = std::hash::DefaultHasher::new();
        kind.table().hash(&mut h);
        source_id.hash(&mut h);
        h.finish()
    };
    let mut keys = HashSet::new();
    for kind in RecordKind::ALL {
        keys.extend(batch.raw(kind).iter().map(|r| key(kind, r.source_id)));
    }
    keys.extend(batch.deletions.iter().map(|d| key(d.kind, &d.source_id)));
    keys.extend(
        batch
            .deal_changes
            .iter()
            .map(|c| key(RecordKind::Deal, &c.deal_source_id)),
    );
    keys
}

impl EngineSink<'_> {
    /// Waits until every page before position `seq` is committed; an error
    /// once the writer has stopped.
    async fn settle_before(&mut self, seq: u64) -> Result<()> {
        let written = self
            .written
            .wait_for(|w| w.pages >= seq || w.failed)
            .await
            .map(|w| *w)
            .map_err(|_| writer_stopped())?;
        if written.failed {
            return Err(writer_stopped());
        }
        while self
            .unsettled
            .front()
            .is_some_and(|(s, _)| *s < written.pages)
        {
            self.unsettled.pop_front();
        }
        Ok(())
    }

    /// Waits until no page sharing a key with `keys` is uncommitted, so
    /// that what this page reads from the store (stored deals, histories)
    /// is what it will be written over.
    async fn settle_overlapping(&mut self, keys: &HashSet<u64>) -> Result<()> {
        let committed = self.written.borrow().pages;
        // Forget the keys of committed pages (memory holds the uncommitted
        // pages' keys only).
        while self
            .unsettled
            .front()
            .is_some_and(|(seq, _)| *seq < committed)
        {
            self.unsettled.pop_front();
        }
        let last_overlapping = self
            .unsettled
            .iter()
            .filter(|(seq, page)| *seq >= committed && !page.is_disjoint(keys))
            .map(|(seq, _)| *seq)
            .max();
        match last_overlapping {
            Some(seq) => self.settle_before(seq + 1).await,
            None => Ok(()),
        }
    }

    /// Waits until every page handed to the writer is committed.
    async fn settle_all(&mut self) -> Result<()> {
        self.settle_before(self.next_seq).await
    }
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
    /// Prepares the page and hands it to the writer: `Ok` once it is queued
    /// (it commits after the pages before it, or not at all). An error
    /// means this page will not be stored — its own, or that of an earlier
    /// page the writer failed on.
    async fn push(
        &mut self,
        mut page: RecordBatch,
        checkpoint: Option<StreamCheckpoint>,
    ) -> Result<()> {
        if self.written.borrow().failed {
            return Err(writer_stopped());
        }
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
        let keys = page_keys(&prepared);
        self.settle_overlapping(&keys).await?;
        let stored = recompute::stored_deals(self.store, workspace, &prepared).await?;
        let observed = observe_changes(&prepared, &stored);
        let observed_n = observed.len() as u64;
        prepared.deal_changes.extend(observed);
        let mut computed_n = 0;
        if !prepared.deals.is_empty() || !prepared.deal_changes.is_empty() {
            if self.compute.is_none() {
                // The catalog is read from the store: every page before
                // this one must be in it.
                self.settle_all().await?;
                self.compute =
                    Some(ComputeContext::load(self.store, workspace, self.ctx.started_at).await?);
            }
            if let Some(compute) = &mut self.compute {
                compute.merge_stages(workspace, &prepared);
                computed_n = recompute::attach_computed(
                    self.store,
                    workspace,
                    &mut prepared,
                    &stored,
                    compute,
                )
                .await?;
            }
        } else if let Some(compute) = &mut self.compute {
            compute.merge_stages(workspace, &prepared);
        }
        let checkpoint = checkpoint.map(|c| Checkpoint {
            connection_id: self.ctx.connection_id,
            stream: c.stream,
            cursor: c.cursor,
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unsettled.push_back((seq, keys));
        self.pages
            .send(Staged {
                seq,
                batch: prepared,
                checkpoint,
                observed: observed_n,
                computed: computed_n,
            })
            .await
            .map_err(|_| writer_stopped())
    }

    async fn reconcile(
        &mut self,
        kind: RecordKind,
        live: &HashSet<String>,
        checkpoint: Option<StreamCheckpoint>,
    ) -> Result<u64> {
        // The store's lists must hold every page pushed so far.
        self.settle_all().await?;
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

/// A page being written.
struct InFlight<'a> {
    seq: u64,
    write: Pin<Box<dyn Future<Output = Result<BatchOutcome>> + Send + 'a>>,
    /// The write's result, once it finished (it may finish before the pages
    /// ahead of it only by failing).
    result: Option<Result<BatchOutcome>>,
    /// Opens the next page's commit gate (dropped unsent: the gate fails).
    next_gate: Option<oneshot::Sender<()>>,
    observed: u64,
    computed: u64,
}

/// Polls every page in flight; resolves with the first one's result.
fn first_written<'a, 'b>(
    in_flight: &'b mut VecDeque<InFlight<'a>>,
) -> impl Future<Output = Result<BatchOutcome>> + use<'a, 'b> {
    std::future::poll_fn(move |cx| {
        for page in in_flight.iter_mut() {
            if page.result.is_none() {
                if let Poll::Ready(r) = page.write.as_mut().poll(cx) {
                    page.result = Some(r);
                }
            }
        }
        match in_flight.front_mut().and_then(|p| p.result.take()) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    })
}

/// The writer: writes the staged pages in order, up to
/// [`WRITES_IN_FLIGHT`] at once, each committed only after the one before
/// it ([`RecordStore::write_batch_gated`](crate::store::RecordStore::write_batch_gated)).
/// Stops at the first failed page: the pages after it roll back. Returns
/// the outcome of the committed pages and the error it stopped on.
async fn write_pages(
    store: &dyn Store,
    workspace: uuid::Uuid,
    mut staged: mpsc::Receiver<Staged>,
    written: watch::Sender<Written>,
    progress: SyncProgress<'_>,
) -> (SyncOutcome, Option<Error>) {
    let mut outcome = SyncOutcome::default();
    let mut error = None;
    let mut in_flight: VecDeque<InFlight<'_>> = VecDeque::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            result = first_written(&mut in_flight), if !in_flight.is_empty() => {
                let Some(page) = in_flight.pop_front() else { continue };
                match result {
                    Ok(_) if error.is_some() => {}
                    Ok(batch) => {
                        for (kind, counts) in batch.counts {
                            outcome
                                .counts
                                .entry(kind.table().to_string())
                                .or_default()
                                .add(counts);
                        }
                        outcome.pages += 1;
                        outcome.observed_changes += page.observed;
                        outcome.deals_computed += page.computed;
                        outcome.changes_inserted += batch.changes_inserted;
                        if let Some(gate) = page.next_gate {
                            let _ = gate.send(());
                        }
                        written.send_modify(|w| w.pages = page.seq + 1);
                        progress(&outcome);
                    }
                    Err(e) => {
                        // Dropping `next_gate` fails the pages behind it.
                        if error.is_none() {
                            error = Some(e);
                            written.send_modify(|w| w.failed = true);
                            staged.close();
                            open = false;
                        }
                    }
                }
            }
            next = staged.recv(), if open && in_flight.len() < WRITES_IN_FLIGHT => {
                let Some(page) = next else {
                    open = false;
                    continue;
                };
                let gate: CommitGate = match in_flight.back_mut() {
                    None => Box::pin(std::future::ready(Ok(()))),
                    Some(ahead) => {
                        let (open_gate, gate) = oneshot::channel();
                        ahead.next_gate = Some(open_gate);
                        Box::pin(async move { gate.await.map_err(|_| writer_stopped()) })
                    }
                };
                let Staged { seq, batch, checkpoint, observed, computed } = page;
                in_flight.push_back(InFlight {
                    seq,
                    write: Box::pin(async move {
                        store
                            .write_batch_gated(workspace, &batch, checkpoint.as_ref(), gate)
                            .await
                    }),
                    result: None,
                    next_gate: None,
                    observed,
                    computed,
                });
            }
        }
    }
    (outcome, error)
}

/// Runs one sync of `connector` with `ctx`, writing every page it pushes
/// with its deals' computed fields, then, if the connector succeeded,
/// refreshes the workspace's won-deal baseline when it is due
/// ([`recompute::baseline_is_due`]; a failed refresh fails the run, and the
/// next run tries again). When the workspace had no baseline yet, every deal
/// is computed again with the new one ([`recompute::recompute_deals`]), so
/// that a first sync's deals carry their stage velocities.
///
/// The connector and the writer run concurrently: while page k commits,
/// page k+1 is written behind it (in its own, still uncommitted,
/// transaction) and later pages are read and prepared. Pages commit in
/// order, each with its checkpoint; a page that shares a record key with
/// an uncommitted one is prepared only after it commits, so what it reads
/// from the store is exactly what a one-page-at-a-time run would read.
///
/// On error, the pages committed before it stay written (with their
/// checkpoints) and none after it; the error is returned with the outcome
/// so far dropped. When a page fails to write, that error is returned
/// (rather than the one the connector returned from its next push). When the
/// connector fails, the pages it pushed before still commit.
pub async fn run_sync(
    store: &dyn Store,
    connector: &dyn Connector,
    ctx: &SyncContext,
    progress: SyncProgress<'_>,
) -> Result<SyncOutcome> {
    let info = connector.info();
    let (pages, staged) = mpsc::channel(STAGED_PAGES);
    let (written, written_rx) = watch::channel(Written::default());
    let sink = EngineSink {
        store,
        ctx,
        source: info.id,
        compute: None,
        pages,
        written: written_rx,
        next_seq: 0,
        unsettled: VecDeque::new(),
    };
    tracing::info!(
        workspace_id = %ctx.check.workspace_id,
        connection_id = %ctx.connection_id,
        connector = info.id,
        mode = ?ctx.mode,
        "sync started"
    );
    let produce = async move {
        let mut sink = sink;
        // The sink (and so the writer's queue) closes when this ends.
        connector.sync(ctx, &mut sink).await
    };
    let write = write_pages(store, ctx.check.workspace_id, staged, written, progress);
    let (produced, (outcome, failed)) = tokio::join!(produce, write);
    if let Some(e) = failed {
        return Err(e);
    }
    produced?;
    let mut outcome = outcome;
    let workspace = ctx.check.workspace_id;
    let now = model::now();
    let cached = store.get_workspace_baseline(workspace).await?;
    if cached.is_none() {
        // The workspace's first baseline: its deals were computed without
        // won-deal comparisons, so compute them all again with it.
        recompute::recompute_deals(store, workspace, now).await?;
        outcome.baseline_refreshed = true;
    } else if recompute::baseline_is_due(cached.as_ref(), ctx.mode, now) {
        recompute::refresh_baseline(store, workspace, now).await?;
        outcome.baseline_refreshed = true;
    }
    tracing::info!(
        connection_id = %ctx.connection_id,
        pages = outcome.pages,
        records = outcome.records(),
        "sync finished"
    );
    Ok(outcome)
}
