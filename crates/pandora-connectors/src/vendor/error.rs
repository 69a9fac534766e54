//! The error of a vendor call, by meaning.

/// Why a vendor call failed. Every variant names the vendor and the endpoint
/// (`"GET /crm/v3/owners"`); none carries a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VendorError {
    /// The vendor refused the access token (401), after a refresh when one was possible.
    #[error("{vendor} {endpoint}: the vendor rejected the access token: {message}")]
    Unauthorized {
        /// Vendor id, e.g. `"hubspot"`.
        vendor: &'static str,
        /// Method and path.
        endpoint: String,
        /// The vendor's message.
        message: String,
    },
    /// The vendor answered with an error status that is not retried (4xx),
    /// or a retried one (429, 5xx) until the attempts or the deadline ran out.
    #[error("{vendor} {endpoint}: HTTP {status}: {message}")]
    Status {
        /// Vendor id.
        vendor: &'static str,
        /// Method and path.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The vendor's error code, when its body has one (e.g. `"BAD_REFRESH_TOKEN"`).
        code: Option<String>,
        /// The vendor's message.
        message: String,
    },
    /// The request could not be completed (connection, TLS, timeout), after retries.
    #[error("{vendor} {endpoint}: network error: {reason}")]
    Network {
        /// Vendor id.
        vendor: &'static str,
        /// Method and path.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The vendor answered 2xx with a body that is not what its API documents.
    #[error("{vendor} {endpoint}: malformed response: {reason}")]
    Malformed {
        /// Vendor id.
        vendor: &'static str,
        /// Method and path.
        endpoint: String,
        /// What is wrong with it (never the body itself).
        reason: String,
    },
    /// A limit that waiting a little will not lift (e.g. a daily request limit).
    #[error("{vendor} {endpoint}: {message}")]
    LimitReached {
        /// Vendor id.
        vendor: &'static str,
        /// Method and path.
        endpoint: String,
        /// Which limit and when it resets.
        message: String,
    },
    /// No access token could be had (e.g. the refresh token was revoked).
    #[error("{vendor} {endpoint}: no usable access token: {source}")]
    Token {
        /// Vendor id.
        vendor: &'static str,
        /// Method and path.
        endpoint: String,
        /// The token source's error (its kind is kept when converted).
        source: pandora_core::Error,
    },
    /// The connection's configuration or credentials are unusable.
    #[error("{vendor}: {message}")]
    Config {
        /// Vendor id.
        vendor: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl VendorError {
    /// The HTTP status the vendor answered, when the error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            VendorError::Unauthorized { .. } => Some(401),
            VendorError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The vendor's own message, when it gave one.
    pub fn vendor_message(&self) -> Option<&str> {
        match self {
            VendorError::Unauthorized { message, .. }
            | VendorError::Status { message, .. }
            | VendorError::LimitReached { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl From<VendorError> for pandora_core::Error {
    fn from(e: VendorError) -> Self {
        let e = match e {
            VendorError::Token { source, .. } => return source,
            e => e,
        };
        let message = e.to_string();
        match &e {
            VendorError::Unauthorized { .. } => pandora_core::Error::unauthorized(message),
            VendorError::Status { status, .. } if *status == 429 || *status >= 500 => {
                pandora_core::Error::unavailable(message)
            }
            VendorError::Status { status: 403, .. } => pandora_core::Error::forbidden(message),
            VendorError::Status { .. } | VendorError::LimitReached { .. } => {
                pandora_core::Error::rejected(message)
            }
            VendorError::Network { .. } => pandora_core::Error::unavailable(message),
            VendorError::Malformed { .. } => pandora_core::Error::internal(message),
            VendorError::Config { .. } => pandora_core::Error::invalid("config", message),
            VendorError::Token { .. } => pandora_core::Error::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pandora_core::ErrorKind;

    #[test]
    fn errors_map_to_meanings_and_name_vendor_and_endpoint() {
        let e = VendorError::Malformed {
            vendor: "hubspot",
            endpoint: "GET /crm/v3/objects/deals".into(),
            reason: "expected value at line 1 column 1".into(),
        };
        let core: pandora_core::Error = e.into();
        assert_eq!(core.kind(), ErrorKind::Internal);
        let text = core.to_string();
        assert!(text.contains("hubspot") && text.contains("GET /crm/v3/objects/deals"));
        let e = VendorError::Status {
            vendor: "hubspot",
            endpoint: "GET /x".into(),
            status: 503,
            code: None,
            message: "down".into(),
        };
        assert_eq!(pandora_core::Error::from(e).kind(), ErrorKind::Unavailable);
        let e = VendorError::Status {
            vendor: "hubspot",
            endpoint: "GET /x".into(),
            status: 400,
            code: None,
            message: "bad".into(),
        };
        assert_eq!(pandora_core::Error::from(e).kind(), ErrorKind::Rejected);
    }
}
