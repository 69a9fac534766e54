//! `pandora credentials …`: deployment-wide maintenance of the stored
//! connector credentials, over [`pandora_core::vault::maintenance`].
//!
//! - `encrypt-existing [--dry-run]` seals credentials stored in plaintext
//!   (written before encryption existed) under `CREDENTIAL_ENCRYPTION_KEY`;
//! - `rotate-key` re-wraps every credential under the current key, opening
//!   it with a key of `CREDENTIAL_ENCRYPTION_KEY_PREVIOUS`, then verifies them
//!   all and says when the old key can be dropped;
//! - `rotate-key --verify` only checks that every credential opens with the
//!   configured keys, and under which key each one is sealed.
//!
//! Progress goes to stderr as a bar when stderr is a terminal (nothing
//! otherwise); the report goes to stdout. The exit code is 1 when any
//! credential could not be processed. Nothing here prints a credential or a
//! key: only connection, workspace and key ids, counts and reasons.

use std::io::IsTerminal;
use std::time::Duration;

use crate::cli::CredentialsCommand;
use crate::config::Config;
use crate::database::{self, Opened};
use crate::logging::Logging;
use crate::Failure;
use indicatif::{ProgressBar, ProgressStyle};
use pandora_core::store::CredentialStore;
use pandora_core::vault::maintenance::{self, Report, RunOptions};
use pandora_core::vault::{
    CredentialVault, KeyId, LocalVault, MasterKey, KEY_VAR, PREVIOUS_KEYS_VAR,
};

/// Runs one `pandora credentials` command against the configured database.
pub async fn run(
    config: Config,
    logging: &Logging,
    action: CredentialsCommand,
) -> Result<(), Failure> {
    // Refuse before touching the database when the keys cannot do the job.
    let vault = match action {
        CredentialsCommand::EncryptExisting { dry_run, .. } => encrypting_vault(&config, dry_run)?,
        CredentialsCommand::RotateKey { verify: false, .. } => {
            if !config.vault.has_key() {
                return Err(Failure::config(format!(
                    "{KEY_VAR} is not set: `pandora credentials rotate-key` re-wraps every \
                     credential under it; set the new key there and the old one in \
                     {PREVIOUS_KEYS_VAR} (generate a key with `pandora keygen`)"
                )));
            }
            config.vault.clone()
        }
        CredentialsCommand::RotateKey { verify: true, .. } => config.vault.clone(),
    };
    let opened = database::open_migrated(&config.database).await?;
    logging.database_opened();
    let job = Job {
        config: &config,
        opened: &opened,
        vault: &vault,
    };
    let result = match action {
        CredentialsCommand::EncryptExisting { dry_run, batch } => {
            job.encrypt_existing(dry_run, batch.size).await
        }
        CredentialsCommand::RotateKey {
            verify: false,
            batch,
        } => job.rotate(batch.size).await,
        CredentialsCommand::RotateKey {
            verify: true,
            batch,
        } => job.verify(batch.size).await,
    };
    opened.close().await;
    result
}

/// The vault `encrypt-existing` seals with. A dry run without a configured
/// key seals (in memory only, then discards) under a throwaway key, so that
/// operators can count what is left before they have chosen a key.
fn encrypting_vault(config: &Config, dry_run: bool) -> Result<LocalVault, Failure> {
    if config.vault.has_key() {
        return Ok(config.vault.clone());
    }
    if !dry_run {
        return Err(Failure::config(format!(
            "{KEY_VAR} is not set: `pandora credentials encrypt-existing` seals credentials \
             under it; generate a key with `pandora keygen` and give it to every server first"
        )));
    }
    let throwaway = MasterKey::from_hex(&MasterKey::generate_hex())
        .map_err(|e| Failure::runtime(format!("cannot make a throwaway key: {e}")))?;
    Ok(LocalVault::new(throwaway))
}

/// One command's context.
struct Job<'a> {
    config: &'a Config,
    opened: &'a Opened,
    vault: &'a LocalVault,
}

impl Job<'_> {
    fn store(&self) -> &dyn CredentialStore {
        self.opened.credentials()
    }

    fn database(&self) -> String {
        database::describe(&self.config.database)
    }

    /// A store error that stopped a run, as one line.
    fn stopped(&self, command: &str, e: &pandora_core::Error) -> Failure {
        Failure::runtime(format!(
            "`pandora credentials {command}` stopped: {}; every credential it already \
             processed stays done: run it again to finish",
            database::runtime_error(&self.config.database, e)
        ))
    }

    async fn encrypt_existing(&self, dry_run: bool, batch_size: u32) -> Result<(), Failure> {
        let current = self.vault.current_key_id();
        if !dry_run {
            println!(
                "encrypting plaintext credentials in {} under key {}",
                self.database(),
                show(current)
            );
        } else if self.config.vault.has_key() {
            println!(
                "dry run: looking for plaintext credentials in {} (would seal under key {}); nothing will be changed",
                self.database(),
                show(current)
            );
        } else {
            println!(
                "dry run: looking for plaintext credentials in {} ({KEY_VAR} is not set: \
                 the real run needs it); nothing will be changed",
                self.database()
            );
        }
        let opts = RunOptions {
            dry_run,
            batch_size,
            stop_after: None,
        };
        let bar = Progress::start(self.store(), "encrypting").await;
        let report =
            maintenance::encrypt_existing(self.store(), self.vault, opts, &|n| bar.update(n)).await;
        bar.finish();
        let report = report.map_err(|e| self.stopped("encrypt-existing", &e))?;
        let changed = if dry_run {
            "would encrypt"
        } else {
            "encrypted"
        };
        print!(
            "{}",
            render_counts(&[
                ("found", report.found),
                (changed, report.changed),
                ("already encrypted", report.already),
                ("changed concurrently", report.raced),
                ("failed", report.failed.len() as u64),
            ])
        );
        print!("{}", render_failures(&report));
        if dry_run {
            println!("dry run: nothing was changed");
        }
        failed(&report, if dry_run { "checked" } else { "encrypted" })
    }

    async fn rotate(&self, batch_size: u32) -> Result<(), Failure> {
        let Some(current) = self.vault.current_key_id() else {
            // `run` checked the key already.
            return Err(Failure::config(format!("{KEY_VAR} is not set")));
        };
        println!(
            "rotating credentials in {} to the current key {current} (previous keys: {})",
            self.database(),
            previous_ids(self.vault)
        );
        let opts = RunOptions {
            dry_run: false,
            batch_size,
            stop_after: None,
        };
        let bar = Progress::start(self.store(), "re-wrapping").await;
        let report =
            maintenance::rotate_key(self.store(), self.vault, opts, &|n| bar.update(n)).await;
        bar.finish();
        let report = report.map_err(|e| self.stopped("rotate-key", &e))?;
        print!(
            "{}",
            render_counts(&[
                ("found", report.found),
                ("re-wrapped", report.changed),
                (&format!("already under key {current}"), report.already),
                ("changed concurrently", report.raced),
                ("failed", report.failed.len() as u64),
            ])
        );
        print!("{}", render_failures(&report));
        if !report.failed.is_empty() {
            println!(
                "not verified: fix the failures above, then run `pandora credentials rotate-key` \
                 again (it only touches what is left)"
            );
            return failed(&report, "re-wrapped");
        }

        println!("verifying that every credential opens:");
        let check = self.verify_pass(batch_size).await?;
        let census = &check.census;
        print!("{}", render_verification(&check, Some(current)));
        failed(&check, "opened")?;
        match census.others(current) {
            0 => println!(
                "every credential is now sealed under key {current}; once every server runs \
                 with this {KEY_VAR} you can remove the old key from {PREVIOUS_KEYS_VAR}"
            ),
            n => println!(
                "{n} {} not sealed under key {current} (written while this ran, perhaps by a \
                 server still running the old key): keep the old key in {PREVIOUS_KEYS_VAR} \
                 and run `pandora credentials rotate-key` again",
                credentials_are(n)
            ),
        }
        Ok(())
    }

    async fn verify(&self, batch_size: u32) -> Result<(), Failure> {
        let ids = self.vault.key_ids();
        let current = self.vault.current_key_id();
        println!(
            "verifying credentials in {} with {}",
            self.database(),
            match current {
                Some(id) => format!(
                    "the current key {id} (previous keys: {})",
                    previous_ids(self.vault)
                ),
                None if ids.is_empty() => format!("no key ({KEY_VAR} is not set)"),
                None => format!(
                    "no current key (previous keys: {})",
                    previous_ids(self.vault)
                ),
            }
        );
        let check = self.verify_pass(batch_size).await?;
        let census = &check.census;
        print!("{}", render_verification(&check, current));
        failed(&check, "opened")?;
        if census.plaintext > 0 {
            println!(
                "{} {} stored unencrypted: run `pandora credentials encrypt-existing`",
                census.plaintext,
                credentials_are(census.plaintext)
            );
        }
        if let Some(current) = current {
            match census.others(current) {
                0 => println!(
                    "every credential opens and is sealed under key {current}: no other key is needed"
                ),
                _ if census.older(current) > 0 => println!(
                    "every credential opens, but {} {} still sealed under an older key: keep it \
                     in {PREVIOUS_KEYS_VAR} until `pandora credentials rotate-key` has re-wrapped them",
                    census.older(current),
                    credentials_are(census.older(current))
                ),
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens every credential ([`maintenance::verify`]); its report's
    /// census tells under which key each one is sealed.
    async fn verify_pass(&self, batch_size: u32) -> Result<Report, Failure> {
        let bar = Progress::start(self.store(), "verifying").await;
        let opts = RunOptions {
            batch_size,
            ..RunOptions::default()
        };
        let report = maintenance::verify(self.store(), self.vault, opts, &|n| bar.update(n)).await;
        bar.finish();
        report.map_err(|e| self.stopped("rotate-key --verify", &e))
    }
}

/// `Err` (exit code 1) when any credential failed, after the report listed them.
fn failed(report: &Report, verb: &str) -> Result<(), Failure> {
    match report.failed.len() {
        0 => Ok(()),
        n => Err(Failure::runtime(format!(
            "{n} {} could not be {verb} (listed in the report on stdout)",
            if n == 1 { "credential" } else { "credentials" }
        ))),
    }
}

fn credentials_are(n: u64) -> &'static str {
    if n == 1 {
        "credential is"
    } else {
        "credentials are"
    }
}

fn show(id: Option<KeyId>) -> String {
    id.map_or_else(|| "(none)".to_string(), |id| id.to_string())
}

/// The ids of the ring's previous keys, or `none`.
fn previous_ids(vault: &LocalVault) -> String {
    let skip = usize::from(vault.has_key());
    let ids: Vec<String> = vault
        .key_ids()
        .iter()
        .skip(skip)
        .map(ToString::to_string)
        .collect();
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.join(", ")
    }
}

/// `label: value` lines with the values aligned.
fn render_counts(rows: &[(&str, u64)]) -> String {
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 1;
    rows.iter()
        .map(|(label, n)| format!("  {:<width$} {n}\n", format!("{label}:")))
        .collect()
}

/// One line per failure: ids, the key id the blob names, and why — never the secret.
fn render_failures(report: &Report) -> String {
    report
        .failed
        .iter()
        .map(|f| {
            let key = f
                .key_id
                .map(|id| format!(" sealed under key {id}"))
                .unwrap_or_default();
            format!(
                "  connection {} (workspace {}){key}: {}\n",
                f.connection_id, f.workspace_id, f.reason
            )
        })
        .collect()
}

/// The result of a verification pass: counts, failures, and the keys in use.
fn render_verification(report: &Report, current: Option<KeyId>) -> String {
    let census = &report.census;
    let mut rows: Vec<(String, u64)> = vec![
        ("found".into(), report.found),
        ("open".into(), report.already),
        ("failed".into(), report.failed.len() as u64),
    ];
    for (id, n) in &census.sealed {
        let which = if Some(*id) == current {
            " (current)"
        } else {
            ""
        };
        rows.push((format!("sealed under key {id}{which}"), *n));
    }
    if census.plaintext > 0 {
        rows.push(("unencrypted".into(), census.plaintext));
    }
    if census.unreadable > 0 {
        rows.push(("unreadable".into(), census.unreadable));
    }
    let borrowed: Vec<(&str, u64)> = rows.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    let mut out = render_counts(&borrowed);
    out.push_str(&render_failures(report));
    out
}

/// A progress bar on stderr, only when stderr is a terminal.
struct Progress(Option<ProgressBar>);

impl Progress {
    async fn start(store: &dyn CredentialStore, what: &'static str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        // The total only sizes the bar: a failure here shows up in the run itself.
        let total = store.count_credentials().await.unwrap_or(0);
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:40}] {pos}/{len} credentials ({elapsed}, eta {eta})",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(what);
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress(Some(bar))
    }

    fn update(&self, examined: u64) {
        if let Some(bar) = &self.0 {
            // Servers may add credentials while a run goes on.
            if bar.length().is_some_and(|len| examined > len) {
                bar.set_length(examined);
            }
            bar.set_position(examined);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pandora_core::vault::maintenance::Failure as RowFailure;

    fn id(n: u8) -> KeyId {
        KeyId([n; 8])
    }

    #[test]
    fn counts_are_aligned() {
        assert_eq!(
            render_counts(&[("found", 3), ("changed concurrently", 0)]),
            "  found:                3\n  changed concurrently: 0\n"
        );
    }

    #[test]
    fn failures_name_ids_and_key_never_secrets() {
        let ws = uuid::Uuid::nil();
        let conn = uuid::Uuid::max();
        let report = Report {
            failed: vec![
                RowFailure {
                    connection_id: conn,
                    workspace_id: ws,
                    key_id: Some(id(0xab)),
                    reason: "credentials do not open: tampered".into(),
                },
                RowFailure {
                    connection_id: conn,
                    workspace_id: ws,
                    key_id: None,
                    reason: "neither sealed nor JSON".into(),
                },
            ],
            ..Report::default()
        };
        assert_eq!(
            render_failures(&report),
            format!(
                "  connection {conn} (workspace {ws}) sealed under key abababababababab: credentials do not open: tampered\n  \
                 connection {conn} (workspace {ws}): neither sealed nor JSON\n"
            )
        );
        assert!(failed(&report, "opened")
            .unwrap_err()
            .to_string()
            .starts_with("2 credentials could not be opened"));
        assert!(failed(&Report::default(), "opened").is_ok());
    }

    #[test]
    fn census_counts_what_is_not_under_the_current_key() {
        let mut census = maintenance::Census::default();
        census.sealed.insert(id(1), 4);
        census.sealed.insert(id(2), 1);
        census.plaintext = 2;
        assert_eq!(census.sealed_under(id(1)), 4);
        assert_eq!(census.older(id(1)), 1);
        assert_eq!(census.others(id(1)), 3);
        assert_eq!(census.others(id(3)), 7);
        let text = render_verification(
            &Report {
                found: 7,
                already: 7,
                census,
                ..Report::default()
            },
            Some(id(1)),
        );
        assert!(
            text.contains("sealed under key 0101010101010101 (current): 4"),
            "{text}"
        );
        assert!(
            text.contains("sealed under key 0202020202020202:"),
            "{text}"
        );
        assert!(text.contains("unencrypted"), "{text}");
    }

    #[test]
    fn previous_ids_skip_the_current_key() {
        let a = MasterKey::from_hex(&MasterKey::generate_hex()).unwrap();
        let b = MasterKey::from_hex(&MasterKey::generate_hex()).unwrap();
        let b_id = b.id().to_string();
        assert_eq!(previous_ids(&LocalVault::new(a.clone())), "none");
        assert_eq!(
            previous_ids(&LocalVault::new(a).with_previous([b.clone()])),
            b_id
        );
        assert_eq!(
            previous_ids(&LocalVault::without_key().with_previous([b])),
            b_id
        );
    }
}
