//! Hand-built workspaces for skill tests: stages, users, deals with their
//! field history, quotas, turned into a `SkillContext` without a store.

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use pandora_core::model::{
    ChangeOrigin, Contact, Conversation, Deal, DealChange, DealContact, DealField, NewContact,
    NewConversation, NewDeal, NewDealContact, NewPipelineStage, NewUser, Participant,
    PipelineStage, Quota, SourceRef, StageCategory, User,
};
use pandora_core::skill::loader::from_history;
use pandora_core::skill::{Period, PreviousReport, Settings, SkillContext, StageCatalog};
use rust_decimal::Decimal;
use uuid::Uuid;

/// `2026-month-day` at `hour`:00 UTC.
pub fn t(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, hour, 0, 0)
        .single()
        .expect("time")
}

/// `2026-month-day`.
pub fn d(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).expect("date")
}

/// A workspace under construction.
#[derive(Default)]
pub struct Fixture {
    pub stages: Vec<PipelineStage>,
    pub users: Vec<User>,
    pub deals: Vec<(Deal, Vec<DealChange>)>,
    pub quotas: Vec<Quota>,
    pub contacts: Vec<Contact>,
    pub deal_contacts: Vec<DealContact>,
    pub conversations: Vec<Conversation>,
    next: u128,
}

/// A deal's state as `Fixture::deal` takes it.
pub struct DealSpec<'a> {
    pub name: &'a str,
    pub pipeline: &'a str,
    pub stage: &'a str,
    pub amount: i64,
    pub close: NaiveDate,
    pub owner: &'a str,
    pub created: DateTime<Utc>,
    pub forecast: Option<&'a str>,
}

impl Fixture {
    fn id(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next)
    }

    /// The sales pipeline: lead (1), demo (2), proposal (3), won (4), lost (5).
    pub fn sales_pipeline(&mut self) {
        for (i, (stage, cat)) in [
            ("lead", StageCategory::Open),
            ("demo", StageCategory::Open),
            ("proposal", StageCategory::Open),
            ("won", StageCategory::Won),
            ("lost", StageCategory::Lost),
        ]
        .into_iter()
        .enumerate()
        {
            let id = self.id();
            self.stages.push(PipelineStage {
                id,
                workspace_id: Uuid::nil(),
                source: "test".into(),
                fields: NewPipelineStage {
                    pipeline: "sales".into(),
                    pipeline_label: Some("Sales".into()),
                    stage: stage.into(),
                    label: Some(stage.to_uppercase()),
                    category: cat,
                    display_order: Some(i as i32 + 1),
                    probability: None,
                },
            });
        }
    }

    /// The category of a stage of the catalog.
    pub fn category(&self, stage: &str) -> StageCategory {
        self.stages
            .iter()
            .find(|s| s.fields.stage == stage)
            .map(|s| s.fields.category)
            .unwrap_or_default()
    }

    /// A user; returns its id.
    pub fn user(&mut self, source_id: &str, manager: Option<&str>, team: &str) -> Uuid {
        let id = self.id();
        self.users.push(User {
            id,
            workspace_id: Uuid::nil(),
            source: "test".into(),
            fields: NewUser {
                source_id: source_id.into(),
                email: Some(format!("{source_id}@seller.io")),
                name: Some(format!(
                    "{}{}",
                    &source_id[..1].to_uppercase(),
                    &source_id[1..]
                )),
                manager_source_id: manager.map(Into::into),
                team: Some(team.into()),
                active: true,
                properties: serde_json::json!({}),
                ..Default::default()
            },
            manager_id: None,
            created_at: t(1, 1, 0),
            updated_at: t(1, 1, 0),
            deleted_at: None,
        });
        id
    }

    /// A quota set through Pandora.
    pub fn quota(&mut self, user: Uuid, period: &str, amount: i64) {
        self.quotas.push(Quota {
            workspace_id: Uuid::nil(),
            user_id: user,
            period: period.into(),
            amount: Decimal::from(amount),
            currency: None,
            updated_at: t(1, 1, 0),
        });
    }

    /// A deal in its *current* state (its history added with `change`);
    /// returns its index.
    pub fn deal(&mut self, spec: DealSpec<'_>) -> usize {
        let id = self.id();
        let category = self.category(spec.stage);
        self.deals.push((
            Deal {
                id,
                workspace_id: Uuid::nil(),
                source: "test".into(),
                fields: NewDeal {
                    source_id: spec.name.to_lowercase(),
                    name: spec.name.into(),
                    amount: Some(Decimal::from(spec.amount)),
                    currency: Some("USD".into()),
                    pipeline: Some(spec.pipeline.into()),
                    stage: Some(spec.stage.into()),
                    stage_category: category,
                    forecast_category: spec.forecast.map(Into::into),
                    owner_source_id: Some(spec.owner.into()),
                    close_date: Some(spec.close),
                    source_created_at: Some(spec.created),
                    properties: serde_json::json!({}),
                    ..Default::default()
                },
                owner_id: None,
                account_id: None,
                computed: None,
                created_at: spec.created,
                updated_at: spec.created,
                deleted_at: None,
            },
            Vec::new(),
        ));
        self.deals.len() - 1
    }

    /// A change of deal `i`'s `field` from `old` to `new` at `at`.
    pub fn change(&mut self, i: usize, field: DealField, old: &str, new: &str, at: DateTime<Utc>) {
        let id = self.id();
        let deal_id = self.deals[i].0.id;
        self.deals[i].1.push(DealChange {
            id,
            workspace_id: Uuid::nil(),
            deal_id,
            field,
            old_value: Some(old.into()),
            new_value: Some(new.into()),
            changed_at: at,
            origin: ChangeOrigin::Vendor,
        });
    }

    /// Sets deal `i`'s account (vendor id).
    pub fn account(&mut self, i: usize, account: &str) {
        self.deals[i].0.fields.account_source_id = Some(account.into());
    }

    /// A contact `First Last <email>` with `title` at `account`; returns its
    /// source id (its first name, lower-cased).
    pub fn contact(&mut self, name: &str, email: &str, title: &str, account: &str) -> String {
        let id = self.id();
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let source_id = first.to_lowercase();
        self.contacts.push(Contact {
            id,
            workspace_id: Uuid::nil(),
            source: "test".into(),
            fields: NewContact {
                source_id: source_id.clone(),
                first_name: Some(first.into()),
                last_name: (!last.is_empty()).then(|| last.into()),
                email: Some(email.into()),
                title: (!title.is_empty()).then(|| title.into()),
                account_source_id: (!account.is_empty()).then(|| account.into()),
                properties: serde_json::json!({}),
                ..Default::default()
            },
            account_id: None,
            created_at: t(1, 1, 0),
            updated_at: t(1, 1, 0),
            deleted_at: None,
        });
        source_id
    }

    /// A role of contact `contact` (source id) on deal `i`.
    pub fn role(&mut self, i: usize, contact: &str, role: &str) {
        let id = self.id();
        let deal = self.deals[i].0.fields.source_id.clone();
        self.deal_contacts.push(DealContact {
            id,
            workspace_id: Uuid::nil(),
            source: "test".into(),
            fields: NewDealContact {
                deal_source_id: deal,
                contact_source_id: contact.into(),
                role: Some(role.into()),
                is_primary: false,
            },
            created_at: t(1, 1, 0),
            updated_at: t(1, 1, 0),
            deleted_at: None,
        });
    }

    /// A conversation `title` at `at` with participants' `emails`, linked to
    /// the deals `linked` (indexes).
    pub fn call(&mut self, title: &str, at: DateTime<Utc>, emails: &[&str], linked: &[usize]) {
        let id = self.id();
        let deal_refs = linked
            .iter()
            .map(|&i| SourceRef {
                source: "test".into(),
                source_id: self.deals[i].0.fields.source_id.clone(),
            })
            .collect();
        self.conversations.push(Conversation {
            id,
            workspace_id: Uuid::nil(),
            source: "test".into(),
            fields: NewConversation {
                source_id: title.to_lowercase().replace(' ', "-"),
                title: Some(title.into()),
                started_at: Some(at),
                duration_seconds: Some(1800),
                participants: emails
                    .iter()
                    .map(|e| Participant {
                        name: None,
                        email: Some((*e).into()),
                        internal: None,
                    })
                    .collect(),
                deal_refs,
                account_refs: Vec::new(),
                url: None,
                properties: serde_json::json!({}),
            },
            created_at: at,
            updated_at: at,
            deleted_at: None,
        });
    }

    /// Deletes deal `i` at `at`.
    pub fn delete(&mut self, i: usize, at: DateTime<Utc>) {
        self.deals[i].0.deleted_at = Some(at);
    }

    /// The context a skill with `specs` settings (and `overrides`) sees.
    pub fn context(
        &self,
        period: Period,
        as_of: DateTime<Utc>,
        specs: &[pandora_core::skill::SettingSpec],
        overrides: serde_json::Value,
        previous: Option<PreviousReport>,
    ) -> SkillContext {
        let mut deals: Vec<_> = self
            .deals
            .iter()
            .filter_map(|(deal, changes)| from_history(deal, changes, &self.stages, as_of))
            .collect();
        deals.sort_by_key(|d| d.id);
        let mut users = self.users.clone();
        users.sort_by_key(|u| u.id);
        SkillContext {
            workspace_id: Uuid::nil(),
            as_of,
            period,
            settings: Settings::resolve(specs, &[&overrides]).expect("settings"),
            stages: StageCatalog::new(self.stages.clone()),
            deals,
            users,
            quotas: self.quotas.clone(),
            contacts: {
                let mut c = self.contacts.clone();
                c.sort_by_key(|c| c.id);
                c
            },
            deal_contacts: {
                let mut r = self.deal_contacts.clone();
                r.sort_by_key(|r| r.id);
                r
            },
            conversations: {
                let mut c: Vec<Conversation> = self
                    .conversations
                    .iter()
                    .filter(|c| c.fields.started_at.is_none_or(|s| s <= as_of))
                    .cloned()
                    .collect();
                c.sort_by_key(|c| c.id);
                c
            },
            previous,
        }
    }
}
