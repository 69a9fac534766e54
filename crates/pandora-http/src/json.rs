//! JSON request bodies whose every rejection is a problem naming what is wrong.
//!
//! Unlike `axum::Json`, the rejection is a [`Problem`]: 415 without a JSON
//! content type, 413 over the body limit, 400 for malformed JSON, and 422 for
//! JSON of the wrong shape, naming the field (`settings`, `name`, …) as serde
//! reports it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::problem::Problem;

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// A JSON request body of type `T` that may also be absent: an empty body
/// (with or without a JSON content type) is `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub T);

fn is_json(req: &Request) -> Option<bool> {
    let ct = req.headers().get(header::CONTENT_TYPE)?;
    let ct = ct.to_str().ok().unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or_default().trim();
    let mime = mime.to_ascii_lowercase();
    Some(
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")),
    )
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            Problem::malformed_body("the request body could not be read")
        }
    })
}

/// Deserializes `bytes`, which must hold a JSON object, mapping serde's
/// errors to problems.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // serde would also build a struct from an array of its fields' values.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<IgnoredAny>(bytes).is_ok() => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
                "the request body must be a JSON object",
            ))
        }
        _ => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let err = e.into_inner();
        // serde_json reports some shape errors (e.g. a number where an enum's
        // string belongs) as syntax errors: valid JSON is a shape problem.
        if err.is_syntax() && path != "." && serde_json::from_slice::<IgnoredAny>(bytes).is_ok() {
            return Problem::invalid_body_field(
                path.clone(),
                format!("invalid request body: {path} has an unexpected type"),
            );
        }
        problem_of(&path, err)
    })?;
    de.end().map_err(|e| problem_of(".", e))?;
    Ok(value)
}

/// Serde's message without its ` at line 1 column 9` suffix.
fn message_of(err: &serde_json::Error) -> String {
    let msg = err.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

/// The name between the first pair of backticks of `msg`, if any.
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

fn problem_of(path: &str, err: serde_json::Error) -> Problem {
    use serde_json::error::Category;
    let msg = message_of(&err);
    match err.classify() {
        Category::Data => {
            let parent = if path == "." { "" } else { path };
            // Unknown and missing fields are reported at their parent's path.
            let named = (msg.starts_with("unknown field") || msg.starts_with("missing field"))
                .then(|| backticked(&msg))
                .flatten();
            let field = match (parent, named) {
                ("", Some(n)) => n.to_string(),
                (p, Some(n)) if !p.ends_with(n) => format!("{p}.{n}"),
                ("", None) => String::new(),
                (p, _) => p.to_string(),
            };
            let problem =
                Problem::invalid_body_field(field.clone(), format!("invalid request body: {msg}"));
            if field.is_empty() {
                Problem {
                    field: None,
                    ..problem
                }
            } else {
                problem
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            Problem::malformed_body(format!("the request body is not valid JSON: {msg}"))
        }
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if is_json(&req) != Some(true) {
            return Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = read_body(req, state).await?;
        from_slice(&bytes).map(JsonBody)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = is_json(&req);
        let bytes = read_body(req, state).await?;
        match json {
            _ if bytes.is_empty() => Ok(OptionalJsonBody(T::default())),
            Some(true) => from_slice(&bytes).map(OptionalJsonBody),
            _ => Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pandora_core::model::{NewWorkspace, WorkspacePatch};

    #[test]
    fn shapes_and_syntax_errors_are_told_apart() {
        let p = from_slice::<NewWorkspace>(br#"{"name":"a","bogus":1}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("bogus")));
        let p = from_slice::<NewWorkspace>(br#"{}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("name")));
        let p = from_slice::<NewWorkspace>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("name")));
        let p = from_slice::<WorkspacePatch>(br#"{"name": "x""#).unwrap_err();
        assert_eq!((p.status, p.field), (400, None));
        let p = from_slice::<WorkspacePatch>(br#"{} x"#).unwrap_err();
        assert_eq!(p.status, 400);
        let p = from_slice::<WorkspacePatch>(b"").unwrap_err();
        assert_eq!(p.status, 400);
        // A number where an enum's string belongs: a shape error, named.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct WithMode {
            mode: pandora_core::model::SyncMode,
        }
        let p = from_slice::<WithMode>(br#"{"mode": 1}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("mode")));
        let p = from_slice::<WithMode>(br#"{"mode": 1"#).unwrap_err();
        assert_eq!((p.status, p.field), (400, None));
        let p = from_slice::<WorkspacePatch>(b"[]").unwrap_err();
        assert_eq!((p.status, p.field), (422, None));
        assert!(!p.detail.contains("line"), "{}", p.detail);
    }
}
