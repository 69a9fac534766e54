//! Builds a [`SkillContext`] from a store, in bounded queries.
//!
//! Deals and their history come from one streamed scan
//! ([`RecordStore::scan_skill_deals`]): each deal is reduced at once to a
//! [`SkillDeal`] (its state at `as_of` and its changes up to then, without
//! the vendor's extra properties), so memory holds the context, never the
//! raw rows. Users, contacts, roles and conversations are read in pages;
//! contacts, roles and conversations only when the skill asks for them
//! ([`SkillInputs`]). The parts are independent and are read concurrently
//! (each on its own connection of the store's pool): the database produces
//! one while this process decodes another.
//!
//! [`RecordStore::scan_skill_deals`]: crate::store::RecordStore::scan_skill_deals

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{
    DealState, FieldChange, Period, PreviousReport, ScannedDeal, Settings, SkillContext, SkillDeal,
    SkillInputs, StageCatalog,
};
use crate::error::Result;
use crate::model::{
    deal_as_of, Contact, Conversation, Deal, DealChange, DealContact, PipelineStage, User,
    WorkspaceId,
};
use crate::query::{PageRequest, MAX_LIMIT};
use crate::store::Store;

/// Deals read per query by stores that page ([`SkillStore::scan_deals`]).
///
/// [`SkillStore::scan_deals`]: super::SkillStore::scan_deals
pub const DEAL_PAGE: u32 = 2_000;
/// Roles and conversations read per query.
pub const SCAN_PAGE: u32 = 20_000;

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
    let started = Instant::now();
    let stage_list = store.list_stages(ws).await?;

    let deals = async {
        let t = Instant::now();
        let mut deals = Vec::new();
        store
            .scan_skill_deals(ws, &mut |d| {
                deals.extend(skill_deal(d, &stage_list, as_of));
                Ok(())
            })
            .await?;
        tracing::debug!(
            deals = deals.len(),
            ms = t.elapsed().as_millis() as u64,
            "skill context: deals loaded"
        );
        Ok::<_, crate::Error>(deals)
    };
    let users = async {
        let mut users: Vec<User> = Vec::new();
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
        Ok::<_, crate::Error>(users)
    };
    let contacts = async {
        let t = Instant::now();
        let mut contacts: Vec<Contact> = Vec::new();
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
        }
        tracing::debug!(
            contacts = contacts.len(),
            ms = t.elapsed().as_millis() as u64,
            "skill context: contacts loaded"
        );
        Ok::<_, crate::Error>(contacts)
    };
    let roles = async {
        let t = Instant::now();
        let mut roles: Vec<DealContact> = Vec::new();
        if request.inputs.contacts {
            let mut after = None;
            loop {
                let got = store.scan_deal_contacts(ws, after, SCAN_PAGE).await?;
                let full = got.len() == SCAN_PAGE as usize;
                after = got.last().map(|r| r.id);
                roles.extend(got);
                if !full {
                    break;
                }
            }
        }
        tracing::debug!(
            roles = roles.len(),
            ms = t.elapsed().as_millis() as u64,
            "skill context: roles loaded"
        );
        Ok::<_, crate::Error>(roles)
    };
    let conversations = async {
        let t = Instant::now();
        let mut conversations: Vec<Conversation> = Vec::new();
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
        tracing::debug!(
            conversations = conversations.len(),
            ms = t.elapsed().as_millis() as u64,
            "skill context: conversations loaded"
        );
        Ok::<_, crate::Error>(conversations)
    };
    let quotas = store.list_quotas(ws, None);
    let (deals, users, contacts, deal_contacts, conversations, quotas) =
        tokio::try_join!(deals, users, contacts, roles, conversations, quotas)?;
    tracing::debug!(
        workspace_id = %ws,
        ms = started.elapsed().as_millis() as u64,
        "skill context loaded"
    );
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
        mut changes,
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
    let snap = deal_as_of(&deal, &changes, stages, as_of)?;
    // What `from_history` builds, moving the scanned values instead of
    // copying them.
    changes.retain(|c| c.changed_at <= as_of);
    changes.sort_by_key(|c| (c.changed_at, c.id));
    let Deal {
        id,
        source,
        fields: f,
        created_at,
        deleted_at,
        ..
    } = deal;
    Some(SkillDeal {
        id,
        source,
        source_id: f.source_id,
        name: f.name,
        pipeline: f.pipeline,
        currency: f.currency,
        account_source_id: f.account_source_id,
        created_at: f.source_created_at.unwrap_or(created_at),
        deleted_at: deleted_at.filter(|d| *d <= as_of),
        latest: DealState {
            stage: snap.stage,
            stage_category: snap.stage_category,
            amount: snap.amount,
            close_date: snap.close_date,
            forecast_category: snap.forecast_category,
            owner_source_id: snap.owner_source_id,
        },
        changes: changes
            .into_iter()
            .map(|c| FieldChange {
                field: c.field,
                at: c.changed_at,
                old: c.old_value,
                new: c.new_value,
            })
            .collect(),
    })
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
