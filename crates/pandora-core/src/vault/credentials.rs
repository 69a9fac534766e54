use std::fmt;

use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// Plaintext credentials (a JSON document), wiped from memory on drop.
/// `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials(Zeroizing<Vec<u8>>);

impl Credentials {
    /// Credentials from a JSON value.
    pub fn from_json(value: &serde_json::Value) -> Self {
        // Serializing a Value cannot fail.
        Credentials(Zeroizing::new(
            serde_json::to_vec(value).unwrap_or_default(),
        ))
    }

    /// Credentials from raw JSON bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Credentials(Zeroizing::new(bytes))
    }

    /// The JSON bytes. Handle with care: this is the secret.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The credentials as a JSON value. Handle with care: this is the secret.
    pub fn expose_json(&self) -> Result<serde_json::Value, crate::Error> {
        self.parse()
    }

    /// The credentials parsed into `T` (e.g. a connector's token struct).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, crate::Error> {
        serde_json::from_slice(&self.0).map_err(|e| {
            crate::Error::invalid(
                "credentials",
                format!("unexpected shape: {}", e.classify_message()),
            )
        })
    }
}

trait ClassifyMessage {
    fn classify_message(&self) -> &'static str;
}

impl ClassifyMessage for serde_json::Error {
    /// A description of a JSON error that never quotes the input.
    fn classify_message(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "missing or mistyped fields",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
