//! The scheduler: enqueues each connection's periodic incremental sync.
//!
//! Time is cut, per connection, into slots of its sync interval (the
//! connection's `config.sync_interval_minutes`, else the deployment's
//! default, one hour); each connection's slots are offset by an amount
//! derived from its id, so a deployment's connections do not all start at
//! the top of the hour. A tick enqueues a connection's sync when its last
//! successful sync is at least one interval old (or it never synced), with
//! the dedupe key `sync:<connection id>:<slot>`: the store keeps at most one
//! job per key, so any number of replicas ticking at once enqueue a slot
//! once. A connection with a queued or running run is skipped (that run
//! covers the slot).

pub mod skills;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{Connection, SyncMode};
use crate::store::active_run_id;
use crate::Pandora;

/// The sync interval of a connection that sets none: one hour.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(3600);

/// The connection config key holding its sync interval in minutes (0 turns
/// scheduled syncs off for the connection).
pub const SYNC_INTERVAL_KEY: &str = "sync_interval_minutes";

/// Longest sync interval a connection may set: one week.
pub const MAX_SYNC_INTERVAL_MINUTES: u64 = 7 * 24 * 60;

/// Connections read per store call while scanning.
const SCAN_PAGE: u32 = 500;

/// What one [`schedule_syncs`] tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduleReport {
    /// Connections looked at.
    pub considered: u64,
    /// Syncs enqueued by this tick.
    pub enqueued: u64,
    /// Skipped: synced less than an interval ago, or scheduling turned off.
    pub not_due: u64,
    /// Skipped: the slot was already enqueued (by this or another replica).
    pub slot_taken: u64,
    /// Skipped: a run is already queued or running.
    pub active: u64,
    /// Skipped: the connector is not offered by this deployment.
    pub unknown_connector: u64,
}

/// A connection's sync interval from its config: `None` when scheduled syncs
/// are off (`0`), `default` when it sets none. An invalid value is an
/// [`Error::InvalidInput`] naming `config.sync_interval_minutes`.
pub fn sync_interval(config: &serde_json::Value, default: Duration) -> Result<Option<Duration>> {
    let field = || format!("config.{SYNC_INTERVAL_KEY}");
    match config.get(SYNC_INTERVAL_KEY) {
        None | Some(serde_json::Value::Null) => Ok(Some(default)),
        Some(v) => match v.as_u64() {
            Some(0) => Ok(None),
            Some(m) if m <= MAX_SYNC_INTERVAL_MINUTES => Ok(Some(Duration::from_secs(m * 60))),
            _ => Err(Error::invalid(
                field(),
                format!(
                    "must be a whole number of minutes from 1 to {MAX_SYNC_INTERVAL_MINUTES}, or 0 to turn scheduled syncs off"
                ),
            )),
        },
    }
}

/// A connection's config as its connector sees it: without the keys
/// Pandora itself reads ([`SYNC_INTERVAL_KEY`]).
pub fn connector_config(config: &serde_json::Value) -> serde_json::Value {
    let mut config = config.clone();
    if let Some(map) = config.as_object_mut() {
        map.remove(SYNC_INTERVAL_KEY);
    }
    config
}

/// The slot `now` falls in for a connection synced every `interval`: slots
/// are `interval` long and shifted by an offset derived from the connection
/// id (the same on every replica).
pub fn slot(connection: Uuid, interval: Duration, now: DateTime<Utc>) -> i64 {
    let len = i64::try_from(interval.as_secs().max(1)).unwrap_or(i64::MAX);
    let offset = i64::try_from(connection.as_u128() % len as u128).unwrap_or(0);
    (now.timestamp() + offset).div_euclid(len)
}

/// The dedupe key of a connection's slot.
pub fn slot_key(connection: Uuid, slot: i64) -> String {
    format!("sync:{connection}:{slot}")
}

/// Whether `connection` is due at `now` for an interval of `interval`: never
/// synced, or last synced at least one interval ago.
pub fn is_due(connection: &Connection, interval: Duration, now: DateTime<Utc>) -> bool {
    match connection.last_sync_at {
        None => true,
        Some(last) => {
            let elapsed = now.signed_duration_since(last);
            elapsed.to_std().map(|e| e >= interval).unwrap_or(false)
        }
    }
}

/// One scheduler tick at `now`: enqueues the incremental sync of every
/// active (or failing) connection that is due, once per slot across the
/// whole deployment. Connections with an invalid interval are logged and
/// skipped.
pub async fn schedule_syncs(
    pandora: &Pandora,
    now: DateTime<Utc>,
    default_interval: Duration,
) -> Result<ScheduleReport> {
    let store = pandora.store();
    let mut report = ScheduleReport::default();
    let mut after = None;
    loop {
        let connections = store.scan_schedulable_connections(after, SCAN_PAGE).await?;
        let Some(last) = connections.last() else {
            break;
        };
        after = Some(last.id);
        for connection in &connections {
            report.considered += 1;
            if pandora.connectors().get(&connection.connector).is_err() {
                report.unknown_connector += 1;
                continue;
            }
            let interval = match sync_interval(&connection.config, default_interval) {
                Ok(Some(i)) => i,
                Ok(None) => {
                    report.not_due += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(connection_id = %connection.id, error = %e, "connection skipped by the scheduler");
                    report.not_due += 1;
                    continue;
                }
            };
            if !is_due(connection, interval, now) {
                report.not_due += 1;
                continue;
            }
            let key = slot_key(connection.id, slot(connection.id, interval, now));
            match pandora
                .enqueue_sync_job(connection, SyncMode::Incremental, Some(key), now)
                .await
            {
                Ok((_, true)) => report.enqueued += 1,
                Ok((_, false)) => report.slot_taken += 1,
                Err(e) if active_run_id(&e).is_some() => report.active += 1,
                Err(e) => return Err(e),
            }
        }
        if connections.len() < SCAN_PAGE as usize {
            break;
        }
    }
    if report.enqueued > 0 {
        tracing::info!(
            enqueued = report.enqueued,
            considered = report.considered,
            "scheduled syncs enqueued"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn intervals_come_from_config_with_a_default() {
        let d = DEFAULT_SYNC_INTERVAL;
        assert_eq!(sync_interval(&json!({}), d).unwrap(), Some(d));
        assert_eq!(
            sync_interval(&json!({"sync_interval_minutes": 15}), d).unwrap(),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            sync_interval(&json!({"sync_interval_minutes": 0}), d).unwrap(),
            None
        );
        for bad in [
            json!(-1),
            json!(1.5),
            json!("60"),
            json!(MAX_SYNC_INTERVAL_MINUTES + 1),
        ] {
            let err = sync_interval(&json!({"sync_interval_minutes": bad}), d).unwrap_err();
            assert!(
                err.to_string().contains("config.sync_interval_minutes"),
                "{err}"
            );
        }
    }

    #[test]
    fn connectors_do_not_see_pandoras_own_config_keys() {
        let config = json!({"deals": 100, "sync_interval_minutes": 15});
        assert_eq!(connector_config(&config), json!({"deals": 100}));
        assert_eq!(connector_config(&json!({})), json!({}));
    }

    #[test]
    fn a_connection_has_one_slot_per_interval() {
        let id = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        let hour = Duration::from_secs(3600);
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        // Over 10 hours minute by minute, the slot changes exactly 10 times
        // (or 9, when no boundary falls in the first minute), each after 60 minutes.
        let slots: Vec<i64> = (0..600)
            .map(|m| slot(id, hour, t0 + chrono::Duration::minutes(m)))
            .collect();
        let changes: Vec<usize> = (1..slots.len())
            .filter(|&i| slots[i] != slots[i - 1])
            .collect();
        assert!(changes.len() >= 9, "{changes:?}");
        for w in changes.windows(2) {
            assert_eq!(w[1] - w[0], 60);
        }
        // The offset depends on the id: another connection changes slot at another minute.
        let other = Uuid::from_u128(1800);
        let other_changes: Vec<usize> = (1..600)
            .filter(|&m| {
                slot(other, hour, t0 + chrono::Duration::minutes(m as i64))
                    != slot(other, hour, t0 + chrono::Duration::minutes(m as i64 - 1))
            })
            .collect();
        assert_ne!(changes[0] % 60, other_changes[0] % 60);
        assert_eq!(slot_key(id, 5), format!("sync:{id}:5"));
    }
}
