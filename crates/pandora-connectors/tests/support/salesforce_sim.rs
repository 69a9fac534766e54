//! A local Salesforce: a wiremock server answering like Salesforce's REST
//! API — `query` and `queryAll` running the SOQL shapes the connector sends
//! (field lists checked against each object's fields, `WHERE` on the
//! `(SystemModstamp, Id)` cursor or `… IN (…)`, `ORDER BY`, `LIMIT`), paged
//! through `nextRecordsUrl` query locators; `sobjects/{type}/deleted/` with
//! `earliestDateAvailable` and `latestDateCovered`; bearer-token checks
//! (`INVALID_SESSION_ID`); `Sforce-Limit-Info` and the daily limit
//! (`REQUEST_LIMIT_EXCEEDED`). Errors are Salesforce's JSON arrays. Faults
//! (5xx, malformed bodies, …) are queued per path prefix and object.
//! Fixture data is our own, shaped on Salesforce's recorded answers
//! (`attributes` on every record, datetimes as `…000+0000`, amounts as JSON
//! numbers, relationship fields nested or `null`).

#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const VERSION: &str = "v62.0";

/// A request the simulator received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub auth: Option<String>,
    /// The object the request read (from its SOQL or its query locator).
    pub object: Option<String>,
    pub at: Instant,
    pub status: u16,
}

impl Seen {
    /// The SOQL sent, if any.
    pub fn soql(&self) -> Option<&str> {
        self.query.get("q").map(String::as_str)
    }
}

/// A queued answer for the next `times` requests whose path starts with
/// `prefix` (and that read `object`, when given).
pub struct Fault {
    pub prefix: String,
    pub object: Option<String>,
    pub response: ResponseTemplate,
    pub times: usize,
}

/// The simulated org.
pub struct State {
    pub users: Vec<Value>,
    pub accounts: Vec<Value>,
    pub contacts: Vec<Value>,
    pub opportunities: Vec<Value>,
    pub history: Vec<Value>,
    pub stages: Vec<Value>,
    pub contact_roles: Vec<Value>,
    /// `(object, id, deletedDate)` in the delete log.
    pub deleted: Vec<(String, String, String)>,
    /// What getDeleted answers as `earliestDateAvailable`.
    pub earliest_available: String,
    /// Records per query page (Salesforce: up to 2,000).
    pub page_size: usize,
    /// Fields hidden from the connected user (`"Account.Website"`): absent
    /// from describes, and selecting them fails the query.
    pub hidden: Vec<String>,
    /// A multi-currency org: opportunities have `CurrencyIsoCode`.
    pub multi_currency: bool,
    pub valid_tokens: Vec<String>,
    pub api_used: u64,
    pub api_limit: u64,
    pub faults: VecDeque<Fault>,
    pub seen: Vec<Seen>,
    pub locators: HashMap<String, (String, Vec<Value>)>,
    pub next_locator: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            users: vec![],
            accounts: vec![],
            contacts: vec![],
            opportunities: vec![],
            history: vec![],
            stages: standard_stages(),
            contact_roles: vec![],
            deleted: vec![],
            earliest_available: "2026-01-01T00:00:00.000+0000".into(),
            page_size: 2000,
            hidden: vec![],
            multi_currency: false,
            valid_tokens: vec!["token-1".into()],
            api_used: 120,
            api_limit: 15_000,
            faults: VecDeque::new(),
            seen: vec![],
            locators: HashMap::new(),
            next_locator: 1,
        }
    }
}

impl State {
    /// Deletes the record `id` of `object` at `when` (it goes to the delete log).
    pub fn delete(&mut self, object: &str, id: &str, when: &str) {
        let list = self.table_mut(object);
        list.retain(|r| r["Id"] != id);
        self.deleted
            .push((object.to_string(), id.to_string(), when.to_string()));
    }

    fn table_mut(&mut self, object: &str) -> &mut Vec<Value> {
        match object {
            "User" => &mut self.users,
            "Account" => &mut self.accounts,
            "Contact" => &mut self.contacts,
            "Opportunity" => &mut self.opportunities,
            "OpportunityHistory" => &mut self.history,
            "OpportunityStage" => &mut self.stages,
            "OpportunityContactRole" => &mut self.contact_roles,
            _ => panic!("no table {object}"),
        }
    }

    /// The fields of `object` the connected user may see.
    fn visible_fields(&self, object: &str) -> Vec<String> {
        let mut fields: Vec<String> = fields_of(object)
            .iter()
            .map(|f| f.to_string())
            .filter(|f| !self.hidden.contains(&format!("{object}.{f}")))
            .collect();
        if object == "Opportunity" && self.multi_currency {
            fields.push("CurrencyIsoCode".into());
        }
        fields
    }

    fn table(&self, object: &str) -> Option<&Vec<Value>> {
        Some(match object {
            "User" => &self.users,
            "Account" => &self.accounts,
            "Contact" => &self.contacts,
            "Opportunity" => &self.opportunities,
            "OpportunityHistory" => &self.history,
            "OpportunityStage" => &self.stages,
            "OpportunityContactRole" => &self.contact_roles,
            _ => return None,
        })
    }
}

/// The fields each object has (what SOQL may select, filter and sort on).
fn fields_of(object: &str) -> &'static [&'static str] {
    match object {
        "User" => &[
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
            "UserRoleId",
            "IsActive",
            "UserType",
            "ProfileId",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp",
        ],
        "Account" => &[
            "Id",
            "Name",
            "Website",
            "Industry",
            "Type",
            "OwnerId",
            "NumberOfEmployees",
            "AnnualRevenue",
            "BillingCity",
            "BillingState",
            "BillingCountry",
            "Phone",
            "AccountNumber",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp",
            "IsDeleted",
        ],
        "Contact" => &[
            "Id",
            "FirstName",
            "LastName",
            "Name",
            "Email",
            "Title",
            "AccountId",
            "Phone",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp",
            "IsDeleted",
        ],
        "Opportunity" => &[
            "Id",
            "Name",
            "Amount",
            "StageName",
            "CloseDate",
            "Probability",
            "ForecastCategory",
            "ForecastCategoryName",
            "OwnerId",
            "AccountId",
            "IsClosed",
            "IsWon",
            "Type",
            "LeadSource",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp",
            "IsDeleted",
        ],
        "OpportunityHistory" => &[
            "Id",
            "OpportunityId",
            "StageName",
            "Amount",
            "CloseDate",
            "ForecastCategory",
            "Probability",
            "ExpectedRevenue",
            "CreatedDate",
            "CreatedById",
            "SystemModstamp",
            "IsDeleted",
        ],
        "OpportunityStage" => &[
            "Id",
            "ApiName",
            "MasterLabel",
            "IsActive",
            "IsClosed",
            "IsWon",
            "DefaultProbability",
            "ForecastCategory",
            "ForecastCategoryName",
            "SortOrder",
            "Description",
            "CreatedDate",
            "SystemModstamp",
        ],
        "OpportunityContactRole" => &[
            "Id",
            "OpportunityId",
            "ContactId",
            "Role",
            "IsPrimary",
            "IsDeleted",
            "CreatedDate",
            "SystemModstamp",
        ],
        _ => &[],
    }
}

/// The simulator (cheap to clone; shares its state).
#[derive(Clone)]
pub struct Sim(pub Arc<Mutex<State>>);

impl Sim {
    /// Starts a server answering from `state`.
    pub async fn start(state: State) -> (MockServer, Sim) {
        let server = MockServer::start().await;
        let sim = Sim(Arc::new(Mutex::new(state)));
        Mock::given(any())
            .respond_with(sim.clone())
            .mount(&server)
            .await;
        (server, sim)
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the next `times` requests under `prefix` with `response`.
    pub fn fail(&self, prefix: &str, times: usize, response: ResponseTemplate) {
        self.state().faults.push_back(Fault {
            prefix: prefix.into(),
            object: None,
            response,
            times,
        });
    }

    /// Answers the next `times` requests under `prefix` that read `object` with `response`.
    pub fn fail_object(
        &self,
        prefix: &str,
        object: &str,
        times: usize,
        response: ResponseTemplate,
    ) {
        self.state().faults.push_back(Fault {
            prefix: prefix.into(),
            object: Some(object.into()),
            response,
            times,
        });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn seen_under(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with(prefix))
            .collect()
    }

    /// The SOQL statements sent that read `object` (first pages only).
    pub fn soql_for(&self, object: &str) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.object.as_deref() == Some(object))
            .filter_map(|s| s.soql().map(str::to_string))
            .collect()
    }
}

impl Respond for Sim {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.state();
        let path = req.url.path().to_string();
        let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let object = s.object_of(&path, &query);
        let (status, response) = s.handle(
            req.method.as_str(),
            &path,
            &query,
            auth.as_deref(),
            object.as_deref(),
        );
        s.seen.push(Seen {
            method: req.method.to_string(),
            path,
            query,
            auth,
            object,
            at: Instant::now(),
            status,
        });
        response
    }
}

/// Salesforce's error body: a JSON array.
pub fn sf_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!([{"message": message, "errorCode": code}]))
}

fn err(status: u16, code: &str, message: &str) -> (u16, ResponseTemplate) {
    (status, sf_error(status, code, message))
}

fn ok(body: Value) -> (u16, ResponseTemplate) {
    (200, ResponseTemplate::new(200).set_body_json(body))
}

/// A Salesforce datetime (`…000+0000`, or a SOQL literal / `+00:00` form).
pub fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| panic!("bad time {s:?}"))
}

/// As Salesforce writes it.
pub fn sf_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn object_from_soql(q: &str) -> Option<String> {
    q.split_whitespace()
        .skip_while(|w| *w != "FROM")
        .nth(1)
        .map(str::to_string)
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// `'a'` → `a` (with `\'` and `\\` unescaped).
fn unquote(s: &str) -> Option<String> {
    let inner = s.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("\\'", "'").replace("\\\\", "\\"))
}

enum Filter {
    All,
    After(DateTime<Utc>, String),
    AtOrAfter(DateTime<Utc>),
    In(String, Vec<String>),
}

fn parse_filter(w: &str) -> Option<Filter> {
    if let Some(rest) = w.strip_prefix("SystemModstamp >= ") {
        return Some(Filter::AtOrAfter(time(rest.trim())));
    }
    if let Some(rest) = w.strip_prefix("SystemModstamp > ") {
        let (t, tail) = rest.split_once(" OR (SystemModstamp = ")?;
        let (t2, tail) = tail.split_once(" AND Id > ")?;
        if t != t2 {
            return None;
        }
        let id = unquote(tail.strip_suffix(')')?)?;
        return Some(Filter::After(time(t), id));
    }
    let (field, list) = w.split_once(" IN (")?;
    let list = list.strip_suffix(')')?;
    let ids = list
        .split(", ")
        .map(unquote)
        .collect::<Option<Vec<String>>>()?;
    Some(Filter::In(field.trim().to_string(), ids))
}

impl State {
    fn object_of(&self, path: &str, query: &BTreeMap<String, String>) -> Option<String> {
        if let Some(q) = query.get("q") {
            return object_from_soql(q);
        }
        if let Some(rest) = path.strip_prefix(&format!("/services/data/{VERSION}/query/")) {
            let locator = rest.split('-').next().unwrap_or_default();
            return self.locators.get(locator).map(|(o, _)| o.clone());
        }
        if let Some(rest) = path.strip_prefix(&format!("/services/data/{VERSION}/sobjects/")) {
            return rest.split('/').next().map(str::to_string);
        }
        None
    }

    fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        auth: Option<&str>,
        object: Option<&str>,
    ) -> (u16, ResponseTemplate) {
        if let Some(i) = self.faults.iter().position(|f| {
            path.starts_with(&f.prefix) && f.object.as_deref().is_none_or(|o| object == Some(o))
        }) {
            let f = &mut self.faults[i];
            let response = f.response.clone();
            f.times -= 1;
            if f.times == 0 {
                self.faults.remove(i);
            }
            return (0, response);
        }
        let token = auth.and_then(|a| a.strip_prefix("Bearer "));
        if !token.is_some_and(|t| self.valid_tokens.iter().any(|v| v == t)) {
            return err(401, "INVALID_SESSION_ID", "Session expired or invalid");
        }
        self.api_used += 1;
        let usage = format!(
            "api-usage={}/{}",
            self.api_used.min(self.api_limit),
            self.api_limit
        );
        let (status, response) = if self.api_used > self.api_limit {
            err(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )
        } else {
            self.route(method, path, query)
        };
        (
            status,
            response.insert_header("Sforce-Limit-Info", usage.as_str()),
        )
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
    ) -> (u16, ResponseTemplate) {
        let Some(rest) = path.strip_prefix(&format!("/services/data/{VERSION}/")) else {
            return err(404, "NOT_FOUND", "The requested resource does not exist");
        };
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["query"]) => self.soql(query.get("q"), false),
            ("GET", ["queryAll"]) => self.soql(query.get("q"), true),
            ("GET", ["query", locator]) => self.more(locator),
            ("GET", ["sobjects", object, "deleted"]) => self.get_deleted(object, query),
            ("GET", ["sobjects", object, "describe"]) => match self.table(object) {
                Some(_) => {
                    let fields: Vec<Value> = self
                        .visible_fields(object)
                        .into_iter()
                        .filter(|f| !f.contains('.'))
                        .map(|f| json!({"name": f, "label": f, "type": "string"}))
                        .collect();
                    ok(
                        json!({"name": object, "label": object, "queryable": true, "fields": fields}),
                    )
                }
                None => err(404, "NOT_FOUND", "The requested resource does not exist"),
            },
            _ => err(404, "NOT_FOUND", "The requested resource does not exist"),
        }
    }

    fn soql(&mut self, q: Option<&String>, all: bool) -> (u16, ResponseTemplate) {
        let Some(q) = q else {
            return err(400, "MALFORMED_QUERY", "A query string has to be specified");
        };
        let Some(rest) = q.strip_prefix("SELECT ") else {
            return err(400, "MALFORMED_QUERY", "unexpected token");
        };
        let Some((fields, rest)) = rest.split_once(" FROM ") else {
            return err(400, "MALFORMED_QUERY", "no FROM");
        };
        let fields: Vec<&str> = fields.split(", ").collect();
        let (rest, limit) = match rest.split_once(" LIMIT ") {
            Some((r, l)) => (r, l.trim().parse::<usize>().ok()),
            None => (rest, None),
        };
        let (rest, order) = match rest.split_once(" ORDER BY ") {
            Some((r, o)) => (r, Some(o)),
            None => (rest, None),
        };
        let (object, filter) = match rest.split_once(" WHERE ") {
            Some((o, w)) => match parse_filter(w) {
                Some(f) => (o.trim(), f),
                None => return err(400, "MALFORMED_QUERY", &format!("unexpected filter: {w}")),
            },
            None => (rest.trim(), Filter::All),
        };
        let Some(table) = self.table(object) else {
            return err(
                400,
                "INVALID_TYPE",
                &format!("sObject type '{object}' is not supported."),
            );
        };
        let visible = self.visible_fields(object);
        let known: Vec<&str> = visible.iter().map(String::as_str).collect();
        for f in &fields {
            let relationship_hidden = f
                .split_once('.')
                .is_some_and(|(rel, _)| !known.contains(&format!("{rel}Id").as_str()));
            if !known.contains(f) || relationship_hidden {
                return err(
                    400,
                    "INVALID_FIELD",
                    &format!("No such column '{f}' on entity '{object}'."),
                );
            }
        }
        let mut rows: Vec<Value> = table
            .iter()
            .filter(|r| all || !r["IsDeleted"].as_bool().unwrap_or(false))
            .filter(|r| match &filter {
                Filter::All => true,
                Filter::AtOrAfter(t) => {
                    time(r["SystemModstamp"].as_str().unwrap_or_default()) >= *t
                }
                Filter::After(t, id) => {
                    let at = time(r["SystemModstamp"].as_str().unwrap_or_default());
                    at > *t || (at == *t && r["Id"].as_str().unwrap_or_default() > id.as_str())
                }
                Filter::In(field, ids) => ids
                    .iter()
                    .any(|i| r[field.as_str()].as_str() == Some(i.as_str())),
            })
            .cloned()
            .collect();
        if let Some(order) = order {
            let keys: Vec<(String, bool)> = order
                .split(", ")
                .map(|k| {
                    let (f, dir) = k.split_once(' ').unwrap_or((k, "ASC"));
                    (f.to_string(), dir != "DESC")
                })
                .collect();
            for (f, _) in &keys {
                if !known.contains(&f.as_str()) {
                    return err(
                        400,
                        "INVALID_FIELD",
                        &format!("No such column '{f}' on entity '{object}'."),
                    );
                }
            }
            rows.sort_by(|a, b| {
                for (f, asc) in &keys {
                    let o = cmp_values(&a[f.as_str()], &b[f.as_str()]);
                    let o = if *asc { o } else { o.reverse() };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
        }
        if let Some(l) = limit {
            rows.truncate(l);
        }
        let shaped: Vec<Value> = rows.iter().map(|r| shape(r, object, &fields)).collect();
        self.page(object, shaped, 0, None)
    }

    fn page(
        &mut self,
        object: &str,
        rows: Vec<Value>,
        offset: usize,
        locator: Option<String>,
    ) -> (u16, ResponseTemplate) {
        let total = rows.len();
        let end = (offset + self.page_size).min(total);
        let mut body = json!({
            "totalSize": total,
            "done": end >= total,
            "records": rows[offset..end].to_vec(),
        });
        if end < total {
            let locator = locator.unwrap_or_else(|| {
                let l = format!("0r8SIM{:04}", self.next_locator);
                self.next_locator += 1;
                self.locators
                    .insert(l.clone(), (object.to_string(), rows.clone()));
                l
            });
            body["nextRecordsUrl"] =
                json!(format!("/services/data/{VERSION}/query/{locator}-{end}"));
        }
        ok(body)
    }

    fn more(&mut self, locator: &str) -> (u16, ResponseTemplate) {
        let Some((id, offset)) = locator.rsplit_once('-') else {
            return err(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        };
        let Some((object, rows)) = self.locators.get(id).cloned() else {
            return err(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        };
        let Ok(offset) = offset.parse::<usize>() else {
            return err(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        };
        self.page(&object, rows, offset, Some(id.to_string()))
    }

    fn get_deleted(
        &mut self,
        object: &str,
        query: &BTreeMap<String, String>,
    ) -> (u16, ResponseTemplate) {
        let (Some(start), Some(end)) = (query.get("start"), query.get("end")) else {
            return err(400, "MISSING_ARGUMENT", "start and end are required");
        };
        let (start, end) = (time(start), time(end));
        if start + chrono::Duration::minutes(1) >= end {
            return err(
                400,
                "INVALID_REPLICATION_DATE",
                "startDate must chronologically precede endDate by more than one minute",
            );
        }
        let records: Vec<Value> = self
            .deleted
            .iter()
            .filter(|(o, _, at)| o == object && time(at) >= start && time(at) <= end)
            .map(|(_, id, at)| json!({"id": id, "deletedDate": at}))
            .collect();
        let covered = end - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&end)));
        ok(json!({
            "deletedRecords": records,
            "earliestDateAvailable": self.earliest_available,
            "latestDateCovered": sf_time(covered),
        }))
    }
}

/// A record as Salesforce returns it: `attributes` and the selected fields
/// (relationship fields nested, or `null`).
fn shape(r: &Value, object: &str, fields: &[&str]) -> Value {
    let id = r["Id"].as_str().unwrap_or_default();
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": object, "url": format!("/services/data/{VERSION}/sobjects/{object}/{id}")}),
    );
    for f in fields {
        match f.split_once('.') {
            Some((rel, name)) => {
                let v = match &r[rel] {
                    Value::Null => Value::Null,
                    nested => json!({
                        "attributes": {"type": rel, "url": format!("/services/data/{VERSION}/sobjects/{rel}/{}", nested["Id"].as_str().unwrap_or("00E000000000001"))},
                        name: nested[name],
                    }),
                };
                out.insert(rel.to_string(), v);
            }
            None => {
                out.insert((*f).to_string(), r.get(*f).cloned().unwrap_or(Value::Null));
            }
        }
    }
    Value::Object(out)
}

// ---- fixtures (our own data, Salesforce's shapes) ----

pub fn user(
    id: &str,
    first: &str,
    last: &str,
    manager: Option<&str>,
    role: Option<&str>,
    modstamp: &str,
) -> Value {
    json!({
        "Id": id, "FirstName": first, "LastName": last, "Name": format!("{first} {last}"),
        "Email": format!("{}@example.com", first.to_lowercase()),
        "Username": format!("{}@acme.example.com", first.to_lowercase()),
        "Title": "Account Executive", "Department": "Sales", "ManagerId": manager,
        "UserRole": role.map(|r| json!({"Id": "00E000000000001", "Name": r})),
        "IsActive": true, "UserType": "Standard",
        "CreatedDate": "2026-01-05T09:00:00.000+0000", "SystemModstamp": modstamp,
    })
}

pub fn account(id: &str, name: &str, website: Option<&str>, owner: &str, modstamp: &str) -> Value {
    json!({
        "Id": id, "Name": name, "Website": website, "Industry": "Manufacturing",
        "Type": "Customer - Direct", "OwnerId": owner, "NumberOfEmployees": 250,
        "AnnualRevenue": 12500000.0, "BillingCity": "Lyon", "BillingState": null,
        "BillingCountry": "France", "Phone": "+33 4 00 00 00 00", "AccountNumber": null,
        "CreatedDate": "2026-02-01T10:00:00.000+0000", "LastModifiedDate": modstamp,
        "SystemModstamp": modstamp, "IsDeleted": false,
    })
}

pub fn contact(id: &str, first: &str, last: &str, account: Option<&str>, modstamp: &str) -> Value {
    json!({
        "Id": id, "FirstName": first, "LastName": last, "Name": format!("{first} {last}"),
        "Email": format!("{}.{}@customer.example", first.to_lowercase(), last.to_lowercase()),
        "Title": "VP Operations", "AccountId": account, "Phone": null,
        "CreatedDate": "2026-02-02T10:00:00.000+0000", "LastModifiedDate": modstamp,
        "SystemModstamp": modstamp, "IsDeleted": false,
    })
}

#[allow(clippy::too_many_arguments)]
pub fn opportunity(
    id: &str,
    name: &str,
    stage: &str,
    amount: Option<f64>,
    close: &str,
    owner: &str,
    account: Option<&str>,
    modstamp: &str,
) -> Value {
    let (closed, won, forecast) = match stage {
        "Closed Won" => (true, true, "Closed"),
        "Closed Lost" => (true, false, "Omitted"),
        "Negotiation/Review" => (false, false, "Commit"),
        _ => (false, false, "Pipeline"),
    };
    json!({
        "Id": id, "Name": name, "Amount": amount, "CurrencyIsoCode": "EUR", "StageName": stage, "CloseDate": close,
        "Probability": null, "ForecastCategoryName": forecast, "OwnerId": owner,
        "AccountId": account, "IsClosed": closed, "IsWon": won, "Type": "New Business",
        "LeadSource": "Web", "CreatedDate": "2026-02-10T08:00:00.000+0000",
        "LastModifiedDate": modstamp, "SystemModstamp": modstamp, "IsDeleted": false,
    })
}

/// An `OpportunityHistory` row: the opportunity's values as of `created`.
pub fn history(
    id: &str,
    opportunity: &str,
    stage: &str,
    amount: Option<f64>,
    close: &str,
    forecast: &str,
    created: &str,
) -> Value {
    json!({
        "Id": id, "OpportunityId": opportunity, "StageName": stage, "Amount": amount,
        "CloseDate": close, "ForecastCategory": forecast, "Probability": 10,
        "ExpectedRevenue": null, "CreatedDate": created, "CreatedById": "005SIM000000001AAA",
        "SystemModstamp": created, "IsDeleted": false,
    })
}

pub fn contact_role(
    id: &str,
    opportunity: &str,
    contact: &str,
    role: Option<&str>,
    primary: bool,
    modstamp: &str,
) -> Value {
    json!({
        "Id": id, "OpportunityId": opportunity, "ContactId": contact, "Role": role,
        "IsPrimary": primary, "IsDeleted": false,
        "CreatedDate": modstamp, "SystemModstamp": modstamp,
    })
}

pub fn stage(
    id: &str,
    name: &str,
    order: i32,
    probability: i32,
    closed: bool,
    won: bool,
    forecast: &str,
) -> Value {
    json!({
        "Id": id, "ApiName": name, "MasterLabel": name, "IsActive": true, "IsClosed": closed,
        "IsWon": won, "DefaultProbability": probability, "ForecastCategoryName": forecast,
        "SortOrder": order, "Description": null,
        "CreatedDate": "2026-01-01T00:00:00.000+0000", "SystemModstamp": "2026-01-01T00:00:00.000+0000",
    })
}

pub fn standard_stages() -> Vec<Value> {
    vec![
        stage(
            "01JSIM0000000001",
            "Prospecting",
            1,
            10,
            false,
            false,
            "Pipeline",
        ),
        stage(
            "01JSIM0000000002",
            "Qualification",
            2,
            20,
            false,
            false,
            "Pipeline",
        ),
        stage(
            "01JSIM0000000003",
            "Proposal/Price Quote",
            3,
            75,
            false,
            false,
            "Best Case",
        ),
        stage(
            "01JSIM0000000004",
            "Negotiation/Review",
            4,
            90,
            false,
            false,
            "Commit",
        ),
        stage(
            "01JSIM0000000005",
            "Closed Won",
            5,
            100,
            true,
            true,
            "Closed",
        ),
        stage(
            "01JSIM0000000006",
            "Closed Lost",
            6,
            0,
            true,
            false,
            "Omitted",
        ),
    ]
}
