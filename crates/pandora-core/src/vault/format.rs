//! The sealed form of credentials, format version 1.
//!
//! Stored in `connections.credentials` as text: `pv1.` followed by the
//! unpadded base64url encoding of
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version, `0x01` |
//! | 8 | master key id ([`KeyId`]) |
//! | 12 | nonce of the data-key wrap |
//! | 48 | data key (32 bytes) wrapped with AES-256-GCM under the master key, with its 16-byte tag |
//! | 12 | nonce of the payload |
//! | n + 16 | credentials JSON encrypted with AES-256-GCM under the data key, with its tag |
//!
//! Associated data, binding each layer to its context:
//! - wrap: `"pandora/data-key"` ‖ version ‖ key id ‖ workspace id (16 bytes) ‖ connection id (16 bytes);
//! - payload: `"pandora/credentials"` ‖ version ‖ workspace id ‖ connection id.
//!
//! A fresh random data key and fresh random nonces are drawn for every seal.
//! Rotation re-wraps the data key under a new master key (new key id, new
//! wrap nonce) and leaves the payload bytes as they are.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use super::key::{KeyId, MasterKey};
use super::{Binding, Credentials, VaultError};

/// Text prefix of format version 1.
pub const PREFIX_V1: &str = "pv1.";
/// Format version byte.
pub const VERSION_1: u8 = 1;

const HEADER: usize = 1 + 8;
const WRAP_NONCE: usize = 12;
const WRAPPED_KEY: usize = 32 + 16;
const DATA_NONCE: usize = 12;
const TAG: usize = 16;
const MIN_LEN: usize = HEADER + WRAP_NONCE + WRAPPED_KEY + DATA_NONCE + TAG;

/// The random inputs of one seal (drawn fresh by [`super::LocalVault`]; fixed in test vectors).
pub struct SealRandomness {
    /// The data key.
    pub data_key: Zeroizing<[u8; 32]>,
    /// Nonce of the data-key wrap.
    pub wrap_nonce: [u8; 12],
    /// Nonce of the payload.
    pub data_nonce: [u8; 12],
}

fn wrap_aad(key_id: KeyId, b: Binding) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + 1 + 8 + 32);
    aad.extend_from_slice(b"pandora/data-key");
    aad.push(VERSION_1);
    aad.extend_from_slice(&key_id.0);
    aad.extend_from_slice(b.workspace_id.as_bytes());
    aad.extend_from_slice(b.connection_id.as_bytes());
    aad
}

fn data_aad(b: Binding) -> Vec<u8> {
    let mut aad = Vec::with_capacity(19 + 1 + 32);
    aad.extend_from_slice(b"pandora/credentials");
    aad.push(VERSION_1);
    aad.extend_from_slice(b.workspace_id.as_bytes());
    aad.extend_from_slice(b.connection_id.as_bytes());
    aad
}

/// Seals `credentials` under `master` with the given randomness.
pub fn seal_with(
    master: &MasterKey,
    binding: Binding,
    credentials: &Credentials,
    r: &SealRandomness,
) -> Result<String, VaultError> {
    let data_cipher = Aes256Gcm::new(r.data_key.as_ref().into());
    let ciphertext = data_cipher
        .encrypt(
            Nonce::from_slice(&r.data_nonce),
            Payload {
                msg: credentials.expose_bytes(),
                aad: &data_aad(binding),
            },
        )
        .map_err(|_| VaultError::CannotOpen("encryption failed"))?;
    let wrapped = wrap(master, binding, &r.data_key, &r.wrap_nonce)?;
    let mut out = Vec::with_capacity(MIN_LEN + ciphertext.len());
    out.push(VERSION_1);
    out.extend_from_slice(&master.id().0);
    out.extend_from_slice(&r.wrap_nonce);
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(&r.data_nonce);
    out.extend_from_slice(&ciphertext);
    Ok(format!("{PREFIX_V1}{}", URL_SAFE_NO_PAD.encode(out)))
}

fn wrap(
    master: &MasterKey,
    binding: Binding,
    data_key: &[u8; 32],
    nonce: &[u8; 12],
) -> Result<Vec<u8>, VaultError> {
    master
        .cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: data_key,
                aad: &wrap_aad(master.id(), binding),
            },
        )
        .map_err(|_| VaultError::CannotOpen("key wrap failed"))
}

/// The parts of a sealed blob.
struct Parts {
    key_id: KeyId,
    bytes: Vec<u8>,
}

impl Parts {
    fn wrap_nonce(&self) -> &[u8] {
        &self.bytes[HEADER..HEADER + WRAP_NONCE]
    }
    fn wrapped_key(&self) -> &[u8] {
        &self.bytes[HEADER + WRAP_NONCE..HEADER + WRAP_NONCE + WRAPPED_KEY]
    }
    fn data_nonce(&self) -> &[u8] {
        let start = HEADER + WRAP_NONCE + WRAPPED_KEY;
        &self.bytes[start..start + DATA_NONCE]
    }
    fn ciphertext(&self) -> &[u8] {
        &self.bytes[HEADER + WRAP_NONCE + WRAPPED_KEY + DATA_NONCE..]
    }
}

fn parse(sealed: &str) -> Result<Parts, VaultError> {
    let body = sealed
        .strip_prefix(PREFIX_V1)
        .ok_or(VaultError::CannotOpen("not a sealed credential"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| VaultError::CannotOpen("not valid base64url"))?;
    if bytes.len() < MIN_LEN {
        return Err(VaultError::CannotOpen("truncated"));
    }
    if bytes[0] != VERSION_1 {
        return Err(VaultError::UnknownVersion(bytes[0]));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[1..HEADER]);
    Ok(Parts {
        key_id: KeyId(id),
        bytes,
    })
}

/// Whether `stored` has the sealed form's prefix.
pub fn looks_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX_V1)
}

/// The master key id a sealed blob names, if it parses.
pub fn key_id_of(stored: &str) -> Option<KeyId> {
    parse(stored).ok().map(|p| p.key_id)
}

fn unwrap_key(
    master: &MasterKey,
    binding: Binding,
    parts: &Parts,
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let key = Zeroizing::new(
        master
            .cipher
            .decrypt(
                Nonce::from_slice(parts.wrap_nonce()),
                Payload {
                    msg: parts.wrapped_key(),
                    aad: &wrap_aad(parts.key_id, binding),
                },
            )
            .map_err(|_| {
                VaultError::CannotOpen("tampered, or bound to another workspace or connection")
            })?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if key.len() != 32 {
        return Err(VaultError::CannotOpen("data key has the wrong length"));
    }
    out.copy_from_slice(&key);
    Ok(out)
}

/// Opens a sealed blob with the ring's key of the id it names.
pub fn open(
    ring: &dyn Fn(KeyId) -> Option<MasterKey>,
    binding: Binding,
    sealed: &str,
) -> Result<Credentials, VaultError> {
    let parts = parse(sealed)?;
    let master = ring(parts.key_id).ok_or(VaultError::UnknownKey(parts.key_id))?;
    let data_key = unwrap_key(&master, binding, &parts)?;
    let plaintext = Aes256Gcm::new(data_key.as_ref().into())
        .decrypt(
            Nonce::from_slice(parts.data_nonce()),
            Payload {
                msg: parts.ciphertext(),
                aad: &data_aad(binding),
            },
        )
        .map_err(|_| {
            VaultError::CannotOpen("tampered, or bound to another workspace or connection")
        })?;
    Ok(Credentials::from_bytes(plaintext))
}

/// Re-wraps the data key of `sealed` under `new_master`, keeping the payload bytes.
pub fn rewrap(
    ring: &dyn Fn(KeyId) -> Option<MasterKey>,
    new_master: &MasterKey,
    binding: Binding,
    sealed: &str,
    wrap_nonce: &[u8; 12],
) -> Result<String, VaultError> {
    let parts = parse(sealed)?;
    let old = ring(parts.key_id).ok_or(VaultError::UnknownKey(parts.key_id))?;
    let data_key = unwrap_key(&old, binding, &parts)?;
    let wrapped = wrap(new_master, binding, &data_key, wrap_nonce)?;
    let mut out = Vec::with_capacity(parts.bytes.len());
    out.push(VERSION_1);
    out.extend_from_slice(&new_master.id().0);
    out.extend_from_slice(wrap_nonce);
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(parts.data_nonce());
    out.extend_from_slice(parts.ciphertext());
    Ok(format!("{PREFIX_V1}{}", URL_SAFE_NO_PAD.encode(out)))
}
