//! HubSpot's JSON, as its CRM v3 (and associations v4) API sends it.
//!
//! Quirks the types absorb: every CRM property value is a string or `null`
//! (numbers and booleans too: `"5000.00"`, `"true"`); a stage's
//! `metadata.isClosed` and `metadata.probability` are strings; a search's
//! `paging.next.after` is a string holding an offset; v4 association ids are
//! numbers. Unknown fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A string that a vendor may also send as a number or a boolean.
fn flexible_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, got {other}"
            )))
        }
    })
}

fn required_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    flexible_string(d)?.ok_or_else(|| serde::de::Error::custom("expected a string, got null"))
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A page of a list or search endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    /// The records.
    pub results: Vec<T>,
    /// Where the next page starts, when there is one.
    #[serde(default)]
    pub paging: Option<Paging>,
    /// Search only: how many records match.
    #[serde(default)]
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// The `after` of the next page, if any.
    pub fn next_after(&self) -> Option<String> {
        self.paging
            .as_ref()
            .and_then(|p| p.next.as_ref())
            .map(|n| n.after.clone())
            .filter(|a| !a.is_empty())
    }
}

/// `paging` of a page.
#[derive(Debug, Clone, Deserialize)]
pub struct Paging {
    /// The next page.
    #[serde(default)]
    pub next: Option<NextPage>,
}

/// `paging.next`.
#[derive(Debug, Clone, Deserialize)]
pub struct NextPage {
    /// Opaque cursor (search: an offset, as a string).
    #[serde(deserialize_with = "required_string")]
    pub after: String,
}

/// `GET /crm/v3/owners`: a HubSpot user who can own records. Records'
/// `hubspot_owner_id` is this `id`, not `userId`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// Owner id.
    #[serde(deserialize_with = "required_string")]
    pub id: String,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// The HubSpot user id (not what records reference).
    #[serde(default, deserialize_with = "flexible_string")]
    pub user_id: Option<String>,
    /// Teams.
    #[serde(default, deserialize_with = "null_as_default")]
    pub teams: Vec<Team>,
    /// Deactivated.
    #[serde(default)]
    pub archived: bool,
    /// Last modified.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// An owner's team.
#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    /// Team id.
    #[serde(deserialize_with = "required_string")]
    pub id: String,
    /// Team name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether it is the owner's primary team.
    #[serde(default)]
    pub primary: bool,
}

/// A CRM record (company, contact, deal) of a list, search or batch read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmObject {
    /// Record id.
    #[serde(deserialize_with = "required_string")]
    pub id: String,
    /// Property values (strings or null).
    #[serde(default, deserialize_with = "null_as_default")]
    pub properties: BTreeMap<String, PropertyValue>,
    /// Histories asked for by `propertiesWithHistory`, newest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub properties_with_history: BTreeMap<String, Vec<PropertyVersion>>,
    /// Created.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last modified.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Archived (deleted, restorable for 90 days).
    #[serde(default)]
    pub archived: bool,
    /// When it was archived.
    #[serde(default)]
    pub archived_at: Option<String>,
    /// Associations asked for by `associations=`, by object type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub associations: BTreeMap<String, AssociationPage>,
}

impl CrmObject {
    /// A property's value, `None` when absent, null or empty.
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .and_then(|v| v.0.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// A property value: HubSpot sends strings (or null) for every type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PropertyValue(#[serde(deserialize_with = "flexible_string")] pub Option<String>);

/// One version of a property (`propertiesWithHistory`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyVersion {
    /// The value set (null or empty: cleared).
    #[serde(default, deserialize_with = "flexible_string")]
    pub value: Option<String>,
    /// When.
    #[serde(deserialize_with = "required_string")]
    pub timestamp: String,
    /// What set it (`CRM_UI`, `API`, …).
    #[serde(default)]
    pub source_type: Option<String>,
}

/// Associations of one type on a record.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssociationPage {
    /// The associated records.
    #[serde(default)]
    pub results: Vec<Association>,
}

/// One associated record (v3 form).
#[derive(Debug, Clone, Deserialize)]
pub struct Association {
    /// Its id.
    #[serde(deserialize_with = "required_string")]
    pub id: String,
    /// The association type, e.g. `deal_to_company` (primary) or `deal_to_company_unlabeled`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// `GET /crm/v3/pipelines/deals`: a pipeline and its stages.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    /// Pipeline id (`default` for the first one).
    #[serde(deserialize_with = "required_string")]
    pub id: String,
    /// Label.
    #[serde(default)]
    pub label: Option<String>,
    /// Position among pipelines.
    #[serde(default)]
    pub display_order: Option<i32>,
    /// Stages.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
}

/// A deal stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Stage id (what a deal's `dealstage` holds).
    #[serde(deserialize_with = "required_string")]
    pub id: String,
    /// Label.
    #[serde(default)]
    pub label: Option<String>,
    /// Position in the pipeline.
    #[serde(default)]
    pub display_order: Option<i32>,
    /// `isClosed` and `probability`, as strings.
    #[serde(default)]
    pub metadata: StageMetadata,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
}

/// A stage's metadata: strings such as `"true"` and `"0.2"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageMetadata {
    /// `"true"` for closed (won or lost) stages.
    #[serde(default, deserialize_with = "flexible_string")]
    pub is_closed: Option<String>,
    /// Win probability, `"0.0"` to `"1.0"`.
    #[serde(default, deserialize_with = "flexible_string")]
    pub probability: Option<String>,
}

/// `GET /crm/v3/properties/deals`: a property definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDefinition {
    /// Internal name.
    pub name: String,
    /// Whether HubSpot defines it (custom properties: false or absent).
    #[serde(default)]
    pub hubspot_defined: Option<bool>,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
}

/// The answer of a batch read.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchResults<T> {
    /// The records found.
    pub results: Vec<T>,
}

/// A row of `POST /crm/v4/associations/{from}/{to}/batch/read`.
#[derive(Debug, Clone, Deserialize)]
pub struct AssociationRow {
    /// The record asked about.
    pub from: AssociationFrom,
    /// Its associated records.
    #[serde(default)]
    pub to: Vec<AssociationTo>,
}

/// `from` of an [`AssociationRow`].
#[derive(Debug, Clone, Deserialize)]
pub struct AssociationFrom {
    /// Record id.
    #[serde(deserialize_with = "required_string")]
    pub id: String,
}

/// `to` of an [`AssociationRow`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationTo {
    /// Associated record id (a number in v4).
    #[serde(deserialize_with = "required_string")]
    pub to_object_id: String,
    /// The association's types.
    #[serde(default)]
    pub association_types: Vec<AssociationType>,
}

/// A v4 association type.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationType {
    /// `HUBSPOT_DEFINED` or `USER_DEFINED`.
    #[serde(default)]
    pub category: Option<String>,
    /// Type id (deal→company primary: 5).
    #[serde(default)]
    pub type_id: Option<i64>,
    /// Label, for labelled associations.
    #[serde(default)]
    pub label: Option<String>,
}

/// A HubSpot error body (`{"status":"error","message",…}`; 429s add `policyName`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `"error"`, or a code such as `"BAD_REFRESH_TOKEN"` on the token endpoint.
    #[serde(default)]
    pub status: Option<String>,
    /// Human message.
    #[serde(default)]
    pub message: Option<String>,
    /// e.g. `"RATE_LIMITS"`, `"VALIDATION_ERROR"`.
    #[serde(default)]
    pub category: Option<String>,
    /// Rate-limit policy of a 429: `TEN_SECONDLY_ROLLING`, `SECONDLY`, `DAILY`.
    #[serde(default)]
    pub policy_name: Option<String>,
    /// OAuth error code (`invalid_grant`).
    #[serde(default)]
    pub error: Option<String>,
    /// OAuth error text.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// The token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Lifetime in seconds (HubSpot: 1800).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Scopes, when sent as a list.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Scopes, when sent space-separated.
    #[serde(default)]
    pub scope: Option<String>,
}

/// Token metadata (`GET /oauth/v1/access-tokens/{token}` or the private-app equivalent).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The portal, when given (OAuth form).
    #[serde(default, alias = "hub_id", deserialize_with = "flexible_string")]
    pub hub_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_metadata_strings_and_numeric_ids_parse() {
        let p: Page<Pipeline> = serde_json::from_value(serde_json::json!({
            "results": [{"id": "default", "label": "Sales", "displayOrder": 0, "stages": [
                {"id": "won", "label": "Won", "displayOrder": 5,
                 "metadata": {"isClosed": "true", "probability": "1.0"}, "archived": false},
                {"id": "x", "label": "X", "displayOrder": 1, "metadata": {"isClosed": false, "probability": 0.2}}
            ], "archived": false}]
        }))
        .expect("pipelines");
        let s = &p.results[0].stages;
        assert_eq!(s[0].metadata.is_closed.as_deref(), Some("true"));
        assert_eq!(s[1].metadata.probability.as_deref(), Some("0.2"));
        let rows: BatchResults<AssociationRow> = serde_json::from_value(serde_json::json!({
            "results": [{"from": {"id": "1"}, "to": [{"toObjectId": 42, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": null}]}]}]
        }))
        .expect("v4");
        assert_eq!(rows.results[0].to[0].to_object_id, "42");
        let o: CrmObject = serde_json::from_value(serde_json::json!({
            "id": "7", "properties": {"amount": "12.5", "hs_is_closed": null, "blank": " "},
            "archived": false
        }))
        .expect("object");
        assert_eq!(o.prop("amount"), Some("12.5"));
        assert_eq!(o.prop("hs_is_closed"), None);
        assert_eq!(o.prop("blank"), None);
    }
}
