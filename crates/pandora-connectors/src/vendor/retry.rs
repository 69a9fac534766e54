//! When and how long to retry a vendor call.

use std::time::{Duration, SystemTime};

/// Retries of one request: only 429, 5xx and network errors are retried,
/// never another 4xx. A `Retry-After` the vendor sends is honoured exactly;
/// otherwise the wait before retry *n* (0-based) is a uniformly random
/// duration in `[0, min(max_delay, base_delay · 2ⁿ)]` ("full jitter"). No
/// retry starts past the overall `deadline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all for a 5xx or a network error (the first included).
    pub max_attempts: u32,
    /// Retries allowed for 429s (they wait for the rate window, so there may be more).
    pub max_throttled: u32,
    /// Backoff base.
    pub base_delay: Duration,
    /// Backoff ceiling.
    pub max_delay: Duration,
    /// Overall time allowed for one request, its retries and waits included.
    pub deadline: Duration,
    /// Timeout of one HTTP exchange.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_throttled: 20,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A single attempt, no retry (e.g. a token endpoint whose caller retries).
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
            max_throttled: 0,
            ..RetryPolicy::default()
        }
    }

    /// The full-jitter wait before retry `retry` (0-based), given `unit` in `[0, 1)`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(20)))
            .min(self.max_delay);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Reads a `Retry-After` value: delay-seconds (fractions accepted) or an
/// HTTP date (relative to `now`; a past date means no wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(at.timestamp_millis().max(0) as u64);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_exponential_ceiling() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(0, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(400));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(400));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(1), "capped");
        assert_eq!(p.backoff(u32::MAX, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("0.25", now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        // 1_700_000_010 = Tue, 14 Nov 2023 22:13:30 GMT
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now),
            Some(Duration::ZERO)
        );
    }
}
