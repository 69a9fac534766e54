//! [`WebhookStore`] for [`PgStore`]: webhook endpoints, raised alerts and
//! deliveries (migration 008).
//!
//! Recording a run's alerts is one transaction: the stored alerts are read,
//! the new ones inserted with `ON CONFLICT DO NOTHING` (a concurrent run
//! that raised the same alert first makes the insert wait for its commit and
//! then insert nothing, so an alert is raised, and delivered, once), the
//! cleared ones deleted, and the deliveries of what this call raised created
//! with their jobs. A delivery's status, attempts and last error are read
//! from its job.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::model::{
    diff_alerts, plan_deliveries, AlertOutcome, AlertSet, DeliveryRequest, DeliveryStatus, JobKind,
    PlannedDelivery, RaisedAlert, RunStatus, StoredCredentials, Webhook, WebhookDelivery,
    WebhookEvent, WorkspaceId,
};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::store::{check_finish_status, WebhookStore};
use pandora_core::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::errors::{corrupt, is_foreign_key_violation, is_unique_violation, DbResultExt};
use crate::keyset::{self, After, SortValue};
use crate::PgStore;

/// Columns a webhook query selects (alias `w`), as [`webhook_from_row`] reads them.
const WEBHOOK_COLUMNS: &str = "w.workspace_id, w.id, w.url, w.events, w.description, w.created_at";

/// Columns a delivery query selects (`d` joined with its job `j`), as
/// [`delivery_from_row`] reads them.
const DELIVERY_COLUMNS: &str = "d.workspace_id, d.id, d.webhook_id, d.body, d.response_status, \
     d.created_at, d.finished_at, j.status, j.attempts, j.max_attempts, j.last_error, \
     j.updated_at AS job_updated_at";

/// The delivery join.
const DELIVERY_FROM: &str =
    "webhook_deliveries d JOIN jobs j ON j.workspace_id = d.workspace_id AND j.id = d.id";

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, webhook: &Webhook, secret: &StoredCredentials) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhooks (workspace_id, id, url, events, description, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(webhook.workspace_id)
        .bind(webhook.id)
        .bind(&webhook.url)
        .bind(events_strings(&webhook.events))
        .bind(&webhook.description)
        .bind(&secret.0)
        .bind(webhook.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!("webhook {} already exists", webhook.id))
            } else if is_foreign_key_violation(&e) {
                Error::not_found("workspace", webhook.workspace_id)
            } else {
                crate::errors::map_db_error(e, Some(webhook.workspace_id))
            }
        })?;
        Ok(())
    }

    async fn list_webhooks(&self, workspace: WorkspaceId) -> Result<Vec<Webhook>> {
        let mut conn = self.pool.acquire().await.db()?;
        webhooks_of(&mut conn, workspace).await
    }

    async fn get_webhook(&self, workspace: WorkspaceId, webhook_id: Uuid) -> Result<Webhook> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.workspace_id = $1 AND w.id = $2"
        ))
        .bind(workspace)
        .bind(webhook_id)
        .fetch_optional(&self.pool)
        .await
        .db()?
        .ok_or_else(|| Error::not_found("webhook", webhook_id))?;
        webhook_from_row(&row)
    }

    async fn delete_webhook(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.db()?;
        sqlx::query(
            "UPDATE jobs SET status = 'cancelled', lease_until = NULL, \
                 updated_at = GREATEST(updated_at, $1) \
             WHERE workspace_id = $2 AND kind = 'webhook' AND status IN ('queued', 'running') \
               AND id IN (SELECT id FROM webhook_deliveries \
                          WHERE workspace_id = $2 AND webhook_id = $3)",
        )
        .bind(now)
        .bind(workspace)
        .bind(webhook_id)
        .execute(&mut *tx)
        .await
        .db()?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2")
            .bind(workspace)
            .bind(webhook_id)
            .execute(&mut *tx)
            .await
            .db()?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found("webhook", webhook_id));
        }
        tx.commit().await.db()?;
        Ok(())
    }

    async fn record_alerts(&self, workspace: WorkspaceId, set: &AlertSet) -> Result<AlertOutcome> {
        let mut tx = self.pool.begin().await.db()?;
        let exists = sqlx::query("SELECT 1 FROM workspaces WHERE id = $1")
            .bind(workspace)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
        if exists.is_none() {
            return Err(Error::not_found("workspace", workspace));
        }
        let stored: Vec<(WebhookEvent, Uuid)> = stored_alerts(&mut tx, workspace)
            .await?
            .into_iter()
            .map(|a| (a.event, a.deal_id))
            .collect();
        let (new, clear) = diff_alerts(set, &stored);
        let mut raised = Vec::with_capacity(new.len());
        for alert in new {
            let done = sqlx::query(
                "INSERT INTO webhook_alerts (workspace_id, event, deal_id, run_id, raised_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(workspace)
            .bind(alert.event.as_str())
            .bind(alert.deal_id)
            .bind(set.run_id)
            .bind(set.now)
            .execute(&mut *tx)
            .await
            .db_in(workspace)?;
            if done.rows_affected() > 0 {
                raised.push(alert);
            }
        }
        let mut cleared = 0;
        for (event, deal) in &clear {
            cleared += sqlx::query(
                "DELETE FROM webhook_alerts WHERE workspace_id = $1 AND event = $2 AND deal_id = $3",
            )
            .bind(workspace)
            .bind(event.as_str())
            .bind(deal)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
        }
        let hooks = webhooks_of(&mut tx, workspace).await?;
        let planned = plan_deliveries(workspace, set, &raised, &hooks);
        for d in &planned {
            insert_delivery(&mut tx, workspace, d, set.now).await?;
        }
        tx.commit().await.db()?;
        Ok(AlertOutcome {
            raised: raised.len() as u64,
            cleared,
            deliveries: planned.iter().map(|d| d.id).collect(),
        })
    }

    async fn list_alerts(&self, workspace: WorkspaceId) -> Result<Vec<RaisedAlert>> {
        let mut conn = self.pool.acquire().await.db()?;
        stored_alerts(&mut conn, workspace).await
    }

    async fn list_deliveries(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        keyset::require_updated_at(page)?;
        let after = keyset::after(page)?;
        self.get_webhook(workspace, webhook_id).await?;
        let direction = page.sort.direction;
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.workspace_id = "
        ));
        qb.push_bind(workspace)
            .push(" AND d.webhook_id = ")
            .push_bind(webhook_id);
        if let Some(After::Value(SortValue::Timestamp(t), id)) = after {
            keyset::push_after_value(
                &mut qb,
                "d",
                "created_at",
                direction,
                SortValue::Timestamp(t),
                id,
            );
        }
        qb.push(" ORDER BY ")
            .push(keyset::order_by("d", "created_at", false, direction))
            .push(keyset::limit_sql(page));
        let rows = qb.build().fetch_all(&self.pool).await.db()?;
        let deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(deliveries, page.limit, |d| {
            Cursor::after_updated(d.created_at, d.id, page.sort)
        }))
    }

    async fn get_delivery(
        &self,
        workspace: WorkspaceId,
        delivery_id: Uuid,
    ) -> Result<WebhookDelivery> {
        let mut conn = self.pool.acquire().await.db()?;
        read_delivery(&mut conn, workspace, delivery_id).await
    }

    async fn delivery_request(
        &self,
        workspace: WorkspaceId,
        delivery_id: Uuid,
    ) -> Result<DeliveryRequest> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS}, w.secret, d.body FROM webhook_deliveries d \
             JOIN webhooks w ON w.workspace_id = d.workspace_id AND w.id = d.webhook_id \
             WHERE d.workspace_id = $1 AND d.id = $2"
        ))
        .bind(workspace)
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await
        .db()?
        .ok_or_else(|| Error::not_found("webhook delivery", delivery_id))?;
        Ok(DeliveryRequest {
            webhook: webhook_from_row(&row)?,
            secret: StoredCredentials(row.try_get("secret").db()?),
            body: row.try_get("body").db()?,
        })
    }

    async fn finish_delivery(
        &self,
        job_id: Uuid,
        worker: &str,
        status: RunStatus,
        response_status: Option<u16>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookDelivery>> {
        check_finish_status(status)?;
        // The job keeps the error of its last failed attempt when it succeeds.
        let job_error = match status {
            RunStatus::Succeeded => None,
            _ => error,
        };
        let mut tx = self.pool.begin().await.db()?;
        let held = sqlx::query(
            "UPDATE jobs SET status = $3, lease_until = NULL, \
                 last_error = COALESCE($4, last_error), updated_at = $5 \
             WHERE id = $1 AND worker = $2 AND status = 'running' \
             RETURNING workspace_id, kind",
        )
        .bind(job_id)
        .bind(worker)
        .bind(status.as_str())
        .bind(job_error)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let Some(held) = held else {
            return Ok(None);
        };
        let kind: String = held.try_get("kind").db()?;
        if kind != JobKind::Webhook.as_str() {
            return Err(Error::invalid("job_id", "is not a webhook job"));
        }
        let workspace: Uuid = held.try_get("workspace_id").db()?;
        sqlx::query(
            "UPDATE webhook_deliveries SET response_status = COALESCE($1, response_status), \
                 finished_at = $2 WHERE workspace_id = $3 AND id = $4",
        )
        .bind(response_status.map(i32::from))
        .bind(now)
        .bind(workspace)
        .bind(job_id)
        .execute(&mut *tx)
        .await
        .db()?;
        let delivery = read_delivery(&mut tx, workspace, job_id).await?;
        tx.commit().await.db()?;
        Ok(Some(delivery))
    }

    async fn retry_delivery(
        &self,
        job_id: Uuid,
        worker: &str,
        response_status: Option<u16>,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.db()?;
        let held = sqlx::query(
            "UPDATE jobs SET status = 'queued', run_after = $3, lease_until = NULL, \
                 last_error = $4, updated_at = GREATEST(updated_at, $5) \
             WHERE id = $1 AND worker = $2 AND status = 'running' \
             RETURNING workspace_id, kind",
        )
        .bind(job_id)
        .bind(worker)
        .bind(retry_at)
        .bind(error)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let Some(held) = held else {
            return Ok(false);
        };
        let kind: String = held.try_get("kind").db()?;
        if kind != JobKind::Webhook.as_str() {
            return Err(Error::invalid("job_id", "is not a webhook job"));
        }
        let workspace: Uuid = held.try_get("workspace_id").db()?;
        sqlx::query(
            "UPDATE webhook_deliveries SET response_status = $1 WHERE workspace_id = $2 AND id = $3",
        )
        .bind(response_status.map(i32::from))
        .bind(workspace)
        .bind(job_id)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(true)
    }
}

/// Inserts a planned delivery's job and row.
async fn insert_delivery(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    d: &PlannedDelivery,
    now: DateTime<Utc>,
) -> Result<()> {
    let max_attempts = i32::try_from(d.job.max_attempts)
        .map_err(|_| Error::invalid("max_attempts", "is too large"))?;
    sqlx::query(
        "INSERT INTO jobs (workspace_id, id, kind, connection_id, payload, status, attempts, \
             max_attempts, run_after, lease_until, worker, last_error, dedupe_key, created_at, \
             updated_at) \
         VALUES ($1, $2, $3, NULL, $4, 'queued', 0, $5, $6, NULL, NULL, NULL, NULL, $7, $7)",
    )
    .bind(workspace)
    .bind(d.id)
    .bind(JobKind::Webhook.as_str())
    .bind(&d.job.payload)
    .bind(max_attempts)
    .bind(d.job.run_after)
    .bind(now)
    .execute(&mut *conn)
    .await
    .db_in(workspace)?;
    sqlx::query(
        "INSERT INTO webhook_deliveries (workspace_id, id, webhook_id, body, response_status, \
             created_at, finished_at) VALUES ($1, $2, $3, $4, NULL, $5, NULL)",
    )
    .bind(workspace)
    .bind(d.id)
    .bind(d.webhook_id)
    .bind(&d.body)
    .bind(now)
    .execute(&mut *conn)
    .await
    .db_in(workspace)?;
    Ok(())
}

/// The workspace's endpoints, oldest first.
async fn webhooks_of(conn: &mut PgConnection, workspace: WorkspaceId) -> Result<Vec<Webhook>> {
    let rows = sqlx::query(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.workspace_id = $1 \
         ORDER BY w.created_at, w.id"
    ))
    .bind(workspace)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    rows.iter().map(webhook_from_row).collect()
}

/// The workspace's raised alerts, by event then deal id.
async fn stored_alerts(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
) -> Result<Vec<RaisedAlert>> {
    let rows = sqlx::query(
        "SELECT event, deal_id, run_id, raised_at FROM webhook_alerts \
         WHERE workspace_id = $1 ORDER BY event, deal_id",
    )
    .bind(workspace)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            let event: String = row.try_get("event").db()?;
            Ok(RaisedAlert {
                event: parse_event(&event)?,
                deal_id: row.try_get("deal_id").db()?,
                run_id: row.try_get("run_id").db()?,
                raised_at: row.try_get("raised_at").db()?,
            })
        })
        .collect()
}

/// One delivery of the workspace, with its job's state.
async fn read_delivery(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    id: Uuid,
) -> Result<WebhookDelivery> {
    let row = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.workspace_id = $1 AND d.id = $2"
    ))
    .bind(workspace)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .db()?
    .ok_or_else(|| Error::not_found("webhook delivery", id))?;
    delivery_from_row(&row)
}

fn events_strings(events: &[WebhookEvent]) -> Vec<String> {
    events.iter().map(|e| e.as_str().to_string()).collect()
}

fn parse_event(s: &str) -> Result<WebhookEvent> {
    WebhookEvent::parse(s).ok_or_else(|| corrupt("webhook event", format!("unknown event {s:?}")))
}

/// A `webhooks` row.
fn webhook_from_row(row: &PgRow) -> Result<Webhook> {
    let events: Vec<String> = row.try_get("events").db()?;
    Ok(Webhook {
        id: row.try_get("id").db()?,
        workspace_id: row.try_get("workspace_id").db()?,
        url: row.try_get("url").db()?,
        events: events
            .iter()
            .map(|e| parse_event(e))
            .collect::<Result<_>>()?,
        description: row.try_get("description").db()?,
        created_at: row.try_get("created_at").db()?,
    })
}

/// A delivery joined with its job.
fn delivery_from_row(row: &PgRow) -> Result<WebhookDelivery> {
    let status: String = row.try_get("status").db()?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| corrupt("job", format!("unknown status {status:?}")))?;
    let count = |column: &str| -> Result<u32> {
        let n: i32 = row.try_get(column).db()?;
        u32::try_from(n).map_err(|_| corrupt("job", format!("negative {column}")))
    };
    let response_status: Option<i32> = row.try_get("response_status").db()?;
    let finished_at: Option<DateTime<Utc>> = row.try_get("finished_at").db()?;
    let finished_at = match finished_at {
        Some(t) => Some(t),
        None if status.is_finished() => Some(row.try_get("job_updated_at").db()?),
        None => None,
    };
    let body: String = row.try_get("body").db()?;
    Ok(WebhookDelivery {
        id: row.try_get("id").db()?,
        workspace_id: row.try_get("workspace_id").db()?,
        webhook_id: row.try_get("webhook_id").db()?,
        payload: serde_json::from_str(&body).map_err(|e| corrupt("webhook delivery", e))?,
        status: DeliveryStatus::of_job(status),
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        last_error: row.try_get("last_error").db()?,
        response_status: response_status.and_then(|s| u16::try_from(s).ok()),
        created_at: row.try_get("created_at").db()?,
        finished_at,
    })
}
