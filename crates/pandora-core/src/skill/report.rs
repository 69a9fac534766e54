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
    /// Risk scores this run establishes for deals (only the deal-risk skill
    /// gives any): not part of the report; a live run writes them back on
    /// the deals ([`SkillStore::set_deal_risk`](super::SkillStore::set_deal_risk)),
    /// so that the deals list's `sort=risk` agrees with the latest run.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub risk_updates: Vec<DealRiskUpdate>,
}

/// A deal's risk as a deal-risk run scored it, to be stored on the deal.
#[derive(Debug, Clone, PartialEq)]
pub struct DealRiskUpdate {
    /// The deal.
    pub deal_id: Uuid,
    /// Score, 0–100.
    pub score: u8,
    /// The fired signals, in the risk model's order (see [`crate::risk`]).
    pub reasons: Vec<crate::computed::RiskReason>,
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

/// Accumulates an [`Explained`] figure deal by deal, in memory bounded by
/// the listing limit: it keeps the total, the count, and only the largest
/// parts (each with a caller's token, turned into [`DealEvidence`] by
/// [`finish`](Self::finish) for the listed deals only).
#[derive(Debug, Clone)]
pub struct ExplainedBuilder {
    total: Decimal,
    count: u64,
    cap: usize,
    top: Vec<(Decimal, Uuid, usize)>,
}

impl ExplainedBuilder {
    /// An empty figure that will list at most `cap` deals.
    pub fn new(cap: usize) -> Self {
        ExplainedBuilder {
            total: Decimal::ZERO,
            count: 0,
            cap,
            top: Vec::new(),
        }
    }

    /// Adds a deal's part; `token` is the caller's key to describe it later.
    pub fn push(&mut self, amount: Decimal, deal_id: Uuid, token: usize) {
        self.total += amount;
        self.count += 1;
        if self.cap == 0 {
            return;
        }
        self.top.push((amount, deal_id, token));
        if self.top.len() >= self.cap.saturating_mul(2).max(64) {
            self.trim();
        }
    }

    /// The total so far.
    pub fn total(&self) -> Decimal {
        self.total
    }

    /// The number of deals so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Keeps the `cap` largest parts (largest absolute amount first, ties by
    /// deal id, then token).
    fn trim(&mut self) {
        self.top.sort_by(|a, b| {
            b.0.abs()
                .cmp(&a.0.abs())
                .then_with(|| a.1.cmp(&b.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        self.top.truncate(self.cap);
    }

    /// The figure: the listed deals described by `evidence(token)`.
    pub fn finish(&self, evidence: impl Fn(usize) -> DealEvidence) -> Explained {
        let mut sorted = self.clone();
        sorted.trim();
        let deals: Vec<DealEvidence> = sorted.top.iter().map(|&(_, _, t)| evidence(t)).collect();
        Explained {
            amount: money(self.total),
            count: self.count,
            more: self.count - deals.len() as u64,
            deals,
        }
    }
}
