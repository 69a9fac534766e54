//! The HTTP client every vendor connector uses.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pandora_core::auth::SecretToken;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::{parse_retry_after, BearerAuth, RateBudget, RetryPolicy, VendorError};

/// What a throttled (429) answer asks for, as a vendor's rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttle {
    /// Wait this long, then retry (e.g. until the vendor's rate window rolls).
    Wait(Duration),
    /// Back off exponentially, as for a 5xx.
    Backoff,
    /// Stop: waiting will not help soon (e.g. a daily limit). The message says which limit.
    Stop(String),
}

/// What differs between vendors in talking HTTP. Everything else (retries,
/// pacing, tokens, errors) is [`VendorClient`]'s.
pub trait VendorRules: Send + Sync {
    /// The vendor id used in errors and logs, e.g. `"hubspot"`.
    fn vendor(&self) -> &'static str;

    /// Feeds the rate-limit headers of any answer into the connection's budget.
    fn observe(&self, headers: &HeaderMap, budget: &RateBudget) {
        let _ = (headers, budget);
    }

    /// The vendor's error code and message from an error body. The default
    /// reads JSON `message`/`error_description`/`error` and
    /// `code`/`errorCode`/`error`/`status`, else the text.
    fn error_details(&self, body: &[u8]) -> (Option<String>, String) {
        default_error_details(body)
    }

    /// What a 429 answer means. A `Retry-After` header, when present, is
    /// honoured exactly unless this says [`Throttle::Stop`].
    fn throttled(&self, headers: &HeaderMap, body: &[u8]) -> Throttle {
        let _ = (headers, body);
        Throttle::Backoff
    }
}

/// The usual JSON error shapes: `{"message"}`, OAuth's `{"error",
/// "error_description"}`, with a code from `code`/`errorCode`/`error`/`status`.
pub fn default_error_details(body: &[u8]) -> (Option<String>, String) {
    let text = |v: &serde_json::Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_string))
    };
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let message = text(&v, &["message", "error_description", "error"]);
        let code = text(&v, &["code", "errorCode", "error", "status", "category"]);
        if let Some(m) = message {
            return (code, m);
        }
    }
    let raw = String::from_utf8_lossy(body);
    let raw = raw.trim();
    let message = if raw.is_empty() {
        "no details".to_string()
    } else {
        raw.chars().take(300).collect()
    };
    (None, message)
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

/// One request to a vendor: method, path (relative to the client's base URL,
/// or absolute), query, body, and how it is named in errors and logs.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Body,
    label: Option<String>,
    extra_budget: Option<Arc<RateBudget>>,
    authenticated: bool,
}

impl Request {
    /// A request with `method` to `path`.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Body::None,
            label: None,
            extra_budget: None,
            authenticated: true,
        }
    }

    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A POST to `path`.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// A JSON body.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    /// A form (`application/x-www-form-urlencoded`) body.
    pub fn form(mut self, fields: Vec<(String, String)>) -> Self {
        self.body = Body::Form(fields);
        self
    }

    /// How errors and logs name the endpoint (default `METHOD path`); use it
    /// when the path holds something that must not be logged.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A second budget this request also spends (e.g. a search API's own limit).
    pub fn budget(mut self, budget: Arc<RateBudget>) -> Self {
        self.extra_budget = Some(budget);
        self
    }

    /// Sends no bearer token (e.g. a token endpoint).
    pub fn unauthenticated(mut self) -> Self {
        self.authenticated = false;
        self
    }

    /// `METHOD path`, or the label.
    pub fn endpoint(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.path))
    }
}

/// A vendor's HTTP client: one request at a time through the rate budget,
/// with the bearer token, the retry policy and the vendor's rules. Cheap to
/// build per sync from a shared `reqwest::Client`.
pub struct VendorClient {
    http: reqwest::Client,
    rules: Arc<dyn VendorRules>,
    base_url: String,
    auth: Option<BearerAuth>,
    budget: Arc<RateBudget>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for VendorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorClient")
            .field("vendor", &self.rules.vendor())
            .field("base_url", &self.base_url)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl VendorClient {
    /// The `reqwest::Client` connectors share: rustls, a user agent, connect timeout.
    pub fn default_http() -> reqwest::Client {
        reqwest::Client::builder()
            .user_agent(concat!("pandora/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default()
    }

    /// A client for `base_url` (no trailing slash needed) with `rules`, no
    /// auth, an unlimited budget and the default retry policy.
    pub fn new(http: reqwest::Client, rules: Arc<dyn VendorRules>, base_url: &str) -> Self {
        VendorClient {
            http,
            rules,
            base_url: base_url.trim_end_matches('/').to_string(),
            auth: None,
            budget: Arc::new(RateBudget::default()),
            retry: RetryPolicy::default(),
        }
    }

    /// Sends this bearer token with every authenticated request.
    pub fn with_auth(mut self, auth: BearerAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Spends this budget.
    pub fn with_budget(mut self, budget: Arc<RateBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Retries by this policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The bearer token source, when the client has one.
    pub fn auth(&self) -> Option<&BearerAuth> {
        self.auth.as_ref()
    }

    /// The budget the client spends.
    pub fn budget(&self) -> &Arc<RateBudget> {
        &self.budget
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `req` and parses the JSON answer.
    pub async fn send<T: DeserializeOwned>(&self, req: &Request) -> Result<T, VendorError> {
        let body = self.send_raw(req).await?;
        let de = &mut serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(de).map_err(|e| VendorError::Malformed {
            vendor: self.rules.vendor(),
            endpoint: req.endpoint(),
            reason: json_reason(&e),
        })
    }

    /// Sends `req` and returns the body of its 2xx answer, retrying and
    /// refreshing as the module documents.
    pub async fn send_raw(&self, req: &Request) -> Result<Vec<u8>, VendorError> {
        let vendor = self.rules.vendor();
        let endpoint = req.endpoint();
        let started = Instant::now();
        let deadline = started + self.retry.deadline;
        let (mut failures, mut throttled, mut refreshed) = (0u32, 0u32, false);
        loop {
            self.budget.acquire().await;
            if let Some(extra) = &req.extra_budget {
                extra.acquire().await;
            }
            let token = match (&self.auth, req.authenticated) {
                (Some(auth), true) => {
                    Some(auth.token().await.map_err(|source| VendorError::Token {
                        vendor,
                        endpoint: endpoint.clone(),
                        source,
                    })?)
                }
                _ => None,
            };
            let scrub = |s: String| scrub(s, token.as_ref());
            let answer = self.exchange(req, token.as_ref()).await;
            let (status, headers, body) = match answer {
                Ok(a) => a,
                Err(reason) => {
                    failures += 1;
                    let reason = scrub(reason);
                    let wait = self.retry.backoff(failures - 1, rand::thread_rng().gen());
                    if failures >= self.retry.max_attempts || Instant::now() + wait > deadline {
                        return Err(VendorError::Network {
                            vendor,
                            endpoint,
                            reason: format!("{reason} (after {failures} attempts)"),
                        });
                    }
                    tracing::warn!(vendor, endpoint = %endpoint, %reason, wait_ms = wait.as_millis() as u64, "network error; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            tracing::debug!(vendor, endpoint = %endpoint, status = status.as_u16(), "vendor answered");
            if status.is_success() {
                return Ok(body);
            }
            let status_error = |body: &[u8]| {
                let (code, message) = self.rules.error_details(body);
                VendorError::Status {
                    vendor,
                    endpoint: endpoint.clone(),
                    status: status.as_u16(),
                    code,
                    message: scrub(message),
                }
            };
            if status == StatusCode::UNAUTHORIZED {
                if let (Some(auth), Some(stale), false) = (&self.auth, &token, refreshed) {
                    if let Some(fresh) = auth.refresh(stale).await {
                        fresh.map_err(|source| VendorError::Token {
                            vendor,
                            endpoint: endpoint.clone(),
                            source,
                        })?;
                        refreshed = true;
                        tracing::info!(vendor, endpoint = %endpoint, "access token refreshed after a 401; retrying");
                        continue;
                    }
                }
                let (_, message) = self.rules.error_details(&body);
                return Err(VendorError::Unauthorized {
                    vendor,
                    endpoint,
                    message: scrub(message),
                });
            }
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let wait = if status == StatusCode::TOO_MANY_REQUESTS {
                let rule = self.rules.throttled(&headers, &body);
                if let Throttle::Stop(message) = rule {
                    return Err(VendorError::LimitReached {
                        vendor,
                        endpoint,
                        message,
                    });
                }
                throttled += 1;
                if throttled > self.retry.max_throttled {
                    return Err(status_error(&body));
                }
                let wait = match (retry_after, rule) {
                    (Some(d), _) => d,
                    (None, Throttle::Wait(d)) => d,
                    _ => self.retry.backoff(throttled - 1, rand::thread_rng().gen()),
                };
                self.budget.pause(wait);
                wait
            } else if status.is_server_error() {
                failures += 1;
                if failures >= self.retry.max_attempts {
                    return Err(status_error(&body));
                }
                retry_after
                    .unwrap_or_else(|| self.retry.backoff(failures - 1, rand::thread_rng().gen()))
            } else {
                return Err(status_error(&body));
            };
            if Instant::now() + wait > deadline {
                let mut e = status_error(&body);
                if let VendorError::Status { message, .. } = &mut e {
                    message.push_str(&format!(
                        " (a retry in {} ms would pass the {} s deadline)",
                        wait.as_millis(),
                        self.retry.deadline.as_secs()
                    ));
                }
                return Err(e);
            }
            tracing::warn!(vendor, endpoint = %endpoint, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange: the status, headers and body, or why none came.
    async fn exchange(
        &self,
        req: &Request,
        token: Option<&SecretToken>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), String> {
        let url = if req.path.starts_with("http://") || req.path.starts_with("https://") {
            req.path.clone()
        } else {
            format!("{}{}", self.base_url, req.path)
        };
        let mut rb = self
            .http
            .request(req.method.clone(), url)
            .timeout(self.retry.attempt_timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t.expose());
        }
        rb = match &req.body {
            Body::None => rb,
            Body::Json(v) => rb.json(v),
            Body::Form(f) => rb.form(f),
        };
        let resp = rb.send().await.map_err(describe)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        self.rules.observe(&headers, &self.budget);
        let body = resp.bytes().await.map_err(describe)?;
        Ok((status, headers, body.to_vec()))
    }
}

/// A reqwest error without its URL (which may hold an id or a token).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    let inner = std::error::Error::source(&e)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("{kind}{inner}")
}

/// A JSON error by where and what, without the document.
fn json_reason(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.inner();
    let what = match inner.classify() {
        serde_json::error::Category::Syntax => format!("not valid JSON ({inner})"),
        serde_json::error::Category::Eof => format!("truncated JSON ({inner})"),
        serde_json::error::Category::Data => format!("unexpected shape ({inner})"),
        serde_json::error::Category::Io => format!("I/O error ({inner})"),
    };
    if path == "." || path.is_empty() {
        what
    } else {
        format!("at {path}: {what}")
    }
}

fn scrub(text: String, token: Option<&SecretToken>) -> String {
    match token.map(|t| t.expose()).filter(|t| t.len() >= 4) {
        Some(t) if text.contains(t) => text.replace(t, "[redacted]"),
        _ => text,
    }
}
