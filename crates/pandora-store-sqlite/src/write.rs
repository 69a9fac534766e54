//! `write_batch`: one `BEGIN IMMEDIATE` transaction per batch.
//!
//! 1. Before the transaction, the batch is encoded ([`BatchPlan`]): promoted
//!    columns computed and checked (an amount that does not fit fails here,
//!    without taking the write lock).
//! 2. `BEGIN IMMEDIATE` takes the write lock up front, so concurrent writers
//!    queue on the busy timeout instead of failing on a lock upgrade; a batch
//!    that still meets a busy database is retried a few times.
//! 3. The workspace (and the checkpoint's connection) must exist.
//! 4. For each kind in [`RecordKind::ALL`] order: one query finds which
//!    source ids exist (hash, deleted or not); rows that are new, changed or
//!    soft-deleted go through a multi-row `INSERT … ON CONFLICT DO UPDATE`;
//!    then the kind's deletions soft-delete live rows.
//! 5. Deal changes are resolved to their deals (all must exist) and inserted
//!    with `ON CONFLICT DO NOTHING`, which makes repeats free. Deals that got
//!    a new change get the batch's computed fields (deals the upsert wrote
//!    got them as promoted columns already).
//! 6. The checkpoint is upserted; the transaction commits.
//!
//! Any error (or the caller dropping the future) rolls everything back: the
//! connection of a batch that did not commit is closed, not reused.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use pandora_core::batch::{BatchOutcome, Prepared, PreparedBatch, PreparedComputed, RecordKind};
use pandora_core::model::{self, Checkpoint, NewDeal, StreamCounts, WorkspaceId};
use pandora_core::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::query_builder::Separated;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::codec::{amount_to_e4, date_to_sql, id_to_sql, time_to_sql};
use crate::connections::ensure_connection;
use crate::errors::{db_error_in, is_busy};

/// Attempts at a batch that meets a busy database.
const MAX_ATTEMPTS: u32 = 4;
/// Pause before the first retry (doubled for each later one).
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// Rows per multi-row statement.
const MAX_ROWS_PER_STATEMENT: usize = 500;
/// Bound parameters per statement (SQLite allows 32,766 by default).
const MAX_BINDS_PER_STATEMENT: usize = 30_000;

/// Columns every record table has, in insert order (`deleted_at` defaults to NULL).
const COMMON_COLUMNS: [&str; 8] = [
    "workspace_id",
    "id",
    "source",
    "source_id",
    "data",
    "content_hash",
    "created_at",
    "updated_at",
];

/// Columns of `deal_changes`, in insert order.
const CHANGE_COLUMNS: [&str; 9] = [
    "workspace_id",
    "id",
    "deal_id",
    "field",
    "old_value",
    "new_value",
    "changed_at",
    "origin",
    "created_at",
];

/// Writes `batch` (and `checkpoint`) for `workspace` atomically.
pub(crate) async fn write_batch(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    batch: &PreparedBatch,
    checkpoint: Option<&Checkpoint>,
) -> Result<BatchOutcome> {
    let plan = BatchPlan::new(batch)?;
    let mut attempt = 1;
    loop {
        match write_once(pool, workspace, &plan, checkpoint).await {
            Ok(outcome) => {
                tracing::debug!(
                    workspace_id = %workspace,
                    source = plan.source,
                    changes_inserted = outcome.changes_inserted,
                    "batch written"
                );
                return Ok(outcome);
            }
            Err(WriteError::Db(e)) if is_busy(&e) && attempt < MAX_ATTEMPTS => {
                tracing::warn!(workspace_id = %workspace, attempt, "database busy; retrying the batch");
                tokio::time::sleep(RETRY_BACKOFF * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            Err(WriteError::Db(e)) => return Err(db_error_in(workspace)(e)),
            Err(WriteError::Rejected(e)) => return Err(e),
        }
    }
}

/// Why an attempt failed: the database (maybe busy, worth a retry) or the batch itself.
enum WriteError {
    Db(sqlx::Error),
    Rejected(Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Db(e)
    }
}

impl From<Error> for WriteError {
    fn from(e: Error) -> Self {
        WriteError::Rejected(e)
    }
}

type Attempt<T> = std::result::Result<T, WriteError>;

async fn write_once(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    plan: &BatchPlan<'_>,
    checkpoint: Option<&Checkpoint>,
) -> Attempt<BatchOutcome> {
    let mut conn = WriteConnection::new(pool.acquire().await?);
    let mut tx = conn.get().begin_with("BEGIN IMMEDIATE").await?;
    let ws = id_to_sql(workspace);
    // Taken once the write lock is held, so later commits never carry earlier times.
    let now = time_to_sql(model::now());

    let exists = sqlx::query("SELECT 1 FROM workspaces WHERE id = ?")
        .bind(&ws)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(Error::not_found("workspace", workspace).into());
    }
    if let Some(cp) = checkpoint {
        ensure_connection(&mut *tx, workspace, cp.connection_id).await?;
    }

    let mut outcome = BatchOutcome::default();
    for kind_plan in &plan.kinds {
        let mut counts = upsert_rows(&mut tx, &ws, plan.source, kind_plan, now).await?;
        counts.deleted = soft_delete(&mut tx, &ws, plan.source, kind_plan, now).await?;
        outcome.counts.insert(kind_plan.kind, counts);
    }
    outcome.changes_inserted = insert_changes(&mut tx, &ws, plan, now).await?;
    if let Some(cp) = checkpoint {
        sqlx::query(
            "INSERT INTO sync_checkpoints (workspace_id, connection_id, stream, cursor, updated_at) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (workspace_id, connection_id, stream) \
             DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        )
        .bind(&ws)
        .bind(id_to_sql(cp.connection_id))
        .bind(&cp.stream)
        .bind(serde_json::to_string(&cp.cursor).map_err(Error::from)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    conn.committed();
    Ok(outcome)
}

/// The pool connection a batch is written on. Unless the batch committed, it
/// is closed instead of going back to the pool: closing rolls back whatever a
/// failed or cancelled attempt left open. (Rolling back on `Transaction` drop
/// is not enough: a future dropped while sqlx begins a transaction with a
/// custom statement can leave it open, holding SQLite's write lock, and a
/// rollback queued on drop fails silently.)
struct WriteConnection {
    conn: PoolConnection<Sqlite>,
    committed: bool,
}

impl WriteConnection {
    fn new(conn: PoolConnection<Sqlite>) -> Self {
        WriteConnection {
            conn,
            committed: false,
        }
    }

    fn get(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// The batch committed: the connection can go back to the pool.
    fn committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for WriteConnection {
    fn drop(&mut self) {
        if !self.committed {
            tracing::debug!("closing the connection of a batch that did not commit");
            self.conn.close_on_drop();
        }
    }
}

/// Upserts the rows of one kind; returns inserted/updated/unchanged counts.
async fn upsert_rows(
    conn: &mut SqliteConnection,
    ws: &[u8],
    source: &str,
    plan: &KindPlan<'_>,
    now: i64,
) -> Attempt<StreamCounts> {
    let mut counts = StreamCounts::default();
    if plan.rows.is_empty() {
        return Ok(counts);
    }
    let table = plan.kind.table();
    let ids: Vec<&str> = plan.rows.iter().map(|r| r.source_id).collect();
    let existing: HashMap<String, (Vec<u8>, bool)> =
        sqlx::query_as::<_, (String, Vec<u8>, bool)>(&format!(
            "SELECT source_id, content_hash, deleted_at IS NOT NULL FROM {table} \
             WHERE workspace_id = ? AND source = ? \
             AND source_id IN (SELECT value FROM json_each(?))"
        ))
        .bind(ws)
        .bind(source)
        .bind(serde_json::to_string(&ids).map_err(Error::from)?)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(source_id, hash, deleted)| (source_id, (hash, deleted)))
        .collect();

    let mut to_write = Vec::with_capacity(plan.rows.len());
    for row in &plan.rows {
        match existing.get(row.source_id) {
            None => {
                counts.inserted += 1;
                to_write.push(row);
            }
            Some((hash, false)) if hash.as_slice() == row.hash => counts.unchanged += 1,
            Some(_) => {
                counts.updated += 1;
                to_write.push(row);
            }
        }
    }

    let promoted = promoted_columns(plan.kind);
    let per_statement = rows_per_statement(COMMON_COLUMNS.len() + promoted.len());
    let insert_head = format!(
        "INSERT INTO {table} ({}) ",
        COMMON_COLUMNS
            .iter()
            .chain(promoted)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let on_conflict = format!(
        " ON CONFLICT (workspace_id, source, source_id) DO UPDATE SET \
         data = excluded.data, content_hash = excluded.content_hash, \
         updated_at = excluded.updated_at, deleted_at = NULL{}",
        promoted
            .iter()
            .map(|c| format!(", {c} = excluded.{c}"))
            .collect::<String>()
    );
    for chunk in to_write.chunks(per_statement) {
        let mut qb = QueryBuilder::<Sqlite>::new(insert_head.as_str());
        qb.push_values(chunk, |mut b, row| {
            b.push_bind(ws)
                .push_bind(id_to_sql(model::new_id()))
                .push_bind(source)
                .push_bind(row.source_id)
                .push_bind(row.json)
                .push_bind(row.hash)
                .push_bind(now)
                .push_bind(now);
            row.promoted.bind(&mut b);
        });
        qb.push(on_conflict.as_str());
        qb.build()
            .persistent(chunk.len() == per_statement)
            .execute(&mut *conn)
            .await?;
    }
    Ok(counts)
}

/// Soft-deletes the live rows of one kind named by the batch's deletions; returns how many.
async fn soft_delete(
    conn: &mut SqliteConnection,
    ws: &[u8],
    source: &str,
    plan: &KindPlan<'_>,
    now: i64,
) -> Attempt<u64> {
    if plan.deletions.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(&format!(
        "UPDATE {} SET deleted_at = ?, updated_at = ? \
         WHERE workspace_id = ? AND source = ? AND deleted_at IS NULL \
         AND source_id IN (SELECT value FROM json_each(?))",
        plan.kind.table()
    ))
    .bind(now)
    .bind(now)
    .bind(ws)
    .bind(source)
    .bind(serde_json::to_string(&plan.deletions).map_err(Error::from)?)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Inserts the batch's deal changes not stored yet; returns how many were new.
async fn insert_changes(
    conn: &mut SqliteConnection,
    ws: &[u8],
    plan: &BatchPlan<'_>,
    now: i64,
) -> Attempt<u64> {
    if plan.changes.is_empty() {
        return Ok(0);
    }
    let wanted: Vec<&str> = plan
        .changes
        .iter()
        .map(|c| c.deal_source_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let deal_ids: HashMap<String, Vec<u8>> = sqlx::query_as::<_, (String, Vec<u8>)>(
        "SELECT source_id, id FROM deals WHERE workspace_id = ? AND source = ? \
         AND source_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ws)
    .bind(plan.source)
    .bind(serde_json::to_string(&wanted).map_err(Error::from)?)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    if let Some(unknown) = plan
        .changes
        .iter()
        .find(|c| !deal_ids.contains_key(c.deal_source_id))
    {
        return Err(Error::invalid(
            "deal_changes.deal_source_id",
            format!(
                "no deal {:?} from source {:?} in this workspace",
                unknown.deal_source_id, plan.source
            ),
        )
        .into());
    }

    let per_statement = rows_per_statement(CHANGE_COLUMNS.len());
    let insert_head = format!("INSERT INTO deal_changes ({}) ", CHANGE_COLUMNS.join(", "));
    let mut inserted = 0;
    // Deals that got at least one new change: their computed fields follow.
    let mut touched: HashSet<Vec<u8>> = HashSet::new();
    for chunk in plan.changes.chunks(per_statement) {
        let mut qb = QueryBuilder::<Sqlite>::new(insert_head.as_str());
        qb.push_values(chunk, |mut b, change| {
            b.push_bind(ws)
                .push_bind(id_to_sql(model::new_id()))
                .push_bind(deal_ids.get(change.deal_source_id).map(Vec::as_slice))
                .push_bind(change.field)
                .push_bind(change.old_value)
                .push_bind(change.new_value)
                .push_bind(change.changed_at)
                .push_bind(change.origin)
                .push_bind(now);
        });
        // Repeats hit the unique index deal_changes_once and are skipped;
        // RETURNING yields only the rows inserted.
        qb.push(" ON CONFLICT DO NOTHING RETURNING deal_id");
        let rows: Vec<(Vec<u8>,)> = qb
            .build_query_as()
            .persistent(chunk.len() == per_statement)
            .fetch_all(&mut *conn)
            .await?;
        inserted += rows.len() as u64;
        touched.extend(rows.into_iter().map(|(id,)| id));
    }

    // The computed fields of the deals whose history grew (NULL when the
    // batch has none for one), in source-id order.
    let mut by_source: Vec<(&str, &Vec<u8>)> = deal_ids
        .iter()
        .filter(|(_, id)| touched.contains(*id))
        .map(|(source_id, id)| (source_id.as_str(), id))
        .collect();
    by_source.sort_unstable();
    for (source_id, id) in by_source {
        let computed = plan.computed.get(source_id);
        // A deal this batch just wrote (updated_at = the batch's time)
        // already got its computed fields from the upsert.
        sqlx::query(
            "UPDATE deals SET risk_score = ?, computed = ? \
             WHERE workspace_id = ? AND id = ? AND updated_at <> ?",
        )
        .bind(computed.map(|c| i64::from(c.risk_score())))
        .bind(computed.map(|c| c.json.as_str()))
        .bind(ws)
        .bind(id.as_slice())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(inserted)
}

fn rows_per_statement(columns: usize) -> usize {
    (MAX_BINDS_PER_STATEMENT / columns.max(1)).clamp(1, MAX_ROWS_PER_STATEMENT)
}

// ---- the encoded batch ------------------------------------------------------

/// A batch encoded for SQLite, borrowing from the [`PreparedBatch`].
struct BatchPlan<'a> {
    source: &'a str,
    /// Kinds present in the batch (records or deletions), in [`RecordKind::ALL`] order.
    kinds: Vec<KindPlan<'a>>,
    changes: Vec<ChangeRow<'a>>,
    /// Computed fields of deals, by deal source id.
    computed: &'a std::collections::BTreeMap<String, PreparedComputed>,
}

/// The rows and deletions of one kind.
struct KindPlan<'a> {
    kind: RecordKind,
    /// One row per source id (the last one when repeated).
    rows: Vec<RecordRow<'a>>,
    /// Source ids to soft-delete, without repeats.
    deletions: Vec<&'a str>,
}

/// One record to upsert.
struct RecordRow<'a> {
    source_id: &'a str,
    json: &'a str,
    hash: &'a [u8],
    promoted: Promoted<'a>,
}

/// A deal change to insert.
struct ChangeRow<'a> {
    deal_source_id: &'a str,
    field: &'static str,
    old_value: Option<&'a str>,
    new_value: Option<&'a str>,
    changed_at: i64,
    origin: &'static str,
}

/// The promoted columns of a record, by kind (see [`promoted_columns`]).
enum Promoted<'a> {
    None,
    User { manager_source_id: Option<&'a str> },
    Contact { account_source_id: Option<&'a str> },
    Deal(Box<DealColumns<'a>>),
}

/// The promoted columns of a deal, encoded.
struct DealColumns<'a> {
    name: &'a str,
    amount_e4: Option<i64>,
    currency: Option<&'a str>,
    pipeline: Option<&'a str>,
    stage: Option<&'a str>,
    stage_category: &'static str,
    close_date: Option<String>,
    owner_source_id: Option<&'a str>,
    account_source_id: Option<&'a str>,
    source_updated_at: Option<i64>,
    risk_score: Option<i64>,
    computed: Option<&'a str>,
}

/// The promoted columns of `kind`'s table, in the order [`Promoted::bind`] binds them.
fn promoted_columns(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::User => &["manager_source_id"],
        RecordKind::Contact => &["account_source_id"],
        RecordKind::Deal => &[
            "name",
            "amount_e4",
            "currency",
            "pipeline",
            "stage",
            "stage_category",
            "close_date",
            "owner_source_id",
            "account_source_id",
            "source_updated_at",
            "risk_score",
            "computed",
        ],
        _ => &[],
    }
}

impl<'a> Promoted<'a> {
    fn bind<'q>(&'q self, b: &mut Separated<'_, 'q, Sqlite, &'static str>)
    where
        'a: 'q,
    {
        match self {
            Promoted::None => {}
            Promoted::User { manager_source_id } => {
                b.push_bind(*manager_source_id);
            }
            Promoted::Contact { account_source_id } => {
                b.push_bind(*account_source_id);
            }
            Promoted::Deal(d) => {
                b.push_bind(d.name)
                    .push_bind(d.amount_e4)
                    .push_bind(d.currency)
                    .push_bind(d.pipeline)
                    .push_bind(d.stage)
                    .push_bind(d.stage_category)
                    .push_bind(d.close_date.as_deref())
                    .push_bind(d.owner_source_id)
                    .push_bind(d.account_source_id)
                    .push_bind(d.source_updated_at)
                    .push_bind(d.risk_score)
                    .push_bind(d.computed);
            }
        }
    }
}

impl<'a> DealColumns<'a> {
    fn new(deal: &'a NewDeal, computed: Option<&'a PreparedComputed>) -> Result<DealColumns<'a>> {
        Ok(DealColumns {
            name: &deal.name,
            amount_e4: deal
                .amount
                .map(|a| amount_to_e4(a.round_dp(4), "deals.amount"))
                .transpose()?,
            currency: deal.currency.as_deref(),
            pipeline: deal.pipeline.as_deref(),
            stage: deal.stage.as_deref(),
            stage_category: deal.stage_category.as_str(),
            close_date: deal
                .close_date
                .map(|d| date_to_sql(d, "deals.close_date"))
                .transpose()?,
            owner_source_id: deal.owner_source_id.as_deref(),
            account_source_id: deal.account_source_id.as_deref(),
            source_updated_at: deal.source_updated_at.map(time_to_sql),
            risk_score: computed.map(|c| i64::from(c.risk_score())),
            computed: computed.map(|c| c.json.as_str()),
        })
    }
}

impl<'a> BatchPlan<'a> {
    fn new(batch: &'a PreparedBatch) -> Result<BatchPlan<'a>> {
        let mut kinds = Vec::new();
        for kind in RecordKind::ALL {
            let rows = last_per_source_id(record_rows(batch, kind)?);
            let mut seen = HashSet::new();
            let deletions: Vec<&str> = batch
                .deletions
                .iter()
                .filter(|d| d.kind == kind && seen.insert(d.source_id.as_str()))
                .map(|d| d.source_id.as_str())
                .collect();
            if !rows.is_empty() || !deletions.is_empty() {
                kinds.push(KindPlan {
                    kind,
                    rows,
                    deletions,
                });
            }
        }
        let changes = batch
            .deal_changes
            .iter()
            .map(|c| ChangeRow {
                deal_source_id: &c.deal_source_id,
                field: c.field.as_str(),
                old_value: c.old_value.as_deref(),
                new_value: c.new_value.as_deref(),
                changed_at: time_to_sql(c.changed_at),
                origin: c.origin.as_str(),
            })
            .collect();
        Ok(BatchPlan {
            source: &batch.source,
            kinds,
            changes,
            computed: &batch.computed,
        })
    }
}

/// The records of `kind` in `batch`, with their promoted columns.
fn record_rows(batch: &PreparedBatch, kind: RecordKind) -> Result<Vec<RecordRow<'_>>> {
    fn rows<'a, T>(
        records: &'a [Prepared<T>],
        promoted: impl Fn(&'a T) -> Result<Promoted<'a>>,
    ) -> Result<Vec<RecordRow<'a>>> {
        records
            .iter()
            .map(|p| {
                Ok(RecordRow {
                    source_id: &p.source_id,
                    json: &p.json,
                    hash: &p.hash,
                    promoted: promoted(&p.record)?,
                })
            })
            .collect()
    }
    match kind {
        RecordKind::User => rows(&batch.users, |u| {
            Ok(Promoted::User {
                manager_source_id: u.manager_source_id.as_deref(),
            })
        }),
        RecordKind::Contact => rows(&batch.contacts, |c| {
            Ok(Promoted::Contact {
                account_source_id: c.account_source_id.as_deref(),
            })
        }),
        RecordKind::Deal => batch
            .deals
            .iter()
            .map(|p| {
                let computed = batch.computed.get(&p.source_id);
                Ok(RecordRow {
                    source_id: &p.source_id,
                    json: &p.json,
                    hash: &p.hash,
                    promoted: Promoted::Deal(Box::new(DealColumns::new(&p.record, computed)?)),
                })
            })
            .collect(),
        other => Ok(batch
            .raw(other)
            .into_iter()
            .map(|r| RecordRow {
                source_id: r.source_id,
                json: r.json,
                hash: r.hash,
                promoted: Promoted::None,
            })
            .collect()),
    }
}

/// Keeps the last row of each source id, in first-seen order
/// ([`pandora_core::batch::RecordBatch::prepare`] already does; a hand-built batch may not).
fn last_per_source_id(rows: Vec<RecordRow<'_>>) -> Vec<RecordRow<'_>> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<RecordRow<'_>> = Vec::with_capacity(rows.len());
    for row in rows {
        match index.get(row.source_id).and_then(|&i| out.get_mut(i)) {
            Some(slot) => *slot = row,
            None => {
                index.insert(row.source_id, out.len());
                out.push(row);
            }
        }
    }
    out
}
