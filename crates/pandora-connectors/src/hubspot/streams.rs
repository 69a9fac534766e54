//! The sync, stream by stream: what to read, in which order, and the
//! checkpoint after each page.
//!
//! * `owners` and `pipelines` are small: read whole every run (archived
//!   owners become inactive users).
//! * `companies`, `contacts`, `deals` have an [`ObjectCursor`]. With none
//!   (or in a full sync) the list endpoint is read page by page with `after`
//!   (the cursor holds the `after` of the next page, so a failed run resumes
//!   there), then the archived records (`archived=true`, soft-deleted), and
//!   the cursor becomes "since the time the list started". Incremental runs
//!   search on the modification property `>=` that time minus an overlap
//!   (search lags writes), oldest first, de-duplicated by id; when the next
//!   page would pass the search API's 10,000-result cap the window restarts
//!   at the last modification time seen. Then the archived list is read
//!   again for records archived since the last run.
//! * Deal pages carry their contacts and field history
//!   (`propertiesWithHistory`, 50 deals per request).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pandora_core::batch::{Deletion, RecordBatch, RecordKind};
use pandora_core::connector::{RecordSink, StreamCheckpoint, SyncContext, TimeIdCursor};
use pandora_core::model::SyncMode;
use pandora_core::Result;
use serde::{Deserialize, Serialize};

use super::api::{HubSpotApi, ListQuery, ObjectType};
use super::normalize::{self, DealLinks, StageCatalog, DEAL_HISTORY};
use super::payloads::CrmObject;
use super::{HubSpotTuning, SOURCE};
use crate::vendor::{CursorPager, VendorError};

/// Stream names, in sync order.
pub const STREAMS: [&str; 5] = ["owners", "companies", "contacts", "pipelines", "deals"];

/// Where a companies / contacts / deals stream stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectCursor {
    /// A full read by the list endpoint under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListProgress>,
    /// Caught up to here: incremental runs search from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<TimeIdCursor>,
    /// The newest archive time applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_since: Option<DateTime<Utc>>,
}

/// A list read under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListProgress {
    /// The `after` of the next page (`None`: the first).
    pub after: Option<String>,
    /// Reading archived records (the second pass).
    pub archived: bool,
    /// When the list read started: where incremental reads begin after it.
    pub started_at: DateTime<Utc>,
}

impl ObjectCursor {
    fn checkpoint(&self, object: ObjectType) -> StreamCheckpoint {
        StreamCheckpoint {
            stream: object.name().into(),
            cursor: serde_json::to_value(self).unwrap_or_default(),
        }
    }
}

fn synced_checkpoint(stream: &str, at: DateTime<Utc>) -> StreamCheckpoint {
    StreamCheckpoint {
        stream: stream.into(),
        cursor: serde_json::json!({"synced_at": at}),
    }
}

/// One sync's state: the API, the context, and what earlier streams learned.
pub struct Session<'a> {
    /// The API.
    pub api: &'a HubSpotApi,
    /// The context.
    pub ctx: &'a SyncContext,
    /// Page sizes, overlap, cap.
    pub tuning: &'a HubSpotTuning,
    /// The stage catalog (after `pipelines`).
    pub catalog: StageCatalog,
    /// Custom deal property names (before `deals`).
    pub custom: Vec<String>,
}

impl Session<'_> {
    /// Every stream, in order.
    pub async fn run(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        self.owners(sink).await?;
        self.objects(ObjectType::Companies, sink).await?;
        self.objects(ObjectType::Contacts, sink).await?;
        self.pipelines(sink).await?;
        self.custom = normalize::custom_properties(&self.api.deal_properties().await?);
        self.objects(ObjectType::Deals, sink).await
    }

    async fn owners(&self, sink: &mut dyn RecordSink) -> Result<()> {
        for archived in [false, true] {
            let mut pager = CursorPager::new(SOURCE, "GET /crm/v3/owners", None);
            loop {
                let page = self
                    .api
                    .owners(pager.current(), archived, self.tuning.page_size)
                    .await?;
                let more = pager.advance(page.next_after())?;
                let mut batch = RecordBatch::new(SOURCE);
                batch.users = page.results.iter().map(normalize::user).collect();
                let last = archived && !more;
                let checkpoint = last.then(|| synced_checkpoint("owners", self.ctx.started_at));
                sink.push(batch, checkpoint).await?;
                if !more {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn pipelines(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        let stages = normalize::stages(&self.api.deal_pipelines().await?);
        self.catalog = StageCatalog::new(&stages);
        let mut batch = RecordBatch::new(SOURCE);
        batch.stages = stages;
        sink.push(
            batch,
            Some(synced_checkpoint("pipelines", self.ctx.started_at)),
        )
        .await
    }

    fn properties(&self, object: ObjectType) -> Vec<String> {
        let base = match object {
            ObjectType::Companies => normalize::COMPANY_PROPERTIES,
            ObjectType::Contacts => normalize::CONTACT_PROPERTIES,
            ObjectType::Deals => normalize::DEAL_PROPERTIES,
        };
        let mut p: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        if object == ObjectType::Deals {
            p.extend(self.custom.iter().cloned());
        }
        p
    }

    async fn objects(&self, object: ObjectType, sink: &mut dyn RecordSink) -> Result<()> {
        let stored: Option<ObjectCursor> = self
            .ctx
            .cursors
            .get(object.name())
            .and_then(|c| serde_json::from_value(c.clone()).ok());
        match stored {
            // An interrupted list read resumes, whatever the mode.
            Some(c) if c.list.is_some() => self.list(object, c, sink).await,
            Some(c) if c.since.is_some() && self.ctx.mode == SyncMode::Incremental => {
                let c = self.search(object, c, sink).await?;
                self.archived_since(object, c, sink).await
            }
            _ => {
                let c = ObjectCursor {
                    list: Some(ListProgress {
                        after: None,
                        archived: false,
                        started_at: self.ctx.started_at,
                    }),
                    since: None,
                    archived_since: None,
                };
                self.list(object, c, sink).await
            }
        }
    }

    /// The list read (live records, then archived ones), from the cursor's position.
    async fn list(
        &self,
        object: ObjectType,
        mut cursor: ObjectCursor,
        sink: &mut dyn RecordSink,
    ) -> Result<()> {
        let properties = self.properties(object);
        let Some(mut progress) = cursor.list.clone() else {
            return Ok(());
        };
        let endpoint = format!("GET /crm/v3/objects/{}", object.name());
        let mut pager = CursorPager::new(SOURCE, endpoint.clone(), progress.after.clone());
        let deals = object == ObjectType::Deals;
        loop {
            let live = !progress.archived;
            let q = ListQuery {
                properties: if live { &properties } else { &[] },
                history: if deals && live { &HISTORY_NAMES } else { &[] },
                associations: if deals && live {
                    &["companies", "contacts"]
                } else {
                    &[]
                },
                archived: progress.archived,
                limit: if deals && live {
                    self.tuning.history_page_size
                } else {
                    self.tuning.page_size
                },
                after: pager.current(),
            };
            let page = self.api.list(object, &q).await?;
            let more = pager.advance(page.next_after())?;
            let batch = if live {
                let links: HashMap<String, DealLinks> = if deals {
                    page.results
                        .iter()
                        .map(|o| (o.id.clone(), DealLinks::from_inline(o)))
                        .collect()
                } else {
                    HashMap::new()
                };
                self.normalize(object, &page.results, &links)
            } else {
                let (batch, newest) = deletions(object, &page.results, None);
                cursor.archived_since = cursor.archived_since.max(newest);
                batch
            };
            progress.after = pager.current().map(str::to_string);
            if !more && live {
                progress.archived = true;
                pager = CursorPager::new(SOURCE, endpoint.clone(), None);
            }
            let done = !more && !live;
            if done {
                cursor.list = None;
                cursor.since = Some(TimeIdCursor {
                    updated_at: progress.started_at,
                    id: String::new(),
                });
            } else {
                cursor.list = Some(progress.clone());
            }
            sink.push(batch, Some(cursor.checkpoint(object))).await?;
            if done {
                return Ok(());
            }
        }
    }

    /// Records modified since the cursor, by the search API.
    async fn search(
        &self,
        object: ObjectType,
        mut cursor: ObjectCursor,
        sink: &mut dyn RecordSink,
    ) -> Result<ObjectCursor> {
        let Some(since) = cursor.since.clone() else {
            return Ok(cursor);
        };
        let modified = object.modification_property();
        let endpoint = format!("POST /crm/v3/objects/{}/search", object.name());
        let deals = object == ObjectType::Deals;
        // Deals are read again by batch (with history), so search returns ids only.
        let properties = if deals {
            vec![modified.to_string()]
        } else {
            self.properties(object)
        };
        let limit = self.tuning.search_page_size.max(1);
        let cap = self.tuning.search_result_cap.max(limit);
        let mut window_start = since.resume_from(self.tuning.search_overlap);
        let mut window_last: Option<DateTime<Utc>> = None;
        let mut read_in_window: u32 = 0;
        let mut high = since;
        let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut pager = CursorPager::new(SOURCE, endpoint.clone(), None);
        loop {
            if read_in_window + limit > cap {
                // The next page would pass the result cap: search again from
                // the last modification time seen (ties are re-read and dropped).
                let Some(last) = window_last.filter(|t| *t > window_start) else {
                    return Err(VendorError::LimitReached {
                        vendor: SOURCE,
                        endpoint,
                        message: format!(
                            "more than {cap} records share the modification time {window_start}; \
                             the search API cannot page past them"
                        ),
                    }
                    .into());
                };
                tracing::info!(stream = object.name(), from = %last, "search window restarted at the result cap");
                window_start = last;
                window_last = None;
                read_in_window = 0;
                pager = CursorPager::new(SOURCE, endpoint.clone(), None);
            }
            let page = self
                .api
                .search_modified_since(object, window_start, pager.current(), limit, &properties)
                .await?;
            read_in_window += page.results.len() as u32;
            let more = pager.advance(page.next_after())?;
            let mut fresh = Vec::with_capacity(page.results.len());
            for o in page.results {
                let at = normalize::modified_at(&o, modified).unwrap_or(window_start);
                window_last = window_last.max(Some(at));
                if seen.get(&o.id).is_some_and(|prev| *prev >= at) {
                    continue;
                }
                seen.insert(o.id.clone(), at);
                high = high.advance(at, &o.id);
                fresh.push(o);
            }
            let batch = if deals {
                self.deals_by_id(&fresh).await?
            } else {
                self.normalize(object, &fresh, &HashMap::new())
            };
            cursor.since = Some(high.clone());
            sink.push(batch, Some(cursor.checkpoint(object))).await?;
            if !more {
                return Ok(cursor);
            }
        }
    }

    /// Deals found by search, read again with their history and associations.
    async fn deals_by_id(&self, found: &[CrmObject]) -> Result<RecordBatch> {
        let ids: Vec<String> = found.iter().map(|o| o.id.clone()).collect();
        if ids.is_empty() {
            return Ok(RecordBatch::new(SOURCE));
        }
        let properties = self.properties(ObjectType::Deals);
        let mut full = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.tuning.history_page_size.max(1) as usize) {
            full.extend(
                self.api
                    .batch_read(ObjectType::Deals, chunk, &properties, &HISTORY_NAMES)
                    .await?,
            );
        }
        let companies = self
            .api
            .associations(ObjectType::Deals, ObjectType::Companies, &ids)
            .await?;
        let contacts = self
            .api
            .associations(ObjectType::Deals, ObjectType::Contacts, &ids)
            .await?;
        let links = DealLinks::from_v4(&companies, &contacts);
        Ok(self.normalize(ObjectType::Deals, &full, &links))
    }

    /// Records archived since the cursor's `archived_since` (minus the overlap).
    async fn archived_since(
        &self,
        object: ObjectType,
        mut cursor: ObjectCursor,
        sink: &mut dyn RecordSink,
    ) -> Result<()> {
        let after_time = cursor
            .archived_since
            .map(|t| t - self.tuning.search_overlap);
        let endpoint = format!("GET /crm/v3/objects/{}", object.name());
        let mut pager = CursorPager::new(SOURCE, endpoint, None);
        let mut newest = cursor.archived_since;
        loop {
            let q = ListQuery {
                archived: true,
                limit: self.tuning.page_size,
                after: pager.current(),
                ..ListQuery::default()
            };
            let page = self.api.list(object, &q).await?;
            let more = pager.advance(page.next_after())?;
            let (batch, n) = deletions(object, &page.results, after_time);
            newest = newest.max(n);
            // The archived list is in id order, not time order: only its
            // last page may move the cursor.
            let checkpoint = (!more).then(|| {
                cursor.archived_since = newest;
                cursor.checkpoint(object)
            });
            if !batch.is_empty() || checkpoint.is_some() {
                sink.push(batch, checkpoint).await?;
            }
            if !more {
                return Ok(());
            }
        }
    }

    fn normalize(
        &self,
        object: ObjectType,
        records: &[CrmObject],
        links: &HashMap<String, DealLinks>,
    ) -> RecordBatch {
        let mut batch = RecordBatch::new(SOURCE);
        for o in records {
            if o.archived {
                batch.deletions.push(Deletion {
                    kind: kind(object),
                    source_id: o.id.clone(),
                });
                continue;
            }
            match object {
                ObjectType::Companies => batch.accounts.push(normalize::account(o)),
                ObjectType::Contacts => batch.contacts.push(normalize::contact(o)),
                ObjectType::Deals => {
                    let none = DealLinks::default();
                    let r = normalize::deal(
                        o,
                        &self.catalog,
                        &self.custom,
                        links.get(&o.id).unwrap_or(&none),
                    );
                    batch.deals.push(r.deal);
                    batch.deal_contacts.extend(r.contacts);
                    batch.deal_changes.extend(r.changes);
                }
            }
        }
        batch
    }
}

const HISTORY_NAMES: [&str; 4] = [
    DEAL_HISTORY[0].0,
    DEAL_HISTORY[1].0,
    DEAL_HISTORY[2].0,
    DEAL_HISTORY[3].0,
];

fn kind(object: ObjectType) -> RecordKind {
    match object {
        ObjectType::Companies => RecordKind::Account,
        ObjectType::Contacts => RecordKind::Contact,
        ObjectType::Deals => RecordKind::Deal,
    }
}

/// Deletions for archived records archived after `after` (all when `None`),
/// and the newest archive time among them.
fn deletions(
    object: ObjectType,
    records: &[CrmObject],
    after: Option<DateTime<Utc>>,
) -> (RecordBatch, Option<DateTime<Utc>>) {
    let mut batch = RecordBatch::new(SOURCE);
    let mut newest = None;
    for o in records {
        let at = normalize::archived_at(o);
        newest = newest.max(at);
        if after.is_some_and(|a| at.is_some_and(|t| t <= a)) {
            continue;
        }
        batch.deletions.push(Deletion {
            kind: kind(object),
            source_id: o.id.clone(),
        });
    }
    (batch, newest)
}
