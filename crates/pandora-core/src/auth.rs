//! Bearer tokens: workspace API keys and the admin token.
//!
//! Tokens are 256 random bits, base64url-encoded behind a recognisable prefix.
//! Only their SHA-256 is stored: a slow password hash adds nothing for tokens
//! of this entropy, and a fast one keeps every request's lookup cheap.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Prefix of workspace API keys.
pub const API_KEY_PREFIX: &str = "pk_";
/// Prefix of generated admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "pa_";

/// A secret token, shown once; `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// A fresh random token with `prefix`.
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SecretToken(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps a token received from a client or the environment.
    pub fn from_string(token: String) -> Self {
        SecretToken(token)
    }

    /// The token itself: call only to hand it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token, what the store keeps.
    pub fn hash(&self) -> Vec<u8> {
        hash_token(&self.0)
    }

    /// The first characters, to recognise a key in a list.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(10).collect()
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([redacted])")
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// SHA-256 of a token.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who a request acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The operator: may do everything.
    Admin,
    /// A workspace API key: may touch only its workspace.
    Workspace {
        /// The key's workspace.
        workspace_id: Uuid,
        /// The key's id.
        key_id: Uuid,
    },
}

impl Principal {
    /// Whether this principal may act on `workspace`.
    pub fn can_access(&self, workspace: Uuid) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Workspace { workspace_id, .. } => *workspace_id == workspace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_redacted() {
        let a = SecretToken::generate(API_KEY_PREFIX);
        let b = SecretToken::generate(API_KEY_PREFIX);
        assert_ne!(a, b);
        assert!(a.expose().starts_with(API_KEY_PREFIX));
        // 32 bytes base64url without padding = 43 characters.
        assert_eq!(a.expose().len(), API_KEY_PREFIX.len() + 43);
        assert_eq!(format!("{a:?}"), "SecretToken([redacted])");
        assert_eq!(a.to_string(), "[redacted]");
        assert!(!format!("{a:?}{a}").contains(&a.expose()[3..]));
        assert_eq!(a.hash(), hash_token(a.expose()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn principal_scopes_workspaces() {
        let ws = Uuid::now_v7();
        let other = Uuid::now_v7();
        let p = Principal::Workspace {
            workspace_id: ws,
            key_id: Uuid::now_v7(),
        };
        assert!(p.can_access(ws));
        assert!(!p.can_access(other));
        assert!(Principal::Admin.can_access(other));
    }
}
