//! The slowly-changing part of the dataset: users, accounts, contacts and the
//! pipeline. Each is a pure function of `(seed, index)`; none changes with the
//! epoch.

use chrono::{DateTime, Duration, Utc};
use pandora_core::model::{NewAccount, NewContact, NewPipelineStage, NewUser, StageCategory};
use serde_json::json;

use super::config::{SampleClock, SampleConfig};
use super::names::{
    COMPANY_HEADS, COMPANY_KINDS, COMPANY_TAILS, CONTACT_TITLES, FIRST_NAMES, GENERATIONS,
    INTERNAL_DOMAIN, LAST_NAMES, REGIONS,
};
use super::rng::{hash, stream, Rng};

/// Reps per manager.
const TEAM_SIZE: u64 = 8;
/// Contacts per account.
pub(crate) const CONTACTS_PER_ACCOUNT: u64 = 5;
/// Distinct (first, last) name pairs.
const NAME_PAIRS: u64 = (FIRST_NAMES.len() * LAST_NAMES.len()) as u64;
/// Distinct account names per generation.
const COMPANY_NAMES: u64 = (COMPANY_HEADS.len() * COMPANY_TAILS.len() * COMPANY_KINDS.len()) as u64;

/// The pipeline id.
pub(crate) const PIPELINE: &str = "default";
/// The pipeline label.
pub(crate) const PIPELINE_LABEL: &str = "New Business";

/// A stage of the sample pipeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage {
    pub id: &'static str,
    pub label: &'static str,
    pub category: StageCategory,
    pub probability: f64,
}

/// Index of the first open stage.
pub(crate) const FIRST_STAGE: usize = 0;
/// Index of the last open stage.
pub(crate) const LAST_OPEN_STAGE: usize = 4;
/// Index of the won stage.
pub(crate) const WON: usize = 5;
/// Index of the lost stage.
pub(crate) const LOST: usize = 6;

/// The pipeline, in display order.
pub(crate) const STAGES: [Stage; 7] = [
    Stage {
        id: "qualification",
        label: "Qualification",
        category: StageCategory::Open,
        probability: 0.1,
    },
    Stage {
        id: "discovery",
        label: "Discovery",
        category: StageCategory::Open,
        probability: 0.2,
    },
    Stage {
        id: "solution_demo",
        label: "Solution Demo",
        category: StageCategory::Open,
        probability: 0.4,
    },
    Stage {
        id: "proposal",
        label: "Proposal",
        category: StageCategory::Open,
        probability: 0.6,
    },
    Stage {
        id: "negotiation",
        label: "Negotiation",
        category: StageCategory::Open,
        probability: 0.8,
    },
    Stage {
        id: "closed_won",
        label: "Closed Won",
        category: StageCategory::Won,
        probability: 1.0,
    },
    Stage {
        id: "closed_lost",
        label: "Closed Lost",
        category: StageCategory::Lost,
        probability: 0.0,
    },
];

/// The pipeline's stages as records.
pub(crate) fn stage_records() -> Vec<NewPipelineStage> {
    STAGES
        .iter()
        .enumerate()
        .map(|(i, s)| NewPipelineStage {
            pipeline: PIPELINE.into(),
            pipeline_label: Some(PIPELINE_LABEL.into()),
            stage: s.id.into(),
            label: Some(s.label.into()),
            category: s.category,
            display_order: Some(i as i32),
            probability: Some(s.probability),
        })
        .collect()
}

/// Market segment of a team, an account and its deals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment {
    Smb,
    MidMarket,
    Enterprise,
}

impl Segment {
    const ALL: [Segment; 3] = [Segment::Smb, Segment::MidMarket, Segment::Enterprise];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Segment::Smb => "smb",
            Segment::MidMarket => "mid_market",
            Segment::Enterprise => "enterprise",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Segment::Smb => "SMB",
            Segment::MidMarket => "Mid-Market",
            Segment::Enterprise => "Enterprise",
        }
    }

    /// Median deal size in dollars.
    pub(crate) fn median_amount(self) -> f64 {
        match self {
            Segment::Smb => 12_000.0,
            Segment::MidMarket => 45_000.0,
            Segment::Enterprise => 180_000.0,
        }
    }

    /// Amounts are rounded to multiples of this.
    pub(crate) fn amount_step(self) -> i64 {
        match self {
            Segment::Smb => 500,
            Segment::MidMarket => 1_000,
            Segment::Enterprise => 5_000,
        }
    }

    /// Range of the sales cycle (days from creation to expected close).
    pub(crate) fn cycle_days(self) -> (i64, i64) {
        match self {
            Segment::Smb => (21, 60),
            Segment::MidMarket => (45, 100),
            Segment::Enterprise => (75, 180),
        }
    }

    /// How much slower than the base pace deals of this segment move.
    pub(crate) fn pace(self) -> f64 {
        match self {
            Segment::Smb => 0.8,
            Segment::MidMarket => 1.3,
            Segment::Enterprise => 2.0,
        }
    }

    fn quota(self) -> f64 {
        match self {
            Segment::Smb => 150_000.0,
            Segment::MidMarket => 300_000.0,
            Segment::Enterprise => 600_000.0,
        }
    }

    fn employees(self) -> (i64, i64) {
        match self {
            Segment::Smb => (10, 200),
            Segment::MidMarket => (200, 2_000),
            Segment::Enterprise => (2_000, 60_000),
        }
    }
}

/// What a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Cro,
    Vp { region: u64 },
    Manager { m: u64 },
    Rep { r: u64 },
}

/// A user's name and email (what call participants need).
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub first: &'static str,
    pub last: &'static str,
    pub email: String,
}

impl Person {
    pub(crate) fn full_name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

/// An account's identity (what deals and calls need).
#[derive(Debug, Clone)]
pub(crate) struct AccountInfo {
    pub name: String,
    pub domain: String,
    pub industry: &'static str,
    pub owner_rep: u64,
    pub segment: Segment,
    pub created_at: DateTime<Utc>,
}

/// Sizes of the dataset and the functions from index to entity.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub seed: u64,
    pub clock: SampleClock,
    /// Deals at epoch 0.
    pub deals0: u64,
    /// Deals created in each later epoch.
    pub new_per_epoch: u64,
    pub reps: u64,
    pub managers: u64,
    pub vps: u64,
    pub accounts: u64,
    name_offset: u64,
    company_offset: u64,
}

impl World {
    pub(crate) fn new(config: &SampleConfig, clock: SampleClock) -> Self {
        let n = u64::from(config.deals);
        // At least one team per segment; a rep carries ~150 deals a year.
        let reps = (n / 150).clamp(3 * TEAM_SIZE, 5_000);
        let managers = reps.div_ceil(TEAM_SIZE);
        let vps = managers.div_ceil(3).min(REGIONS.len() as u64);
        World {
            seed: config.seed,
            clock,
            deals0: n,
            new_per_epoch: (n / 250).max(1),
            reps,
            managers,
            vps,
            accounts: (n / 5).max(20),
            name_offset: hash(config.seed, stream::USER_NAMES, 0, 0) % NAME_PAIRS,
            company_offset: hash(config.seed, stream::ACCOUNT_NAMES, 0, 0) % COMPANY_NAMES,
        }
    }

    /// The time of epoch 0.
    pub(crate) fn t0(&self) -> DateTime<Utc> {
        self.clock.start()
    }

    // ---- users --------------------------------------------------------------

    pub(crate) fn user_count(&self) -> u64 {
        1 + self.vps + self.managers + self.reps
    }

    fn role(&self, idx: u64) -> Role {
        if idx == 0 {
            Role::Cro
        } else if idx <= self.vps {
            Role::Vp { region: idx - 1 }
        } else if idx <= self.vps + self.managers {
            Role::Manager {
                m: idx - 1 - self.vps,
            }
        } else {
            Role::Rep {
                r: idx - 1 - self.vps - self.managers,
            }
        }
    }

    pub(crate) fn user_id(idx: u64) -> String {
        format!("user-{:05}", idx + 1)
    }

    /// User index of rep `r`.
    pub(crate) fn rep_user(&self, r: u64) -> u64 {
        1 + self.vps + self.managers + r
    }

    /// User index of manager `m`.
    fn manager_user(&self, m: u64) -> u64 {
        1 + self.vps + m
    }

    /// Manager of rep `r`.
    pub(crate) fn manager_of_rep(&self, r: u64) -> u64 {
        r / TEAM_SIZE
    }

    /// User index of rep `r`'s manager.
    pub(crate) fn rep_manager_user(&self, r: u64) -> u64 {
        self.manager_user(self.manager_of_rep(r))
    }

    fn manager_region(&self, m: u64) -> u64 {
        (m / 3) % self.vps
    }

    fn manager_segment(&self, m: u64) -> Segment {
        Segment::ALL[(m % 3) as usize]
    }

    fn team_name(&self, m: u64) -> String {
        format!(
            "{} {} {}",
            REGIONS[self.manager_region(m) as usize],
            self.manager_segment(m).label(),
            m / (self.vps * 3) + 1
        )
    }

    /// Segment of rep `r`.
    pub(crate) fn rep_segment(&self, r: u64) -> Segment {
        self.manager_segment(self.manager_of_rep(r))
    }

    /// Another rep of `r`'s team (or `r` itself when alone), for reassignments.
    pub(crate) fn teammate(&self, r: u64, rng: &mut Rng) -> u64 {
        let m = self.manager_of_rep(r);
        let first = m * TEAM_SIZE;
        let size = (self.reps - first).min(TEAM_SIZE);
        if size <= 1 {
            return r;
        }
        let k = rng.below(size - 1);
        let other = first + k;
        if other >= r {
            other + 1
        } else {
            other
        }
    }

    /// Name and email of user `idx` (unique emails: the name pair is a
    /// permutation of the index).
    pub(crate) fn person(&self, idx: u64) -> Person {
        let j = (idx.wrapping_mul(7_919) + self.name_offset) % NAME_PAIRS;
        let first = FIRST_NAMES[(j % FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[(j / FIRST_NAMES.len() as u64) as usize];
        Person {
            first,
            last,
            email: format!(
                "{}.{}@{INTERNAL_DOMAIN}",
                first.to_lowercase(),
                last.to_lowercase()
            ),
        }
    }

    fn rep_quota(&self, r: u64) -> i64 {
        let mut rng = Rng::new(self.seed, stream::USER, self.rep_user(r), 0);
        let q = self.rep_segment(r).quota() * rng.uniform(0.85, 1.15);
        ((q / 5_000.0).round() as i64) * 5_000
    }

    fn team_quota(&self, m: u64) -> i64 {
        let first = m * TEAM_SIZE;
        (first..(first + TEAM_SIZE).min(self.reps))
            .map(|r| self.rep_quota(r))
            .sum()
    }

    /// User `idx` as a record.
    pub(crate) fn user(&self, idx: u64) -> NewUser {
        let p = self.person(idx);
        let (title, manager, team, quota, props) = match self.role(idx) {
            Role::Cro => (
                "Chief Revenue Officer".to_string(),
                None,
                "Leadership".to_string(),
                (0..self.reps).map(|r| self.rep_quota(r)).sum(),
                json!({"role": "cro"}),
            ),
            Role::Vp { region } => {
                let name = REGIONS[region as usize];
                (
                    format!("VP Sales, {name}"),
                    Some(0),
                    name.to_string(),
                    (0..self.managers)
                        .filter(|m| self.manager_region(*m) == region)
                        .map(|m| self.team_quota(m))
                        .sum(),
                    json!({"role": "vp", "region": name}),
                )
            }
            Role::Manager { m } => (
                format!("{} Sales Manager", self.manager_segment(m).label()),
                Some(1 + self.manager_region(m)),
                self.team_name(m),
                self.team_quota(m),
                json!({
                    "role": "manager",
                    "region": REGIONS[self.manager_region(m) as usize],
                    "segment": self.manager_segment(m).as_str(),
                }),
            ),
            Role::Rep { r } => {
                let m = self.manager_of_rep(r);
                (
                    format!("{} Account Executive", self.manager_segment(m).label()),
                    Some(self.manager_user(m)),
                    self.team_name(m),
                    self.rep_quota(r),
                    json!({
                        "role": "rep",
                        "region": REGIONS[self.manager_region(m) as usize],
                        "segment": self.manager_segment(m).as_str(),
                    }),
                )
            }
        };
        let mut properties = props;
        if let Some(obj) = properties.as_object_mut() {
            obj.insert("quota".into(), json!(quota));
            obj.insert("quota_period".into(), json!("quarter"));
            obj.insert("quota_currency".into(), json!("USD"));
        }
        NewUser {
            source_id: Self::user_id(idx),
            email: Some(p.email.clone()),
            name: Some(p.full_name()),
            title: Some(title),
            manager_source_id: manager.map(Self::user_id),
            team: Some(team),
            active: true,
            properties,
        }
    }

    // ---- accounts -----------------------------------------------------------

    pub(crate) fn account_id(a: u64) -> String {
        format!("acct-{:06}", a + 1)
    }

    /// A random account for a deal: a fifth of deals go to the largest 5% of
    /// accounts (the ones with many opportunities), the rest anywhere.
    pub(crate) fn pick_account(&self, rng: &mut Rng) -> u64 {
        if rng.chance(0.2) {
            rng.below((self.accounts / 20).max(1))
        } else {
            rng.below(self.accounts)
        }
    }

    pub(crate) fn account_info(&self, a: u64) -> AccountInfo {
        let j = (a.wrapping_mul(7_919) + self.company_offset) % COMPANY_NAMES;
        let generation = (a / COMPANY_NAMES) as usize;
        let heads = COMPANY_HEADS.len() as u64;
        let tails = COMPANY_TAILS.len() as u64;
        let head = COMPANY_HEADS[(j % heads) as usize];
        let tail = COMPANY_TAILS[((j / heads) % tails) as usize];
        let (kind, industry) = COMPANY_KINDS[(j / (heads * tails)) as usize];
        let (tld, legal) = GENERATIONS[generation % GENERATIONS.len()];
        let numeral = if generation >= GENERATIONS.len() {
            (generation / GENERATIONS.len() + 1).to_string()
        } else {
            String::new()
        };
        let mut rng = Rng::new(self.seed, stream::ACCOUNT, a, 0);
        let owner_rep = rng.below(self.reps);
        let age_days = rng.range(460, 1_500);
        let created_at =
            self.t0() - Duration::days(age_days) + Duration::seconds(rng.range(0, 86_399));
        AccountInfo {
            name: format!("{head}{tail} {kind}{legal}"),
            domain: format!(
                "{}{}{}{numeral}.{tld}",
                head.to_lowercase(),
                tail,
                kind.to_lowercase()
            ),
            industry,
            owner_rep,
            segment: self.rep_segment(owner_rep),
            created_at,
        }
    }

    /// Account `a` as a record.
    pub(crate) fn account(&self, a: u64) -> NewAccount {
        let info = self.account_info(a);
        let mut rng = Rng::new(self.seed, stream::ACCOUNT, a, 1);
        let (lo, hi) = info.segment.employees();
        let employees = rng.range(lo, hi);
        let region = REGIONS[self.manager_region(self.manager_of_rep(info.owner_rep)) as usize];
        let updated = info.created_at + Duration::seconds(rng.range(3_600, 60 * 86_400));
        NewAccount {
            source_id: Self::account_id(a),
            name: Some(info.name),
            domain: Some(info.domain),
            industry: Some(info.industry.into()),
            owner_source_id: Some(Self::user_id(self.rep_user(info.owner_rep))),
            source_created_at: Some(info.created_at),
            source_updated_at: Some(updated),
            properties: json!({
                "employees": employees,
                "segment": info.segment.as_str(),
                "region": region,
            }),
        }
    }

    // ---- contacts -----------------------------------------------------------

    pub(crate) fn contact_count(&self) -> u64 {
        self.accounts * CONTACTS_PER_ACCOUNT
    }

    pub(crate) fn contact_id(c: u64) -> String {
        format!("cont-{:07}", c + 1)
    }

    /// Contact index of `slot` at account `a`.
    pub(crate) fn contact_of(a: u64, slot: u64) -> u64 {
        a * CONTACTS_PER_ACCOUNT + slot
    }

    /// Name of contact `c`, and its email at `domain` (unique within the account).
    pub(crate) fn contact_person(&self, c: u64, domain: &str) -> Person {
        let (a, slot) = (c / CONTACTS_PER_ACCOUNT, c % CONTACTS_PER_ACCOUNT);
        let j = (hash(self.seed, stream::CONTACT, a, u64::MAX) + slot * 1_987) % NAME_PAIRS;
        let first = FIRST_NAMES[(j % FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[(j / FIRST_NAMES.len() as u64) as usize];
        Person {
            first,
            last,
            email: format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
        }
    }

    /// Contact `c` as a record.
    pub(crate) fn contact(&self, c: u64) -> NewContact {
        let (a, slot) = (c / CONTACTS_PER_ACCOUNT, c % CONTACTS_PER_ACCOUNT);
        let info = self.account_info(a);
        let p = self.contact_person(c, &info.domain);
        let mut rng = Rng::new(self.seed, stream::CONTACT, c, 0);
        let title = *rng.pick(CONTACT_TITLES[slot as usize]);
        let created = info.created_at + Duration::seconds(rng.range(600, 10 * 86_400));
        let updated = created + Duration::seconds(rng.range(0, 30 * 86_400));
        NewContact {
            source_id: Self::contact_id(c),
            first_name: Some(p.first.into()),
            last_name: Some(p.last.into()),
            email: Some(p.email),
            title: Some(title.into()),
            account_source_id: Some(Self::account_id(a)),
            source_created_at: Some(created),
            source_updated_at: Some(updated),
            properties: serde_json::Value::Null,
        }
    }
}
