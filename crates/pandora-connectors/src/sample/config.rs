//! Configuration of the sample dataset and its simulated clock.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use pandora_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// What the `sample` connector generates: `{"deals": N, "seed": S}`, and
/// optionally `"start": "YYYY-MM-DD"`.
///
/// `deals` is the number of deals at epoch 0 (a full sync at epoch 0 yields
/// exactly that many); every later epoch adds a few. Users, accounts and
/// contacts are sized from it. The same `(deals, seed)` always gives the same
/// dataset. `start` is the day of epoch 0 (midnight UTC); without it the
/// connector anchors epoch 0 on the day of the connection's first sync, so
/// the dataset looks current (see the connector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    /// Deals at epoch 0, from [`SampleConfig::MIN_DEALS`] to [`SampleConfig::MAX_DEALS`].
    pub deals: u32,
    /// Seed of every random draw.
    pub seed: u64,
    /// The day of epoch 0, when fixed by the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            deals: Self::DEFAULT_DEALS,
            seed: Self::DEFAULT_SEED,
            start: None,
        }
    }
}

impl SampleConfig {
    /// Fewest deals accepted.
    pub const MIN_DEALS: u32 = 100;
    /// Most deals accepted.
    pub const MAX_DEALS: u32 = 1_000_000;
    /// Deals when the config leaves them out.
    pub const DEFAULT_DEALS: u32 = 1_000;
    /// Seed when the config leaves it out.
    pub const DEFAULT_SEED: u64 = 42;

    /// A validated config.
    pub fn new(deals: u32, seed: u64) -> Result<Self> {
        let config = SampleConfig {
            deals,
            seed,
            start: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the ranges; errors name the field as `config.<field>`.
    pub fn validate(&self) -> Result<()> {
        if !(Self::MIN_DEALS..=Self::MAX_DEALS).contains(&self.deals) {
            return Err(Error::invalid(
                "config.deals",
                format!(
                    "must be an integer from {} to {}, got {}",
                    Self::MIN_DEALS,
                    Self::MAX_DEALS,
                    self.deals
                ),
            ));
        }
        Ok(())
    }

    /// Parses and validates a connection's config. `null` and `{}` give the
    /// defaults; a missing field takes its default; an unknown field, a value
    /// of the wrong type or out of range is an [`Error::InvalidInput`] naming
    /// the field (`config.deals`, `config.seed`, `config.<unknown>`).
    pub fn from_json(value: &serde_json::Value) -> Result<Self> {
        let map = match value {
            serde_json::Value::Null => return Ok(Self::default()),
            serde_json::Value::Object(map) => map,
            _ => {
                return Err(Error::invalid(
                    "config",
                    r#"must be an object like {"deals": 1000, "seed": 42}"#,
                ))
            }
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !["deals", "seed", "start"].contains(&k.as_str()))
        {
            return Err(Error::invalid(
                format!("config.{unknown}"),
                "unknown field; expected `deals`, `seed` or `start`",
            ));
        }
        let mut config = Self::default();
        if let Some(v) = map.get("deals") {
            config.deals = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (Self::MIN_DEALS..=Self::MAX_DEALS).contains(n))
                .ok_or_else(|| {
                    Error::invalid(
                        "config.deals",
                        format!(
                            "must be an integer from {} to {}, got {v}",
                            Self::MIN_DEALS,
                            Self::MAX_DEALS
                        ),
                    )
                })?;
        }
        if let Some(v) = map.get("seed") {
            config.seed = v.as_u64().ok_or_else(|| {
                Error::invalid(
                    "config.seed",
                    format!("must be an integer from 0 to {}, got {v}", u64::MAX),
                )
            })?;
        }
        if let Some(v) = map.get("start") {
            config.start = Some(
                v.as_str()
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .filter(|d| (1990..=2200).contains(&chrono::Datelike::year(d)))
                    .ok_or_else(|| {
                        Error::invalid(
                            "config.start",
                            format!(
                                "must be a date like \"2026-01-05\" (years 1990 to 2200), got {v}"
                            ),
                        )
                    })?,
            );
        }
        config.validate()?;
        Ok(config)
    }

    /// The clock of this dataset when its epoch 0 is on `start`'s day (or
    /// on `anchor`'s, when the config fixes no start): one day per epoch.
    pub fn clock(&self, anchor: DateTime<Utc>) -> Result<SampleClock> {
        let day = self.start.unwrap_or_else(|| anchor.date_naive());
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        SampleClock::new(midnight, Duration::days(1))
    }

    /// [`SampleConfig::from_json`] of a JSON text.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid("config", format!("is not valid JSON: {e}")))?;
        Self::from_json(&value)
    }
}

/// The simulated clock: epoch `e` is the time `start + e × step`.
///
/// Epoch 0 is the state a first (full) sync sees; each incremental sync
/// advances one epoch. Everything the generator produces for epoch `e`
/// happened at or before [`SampleClock::time_at`]`(e)`, and what changed
/// between epochs `e` and `e + 1` happened within `(time_at(e), time_at(e + 1)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleClock {
    start: DateTime<Utc>,
    step: Duration,
}

impl Default for SampleClock {
    /// Starts on Monday 2026-01-05 at midnight UTC, one day per epoch.
    fn default() -> Self {
        SampleClock {
            start: Utc
                .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::UNIX_EPOCH),
            step: Duration::days(1),
        }
    }
}

impl SampleClock {
    /// Shortest step accepted.
    pub const MIN_STEP: Duration = Duration::minutes(1);
    /// Longest step accepted.
    pub const MAX_STEP: Duration = Duration::days(31);
    /// The last epoch: the generator yields nothing past it (a million
    /// steps — 2,700 years of daily syncs).
    pub const MAX_EPOCH: u32 = 1_000_000;

    /// A clock starting at `start` (truncated to whole seconds) and advancing
    /// by `step` (1 minute to 31 days, whole seconds) per epoch.
    pub fn new(start: DateTime<Utc>, step: Duration) -> Result<Self> {
        if step < Self::MIN_STEP || step > Self::MAX_STEP || step.subsec_nanos() != 0 {
            return Err(Error::invalid(
                "clock.step",
                "must be whole seconds from 1 minute to 31 days",
            ));
        }
        let start = DateTime::from_timestamp(start.timestamp(), 0)
            .filter(|s| {
                // The dataset's history reaches ~4 years back; the last epoch must be representable.
                s.checked_sub_signed(Duration::days(2_000)).is_some()
                    && s.checked_add_signed(step * Self::MAX_EPOCH as i32)
                        .is_some()
            })
            .ok_or_else(|| Error::invalid("clock.start", "is out of range"))?;
        Ok(SampleClock { start, step })
    }

    /// The time of epoch 0.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// How far the clock advances per epoch.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// The time of `epoch` (epochs past [`SampleClock::MAX_EPOCH`] count as it).
    pub fn time_at(&self, epoch: u32) -> DateTime<Utc> {
        self.start + self.step * epoch.min(Self::MAX_EPOCH) as i32
    }

    /// The latest epoch whose time is at or before `t` (0 before the start).
    pub fn epoch_at(&self, t: DateTime<Utc>) -> u32 {
        if t <= self.start {
            return 0;
        }
        let elapsed = (t - self.start).num_seconds();
        u32::try_from(elapsed / self.step.num_seconds())
            .unwrap_or(u32::MAX)
            .min(Self::MAX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(e: Error) -> String {
        match e {
            Error::InvalidInput { field, .. } => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_partial_configs() {
        assert_eq!(
            SampleConfig::from_json(&serde_json::Value::Null).expect("null"),
            SampleConfig::default()
        );
        assert_eq!(
            SampleConfig::from_json(&json!({})).expect("{}"),
            SampleConfig {
                deals: 1_000,
                seed: 42,
                start: None
            }
        );
        assert_eq!(
            SampleConfig::from_json(&json!({"deals": 5000})).expect("deals"),
            SampleConfig {
                deals: 5_000,
                seed: 42,
                start: None
            }
        );
        assert_eq!(
            SampleConfig::from_json_str(r#"{"deals": 100, "seed": 7}"#).expect("both"),
            SampleConfig {
                deals: 100,
                seed: 7,
                start: None
            }
        );
        assert_eq!(
            SampleConfig::from_json(&json!({"deals": 1_000_000}))
                .map(|c| c.deals)
                .ok(),
            Some(1_000_000)
        );
    }

    #[test]
    fn invalid_configs_name_the_field() {
        for bad in [
            json!({"deals": 99}),
            json!({"deals": 1_000_001}),
            json!({"deals": -5}),
            json!({"deals": "many"}),
            json!({"deals": 1e3}),
            json!({"deals": 5_000_000_000u64}),
        ] {
            let e = SampleConfig::from_json(&bad).expect_err("rejected");
            assert_eq!(field_of(e), "config.deals", "{bad}");
        }
        for bad in [
            json!({"start": "2026-13-01"}),
            json!({"start": "05/01/2026"}),
            json!({"start": 20260105}),
            json!({"start": "1066-10-14"}),
        ] {
            let e = SampleConfig::from_json(&bad).expect_err("rejected");
            assert_eq!(field_of(e), "config.start", "{bad}");
        }
        let start = SampleConfig::from_json(&json!({"start": "2026-03-02"})).expect("start");
        assert_eq!(
            start.clock(Utc::now()).expect("clock").time_at(0),
            Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
        );
        let anchored = SampleConfig::default()
            .clock(Utc.with_ymd_and_hms(2026, 11, 25, 15, 4, 5).unwrap())
            .expect("clock");
        assert_eq!(
            anchored.time_at(1),
            Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()
        );
        let e = SampleConfig::from_json(&json!({"seed": -1})).expect_err("rejected");
        assert_eq!(field_of(e), "config.seed");
        let e = SampleConfig::from_json(&json!({"deals": 100, "sead": 1})).expect_err("rejected");
        assert_eq!(field_of(e), "config.sead");
        let e = SampleConfig::from_json(&json!([1, 2])).expect_err("rejected");
        assert_eq!(field_of(e), "config");
        let e = SampleConfig::from_json_str("{").expect_err("rejected");
        assert_eq!(field_of(e), "config");
        assert_eq!(
            field_of(SampleConfig::new(10, 1).expect_err("rejected")),
            "config.deals"
        );
    }

    #[test]
    fn serde_form_denies_unknown_fields() {
        let c: SampleConfig = serde_json::from_str(r#"{"seed": 3}"#).expect("defaults");
        assert_eq!(c.deals, SampleConfig::DEFAULT_DEALS);
        let e = serde_json::from_str::<SampleConfig>(r#"{"dealz": 3}"#).expect_err("unknown");
        assert!(e.to_string().contains("dealz"), "{e}");
    }

    #[test]
    fn clock_maps_epochs_to_times() {
        let clock = SampleClock::default();
        assert_eq!(clock.time_at(0), clock.start());
        assert_eq!(clock.time_at(3) - clock.time_at(2), Duration::days(1));
        assert_eq!(clock.epoch_at(clock.time_at(5)), 5);
        assert_eq!(clock.epoch_at(clock.time_at(5) - Duration::seconds(1)), 4);
        assert_eq!(clock.epoch_at(clock.start() - Duration::days(9)), 0);
        assert!(SampleClock::new(clock.start(), Duration::seconds(5)).is_err());
        assert!(SampleClock::new(clock.start(), Duration::hours(6)).is_ok());
        assert!(SampleClock::new(DateTime::<Utc>::MAX_UTC, Duration::days(1)).is_err());
        assert_eq!(
            clock.time_at(u32::MAX),
            clock.time_at(SampleClock::MAX_EPOCH)
        );
    }
}
