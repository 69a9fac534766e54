//! The SOQL the connector sends: field lists, literals and the cursor filter.
//! Pure functions, no I/O.

use chrono::{DateTime, Duration, DurationRound, Utc};
use pandora_core::connector::TimeIdCursor;

/// `User` fields read.
pub const USER_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "FirstName",
    "LastName",
    "Email",
    "Username",
    "Title",
    "Department",
    "ManagerId",
    "UserRole.Name",
    "IsActive",
    "UserType",
    "CreatedDate",
    "SystemModstamp",
];

/// `Account` fields read.
pub const ACCOUNT_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "Website",
    "Industry",
    "Type",
    "OwnerId",
    "NumberOfEmployees",
    "AnnualRevenue",
    "BillingCity",
    "BillingCountry",
    "CreatedDate",
    "SystemModstamp",
];

/// `Contact` fields read.
pub const CONTACT_FIELDS: &[&str] = &[
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Title",
    "AccountId",
    "Phone",
    "CreatedDate",
    "SystemModstamp",
];

/// `Opportunity` fields read.
pub const OPPORTUNITY_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "Amount",
    "CurrencyIsoCode",
    "StageName",
    "CloseDate",
    "Probability",
    "ForecastCategoryName",
    "OwnerId",
    "AccountId",
    "IsClosed",
    "IsWon",
    "Type",
    "LeadSource",
    "CreatedDate",
    "SystemModstamp",
];

/// `OpportunityHistory` fields read.
pub const HISTORY_FIELDS: &[&str] = &[
    "Id",
    "OpportunityId",
    "StageName",
    "Amount",
    "CloseDate",
    "ForecastCategory",
    "CreatedDate",
];

/// `OpportunityStage` fields read.
pub const STAGE_FIELDS: &[&str] = &[
    "Id",
    "ApiName",
    "MasterLabel",
    "IsActive",
    "IsClosed",
    "IsWon",
    "DefaultProbability",
    "ForecastCategoryName",
    "SortOrder",
];

/// `OpportunityContactRole` fields read (through `queryAll`: `IsDeleted` included).
pub const CONTACT_ROLE_FIELDS: &[&str] = &[
    "Id",
    "OpportunityId",
    "ContactId",
    "Role",
    "IsPrimary",
    "IsDeleted",
    "SystemModstamp",
];

/// The fields of `wanted` that `visible` (a describe's field names) lets
/// the connected user read: a relationship field (`UserRole.Name`) when its
/// id field (`UserRoleId`) is visible. Fields hidden by field-level security
/// (or absent from the org, as `CurrencyIsoCode` without multi-currency)
/// would fail the whole query.
pub fn readable<'a>(wanted: &[&'a str], visible: &[String]) -> Vec<&'a str> {
    let has = |f: &str| visible.iter().any(|v| v == f);
    wanted
        .iter()
        .copied()
        .filter(|f| match f.split_once('.') {
            Some((relationship, _)) => has(&format!("{relationship}Id")),
            None => has(f),
        })
        .collect()
}

/// The order of every incremental read: the cursor's.
pub const BY_MODSTAMP: &str = "ORDER BY SystemModstamp ASC, Id ASC";

/// A dateTime literal, `YYYY-MM-DDThh:mm:ssZ` (unquoted; SOQL takes no
/// fraction of a second, so the time is rounded down to the second, which
/// only ever widens a `>` filter).
pub fn datetime_literal(t: DateTime<Utc>) -> String {
    t.duration_trunc(Duration::seconds(1))
        .unwrap_or(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A quoted string literal, with `\` and `'` escaped.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The filter that resumes after `cursor`, `overlap` earlier:
/// `SystemModstamp > X OR (SystemModstamp = X AND Id > 'Y')` with
/// `X = cursor.updated_at - overlap`, or `SystemModstamp >= X` for a cursor
/// without an id (a time only).
pub fn after(cursor: &TimeIdCursor, overlap: Duration) -> String {
    let x = datetime_literal(cursor.resume_from(overlap));
    if cursor.id.is_empty() {
        format!("SystemModstamp >= {x}")
    } else {
        format!(
            "SystemModstamp > {x} OR (SystemModstamp = {x} AND Id > {})",
            string_literal(&cursor.id)
        )
    }
}

/// `SELECT fields FROM object [WHERE filter] [order]`.
pub fn select(fields: &[&str], object: &str, filter: Option<&str>, order: Option<&str>) -> String {
    let mut q = format!("SELECT {} FROM {object}", fields.join(", "));
    if let Some(f) = filter {
        q.push_str(" WHERE ");
        q.push_str(f);
    }
    if let Some(o) = order {
        q.push(' ');
        q.push_str(o);
    }
    q
}

/// `field IN ('a', 'b', …)`.
pub fn id_in(field: &str, ids: &[String]) -> String {
    let list: Vec<String> = ids.iter().map(|i| string_literal(i)).collect();
    format!("{field} IN ({})", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_cursor_filter_ties_on_id_and_starts_an_overlap_earlier() {
        let c = TimeIdCursor {
            updated_at: Utc
                .with_ymd_and_hms(2026, 5, 1, 7, 30, 0)
                .single()
                .expect("time")
                + Duration::milliseconds(250),
            id: "006A'x".into(),
        };
        assert_eq!(
            after(&c, Duration::minutes(5)),
            "SystemModstamp > 2026-05-01T07:25:00Z OR (SystemModstamp = 2026-05-01T07:25:00Z AND Id > '006A\\'x')"
        );
        let time_only = TimeIdCursor {
            id: String::new(),
            ..c
        };
        assert_eq!(
            after(&time_only, Duration::zero()),
            "SystemModstamp >= 2026-05-01T07:30:00Z"
        );
        assert_eq!(
            select(
                &["Id", "Name"],
                "Account",
                Some("Name = 'x'"),
                Some(BY_MODSTAMP)
            ),
            "SELECT Id, Name FROM Account WHERE Name = 'x' ORDER BY SystemModstamp ASC, Id ASC"
        );
        assert_eq!(
            id_in("OpportunityId", &["a".into(), "b".into()]),
            "OpportunityId IN ('a', 'b')"
        );
        let visible: Vec<String> = ["Id", "Name", "UserRoleId"].map(String::from).to_vec();
        assert_eq!(
            readable(
                &["Id", "Name", "Title", "UserRole.Name", "Manager.Name"],
                &visible
            ),
            vec!["Id", "Name", "UserRole.Name"]
        );
    }
}
