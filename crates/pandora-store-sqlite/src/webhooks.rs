//! [`WebhookStore`]: webhook endpoints, raised alerts and deliveries
//! (migration 008).
//!
//! Writes take this store's writer turn and run in a `BEGIN IMMEDIATE`
//! transaction (like the job queue), so recording a run's alerts — reading
//! the stored ones, inserting the new, deleting the cleared, creating the
//! deliveries and their jobs — is atomic. A delivery's status, attempts and
//! last error are read from its job.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::model::{
    diff_alerts, plan_deliveries, AlertOutcome, AlertSet, DeliveryRequest, DeliveryStatus, JobKind,
    RaisedAlert, RunStatus, StoredCredentials, Webhook, WebhookDelivery, WebhookEvent, WorkspaceId,
};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::store::{check_finish_status, WebhookStore};
use pandora_core::{Error, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

use crate::codec::{
    col, id_from_sql, id_to_sql, json_from_sql, opt_time_from_sql, time_from_sql, time_to_sql,
};
use crate::errors::{db_error, db_error_in, is_foreign_key_violation, is_unique_violation};
use crate::paging::UpdatedPage;
use crate::SqliteStore;

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

impl SqliteStore {
    /// A `BEGIN IMMEDIATE` transaction (the caller holds the writer turn).
    async fn immediate(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, webhook: &Webhook, secret: &StoredCredentials) -> Result<()> {
        let events = serde_json::to_string(&events_strings(&webhook.events))?;
        let _turn = self.batch_turn().await;
        sqlx::query(
            "INSERT INTO webhooks (workspace_id, id, url, events, description, secret, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id_to_sql(webhook.workspace_id))
        .bind(id_to_sql(webhook.id))
        .bind(&webhook.url)
        .bind(events)
        .bind(&webhook.description)
        .bind(&secret.0)
        .bind(time_to_sql(webhook.created_at))
        .execute(self.pool())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!("webhook {} already exists", webhook.id))
            } else if is_foreign_key_violation(&e) {
                Error::not_found("workspace", webhook.workspace_id)
            } else {
                db_error_in(webhook.workspace_id)(e)
            }
        })?;
        Ok(())
    }

    async fn list_webhooks(&self, workspace: WorkspaceId) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.workspace_id = ? \
             ORDER BY w.created_at, w.id"
        ))
        .bind(id_to_sql(workspace))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(webhook_from_row).collect()
    }

    async fn get_webhook(&self, workspace: WorkspaceId, webhook_id: Uuid) -> Result<Webhook> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.workspace_id = ? AND w.id = ?"
        ))
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(webhook_id))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found("webhook", webhook_id))?;
        webhook_from_row(&row)
    }

    async fn delete_webhook(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let ws = id_to_sql(workspace);
        let _turn = self.batch_turn().await;
        let mut tx = self.immediate().await?;
        sqlx::query(
            "UPDATE jobs SET status = 'cancelled', lease_until = NULL, \
                 updated_at = max(updated_at, ?1) \
             WHERE workspace_id = ?2 AND kind = 'webhook' AND status IN ('queued', 'running') \
               AND id IN (SELECT id FROM webhook_deliveries \
                          WHERE workspace_id = ?2 AND webhook_id = ?3)",
        )
        .bind(time_to_sql(now))
        .bind(&ws)
        .bind(id_to_sql(webhook_id))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE workspace_id = ? AND id = ?")
            .bind(&ws)
            .bind(id_to_sql(webhook_id))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found("webhook", webhook_id));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn record_alerts(&self, workspace: WorkspaceId, set: &AlertSet) -> Result<AlertOutcome> {
        let ws = id_to_sql(workspace);
        let now = time_to_sql(set.now);
        let outcome = {
            let _turn = self.batch_turn().await;
            let mut tx = self.immediate().await?;
            let exists = sqlx::query("SELECT 1 FROM workspaces WHERE id = ?")
                .bind(&ws)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
            if exists.is_none() {
                return Err(Error::not_found("workspace", workspace));
            }
            let stored = stored_alerts(&mut tx, &ws).await?;
            let stored: Vec<(WebhookEvent, Uuid)> =
                stored.into_iter().map(|a| (a.event, a.deal_id)).collect();
            let (new, clear) = diff_alerts(set, &stored);
            let mut raised = Vec::with_capacity(new.len());
            for alert in new {
                let done = sqlx::query(
                    "INSERT INTO webhook_alerts (workspace_id, event, deal_id, run_id, raised_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(&ws)
                .bind(alert.event.as_str())
                .bind(id_to_sql(alert.deal_id))
                .bind(id_to_sql(set.run_id))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if done.rows_affected() > 0 {
                    raised.push(alert);
                }
            }
            let mut cleared = 0;
            for (event, deal) in &clear {
                cleared += sqlx::query(
                    "DELETE FROM webhook_alerts WHERE workspace_id = ? AND event = ? AND deal_id = ?",
                )
                .bind(&ws)
                .bind(event.as_str())
                .bind(id_to_sql(*deal))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
            }
            let hooks = sqlx::query(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.workspace_id = ? \
                 ORDER BY w.created_at, w.id"
            ))
            .bind(&ws)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?
            .iter()
            .map(webhook_from_row)
            .collect::<Result<Vec<_>>>()?;
            let planned = plan_deliveries(workspace, set, &raised, &hooks);
            for d in &planned {
                insert_delivery(&mut tx, &ws, d, now).await?;
            }
            tx.commit().await.map_err(db_error)?;
            AlertOutcome {
                raised: raised.len() as u64,
                cleared,
                deliveries: planned.iter().map(|d| d.id).collect(),
            }
        };
        self.wal_grew();
        Ok(outcome)
    }

    async fn list_alerts(&self, workspace: WorkspaceId) -> Result<Vec<RaisedAlert>> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        stored_alerts(&mut conn, &id_to_sql(workspace)).await
    }

    async fn list_deliveries(
        &self,
        workspace: WorkspaceId,
        webhook_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        let paged = UpdatedPage::parse(page)?;
        self.get_webhook(workspace, webhook_id).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.workspace_id = "
        ));
        qb.push_bind(id_to_sql(workspace))
            .push(" AND d.webhook_id = ")
            .push_bind(id_to_sql(webhook_id));
        paged.push_tail_on(&mut qb, "d.created_at", "d.id");
        let rows = qb.build().fetch_all(self.pool()).await.map_err(db_error)?;
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
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
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
             WHERE d.workspace_id = ? AND d.id = ?"
        ))
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(delivery_id))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found("webhook delivery", delivery_id))?;
        Ok(DeliveryRequest {
            webhook: webhook_from_row(&row)?,
            secret: StoredCredentials(col(&row, "secret")?),
            body: col(&row, "body")?,
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
        let delivery = {
            let _turn = self.batch_turn().await;
            let mut tx = self.immediate().await?;
            let held = sqlx::query(
                "UPDATE jobs SET status = ?, lease_until = NULL, \
                     last_error = coalesce(?, last_error), updated_at = ? \
                 WHERE id = ? AND worker = ? AND status = 'running' \
                 RETURNING workspace_id, kind",
            )
            .bind(status.as_str())
            .bind(job_error)
            .bind(time_to_sql(now))
            .bind(id_to_sql(job_id))
            .bind(worker)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            let Some(held) = held else {
                return Ok(None);
            };
            let kind: String = col(&held, "kind")?;
            if kind != JobKind::Webhook.as_str() {
                return Err(Error::invalid("job_id", "is not a webhook job"));
            }
            let workspace = id_from_sql(col(&held, "workspace_id")?, "jobs.workspace_id")?;
            sqlx::query(
                "UPDATE webhook_deliveries SET response_status = coalesce(?, response_status), \
                     finished_at = ? WHERE workspace_id = ? AND id = ?",
            )
            .bind(response_status.map(i64::from))
            .bind(time_to_sql(now))
            .bind(id_to_sql(workspace))
            .bind(id_to_sql(job_id))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let delivery = read_delivery(&mut tx, workspace, job_id).await?;
            tx.commit().await.map_err(db_error)?;
            delivery
        };
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
        let _turn = self.batch_turn().await;
        let mut tx = self.immediate().await?;
        let held = sqlx::query(
            "UPDATE jobs SET status = 'queued', run_after = ?, lease_until = NULL, \
                 last_error = ?, updated_at = max(updated_at, ?) \
             WHERE id = ? AND worker = ? AND status = 'running' \
             RETURNING workspace_id, kind",
        )
        .bind(time_to_sql(retry_at))
        .bind(error)
        .bind(time_to_sql(now))
        .bind(id_to_sql(job_id))
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(held) = held else {
            return Ok(false);
        };
        let kind: String = col(&held, "kind")?;
        if kind != JobKind::Webhook.as_str() {
            return Err(Error::invalid("job_id", "is not a webhook job"));
        }
        let workspace: Vec<u8> = col(&held, "workspace_id")?;
        sqlx::query(
            "UPDATE webhook_deliveries SET response_status = ? WHERE workspace_id = ? AND id = ?",
        )
        .bind(response_status.map(i64::from))
        .bind(workspace)
        .bind(id_to_sql(job_id))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}

/// Inserts a planned delivery's job and row.
async fn insert_delivery(
    conn: &mut SqliteConnection,
    ws: &[u8],
    d: &pandora_core::model::PlannedDelivery,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (workspace_id, id, kind, connection_id, payload, status, attempts, \
             max_attempts, run_after, lease_until, worker, last_error, dedupe_key, created_at, \
             updated_at) \
         VALUES (?1, ?2, ?3, NULL, ?4, 'queued', 0, ?5, ?6, NULL, NULL, NULL, NULL, ?7, ?7)",
    )
    .bind(ws)
    .bind(id_to_sql(d.id))
    .bind(JobKind::Webhook.as_str())
    .bind(serde_json::to_string(&d.job.payload)?)
    .bind(i64::from(d.job.max_attempts))
    .bind(time_to_sql(d.job.run_after))
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    sqlx::query(
        "INSERT INTO webhook_deliveries (workspace_id, id, webhook_id, body, response_status, \
             created_at, finished_at) VALUES (?, ?, ?, ?, NULL, ?, NULL)",
    )
    .bind(ws)
    .bind(id_to_sql(d.id))
    .bind(id_to_sql(d.webhook_id))
    .bind(&d.body)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The workspace's raised alerts, by event then deal id.
async fn stored_alerts(conn: &mut SqliteConnection, ws: &[u8]) -> Result<Vec<RaisedAlert>> {
    let rows = sqlx::query(
        "SELECT event, deal_id, run_id, raised_at FROM webhook_alerts \
         WHERE workspace_id = ? ORDER BY event, deal_id",
    )
    .bind(ws)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let event: String = col(row, "event")?;
            Ok(RaisedAlert {
                event: parse_event(&event)?,
                deal_id: id_from_sql(col(row, "deal_id")?, "webhook_alerts.deal_id")?,
                run_id: id_from_sql(col(row, "run_id")?, "webhook_alerts.run_id")?,
                raised_at: time_from_sql(col(row, "raised_at")?, "webhook_alerts.raised_at")?,
            })
        })
        .collect()
}

/// One delivery of the workspace, with its job's state.
async fn read_delivery(
    conn: &mut SqliteConnection,
    workspace: WorkspaceId,
    id: Uuid,
) -> Result<WebhookDelivery> {
    let row = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.workspace_id = ? AND d.id = ?"
    ))
    .bind(id_to_sql(workspace))
    .bind(id_to_sql(id))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?
    .ok_or_else(|| Error::not_found("webhook delivery", id))?;
    delivery_from_row(&row)
}

fn events_strings(events: &[WebhookEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.as_str()).collect()
}

fn parse_event(s: &str) -> Result<WebhookEvent> {
    WebhookEvent::parse(s).ok_or_else(|| {
        tracing::error!(event = s, "unknown webhook event in the database");
        Error::internal("a stored webhook event is not a known event")
    })
}

/// A `webhooks` row.
fn webhook_from_row(row: &SqliteRow) -> Result<Webhook> {
    let events: Vec<String> = json_from_sql(col(row, "events")?, "webhooks.events")?;
    Ok(Webhook {
        id: id_from_sql(col(row, "id")?, "webhooks.id")?,
        workspace_id: id_from_sql(col(row, "workspace_id")?, "webhooks.workspace_id")?,
        url: col(row, "url")?,
        events: events
            .iter()
            .map(|e| parse_event(e))
            .collect::<Result<_>>()?,
        description: col(row, "description")?,
        created_at: time_from_sql(col(row, "created_at")?, "webhooks.created_at")?,
    })
}

/// A delivery joined with its job.
fn delivery_from_row(row: &SqliteRow) -> Result<WebhookDelivery> {
    let status: &str = col(row, "status")?;
    let status = RunStatus::parse(status).ok_or_else(|| {
        tracing::error!(status, "unknown job status in the database");
        Error::internal("stored jobs.status is not a known status")
    })?;
    let count = |column: &str| -> Result<u32> {
        let n: i64 = col(row, column)?;
        u32::try_from(n).map_err(|_| Error::internal("a stored job count is out of range"))
    };
    let response_status: Option<i64> = col(row, "response_status")?;
    let finished_at = match opt_time_from_sql(col(row, "finished_at")?, "finished_at")? {
        Some(t) => Some(t),
        None if status.is_finished() => Some(time_from_sql(
            col(row, "job_updated_at")?,
            "jobs.updated_at",
        )?),
        None => None,
    };
    let body: &str = col(row, "body")?;
    Ok(WebhookDelivery {
        id: id_from_sql(col(row, "id")?, "webhook_deliveries.id")?,
        workspace_id: id_from_sql(col(row, "workspace_id")?, "webhook_deliveries.workspace_id")?,
        webhook_id: id_from_sql(col(row, "webhook_id")?, "webhook_deliveries.webhook_id")?,
        payload: json_from_sql(body, "webhook_deliveries.body")?,
        status: DeliveryStatus::of_job(status),
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        last_error: col(row, "last_error")?,
        response_status: response_status.and_then(|s| u16::try_from(s).ok()),
        created_at: time_from_sql(col(row, "created_at")?, "webhook_deliveries.created_at")?,
        finished_at,
    })
}
