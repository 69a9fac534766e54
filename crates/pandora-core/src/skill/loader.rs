//! Builds a [`SkillContext`] from a store, in bounded queries.
//!
//! Deals and their history are read in keyset pages of [`DEAL_PAGE`] deals
//! (one query for the deals, one for their changes) and each is reduced at
//! once to a [`SkillDeal`]: its state at `as_of` and its changes up to then,
//! without the vendor's extra properties. Users, contacts, roles and
//! conversations are read in pages too; contacts, roles and conversations
//! only when the skill asks for them ([`SkillInputs`]).

use chrono::{DateTime, Utc};

use super::{
    DealState, FieldChange, Period, PreviousReport, ScannedDeal, Settings, SkillContext, SkillDeal,
    SkillInputs, StageCatalog,
};
use crate::error::Result;
use crate::model::{deal_as_of, Deal, DealChange, PipelineStage, WorkspaceId};
use crate::query::{PageRequest, MAX_LIMIT};
use crate::store::Store;

/// Deals read per query.
pub const DEAL_PAGE: u32 = 2_000;
/// Roles and conversations read per query.
pub const SCAN_PAGE: u32 = 5_000;

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The time the data is taken as of.
    pub as_of: DateTime<Utc>,
    /// The period the skill reports on.
    pub period: Period,
    /// The effective settings.
    pub settings: Settings,
    /// Optional inputs the skill reads.
    pub inputs: SkillInputs,
    /// The previous run's report, if any.
    pub previous: Option<PreviousReport>,
}

/// Loads the workspace's data as of `request.as_of` into a context.
pub async fn load_context(store: &dyn Store, request: LoadRequest) -> Result<SkillContext> {
    let ws = request.workspace;
    let as_of = request.as_of;
    let stage_list = store.list_stages(ws).await?;

    let mut deals = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_deals(ws, after, DEAL_PAGE).await?;
        let full = page.len() == DEAL_PAGE as usize;
        after = page.last().map(|d| d.id);
        deals.extend(
            page.into_iter()
                .filter_map(|d| skill_deal(d, &stage_list, as_of)),
        );
        if !full {
            break;
        }
    }

    let mut users = Vec::new();
    let mut page = PageRequest::first(MAX_LIMIT);
    loop {
        let got = store.list_users(ws, &page).await?;
        users.extend(got.data);
        match got.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    users.sort_by_key(|u| u.id);

    let (mut contacts, mut deal_contacts) = (Vec::new(), Vec::new());
    if request.inputs.contacts {
        let mut page = PageRequest::first(MAX_LIMIT);
        loop {
            let got = store.list_contacts(ws, &page).await?;
            contacts.extend(got.data);
            match got.next_cursor {
                Some(c) => page = page.next(c),
                None => break,
            }
        }
        contacts.sort_by_key(|c| c.id);
        let mut after = None;
        loop {
            let got = store.scan_deal_contacts(ws, after, SCAN_PAGE).await?;
            let full = got.len() == SCAN_PAGE as usize;
            after = got.last().map(|r| r.id);
            deal_contacts.extend(got);
            if !full {
                break;
            }
        }
    }

    let mut conversations = Vec::new();
    if request.inputs.conversations {
        let mut after = None;
        loop {
            let got = store.scan_conversations(ws, after, SCAN_PAGE).await?;
            let full = got.len() == SCAN_PAGE as usize;
            after = got.last().map(|r| r.id);
            conversations.extend(
                got.into_iter()
                    .filter(|c| c.fields.started_at.is_none_or(|t| t <= as_of)),
            );
            if !full {
                break;
            }
        }
    }

    let quotas = store.list_quotas(ws, None).await?;
    Ok(SkillContext {
        workspace_id: ws,
        as_of,
        period: request.period,
        settings: request.settings,
        stages: StageCatalog::new(stage_list),
        deals,
        users,
        quotas,
        contacts,
        deal_contacts,
        conversations,
        previous: request.previous,
    })
}

/// A scanned deal as a skill sees it at `as_of`: `None` when it did not
/// exist yet then. A deletion after `as_of` is not visible.
pub fn skill_deal(
    scanned: ScannedDeal,
    stages: &[PipelineStage],
    as_of: DateTime<Utc>,
) -> Option<SkillDeal> {
    let ScannedDeal {
        id,
        source,
        fields,
        created_at,
        deleted_at,
        changes,
    } = scanned;
    let deal = Deal {
        id,
        workspace_id: uuid::Uuid::nil(),
        source,
        fields,
        owner_id: None,
        account_id: None,
        computed: None,
        created_at,
        updated_at: created_at,
        deleted_at,
    };
    from_history(&deal, &changes, stages, as_of)
}

/// `deal` with its history `changes`, as a skill sees it at `as_of`
/// (`None` when it did not exist yet then). Used by the loader, and by
/// tests that build contexts by hand.
pub fn from_history(
    deal: &Deal,
    changes: &[DealChange],
    stages: &[PipelineStage],
    as_of: DateTime<Utc>,
) -> Option<SkillDeal> {
    let snap = deal_as_of(deal, changes, stages, as_of)?;
    let mut kept: Vec<&DealChange> = changes.iter().filter(|c| c.changed_at <= as_of).collect();
    kept.sort_by_key(|c| (c.changed_at, c.id));
    let f = &deal.fields;
    Some(SkillDeal {
        id: deal.id,
        source: deal.source.clone(),
        source_id: f.source_id.clone(),
        name: f.name.clone(),
        pipeline: f.pipeline.clone(),
        currency: f.currency.clone(),
        account_source_id: f.account_source_id.clone(),
        created_at: f.source_created_at.unwrap_or(deal.created_at),
        deleted_at: deal.deleted_at.filter(|d| *d <= as_of),
        latest: DealState {
            stage: snap.stage,
            stage_category: snap.stage_category,
            amount: snap.amount,
            close_date: snap.close_date,
            forecast_category: snap.forecast_category,
            owner_source_id: snap.owner_source_id,
        },
        changes: kept
            .into_iter()
            .map(|c| FieldChange {
                field: c.field,
                at: c.changed_at,
                old: c.old_value.clone(),
                new: c.new_value.clone(),
            })
            .collect(),
    })
}
