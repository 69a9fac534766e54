//! The one place where database errors become [`pandora_core::Error`]s.
//!
//! Errors are mapped by meaning (see `docs/store-contract.md`): unique
//! violation → `Conflict`; foreign-key violation → `NotFound` (the workspace);
//! an unreachable or overloaded server → `Unavailable`; a value PostgreSQL
//! cannot store → `InvalidInput`; anything else → `Internal`, logged with its
//! detail. Messages never carry bound values, URLs or credentials.

use pandora_core::Error;
use sqlx::error::DatabaseError;
use uuid::Uuid;

/// SQLSTATE codes this crate reacts to.
pub(crate) mod sqlstate {
    /// `unique_violation`.
    pub const UNIQUE_VIOLATION: &str = "23505";
    /// `foreign_key_violation`.
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    /// `serialization_failure`.
    pub const SERIALIZATION_FAILURE: &str = "40001";
    /// `deadlock_detected`.
    pub const DEADLOCK_DETECTED: &str = "40P01";
    /// `lock_not_available`.
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    /// `query_canceled` (statement timeout).
    pub const QUERY_CANCELED: &str = "57014";
    /// `untranslatable_character` (e.g. `\u0000` in JSON).
    pub const UNTRANSLATABLE_CHARACTER: &str = "22P05";
    /// `character_not_in_repertoire` (e.g. a NUL byte in text).
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether retrying the whole transaction may succeed (serialization failure
/// or deadlock).
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(
        sqlstate(e).as_deref(),
        Some(sqlstate::SERIALIZATION_FAILURE | sqlstate::DEADLOCK_DETECTED)
    )
}

/// Whether `e` is a unique violation (callers that can say *which* row
/// conflicts look it up and name it; others map it with [`map_db_error`]).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    sqlstate(e).as_deref() == Some(sqlstate::UNIQUE_VIOLATION)
}

/// Whether `e` is a foreign-key violation (callers that know which parent
/// row is missing name it; others map it with [`map_db_error`]).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    sqlstate(e).as_deref() == Some(sqlstate::FOREIGN_KEY_VIOLATION)
}

/// Maps a database error; a foreign-key violation names `workspace`.
pub(crate) fn map_db_error(e: sqlx::Error, workspace: Option<Uuid>) -> Error {
    match e {
        sqlx::Error::Database(db) => map_database_error(db.as_ref(), workspace),
        sqlx::Error::PoolTimedOut => {
            tracing::warn!("timed out waiting for a PostgreSQL connection from the pool");
            Error::unavailable("the database is overloaded: no connection became free in time")
        }
        sqlx::Error::PoolClosed => Error::unavailable("the database pool is closed"),
        sqlx::Error::Io(io) => {
            tracing::warn!(error = %io, "PostgreSQL connection failed");
            Error::unavailable(format!("lost the connection to the database: {io}"))
        }
        sqlx::Error::Tls(tls) => {
            tracing::warn!(error = %tls, "PostgreSQL TLS failure");
            Error::unavailable("TLS failure while talking to the database")
        }
        sqlx::Error::WorkerCrashed => Error::unavailable("the database connection worker crashed"),
        other => {
            tracing::error!(error = %other, "unexpected PostgreSQL client error");
            Error::internal("unexpected database client error (details in the logs)")
        }
    }
}

fn map_database_error(db: &dyn DatabaseError, workspace: Option<Uuid>) -> Error {
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let constraint = db.constraint().unwrap_or("unknown");
    match code.as_str() {
        sqlstate::UNIQUE_VIOLATION => Error::conflict(format!(
            "a row with the same key already exists ({constraint})"
        )),
        sqlstate::FOREIGN_KEY_VIOLATION => match workspace {
            Some(ws) => Error::not_found("workspace", ws),
            None => Error::not_found("referenced row", constraint),
        },
        sqlstate::UNTRANSLATABLE_CHARACTER | sqlstate::CHARACTER_NOT_IN_REPERTOIRE => {
            Error::invalid(
                "input",
                "contains a NUL character (\\u0000), which PostgreSQL cannot store",
            )
        }
        sqlstate::SERIALIZATION_FAILURE
        | sqlstate::DEADLOCK_DETECTED
        | sqlstate::LOCK_NOT_AVAILABLE
        | sqlstate::QUERY_CANCELED => {
            tracing::warn!(sqlstate = %code, message = db.message(), "PostgreSQL contention");
            Error::unavailable("the database is busy; retry the request")
        }
        // Connection exceptions, insufficient resources, operator intervention
        // (shutdown, too many connections, starting up).
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
            tracing::warn!(sqlstate = %code, message = db.message(), "PostgreSQL unavailable");
            Error::unavailable(format!("the database is unavailable ({code})"))
        }
        // Data exceptions: a value the column type cannot hold.
        c if c.starts_with("22") => {
            tracing::warn!(sqlstate = %code, message = db.message(), "PostgreSQL rejected a value");
            Error::invalid("input", format!("rejected by PostgreSQL: {}", db.message()))
        }
        _ => {
            tracing::error!(
                sqlstate = %code,
                message = db.message(),
                constraint = db.constraint(),
                table = db.table(),
                "unexpected PostgreSQL error"
            );
            Error::internal(format!(
                "unexpected database error {code} (details in the logs)"
            ))
        }
    }
}

/// `.db()` / `.db_in(workspace)` on sqlx results.
pub(crate) trait DbResultExt<T> {
    /// Maps the error with no workspace context.
    fn db(self) -> pandora_core::Result<T>;
    /// Maps the error; a foreign-key violation means `workspace` does not exist.
    fn db_in(self, workspace: Uuid) -> pandora_core::Result<T>;
}

impl<T> DbResultExt<T> for Result<T, sqlx::Error> {
    fn db(self) -> pandora_core::Result<T> {
        self.map_err(|e| map_db_error(e, None))
    }

    fn db_in(self, workspace: Uuid) -> pandora_core::Result<T> {
        self.map_err(|e| map_db_error(e, Some(workspace)))
    }
}

/// A stored value that does not decode (a bug or a hand-edited row).
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    tracing::error!(%detail, "cannot decode stored {what}");
    Error::internal(format!(
        "a stored {what} could not be decoded (details in the logs)"
    ))
}
