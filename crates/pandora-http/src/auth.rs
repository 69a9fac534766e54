//! Bearer-token authentication and workspace scoping, as extractors.
//!
//! [`Caller`] authenticates the request; [`WorkspaceScope`] also resolves the
//! `{id}` path parameter and checks that the caller may see that workspace. A
//! workspace key asking for any other workspace — existing or not — gets the
//! very same 404 as for a missing one, so keys cannot probe for workspace ids.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use pandora_core::auth::Principal;
use pandora_core::{Error, ErrorKind, Pandora};
use uuid::Uuid;

use crate::params::parse_uuid;
use crate::problem::Problem;

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Principal);

impl Caller {
    /// Fails with 403 unless the caller is the admin.
    pub fn require_admin(&self, action: &str) -> Result<(), Problem> {
        match self.0 {
            Principal::Admin => Ok(()),
            Principal::Workspace { .. } => Err(Problem::forbidden(format!(
                "only the admin token may {action}"
            ))),
        }
    }
}

/// The bearer token of a request, or the 401 to answer.
fn bearer_token(parts: &Parts) -> Result<&str, Problem> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized("missing Authorization: Bearer <token> header"))?;
    let value = value
        .to_str()
        .map_err(|_| Problem::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Problem::unauthorized("malformed Authorization header"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Problem::unauthorized(
            "expected Authorization: Bearer <token>",
        ));
    }
    Ok(token)
}

impl FromRequestParts<Pandora> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, pandora: &Pandora) -> Result<Self, Problem> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(*caller);
        }
        let token = bearer_token(parts)?;
        let principal = pandora.authenticate(token).await.map_err(|e| match e {
            Error::Unauthorized { .. } => Problem::unauthorized("invalid bearer token"),
            other => Problem::from(other),
        })?;
        let caller = Caller(principal);
        parts.extensions.insert(caller);
        Ok(caller)
    }
}

/// An authenticated request on `/api/workspaces/{id}/…` that the caller may access.
#[derive(Debug, Clone)]
pub struct WorkspaceScope {
    /// Who is calling.
    pub principal: Principal,
    /// The workspace of the path.
    pub workspace: Uuid,
    params: Vec<(String, String)>,
}

impl WorkspaceScope {
    /// Another path parameter (e.g. `connector`), or a 400 naming it.
    pub fn param(&self, name: &str) -> Result<&str, Problem> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| Problem::invalid_param(name, format!("{name} is missing")))
    }

    /// Another UUID path parameter (e.g. `dealId`), or a 400 naming it.
    pub fn uuid_param(&self, name: &str) -> Result<Uuid, Problem> {
        parse_uuid(name, self.param(name)?)
    }
}

/// The 404 answered for a workspace that is missing or not the caller's.
pub fn workspace_not_found(id: Uuid) -> Problem {
    Problem::from(Error::not_found("workspace", id))
}

impl FromRequestParts<Pandora> for WorkspaceScope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, pandora: &Pandora) -> Result<Self, Problem> {
        let Caller(principal) = Caller::from_request_parts(parts, pandora).await?;
        let raw = RawPathParams::from_request_parts(parts, pandora)
            .await
            .map_err(|_| Problem::invalid_param("id", "path parameters must be UTF-8"))?;
        let params: Vec<(String, String)> = raw
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let id = params
            .iter()
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| Problem::invalid_param("id", "id is missing"))?;
        let workspace = parse_uuid("id", id)?;
        match principal {
            // The admin sees every workspace, but a missing one is still a 404
            // (stores may answer lists of a missing workspace with no rows).
            Principal::Admin => match pandora.get_workspace(workspace).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(workspace_not_found(workspace))
                }
                Err(e) => return Err(e.into()),
            },
            Principal::Workspace { workspace_id, .. } if workspace_id == workspace => {}
            Principal::Workspace { .. } => return Err(workspace_not_found(workspace)),
        }
        Ok(WorkspaceScope {
            principal,
            workspace,
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token(&parts(Some("Bearer abc"))).unwrap(), "abc");
        assert_eq!(bearer_token(&parts(Some("bearer  abc "))).unwrap(), "abc");
        for bad in [
            None,
            Some("abc"),
            Some("Basic abc"),
            Some("Bearer "),
            Some("Bearer"),
        ] {
            let p = bearer_token(&parts(bad)).unwrap_err();
            assert_eq!(p.status, 401, "{bad:?}");
        }
    }
}
