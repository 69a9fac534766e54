//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use pandora_store_sqlite::SqliteStore;

/// Parent of every test database directory.
fn tests_root() -> PathBuf {
    std::env::temp_dir().join("pandora-store-sqlite-tests")
}

/// Removes test databases left by earlier runs (older than an hour), once per process.
fn sweep_old_runs() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        let Ok(entries) = std::fs::read_dir(tests_root()) else {
            return;
        };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
            if old {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// A new, empty directory that outlives the test (a store's pool may still
/// hold the file when the test ends); swept by a later run.
pub fn kept_dir() -> PathBuf {
    sweep_old_runs();
    let root = tests_root();
    std::fs::create_dir_all(&root).expect("create the tests' temp root");
    tempfile::Builder::new()
        .prefix("db-")
        .tempdir_in(root)
        .expect("create a temp dir")
        .keep()
}

/// A fresh, migrated, empty store on a file in a new directory.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub async fn fresh_store() -> SqliteStore {
    let path = kept_dir().join("pandora.db");
    let store = SqliteStore::open(&path).await.expect("open the store");
    store.migrate().await.expect("migrate the store");
    store
}
