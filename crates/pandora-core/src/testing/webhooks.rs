//! Webhooks: endpoints and their sealed secrets, raised alerts (raised once,
//! cleared when the condition ends, never cleared by a truncated set, once
//! under concurrency), deliveries whose state is their job's (retry with the
//! answer's status, finish fenced by worker, a lost worker fails them),
//! deleting an endpoint cancels its deliveries, pagination and tenancy.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::fixtures::{new_workspace, StoreRef};
use crate::error::ErrorKind;
use crate::model::{
    self, Alert, AlertSet, DeliveryStatus, JobKind, RunStatus, StoredCredentials, Webhook,
    WebhookEvent,
};
use crate::query::PageRequest;
use crate::store::lost_worker_error;

const LEASE: StdDuration = StdDuration::from_secs(60);
const HIGH: WebhookEvent = WebhookEvent::DealHighRisk;
const THREAD: WebhookEvent = WebhookEvent::DealSingleThreaded;

fn t0() -> DateTime<Utc> {
    model::truncate_micros(
        DateTime::parse_from_rfc3339("2026-06-01T09:00:00Z")
            .expect("time")
            .with_timezone(&Utc),
    )
}

async fn webhook(
    store: &StoreRef,
    ws: Uuid,
    events: &[WebhookEvent],
    at: DateTime<Utc>,
) -> Webhook {
    let hook = Webhook {
        id: model::new_id(),
        workspace_id: ws,
        url: "https://hooks.example.com/pandora".into(),
        events: events.to_vec(),
        description: Some("ops channel".into()),
        created_at: at,
    };
    store
        .create_webhook(&hook, &StoredCredentials(format!("pv1.sealed-{}", hook.id)))
        .await
        .expect("create webhook");
    hook
}

fn alert(event: WebhookEvent, deal: Uuid) -> Alert {
    Alert {
        event,
        deal_id: deal,
        data: serde_json::json!({"deal": {"id": deal, "name": "Big deal"}, "evidence": {"band": "high"}}),
    }
}

fn set(
    events: &[WebhookEvent],
    alerts: Vec<Alert>,
    complete: bool,
    now: DateTime<Utc>,
) -> AlertSet {
    AlertSet {
        run_id: model::new_id(),
        skill: "deal_risk".into(),
        events: events.to_vec(),
        alerts,
        complete,
        max_attempts: 3,
        now,
    }
}

/// Endpoints are stored with their sealed secret, listed oldest first, and
/// scoped by workspace; deleting one twice, or another workspace's, is
/// `NotFound`; a missing workspace or a repeated id is refused.
pub async fn webhooks_are_stored_per_workspace(store: StoreRef) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let first = webhook(&store, a, &[HIGH], t0()).await;
    let second = webhook(&store, a, &[HIGH, THREAD], t0() + Duration::seconds(1)).await;
    assert_eq!(
        store.list_webhooks(a).await.expect("list"),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(store.get_webhook(a, second.id).await.expect("get"), second);
    assert!(store.list_webhooks(b).await.expect("list").is_empty());
    let err = store
        .get_webhook(b, first.id)
        .await
        .expect_err("other workspace");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = store
        .delete_webhook(b, first.id, t0())
        .await
        .expect_err("other workspace");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = store
        .create_webhook(&first, &StoredCredentials("pv1.x".into()))
        .await
        .expect_err("same id");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let orphan = Webhook {
        id: model::new_id(),
        workspace_id: model::new_id(),
        ..first.clone()
    };
    let err = store
        .create_webhook(&orphan, &StoredCredentials("pv1.x".into()))
        .await
        .expect_err("no workspace");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    store
        .delete_webhook(a, first.id, t0())
        .await
        .expect("delete");
    assert_eq!(store.list_webhooks(a).await.expect("list"), vec![second]);
    let err = store
        .delete_webhook(a, first.id, t0())
        .await
        .expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// A run's new alerts are raised once and delivered once per endpoint that
/// wants them; the same alerts again send nothing; a complete set without an
/// alert clears it (and it is raised again when it returns); a truncated set
/// clears nothing; alerts of events the set does not evaluate are left alone.
pub async fn alerts_are_raised_once_and_cleared_when_the_condition_ends(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let high_hook = webhook(&store, ws, &[HIGH], t0()).await;
    let thread_hook = webhook(&store, ws, &[THREAD], t0()).await;
    let (d1, d2) = (model::new_id(), model::new_id());

    let run1 = set(&[HIGH], vec![alert(HIGH, d1), alert(HIGH, d2)], true, t0());
    let out = store.record_alerts(ws, &run1).await.expect("record");
    assert_eq!((out.raised, out.cleared, out.deliveries.len()), (2, 0, 1));
    let delivery = store
        .get_delivery(ws, out.deliveries[0])
        .await
        .expect("delivery");
    assert_eq!(delivery.webhook_id, high_hook.id);
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!((delivery.attempts, delivery.max_attempts), (0, 3));
    assert_eq!(delivery.payload["skill_run_id"], run1.run_id.to_string());
    assert_eq!(delivery.payload["alerts"].as_array().map(Vec::len), Some(2));
    let job = store.get_job(ws, delivery.id).await.expect("job");
    assert_eq!(
        (job.kind, job.status, job.connection_id),
        (JobKind::Webhook, RunStatus::Queued, None)
    );
    let request = store
        .delivery_request(ws, delivery.id)
        .await
        .expect("request");
    assert_eq!(request.webhook, high_hook);
    assert_eq!(
        request.secret,
        StoredCredentials(format!("pv1.sealed-{}", high_hook.id))
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&request.body).expect("json"),
        delivery.payload
    );

    let again = set(&[HIGH], vec![alert(HIGH, d2), alert(HIGH, d1)], true, t0());
    let out = store.record_alerts(ws, &again).await.expect("record");
    assert_eq!((out.raised, out.cleared, out.deliveries.len()), (0, 0, 0));

    // A single-threaded alert about d1 is another event: its own endpoint.
    let threads = set(&[THREAD], vec![alert(THREAD, d1)], true, t0());
    let out = store.record_alerts(ws, &threads).await.expect("record");
    assert_eq!((out.raised, out.deliveries.len()), (1, 1));
    let delivery = store
        .get_delivery(ws, out.deliveries[0])
        .await
        .expect("delivery");
    assert_eq!(delivery.webhook_id, thread_hook.id);

    // Truncated: d2 missing says nothing.
    let partial = set(&[HIGH], vec![alert(HIGH, d1)], false, t0());
    let out = store.record_alerts(ws, &partial).await.expect("record");
    assert_eq!((out.raised, out.cleared), (0, 0));
    // Complete: d2 left high risk.
    let out = store
        .record_alerts(ws, &partial_complete(&partial))
        .await
        .expect("record");
    assert_eq!((out.raised, out.cleared, out.deliveries.len()), (0, 1, 0));
    let raised: Vec<(WebhookEvent, Uuid)> = store
        .list_alerts(ws)
        .await
        .expect("alerts")
        .into_iter()
        .map(|a| (a.event, a.deal_id))
        .collect();
    assert_eq!(raised, vec![(HIGH, d1), (THREAD, d1)]);
    // d2 comes back: raised and delivered again.
    let back = set(&[HIGH], vec![alert(HIGH, d1), alert(HIGH, d2)], true, t0());
    let out = store.record_alerts(ws, &back).await.expect("record");
    assert_eq!((out.raised, out.deliveries.len()), (1, 1));
    let delivery = store
        .get_delivery(ws, out.deliveries[0])
        .await
        .expect("delivery");
    assert_eq!(delivery.payload["alerts"][0]["deal"]["id"], d2.to_string());
    let err = store
        .record_alerts(model::new_id(), &back)
        .await
        .expect_err("no workspace");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn partial_complete(s: &AlertSet) -> AlertSet {
    AlertSet {
        complete: true,
        ..s.clone()
    }
}

/// Concurrent runs raising the same alert raise (and deliver) it once.
pub async fn concurrent_runs_raise_an_alert_once(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    webhook(&store, ws, &[HIGH], t0()).await;
    let deal = model::new_id();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        let s = set(&[HIGH], vec![alert(HIGH, deal)], true, t0());
        tasks.push(tokio::spawn(
            async move { store.record_alerts(ws, &s).await },
        ));
    }
    let mut raised = 0;
    let mut deliveries = 0;
    for t in tasks {
        let out = t.await.expect("task").expect("record");
        raised += out.raised;
        deliveries += out.deliveries.len();
    }
    assert_eq!((raised, deliveries), (1, 1));
}

/// A delivery's status, attempts and error are its job's: a retry keeps the
/// answer's status and requeues it, a finish is fenced by worker, a worker
/// lost after the last attempt fails it; deleting the endpoint cancels what
/// was not sent; lists page newest first; every call is workspace-scoped.
pub async fn deliveries_follow_their_jobs(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let other = new_workspace(&store, "B").await;
    let hook = webhook(&store, ws, &[HIGH], t0()).await;
    let now = t0();
    let first = store
        .record_alerts(
            ws,
            &set(&[HIGH], vec![alert(HIGH, model::new_id())], true, now),
        )
        .await
        .expect("record")
        .deliveries[0];

    let job = store
        .claim_job("w1", now, LEASE)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!((job.id, job.kind), (first, JobKind::Webhook));
    assert_eq!(
        store
            .get_delivery(ws, first)
            .await
            .expect("delivery")
            .status,
        DeliveryStatus::Sending
    );
    assert!(!store
        .retry_delivery(first, "w2", Some(500), "nope", now, now)
        .await
        .expect("fenced"));
    let retry_at = now + Duration::seconds(10);
    assert!(store
        .retry_delivery(
            first,
            "w1",
            Some(500),
            "the endpoint answered 500",
            retry_at,
            now
        )
        .await
        .expect("retry"));
    let d = store.get_delivery(ws, first).await.expect("delivery");
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!((d.attempts, d.response_status), (1, Some(500)));
    assert_eq!(d.last_error.as_deref(), Some("the endpoint answered 500"));
    assert!(store
        .claim_job("w1", now + Duration::seconds(9), LEASE)
        .await
        .expect("claim")
        .is_none());
    let later = retry_at + Duration::seconds(1);
    let job = store
        .claim_job("w1", later, LEASE)
        .await
        .expect("claim")
        .expect("retried");
    assert_eq!(job.attempts, 2);
    assert!(store
        .finish_delivery(first, "w2", RunStatus::Succeeded, Some(200), None, later)
        .await
        .expect("fenced")
        .is_none());
    let err = store
        .finish_delivery(first, "w1", RunStatus::Running, None, None, later)
        .await
        .expect_err("not final");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let d = store
        .finish_delivery(first, "w1", RunStatus::Succeeded, Some(204), None, later)
        .await
        .expect("finish")
        .expect("held");
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(
        (d.attempts, d.response_status, d.finished_at),
        (2, Some(204), Some(later))
    );
    assert_eq!(d.last_error.as_deref(), Some("the endpoint answered 500"));

    // A worker lost on the last attempt: the next claim fails the delivery.
    let single = AlertSet {
        max_attempts: 1,
        ..set(&[HIGH], vec![alert(HIGH, model::new_id())], true, later)
    };
    let lost = store
        .record_alerts(ws, &single)
        .await
        .expect("record")
        .deliveries[0];
    store
        .claim_job("dead", later, LEASE)
        .await
        .expect("claim")
        .expect("job");
    let after_lease = later + Duration::seconds(61);
    assert!(store
        .claim_job("w1", after_lease, LEASE)
        .await
        .expect("claim")
        .is_none());
    let d = store.get_delivery(ws, lost).await.expect("delivery");
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 1));
    assert_eq!(d.last_error, Some(lost_worker_error(1)));
    assert!(d.finished_at.is_some());

    // Newest first, a page at a time; scoped by workspace.
    let page = store
        .list_deliveries(ws, hook.id, &PageRequest::first(1))
        .await
        .expect("page");
    assert_eq!(
        page.data.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![lost]
    );
    let next = page.next_cursor.expect("more");
    let page = store
        .list_deliveries(ws, hook.id, &PageRequest::first(1).next(next))
        .await
        .expect("page");
    assert_eq!(
        page.data.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![first]
    );
    assert!(page.next_cursor.is_none());
    for err in [
        store
            .list_deliveries(other, hook.id, &PageRequest::first(5))
            .await
            .map(|_| ()),
        store.get_delivery(other, first).await.map(|_| ()),
        store.delivery_request(other, first).await.map(|_| ()),
    ] {
        assert_eq!(
            err.expect_err("other workspace").kind(),
            ErrorKind::NotFound
        );
    }

    // Deleting the endpoint cancels its pending delivery, and a worker
    // holding one can no longer finish it.
    let pending = store
        .record_alerts(
            ws,
            &set(&[HIGH], vec![alert(HIGH, model::new_id())], true, later),
        )
        .await
        .expect("record")
        .deliveries[0];
    let held = store
        .record_alerts(
            ws,
            &set(&[HIGH], vec![alert(HIGH, model::new_id())], true, later),
        )
        .await
        .expect("record")
        .deliveries[0];
    let claimed = store
        .claim_job("w1", after_lease, LEASE)
        .await
        .expect("claim")
        .expect("job");
    let (running, queued) = if claimed.id == held {
        (held, pending)
    } else {
        (pending, held)
    };
    store
        .delete_webhook(ws, hook.id, after_lease)
        .await
        .expect("delete");
    assert_eq!(
        store.get_job(ws, queued).await.expect("job").status,
        RunStatus::Cancelled
    );
    assert_eq!(
        store.get_job(ws, running).await.expect("job").status,
        RunStatus::Cancelled
    );
    assert!(store
        .finish_delivery(
            running,
            "w1",
            RunStatus::Succeeded,
            Some(200),
            None,
            after_lease
        )
        .await
        .expect("fenced")
        .is_none());
    assert_eq!(
        store
            .get_delivery(ws, queued)
            .await
            .expect_err("gone")
            .kind(),
        ErrorKind::NotFound
    );
    assert!(store
        .claim_job("w1", after_lease, LEASE)
        .await
        .expect("claim")
        .is_none());
}
