//! The real `pandora` binary, spawned in a temporary working directory on a
//! free port, spoken to over plain HTTP/1.1.

mod common;

use common::pandora;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BANNER: &str = "Admin token (shown once, store it now): ";

/// A running server and everything it wrote to stderr.
struct Server {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `pandora` in `dir` on a free port and waits until it listens.
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// [`Server::start`] with these extra variables.
    fn start_with(dir: &Path, vars: &[(&str, &str)]) -> Server {
        let mut child = pandora(dir)
            .env("PANDORA_ADDR", "127.0.0.1:0")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pandora");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on http://") {
                    let addr = line[i + "listening on http://".len()..].trim().to_string();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {:?}", stderr.lock().unwrap());
            }
        };
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The admin token of the banner, if one was printed.
    fn banner_token(&self) -> Option<String> {
        let err = self.stderr();
        let mut tokens = err
            .lines()
            .filter_map(|l| l.split_once(BANNER).map(|(_, t)| t.trim().to_string()));
        let token = tokens.next();
        assert!(tokens.next().is_none(), "banner printed twice");
        token
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        http(&self.addr, method, path, token, body)
    }

    /// Sends SIGTERM and waits (at most `within`) for the exit status.
    fn terminate(mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("no exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`).
fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
        "chunked responses are not expected"
    );
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

#[test]
fn serves_over_sqlite_with_a_generated_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let admin = server
        .banner_token()
        .unwrap_or_else(|| panic!("no admin token banner: {}", server.stderr()));
    assert!(admin.starts_with("pa_"));
    assert!(
        dir.path().join("pandora.db").exists(),
        "SQLite file in the working dir"
    );
    assert_eq!(
        server
            .stderr()
            .matches("CREDENTIAL_ENCRYPTION_KEY is not set")
            .count(),
        1,
        "one warning about the missing key: {}",
        server.stderr()
    );

    let health = server.request("GET", "/healthz", None, None);
    assert_eq!(health.status, 200);
    assert!(health.header("x-request-id").is_some());
    assert_eq!(server.request("GET", "/readyz", None, None).status, 200);

    let created = server.request(
        "POST",
        "/api/workspaces",
        Some(&admin),
        Some(json!({"name": "Acme"})),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let ws = created.body["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = created.body["api_key"].as_str().unwrap().to_string();
    let other = server.request(
        "POST",
        "/api/workspaces",
        Some(&admin),
        Some(json!({"name": "Globex"})),
    );
    let other_ws = other.body["workspace"]["id"].as_str().unwrap().to_string();

    let deals = server.request(
        "GET",
        &format!("/api/workspaces/{ws}/deals"),
        Some(&key),
        None,
    );
    assert_eq!(deals.status, 200);
    assert_eq!(deals.body, json!({"data": [], "next_cursor": null}));

    let foreign = server.request(
        "GET",
        &format!("/api/workspaces/{other_ws}/deals"),
        Some(&key),
        None,
    );
    assert_eq!(foreign.status, 404);
    assert_eq!(
        foreign.header("content-type"),
        Some("application/problem+json")
    );

    let bad = server.request(
        "GET",
        &format!("/api/workspaces/{ws}/deals?limit=0"),
        Some(&key),
        None,
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));
    assert_eq!(bad.body["field"], "limit");

    let unauthenticated = server.request("GET", "/api/workspaces", None, None);
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.header("www-authenticate"), Some("Bearer"));

    let stderr_before = server.stderr();
    let started = Instant::now();
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "slow shutdown");
    assert!(!stderr_before.contains(&key), "an API key was logged");
    assert_eq!(
        stderr_before.matches(&admin).count(),
        1,
        "the admin token was printed more than once"
    );

    // A second start over the same database prints no new token, and the
    // first one still works.
    let again = Server::start(dir.path());
    assert_eq!(again.banner_token(), None, "{}", again.stderr());
    let listed = again.request("GET", "/api/workspaces", Some(&admin), None);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    let deals = again.request(
        "GET",
        &format!("/api/workspaces/{ws}/deals"),
        Some(&key),
        None,
    );
    assert_eq!(deals.status, 200);
    assert!(again.terminate(Duration::from_secs(10)).success());
}

#[test]
fn a_configured_admin_token_is_used_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let token = "t".repeat(40);
    let mut child = pandora(dir.path())
        .env("PANDORA_ADMIN_TOKEN", &token)
        .env("PANDORA_SQLITE_PATH", "data.db")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(dir.path().join("data.db").exists());
    child.stderr.extend(child.stdout);
    assert!(!String::from_utf8_lossy(&child.stderr).contains(&token));
}

#[test]
fn a_bad_address_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = pandora(dir.path())
        .env("PANDORA_ADDR", "abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: PANDORA_ADDR=\"abc\" is not a socket address; expected host:port such as 127.0.0.1:3000"
    );
    assert!(
        !dir.path().join("pandora.db").exists(),
        "nothing is created"
    );

    // The same from a .env file, read before the command line is parsed.
    std::fs::write(dir.path().join(".env"), "PANDORA_ADDR=nowhere\n").unwrap();
    let out = pandora(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: PANDORA_ADDR=\"nowhere\""),
        "{stderr}"
    );

    let out = pandora(dir.path())
        .env("PANDORA_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", "mysql://root:hunter2@db/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: DATABASE_URL must start with postgres://"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"));
}

#[test]
fn oauth_follows_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // Part of an application: one line naming the missing variable.
    let out = pandora(dir.path())
        .env("PANDORA_ADDR", "127.0.0.1:0")
        .env("HUBSPOT_CLIENT_ID", "hs-app-id")
        .env(
            "HUBSPOT_CALLBACK_URL",
            "http://localhost:3000/api/auth/hubspot/callback",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: HUBSPOT_CLIENT_SECRET is not set, but HUBSPOT_CLIENT_ID"),
        "{stderr}"
    );

    // A HubSpot app against a configured consent host; Salesforce unset.
    let admin = "a".repeat(40);
    let session = "s3ss10n-s3cr3t-".repeat(3);
    let server = Server::start_with(
        dir.path(),
        &[
            ("PANDORA_ADMIN_TOKEN", admin.as_str()),
            ("CREDENTIAL_ENCRYPTION_KEY", &"0123456789abcdef".repeat(4)),
            ("HUBSPOT_CLIENT_ID", "hs-app-id"),
            ("HUBSPOT_CLIENT_SECRET", "hs-app-secret-value"),
            (
                "HUBSPOT_CALLBACK_URL",
                "http://localhost:3000/api/auth/hubspot/callback",
            ),
            ("HUBSPOT_OAUTH_BASE_URL", "http://127.0.0.1:9/"),
            ("SESSION_SECRET", session.as_str()),
        ],
    );
    let ws = server.request(
        "POST",
        "/api/workspaces",
        Some(&admin),
        Some(json!({"name": "Acme"})),
    );
    assert_eq!(ws.status, 201, "{:?}", ws.body);
    let id = ws.body["workspace"]["id"].as_str().unwrap().to_string();
    let res = server.request(
        "GET",
        &format!("/api/auth/hubspot/authorize?workspaceId={id}"),
        Some(&admin),
        None,
    );
    assert_eq!(res.status, 302, "{:?}", res.body);
    let location = res.header("location").unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:9/oauth/authorize?"),
        "{location}"
    );
    assert!(location.contains("client_id=hs-app-id"), "{location}");
    assert!(
        location.contains(
            "redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fapi%2Fauth%2Fhubspot%2Fcallback"
        ),
        "{location}"
    );
    let res = server.request(
        "GET",
        &format!("/api/auth/salesforce/authorize?workspaceId={id}"),
        Some(&admin),
        None,
    );
    assert_eq!(res.status, 503, "{:?}", res.body);
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("SALESFORCE_CLIENT_ID"),
        "{:?}",
        res.body
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains("OAuth flow open at /api/auth/hubspot/authorize"),
        "{stderr}"
    );
    for secret in ["hs-app-secret-value", session.as_str()] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
}

#[test]
fn an_unreachable_database_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = pandora(dir.path())
        .env("PANDORA_SQLITE_PATH", "missing/dir/pandora.db")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot "), "{stderr}");
}

#[test]
fn help_documents_commands_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    let out = pandora(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "migrate",
        "DATABASE_URL",
        "PANDORA_ADDR",
        "PANDORA_SQLITE_PATH",
        "PANDORA_ADMIN_TOKEN",
        "RUST_LOG",
        "DEBUG",
        "keygen",
        "credentials",
        "CREDENTIAL_ENCRYPTION_KEY",
        "CREDENTIAL_ENCRYPTION_KEY_PREVIOUS",
        "SALESFORCE_CLIENT_ID",
        "HUBSPOT_CLIENT_ID",
        "SESSION_SECRET",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

#[test]
fn serve_names_the_master_key_by_id_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef".repeat(4);
    let previous = "fedcba9876543210".repeat(4);
    let server = Server::start_with(
        dir.path(),
        &[
            ("CREDENTIAL_ENCRYPTION_KEY", &key),
            ("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS", &previous),
        ],
    );
    assert_eq!(server.request("GET", "/healthz", None, None).status, 200);
    let stderr = server.stderr();
    assert!(
        stderr.contains("credentials are sealed under master key "),
        "{stderr}"
    );
    assert!(!stderr.contains("is not set"), "{stderr}");
    for secret in [&key, &previous] {
        assert!(
            !stderr.contains(&secret[..16]),
            "a key was logged: {stderr}"
        );
    }
    assert!(server.terminate(Duration::from_secs(10)).success());
}
