//! Configuration: raw values from the command line and the environment
//! ([`RawConfig`]), validated into a [`Config`] — or a [`ConfigError`] that
//! names the variable and says what its value should look like. Pure, so that
//! every rule is unit-tested here.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use pandora_core::auth::SecretToken;
use pandora_core::oauth::{OAuthClient, MIN_STATE_SECRET_LEN};
use pandora_core::vault::{KeyConfigError, LocalVault};
use tracing_subscriber::EnvFilter;

/// Default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// Default SQLite file, relative to the working directory.
pub const DEFAULT_SQLITE_PATH: &str = "pandora.db";
/// Shortest accepted `PANDORA_ADMIN_TOKEN`.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;
/// The log filter without `RUST_LOG`: `info`, but sqlx's per-statement
/// notices only from `warn` (slow queries still show).
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";
/// Pandora's crates, whose logs `DEBUG=pandora:*` turns up.
const PANDORA_CRATES: &[&str] = &[
    "pandora",
    "pandora_core",
    "pandora_http",
    "pandora_server",
    "pandora_store_sqlite",
    "pandora_store_postgres",
    "pandora_connectors",
    "pandora_skills",
];

/// A configuration value as given, with the name it was given under
/// (`PANDORA_ADDR` or `--addr`), so errors name what the operator wrote.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Raw {
    /// The value.
    pub value: String,
    /// The variable or flag it came from.
    pub source: String,
}

impl Raw {
    /// A value from `source`.
    pub fn new(source: impl Into<String>, value: impl Into<String>) -> Self {
        Raw {
            value: value.into(),
            source: source.into(),
        }
    }
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets (DATABASE_URL holds a password).
        write!(f, "Raw({}=…)", self.source)
    }
}

/// Everything the environment and the command line said, unvalidated.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    /// `PANDORA_ADDR` / `--addr`.
    pub addr: Option<Raw>,
    /// `DATABASE_URL` / `--database-url`.
    pub database_url: Option<Raw>,
    /// `PANDORA_SQLITE_PATH` / `--sqlite-path`.
    pub sqlite_path: Option<Raw>,
    /// `PANDORA_ADMIN_TOKEN`.
    pub admin_token: Option<String>,
    /// `CREDENTIAL_ENCRYPTION_KEY`: the current master key (64 hex characters).
    pub encryption_key: Option<String>,
    /// `CREDENTIAL_ENCRYPTION_KEY_PREVIOUS`: older master keys, comma-separated.
    pub previous_encryption_keys: Option<String>,
    /// `RUST_LOG`.
    pub rust_log: Option<String>,
    /// `DEBUG`.
    pub debug: Option<String>,
    /// `PANDORA_WORKER_CONCURRENCY`: jobs a process runs at once.
    pub worker_concurrency: Option<String>,
    /// `PANDORA_JOB_LEASE_SECONDS`: how long a claimed job is held without renewal.
    pub job_lease_seconds: Option<String>,
    /// `PANDORA_SCHEDULER`: `on` or `off`.
    pub scheduler: Option<String>,
    /// `PANDORA_SYNC_INTERVAL_MINUTES`: the sync interval of connections that set none.
    pub sync_interval_minutes: Option<String>,
    /// The OAuth applications and vendor hosts.
    pub oauth: RawOAuth,
}

/// The OAuth variables, unvalidated.
#[derive(Clone, Default)]
pub struct RawOAuth {
    /// `SESSION_SECRET`: signs the OAuth `state`.
    pub session_secret: Option<String>,
    /// `SALESFORCE_CLIENT_ID`.
    pub salesforce_client_id: Option<String>,
    /// `SALESFORCE_CLIENT_SECRET`.
    pub salesforce_client_secret: Option<String>,
    /// `SALESFORCE_CALLBACK_URL`.
    pub salesforce_callback_url: Option<String>,
    /// `HUBSPOT_CLIENT_ID`.
    pub hubspot_client_id: Option<String>,
    /// `HUBSPOT_CLIENT_SECRET`.
    pub hubspot_client_secret: Option<String>,
    /// `HUBSPOT_CALLBACK_URL`.
    pub hubspot_callback_url: Option<String>,
    /// `SALESFORCE_LOGIN_URL`: the login host (sandbox, My Domain, simulator).
    pub salesforce_login_url: Option<String>,
    /// `HUBSPOT_OAUTH_BASE_URL`: the host of HubSpot's consent page.
    pub hubspot_oauth_base_url: Option<String>,
    /// `HUBSPOT_API_BASE_URL`: HubSpot's API (and token endpoint) host.
    pub hubspot_api_base_url: Option<String>,
    /// `PANDORA_OAUTH_SUCCESS_URL`: where the browser goes after a flow.
    pub success_url: Option<String>,
}

impl fmt::Debug for RawOAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets among them: say only which are set.
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        f.debug_struct("RawOAuth")
            .field("session_secret", &set(&self.session_secret))
            .field("salesforce_client_id", &set(&self.salesforce_client_id))
            .field(
                "salesforce_client_secret",
                &set(&self.salesforce_client_secret),
            )
            .field("hubspot_client_id", &set(&self.hubspot_client_id))
            .field("hubspot_client_secret", &set(&self.hubspot_client_secret))
            .finish_non_exhaustive()
    }
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server, by URL (holds the password: never print it).
    Postgres(String),
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Database::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&postgres_target(url))
                .finish(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Where the data lives.
    pub database: Database,
    /// The configured admin token; `None`: generate one at first start.
    pub admin_token: Option<SecretToken>,
    /// The log filter (`EnvFilter` syntax), already checked.
    pub log_filter: String,
    /// Whether the operator chose the filter (`RUST_LOG` or `DEBUG`).
    pub log_explicit: bool,
    /// The credential vault's key ring: the current key (if any) seals, the
    /// previous ones only open. Its `Debug` shows key ids, never keys.
    pub vault: LocalVault,
    /// How this process works the job queue.
    pub jobs: JobsConfig,
    /// The OAuth applications, the state secret and the vendor hosts.
    pub oauth: OAuthConfig,
}

/// The OAuth part of the configuration. `Debug` hides every secret.
#[derive(Debug, Clone, Default)]
pub struct OAuthConfig {
    /// `SESSION_SECRET` (set whenever an application is).
    pub session_secret: Option<SecretToken>,
    /// The Salesforce application (`SALESFORCE_CLIENT_ID`, `…_SECRET`, `…_CALLBACK_URL`).
    pub salesforce: Option<OAuthClient>,
    /// The HubSpot application (`HUBSPOT_CLIENT_ID`, `…_SECRET`, `…_CALLBACK_URL`).
    pub hubspot: Option<OAuthClient>,
    /// `SALESFORCE_LOGIN_URL`, without a trailing `/` (`None`: Salesforce's).
    pub salesforce_login_url: Option<String>,
    /// `HUBSPOT_OAUTH_BASE_URL`, without a trailing `/` (`None`: HubSpot's).
    pub hubspot_oauth_base_url: Option<String>,
    /// `HUBSPOT_API_BASE_URL`, without a trailing `/` (`None`: HubSpot's).
    pub hubspot_api_base_url: Option<String>,
    /// `PANDORA_OAUTH_SUCCESS_URL`.
    pub success_url: Option<String>,
}

/// How a process works the job queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// Jobs run at once (`serve`: 0 means the process only serves the API).
    pub concurrency: usize,
    /// How long a claimed job is held without renewal.
    pub lease: Duration,
    /// Whether this process enqueues the periodic syncs.
    pub scheduler: bool,
    /// The sync interval of connections that set none.
    pub default_sync_interval: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            concurrency: 2,
            lease: Duration::from_secs(60),
            scheduler: true,
            default_sync_interval: Duration::from_secs(3600),
        }
    }
}

/// A configuration value that cannot be used. Each message is one line naming
/// the variable and what it should look like, and never echoes a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The listen address does not parse.
    #[error("{var}={value:?} is not a socket address; expected host:port such as {DEFAULT_ADDR}")]
    Addr {
        /// Variable or flag.
        var: String,
        /// The value given.
        value: String,
    },
    /// The database URL is not a PostgreSQL URL.
    #[error("{var} must start with postgres:// or postgresql:// (such as postgres://user:password@localhost:5432/pandora); leave it unset to use SQLite")]
    DatabaseUrl {
        /// Variable or flag.
        var: String,
    },
    /// The SQLite path is unusable.
    #[error("{var}={value:?} is not a usable file path; expected a file such as {DEFAULT_SQLITE_PATH} or /var/lib/pandora/pandora.db")]
    SqlitePath {
        /// Variable or flag.
        var: String,
        /// The value given.
        value: String,
    },
    /// The admin token is too short or has characters a header cannot carry.
    #[error("PANDORA_ADMIN_TOKEN {problem}; expected at least {MIN_ADMIN_TOKEN_LEN} printable characters without spaces, such as the output of `openssl rand -hex 32`")]
    AdminToken {
        /// What is wrong (never the token).
        problem: String,
    },
    /// `RUST_LOG` is not a valid filter.
    #[error("RUST_LOG={value:?} is not a valid log filter ({reason}); expected a level such as info or directives such as info,pandora_http=debug")]
    LogFilter {
        /// The value given.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A number or switch of the job queue is out of range.
    #[error("{var}={value:?} is not valid; expected {expected}")]
    Jobs {
        /// The variable.
        var: &'static str,
        /// The value given.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// A master key of the credential vault is malformed (names the variable,
    /// never the key, and points to `pandora keygen`).
    #[error("{0}")]
    EncryptionKey(#[from] KeyConfigError),
    /// An OAuth variable is missing or malformed (never echoes a secret).
    #[error("{var} {problem}")]
    OAuth {
        /// The variable.
        var: String,
        /// What is wrong and what it should look like.
        problem: String,
    },
}

/// `None` for unset or blank values: `VAR=` in a `.env` means unset.
fn present(raw: &Option<Raw>) -> Option<&Raw> {
    raw.as_ref().filter(|r| !r.value.trim().is_empty())
}

fn parse_addr(raw: &Raw) -> Result<SocketAddr, ConfigError> {
    let value = raw.value.trim();
    let bad = || ConfigError::Addr {
        var: raw.source.clone(),
        value: raw.value.clone(),
    };
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // host:port with a host name (e.g. localhost:3000): resolve it.
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(bad)
}

fn parse_database(config: &RawConfig) -> Result<Database, ConfigError> {
    if let Some(url) = present(&config.database_url) {
        let value = url.value.trim();
        let lower = value.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("postgres://")
            .or_else(|| lower.strip_prefix("postgresql://"));
        return match rest {
            Some(_) => Ok(Database::Postgres(value.to_string())),
            None => Err(ConfigError::DatabaseUrl {
                var: url.source.clone(),
            }),
        };
    }
    match present(&config.sqlite_path) {
        None => Ok(Database::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))),
        Some(p) => {
            let path = PathBuf::from(p.value.trim());
            if p.value.contains('\0') || path.file_name().is_none() || p.value.ends_with('/') {
                return Err(ConfigError::SqlitePath {
                    var: p.source.clone(),
                    value: p.value.clone(),
                });
            }
            Ok(Database::Sqlite(path))
        }
    }
}

fn parse_admin_token(token: Option<&str>) -> Result<Option<SecretToken>, ConfigError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let len = token.chars().count();
    if len < MIN_ADMIN_TOKEN_LEN {
        return Err(ConfigError::AdminToken {
            problem: format!("is {len} characters long"),
        });
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ConfigError::AdminToken {
            problem: "contains spaces, control or non-ASCII characters".into(),
        });
    }
    Ok(Some(SecretToken::from_string(token.to_string())))
}

/// The log filter: `RUST_LOG` wins; else `DEBUG=pandora…` turns on `debug`
/// for Pandora's crates; else `info`.
pub fn log_filter(rust_log: Option<&str>, debug: Option<&str>) -> Result<String, ConfigError> {
    if let Some(value) = rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        return match EnvFilter::builder().parse(value) {
            Ok(_) => Ok(value.to_string()),
            Err(e) => Err(ConfigError::LogFilter {
                value: value.to_string(),
                reason: e.to_string(),
            }),
        };
    }
    if debug.is_some_and(|d| d.trim().starts_with("pandora")) {
        let mut filter = String::from(DEFAULT_LOG_FILTER);
        for krate in PANDORA_CRATES {
            filter.push_str(&format!(",{krate}=debug"));
        }
        return Ok(filter);
    }
    Ok(DEFAULT_LOG_FILTER.to_string())
}

/// A whole number in `range` from `var`, or `default` when unset or blank.
fn parse_number(
    var: &'static str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    match v.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::Jobs {
            var,
            value: v.to_string(),
            expected,
        }),
    }
}

fn parse_jobs(raw: &RawConfig) -> Result<JobsConfig, ConfigError> {
    let concurrency = parse_number(
        "PANDORA_WORKER_CONCURRENCY",
        raw.worker_concurrency.as_deref(),
        0..=64,
        "a whole number of jobs from 0 to 64 (0: serve only the API)",
        2,
    )?;
    let lease = parse_number(
        "PANDORA_JOB_LEASE_SECONDS",
        raw.job_lease_seconds.as_deref(),
        3..=3600,
        "a whole number of seconds from 3 to 3600",
        60,
    )?;
    let scheduler = match raw.scheduler.as_deref().map(str::trim) {
        None | Some("") => true,
        Some(v) if ["on", "true", "1"].contains(&v.to_ascii_lowercase().as_str()) => true,
        Some(v) if ["off", "false", "0"].contains(&v.to_ascii_lowercase().as_str()) => false,
        Some(v) => {
            return Err(ConfigError::Jobs {
                var: "PANDORA_SCHEDULER",
                value: v.to_string(),
                expected: "on or off",
            })
        }
    };
    let interval = parse_number(
        "PANDORA_SYNC_INTERVAL_MINUTES",
        raw.sync_interval_minutes.as_deref(),
        1..=pandora_core::scheduler::MAX_SYNC_INTERVAL_MINUTES,
        "a whole number of minutes from 1 to 10080 (a week)",
        60,
    )?;
    Ok(JobsConfig {
        concurrency: usize::try_from(concurrency).unwrap_or(2),
        lease: Duration::from_secs(lease),
        scheduler,
        default_sync_interval: Duration::from_secs(interval * 60),
    })
}

/// A set, non-blank value.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Checks that `value` is an absolute `http(s)://host…` URL without spaces;
/// `base` also refuses a query or fragment and drops a trailing `/`.
fn http_url(var: &str, value: &str, example: &str, base: bool) -> Result<String, ConfigError> {
    let bad = || ConfigError::OAuth {
        var: var.to_string(),
        problem: format!("is not an absolute http(s) URL ({value:?}); expected e.g. {example}"),
    };
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_name = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host_name.is_empty()
        || host_name.starts_with(':')
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    if base && (value.contains('?') || value.contains('#')) {
        return Err(ConfigError::OAuth {
            var: var.to_string(),
            problem: format!(
                "must be a base URL without ? or # ({value:?}); expected e.g. {example}"
            ),
        });
    }
    Ok(if base {
        value.trim_end_matches('/').to_string()
    } else {
        value.to_string()
    })
}

/// One vendor's application: all three variables, or none.
fn oauth_app(
    vendor: &str,
    path: &str,
    id: &Option<String>,
    secret: &Option<String>,
    callback: &Option<String>,
) -> Result<Option<OAuthClient>, ConfigError> {
    let names = [
        format!("{vendor}_CLIENT_ID"),
        format!("{vendor}_CLIENT_SECRET"),
        format!("{vendor}_CALLBACK_URL"),
    ];
    let values = [given(id), given(secret), given(callback)];
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    if let Some(missing) = values.iter().position(Option::is_none) {
        let set: Vec<&str> = names
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n.as_str())
            .collect();
        return Err(ConfigError::OAuth {
            var: names[missing].clone(),
            problem: format!(
                "is not set, but {} is; set all three of {}, {} and {} (or none)",
                set.join(" and "),
                names[0],
                names[1],
                names[2]
            ),
        });
    }
    let [Some(id), Some(secret), Some(callback)] = values else {
        return Ok(None);
    };
    let redirect_uri = http_url(
        &names[2],
        callback,
        &format!("http://localhost:3000/api/auth/{path}/callback"),
        false,
    )?;
    Ok(Some(OAuthClient {
        client_id: id.to_string(),
        client_secret: SecretToken::from_string(secret.to_string()),
        redirect_uri,
    }))
}

fn parse_oauth(raw: &RawOAuth) -> Result<OAuthConfig, ConfigError> {
    let salesforce = oauth_app(
        "SALESFORCE",
        "salesforce",
        &raw.salesforce_client_id,
        &raw.salesforce_client_secret,
        &raw.salesforce_callback_url,
    )?;
    let hubspot = oauth_app(
        "HUBSPOT",
        "hubspot",
        &raw.hubspot_client_id,
        &raw.hubspot_client_secret,
        &raw.hubspot_callback_url,
    )?;
    let expected = format!(
        "expected at least {MIN_STATE_SECRET_LEN} characters, such as the output of `openssl rand -hex 32`"
    );
    let session_secret = match given(&raw.session_secret) {
        Some(secret) if secret.chars().count() < MIN_STATE_SECRET_LEN => {
            return Err(ConfigError::OAuth {
                var: "SESSION_SECRET".into(),
                problem: format!("is {} characters long; {expected}", secret.chars().count()),
            })
        }
        Some(secret) => Some(SecretToken::from_string(secret.to_string())),
        None => None,
    };
    if session_secret.is_none() {
        let configured: Vec<&str> = [
            (salesforce.is_some(), "SALESFORCE_CLIENT_ID"),
            (hubspot.is_some(), "HUBSPOT_CLIENT_ID"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, v)| *v)
        .collect();
        if !configured.is_empty() {
            return Err(ConfigError::OAuth {
                var: "SESSION_SECRET".into(),
                problem: format!(
                    "is required to sign the OAuth state once an OAuth application is configured ({}); {expected}",
                    configured.join(", ")
                ),
            });
        }
    }
    let base = |var: &str, value: &Option<String>, example: &str| {
        given(value)
            .map(|v| http_url(var, v, example, true))
            .transpose()
    };
    Ok(OAuthConfig {
        session_secret,
        salesforce,
        hubspot,
        salesforce_login_url: base(
            "SALESFORCE_LOGIN_URL",
            &raw.salesforce_login_url,
            "https://test.salesforce.com",
        )?,
        hubspot_oauth_base_url: base(
            "HUBSPOT_OAUTH_BASE_URL",
            &raw.hubspot_oauth_base_url,
            "https://app.hubspot.com",
        )?,
        hubspot_api_base_url: base(
            "HUBSPOT_API_BASE_URL",
            &raw.hubspot_api_base_url,
            "https://api.hubapi.com",
        )?,
        success_url: given(&raw.success_url)
            .map(|v| {
                http_url(
                    "PANDORA_OAUTH_SUCCESS_URL",
                    v,
                    "https://app.example.com/settings/integrations",
                    false,
                )
            })
            .transpose()?,
    })
}

impl Config {
    /// Validates `raw`, reporting the first unusable value.
    pub fn from_raw(raw: &RawConfig) -> Result<Config, ConfigError> {
        let addr = match present(&raw.addr) {
            Some(a) => parse_addr(a)?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };
        Ok(Config {
            addr,
            database: parse_database(raw)?,
            admin_token: parse_admin_token(raw.admin_token.as_deref())?,
            vault: LocalVault::from_values(
                raw.encryption_key.as_deref(),
                raw.previous_encryption_keys.as_deref(),
            )?,
            log_filter: log_filter(raw.rust_log.as_deref(), raw.debug.as_deref())?,
            jobs: parse_jobs(raw)?,
            oauth: parse_oauth(&raw.oauth)?,
            log_explicit: [&raw.rust_log, &raw.debug]
                .iter()
                .any(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty())),
        })
    }
}

/// `host:port` of a PostgreSQL URL, without user or password (for messages).
pub fn postgres_target(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port {
        "" => "the default PostgreSQL server".to_string(),
        hp if hp.starts_with('[') && hp.ends_with(']') => format!("{hp}:5432"),
        hp if hp.starts_with('[') || hp.contains(':') => hp.to_string(),
        hp => format!("{hp}:5432"),
    }
}

/// The password of a PostgreSQL URL, if it has one (to scrub it from messages).
pub fn postgres_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(f: impl FnOnce(&mut RawConfig)) -> RawConfig {
        let mut r = RawConfig::default();
        f(&mut r);
        r
    }

    #[test]
    fn defaults() {
        let c = Config::from_raw(&RawConfig::default()).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.database, Database::Sqlite("pandora.db".into()));
        assert!(c.admin_token.is_none());
        assert_eq!(c.log_filter, DEFAULT_LOG_FILTER);
        assert!(!c.log_explicit);
        let c = Config::from_raw(&raw(|r| r.debug = Some("pandora:*".into()))).unwrap();
        assert!(c.log_explicit);
    }

    #[test]
    fn bad_addr_names_the_variable_in_one_line() {
        for value in [
            "abc",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":3000",
            "localhost:port",
        ] {
            let e = Config::from_raw(&raw(|r| r.addr = Some(Raw::new("PANDORA_ADDR", value))))
                .unwrap_err();
            assert_eq!(
                e,
                ConfigError::Addr {
                    var: "PANDORA_ADDR".into(),
                    value: value.into()
                }
            );
        }
        let e =
            Config::from_raw(&raw(|r| r.addr = Some(Raw::new("PANDORA_ADDR", "abc")))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PANDORA_ADDR=\"abc\" is not a socket address; expected host:port such as 127.0.0.1:3000"
        );
        let e = Config::from_raw(&raw(|r| r.addr = Some(Raw::new("--addr", "x")))).unwrap_err();
        assert!(e.to_string().starts_with("--addr=\"x\""));
    }

    #[test]
    fn addresses_parse() {
        for (value, want) in [
            ("0.0.0.0:8080", "0.0.0.0:8080"),
            ("[::1]:3000", "[::1]:3000"),
            (" 127.0.0.1:0 ", "127.0.0.1:0"),
        ] {
            let c =
                Config::from_raw(&raw(|r| r.addr = Some(Raw::new("PANDORA_ADDR", value)))).unwrap();
            assert_eq!(c.addr.to_string(), want);
        }
        let c = Config::from_raw(&raw(|r| {
            r.addr = Some(Raw::new("PANDORA_ADDR", "localhost:3000"))
        }))
        .unwrap();
        assert_eq!(c.addr.port(), 3000);
        // Blank means unset.
        let c = Config::from_raw(&raw(|r| r.addr = Some(Raw::new("PANDORA_ADDR", "")))).unwrap();
        assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
    }

    #[test]
    fn database_selection() {
        let c = Config::from_raw(&raw(|r| {
            r.database_url = Some(Raw::new("DATABASE_URL", "postgres://u:p@db:5432/x"));
            r.sqlite_path = Some(Raw::new("PANDORA_SQLITE_PATH", "ignored.db"));
        }))
        .unwrap();
        assert_eq!(
            c.database,
            Database::Postgres("postgres://u:p@db:5432/x".into())
        );
        assert!(
            !format!("{c:?}").contains(":p@"),
            "Debug leaks the password"
        );
        let c = Config::from_raw(&raw(|r| {
            r.database_url = Some(Raw::new("DATABASE_URL", "postgresql://db/x"))
        }))
        .unwrap();
        assert!(matches!(c.database, Database::Postgres(_)));
        let c = Config::from_raw(&raw(|r| {
            r.sqlite_path = Some(Raw::new("PANDORA_SQLITE_PATH", "/tmp/x/p.db"))
        }))
        .unwrap();
        assert_eq!(c.database, Database::Sqlite("/tmp/x/p.db".into()));
    }

    #[test]
    fn bad_database_values() {
        let e = Config::from_raw(&raw(|r| {
            r.database_url = Some(Raw::new("DATABASE_URL", "mysql://root:hunter2@db/x"))
        }))
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("DATABASE_URL must start with postgres://"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
        let e = Config::from_raw(&raw(|r| {
            r.sqlite_path = Some(Raw::new("PANDORA_SQLITE_PATH", "/tmp/dir/"))
        }))
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("PANDORA_SQLITE_PATH=\"/tmp/dir/\""));
    }

    #[test]
    fn admin_token_rules() {
        let e =
            Config::from_raw(&raw(|r| r.admin_token = Some("short-secret".into()))).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("PANDORA_ADMIN_TOKEN is 12 characters long"),
            "{msg}"
        );
        assert!(!msg.contains("short-secret"));
        let spaced = "a".repeat(20) + " " + &"b".repeat(20);
        assert!(Config::from_raw(&raw(|r| r.admin_token = Some(spaced))).is_err());
        let good = "x".repeat(32);
        let c = Config::from_raw(&raw(|r| r.admin_token = Some(good.clone()))).unwrap();
        assert_eq!(c.admin_token.unwrap().expose(), good);
        let c = Config::from_raw(&raw(|r| r.admin_token = Some(String::new()))).unwrap();
        assert!(c.admin_token.is_none());
    }

    const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn keys(current: Option<&str>, previous: Option<&str>) -> Result<Config, ConfigError> {
        Config::from_raw(&raw(|r| {
            r.encryption_key = current.map(str::to_string);
            r.previous_encryption_keys = previous.map(str::to_string);
        }))
    }

    fn id_of(hex: &str) -> String {
        pandora_core::vault::MasterKey::from_hex(hex)
            .unwrap()
            .id()
            .to_string()
    }

    #[test]
    fn a_missing_encryption_key_is_allowed() {
        for current in [None, Some(""), Some("  ")] {
            let c = keys(current, None).unwrap();
            assert!(!c.vault.has_key());
            assert!(c.vault.key_ids().is_empty());
        }
    }

    #[test]
    fn encryption_keys_form_a_ring_current_first() {
        let c = keys(Some(KEY_A), None).unwrap();
        assert!(c.vault.has_key());
        let ids: Vec<String> = c.vault.key_ids().iter().map(ToString::to_string).collect();
        assert_eq!(ids, [id_of(KEY_A)]);

        // Comma-separated, spaces and empty entries ignored, upper case accepted.
        let previous = format!(" {KEY_B} ,, {} ,", KEY_A.to_uppercase());
        let c = keys(Some(&format!("{KEY_A}\n")), Some(&previous)).unwrap();
        let ids: Vec<String> = c.vault.key_ids().iter().map(ToString::to_string).collect();
        assert_eq!(ids, [id_of(KEY_A), id_of(KEY_B), id_of(KEY_A)]);
    }

    #[test]
    fn a_short_encryption_key_is_one_line_naming_the_variable_and_keygen() {
        let e = keys(Some(&KEY_A[..63]), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CREDENTIAL_ENCRYPTION_KEY must be exactly 64 hexadecimal characters (32 bytes), \
             got 63 characters; generate a key with `pandora keygen`"
        );
        let long = format!("{KEY_A}00");
        let msg = keys(Some(&long), None).unwrap_err().to_string();
        assert!(msg.contains("got 66 characters"), "{msg}");
        assert!(!msg.contains(KEY_A), "{msg}");
    }

    #[test]
    fn a_non_hex_encryption_key_says_so_without_echoing_it() {
        let bad = format!("{}zz", &KEY_A[..62]);
        let msg = keys(Some(&bad), None).unwrap_err().to_string();
        assert!(
            msg.starts_with("CREDENTIAL_ENCRYPTION_KEY must be hexadecimal"),
            "{msg}"
        );
        assert!(msg.contains("non-hex character at position 63"), "{msg}");
        assert!(
            msg.ends_with("generate a key with `pandora keygen`"),
            "{msg}"
        );
        assert!(!msg.contains(&bad[..32]), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn a_bad_previous_key_names_its_variable_and_entry() {
        let previous = format!("{KEY_B},{}", &KEY_A[..10]);
        let msg = keys(Some(KEY_A), Some(&previous)).unwrap_err().to_string();
        assert!(
            msg.starts_with(
                "CREDENTIAL_ENCRYPTION_KEY_PREVIOUS entry 2 must be exactly 64 hexadecimal characters"
            ),
            "{msg}"
        );
        assert!(!msg.contains(KEY_B) && !msg.contains(&KEY_A[..10]), "{msg}");
    }

    #[test]
    fn debug_shows_key_ids_never_keys() {
        let c = keys(Some(KEY_A), Some(KEY_B)).unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains(&id_of(KEY_A)), "{dbg}");
        assert!(dbg.contains(&id_of(KEY_B)), "{dbg}");
        for key in [KEY_A, KEY_B] {
            assert!(!dbg.contains(&key[..16]), "{dbg}");
        }
    }

    #[test]
    fn log_filters() {
        assert_eq!(log_filter(None, None).unwrap(), "info,sqlx=warn");
        assert_eq!(log_filter(Some("warn"), Some("pandora:*")).unwrap(), "warn");
        let debug = log_filter(None, Some("pandora:*")).unwrap();
        assert!(debug.contains("pandora_http=debug"), "{debug}");
        assert!(debug.starts_with("info,sqlx=warn,"));
        assert!(log_filter(None, Some("pandora"))
            .unwrap()
            .contains("=debug"));
        assert_eq!(
            log_filter(None, Some("express:*")).unwrap(),
            DEFAULT_LOG_FILTER
        );
        assert_eq!(log_filter(Some(" "), None).unwrap(), DEFAULT_LOG_FILTER);
        let e = log_filter(Some("pandora_http=loud"), None).unwrap_err();
        assert!(e.to_string().starts_with("RUST_LOG=\"pandora_http=loud\""));
        // The filter built for DEBUG is itself valid.
        assert!(EnvFilter::builder().parse(&debug).is_ok());
    }

    #[test]
    fn postgres_targets_hide_credentials() {
        let cases = [
            (
                "postgres://u:secret@db.example:6543/x?sslmode=require",
                "db.example:6543",
            ),
            ("postgresql://u@db/x", "db:5432"),
            ("postgres://[::1]:5433/x", "[::1]:5433"),
            ("postgres://[::1]/x", "[::1]:5432"),
            (
                "postgres:///x?host=/run/postgresql",
                "the default PostgreSQL server",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(postgres_target(url), want, "{url}");
        }
        assert_eq!(postgres_password("postgres://u:p%40ss@h/x"), Some("p%40ss"));
        assert_eq!(postgres_password("postgres://u@h/x"), None);
    }

    #[test]
    fn job_settings_are_validated_with_one_line_naming_the_variable() {
        let c = Config::from_raw(&RawConfig::default()).unwrap();
        assert_eq!(c.jobs, JobsConfig::default());
        let c = Config::from_raw(&raw(|r| {
            r.worker_concurrency = Some("0".into());
            r.job_lease_seconds = Some("5".into());
            r.scheduler = Some("off".into());
            r.sync_interval_minutes = Some("15".into());
        }))
        .unwrap();
        assert_eq!(c.jobs.concurrency, 0);
        assert_eq!(c.jobs.lease, Duration::from_secs(5));
        assert!(!c.jobs.scheduler);
        assert_eq!(c.jobs.default_sync_interval, Duration::from_secs(900));
        type Case = (&'static str, fn(&mut RawConfig));
        let cases: [Case; 5] = [
            ("PANDORA_WORKER_CONCURRENCY", |r| {
                r.worker_concurrency = Some("-1".into())
            }),
            ("PANDORA_WORKER_CONCURRENCY", |r| {
                r.worker_concurrency = Some("65".into())
            }),
            ("PANDORA_JOB_LEASE_SECONDS", |r| {
                r.job_lease_seconds = Some("1".into())
            }),
            ("PANDORA_SCHEDULER", |r| {
                r.scheduler = Some("sometimes".into())
            }),
            ("PANDORA_SYNC_INTERVAL_MINUTES", |r| {
                r.sync_interval_minutes = Some("0".into())
            }),
        ];
        for (var, set) in cases {
            let err = Config::from_raw(&raw(set)).unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    /// A variable and how to set it wrong.
    type OAuthCase = (&'static str, fn(&mut RawOAuth));

    fn oauth(f: impl FnOnce(&mut RawOAuth)) -> Result<Config, ConfigError> {
        Config::from_raw(&raw(|r| f(&mut r.oauth)))
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn hubspot(r: &mut RawOAuth) {
        r.hubspot_client_id = Some("hs-id".into());
        r.hubspot_client_secret = Some("hs-client-secret".into());
        r.hubspot_callback_url = Some("http://localhost:3000/api/auth/hubspot/callback".into());
    }

    #[test]
    fn oauth_is_off_by_default() {
        let c = Config::from_raw(&RawConfig::default()).unwrap();
        assert!(c.oauth.hubspot.is_none() && c.oauth.salesforce.is_none());
        assert!(c.oauth.session_secret.is_none());
        assert!(c.oauth.success_url.is_none());
        // Blank means unset.
        let c = oauth(|r| {
            r.hubspot_client_id = Some(" ".into());
            r.session_secret = Some(String::new());
        })
        .unwrap();
        assert!(c.oauth.hubspot.is_none());
    }

    #[test]
    fn an_oauth_application_takes_all_three_variables_and_the_session_secret() {
        let c = oauth(|r| {
            hubspot(r);
            r.session_secret = Some(SECRET.into());
            r.salesforce_client_id = Some("sf-id".into());
            r.salesforce_client_secret = Some("sf-client-secret".into());
            r.salesforce_callback_url =
                Some("https://pandora.example.com/api/auth/salesforce/callback".into());
            r.success_url = Some("https://app.example.com/done".into());
        })
        .unwrap();
        let hs = c.oauth.hubspot.as_ref().unwrap();
        assert_eq!(hs.client_id, "hs-id");
        assert_eq!(hs.client_secret.expose(), "hs-client-secret");
        assert_eq!(
            hs.redirect_uri,
            "http://localhost:3000/api/auth/hubspot/callback"
        );
        let sf = c.oauth.salesforce.as_ref().unwrap();
        assert_eq!(
            sf.redirect_uri,
            "https://pandora.example.com/api/auth/salesforce/callback"
        );
        assert_eq!(c.oauth.session_secret.as_ref().unwrap().expose(), SECRET);
        assert_eq!(
            c.oauth.success_url.as_deref(),
            Some("https://app.example.com/done")
        );
        let dbg = format!("{c:?}");
        for secret in ["hs-client-secret", "sf-client-secret", SECRET] {
            assert!(!dbg.contains(secret), "Debug shows {secret}: {dbg}");
        }
    }

    #[test]
    fn a_partial_oauth_application_names_the_missing_variable_in_one_line() {
        let cases: [OAuthCase; 4] = [
            ("HUBSPOT_CLIENT_SECRET", |r| {
                hubspot(r);
                r.hubspot_client_secret = None;
            }),
            ("HUBSPOT_CALLBACK_URL", |r| {
                hubspot(r);
                r.hubspot_callback_url = Some("  ".into());
            }),
            ("HUBSPOT_CLIENT_ID", |r| {
                hubspot(r);
                r.hubspot_client_id = None;
            }),
            ("SALESFORCE_CLIENT_SECRET", |r| {
                r.salesforce_client_id = Some("sf-id".into());
            }),
        ];
        for (var, set) in cases {
            let msg = oauth(|r| {
                r.session_secret = Some(SECRET.into());
                set(r);
            })
            .unwrap_err()
            .to_string();
            assert!(msg.starts_with(&format!("{var} is not set, but ")), "{msg}");
            assert!(
                !msg.contains('\n') && !msg.contains("hs-client-secret"),
                "{msg}"
            );
        }
    }

    #[test]
    fn the_session_secret_is_required_with_an_application_and_long_enough() {
        let msg = oauth(hubspot).unwrap_err().to_string();
        assert!(msg.starts_with("SESSION_SECRET is required"), "{msg}");
        assert!(msg.contains("HUBSPOT_CLIENT_ID"), "{msg}");
        let msg = oauth(|r| {
            hubspot(r);
            r.session_secret = Some("short-secret".into());
        })
        .unwrap_err()
        .to_string();
        assert!(
            msg.starts_with("SESSION_SECRET is 12 characters long; expected at least 32"),
            "{msg}"
        );
        assert!(!msg.contains("short-secret"), "{msg}");
        // Without an application, a set secret is still checked, and none is needed.
        assert!(oauth(|r| r.session_secret = Some("short".into())).is_err());
        assert!(oauth(|r| r.session_secret = Some(SECRET.into())).is_ok());
    }

    #[test]
    fn callback_and_host_urls_must_be_absolute_http_urls() {
        for bad in [
            "localhost:3000/api/auth/hubspot/callback",
            "/api/auth/hubspot/callback",
            "ftp://x/cb",
            "https://",
            "https:///cb",
            "http://exa mple.com/cb",
        ] {
            let msg = oauth(|r| {
                hubspot(r);
                r.session_secret = Some(SECRET.into());
                r.hubspot_callback_url = Some(bad.into());
            })
            .unwrap_err()
            .to_string();
            assert!(
                msg.starts_with("HUBSPOT_CALLBACK_URL is not an absolute http(s) URL"),
                "{bad}: {msg}"
            );
            assert!(msg.contains("http://localhost:3000/api/auth/hubspot/callback"));
        }
        let c = oauth(|r| {
            r.salesforce_login_url = Some("https://test.salesforce.com/".into());
            r.hubspot_oauth_base_url = Some("http://127.0.0.1:9000".into());
            r.hubspot_api_base_url = Some("http://127.0.0.1:9001/".into());
        })
        .unwrap();
        assert_eq!(
            c.oauth.salesforce_login_url.as_deref(),
            Some("https://test.salesforce.com")
        );
        assert_eq!(
            c.oauth.hubspot_oauth_base_url.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            c.oauth.hubspot_api_base_url.as_deref(),
            Some("http://127.0.0.1:9001")
        );
        let cases: [OAuthCase; 4] = [
            ("SALESFORCE_LOGIN_URL", |r| {
                r.salesforce_login_url = Some("test.salesforce.com".into())
            }),
            ("HUBSPOT_OAUTH_BASE_URL", |r| {
                r.hubspot_oauth_base_url = Some("https://app.hubspot.com?x=1".into())
            }),
            ("HUBSPOT_API_BASE_URL", |r| {
                r.hubspot_api_base_url = Some("api.hubapi.com".into())
            }),
            ("PANDORA_OAUTH_SUCCESS_URL", |r| {
                r.success_url = Some("/done".into())
            }),
        ];
        for (var, set) in cases {
            let msg = oauth(set).unwrap_err().to_string();
            assert!(msg.starts_with(var), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }
}
