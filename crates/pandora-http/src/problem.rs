//! RFC 9457 problem details: the body of every 4xx and 5xx response.
//!
//! [`Problem`] is the error type of every handler and extractor. Errors of
//! [`pandora_core`] map by their [`ErrorKind`]; internal and unavailable errors
//! tell the client little (a generic detail) and the log everything.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pandora_core::store::active_run_id;
use pandora_core::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI; the suffix names the kind of problem.
const TYPE_PREFIX: &str = "urn:pandora:problem:";

/// An RFC 9457 problem: what went wrong, for the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:pandora:problem:invalid-parameter",
    "title": "Invalid query parameter",
    "status": 400,
    "detail": "limit must be between 1 and 500",
    "field": "limit"
}))]
pub struct Problem {
    /// URI naming the kind of problem, e.g. `urn:pandora:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// The offending request field, query or path parameter, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Extension member of `urn:pandora:problem:sync-active` (409): the id
    /// of the run already queued or running for the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_run_id: Option<Uuid>,
}

impl Problem {
    /// A problem of kind `slug` (appended to the type URI prefix).
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("{TYPE_PREFIX}{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            active_run_id: None,
        }
    }

    /// The same problem, naming the offending field or parameter.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 400: a query or path parameter is invalid.
    pub fn invalid_param(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid parameter",
            detail,
        )
        .with_field(field)
    }

    /// 422: a field of the request body is invalid.
    pub fn invalid_body_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid request body",
            detail,
        )
        .with_field(field)
    }

    /// 400: the request body is not valid JSON.
    pub fn malformed_body(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-body",
            "Malformed request body",
            detail,
        )
    }

    /// 401: no valid bearer token (sent with `WWW-Authenticate: Bearer`).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404 for an entity.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 500 with a generic detail; the cause belongs in the log.
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "an unexpected error occurred; it has been logged",
        )
    }

    /// A problem for a bare error status produced outside the handlers
    /// (unknown route, wrong method, body too large, …).
    pub fn for_status(status: StatusCode) -> Self {
        let (slug, title, detail) = match status {
            StatusCode::NOT_FOUND => ("not-found", "Not found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method-not-allowed",
                "Method not allowed",
                "this route does not accept this method; see the Allow header",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload-too-large",
                "Payload too large",
                "the request body exceeds the limit of 1 MiB",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported-media-type",
                "Unsupported media type",
                "expected Content-Type: application/json",
            ),
            StatusCode::UNAUTHORIZED => (
                "unauthorized",
                "Unauthorized",
                "a valid bearer token is required",
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                "unavailable",
                "Service unavailable",
                "the service is temporarily unavailable; retry later",
            ),
            s if s.is_server_error() => return Problem::internal(),
            s => (
                "bad-request",
                s.canonical_reason().unwrap_or("Bad request"),
                "the request was rejected",
            ),
        };
        Problem::new(status, slug, title, detail)
    }

    /// Maps an error caused by a request *body*: invalid input is 422.
    pub fn from_body_error(err: Error) -> Self {
        match err {
            Error::InvalidInput { field, message } => {
                Problem::invalid_body_field(field.clone(), format!("{field} {message}"))
            }
            other => Problem::from(other),
        }
    }
}

/// Maps an error caused by a query or path parameter (invalid input is 400),
/// or any other failure of the library.
impl From<Error> for Problem {
    fn from(err: Error) -> Self {
        match err.kind() {
            ErrorKind::NotFound => Problem::not_found(err.to_string()),
            ErrorKind::Conflict => {
                let active = active_run_id(&err);
                let message = match err {
                    Error::Conflict { message } => message,
                    other => other.to_string(),
                };
                match active {
                    Some(id) => Problem {
                        active_run_id: Some(id),
                        ..Problem::new(
                            StatusCode::CONFLICT,
                            "sync-active",
                            "Sync already queued or running",
                            message,
                        )
                    },
                    None => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", message),
                }
            }
            ErrorKind::InvalidInput => match err {
                Error::InvalidInput { field, message } => {
                    Problem::invalid_param(field.clone(), format!("{field} {message}"))
                }
                other => Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-parameter",
                    "Invalid parameter",
                    other.to_string(),
                ),
            },
            ErrorKind::Unauthorized => Problem::unauthorized("a valid bearer token is required"),
            ErrorKind::Forbidden => match err {
                Error::Forbidden { message } => Problem::forbidden(message),
                other => Problem::forbidden(other.to_string()),
            },
            ErrorKind::Rejected => {
                let message = match err {
                    Error::Rejected { message } => message,
                    other => other.to_string(),
                };
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "vendor-rejected",
                    "Rejected by the vendor",
                    message,
                )
            }
            ErrorKind::Unavailable => {
                if let Some(variable) = pandora_core::oauth::missing_variable(&err) {
                    // A deployment setting, not a passing failure: say which.
                    let detail = err_message(&err);
                    tracing::warn!(variable, "OAuth flow of an unconfigured connector");
                    return Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "oauth-not-configured",
                        "OAuth not configured",
                        detail,
                    );
                }
                if pandora_core::vault::is_missing_key(&err) {
                    // A deployment setting, not a passing failure: say which.
                    tracing::warn!("credentials refused: no vault key configured");
                    return Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "vault-key-missing",
                        "Credential encryption not configured",
                        err_message(&err),
                    );
                }
                tracing::warn!(error = %err, "dependency unavailable");
                Problem::for_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            ErrorKind::Internal => {
                tracing::error!(error = %err, "internal error");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = status;
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl std::error::Error for Problem {}

/// The message of an [`Error::Unavailable`] (without its `unavailable:`
/// prefix), or the error's display.
fn err_message(err: &Error) -> String {
    match err {
        Error::Unavailable { message } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_map_to_statuses() {
        let cases = [
            (Error::not_found("deal", "x"), 404),
            (Error::conflict("dup"), 409),
            (Error::rejected("x rejected the credentials: bad key"), 422),
            (Error::invalid("limit", "bad"), 400),
            (Error::unauthorized("no"), 401),
            (Error::forbidden("no"), 403),
            (Error::unavailable("db down"), 503),
            (Error::internal("secret detail"), 500),
        ];
        for (err, status) in cases {
            let p = Problem::from(err);
            assert_eq!(p.status, status, "{p:?}");
            assert!(!p.detail.contains("secret"), "{p:?}");
            assert!(!p.detail.contains("db down"), "{p:?}");
        }
        let body = Problem::from_body_error(Error::invalid("name", "must not be empty"));
        assert_eq!(body.status, 422);
        assert_eq!(body.field.as_deref(), Some("name"));
    }

    #[test]
    fn active_run_conflicts_name_the_run() {
        let id = Uuid::now_v7();
        let p = Problem::from(pandora_core::store::active_run_conflict(id));
        assert_eq!(p.status, 409);
        assert_eq!(p.kind, "urn:pandora:problem:sync-active");
        assert_eq!(p.active_run_id, Some(id));
        assert!(p.detail.contains(&id.to_string()), "{}", p.detail);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["active_run_id"], id.to_string());

        let p = Problem::from(Error::conflict("the connection is disconnected"));
        assert_eq!((p.status, p.active_run_id), (409, None));
        assert_eq!(p.kind, "urn:pandora:problem:conflict");
        assert!(serde_json::to_value(&p)
            .unwrap()
            .get("active_run_id")
            .is_none());
    }

    #[test]
    fn unconfigured_oauth_names_the_variable() {
        let p = Problem::from(pandora_core::oauth::client_not_configured("salesforce"));
        assert_eq!(p.status, 503);
        assert_eq!(p.kind, "urn:pandora:problem:oauth-not-configured");
        assert!(p.detail.contains("SALESFORCE_CLIENT_ID"), "{}", p.detail);
    }

    #[test]
    fn rejections_keep_the_reason() {
        let p = Problem::from(Error::rejected(
            "acme rejected the credentials: key revoked",
        ));
        assert_eq!(p.status, 422);
        assert_eq!(p.kind, "urn:pandora:problem:vendor-rejected");
        assert_eq!(p.detail, "acme rejected the credentials: key revoked");
    }

    #[test]
    fn unauthorized_carries_www_authenticate() {
        let res = Problem::unauthorized("missing").into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn field_is_omitted_when_absent() {
        let json = serde_json::to_value(Problem::internal()).unwrap();
        assert!(json.get("field").is_none());
        assert_eq!(json["status"], 500);
        assert_eq!(json["type"], "urn:pandora:problem:internal");
    }
}
