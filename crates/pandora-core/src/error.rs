//! The one error type of Pandora's library API.
//!
//! Variants are *meanings* (not found, conflict, invalid input, …), not causes:
//! each store, connector and adapter converts its private errors into them so
//! the HTTP layer can map every failure to a status code without knowing where
//! it came from. Messages never contain secrets.

use std::fmt;

/// Result alias used throughout Pandora.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Pandora, by meaning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The entity does not exist, or is not visible to the caller's workspace.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Kind of entity, e.g. `"workspace"` or `"deal"`.
        entity: &'static str,
        /// The identifier that was looked up.
        id: String,
    },
    /// The request conflicts with the current state (e.g. a duplicate name).
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicted.
        message: String,
    },
    /// A value supplied by the caller is invalid.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The offending field (request field, query parameter or record field).
        field: String,
        /// What is wrong with it and what it should look like.
        message: String,
    },
    /// No valid credentials were presented.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Why authentication failed (never echoes the token).
        message: String,
    },
    /// The caller is authenticated but may not do this.
    #[error("forbidden: {message}")]
    Forbidden {
        /// Why the action is not allowed.
        message: String,
    },
    /// A third party asked on the caller's behalf (e.g. the vendor checking
    /// credentials on connect) refused what the caller supplied; retrying
    /// the same request will not help. The message carries the party's
    /// reason (never a secret).
    #[error("rejected: {message}")]
    Rejected {
        /// Who refused what, and why, e.g. `"hubspot rejected the credentials: invalid API key"`.
        message: String,
    },
    /// A dependency (database, vendor) is unreachable or overloaded; retrying may help.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
    },
    /// A bug or an unexpected failure; details are in the logs.
    #[error("internal error: {message}")]
    Internal {
        /// Short description, safe to log.
        message: String,
    },
}

/// The kind of an [`Error`], without its payload: what the HTTP layer maps to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::Rejected`].
    Rejected,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Internal`].
    Internal,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::Rejected { .. } => ErrorKind::Rejected,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// A [`Error::NotFound`] for `entity` with the given id.
    pub fn not_found(entity: &'static str, id: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// An [`Error::InvalidInput`] naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }

    /// An [`Error::Rejected`].
    pub fn rejected(message: impl Into<String>) -> Self {
        Error::Rejected {
            message: message.into(),
        }
    }

    /// An [`Error::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable {
            message: message.into(),
        }
    }

    /// An [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// An [`Error::Unauthorized`].
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Error::Unauthorized {
            message: message.into(),
        }
    }

    /// An [`Error::Forbidden`].
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden {
            message: message.into(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("JSON: {e}"))
    }
}
