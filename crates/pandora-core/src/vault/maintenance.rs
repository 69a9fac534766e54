//! Deployment-wide credential maintenance: encrypt legacy plaintext, rotate the
//! master key, verify that every credential opens.
//!
//! Each works in pages of connections ordered by id and changes one row per
//! statement with a compare-and-swap, so it is safe to run while servers read
//! and write credentials, safe to run twice, and resumable: an interrupted run
//! leaves every row either as it was or finished, and the next run only finds
//! what is left.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{Binding, CredentialState, CredentialVault, KeyId};
use crate::error::Result;
use crate::store::{CredentialRow, CredentialStore, CredentialSwap};

/// How a maintenance run proceeds.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Report what would change without writing.
    pub dry_run: bool,
    /// Connections read per page.
    pub batch_size: u32,
    /// Stop after changing this many rows (to pace a run; tests use it to simulate an interruption).
    pub stop_after: Option<u64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            dry_run: false,
            batch_size: 500,
            stop_after: None,
        }
    }
}

/// A connection that could not be processed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The connection.
    pub connection_id: Uuid,
    /// The workspace.
    pub workspace_id: Uuid,
    /// The key id the blob names, when sealed.
    pub key_id: Option<KeyId>,
    /// Why.
    pub reason: String,
}

/// How the credentials a run read were resting when it read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Sealed blobs, by the master key id they name.
    pub sealed: BTreeMap<KeyId, u64>,
    /// Legacy plaintext JSON.
    pub plaintext: u64,
    /// Neither sealed nor JSON.
    pub unreadable: u64,
}

impl Census {
    fn add(&mut self, row: &CredentialRow) {
        match CredentialState::of(&row.credentials) {
            CredentialState::Sealed(id) => *self.sealed.entry(id).or_default() += 1,
            CredentialState::Plaintext => self.plaintext += 1,
            CredentialState::Unreadable => self.unreadable += 1,
        }
    }

    /// Credentials sealed under `id`.
    pub fn sealed_under(&self, id: KeyId) -> u64 {
        self.sealed.get(&id).copied().unwrap_or(0)
    }

    /// Credentials sealed under another key than `current`.
    pub fn older(&self, current: KeyId) -> u64 {
        self.sealed.values().sum::<u64>() - self.sealed_under(current)
    }

    /// Credentials not sealed under `current` (other keys, plaintext, unreadable).
    pub fn others(&self, current: KeyId) -> u64 {
        self.older(current) + self.plaintext + self.unreadable
    }
}

/// What a maintenance run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Connections holding credentials that were examined.
    pub found: u64,
    /// Rows changed (encrypted, or re-wrapped under the current key); in a
    /// dry run, rows that would change.
    pub changed: u64,
    /// Rows already in the wanted state (sealed; or under the current key).
    pub already: u64,
    /// Rows another writer changed while the run looked at them (left to that writer).
    pub raced: u64,
    /// Rows that could not be processed.
    pub failed: Vec<Failure>,
    /// Whether the run stopped early because of `stop_after`.
    pub interrupted: bool,
    /// How the rows were resting when the run read them.
    pub census: Census,
}

/// Progress of a run: rows examined so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

fn binding(row: &CredentialRow) -> Binding {
    Binding {
        workspace_id: row.workspace_id,
        connection_id: row.connection_id,
    }
}

fn failure(row: &CredentialRow, reason: impl ToString) -> Failure {
    Failure {
        connection_id: row.connection_id,
        workspace_id: row.workspace_id,
        key_id: match CredentialState::of(&row.credentials) {
            CredentialState::Sealed(id) => Some(id),
            _ => None,
        },
        reason: reason.to_string(),
    }
}

/// What to do with one row.
enum Step {
    /// Replace the stored value with this one.
    Replace(crate::model::StoredCredentials),
    /// Nothing to do.
    Already,
    /// Cannot be processed.
    Fail(String),
}

/// The operation a run applies to each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Encrypt,
    Rotate,
    Verify,
}

async fn step(op: Op, vault: &dyn CredentialVault, row: &CredentialRow) -> Step {
    let state = CredentialState::of(&row.credentials);
    match (op, state) {
        (Op::Verify, _) => match vault.open(binding(row), &row.credentials).await {
            Ok(_) => Step::Already,
            Err(e) => Step::Fail(e.to_string()),
        },
        (_, CredentialState::Unreadable) => Step::Fail("neither sealed nor JSON".into()),
        (Op::Encrypt, CredentialState::Sealed(_)) => Step::Already,
        (Op::Encrypt, CredentialState::Plaintext) => {
            let plain = super::Credentials::from_bytes(row.credentials.0.as_bytes().to_vec());
            match vault.seal(binding(row), &plain).await {
                Ok(sealed) => Step::Replace(sealed),
                Err(e) => Step::Fail(e.to_string()),
            }
        }
        (Op::Rotate, CredentialState::Plaintext) => {
            Step::Fail("unencrypted: run `pandora credentials encrypt-existing` first".into())
        }
        (Op::Rotate, CredentialState::Sealed(_)) => {
            match vault.rewrap(binding(row), &row.credentials).await {
                Ok(Some(new)) => Step::Replace(new),
                Ok(None) => Step::Already,
                Err(e) => Step::Fail(e.to_string()),
            }
        }
    }
}

async fn run(
    store: &dyn CredentialStore,
    vault: &dyn CredentialVault,
    op: Op,
    opts: RunOptions,
    progress: Progress<'_>,
) -> Result<Report> {
    if op != Op::Verify && vault.current_key_id().is_none() {
        return Err(super::VaultError::NoKey.into());
    }
    let mut report = Report::default();
    let mut after = None;
    // Rotation writes a page at a time; encryption one row per transaction.
    let batched = op == Op::Rotate;
    let mut pending: Vec<CredentialSwap> = Vec::new();
    'pages: loop {
        let rows = store
            .scan_credentials(after, opts.batch_size.max(1))
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.connection_id);
        for row in &rows {
            if opts
                .stop_after
                .is_some_and(|n| report.changed + pending.len() as u64 >= n)
            {
                report.interrupted = true;
                break 'pages;
            }
            report.found += 1;
            report.census.add(row);
            match step(op, vault, row).await {
                Step::Already => report.already += 1,
                Step::Fail(reason) => report.failed.push(failure(row, reason)),
                Step::Replace(_) if opts.dry_run => report.changed += 1,
                Step::Replace(new) if batched => pending.push(CredentialSwap {
                    workspace_id: row.workspace_id,
                    connection_id: row.connection_id,
                    expected: row.credentials.clone(),
                    new,
                }),
                Step::Replace(new) => {
                    if store
                        .swap_credentials(
                            row.workspace_id,
                            row.connection_id,
                            &row.credentials,
                            &new,
                        )
                        .await?
                    {
                        report.changed += 1;
                    } else {
                        report.raced += 1;
                    }
                }
            }
            progress(report.found);
        }
        flush(store, &mut pending, &mut report).await?;
    }
    flush(store, &mut pending, &mut report).await?;
    Ok(report)
}

async fn flush(
    store: &dyn CredentialStore,
    pending: &mut Vec<CredentialSwap>,
    report: &mut Report,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let done = store.swap_credentials_batch(pending).await?;
    report.changed += done;
    report.raced += pending.len() as u64 - done;
    pending.clear();
    Ok(())
}

/// Seals every plaintext credential in place.
pub async fn encrypt_existing(
    store: &dyn CredentialStore,
    vault: &dyn CredentialVault,
    opts: RunOptions,
    progress: Progress<'_>,
) -> Result<Report> {
    run(store, vault, Op::Encrypt, opts, progress).await
}

/// Re-wraps every sealed credential's data key under the current master key.
pub async fn rotate_key(
    store: &dyn CredentialStore,
    vault: &dyn CredentialVault,
    opts: RunOptions,
    progress: Progress<'_>,
) -> Result<Report> {
    run(store, vault, Op::Rotate, opts, progress).await
}

/// Opens every credential with the current ring; failures list the key id
/// they name. Changes nothing: `changed` stays 0 and `dry_run` is moot;
/// `already` counts credentials that open, `census` where each rests.
pub async fn verify(
    store: &dyn CredentialStore,
    vault: &dyn CredentialVault,
    opts: RunOptions,
    progress: Progress<'_>,
) -> Result<Report> {
    run(store, vault, Op::Verify, opts, progress).await
}
