//! Command line: commands and the options that mirror environment variables.

use clap::{Args, Parser, Subcommand};

/// Environment variables, listed at the end of `pandora --help`.
const ENVIRONMENT: &str = "\
Environment (also read from a .env file in the working directory):
  DATABASE_URL               postgres://user:pass@host:5432/db selects PostgreSQL;
                             unset: SQLite (see PANDORA_SQLITE_PATH)
  PANDORA_SQLITE_PATH        SQLite file when DATABASE_URL is unset [default: pandora.db]
  PANDORA_ADDR               address to listen on, host:port [default: 127.0.0.1:3000]
  PANDORA_ADMIN_TOKEN        operator token, at least 32 characters; when unset, one is
                             generated at first start and printed once (only its hash is kept)
  RUST_LOG                   log filter, e.g. info or pandora_http=debug [default: info,sqlx=warn]
  DEBUG                      DEBUG=pandora:* turns on debug logs for Pandora's crates
  CREDENTIAL_ENCRYPTION_KEY  master key that seals connector credentials (AES-256-GCM):
                             64 hex characters, from `pandora keygen`; when unset, the server
                             refuses to store credentials (it never stores them in plaintext)
  CREDENTIAL_ENCRYPTION_KEY_PREVIOUS
                             older master keys, comma-separated, only to open credentials
                             sealed before a rotation (see `pandora credentials rotate-key`)

  PANDORA_WORKER_CONCURRENCY jobs (syncs) a process runs at once [default: 2]; with `serve`,
                             0 serves only the API (run `pandora worker` elsewhere)
  PANDORA_JOB_LEASE_SECONDS  how long a claimed job is held without renewal; a job whose worker
                             died is retried this long after [default: 60]
  PANDORA_SCHEDULER          on|off: whether this process enqueues periodic syncs [default: on]
  PANDORA_SYNC_INTERVAL_MINUTES
                             sync interval of connections whose config sets no
                             sync_interval_minutes [default: 60]

OAuth (connect HubSpot and Salesforce at /api/auth/<vendor>/authorize?workspaceId=…):
  HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET, HUBSPOT_CALLBACK_URL
                             HubSpot app: all three or none; the callback is the redirect URL
                             registered with the app, exactly, e.g.
                             http://localhost:3000/api/auth/hubspot/callback
  SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_CALLBACK_URL
                             Salesforce External Client App (consumer key and secret): all three
                             or none, e.g. http://localhost:3000/api/auth/salesforce/callback
  SESSION_SECRET             signs the OAuth state; at least 32 characters (`openssl rand -hex 32`);
                             required once an OAuth application is configured
  PANDORA_OAUTH_SUCCESS_URL  where the browser is sent after connecting [default: a confirmation page]
  SALESFORCE_LOGIN_URL       Salesforce login host [default: https://login.salesforce.com;
                             a sandbox: https://test.salesforce.com, or a My Domain URL]
  HUBSPOT_OAUTH_BASE_URL     host of HubSpot's consent page [default: https://app.hubspot.com]
  HUBSPOT_API_BASE_URL       HubSpot's API and token host [default: https://api.hubapi.com]

A bad value stops start-up with one line naming the variable (exit code 2).";

/// Pandora: GTM intelligence server.
#[derive(Debug, Parser)]
#[command(
    name = "pandora",
    version,
    about = "Pandora: GTM intelligence server (REST API over SQLite or PostgreSQL)",
    long_about = "Pandora: GTM intelligence server.\n\n\
        Without a command, runs `serve`: applies pending migrations, then serves \
        the REST API until Ctrl-C or SIGTERM.",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on, host:port.
    #[arg(
        long,
        global = true,
        env = "PANDORA_ADDR",
        value_name = "HOST:PORT",
        hide_env_values = true
    )]
    pub addr: Option<String>,

    /// PostgreSQL URL (postgres://…); when unset, SQLite is used. Prefer the
    /// variable: other users can see command lines, and the URL holds a password.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// SQLite database file, used when no PostgreSQL URL is set.
    #[arg(
        long,
        global = true,
        env = "PANDORA_SQLITE_PATH",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub sqlite_path: Option<String>,
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the REST API until Ctrl-C or SIGTERM (the default).
    Serve,
    /// Apply pending database migrations and exit (safe to run more than once).
    Migrate,
    /// Run only a job worker (and the scheduler): claims queued syncs, skill runs and webhook deliveries and runs them until Ctrl-C or SIGTERM.
    #[command(
        long_about = "Run only a job worker, no API: claims queued jobs (syncs) from the \
            database's queue and runs up to PANDORA_WORKER_CONCURRENCY at once, holding a \
            lease of PANDORA_JOB_LEASE_SECONDS; also enqueues periodic syncs unless \
            PANDORA_SCHEDULER=off. Any number of workers and servers may share one \
            PostgreSQL database: each job runs once at a time. Stops claiming on Ctrl-C or \
            SIGTERM and waits briefly for running jobs (those still running are retried by \
            another worker once their lease runs out)."
    )]
    Worker,
    /// Print a fresh random master key for CREDENTIAL_ENCRYPTION_KEY (64 hex characters) on stdout.
    #[command(
        long_about = "Print a fresh random master key for CREDENTIAL_ENCRYPTION_KEY: 64 \
            hexadecimal characters (32 bytes from the operating system's random source) \
            and a newline on stdout, nothing else. Works whatever the rest of the \
            configuration says. Keep the key in your secret store: credentials sealed \
            under a lost key cannot be recovered."
    )]
    Keygen,
    /// Run one sync of a workspace's connection now, in the foreground, and print its summary.
    #[command(
        long_about = "Run one sync of a workspace's connection now, in the foreground: \
            incremental from the stored cursors (the first run of a connection is always \
            full), or full with --full. Shows records and records/s on a terminal, prints \
            the run summary on stdout, and exits 1 when the run failed."
    )]
    Sync {
        /// Workspace id.
        workspace: uuid::Uuid,
        /// Connector id, e.g. `sample`.
        connector: String,
        /// Read everything instead of resuming from the stored cursors.
        #[arg(long)]
        full: bool,
    },
    /// List the skills, or run one now in the foreground and print its report.
    Skills {
        /// What to do.
        #[command(subcommand)]
        action: SkillsCommand,
    },
    /// Maintain stored connector credentials: encrypt legacy plaintext, rotate the master key.
    Credentials {
        /// What to do.
        #[command(subcommand)]
        action: CredentialsCommand,
    },
}

/// `pandora skills …`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum SkillsCommand {
    /// Each skill: id, name, default schedule, and its settings with their defaults.
    #[command(
        long_about = "List the skills this build offers, as `GET /api/skills` does: each \
            skill's id, display name and default schedule (cron, UTC), then its settings \
            with their types, bounds or choices, and defaults. Reads no database."
    )]
    List,
    /// Run a skill over a workspace now, in the foreground, record the run, print its report.
    #[command(
        long_about = "Run a skill over a workspace's data now, in the foreground, and \
            record the run exactly as `POST /api/workspaces/{id}/skills/{skill}/run` does \
            (with the workspace's settings). Prints the report's summary and its first \
            rows as a table, or the whole report as JSON with --json. Exits 1 when the \
            skill, the workspace or the period is unknown, the as-of time is in the \
            future, or the run failed."
    )]
    Run {
        /// Workspace id.
        workspace: uuid::Uuid,
        /// Skill id, e.g. `pipeline_waterfall` (see `pandora skills list`).
        skill: String,
        /// Period: `2026-Q2`, `2026-05`, `2026` or `2026-04-01..2026-05-15`
        /// [default: the quarter holding the as-of time].
        #[arg(long, value_name = "PERIOD")]
        period: Option<String>,
        /// See the data as it stood at this time, RFC 3339 (e.g.
        /// 2026-05-15T00:00:00Z), not in the future [default: now].
        #[arg(long, value_name = "RFC3339", value_parser = parse_as_of)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        /// Print the whole report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// An RFC 3339 time, e.g. `2026-05-15T00:00:00Z`.
fn parse_as_of(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}; expected RFC 3339, e.g. 2026-05-15T00:00:00Z"))
}

/// `pandora credentials …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum CredentialsCommand {
    /// Seal every plaintext credential under CREDENTIAL_ENCRYPTION_KEY.
    #[command(
        long_about = "Seal every credential stored in plaintext (written before encryption \
            existed) under CREDENTIAL_ENCRYPTION_KEY. Safe while servers run, safe to run \
            twice, and resumable: re-run it after an interruption. Ends with a report on \
            stdout; exits 1 when a credential could not be processed."
    )]
    EncryptExisting {
        /// Only report what would be encrypted; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Paging.
        #[command(flatten)]
        batch: Batch,
    },
    /// Re-wrap every credential under CREDENTIAL_ENCRYPTION_KEY (old keys in _PREVIOUS).
    #[command(
        long_about = "Re-wrap every sealed credential's data key under the current \
            CREDENTIAL_ENCRYPTION_KEY, opening it with a key from \
            CREDENTIAL_ENCRYPTION_KEY_PREVIOUS. Safe while servers run, resumable: re-run \
            it after an interruption. Verifies every credential afterwards and says when \
            the old key can be dropped. Exits 1 when a credential could not be processed."
    )]
    RotateKey {
        /// Change nothing: only check that every credential opens with the configured keys.
        #[arg(long)]
        verify: bool,
        /// Paging.
        #[command(flatten)]
        batch: Batch,
    },
}

/// How many connections a credentials command reads per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct Batch {
    /// Connections read per page (each one is still written on its own).
    #[arg(
        long = "batch-size",
        value_name = "N",
        default_value_t = 500,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_pandora_means_serve_and_options_are_global() {
        let cli = Cli::try_parse_from(["pandora"]).unwrap();
        assert_eq!(cli.command, None);
        let cli = Cli::try_parse_from(["pandora", "serve", "--addr", "0.0.0.0:80"]).unwrap();
        assert_eq!(cli.command, Some(Command::Serve));
        assert_eq!(cli.addr.as_deref(), Some("0.0.0.0:80"));
        let cli = Cli::try_parse_from(["pandora", "migrate"]).unwrap();
        assert_eq!(cli.command, Some(Command::Migrate));
        let cli = Cli::try_parse_from(["pandora", "keygen"]).unwrap();
        assert_eq!(cli.command, Some(Command::Keygen));
    }

    #[test]
    fn credentials_commands() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["pandora", "credentials"].iter().chain(args))?;
            match cli.command {
                Some(Command::Credentials { action }) => Ok::<_, clap::Error>(action),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            parse(&["encrypt-existing"]).unwrap(),
            CredentialsCommand::EncryptExisting {
                dry_run: false,
                batch: Batch { size: 500 }
            }
        );
        assert_eq!(
            parse(&["encrypt-existing", "--dry-run", "--batch-size", "7"]).unwrap(),
            CredentialsCommand::EncryptExisting {
                dry_run: true,
                batch: Batch { size: 7 }
            }
        );
        assert_eq!(
            parse(&["rotate-key", "--verify"]).unwrap(),
            CredentialsCommand::RotateKey {
                verify: true,
                batch: Batch { size: 500 }
            }
        );
        for bad in [
            &["rotate-key", "--batch-size", "0"][..],
            &["rotate-key", "--batch-size", "x"],
            &["rotate-key", "--dry-run"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn skills_commands() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["pandora", "skills"].iter().chain(args))?;
            match cli.command {
                Some(Command::Skills { action }) => Ok::<_, clap::Error>(action),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(parse(&["list"]).unwrap(), SkillsCommand::List);
        let ws = uuid::Uuid::nil().to_string();
        assert_eq!(
            parse(&["run", &ws, "pipeline_waterfall"]).unwrap(),
            SkillsCommand::Run {
                workspace: uuid::Uuid::nil(),
                skill: "pipeline_waterfall".into(),
                period: None,
                as_of: None,
                json: false,
            }
        );
        let as_of = "2026-05-15T02:00:00+02:00";
        assert_eq!(
            parse(&[
                "run",
                &ws,
                "deal_risk",
                "--period",
                "2026-Q2",
                "--as-of",
                as_of,
                "--json"
            ])
            .unwrap(),
            SkillsCommand::Run {
                workspace: uuid::Uuid::nil(),
                skill: "deal_risk".into(),
                period: Some("2026-Q2".into()),
                as_of: Some("2026-05-15T00:00:00Z".parse().unwrap()),
                json: true,
            }
        );
        for bad in [
            &["run", "not-a-uuid", "deal_risk"][..],
            &["run", &ws],
            &["run", &ws, "deal_risk", "--as-of", "2026-05-15"],
            &["list", "--json"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn help_lists_every_variable() {
        let help = Cli::command().render_long_help().to_string();
        for var in [
            "DATABASE_URL",
            "PANDORA_ADDR",
            "PANDORA_SQLITE_PATH",
            "PANDORA_ADMIN_TOKEN",
            "RUST_LOG",
            "DEBUG",
            "CREDENTIAL_ENCRYPTION_KEY",
            "CREDENTIAL_ENCRYPTION_KEY_PREVIOUS",
            "SALESFORCE_CLIENT_ID",
            "HUBSPOT_CLIENT_ID",
            "SESSION_SECRET",
            "serve",
            "migrate",
            "keygen",
            "credentials",
            "skills",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
        // Nothing is reserved any more: the OAuth variables are read.
        assert!(!help.contains("Reserved"), "{help}");
        for var in [
            "SALESFORCE_CLIENT_SECRET",
            "SALESFORCE_CALLBACK_URL",
            "HUBSPOT_CLIENT_SECRET",
            "HUBSPOT_CALLBACK_URL",
            "PANDORA_OAUTH_SUCCESS_URL",
            "SALESFORCE_LOGIN_URL",
            "HUBSPOT_OAUTH_BASE_URL",
            "HUBSPOT_API_BASE_URL",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
    }
}
