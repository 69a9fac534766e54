use std::fmt;

use aes_gcm::{Aes256Gcm, KeyInit};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A master key's id: the first 8 bytes of SHA-256 over a label and the key.
/// Identifies the key in sealed blobs and reports without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a configured master key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 64 characters long.
    #[error("must be exactly 64 hexadecimal characters (32 bytes), got {0} characters")]
    WrongLength(usize),
    /// A character that is not a hexadecimal digit.
    #[error("must be hexadecimal (0-9, a-f), found a non-hex character at position {0}")]
    NotHex(usize),
}

/// A 256-bit master key, ready to wrap and unwrap data keys. Wiped on drop;
/// `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    id: KeyId,
    pub(super) cipher: Aes256Gcm,
}

impl MasterKey {
    /// Parses 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        let len = s.chars().count();
        if len != 64 {
            return Err(KeyError::WrongLength(len));
        }
        if let Some(pos) = s.chars().position(|c| !c.is_ascii_hexdigit()) {
            return Err(KeyError::NotHex(pos + 1));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(s, bytes.as_mut()).map_err(|_| KeyError::NotHex(0))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"pandora/key-id/v1");
        h.update(bytes);
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        MasterKey {
            id: KeyId(id),
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    /// A fresh random key as 64 hexadecimal characters (what `pandora keygen` prints).
    pub fn generate_hex() -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Zeroizing::new(hex::encode(bytes.as_ref()))
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_64_hex_characters_only() {
        let hex = MasterKey::generate_hex();
        assert_eq!(hex.len(), 64);
        let k = MasterKey::from_hex(&hex).expect("valid");
        assert_eq!(
            k.id(),
            MasterKey::from_hex(&hex.to_uppercase())
                .expect("upper")
                .id()
        );
        assert_eq!(
            MasterKey::from_hex(&hex[..63]).unwrap_err(),
            KeyError::WrongLength(63)
        );
        assert_eq!(
            MasterKey::from_hex("").unwrap_err(),
            KeyError::WrongLength(0)
        );
        let mut bad = hex.to_string();
        bad.replace_range(10..11, "g");
        assert_eq!(MasterKey::from_hex(&bad).unwrap_err(), KeyError::NotHex(11));
    }

    #[test]
    fn debug_shows_only_the_id() {
        let hex = MasterKey::generate_hex();
        let k = MasterKey::from_hex(&hex).expect("valid");
        let dbg = format!("{k:?}");
        assert!(dbg.contains(&k.id().to_string()));
        assert!(!dbg.contains(&hex[..16]));
        assert_ne!(
            k.id(),
            MasterKey::from_hex(&MasterKey::generate_hex())
                .expect("valid")
                .id()
        );
    }
}
