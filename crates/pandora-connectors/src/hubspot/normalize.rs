//! HubSpot records → Pandora records. Pure functions, no I/O.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use pandora_core::model::{
    ChangeOrigin, DealField, NewAccount, NewContact, NewDeal, NewDealChange, NewDealContact,
    NewPipelineStage, NewUser, StageCategory,
};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::payloads::{AssociationRow, CrmObject, Owner, Pipeline, StageMetadata};

/// Deal properties whose history is read (`propertiesWithHistory`), with the field each feeds.
pub const DEAL_HISTORY: [(&str, DealField); 4] = [
    ("dealstage", DealField::Stage),
    ("amount", DealField::Amount),
    ("closedate", DealField::CloseDate),
    ("hubspot_owner_id", DealField::Owner),
];

/// Company properties read.
pub const COMPANY_PROPERTIES: &[&str] = &[
    "name",
    "domain",
    "industry",
    "hubspot_owner_id",
    "createdate",
    "hs_lastmodifieddate",
    "numberofemployees",
    "annualrevenue",
    "city",
    "country",
];

/// Contact properties read.
pub const CONTACT_PROPERTIES: &[&str] = &[
    "firstname",
    "lastname",
    "email",
    "jobtitle",
    "associatedcompanyid",
    "createdate",
    "lastmodifieddate",
    "phone",
    "lifecyclestage",
];

/// Deal properties read (custom properties are added to these).
pub const DEAL_PROPERTIES: &[&str] = &[
    "dealname",
    "amount",
    "deal_currency_code",
    "pipeline",
    "dealstage",
    "closedate",
    "hubspot_owner_id",
    "createdate",
    "hs_lastmodifieddate",
    "hs_manual_forecast_category",
    "hs_forecast_category",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_deal_stage_probability",
];

/// A HubSpot timestamp: ISO 8601 (`2026-02-25T16:26:25.880Z`) or epoch milliseconds.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return DateTime::from_timestamp_millis(s.parse().ok()?);
    }
    None
}

/// A HubSpot date: `YYYY-MM-DD`, or a timestamp (its UTC date).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_time(s).map(|t| t.date_naive()))
}

/// A number sent as a string (`"5000.00"`, `"1e3"`).
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .ok()
}

fn props(o: &CrmObject, names: &[&str]) -> Value {
    let mut m = Map::new();
    for n in names {
        if let Some(v) = o.prop(n) {
            m.insert((*n).to_string(), Value::String(v.to_string()));
        }
    }
    Value::Object(m)
}

/// When a record was last modified: its modification property, else `updatedAt`.
pub fn modified_at(o: &CrmObject, property: &str) -> Option<DateTime<Utc>> {
    o.prop(property)
        .and_then(parse_time)
        .or_else(|| o.updated_at.as_deref().and_then(parse_time))
}

fn created_at(o: &CrmObject) -> Option<DateTime<Utc>> {
    o.prop("createdate")
        .and_then(parse_time)
        .or_else(|| o.created_at.as_deref().and_then(parse_time))
}

/// An owner as a user; archived owners are inactive.
pub fn user(o: &Owner) -> NewUser {
    let name = [o.first_name.as_deref(), o.last_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let team = o
        .teams
        .iter()
        .find(|t| t.primary)
        .or(o.teams.first())
        .and_then(|t| t.name.clone());
    let mut properties = Map::new();
    if let Some(u) = &o.user_id {
        properties.insert("user_id".into(), json!(u));
    }
    NewUser {
        source_id: o.id.clone(),
        email: o.email.clone().filter(|e| !e.is_empty()),
        name: (!name.is_empty()).then_some(name),
        title: None,
        manager_source_id: None,
        team,
        active: !o.archived,
        properties: Value::Object(properties),
    }
}

/// A company as an account.
pub fn account(o: &CrmObject) -> NewAccount {
    NewAccount {
        source_id: o.id.clone(),
        name: o.prop("name").map(str::to_string),
        domain: o.prop("domain").map(str::to_string),
        industry: o.prop("industry").map(str::to_string),
        owner_source_id: o.prop("hubspot_owner_id").map(str::to_string),
        source_created_at: created_at(o),
        source_updated_at: modified_at(o, "hs_lastmodifieddate"),
        properties: props(
            o,
            &["numberofemployees", "annualrevenue", "city", "country"],
        ),
    }
}

/// A contact; its account is its primary company (`associatedcompanyid`).
pub fn contact(o: &CrmObject) -> NewContact {
    NewContact {
        source_id: o.id.clone(),
        first_name: o.prop("firstname").map(str::to_string),
        last_name: o.prop("lastname").map(str::to_string),
        email: o.prop("email").map(str::to_string),
        title: o.prop("jobtitle").map(str::to_string),
        account_source_id: o.prop("associatedcompanyid").map(str::to_string),
        source_created_at: created_at(o),
        source_updated_at: modified_at(o, "lastmodifieddate"),
        properties: props(o, &["phone", "lifecyclestage"]),
    }
}

/// A stage's category: closed with probability 1 is won, other closed stages
/// are lost, the rest open. (`isClosed` and `probability` are strings.)
pub fn stage_category(m: &StageMetadata) -> StageCategory {
    let closed = m
        .is_closed
        .as_deref()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("true"));
    let probability = m
        .probability
        .as_deref()
        .and_then(|p| p.trim().parse::<f64>().ok());
    match (closed, probability) {
        (false, _) => StageCategory::Open,
        (true, Some(p)) if p >= 1.0 => StageCategory::Won,
        (true, _) => StageCategory::Lost,
    }
}

/// Every stage of every pipeline (archived ones included: old deals and
/// history may still point at them).
pub fn stages(pipelines: &[Pipeline]) -> Vec<NewPipelineStage> {
    pipelines
        .iter()
        .flat_map(|p| {
            p.stages.iter().map(move |s| NewPipelineStage {
                pipeline: p.id.clone(),
                pipeline_label: p.label.clone(),
                stage: s.id.clone(),
                label: s.label.clone(),
                category: stage_category(&s.metadata),
                display_order: s.display_order,
                probability: s
                    .metadata
                    .probability
                    .as_deref()
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .filter(|p| p.is_finite()),
            })
        })
        .collect()
}

/// The stages by `(pipeline, stage)`, to complete deals.
#[derive(Debug, Clone, Default)]
pub struct StageCatalog {
    by_key: HashMap<(String, String), NewPipelineStage>,
    by_stage: HashMap<String, NewPipelineStage>,
}

impl StageCatalog {
    /// A catalog of `stages`.
    pub fn new(stages: &[NewPipelineStage]) -> Self {
        let mut c = StageCatalog::default();
        for s in stages {
            c.by_key
                .insert((s.pipeline.clone(), s.stage.clone()), s.clone());
            c.by_stage
                .entry(s.stage.clone())
                .or_insert_with(|| s.clone());
        }
        c
    }

    /// The stage `stage` of `pipeline` (or of any pipeline when unknown).
    pub fn find(&self, pipeline: Option<&str>, stage: &str) -> Option<&NewPipelineStage> {
        pipeline
            .and_then(|p| self.by_key.get(&(p.to_string(), stage.to_string())))
            .or_else(|| self.by_stage.get(stage))
    }
}

/// A deal's associated companies and contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DealLinks {
    /// Company ids; the primary one first.
    pub companies: Vec<String>,
    /// Contact ids, in the vendor's order, without repeats.
    pub contacts: Vec<String>,
}

fn push_unique(v: &mut Vec<String>, id: String) {
    if !v.contains(&id) {
        v.push(id);
    }
}

impl DealLinks {
    /// From a list answer's inline (v3) associations; `deal_to_company` is the primary company.
    pub fn from_inline(o: &CrmObject) -> Self {
        let mut links = DealLinks::default();
        if let Some(c) = o.associations.get("companies") {
            let (primary, other): (Vec<_>, Vec<_>) = c
                .results
                .iter()
                .partition(|a| a.kind.as_deref() == Some("deal_to_company"));
            for a in primary.into_iter().chain(other) {
                push_unique(&mut links.companies, a.id.clone());
            }
        }
        if let Some(c) = o.associations.get("contacts") {
            for a in &c.results {
                push_unique(&mut links.contacts, a.id.clone());
            }
        }
        links
    }

    /// From v4 batch rows (deal→companies and deal→contacts), by deal id;
    /// type 5 is the primary company.
    pub fn from_v4(
        companies: &[AssociationRow],
        contacts: &[AssociationRow],
    ) -> HashMap<String, DealLinks> {
        let mut out: HashMap<String, DealLinks> = HashMap::new();
        for row in companies {
            let links = out.entry(row.from.id.clone()).or_default();
            let (primary, other): (Vec<_>, Vec<_>) = row
                .to
                .iter()
                .partition(|t| t.association_types.iter().any(|a| a.type_id == Some(5)));
            for t in primary.into_iter().chain(other) {
                push_unique(&mut links.companies, t.to_object_id.clone());
            }
        }
        for row in contacts {
            let links = out.entry(row.from.id.clone()).or_default();
            for t in &row.to {
                push_unique(&mut links.contacts, t.to_object_id.clone());
            }
        }
        out
    }
}

/// A deal and what comes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct DealRecords {
    /// The deal.
    pub deal: NewDeal,
    /// Its contacts.
    pub contacts: Vec<NewDealContact>,
    /// Its field history, oldest first.
    pub changes: Vec<NewDealChange>,
}

/// A deal, completed from the stage catalog; custom properties (by internal
/// name) go to the deal's `properties`.
pub fn deal(
    o: &CrmObject,
    catalog: &StageCatalog,
    custom: &[String],
    links: &DealLinks,
) -> DealRecords {
    let pipeline = o.prop("pipeline").map(str::to_string);
    let stage_id = o.prop("dealstage").map(str::to_string);
    let stage = stage_id
        .as_deref()
        .and_then(|s| catalog.find(pipeline.as_deref(), s));
    let flag = |name: &str| o.prop(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let category = match stage {
        Some(s) => s.category,
        None if flag("hs_is_closed_won") => StageCategory::Won,
        None if flag("hs_is_closed") => StageCategory::Lost,
        None => StageCategory::Open,
    };
    let mut properties = Map::new();
    for name in custom {
        if let Some(v) = o.prop(name) {
            properties.insert(name.clone(), Value::String(v.to_string()));
        }
    }
    let deal = NewDeal {
        source_id: o.id.clone(),
        name: o.prop("dealname").unwrap_or_default().to_string(),
        amount: o.prop("amount").and_then(parse_decimal),
        currency: o.prop("deal_currency_code").map(str::to_string),
        pipeline: pipeline
            .clone()
            .or_else(|| stage.map(|s| s.pipeline.clone())),
        stage: stage_id,
        stage_label: stage.and_then(|s| s.label.clone()),
        stage_category: category,
        stage_order: stage.and_then(|s| s.display_order),
        probability: stage.and_then(|s| s.probability).or_else(|| {
            o.prop("hs_deal_stage_probability")
                .and_then(|p| p.parse::<f64>().ok())
                .filter(|p| p.is_finite())
        }),
        forecast_category: o
            .prop("hs_manual_forecast_category")
            .or(o.prop("hs_forecast_category"))
            .map(str::to_string),
        owner_source_id: o.prop("hubspot_owner_id").map(str::to_string),
        account_source_id: links.companies.first().cloned(),
        close_date: o.prop("closedate").and_then(parse_date),
        source_created_at: created_at(o),
        source_updated_at: modified_at(o, "hs_lastmodifieddate"),
        properties: Value::Object(properties),
    };
    let contacts = links
        .contacts
        .iter()
        .map(|c| NewDealContact {
            deal_source_id: o.id.clone(),
            contact_source_id: c.clone(),
            role: None,
            is_primary: false,
        })
        .collect();
    DealRecords {
        changes: history(o),
        deal,
        contacts,
    }
}

/// A history value in the form [`DealField::value_of`] gives.
fn history_value(field: DealField, raw: Option<&str>) -> Option<String> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match field {
        DealField::Amount => parse_decimal(raw).map(|d| d.round_dp(4).normalize().to_string()),
        DealField::CloseDate => parse_date(raw).map(|d| d.to_string()),
        _ => Some(raw.to_string()),
    }
}

/// The deal's field history from `propertiesWithHistory` (newest first in
/// HubSpot): one change per version whose value differs from the one
/// before, oldest first. Versions with unreadable times are skipped.
pub fn history(o: &CrmObject) -> Vec<NewDealChange> {
    let mut changes = Vec::new();
    for (property, field) in DEAL_HISTORY {
        let Some(versions) = o.properties_with_history.get(property) else {
            continue;
        };
        let mut ordered: Vec<(DateTime<Utc>, Option<String>)> = versions
            .iter()
            .filter_map(|v| {
                Some((
                    parse_time(&v.timestamp)?,
                    history_value(field, v.value.as_deref()),
                ))
            })
            .collect();
        // Newest first from the vendor; a stable sort keeps equal times in
        // their (reversed) vendor order.
        ordered.reverse();
        ordered.sort_by_key(|(t, _)| *t);
        let mut previous: Option<String> = None;
        for (at, value) in ordered {
            if value == previous {
                continue;
            }
            changes.push(NewDealChange {
                deal_source_id: o.id.clone(),
                field,
                old_value: previous.clone(),
                new_value: value.clone(),
                changed_at: at,
                origin: ChangeOrigin::Vendor,
            });
            previous = value;
        }
    }
    changes
}

/// Custom property names among a property catalog (not HubSpot-defined, not archived).
pub fn custom_properties(defs: &[super::payloads::PropertyDefinition]) -> Vec<String> {
    let mut names: Vec<String> = defs
        .iter()
        .filter(|d| d.hubspot_defined != Some(true) && !d.archived)
        .map(|d| d.name.clone())
        .filter(|n| !DEAL_PROPERTIES.contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A record's archive time, for deletions.
pub fn archived_at(o: &CrmObject) -> Option<DateTime<Utc>> {
    o.archived_at.as_deref().and_then(parse_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hubspot::payloads::Page;

    fn object(v: Value) -> CrmObject {
        serde_json::from_value(v).expect("object")
    }

    fn catalog() -> StageCatalog {
        let p: Page<Pipeline> = serde_json::from_value(json!({"results": [{
            "id": "default", "label": "Sales", "displayOrder": 0, "stages": [
                {"id": "appt", "label": "Appointment", "displayOrder": 0, "metadata": {"isClosed": "false", "probability": "0.2"}},
                {"id": "closedwon", "label": "Won", "displayOrder": 5, "metadata": {"isClosed": "true", "probability": "1.0"}},
                {"id": "closedlost", "label": "Lost", "displayOrder": 6, "metadata": {"isClosed": "true", "probability": "0.0"}}
            ]}]}))
        .expect("pipelines");
        StageCatalog::new(&stages(&p.results))
    }

    #[test]
    fn stages_map_to_open_won_lost_with_order_and_probability() {
        let c = catalog();
        let won = c.find(Some("default"), "closedwon").expect("won");
        assert_eq!(won.category, StageCategory::Won);
        assert_eq!(won.display_order, Some(5));
        assert_eq!(won.probability, Some(1.0));
        assert_eq!(
            c.find(None, "closedlost").expect("lost").category,
            StageCategory::Lost
        );
        let open = c.find(Some("default"), "appt").expect("open");
        assert_eq!(
            (open.category, open.probability),
            (StageCategory::Open, Some(0.2))
        );
    }

    #[test]
    fn a_deal_takes_its_stage_owner_primary_company_and_custom_properties() {
        let o = object(json!({
            "id": "9", "properties": {
                "dealname": "Big", "amount": "5000.00", "pipeline": "default", "dealstage": "closedwon",
                "hubspot_owner_id": "77", "closedate": "2026-03-31T00:00:00Z",
                "hs_lastmodifieddate": "2026-03-09T20:29:45.981Z", "createdate": "1767225600000",
                "region": "EMEA", "empty_custom": null
            },
            "associations": {
                "companies": {"results": [{"id": "c2", "type": "deal_to_company_unlabeled"}, {"id": "c1", "type": "deal_to_company"}]},
                "contacts": {"results": [{"id": "p1", "type": "deal_to_contact"}, {"id": "p1", "type": "deal_to_contact_unlabeled"}]}
            }
        }));
        let r = deal(
            &o,
            &catalog(),
            &["region".into(), "empty_custom".into()],
            &DealLinks::from_inline(&o),
        );
        let d = &r.deal;
        assert_eq!(d.amount, Some(Decimal::from(5000)));
        assert_eq!(d.stage_category, StageCategory::Won);
        assert_eq!(d.stage_order, Some(5));
        assert_eq!(d.owner_source_id.as_deref(), Some("77"));
        assert_eq!(
            d.account_source_id.as_deref(),
            Some("c1"),
            "primary company"
        );
        assert_eq!(d.close_date, NaiveDate::from_ymd_opt(2026, 3, 31));
        assert_eq!(d.properties, json!({"region": "EMEA"}));
        assert_eq!(
            d.source_created_at,
            DateTime::from_timestamp_millis(1_767_225_600_000)
        );
        assert_eq!(r.contacts.len(), 1);
    }

    #[test]
    fn history_newest_first_becomes_changes_oldest_first() {
        let o = object(
            json!({"id": "9", "properties": {}, "propertiesWithHistory": {
                "dealstage": [
                    {"value": "closedwon", "timestamp": "2026-03-03T00:00:00Z", "sourceType": "CRM_UI"},
                    {"value": "appt", "timestamp": "2026-03-02T00:00:00Z", "sourceType": "CRM_UI"},
                    {"value": "appt", "timestamp": "2026-03-01T12:00:00Z", "sourceType": "API"},
                    {"value": "new", "timestamp": "2026-03-01T00:00:00Z", "sourceType": "API"}
                ],
                "amount": [{"value": "10.50", "timestamp": "2026-03-02T00:00:00Z"}, {"value": "", "timestamp": "2026-03-01T00:00:00Z"}]
            }}),
        );
        let h = history(&o);
        let stage: Vec<_> = h
            .iter()
            .filter(|c| c.field == DealField::Stage)
            .map(|c| (c.old_value.as_deref(), c.new_value.as_deref()))
            .collect();
        assert_eq!(
            stage,
            vec![
                (None, Some("new")),
                (Some("new"), Some("appt")),
                (Some("appt"), Some("closedwon"))
            ]
        );
        let amount: Vec<_> = h.iter().filter(|c| c.field == DealField::Amount).collect();
        assert_eq!(amount.len(), 1);
        assert_eq!(amount[0].new_value.as_deref(), Some("10.5"));
        assert!(h.iter().all(|c| c.origin == ChangeOrigin::Vendor));
    }
}
