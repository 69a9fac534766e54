//! [`SkillStore`]: skill runs, per-workspace skill settings, quotas, and the
//! loader's scans (migration 007).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pandora_core::model::{
    Conversation, DealContact, NewQuota, Quota, RunStatus, SkillRun, SkillScheduleOverride,
    WorkspaceId,
};
use pandora_core::query::{Cursor, Page, PageRequest};
use pandora_core::skill::{
    check_new_quotas, check_new_skill_run, DealRiskUpdate, ScannedDeal, SkillStore,
};
use pandora_core::store::check_finish_status;
use pandora_core::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Executor, PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::errors::{corrupt, is_foreign_key_violation, is_unique_violation, DbResultExt};
use crate::keyset::{self, After, SortValue};
use crate::rows;
use crate::PgStore;

/// Columns a skill-run query selects, as [`run_from_row`] reads them.
pub(crate) const RUN_COLUMNS: &str = "r.workspace_id, r.id, r.skill, r.period, r.period_start, \
                           r.period_end, r.as_of, r.settings, r.status, r.report, r.error, \
                           r.started_at, r.finished_at";

/// Deals per `set_deal_risk` statement.
const RISK_CHUNK: usize = 5_000;

/// Columns a quota query selects, as [`quota_from_row`] reads them.
const QUOTA_COLUMNS: &str = "workspace_id, user_id, period, amount, currency, updated_at";

#[async_trait]
impl SkillStore for PgStore {
    async fn create_skill_run(&self, workspace: WorkspaceId, run: &SkillRun) -> Result<()> {
        check_new_skill_run(workspace, run)?;
        insert_skill_run(&self.pool, run).await
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
        let mut conn = self.pool.acquire().await.db()?;
        let ended = end_skill_run(
            &mut conn,
            workspace,
            run_id,
            SkillRunEnd {
                status,
                report,
                error,
                finished_at,
            },
        )
        .await?;
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
            "SELECT {RUN_COLUMNS} FROM skill_runs r WHERE r.workspace_id = $1 AND r.id = $2"
        ))
        .bind(workspace)
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .db()?
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
        keyset::require_updated_at(page)?;
        let after = keyset::after(page)?;
        let direction = page.sort.direction;
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {RUN_COLUMNS} FROM skill_runs r WHERE r.workspace_id = "
        ));
        qb.push_bind(workspace)
            .push(" AND r.skill = ")
            .push_bind(skill.to_owned());
        if let Some(After::Value(SortValue::Timestamp(t), id)) = after {
            keyset::push_after_value(
                &mut qb,
                "r",
                "started_at",
                direction,
                SortValue::Timestamp(t),
                id,
            );
        }
        qb.push(" ORDER BY ")
            .push(keyset::order_by("r", "started_at", false, direction))
            .push(keyset::limit_sql(page));
        let fetched = qb.build().fetch_all(&self.pool).await.db()?;
        let runs = fetched
            .iter()
            .map(run_from_row)
            .collect::<Result<Vec<_>>>()?;
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
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {RUN_COLUMNS} FROM skill_runs r WHERE r.workspace_id = "
        ));
        qb.push_bind(workspace)
            .push(" AND r.skill = ")
            .push_bind(skill.to_owned())
            .push(" AND r.status = 'succeeded'");
        if let Some(p) = period {
            qb.push(" AND r.period = ").push_bind(p.to_owned());
        }
        qb.push(" ORDER BY r.started_at DESC, r.id DESC LIMIT 1");
        qb.build()
            .fetch_optional(&self.pool)
            .await
            .db()?
            .as_ref()
            .map(run_from_row)
            .transpose()
    }

    async fn get_skill_settings(
        &self,
        workspace: WorkspaceId,
        skill: &str,
    ) -> Result<Option<serde_json::Value>> {
        sqlx::query_scalar::<_, serde_json::Value>(
            "SELECT settings FROM skill_settings WHERE workspace_id = $1 AND skill = $2",
        )
        .bind(workspace)
        .bind(skill)
        .fetch_optional(&self.pool)
        .await
        .db()
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
             VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, skill) \
             DO UPDATE SET settings = EXCLUDED.settings, updated_at = EXCLUDED.updated_at",
        )
        .bind(workspace)
        .bind(skill)
        .bind(Json(settings))
        .bind(now)
        .execute(&self.pool)
        .await
        .db_in(workspace)?;
        Ok(())
    }

    async fn set_deal_risk(
        &self,
        workspace: WorkspaceId,
        updates: &[DealRiskUpdate],
    ) -> Result<u64> {
        let mut changed = 0;
        let mut tx = self.pool.begin().await.db()?;
        for chunk in updates.chunks(RISK_CHUNK) {
            let ids: Vec<Uuid> = chunk.iter().map(|u| u.deal_id).collect();
            let scores: Vec<i16> = chunk.iter().map(|u| i16::from(u.score)).collect();
            let reasons: Vec<serde_json::Value> = chunk
                .iter()
                .map(|u| serde_json::to_value(&u.reasons))
                .collect::<serde_json::Result<_>>()?;
            changed += sqlx::query(
                "UPDATE deals d SET risk_score = u.score, \
                     computed = jsonb_set(jsonb_set(d.computed, '{risk_score}', to_jsonb(u.score)), \
                         '{risk_reasons}', u.reasons) \
                 FROM unnest($2::uuid[], $3::int2[], $4::jsonb[]) AS u(id, score, reasons) \
                 WHERE d.workspace_id = $1 AND d.id = u.id AND d.computed IS NOT NULL",
            )
            .bind(workspace)
            .bind(&ids)
            .bind(&scores)
            .bind(&reasons)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
        }
        tx.commit().await.db()?;
        Ok(changed)
    }

    async fn put_skill_schedule(
        &self,
        workspace: WorkspaceId,
        schedule: &SkillScheduleOverride,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO skill_schedules (workspace_id, skill, cron, enabled, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, skill) \
             DO UPDATE SET cron = excluded.cron, enabled = excluded.enabled, \
                 updated_at = excluded.updated_at",
        )
        .bind(workspace)
        .bind(&schedule.skill)
        .bind(&schedule.cron)
        .bind(schedule.enabled)
        .bind(schedule.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| crate::errors::map_db_error(e, Some(workspace)))?;
        Ok(())
    }

    async fn list_skill_schedules(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<SkillScheduleOverride>> {
        let rows = sqlx::query(
            "SELECT skill, cron, enabled, updated_at FROM skill_schedules \
             WHERE workspace_id = $1 ORDER BY skill",
        )
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|row| {
                Ok(SkillScheduleOverride {
                    skill: row.try_get("skill").db()?,
                    cron: row.try_get("cron").db()?,
                    enabled: row.try_get("enabled").db()?,
                    updated_at: row.try_get("updated_at").db()?,
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
        let mut tx = self.pool.begin().await.db()?;
        let mut stored = Vec::with_capacity(quotas.len());
        for (i, q) in quotas.iter().enumerate() {
            let row = sqlx::query(&format!(
                "INSERT INTO quotas ({QUOTA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (workspace_id, user_id, period) DO UPDATE SET \
                 amount = EXCLUDED.amount, currency = EXCLUDED.currency, \
                 updated_at = EXCLUDED.updated_at RETURNING {QUOTA_COLUMNS}"
            ))
            .bind(workspace)
            .bind(q.user_id)
            .bind(&q.period)
            .bind(q.amount.round_dp(4).normalize())
            .bind(&q.currency)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    Error::invalid(
                        format!("quotas[{i}].user_id"),
                        format!("{} is not a user of this workspace", q.user_id),
                    )
                } else {
                    crate::errors::map_db_error(e, Some(workspace))
                }
            })?;
            stored.push(quota_from_row(&row)?);
        }
        tx.commit().await.db()?;
        Ok(stored)
    }

    async fn list_quotas(
        &self,
        workspace: WorkspaceId,
        period: Option<&str>,
    ) -> Result<Vec<Quota>> {
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {QUOTA_COLUMNS} FROM quotas WHERE workspace_id = "
        ));
        qb.push_bind(workspace);
        if let Some(p) = period {
            qb.push(" AND period = ").push_bind(p.to_owned());
        }
        qb.push(" ORDER BY period, user_id");
        let fetched = qb.build().fetch_all(&self.pool).await.db()?;
        fetched.iter().map(quota_from_row).collect()
    }

    async fn scan_deals(
        &self,
        workspace: WorkspaceId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ScannedDeal>> {
        let mut conn = self.pool.acquire().await.db()?;
        let fetched = sqlx::query(
            "SELECT id, source, data, created_at, deleted_at FROM deals \
             WHERE workspace_id = $1 AND ($2::uuid IS NULL OR id > $2) \
             ORDER BY id LIMIT $3",
        )
        .bind(workspace)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .db()?;
        let mut deals = fetched
            .iter()
            .map(|row| {
                Ok(ScannedDeal {
                    id: row.try_get("id").db()?,
                    source: row.try_get("source").db()?,
                    fields: row
                        .try_get::<Json<_>, _>("data")
                        .map(|Json(v)| v)
                        .map_err(|e| corrupt("deal", e))?,
                    created_at: row.try_get("created_at").db()?,
                    deleted_at: row.try_get("deleted_at").db()?,
                    changes: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (Some(first), Some(last)) = (deals.first(), deals.last()) else {
            return Ok(deals);
        };
        let changes = sqlx::query(
            "SELECT id, workspace_id, deal_id, field, old_value, new_value, changed_at, origin \
             FROM deal_changes WHERE workspace_id = $1 AND deal_id BETWEEN $2 AND $3 \
             ORDER BY deal_id, changed_at, id",
        )
        .bind(workspace)
        .bind(first.id)
        .bind(last.id)
        .fetch_all(&mut *conn)
        .await
        .db()?;
        // Both lists are ordered by deal id: merge them.
        let mut at = 0;
        for row in &changes {
            let change = rows::deal_change(row)?;
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
        let fetched = scan_live(self, "deal_contacts", workspace, after, limit).await?;
        fetched
            .iter()
            .map(|row| {
                Ok(DealContact {
                    id: row.try_get("id").db()?,
                    workspace_id: workspace,
                    source: row.try_get("source").db()?,
                    fields: row
                        .try_get::<Json<_>, _>("data")
                        .map(|Json(v)| v)
                        .map_err(|e| corrupt("deal contact", e))?,
                    created_at: row.try_get("created_at").db()?,
                    updated_at: row.try_get("updated_at").db()?,
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
        let fetched = scan_live(self, "conversations", workspace, after, limit).await?;
        fetched
            .iter()
            .map(|row| {
                Ok(Conversation {
                    id: row.try_get("id").db()?,
                    workspace_id: workspace,
                    source: row.try_get("source").db()?,
                    fields: row
                        .try_get::<Json<_>, _>("data")
                        .map(|Json(v)| v)
                        .map_err(|e| corrupt("conversation", e))?,
                    created_at: row.try_get("created_at").db()?,
                    updated_at: row.try_get("updated_at").db()?,
                    deleted_at: None,
                })
            })
            .collect()
    }
}

/// Live rows of a record `table`, by id, after `after`, at most `limit`.
async fn scan_live(
    store: &PgStore,
    table: &str,
    workspace: WorkspaceId,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<PgRow>> {
    sqlx::query(&format!(
        "SELECT id, source, data, created_at, updated_at FROM {table} \
         WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR id > $2) \
         ORDER BY id LIMIT $3"
    ))
    .bind(workspace)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .db()
}

/// Inserts a new skill run (checked by the caller).
pub(crate) async fn insert_skill_run<'c, E>(executor: E, run: &SkillRun) -> Result<()>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query(
        "INSERT INTO skill_runs (workspace_id, id, skill, period, period_start, period_end, \
         as_of, settings, status, report, error, started_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)",
    )
    .bind(run.workspace_id)
    .bind(run.id)
    .bind(&run.skill)
    .bind(&run.period)
    .bind(run.period_start)
    .bind(run.period_end)
    .bind(run.as_of)
    .bind(Json(&run.settings))
    .bind(run.status.as_str())
    .bind(run.report.as_ref().map(Json))
    .bind(&run.error)
    .bind(run.started_at)
    .execute(executor)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::conflict(format!("skill run {} already exists", run.id))
        } else {
            crate::errors::map_db_error(e, Some(run.workspace_id))
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
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    run_id: Uuid,
    end: SkillRunEnd<'_>,
) -> Result<Option<SkillRun>> {
    sqlx::query(&format!(
        "UPDATE skill_runs r SET status = $1, report = $2, error = $3, finished_at = $4 \
         WHERE r.workspace_id = $5 AND r.id = $6 AND r.status IN ('queued', 'running') \
         RETURNING {RUN_COLUMNS}"
    ))
    .bind(end.status.as_str())
    .bind(end.report.map(Json))
    .bind(end.error)
    .bind(end.finished_at)
    .bind(workspace)
    .bind(run_id)
    .fetch_optional(&mut *conn)
    .await
    .db()?
    .as_ref()
    .map(run_from_row)
    .transpose()
}

/// A `skill_runs` row.
pub(crate) fn run_from_row(row: &PgRow) -> Result<SkillRun> {
    let status: String = row.try_get("status").db()?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| corrupt("skill run", format!("unknown status {status:?}")))?;
    Ok(SkillRun {
        id: row.try_get("id").db()?,
        workspace_id: row.try_get("workspace_id").db()?,
        skill: row.try_get("skill").db()?,
        period: row.try_get("period").db()?,
        period_start: row.try_get("period_start").db()?,
        period_end: row.try_get("period_end").db()?,
        as_of: row.try_get("as_of").db()?,
        settings: row.try_get("settings").db()?,
        status,
        report: row.try_get("report").db()?,
        error: row.try_get("error").db()?,
        started_at: row.try_get("started_at").db()?,
        finished_at: row.try_get("finished_at").db()?,
    })
}

/// A `quotas` row.
fn quota_from_row(row: &PgRow) -> Result<Quota> {
    let amount: rust_decimal::Decimal = row.try_get("amount").db()?;
    Ok(Quota {
        workspace_id: row.try_get("workspace_id").db()?,
        user_id: row.try_get("user_id").db()?,
        period: row.try_get("period").db()?,
        amount: amount.normalize(),
        currency: row.try_get("currency").db()?,
        updated_at: row.try_get("updated_at").db()?,
    })
}
