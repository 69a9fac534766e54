//! Skills: the registry, running a skill (recorded as a [`SkillRun`]), the
//! run history, a workspace's skill settings, and quotas.
//!
//! A run either executes in the calling task ([`Pandora::run_skill`], the
//! CLI's foreground run) or is enqueued as a job for a worker
//! ([`Pandora::enqueue_skill_run`], what the API and the scheduler do): the
//! job's id is the run's id, a worker that dies mid-run hands it to the next
//! worker when its lease ends, and transient failures are retried with
//! backoff like syncs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use std::collections::BTreeMap;

use super::jobs::{JobOutcome, RetryPolicy};
use super::{run_error, Pandora};
use crate::error::{Error, Result};
use crate::model::{
    self, Job, NewJob, NewQuota, Quota, RunStatus, SkillRun, SkillScheduleOverride, WorkspaceId,
};
use crate::query::{Page, PageRequest};
use crate::skill::cron::Cron;
use crate::skill::loader::{load_context, LoadRequest};
use crate::skill::{
    DealRiskUpdate, Period, PreviousReport, SettingSpec, Settings, Skill, SkillContext, SkillInfo,
    SkillRegistry,
};

/// How long `POST …/run?wait=true` waits for a run to finish.
pub const SKILL_WAIT: Duration = Duration::from_secs(30);

/// Most quota rows one call may set.
const MAX_QUOTAS: usize = 10_000;

/// What to run a skill on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillRunRequest {
    /// Period label (`2026-Q2`, `2026-05`, `2026`, `2026-04-01..2026-05-15`);
    /// default: the quarter holding `as_of`.
    #[serde(default)]
    pub period: Option<String>,
    /// See the data as it stood at this time (RFC 3339, not in the
    /// future); default: now.
    #[serde(default)]
    pub as_of: Option<DateTime<Utc>>,
    /// Settings for this run only, over the workspace's.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<serde_json::Value>,
}

/// A skill's settings in a workspace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillSettingsView {
    /// The skill.
    pub skill: String,
    /// Every setting, valued: the workspace's where set, else the default.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    /// Only what the workspace set.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub overrides: serde_json::Value,
    /// The skill's settings schema.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub schema: Vec<SettingSpec>,
}

/// A skill's schedule in a workspace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillScheduleView {
    /// The skill.
    pub skill: String,
    /// The cron expression in force (five fields, UTC).
    pub cron: String,
    /// The skill's default expression.
    pub default_cron: String,
    /// Whether the scheduler runs the skill in this workspace.
    pub enabled: bool,
    /// When the schedule next fires (`None` when off).
    pub next_run_at: Option<DateTime<Utc>>,
    /// When the workspace last changed the schedule (`None`: never).
    pub updated_at: Option<DateTime<Utc>>,
}

impl SkillScheduleView {
    fn new(info: &SkillInfo, custom: Option<SkillScheduleOverride>, now: DateTime<Utc>) -> Self {
        let enabled = custom.as_ref().is_none_or(|c| c.enabled);
        let cron = custom
            .as_ref()
            .and_then(|c| c.cron.clone())
            .unwrap_or_else(|| info.default_schedule.to_string());
        let next_run_at = enabled
            .then(|| Cron::parse(&cron).ok()?.next_after(now))
            .flatten();
        SkillScheduleView {
            skill: info.id.to_string(),
            cron,
            default_cron: info.default_schedule.to_string(),
            enabled,
            next_run_at,
            updated_at: custom.map(|c| c.updated_at),
        }
    }
}

/// The body of `PUT …/skills/:skill/schedule`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillSchedulePut {
    /// Cron expression (minute hour day-of-month month day-of-week, UTC);
    /// absent or `null`: the skill's default.
    #[serde(default)]
    pub cron: Option<String>,
    /// `false` turns scheduled runs off (default `true`).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Attempts a queued skill run gets before it stays failed.
pub const SKILL_MAX_ATTEMPTS: u32 = 3;

/// A run prepared by [`Pandora::prepare_skill_run`]: the record to create,
/// and what the loader needs.
struct Prepared {
    skill: std::sync::Arc<dyn Skill>,
    run: SkillRun,
    load: LoadRequest,
    /// The run sees the present with the workspace's own settings (no
    /// `as_of`, no settings overrides): only such runs raise alerts.
    live: bool,
}

impl Pandora {
    /// The skills this deployment offers.
    pub fn skills(&self) -> &SkillRegistry {
        &self.inner.skills
    }

    /// Resolves a request: the skill (unknown → [`Error::NotFound`] listing
    /// the known ones), the as-of time, the period and the settings
    /// (defaults, then the workspace's, then the request's; a bad one →
    /// [`Error::InvalidInput`] naming `settings.<name>`), and the previous
    /// succeeded run of the same period.
    async fn prepare_skill_run(
        &self,
        workspace: WorkspaceId,
        skill_id: &str,
        request: &SkillRunRequest,
    ) -> Result<Prepared> {
        let skill = self.inner.skills.get(skill_id)?;
        let info = skill.info();
        let store = &self.inner.store;
        store.get_workspace(workspace).await?;
        let now = model::now();
        let as_of = match request.as_of {
            Some(t) if t > now => {
                return Err(Error::invalid("as_of", "must not be in the future"));
            }
            Some(t) => model::truncate_micros(t),
            None => now,
        };
        let period = match &request.period {
            Some(label) => self.inner.skills.parse_period(label)?,
            None => self.inner.skills.default_period(as_of),
        };
        let stored = store.get_skill_settings(workspace, info.id).await?;
        let settings = Settings::resolve(
            &info.settings,
            &[
                stored.as_ref().unwrap_or(&serde_json::Value::Null),
                request
                    .settings
                    .as_ref()
                    .unwrap_or(&serde_json::Value::Null),
            ],
        )?;
        let previous = self
            .previous_report(workspace, info.id, &period.label)
            .await?;
        let run = SkillRun {
            id: model::new_id(),
            workspace_id: workspace,
            skill: info.id.to_string(),
            period: Some(period.label.clone()),
            period_start: Some(period.start),
            period_end: Some(period.end),
            as_of,
            settings: settings.to_value(),
            status: RunStatus::Running,
            report: None,
            error: None,
            started_at: now,
            finished_at: None,
        };
        Ok(Prepared {
            skill,
            run,
            load: LoadRequest {
                workspace,
                as_of,
                period,
                settings,
                inputs: info.inputs,
                previous,
            },
            live: request.as_of.is_none() && request.settings.is_none(),
        })
    }

    /// The context a run of `skill` with `request` would see (what
    /// [`Pandora::run_skill`] loads), without recording anything: for
    /// tools, tests and benchmarks.
    pub async fn skill_context(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        request: &SkillRunRequest,
    ) -> Result<SkillContext> {
        let prepared = self.prepare_skill_run(workspace, skill, request).await?;
        load_context(self.inner.store.as_ref(), prepared.load).await
    }

    /// Runs a skill now, in this task, and returns the finished run.
    ///
    /// The run is recorded `running` first, then loaded and computed (the
    /// computation on a blocking thread) and finished: `succeeded` with the
    /// report, or `failed` with the error's message (e.g. a period that
    /// starts after the as-of time). `Err` only for what prevents the
    /// record: unknown skill or workspace, invalid request, store errors.
    pub async fn run_skill(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        request: &SkillRunRequest,
    ) -> Result<SkillRun> {
        let prepared = self.prepare_skill_run(workspace, skill, request).await?;
        self.inner
            .store
            .create_skill_run(workspace, &prepared.run)
            .await?;
        self.execute_skill_run(prepared).await
    }

    /// Enqueues a run of `skill` for a worker and returns it (`queued`; the
    /// run id is the job id). A run that sees the present (no `as_of`) takes
    /// its data as of the moment a worker starts it.
    pub async fn enqueue_skill_run(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        request: &SkillRunRequest,
    ) -> Result<SkillRun> {
        let (run, _) = self
            .enqueue_skill_job(workspace, skill, request, None)
            .await?;
        Ok(run)
    }

    /// Enqueues a skill job (the API's and the scheduler's common path):
    /// the run and whether it was enqueued (`false`: `dedupe_key` taken).
    pub(crate) async fn enqueue_skill_job(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        request: &SkillRunRequest,
        dedupe_key: Option<String>,
    ) -> Result<(SkillRun, bool)> {
        let prepared = self.prepare_skill_run(workspace, skill, request).await?;
        let mut run = prepared.run;
        run.status = RunStatus::Queued;
        let job = NewJob {
            payload: serde_json::json!({ "skill": run.skill, "live": prepared.live }),
            max_attempts: SKILL_MAX_ATTEMPTS,
            run_after: run.started_at,
            dedupe_key,
        };
        let enqueued = self.inner.store.enqueue_skill(&run, &job).await?;
        if enqueued {
            tracing::info!(workspace_id = %workspace, skill = %run.skill, run_id = %run.id, "skill run enqueued");
        }
        Ok((run, enqueued))
    }

    /// Waits up to `timeout` for a run to finish, polling the store; returns
    /// the run as it then is (still `queued` or `running` on timeout).
    pub async fn wait_skill_run(
        &self,
        workspace: WorkspaceId,
        run_id: Uuid,
        timeout: Duration,
    ) -> Result<SkillRun> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let run = self.inner.store.get_skill_run(workspace, run_id).await?;
            let now = tokio::time::Instant::now();
            if !run.status.is_active() || now >= deadline {
                return Ok(run);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Runs one attempt of a claimed skill job: loads the data (as of the
    /// run's `as_of`, which the claim set for a live run), computes, and
    /// finishes the job and its run; transient failures go back to the
    /// queue when `retry` says so.
    pub(crate) async fn execute_skill_job(
        &self,
        job: &Job,
        worker: &str,
        retry: RetryPolicy<'_>,
    ) -> Result<JobOutcome> {
        let store = &self.inner.store;
        let run = store.get_skill_run(job.workspace_id, job.id).await?;
        let live = job.payload.get("live") == Some(&serde_json::Value::Bool(true));
        let outcome = match self.queued_run_load(&run).await {
            Ok((skill, load)) => self.compute_report(skill, load).await,
            Err(e) => Err(e),
        };
        let finish = |status, report: Option<serde_json::Value>, error: Option<String>| async move {
            store
                .finish_skill_job(
                    job.id,
                    worker,
                    status,
                    report.as_ref(),
                    error.as_deref(),
                    model::now(),
                )
                .await
        };
        let mut risk_updates = Vec::new();
        let finished = match outcome {
            Ok((report, updates)) => {
                risk_updates = updates;
                finish(RunStatus::Succeeded, Some(report), None).await?
            }
            Err(e) => {
                let error = run_error(&e);
                tracing::warn!(workspace_id = %job.workspace_id, skill = %run.skill, run_id = %run.id, attempt = job.attempts, error = %error, "skill run attempt failed");
                if let Some(retry_at) = retry(job, &e) {
                    return if store
                        .retry_job(job.id, worker, &error, &BTreeMap::new(), retry_at)
                        .await?
                    {
                        Ok(JobOutcome::Retrying { retry_at, error })
                    } else {
                        Ok(JobOutcome::Lost)
                    };
                }
                finish(RunStatus::Failed, None, Some(error)).await?
            }
        };
        let Some(finished) = finished else {
            return Ok(JobOutcome::Lost);
        };
        tracing::info!(workspace_id = %job.workspace_id, skill = %finished.skill, run_id = %finished.id, status = finished.status.as_str(), "skill run finished");
        self.after_skill_run(&finished, live, &risk_updates).await;
        Ok(JobOutcome::SkillFinished(finished))
    }

    /// What a queued run loads: its skill and the loader's request, rebuilt
    /// from the run's record (period, as-of time, the settings it resolved
    /// when enqueued).
    async fn queued_run_load(
        &self,
        run: &SkillRun,
    ) -> Result<(std::sync::Arc<dyn Skill>, LoadRequest)> {
        let skill = self.inner.skills.get(&run.skill)?;
        let info = skill.info();
        // The period as resolved when the run was enqueued.
        let period = match (&run.period, run.period_start, run.period_end) {
            (Some(label), Some(start), Some(end)) => Period {
                label: label.clone(),
                start,
                end,
            },
            (Some(label), _, _) => self.inner.skills.parse_period(label)?,
            _ => self.inner.skills.default_period(run.as_of),
        };
        let settings = Settings::resolve(&info.settings, &[&run.settings])?;
        let previous = self
            .previous_report(run.workspace_id, info.id, &period.label)
            .await?;
        Ok((
            skill,
            LoadRequest {
                workspace: run.workspace_id,
                as_of: run.as_of,
                period,
                settings,
                inputs: info.inputs,
                previous,
            },
        ))
    }

    /// The latest succeeded run of the skill for the period, as the
    /// context's previous report.
    async fn previous_report(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        period: &str,
    ) -> Result<Option<PreviousReport>> {
        Ok(self
            .inner
            .store
            .latest_skill_run(workspace, skill, Some(period))
            .await?
            .and_then(|r| {
                Some(PreviousReport {
                    run_id: r.id,
                    as_of: r.as_of,
                    report: r.report?,
                })
            }))
    }

    /// Loads the context and computes the report (on a blocking thread).
    async fn compute_report(
        &self,
        skill: std::sync::Arc<dyn Skill>,
        load: LoadRequest,
    ) -> Result<(serde_json::Value, Vec<DealRiskUpdate>)> {
        let ctx = load_context(self.inner.store.as_ref(), load).await?;
        let mut report = tokio::task::spawn_blocking(move || skill.run(&ctx))
            .await
            .map_err(|e| Error::internal(format!("the skill's task failed: {e}")))??;
        let risk_updates = std::mem::take(&mut report.risk_updates);
        Ok((serde_json::to_value(report)?, risk_updates))
    }

    /// What follows a finished run: for a succeeded live run, the risk
    /// scores it established are written on the deals (so `sort=risk` agrees
    /// with it), then its alerts are raised. Failures here are logged; they
    /// never fail the run.
    async fn after_skill_run(&self, run: &SkillRun, live: bool, risk_updates: &[DealRiskUpdate]) {
        if run.status != RunStatus::Succeeded || !live {
            return;
        }
        if !risk_updates.is_empty() {
            match self
                .inner
                .store
                .set_deal_risk(run.workspace_id, risk_updates)
                .await
            {
                Ok(n) => {
                    tracing::info!(workspace_id = %run.workspace_id, run_id = %run.id, deals = n, "risk scores written back on the deals");
                }
                Err(e) => {
                    tracing::warn!(workspace_id = %run.workspace_id, run_id = %run.id, error = %e, "writing the run's risk scores on the deals failed");
                }
            }
        }
        if let Err(e) = self.raise_alerts(run).await {
            tracing::warn!(workspace_id = %run.workspace_id, skill = %run.skill, run_id = %run.id, error = %e, "raising the run's alerts failed");
        }
    }

    /// Loads, computes and finishes a created run.
    async fn execute_skill_run(&self, prepared: Prepared) -> Result<SkillRun> {
        let Prepared {
            skill,
            run,
            load,
            live,
        } = prepared;
        let ws = run.workspace_id;
        let store = &self.inner.store;
        let outcome = self.compute_report(skill, load).await;
        let mut risk_updates = Vec::new();
        let (status, report, error) = match outcome {
            Ok((report, updates)) => {
                risk_updates = updates;
                (RunStatus::Succeeded, Some(report), None)
            }
            Err(e) => {
                tracing::warn!(workspace_id = %ws, skill = %run.skill, run_id = %run.id, error = %e, "skill run failed");
                (RunStatus::Failed, None, Some(run_error(&e)))
            }
        };
        let finished = store
            .finish_skill_run(
                ws,
                run.id,
                status,
                report.as_ref(),
                error.as_deref(),
                model::now(),
            )
            .await?;
        tracing::info!(workspace_id = %ws, skill = %run.skill, run_id = %run.id, status = status.as_str(), "skill run finished");
        self.after_skill_run(&finished, live, &risk_updates).await;
        Ok(finished)
    }

    /// A skill's runs in the workspace, newest first.
    pub async fn skill_runs(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        page: &PageRequest,
    ) -> Result<Page<SkillRun>> {
        self.inner.skills.get(skill)?;
        page.validate()?;
        self.inner
            .store
            .list_skill_runs(workspace, skill, page)
            .await
    }

    /// One run of the skill ([`Error::NotFound`] for a run of another skill
    /// or workspace).
    pub async fn skill_run(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        run_id: Uuid,
    ) -> Result<SkillRun> {
        self.inner.skills.get(skill)?;
        let run = self.inner.store.get_skill_run(workspace, run_id).await?;
        if run.skill != skill {
            return Err(Error::not_found("skill run", run_id));
        }
        Ok(run)
    }

    /// The skill's latest succeeded run (of the period `period` when given,
    /// a label the calendar canonicalizes); [`Error::NotFound`] when none.
    pub async fn latest_skill_run(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        period: Option<&str>,
    ) -> Result<SkillRun> {
        self.inner.skills.get(skill)?;
        let label = period
            .map(|p| self.inner.skills.parse_period(p).map(|p| p.label))
            .transpose()?;
        self.inner
            .store
            .latest_skill_run(workspace, skill, label.as_deref())
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "skill run",
                    format!(
                        "no succeeded run of {skill}{} yet",
                        label.map(|l| format!(" for {l}")).unwrap_or_default()
                    ),
                )
            })
    }

    /// The workspace's settings of a skill, with the defaults filled in.
    pub async fn skill_settings(
        &self,
        workspace: WorkspaceId,
        skill: &str,
    ) -> Result<SkillSettingsView> {
        let info = self.inner.skills.get(skill)?.info();
        self.inner.store.get_workspace(workspace).await?;
        let stored = self
            .inner
            .store
            .get_skill_settings(workspace, info.id)
            .await?
            .unwrap_or_else(|| serde_json::json!({}));
        let settings = Settings::resolve(&info.settings, &[&stored])?;
        Ok(SkillSettingsView {
            skill: info.id.to_string(),
            settings: settings.to_value(),
            overrides: stored,
            schema: info.settings,
        })
    }

    /// Replaces the workspace's settings of a skill with `overrides` (only
    /// the keys to change; `{}` restores every default), validated against
    /// the skill's schema ([`Error::InvalidInput`] naming `settings.<name>`).
    pub async fn put_skill_settings(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        overrides: serde_json::Value,
    ) -> Result<SkillSettingsView> {
        let info = self.inner.skills.get(skill)?.info();
        self.inner.store.get_workspace(workspace).await?;
        let valid = Settings::validate(&info.settings, &overrides)?;
        let overrides = serde_json::Value::Object(valid);
        self.inner
            .store
            .put_skill_settings(workspace, info.id, &overrides, model::now())
            .await?;
        self.skill_settings(workspace, skill).await
    }

    /// The workspace's schedule of a skill: the cron expression in force,
    /// whether it is on, and when it next fires.
    pub async fn skill_schedule(
        &self,
        workspace: WorkspaceId,
        skill: &str,
    ) -> Result<SkillScheduleView> {
        let info = self.inner.skills.get(skill)?.info();
        self.inner.store.get_workspace(workspace).await?;
        let custom = self
            .inner
            .store
            .list_skill_schedules(workspace)
            .await?
            .into_iter()
            .find(|o| o.skill == info.id);
        Ok(SkillScheduleView::new(&info, custom, model::now()))
    }

    /// Replaces the workspace's schedule of a skill: `cron` (five fields,
    /// UTC; `None` restores the skill's default) and `enabled` (`false`
    /// stops scheduled runs; manual runs still work). An invalid expression
    /// is [`Error::InvalidInput`] naming `cron`.
    pub async fn put_skill_schedule(
        &self,
        workspace: WorkspaceId,
        skill: &str,
        schedule: SkillSchedulePut,
    ) -> Result<SkillScheduleView> {
        let info = self.inner.skills.get(skill)?.info();
        self.inner.store.get_workspace(workspace).await?;
        let cron = schedule
            .cron
            .map(|c| Cron::parse(&c).map(|c| c.to_string()))
            .transpose()
            .map_err(|e| Error::invalid("cron", e))?;
        let stored = SkillScheduleOverride {
            skill: info.id.to_string(),
            cron,
            enabled: schedule.enabled,
            updated_at: model::now(),
        };
        self.inner
            .store
            .put_skill_schedule(workspace, &stored)
            .await?;
        Ok(SkillScheduleView::new(&info, Some(stored), model::now()))
    }

    /// Sets quotas: each row replaces its `(user, period)`. Periods are
    /// stored in the calendar's canonical form (`2026-q2` → `2026-Q2`); an
    /// invalid one is [`Error::InvalidInput`] on `quotas[i].period`.
    pub async fn put_quotas(
        &self,
        workspace: WorkspaceId,
        quotas: Vec<NewQuota>,
    ) -> Result<Vec<Quota>> {
        if quotas.len() > MAX_QUOTAS {
            return Err(Error::invalid(
                "quotas",
                format!("at most {MAX_QUOTAS} rows per call"),
            ));
        }
        self.inner.store.get_workspace(workspace).await?;
        let mut rows = Vec::with_capacity(quotas.len());
        for (i, mut q) in quotas.into_iter().enumerate() {
            q.period = self
                .inner
                .skills
                .parse_period(&q.period)
                .map_err(|e| match e {
                    Error::InvalidInput { message, .. } => {
                        Error::invalid(format!("quotas[{i}].period"), message)
                    }
                    other => other,
                })?
                .label;
            if q.amount.scale() > 4 && q.amount != q.amount.round_dp(4) {
                return Err(Error::invalid(
                    format!("quotas[{i}].amount"),
                    "must have at most 4 decimal places",
                ));
            }
            rows.push(q);
        }
        self.inner
            .store
            .put_quotas(workspace, &rows, model::now())
            .await
    }

    /// The workspace's quotas, of one period when given (canonicalized).
    pub async fn list_quotas(
        &self,
        workspace: WorkspaceId,
        period: Option<&str>,
    ) -> Result<Vec<Quota>> {
        self.inner.store.get_workspace(workspace).await?;
        let label = period
            .map(|p| self.inner.skills.parse_period(p).map(|p| p.label))
            .transpose()?;
        self.inner
            .store
            .list_quotas(workspace, label.as_deref())
            .await
    }
}
