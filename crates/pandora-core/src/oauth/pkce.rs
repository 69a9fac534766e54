//! PKCE (RFC 7636) with the S256 method.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::auth::SecretToken;

/// A PKCE verifier and its S256 challenge. The verifier stays on the server
/// (in the pending authorization); only the challenge goes into the consent
/// URL. `Debug` hides the verifier.
#[derive(Clone)]
pub struct Pkce {
    verifier: SecretToken,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"[redacted]")
            .field("challenge", &self.challenge)
            .finish()
    }
}

impl Pkce {
    /// The `code_challenge_method` of this pair.
    pub const METHOD: &'static str = "S256";

    /// A fresh pair: the verifier is 32 random bytes, base64url (43
    /// characters of the unreserved set, as RFC 7636 recommends).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_verifier(SecretToken::from_string(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The pair of a known verifier.
    pub fn from_verifier(verifier: SecretToken) -> Self {
        let challenge = Self::challenge_of(verifier.expose());
        Pkce {
            verifier,
            challenge,
        }
    }

    /// The S256 challenge of `verifier`: base64url (no padding) of its SHA-256.
    pub fn challenge_of(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }

    /// The verifier (sent only to the vendor's token endpoint).
    pub fn verifier(&self) -> &SecretToken {
        &self.verifier
    }

    /// The challenge (sent in the consent URL).
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_holds() {
        // RFC 7636, appendix B.
        let pair = Pkce::from_verifier(SecretToken::from_string(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        ));
        assert_eq!(
            pair.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_are_fresh_and_well_formed() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_ne!(a.verifier().expose(), b.verifier().expose());
        let v = a.verifier().expose();
        assert_eq!(v.len(), 43);
        assert!(v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)));
        assert_eq!(a.challenge(), Pkce::challenge_of(v));
        assert!(!format!("{a:?}").contains(v));
    }
}
