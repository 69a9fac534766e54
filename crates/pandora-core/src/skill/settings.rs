//! A skill's settings: a small typed schema with defaults, and validation
//! that names the offending field (`settings.<name>`).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One setting of a skill: its name, type (with bounds or choices) and default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingSpec {
    /// Key in the settings object.
    pub name: &'static str,
    /// What it changes.
    pub description: &'static str,
    /// Type, bounds and choices.
    #[serde(flatten)]
    pub kind: SettingKind,
    /// Value used when the workspace sets none.
    pub default: Value,
}

/// The type of a setting's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SettingKind {
    /// A whole number in `[min, max]`.
    Integer {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A number in `[min, max]`.
    Number {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// `true` or `false`.
    Boolean,
    /// A string; one of `choices` unless it is empty.
    String {
        /// Allowed values (empty: any non-empty string).
        choices: Vec<&'static str>,
    },
    /// A list of strings, each one of `choices` unless it is empty.
    StringList {
        /// Allowed values (empty: any).
        choices: Vec<&'static str>,
    },
    /// An object mapping any key (e.g. a stage id) to one of `values`.
    StringMap {
        /// Allowed values.
        values: Vec<&'static str>,
    },
}

impl SettingSpec {
    /// Checks `value` against the spec; the error names `settings.<name>`.
    pub fn check(&self, value: &Value) -> Result<()> {
        let field = format!("settings.{}", self.name);
        let bad = |message: String| Err(Error::invalid(field.clone(), message));
        match &self.kind {
            SettingKind::Integer { min, max } => match value.as_i64() {
                Some(v) if (*min..=*max).contains(&v) => Ok(()),
                Some(_) => bad(format!("must be between {min} and {max}")),
                None => bad(format!("must be a whole number between {min} and {max}")),
            },
            SettingKind::Number { min, max } => match value.as_f64() {
                Some(v) if v >= *min && v <= *max => Ok(()),
                _ => bad(format!("must be a number between {min} and {max}")),
            },
            SettingKind::Boolean => match value {
                Value::Bool(_) => Ok(()),
                _ => bad("must be true or false".into()),
            },
            SettingKind::String { choices } => match value.as_str() {
                Some(s) if choices.is_empty() && !s.is_empty() => Ok(()),
                Some(s) if choices.contains(&s) => Ok(()),
                _ if choices.is_empty() => bad("must be a non-empty string".into()),
                _ => bad(format!("must be one of: {}", choices.join(", "))),
            },
            SettingKind::StringList { choices } => {
                let Some(items) = value.as_array() else {
                    return bad("must be a list of strings".into());
                };
                for item in items {
                    match item.as_str() {
                        Some(s) if choices.is_empty() || choices.contains(&s) => {}
                        _ if choices.is_empty() => return bad("must be a list of strings".into()),
                        _ => {
                            return bad(format!(
                                "must be a list of values among: {}",
                                choices.join(", ")
                            ))
                        }
                    }
                }
                Ok(())
            }
            SettingKind::StringMap { values } => {
                let Some(map) = value.as_object() else {
                    return bad(format!(
                        "must be an object whose values are among: {}",
                        values.join(", ")
                    ));
                };
                for (k, v) in map {
                    match v.as_str() {
                        Some(s) if values.contains(&s) => {}
                        _ => {
                            return Err(Error::invalid(
                                format!("{field}.{k}"),
                                format!("must be one of: {}", values.join(", ")),
                            ))
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// A skill's effective settings: every setting of its schema, valued.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    values: Map<String, Value>,
}

impl Settings {
    /// The defaults of `specs`, overridden by each of `layers` in turn
    /// (e.g. the workspace's stored settings, then a run's overrides). Each
    /// layer must be a JSON object (`null` counts as empty) whose keys are
    /// settings of `specs` with valid values; otherwise
    /// [`Error::InvalidInput`] naming `settings` or `settings.<name>`.
    pub fn resolve(specs: &[SettingSpec], layers: &[&Value]) -> Result<Settings> {
        let mut values: Map<String, Value> = specs
            .iter()
            .map(|s| (s.name.to_string(), s.default.clone()))
            .collect();
        for layer in layers {
            for (k, v) in Self::validate(specs, layer)? {
                values.insert(k, v);
            }
        }
        Ok(Settings { values })
    }

    /// Checks a settings object against `specs` and returns it as a map
    /// (`null` is the empty object). Unknown keys are refused, naming the
    /// key and listing the known ones.
    pub fn validate(specs: &[SettingSpec], layer: &Value) -> Result<Map<String, Value>> {
        let map = match layer {
            Value::Null => return Ok(Map::new()),
            Value::Object(m) => m,
            _ => return Err(Error::invalid("settings", "must be a JSON object")),
        };
        for (k, v) in map {
            let Some(spec) = specs.iter().find(|s| s.name == k) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                return Err(Error::invalid(
                    format!("settings.{k}"),
                    format!(
                        "is not a setting of this skill (known: {})",
                        known.join(", ")
                    ),
                ));
            };
            spec.check(v)?;
        }
        Ok(map.clone())
    }

    /// Every setting as a JSON object, in key order.
    pub fn to_value(&self) -> Value {
        Value::Object(self.values.clone())
    }

    /// The value of a setting (`Null` when the schema has no such setting).
    pub fn get(&self, name: &str) -> &Value {
        self.values.get(name).unwrap_or(&Value::Null)
    }

    /// An integer setting (`default` when absent or not an integer).
    pub fn i64(&self, name: &str, default: i64) -> i64 {
        self.get(name).as_i64().unwrap_or(default)
    }

    /// A number setting (`default` when absent or not a number).
    pub fn f64(&self, name: &str, default: f64) -> f64 {
        self.get(name).as_f64().unwrap_or(default)
    }

    /// A boolean setting (`default` when absent).
    pub fn bool(&self, name: &str, default: bool) -> bool {
        self.get(name).as_bool().unwrap_or(default)
    }

    /// A string setting, if set.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).as_str()
    }

    /// A string-list setting (empty when absent).
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.get(name)
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A string-map setting, in key order (empty when absent).
    pub fn string_map(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        self.get(name)
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
}
