//! Mapping of SQLite/sqlx errors to [`pandora_core::Error`] by meaning.
//!
//! | database error                         | Pandora error                 |
//! |----------------------------------------|-------------------------------|
//! | unique / primary-key violation         | `Conflict`                    |
//! | foreign-key violation                  | `NotFound("workspace")`       |
//! | busy / locked, pool timed out or closed, I/O | `Unavailable`           |
//! | anything else                          | `Internal` (detail logged)    |
//!
//! Messages never carry bound values, so they hold no secrets.

use pandora_core::model::WorkspaceId;
use pandora_core::Error;
use sqlx::error::ErrorKind as DbErrorKind;

/// SQLite's primary result code `SQLITE_BUSY`.
const SQLITE_BUSY: i32 = 5;
/// SQLite's primary result code `SQLITE_LOCKED`.
const SQLITE_LOCKED: i32 = 6;

/// Maps a database error met outside any workspace (or where a foreign-key
/// violation cannot concern one).
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    map(e, None)
}

/// Maps a database error met while writing rows of `workspace`: a foreign-key
/// violation means the workspace does not exist.
pub(crate) fn db_error_in(workspace: WorkspaceId) -> impl Fn(sqlx::Error) -> Error {
    move |e| map(e, Some(workspace))
}

/// Whether `e` is SQLite saying another connection holds a lock it needs
/// (`SQLITE_BUSY`/`SQLITE_LOCKED` and their extended codes): retrying may succeed.
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        _ => false,
    }
}

/// Whether `e` is a unique or primary-key violation (callers that can say
/// *which* row conflicts look it up and name it; others map it with [`db_error`]).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == DbErrorKind::UniqueViolation)
}

/// Whether `e` is a foreign-key violation (callers that know which parent row
/// is missing name it; others map it with [`db_error_in`]).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == DbErrorKind::ForeignKeyViolation)
}

fn map(e: sqlx::Error, workspace: Option<WorkspaceId>) -> Error {
    if is_busy(&e) {
        tracing::warn!(error = %e, "SQLite database is busy");
        return Error::unavailable("the database is busy; retry later");
    }
    match e {
        sqlx::Error::Database(db) => match db.kind() {
            DbErrorKind::UniqueViolation => {
                tracing::debug!(error = %db, "unique violation");
                Error::conflict("a row with the same key already exists")
            }
            DbErrorKind::ForeignKeyViolation => {
                tracing::debug!(error = %db, "foreign-key violation");
                Error::not_found(
                    "workspace",
                    workspace.map(|w| w.to_string()).unwrap_or_default(),
                )
            }
            _ => {
                tracing::error!(error = %db, code = ?db.code(), "SQLite error");
                Error::internal("database error")
            }
        },
        sqlx::Error::PoolTimedOut => {
            tracing::warn!("timed out waiting for a SQLite connection");
            Error::unavailable("timed out waiting for a database connection")
        }
        sqlx::Error::PoolClosed => Error::unavailable("the database pool is closed"),
        sqlx::Error::Io(io) => {
            tracing::error!(error = %io, "I/O error on the SQLite database");
            Error::unavailable("database I/O error")
        }
        other => {
            tracing::error!(error = %other, "SQLite driver error");
            Error::internal("database error")
        }
    }
}
