//! `pandora`: Pandora's reference server and operator commands.
//!
//! `pandora` (or `pandora serve`) applies pending migrations and serves the
//! REST API of [`pandora_http`] with a job worker beside it; `pandora worker`
//! runs only a worker; `pandora migrate` only migrates; `pandora
//! keygen` prints a fresh master key for the credential vault; `pandora
//! credentials encrypt-existing|rotate-key` maintain the stored credentials;
//! `pandora sync` runs one sync and `pandora skills list|run` lists the
//! skills or runs one, in the foreground.
//! Configuration comes from the environment and a `.env` file (see `pandora
//! --help`); a bad value stops start-up with one line naming it and exit code
//! 2, a database that cannot be used with one line and exit code 1.

mod cli;
mod config;
mod credentials;
mod database;
mod logging;
mod migrate;
mod serve;
mod skills;
mod sync;
mod worker;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, SkillsCommand};
use crate::config::{Config, ConfigError, Raw, RawConfig};
use crate::database::DatabaseError;

/// Exit code of a configuration error (as for command-line usage errors).
const EXIT_CONFIG: u8 = 2;
/// Exit code of a failure at run time.
const EXIT_RUNTIME: u8 = 1;

/// Why the process stops with an error: one line for stderr, and an exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A failure at run time (exit code 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: EXIT_RUNTIME,
        }
    }

    /// A configuration that cannot do what was asked (exit code 2).
    pub fn config(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: EXIT_CONFIG,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure {
            message: e.to_string(),
            code: EXIT_CONFIG,
        }
    }
}

impl From<DatabaseError> for Failure {
    fn from(e: DatabaseError) -> Self {
        let code = match e {
            DatabaseError::BadUrl(_) => EXIT_CONFIG,
            DatabaseError::Unusable(_) => EXIT_RUNTIME,
        };
        Failure {
            message: e.to_string(),
            code,
        }
    }
}

/// A value given by flag or environment, named as the operator wrote it.
fn raw_value(
    matches: &ArgMatches,
    id: &str,
    flag: &str,
    var: &str,
    value: Option<&String>,
) -> Option<Raw> {
    let source = match matches.value_source(id) {
        Some(ValueSource::CommandLine) => flag,
        _ => var,
    };
    value.map(|v| Raw::new(source, v.clone()))
}

/// A variable of the environment (after `.env`), `None` when unset or not UTF-8.
fn env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

fn raw_config(cli: &Cli, matches: &ArgMatches) -> RawConfig {
    RawConfig {
        addr: raw_value(matches, "addr", "--addr", "PANDORA_ADDR", cli.addr.as_ref()),
        database_url: raw_value(
            matches,
            "database_url",
            "--database-url",
            "DATABASE_URL",
            cli.database_url.as_ref(),
        ),
        sqlite_path: raw_value(
            matches,
            "sqlite_path",
            "--sqlite-path",
            "PANDORA_SQLITE_PATH",
            cli.sqlite_path.as_ref(),
        ),
        admin_token: env("PANDORA_ADMIN_TOKEN"),
        encryption_key: env(pandora_core::vault::KEY_VAR),
        previous_encryption_keys: env(pandora_core::vault::PREVIOUS_KEYS_VAR),
        rust_log: env("RUST_LOG"),
        debug: env("DEBUG"),
        worker_concurrency: env("PANDORA_WORKER_CONCURRENCY"),
        job_lease_seconds: env("PANDORA_JOB_LEASE_SECONDS"),
        scheduler: env("PANDORA_SCHEDULER"),
        sync_interval_minutes: env("PANDORA_SYNC_INTERVAL_MINUTES"),
        oauth: crate::config::RawOAuth {
            session_secret: env("SESSION_SECRET"),
            salesforce_client_id: env("SALESFORCE_CLIENT_ID"),
            salesforce_client_secret: env("SALESFORCE_CLIENT_SECRET"),
            salesforce_callback_url: env("SALESFORCE_CALLBACK_URL"),
            hubspot_client_id: env("HUBSPOT_CLIENT_ID"),
            hubspot_client_secret: env("HUBSPOT_CLIENT_SECRET"),
            hubspot_callback_url: env("HUBSPOT_CALLBACK_URL"),
            salesforce_login_url: env("SALESFORCE_LOGIN_URL"),
            hubspot_oauth_base_url: env("HUBSPOT_OAUTH_BASE_URL"),
            hubspot_api_base_url: env("HUBSPOT_API_BASE_URL"),
            success_url: env("PANDORA_OAUTH_SUCCESS_URL"),
        },
    }
}

/// Loads `.env` into the environment; a file that cannot be read is a
/// configuration error (whose message never echoes a line: it may hold a secret).
fn load_dotenv() -> Result<(), Failure> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => {
            let why = match e {
                dotenvy::Error::LineParse(_, column) => {
                    format!("a line is malformed at character {column}")
                }
                other => other.to_string(),
            };
            Err(Failure::config(format!(
                "cannot read .env: {why}; expected NAME=value lines such as PANDORA_ADDR=127.0.0.1:3000"
            )))
        }
    }
}

/// `pandora keygen`: a fresh master key and a newline on stdout, nothing else.
fn keygen() -> Result<(), Failure> {
    use std::io::Write;
    let key = pandora_core::vault::MasterKey::generate_hex();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", key.as_str())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("cannot write the key to stdout: {e}")))
}

fn run() -> Result<(), Failure> {
    // `.env` first, so that clap's `env = …` attributes see its variables;
    // variables already set in the environment win.
    let dotenv = load_dotenv();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Before any validation: people run `keygen` precisely when the
    // configuration (a bad CREDENTIAL_ENCRYPTION_KEY, a broken .env) is wrong.
    if cli.command == Some(Command::Keygen) {
        return keygen();
    }
    dotenv?;
    let config = Config::from_raw(&raw_config(&cli, &matches))?;
    let logging = logging::init(&config.log_filter, config.log_explicit);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve::run(config, &logging).await,
            Command::Migrate => migrate::run(config, &logging).await,
            Command::Credentials { action } => credentials::run(config, &logging, action).await,
            Command::Sync {
                workspace,
                connector,
                full,
            } => sync::run(config, &logging, workspace, &connector, full).await,
            Command::Skills {
                action: SkillsCommand::List,
            } => skills::list(),
            Command::Skills {
                action:
                    SkillsCommand::Run {
                        workspace,
                        skill,
                        period,
                        as_of,
                        json,
                    },
            } => skills::run(config, &logging, workspace, &skill, period, as_of, json).await,
            Command::Worker => worker::run(config, &logging).await,
            Command::Keygen => keygen(),
        }
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
