//! [`Pandora`], the one entry point for embedders and for the HTTP adapter.

mod connectors;
mod jobs;
mod oauth;
mod skills;
mod webhooks;

pub use connectors::{
    Connected, ConnectionHealth, ConnectionSummary, LiveCheck, DEFAULT_CHECK_TIMEOUT,
};
pub use jobs::{Disconnected, JobOutcome, RetryPolicy, DEFAULT_MAX_ATTEMPTS};
pub use oauth::{AuthorizeStart, DEFAULT_STATE_TTL};
pub use skills::{
    SkillRunRequest, SkillSchedulePut, SkillScheduleView, SkillSettingsView, SKILL_MAX_ATTEMPTS,
    SKILL_WAIT,
};
pub use webhooks::{
    verify_webhook_signature, webhook_signature, CreatedWebhook, DELIVERY_MAX_ATTEMPTS,
    DELIVERY_TIMEOUT, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_WEBHOOKS,
    WEBHOOK_SECRET_PREFIX,
};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::auth::{constant_time_eq, hash_token, Principal, SecretToken, API_KEY_PREFIX};
use crate::batch::{BatchOutcome, RecordBatch};
use crate::connector::{CheckContext, Connector, ConnectorRegistry, SyncContext};
use crate::error::{Error, Result};
use crate::model::{
    self, deal_as_of, Account, ApiKey, Checkpoint, Connection, ConnectionStatus, Contact, Deal,
    DealChange, DealSnapshot, NewApiKey, NewConnection, NewWorkspace, User, Workspace, WorkspaceId,
    WorkspacePatch,
};
use crate::model::{RunStatus, StreamCounts, SyncMode, SyncRun};
use crate::query::{DealFilter, Page, PageRequest};
use crate::recompute::{self, ComputeContext, RecomputeOutcome};
use crate::store::Store;
use crate::sync::{SyncOutcome, SyncProgress};
use crate::vault::{Binding, CredentialState, CredentialVault, Credentials, LocalVault};

/// Longest workspace or API key name.
const MAX_NAME: usize = 200;

/// A workspace just created, with its first API key (shown only this once).
#[derive(Debug, Clone)]
pub struct CreatedWorkspace {
    /// The workspace.
    pub workspace: Workspace,
    /// Its first API key's record.
    pub key: ApiKey,
    /// The key itself.
    pub api_key: SecretToken,
}

/// An API key just created (the secret is shown only this once).
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The key's record.
    pub key: ApiKey,
    /// The key itself.
    pub api_key: SecretToken,
}

/// Builds a [`Pandora`].
#[derive(Default)]
pub struct PandoraBuilder {
    store: Option<Arc<dyn Store>>,
    connectors: ConnectorRegistry,
    skills: crate::skill::SkillRegistry,
    vault: Option<Arc<dyn CredentialVault>>,
    admin_token_hash: Option<Vec<u8>>,
    check_timeout: Option<std::time::Duration>,
    oauth: oauth::OAuthBuilder,
}

impl PandoraBuilder {
    /// The store (required).
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The store, already shared.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The credential vault. Without one, Pandora refuses to store
    /// credentials (it never stores them in plaintext) but still reads legacy
    /// plaintext ones.
    pub fn vault(mut self, vault: impl CredentialVault + 'static) -> Self {
        self.vault = Some(Arc::new(vault));
        self
    }

    /// The connectors this deployment offers.
    pub fn connectors(mut self, connectors: ConnectorRegistry) -> Self {
        self.connectors = connectors;
        self
    }

    /// The skills this deployment offers (e.g. `pandora_skills::all()`).
    pub fn skills(mut self, skills: crate::skill::SkillRegistry) -> Self {
        self.skills = skills;
        self
    }

    /// Accept this admin token (e.g. `PANDORA_ADMIN_TOKEN`). Without one, the
    /// hash kept by [`Pandora::ensure_admin_token`] is used.
    pub fn admin_token(mut self, token: &SecretToken) -> Self {
        self.admin_token_hash = Some(token.hash());
        self
    }

    /// How long a connector's credential check may take (on connect and in
    /// a connection's health) before it counts as unanswered; default
    /// [`DEFAULT_CHECK_TIMEOUT`].
    pub fn check_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.check_timeout = Some(timeout);
        self
    }

    /// Builds the facade. Fails without a store, and with
    /// [`Error::InvalidInput`] on `session_secret` when an OAuth client is
    /// configured without a state secret of at least 32 characters.
    pub fn build(self) -> Result<Pandora> {
        let store = self
            .store
            .ok_or_else(|| Error::invalid("store", "Pandora::builder() needs a store"))?;
        Ok(Pandora {
            inner: Arc::new(Inner {
                store,
                connectors: self.connectors,
                skills: self.skills,
                vault: self
                    .vault
                    .unwrap_or_else(|| Arc::new(LocalVault::without_key())),
                admin_token_hash: self.admin_token_hash,
                check_timeout: self.check_timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT),
                oauth: self.oauth.build()?,
            }),
        })
    }
}

struct Inner {
    store: Arc<dyn Store>,
    connectors: ConnectorRegistry,
    skills: crate::skill::SkillRegistry,
    vault: Arc<dyn CredentialVault>,
    admin_token_hash: Option<Vec<u8>>,
    check_timeout: std::time::Duration,
    oauth: oauth::OAuthConfig,
}

/// Pandora: workspaces, their data, and (in later layers) connectors and skills.
/// Cheap to clone; every clone shares the same store.
#[derive(Clone)]
pub struct Pandora {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pandora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pandora")
            .field("store", &self.inner.store.backend())
            .finish_non_exhaustive()
    }
}

/// Longest error message kept on a failed run, in characters.
const MAX_RUN_ERROR: usize = 2000;

/// The message a failed run keeps: the error's display (Pandora's errors
/// never carry secrets), bounded in length.
fn run_error(e: &Error) -> String {
    let message = e.to_string();
    match message.char_indices().nth(MAX_RUN_ERROR) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// Key under which the hash of a generated admin token is kept.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

fn check_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    Ok(name.to_string())
}

/// Checks a connection's config: a JSON object whose Pandora keys (the
/// sync interval) are valid. Shared by `connect` and `connect_checked`.
fn check_connection_config(config: &serde_json::Value) -> Result<()> {
    if !config.is_object() {
        return Err(Error::invalid("config", "must be a JSON object"));
    }
    crate::scheduler::sync_interval(config, crate::scheduler::DEFAULT_SYNC_INTERVAL)?;
    Ok(())
}

fn check_settings(settings: &serde_json::Value) -> Result<()> {
    if !settings.is_object() {
        return Err(Error::invalid("settings", "must be a JSON object"));
    }
    Ok(())
}

impl Pandora {
    /// Starts building a facade.
    pub fn builder() -> PandoraBuilder {
        PandoraBuilder::default()
    }

    /// The store, for layers that need more than the facade offers.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    // ---- authentication -------------------------------------------------

    /// Makes sure an admin token exists when none was configured: on first
    /// start it generates one, stores its hash, and returns the token (to be
    /// shown once). Returns `None` when a token is configured or was generated
    /// before.
    pub async fn ensure_admin_token(&self) -> Result<Option<SecretToken>> {
        if self.inner.admin_token_hash.is_some() {
            return Ok(None);
        }
        let token = SecretToken::generate(crate::auth::ADMIN_TOKEN_PREFIX);
        let hash = hex::encode(token.hash());
        let stored = self
            .inner
            .store
            .init_setting(ADMIN_TOKEN_SETTING, &hash)
            .await?;
        Ok((stored == hash).then_some(token))
    }

    /// Who a bearer token acts as.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let hash = hash_token(token);
        let admin_hash = match &self.inner.admin_token_hash {
            Some(h) => Some(h.clone()),
            None => self
                .inner
                .store
                .get_setting(ADMIN_TOKEN_SETTING)
                .await?
                .and_then(|h| hex::decode(h).ok()),
        };
        if admin_hash.is_some_and(|h| constant_time_eq(&h, &hash)) {
            return Ok(Principal::Admin);
        }
        if token.starts_with(API_KEY_PREFIX) {
            if let Some(key) = self.inner.store.find_api_key(&hash).await? {
                return Ok(Principal::Workspace {
                    workspace_id: key.workspace_id,
                    key_id: key.id,
                });
            }
        }
        Err(Error::unauthorized("invalid bearer token"))
    }

    // ---- workspaces -----------------------------------------------------

    /// Creates a workspace and its first API key.
    pub async fn create_workspace(&self, new: NewWorkspace) -> Result<CreatedWorkspace> {
        let name = check_name("name", &new.name)?;
        let settings = new.settings.unwrap_or_else(|| serde_json::json!({}));
        check_settings(&settings)?;
        let now = model::now();
        let workspace = Workspace {
            id: model::new_id(),
            name,
            settings,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.create_workspace(&workspace).await?;
        let CreatedApiKey { key, api_key } = self
            .create_api_key(
                workspace.id,
                NewApiKey {
                    name: Some("default".into()),
                },
            )
            .await?;
        tracing::info!(workspace_id = %workspace.id, "workspace created");
        Ok(CreatedWorkspace {
            workspace,
            key,
            api_key,
        })
    }

    /// One workspace.
    pub async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace> {
        self.inner.store.get_workspace(id).await
    }

    /// Workspaces, most recently changed first.
    pub async fn list_workspaces(&self, page: &PageRequest) -> Result<Page<Workspace>> {
        page.validate()?;
        self.inner.store.list_workspaces(page).await
    }

    /// Renames a workspace or replaces its settings.
    pub async fn update_workspace(
        &self,
        id: WorkspaceId,
        mut patch: WorkspacePatch,
    ) -> Result<Workspace> {
        if let Some(name) = &patch.name {
            patch.name = Some(check_name("name", name)?);
        }
        if let Some(settings) = &patch.settings {
            check_settings(settings)?;
        }
        self.inner.store.update_workspace(id, &patch).await
    }

    /// Deletes a workspace and all of its data.
    pub async fn delete_workspace(&self, id: WorkspaceId) -> Result<()> {
        self.inner.store.delete_workspace(id).await?;
        tracing::info!(workspace_id = %id, "workspace deleted");
        Ok(())
    }

    // ---- API keys -------------------------------------------------------

    /// Creates an API key for a workspace.
    pub async fn create_api_key(
        &self,
        workspace: WorkspaceId,
        new: NewApiKey,
    ) -> Result<CreatedApiKey> {
        let name = check_name("name", new.name.as_deref().unwrap_or("default"))?;
        self.inner.store.get_workspace(workspace).await?;
        let api_key = SecretToken::generate(API_KEY_PREFIX);
        let key = ApiKey {
            id: model::new_id(),
            workspace_id: workspace,
            name,
            prefix: api_key.display_prefix(),
            hash: api_key.hash(),
            created_at: model::now(),
        };
        self.inner.store.create_api_key(&key).await?;
        Ok(CreatedApiKey { key, api_key })
    }

    /// A workspace's API keys (no secrets).
    pub async fn list_api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKey>> {
        self.inner.store.get_workspace(workspace).await?;
        self.inner.store.list_api_keys(workspace).await
    }

    /// Revokes an API key.
    pub async fn delete_api_key(&self, workspace: WorkspaceId, key_id: Uuid) -> Result<()> {
        self.inner.store.delete_api_key(workspace, key_id).await
    }

    // ---- data -----------------------------------------------------------

    /// Writes a batch of records (and optionally its checkpoint) atomically,
    /// with the [computed fields](crate::computed) of its deals computed now
    /// (see [`recompute::attach_computed`]; the store writes them for the
    /// deals the batch inserts or changes, or adds history to). Unlike a
    /// sync, records no observed history and never refreshes the baseline.
    pub async fn ingest(
        &self,
        workspace: WorkspaceId,
        batch: &RecordBatch,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<BatchOutcome> {
        let mut prepared = batch.prepare()?;
        let store = self.inner.store.as_ref();
        if !prepared.deals.is_empty() || !prepared.deal_changes.is_empty() {
            let stored = recompute::stored_deals(store, workspace, &prepared).await?;
            let mut ctx = ComputeContext::load(store, workspace, model::now()).await?;
            ctx.merge_stages(workspace, &prepared);
            recompute::attach_computed(store, workspace, &mut prepared, &stored, &ctx).await?;
        }
        store.write_batch(workspace, &prepared, checkpoint).await
    }

    /// Refreshes the workspace's won-deal baseline, then recomputes and
    /// stores the computed fields of all its live deals as of now, a page at
    /// a time (bounded memory; see [`recompute::recompute_deals`]).
    /// [`Error::NotFound`] when the workspace does not exist.
    pub async fn recompute_deals(&self, workspace: WorkspaceId) -> Result<RecomputeOutcome> {
        let store = self.inner.store.as_ref();
        store.get_workspace(workspace).await?;
        recompute::recompute_deals(store, workspace, model::now()).await
    }

    /// Deals matching `filter`.
    pub async fn list_deals(
        &self,
        workspace: WorkspaceId,
        filter: &DealFilter,
        page: &PageRequest,
    ) -> Result<Page<Deal>> {
        filter.validate()?;
        page.validate()?;
        self.inner.store.list_deals(workspace, filter, page).await
    }

    /// One deal.
    pub async fn get_deal(&self, workspace: WorkspaceId, id: Uuid) -> Result<Deal> {
        self.inner.store.get_deal(workspace, id).await
    }

    /// A deal's stage changes, oldest first.
    pub async fn stage_history(
        &self,
        workspace: WorkspaceId,
        deal: Uuid,
    ) -> Result<Vec<DealChange>> {
        let mut all = self.inner.store.deal_history(workspace, deal).await?;
        all.retain(|c| c.field == model::DealField::Stage);
        Ok(all)
    }

    /// A deal's full field history, oldest first.
    pub async fn deal_history(
        &self,
        workspace: WorkspaceId,
        deal: Uuid,
    ) -> Result<Vec<DealChange>> {
        self.inner.store.deal_history(workspace, deal).await
    }

    /// A deal as it stood at `at`, rebuilt from its history (`None` if it did not exist yet).
    pub async fn deal_as_of(
        &self,
        workspace: WorkspaceId,
        deal: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<DealSnapshot>> {
        let d = self.inner.store.get_deal(workspace, deal).await?;
        let changes = self.inner.store.deal_history(workspace, deal).await?;
        let stages = self.inner.store.list_stages(workspace).await?;
        Ok(deal_as_of(&d, &changes, &stages, at))
    }

    /// Contacts.
    pub async fn list_contacts(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<Contact>> {
        page.validate()?;
        self.inner.store.list_contacts(workspace, page).await
    }

    /// Accounts.
    pub async fn list_accounts(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<Account>> {
        page.validate()?;
        self.inner.store.list_accounts(workspace, page).await
    }

    /// Users (reps), with manager and team.
    pub async fn list_users(
        &self,
        workspace: WorkspaceId,
        page: &PageRequest,
    ) -> Result<Page<User>> {
        page.validate()?;
        self.inner.store.list_users(workspace, page).await
    }

    // ---- connections and credentials -------------------------------------

    /// The credential vault.
    pub fn vault(&self) -> &Arc<dyn CredentialVault> {
        &self.inner.vault
    }

    /// Stores credentials for the workspace's connection to `connector`
    /// (creating the connection if needed), sealed by the vault before the
    /// store sees them.
    pub async fn connect(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        credentials: Credentials,
        config: serde_json::Value,
    ) -> Result<Connection> {
        if connector.trim().is_empty() {
            return Err(Error::invalid("connector", "must not be empty"));
        }
        check_connection_config(&config)?;
        if self.inner.vault.current_key_id().is_none() {
            return Err(crate::vault::VaultError::NoKey.into());
        }
        self.inner.store.get_workspace(workspace).await?;
        let id = match self.inner.store.get_connection(workspace, connector).await {
            Ok(c) => c.id,
            Err(Error::NotFound { .. }) => {
                self.inner
                    .store
                    .upsert_connection(
                        workspace,
                        &NewConnection {
                            connector: connector.to_string(),
                            status: ConnectionStatus::Disconnected,
                            credentials: None,
                            config: config.clone(),
                        },
                    )
                    .await?
                    .id
            }
            Err(e) => return Err(e),
        };
        let sealed = self
            .inner
            .vault
            .seal(
                Binding {
                    workspace_id: workspace,
                    connection_id: id,
                },
                &credentials,
            )
            .await?;
        let conn = self
            .inner
            .store
            .upsert_connection(
                workspace,
                &NewConnection {
                    connector: connector.to_string(),
                    status: ConnectionStatus::Active,
                    credentials: Some(sealed),
                    config,
                },
            )
            .await?;
        tracing::info!(workspace_id = %workspace, connector, connection_id = %conn.id, "credentials stored");
        Ok(conn)
    }

    /// Opens a connection's credentials (what a connector receives). `None` when it holds none.
    pub async fn open_credentials(&self, connection: &Connection) -> Result<Option<Credentials>> {
        let Some(stored) = &connection.credentials else {
            return Ok(None);
        };
        let binding = Binding {
            workspace_id: connection.workspace_id,
            connection_id: connection.id,
        };
        Ok(Some(self.inner.vault.open(binding, stored).await?))
    }

    /// How a connection's credentials rest: `"encrypted"`, `"unencrypted"`
    /// (legacy plaintext, until `pandora credentials encrypt-existing`),
    /// `"unreadable"` or `"missing"`.
    pub fn credential_state(connection: &Connection) -> &'static str {
        match connection.credentials.as_ref().map(CredentialState::of) {
            None => "missing",
            Some(CredentialState::Sealed(_)) => "encrypted",
            Some(CredentialState::Plaintext) => "unencrypted",
            Some(CredentialState::Unreadable) => "unreadable",
        }
    }

    // ---- connectors and syncs ---------------------------------------------

    /// The connectors this deployment offers.
    pub fn connectors(&self) -> &ConnectorRegistry {
        &self.inner.connectors
    }

    /// Runs one sync of the workspace's connection to `connector` now, in
    /// this task: opens its credentials (the connector receives them opened
    /// and never sees the vault), resumes from its stored cursors when
    /// incremental, and writes each page with its checkpoint.
    ///
    /// Records no run and takes no part in the one-sync-per-connection rule:
    /// use [`Pandora::sync`] for that.
    pub async fn sync_now(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        mode: SyncMode,
        progress: SyncProgress<'_>,
    ) -> Result<SyncOutcome> {
        let imp = self.inner.connectors.get(connector)?;
        let connection = self
            .inner
            .store
            .get_connection(workspace, connector)
            .await?;
        self.run_connector(imp.as_ref(), &connection, mode, progress)
            .await
    }

    /// Runs `imp` on `connection` (see [`Pandora::sync_now`]).
    pub(crate) async fn run_connector(
        &self,
        imp: &dyn Connector,
        connection: &Connection,
        mode: SyncMode,
        progress: SyncProgress<'_>,
    ) -> Result<SyncOutcome> {
        let credentials = self.open_credentials(connection).await?;
        let cursors = self
            .inner
            .store
            .get_checkpoints(connection.workspace_id, connection.id)
            .await?;
        let ctx = SyncContext {
            check: CheckContext {
                workspace_id: connection.workspace_id,
                config: crate::scheduler::connector_config(&connection.config),
                credentials,
                tokens: self.connection_tokens(imp, connection),
            },
            connection_id: connection.id,
            mode,
            cursors,
            started_at: model::now(),
        };
        crate::sync::run_sync(self.inner.store.as_ref(), imp, &ctx, progress).await
    }

    /// [`Pandora::run_connector`], keeping track of what it wrote: on
    /// failure, the error comes with the per-table counts of the pages stored
    /// before it (what a failed run records).
    pub(crate) async fn run_connector_counted(
        &self,
        imp: &dyn Connector,
        connection: &Connection,
        mode: SyncMode,
        progress: SyncProgress<'_>,
    ) -> std::result::Result<SyncOutcome, (Error, BTreeMap<String, StreamCounts>)> {
        let so_far = Mutex::new(SyncOutcome::default());
        let record = |o: &SyncOutcome| {
            if let Ok(mut last) = so_far.lock() {
                last.clone_from(o);
            }
            progress(o);
        };
        let result = self.run_connector(imp, connection, mode, &record).await;
        result.map_err(|e| (e, so_far.into_inner().unwrap_or_default().counts))
    }

    /// Runs one sync of the workspace's connection to `connector` now, in
    /// this task, and records it as a [`SyncRun`].
    ///
    /// The run is created (at most one sync per connection is queued or
    /// running: otherwise [`Error::Conflict`], naming the active run, which
    /// [`active_run_id`](crate::store::active_run_id) reads back), marked
    /// running, synced as [`Pandora::sync_now`] does, and finished. The
    /// first run of a connection (none succeeded yet, so `last_sync_at` is
    /// unset) is always full, whatever `mode` asks.
    ///
    /// Whatever fails once the run exists (the connector, its credentials,
    /// a page write) fails the *run*: the result is `Ok` with a `failed` run
    /// holding the error's message (never a secret) and the counts of the
    /// pages stored before it; `last_sync_at` does not move. A succeeded run
    /// holds the per-table counts and sets `last_sync_at`. `Err` is only for
    /// what prevents or loses the record itself: unknown connector or
    /// connection, an active run, store errors creating or finishing it.
    ///
    /// The run is finished by this call: if its future is dropped mid-sync
    /// (or the process dies), the run stays `running` and holds the
    /// connection's slot until something finishes it (e.g. as `cancelled`).
    pub async fn sync(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        mode: SyncMode,
        progress: SyncProgress<'_>,
    ) -> Result<SyncRun> {
        let imp = self.inner.connectors.get(connector)?;
        let connection = self
            .inner
            .store
            .get_connection(workspace, connector)
            .await?;
        let mode = if connection.last_sync_at.is_none() {
            SyncMode::Full
        } else {
            mode
        };
        let run = SyncRun {
            id: model::new_id(),
            workspace_id: workspace,
            connection_id: connection.id,
            mode,
            status: RunStatus::Queued,
            counts: BTreeMap::new(),
            error: None,
            created_at: model::now(),
            started_at: None,
            finished_at: None,
        };
        let store = &self.inner.store;
        store.create_sync_run(workspace, &run).await?;
        tracing::info!(workspace_id = %workspace, connector, run_id = %run.id, ?mode, "sync run created");

        // From here on the run exists: every failure must finish it.
        let result = match store.start_sync_run(workspace, run.id, model::now()).await {
            Ok(_) => {
                self.run_connector_counted(imp.as_ref(), &connection, mode, progress)
                    .await
            }
            Err(e) => Err((e, BTreeMap::new())),
        };
        let (status, counts, error) = match result {
            Ok(outcome) => (RunStatus::Succeeded, outcome.counts, None),
            Err((e, partial)) => {
                tracing::warn!(workspace_id = %workspace, connector, run_id = %run.id, error = %e, "sync run failed");
                (RunStatus::Failed, partial, Some(run_error(&e)))
            }
        };
        let finished = store
            .finish_sync_run(workspace, run.id, status, &counts, error, model::now())
            .await?;
        tracing::info!(workspace_id = %workspace, connector, run_id = %run.id, status = status.as_str(), "sync run finished");
        Ok(finished)
    }

    /// The history of the workspace's syncs of `connector`, newest first
    /// (see [`SyncRunStore::list_sync_runs`](crate::store::SyncRunStore::list_sync_runs)).
    pub async fn sync_runs(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        page: &PageRequest,
    ) -> Result<Page<SyncRun>> {
        page.validate()?;
        let connection = self
            .inner
            .store
            .get_connection(workspace, connector)
            .await?;
        self.inner
            .store
            .list_sync_runs(workspace, connection.id, page)
            .await
    }

    /// One sync run of the workspace.
    pub async fn sync_run(&self, workspace: WorkspaceId, run_id: Uuid) -> Result<SyncRun> {
        self.inner.store.get_sync_run(workspace, run_id).await
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> Result<()> {
        self.inner.store.ping().await
    }
}
