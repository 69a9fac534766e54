//! Webhooks: a workspace's endpoints, the alerts skill runs raise, and the
//! deliveries that carry new alerts to the endpoints.
//!
//! A delivery is a job of the queue ([`JobKind::Webhook`](super::JobKind))
//! with the same id: its status, attempts and last error are the job's, so
//! they stay true when a worker dies mid-attempt.
//!
//! The signing secret of an endpoint never appears in these types: it is
//! sealed by the vault before the store sees it, and shown once when the
//! endpoint is created. See `docs/webhooks.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{NewJob, RunStatus};

/// What an alert is about: the events an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookEvent {
    /// A deal whose `deal_risk` band is `high` or `critical`.
    #[serde(rename = "deal.high_risk")]
    DealHighRisk,
    /// A deal listed by the `single_thread_alert` skill.
    #[serde(rename = "deal.single_threaded")]
    DealSingleThreaded,
}

impl WebhookEvent {
    /// Every event.
    pub const ALL: [WebhookEvent; 2] =
        [WebhookEvent::DealHighRisk, WebhookEvent::DealSingleThreaded];

    /// The stable string (`"deal.high_risk"`, `"deal.single_threaded"`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::DealHighRisk => "deal.high_risk",
            WebhookEvent::DealSingleThreaded => "deal.single_threaded",
        }
    }

    /// Parses the stable string.
    pub fn parse(s: &str) -> Option<Self> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A workspace's webhook endpoint. Its signing secret is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Endpoint id.
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Where deliveries are POSTed (`http` or `https`).
    pub url: String,
    /// The events it receives, in a stable order.
    pub events: Vec<WebhookEvent>,
    /// A note for people.
    pub description: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// What registering a webhook endpoint takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed: an absolute `http` or `https` URL.
    pub url: String,
    /// The events to receive: `deal.high_risk`, `deal.single_threaded`
    /// (at least one).
    #[serde(default)]
    pub events: Vec<String>,
    /// A note for people (at most 200 characters).
    #[serde(default)]
    pub description: Option<String>,
}

/// Where a delivery stands (from its job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for a worker (first attempt, or a retry after a backoff).
    Pending,
    /// A worker is sending it.
    Sending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: a 4xx answer, or every attempt failed.
    Failed,
    /// Its endpoint was deleted before it was delivered.
    Cancelled,
}

impl DeliveryStatus {
    /// The delivery status of a job in `status`.
    pub fn of_job(status: RunStatus) -> Self {
        match status {
            RunStatus::Queued => DeliveryStatus::Pending,
            RunStatus::Running => DeliveryStatus::Sending,
            RunStatus::Succeeded => DeliveryStatus::Delivered,
            RunStatus::Failed => DeliveryStatus::Failed,
            RunStatus::Cancelled => DeliveryStatus::Cancelled,
        }
    }
}

/// One POST of new alerts to one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// Delivery id (also the id of its job, and the `Pandora-Webhook-Id` header).
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// The endpoint.
    pub webhook_id: Uuid,
    /// The JSON body POSTed (every attempt sends the same bytes).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Why the last failed attempt failed (never the secret; bodies truncated).
    pub last_error: Option<String>,
    /// The HTTP status of the last answer, if one came.
    pub response_status: Option<u16>,
    /// When it was created (by the skill run).
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One alert a skill run raises: an event about a deal, with what to tell.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The event.
    pub event: WebhookEvent,
    /// The deal (its Pandora id).
    pub deal_id: Uuid,
    /// What a delivery says about it: `{"deal": …, "evidence": …}`.
    pub data: serde_json::Value,
}

/// A successful live skill run's alerts, for
/// [`WebhookStore::record_alerts`](crate::store::WebhookStore::record_alerts).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSet {
    /// The skill run.
    pub run_id: Uuid,
    /// Its skill.
    pub skill: String,
    /// The events the run evaluates (its alerts of other events are left alone).
    pub events: Vec<WebhookEvent>,
    /// The run's current alerts of those events (one per event and deal).
    pub alerts: Vec<Alert>,
    /// Whether `alerts` is every current alert: only then are stored
    /// alerts missing from it cleared (a truncated report says nothing of
    /// the deals it does not list).
    pub complete: bool,
    /// Attempts each delivery gets.
    pub max_attempts: u32,
    /// The time of the change.
    pub now: DateTime<Utc>,
}

/// What [`WebhookStore::record_alerts`](crate::store::WebhookStore::record_alerts) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertOutcome {
    /// Alerts raised (new since the last run).
    pub raised: u64,
    /// Stored alerts cleared (their condition no longer holds).
    pub cleared: u64,
    /// The deliveries created, one per subscribed endpoint.
    pub deliveries: Vec<Uuid>,
}

/// An alert the store holds as raised (its condition still held at the last
/// run that evaluated it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedAlert {
    /// The event.
    pub event: WebhookEvent,
    /// The deal.
    pub deal_id: Uuid,
    /// The run that raised it.
    pub run_id: Uuid,
    /// When.
    pub raised_at: DateTime<Utc>,
}

/// What a worker needs to send a delivery: the endpoint, its sealed secret
/// and the exact body. `Debug` hides the secret.
#[derive(Clone, PartialEq)]
pub struct DeliveryRequest {
    /// The endpoint.
    pub webhook: Webhook,
    /// Its secret, sealed by the vault (bound to the workspace and the endpoint id).
    pub secret: super::StoredCredentials,
    /// The body, byte for byte.
    pub body: String,
}

impl std::fmt::Debug for DeliveryRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryRequest")
            .field("webhook", &self.webhook.id)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A delivery to create, planned by [`plan_deliveries`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDelivery {
    /// Delivery (and job) id.
    pub id: Uuid,
    /// The endpoint.
    pub webhook_id: Uuid,
    /// The body.
    pub body: String,
    /// Its job.
    pub job: NewJob,
}

/// The deliveries of newly raised alerts (shared by the stores): one per
/// endpoint that wants at least one of their events, holding exactly those
/// alerts (in the order given); none for an endpoint that wants none.
pub fn plan_deliveries(
    workspace: Uuid,
    set: &AlertSet,
    raised: &[&Alert],
    webhooks: &[Webhook],
) -> Vec<PlannedDelivery> {
    let mut planned = Vec::new();
    for webhook in webhooks {
        let alerts: Vec<serde_json::Value> = raised
            .iter()
            .filter(|a| webhook.events.contains(&a.event))
            .map(|a| {
                let mut v = serde_json::json!({ "event": a.event.as_str() });
                if let (Some(obj), Some(data)) = (v.as_object_mut(), a.data.as_object()) {
                    obj.extend(data.clone());
                }
                v
            })
            .collect();
        if alerts.is_empty() {
            continue;
        }
        let id = super::new_id();
        let body = serde_json::json!({
            "id": id,
            "type": "alerts",
            "created_at": set.now,
            "workspace_id": workspace,
            "webhook_id": webhook.id,
            "skill": set.skill,
            "skill_run_id": set.run_id,
            "alerts": alerts,
        });
        planned.push(PlannedDelivery {
            id,
            webhook_id: webhook.id,
            body: body.to_string(),
            job: NewJob {
                payload: serde_json::json!({ "delivery_id": id, "webhook_id": webhook.id }),
                max_attempts: set.max_attempts.max(1),
                run_after: set.now,
                dedupe_key: None,
            },
        });
    }
    planned
}

/// The alerts of `set` that are not among `stored` (as `(event, deal)`),
/// and the stored ones of the set's events to clear (none unless the set is
/// complete). Shared by the stores.
pub fn diff_alerts<'a>(
    set: &'a AlertSet,
    stored: &[(WebhookEvent, Uuid)],
) -> (Vec<&'a Alert>, Vec<(WebhookEvent, Uuid)>) {
    let stored_set: std::collections::BTreeSet<(WebhookEvent, Uuid)> =
        stored.iter().copied().collect();
    let mut seen = std::collections::BTreeSet::new();
    let new: Vec<&Alert> = set
        .alerts
        .iter()
        .filter(|a| set.events.contains(&a.event))
        .filter(|a| seen.insert((a.event, a.deal_id)))
        .filter(|a| !stored_set.contains(&(a.event, a.deal_id)))
        .collect();
    let clear = if set.complete {
        stored
            .iter()
            .filter(|k| set.events.contains(&k.0) && !seen.contains(*k))
            .copied()
            .collect()
    } else {
        Vec::new()
    };
    (new, clear)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_match_serde() {
        for e in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(e.as_str()), Some(e));
            assert_eq!(
                serde_json::to_value(e).expect("json"),
                serde_json::json!(e.as_str())
            );
        }
        assert_eq!(WebhookEvent::parse("deal.won"), None);
    }

    fn alert(event: WebhookEvent, deal: Uuid) -> Alert {
        Alert {
            event,
            deal_id: deal,
            data: serde_json::json!({"deal": {"id": deal}, "evidence": {}}),
        }
    }

    fn set(alerts: Vec<Alert>, complete: bool) -> AlertSet {
        AlertSet {
            run_id: super::super::new_id(),
            skill: "deal_risk".into(),
            events: vec![WebhookEvent::DealHighRisk],
            alerts,
            complete,
            max_attempts: 3,
            now: super::super::now(),
        }
    }

    #[test]
    fn diff_raises_new_alerts_and_clears_missing_ones_only_when_complete() {
        let (a, b, c) = (
            super::super::new_id(),
            super::super::new_id(),
            super::super::new_id(),
        );
        let high = WebhookEvent::DealHighRisk;
        let thread = WebhookEvent::DealSingleThreaded;
        let s = set(vec![alert(high, a), alert(high, b), alert(high, b)], true);
        let stored = [(high, a), (high, c), (thread, c)];
        let (new, clear) = diff_alerts(&s, &stored);
        assert_eq!(new.iter().map(|a| a.deal_id).collect::<Vec<_>>(), vec![b]);
        assert_eq!(clear, vec![(high, c)], "other events are left alone");
        let partial = set(s.alerts.clone(), false);
        assert!(diff_alerts(&partial, &stored).1.is_empty());
    }

    #[test]
    fn one_delivery_per_endpoint_with_the_events_it_wants() {
        let deal = super::super::new_id();
        let s = set(vec![alert(WebhookEvent::DealHighRisk, deal)], true);
        let hook = |events: Vec<WebhookEvent>| Webhook {
            id: super::super::new_id(),
            workspace_id: super::super::new_id(),
            url: "https://example.com/hook".into(),
            events,
            description: None,
            created_at: s.now,
        };
        let wants = hook(vec![WebhookEvent::DealHighRisk]);
        let other = hook(vec![WebhookEvent::DealSingleThreaded]);
        let raised: Vec<&Alert> = s.alerts.iter().collect();
        let planned = plan_deliveries(wants.workspace_id, &s, &raised, &[wants.clone(), other]);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].webhook_id, wants.id);
        let body: serde_json::Value = serde_json::from_str(&planned[0].body).expect("json");
        assert_eq!(body["id"], planned[0].id.to_string());
        assert_eq!(body["skill_run_id"], s.run_id.to_string());
        assert_eq!(body["alerts"][0]["event"], "deal.high_risk");
        assert_eq!(body["alerts"][0]["deal"]["id"], deal.to_string());
        assert_eq!(
            planned[0].job.payload["delivery_id"],
            planned[0].id.to_string()
        );
    }
}
