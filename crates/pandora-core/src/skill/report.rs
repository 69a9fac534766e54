//! A skill's report and the building blocks every skill uses to explain its
//! numbers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Period;

/// What a skill returns: JSON of a stable shape.
///
/// `summary` holds the headline figures, `rows` one entry per thing the
/// skill reports on (a pipeline, an owner, a manager…), and `sections` any
/// further tables (e.g. a stage-flow matrix). Every figure a user might
/// question comes with its explanation ([`Explained`]: the deals that make
/// it up and what moved them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkillReport {
    /// The skill's id.
    pub skill: String,
    /// The period reported on.
    pub period: Period,
    /// The time the data was taken as of.
    pub as_of: DateTime<Utc>,
    /// Headline figures (a JSON object).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub summary: serde_json::Value,
    /// One entry per thing reported on.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub rows: Vec<serde_json::Value>,
    /// Further tables, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub sections: BTreeMap<String, serde_json::Value>,
}

/// An amount as reports show it: exact (up to the 4 decimal places amounts
/// are kept to), with at least 2 decimals, e.g. `"1500.00"`, `"12.3456"`.
pub fn money(amount: Decimal) -> String {
    let mut d = amount.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

/// One deal behind a figure, and why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealEvidence {
    /// Pandora id of the deal.
    pub deal_id: Uuid,
    /// The vendor's id.
    pub source_id: String,
    /// Deal name.
    pub name: String,
    /// The deal's part of the figure.
    pub amount: String,
    /// What put it there, e.g. `"close date 2026-07-15 → 2026-05-30"`.
    pub why: String,
}

/// A figure with its explanation: the total, how many deals make it up, and
/// those deals (the largest first, at most the skill's listing limit; `more`
/// counts the ones left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explained {
    /// Total amount.
    pub amount: String,
    /// Number of deals.
    pub count: u64,
    /// The deals, largest part first (ties by deal id).
    pub deals: Vec<DealEvidence>,
    /// Deals not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Accumulates an [`Explained`] figure deal by deal.
#[derive(Debug, Clone, Default)]
pub struct ExplainedBuilder {
    total: Decimal,
    items: Vec<(Decimal, DealEvidence)>,
}

impl ExplainedBuilder {
    /// An empty figure.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a deal's part.
    pub fn push(&mut self, amount: Decimal, evidence: DealEvidence) {
        self.total += amount;
        self.items.push((amount, evidence));
    }

    /// The total so far.
    pub fn total(&self) -> Decimal {
        self.total
    }

    /// The number of deals so far.
    pub fn count(&self) -> u64 {
        self.items.len() as u64
    }

    /// Adds every deal of `other`.
    pub fn extend(&mut self, other: &ExplainedBuilder) {
        self.total += other.total;
        self.items.extend(other.items.iter().cloned());
    }

    /// The figure, listing at most `limit` deals: largest absolute part
    /// first, ties by deal id.
    pub fn finish(&self, limit: usize) -> Explained {
        let mut order: Vec<&(Decimal, DealEvidence)> = self.items.iter().collect();
        order.sort_by(|a, b| {
            b.0.abs()
                .cmp(&a.0.abs())
                .then_with(|| a.1.deal_id.cmp(&b.1.deal_id))
                .then_with(|| a.1.why.cmp(&b.1.why))
        });
        let deals: Vec<DealEvidence> = order.iter().take(limit).map(|(_, e)| e.clone()).collect();
        let count = self.items.len() as u64;
        Explained {
            amount: money(self.total),
            count,
            more: count - deals.len() as u64,
            deals,
        }
    }
}
