//! Skills: the deployment's registry (`/api/skills`), a workspace's skill
//! runs, results and settings (`/api/workspaces/{id}/skills/{skill}/…`),
//! and its quotas (`/api/workspaces/{id}/quotas`).
//!
//! A run executes in a task of this server process and is recorded as a
//! [`SkillRun`]; queue-based execution and scheduled runs come later.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pandora_core::facade::{
    SkillRunRequest, SkillSchedulePut, SkillScheduleView, SkillSettingsView, SKILL_WAIT,
};
use pandora_core::model::{NewQuota, Quota, SkillRun};
use pandora_core::skill::SkillInfo;
use pandora_core::Pandora;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, WorkspaceScope};
use crate::json::{JsonBody, OptionalJsonBody};
use crate::params::{page_query, QueryParams};
use crate::problem::Problem;
use crate::routes::SkillRunList;

/// Every skill this deployment offers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkillList {
    /// The skills, by id, with their settings schemas.
    pub data: Vec<SkillInfo>,
}

/// The body of `PUT /quotas`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotasRequest {
    /// Rows of (user, period, amount); each replaces that user's quota for that period.
    pub quotas: Vec<NewQuota>,
}

/// A workspace's quotas.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuotaList {
    /// The quotas, by period then user.
    pub data: Vec<Quota>,
}

/// `?wait=` of `run`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameter parsed by `run`.
pub(crate) struct RunParams {
    /// `true`: answer with the finished run when it finishes within 30 s.
    wait: Option<bool>,
}

/// `?period=` of `latest` and of the quota list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameter parsed by the handlers.
pub(crate) struct PeriodParams {
    /// Period label, e.g. `2026-Q2`.
    period: Option<String>,
}

/// Lists every skill of this deployment: id, display name, description,
/// default schedule and settings schema (types, bounds, defaults).
#[utoipa::path(
    get,
    path = "/api/skills",
    tag = "skills",
    responses(
        (status = 200, description = "Every skill, by id", body = SkillList),
        (status = 400, description = "Unknown query parameter"),
    ),
    security(("bearer" = []))
)]
pub async fn list_skills(
    State(pandora): State<Pandora>,
    _caller: Caller,
    q: QueryParams,
) -> Result<Json<SkillList>, Problem> {
    q.finish(&[])?;
    Ok(Json(SkillList {
        data: pandora.skills().infos(),
    }))
}

/// Runs a skill on the workspace's data (as of now, or `as_of`) for a
/// period (default: the current quarter): the run is queued for a worker
/// (`pandora serve` runs one; or `pandora worker`). Answers 202 at once with
/// the queued run; with `?wait=true`, 200 with the finished run (and its
/// report) if it finishes within 30 seconds, else 202.
#[utoipa::path(
    post,
    path = "/api/workspaces/{id}/skills/{skill}/run",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id, e.g. `pipeline_waterfall`"),
        RunParams,
    ),
    request_body(content = Option<SkillRunRequest>, description = "Optional: period, as_of, settings for this run"),
    responses(
        (status = 200, description = "Finished (with `?wait=true`): the run with its report, or its error", body = SkillRun),
        (status = 202, description = "Queued or running: the run (follow it at …/runs/{runId})", body = SkillRun),
        (status = 400, description = "Malformed JSON, or `wait` not true or false"),
        (status = 404, description = "No such workspace, or unknown skill (the detail lists the known ones)"),
        (status = 422, description = "Invalid period, as_of or setting (named in `field`)"),
    ),
    security(("bearer" = []))
)]
pub async fn run(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    mut q: QueryParams,
    body: Result<OptionalJsonBody<SkillRunRequest>, Problem>,
) -> Result<(StatusCode, Json<SkillRun>), Problem> {
    let skill = scope.param("skill")?;
    let wait = q
        .take_parsed("wait", "true or false", |s| match s {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })?
        .unwrap_or(false);
    q.finish(&["wait"])?;
    pandora.skills().get(skill)?;
    let OptionalJsonBody(request) = body?;
    let run = pandora
        .enqueue_skill_run(scope.workspace, skill, &request)
        .await
        .map_err(Problem::from_body_error)?;
    if wait {
        let run = pandora
            .wait_skill_run(scope.workspace, run.id, SKILL_WAIT)
            .await?;
        let status = if run.status.is_active() {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        return Ok((status, Json(run)));
    }
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// The skill's runs in the workspace, newest first, paginated.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/skills/{skill}/runs",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id"),
        crate::openapi::PageParams,
    ),
    responses(
        (status = 200, description = "A page of runs, newest first", body = SkillRunList),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace, or unknown skill"),
    ),
    security(("bearer" = []))
)]
pub async fn list_runs(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<SkillRunList>, Problem> {
    let skill = scope.param("skill")?;
    pandora.skills().get(skill)?;
    let page = page_query(q)?;
    let runs = pandora.skill_runs(scope.workspace, skill, &page).await?;
    Ok(Json(runs.into()))
}

/// One run of the skill, with its report once it succeeded.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/skills/{skill}/runs/{runId}",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id"),
        ("runId" = uuid::Uuid, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = "The run", body = SkillRun),
        (status = 400, description = "Invalid id or query parameter"),
        (status = 404, description = "No such workspace or run (of this skill), or unknown skill"),
    ),
    security(("bearer" = []))
)]
pub async fn get_run(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<SkillRun>, Problem> {
    let skill = scope.param("skill")?;
    let run_id = scope.uuid_param("runId")?;
    q.finish(&[])?;
    Ok(Json(
        pandora.skill_run(scope.workspace, skill, run_id).await?,
    ))
}

/// The skill's latest succeeded run (of `period` when given).
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/skills/{skill}/latest",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id"),
        PeriodParams,
    ),
    responses(
        (status = 200, description = "The latest succeeded run, with its report", body = SkillRun),
        (status = 400, description = "Invalid id, period or query parameter"),
        (status = 404, description = "No such workspace, unknown skill, or no succeeded run yet"),
    ),
    security(("bearer" = []))
)]
pub async fn latest(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    mut q: QueryParams,
) -> Result<Json<SkillRun>, Problem> {
    let skill = scope.param("skill")?;
    let period = q.take("period")?;
    q.finish(&["period"])?;
    Ok(Json(
        pandora
            .latest_skill_run(scope.workspace, skill, period.as_deref())
            .await?,
    ))
}

/// The workspace's settings of the skill: every setting valued (its own
/// where set, else the default), what it set, and the schema.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/skills/{skill}/settings",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id"),
    ),
    responses(
        (status = 200, description = "The settings", body = SkillSettingsView),
        (status = 404, description = "No such workspace, or unknown skill"),
    ),
    security(("bearer" = []))
)]
pub async fn get_settings(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<SkillSettingsView>, Problem> {
    let skill = scope.param("skill")?;
    q.finish(&[])?;
    Ok(Json(pandora.skill_settings(scope.workspace, skill).await?))
}

/// Replaces the workspace's settings of the skill: the body holds the
/// settings to change (`{}` restores every default), validated against the
/// skill's schema.
#[utoipa::path(
    put,
    path = "/api/workspaces/{id}/skills/{skill}/settings",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id"),
    ),
    request_body(content = Object, description = "Settings by name, e.g. {\"deals_listed\": 10}"),
    responses(
        (status = 200, description = "The settings now", body = SkillSettingsView),
        (status = 400, description = "Malformed JSON"),
        (status = 404, description = "No such workspace, or unknown skill"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "Not an object, unknown setting or invalid value (named in `field`, e.g. `settings.deals_listed`)"),
    ),
    security(("bearer" = []))
)]
pub async fn put_settings(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    body: Result<JsonBody<serde_json::Value>, Problem>,
) -> Result<Json<SkillSettingsView>, Problem> {
    let skill = scope.param("skill")?;
    q.finish(&[])?;
    pandora.skills().get(skill)?;
    let JsonBody(settings) = body?;
    Ok(Json(
        pandora
            .put_skill_settings(scope.workspace, skill, settings)
            .await
            .map_err(Problem::from_body_error)?,
    ))
}

/// The workspace's schedule of the skill: the cron expression in force
/// (UTC), whether scheduled runs are on, and when it next fires.
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/skills/{skill}/schedule",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id"),
    ),
    responses(
        (status = 200, description = "The schedule", body = SkillScheduleView),
        (status = 404, description = "No such workspace, or unknown skill"),
    ),
    security(("bearer" = []))
)]
pub async fn get_schedule(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
) -> Result<Json<SkillScheduleView>, Problem> {
    let skill = scope.param("skill")?;
    q.finish(&[])?;
    Ok(Json(pandora.skill_schedule(scope.workspace, skill).await?))
}

/// Replaces the workspace's schedule of the skill: `cron` (five fields,
/// UTC; absent or null for the skill's default) and `enabled` (false turns
/// scheduled runs off; default true). Scheduled runs start once the
/// workspace's syncs of that slot are done.
#[utoipa::path(
    put,
    path = "/api/workspaces/{id}/skills/{skill}/schedule",
    tag = "skills",
    params(
        ("id" = uuid::Uuid, Path, description = "Workspace id"),
        ("skill" = String, Path, description = "Skill id"),
    ),
    request_body(content = SkillSchedulePut, description = "e.g. {\"cron\": \"0 8 * * 1-5\"} or {\"enabled\": false}"),
    responses(
        (status = 200, description = "The schedule now", body = SkillScheduleView),
        (status = 400, description = "Malformed JSON"),
        (status = 404, description = "No such workspace, or unknown skill"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "Invalid cron expression (field `cron`) or unknown field"),
    ),
    security(("bearer" = []))
)]
pub async fn put_schedule(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    body: Result<JsonBody<SkillSchedulePut>, Problem>,
) -> Result<Json<SkillScheduleView>, Problem> {
    let skill = scope.param("skill")?;
    q.finish(&[])?;
    pandora.skills().get(skill)?;
    let JsonBody(schedule) = body?;
    Ok(Json(
        pandora
            .put_skill_schedule(scope.workspace, skill, schedule)
            .await
            .map_err(Problem::from_body_error)?,
    ))
}

/// Sets quotas: each row replaces the quota of its user for its period.
/// All rows or none.
#[utoipa::path(
    put,
    path = "/api/workspaces/{id}/quotas",
    tag = "skills",
    params(("id" = uuid::Uuid, Path, description = "Workspace id")),
    request_body(content = QuotasRequest, description = "Rows of user_id, period, amount (and currency)"),
    responses(
        (status = 200, description = "The rows as stored (periods canonical)", body = QuotaList),
        (status = 400, description = "Malformed JSON"),
        (status = 404, description = "No such workspace"),
        (status = 415, description = "Not application/json"),
        (status = 422, description = "An invalid row (named in `field`, e.g. `quotas[2].user_id` for a user not of the workspace)"),
    ),
    security(("bearer" = []))
)]
pub async fn put_quotas(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    q: QueryParams,
    body: Result<JsonBody<QuotasRequest>, Problem>,
) -> Result<Json<QuotaList>, Problem> {
    q.finish(&[])?;
    let JsonBody(request) = body?;
    let data = pandora
        .put_quotas(scope.workspace, request.quotas)
        .await
        .map_err(Problem::from_body_error)?;
    Ok(Json(QuotaList { data }))
}

/// The workspace's quotas (of `period` when given).
#[utoipa::path(
    get,
    path = "/api/workspaces/{id}/quotas",
    tag = "skills",
    params(("id" = uuid::Uuid, Path, description = "Workspace id"), PeriodParams),
    responses(
        (status = 200, description = "The quotas, by period then user", body = QuotaList),
        (status = 400, description = "Invalid period or query parameter"),
        (status = 404, description = "No such workspace"),
    ),
    security(("bearer" = []))
)]
pub async fn list_quotas(
    State(pandora): State<Pandora>,
    scope: WorkspaceScope,
    mut q: QueryParams,
) -> Result<Json<QuotaList>, Problem> {
    let period = q.take("period")?;
    q.finish(&["period"])?;
    let data = pandora
        .list_quotas(scope.workspace, period.as_deref())
        .await?;
    Ok(Json(QuotaList { data }))
}
