//! The credential vault from the operator's side: the real `pandora` binary's
//! key configuration, `keygen`, and `credentials encrypt-existing` /
//! `rotate-key` over an SQLite file seeded from the test.

mod common;

use common::pandora;

use std::path::{Path, PathBuf};
use std::process::Output;

use pandora_core::model::{ConnectionStatus, NewConnection, NewWorkspace, StoredCredentials};
use pandora_core::store::ConnectionStore;
use pandora_core::vault::{CredentialState, MasterKey};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;

const SECRET: &str = "legacy-secret";
const CONNECTOR: &str = "hubspot";

/// What a run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
        }
    }

    /// The number on the report line `label: N`.
    fn count(&self, label: &str) -> u64 {
        let prefix = format!("{label}:");
        self.stdout
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{}", self.stdout))
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("`{label}` is not a number in:\n{}", self.stdout))
    }

    fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// `pandora credentials ARGS` with these keys (`None`: unset).
fn credentials(dir: &Path, current: Option<&str>, previous: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = pandora(dir);
    cmd.arg("credentials").args(args);
    if let Some(key) = current {
        cmd.env("CREDENTIAL_ENCRYPTION_KEY", key);
    }
    if let Some(keys) = previous {
        cmd.env("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS", keys);
    }
    Run::of(cmd.output().expect("run pandora"))
}

fn keygen(dir: &Path) -> String {
    let run = Run::of(pandora(dir).arg("keygen").output().unwrap());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    run.stdout.trim_end_matches('\n').to_string()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A connection stored before encryption existed, written straight into the file.
struct Seeded {
    db: PathBuf,
    workspace: String,
    connection: String,
}

fn seed_plaintext(dir: &Path) -> Seeded {
    let db = dir.join("pandora.db");
    block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        store.migrate().await.unwrap();
        let pandora = Pandora::builder().store(store.clone()).build().unwrap();
        let ws = pandora
            .create_workspace(NewWorkspace {
                name: "Acme".into(),
                settings: None,
            })
            .await
            .unwrap()
            .workspace
            .id;
        let conn = store
            .upsert_connection(
                ws,
                &NewConnection {
                    connector: CONNECTOR.into(),
                    status: ConnectionStatus::Active,
                    credentials: Some(StoredCredentials(format!(r#"{{"api_key":"{SECRET}"}}"#))),
                    config: serde_json::json!({}),
                },
            )
            .await
            .unwrap();
        store.close().await;
        Seeded {
            db: db.clone(),
            workspace: ws.to_string(),
            connection: conn.id.to_string(),
        }
    })
}

/// The stored credentials of the seeded connection, as they rest in the file.
fn stored(seeded: &Seeded) -> String {
    block_on(async {
        let store = SqliteStore::open(&seeded.db).await.unwrap();
        let ws = seeded.workspace.parse().unwrap();
        let conn = store.get_connection(ws, CONNECTOR).await.unwrap();
        store.close().await;
        conn.credentials.expect("credentials").0
    })
}

/// The key id a stored value is sealed under, if it is sealed.
fn sealed_under(stored: &str) -> Option<String> {
    match CredentialState::of(&StoredCredentials(stored.to_string())) {
        CredentialState::Sealed(id) => Some(id.to_string()),
        _ => None,
    }
}

fn key_id(hex: &str) -> String {
    MasterKey::from_hex(hex).unwrap().id().to_string()
}

/// Asserts that nothing printed holds the secret or a key (in any case).
fn assert_no_secrets(run: &Run, keys: &[&str]) {
    let text = run.both();
    assert!(!text.contains(SECRET), "secret printed:\n{text}");
    let lower = text.to_lowercase();
    for key in keys {
        assert!(!lower.contains(&key.to_lowercase()), "key printed:\n{text}");
        // Not even half of one.
        assert!(
            !lower.contains(&key[..32].to_lowercase()),
            "key printed:\n{text}"
        );
    }
}

#[test]
fn a_short_key_stops_start_up_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let key = "a".repeat(63);
    for args in [
        &[][..],
        &["migrate"],
        &["credentials", "rotate-key", "--verify"],
    ] {
        let run = Run::of(
            pandora(dir.path())
                .args(args)
                .env("CREDENTIAL_ENCRYPTION_KEY", &key)
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert_eq!(
            run.stderr,
            "error: CREDENTIAL_ENCRYPTION_KEY must be exactly 64 hexadecimal characters (32 bytes), \
             got 63 characters; generate a key with `pandora keygen`\n"
        );
        assert_eq!(run.stdout, "");
    }
    assert!(
        !dir.path().join("pandora.db").exists(),
        "nothing is created"
    );
}

#[test]
fn a_non_hex_key_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("{}xyz", "0".repeat(61));
    let run = Run::of(
        pandora(dir.path())
            .env("CREDENTIAL_ENCRYPTION_KEY", &key)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(2));
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    let line = run.stderr.trim_end();
    assert!(
        line.starts_with("error: CREDENTIAL_ENCRYPTION_KEY must be hexadecimal"),
        "{line}"
    );
    assert!(line.contains("non-hex character at position 62"), "{line}");
    assert!(
        line.ends_with("generate a key with `pandora keygen`"),
        "{line}"
    );
    assert!(!line.contains(&key[..20]));

    // A bad older key names its own variable; set in a .env file the same.
    let good = keygen(dir.path());
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "CREDENTIAL_ENCRYPTION_KEY={good}\nCREDENTIAL_ENCRYPTION_KEY_PREVIOUS={good},nope\n"
        ),
    )
    .unwrap();
    let run = Run::of(pandora(dir.path()).arg("migrate").output().unwrap());
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("error: CREDENTIAL_ENCRYPTION_KEY_PREVIOUS entry 2 must be exactly 64"),
        "{}",
        run.stderr
    );
    assert_no_secrets(&run, &[&good]);
}

#[test]
fn keygen_prints_a_fresh_key_and_nothing_else_whatever_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = pandora(dir.path()).arg("keygen").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.len(), 65, "{stdout:?}");
    assert!(stdout.ends_with('\n'));
    let first = stdout.trim_end();
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
    assert!(out.stderr.is_empty());
    assert!(MasterKey::from_hex(first).is_ok());

    let second = keygen(dir.path());
    assert_eq!(second.len(), 64);
    assert_ne!(first, second, "two keys alike");

    // Exactly when the configuration is broken: a bad key, a bad address, a broken .env.
    let out = pandora(dir.path())
        .arg("keygen")
        .env("CREDENTIAL_ENCRYPTION_KEY", "a".repeat(63))
        .env("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS", "zz")
        .env("PANDORA_ADDR", "nowhere")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    let third = String::from_utf8(out.stdout).unwrap();
    assert_eq!(third.trim_end().len(), 64);
    assert_ne!(third.trim_end(), second);

    std::fs::write(
        dir.path().join(".env"),
        "CREDENTIAL_ENCRYPTION_KEY='unterminated\n",
    )
    .unwrap();
    let run = Run::of(pandora(dir.path()).arg("migrate").output().unwrap());
    assert_eq!(
        run.code,
        Some(2),
        "a broken .env still stops other commands"
    );
    assert_eq!(keygen(dir.path()).len(), 64);
    assert!(!dir.path().join("pandora.db").exists());
}

#[test]
fn operators_encrypt_legacy_credentials_then_rotate_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = keygen(d);
    let new = keygen(d);
    let (old_id, new_id) = (key_id(&old), key_id(&new));
    let keys = [old.as_str(), new.as_str()];
    let seeded = seed_plaintext(d);
    let plaintext = stored(&seeded);
    assert!(plaintext.contains(SECRET));
    let mut runs = Vec::new();

    // Without a key, only a dry run is possible.
    let run = credentials(d, None, None, &["encrypt-existing"]);
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    assert!(
        run.stderr.contains("CREDENTIAL_ENCRYPTION_KEY is not set"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("pandora keygen"));
    assert_eq!(stored(&seeded), plaintext);
    runs.push(run);
    let run = credentials(d, None, None, &["encrypt-existing", "--dry-run"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.count("would encrypt"), 1);
    runs.push(run);

    // Dry run: one would be encrypted, nothing changes.
    let run = credentials(d, Some(&old), None, &["encrypt-existing", "--dry-run"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.count("found"), 1);
    assert_eq!(run.count("would encrypt"), 1);
    assert_eq!(run.count("already encrypted"), 0);
    assert_eq!(run.count("failed"), 0);
    assert!(run.stdout.contains("nothing was changed"), "{}", run.stdout);
    assert_eq!(
        run.stderr, "",
        "no progress output when stderr is not a terminal"
    );
    assert_eq!(stored(&seeded), plaintext, "a dry run changed the row");
    runs.push(run);

    // For real: sealed under the old key, the secret gone from the file's row.
    let run = credentials(
        d,
        Some(&old),
        None,
        &["encrypt-existing", "--batch-size", "1"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.count("found"), 1);
    assert_eq!(run.count("encrypted"), 1);
    assert_eq!(run.count("already encrypted"), 0);
    assert_eq!(run.count("changed concurrently"), 0);
    assert!(run.stdout.contains(&old_id), "{}", run.stdout);
    let sealed = stored(&seeded);
    assert!(sealed.starts_with("pv1."), "{sealed}");
    assert!(!sealed.contains(SECRET));
    assert_eq!(sealed_under(&sealed), Some(old_id.clone()));
    runs.push(run);

    // Twice is harmless.
    let run = credentials(d, Some(&old), None, &["encrypt-existing"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.count("encrypted"), 0);
    assert_eq!(run.count("already encrypted"), 1);
    assert_eq!(stored(&seeded), sealed);
    runs.push(run);

    // Rotation needs a current key.
    let run = credentials(d, None, Some(&old), &["rotate-key"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    runs.push(run);

    // Rotate: new key current, old one previous.
    let run = credentials(d, Some(&new), Some(&old), &["rotate-key"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.lines().next().unwrap().contains(&new_id),
        "the current key id comes first:\n{}",
        run.stdout
    );
    assert_eq!(run.count("found"), 1);
    assert_eq!(run.count("re-wrapped"), 1);
    assert_eq!(run.count(&format!("already under key {new_id}")), 0);
    assert_eq!(run.count("failed"), 0);
    assert_eq!(run.count("open"), 1);
    assert!(
        run.stdout.contains(&format!(
            "every credential is now sealed under key {new_id}; once every server runs with this \
             CREDENTIAL_ENCRYPTION_KEY you can remove the old key from CREDENTIAL_ENCRYPTION_KEY_PREVIOUS"
        )),
        "{}",
        run.stdout
    );
    let rotated = stored(&seeded);
    assert_ne!(rotated, sealed);
    assert_eq!(sealed_under(&rotated), Some(new_id.clone()));
    assert!(!rotated.contains(SECRET));
    runs.push(run);

    // Again: nothing left to do, and still the go-ahead.
    let run = credentials(d, Some(&new), Some(&old), &["rotate-key"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.count("re-wrapped"), 0);
    assert_eq!(run.count(&format!("already under key {new_id}")), 1);
    assert!(run.stdout.contains("you can remove the old key"));
    assert_eq!(stored(&seeded), rotated);
    runs.push(run);

    // Verify with only the new key: everything opens.
    let run = credentials(d, Some(&new), None, &["rotate-key", "--verify"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.count("found"), 1);
    assert_eq!(run.count("open"), 1);
    assert_eq!(run.count("failed"), 0);
    assert_eq!(
        run.count(&format!("sealed under key {new_id} (current)")),
        1
    );
    assert_eq!(stored(&seeded), rotated, "--verify changed a row");
    runs.push(run);

    // Verify with only the old key: the failure names the key it lacks.
    let run = credentials(d, Some(&old), None, &["rotate-key", "--verify"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.count("open"), 0);
    assert_eq!(run.count("failed"), 1);
    let failure = format!(
        "connection {} (workspace {}) sealed under key {new_id}: ",
        seeded.connection, seeded.workspace
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(&failure))
        .unwrap_or_else(|| panic!("no failure line in:\n{}", run.stdout));
    assert!(
        line.contains("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS"),
        "{line}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run
        .stderr
        .starts_with("error: 1 credential could not be opened"));
    assert_eq!(stored(&seeded), rotated);
    runs.push(run);

    // Rotating back without the new key fails for that row, exit 1, no go-ahead.
    let run = credentials(d, Some(&old), None, &["rotate-key"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(run.count("failed"), 1);
    assert!(run.stdout.contains(&failure), "{}", run.stdout);
    assert!(!run.stdout.contains("you can remove the old key"));
    assert_eq!(stored(&seeded), rotated);
    runs.push(run);

    for run in &runs {
        assert_no_secrets(run, &keys);
    }
}

#[test]
fn rotation_refuses_plaintext_and_verify_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = keygen(d);
    let seeded = seed_plaintext(d);

    let run = credentials(d, Some(&key), None, &["rotate-key"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(run.count("failed"), 1);
    let line = format!(
        "connection {} (workspace {}): unencrypted: run `pandora credentials encrypt-existing` first",
        seeded.connection, seeded.workspace
    );
    assert!(run.stdout.contains(&line), "{}", run.stdout);
    assert!(!run.stdout.contains("you can remove the old key"));
    assert_no_secrets(&run, &[&key]);

    // Legacy plaintext opens (servers still read it) but is called out.
    let run = credentials(d, Some(&key), None, &["rotate-key", "--verify"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.count("unencrypted"), 1);
    assert!(
        run.stdout
            .contains("run `pandora credentials encrypt-existing`"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("no other key is needed"));
    assert_no_secrets(&run, &[&key]);
}
