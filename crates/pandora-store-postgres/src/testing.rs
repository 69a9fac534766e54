//! A throwaway PostgreSQL server for tests and benchmarks (feature `testing`).
//!
//! The first call in a process starts one server for the whole process:
//!
//! * with `PANDORA_TEST_DATABASE_URL=postgres://…` set, that server is used
//!   (its user must be allowed to `CREATE DATABASE`; the databases made here
//!   are left behind there);
//! * otherwise the local server binaries (`pg_config --bindir`, the highest
//!   `/usr/lib/postgresql/<version>/bin`, then `PATH`) run a new cluster in a
//!   temporary directory, listening on a free `127.0.0.1` port, tuned for
//!   speed over durability (`fsync=off`). As root, the binaries run as the
//!   `postgres` system user (PostgreSQL refuses to run as root). A detached
//!   watchdog stops the server and removes the directory once the process is
//!   gone, even after a panic or a kill.
//!
//! The schema is migrated once into a template database; each
//! [`fresh_store`] is a new database copied from it, so every test starts
//! empty and tests can run in parallel. Each test makes its own pool: a
//! `#[tokio::test]` has its own runtime, and a pool must not outlive it.
//!
//! Without a server URL or binaries these helpers **panic** with
//! instructions: tests never silently skip.
//!
//! Benchmarks whose data takes long to load can keep their cluster between
//! runs instead: [`kept_server_url`]`(dir)` makes the process's server one
//! whose data directory is `dir/data` (created by `initdb` on first use,
//! started again on later ones). It is stopped cleanly (a fast shutdown,
//! which checkpoints) once the process is gone, and `dir` is left in place,
//! so named databases made with [`ensure_database`] survive to the next run.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};
use uuid::Uuid;

use crate::PgStore;

/// Environment variable naming an existing server to test against.
pub const DATABASE_URL_ENV: &str = "PANDORA_TEST_DATABASE_URL";

/// Connections in the pool of a [`fresh_store`].
pub const TEST_POOL_SIZE: u32 = 5;

const NOT_FOUND: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found: install them \
     (Debian: apt-get install -y postgresql) or set PANDORA_TEST_DATABASE_URL=postgres://…";

/// Settings of the throwaway server: durability off, room for parallel tests
/// and bulk loads.
const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "'127.0.0.1'"),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
    ("shared_buffers", "256MB"),
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "30min"),
    ("log_min_messages", "warning"),
    ("log_min_duration_statement", "-1"),
];

/// The server every helper of this process uses.
struct Server {
    /// URL of its maintenance database (`postgres`).
    url: String,
    /// The directory of a cluster kept between runs ([`kept_server_url`]).
    kept: Option<PathBuf>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Starts (once per process) or finds the test server; blocking.
fn server_blocking() -> &'static Server {
    let server = SERVER.get_or_init(|| match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Ok(Server { url, kept: None }),
        _ => start_local_server(),
    });
    match server {
        Ok(s) => s,
        Err(message) => panic!("{message}"),
    }
}

async fn server() -> &'static Server {
    if let Some(Ok(s)) = SERVER.get() {
        return s;
    }
    match tokio::task::spawn_blocking(server_blocking).await {
        Ok(s) => s,
        Err(e) => panic!("starting the test PostgreSQL server failed: {e}"),
    }
}

/// URL of the test server's maintenance database, starting the server if
/// needed.
pub async fn server_url() -> String {
    server().await.url.clone()
}

/// Starts (once per process) the server of a cluster kept in `dir` between
/// runs, and returns the URL of its maintenance database.
///
/// `dir` is created if needed; its `data` directory is initialised on first
/// use and reused afterwards (as root, `dir` is handed to the `postgres`
/// user). The server listens on a free port of `127.0.0.1` with the same
/// settings as the throwaway one, and a watchdog stops it with a fast
/// shutdown (leaving `dir`) once this process is gone. Every other helper of
/// this module then uses this server. Panics if the process already uses
/// another server, or if the cluster cannot be started.
pub async fn kept_server_url(dir: &Path) -> String {
    let dir = dir.to_path_buf();
    let server = tokio::task::spawn_blocking(move || {
        let server = SERVER.get_or_init(|| start_kept_server(&dir));
        match server {
            Ok(s) if s.kept.as_deref() == Some(dir.as_path()) => Ok(s.url.clone()),
            Ok(s) => Err(format!(
                "this process already uses the test server at {}, not a cluster kept in {}",
                s.url,
                dir.display()
            )),
            Err(message) => Err(message.clone()),
        }
    })
    .await;
    match server {
        Ok(Ok(url)) => url,
        Ok(Err(message)) => panic!("{message}"),
        Err(e) => panic!("starting the kept PostgreSQL server failed: {e}"),
    }
}

/// Makes sure the database `name` exists on the test server, migrated to the
/// current schema; returns whether it existed already. Unlike
/// [`fresh_database`] the name is the caller's, so with [`kept_server_url`]
/// the database and its data outlive the process.
pub async fn ensure_database(name: &str) -> bool {
    let url = server_url().await;
    let options = match PgConnectOptions::from_str(&url) {
        Ok(o) => o,
        Err(_) => panic!("{DATABASE_URL_ENV} is not a valid postgres:// URL"),
    };
    let mut conn = options
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server: {e}"));
    let existed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot list the test server's databases: {e}"));
    if !existed {
        conn.execute(format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\"")).as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create the database {name}: {e}"));
    }
    let _ = conn.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options_for(name))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the database {name}: {e}"));
    let store = PgStore::from_pool(pool);
    if let Err(e) = store.migrate().await {
        panic!("migrating the database {name} failed: {e}");
    }
    store.pool().close().await;
    existed
}

/// Drops the database `name` from the test server, if it exists (with
/// `FORCE`: open connections are ended).
pub async fn drop_database(name: &str) {
    admin_execute(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        name.replace('"', "\"\"")
    ))
    .await;
}

/// URL of the database `name` on the test server.
pub async fn database_url(name: &str) -> String {
    with_database(&server_url().await, name)
}

/// Connect options for `database` on the test server.
fn options_for(database: &str) -> PgConnectOptions {
    let url = &server_blocking().url;
    match PgConnectOptions::from_str(url) {
        Ok(o) => o.database(database).application_name("pandora-tests"),
        Err(_) => panic!("{DATABASE_URL_ENV} is not a valid postgres:// URL"),
    }
}

/// Runs one statement on the maintenance database.
async fn admin_execute(sql: &str) {
    let url = server_url().await;
    let options = match PgConnectOptions::from_str(&url) {
        Ok(o) => o,
        Err(_) => panic!("{DATABASE_URL_ENV} is not a valid postgres:// URL"),
    };
    let mut conn = options
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server: {e}"));
    conn.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("test server setup failed ({sql}): {e}"));
    let _ = conn.close().await;
}

/// The migrated template database (made once per process).
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("pandora_tpl_{}", Uuid::new_v4().simple());
            admin_execute(&format!("CREATE DATABASE {name}")).await;
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options_for(&name))
                .await
                .unwrap_or_else(|e| panic!("cannot connect to the template database: {e}"));
            let store = PgStore::from_pool(pool);
            if let Err(e) = store.migrate().await {
                panic!("migrating the template database failed: {e}");
            }
            // CREATE DATABASE … TEMPLATE needs the template to be unused.
            store.pool().close().await;
            name
        })
        .await
}

/// Name of a new, migrated, empty database on the test server.
pub async fn fresh_database() -> String {
    let template = template().await;
    let name = format!("pandora_test_{}", Uuid::new_v4().simple());
    admin_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}")).await;
    name
}

/// URL of a new, migrated, empty database on the test server.
pub async fn fresh_database_url() -> String {
    let name = fresh_database().await;
    with_database(&server_url().await, &name)
}

/// A store on a new, migrated, empty database (pool of [`TEST_POOL_SIZE`]).
pub async fn fresh_store() -> PgStore {
    let name = fresh_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(TEST_POOL_SIZE)
        .connect_with(options_for(&name))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    PgStore::from_pool(pool)
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &base[..path_start])
}

// ---------------------------------------------------------------------------
// The local throwaway server.
// ---------------------------------------------------------------------------

/// How to run the server binaries: directly, or as the `postgres` user.
#[derive(Clone)]
enum RunAs {
    Me,
    /// Through `runuser -u postgres --` or `setpriv`.
    Postgres {
        wrapper: Vec<String>,
    },
}

impl RunAs {
    fn command(&self, program: &Path) -> Command {
        match self {
            RunAs::Me => Command::new(program),
            RunAs::Postgres { wrapper } => {
                let mut cmd = Command::new(&wrapper[0]);
                cmd.args(&wrapper[1..]).arg(program);
                cmd
            }
        }
    }
}

impl RunAs {
    /// Who runs the test server: the `postgres` user when this process is
    /// root (PostgreSQL refuses to run as root), else this user.
    fn for_tests() -> Result<RunAs, String> {
        Ok(if is_root() {
            RunAs::Postgres {
                wrapper: postgres_user_wrapper()?,
            }
        } else {
            RunAs::Me
        })
    }

    /// Hands `dir` to the user the server runs as.
    fn own(&self, dir: &Path) -> Result<(), String> {
        if let RunAs::Postgres { .. } = self {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to the postgres user: {e}", dir.display()))?;
        }
        Ok(())
    }
}

/// Creates a cluster in `data` (superuser `postgres`, trust auth, UTF-8, no locale).
fn init_cluster(run_as: &RunAs, bindir: &Path, dir: &Path, data: &Path) -> Result<(), String> {
    let out = run_as
        .command(&bindir.join("initdb"))
        .current_dir(dir)
        .arg("-D")
        .arg(data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    check(&out, "initdb")
}

/// Why `pg_ctl start` failed (its stderr and the log's tail), and whether
/// the port was taken (worth another try on another port).
fn start_failure(out: &std::process::Output, dir: &Path) -> (String, bool) {
    let log = fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
    let error = format!(
        "pg_ctl start failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&log, 20)
    );
    let port_taken = log.contains("could not bind") || log.contains("already in use");
    (error, port_taken)
}

fn start_local_server() -> Result<Server, String> {
    let bindir = find_bindir().ok_or_else(|| NOT_FOUND.to_string())?;
    let run_as = RunAs::for_tests()?;
    let dir = tempfile::Builder::new()
        .prefix("pandora-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory for PostgreSQL: {e}"))?
        .keep();
    run_as.own(&dir)?;
    let data = dir.join("data");

    init_cluster(&run_as, &bindir, &dir, &data)?;

    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        write_settings(&data, &dir, port)?;
        let out = run_as
            .command(&bindir.join("pg_ctl"))
            .current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("postgres.log"))
            .args(["-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            let pid = postmaster_pid(&data)?;
            spawn_watchdog(pid, &dir);
            tracing::info!(port, dir = %dir.display(), "test PostgreSQL server started");
            return Ok(Server {
                url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                kept: None,
            });
        }
        let port_taken;
        (last_error, port_taken) = start_failure(&out, &dir);
        if !port_taken {
            break;
        }
    }
    let _ = fs::remove_dir_all(&dir);
    Err(last_error)
}

/// Starts the cluster kept in `dir` (initialising it on first use).
fn start_kept_server(dir: &Path) -> Result<Server, String> {
    let bindir = find_bindir().ok_or_else(|| NOT_FOUND.to_string())?;
    let run_as = RunAs::for_tests()?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    run_as.own(&dir)?;
    let data = dir.join("data");
    if !data.join("PG_VERSION").is_file() {
        init_cluster(&run_as, &bindir, &dir, &data)?;
        // The port is given at each start (`-p`), so the settings are written once.
        write_settings(&data, &dir, 5432)?;
    }
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let out = run_as
            .command(&bindir.join("pg_ctl"))
            .current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("postgres.log"))
            .arg("-o")
            .arg(format!("-p {port}"))
            .args(["-w", "-t", "600", "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            let pid = postmaster_pid(&data)?;
            spawn_kept_watchdog(pid);
            tracing::info!(port, dir = %dir.display(), "kept PostgreSQL server started");
            return Ok(Server {
                url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                kept: Some(dir),
            });
        }
        let port_taken;
        (last_error, port_taken) = start_failure(&out, &dir);
        if !port_taken {
            break;
        }
    }
    Err(last_error)
}

/// Stops a kept cluster's server with a fast shutdown (SIGINT: it
/// checkpoints, so the next start needs no recovery) once this process is
/// gone; leaves its directory.
fn spawn_kept_watchdog(postmaster: u32) {
    const SCRIPT: &str = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        kill -INT "$2" 2>/dev/null
    "#;
    let me = std::process::id().to_string();
    let pg = postmaster.to_string();
    let spawn = |program: &str, prefix: &[&str]| {
        Command::new(program)
            .args(prefix)
            .args(["-c", SCRIPT, "pandora-pg-watchdog", &me, &pg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    if spawn("setsid", &["sh"]).is_err() {
        if let Err(e) = spawn("sh", &[]) {
            tracing::warn!(error = %e, "cannot start the kept server's watchdog; \
                the server will outlive this process");
        }
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn find_bindir() -> Option<PathBuf> {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_binaries(&dir) {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_binaries(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_binaries(d))
}

fn id(args: &[&str]) -> Option<String> {
    let out = Command::new("id").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn is_root() -> bool {
    id(&["-u"]).as_deref() == Some("0")
}

fn postgres_ids() -> Result<(u32, u32), String> {
    let parse = |flag| id(&[flag, "postgres"]).and_then(|s| s.parse::<u32>().ok());
    match (parse("-u"), parse("-g")) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(
            "running as root, but there is no `postgres` system user to run the test \
                  server as (PostgreSQL refuses to run as root): create one, run the tests as \
                  another user, or set PANDORA_TEST_DATABASE_URL=postgres://…"
                .to_string(),
        ),
    }
}

/// The command prefix that runs a program as the `postgres` user.
fn postgres_user_wrapper() -> Result<Vec<String>, String> {
    let available = |program: &str| {
        Command::new(program)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let words = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    if available("runuser") {
        Ok(words(&["runuser", "-u", "postgres", "--"]))
    } else if available("setpriv") {
        let (uid, gid) = postgres_ids()?;
        Ok(vec![
            "setpriv".into(),
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
        ])
    } else {
        Err(
            "running as root, but neither runuser nor setpriv is available to run the test \
             server as the postgres user; set PANDORA_TEST_DATABASE_URL=postgres://…"
                .to_string(),
        )
    }
}

fn check(out: &Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Appends the server settings (later lines win, so a retry can change the port).
fn write_settings(data: &Path, socket_dir: &Path, port: u16) -> Result<(), String> {
    let mut conf = fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .map_err(|e| format!("cannot edit postgresql.conf: {e}"))?;
    let mut text = format!(
        "\n# pandora test server\nport = {port}\nunix_socket_directories = '{}'\n",
        socket_dir.display()
    );
    for (key, value) in SERVER_SETTINGS {
        text.push_str(&format!("{key} = {value}\n"));
    }
    conf.write_all(text.as_bytes())
        .map_err(|e| format!("cannot edit postgresql.conf: {e}"))
}

fn postmaster_pid(data: &Path) -> Result<u32, String> {
    let pid_file = fs::read_to_string(data.join("postmaster.pid"))
        .map_err(|e| format!("cannot read postmaster.pid: {e}"))?;
    pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| "postmaster.pid has no pid".to_string())
}

/// Stops the server (immediate shutdown) and removes `dir` once this
/// process is gone. Runs in its own session so that a Ctrl-C sent to the
/// test's process group does not kill it before it has cleaned up.
fn spawn_watchdog(postmaster: u32, dir: &Path) {
    const SCRIPT: &str = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        kill -QUIT "$2" 2>/dev/null
        i=0
        while kill -0 "$2" 2>/dev/null && [ "$i" -lt 30 ]; do sleep 1; i=$((i+1)); done
        rm -rf "$3"
    "#;
    let me = std::process::id().to_string();
    let pg = postmaster.to_string();
    let spawn = |program: &str, prefix: &[&str]| {
        Command::new(program)
            .args(prefix)
            .args(["-c", SCRIPT, "pandora-pg-watchdog", &me, &pg])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    if spawn("setsid", &["sh"]).is_err() {
        if let Err(e) = spawn("sh", &[]) {
            tracing::warn!(error = %e, "cannot start the test server's watchdog; \
                the server will outlive this process");
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/old", "new"),
            "postgres://u:p@h:5432/new"
        );
        assert_eq!(
            with_database("postgres://u@h/old?sslmode=disable", "new"),
            "postgres://u@h/new?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:1", "new"),
            "postgres://u@h:1/new"
        );
        assert_eq!(
            with_database("postgres:///old?host=/tmp", "new"),
            "postgres:///new?host=/tmp"
        );
    }
}
