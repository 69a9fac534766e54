//! `write_batch`: one transaction that upserts every record kind with
//! set-based SQL, soft-deletes, stores deal changes and the checkpoint.
//!
//! Each kind is written by a single `INSERT … SELECT unnest(arrays…) ON
//! CONFLICT DO UPDATE … WHERE the hash differs or the row was deleted`, so a
//! page costs one round trip per kind whatever its size, and unchanged rows
//! are not rewritten (a deal's computed fields ride along as two more
//! columns, so they are written exactly when the deal is). Deals that get a
//! new history row get the batch's computed fields in the same statement
//! that inserts the history. Rows are sent sorted by key so that concurrent writers
//! lock shared keys in the same order; a serialization failure or deadlock
//! still retries the whole transaction a few times.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use pandora_core::batch::{BatchOutcome, Prepared, PreparedBatch, PreparedComputed, RecordKind};
use pandora_core::model::{self, Checkpoint, NewDealChange, StreamCounts, WorkspaceId};
use pandora_core::store::CommitGate;
use pandora_core::{Error, Result};
use rust_decimal::Decimal;
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};
use uuid::Uuid;

use crate::errors::{is_retryable, map_db_error};

/// Attempts of a transaction that hits serialization failures or deadlocks.
const MAX_ATTEMPTS: u32 = 5;

/// Why one attempt failed.
enum AttemptError {
    /// A database error (maybe retryable).
    Db(sqlx::Error),
    /// The batch itself is rejected (unknown deal, foreign connection…).
    Rejected(Error),
}

impl From<sqlx::Error> for AttemptError {
    fn from(e: sqlx::Error) -> Self {
        AttemptError::Db(e)
    }
}

/// `RecordStore::write_batch`.
pub(crate) async fn write_batch(
    pool: &PgPool,
    workspace: WorkspaceId,
    batch: &PreparedBatch,
    checkpoint: Option<&Checkpoint>,
) -> Result<BatchOutcome> {
    write_batch_gated(pool, workspace, batch, checkpoint, None).await
}

/// `RecordStore::write_batch_gated` (and, without a gate, `write_batch`):
/// the records, deletions and history are written at once, in the
/// transaction; the checkpoint and the commit wait for the gate. While a
/// gated batch waits, its transaction holds the locks of its own rows only
/// (the engine overlaps only batches without shared keys, and the
/// checkpoint row is written after the gate), so the batch before it never
/// waits for it; as a safety net, a lock awaited longer than
/// [`GATED_LOCK_TIMEOUT`] fails the batch rather than waiting forever.
pub(crate) async fn write_batch_gated(
    pool: &PgPool,
    workspace: WorkspaceId,
    batch: &PreparedBatch,
    checkpoint: Option<&Checkpoint>,
    gate: Option<CommitGate>,
) -> Result<BatchOutcome> {
    let started = Instant::now();
    let plan = Plan::new(batch);
    let mut gate = Gate {
        lock_timeout: gate.is_some().then_some(GATED_LOCK_TIMEOUT),
        pending: gate,
        passed: false,
    };
    let mut attempt = 1;
    loop {
        match write_once(pool, workspace, &plan, checkpoint, &mut gate).await {
            Ok(outcome) => {
                tracing::debug!(
                    %workspace,
                    source = %batch.source,
                    records = plan.record_count(),
                    changes_inserted = outcome.changes_inserted,
                    attempt,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "batch written"
                );
                return Ok(outcome);
            }
            Err(AttemptError::Db(e)) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                tracing::warn!(%workspace, attempt, error = %e, "batch write conflicted; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(AttemptError::Db(e)) => return Err(map_db_error(e, Some(workspace))),
            Err(AttemptError::Rejected(e)) => return Err(e),
        }
    }
}

/// The lock timeout of a gated batch's transaction (a safety net: the
/// engine's batches never wait on each other for this long).
const GATED_LOCK_TIMEOUT: &str = "60s";

/// The commit gate of one batch, awaited once however many attempts it
/// takes.
struct Gate {
    pending: Option<CommitGate>,
    passed: bool,
    /// `lock_timeout` of the transaction (`None`: the session's).
    lock_timeout: Option<&'static str>,
}

impl Gate {
    /// Waits until the batch may commit.
    async fn wait(&mut self) -> Result<(), AttemptError> {
        if self.passed {
            return Ok(());
        }
        if let Some(gate) = self.pending.take() {
            gate.await.map_err(AttemptError::Rejected)?;
        }
        self.passed = true;
        Ok(())
    }
}

/// Exponential backoff with a little jitter: 10, 20, 40, 80 ms (+0–9 ms).
fn backoff(attempt: u32) -> Duration {
    let jitter = u64::from(Uuid::new_v4().as_bytes()[0] % 10);
    Duration::from_millis(10 * (1 << attempt.min(6)) / 2 + jitter)
}

async fn write_once(
    pool: &PgPool,
    workspace: WorkspaceId,
    plan: &Plan<'_>,
    checkpoint: Option<&Checkpoint>,
    gate: &mut Gate,
) -> Result<BatchOutcome, AttemptError> {
    let now = model::now();
    let source = plan.source;
    let mut tx = pool.begin().await?;

    // Generic plans for this transaction: a custom plan would copy the large
    // array parameters into the plan tree on every call, which costs more
    // than the statements themselves (there is nothing to gain from knowing
    // the values). One round trip, together with the workspace check.
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = $1) \
         FROM set_config('plan_cache_mode', 'force_generic_plan', true) AS plans, \
              set_config('lock_timeout', COALESCE($2, current_setting('lock_timeout')), true) \
                  AS locks",
    )
    .bind(workspace)
    .bind(gate.lock_timeout)
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(AttemptError::Rejected(Error::not_found(
            "workspace",
            workspace,
        )));
    }

    let mut outcome = BatchOutcome::default();
    for upsert in &plan.upserts {
        let counts = upsert.execute(&mut tx, workspace, source, now).await?;
        outcome.counts.insert(upsert.kind, counts);
    }
    for (kind, source_ids) in &plan.deletions {
        let deleted = soft_delete(&mut tx, workspace, source, now, *kind, source_ids).await?;
        outcome.counts.entry(*kind).or_default().deleted += deleted;
    }
    if !plan.changes.is_empty() {
        outcome.changes_inserted = insert_changes(&mut tx, workspace, source, now, plan).await?;
    }
    // The checkpoint row is the one row consecutive pages share: it is
    // written once the page before has committed, so that page never waits
    // for this one.
    gate.wait().await?;
    if let Some(cp) = checkpoint {
        save_checkpoint(&mut tx, workspace, now, cp).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Everything a batch writes, sorted and laid out as column arrays once
/// (retries reuse it).
struct Plan<'a> {
    source: &'a str,
    upserts: Vec<Upsert<'a>>,
    deletions: BTreeMap<RecordKind, Vec<&'a str>>,
    changes: Vec<&'a NewDealChange>,
    /// Computed fields of deals, by deal source id.
    computed: &'a BTreeMap<String, PreparedComputed>,
}

impl<'a> Plan<'a> {
    fn new(batch: &'a PreparedBatch) -> Self {
        let mut upserts = Vec::new();
        let mut push = |u: Option<Upsert<'a>>| upserts.extend(u);
        for kind in RecordKind::ALL {
            push(match kind {
                RecordKind::User => Upsert::of(kind, &batch.users, |rs| Promoted::User {
                    manager_source_id: rs
                        .iter()
                        .map(|r| r.record.manager_source_id.as_deref())
                        .collect(),
                }),
                RecordKind::Account => Upsert::of(kind, &batch.accounts, |_| Promoted::None),
                RecordKind::Contact => Upsert::of(kind, &batch.contacts, |rs| Promoted::Contact {
                    account_source_id: rs
                        .iter()
                        .map(|r| r.record.account_source_id.as_deref())
                        .collect(),
                }),
                RecordKind::PipelineStage => {
                    Upsert::of(kind, &batch.stages, |rs| Promoted::Stage {
                        pipeline: rs.iter().map(|r| r.record.pipeline.as_str()).collect(),
                        stage: rs.iter().map(|r| r.record.stage.as_str()).collect(),
                        display_order: rs.iter().map(|r| r.record.display_order).collect(),
                    })
                }
                RecordKind::Deal => Upsert::of(kind, &batch.deals, |rs| {
                    DealColumns::promoted(rs, &batch.computed)
                }),
                RecordKind::DealContact => {
                    Upsert::of(kind, &batch.deal_contacts, |_| Promoted::None)
                }
                RecordKind::Conversation => {
                    Upsert::of(kind, &batch.conversations, |_| Promoted::None)
                }
                RecordKind::Task => Upsert::of(kind, &batch.tasks, |_| Promoted::None),
                RecordKind::Document => Upsert::of(kind, &batch.documents, |_| Promoted::None),
            });
        }

        let mut deletions: BTreeMap<RecordKind, Vec<&'a str>> = BTreeMap::new();
        for d in &batch.deletions {
            deletions.entry(d.kind).or_default().push(&d.source_id);
        }
        for ids in deletions.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }

        let mut changes: Vec<&NewDealChange> = batch.deal_changes.iter().collect();
        changes.sort_by(|a, b| {
            (&a.deal_source_id, a.field, a.changed_at).cmp(&(
                &b.deal_source_id,
                b.field,
                b.changed_at,
            ))
        });

        Plan {
            source: &batch.source,
            upserts,
            deletions,
            changes,
            computed: &batch.computed,
        }
    }

    fn record_count(&self) -> usize {
        self.upserts.iter().map(|u| u.source_ids.len()).sum()
    }
}

/// The records of one kind as column arrays, sorted by source id.
struct Upsert<'a> {
    kind: RecordKind,
    ids: Vec<Uuid>,
    source_ids: Vec<&'a str>,
    data: Vec<&'a str>,
    hashes: Vec<&'a [u8]>,
    promoted: Promoted<'a>,
}

/// The promoted columns of a kind, as arrays parallel to [`Upsert::ids`].
enum Promoted<'a> {
    None,
    User {
        manager_source_id: Vec<Option<&'a str>>,
    },
    Contact {
        account_source_id: Vec<Option<&'a str>>,
    },
    Stage {
        pipeline: Vec<&'a str>,
        stage: Vec<&'a str>,
        display_order: Vec<Option<i32>>,
    },
    Deal(Box<DealColumns<'a>>),
}

/// The promoted columns of deals.
struct DealColumns<'a> {
    name: Vec<&'a str>,
    amount: Vec<Option<Decimal>>,
    currency: Vec<Option<&'a str>>,
    pipeline: Vec<Option<&'a str>>,
    stage: Vec<Option<&'a str>>,
    stage_category: Vec<&'static str>,
    close_date: Vec<Option<NaiveDate>>,
    owner_source_id: Vec<Option<&'a str>>,
    account_source_id: Vec<Option<&'a str>>,
    source_updated_at: Vec<Option<DateTime<Utc>>>,
    risk_score: Vec<Option<i16>>,
    computed: Vec<Option<&'a str>>,
}

impl<'a> DealColumns<'a> {
    fn promoted(
        rs: &[&'a Prepared<pandora_core::model::NewDeal>],
        computed: &'a BTreeMap<String, PreparedComputed>,
    ) -> Promoted<'a> {
        let computed_of =
            |r: &&'a Prepared<pandora_core::model::NewDeal>| computed.get(&r.source_id);
        let col = |f: fn(&'a pandora_core::model::NewDeal) -> Option<&'a str>| {
            rs.iter().map(|r| f(&r.record)).collect::<Vec<_>>()
        };
        Promoted::Deal(Box::new(DealColumns {
            name: rs.iter().map(|r| r.record.name.as_str()).collect(),
            amount: rs.iter().map(|r| r.record.amount).collect(),
            currency: col(|d| d.currency.as_deref()),
            pipeline: col(|d| d.pipeline.as_deref()),
            stage: col(|d| d.stage.as_deref()),
            stage_category: rs
                .iter()
                .map(|r| r.record.stage_category.as_str())
                .collect(),
            close_date: rs.iter().map(|r| r.record.close_date).collect(),
            owner_source_id: col(|d| d.owner_source_id.as_deref()),
            account_source_id: col(|d| d.account_source_id.as_deref()),
            source_updated_at: rs.iter().map(|r| r.record.source_updated_at).collect(),
            risk_score: rs
                .iter()
                .map(|r| computed_of(r).map(|c| i16::from(c.risk_score())))
                .collect(),
            computed: rs
                .iter()
                .map(|r| computed_of(r).map(|c| c.json.as_str()))
                .collect(),
        }))
    }
}

impl<'a> Upsert<'a> {
    /// The upsert of `records` (none when empty).
    fn of<T>(
        kind: RecordKind,
        records: &'a [Prepared<T>],
        promoted: impl FnOnce(&[&'a Prepared<T>]) -> Promoted<'a>,
    ) -> Option<Self> {
        if records.is_empty() {
            return None;
        }
        let mut sorted: Vec<&'a Prepared<T>> = records.iter().collect();
        sorted.sort_unstable_by(|a, b| a.source_id.cmp(&b.source_id));
        Some(Upsert {
            kind,
            ids: sorted.iter().map(|_| model::new_id()).collect(),
            source_ids: sorted.iter().map(|r| r.source_id.as_str()).collect(),
            data: sorted.iter().map(|r| r.json.as_str()).collect(),
            hashes: sorted.iter().map(|r| r.hash.as_slice()).collect(),
            promoted: promoted(&sorted),
        })
    }

    /// Runs the upsert and counts inserted / updated / unchanged rows.
    async fn execute(
        &self,
        conn: &mut PgConnection,
        workspace: WorkspaceId,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<StreamCounts, sqlx::Error> {
        let query = sqlx::query(upsert_sql(self.kind))
            .bind(workspace)
            .bind(source)
            .bind(now)
            .bind(&self.ids[..])
            .bind(&self.source_ids[..])
            .bind(&self.data[..])
            .bind(&self.hashes[..]);
        let row = self.bind_promoted(query).fetch_one(conn).await?;
        let inserted: i64 = row.try_get("inserted")?;
        let written: i64 = row.try_get("written")?;
        let total = self.ids.len() as u64;
        let inserted = inserted.max(0) as u64;
        let written = written.max(0) as u64;
        Ok(StreamCounts {
            inserted,
            updated: written.saturating_sub(inserted),
            unchanged: total.saturating_sub(written),
            deleted: 0,
        })
    }

    fn bind_promoted<'q>(
        &'q self,
        q: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        match &self.promoted {
            Promoted::None => q,
            Promoted::User { manager_source_id } => q.bind(&manager_source_id[..]),
            Promoted::Contact { account_source_id } => q.bind(&account_source_id[..]),
            Promoted::Stage {
                pipeline,
                stage,
                display_order,
            } => q
                .bind(&pipeline[..])
                .bind(&stage[..])
                .bind(&display_order[..]),
            Promoted::Deal(d) => q
                .bind(&d.name[..])
                .bind(&d.amount[..])
                .bind(&d.currency[..])
                .bind(&d.pipeline[..])
                .bind(&d.stage[..])
                .bind(&d.stage_category[..])
                .bind(&d.close_date[..])
                .bind(&d.owner_source_id[..])
                .bind(&d.account_source_id[..])
                .bind(&d.source_updated_at[..])
                .bind(&d.risk_score[..])
                .bind(&d.computed[..]),
        }
    }
}

/// Promoted columns of a kind and their SQL types, in bind order.
fn promoted_columns(kind: RecordKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        RecordKind::User => &[("manager_source_id", "text")],
        RecordKind::Contact => &[("account_source_id", "text")],
        RecordKind::PipelineStage => &[
            ("pipeline", "text"),
            ("stage", "text"),
            ("display_order", "int4"),
        ],
        RecordKind::Deal => &[
            ("name", "text"),
            ("amount", "numeric"),
            ("currency", "text"),
            ("pipeline", "text"),
            ("stage", "text"),
            ("stage_category", "text"),
            ("close_date", "date"),
            ("owner_source_id", "text"),
            ("account_source_id", "text"),
            ("source_updated_at", "timestamptz"),
            ("risk_score", "int2"),
            ("computed", "jsonb"),
        ],
        RecordKind::Account
        | RecordKind::DealContact
        | RecordKind::Conversation
        | RecordKind::Task
        | RecordKind::Document => &[],
    }
}

/// The upsert statement of `kind` (built once).
fn upsert_sql(kind: RecordKind) -> &'static str {
    static SQL: LazyLock<Vec<(RecordKind, String)>> = LazyLock::new(|| {
        RecordKind::ALL
            .iter()
            .map(|&k| (k, build_upsert_sql(k.table(), promoted_columns(k))))
            .collect()
    });
    SQL.iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, sql)| sql.as_str())
        .unwrap_or_default()
}

/// `$1` workspace, `$2` source, `$3` now, `$4..$7` ids, source ids, JSON,
/// hashes, then one array per promoted column.
fn build_upsert_sql(table: &str, promoted: &[(&str, &str)]) -> String {
    let mut columns = String::new();
    let mut selected = String::new();
    let mut arrays = String::new();
    let mut updates = String::new();
    for (i, (name, ty)) in promoted.iter().enumerate() {
        columns.push_str(&format!(", {name}"));
        // JSON travels as text (like `data`) and is cast in the select list.
        if *ty == "jsonb" {
            selected.push_str(&format!(", i.{name}::jsonb"));
            arrays.push_str(&format!(", unnest(${}::text[]) AS {name}", i + 8));
        } else {
            selected.push_str(&format!(", i.{name}"));
            arrays.push_str(&format!(", unnest(${}::{ty}[]) AS {name}", i + 8));
        }
        updates.push_str(&format!(", {name} = EXCLUDED.{name}"));
    }
    // unnest() in the select list (a ProjectSet, arrays walked in lockstep)
    // streams rows; UNNEST in FROM would first copy them all into a
    // tuplestore.
    format!(
        "WITH written AS ( \
            INSERT INTO {table} AS t (workspace_id, id, source, source_id, data, content_hash, \
                created_at, updated_at{columns}) \
            SELECT $1::uuid, i.id, $2::text, i.source_id, i.data::jsonb, i.content_hash, \
                $3::timestamptz, $3::timestamptz{selected} \
            FROM (SELECT unnest($4::uuid[]) AS id, unnest($5::text[]) AS source_id, \
                unnest($6::text[]) AS data, unnest($7::bytea[]) AS content_hash{arrays}) AS i \
            ON CONFLICT (workspace_id, source, source_id) DO UPDATE SET \
                data = EXCLUDED.data, content_hash = EXCLUDED.content_hash, \
                updated_at = EXCLUDED.updated_at, deleted_at = NULL{updates} \
            WHERE t.content_hash <> EXCLUDED.content_hash OR t.deleted_at IS NOT NULL \
            RETURNING (t.xmax = 0) AS inserted \
        ) \
        SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) AS written FROM written"
    )
}

/// Soft-deletes live rows of `kind`; returns how many.
async fn soft_delete(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    source: &str,
    now: DateTime<Utc>,
    kind: RecordKind,
    source_ids: &[&str],
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "UPDATE {} SET deleted_at = $3, updated_at = $3 \
         WHERE workspace_id = $1 AND source = $2 AND source_id = ANY($4::text[]) \
           AND deleted_at IS NULL",
        kind.table()
    );
    let done = sqlx::query(&sql)
        .bind(workspace)
        .bind(source)
        .bind(now)
        .bind(source_ids)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Stores new deal changes; fails the batch on a change of an unknown deal.
///
/// The statement's plan is generic and made while `deals` may still look
/// empty to the planner (its statistics lag behind a sync), so it is written
/// to probe `deals` by index for each change and each touched deal whatever
/// the estimates: a correlated subquery resolves each deal, and the touched
/// deals are matched by `id = ANY(array)` on the primary key (a join there
/// could become a scan of every deal of the workspace, once per page).
/// Deals that got at least one new change get the batch's computed fields
/// (NULL when it has none for one), in the same statement — except those the
/// batch itself just wrote (`updated_at` = the batch's time), whose upsert
/// already stored them: rewriting them would write every new deal twice.
async fn insert_changes(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    source: &str,
    now: DateTime<Utc>,
    plan: &Plan<'_>,
) -> Result<u64, AttemptError> {
    let changes = &plan.changes[..];
    const SQL: &str = "\
        WITH resolved AS ( \
            SELECT i.*, (SELECT d.id FROM deals d WHERE d.workspace_id = $1 \
                AND d.source = $2 AND d.source_id = i.deal_source_id) AS deal_id \
            FROM (SELECT unnest($4::uuid[]) AS id, unnest($5::text[]) AS deal_source_id, \
                unnest($6::text[]) AS field, unnest($7::text[]) AS old_value, \
                unnest($8::text[]) AS new_value, unnest($9::timestamptz[]) AS changed_at, \
                unnest($10::text[]) AS origin) AS i \
        ), inserted AS ( \
            INSERT INTO deal_changes (workspace_id, id, deal_id, field, old_value, new_value, \
                changed_at, origin, created_at) \
            SELECT $1, r.id, r.deal_id, r.field, r.old_value, r.new_value, r.changed_at, \
                r.origin, $3 \
            FROM resolved r WHERE r.deal_id IS NOT NULL \
            ON CONFLICT (workspace_id, deal_id, field, changed_at, (new_value IS NULL), \
                md5(COALESCE(new_value, ''))) DO NOTHING \
            RETURNING deal_id \
        ), computed AS ( \
            SELECT unnest($11::text[]) AS source_id, unnest($12::int2[]) AS risk_score, \
                unnest($13::text[]) AS computed \
        ), touched AS ( \
            UPDATE deals d SET \
                risk_score = (SELECT c.risk_score FROM computed c WHERE c.source_id = d.source_id), \
                computed = (SELECT c.computed::jsonb FROM computed c WHERE c.source_id = d.source_id) \
            WHERE d.workspace_id = $1 AND d.id = ANY(ARRAY(SELECT deal_id FROM inserted)) \
                AND d.updated_at IS DISTINCT FROM $3 \
            RETURNING 1 \
        ) \
        SELECT (SELECT count(*) FROM inserted) AS inserted, \
               (SELECT min(deal_source_id) FROM resolved WHERE deal_id IS NULL) AS unknown";
    let ids: Vec<Uuid> = changes.iter().map(|_| model::new_id()).collect();
    let deal_source_ids: Vec<&str> = changes.iter().map(|c| c.deal_source_id.as_str()).collect();
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    let old_values: Vec<Option<&str>> = changes.iter().map(|c| c.old_value.as_deref()).collect();
    let new_values: Vec<Option<&str>> = changes.iter().map(|c| c.new_value.as_deref()).collect();
    let changed_at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.changed_at).collect();
    let origins: Vec<&str> = changes.iter().map(|c| c.origin.as_str()).collect();
    // The computed fields of the deals the changes name (the others cannot
    // be touched by them).
    let named: std::collections::BTreeSet<&str> =
        changes.iter().map(|c| c.deal_source_id.as_str()).collect();
    let computed: Vec<(&str, &PreparedComputed)> = named
        .iter()
        .filter_map(|id| plan.computed.get(*id).map(|c| (*id, c)))
        .collect();
    let computed_ids: Vec<&str> = computed.iter().map(|(id, _)| *id).collect();
    let computed_risk: Vec<i16> = computed
        .iter()
        .map(|(_, c)| i16::from(c.risk_score()))
        .collect();
    let computed_json: Vec<&str> = computed.iter().map(|(_, c)| c.json.as_str()).collect();
    let row = sqlx::query(SQL)
        .bind(workspace)
        .bind(source)
        .bind(now)
        .bind(&ids[..])
        .bind(&deal_source_ids[..])
        .bind(&fields[..])
        .bind(&old_values[..])
        .bind(&new_values[..])
        .bind(&changed_at[..])
        .bind(&origins[..])
        .bind(&computed_ids[..])
        .bind(&computed_risk[..])
        .bind(&computed_json[..])
        .fetch_one(conn)
        .await?;
    let unknown: Option<String> = row.try_get("unknown")?;
    if let Some(deal_source_id) = unknown {
        return Err(AttemptError::Rejected(Error::invalid(
            "deal_changes.deal_source_id",
            format!("names a deal that is not stored for source {source}: {deal_source_id:?}"),
        )));
    }
    let inserted: i64 = row.try_get("inserted")?;
    Ok(inserted.max(0) as u64)
}

/// Upserts the checkpoint; the connection must be the workspace's.
async fn save_checkpoint(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    now: DateTime<Utc>,
    cp: &Checkpoint,
) -> Result<(), AttemptError> {
    let done = sqlx::query(
        "INSERT INTO sync_checkpoints (workspace_id, connection_id, stream, cursor, updated_at) \
         SELECT c.workspace_id, c.id, $3, $4, $5 FROM connections c \
         WHERE c.workspace_id = $1 AND c.id = $2 \
         ON CONFLICT (workspace_id, connection_id, stream) \
         DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at",
    )
    .bind(workspace)
    .bind(cp.connection_id)
    .bind(&cp.stream)
    .bind(&cp.cursor)
    .bind(now)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(AttemptError::Rejected(Error::not_found(
            "connection",
            cp.connection_id,
        )));
    }
    Ok(())
}
