//! Command line: commands and the options that mirror environment variables.

use clap::{Parser, Subcommand};

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

Reserved (read by features still to come; accepted and ignored today):
  CREDENTIAL_ENCRYPTION_KEY  master key of the credential vault (64 hex characters)
  SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_CALLBACK_URL
                             Salesforce OAuth application
  HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET, HUBSPOT_CALLBACK_URL
                             HubSpot OAuth application
  SESSION_SECRET             signs the OAuth state parameter

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the REST API until Ctrl-C or SIGTERM (the default).
    Serve,
    /// Apply pending database migrations and exit (safe to run more than once).
    Migrate,
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
            "SALESFORCE_CLIENT_ID",
            "HUBSPOT_CLIENT_ID",
            "SESSION_SECRET",
            "serve",
            "migrate",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
    }
}
