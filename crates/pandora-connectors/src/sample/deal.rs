//! The life of one deal, simulated from `(seed, deal index)` up to an epoch.
//!
//! A deal's life has two parts:
//!
//! 1. **Before epoch 0** (deals `0..deals0`): a journey through the pipeline
//!    drawn from the deal's own random stream — stage dwell times, losses,
//!    skipped stages, re-scoped amounts, close dates that slip and get pushed,
//!    the odd reassignment — cut off at the time of epoch 0.
//!    Deals created later (one batch per epoch) start in the first stage.
//! 2. **Touches**: deal `i` is a *candidate* at epoch `e` when
//!    `e ≡ i (mod TOUCH_PERIOD)`, and is *touched* when the coin of
//!    `(seed, i, e)` falls under `TOUCH_CHANCE`. A touch happens within
//!    `(time(e-1), time(e)]` and, drawn from the stream of `(seed, i, e)` and
//!    the deal's state, moves the stage, pushes the close date, changes the
//!    amount or owner, logs a call, deletes the deal, or does nothing.
//!
//! The state at epoch `k` is therefore the journey plus the touches of epochs
//! `1..=k`, a pure function of `(seed, i, k)`: a full sync at `k` and an
//! incremental sync of epoch `k` both derive from it, which is what makes
//! "full at 0 + changes of 1..k = full at k" hold exactly. The touched deals of
//! an epoch are found without looking at any other deal (one residue class,
//! one hash per candidate), so an incremental costs `deals / TOUCH_PERIOD`
//! hashes plus the work of the deals actually touched.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use pandora_core::batch::{Deletion, RecordKind};
use pandora_core::model::{
    ChangeOrigin, DealField, NewConversation, NewDeal, NewDealChange, NewDealContact, Participant,
    SourceRef,
};
use rust_decimal::Decimal;
use serde_json::json;

use super::names::{CALL_URL, CONTACT_ROLES, LEAD_SOURCES};
use super::rng::{hash, stream, unit, Rng};
use super::world::{
    AccountInfo, Segment, World, CONTACTS_PER_ACCOUNT, FIRST_STAGE, LAST_OPEN_STAGE, LOST,
    PIPELINE, STAGES, WON,
};
use super::SOURCE;

/// Deal `i` is a touch candidate at the epochs congruent to `i` modulo this.
pub(crate) const TOUCH_PERIOD: u64 = 8;
/// Chance that a candidate is touched.
pub(crate) const TOUCH_CHANCE: f64 = 0.4;

/// Mean days spent in each open stage before leaving it.
const MEAN_DWELL_DAYS: [f64; 5] = [10.0, 14.0, 18.0, 20.0, 14.0];
/// Chance of losing the deal when it leaves each open stage.
const LOSS_CHANCE: [f64; 5] = [0.25, 0.2, 0.18, 0.15, 0.15];
/// Oldest deal at epoch 0, in days.
const HISTORY_DAYS: i64 = 365;

const PRODUCTS: [&str; 5] = [
    "Platform",
    "Analytics Suite",
    "Data Cloud",
    "Security Add-on",
    "Integration Hub",
];

/// A deal's id.
pub(crate) fn deal_id(i: u64) -> String {
    format!("deal-{:07}", i + 1)
}

/// The key of a deal–contact role.
pub(crate) fn role_key(deal: &str, contact: &str) -> String {
    format!("{deal}/{contact}")
}

/// Whether deal `i` is touched at epoch `e` (given it exists and is a candidate).
pub(crate) fn touch_coin(seed: u64, i: u64, e: u32) -> bool {
    unit(hash(seed, stream::TOUCH_COIN, i, u64::from(e))) < TOUCH_CHANCE
}

/// Whether deal `i` is a touch candidate at epoch `e`.
#[cfg(test)]
pub(crate) fn is_candidate(i: u64, e: u32) -> bool {
    i % TOUCH_PERIOD == u64::from(e) % TOUCH_PERIOD
}

/// The forecast category a rep gives a deal in `stage`.
fn forecast_category(stage: usize, optimistic: bool) -> &'static str {
    match stage {
        0 | 1 => "pipeline",
        2 if optimistic => "best_case",
        2 => "pipeline",
        3 => "best_case",
        4 if optimistic => "commit",
        4 => "best_case",
        WON => "closed",
        _ => "omitted",
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn round_amount(x: f64, step: i64) -> i64 {
    (((x / step as f64).round() as i64) * step).max(step)
}

/// One deal at one epoch: its record, roles, history and calls.
#[derive(Debug, Clone)]
pub(crate) struct DealLife {
    /// The deal as of the epoch (as of its deletion when deleted).
    pub deal: NewDeal,
    /// Its contacts' roles (fixed at creation).
    pub roles: Vec<NewDealContact>,
    /// Its field history, oldest first.
    pub changes: Vec<NewDealChange>,
    /// Its calls, oldest first.
    pub calls: Vec<NewConversation>,
    /// The epoch the deal was deleted at, if it was.
    pub deleted_at_epoch: Option<u32>,
}

impl DealLife {
    /// Deletions for the deal and its roles.
    pub(crate) fn deletions(&self) -> Vec<Deletion> {
        std::iter::once(Deletion {
            kind: RecordKind::Deal,
            source_id: self.deal.source_id.clone(),
        })
        .chain(self.roles.iter().map(|r| Deletion {
            kind: RecordKind::DealContact,
            source_id: role_key(&r.deal_source_id, &r.contact_source_id),
        }))
        .collect()
    }
}

/// The deal being simulated.
struct Sim<'w> {
    w: &'w World,
    idx: u64,
    id: String,
    account: u64,
    info: AccountInfo,
    owner_rep: u64,
    stage: usize,
    amount: i64,
    close: NaiveDate,
    optimistic: bool,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    /// Contact slots at the account, primary first.
    slots: Vec<u64>,
    deal_type: &'static str,
    lead_source: &'static str,
    product: &'static str,
    stalled: bool,
    changes: Vec<NewDealChange>,
    calls: Vec<NewConversation>,
    call_seq: u64,
    deleted_at_epoch: Option<u32>,
}

impl<'w> Sim<'w> {
    /// The deal as created: account, owner, amount, expected close, contacts.
    fn create(w: &'w World, idx: u64, rng: &mut Rng, created: DateTime<Utc>) -> Self {
        let account = w.pick_account(rng);
        let info = w.account_info(account);
        let owner_rep = if rng.chance(0.85) {
            info.owner_rep
        } else {
            rng.below(w.reps)
        };
        let segment: Segment = info.segment;
        let deal_type = match rng.f64() {
            u if u < 0.7 => "new_business",
            u if u < 0.9 => "expansion",
            _ => "renewal",
        };
        let scale = if deal_type == "new_business" {
            1.0
        } else {
            0.6
        };
        let amount = round_amount(
            segment.median_amount() * scale * (0.6 * rng.normal()).exp(),
            segment.amount_step(),
        );
        let (lo, hi) = segment.cycle_days();
        let close = created.date_naive() + Duration::days(rng.range(lo, hi));
        let optimistic = rng.chance(0.4);
        let stalled = rng.chance(0.15);
        let single = rng.chance(0.25);
        let n = if single { 1 } else { rng.range(2, 5) as usize };
        let mut pool: Vec<u64> = (0..CONTACTS_PER_ACCOUNT).collect();
        for k in 0..n {
            let j = k + rng.below((pool.len() - k) as u64) as usize;
            pool.swap(k, j);
        }
        pool.truncate(n);
        // The champion leads when involved, else the decision maker, else whoever came first.
        if let Some(p) = pool
            .iter()
            .position(|s| *s == 2)
            .or_else(|| pool.iter().position(|s| *s == 1))
        {
            pool.swap(0, p);
        }
        let lead_source = *rng.pick(&LEAD_SOURCES);
        let product = *rng.pick(&PRODUCTS);
        let mut sim = Sim {
            w,
            idx,
            id: deal_id(idx),
            account,
            info,
            owner_rep,
            stage: FIRST_STAGE,
            amount,
            close,
            optimistic,
            created,
            updated: created,
            slots: pool,
            deal_type,
            lead_source,
            product,
            stalled,
            changes: Vec::new(),
            calls: Vec::new(),
            call_seq: 0,
            deleted_at_epoch: None,
        };
        sim.record(
            DealField::Stage,
            None,
            Some(STAGES[FIRST_STAGE].id.into()),
            created,
        );
        sim
    }

    fn record(
        &mut self,
        field: DealField,
        old: Option<String>,
        new: Option<String>,
        at: DateTime<Utc>,
    ) {
        self.changes.push(NewDealChange {
            deal_source_id: self.id.clone(),
            field,
            old_value: old,
            new_value: new,
            changed_at: at,
            origin: ChangeOrigin::Vendor,
        });
        self.updated = self.updated.max(at);
    }

    fn set_stage(&mut self, at: DateTime<Utc>, stage: usize) {
        if stage == self.stage {
            return;
        }
        let old_fc = forecast_category(self.stage, self.optimistic);
        let new_fc = forecast_category(stage, self.optimistic);
        self.record(
            DealField::Stage,
            Some(STAGES[self.stage].id.into()),
            Some(STAGES[stage].id.into()),
            at,
        );
        if old_fc != new_fc {
            self.record(
                DealField::ForecastCategory,
                Some(old_fc.into()),
                Some(new_fc.into()),
                at,
            );
        }
        self.stage = stage;
    }

    fn set_amount(&mut self, at: DateTime<Utc>, amount: i64) {
        if amount == self.amount {
            return;
        }
        self.record(
            DealField::Amount,
            Some(self.amount.to_string()),
            Some(amount.to_string()),
            at,
        );
        self.amount = amount;
    }

    fn set_close(&mut self, at: DateTime<Utc>, close: NaiveDate) {
        if close == self.close {
            return;
        }
        self.record(
            DealField::CloseDate,
            Some(self.close.to_string()),
            Some(close.to_string()),
            at,
        );
        self.close = close;
    }

    fn set_owner(&mut self, at: DateTime<Utc>, rep: u64) {
        if rep == self.owner_rep {
            return;
        }
        self.record(
            DealField::Owner,
            Some(World::user_id(self.w.rep_user(self.owner_rep))),
            Some(World::user_id(self.w.rep_user(rep))),
            at,
        );
        self.owner_rep = rep;
    }

    fn is_open(&self) -> bool {
        self.stage <= LAST_OPEN_STAGE
    }

    fn close_as(&mut self, at: DateTime<Utc>, stage: usize) {
        self.set_stage(at, stage);
        self.set_close(at, at.date_naive());
    }

    /// Amount re-scoped by a factor in `[lo, hi)`.
    fn rescope(&mut self, at: DateTime<Utc>, rng: &mut Rng, lo: f64, hi: f64) {
        let next = round_amount(
            self.amount as f64 * rng.uniform(lo, hi),
            self.info.segment.amount_step(),
        );
        self.set_amount(at, next);
    }

    /// The close date moved out from `max(close, at)` by 2–6 weeks.
    fn push_close(&mut self, at: DateTime<Utc>, rng: &mut Rng) {
        let base = self.close.max(at.date_naive());
        self.set_close(at, base + Duration::days(rng.range(14, 45)));
    }

    /// Close-date slips while the deal sits in a stage: each time the
    /// expected close passes, the rep usually pushes it out a few days later
    /// (and sometimes leaves it overdue). Only events strictly before `limit`.
    fn slip(&mut self, rng: &mut Rng, mut after: DateTime<Utc>, limit: DateTime<Utc>) {
        for _ in 0..6 {
            let due = midnight(self.close) + Duration::days(1);
            if due >= limit || !rng.chance(0.8) {
                return;
            }
            let at = due.max(after) + Duration::seconds(rng.range(3_600, 3 * 86_400));
            if at >= limit {
                return;
            }
            self.push_close(at, rng);
            after = at;
        }
    }

    /// Logs a call about the deal at `at`; `tag` makes its id unique.
    fn call(&mut self, at: DateTime<Utc>, title: &str, tag: String, key: u64) {
        let mut rng = Rng::new(self.w.seed, stream::CALL, self.idx, key);
        let owner_user = self.w.rep_user(self.owner_rep);
        let owner = self.w.person(owner_user);
        let mut participants = vec![Participant {
            name: Some(owner.full_name()),
            email: Some(owner.email),
            internal: Some(true),
        }];
        if rng.chance(0.3) {
            let manager = self.w.person(self.w.rep_manager_user(self.owner_rep));
            participants.push(Participant {
                name: Some(manager.full_name()),
                email: Some(manager.email),
                internal: Some(true),
            });
        }
        let external = (rng.range(1, 3) as usize).min(self.slots.len());
        for slot in &self.slots[..external] {
            let c = World::contact_of(self.account, *slot);
            let p = self.w.contact_person(c, &self.info.domain);
            participants.push(Participant {
                name: Some(p.full_name()),
                email: Some(p.email),
                internal: Some(false),
            });
        }
        let source_id = format!("call-{:07}-{tag}", self.idx + 1);
        self.calls.push(NewConversation {
            url: Some(format!("{CALL_URL}{source_id}")),
            source_id,
            title: Some(format!("{} <> Lumen Cloud: {title}", self.info.name)),
            started_at: Some(at),
            duration_seconds: Some(rng.range(15, 60) * 60),
            participants,
            deal_refs: vec![SourceRef {
                source: SOURCE.into(),
                source_id: self.id.clone(),
            }],
            account_refs: vec![SourceRef {
                source: SOURCE.into(),
                source_id: World::account_id(self.account),
            }],
            properties: json!({"kind": "call"}),
        });
    }

    /// A call from the journey (before epoch 0).
    fn journey_call(&mut self, at: DateTime<Utc>, title: &str) {
        self.call_seq += 1;
        let seq = self.call_seq;
        self.call(at, title, format!("{seq:02}"), seq);
    }

    /// A call logged by the touch of `epoch`.
    fn touch_call(&mut self, at: DateTime<Utc>, title: &str, epoch: u32) {
        self.call(at, title, format!("e{epoch}"), (1 << 32) + u64::from(epoch));
    }

    /// The journey up to epoch 0 (deals that existed then).
    fn journey(&mut self, rng: &mut Rng) {
        let t0 = self.w.t0();
        let mut t = self.created;
        while self.is_open() {
            let days = rng.exp(MEAN_DWELL_DAYS[self.stage]).max(0.5)
                * self.info.segment.pace()
                * if self.stalled { 3.0 } else { 1.0 };
            let exit = t + Duration::seconds((days * 86_400.0) as i64);
            self.slip(rng, t, exit.min(t0));
            if exit > t0 {
                return;
            }
            if rng.chance(0.03) {
                let at = (exit - Duration::hours(2)).max(t + Duration::seconds(1));
                let other = self.w.teammate(self.owner_rep, rng);
                self.set_owner(at, other);
            }
            let single = self.slots.len() == 1;
            let loss = LOSS_CHANCE[self.stage] * if single { 1.35 } else { 1.0 };
            let call_at = (exit - Duration::seconds(rng.range(2 * 3_600, 30 * 3_600)))
                .max(t + Duration::seconds(60));
            if rng.chance(loss) {
                if rng.chance(0.5) {
                    self.journey_call(call_at, "Check-in");
                }
                self.close_as(exit, LOST);
            } else if self.stage == LAST_OPEN_STAGE {
                self.journey_call(call_at, "Contract review");
                if rng.chance(0.4) {
                    self.rescope(exit, rng, 0.85, 0.97);
                }
                self.close_as(exit, WON);
            } else {
                let title = stage_call_title(self.stage);
                if rng.chance(0.8) {
                    self.journey_call(call_at, title);
                }
                let mut next = self.stage + 1;
                if next < LAST_OPEN_STAGE && rng.chance(0.08) {
                    next += 1;
                }
                if (2..=3).contains(&next) && rng.chance(0.25) {
                    self.rescope(exit, rng, 0.7, 1.5);
                }
                self.set_stage(exit, next);
            }
            t = exit;
        }
    }

    /// The touch of epoch `e`, within `(time(e-1), time(e)]`.
    fn touch(&mut self, e: u32) {
        let mut rng = Rng::new(self.w.seed, stream::TOUCH, self.idx, u64::from(e));
        let window_start = self.w.clock.time_at(e - 1);
        let step = self.w.clock.step().num_seconds();
        let at = window_start + Duration::seconds(rng.range(step / 4, step));
        let call_at = window_start + Duration::seconds(rng.range(1, step / 5));
        let u = rng.f64();
        if self.is_open() {
            if u < 0.30 {
                self.touch_call(call_at, stage_call_title(self.stage), e);
                if self.stage == LAST_OPEN_STAGE {
                    self.close_as(at, WON);
                } else {
                    if self.close < at.date_naive() {
                        self.push_close(at, &mut rng);
                    }
                    self.set_stage(at, self.stage + 1);
                }
            } else if u < 0.40 {
                self.close_as(at, LOST);
            } else if u < 0.62 {
                self.push_close(at, &mut rng);
            } else if u < 0.76 {
                self.rescope(at, &mut rng, 0.75, 1.35);
            } else if u < 0.78 {
                let other = self.w.teammate(self.owner_rep, &mut rng);
                self.set_owner(at, other);
            } else if u < 0.80 {
                self.deleted_at_epoch = Some(e);
            } else if u < 0.90 {
                self.touch_call(call_at, "Check-in", e);
            }
        } else if u < 0.02 {
            self.deleted_at_epoch = Some(e);
        } else if u < 0.05 && self.stage == WON {
            self.rescope(at, &mut rng, 0.95, 1.08);
        }
    }

    fn finish(self) -> DealLife {
        let stage = &STAGES[self.stage];
        let name = match self.deal_type {
            "expansion" => format!("{} – {} expansion", self.info.name, self.product),
            "renewal" => format!("{} – {} renewal", self.info.name, self.product),
            _ => format!("{} – {}", self.info.name, self.product),
        };
        let roles = self
            .slots
            .iter()
            .enumerate()
            .map(|(k, slot)| NewDealContact {
                deal_source_id: self.id.clone(),
                contact_source_id: World::contact_id(World::contact_of(self.account, *slot)),
                role: Some(CONTACT_ROLES[*slot as usize].into()),
                is_primary: k == 0,
            })
            .collect();
        DealLife {
            deal: NewDeal {
                source_id: self.id,
                name,
                amount: Some(Decimal::from(self.amount)),
                currency: Some("USD".into()),
                pipeline: Some(PIPELINE.into()),
                stage: Some(stage.id.into()),
                stage_label: Some(stage.label.into()),
                stage_category: stage.category,
                stage_order: Some(self.stage as i32),
                probability: Some(stage.probability),
                forecast_category: Some(forecast_category(self.stage, self.optimistic).into()),
                owner_source_id: Some(World::user_id(self.w.rep_user(self.owner_rep))),
                account_source_id: Some(World::account_id(self.account)),
                close_date: Some(self.close),
                source_created_at: Some(self.created),
                source_updated_at: Some(self.updated),
                properties: json!({
                    "deal_type": self.deal_type,
                    "lead_source": self.lead_source,
                    "segment": self.info.segment.as_str(),
                }),
            },
            roles,
            changes: self.changes,
            calls: self.calls,
            deleted_at_epoch: self.deleted_at_epoch,
        }
    }
}

fn stage_call_title(stage: usize) -> &'static str {
    match stage {
        0 => "Discovery call",
        1 => "Solution demo",
        2 => "Proposal review",
        3 => "Negotiation",
        _ => "Contract review",
    }
}

impl World {
    /// Deals that exist at `epoch` (deleted ones included).
    pub(crate) fn deal_count(&self, epoch: u32) -> u64 {
        self.deals0 + u64::from(epoch) * self.new_per_epoch
    }

    /// The epoch deal `i` was created in (0 for the deals of the first sync).
    pub(crate) fn creation_epoch(&self, i: u64) -> u32 {
        if i < self.deals0 {
            0
        } else {
            u32::try_from((i - self.deals0) / self.new_per_epoch + 1).unwrap_or(u32::MAX)
        }
    }

    /// Deal `i` as of `epoch`; `None` when it does not exist yet.
    pub(crate) fn deal_life(&self, i: u64, epoch: u32) -> Option<DealLife> {
        if i >= self.deal_count(epoch) {
            return None;
        }
        let born = self.creation_epoch(i);
        let mut rng = Rng::new(self.seed, stream::DEAL, i, 0);
        let mut sim = if born == 0 {
            // A growing business: more deals were created recently.
            let age = (rng.f64().powf(1.6) * (HISTORY_DAYS * 86_400) as f64) as i64 + 3_600;
            let mut sim = Sim::create(self, i, &mut rng, self.t0() - Duration::seconds(age));
            sim.journey(&mut rng);
            sim
        } else {
            let step = self.clock.step().num_seconds();
            let start = self.clock.time_at(born - 1);
            let created = start + Duration::seconds(rng.range(step / 50 + 1, step - step / 50));
            Sim::create(self, i, &mut rng, created)
        };
        // Touch epochs: after creation, in i's residue class, up to `epoch`.
        let residue = i % TOUCH_PERIOD;
        let first = u64::from(born) + 1;
        let mut e = first + (residue + TOUCH_PERIOD - first % TOUCH_PERIOD) % TOUCH_PERIOD;
        while e <= u64::from(epoch) && sim.deleted_at_epoch.is_none() {
            let e32 = e as u32;
            if touch_coin(self.seed, i, e32) {
                sim.touch(e32);
            }
            e += TOUCH_PERIOD;
        }
        Some(sim.finish())
    }
}
