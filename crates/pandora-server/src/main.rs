//! `pandora`: Pandora's reference server and operator commands.
//!
//! `pandora` (or `pandora serve`) applies pending migrations and serves the
//! REST API of [`pandora_http`]; `pandora migrate` only migrates. Configuration
//! comes from the environment and a `.env` file (see `pandora --help`); a bad
//! value stops start-up with one line naming it and exit code 2, a database
//! that cannot be used with one line and exit code 1.

mod cli;
mod config;
mod database;
mod logging;
mod migrate;
mod serve;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
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
        rust_log: env("RUST_LOG"),
        debug: env("DEBUG"),
    }
}

fn run() -> Result<(), Failure> {
    // `.env` first, so that clap's `env = …` attributes see its variables;
    // variables already set in the environment win.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            // Never echo the line itself: it may hold a secret.
            let why = match e {
                dotenvy::Error::LineParse(_, column) => {
                    format!("a line is malformed at character {column}")
                }
                other => other.to_string(),
            };
            return Err(Failure {
                message: format!(
                    "cannot read .env: {why}; expected NAME=value lines such as PANDORA_ADDR=127.0.0.1:3000"
                ),
                code: EXIT_CONFIG,
            });
        }
    }
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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
