//! `pandora migrate`: apply pending migrations and exit.

use crate::config::Config;
use crate::database;
use crate::logging::Logging;
use crate::Failure;

/// `pandora migrate`: applies pending migrations and reports on stdout.
pub async fn run(config: Config, logging: &Logging) -> Result<(), Failure> {
    let opened = database::open_migrated(&config.database).await?;
    logging.database_opened();
    opened.close().await;
    println!(
        "{}: schema is up to date",
        database::describe(&config.database)
    );
    Ok(())
}
