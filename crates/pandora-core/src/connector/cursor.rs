//! The `(timestamp, id)` cursor most vendors allow, with an overlap window.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Resume position of a stream ordered by modification time then id.
///
/// Equal timestamps and writes that become visible late are the classic
/// causes of missed records: a run resumes from `updated_at - overlap`
/// (re-reading a little, which the idempotent upsert absorbs) and skips only
/// what is at or before `(updated_at, id)` *and* older than the overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeIdCursor {
    /// Modification time of the last record read.
    pub updated_at: DateTime<Utc>,
    /// Vendor id of the last record read (tie-break among equal times).
    pub id: String,
}

impl TimeIdCursor {
    /// Reads a stored cursor (`None` for a missing or unreadable one: read from the start).
    pub fn from_json(v: Option<&serde_json::Value>) -> Option<Self> {
        v.and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// The cursor as stored JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"updated_at": self.updated_at, "id": self.id})
    }

    /// Where to start the next read: `overlap` before the cursor.
    pub fn resume_from(&self, overlap: Duration) -> DateTime<Utc> {
        self.updated_at - overlap
    }

    /// Whether a record modified at `updated_at` with `id` is strictly after the cursor.
    pub fn is_after(&self, updated_at: DateTime<Utc>, id: &str) -> bool {
        (updated_at, id) > (self.updated_at, self.id.as_str())
    }

    /// The later of `self` and `(updated_at, id)`.
    pub fn advance(self, updated_at: DateTime<Utc>, id: &str) -> Self {
        if self.is_after(updated_at, id) {
            TimeIdCursor {
                updated_at,
                id: id.to_string(),
            }
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, s)
            .single()
            .expect("time")
    }

    #[test]
    fn ties_on_time_break_on_id_and_the_cursor_only_moves_forward() {
        let c = TimeIdCursor {
            updated_at: t(10),
            id: "b".into(),
        };
        assert!(c.is_after(t(10), "c"));
        assert!(!c.is_after(t(10), "a"));
        assert!(!c.is_after(t(10), "b"));
        assert!(c.is_after(t(11), "a"));
        let later = c.clone().advance(t(10), "c");
        assert_eq!(later.id, "c");
        assert_eq!(later.clone().advance(t(9), "z"), later);
        assert_eq!(c.resume_from(Duration::seconds(5)), t(5));
    }

    #[test]
    fn round_trips_through_json_and_ignores_garbage() {
        let c = TimeIdCursor {
            updated_at: t(3),
            id: "x".into(),
        };
        assert_eq!(TimeIdCursor::from_json(Some(&c.to_json())), Some(c));
        assert_eq!(
            TimeIdCursor::from_json(Some(&serde_json::json!({"nope": 1}))),
            None
        );
        assert_eq!(TimeIdCursor::from_json(None), None);
    }
}
