//! HubSpot's rate limits: the headers that feed the budget and what a 429 means.
//!
//! Every answer but search's carries `X-HubSpot-RateLimit-Max` /
//! `-Remaining` / `-Interval-Milliseconds` (110 per 10 s per app and
//! portal for OAuth apps), `-Secondly` / `-Secondly-Remaining` (11), and for
//! private apps `-Daily` / `-Daily-Remaining`. The search endpoints have
//! their own, lower limit (a few requests per second per token) and send no
//! such headers, so they spend a second, fixed budget as well. A 429's body
//! names the policy that was hit: `TEN_SECONDLY_ROLLING` (wait out the
//! window), `SECONDLY`, or `DAILY` (stop until the next day).

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::payloads::ErrorBody;
use crate::vendor::{RateBudget, RateWindow, Throttle, VendorRules};

/// HubSpot's documented default for OAuth apps: 110 requests per 10 s.
pub const TEN_SECONDLY: RateWindow = RateWindow::new(110, Duration::from_secs(10));
/// And 11 per second.
pub const SECONDLY: RateWindow = RateWindow::new(11, Duration::from_secs(1));
/// The search endpoints' limit (per token; HubSpot has documented 4 and 5
/// per second: the lower is used).
pub const SEARCH: RateWindow = RateWindow::new(4, Duration::from_secs(1));

/// The budget of a HubSpot account before any header has been seen.
pub fn default_budget() -> RateBudget {
    RateBudget::new([TEN_SECONDLY, SECONDLY])
}

/// The budget of the search endpoints.
pub fn search_budget() -> RateBudget {
    RateBudget::new([SEARCH])
}

fn header<T: std::str::FromStr>(h: &HeaderMap, name: &str) -> Option<T> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// HubSpot's [`VendorRules`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HubSpotRules;

impl VendorRules for HubSpotRules {
    fn vendor(&self) -> &'static str {
        super::SOURCE
    }

    fn observe(&self, h: &HeaderMap, budget: &RateBudget) {
        if let Some(ms) = header::<u64>(h, "x-hubspot-ratelimit-interval-milliseconds") {
            budget.observe_window(
                Duration::from_millis(ms),
                header(h, "x-hubspot-ratelimit-max"),
                header(h, "x-hubspot-ratelimit-remaining"),
            );
        }
        if let Some(max) = header::<u32>(h, "x-hubspot-ratelimit-secondly") {
            budget.observe_window(
                Duration::from_secs(1),
                Some(max),
                header(h, "x-hubspot-ratelimit-secondly-remaining"),
            );
        }
        if let (Some(limit), Some(remaining)) = (
            header::<u64>(h, "x-hubspot-ratelimit-daily"),
            header::<u64>(h, "x-hubspot-ratelimit-daily-remaining"),
        ) {
            budget.observe_daily(limit, remaining);
        }
    }

    fn error_details(&self, body: &[u8]) -> (Option<String>, String) {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) if e.message.is_some() || e.error.is_some() => {
                let code = e
                    .error
                    .clone()
                    .or(e.status.clone().filter(|s| s != "error"))
                    .or(e.category.clone());
                let message = e
                    .message
                    .or(e.error_description)
                    .or(e.error)
                    .unwrap_or_default();
                (code, message)
            }
            _ => crate::vendor::default_error_details(body),
        }
    }

    fn throttled(&self, h: &HeaderMap, body: &[u8]) -> Throttle {
        let policy = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .and_then(|e| e.policy_name);
        match policy.as_deref() {
            Some("DAILY") => Throttle::Stop(
                "the HubSpot account's daily API request limit is used up (policy DAILY); \
                 the sync stops and can resume after midnight in the account's time zone"
                    .into(),
            ),
            Some("TEN_SECONDLY_ROLLING") => Throttle::Wait(
                header::<u64>(h, "x-hubspot-ratelimit-interval-milliseconds")
                    .map(Duration::from_millis)
                    .unwrap_or(TEN_SECONDLY.interval),
            ),
            Some("SECONDLY") => Throttle::Wait(Duration::from_secs(1)),
            _ => Throttle::Backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn policies_decide_the_wait() {
        let r = HubSpotRules;
        let body =
            |p: &str| format!(r#"{{"status":"error","message":"limit","policyName":"{p}"}}"#);
        assert!(matches!(
            r.throttled(&HeaderMap::new(), body("DAILY").as_bytes()),
            Throttle::Stop(m) if m.contains("daily")
        ));
        assert_eq!(
            r.throttled(
                &headers(&[("x-hubspot-ratelimit-interval-milliseconds", "250")]),
                body("TEN_SECONDLY_ROLLING").as_bytes()
            ),
            Throttle::Wait(Duration::from_millis(250))
        );
        assert_eq!(
            r.throttled(&HeaderMap::new(), body("TEN_SECONDLY_ROLLING").as_bytes()),
            Throttle::Wait(Duration::from_secs(10))
        );
        assert_eq!(r.throttled(&HeaderMap::new(), b"<html>"), Throttle::Backoff);
    }

    #[test]
    fn headers_feed_the_budget() {
        let b = RateBudget::new([TEN_SECONDLY, SECONDLY]);
        HubSpotRules.observe(
            &headers(&[
                ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
                ("x-hubspot-ratelimit-max", "190"),
                ("x-hubspot-ratelimit-remaining", "189"),
                ("x-hubspot-ratelimit-secondly", "19"),
                ("x-hubspot-ratelimit-daily", "500000"),
                ("x-hubspot-ratelimit-daily-remaining", "499000"),
            ]),
            &b,
        );
        let s = b.snapshot();
        assert_eq!(s.windows[0].limit.max, 190);
        assert_eq!(s.windows[1].limit.max, 19);
        assert_eq!(s.daily, Some((500_000, 499_000)));
        assert_eq!(s.windows[0].reported_remaining, Some(189));
    }

    #[test]
    fn error_bodies_give_code_and_message() {
        let (code, message) = HubSpotRules.error_details(
            br#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token"}"#,
        );
        assert_eq!(code.as_deref(), Some("BAD_REFRESH_TOKEN"));
        assert_eq!(message, "missing or invalid refresh token");
        let (code, _) = HubSpotRules
            .error_details(br#"{"error":"invalid_grant","error_description":"revoked"}"#);
        assert_eq!(code.as_deref(), Some("invalid_grant"));
        let (code, _) = HubSpotRules
            .error_details(br#"{"status":"error","message":"bad","category":"VALIDATION_ERROR"}"#);
        assert_eq!(code.as_deref(), Some("VALIDATION_ERROR"));
    }
}
