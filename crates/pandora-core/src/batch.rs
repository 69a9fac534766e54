//! A page of records from one source, as a connector hands it to the store,
//! and the outcome of writing it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::computed::ComputedFields;
use crate::error::{Error, Result};
use crate::model::{
    NewAccount, NewContact, NewConversation, NewDeal, NewDealChange, NewDealContact, NewDocument,
    NewPipelineStage, NewTask, NewUser, StreamCounts,
};

/// The kinds of record a source can deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// [`NewUser`].
    User,
    /// [`NewAccount`].
    Account,
    /// [`NewContact`].
    Contact,
    /// [`NewPipelineStage`].
    PipelineStage,
    /// [`NewDeal`].
    Deal,
    /// [`NewDealContact`].
    DealContact,
    /// [`NewConversation`].
    Conversation,
    /// [`NewTask`].
    Task,
    /// [`NewDocument`].
    Document,
}

impl RecordKind {
    /// Every kind, in the order a batch is written (referenced kinds first).
    pub const ALL: [RecordKind; 9] = [
        RecordKind::User,
        RecordKind::Account,
        RecordKind::Contact,
        RecordKind::PipelineStage,
        RecordKind::Deal,
        RecordKind::DealContact,
        RecordKind::Conversation,
        RecordKind::Task,
        RecordKind::Document,
    ];

    /// The table that holds this kind (the same in every store).
    pub fn table(self) -> &'static str {
        match self {
            RecordKind::User => "users",
            RecordKind::Account => "accounts",
            RecordKind::Contact => "contacts",
            RecordKind::PipelineStage => "pipeline_stages",
            RecordKind::Deal => "deals",
            RecordKind::DealContact => "deal_contacts",
            RecordKind::Conversation => "conversations",
            RecordKind::Task => "tasks",
            RecordKind::Document => "documents",
        }
    }
}

/// A record the source reports deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// Kind of the deleted record.
    pub kind: RecordKind,
    /// The vendor's id.
    pub source_id: String,
}

/// One page of records from one source. Written atomically with its checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordBatch {
    /// Source (connector id) of every record in the batch.
    pub source: String,
    /// Users.
    pub users: Vec<NewUser>,
    /// Accounts.
    pub accounts: Vec<NewAccount>,
    /// Contacts.
    pub contacts: Vec<NewContact>,
    /// Pipeline stages.
    pub stages: Vec<NewPipelineStage>,
    /// Deals.
    pub deals: Vec<NewDeal>,
    /// Deal–contact roles.
    pub deal_contacts: Vec<NewDealContact>,
    /// Deal field history.
    pub deal_changes: Vec<NewDealChange>,
    /// Conversations.
    pub conversations: Vec<NewConversation>,
    /// Tasks.
    pub tasks: Vec<NewTask>,
    /// Documents.
    pub documents: Vec<NewDocument>,
    /// Records deleted in the source.
    pub deletions: Vec<Deletion>,
}

impl RecordBatch {
    /// An empty batch for `source`.
    pub fn new(source: impl Into<String>) -> Self {
        RecordBatch {
            source: source.into(),
            ..Default::default()
        }
    }

    /// Validates and normalizes the batch for a store: checks ids, rounds amounts to
    /// 4 decimal places, keeps the last occurrence of a repeated source id, and
    /// computes each record's content hash.
    pub fn prepare(&self) -> Result<PreparedBatch> {
        if self.source.trim().is_empty() {
            return Err(Error::invalid("source", "must not be empty"));
        }
        let deals = self
            .deals
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.amount = d.amount.map(|a| a.round_dp(4).normalize());
                if d.probability.is_some_and(|p| !p.is_finite()) {
                    return Err(Error::invalid(
                        format!("deals[{}].probability", d.source_id),
                        "must be a finite number",
                    ));
                }
                Ok(d)
            })
            .collect::<Result<Vec<_>>>()?;
        for c in &self.deal_changes {
            check_source_id("deal_changes.deal_source_id", &c.deal_source_id)?;
        }
        for d in &self.deletions {
            check_source_id("deletions.source_id", &d.source_id)?;
        }
        Ok(PreparedBatch {
            source: self.source.clone(),
            users: prepare_all("users", &self.users, |r| r.source_id.clone())?,
            accounts: prepare_all("accounts", &self.accounts, |r| r.source_id.clone())?,
            contacts: prepare_all("contacts", &self.contacts, |r| r.source_id.clone())?,
            stages: prepare_all("stages", &self.stages, |r| r.source_id())?,
            deals: prepare_all("deals", &deals, |r| r.source_id.clone())?,
            deal_contacts: prepare_all("deal_contacts", &self.deal_contacts, |r| {
                format!("{}/{}", r.deal_source_id, r.contact_source_id)
            })?,
            conversations: prepare_all("conversations", &self.conversations, |r| {
                r.source_id.clone()
            })?,
            tasks: prepare_all("tasks", &self.tasks, |r| r.source_id.clone())?,
            documents: prepare_all("documents", &self.documents, |r| r.source_id.clone())?,
            deal_changes: self.deal_changes.clone(),
            deletions: self.deletions.clone(),
            computed: BTreeMap::new(),
        })
    }

    /// Number of records (of every kind, deletions and changes included).
    pub fn len(&self) -> usize {
        self.users.len()
            + self.accounts.len()
            + self.contacts.len()
            + self.stages.len()
            + self.deals.len()
            + self.deal_contacts.len()
            + self.deal_changes.len()
            + self.conversations.len()
            + self.tasks.len()
            + self.documents.len()
            + self.deletions.len()
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_source_id(field: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if id.len() > 512 {
        return Err(Error::invalid(field, "must be at most 512 bytes"));
    }
    Ok(())
}

fn prepare_all<T: Serialize + Clone>(
    field: &str,
    records: &[T],
    key: impl Fn(&T) -> String,
) -> Result<Vec<Prepared<T>>> {
    let mut out: Vec<Prepared<T>> = Vec::with_capacity(records.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(records.len());
    for r in records {
        let source_id = key(r);
        check_source_id(&format!("{field}.source_id"), &source_id)?;
        let json = serde_json::to_string(r)?;
        let hash = Sha256::digest(json.as_bytes()).to_vec();
        let p = Prepared {
            record: r.clone(),
            source_id: source_id.clone(),
            json,
            hash,
        };
        match seen.get(&source_id) {
            Some(&i) => out[i] = p,
            None => {
                seen.insert(source_id, out.len());
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// A record ready for a store: its key, its JSON form and the hash of that form.
#[derive(Debug, Clone)]
pub struct Prepared<T> {
    /// The normalized record.
    pub record: T,
    /// Its key within the source.
    pub source_id: String,
    /// The record serialized as JSON (what the store keeps in `data`).
    pub json: String,
    /// SHA-256 of `json`: equal hashes mean nothing changed.
    pub hash: Vec<u8>,
}

/// A validated [`RecordBatch`]: no repeated keys, amounts normalized, hashes computed.
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    /// Source of every record.
    pub source: String,
    /// Users.
    pub users: Vec<Prepared<NewUser>>,
    /// Accounts.
    pub accounts: Vec<Prepared<NewAccount>>,
    /// Contacts.
    pub contacts: Vec<Prepared<NewContact>>,
    /// Pipeline stages.
    pub stages: Vec<Prepared<NewPipelineStage>>,
    /// Deals.
    pub deals: Vec<Prepared<NewDeal>>,
    /// Deal–contact roles.
    pub deal_contacts: Vec<Prepared<NewDealContact>>,
    /// Conversations.
    pub conversations: Vec<Prepared<NewConversation>>,
    /// Tasks.
    pub tasks: Vec<Prepared<NewTask>>,
    /// Documents.
    pub documents: Vec<Prepared<NewDocument>>,
    /// Deal field history.
    pub deal_changes: Vec<NewDealChange>,
    /// Deletions.
    pub deletions: Vec<Deletion>,
    /// Computed fields of deals, by deal source id (see
    /// [`PreparedBatch::set_computed`]). Not part of any content hash.
    pub computed: BTreeMap<String, PreparedComputed>,
}

/// A deal's computed fields, ready for a store: stored with the deal (its
/// `computed` JSON and its promoted `risk_score`) whenever the batch changes
/// the deal or its history.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedComputed {
    /// The fields.
    pub fields: ComputedFields,
    /// The fields serialized as JSON (what the store keeps).
    pub json: String,
}

impl PreparedComputed {
    /// Serializes `fields`.
    pub fn new(fields: ComputedFields) -> Result<Self> {
        let json = serde_json::to_string(&fields)?;
        Ok(PreparedComputed { fields, json })
    }

    /// The risk score, 0–100 (the store's sort and filter column).
    pub fn risk_score(&self) -> u8 {
        self.fields.risk_score
    }
}

/// A record of any kind in a prepared batch, without its typed form.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Key within the source.
    pub source_id: &'a str,
    /// JSON form.
    pub json: &'a str,
    /// Content hash.
    pub hash: &'a [u8],
}

impl PreparedBatch {
    /// Attaches the computed fields of the deal `deal_source_id` (of this
    /// batch's source), replacing any attached before. The store writes them
    /// if the batch inserts or changes that deal, or stores new history for
    /// it; the deal need not be among the batch's deals (a page may carry
    /// only history for it).
    pub fn set_computed(&mut self, deal_source_id: &str, fields: ComputedFields) -> Result<()> {
        check_source_id("computed.deal_source_id", deal_source_id)?;
        self.computed
            .insert(deal_source_id.to_string(), PreparedComputed::new(fields)?);
        Ok(())
    }

    /// The computed fields attached for `deal_source_id`, if any.
    pub fn computed_for(&self, deal_source_id: &str) -> Option<&PreparedComputed> {
        self.computed.get(deal_source_id)
    }

    /// The records of `kind`, untyped (what a generic upsert needs).
    pub fn raw(&self, kind: RecordKind) -> Vec<RawRecord<'_>> {
        fn raw<T>(v: &[Prepared<T>]) -> Vec<RawRecord<'_>> {
            v.iter()
                .map(|p| RawRecord {
                    source_id: &p.source_id,
                    json: &p.json,
                    hash: &p.hash,
                })
                .collect()
        }
        match kind {
            RecordKind::User => raw(&self.users),
            RecordKind::Account => raw(&self.accounts),
            RecordKind::Contact => raw(&self.contacts),
            RecordKind::PipelineStage => raw(&self.stages),
            RecordKind::Deal => raw(&self.deals),
            RecordKind::DealContact => raw(&self.deal_contacts),
            RecordKind::Conversation => raw(&self.conversations),
            RecordKind::Task => raw(&self.tasks),
            RecordKind::Document => raw(&self.documents),
        }
    }
}

/// What writing a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Counts per record kind (kinds absent from the batch are absent here).
    pub counts: BTreeMap<RecordKind, StreamCounts>,
    /// Field-history rows newly stored (repeats are ignored).
    pub changes_inserted: u64,
}

impl BatchOutcome {
    /// Counts for `kind` (zero when absent).
    pub fn of(&self, kind: RecordKind) -> StreamCounts {
        self.counts.get(&kind).copied().unwrap_or_default()
    }

    /// Counts summed over every kind.
    pub fn total(&self) -> StreamCounts {
        let mut t = StreamCounts::default();
        for c in self.counts.values() {
            t.add(*c);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn deal(id: &str, amount: &str) -> NewDeal {
        NewDeal {
            source_id: id.into(),
            name: id.into(),
            amount: Some(amount.parse().expect("decimal")),
            ..Default::default()
        }
    }

    #[test]
    fn prepare_keeps_the_last_occurrence_and_rounds_amounts() {
        let mut b = RecordBatch::new("hubspot");
        b.deals = vec![deal("a", "1"), deal("b", "2.123456"), deal("a", "3.00")];
        let p = b.prepare().expect("prepare");
        assert_eq!(p.deals.len(), 2);
        assert_eq!(p.deals[0].source_id, "a");
        assert_eq!(p.deals[0].record.amount, Some(Decimal::from(3)));
        assert_eq!(
            p.deals[1].record.amount,
            Some("2.1235".parse().expect("decimal"))
        );
        assert_eq!(p.raw(RecordKind::Deal).len(), 2);
    }

    #[test]
    fn equal_content_has_equal_hashes() {
        let mut one = RecordBatch::new("s");
        one.deals = vec![deal("a", "1.50")];
        let mut two = RecordBatch::new("s");
        two.deals = vec![deal("a", "1.5")];
        let (p1, p2) = (one.prepare().expect("p1"), two.prepare().expect("p2"));
        assert_eq!(
            p1.deals[0].hash, p2.deals[0].hash,
            "1.50 and 1.5 are the same amount"
        );
        two.deals[0].name = "renamed".into();
        assert_ne!(p1.deals[0].hash, two.prepare().expect("p3").deals[0].hash);
    }

    #[test]
    fn invalid_batches_name_the_field() {
        let b = RecordBatch::new(" ");
        assert!(
            matches!(b.prepare(), Err(Error::InvalidInput { ref field, .. }) if field == "source")
        );
        let mut b = RecordBatch::new("s");
        b.deals = vec![deal("", "1")];
        assert!(
            matches!(b.prepare(), Err(Error::InvalidInput { ref field, .. }) if field == "deals.source_id")
        );
        let mut b = RecordBatch::new("s");
        let mut d = deal("x", "1");
        d.probability = Some(f64::NAN);
        b.deals = vec![d];
        assert!(b.prepare().is_err());
        let mut b = RecordBatch::new("s");
        b.users = vec![NewUser {
            source_id: "x".repeat(513),
            ..Default::default()
        }];
        assert!(b.prepare().is_err());
    }
}
