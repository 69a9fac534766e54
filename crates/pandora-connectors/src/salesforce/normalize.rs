//! Salesforce records → Pandora records. Pure functions, no I/O.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pandora_core::model::{
    ChangeOrigin, DealField, NewAccount, NewContact, NewDeal, NewDealChange, NewDealContact,
    NewPipelineStage, NewUser, StageCategory,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::payloads::{
    SfAccount, SfContact, SfContactRole, SfOpportunity, SfOpportunityHistory, SfStage, SfUser,
};

/// The one pipeline of a Salesforce org: `OpportunityStage` is a single
/// picklist (sales processes only choose subsets of it).
pub const PIPELINE: &str = "opportunity";
/// Its label.
pub const PIPELINE_LABEL: &str = "Opportunity stages";

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn object(pairs: &[(&str, Option<Value>)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m)
}

fn string(v: &Option<String>) -> Option<Value> {
    text(v).map(Value::String)
}

/// A percent (0–100) as a probability (0–1).
fn fraction(percent: Option<Decimal>) -> Option<f64> {
    percent
        .and_then(|p| (p / Decimal::ONE_HUNDRED).to_f64())
        .filter(|p| p.is_finite())
}

/// A user; `ManagerId` is kept for rollups, the role is the team.
pub fn user(u: &SfUser) -> NewUser {
    let name = text(&u.name).or_else(|| {
        let joined = [text(&u.first_name), text(&u.last_name)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!joined.is_empty()).then_some(joined)
    });
    NewUser {
        source_id: u.id.clone(),
        email: text(&u.email),
        name,
        title: text(&u.title),
        manager_source_id: text(&u.manager_id),
        team: u
            .user_role
            .as_ref()
            .and_then(|r| text(&r.name))
            .or_else(|| text(&u.department)),
        active: u.is_active,
        properties: object(&[
            ("username", string(&u.username)),
            ("department", string(&u.department)),
            ("user_type", string(&u.user_type)),
        ]),
    }
}

/// The domain of a website as people type it (`http://www.Example.com/about` → `example.com`).
pub fn domain(website: &str) -> Option<String> {
    let s = website.trim().to_ascii_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let host = s.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host).trim_matches('.');
    (host.contains('.') && !host.contains(' ')).then(|| host.to_string())
}

/// An account.
pub fn account(a: &SfAccount) -> NewAccount {
    NewAccount {
        source_id: a.id.clone(),
        name: text(&a.name),
        domain: a.website.as_deref().and_then(domain),
        industry: text(&a.industry),
        owner_source_id: text(&a.owner_id),
        source_created_at: a.created_date,
        source_updated_at: a.system_modstamp,
        properties: object(&[
            ("type", string(&a.account_type)),
            ("website", string(&a.website)),
            (
                "number_of_employees",
                a.number_of_employees.map(Value::from),
            ),
            (
                "annual_revenue",
                a.annual_revenue
                    .map(|d| Value::String(d.normalize().to_string())),
            ),
            ("billing_city", string(&a.billing_city)),
            ("billing_country", string(&a.billing_country)),
        ]),
    }
}

/// A contact.
pub fn contact(c: &SfContact) -> NewContact {
    NewContact {
        source_id: c.id.clone(),
        first_name: text(&c.first_name),
        last_name: text(&c.last_name),
        email: text(&c.email),
        title: text(&c.title),
        account_source_id: text(&c.account_id),
        source_created_at: c.created_date,
        source_updated_at: c.system_modstamp,
        properties: object(&[("phone", string(&c.phone))]),
    }
}

/// The stage id: the picklist value opportunities hold (`ApiName`), else the label.
fn stage_id(s: &SfStage) -> Option<String> {
    text(&s.api_name).or_else(|| text(&s.master_label))
}

/// A stage's category: closed and won is won, closed and not won is lost, the rest open.
pub fn stage_category(is_closed: bool, is_won: bool) -> StageCategory {
    match (is_closed, is_won) {
        (true, true) => StageCategory::Won,
        (true, false) => StageCategory::Lost,
        (false, _) => StageCategory::Open,
    }
}

/// Every stage (inactive ones too: old opportunities and history still name them).
pub fn stages(rows: &[SfStage]) -> Vec<NewPipelineStage> {
    rows.iter()
        .filter_map(|s| {
            Some(NewPipelineStage {
                pipeline: PIPELINE.into(),
                pipeline_label: Some(PIPELINE_LABEL.into()),
                stage: stage_id(s)?,
                label: text(&s.master_label),
                category: stage_category(s.is_closed, s.is_won),
                display_order: s.sort_order,
                probability: fraction(s.default_probability),
            })
        })
        .collect()
}

/// The stages by id, to complete opportunities.
#[derive(Debug, Clone, Default)]
pub struct StageCatalog {
    by_id: HashMap<String, NewPipelineStage>,
}

impl StageCatalog {
    /// A catalog of `stages`.
    pub fn new(stages: &[NewPipelineStage]) -> Self {
        StageCatalog {
            by_id: stages
                .iter()
                .map(|s| (s.stage.clone(), s.clone()))
                .collect(),
        }
    }

    /// The stage `id`.
    pub fn find(&self, id: &str) -> Option<&NewPipelineStage> {
        self.by_id.get(id)
    }
}

/// An opportunity as a deal: the stage's category, order and default
/// probability from the catalog (the opportunity's own probability first),
/// the forecast category from `ForecastCategoryName`.
pub fn deal(o: &SfOpportunity, catalog: &StageCatalog) -> NewDeal {
    let stage_name = text(&o.stage_name);
    let stage = stage_name.as_deref().and_then(|s| catalog.find(s));
    NewDeal {
        source_id: o.id.clone(),
        name: text(&o.name).unwrap_or_default(),
        amount: o.amount,
        currency: text(&o.currency_iso_code),
        pipeline: Some(PIPELINE.into()),
        stage_label: stage.and_then(|s| s.label.clone()),
        stage_category: stage
            .map(|s| s.category)
            .unwrap_or_else(|| stage_category(o.is_closed, o.is_won)),
        stage_order: stage.and_then(|s| s.display_order),
        probability: fraction(o.probability).or_else(|| stage.and_then(|s| s.probability)),
        stage: stage_name,
        forecast_category: text(&o.forecast_category_name),
        owner_source_id: text(&o.owner_id),
        account_source_id: text(&o.account_id),
        close_date: o.close_date,
        source_created_at: o.created_date,
        source_updated_at: o.system_modstamp,
        properties: object(&[
            ("type", string(&o.opportunity_type)),
            ("lead_source", string(&o.lead_source)),
        ]),
    }
}

/// `OpportunityHistory.ForecastCategory` (an API value) as the label
/// `Opportunity.ForecastCategoryName` holds, so history and deals compare.
pub fn forecast_category_label(api_value: &str) -> String {
    match api_value.trim() {
        "BestCase" => "Best Case".into(),
        "Forecast" => "Commit".into(),
        "MostLikely" => "Most Likely".into(),
        other => other.to_string(),
    }
}

/// The history snapshot values of one row, field by field, in the form
/// [`DealField::value_of`] gives.
fn snapshot(row: &SfOpportunityHistory) -> [(DealField, Option<String>); 4] {
    [
        (DealField::Stage, text(&row.stage_name)),
        (
            DealField::Amount,
            row.amount.map(|a| a.round_dp(4).normalize().to_string()),
        ),
        (DealField::CloseDate, row.close_date.map(|d| d.to_string())),
        (
            DealField::ForecastCategory,
            text(&row.forecast_category).map(|f| forecast_category_label(&f)),
        ),
    ]
}

/// Field changes from `OpportunityHistory` rows (any order, any
/// opportunities): per opportunity, rows ordered by `CreatedDate` (then id);
/// each field gets a change where its value differs from the row before
/// (the first row sets it from nothing). Rows without a time are skipped.
pub fn history(rows: &[SfOpportunityHistory]) -> Vec<NewDealChange> {
    let mut by_deal: HashMap<&str, Vec<(DateTime<Utc>, &SfOpportunityHistory)>> = HashMap::new();
    for r in rows {
        if let Some(at) = r.created_date {
            by_deal
                .entry(r.opportunity_id.as_str())
                .or_default()
                .push((at, r));
        }
    }
    let mut deals: Vec<_> = by_deal.into_iter().collect();
    deals.sort_by(|a, b| a.0.cmp(b.0));
    let mut changes = Vec::new();
    for (deal, mut rows) in deals {
        rows.sort_by(|a, b| (a.0, a.1.id.as_str()).cmp(&(b.0, b.1.id.as_str())));
        let mut previous: [Option<String>; 4] = Default::default();
        for (at, row) in rows {
            for (i, (field, value)) in snapshot(row).into_iter().enumerate() {
                if value == previous[i] {
                    continue;
                }
                changes.push(NewDealChange {
                    deal_source_id: deal.to_string(),
                    field,
                    old_value: previous[i].clone(),
                    new_value: value.clone(),
                    changed_at: at,
                    origin: ChangeOrigin::Vendor,
                });
                previous[i] = value;
            }
        }
    }
    changes
}

/// A contact role's key in Pandora (`opportunity/contact`), when it names both.
pub fn contact_role_key(r: &SfContactRole) -> Option<(String, String)> {
    Some((text(&r.opportunity_id)?, text(&r.contact_id)?))
}

/// A contact role.
pub fn contact_role(r: &SfContactRole) -> Option<NewDealContact> {
    let (deal, contact) = contact_role_key(r)?;
    Some(NewDealContact {
        deal_source_id: deal,
        contact_source_id: contact,
        role: text(&r.role),
        is_primary: r.is_primary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stage_rows() -> Vec<SfStage> {
        serde_json::from_value(json!([
            {"Id": "01J1", "ApiName": "Prospecting", "MasterLabel": "Prospecting", "IsActive": true, "IsClosed": false, "IsWon": false, "DefaultProbability": 10, "SortOrder": 1},
            {"Id": "01J2", "ApiName": "Closed Won", "MasterLabel": "Closed Won", "IsActive": true, "IsClosed": true, "IsWon": true, "DefaultProbability": 100, "SortOrder": 9},
            {"Id": "01J3", "ApiName": "Closed Lost", "MasterLabel": "Closed Lost", "IsActive": true, "IsClosed": true, "IsWon": false, "DefaultProbability": 0, "SortOrder": 10}
        ]))
        .expect("stages")
    }

    #[test]
    fn stages_are_won_lost_or_open_with_order_and_probability() {
        let s = stages(&stage_rows());
        let c = StageCatalog::new(&s);
        let p = c.find("Prospecting").expect("open");
        assert_eq!(
            (p.category, p.display_order, p.probability),
            (StageCategory::Open, Some(1), Some(0.1))
        );
        assert_eq!(
            c.find("Closed Won").expect("won").category,
            StageCategory::Won
        );
        assert_eq!(
            c.find("Closed Lost").expect("lost").category,
            StageCategory::Lost
        );
        assert_eq!(c.find("Closed Won").expect("won").probability, Some(1.0));
    }

    #[test]
    fn a_deal_prefers_its_own_probability_and_falls_back_to_its_flags() {
        let c = StageCatalog::new(&stages(&stage_rows()));
        let o: SfOpportunity = serde_json::from_value(json!({
            "Id": "006A", "Name": "X", "StageName": "Prospecting", "Probability": 25,
            "ForecastCategoryName": "Best Case", "OwnerId": "005A", "AccountId": "001A"
        }))
        .expect("opp");
        let d = deal(&o, &c);
        assert_eq!(d.probability, Some(0.25));
        assert_eq!(d.stage_order, Some(1));
        assert_eq!(d.forecast_category.as_deref(), Some("Best Case"));
        let unknown: SfOpportunity = serde_json::from_value(
            json!({"Id": "006B", "StageName": "Custom Won", "IsClosed": true, "IsWon": true}),
        )
        .expect("opp");
        let d = deal(&unknown, &c);
        assert_eq!(d.stage_category, StageCategory::Won);
        assert_eq!(d.probability, None);
    }

    #[test]
    fn consecutive_history_rows_become_field_changes() {
        let rows: Vec<SfOpportunityHistory> = serde_json::from_value(json!([
            {"Id": "008c", "OpportunityId": "006A", "StageName": "Closed Won", "Amount": 1200, "CloseDate": "2026-03-20", "ForecastCategory": "Closed", "CreatedDate": "2026-03-20T10:00:00.000+0000"},
            {"Id": "008a", "OpportunityId": "006A", "StageName": "Prospecting", "Amount": 1000, "CloseDate": "2026-03-31", "ForecastCategory": "Pipeline", "CreatedDate": "2026-03-01T10:00:00.000+0000"},
            {"Id": "008b", "OpportunityId": "006A", "StageName": "Prospecting", "Amount": 1200.00, "CloseDate": "2026-03-31", "ForecastCategory": "Forecast", "CreatedDate": "2026-03-10T10:00:00.000+0000"}
        ]))
        .expect("rows");
        let h = history(&rows);
        let of = |f: DealField| -> Vec<(Option<String>, Option<String>)> {
            h.iter()
                .filter(|c| c.field == f)
                .map(|c| (c.old_value.clone(), c.new_value.clone()))
                .collect()
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            of(DealField::Stage),
            vec![
                (None, s("Prospecting")),
                (s("Prospecting"), s("Closed Won"))
            ]
        );
        assert_eq!(
            of(DealField::Amount),
            vec![(None, s("1000")), (s("1000"), s("1200"))]
        );
        assert_eq!(
            of(DealField::CloseDate),
            vec![(None, s("2026-03-31")), (s("2026-03-31"), s("2026-03-20"))]
        );
        assert_eq!(
            of(DealField::ForecastCategory),
            vec![
                (None, s("Pipeline")),
                (s("Pipeline"), s("Commit")),
                (s("Commit"), s("Closed"))
            ]
        );
        assert!(h.iter().all(|c| c.origin == ChangeOrigin::Vendor));
    }

    #[test]
    fn websites_become_domains() {
        assert_eq!(
            domain("www.burlington.com").as_deref(),
            Some("burlington.com")
        );
        assert_eq!(
            domain("http://EdgeComm.com/about?x").as_deref(),
            Some("edgecomm.com")
        );
        assert_eq!(domain("n/a"), None);
    }
}
