//! [`SkillStore`]: skill runs, per-workspace skill settings, quotas, and the
//! loader's scans (migration 007).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::model::{
    ChangeOrigin, Conversation, DealChange, DealContact, DealField, NewQuota, Quota, RunStatus,
    SkillRun, SkillScheduleOverride, WorkspaceId,
};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::skill::{
    check_new_quotas, check_new_skill_run, DealRiskUpdate, ScannedDeal, SkillStore,
};
use pandora_core::store::check_finish_status;
use pandora_core::{Error, Result};
use rust_decimal::Decimal;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::codec::{
    amount_to_e4, col, id_from_sql, id_to_sql, json_from_sql, opt_time_from_sql, time_from_sql,
    time_to_sql,
};
use crate::errors::{db_error, db_error_in, is_foreign_key_violation, is_unique_violation};
use crate::paging::UpdatedPage;
use crate::SqliteStore;

/// Columns a skill-run query selects, as [`run_from_row`] reads them.
const RUN_COLUMNS: &str = "workspace_id, id, skill, period, period_start, period_end, as_of, \
                           settings, status, report, error, started_at, finished_at";

/// Columns a quota query selects, as [`quota_from_row`] reads them.
const QUOTA_COLUMNS: &str = "workspace_id, user_id, period, amount_e4, currency, updated_at";

#[async_trait]
impl SkillStore for SqliteStore {
    async fn create_skill_run(&self, workspace: WorkspaceId, run: &SkillRun) -> Result<()> {
        check_new_skill_run(workspace, run)?;
        insert_skill_run(self.pool(), run).await
    }

    async fn finish_skill_run(
        &self,
        workspace: WorkspaceId,
        run_id: Uuid,
        status: RunStatus,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        finished_at: DateTime<Utc>,
    ) -> Result<SkillRun> {
        check_finish_status(status)?;
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        let end = SkillRunEnd {
            status,
            report,
            error,
            finished_at,
        };
        let ended = end_skill_run(&mut conn, workspace, run_id, end).await?;
        drop(conn);
        match ended {
            Some(run) => Ok(run),
            None => {
                let run = self.get_skill_run(workspace, run_id).await?;
                Err(Error::conflict(format!(
                    "skill run {run_id} is already {}",
                    run.status.as_str()
                )))
            }
        }
    }

    async fn get_skill_run(&self, workspace: WorkspaceId, run_id: Uuid) -> Result<SkillRun> {
        sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM skill_runs WHERE workspace_id = ? AND id = ?"
        ))
        .bind(id_to_sql(workspace))
        .bind(id_to_sql(run_id))
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .as_ref()
        .map(run_from_row)
        .transpose()?
        .ok_or_else(|| Error::not_found("skill run", run_id))
    }

    async fn list_skill_runs(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        page: &PageRequest,
    ) -> Result<Page<SkillRun>> {
        let request = UpdatedPage::parse(page)?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {RUN_COLUMNS} FROM skill_runs WHERE workspace_id = "
        ));
        qb.push_bind(id_to_sql(workspace));
        qb.push(" AND skill = ");
        qb.push_bind(skill.to_owned());
        request.push_tail_on(&mut qb, "started_at", "id");
        let rows = qb.build().fetch_all(self.pool()).await.map_err(db_error)?;
        let runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(runs, page.limit, |r| {
            Cursor::after_updated(r.started_at, r.id, page.sort)
        }))
    }

    async fn latest_skill_run(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        period: Option<&str>,
    ) -> Result<Option<SkillRun>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {RUN_COLUMNS} FROM skill_runs WHERE workspace_id = "
        ));
        qb.push_bind(id_to_sql(workspace));
        qb.push(" AND skill = ");
        qb.push_bind(skill.to_owned());
        qb.push(" AND status = 'succeeded'");
        if let Some(p) = period {
            qb.push(" AND period = ");
            qb.push_bind(p.to_owned());
        }
        qb.push(" ORDER BY started_at DESC, id DESC LIMIT 1");
        qb.build()
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?
            .as_ref()
            .map(run_from_row)
            .transpose()
    }

    async fn get_skill_settings(
        &self,
        workspace: WorkspaceId,
        skill: &str,
    ) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT settings FROM skill_settings WHERE workspace_id = ? AND skill = ?",
        )
        .bind(id_to_sql(workspace))
        .bind(skill)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        text.map(|t| json_from_sql(&t, "skill_settings.settings"))
            .transpose()
    }

    async fn put_skill_settings(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        settings: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if !settings.is_object() {
            return Err(Error::invalid("settings", "must be a JSON object"));
        }
        sqlx::query(
            "INSERT INTO skill_settings (workspace_id, skill, settings, updated_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, skill) \
             DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(id_to_sql(workspace))
        .bind(skill)
        .bind(serde_json::to_string(settings)?)
        .bind(time_to_sql(now))
        .execute(self.pool())
        .await
        .map_err(db_error_in(workspace))?;
        Ok(())
    }

    async fn set_deal_risk(
        &self,
        workspace: WorkspaceId,
        updates: &[DealRiskUpdate],
    ) -> Result<u64> {
        let _turn = self.batch_turn().await;
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        let mut changed = 0;
        for u in updates {
            let reasons = serde_json::to_string(&u.reasons)?;
            changed += sqlx::query(
                "UPDATE deals SET risk_score = ?1, \
                     computed = json_set(computed, '$.risk_score', ?1, '$.risk_reasons', json(?2)) \
                 WHERE workspace_id = ?3 AND id = ?4 AND computed IS NOT NULL",
            )
            .bind(i64::from(u.score))
            .bind(reasons)
            .bind(id_to_sql(workspace))
            .bind(id_to_sql(u.deal_id))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        }
        tx.commit().await.map_err(db_error)?;
        Ok(changed)
    }

    async fn put_skill_schedule(
        &self,
        workspace: WorkspaceId,
        schedule: &SkillScheduleOverride,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO skill_schedules (workspace_id, skill, cron, enabled, updated_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, skill) \
             DO UPDATE SET cron = excluded.cron, enabled = excluded.enabled, \
                 updated_at = excluded.updated_at",
        )
        .bind(id_to_sql(workspace))
        .bind(&schedule.skill)
        .bind(&schedule.cron)
        .bind(schedule.enabled)
        .bind(time_to_sql(schedule.updated_at))
        .execute(self.pool())
        .await
        .map_err(db_error_in(workspace))?;
        Ok(())
    }

    async fn list_skill_schedules(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<SkillScheduleOverride>> {
        let rows = sqlx::query(
            "SELECT skill, cron, enabled, updated_at FROM skill_schedules \
             WHERE workspace_id = ? ORDER BY skill",
        )
        .bind(id_to_sql(workspace))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(SkillScheduleOverride {
                    skill: col(row, "skill")?,
                    cron: col(row, "cron")?,
                    enabled: col::<i64>(row, "enabled")? != 0,
                    updated_at: time_from_sql(
                        col(row, "updated_at")?,
                        "skill_schedules.updated_at",
                    )?,
                })
            })
            .collect()
    }

    async fn put_quotas(
        &self,
        workspace: WorkspaceId,
        quotas: &[NewQuota],
        now: DateTime<Utc>,
    ) -> Result<Vec<Quota>> {
        check_new_quotas(quotas)?;
        let amounts = quotas
            .iter()
            .enumerate()
            .map(|(i, q)| amount_to_e4(q.amount.round_dp(4), &format!("quotas[{i}].amount")))
            .collect::<Result<Vec<_>>>()?;
        // Every statement writes, so the transaction takes the write lock at
        // its first one and never upgrades a read lock.
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        let mut stored = Vec::with_capacity(quotas.len());
        for (i, (q, e4)) in quotas.iter().zip(amounts).enumerate() {
            let row = sqlx::query(&format!(
                "INSERT INTO quotas ({QUOTA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (workspace_id, user_id, period) DO UPDATE SET \
                 amount_e4 = excluded.amount_e4, currency = excluded.currency, \
                 updated_at = excluded.updated_at RETURNING {QUOTA_COLUMNS}"
            ))
            .bind(id_to_sql(workspace))
            .bind(id_to_sql(q.user_id))
            .bind(&q.period)
            .bind(e4)
            .bind(&q.currency)
            .bind(time_to_sql(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    Error::invalid(
                        format!("quotas[{i}].user_id"),
                        format!("{} is not a user of this workspace", q.user_id),
                    )
                } else {
                    db_error(e)
                }
            })?;
            stored.push(quota_from_row(&row)?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(stored)
    }

    async fn list_quotas(
        &self,
        workspace: WorkspaceId,
        period: Option<&str>,
    ) -> Result<Vec<Quota>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {QUOTA_COLUMNS} FROM quotas WHERE workspace_id = "
        ));
        qb.push_bind(id_to_sql(workspace));
        if let Some(p) = period {
            qb.push(" AND period = ");
            qb.push_bind(p.to_owned());
        }
        qb.push(" ORDER BY period, user_id");
        let rows = qb.build().fetch_all(self.pool()).await.map_err(db_error)?;
        rows.iter().map(quota_from_row).collect()
    }

    async fn scan_deals(
        &self,
        workspace: WorkspaceId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ScannedDeal>> {
        let ws = id_to_sql(workspace);
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT id, source, data, created_at, deleted_at FROM deals WHERE workspace_id = ",
        );
        qb.push_bind(ws.clone());
        if let Some(after) = after {
            qb.push(" AND id > ");
            qb.push_bind(id_to_sql(after));
        }
        qb.push(" ORDER BY id LIMIT ");
        qb.push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&mut *conn).await.map_err(db_error)?;
        let mut deals = rows
            .iter()
            .map(|row| {
                Ok(ScannedDeal {
                    id: id_from_sql(col(row, "id")?, "deals.id")?,
                    source: col(row, "source")?,
                    fields: json_from_sql(col(row, "data")?, "deals.data")?,
                    created_at: time_from_sql(col(row, "created_at")?, "deals.created_at")?,
                    deleted_at: opt_time_from_sql(col(row, "deleted_at")?, "deals.deleted_at")?,
                    changes: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (Some(first), Some(last)) = (deals.first(), deals.last()) else {
            return Ok(deals);
        };
        let changes = sqlx::query(
            "SELECT deal_id, id, field, old_value, new_value, changed_at, origin \
             FROM deal_changes WHERE workspace_id = ? AND deal_id >= ? AND deal_id <= ? \
             ORDER BY deal_id, changed_at, id",
        )
        .bind(&ws)
        .bind(id_to_sql(first.id))
        .bind(id_to_sql(last.id))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        // Both lists are ordered by deal id: merge them.
        let mut at = 0;
        for row in &changes {
            let change = change_from_row(row, workspace)?;
            while at < deals.len() && deals[at].id < change.deal_id {
                at += 1;
            }
            if let Some(deal) = deals.get_mut(at).filter(|d| d.id == change.deal_id) {
                deal.changes.push(change);
            }
        }
        Ok(deals)
    }

    async fn scan_deal_contacts(
        &self,
        workspace: WorkspaceId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DealContact>> {
        let rows = scan_live(self, "deal_contacts", workspace, after, limit).await?;
        rows.iter()
            .map(|row| {
                Ok(DealContact {
                    id: id_from_sql(col(row, "id")?, "deal_contacts.id")?,
                    workspace_id: workspace,
                    source: col(row, "source")?,
                    fields: json_from_sql(col(row, "data")?, "deal_contacts.data")?,
                    created_at: time_from_sql(col(row, "created_at")?, "deal_contacts.created_at")?,
                    updated_at: time_from_sql(col(row, "updated_at")?, "deal_contacts.updated_at")?,
                    deleted_at: None,
                })
            })
            .collect()
    }

    async fn scan_conversations(
        &self,
        workspace: WorkspaceId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        let rows = scan_live(self, "conversations", workspace, after, limit).await?;
        rows.iter()
            .map(|row| {
                Ok(Conversation {
                    id: id_from_sql(col(row, "id")?, "conversations.id")?,
                    workspace_id: workspace,
                    source: col(row, "source")?,
                    fields: json_from_sql(col(row, "data")?, "conversations.data")?,
                    created_at: time_from_sql(col(row, "created_at")?, "conversations.created_at")?,
                    updated_at: time_from_sql(col(row, "updated_at")?, "conversations.updated_at")?,
                    deleted_at: None,
                })
            })
            .collect()
    }
}

/// Live rows of a record `table`, by id, after `after`, at most `limit`.
async fn scan_live(
    store: &SqliteStore,
    table: &str,
    workspace: WorkspaceId,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<SqliteRow>> {
    let mut qb = QueryBuilder::<Sqlite>::new(format!(
        "SELECT id, source, data, created_at, updated_at FROM {table} WHERE workspace_id = "
    ));
    qb.push_bind(id_to_sql(workspace));
    qb.push(" AND deleted_at IS NULL");
    if let Some(after) = after {
        qb.push(" AND id > ");
        qb.push_bind(id_to_sql(after));
    }
    qb.push(" ORDER BY id LIMIT ");
    qb.push_bind(i64::from(limit));
    qb.build().fetch_all(store.pool()).await.map_err(db_error)
}

/// Inserts a new skill run (checked by the caller).
pub(crate) async fn insert_skill_run<'c, E>(executor: E, run: &SkillRun) -> Result<()>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let settings = serde_json::to_string(&run.settings)?;
    let report = run.report.as_ref().map(serde_json::to_string).transpose()?;
    sqlx::query(&format!(
        "INSERT INTO skill_runs ({RUN_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
    ))
    .bind(id_to_sql(run.workspace_id))
    .bind(id_to_sql(run.id))
    .bind(&run.skill)
    .bind(&run.period)
    .bind(run.period_start.map(time_to_sql))
    .bind(run.period_end.map(time_to_sql))
    .bind(time_to_sql(run.as_of))
    .bind(settings)
    .bind(run.status.as_str())
    .bind(report)
    .bind(&run.error)
    .bind(time_to_sql(run.started_at))
    .execute(executor)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::conflict(format!("skill run {} already exists", run.id))
        } else {
            db_error_in(run.workspace_id)(e)
        }
    })?;
    Ok(())
}

/// How a skill run ends.
pub(crate) struct SkillRunEnd<'a> {
    pub(crate) status: RunStatus,
    pub(crate) report: Option<&'a serde_json::Value>,
    pub(crate) error: Option<&'a str>,
    pub(crate) finished_at: DateTime<Utc>,
}

/// Ends a queued or running skill run; `None` when it is not queued or
/// running (or not the workspace's).
pub(crate) async fn end_skill_run(
    conn: &mut sqlx::SqliteConnection,
    workspace: WorkspaceId,
    run_id: Uuid,
    end: SkillRunEnd<'_>,
) -> Result<Option<SkillRun>> {
    let report = end.report.map(serde_json::to_string).transpose()?;
    sqlx::query(&format!(
        "UPDATE skill_runs SET status = ?, report = ?, error = ?, finished_at = ? \
         WHERE workspace_id = ? AND id = ? AND status IN ('queued', 'running') \
         RETURNING {RUN_COLUMNS}"
    ))
    .bind(end.status.as_str())
    .bind(report)
    .bind(end.error)
    .bind(time_to_sql(end.finished_at))
    .bind(id_to_sql(workspace))
    .bind(id_to_sql(run_id))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(run_from_row)
    .transpose()
}

/// A `skill_runs` row.
fn run_from_row(row: &SqliteRow) -> Result<SkillRun> {
    let status: &str = col(row, "status")?;
    let status = RunStatus::parse(status).ok_or_else(|| {
        tracing::error!(status, "unknown run status in the database");
        Error::internal("stored skill_runs.status is not a known status")
    })?;
    let report: Option<String> = col(row, "report")?;
    Ok(SkillRun {
        id: id_from_sql(col(row, "id")?, "skill_runs.id")?,
        workspace_id: id_from_sql(col(row, "workspace_id")?, "skill_runs.workspace_id")?,
        skill: col(row, "skill")?,
        period: col(row, "period")?,
        period_start: opt_time_from_sql(col(row, "period_start")?, "skill_runs.period_start")?,
        period_end: opt_time_from_sql(col(row, "period_end")?, "skill_runs.period_end")?,
        as_of: time_from_sql(col(row, "as_of")?, "skill_runs.as_of")?,
        settings: json_from_sql(col(row, "settings")?, "skill_runs.settings")?,
        status,
        report: report
            .map(|r| json_from_sql(&r, "skill_runs.report"))
            .transpose()?,
        error: col(row, "error")?,
        started_at: time_from_sql(col(row, "started_at")?, "skill_runs.started_at")?,
        finished_at: opt_time_from_sql(col(row, "finished_at")?, "skill_runs.finished_at")?,
    })
}

/// A `quotas` row.
fn quota_from_row(row: &SqliteRow) -> Result<Quota> {
    Ok(Quota {
        workspace_id: id_from_sql(col(row, "workspace_id")?, "quotas.workspace_id")?,
        user_id: id_from_sql(col(row, "user_id")?, "quotas.user_id")?,
        period: col(row, "period")?,
        amount: Decimal::new(col(row, "amount_e4")?, 4).normalize(),
        currency: col(row, "currency")?,
        updated_at: time_from_sql(col(row, "updated_at")?, "quotas.updated_at")?,
    })
}

/// A `deal_changes` row (with its `deal_id`).
fn change_from_row(row: &SqliteRow, workspace: WorkspaceId) -> Result<DealChange> {
    let field: &str = col(row, "field")?;
    let origin: &str = col(row, "origin")?;
    Ok(DealChange {
        id: id_from_sql(col(row, "id")?, "deal_changes.id")?,
        workspace_id: workspace,
        deal_id: id_from_sql(col(row, "deal_id")?, "deal_changes.deal_id")?,
        field: DealField::parse(field)
            .ok_or_else(|| Error::internal("stored deal_changes.field is not a known field"))?,
        old_value: col(row, "old_value")?,
        new_value: col(row, "new_value")?,
        changed_at: time_from_sql(col(row, "changed_at")?, "deal_changes.changed_at")?,
        origin: ChangeOrigin::parse(origin)
            .ok_or_else(|| Error::internal("stored deal_changes.origin is not a known origin"))?,
    })
}
