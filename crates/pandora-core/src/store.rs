//! The persistence traits every store implements.
//!
//! Every method that touches tenant data takes the workspace id first, and a
//! store must scope every query by it: a row of workspace A is never read or
//! changed through workspace B, even by its exact id (such a call answers
//! [`Error::NotFound`]).
//!
//! The conformance suite in `pandora_core::testing` (feature `testing`) pins the
//! behaviour; every store runs all of it against a real database.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use uuid::Uuid;

use crate::batch::{BatchOutcome, PreparedBatch, RecordKind};
use crate::computed::{ComputedFields, StoredBaseline};
use crate::error::Error;
use crate::error::Result;
use crate::model::{
    Account, ApiKey, Checkpoint, Connection, Contact, Deal, DealChange, Job, NewConnection, NewJob,
    PipelineStage, RunStatus, StoredCredentials, StreamCounts, SyncRun, User, Workspace,
    WorkspaceId, WorkspacePatch,
};
use crate::query::{DealFilter, Page, PageRequest};

/// Workspaces, their API keys, and deployment-wide settings.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Stores a new workspace.
    async fn create_workspace(&self, workspace: &Workspace) -> Result<()>;
    /// One workspace.
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace>;
    /// Workspaces, newest change first (sorted by `updated_at`).
    async fn list_workspaces(&self, page: &PageRequest) -> Result<Page<Workspace>>;
    /// Applies a patch and returns the result.
    async fn update_workspace(&self, id: WorkspaceId, patch: &WorkspacePatch) -> Result<Workspace>;
    /// Deletes a workspace and every row it owns.
    async fn delete_workspace(&self, id: WorkspaceId) -> Result<()>;

    /// Stores a new API key (its hash).
    async fn create_api_key(&self, key: &ApiKey) -> Result<()>;
    /// A workspace's API keys, oldest first.
    async fn list_api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKey>>;
    /// Deletes one API key of a workspace.
    async fn delete_api_key(&self, workspace: WorkspaceId, key_id: Uuid) -> Result<()>;
    /// The key with this SHA-256 hash, whatever its workspace (authentication).
    async fn find_api_key(&self, hash: &[u8]) -> Result<Option<ApiKey>>;

    /// A deployment-wide setting.
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` under `key` unless a value is already there; returns the stored value.
    /// Safe when several replicas race.
    async fn init_setting(&self, key: &str, value: &str) -> Result<String>;
}

/// Connections and their sync checkpoints.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Creates the workspace's connection for `new.connector`, or replaces its
    /// status, credentials and config if it exists.
    async fn upsert_connection(
        &self,
        workspace: WorkspaceId,
        new: &NewConnection,
    ) -> Result<Connection>;
    /// The workspace's connection to a connector.
    async fn get_connection(&self, workspace: WorkspaceId, connector: &str) -> Result<Connection>;
    /// The workspace's connections, by connector id.
    async fn list_connections(&self, workspace: WorkspaceId) -> Result<Vec<Connection>>;
    /// Deletes a connection and its checkpoints.
    async fn delete_connection(&self, workspace: WorkspaceId, connection_id: Uuid) -> Result<()>;
    /// The stored cursors of a connection, by stream.
    async fn get_checkpoints(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
    ) -> Result<BTreeMap<String, serde_json::Value>>;
}

/// What a [`RecordStore::write_batch_gated`] batch waits for before it
/// commits: `Ok` when it may commit, an error when it must store nothing.
pub type CommitGate = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

/// Synced records: batch writes and keyset-paginated reads.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Writes a page of records and, when given, its checkpoint, in one
    /// transaction: on any error nothing of it is stored.
    ///
    /// Records are upserted on `(workspace, source, source_id)`; a record whose
    /// content is unchanged is not touched and counts as unchanged. A record
    /// delivered again after a deletion is restored. Deletions soft-delete.
    /// Field-history rows are keyed by deal, field, time and new value, so
    /// repeating them stores nothing; one naming an unknown deal fails the batch.
    ///
    /// A deal the batch inserts, changes or restores, or stores at least one
    /// new history row for, gets the batch's
    /// [computed fields](PreparedBatch::computed) for it (its `computed` and
    /// `risk_score`), or none (NULL) when the batch has none for it; other
    /// deals keep theirs. Computed fields are no part of the content hash,
    /// and writing them alone does not move `updated_at`.
    async fn write_batch(
        &self,
        workspace: WorkspaceId,
        batch: &PreparedBatch,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<BatchOutcome>;

    /// [`RecordStore::write_batch`], committed only once `gate` resolves:
    /// `Ok` → the batch commits exactly as `write_batch` would; an error →
    /// nothing of it is stored and that error is returned.
    ///
    /// The sync engine writes a page while the one before it is still being
    /// written, and gates each page on the previous one's commit, so pages
    /// commit in order and a page after a failed one never commits. A store
    /// may run the batch's statements before the gate resolves (inside its
    /// uncommitted transaction); the default waits for the gate, then
    /// writes. The engine only overlaps batches that share no record key.
    async fn write_batch_gated(
        &self,
        workspace: WorkspaceId,
        batch: &PreparedBatch,
        checkpoint: Option<&Checkpoint>,
        gate: CommitGate,
    ) -> Result<BatchOutcome> {
        gate.await?;
        self.write_batch(workspace, batch, checkpoint).await
    }

    /// Deals matching `filter`, excluding soft-deleted ones.
    async fn list_deals(
        &self,
        workspace: WorkspaceId,
        filter: &DealFilter,
        page: &PageRequest,
    ) -> Result<Page<Deal>>;
    /// One deal (soft-deleted ones too, with `deleted_at` set).
    async fn get_deal(&self, workspace: WorkspaceId, id: Uuid) -> Result<Deal>;
    /// One deal by its source key (soft-deleted ones too).
    async fn get_deal_by_source(
        &self,
        workspace: WorkspaceId,
        source: &str,
        source_id: &str,
    ) -> Result<Deal>;
    /// The deals of `source` with these source ids (soft-deleted ones too),
    /// in no particular order; ids that match nothing are skipped.
    async fn deals_by_source(
        &self,
        workspace: WorkspaceId,
        source: &str,
        source_ids: &[String],
    ) -> Result<Vec<Deal>>;
    /// A deal's field history, oldest first (ties by id).
    async fn deal_history(&self, workspace: WorkspaceId, deal_id: Uuid) -> Result<Vec<DealChange>>;
    /// The field histories of the workspace's deals with these ids, in one
    /// query, each oldest first (ties by id). Deals without history, and ids
    /// that are no deal of the workspace, are absent from the map.
    async fn deal_histories(
        &self,
        workspace: WorkspaceId,
        deal_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<DealChange>>>;
    /// Stores recomputed fields on deals (one statement or transaction), each
    /// only if the deal is still as it was read: its `updated_at` equals
    /// [`ComputedUpdate::expected_updated_at`]. Does not move `updated_at`.
    /// Returns how many deals were updated; the others (changed meanwhile,
    /// or no deal of the workspace) are left alone.
    async fn set_deal_computed(
        &self,
        workspace: WorkspaceId,
        updates: &[ComputedUpdate],
    ) -> Result<u64>;
    /// The workspace's cached won-deal baseline, if one was stored.
    async fn get_workspace_baseline(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<StoredBaseline>>;
    /// Stores (replacing any earlier one) the workspace's won-deal baseline.
    /// [`Error::NotFound`] when the workspace does not exist.
    async fn put_workspace_baseline(
        &self,
        workspace: WorkspaceId,
        baseline: &StoredBaseline,
    ) -> Result<()>;
    /// Contacts, excluding soft-deleted ones (sorted by `updated_at`).
    async fn list_contacts(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<Contact>>;
    /// Accounts, excluding soft-deleted ones (sorted by `updated_at`).
    async fn list_accounts(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<Account>>;
    /// Users, excluding soft-deleted ones (sorted by `updated_at`).
    async fn list_users(&self, workspace: WorkspaceId, page: &PageRequest) -> Result<Page<User>>;
    /// The workspace's pipeline stages, by pipeline and display order.
    async fn list_stages(&self, workspace: WorkspaceId) -> Result<Vec<PipelineStage>>;
    /// Number of live (not soft-deleted) records of `kind` in the workspace.
    async fn count_records(&self, workspace: WorkspaceId, kind: RecordKind) -> Result<u64>;
    /// Every deal of the workspace (soft-deleted ones included) with its
    /// whole field history, handed to `visit` one at a time in order of id,
    /// each deal's changes ordered by `(changed_at, id)`: the bulk read
    /// behind skill contexts, in memory bounded by one deal. The deals are as
    /// [`SkillStore::scan_deals`](crate::skill::SkillStore::scan_deals) gives
    /// them, except that `fields.properties` is JSON `null` and
    /// `stage_label`, `stage_order`, `probability` and `source_updated_at`
    /// may be unset (skills read none of them). An error from `visit` stops
    /// the scan and is returned.
    async fn scan_skill_deals(
        &self,
        workspace: WorkspaceId,
        visit: &mut (dyn FnMut(crate::skill::ScannedDeal) -> Result<()> + Send),
    ) -> Result<()>;
}

/// One deal's recomputed fields, for [`RecordStore::set_deal_computed`].
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedUpdate {
    /// The deal.
    pub deal_id: Uuid,
    /// The deal's `updated_at` when it was read: the update is skipped if
    /// the deal changed since.
    pub expected_updated_at: chrono::DateTime<chrono::Utc>,
    /// The fields to store.
    pub fields: ComputedFields,
}

/// A connection's stored credentials, as the operator commands scan them.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRow {
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// The connection.
    pub connection_id: Uuid,
    /// Its connector.
    pub connector: String,
    /// The credentials as stored.
    pub credentials: StoredCredentials,
}

/// Deployment-wide access to stored credentials, for the vault's maintenance
/// commands (encrypt existing plaintext, rotate the master key, verify).
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Connections that hold credentials, across all workspaces, ordered by
    /// connection id, strictly after `after`.
    async fn scan_credentials(&self, after: Option<Uuid>, limit: u32)
        -> Result<Vec<CredentialRow>>;
    /// Number of connections that hold credentials.
    async fn count_credentials(&self) -> Result<u64>;
    /// Replaces a connection's credentials only if they still equal
    /// `expected` (compare-and-swap, one statement); returns whether it did.
    async fn swap_credentials(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        expected: &StoredCredentials,
        new: &StoredCredentials,
    ) -> Result<bool>;

    /// [`swap_credentials`](Self::swap_credentials) for many rows at once (one
    /// transaction where the store can); returns how many were replaced.
    /// Rows whose credentials changed meanwhile are left alone.
    async fn swap_credentials_batch(&self, swaps: &[CredentialSwap]) -> Result<u64> {
        let mut done = 0;
        for s in swaps {
            if self
                .swap_credentials(s.workspace_id, s.connection_id, &s.expected, &s.new)
                .await?
            {
                done += 1;
            }
        }
        Ok(done)
    }
}

/// One compare-and-swap of [`CredentialStore::swap_credentials_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialSwap {
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// The connection.
    pub connection_id: Uuid,
    /// The value the row must still hold.
    pub expected: StoredCredentials,
    /// Its replacement.
    pub new: StoredCredentials,
}

/// Records of sync runs, and the rule that a connection has at most one sync
/// queued or running at a time.
///
/// The rule is the database's (a partial unique index on `(workspace_id,
/// connection_id)` over queued and running runs), so it holds across
/// processes and replicas; see `docs/store-contract.md`.
#[async_trait]
pub trait SyncRunStore: Send + Sync {
    /// Stores a new run of `run.connection_id`, in status `queued` or
    /// `running` (`run.workspace_id` must be `workspace`).
    ///
    /// Fails with [`Error::Conflict`] when the connection already has a
    /// queued or running run; the message names that run's id (see
    /// [`active_run_id`]). Fails with [`Error::NotFound`] when the connection
    /// is not one of the workspace's, and with [`Error::InvalidInput`] (field
    /// `status`) for any other status.
    async fn create_sync_run(&self, workspace: WorkspaceId, run: &SyncRun) -> Result<()>;

    /// Marks a queued run as running since `started_at` and returns it.
    ///
    /// [`Error::NotFound`] when the workspace has no such run;
    /// [`Error::Conflict`] when the run is not queued.
    async fn start_sync_run(
        &self,
        workspace: WorkspaceId,
        run_id: Uuid,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<SyncRun>;

    /// Ends a queued or running run with `status` (`succeeded`, `failed` or
    /// `cancelled`), its per-table counts and error, and returns it.
    ///
    /// In the same transaction, the connection records the outcome: a
    /// succeeded run sets `last_sync_at = finished_at` and clears
    /// `last_error`; a failed run sets `last_error` (to `error`) and leaves
    /// `last_sync_at` alone; a cancelled run changes neither.
    ///
    /// [`Error::NotFound`] when the workspace has no such run;
    /// [`Error::Conflict`] when it is already finished;
    /// [`Error::InvalidInput`] (field `status`) for `queued` or `running`.
    async fn finish_sync_run(
        &self,
        workspace: WorkspaceId,
        run_id: Uuid,
        status: RunStatus,
        counts: &BTreeMap<String, StreamCounts>,
        error: Option<String>,
        finished_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<SyncRun>;

    /// One run of the workspace.
    async fn get_sync_run(&self, workspace: WorkspaceId, run_id: Uuid) -> Result<SyncRun>;

    /// A connection's runs, newest first: ordered by `(created_at, id)` in
    /// `page.sort.direction` (descending by default). Only the `updated_at`
    /// sort key is accepted (it stands for the run's creation time; other
    /// keys: [`Error::InvalidInput`] on `sort`); cursors are
    /// [`Cursor::after_sync_run`](crate::query::Cursor::after_sync_run).
    /// [`Error::NotFound`] when the connection is not the workspace's.
    async fn list_sync_runs(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<SyncRun>>;

    /// The connection's queued or running run, if any.
    /// [`Error::NotFound`] when the connection is not the workspace's.
    async fn active_sync_run(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
    ) -> Result<Option<SyncRun>>;
}

/// What the message of an active-run [`Error::Conflict`] starts with.
const ACTIVE_RUN_CONFLICT: &str = "a sync is already queued or running for this connection: run ";

/// The [`Error::Conflict`] of [`SyncRunStore::create_sync_run`] when the
/// connection already has run `active` queued or running. Every store builds
/// it here, so [`active_run_id`] can read the id back.
pub fn active_run_conflict(active: Uuid) -> Error {
    Error::conflict(format!("{ACTIVE_RUN_CONFLICT}{active}"))
}

/// The id of the queued or running run an error of
/// [`SyncRunStore::create_sync_run`] (or `Pandora::sync`) names, if it is
/// that conflict (e.g. for a `409` that returns the run's id).
pub fn active_run_id(error: &Error) -> Option<Uuid> {
    match error {
        Error::Conflict { message } => message
            .strip_prefix(ACTIVE_RUN_CONFLICT)
            .and_then(|id| Uuid::parse_str(id).ok()),
        _ => None,
    }
}

/// Checks the arguments of [`SyncRunStore::create_sync_run`] that need no
/// database (shared by the stores).
pub fn check_new_sync_run(workspace: WorkspaceId, run: &SyncRun) -> Result<()> {
    if run.workspace_id != workspace {
        return Err(Error::invalid(
            "workspace_id",
            "the run must belong to the workspace it is created in",
        ));
    }
    if !run.status.is_active() {
        return Err(Error::invalid(
            "status",
            "a new sync run must be queued or running",
        ));
    }
    Ok(())
}

/// Checks the status given to [`SyncRunStore::finish_sync_run`].
pub fn check_finish_status(status: RunStatus) -> Result<()> {
    if !status.is_finished() {
        return Err(Error::invalid(
            "status",
            "a run finishes as succeeded, failed or cancelled",
        ));
    }
    Ok(())
}

/// The job queue: background work (syncs, later skills) claimed by workers
/// with a lease, retried with backoff, never run twice at once.
///
/// Claims are atomic across processes and replicas (on PostgreSQL
/// `FOR UPDATE SKIP LOCKED`; on SQLite the single writer). A worker holds a
/// job while its lease lasts and renews it while it works; a job whose lease
/// ran out (its worker died) is claimed again by the next worker. Every call
/// that changes a claimed job names the worker, and changes nothing when that
/// worker no longer holds it. See `docs/store-contract.md`.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates the queued sync `run` (see [`SyncRunStore::create_sync_run`])
    /// and the job that executes it (same id, kind `sync`, status `queued`,
    /// 0 attempts, created when the run was), in one transaction.
    ///
    /// Returns `false` and creates nothing when `job.dedupe_key` is already
    /// held by any job of the workspace, finished ones included (the
    /// scheduler's "this slot is enqueued"; checked before the active run,
    /// so a taken slot is `false`, not a conflict). Fails with
    /// the [`active_run_conflict`] when the connection already has a queued or
    /// running run, and with [`Error::InvalidInput`] for a run that is not
    /// `queued` or a `max_attempts` of 0.
    async fn enqueue_sync(&self, run: &SyncRun, job: &NewJob) -> Result<bool>;

    /// Claims the next due job for `worker`, oldest `run_after` first: a
    /// `queued` job with `run_after <= now`, or a `running` job whose
    /// `lease_until < now`. The job becomes `running`, held by `worker` until
    /// `now + lease`, with one more attempt; a sync job's run becomes
    /// `running` (started now) if it was queued, in the same transaction.
    ///
    /// A `running` job whose lease ran out after its last allowed attempt is
    /// not claimed but failed (job and run), with an error saying its worker
    /// was lost.
    async fn claim_job(
        &self,
        worker: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease: std::time::Duration,
    ) -> Result<Option<Job>>;

    /// Extends the lease of a job `worker` holds to `lease_until`. `false`
    /// when `worker` no longer holds a running job of that id (it was
    /// cancelled, finished, or claimed again after the lease ran out): the
    /// worker must stop working on it.
    async fn renew_job_lease(
        &self,
        job_id: Uuid,
        worker: &str,
        lease_until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;

    /// Finishes a sync job `worker` holds, and its run, in one transaction:
    /// `status` (`succeeded`, `failed` or `cancelled`), the run's counts and
    /// error, the connection's `last_sync_at` / `last_error` exactly as
    /// [`SyncRunStore::finish_sync_run`] does. `None` (and nothing changed)
    /// when `worker` no longer holds the job. [`Error::InvalidInput`] for a
    /// `status` that is not final or a job that is not a sync;
    /// [`Error::Conflict`] (nothing changed) when its run was finished
    /// through [`SyncRunStore::finish_sync_run`] meanwhile.
    async fn finish_sync_job(
        &self,
        job_id: Uuid,
        worker: &str,
        status: RunStatus,
        counts: &BTreeMap<String, StreamCounts>,
        error: Option<String>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<SyncRun>>;

    /// Puts a job `worker` holds back in the queue after a failed attempt:
    /// `queued`, claimable from `retry_at`, `last_error = error`, no lease. A
    /// sync job's run goes back to `queued` with the error and the counts so
    /// far (its slot stays taken). `false` (and nothing changed) when
    /// `worker` no longer holds the job; [`Error::Conflict`] (nothing
    /// changed) when its run was finished through
    /// [`SyncRunStore::finish_sync_run`] meanwhile.
    async fn retry_job(
        &self,
        job_id: Uuid,
        worker: &str,
        error: &str,
        counts: &BTreeMap<String, StreamCounts>,
        retry_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;

    /// Cancels the connection's queued and running jobs and finishes their
    /// runs as `cancelled` with `reason` as their error; returns how many.
    /// A worker running one notices at its next lease renewal and stops.
    /// [`Error::NotFound`] when the connection is not the workspace's.
    async fn cancel_connection_jobs(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        reason: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64>;

    /// One job of the workspace.
    async fn get_job(&self, workspace: WorkspaceId, job_id: Uuid) -> Result<Job>;

    /// Whether a job of the workspace (finished ones included) holds
    /// `dedupe_key`: the scheduler's "this slot is enqueued".
    async fn job_key_taken(&self, workspace: WorkspaceId, dedupe_key: &str) -> Result<bool>;

    /// Creates the queued skill `run` (see
    /// [`SkillStore::create_skill_run`](crate::skill::SkillStore::create_skill_run))
    /// and the job that executes it (same id, kind `skill`, no connection,
    /// status `queued`, 0 attempts, created at `run.started_at`), in one
    /// transaction. Returns `false` and creates nothing when
    /// `job.dedupe_key` is already held by a job of the workspace.
    /// [`Error::InvalidInput`] for a run that is not `queued` or a
    /// `max_attempts` of 0; [`Error::NotFound`] for a missing workspace.
    ///
    /// [`JobStore::claim_job`] marks the run `running` (started at the
    /// claim) and, when the job's payload has `"live": true`, takes its
    /// `as_of` at the claim too; [`JobStore::retry_job`] puts it back to
    /// `queued` with the attempt's error; a job failed for a lost worker
    /// fails its run.
    async fn enqueue_skill(&self, run: &crate::model::SkillRun, job: &NewJob) -> Result<bool>;

    /// Finishes a skill job `worker` holds, and its run, in one transaction:
    /// `status` (`succeeded`, `failed` or `cancelled`) with the report and
    /// error, finished at `now`. `None` (and nothing changed) when `worker`
    /// no longer holds the job. [`Error::InvalidInput`] for a `status` that
    /// is not final or a job that is not a skill job.
    async fn finish_skill_job(
        &self,
        job_id: Uuid,
        worker: &str,
        status: RunStatus,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<crate::model::SkillRun>>;

    /// Connections of every workspace whose status is `active` or `error`
    /// (those the scheduler syncs), ordered by id, after `after`: the
    /// scheduler's deployment-wide scan.
    async fn scan_schedulable_connections(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Connection>>;

    /// Hard-deletes every record the workspace holds from `source` (deals
    /// with their history and contact roles, contacts, accounts, users,
    /// stages, conversations, tasks, documents) and returns how many rows.
    /// Used by `disconnect?purge=true`.
    async fn purge_source(&self, workspace: WorkspaceId, source: &str) -> Result<u64>;
}

/// Checks the arguments of [`JobStore::enqueue_skill`] that need no
/// database (shared by the stores).
pub fn check_new_skill_job(run: &crate::model::SkillRun, job: &NewJob) -> Result<()> {
    crate::skill::check_new_skill_run(run.workspace_id, run)?;
    if run.status != RunStatus::Queued {
        return Err(Error::invalid("status", "an enqueued run must be queued"));
    }
    check_new_job(job)
}

/// Checks a [`NewJob`]: at least one attempt, a JSON object payload.
fn check_new_job(job: &NewJob) -> Result<()> {
    if job.max_attempts == 0 {
        return Err(Error::invalid("max_attempts", "must be at least 1"));
    }
    if !job.payload.is_object() {
        return Err(Error::invalid("payload", "must be a JSON object"));
    }
    Ok(())
}

/// Checks the arguments of [`JobStore::enqueue_sync`] that need no database
/// (shared by the stores).
pub fn check_new_sync_job(run: &SyncRun, job: &NewJob) -> Result<()> {
    check_new_sync_run(run.workspace_id, run)?;
    if run.status != RunStatus::Queued {
        return Err(Error::invalid("status", "an enqueued run must be queued"));
    }
    check_new_job(job)
}

/// When a lease of length `lease` taken at `now` ends (shared by the stores'
/// [`JobStore::claim_job`]); [`Error::InvalidInput`] on `lease` when it is
/// too long to add.
pub fn lease_end(
    now: chrono::DateTime<chrono::Utc>,
    lease: std::time::Duration,
) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .ok_or_else(|| Error::invalid("lease", "is too long"))
}

/// The error a job (and its run) is failed with when its lease ran out after
/// its last allowed attempt.
pub fn lost_worker_error(attempts: u32) -> String {
    format!("the worker running this job stopped responding (lease expired) after {attempts} attempt(s)")
}

/// A pending OAuth authorization: the server side of a signed `state`,
/// from `GET /api/auth/{connector}/authorize` until its callback consumes it.
/// `Debug` hides the PKCE verifier.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAuthorization {
    /// The workspace the connection will belong to.
    pub workspace_id: WorkspaceId,
    /// Random key, carried (signed) in the state.
    pub nonce: Uuid,
    /// Connector id.
    pub connector: String,
    /// The PKCE verifier of the flow, when it uses PKCE (never in the URL).
    pub code_verifier: Option<crate::auth::SecretToken>,
    /// When the flow started.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the state stops being accepted.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The store's part in OAuth: pending authorizations (single-use, expiring
/// `state` nonces with their PKCE verifier), the per-connection lease that
/// makes a token refresh happen once across every process sharing the
/// database, and marking a connection whose refresh token was refused.
///
/// Every time comes from the caller. See `docs/store-contract.md`.
#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// Stores a pending authorization. [`Error::NotFound`] for a missing
    /// workspace; [`Error::Conflict`] when the nonce is taken.
    async fn create_authorization(&self, pending: &PendingAuthorization) -> Result<()>;

    /// Consumes the workspace's pending authorization `nonce` for
    /// `connector` if it has not expired (`expires_at > now`): it is deleted
    /// and returned, so of any number of concurrent calls exactly one gets
    /// it. `None` when there is no such authorization — never created,
    /// already consumed, another workspace's or connector's — or it has
    /// expired; nothing changes then.
    async fn consume_authorization(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        nonce: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<PendingAuthorization>>;

    /// Deletes the pending authorizations of every workspace that expired
    /// before `before`; returns how many.
    async fn purge_authorizations(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64>;

    /// Takes the token-refresh lease of a connection for `holder` until
    /// `until`, if no one holds it (`lease_until <= now` counts as free);
    /// returns whether it did. One statement: of concurrent takers exactly
    /// one succeeds. [`Error::NotFound`] when the connection is not the
    /// workspace's.
    async fn take_refresh_lease(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        holder: &str,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;

    /// Releases the lease if `holder` still holds it; returns whether it did.
    async fn release_refresh_lease(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        holder: &str,
    ) -> Result<bool>;

    /// Marks the connection `needs_reauth` with `error` as its `last_error`,
    /// only if its credentials still equal `expected` (compare-and-swap: a
    /// connection authorized again meanwhile is left alone) and it is not
    /// disconnected; returns whether it did.
    async fn mark_needs_reauth(
        &self,
        workspace: WorkspaceId,
        connection_id: Uuid,
        expected: &StoredCredentials,
        error: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;
}

/// Webhook endpoints, the alerts skill runs raised, and deliveries (see
/// `docs/webhooks.md` and `docs/store-contract.md`).
///
/// A delivery is a `jobs` row of kind `webhook` (no connection) plus a
/// `webhook_deliveries` row with the same id; its status, attempts and last
/// error are read from the job, so a worker that dies leaves it true (a
/// claim fails a job whose lease ran out after its last attempt).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new endpoint with its sealed secret. [`Error::NotFound`] for
    /// a missing workspace; [`Error::Conflict`] for an id already taken.
    async fn create_webhook(
        &self,
        webhook: &crate::model::Webhook,
        secret: &StoredCredentials,
    ) -> Result<()>;

    /// The workspace's endpoints, oldest first (ties by id).
    async fn list_webhooks(&self, workspace: WorkspaceId) -> Result<Vec<crate::model::Webhook>>;

    /// One endpoint of the workspace ([`Error::NotFound`] otherwise).
    async fn get_webhook(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
    ) -> Result<crate::model::Webhook>;

    /// Deletes an endpoint and its deliveries; its queued or running
    /// delivery jobs are cancelled at `now` in the same transaction.
    /// [`Error::NotFound`] when the workspace has no such endpoint.
    async fn delete_webhook(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()>;

    /// Records a live skill run's alerts, in one transaction: alerts of
    /// `set.events` not stored yet are stored as raised (at most once per
    /// `(workspace, event, deal)`, also under concurrent calls); when
    /// `set.complete`, stored alerts of those events missing from the set
    /// are deleted; and for the alerts this call raised, one delivery (job
    /// and delivery row, see [`crate::model::plan_deliveries`]) per endpoint of
    /// the workspace that wants any of them. [`Error::NotFound`] for a
    /// missing workspace.
    async fn record_alerts(
        &self,
        workspace: WorkspaceId,
        set: &crate::model::AlertSet,
    ) -> Result<crate::model::AlertOutcome>;

    /// The workspace's raised alerts, by event then deal id.
    async fn list_alerts(&self, workspace: WorkspaceId) -> Result<Vec<crate::model::RaisedAlert>>;

    /// An endpoint's deliveries, newest first: ordered by `(created_at, id)`
    /// in `page.sort.direction`, keyset-paginated with
    /// [`Cursor::after_updated`](crate::query::Cursor::after_updated) of
    /// `created_at` (only the `updated_at` sort key). [`Error::NotFound`]
    /// when the endpoint is not the workspace's.
    async fn list_deliveries(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<crate::model::WebhookDelivery>>;

    /// One delivery of the workspace.
    async fn get_delivery(
        &self,
        workspace: WorkspaceId,
        delivery_id: Uuid,
    ) -> Result<crate::model::WebhookDelivery>;

    /// What sending a delivery needs: its endpoint, sealed secret and body.
    async fn delivery_request(
        &self,
        workspace: WorkspaceId,
        delivery_id: Uuid,
    ) -> Result<crate::model::DeliveryRequest>;

    /// Finishes a delivery job `worker` holds (`succeeded`, `failed` or
    /// `cancelled`), recording the answer's status and the error, in one
    /// transaction, fenced like [`JobStore::finish_sync_job`]: `None` (and
    /// nothing changed) when `worker` no longer holds it.
    /// [`Error::InvalidInput`] for a status that is not final or a job that
    /// is not a webhook job.
    async fn finish_delivery(
        &self,
        job_id: Uuid,
        worker: &str,
        status: RunStatus,
        response_status: Option<u16>,
        error: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<crate::model::WebhookDelivery>>;

    /// Queues a delivery job `worker` holds again from `retry_at` (like
    /// [`JobStore::retry_job`]) and records the failed attempt's answer
    /// status, in one transaction; `false` when `worker` no longer holds it.
    async fn retry_delivery(
        &self,
        job_id: Uuid,
        worker: &str,
        response_status: Option<u16>,
        error: &str,
        retry_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;
}

/// Liveness of the backing database.
#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// The store's name, e.g. `"postgres"`.
    fn backend(&self) -> &'static str;
}

/// Everything Pandora persists. Implemented automatically for any type that
/// implements the focused traits.
pub trait Store:
    WorkspaceStore
    + ConnectionStore
    + CredentialStore
    + RecordStore
    + SyncRunStore
    + JobStore
    + OAuthStore
    + crate::skill::SkillStore
    + WebhookStore
    + StoreHealth
{
}

impl<T> Store for T where
    T: WorkspaceStore
        + ConnectionStore
        + CredentialStore
        + RecordStore
        + SyncRunStore
        + JobStore
        + OAuthStore
        + crate::skill::SkillStore
        + WebhookStore
        + StoreHealth
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_run_conflicts_carry_the_run_id() {
        let id = Uuid::now_v7();
        let err = active_run_conflict(id);
        assert_eq!(err.kind(), crate::ErrorKind::Conflict);
        assert!(err.to_string().contains(&id.to_string()), "{err}");
        assert_eq!(active_run_id(&err), Some(id));
        assert_eq!(active_run_id(&Error::conflict("something else")), None);
        assert_eq!(active_run_id(&Error::not_found("sync run", id)), None);
    }
}
