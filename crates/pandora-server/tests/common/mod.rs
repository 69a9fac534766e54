//! What every binary test shares: the `pandora` command in a working
//! directory, with the variables it reads removed from the inherited environment.

use std::path::Path;
use std::process::Command;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_pandora");

/// Variables `pandora` reads: removed so the developer's environment cannot leak in.
const SCRUBBED: &[&str] = &[
    "DATABASE_URL",
    "PANDORA_ADDR",
    "PANDORA_SQLITE_PATH",
    "PANDORA_ADMIN_TOKEN",
    "RUST_LOG",
    "DEBUG",
    "CREDENTIAL_ENCRYPTION_KEY",
    "CREDENTIAL_ENCRYPTION_KEY_PREVIOUS",
    "SESSION_SECRET",
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "SALESFORCE_CALLBACK_URL",
    "SALESFORCE_LOGIN_URL",
    "HUBSPOT_CLIENT_ID",
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_CALLBACK_URL",
    "HUBSPOT_OAUTH_BASE_URL",
    "HUBSPOT_API_BASE_URL",
    "PANDORA_OAUTH_SUCCESS_URL",
];

/// `pandora` run in `dir` with a scrubbed environment.
pub fn pandora(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd
}
