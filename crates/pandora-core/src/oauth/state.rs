//! The signed OAuth `state` parameter.
//!
//! A state is `base64url(payload) "." base64url(mac)` (no padding), where the
//! payload is
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version `0x01` |
//! | 1 | flags: bit 0 = a PKCE verifier is kept server-side for this flow |
//! | 16 | workspace id |
//! | 16 | nonce: the key of the pending authorization in the store |
//! | 8 | expiry, seconds since the Unix epoch (big-endian, signed) |
//! | n | connector id (UTF-8) |
//!
//! and the MAC is HMAC-SHA256 under `SESSION_SECRET` of
//! `"pandora/oauth-state/v1\0"` ‖ payload, verified in constant time. The
//! signature makes the state unforgeable and binds it to its workspace,
//! connector and expiry; single use comes from the store, which deletes the
//! pending authorization (and its PKCE verifier, never put in the URL) when
//! the callback consumes it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::Error;

/// Shortest accepted signing secret, in bytes.
pub const MIN_STATE_SECRET_LEN: usize = 32;

/// Format version of the payload.
const VERSION: u8 = 1;
/// Flag bit: a PKCE verifier is kept for this flow.
const FLAG_PKCE: u8 = 0b1;
/// Domain separation of the MAC.
const MAC_CONTEXT: &[u8] = b"pandora/oauth-state/v1\0";
/// Bytes before the connector id.
const FIXED_LEN: usize = 1 + 1 + 16 + 16 + 8;
/// Longest connector id a state carries.
const MAX_CONNECTOR_LEN: usize = 64;
/// Length of an HMAC-SHA256 tag.
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// What a state says: for which connector and workspace the flow was
/// started, the nonce of its pending authorization, and until when it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePayload {
    /// Connector id, e.g. `"hubspot"`.
    pub connector: String,
    /// The workspace the connection will belong to.
    pub workspace_id: Uuid,
    /// Key of the pending authorization in the store.
    pub nonce: Uuid,
    /// When the state stops being accepted (kept to the second).
    pub expires_at: DateTime<Utc>,
    /// Whether a PKCE verifier is kept server-side for this flow.
    pub pkce: bool,
}

/// Why a state was refused. The messages say nothing of the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not of the form this server issues.
    #[error("is malformed (not a state this server issued)")]
    Malformed,
    /// Well-formed, but not signed by this server's secret: tampered or foreign.
    #[error("does not carry a valid signature (altered, or issued by another server)")]
    BadSignature,
}

/// Signs and verifies states with the deployment's secret (`SESSION_SECRET`).
/// `Debug` never shows the secret.
#[derive(Clone)]
pub struct StateCodec {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for StateCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCodec([redacted])")
    }
}

impl StateCodec {
    /// A codec signing with `secret`, which must be at least
    /// [`MIN_STATE_SECRET_LEN`] bytes long.
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_STATE_SECRET_LEN {
            return Err(Error::invalid(
                "session_secret",
                format!("must be at least {MIN_STATE_SECRET_LEN} bytes long"),
            ));
        }
        Ok(StateCodec {
            key: Zeroizing::new(secret.to_vec()),
        })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(MAC_CONTEXT);
        mac
    }

    /// The state for `payload`. Panics never; a connector id longer than 64
    /// bytes is an [`Error::InvalidInput`].
    pub fn sign(&self, payload: &StatePayload) -> Result<String, Error> {
        let connector = payload.connector.as_bytes();
        if connector.is_empty() || connector.len() > MAX_CONNECTOR_LEN {
            return Err(Error::invalid(
                "connector",
                format!("must be 1 to {MAX_CONNECTOR_LEN} bytes long"),
            ));
        }
        let mut bytes = Vec::with_capacity(FIXED_LEN + connector.len());
        bytes.push(VERSION);
        bytes.push(if payload.pkce { FLAG_PKCE } else { 0 });
        bytes.extend_from_slice(payload.workspace_id.as_bytes());
        bytes.extend_from_slice(payload.nonce.as_bytes());
        bytes.extend_from_slice(&payload.expires_at.timestamp().to_be_bytes());
        bytes.extend_from_slice(connector);
        let mut mac = self.mac();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&bytes),
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }

    /// The payload of a state this codec signed. Checks the signature (in
    /// constant time) before reading anything; does not check the expiry.
    pub fn verify(&self, state: &str) -> Result<StatePayload, StateError> {
        let (payload, tag) = state.split_once('.').ok_or(StateError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| StateError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Malformed)?;
        if tag.len() != MAC_LEN
            || bytes.len() <= FIXED_LEN
            || bytes.len() > FIXED_LEN + MAX_CONNECTOR_LEN
        {
            return Err(StateError::Malformed);
        }
        let mut mac = self.mac();
        mac.update(&bytes);
        mac.verify_slice(&tag)
            .map_err(|_| StateError::BadSignature)?;
        if bytes[0] != VERSION || bytes[1] & !FLAG_PKCE != 0 {
            return Err(StateError::Malformed);
        }
        let uuid_at = |at: usize| {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(&bytes[at..at + 16]);
            Uuid::from_bytes(raw)
        };
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&bytes[34..42]);
        let expires_at =
            DateTime::from_timestamp(i64::from_be_bytes(secs), 0).ok_or(StateError::Malformed)?;
        let connector = std::str::from_utf8(&bytes[FIXED_LEN..])
            .map_err(|_| StateError::Malformed)?
            .to_string();
        Ok(StatePayload {
            connector,
            workspace_id: uuid_at(2),
            nonce: uuid_at(18),
            expires_at,
            pkce: bytes[1] & FLAG_PKCE != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> StatePayload {
        StatePayload {
            connector: "hubspot".into(),
            workspace_id: Uuid::from_u128(0x0190_a5b4_7a0e_7cc1_9b1f_3a6f_1c2d_4e5f),
            nonce: Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888),
            expires_at: DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
            pkce: true,
        }
    }

    fn codec() -> StateCodec {
        StateCodec::new(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_signed_state_verifies_to_its_payload() {
        let state = codec().sign(&payload()).unwrap();
        assert_eq!(codec().verify(&state).unwrap(), payload());
        let plain = StatePayload {
            pkce: false,
            ..payload()
        };
        let state = codec().sign(&plain).unwrap();
        assert_eq!(codec().verify(&state).unwrap(), plain);
        // URL-safe as is.
        assert!(state
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let state = codec().sign(&payload()).unwrap();
        let (body, tag) = state.split_once('.').unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&altered));
            assert_eq!(
                codec().verify(&forged),
                Err(StateError::BadSignature),
                "byte {i}"
            );
        }
        let mut tag_bytes = URL_SAFE_NO_PAD.decode(tag).unwrap();
        tag_bytes[31] ^= 0x80;
        let forged = format!("{body}.{}", URL_SAFE_NO_PAD.encode(&tag_bytes));
        assert_eq!(codec().verify(&forged), Err(StateError::BadSignature));
    }

    #[test]
    fn another_secret_does_not_verify() {
        let state = codec().sign(&payload()).unwrap();
        let other = StateCodec::new(&[8u8; 32]).unwrap();
        assert_eq!(other.verify(&state), Err(StateError::BadSignature));
    }

    #[test]
    fn malformed_states_are_refused() {
        let state = codec().sign(&payload()).unwrap();
        let (body, _) = state.split_once('.').unwrap();
        for bad in [
            "",
            ".",
            "abc",
            "abc.def",
            body,
            &format!("{body}."),
            &format!("{body}.!!!"),
            &state[..state.len() - 2],
        ] {
            assert!(codec().verify(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_secrets_and_odd_connectors_are_refused() {
        assert!(StateCodec::new(&[1u8; 31]).is_err());
        for connector in [String::new(), "x".repeat(65)] {
            let p = StatePayload {
                connector,
                ..payload()
            };
            assert!(codec().sign(&p).is_err());
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = StateCodec::new(b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{c:?}"), "StateCodec([redacted])");
    }
}
