use async_trait::async_trait;
use rand::RngCore;
use zeroize::Zeroizing;

use super::format::{self, SealRandomness};
use super::key::{KeyError, KeyId, MasterKey};
use super::{
    Binding, CredentialState, CredentialVault, Credentials, VaultError, KEY_VAR, PREVIOUS_KEYS_VAR,
};
use crate::model::StoredCredentials;

/// A configuration problem with the vault's keys: one line naming the variable,
/// what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} {problem}; generate a key with `pandora keygen`")]
pub struct KeyConfigError {
    /// The offending variable.
    pub var: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// The local vault: AES-256-GCM envelope encryption under a key ring of one
/// current master key (seals and opens) and any number of previous ones (open only).
#[derive(Debug, Clone, Default)]
pub struct LocalVault {
    current: Option<MasterKey>,
    previous: Vec<MasterKey>,
}

impl LocalVault {
    /// A vault sealing under `current`.
    pub fn new(current: MasterKey) -> Self {
        LocalVault {
            current: Some(current),
            previous: Vec::new(),
        }
    }

    /// A vault without a key: it opens legacy plaintext only and refuses to seal.
    pub fn without_key() -> Self {
        LocalVault::default()
    }

    /// Adds keys that may open older blobs.
    pub fn with_previous(mut self, keys: impl IntoIterator<Item = MasterKey>) -> Self {
        self.previous.extend(keys);
        self
    }

    /// Builds the ring from the values of [`KEY_VAR`] and [`PREVIOUS_KEYS_VAR`].
    pub fn from_values(
        current: Option<&str>,
        previous: Option<&str>,
    ) -> Result<Self, KeyConfigError> {
        let bad = |var, e: KeyError| KeyConfigError {
            var,
            problem: e.to_string(),
        };
        let current = current
            .filter(|s| !s.trim().is_empty())
            .map(|s| MasterKey::from_hex(s).map_err(|e| bad(KEY_VAR, e)))
            .transpose()?;
        let mut ring = LocalVault {
            current,
            previous: Vec::new(),
        };
        for (i, part) in previous
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let key = MasterKey::from_hex(part).map_err(|e| KeyConfigError {
                var: PREVIOUS_KEYS_VAR,
                problem: format!("entry {} {e}", i + 1),
            })?;
            ring.previous.push(key);
        }
        Ok(ring)
    }

    /// Builds the ring from the environment.
    pub fn from_env() -> Result<Self, KeyConfigError> {
        let current = std::env::var(KEY_VAR).ok();
        let previous = std::env::var(PREVIOUS_KEYS_VAR).ok();
        Self::from_values(current.as_deref(), previous.as_deref())
    }

    /// Whether a current key is configured.
    pub fn has_key(&self) -> bool {
        self.current.is_some()
    }

    /// Every key id in the ring, current first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.current
            .iter()
            .chain(&self.previous)
            .map(MasterKey::id)
            .collect()
    }

    fn key(&self, id: KeyId) -> Option<MasterKey> {
        self.current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id() == id)
            .cloned()
    }

    /// Seals synchronously (what [`CredentialVault::seal`] does).
    pub fn seal_now(
        &self,
        binding: Binding,
        credentials: &Credentials,
    ) -> Result<StoredCredentials, VaultError> {
        let master = self.current.as_ref().ok_or(VaultError::NoKey)?;
        let mut r = SealRandomness {
            data_key: Zeroizing::new([0u8; 32]),
            wrap_nonce: [0u8; 12],
            data_nonce: [0u8; 12],
        };
        let mut rng = rand::rngs::OsRng;
        rng.fill_bytes(r.data_key.as_mut());
        rng.fill_bytes(&mut r.wrap_nonce);
        rng.fill_bytes(&mut r.data_nonce);
        format::seal_with(master, binding, credentials, &r).map(StoredCredentials)
    }

    /// Opens synchronously (what [`CredentialVault::open`] does).
    pub fn open_now(
        &self,
        binding: Binding,
        stored: &StoredCredentials,
    ) -> Result<Credentials, VaultError> {
        match CredentialState::of(stored) {
            CredentialState::Plaintext => Ok(Credentials::from_bytes(stored.0.as_bytes().to_vec())),
            _ => format::open(&|id| self.key(id), binding, &stored.0),
        }
    }

    /// Re-wraps synchronously (what [`CredentialVault::rewrap`] does).
    pub fn rewrap_now(
        &self,
        binding: Binding,
        stored: &StoredCredentials,
    ) -> Result<Option<StoredCredentials>, VaultError> {
        let master = self.current.as_ref().ok_or(VaultError::NoKey)?;
        match CredentialState::of(stored) {
            CredentialState::Sealed(id) if id == master.id() => Ok(None),
            CredentialState::Sealed(_) => {
                let mut nonce = [0u8; 12];
                rand::rngs::OsRng.fill_bytes(&mut nonce);
                format::rewrap(&|id| self.key(id), master, binding, &stored.0, &nonce)
                    .map(|s| Some(StoredCredentials(s)))
            }
            CredentialState::Plaintext => Ok(None),
            CredentialState::Unreadable => Err(VaultError::CannotOpen("not a sealed credential")),
        }
    }
}

#[async_trait]
impl CredentialVault for LocalVault {
    async fn seal(
        &self,
        binding: Binding,
        credentials: &Credentials,
    ) -> Result<StoredCredentials, VaultError> {
        self.seal_now(binding, credentials)
    }

    async fn open(
        &self,
        binding: Binding,
        stored: &StoredCredentials,
    ) -> Result<Credentials, VaultError> {
        self.open_now(binding, stored)
    }

    async fn rewrap(
        &self,
        binding: Binding,
        stored: &StoredCredentials,
    ) -> Result<Option<StoredCredentials>, VaultError> {
        self.rewrap_now(binding, stored)
    }

    fn current_key_id(&self) -> Option<KeyId> {
        self.current.as_ref().map(MasterKey::id)
    }
}
