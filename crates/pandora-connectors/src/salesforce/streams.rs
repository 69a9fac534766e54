//! The sync, stream by stream: what to read, in which order, the checkpoint
//! after each page, and deletions.
//!
//! * `users`, `accounts`, `contacts`, `opportunities` and `contact_roles`
//!   are read by SOQL ordered by `(SystemModstamp, Id)`, following
//!   `nextRecordsUrl`; each page is pushed with an [`ObjectCursor`] whose
//!   `since` is the last `(SystemModstamp, Id)` read. With no cursor (or in
//!   a full sync) the whole object is read; otherwise only
//!   `SystemModstamp > X OR (SystemModstamp = X AND Id > 'Y')` with `X` the
//!   cursor time minus an overlap (records committed late; re-reading is
//!   absorbed by the idempotent upsert).
//! * Opportunity pages carry their field history: the `OpportunityHistory`
//!   rows of the page's opportunities (`OpportunityId IN (…)`), turned into
//!   changes of stage, amount, close date and forecast category, in the same
//!   page as the deals (so the engine never records an *observed* change
//!   for what the vendor reported).
//! * `stages` (`OpportunityStage`) is small: read whole every run, before
//!   opportunities, which it completes (category, order, default probability).
//! * Deletions (accounts, contacts, opportunities): after a full read, the
//!   ids read are handed to the engine to reconcile ([`RecordSink::reconcile`]:
//!   stored records not among them are soft-deleted). Later runs ask
//!   `/sobjects/{type}/deleted/` from `deleted_since` to the run start and
//!   soft-delete what it lists; when that window starts before the delete
//!   log's `earliestDateAvailable` (or outside its ~15 days, or Salesforce
//!   answers `INVALID_REPLICATION_DATE`, or there is no `deleted_since`),
//!   every id of the object is listed and reconciled instead.
//! * Contact roles are read through `queryAll`, deleted ones included
//!   (`IsDeleted`): Pandora keys a role by (opportunity, contact), which a
//!   deleted role's id alone would not give.
//! * Users are deactivated in Salesforce, never deleted: no deletion pass.
//! * Each object is described once per run (`/sobjects/{type}/describe/`)
//!   and only the fields the connected user may see are selected: a field
//!   hidden by field-level security (or `CurrencyIsoCode` in a
//!   single-currency org) would fail the whole query.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use pandora_core::batch::{Deletion, RecordBatch, RecordKind};
use pandora_core::connector::{RecordSink, StreamCheckpoint, SyncContext, TimeIdCursor};
use pandora_core::model::NewDealContact;
use pandora_core::Result;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::api::{QueryKind, SalesforceApi};
use super::normalize::{self, StageCatalog};
use super::payloads::{
    QueryPage, SfAccount, SfContact, SfContactRole, SfId, SfOpportunity, SfOpportunityHistory,
    SfRecord, SfStage, SfUser,
};
use super::soql;
use super::{SalesforceTuning, SOURCE};
use crate::vendor::{CursorPager, VendorError};

/// Stream names, in sync order.
pub const STREAMS: [&str; 6] = [
    "users",
    "accounts",
    "contacts",
    "stages",
    "opportunities",
    "contact_roles",
];

/// The error code of a getDeleted window Salesforce cannot answer.
const INVALID_REPLICATION_DATE: &str = "INVALID_REPLICATION_DATE";

/// Where a SOQL-read stream stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCursor {
    /// The last `(SystemModstamp, Id)` read: the next run reads after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<TimeIdCursor>,
    /// Deletions are applied up to here: the next getDeleted window starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_since: Option<DateTime<Utc>>,
}

impl ObjectCursor {
    fn checkpoint(&self, stream: &str) -> StreamCheckpoint {
        StreamCheckpoint {
            stream: stream.into(),
            cursor: serde_json::to_value(self).unwrap_or_default(),
        }
    }
}

/// One SOQL-read stream.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Stream name (its checkpoint key).
    pub stream: &'static str,
    /// The sObject.
    pub object: &'static str,
    /// Fields read.
    pub fields: &'static [&'static str],
    /// The kind its deletions remove.
    pub kind: RecordKind,
    /// Whether deleted records are looked for (getDeleted, reconciliation).
    pub deletions: bool,
    /// `query` or `queryAll`.
    pub query: QueryKind,
}

/// `User`.
pub const USERS: Spec = Spec {
    stream: STREAMS[0],
    object: "User",
    fields: soql::USER_FIELDS,
    kind: RecordKind::User,
    deletions: false,
    query: QueryKind::Query,
};
/// `Account`.
pub const ACCOUNTS: Spec = Spec {
    stream: STREAMS[1],
    object: "Account",
    fields: soql::ACCOUNT_FIELDS,
    kind: RecordKind::Account,
    deletions: true,
    query: QueryKind::Query,
};
/// `Contact`.
pub const CONTACTS: Spec = Spec {
    stream: STREAMS[2],
    object: "Contact",
    fields: soql::CONTACT_FIELDS,
    kind: RecordKind::Contact,
    deletions: true,
    query: QueryKind::Query,
};
/// `Opportunity` (with its `OpportunityHistory`).
pub const OPPORTUNITIES: Spec = Spec {
    stream: STREAMS[4],
    object: "Opportunity",
    fields: soql::OPPORTUNITY_FIELDS,
    kind: RecordKind::Deal,
    deletions: true,
    query: QueryKind::Query,
};
/// `OpportunityContactRole` (through `queryAll`).
pub const CONTACT_ROLES: Spec = Spec {
    stream: STREAMS[5],
    object: "OpportunityContactRole",
    fields: soql::CONTACT_ROLE_FIELDS,
    kind: RecordKind::DealContact,
    deletions: false,
    query: QueryKind::QueryAll,
};

/// A record type a stream reads, and how a page of it becomes a batch.
pub trait Normalize: SfRecord + DeserializeOwned + Send + Sync {
    /// The page's records as a batch (opportunities: without their history).
    fn batch(records: &[Self], catalog: &StageCatalog) -> RecordBatch;
}

impl Normalize for SfUser {
    fn batch(records: &[Self], _: &StageCatalog) -> RecordBatch {
        RecordBatch {
            users: records.iter().map(normalize::user).collect(),
            ..RecordBatch::new(SOURCE)
        }
    }
}

impl Normalize for SfAccount {
    fn batch(records: &[Self], _: &StageCatalog) -> RecordBatch {
        RecordBatch {
            accounts: records.iter().map(normalize::account).collect(),
            ..RecordBatch::new(SOURCE)
        }
    }
}

impl Normalize for SfContact {
    fn batch(records: &[Self], _: &StageCatalog) -> RecordBatch {
        RecordBatch {
            contacts: records.iter().map(normalize::contact).collect(),
            ..RecordBatch::new(SOURCE)
        }
    }
}

impl Normalize for SfOpportunity {
    fn batch(records: &[Self], catalog: &StageCatalog) -> RecordBatch {
        RecordBatch {
            deals: records
                .iter()
                .map(|o| normalize::deal(o, catalog))
                .collect(),
            ..RecordBatch::new(SOURCE)
        }
    }
}

impl Normalize for SfContactRole {
    /// Live roles are upserted, deleted ones (`IsDeleted`) soft-deleted; a
    /// pair seen twice in the page takes its last state (records come in
    /// modification order).
    fn batch(records: &[Self], _: &StageCatalog) -> RecordBatch {
        let mut order: Vec<(String, String)> = Vec::new();
        let mut last: HashMap<(String, String), Option<NewDealContact>> = HashMap::new();
        for r in records {
            let Some(key) = normalize::contact_role_key(r) else {
                continue;
            };
            let state = if r.is_deleted {
                None
            } else {
                normalize::contact_role(r)
            };
            if last.insert(key.clone(), state).is_none() {
                order.push(key);
            }
        }
        let mut batch = RecordBatch::new(SOURCE);
        for key in order {
            match last.remove(&key).flatten() {
                Some(role) => batch.deal_contacts.push(role),
                None => batch.deletions.push(Deletion {
                    kind: RecordKind::DealContact,
                    source_id: format!("{}/{}", key.0, key.1),
                }),
            }
        }
        batch
    }
}

/// One sync's state: the API, the context, and the stage catalog.
pub struct Session<'a> {
    /// The API.
    pub api: &'a SalesforceApi,
    /// The context.
    pub ctx: &'a SyncContext,
    /// Overlap, history chunk size, deletion window.
    pub tuning: &'a SalesforceTuning,
    /// The stage catalog (after `stages`).
    pub catalog: StageCatalog,
    /// The fields read of each object, once described.
    pub readable: Mutex<HashMap<&'static str, Vec<&'static str>>>,
}

fn malformed(object: &str, api: &SalesforceApi, reason: String) -> VendorError {
    VendorError::Malformed {
        vendor: SOURCE,
        endpoint: format!("GET {}/query (FROM {object})", api.data_path()),
        reason,
    }
}

impl Session<'_> {
    /// Every stream, in order.
    pub async fn run(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        self.read::<SfUser>(&USERS, sink).await?;
        self.read::<SfAccount>(&ACCOUNTS, sink).await?;
        self.read::<SfContact>(&CONTACTS, sink).await?;
        self.stages(sink).await?;
        self.read::<SfOpportunity>(&OPPORTUNITIES, sink).await?;
        self.read::<SfContactRole>(&CONTACT_ROLES, sink).await
    }

    /// The fields of `wanted` the connected user may read on `object` (one
    /// describe per object and run); `required` ones must be among them.
    async fn fields(
        &self,
        object: &'static str,
        wanted: &'static [&'static str],
        required: &[&str],
    ) -> Result<Vec<&'static str>> {
        let cached = self
            .readable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(object)
            .cloned();
        if let Some(fields) = cached {
            return Ok(fields);
        }
        let visible = self.api.visible_fields(object).await?;
        let fields = soql::readable(wanted, &visible);
        if let Some(missing) = required.iter().find(|f| !fields.contains(f)) {
            return Err(VendorError::Config {
                vendor: SOURCE,
                message: format!(
                    "the connected Salesforce user cannot read {object}.{missing}, which the sync needs \
                     (field-level security or object permissions)"
                ),
            }
            .into());
        }
        let hidden: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|f| !fields.contains(f))
            .collect();
        if !hidden.is_empty() {
            tracing::info!(
                object,
                ?hidden,
                "fields the connected user cannot see are not read"
            );
        }
        self.readable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(object, fields.clone());
        Ok(fields)
    }

    /// Every record of `soql`, across its pages (small reads: stages,
    /// history of one page, ids).
    async fn collect<T: DeserializeOwned>(
        &self,
        kind: QueryKind,
        soql: &str,
        object: &str,
    ) -> Result<Vec<T>> {
        let mut page: QueryPage<T> = self.api.query(kind, soql).await?;
        let mut pager = CursorPager::new(
            SOURCE,
            format!("GET {}/query (FROM {object})", self.api.data_path()),
            None,
        );
        let mut all = Vec::new();
        loop {
            let next = page
                .next()
                .map_err(|reason| malformed(object, self.api, reason))?;
            let more = pager.advance(next)?;
            all.append(&mut page.records);
            let Some(next) = pager.current().filter(|_| more) else {
                return Ok(all);
            };
            page = self.api.query_more(next, object).await?;
        }
    }

    /// The stage picklist, whole.
    async fn stages(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        let fields = self
            .fields(
                "OpportunityStage",
                soql::STAGE_FIELDS,
                &["Id", "IsClosed", "IsWon"],
            )
            .await?;
        let q = soql::select(&fields, "OpportunityStage", None, None);
        let rows: Vec<SfStage> = self
            .collect(QueryKind::Query, &q, "OpportunityStage")
            .await?;
        let stages = normalize::stages(&rows);
        self.catalog = StageCatalog::new(&stages);
        let batch = RecordBatch {
            stages,
            ..RecordBatch::new(SOURCE)
        };
        let checkpoint = StreamCheckpoint {
            stream: STREAMS[3].into(),
            cursor: serde_json::json!({"synced_at": self.ctx.started_at}),
        };
        sink.push(batch, Some(checkpoint)).await
    }

    /// The field history of `ids` (opportunities), as changes.
    async fn history(&self, ids: &[String]) -> Result<Vec<pandora_core::model::NewDealChange>> {
        let fields = self
            .fields(
                "OpportunityHistory",
                soql::HISTORY_FIELDS,
                &["Id", "OpportunityId", "CreatedDate"],
            )
            .await?;
        let mut rows: Vec<SfOpportunityHistory> = Vec::new();
        for chunk in ids.chunks(self.tuning.history_chunk.max(1)) {
            let filter = soql::id_in("OpportunityId", chunk);
            let q = soql::select(
                &fields,
                "OpportunityHistory",
                Some(&filter),
                Some("ORDER BY OpportunityId ASC, CreatedDate ASC, Id ASC"),
            );
            rows.extend(
                self.collect::<SfOpportunityHistory>(QueryKind::Query, &q, "OpportunityHistory")
                    .await?,
            );
        }
        Ok(normalize::history(&rows))
    }

    /// One SOQL-read stream (see the module documentation).
    async fn read<T: Normalize>(&self, spec: &Spec, sink: &mut dyn RecordSink) -> Result<()> {
        let mut cursor: ObjectCursor = self
            .ctx
            .cursor(spec.stream)
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        let full = cursor.since.is_none();
        if full {
            cursor.deleted_since = None;
        } else if !spec.deletions {
            self.warn_if_beyond_deletion_window(spec, &cursor);
        }
        let fields = self
            .fields(spec.object, spec.fields, &["Id", "SystemModstamp"])
            .await?;
        let filter = cursor
            .since
            .as_ref()
            .map(|c| soql::after(c, self.tuning.overlap));
        let q = soql::select(
            &fields,
            spec.object,
            filter.as_deref(),
            Some(soql::BY_MODSTAMP),
        );
        let mut seen: Option<HashSet<String>> = (full && spec.deletions).then(HashSet::new);
        let mut high = cursor.since.clone();
        let mut page: QueryPage<T> = self.api.query(spec.query, &q).await?;
        let mut pager = CursorPager::new(
            SOURCE,
            format!("GET {}/query (FROM {})", self.api.data_path(), spec.object),
            None,
        );
        loop {
            let next = page
                .next()
                .map_err(|reason| malformed(spec.object, self.api, reason))?;
            let more = pager.advance(next)?;
            for r in &page.records {
                if let Some(seen) = seen.as_mut() {
                    seen.insert(r.id().to_string());
                }
                if let Some(t) = r.modstamp() {
                    high = Some(match high {
                        Some(h) => h.advance(t, r.id()),
                        None => TimeIdCursor {
                            updated_at: t,
                            id: r.id().to_string(),
                        },
                    });
                }
            }
            let mut batch = T::batch(&page.records, &self.catalog);
            if spec.kind == RecordKind::Deal && !batch.deals.is_empty() {
                let ids: Vec<String> = batch.deals.iter().map(|d| d.source_id.clone()).collect();
                batch.deal_changes = self.history(&ids).await?;
            }
            if !more && high.is_none() {
                // Nothing at all: caught up to the run start.
                high = Some(TimeIdCursor {
                    updated_at: self.ctx.started_at,
                    id: String::new(),
                });
            }
            cursor.since = high.clone();
            sink.push(batch, Some(cursor.checkpoint(spec.stream)))
                .await?;
            let Some(next) = pager.current().filter(|_| more) else {
                break;
            };
            page = self.api.query_more(next, spec.object).await?;
        }
        if spec.deletions {
            self.deletions(spec, cursor, seen, sink).await?;
        }
        Ok(())
    }

    fn warn_if_beyond_deletion_window(&self, spec: &Spec, cursor: &ObjectCursor) {
        if let Some(since) = &cursor.since {
            if since.updated_at < self.ctx.started_at - self.tuning.deleted_window {
                tracing::warn!(
                    stream = spec.stream,
                    since = %since.updated_at,
                    "the cursor is older than Salesforce keeps deleted records: deletions before the window are missed"
                );
            }
        }
    }

    /// The deletion pass of a stream (see the module documentation).
    async fn deletions(
        &self,
        spec: &Spec,
        mut cursor: ObjectCursor,
        seen: Option<HashSet<String>>,
        sink: &mut dyn RecordSink,
    ) -> Result<()> {
        let now = self.ctx.started_at;
        if let Some(ids) = seen {
            cursor.deleted_since = Some(now);
            return self.reconcile(spec, &ids, cursor, sink).await;
        }
        let Some(since) = cursor.deleted_since else {
            return self
                .reconcile_by_listing(spec, cursor, "no deletion cursor yet", sink)
                .await;
        };
        if since < now - self.tuning.deleted_window {
            return self
                .reconcile_by_listing(
                    spec,
                    cursor,
                    "the deletion cursor is older than the delete log's window",
                    sink,
                )
                .await;
        }
        // Salesforce wants the window to span more than a minute; a shorter
        // one is read with the next run's.
        if now - since <= chrono::Duration::minutes(1) {
            return Ok(());
        }
        match self.api.deleted(spec.object, since, now).await {
            Ok(d) if d.earliest_date_available.is_some_and(|e| e > since) => {
                self.reconcile_by_listing(
                    spec,
                    cursor,
                    "the deletion cursor is older than earliestDateAvailable",
                    sink,
                )
                .await
            }
            Ok(d) => {
                let batch = RecordBatch {
                    deletions: d
                        .deleted_records
                        .iter()
                        .map(|r| Deletion {
                            kind: spec.kind,
                            source_id: r.id.clone(),
                        })
                        .collect(),
                    ..RecordBatch::new(SOURCE)
                };
                cursor.deleted_since = Some(d.latest_date_covered.unwrap_or(now).clamp(since, now));
                sink.push(batch, Some(cursor.checkpoint(spec.stream))).await
            }
            Err(VendorError::Status {
                code: Some(code), ..
            }) if code == INVALID_REPLICATION_DATE => {
                self.reconcile_by_listing(
                    spec,
                    cursor,
                    "Salesforce refused the window (INVALID_REPLICATION_DATE)",
                    sink,
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Lists every id of the object and reconciles with it.
    async fn reconcile_by_listing(
        &self,
        spec: &Spec,
        mut cursor: ObjectCursor,
        why: &str,
        sink: &mut dyn RecordSink,
    ) -> Result<()> {
        tracing::info!(
            stream = spec.stream,
            reason = why,
            "listing every id to reconcile deletions"
        );
        let q = soql::select(&["Id"], spec.object, None, Some("ORDER BY Id ASC"));
        let ids: HashSet<String> = self
            .collect::<SfId>(QueryKind::Query, &q, spec.object)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        cursor.deleted_since = Some(self.ctx.started_at);
        self.reconcile(spec, &ids, cursor, sink).await
    }

    async fn reconcile(
        &self,
        spec: &Spec,
        ids: &HashSet<String>,
        cursor: ObjectCursor,
        sink: &mut dyn RecordSink,
    ) -> Result<()> {
        let deleted = sink
            .reconcile(spec.kind, ids, Some(cursor.checkpoint(spec.stream)))
            .await?;
        tracing::info!(stream = spec.stream, ids = ids.len(), deleted, "reconciled");
        Ok(())
    }
}
