//! Webhooks: a workspace's endpoints, the alerts live skill runs raise, and
//! their delivery through the job queue (see `docs/webhooks.md`).
//!
//! * **Endpoints**: [`Pandora::create_webhook`] generates the signing secret
//!   (`whsec_` + 32 random bytes, base64url), seals it with the vault (bound
//!   to the workspace and the endpoint id) and returns it this once.
//! * **Alerts**: after a live run of `deal_risk` or `single_thread_alert`
//!   succeeds, [`Pandora::raise_alerts`] turns its report into alerts
//!   (`deal.high_risk`, `deal.single_threaded`) and the store records them in
//!   one transaction: new ones are raised and delivered, cleared ones
//!   forgotten, unchanged ones send nothing.
//! * **Deliveries**: jobs of kind `webhook`. [`Pandora::execute_job`] sends
//!   one with [`Pandora::execute_webhook_job`]: signed (HMAC-SHA256 over
//!   `"<timestamp>.<body>"`), 10 s timeout, no redirects; a 2xx delivers it,
//!   429, 5xx and network failures are retried with the worker's backoff,
//!   anything else fails it at once.

use std::sync::OnceLock;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::jobs::{JobOutcome, RetryPolicy};
use super::Pandora;
use crate::auth::SecretToken;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    self, Alert, AlertSet, Job, NewWebhook, RunStatus, SkillRun, Webhook, WebhookDelivery,
    WebhookEvent, WorkspaceId,
};
use crate::query::{Page, PageRequest};
use crate::vault::{Binding, Credentials, VaultError};

/// Prefix of webhook signing secrets.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// Header carrying the delivery id (the same on every attempt).
pub const HEADER_ID: &str = "Pandora-Webhook-Id";
/// Header carrying the attempt's Unix time in seconds.
pub const HEADER_TIMESTAMP: &str = "Pandora-Webhook-Timestamp";
/// Header carrying `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const HEADER_SIGNATURE: &str = "Pandora-Webhook-Signature";
/// How long an endpoint has to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts a delivery gets before it stays failed.
pub const DELIVERY_MAX_ATTEMPTS: u32 = 6;
/// Most endpoints a workspace may register.
pub const MAX_WEBHOOKS: usize = 20;

/// Longest URL accepted.
const MAX_URL: usize = 2048;
/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 200;
/// Bytes of an error answer's body read for the delivery's error.
const ERROR_BODY_BYTES: usize = 1024;
/// Characters of an error answer's body kept in the delivery's error.
const ERROR_BODY_CHARS: usize = 200;

/// An endpoint just registered, with its signing secret (shown only this once).
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    /// The endpoint.
    pub webhook: Webhook,
    /// Its signing secret; `Debug` and `Display` print `[redacted]`.
    pub secret: SecretToken,
}

/// The sealed form's content.
#[derive(Deserialize)]
struct SealedSecret {
    secret: String,
}

/// The signature header's value for `body` sent at `timestamp` (Unix
/// seconds): `v1=` + lowercase hex of HMAC-SHA256 keyed by the secret (its
/// UTF-8 bytes, `whsec_` prefix included) over `"<timestamp>.<body>"`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(
            signature_mac(secret, timestamp, body)
                .finalize()
                .into_bytes()
        )
    )
}

/// Whether `header` (a [`HEADER_SIGNATURE`] value; several `v1=` entries may be
/// separated by commas or spaces) signs `body` sent at `timestamp` with
/// `secret`. Compares in constant time; does not check the timestamp's age.
pub fn verify_webhook_signature(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    header
        .split([',', ' '])
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h).ok())
        .any(|sig| {
            signature_mac(secret, timestamp, body)
                .verify_slice(&sig)
                .is_ok()
        })
}

fn signature_mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The HTTP client deliveries share (pooled; no redirects; 10 s timeout).
fn client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .connect_timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Pandora-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal(format!("building the webhook HTTP client failed: {e}")))?;
    Ok(CLIENT.get_or_init(|| built))
}

/// Checks an endpoint URL: absolute `http`/`https` with a host.
fn check_url(url: &str) -> Result<String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::invalid("url", "must not be empty"));
    }
    if url.len() > MAX_URL {
        return Err(Error::invalid(
            "url",
            format!("must be at most {MAX_URL} characters"),
        ));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|_| Error::invalid("url", "is not an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid("url", "must be an http or https URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("url", "must name a host"));
    }
    Ok(parsed.to_string())
}

/// Checks the event names: at least one, each known; sorted, without repeats.
fn check_events(events: &[String]) -> Result<Vec<WebhookEvent>> {
    if events.is_empty() {
        return Err(Error::invalid(
            "events",
            "must name at least one event (deal.high_risk, deal.single_threaded)",
        ));
    }
    let mut parsed = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let event = WebhookEvent::parse(e.trim()).ok_or_else(|| {
            Error::invalid(
                format!("events[{i}]"),
                "is not an event (known: deal.high_risk, deal.single_threaded)",
            )
        })?;
        parsed.push(event);
    }
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

impl Pandora {
    /// Registers a webhook endpoint of the workspace and returns it with its
    /// signing secret, which is shown only this once (the store keeps it
    /// sealed by the vault).
    ///
    /// [`Error::InvalidInput`] naming `url` (not an absolute http(s) URL),
    /// `events` (none) or `events[i]` (unknown), or `description`;
    /// [`Error::NotFound`] for a missing workspace; the vault's
    /// [`Error::Unavailable`] when no encryption key is configured;
    /// [`Error::Conflict`] past [`MAX_WEBHOOKS`] endpoints.
    pub async fn create_webhook(
        &self,
        workspace: WorkspaceId,
        new: NewWebhook,
    ) -> Result<CreatedWebhook> {
        let url = check_url(&new.url)?;
        let events = check_events(&new.events)?;
        let description = match new.description.as_deref().map(str::trim) {
            Some(d) if d.chars().count() > MAX_DESCRIPTION => {
                return Err(Error::invalid(
                    "description",
                    format!("must be at most {MAX_DESCRIPTION} characters"),
                ))
            }
            Some("") | None => None,
            Some(d) => Some(d.to_string()),
        };
        let store = &self.inner.store;
        store.get_workspace(workspace).await?;
        if self.inner.vault.current_key_id().is_none() {
            return Err(VaultError::NoKey.into());
        }
        if store.list_webhooks(workspace).await?.len() >= MAX_WEBHOOKS {
            return Err(Error::conflict(format!(
                "a workspace has at most {MAX_WEBHOOKS} webhooks; delete one first"
            )));
        }
        let webhook = Webhook {
            id: model::new_id(),
            workspace_id: workspace,
            url,
            events,
            description,
            created_at: model::now(),
        };
        let secret = SecretToken::generate(WEBHOOK_SECRET_PREFIX);
        let sealed = self
            .inner
            .vault
            .seal(
                binding(&webhook),
                &Credentials::from_json(&serde_json::json!({ "secret": secret.expose() })),
            )
            .await?;
        store.create_webhook(&webhook, &sealed).await?;
        tracing::info!(
            workspace_id = %workspace,
            webhook_id = %webhook.id,
            events = ?webhook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            "webhook created"
        );
        Ok(CreatedWebhook { webhook, secret })
    }

    /// The workspace's webhook endpoints, oldest first (never their secrets).
    pub async fn list_webhooks(&self, workspace: WorkspaceId) -> Result<Vec<Webhook>> {
        self.inner.store.get_workspace(workspace).await?;
        self.inner.store.list_webhooks(workspace).await
    }

    /// One endpoint of the workspace.
    pub async fn get_webhook(&self, workspace: WorkspaceId, webhook_id: Uuid) -> Result<Webhook> {
        self.inner.store.get_webhook(workspace, webhook_id).await
    }

    /// Deletes an endpoint with its deliveries; those not sent yet are cancelled.
    pub async fn delete_webhook(&self, workspace: WorkspaceId, webhook_id: Uuid) -> Result<()> {
        self.inner
            .store
            .delete_webhook(workspace, webhook_id, model::now())
            .await?;
        tracing::info!(workspace_id = %workspace, %webhook_id, "webhook deleted");
        Ok(())
    }

    /// An endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        page.validate()?;
        self.inner
            .store
            .list_deliveries(workspace, webhook_id, page)
            .await
    }

    /// One delivery of the workspace.
    pub async fn webhook_delivery(
        &self,
        workspace: WorkspaceId,
        delivery_id: Uuid,
    ) -> Result<WebhookDelivery> {
        self.inner.store.get_delivery(workspace, delivery_id).await
    }

    /// Raises the alerts of a succeeded live skill run: compares the run's
    /// alerts with those stored, and delivers the new ones (one delivery per
    /// subscribed endpoint) — all in one store transaction. Returns how many
    /// alerts were raised. Skills without alerts, and runs whose period
    /// ended before their as-of time (they describe the past), raise none.
    pub(crate) async fn raise_alerts(&self, run: &SkillRun) -> Result<u64> {
        if run.status != RunStatus::Succeeded {
            return Ok(0);
        }
        let Some(report) = &run.report else {
            return Ok(0);
        };
        if run.period_end.is_some_and(|end| end <= run.as_of) {
            return Ok(0);
        }
        let Some((events, alerts, complete)) = alerts_of(&run.skill, report) else {
            return Ok(0);
        };
        let set = AlertSet {
            run_id: run.id,
            skill: run.skill.clone(),
            events,
            alerts,
            complete,
            max_attempts: DELIVERY_MAX_ATTEMPTS,
            now: model::now(),
        };
        let outcome = self
            .inner
            .store
            .record_alerts(run.workspace_id, &set)
            .await?;
        tracing::info!(
            workspace_id = %run.workspace_id,
            skill = %run.skill,
            run_id = %run.id,
            current = set.alerts.len(),
            raised = outcome.raised,
            cleared = outcome.cleared,
            deliveries = outcome.deliveries.len(),
            "alerts recorded"
        );
        Ok(outcome.raised)
    }

    /// Sends one attempt of a claimed delivery job and records the outcome:
    /// delivered (2xx), queued again from the time `retry` gives (429, 5xx,
    /// timeouts and connection failures while attempts remain), or failed.
    pub(crate) async fn execute_webhook_job(
        &self,
        job: &Job,
        worker: &str,
        retry: RetryPolicy<'_>,
    ) -> Result<JobOutcome> {
        let store = &self.inner.store;
        let request = match store.delivery_request(job.workspace_id, job.id).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return self
                    .finish_delivery(
                        job,
                        worker,
                        RunStatus::Cancelled,
                        None,
                        Some("the webhook no longer exists"),
                    )
                    .await;
            }
            Err(e) => return Err(e),
        };
        let attempt = self.send_delivery(job, &request).await;
        let (response_status, error) = match attempt {
            Attempt::Delivered(status) => {
                return self
                    .finish_delivery(job, worker, RunStatus::Succeeded, Some(status), None)
                    .await
            }
            Attempt::Refused(status, message) => {
                tracing::warn!(
                    workspace_id = %job.workspace_id,
                    delivery_id = %job.id,
                    webhook_id = %request.webhook.id,
                    attempt = job.attempts,
                    error = %message,
                    "webhook delivery refused; not retried"
                );
                return self
                    .finish_delivery(job, worker, RunStatus::Failed, status, Some(&message))
                    .await;
            }
            Attempt::Failed(status, error) => (status, error),
        };
        let message = error.to_string();
        tracing::warn!(
            workspace_id = %job.workspace_id,
            delivery_id = %job.id,
            webhook_id = %request.webhook.id,
            attempt = job.attempts,
            max_attempts = job.max_attempts,
            error = %message,
            "webhook delivery attempt failed"
        );
        match retry(job, &error) {
            Some(retry_at) => {
                if store
                    .retry_delivery(
                        job.id,
                        worker,
                        response_status,
                        &message,
                        retry_at,
                        model::now(),
                    )
                    .await?
                {
                    Ok(JobOutcome::Retrying {
                        retry_at,
                        error: message,
                    })
                } else {
                    Ok(JobOutcome::Lost)
                }
            }
            None => {
                self.finish_delivery(
                    job,
                    worker,
                    RunStatus::Failed,
                    response_status,
                    Some(&message),
                )
                .await
            }
        }
    }

    /// Opens the secret, signs and POSTs the body.
    async fn send_delivery(&self, job: &Job, request: &model::DeliveryRequest) -> Attempt {
        let secret = match self
            .inner
            .vault
            .open(binding(&request.webhook), &request.secret)
            .await
        {
            Ok(credentials) => match credentials.parse::<SealedSecret>() {
                Ok(s) => Zeroizing::new(s.secret),
                Err(e) => return Attempt::Refused(None, format!("the webhook's secret: {e}")),
            },
            // No key (or an unknown one) is a deployment setting: retried,
            // so the delivery goes once the operator fixes it.
            Err(e) => return Attempt::Failed(None, e.into()),
        };
        let client = match client() {
            Ok(c) => c,
            Err(e) => return Attempt::Failed(None, e),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = webhook_signature(&secret, timestamp, request.body.as_bytes());
        let sent = client
            .post(&request.webhook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, job.id.to_string())
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(request.body.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                let what = if e.is_timeout() {
                    format!(
                        "the endpoint did not answer within {}s",
                        DELIVERY_TIMEOUT.as_secs()
                    )
                } else if e.is_connect() {
                    format!("cannot connect to the endpoint: {}", error_chain(&e))
                } else if e.is_builder() {
                    return Attempt::Refused(None, format!("invalid request: {}", error_chain(&e)));
                } else {
                    format!("sending failed: {}", error_chain(&e))
                };
                return Attempt::Failed(None, Error::unavailable(what));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered(status.as_u16());
        }
        let mut bytes = Vec::new();
        while bytes.len() < ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        bytes.truncate(ERROR_BODY_BYTES);
        let text: String = String::from_utf8_lossy(&bytes)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(ERROR_BODY_CHARS)
            .collect();
        let text = text.trim();
        let message = if text.is_empty() {
            format!("the endpoint answered {status}")
        } else {
            format!("the endpoint answered {status}: {text}")
        };
        if status.as_u16() == 429 || status.is_server_error() {
            Attempt::Failed(Some(status.as_u16()), Error::unavailable(message))
        } else {
            Attempt::Refused(Some(status.as_u16()), message)
        }
    }

    async fn finish_delivery(
        &self,
        job: &Job,
        worker: &str,
        status: RunStatus,
        response_status: Option<u16>,
        error: Option<&str>,
    ) -> Result<JobOutcome> {
        let finished = self
            .inner
            .store
            .finish_delivery(job.id, worker, status, response_status, error, model::now())
            .await?;
        Ok(match finished {
            Some(delivery) => {
                tracing::info!(
                    workspace_id = %job.workspace_id,
                    delivery_id = %job.id,
                    status = ?delivery.status,
                    attempts = delivery.attempts,
                    "webhook delivery finished"
                );
                JobOutcome::DeliveryFinished(delivery)
            }
            None => JobOutcome::Lost,
        })
    }
}

/// How one attempt went.
enum Attempt {
    /// 2xx, with the status.
    Delivered(u16),
    /// Failed for good (other 4xx, 3xx, an unusable request), with the
    /// answer's status if one came and the error.
    Refused(Option<u16>, String),
    /// Failed in a way that may pass (429, 5xx, network), with the answer's
    /// status if one came.
    Failed(Option<u16>, Error),
}

/// What a webhook's secret is sealed under.
fn binding(webhook: &Webhook) -> Binding {
    Binding {
        workspace_id: webhook.workspace_id,
        connection_id: webhook.id,
    }
}

/// An error and its sources, joined (reqwest hides the cause in the chain).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// The events a skill's report raises, its current alerts, and whether they
/// are all of them (the report listed every deal that could alert); `None`
/// for a skill without alerts.
fn alerts_of(
    skill: &str,
    report: &serde_json::Value,
) -> Option<(Vec<WebhookEvent>, Vec<Alert>, bool)> {
    let rows = report.get("rows").and_then(|r| r.as_array());
    let rows: &[serde_json::Value] = rows.map(Vec::as_slice).unwrap_or(&[]);
    let more = report
        .pointer("/summary/more")
        .and_then(|m| m.as_u64())
        .unwrap_or(0);
    match skill {
        "deal_risk" => {
            let alerting = |row: &serde_json::Value| {
                matches!(
                    row.get("band").and_then(|b| b.as_str()),
                    Some("high" | "critical")
                )
            };
            let alerts = rows
                .iter()
                .filter(|r| alerting(r))
                .filter_map(|r| {
                    alert(
                        WebhookEvent::DealHighRisk,
                        r,
                        serde_json::json!({
                            "risk_score": r.get("score"),
                            "band": r.get("band"),
                            "signals": r.get("signals"),
                            "days_in_stage": r.get("days_in_stage"),
                            "stage_velocity": r.get("stage_velocity"),
                        }),
                    )
                })
                .collect();
            // Rows are by score, highest first: when the last listed row no
            // longer alerts, no unlisted one does.
            let complete = more == 0 || rows.last().is_some_and(|r| !alerting(r));
            Some((vec![WebhookEvent::DealHighRisk], alerts, complete))
        }
        "single_thread_alert" => {
            let alerts = rows
                .iter()
                .filter_map(|r| {
                    alert(
                        WebhookEvent::DealSingleThreaded,
                        r,
                        serde_json::json!({
                            "engaged_count": r.get("engaged_count"),
                            "sole_contact": r.get("sole_contact"),
                            "last_touch": r.get("last_touch"),
                            "roles_present": r.get("roles_present"),
                            "roles_missing": r.get("roles_missing"),
                            "why": r.get("why"),
                        }),
                    )
                })
                .collect();
            Some((vec![WebhookEvent::DealSingleThreaded], alerts, more == 0))
        }
        _ => None,
    }
}

/// The alert of a report row about a deal.
fn alert(
    event: WebhookEvent,
    row: &serde_json::Value,
    evidence: serde_json::Value,
) -> Option<Alert> {
    let deal_id = row
        .get("deal_id")
        .and_then(|d| d.as_str())
        .and_then(|d| Uuid::parse_str(d).ok())?;
    Some(Alert {
        event,
        deal_id,
        data: serde_json::json!({
            "deal": {
                "id": deal_id,
                "source_id": row.get("source_id"),
                "name": row.get("name"),
                "amount": row.get("amount"),
                "owner_source_id": row.get("owner_source_id"),
                "stage": row.get("stage"),
                "close_date": row.get("close_date"),
            },
            "evidence": evidence,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_recipe() {
        // HMAC-SHA256(key = "whsec_test", "1700000000.{}"), computed outside
        // Pandora with the Python example of docs/webhooks.md.
        let sig = webhook_signature("whsec_test", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
        assert!(verify_webhook_signature(
            "whsec_test",
            1_700_000_000,
            b"{}",
            &sig
        ));
        assert!(verify_webhook_signature(
            "whsec_test",
            1_700_000_000,
            b"{}",
            &format!("v1=00, {sig}")
        ));
        assert!(!verify_webhook_signature(
            "whsec_test",
            1_700_000_001,
            b"{}",
            &sig
        ));
        assert!(!verify_webhook_signature(
            "whsec_other",
            1_700_000_000,
            b"{}",
            &sig
        ));
        assert!(!verify_webhook_signature(
            "whsec_test",
            1_700_000_000,
            b"{ }",
            &sig
        ));
        // RFC 4231 test case 2 ("Jefe" / "what do ya want for nothing?") pins
        // the primitive: with timestamp and separator it is the same HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = SecretToken::generate(WEBHOOK_SECRET_PREFIX);
        let webhook = Webhook {
            id: model::new_id(),
            workspace_id: model::new_id(),
            url: "https://hooks.example.com/x".into(),
            events: vec![WebhookEvent::DealHighRisk],
            description: None,
            created_at: model::now(),
        };
        let created = CreatedWebhook {
            webhook: webhook.clone(),
            secret: secret.clone(),
        };
        let shown = format!("{created:?}");
        assert!(!shown.contains(&secret.expose()[6..]), "{shown}");
        let request = model::DeliveryRequest {
            webhook,
            secret: model::StoredCredentials("pv1.sealed-blob".into()),
            body: "{}".into(),
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("sealed-blob"), "{shown}");
    }

    #[test]
    fn urls_and_events_are_checked() {
        assert!(check_url("https://hooks.example.com/pandora?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "",
            "ftp://example.com/",
            "not a url",
            "/relative",
            "mailto:a@b.c",
        ] {
            let err = check_url(bad).expect_err(bad);
            assert!(
                matches!(err, Error::InvalidInput { ref field, .. } if field == "url"),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(
            check_events(&[
                "deal.single_threaded".into(),
                "deal.high_risk".into(),
                "deal.high_risk".into()
            ])
            .expect("valid"),
            vec![WebhookEvent::DealHighRisk, WebhookEvent::DealSingleThreaded]
        );
        let err = check_events(&[]).expect_err("empty");
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "events"));
        let err = check_events(&["deal.high_risk".into(), "deal.won".into()]).expect_err("unknown");
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "events[1]"));
    }

    #[test]
    fn deal_risk_alerts_are_the_high_and_critical_rows() {
        let deal = |band: &str| serde_json::json!({"deal_id": model::new_id(), "name": "D", "band": band, "score": 60});
        let report = serde_json::json!({
            "summary": {"more": 3},
            "rows": [deal("critical"), deal("high"), deal("medium")],
        });
        let (events, alerts, complete) = alerts_of("deal_risk", &report).expect("alerts");
        assert_eq!(events, vec![WebhookEvent::DealHighRisk]);
        assert_eq!(alerts.len(), 2);
        assert!(
            complete,
            "the last listed row is medium: nothing unlisted alerts"
        );
        assert_eq!(alerts[0].data["evidence"]["band"], "critical");
        let truncated = serde_json::json!({"summary": {"more": 3}, "rows": [deal("high")]});
        assert!(!alerts_of("deal_risk", &truncated).expect("alerts").2);
        assert!(alerts_of("pipeline_waterfall", &report).is_none());
    }
}
