//! The credential vault: credentials are sealed before any store sees them.
//!
//! [`CredentialVault`] seals and opens credentials bound to a workspace and a
//! connection; [`LocalVault`] is its implementation with AES-256-GCM envelope
//! encryption under a key ring (see [`mod@format`] for the sealed layout). A
//! KMS-backed vault can implement the same trait without touching connectors.

mod credentials;
pub mod format;
mod key;
mod local;
pub mod maintenance;

use async_trait::async_trait;
use uuid::Uuid;

pub use credentials::Credentials;
pub use key::{KeyError, KeyId, MasterKey};
pub use local::{KeyConfigError, LocalVault};

use crate::model::StoredCredentials;

/// Environment variable holding the current master key.
pub const KEY_VAR: &str = "CREDENTIAL_ENCRYPTION_KEY";
/// Environment variable holding older master keys (comma-separated), for reading only.
pub const PREVIOUS_KEYS_VAR: &str = "CREDENTIAL_ENCRYPTION_KEY_PREVIOUS";

/// What a sealed credential is bound to: opening it under another binding fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The owning workspace.
    pub workspace_id: Uuid,
    /// The connection the credentials belong to.
    pub connection_id: Uuid,
}

/// How a stored credential rests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    /// Sealed under the master key with this id.
    Sealed(KeyId),
    /// Plaintext JSON written before encryption existed.
    Plaintext,
    /// Neither a sealed blob nor JSON.
    Unreadable,
}

impl CredentialState {
    /// The state of `stored`, read from its form alone (no key needed).
    pub fn of(stored: &StoredCredentials) -> Self {
        match format::key_id_of(&stored.0) {
            Some(id) => CredentialState::Sealed(id),
            None if format::looks_sealed(&stored.0) => CredentialState::Unreadable,
            None if serde_json::from_str::<serde_json::Value>(&stored.0).is_ok() => {
                CredentialState::Plaintext
            }
            None => CredentialState::Unreadable,
        }
    }
}

/// Why a credential could not be sealed or opened. Never contains key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No master key is configured, so credentials cannot be sealed.
    #[error("{KEY_VAR} is not set: refusing to store credentials unencrypted; generate a key with `pandora keygen`")]
    NoKey,
    /// The blob is sealed under a key the ring does not hold.
    #[error("credentials are sealed under master key {0}, which is not configured (add it to {PREVIOUS_KEYS_VAR})")]
    UnknownKey(KeyId),
    /// The blob does not open: tampered, truncated, or bound to another workspace or connection.
    #[error("credentials do not open: {0}")]
    CannotOpen(&'static str),
    /// The blob uses a format version this build does not know.
    #[error("credentials use unknown format version {0}")]
    UnknownVersion(u8),
}

impl From<VaultError> for crate::Error {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::NoKey => crate::Error::unavailable(e.to_string()),
            _ => crate::Error::internal(e.to_string()),
        }
    }
}

/// Whether `error` is [`VaultError::NoKey`] seen through [`crate::Error`]:
/// a deployment setting to fix, which the HTTP layer names rather than
/// hiding it behind a generic "unavailable".
pub fn is_missing_key(error: &crate::Error) -> bool {
    matches!(error, crate::Error::Unavailable { message } if *message == VaultError::NoKey.to_string())
}

/// Seals and opens credentials bound to a workspace and a connection.
#[async_trait]
pub trait CredentialVault: Send + Sync {
    /// Seals `credentials` for `binding`.
    async fn seal(
        &self,
        binding: Binding,
        credentials: &Credentials,
    ) -> Result<StoredCredentials, VaultError>;

    /// Opens stored credentials; plaintext JSON (written before encryption existed) is read as is.
    async fn open(
        &self,
        binding: Binding,
        stored: &StoredCredentials,
    ) -> Result<Credentials, VaultError>;

    /// Re-wraps the data key of a sealed blob under the current master key,
    /// leaving the payload as it is. `None` when it already is under the
    /// current key (or is not sealed).
    async fn rewrap(
        &self,
        binding: Binding,
        stored: &StoredCredentials,
    ) -> Result<Option<StoredCredentials>, VaultError>;

    /// Id of the key new seals use, if any.
    fn current_key_id(&self) -> Option<KeyId>;
}
#[cfg(test)]
mod tests;
