//! The layers around every route: request ids, tracing, panic recovery, the
//! body limit, and problem bodies for errors produced outside the handlers.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Span;

use crate::problem::{Problem, PROBLEM_JSON};

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The tracing span of a request: method, path (no query, no headers — so
/// never the Authorization header) and request id.
pub fn request_span(req: &Request) -> Span {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "http",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
    )
}

/// Gives every 4xx/5xx response that is not already a problem (unknown route,
/// wrong method, body over the limit, …) a problem body, keeping its headers
/// (`Allow`, `WWW-Authenticate`, …).
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let problem = Problem::for_status(status).into_response();
    let (problem_parts, body) = problem.into_parts();
    parts.headers.extend(problem_parts.headers);
    Response::from_parts(parts, body)
}

/// The 404 problem for a route that does not exist.
pub async fn no_such_route() -> Problem {
    Problem::for_status(StatusCode::NOT_FOUND)
}

/// The 500 problem answered when a handler panics.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let msg = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %msg, "handler panicked");
    Problem::internal().into_response()
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_a_500_problem() {
        let app = crate::with_middleware(Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("kaboom");
                }
                ""
            }),
        ));
        let req = Request::builder().uri("/boom").body(Body::empty()).unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert!(res.headers().contains_key(REQUEST_ID));
    }
}
