//! Keeping the [computed deal fields](crate::computed) stored with the deals.
//!
//! - **On every change** (the sync engine's pages and `Pandora::ingest`):
//!   [`attach_computed`] computes the fields of every deal a batch carries
//!   (and of every stored deal it carries history for) from the stored
//!   history plus the batch's new changes, the workspace's stage catalog,
//!   its cached baseline and its risk settings (the `weight_*` and
//!   `amount_cut_percent` settings of its stored `deal_risk` skill settings,
//!   see [`crate::risk`]), at the run's time; the store writes them in the
//!   batch's transaction for the deals the batch actually changes. The work
//!   is two reads per batch (the stored deals, their histories), whatever
//!   the workspace's size.
//! - **The baseline** (the workspace's won deals summarised,
//!   [`WorkspaceBaseline`]) is cached in the store. [`refresh_baseline`]
//!   rebuilds it page by page; the sync engine runs it at the end of every
//!   successful full sync, and of any successful sync when the cached one is
//!   missing or older than [`BASELINE_MAX_AGE`] ([`baseline_is_due`]).
//! - **A whole workspace**: [`recompute_deals`] refreshes the baseline and
//!   recomputes every live deal, page by page.
//!
//! Computed fields are a snapshot at their `computed_at`: a deal that does
//! not change keeps the fields (and the baseline) it was last computed with
//! until [`recompute_deals`] runs.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::batch::{PreparedBatch, RecordKind};
use crate::computed::{self, BaselineAccumulator, StoredBaseline, WorkspaceBaseline};
use crate::error::Result;
use crate::model::{
    self, Deal, DealChange, DealField, PipelineStage, StageCategory, SyncMode, WorkspaceId,
};
use crate::query::{DealFilter, Direction, PageRequest, Sort, SortKey, MAX_LIMIT};
use crate::risk::{self, RiskSettings};
use crate::store::{ComputedUpdate, RecordStore, Store};

/// Age at which a cached baseline is refreshed by the next successful sync.
pub const BASELINE_MAX_AGE: Duration = Duration::hours(24);

/// Deals read per page by [`refresh_baseline`] and [`recompute_deals`].
pub const SCAN_PAGE: u32 = MAX_LIMIT;

/// What computing a batch's deals needs besides the batch: the workspace's
/// stage catalog, cached baseline and risk settings, and the time to
/// compute at.
#[derive(Debug, Clone)]
pub struct ComputeContext {
    /// The workspace's pipeline stages (as stored, plus those of the batches
    /// folded in by [`ComputeContext::merge_stages`]).
    pub stages: Vec<PipelineStage>,
    /// The cached won-deal baseline, if any.
    pub baseline: Option<WorkspaceBaseline>,
    /// The workspace's risk weights and thresholds ([`risk_settings`]).
    pub risk: RiskSettings,
    /// The time the fields are computed at (a sync's start, or now).
    pub now: DateTime<Utc>,
}

impl ComputeContext {
    /// Reads the workspace's stage catalog, cached baseline and risk
    /// settings (three queries; the sync engine does it once per run).
    pub async fn load(
        store: &dyn Store,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let stages = store.list_stages(workspace).await?;
        let baseline = store
            .get_workspace_baseline(workspace)
            .await?
            .map(|b| b.baseline);
        let risk = risk_settings(store, workspace).await?;
        Ok(ComputeContext {
            stages,
            baseline,
            risk,
            now,
        })
    }

    /// Folds `batch`'s stages and stage deletions into the catalog, as the
    /// store will hold them once the batch is written.
    pub fn merge_stages(&mut self, workspace: WorkspaceId, batch: &PreparedBatch) {
        let key = |s: &PipelineStage| (s.source.clone(), s.fields.source_id());
        for p in &batch.stages {
            let k = (batch.source.clone(), p.source_id.clone());
            match self.stages.iter_mut().find(|s| key(s) == k) {
                Some(s) => s.fields = p.record.clone(),
                None => self.stages.push(PipelineStage {
                    id: Uuid::nil(),
                    workspace_id: workspace,
                    source: batch.source.clone(),
                    fields: p.record.clone(),
                }),
            }
        }
        let deleted: HashSet<(String, String)> = batch
            .deletions
            .iter()
            .filter(|d| d.kind == RecordKind::PipelineStage)
            .map(|d| (batch.source.clone(), d.source_id.clone()))
            .collect();
        if !deleted.is_empty() {
            self.stages.retain(|s| !deleted.contains(&key(s)));
        }
    }
}

/// The workspace's risk settings: the weights and `amount_cut_percent` of
/// its stored settings of the `deal_risk` skill ([`risk::SKILL_ID`]), the
/// model's defaults for what it has not set (one query).
pub async fn risk_settings(store: &dyn Store, workspace: WorkspaceId) -> Result<RiskSettings> {
    Ok(store
        .get_skill_settings(workspace, risk::SKILL_ID)
        .await?
        .map_or_else(RiskSettings::default, |s| RiskSettings::from_settings(&s)))
}

/// The stored deals (soft-deleted ones too) of `batch`'s source that the
/// batch names, by deal record or by history, keyed by source id: one query.
pub async fn stored_deals(
    store: &dyn RecordStore,
    workspace: WorkspaceId,
    batch: &PreparedBatch,
) -> Result<HashMap<String, Deal>> {
    let mut seen = HashSet::new();
    let ids: Vec<String> = batch
        .deals
        .iter()
        .map(|d| d.source_id.as_str())
        .chain(batch.deal_changes.iter().map(|c| c.deal_source_id.as_str()))
        .filter(|id| seen.insert(*id))
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(store
        .deals_by_source(workspace, &batch.source, &ids)
        .await?
        .into_iter()
        .map(|d| (d.fields.source_id.clone(), d))
        .collect())
}

/// The identity of a history row, as the stores key it (the deal aside).
type ChangeKey = (DealField, DateTime<Utc>, Option<String>);

/// Computes and [attaches](PreparedBatch::set_computed) the fields of every
/// deal `batch` carries, and of every stored deal it carries history for,
/// at `ctx.now`; returns how many.
///
/// `stored` holds the batch's deals as stored (see [`stored_deals`]). Each
/// deal is computed as it will be once the batch is written: its new record
/// (for a deal the batch carries) over its stored identity, with its stored
/// history plus the batch's changes not stored yet. A deal not stored yet
/// counts as created at `ctx.now` (the store's `created_at` is not earlier,
/// and a start after `now` is taken as `now`, so this is what a later
/// computation from the stored row gives). Changes naming a deal that is
/// neither in the batch nor stored are left for the store to reject.
///
/// One store query (the histories of the stored deals), none when no deal
/// of the batch is stored yet.
pub async fn attach_computed(
    store: &dyn RecordStore,
    workspace: WorkspaceId,
    batch: &mut PreparedBatch,
    stored: &HashMap<String, Deal>,
    ctx: &ComputeContext,
) -> Result<u64> {
    // The deals to compute, by source id, in batch order.
    let mut targets: Vec<(String, Deal)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for p in &batch.deals {
        if !seen.insert(p.source_id.as_str()) {
            continue;
        }
        let deal = match stored.get(&p.source_id) {
            Some(before) => Deal {
                fields: p.record.clone(),
                deleted_at: None,
                ..before.clone()
            },
            None => Deal {
                id: Uuid::nil(),
                workspace_id: workspace,
                source: batch.source.clone(),
                fields: p.record.clone(),
                owner_id: None,
                account_id: None,
                computed: None,
                created_at: ctx.now,
                updated_at: ctx.now,
                deleted_at: None,
            },
        };
        targets.push((p.source_id.clone(), deal));
    }
    for c in &batch.deal_changes {
        if !seen.insert(c.deal_source_id.as_str()) {
            continue;
        }
        if let Some(before) = stored.get(&c.deal_source_id) {
            targets.push((c.deal_source_id.clone(), before.clone()));
        }
    }
    if targets.is_empty() {
        return Ok(0);
    }

    let stored_ids: Vec<Uuid> = targets
        .iter()
        .filter(|(source_id, _)| stored.contains_key(source_id))
        .map(|(_, d)| d.id)
        .collect();
    let mut histories = if stored_ids.is_empty() {
        HashMap::new()
    } else {
        store.deal_histories(workspace, &stored_ids).await?
    };
    let mut page_changes: HashMap<&str, Vec<&model::NewDealChange>> = HashMap::new();
    for c in &batch.deal_changes {
        page_changes
            .entry(c.deal_source_id.as_str())
            .or_default()
            .push(c);
    }

    let mut computed = Vec::with_capacity(targets.len());
    for (source_id, deal) in &targets {
        let is_stored = stored.contains_key(source_id);
        let mut history: Vec<DealChange> = if is_stored {
            histories.remove(&deal.id).unwrap_or_default()
        } else {
            Vec::new()
        };
        if let Some(changes) = page_changes.get(source_id.as_str()) {
            let mut known: HashSet<ChangeKey> = history
                .iter()
                .map(|h| (h.field, h.changed_at, h.new_value.clone()))
                .collect();
            for c in changes {
                if known.insert((c.field, c.changed_at, c.new_value.clone())) {
                    history.push(DealChange {
                        id: model::new_id(),
                        workspace_id: workspace,
                        deal_id: deal.id,
                        field: c.field,
                        old_value: c.old_value.clone(),
                        new_value: c.new_value.clone(),
                        changed_at: c.changed_at,
                        origin: c.origin,
                    });
                }
            }
        }
        let fields = computed::compute_with(
            deal,
            &history,
            &ctx.stages,
            ctx.baseline.as_ref(),
            ctx.now,
            &ctx.risk,
        );
        computed.push((source_id.clone(), fields));
    }
    let n = computed.len() as u64;
    for (source_id, fields) in computed {
        batch.set_computed(&source_id, fields)?;
    }
    Ok(n)
}

/// Whether a sync that just succeeded in `mode` must refresh the baseline:
/// always after a full sync, otherwise when the cached one is missing or at
/// least [`BASELINE_MAX_AGE`] old at `now`.
pub fn baseline_is_due(
    cached: Option<&StoredBaseline>,
    mode: SyncMode,
    now: DateTime<Utc>,
) -> bool {
    mode == SyncMode::Full || cached.is_none_or(|b| now - b.computed_at >= BASELINE_MAX_AGE)
}

/// Rebuilds the workspace's won-deal baseline at `now` and caches it.
///
/// Reads the live won deals [`SCAN_PAGE`] at a time (keyset pagination by
/// `updated_at`) with their histories (one query per page), feeding a
/// [`BaselineAccumulator`]: memory holds one page of deals and the samples
/// (a number per won deal and per stage visit), never every deal. A won
/// deal changed while the scan runs may be read twice or not at all; the
/// baseline is a summary, and the next refresh sees it.
pub async fn refresh_baseline(
    store: &dyn RecordStore,
    workspace: WorkspaceId,
    now: DateTime<Utc>,
) -> Result<StoredBaseline> {
    let stages = store.list_stages(workspace).await?;
    let won = DealFilter {
        status: Some(StageCategory::Won),
        ..Default::default()
    };
    let mut acc = BaselineAccumulator::new();
    scan_deals(store, workspace, &won, |deals, histories| {
        for d in deals {
            let history = histories.get(&d.id).map_or(&[][..], Vec::as_slice);
            acc.add(d, history, &stages, now);
        }
        async { Ok::<(), crate::Error>(()) }
    })
    .await?;
    let stored = StoredBaseline {
        baseline: acc.finish(),
        computed_at: now,
    };
    store.put_workspace_baseline(workspace, &stored).await?;
    tracing::info!(
        workspace_id = %workspace,
        won_deals = stored.baseline.won_deals,
        stages = stored.baseline.stages.len(),
        "won-deal baseline refreshed"
    );
    Ok(stored)
}

/// What [`recompute_deals`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RecomputeOutcome {
    /// The baseline the deals were computed with (refreshed first).
    pub baseline: StoredBaseline,
    /// Live deals read and computed.
    pub deals: u64,
    /// Deals whose fields were stored (a deal changed meanwhile keeps the
    /// fields its change computed).
    pub updated: u64,
}

/// Refreshes the workspace's baseline, then recomputes and stores the
/// computed fields of every live deal at `now`, with the workspace's risk
/// settings ([`risk_settings`], read once).
///
/// Reads [`SCAN_PAGE`] deals at a time with their histories and stores each
/// page's fields in one call ([`RecordStore::set_deal_computed`], skipping
/// deals changed since they were read), so memory holds one page whatever
/// the workspace's size.
pub async fn recompute_deals(
    store: &dyn Store,
    workspace: WorkspaceId,
    now: DateTime<Utc>,
) -> Result<RecomputeOutcome> {
    let baseline = refresh_baseline(store, workspace, now).await?;
    let stages = store.list_stages(workspace).await?;
    let risk = risk_settings(store, workspace).await?;
    let mut deals = 0u64;
    let stored: Vec<u64> = scan_deals(
        store,
        workspace,
        &DealFilter::default(),
        |page, histories| {
            let updates: Vec<ComputedUpdate> = page
                .iter()
                .map(|d| {
                    let history = histories.get(&d.id).map_or(&[][..], Vec::as_slice);
                    ComputedUpdate {
                        deal_id: d.id,
                        expected_updated_at: d.updated_at,
                        fields: computed::compute_with(
                            d,
                            history,
                            &stages,
                            Some(&baseline.baseline),
                            now,
                            &risk,
                        ),
                    }
                })
                .collect();
            deals += updates.len() as u64;
            async move { store.set_deal_computed(workspace, &updates).await }
        },
    )
    .await?;
    let updated = stored.iter().sum();
    tracing::info!(workspace_id = %workspace, deals, updated, "computed deal fields recomputed");
    Ok(RecomputeOutcome {
        baseline,
        deals,
        updated,
    })
}

/// Calls `each` with every page of the workspace's live deals matching
/// `filter` (by `updated_at`, oldest first) and their histories; returns
/// what each call returned.
async fn scan_deals<T, F, Fut>(
    store: &dyn RecordStore,
    workspace: WorkspaceId,
    filter: &DealFilter,
    mut each: F,
) -> Result<Vec<T>>
where
    F: FnMut(&[Deal], &HashMap<Uuid, Vec<DealChange>>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut request = PageRequest {
        limit: SCAN_PAGE,
        sort: Sort {
            key: SortKey::UpdatedAt,
            direction: Direction::Asc,
        },
        after: None,
    };
    let mut out = Vec::new();
    loop {
        let page = store.list_deals(workspace, filter, &request).await?;
        let ids: Vec<Uuid> = page.data.iter().map(|d| d.id).collect();
        let histories = if ids.is_empty() {
            HashMap::new()
        } else {
            store.deal_histories(workspace, &ids).await?
        };
        out.push(each(&page.data, &histories).await?);
        match page.next_cursor {
            Some(c) => request = request.next(c),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default() + Duration::hours(hours)
    }

    #[test]
    fn the_baseline_is_due_after_full_syncs_and_when_missing_or_old() {
        let cached = StoredBaseline {
            baseline: WorkspaceBaseline::default(),
            computed_at: at(0),
        };
        assert!(baseline_is_due(None, SyncMode::Incremental, at(0)));
        assert!(baseline_is_due(Some(&cached), SyncMode::Full, at(1)));
        assert!(!baseline_is_due(
            Some(&cached),
            SyncMode::Incremental,
            at(23)
        ));
        assert!(baseline_is_due(
            Some(&cached),
            SyncMode::Incremental,
            at(24)
        ));
    }
}
