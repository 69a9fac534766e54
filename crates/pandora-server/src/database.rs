//! Opening the configured store and applying its migrations, with start-up
//! errors turned into one clear line that never shows a password.

use std::path::Path;
use std::sync::Arc;

use pandora_core::store::{CredentialStore, Store};
use pandora_core::Error;
use pandora_store_postgres::PgStore;
use pandora_store_sqlite::SqliteStore;

use crate::config::{postgres_password, postgres_target, Database};

/// Why the database could not be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The database is unreachable, refused us, or its schema cannot be applied.
    #[error("{0}")]
    Unusable(String),
    /// The configured URL is malformed beyond its scheme.
    #[error("{0}")]
    BadUrl(String),
}

/// What the process is connected to, for logs and messages.
pub fn describe(db: &Database) -> String {
    match db {
        Database::Sqlite(path) => format!("SQLite database {}", path.display()),
        Database::Postgres(url) => format!("PostgreSQL at {}", postgres_target(url)),
    }
}

/// The message of a library error, without the kind prefix its `Display` adds.
fn message(e: &Error) -> String {
    match e {
        Error::Unavailable { message }
        | Error::Internal { message }
        | Error::Conflict { message }
        | Error::Forbidden { message }
        | Error::Unauthorized { message } => message.clone(),
        Error::InvalidInput { field, message } => format!("{field} {message}"),
        other => other.to_string(),
    }
}

/// `text` with every occurrence of `secret` masked.
fn scrub(text: String, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() && text.contains(s) => text.replace(s, "***"),
        _ => text,
    }
}

/// A store error met after start-up, as one line that never shows the password.
pub fn runtime_error(db: &Database, e: &Error) -> String {
    let secret = match db {
        Database::Postgres(url) => postgres_password(url),
        Database::Sqlite(_) => None,
    };
    scrub(message(e), secret)
}

fn connect_error(what: &str, e: &Error, secret: Option<&str>) -> DatabaseError {
    let msg = message(e);
    let line = if msg.starts_with("cannot ") {
        msg
    } else {
        format!("cannot reach {what}: {msg}")
    };
    DatabaseError::Unusable(scrub(line, secret))
}

fn migrate_error(what: &str, e: &Error, secret: Option<&str>) -> DatabaseError {
    DatabaseError::Unusable(scrub(
        format!("cannot apply migrations to {what}: {}", message(e)),
        secret,
    ))
}

async fn open_sqlite(path: &Path) -> Result<SqliteStore, DatabaseError> {
    let what = format!("SQLite database {}", path.display());
    let store = SqliteStore::open(path)
        .await
        .map_err(|e| connect_error(&what, &e, None))?;
    store
        .migrate()
        .await
        .map_err(|e| migrate_error(&what, &e, None))?;
    Ok(store)
}

async fn open_postgres(url: &str) -> Result<PgStore, DatabaseError> {
    let what = format!("PostgreSQL at {}", postgres_target(url));
    let secret = postgres_password(url);
    let store = PgStore::connect(url).await.map_err(|e| match e {
        Error::InvalidInput { message, .. } => {
            DatabaseError::BadUrl(scrub(format!("DATABASE_URL {message}"), secret))
        }
        other => connect_error(&what, &other, secret),
    })?;
    store
        .migrate()
        .await
        .map_err(|e| migrate_error(&what, &e, secret))?;
    Ok(store)
}

/// An open store, as the facade uses it and as it is closed at exit.
pub struct Opened {
    /// The store, for [`pandora_core::Pandora`].
    pub store: Arc<dyn Store>,
    closer: Closer,
}

/// A handle that closes the store's connections (so SQLite checkpoints its WAL).
enum Closer {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Opened {
    /// The store's deployment-wide credential rows, for `pandora credentials`.
    pub fn credentials(&self) -> &dyn CredentialStore {
        match &self.closer {
            Closer::Sqlite(s) => s,
            Closer::Postgres(s) => s,
        }
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(self) {
        match self.closer {
            Closer::Sqlite(s) => s.close().await,
            Closer::Postgres(s) => s.pool().close().await,
        }
    }
}

/// Opens the configured store and brings its schema up to date.
pub async fn open_migrated(db: &Database) -> Result<Opened, DatabaseError> {
    Ok(match db {
        Database::Sqlite(path) => {
            let store = open_sqlite(path).await?;
            Opened {
                store: Arc::new(store.clone()),
                closer: Closer::Sqlite(store),
            }
        }
        Database::Postgres(url) => {
            let store = open_postgres(url).await?;
            Opened {
                store: Arc::new(store.clone()),
                closer: Closer::Postgres(store),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_show_the_password() {
        let e = Error::unavailable("password authentication failed for user u (hunter2)");
        let line = connect_error("PostgreSQL at db:5432", &e, Some("hunter2")).to_string();
        assert_eq!(
            line,
            "cannot reach PostgreSQL at db:5432: password authentication failed for user u (***)"
        );
        let e = Error::unavailable("cannot connect to PostgreSQL at db:5432: refused");
        let line = connect_error("PostgreSQL at db:5432", &e, None).to_string();
        assert_eq!(line, "cannot connect to PostgreSQL at db:5432: refused");
    }

    #[tokio::test]
    async fn sqlite_in_a_missing_directory_fails_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::Sqlite(dir.path().join("missing/dir/p.db"));
        let err = open_migrated(&db).await.err().unwrap().to_string();
        assert!(err.starts_with("cannot "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
