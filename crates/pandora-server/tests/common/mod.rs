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
