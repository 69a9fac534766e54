//! Properties of the sample dataset: determinism, sizes, referential
//! integrity, history consistency, realism, epoch consistency and random
//! access to pages.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use pandora_core::batch::{RecordBatch, RecordKind};
use pandora_core::model::{ChangeOrigin, DealField, NewDeal, NewDealChange, StageCategory};

use super::deal::{is_candidate, TOUCH_PERIOD};
use super::world::STAGES;
use super::{SampleConfig, SampleGenerator, SOURCE};

fn generator(deals: u32, seed: u64, page_size: usize) -> SampleGenerator {
    SampleGenerator::new(SampleConfig::new(deals, seed).expect("config"))
        .expect("generator")
        .with_page_size(page_size)
}

fn role_key(deal: &str, contact: &str) -> String {
    format!("{deal}/{contact}")
}

/// What a store holds after applying pages: records by (kind, source id) with
/// a tombstone flag, and the field history keyed like the stores' unique index.
#[derive(Debug, Default, PartialEq)]
struct State {
    records: BTreeMap<(RecordKind, String), (serde_json::Value, bool)>,
    changes: BTreeMap<(String, DealField, DateTime<Utc>, Option<String>), NewDealChange>,
}

impl State {
    fn upsert<T: serde::Serialize>(&mut self, kind: RecordKind, id: String, record: &T) {
        let json = serde_json::to_value(record).expect("json");
        self.records.insert((kind, id), (json, false));
    }

    /// Applies a page the way the stores write it: every kind's upserts
    /// (reviving tombstones), then its deletions of existing rows, then the
    /// history (each change's deal must exist; repeats are ignored).
    fn apply(&mut self, b: &RecordBatch) {
        assert_eq!(b.source, SOURCE);
        for r in &b.users {
            self.upsert(RecordKind::User, r.source_id.clone(), r);
        }
        for r in &b.accounts {
            self.upsert(RecordKind::Account, r.source_id.clone(), r);
        }
        for r in &b.contacts {
            self.upsert(RecordKind::Contact, r.source_id.clone(), r);
        }
        for r in &b.stages {
            self.upsert(RecordKind::PipelineStage, r.source_id(), r);
        }
        for r in &b.deals {
            self.upsert(RecordKind::Deal, r.source_id.clone(), r);
        }
        for r in &b.deal_contacts {
            let key = role_key(&r.deal_source_id, &r.contact_source_id);
            self.upsert(RecordKind::DealContact, key, r);
        }
        for r in &b.conversations {
            self.upsert(RecordKind::Conversation, r.source_id.clone(), r);
        }
        for d in &b.deletions {
            if let Some(row) = self.records.get_mut(&(d.kind, d.source_id.clone())) {
                row.1 = true;
            }
        }
        for c in &b.deal_changes {
            assert!(
                self.records
                    .contains_key(&(RecordKind::Deal, c.deal_source_id.clone())),
                "change of unknown deal {}",
                c.deal_source_id
            );
            let key = (
                c.deal_source_id.clone(),
                c.field,
                c.changed_at,
                c.new_value.clone(),
            );
            self.changes.entry(key).or_insert_with(|| c.clone());
        }
    }

    fn of(pages: impl IntoIterator<Item = RecordBatch>) -> Self {
        let mut s = State::default();
        for p in pages {
            s.apply(&p);
        }
        s
    }

    fn count(&self, kind: RecordKind) -> usize {
        self.records.keys().filter(|(k, _)| *k == kind).count()
    }
}

#[test]
fn the_same_seed_gives_the_same_pages_and_another_seed_others() {
    let a: Vec<RecordBatch> = generator(300, 1, 700).full_sync(0).collect();
    let b: Vec<RecordBatch> = generator(300, 1, 700).full_sync(0).collect();
    assert_eq!(a, b);
    let a5: Vec<RecordBatch> = generator(300, 1, 700).full_sync(5).collect();
    let b5: Vec<RecordBatch> = generator(300, 1, 700).full_sync(5).collect();
    assert_eq!(a5, b5);
    let c1: Vec<RecordBatch> = generator(300, 1, 700).changes_since(3).collect();
    let c2: Vec<RecordBatch> = generator(300, 1, 700).changes_since(3).collect();
    assert_eq!(c1, c2);

    let other: Vec<RecordBatch> = generator(300, 2, 700).full_sync(0).collect();
    assert_eq!(a.len(), other.len(), "the shape depends on the size only");
    let deals = |pages: &[RecordBatch]| -> Vec<NewDeal> {
        pages.iter().flat_map(|p| p.deals.clone()).collect()
    };
    let (da, dother) = (deals(&a), deals(&other));
    let differing = da.iter().zip(&dother).filter(|(x, y)| x != y).count();
    assert!(differing > 290, "only {differing} deals differ");
    assert_ne!(a[0].users, other[0].users);
}

#[test]
fn sizes_are_respected() {
    for (deals, page) in [(100u32, 50usize), (250, 1_000), (1_234, 333)] {
        let g = generator(deals, 9, page);
        let pages: Vec<RecordBatch> = g.full_sync(0).collect();
        assert_eq!(pages.len() as u64, g.full_page_count(0));
        let s = State::of(pages.clone());
        assert_eq!(s.count(RecordKind::Deal) as u64, u64::from(deals));
        assert_eq!(s.count(RecordKind::User) as u64, g.user_count());
        assert_eq!(s.count(RecordKind::Account) as u64, g.account_count());
        assert_eq!(s.count(RecordKind::Contact) as u64, g.contact_count());
        assert_eq!(s.count(RecordKind::PipelineStage), 7);
        assert!(s.records.values().all(|(_, deleted)| !deleted));
        // Pages never repeat a record, and fixed-size streams respect the page size.
        let total_deals: usize = pages.iter().map(|p| p.deals.len()).sum();
        assert_eq!(total_deals, deals as usize);
        for p in &pages {
            assert!(p.users.len() + p.accounts.len() + p.contacts.len() <= page);
            assert!(p.deals.len() as u64 <= g.deals_per_page());
            assert!(!p.is_empty());
        }
        // Later epochs add deals.
        let later = State::of(g.full_sync(10));
        assert_eq!(later.count(RecordKind::Deal) as u64, g.deal_count(10));
        assert_eq!(
            g.deal_count(10),
            u64::from(deals) + 10 * g.new_deals_per_epoch()
        );
    }
    let small = generator(100, 1, 5_000);
    assert!(small.rep_count() >= 6);
    assert_eq!(small.stage_count(), 7);
}

/// Every reference of every record points at a record delivered in the same
/// page or an earlier one (the stores write a page's kinds in dependency order).
fn check_references(pages: impl IntoIterator<Item = RecordBatch>, mut seen: State) -> State {
    let stages: HashSet<&str> = STAGES.iter().map(|s| s.id).collect();
    for page in pages {
        let mut next = std::mem::take(&mut seen);
        next.apply(&page);
        let has = |kind: RecordKind, id: &str| next.records.contains_key(&(kind, id.to_string()));
        for u in &page.users {
            if let Some(m) = &u.manager_source_id {
                assert!(has(RecordKind::User, m), "manager {m}");
            }
        }
        for a in &page.accounts {
            assert!(has(
                RecordKind::User,
                a.owner_source_id.as_deref().expect("owner")
            ));
        }
        for c in &page.contacts {
            assert!(has(
                RecordKind::Account,
                c.account_source_id.as_deref().expect("account")
            ));
        }
        for d in &page.deals {
            assert!(has(
                RecordKind::User,
                d.owner_source_id.as_deref().expect("owner")
            ));
            assert!(has(
                RecordKind::Account,
                d.account_source_id.as_deref().expect("account")
            ));
            assert!(stages.contains(d.stage.as_deref().expect("stage")));
            let key = format!(
                "{}/{}",
                d.pipeline.as_deref().expect("pipeline"),
                d.stage.as_deref().expect("stage")
            );
            assert!(has(RecordKind::PipelineStage, &key), "stage {key}");
        }
        for r in &page.deal_contacts {
            assert!(has(RecordKind::Deal, &r.deal_source_id));
            assert!(has(RecordKind::Contact, &r.contact_source_id));
        }
        for c in &page.deal_changes {
            assert!(has(RecordKind::Deal, &c.deal_source_id));
            match c.field {
                DealField::Stage => {
                    for v in [&c.old_value, &c.new_value].into_iter().flatten() {
                        assert!(stages.contains(v.as_str()), "stage {v}");
                    }
                }
                DealField::Owner => {
                    for v in [&c.old_value, &c.new_value].into_iter().flatten() {
                        assert!(has(RecordKind::User, v), "owner {v}");
                    }
                }
                _ => {}
            }
        }
        for c in &page.conversations {
            assert!(!c.deal_refs.is_empty() && !c.account_refs.is_empty());
            for r in &c.deal_refs {
                assert_eq!(r.source, SOURCE);
                assert!(has(RecordKind::Deal, &r.source_id));
            }
            for r in &c.account_refs {
                assert!(has(RecordKind::Account, &r.source_id));
            }
            assert!(c.participants.iter().any(|p| p.internal == Some(true)));
            assert!(c.participants.iter().any(|p| p.internal == Some(false)));
        }
        for d in &page.deletions {
            assert!(has(d.kind, &d.source_id), "deletion of unknown {d:?}");
        }
        seen = next;
    }
    seen
}

#[test]
fn every_reference_exists() {
    let g = generator(400, 3, 250);
    let state = check_references(g.full_sync(0), State::default());
    let mut state = state;
    for e in 0..12 {
        state = check_references(g.changes_since(e), state);
    }
    check_references(g.full_sync(12), State::default());

    // Identities are unique where a vendor would make them unique.
    let pages: Vec<RecordBatch> = g.full_sync(0).collect();
    let emails: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.users.iter().map(|u| u.email.as_deref().expect("email")))
        .collect();
    assert_eq!(emails.len(), emails.iter().collect::<HashSet<_>>().len());
    let domains: Vec<&str> = pages
        .iter()
        .flat_map(|p| {
            p.accounts
                .iter()
                .map(|a| a.domain.as_deref().expect("domain"))
        })
        .collect();
    assert_eq!(domains.len(), domains.iter().collect::<HashSet<_>>().len());
    let contact_emails: Vec<&str> = pages
        .iter()
        .flat_map(|p| {
            p.contacts
                .iter()
                .map(|c| c.email.as_deref().expect("email"))
        })
        .collect();
    assert_eq!(
        contact_emails.len(),
        contact_emails.iter().collect::<HashSet<_>>().len()
    );
    // Reps have managers, a team and a quarterly quota.
    let reps: Vec<_> = pages
        .iter()
        .flat_map(|p| p.users.iter())
        .filter(|u| u.properties["role"] == "rep")
        .collect();
    assert_eq!(reps.len() as u64, g.rep_count());
    for r in reps {
        assert!(r.manager_source_id.is_some() && r.team.is_some());
        assert!(r.properties["quota"].as_i64().expect("quota") > 0);
        assert_eq!(r.properties["quota_period"], "quarter");
    }
}

#[test]
fn account_names_stay_unique_at_the_largest_size() {
    let g = generator(1_000_000, 42, 5_000);
    let world = &g.world;
    let domains: HashSet<String> = (0..world.accounts)
        .map(|a| world.account_info(a).domain)
        .collect();
    assert_eq!(domains.len() as u64, world.accounts);
    let emails: HashSet<String> = (0..world.user_count())
        .map(|u| world.person(u).email)
        .collect();
    assert_eq!(emails.len() as u64, world.user_count());
}

fn value_of(deal: &NewDeal, field: DealField) -> Option<String> {
    field.value_of(deal)
}

/// Checks each deal's history against its record.
fn check_history(pages: impl IntoIterator<Item = RecordBatch>) -> BTreeMap<DealField, usize> {
    let mut per_field: BTreeMap<DealField, usize> = BTreeMap::new();
    for page in pages {
        let mut by_deal: HashMap<&str, Vec<&NewDealChange>> = HashMap::new();
        for c in &page.deal_changes {
            assert_eq!(c.origin, ChangeOrigin::Vendor);
            by_deal.entry(&c.deal_source_id).or_default().push(c);
        }
        for d in &page.deals {
            let created = d.source_created_at.expect("created");
            let updated = d.source_updated_at.expect("updated");
            let changes = by_deal.remove(d.source_id.as_str()).unwrap_or_default();
            assert!(!changes.is_empty(), "{} has no history", d.source_id);
            assert_eq!(
                changes.iter().map(|c| c.changed_at).max(),
                Some(updated),
                "{}: updated at its last change",
                d.source_id
            );
            let stage_times: HashSet<DateTime<Utc>> = changes
                .iter()
                .filter(|c| c.field == DealField::Stage)
                .map(|c| c.changed_at)
                .collect();
            for field in DealField::ALL {
                let mut chain: Vec<&&NewDealChange> =
                    changes.iter().filter(|c| c.field == field).collect();
                chain.sort_by_key(|c| c.changed_at);
                *per_field.entry(field).or_default() += chain.len();
                for w in chain.windows(2) {
                    assert!(w[0].changed_at < w[1].changed_at, "{field:?} twice at once");
                    assert_eq!(w[0].new_value, w[1].old_value, "{} {field:?}", d.source_id);
                }
                for c in &chain {
                    assert!(c.changed_at >= created && c.changed_at <= updated);
                    assert_ne!(c.old_value, c.new_value);
                    if field == DealField::CloseDate && !stage_times.contains(&c.changed_at) {
                        assert!(
                            c.new_value > c.old_value,
                            "{}: close dates only get pushed out",
                            d.source_id
                        );
                    }
                }
                if let Some(last) = chain.last() {
                    assert_eq!(
                        last.new_value,
                        value_of(d, field),
                        "{} {field:?}",
                        d.source_id
                    );
                }
                if field == DealField::Stage {
                    let first = chain.first().expect("initial stage");
                    assert_eq!(first.old_value, None);
                    assert_eq!(first.changed_at, created);
                }
            }
            // The record agrees with its stage.
            let (order, stage) = STAGES
                .iter()
                .enumerate()
                .find(|(_, s)| Some(s.id) == d.stage.as_deref())
                .expect("known stage");
            assert_eq!(d.stage_order, Some(order as i32));
            assert_eq!(d.stage_category, stage.category);
            assert_eq!(d.probability, Some(stage.probability));
            assert_eq!(d.stage_label.as_deref(), Some(stage.label));
            let fc = d.forecast_category.as_deref().expect("forecast");
            match stage.category {
                StageCategory::Won => assert_eq!(fc, "closed"),
                StageCategory::Lost => assert_eq!(fc, "omitted"),
                StageCategory::Open => {
                    assert!(["pipeline", "best_case", "commit"].contains(&fc))
                }
            }
            assert!(d.amount.expect("amount") > rust_decimal::Decimal::ZERO);
            assert!(created <= updated);
        }
        assert!(by_deal.is_empty(), "history of deals outside the page");
    }
    per_field
}

#[test]
fn history_is_consistent_with_final_values() {
    let g = generator(800, 11, 2_000);
    for epoch in [0, 30] {
        let per_field = check_history(g.full_sync(epoch));
        for field in DealField::ALL {
            assert!(
                per_field.get(&field).copied().unwrap_or(0) > 0,
                "no {field:?} changes"
            );
        }
    }
}

#[test]
fn the_dataset_looks_like_a_real_pipeline() {
    let g = generator(3_000, 5, 5_000);
    let pages: Vec<RecordBatch> = g.full_sync(0).collect();
    let deals: Vec<&NewDeal> = pages.iter().flat_map(|p| p.deals.iter()).collect();
    let share = |cat: StageCategory| {
        deals.iter().filter(|d| d.stage_category == cat).count() as f64 / deals.len() as f64
    };
    let (open, won, lost) = (
        share(StageCategory::Open),
        share(StageCategory::Won),
        share(StageCategory::Lost),
    );
    println!("open {open:.3} won {won:.3} lost {lost:.3}");
    assert!((0.12..0.40).contains(&open), "open {open}");
    assert!((0.15..0.40).contains(&won), "won {won}");
    assert!((0.30..0.65).contains(&lost), "lost {lost}");
    let win_rate = won / (won + lost);
    assert!((0.2..0.5).contains(&win_rate), "win rate {win_rate}");

    // Open deals: 20–30% single-threaded, the others 2–5 contacts with one primary.
    let mut roles: HashMap<&str, Vec<_>> = HashMap::new();
    for r in pages.iter().flat_map(|p| p.deal_contacts.iter()) {
        roles.entry(r.deal_source_id.as_str()).or_default().push(r);
    }
    let contact_account: HashMap<&str, &str> = pages
        .iter()
        .flat_map(|p| p.contacts.iter())
        .map(|c| {
            (
                c.source_id.as_str(),
                c.account_source_id.as_deref().expect("account"),
            )
        })
        .collect();
    let mut open_deals = 0;
    let mut single = 0;
    for d in &deals {
        let rs = &roles[d.source_id.as_str()];
        assert!((1..=5).contains(&rs.len()));
        assert_eq!(rs.iter().filter(|r| r.is_primary).count(), 1);
        assert!(rs.iter().all(|r| r.role.is_some()));
        for r in rs {
            assert_eq!(
                Some(contact_account[r.contact_source_id.as_str()]),
                d.account_source_id.as_deref(),
                "a deal's contacts work at its account"
            );
        }
        if d.stage_category == StageCategory::Open {
            open_deals += 1;
            single += usize::from(rs.len() == 1);
        }
    }
    let single_share = single as f64 / open_deals as f64;
    assert!(
        (0.18..=0.32).contains(&single_share),
        "single-threaded share {single_share}"
    );

    // Some open deals are overdue, amounts vary by segment, calls exist.
    let t0 = g.time_at(0).date_naive();
    let overdue = deals
        .iter()
        .filter(|d| d.stage_category == StageCategory::Open && d.close_date.expect("close") < t0)
        .count();
    assert!(overdue > 0 && (overdue as f64) < open_deals as f64 * 0.5);
    let calls: usize = pages.iter().map(|p| p.conversations.len()).sum();
    assert!(calls > deals.len(), "{calls} calls");
    let amounts: BTreeSet<_> = deals.iter().map(|d| d.amount).collect();
    assert!(amounts.len() > 100);

    let records: usize = pages
        .iter()
        .filter(|p| !p.deals.is_empty())
        .map(|p| p.len())
        .sum();
    let per_deal = records as f64 / deals.len() as f64;
    println!("records per deal: {per_deal:.2}");
    assert!(
        (6.0..14.0).contains(&per_deal),
        "{per_deal} records per deal"
    );
}

#[test]
fn about_one_percent_of_deals_change_per_step() {
    let g = generator(5_000, 8, 5_000);
    let mut changed = 0;
    let mut deleted = 0;
    let mut created = 0;
    let mut touched_records = 0;
    for e in 0..8 {
        let since = g.time_at(e);
        let until = g.time_at(e + 1);
        let mut deals_in_step = HashSet::new();
        for page in g.changes_since(e) {
            if page
                .deals
                .iter()
                .all(|d| d.source_created_at.is_some_and(|t| t <= since))
            {
                touched_records += page.len();
            }
            for c in &page.deal_changes {
                assert!(c.changed_at > since && c.changed_at <= until);
            }
            for c in &page.conversations {
                let t = c.started_at.expect("start");
                assert!(t > since && t <= until);
            }
            for d in &page.deals {
                let t = d.source_updated_at.expect("updated");
                assert!(t > since && t <= until);
                assert!(
                    deals_in_step.insert(d.source_id.clone()),
                    "deal twice in a step"
                );
                if d.source_created_at.expect("created") > since {
                    created += 1;
                } else {
                    changed += 1;
                }
            }
            deleted += page
                .deletions
                .iter()
                .filter(|d| d.kind == RecordKind::Deal)
                .count();
        }
    }
    let per_step = changed as f64 / 8.0 / 5_000.0;
    println!(
        "changed per step {per_step:.4}, deleted {deleted}, created {created}, \
         records per touched deal {:.2}",
        touched_records as f64 / (8 * g.touched_count(0)) as f64
    );
    assert!(
        (0.005..0.02).contains(&per_step),
        "{per_step} changed per step"
    );
    assert_eq!(created as u64, 8 * g.new_deals_per_epoch());
    assert!(deleted > 0 && deleted < changed / 5, "{deleted} deletions");
}

/// The core property: full(0) + changes of 1..=k == full(k), row for row,
/// tombstones and history included.
#[test]
fn full_sync_plus_changes_equals_a_later_full_sync() {
    for (deals, seed, page) in [(150u32, 1u64, 37usize), (400, 77, 500)] {
        let g = generator(deals, seed, page);
        let mut incremental = State::of(g.full_sync(0));
        let mut deletions = 0;
        let mut pages_with_changes = 0;
        for e in 0..40u32 {
            for p in g.changes_since(e) {
                deletions += p.deletions.len();
                pages_with_changes += usize::from(!p.deal_changes.is_empty());
                incremental.apply(&p);
            }
            if [0, 7, 19, 39].contains(&e) {
                let full = State::of(g.full_sync(e + 1));
                assert!(
                    incremental == full,
                    "epoch {}: {}",
                    e + 1,
                    describe_difference(&incremental, &full)
                );
            }
        }
        assert!(deletions > 0, "no deletions in 40 steps");
        assert!(pages_with_changes > 20);
        // Replaying a step changes nothing (pages are idempotent).
        let before = State::of(g.full_sync(40));
        let mut again = State::of(g.full_sync(40));
        for p in g.changes_since(39) {
            again.apply(&p);
        }
        assert!(before == again);
    }
}

fn describe_difference(a: &State, b: &State) -> String {
    for (k, v) in &a.records {
        match b.records.get(k) {
            None => return format!("{k:?} only in the incremental state"),
            Some(w) if w != v => return format!("{k:?} differs:\n{v:?}\n{w:?}"),
            _ => {}
        }
    }
    for k in b.records.keys() {
        if !a.records.contains_key(k) {
            return format!("{k:?} only in the full state");
        }
    }
    if let Some(k) = a.changes.keys().find(|k| !b.changes.contains_key(*k)) {
        return format!("change {k:?} only in the incremental state");
    }
    if let Some(k) = b.changes.keys().find(|k| !a.changes.contains_key(*k)) {
        return format!("change {k:?} only in the full state");
    }
    "history rows differ".into()
}

#[test]
fn a_page_computed_alone_equals_the_page_reached_by_iterating() {
    let g = generator(300, 21, 120);
    for epoch in [0u32, 9] {
        let pages: Vec<RecordBatch> = g.full_sync(epoch).collect();
        assert_eq!(pages.len() as u64, g.full_page_count(epoch));
        assert_eq!(g.full_sync(epoch).len(), pages.len());
        for (k, p) in pages.iter().enumerate().rev() {
            assert_eq!(g.full_page(epoch, k as u64).as_ref(), Some(p), "page {k}");
        }
        assert_eq!(g.full_page(epoch, pages.len() as u64), None);
        assert_eq!(g.full_sync(epoch).nth(5).as_ref(), Some(&pages[5]));

        let changes: Vec<RecordBatch> = g.changes_since(epoch).collect();
        assert!(changes.len() > 1, "several change pages");
        assert_eq!(changes.len() as u64, g.change_page_count(epoch));
        for (k, p) in changes.iter().enumerate().rev() {
            assert_eq!(
                g.change_page(epoch, k as u64).as_ref(),
                Some(p),
                "change page {k}"
            );
        }
        assert_eq!(g.change_page(epoch, changes.len() as u64), None);
        let mut it = g.changes_since(epoch);
        it.next();
        assert_eq!(it.position(), 1);
    }
}

#[test]
fn a_page_of_a_million_deals_is_produced_alone() {
    let g = generator(1_000_000, 42, 5_000);
    assert_eq!(g.deal_count(0), 1_000_000);
    let last = g.full_page_count(0) - 1;
    let started = std::time::Instant::now();
    let page = g.full_page(0, last).expect("last page");
    assert_eq!(
        page.deals.last().map(|d| d.source_id.as_str()),
        Some("deal-1000000")
    );
    assert!(page.len() < 4 * g.page_size());
    let users = g.full_page(0, 0).expect("users");
    assert_eq!(users.users.len() as u64, g.user_count().min(5_000));
    // One step of changes is found without generating the workspace.
    let touched = g.touched_count(0);
    assert!((45_000..55_000).contains(&touched), "{touched}");
    let change = g.change_page(0, 3).expect("a change page");
    assert!(!change.deals.is_empty());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn touch_candidates_follow_the_residue_class() {
    let g = generator(100, 1, 100);
    for i in 0..100 {
        let candidates = (1..=16).filter(|e| is_candidate(i, *e)).count() as u64;
        assert_eq!(candidates, 16 / TOUCH_PERIOD);
    }
    // A deal's state changes only at its touch epochs.
    for i in 0..100u64 {
        for e in 1..=16u32 {
            if !is_candidate(i, e) {
                let before = g.deal_life(i, e - 1).map(|l| l.deal);
                let after = g.deal_life(i, e).map(|l| l.deal);
                assert_eq!(before, after, "deal {i} changed at epoch {e}");
            }
        }
    }
}

#[test]
fn the_generator_is_shareable_and_epochs_are_bounded() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<SampleGenerator>();
    let g = generator(100, 1, 100);
    let max = super::SampleClock::MAX_EPOCH;
    assert_eq!(g.full_page_count(max + 1), 0);
    assert_eq!(g.full_page(u32::MAX, 0), None);
    assert_eq!(g.changes_since(max).count(), 0);
    assert_eq!(g.change_page(u32::MAX, 0), None);
    assert_eq!(g.change_page_count(u32::MAX), 0);
}
