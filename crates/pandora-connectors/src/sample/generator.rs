//! Paging the dataset: full syncs and per-epoch changes as [`RecordBatch`]es.

use chrono::{DateTime, Utc};
use pandora_core::batch::RecordBatch;
use pandora_core::Result;

use super::config::{SampleClock, SampleConfig};
use super::deal::{touch_coin, DealLife, TOUCH_PERIOD};
use super::world::{stage_records, World, STAGES};
use super::SOURCE;

/// Records a full-sync deal page holds per deal, on average (the deal, its
/// roles, history and calls), used to size deal pages from the page size.
const RECORDS_PER_DEAL: usize = 11;

/// A page of a full sync: which stream and which slice of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FullSlice {
    Users(u64, u64),
    Accounts(u64, u64),
    Contacts(u64, u64),
    Stages,
    Deals(u64, u64),
}

/// A deterministic, realistic GTM dataset: reps with managers, teams and
/// quotas; accounts and contacts; one pipeline; deals with their contact
/// roles, field history and calls — at any size from 100 to 1,000,000 deals.
///
/// Every record is a pure function of the [`SampleConfig`], the
/// [`SampleClock`] and an epoch, so:
///
/// * the same config gives the same pages, byte for byte;
/// * any page can be produced alone ([`SampleGenerator::full_page`],
///   [`SampleGenerator::change_page`]) in time and memory proportional to the
///   page, which is how a million deals stream in bounded memory and how a
///   sync resumes from a checkpointed page number;
/// * a full sync at epoch 0 followed by [`SampleGenerator::changes_since`]
///   of epochs `0, 1, …, k - 1` gives exactly the records (and deletions, and
///   field history) of a full sync at epoch `k`.
///
/// A full sync yields, in dependency order: users, accounts, contacts, the
/// pipeline's stages, then deal pages. A deal page carries whole deals: each
/// with its deal–contact roles, its complete field history
/// ([`ChangeOrigin::Vendor`](pandora_core::model::ChangeOrigin::Vendor)) and
/// its calls, so a store writing the page sees a deal and its history
/// together. Deals deleted by the epoch are delivered with their last state
/// and then deleted in the same page (as are their roles), so the tombstones
/// of a fresh full sync match those left by incremental syncs.
#[derive(Debug, Clone)]
pub struct SampleGenerator {
    config: SampleConfig,
    pub(super) world: World,
    page_size: usize,
}

impl SampleGenerator {
    /// Records per page unless [`SampleGenerator::with_page_size`] says otherwise.
    pub const DEFAULT_PAGE_SIZE: usize = 5_000;

    /// A generator for `config` on the default [`SampleClock`]; fails when the
    /// config is out of range (see [`SampleConfig::validate`]).
    pub fn new(config: SampleConfig) -> Result<Self> {
        config.validate()?;
        Ok(SampleGenerator {
            config,
            world: World::new(&config, SampleClock::default()),
            page_size: Self::DEFAULT_PAGE_SIZE,
        })
    }

    /// The same dataset on another clock (every time shifts with its start).
    pub fn with_clock(mut self, clock: SampleClock) -> Self {
        self.world = World::new(&self.config, clock);
        self
    }

    /// Target records per page (at least 1). Pages of users, accounts and
    /// contacts hold at most this many; deal pages hold
    /// [`SampleGenerator::deals_per_page`] deals with their roles, history and
    /// calls, about this many records on average; change pages are sized the
    /// same way.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The config.
    pub fn config(&self) -> &SampleConfig {
        &self.config
    }

    /// The simulated clock.
    pub fn clock(&self) -> &SampleClock {
        &self.world.clock
    }

    /// The target page size.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The time of `epoch` on the simulated clock.
    pub fn time_at(&self, epoch: u32) -> DateTime<Utc> {
        self.world.clock.time_at(epoch)
    }

    /// Users (one CRO, a VP per region, a manager per team of 8, the reps).
    pub fn user_count(&self) -> u64 {
        self.world.user_count()
    }

    /// Reps (the users who own deals).
    pub fn rep_count(&self) -> u64 {
        self.world.reps
    }

    /// Accounts.
    pub fn account_count(&self) -> u64 {
        self.world.accounts
    }

    /// Contacts (five per account).
    pub fn contact_count(&self) -> u64 {
        self.world.contact_count()
    }

    /// Pipeline stages.
    pub fn stage_count(&self) -> u64 {
        STAGES.len() as u64
    }

    /// Deals that exist at `epoch`, deleted ones included: `config.deals`
    /// at epoch 0, plus [`SampleGenerator::new_deals_per_epoch`] per epoch.
    pub fn deal_count(&self, epoch: u32) -> u64 {
        self.world.deal_count(epoch)
    }

    /// Deals created in each epoch after the first.
    pub fn new_deals_per_epoch(&self) -> u64 {
        self.world.new_per_epoch
    }

    /// Deals per full-sync deal page.
    pub fn deals_per_page(&self) -> u64 {
        (self.page_size / RECORDS_PER_DEAL).max(1) as u64
    }

    fn pages_of(&self, n: u64) -> u64 {
        n.div_ceil(self.page_size as u64)
    }

    fn full_slice(&self, epoch: u32, page: u64) -> Option<FullSlice> {
        if epoch > SampleClock::MAX_EPOCH {
            return None;
        }
        let size = self.page_size as u64;
        let mut page = page;
        for (count, make) in [
            (
                self.user_count(),
                FullSlice::Users as fn(u64, u64) -> FullSlice,
            ),
            (self.account_count(), FullSlice::Accounts),
            (self.contact_count(), FullSlice::Contacts),
        ] {
            let pages = self.pages_of(count);
            if page < pages {
                let start = page * size;
                return Some(make(start, (start + size).min(count)));
            }
            page -= pages;
        }
        if page == 0 {
            return Some(FullSlice::Stages);
        }
        page -= 1;
        let per = self.deals_per_page();
        let deals = self.deal_count(epoch);
        let start = page.checked_mul(per)?;
        (start < deals).then(|| FullSlice::Deals(start, (start + per).min(deals)))
    }

    /// Pages of a full sync at `epoch` (none past [`SampleClock::MAX_EPOCH`]).
    pub fn full_page_count(&self, epoch: u32) -> u64 {
        if epoch > SampleClock::MAX_EPOCH {
            return 0;
        }
        self.pages_of(self.user_count())
            + self.pages_of(self.account_count())
            + self.pages_of(self.contact_count())
            + 1
            + self.deal_count(epoch).div_ceil(self.deals_per_page())
    }

    /// Page `page` (from 0) of a full sync at `epoch`, generated alone;
    /// `None` past the last page.
    pub fn full_page(&self, epoch: u32, page: u64) -> Option<RecordBatch> {
        let w = &self.world;
        let mut batch = RecordBatch::new(SOURCE);
        match self.full_slice(epoch, page)? {
            FullSlice::Users(a, b) => batch.users = (a..b).map(|i| w.user(i)).collect(),
            FullSlice::Accounts(a, b) => batch.accounts = (a..b).map(|i| w.account(i)).collect(),
            FullSlice::Contacts(a, b) => batch.contacts = (a..b).map(|i| w.contact(i)).collect(),
            FullSlice::Stages => batch.stages = stage_records(),
            FullSlice::Deals(a, b) => {
                for i in a..b {
                    if let Some(life) = w.deal_life(i, epoch) {
                        push_whole(&mut batch, life);
                    }
                }
            }
        }
        Some(batch)
    }

    /// Every page of a full sync at `epoch`, generated one at a time.
    pub fn full_sync(&self, epoch: u32) -> FullSync<'_> {
        FullSync {
            generator: self,
            epoch,
            next: 0,
            count: self.full_page_count(epoch),
        }
    }

    // ---- changes ----------------------------------------------------------------

    /// Touched deals per change page: a touch yields about 0.8 records on
    /// average (often none, sometimes a deal with its history and a call).
    fn touched_per_page(&self) -> u64 {
        (self.page_size as u64 * 5 / 4).max(1)
    }

    /// The candidates of epoch `to` (deals existing at `to - 1` in its residue
    /// class) whose coin says they are touched, from candidate slot `from_slot`.
    fn touched(&self, to: u32, from_slot: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let residue = u64::from(to) % TOUCH_PERIOD;
        let existing = self.deal_count(to - 1);
        let seed = self.world.seed;
        (from_slot..)
            .map(move |slot| (slot, residue + slot * TOUCH_PERIOD))
            .take_while(move |(_, i)| *i < existing)
            .filter(move |(_, i)| touch_coin(seed, *i, to))
    }

    /// Deals touched when the clock advances from `epoch` to `epoch + 1`
    /// (some touches change nothing). Costs one hash per candidate.
    pub fn touched_count(&self, epoch: u32) -> u64 {
        if epoch >= SampleClock::MAX_EPOCH {
            return 0;
        }
        self.touched(epoch + 1, 0).count() as u64
    }

    /// Pages of [`SampleGenerator::changes_since`]`(epoch)`.
    pub fn change_page_count(&self, epoch: u32) -> u64 {
        if epoch >= SampleClock::MAX_EPOCH {
            return 0;
        }
        self.touched_count(epoch).div_ceil(self.touched_per_page())
            + self.new_deals_per_epoch().div_ceil(self.deals_per_page())
    }

    /// Page `page` (from 0) of [`SampleGenerator::changes_since`]`(epoch)`,
    /// generated alone; `None` past the last page. A page may be empty when
    /// none of its touched deals changed.
    pub fn change_page(&self, epoch: u32, page: u64) -> Option<RecordBatch> {
        if epoch >= SampleClock::MAX_EPOCH {
            return None;
        }
        let per = self.touched_per_page();
        let touched_pages = self.touched_count(epoch).div_ceil(per);
        if page < touched_pages {
            let deals: Vec<u64> = self
                .touched(epoch + 1, 0)
                .skip((page * per) as usize)
                .take(per as usize)
                .map(|(_, i)| i)
                .collect();
            Some(self.touched_page(epoch + 1, &deals))
        } else {
            self.new_deals_page(epoch + 1, page - touched_pages)
        }
    }

    fn touched_page(&self, to: u32, deals: &[u64]) -> RecordBatch {
        let since = self.world.clock.time_at(to - 1);
        let mut batch = RecordBatch::new(SOURCE);
        for &i in deals {
            let Some(life) = self.world.deal_life(i, to) else {
                continue;
            };
            if life.deleted_at_epoch == Some(to) {
                batch.deletions.extend(life.deletions());
                continue;
            }
            let before = batch.deal_changes.len();
            batch
                .deal_changes
                .extend(life.changes.into_iter().filter(|c| c.changed_at > since));
            if batch.deal_changes.len() > before {
                batch.deals.push(life.deal);
            }
            batch.conversations.extend(
                life.calls
                    .into_iter()
                    .filter(|c| c.started_at.is_some_and(|t| t > since)),
            );
        }
        batch
    }

    fn new_deals_page(&self, to: u32, page: u64) -> Option<RecordBatch> {
        let per = self.deals_per_page();
        let (first, end) = (self.deal_count(to - 1), self.deal_count(to));
        let start = first.checked_add(page.checked_mul(per)?)?;
        if start >= end {
            return None;
        }
        let mut batch = RecordBatch::new(SOURCE);
        for i in start..(start + per).min(end) {
            if let Some(life) = self.world.deal_life(i, to) {
                push_whole(&mut batch, life);
            }
        }
        Some(batch)
    }

    /// What changed when the simulated clock advances from `epoch` to
    /// `epoch + 1`: deals touched in that step (updated record with only the
    /// new field-history rows, new calls, or deletions of the deal and its
    /// roles), then the deals created in it (whole, as in a full sync).
    /// About 1% of deals change per step. Nothing changes past
    /// [`SampleClock::MAX_EPOCH`].
    pub fn changes_since(&self, epoch: u32) -> Changes<'_> {
        Changes {
            generator: self,
            epoch,
            next_page: 0,
            next_slot: 0,
            touched_done: false,
            new_page: 0,
        }
    }

    /// Deal `i` as of `epoch`, for tests.
    #[cfg(test)]
    pub(crate) fn deal_life(&self, i: u64, epoch: u32) -> Option<DealLife> {
        self.world.deal_life(i, epoch)
    }
}

/// Appends a whole deal (record, roles, history, calls, and its deletions if deleted).
fn push_whole(batch: &mut RecordBatch, life: DealLife) {
    if life.deleted_at_epoch.is_some() {
        batch.deletions.extend(life.deletions());
    }
    batch.deals.push(life.deal);
    batch.deal_contacts.extend(life.roles);
    batch.deal_changes.extend(life.changes);
    batch.conversations.extend(life.calls);
}

/// The pages of a full sync ([`SampleGenerator::full_sync`]).
#[derive(Debug, Clone)]
pub struct FullSync<'a> {
    generator: &'a SampleGenerator,
    epoch: u32,
    next: u64,
    count: u64,
}

impl FullSync<'_> {
    /// Index of the page the next call to `next` returns.
    pub fn position(&self) -> u64 {
        self.next
    }
}

impl Iterator for FullSync<'_> {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        if self.next >= self.count {
            return None;
        }
        let page = self.generator.full_page(self.epoch, self.next);
        self.next += 1;
        page
    }

    fn nth(&mut self, n: usize) -> Option<RecordBatch> {
        self.next = self.next.saturating_add(n as u64);
        self.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count.saturating_sub(self.next)).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for FullSync<'_> {}

/// The pages of one step of the simulated clock ([`SampleGenerator::changes_since`]).
#[derive(Debug, Clone)]
pub struct Changes<'a> {
    generator: &'a SampleGenerator,
    epoch: u32,
    next_page: u64,
    /// Candidate slot where the next touched page starts.
    next_slot: u64,
    /// Set once the touched deals are exhausted.
    touched_done: bool,
    new_page: u64,
}

impl Changes<'_> {
    /// Index of the page the next call to `next` returns (as for
    /// [`SampleGenerator::change_page`]).
    pub fn position(&self) -> u64 {
        self.next_page
    }
}

impl Iterator for Changes<'_> {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let g = self.generator;
        if self.epoch >= SampleClock::MAX_EPOCH {
            return None;
        }
        let to = self.epoch + 1;
        if !self.touched_done {
            let per = g.touched_per_page() as usize;
            let mut deals = Vec::with_capacity(per.min(4_096));
            let mut last_slot = None;
            for (slot, i) in g.touched(to, self.next_slot).take(per) {
                deals.push(i);
                last_slot = Some(slot);
            }
            match last_slot {
                Some(slot) => {
                    self.next_slot = slot + 1;
                    self.next_page += 1;
                    return Some(g.touched_page(to, &deals));
                }
                None => self.touched_done = true,
            }
        }
        let page = g.new_deals_page(to, self.new_page)?;
        self.new_page += 1;
        self.next_page += 1;
        Some(page)
    }
}
