//! Salesforce's JSON, as its REST API (query, queryAll, getDeleted, OAuth)
//! sends it.
//!
//! Quirks the types absorb: datetimes carry an offset without a colon
//! (`2026-05-01T07:25:37.000+0000`); currency and percent fields are JSON
//! numbers (`15000`, `62.5`), percents out of 100; dates are `YYYY-MM-DD`;
//! relationship fields (`UserRole.Name`) come as a nested record or `null`;
//! every record carries an `attributes` object (ignored). A query page is
//! `{"totalSize", "done", "nextRecordsUrl"?, "records"}`; errors are a JSON
//! array `[{"message", "errorCode", "fields"?}]`. Unknown fields are ignored.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// Reads a Salesforce datetime: `2026-05-01T07:25:37.000+0000` (offset
/// without a colon, as the REST API writes it), or RFC 3339
/// (`…Z`, `…+00:00`).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_datetime(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a Salesforce datetime: {s:?}"))),
    }
}

fn date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not a date (YYYY-MM-DD): {s:?}"))),
    }
}

/// A number (currency, percent, double) as an exact decimal; Salesforce
/// sends numbers, a string holding one is accepted too.
fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let text = match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s,
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a number, got {other}"
            )))
        }
    };
    let t = text.trim();
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("not a number: {text:?}")))
}

fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// One page of `GET /services/data/vNN.N/query` (or `queryAll`, or the
/// `nextRecordsUrl` of either).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage<T> {
    /// Records matching the whole query (not just this page).
    #[serde(default)]
    pub total_size: Option<u64>,
    /// Whether this is the last page.
    pub done: bool,
    /// The relative path of the next page (`/services/data/v62.0/query/01g…-2000`),
    /// when `done` is false.
    #[serde(default)]
    pub next_records_url: Option<String>,
    /// The records.
    pub records: Vec<T>,
}

impl<T> QueryPage<T> {
    /// The next page's path: `None` when done; an error message when the
    /// vendor said "not done" without saying where the rest is.
    pub fn next(&self) -> Result<Option<String>, String> {
        if self.done {
            return Ok(None);
        }
        match self.next_records_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Ok(Some(url.to_string())),
            _ => Err("done is false but there is no nextRecordsUrl".into()),
        }
    }
}

/// What every synced record has: its id and modification stamp.
pub trait SfRecord {
    /// The record id (18 characters).
    fn id(&self) -> &str;
    /// `SystemModstamp`: when the record (or the system) last changed it.
    fn modstamp(&self) -> Option<DateTime<Utc>>;
}

macro_rules! sf_record {
    ($t:ty) => {
        impl SfRecord for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn modstamp(&self) -> Option<DateTime<Utc>> {
                self.system_modstamp
            }
        }
    };
}

/// A relationship field's nested record reduced to its `Name`
/// (`"UserRole": {"attributes": {…}, "Name": "Sales"}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Named {
    /// The related record's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A `User`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfUser {
    /// User id (`005…`).
    pub id: String,
    /// Full name.
    #[serde(default)]
    pub name: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Login name.
    #[serde(default)]
    pub username: Option<String>,
    /// Job title.
    #[serde(default)]
    pub title: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// The user's manager (a user id), for rollups.
    #[serde(default)]
    pub manager_id: Option<String>,
    /// `UserRole.Name`: the role in the hierarchy.
    #[serde(default)]
    pub user_role: Option<Named>,
    /// Whether the user can log in (users are deactivated, never deleted).
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_active: bool,
    /// `Standard`, `AutomatedProcess`, `PowerPartner`, …
    #[serde(default)]
    pub user_type: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "datetime")]
    pub created_date: Option<DateTime<Utc>>,
    /// Last modified.
    #[serde(default, deserialize_with = "datetime")]
    pub system_modstamp: Option<DateTime<Utc>>,
}
sf_record!(SfUser);

/// An `Account`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfAccount {
    /// Account id (`001…`).
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Website, as typed (`www.example.com`, `http://example.com/`).
    #[serde(default)]
    pub website: Option<String>,
    /// Industry.
    #[serde(default)]
    pub industry: Option<String>,
    /// `Customer - Direct`, `Prospect`, …
    #[serde(default, rename = "Type")]
    pub account_type: Option<String>,
    /// Owner (a user id).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Employees.
    #[serde(default)]
    pub number_of_employees: Option<i64>,
    /// Annual revenue.
    #[serde(default, deserialize_with = "decimal")]
    pub annual_revenue: Option<Decimal>,
    /// Billing city.
    #[serde(default)]
    pub billing_city: Option<String>,
    /// Billing country.
    #[serde(default)]
    pub billing_country: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "datetime")]
    pub created_date: Option<DateTime<Utc>>,
    /// Last modified.
    #[serde(default, deserialize_with = "datetime")]
    pub system_modstamp: Option<DateTime<Utc>>,
}
sf_record!(SfAccount);

/// A `Contact`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfContact {
    /// Contact id (`003…`).
    pub id: String,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Job title.
    #[serde(default)]
    pub title: Option<String>,
    /// The contact's account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "datetime")]
    pub created_date: Option<DateTime<Utc>>,
    /// Last modified.
    #[serde(default, deserialize_with = "datetime")]
    pub system_modstamp: Option<DateTime<Utc>>,
}
sf_record!(SfContact);

/// An `Opportunity`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfOpportunity {
    /// Opportunity id (`006…`).
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Amount (a JSON number).
    #[serde(default, deserialize_with = "decimal")]
    pub amount: Option<Decimal>,
    /// The amount's currency (only multi-currency orgs have the field).
    #[serde(default)]
    pub currency_iso_code: Option<String>,
    /// The stage picklist value (an `OpportunityStage.ApiName`).
    #[serde(default)]
    pub stage_name: Option<String>,
    /// Close date.
    #[serde(default, deserialize_with = "date")]
    pub close_date: Option<NaiveDate>,
    /// Probability, in percent (0–100).
    #[serde(default, deserialize_with = "decimal")]
    pub probability: Option<Decimal>,
    /// Forecast category label (`Pipeline`, `Best Case`, `Commit`, …).
    #[serde(default)]
    pub forecast_category_name: Option<String>,
    /// Owner (a user id).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// The account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Closed (won or lost).
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_closed: bool,
    /// Won.
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_won: bool,
    /// `New Business`, `Existing Business`, …
    #[serde(default, rename = "Type")]
    pub opportunity_type: Option<String>,
    /// Lead source.
    #[serde(default)]
    pub lead_source: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "datetime")]
    pub created_date: Option<DateTime<Utc>>,
    /// Last modified.
    #[serde(default, deserialize_with = "datetime")]
    pub system_modstamp: Option<DateTime<Utc>>,
}
sf_record!(SfOpportunity);

/// An `OpportunityHistory` row: the opportunity's stage, amount, close date
/// and forecast category as of `CreatedDate` (one row per change of any of them).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfOpportunityHistory {
    /// Row id (`008…`).
    pub id: String,
    /// The opportunity.
    pub opportunity_id: String,
    /// Stage.
    #[serde(default)]
    pub stage_name: Option<String>,
    /// Amount.
    #[serde(default, deserialize_with = "decimal")]
    pub amount: Option<Decimal>,
    /// Close date.
    #[serde(default, deserialize_with = "date")]
    pub close_date: Option<NaiveDate>,
    /// Forecast category, as its API value (`Pipeline`, `BestCase`,
    /// `Forecast` (= Commit), `MostLikely`, `Omitted`, `Closed`).
    #[serde(default)]
    pub forecast_category: Option<String>,
    /// When these values took effect.
    #[serde(deserialize_with = "datetime")]
    pub created_date: Option<DateTime<Utc>>,
}

/// An `OpportunityStage`: one value of the stage picklist.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfStage {
    /// Stage id (`01J…`).
    pub id: String,
    /// The picklist value that `Opportunity.StageName` holds (API 36.0+).
    #[serde(default)]
    pub api_name: Option<String>,
    /// The label.
    #[serde(default)]
    pub master_label: Option<String>,
    /// Still offered.
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_active: bool,
    /// Closed.
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_closed: bool,
    /// Won.
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_won: bool,
    /// Default probability, in percent (0–100).
    #[serde(default, deserialize_with = "decimal")]
    pub default_probability: Option<Decimal>,
    /// Default forecast category label.
    #[serde(default)]
    pub forecast_category_name: Option<String>,
    /// Position in the picklist.
    #[serde(default)]
    pub sort_order: Option<i32>,
}

/// An `OpportunityContactRole` (from `queryAll`, deleted ones included).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfContactRole {
    /// Row id (`00K…`).
    pub id: String,
    /// The opportunity.
    #[serde(default)]
    pub opportunity_id: Option<String>,
    /// The contact.
    #[serde(default)]
    pub contact_id: Option<String>,
    /// `Decision Maker`, `Economic Buyer`, …
    #[serde(default)]
    pub role: Option<String>,
    /// The opportunity's primary contact.
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_primary: bool,
    /// In the recycle bin.
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_deleted: bool,
    /// Last modified (a deletion modifies it too).
    #[serde(default, deserialize_with = "datetime")]
    pub system_modstamp: Option<DateTime<Utc>>,
}
sf_record!(SfContactRole);

/// A record reduced to its id (an id listing for reconciliation).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SfId {
    /// The id.
    pub id: String,
}

/// `GET /services/data/vNN.N/sobjects/{type}/deleted/?start=…&end=…`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedPage {
    /// The records deleted in the window.
    #[serde(default)]
    pub deleted_records: Vec<DeletedRecord>,
    /// Before this, the delete log has been purged: a window starting
    /// earlier cannot be trusted to be complete.
    #[serde(default, deserialize_with = "datetime")]
    pub earliest_date_available: Option<DateTime<Utc>>,
    /// The end of what the answer covers: the next window starts here.
    #[serde(default, deserialize_with = "datetime")]
    pub latest_date_covered: Option<DateTime<Utc>>,
}

/// One entry of [`DeletedPage::deleted_records`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedRecord {
    /// The deleted record's id.
    pub id: String,
    /// When it was deleted.
    #[serde(default, deserialize_with = "datetime")]
    pub deleted_date: Option<DateTime<Utc>>,
}

/// `GET /services/data/vNN.N/sobjects/{type}/describe/`, reduced to the
/// names of the fields the connected user may see (field-level security
/// applies: a field hidden from the user is absent, and selecting it in
/// SOQL would fail the query).
#[derive(Debug, Clone, Deserialize)]
pub struct Describe {
    /// The object's visible fields.
    pub fields: Vec<DescribeField>,
}

/// One field of a [`Describe`].
#[derive(Debug, Clone, Deserialize)]
pub struct DescribeField {
    /// API name (`AnnualRevenue`, `UserRoleId`, `Region__c`).
    pub name: String,
}

/// One element of a Salesforce error array.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorItem {
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// `INVALID_SESSION_ID`, `REQUEST_LIMIT_EXCEEDED`, `MALFORMED_QUERY`, …
    #[serde(default)]
    pub error_code: Option<String>,
    /// Fields the error is about, when any.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// `POST /services/oauth2/token`'s answer (a code exchange or a refresh).
/// There is no `expires_in`: the session lasts as the org's session
/// settings say, and an expired one answers `INVALID_SESSION_ID`.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token (a session id).
    pub access_token: String,
    /// A refresh token: on a code exchange when the `refresh_token` scope
    /// was granted; on a refresh only when the app rotates refresh tokens.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The API host of the org (`https://acme.my.salesforce.com`).
    #[serde(default)]
    pub instance_url: Option<String>,
    /// The identity URL (`https://login.salesforce.com/id/00D…/005…`).
    #[serde(default)]
    pub id: Option<String>,
    /// Granted scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Milliseconds since the epoch, as a string.
    #[serde(default)]
    pub issued_at: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("instance_url", &self.instance_url)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn datetimes_without_a_colon_in_the_offset_parse() {
        let expected = Utc
            .with_ymd_and_hms(2026, 5, 1, 7, 25, 37)
            .single()
            .expect("time");
        assert_eq!(
            parse_datetime("2026-05-01T07:25:37.000+0000"),
            Some(expected)
        );
        assert_eq!(parse_datetime("2026-05-01T07:25:37Z"), Some(expected));
        assert_eq!(
            parse_datetime("2026-05-01T09:25:37.000+0200"),
            Some(expected),
            "offsets other than UTC"
        );
        assert_eq!(parse_datetime("May 1st"), None);
    }

    #[test]
    fn a_record_reads_numbers_dates_and_null_relationships() {
        let o: SfOpportunity = serde_json::from_value(json!({
            "attributes": {"type": "Opportunity", "url": "/services/data/v62.0/sobjects/Opportunity/006A"},
            "Id": "006A", "Name": "Generators", "Amount": 15000.5, "StageName": "Qualification",
            "CloseDate": "2026-03-08", "Probability": 10, "IsClosed": false, "IsWon": null,
            "SystemModstamp": "2026-05-01T07:25:37.000+0000"
        }))
        .expect("opportunity");
        assert_eq!(o.amount, Some(Decimal::new(150005, 1)));
        assert_eq!(o.probability, Some(Decimal::from(10)));
        assert_eq!(o.close_date, NaiveDate::from_ymd_opt(2026, 3, 8));
        assert!(!o.is_won);
        let u: SfUser = serde_json::from_value(json!({
            "Id": "005A", "IsActive": true, "UserRole": null, "ManagerId": "005B"
        }))
        .expect("user");
        assert!(u.user_role.is_none());
        let bad = serde_json::from_value::<SfAccount>(
            json!({"Id": "001", "SystemModstamp": "yesterday"}),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn a_page_that_is_not_done_must_say_where_the_rest_is() {
        let page: QueryPage<SfId> =
            serde_json::from_value(json!({"totalSize": 3, "done": false, "records": []}))
                .expect("page");
        assert!(page.next().is_err());
        let page: QueryPage<SfId> = serde_json::from_value(json!({
            "totalSize": 3, "done": false, "nextRecordsUrl": "/services/data/v62.0/query/01g-2", "records": [{"Id": "a"}]
        }))
        .expect("page");
        assert_eq!(
            page.next().expect("next").as_deref(),
            Some("/services/data/v62.0/query/01g-2")
        );
    }
}
