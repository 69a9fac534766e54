//! Salesforce's limits and error bodies.
//!
//! Every REST answer carries `Sforce-Limit-Info: api-usage=25/15000`: the
//! org's API requests in the last 24 hours and its daily allocation (shared
//! by every integration of the org), which feeds the budget's daily figure.
//! Salesforce has no short rate window like HubSpot's; a spent daily
//! allocation answers 403 `REQUEST_LIMIT_EXCEEDED` (as does the concurrent
//! long-running request limit), which waiting a little does not lift, so the
//! sync stops ([`limit_reached`]). Errors are a JSON array
//! `[{"message", "errorCode", "fields"}]`; the OAuth endpoints answer
//! `{"error", "error_description"}`.

use reqwest::header::HeaderMap;

use super::payloads::ErrorItem;
use crate::vendor::{RateBudget, VendorError, VendorRules};

/// The error code of a spent request limit.
pub const REQUEST_LIMIT_EXCEEDED: &str = "REQUEST_LIMIT_EXCEEDED";

/// `(used, limit)` from a `Sforce-Limit-Info` value
/// (`api-usage=25/15000; per-app-api-usage=17/250(appName=x)`).
pub fn api_usage(value: &str) -> Option<(u64, u64)> {
    value.split(';').find_map(|part| {
        let (key, usage) = part.trim().split_once('=')?;
        if key.trim() != "api-usage" {
            return None;
        }
        let (used, limit) = usage.trim().split_once('/')?;
        Some((used.trim().parse().ok()?, limit.trim().parse().ok()?))
    })
}

/// Salesforce's [`VendorRules`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SalesforceRules;

impl VendorRules for SalesforceRules {
    fn vendor(&self) -> &'static str {
        super::SOURCE
    }

    fn observe(&self, h: &HeaderMap, budget: &RateBudget) {
        if let Some((used, limit)) = h
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(api_usage)
        {
            budget.observe_daily(limit, limit.saturating_sub(used));
        }
    }

    fn error_details(&self, body: &[u8]) -> (Option<String>, String) {
        match serde_json::from_slice::<Vec<ErrorItem>>(body) {
            Ok(items) if !items.is_empty() => {
                let code = items.iter().find_map(|i| i.error_code.clone());
                let message = items
                    .iter()
                    .map(|i| {
                        let mut m = i.message.clone().unwrap_or_else(|| "no message".into());
                        if let Some(code) = &i.error_code {
                            m = format!("{code}: {m}");
                        }
                        if !i.fields.is_empty() {
                            m.push_str(&format!(" (fields: {})", i.fields.join(", ")));
                        }
                        m
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                (code, message)
            }
            _ => crate::vendor::default_error_details(body),
        }
    }
}

/// A `REQUEST_LIMIT_EXCEEDED` refusal as the error that stops the sync,
/// naming the limit (and the usage last reported); any other error as is.
pub fn limit_reached(e: VendorError, budget: &RateBudget) -> VendorError {
    match e {
        VendorError::Status {
            vendor,
            endpoint,
            status: 403,
            code: Some(code),
            message,
        } if code == REQUEST_LIMIT_EXCEEDED => {
            let message = if message.to_ascii_lowercase().contains("concurrent") {
                format!(
                    "the Salesforce org's concurrent long-running API request limit is reached \
                     ({message}); the sync stops and can be run again later"
                )
            } else {
                let usage = budget
                    .snapshot()
                    .daily
                    .map(|(limit, remaining)| {
                        format!(
                            "; {} of {limit} requests used in the last 24 hours",
                            limit.saturating_sub(remaining)
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "the Salesforce org's daily API request limit is used up ({message}{usage}); \
                     the sync stops and can resume once the 24-hour usage falls below the limit"
                )
            };
            VendorError::LimitReached {
                vendor,
                endpoint,
                message,
            }
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_limit_header_feeds_the_daily_budget() {
        assert_eq!(api_usage("api-usage=25/15000"), Some((25, 15000)));
        assert_eq!(
            api_usage("api-usage=10018/100000; api-bursts=1/750"),
            Some((10018, 100000))
        );
        assert_eq!(api_usage("per-app-api-usage=17/250(appName=x)"), None);
        let mut h = HeaderMap::new();
        h.insert(
            "sforce-limit-info",
            HeaderValue::from_static("api-usage=891/15000"),
        );
        let b = RateBudget::default();
        SalesforceRules.observe(&h, &b);
        assert_eq!(b.snapshot().daily, Some((15000, 14109)));
    }

    #[test]
    fn error_arrays_give_code_and_message() {
        let (code, message) = SalesforceRules.error_details(
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert_eq!(code.as_deref(), Some("INVALID_SESSION_ID"));
        assert_eq!(message, "INVALID_SESSION_ID: Session expired or invalid");
        let (code, message) = SalesforceRules.error_details(
            br#"[{"message":"No such column 'Foo' on entity 'Account'","errorCode":"INVALID_FIELD","fields":["Foo"]},{"message":"second","errorCode":"X"}]"#,
        );
        assert_eq!(code.as_deref(), Some("INVALID_FIELD"));
        assert_eq!(
            message,
            "INVALID_FIELD: No such column 'Foo' on entity 'Account' (fields: Foo); X: second"
        );
        let (code, message) = SalesforceRules.error_details(
            br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
        );
        assert_eq!(code.as_deref(), Some("invalid_grant"));
        assert_eq!(message, "expired access/refresh token");
    }

    #[test]
    fn a_spent_daily_limit_becomes_a_limit_error_naming_it() {
        let b = RateBudget::default();
        b.observe_daily(15000, 0);
        let e = limit_reached(
            VendorError::Status {
                vendor: "salesforce",
                endpoint: "GET /services/data/v62.0/query".into(),
                status: 403,
                code: Some(REQUEST_LIMIT_EXCEEDED.into()),
                message: "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.".into(),
            },
            &b,
        );
        let text = e.to_string();
        assert!(matches!(e, VendorError::LimitReached { .. }));
        assert!(
            text.contains("daily API request limit")
                && text.contains("15000 of 15000")
                && text.contains("REQUEST_LIMIT_EXCEEDED: TotalRequests"),
            "{text}"
        );
    }
}
