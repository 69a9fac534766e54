//! A local HubSpot: a wiremock server answering like HubSpot's CRM v3 API
//! (owners, objects list / search / batch read, v4 associations, deal
//! pipelines and properties, token info), with its paging (`after`), its
//! limits (100 per list page, 50 with history, 200 per search page, 400 past
//! 10,000 search results), bearer-token checks, its rate-limit headers and,
//! when asked, its 110-per-10-s enforcement. Faults (429, 5xx, malformed
//! bodies) are queued per path prefix. Fixture data is our own, shaped on
//! HubSpot's recorded answers (ids and numbers as strings, ISO times,
//! stage metadata as strings).

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A request the simulator received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub auth: Option<String>,
    pub at: Instant,
    pub status: u16,
}

/// A queued answer for the next `times` requests whose path starts with `prefix`.
pub struct Fault {
    pub prefix: String,
    /// Only requests with this `after` query parameter.
    pub after: Option<String>,
    pub response: ResponseTemplate,
    pub times: usize,
}

/// The simulated portal.
pub struct State {
    pub owners: Vec<Value>,
    pub companies: Vec<Value>,
    pub contacts: Vec<Value>,
    pub deals: Vec<Value>,
    pub pipelines: Vec<Value>,
    pub deal_properties: Vec<Value>,
    pub valid_tokens: Vec<String>,
    pub scopes: Vec<String>,
    pub faults: VecDeque<Fault>,
    pub seen: Vec<Seen>,
    /// Search results reachable by paging (HubSpot: 10,000).
    pub search_cap: usize,
    /// Send `X-HubSpot-RateLimit-*` headers.
    pub rate_headers: bool,
    /// Enforce at most this many requests per interval (429 beyond).
    pub enforce: Option<(usize, Duration)>,
    pub arrivals: VecDeque<Instant>,
    pub throttled: usize,
    /// Deals generated on the fly past `deals` (for long benchmark runs).
    pub synthetic_deals: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            owners: vec![],
            companies: vec![],
            contacts: vec![],
            deals: vec![],
            pipelines: vec![default_pipeline()],
            deal_properties: deal_property_defs(&[]),
            valid_tokens: vec!["token-1".into()],
            scopes: vec!["oauth".into(), "crm.objects.deals.read".into()],
            faults: VecDeque::new(),
            seen: vec![],
            search_cap: 10_000,
            rate_headers: false,
            enforce: None,
            arrivals: VecDeque::new(),
            throttled: 0,
            synthetic_deals: 0,
        }
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
            after: None,
            response,
            times,
        });
    }

    /// Answers the next request under `prefix` for the page `after` with `response`.
    pub fn fail_page(&self, prefix: &str, after: &str, response: ResponseTemplate) {
        self.state().faults.push_back(Fault {
            prefix: prefix.into(),
            after: Some(after.into()),
            response,
            times: 1,
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
        let body: Option<Value> = serde_json::from_slice(&req.body).ok();
        let (status, response) = s.handle(
            req.method.as_str(),
            &path,
            &query,
            body.as_ref(),
            auth.as_deref(),
        );
        s.seen.push(Seen {
            method: req.method.to_string(),
            path,
            query,
            body,
            auth,
            at: Instant::now(),
            status,
        });
        response
    }
}

fn hs_error(status: u16, message: &str, category: &str) -> (u16, ResponseTemplate) {
    (
        status,
        ResponseTemplate::new(status).set_body_json(json!({
            "status": "error",
            "message": message,
            "correlationId": "0b5a3c5e-0000-0000-0000-000000000000",
            "category": category,
        })),
    )
}

/// Epoch milliseconds of an ISO time.
pub fn ms(iso: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// An ISO time `ms` milliseconds after the epoch, as HubSpot writes it.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn modification_property(kind: &str) -> &'static str {
    if kind == "contacts" {
        "lastmodifieddate"
    } else {
        "hs_lastmodifieddate"
    }
}

impl State {
    fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        body: Option<&Value>,
        auth: Option<&str>,
    ) -> (u16, ResponseTemplate) {
        let now = Instant::now();
        if let Some((max, interval)) = self.enforce {
            while self
                .arrivals
                .front()
                .is_some_and(|t| now.duration_since(*t) >= interval)
            {
                self.arrivals.pop_front();
            }
            if self.arrivals.len() >= max {
                self.throttled += 1;
                return (
                    429,
                    ResponseTemplate::new(429).set_body_json(json!({
                        "status": "error",
                        "message": "You have reached your ten_secondly_rolling limit.",
                        "errorType": "RATE_LIMIT",
                        "correlationId": "0b5a3c5e-0000-0000-0000-000000000001",
                        "policyName": "TEN_SECONDLY_ROLLING",
                    })),
                );
            }
        }
        self.arrivals.push_back(now);
        while self.arrivals.len() > 10_000 {
            self.arrivals.pop_front();
        }
        if let Some(i) = self.faults.iter().position(|f| {
            path.starts_with(&f.prefix)
                && f.after
                    .as_ref()
                    .is_none_or(|a| query.get("after") == Some(a))
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
            return hs_error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                "INVALID_AUTHENTICATION",
            );
        }
        let (status, mut response) =
            self.route(method, path, query, body, token.unwrap_or_default());
        if self.rate_headers && !path.ends_with("/search") {
            let window = Duration::from_secs(10);
            let used = self
                .arrivals
                .iter()
                .filter(|t| now.duration_since(**t) < window)
                .count();
            let second = self
                .arrivals
                .iter()
                .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
                .count();
            let max = self.enforce.map_or(110, |(m, _)| m);
            response = response
                .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
                .insert_header("X-HubSpot-RateLimit-Max", max.to_string().as_str())
                .insert_header(
                    "X-HubSpot-RateLimit-Remaining",
                    max.saturating_sub(used).to_string().as_str(),
                )
                .insert_header("X-HubSpot-RateLimit-Secondly", "11")
                .insert_header(
                    "X-HubSpot-RateLimit-Secondly-Remaining",
                    11usize.saturating_sub(second).to_string().as_str(),
                );
        }
        (status, response)
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        body: Option<&Value>,
        token: &str,
    ) -> (u16, ResponseTemplate) {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["crm", "v3", "owners"]) => {
                let archived = query.get("archived").is_some_and(|a| a == "true");
                let owners: Vec<Value> = self
                    .owners
                    .iter()
                    .filter(|o| o["archived"].as_bool().unwrap_or(false) == archived)
                    .cloned()
                    .collect();
                list_page(&owners, query, 500, |o| o.clone())
            }
            ("GET", ["crm", "v3", "pipelines", "deals"]) => ok(json!({"results": self.pipelines})),
            ("GET", ["crm", "v3", "properties", "deals"]) => {
                ok(json!({"results": self.deal_properties}))
            }
            ("GET", ["crm", "v3", "objects", kind]) => self.list(kind, query),
            ("POST", ["crm", "v3", "objects", kind, "search"]) => {
                self.search(kind, body.unwrap_or(&Value::Null))
            }
            ("POST", ["crm", "v3", "objects", kind, "batch", "read"]) => {
                self.batch_read(kind, body.unwrap_or(&Value::Null))
            }
            ("POST", ["crm", "v4", "associations", "deals", to, "batch", "read"]) => {
                self.associations(to, body.unwrap_or(&Value::Null))
            }
            ("GET", ["oauth", "v1", "access-tokens", t]) if *t == token => ok(json!({
                "token": t, "user": "rep@example.com", "hub_domain": "example.hubspot.com",
                "scopes": self.scopes, "hub_id": 4_242_424, "app_id": 77, "expires_in": 1700,
                "user_id": 123, "token_type": "access"
            })),
            _ => hs_error(404, "resource not found", "OBJECT_NOT_FOUND"),
        }
    }

    fn records(&self, kind: &str) -> Vec<Value> {
        let mut all = match kind {
            "companies" => self.companies.clone(),
            "contacts" => self.contacts.clone(),
            "deals" => self.deals.clone(),
            _ => vec![],
        };
        if kind == "deals" {
            for i in 0..self.synthetic_deals {
                all.push(deal(
                    &format!("9{i:011}"),
                    &format!("Synthetic {i}"),
                    "appointmentscheduled",
                    Some("1000"),
                    None,
                    &iso(1_767_225_600_000 + i as i64),
                ));
            }
        }
        all
    }

    fn list(&self, kind: &str, query: &BTreeMap<String, String>) -> (u16, ResponseTemplate) {
        let history = query.contains_key("propertiesWithHistory");
        let limit: usize = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(10);
        if limit > 100 || (history && limit > 50) {
            return hs_error(
                400,
                &format!("limit {limit} is too large for this request"),
                "VALIDATION_ERROR",
            );
        }
        let archived = query.get("archived").is_some_and(|a| a == "true");
        let props = split(query.get("properties"));
        let hist = split(query.get("propertiesWithHistory"));
        let assoc = split(query.get("associations"));
        let records: Vec<Value> = if kind == "deals" && self.synthetic_deals > 0 && !archived {
            // Only the page asked for is built.
            let start = after_index(query);
            let total = self.deals.len() + self.synthetic_deals;
            let end = (start + limit).min(total);
            let slice: Vec<Value> = (start..end)
                .map(|i| {
                    if i < self.deals.len() {
                        self.deals[i].clone()
                    } else {
                        let j = i - self.deals.len();
                        deal(
                            &format!("9{j:011}"),
                            &format!("Synthetic {j}"),
                            "appointmentscheduled",
                            Some("1000"),
                            None,
                            &iso(1_767_225_600_000 + j as i64),
                        )
                    }
                })
                .map(|r| shape(&r, &props, &hist, &assoc, kind))
                .collect();
            let mut page = json!({"results": slice});
            if end < total {
                page["paging"] = json!({"next": {"after": format!("NTI{end}"), "link": "?after="}});
            }
            return ok(page);
        } else {
            self.records(kind)
                .into_iter()
                .filter(|r| r["archived"].as_bool().unwrap_or(false) == archived)
                .collect()
        };
        list_page(&records, query, 100, |r| {
            shape(r, &props, &hist, &assoc, kind)
        })
    }

    fn search(&self, kind: &str, body: &Value) -> (u16, ResponseTemplate) {
        let limit = body["limit"].as_u64().unwrap_or(10) as usize;
        if limit > 200 {
            return hs_error(400, "limit must be at most 200", "VALIDATION_ERROR");
        }
        let after: usize = body["after"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        if after + limit > self.search_cap {
            return hs_error(
                400,
                "There was a problem with the request: paging past 10000 results is not supported.",
                "VALIDATION_ERROR",
            );
        }
        let filter = &body["filterGroups"][0]["filters"][0];
        let prop = filter["propertyName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let from: i64 = filter["value"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut hits: Vec<(i64, Value)> = self
            .records(kind)
            .into_iter()
            .filter(|r| !r["archived"].as_bool().unwrap_or(false))
            .map(|r| (ms(r["properties"][&prop].as_str().unwrap_or_default()), r))
            .filter(|(t, _)| *t >= from)
            .collect();
        hits.sort_by(|a, b| (a.0, a.1["id"].as_str()).cmp(&(b.0, b.1["id"].as_str())));
        let props: Vec<String> = body["properties"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let total = hits.len();
        let page: Vec<Value> = hits
            .iter()
            .skip(after)
            .take(limit)
            .map(|(_, r)| shape(r, &props, &[], &[], kind))
            .collect();
        let mut answer = json!({"total": total, "results": page});
        if after + limit < total {
            answer["paging"] = json!({"next": {"after": (after + limit).to_string()}});
        }
        ok(answer)
    }

    fn batch_read(&self, kind: &str, body: &Value) -> (u16, ResponseTemplate) {
        let ids: Vec<&str> = body["inputs"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["id"].as_str()).collect())
            .unwrap_or_default();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let hist = strings(&body["propertiesWithHistory"]);
        if !hist.is_empty() && ids.len() > 50 {
            return hs_error(
                400,
                "at most 50 inputs with propertiesWithHistory",
                "VALIDATION_ERROR",
            );
        }
        let props = strings(&body["properties"]);
        let results: Vec<Value> = self
            .records(kind)
            .iter()
            .filter(|r| ids.contains(&r["id"].as_str().unwrap_or_default()))
            .filter(|r| !r["archived"].as_bool().unwrap_or(false))
            .map(|r| shape(r, &props, &hist, &[], kind))
            .collect();
        ok(json!({"status": "COMPLETE", "results": results,
                  "startedAt": "2026-03-01T00:00:00.000Z", "completedAt": "2026-03-01T00:00:00.100Z"}))
    }

    fn associations(&self, to: &str, body: &Value) -> (u16, ResponseTemplate) {
        let ids: Vec<&str> = body["inputs"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["id"].as_str()).collect())
            .unwrap_or_default();
        let mut results = vec![];
        for d in self.records("deals") {
            let id = d["id"].as_str().unwrap_or_default();
            if !ids.contains(&id) {
                continue;
            }
            let links = d["associations"][to]["results"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if links.is_empty() {
                continue;
            }
            let to_rows: Vec<Value> = links
                .iter()
                .map(|l| {
                    let type_id = match l["type"].as_str() {
                        Some("deal_to_company") => 5,
                        Some("deal_to_company_unlabeled") => 341,
                        _ => 3,
                    };
                    json!({
                        "toObjectId": l["id"].as_str().unwrap_or_default().parse::<u64>().unwrap_or(0),
                        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": null}]
                    })
                })
                .collect();
            results.push(json!({"from": {"id": id}, "to": to_rows}));
        }
        ok(json!({"status": "COMPLETE", "results": results}))
    }
}

fn ok(body: Value) -> (u16, ResponseTemplate) {
    (200, ResponseTemplate::new(200).set_body_json(body))
}

fn split(v: Option<&String>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn after_index(query: &BTreeMap<String, String>) -> usize {
    query
        .get("after")
        .and_then(|a| a.strip_prefix("NTI"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

/// A list page by `after` (an opaque token holding an index).
fn list_page(
    records: &[Value],
    query: &BTreeMap<String, String>,
    max: usize,
    shape: impl Fn(&Value) -> Value,
) -> (u16, ResponseTemplate) {
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    if limit > max {
        return hs_error(400, "limit too large", "VALIDATION_ERROR");
    }
    let start = after_index(query);
    let end = (start + limit).min(records.len());
    let page: Vec<Value> = records
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(shape)
        .collect();
    let mut answer = json!({"results": page});
    if end < records.len() {
        answer["paging"] =
            json!({"next": {"after": format!("NTI{end}"), "link": format!("?after=NTI{end}")}});
    }
    ok(answer)
}

/// A record as HubSpot returns it: the requested properties (plus the
/// defaults), histories and associations only when asked for.
fn shape(r: &Value, props: &[String], hist: &[String], assoc: &[String], kind: &str) -> Value {
    let all = r["properties"].as_object().cloned().unwrap_or_default();
    let mut properties = Map::new();
    let defaults = ["hs_object_id", "createdate", modification_property(kind)];
    for (k, v) in &all {
        if props.iter().any(|p| p == k) || defaults.contains(&k.as_str()) {
            properties.insert(k.clone(), v.clone());
        }
    }
    for p in props {
        properties.entry(p.clone()).or_insert(Value::Null);
    }
    let mut out = json!({
        "id": r["id"],
        "properties": properties,
        "createdAt": r["createdAt"],
        "updatedAt": r["updatedAt"],
        "archived": r["archived"].as_bool().unwrap_or(false),
        "url": format!("https://app.hubspot.com/contacts/4242424/record/0-3/{}", r["id"].as_str().unwrap_or_default()),
    });
    if let Some(at) = r.get("archivedAt") {
        out["archivedAt"] = at.clone();
    }
    if !hist.is_empty() {
        let mut h = Map::new();
        for p in hist {
            let versions = r["propertiesWithHistory"][p]
                .as_array()
                .cloned()
                .unwrap_or_else(|| {
                    // A property never changed has its current value as its one version.
                    match all.get(p) {
                        Some(Value::String(v)) => vec![json!({
                            "value": v, "timestamp": r["createdAt"], "sourceType": "CRM_UI"
                        })],
                        _ => vec![],
                    }
                });
            h.insert(p.clone(), Value::Array(versions));
        }
        out["propertiesWithHistory"] = Value::Object(h);
    }
    if !assoc.is_empty() {
        let mut a = Map::new();
        for t in assoc {
            if let Some(v) = r["associations"].get(t) {
                a.insert(t.clone(), v.clone());
            }
        }
        if !a.is_empty() {
            out["associations"] = Value::Object(a);
        }
    }
    out
}

// ---- fixtures (our own data, HubSpot's shapes) ----

pub fn owner(id: &str, email: &str, first: &str, last: &str, archived: bool) -> Value {
    json!({
        "id": id, "email": email, "type": "PERSON", "firstName": first, "lastName": last,
        "userId": id.parse::<u64>().unwrap_or(0) + 1_000_000, "userIdIncludingInactive": 1,
        "createdAt": "2026-01-02T09:00:00.000Z", "updatedAt": "2026-01-02T09:00:00.000Z",
        "archived": archived,
        "teams": [{"id": "77", "name": "Enterprise", "primary": true}]
    })
}

pub fn company(id: &str, name: &str, domain: &str, modified: &str) -> Value {
    json!({
        "id": id,
        "properties": {
            "name": name, "domain": domain, "industry": "COMPUTER_SOFTWARE",
            "hubspot_owner_id": "101", "createdate": "2026-01-05T10:00:00.000Z",
            "hs_lastmodifieddate": modified, "hs_object_id": id, "numberofemployees": "250"
        },
        "createdAt": "2026-01-05T10:00:00.000Z", "updatedAt": modified, "archived": false
    })
}

pub fn contact(id: &str, first: &str, last: &str, company: Option<&str>, modified: &str) -> Value {
    json!({
        "id": id,
        "properties": {
            "firstname": first, "lastname": last,
            "email": format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
            "jobtitle": "VP Sales", "associatedcompanyid": company, "phone": "+1-555-0100",
            "createdate": "2026-01-06T10:00:00.000Z", "lastmodifieddate": modified, "hs_object_id": id
        },
        "createdAt": "2026-01-06T10:00:00.000Z", "updatedAt": modified, "archived": false
    })
}

pub fn deal(
    id: &str,
    name: &str,
    stage: &str,
    amount: Option<&str>,
    owner: Option<&str>,
    modified: &str,
) -> Value {
    json!({
        "id": id,
        "properties": {
            "dealname": name, "amount": amount, "pipeline": "default", "dealstage": stage,
            "closedate": "2026-06-30T00:00:00Z", "hubspot_owner_id": owner,
            "createdate": "2026-02-01T08:00:00.000Z", "hs_lastmodifieddate": modified,
            "hs_object_id": id, "deal_currency_code": "USD", "hs_is_closed": "false"
        },
        "createdAt": "2026-02-01T08:00:00.000Z", "updatedAt": modified, "archived": false
    })
}

/// Links a deal to a primary company and contacts (v3 association types).
pub fn linked(mut d: Value, company: &str, contacts: &[&str]) -> Value {
    let contacts: Vec<Value> = contacts
        .iter()
        .flat_map(|c| {
            [
                json!({"id": c, "type": "deal_to_contact"}),
                json!({"id": c, "type": "deal_to_contact_unlabeled"}),
            ]
        })
        .collect();
    d["associations"] = json!({
        "companies": {"results": [
            {"id": company, "type": "deal_to_company"},
            {"id": company, "type": "deal_to_company_unlabeled"}
        ]},
        "contacts": {"results": contacts}
    });
    d
}

/// Sets a property's history, newest first as HubSpot sends it.
pub fn with_history(mut d: Value, property: &str, newest_first: &[(Option<&str>, &str)]) -> Value {
    let versions: Vec<Value> = newest_first
        .iter()
        .map(|(v, t)| json!({"value": v, "timestamp": t, "sourceType": "CRM_UI", "sourceId": "userId:1000101", "updatedByUserId": 1000101}))
        .collect();
    d["propertiesWithHistory"][property] = Value::Array(versions);
    d
}

pub fn with_property(mut d: Value, name: &str, value: &str) -> Value {
    d["properties"][name] = json!(value);
    d
}

pub fn archived(mut r: Value, at: &str) -> Value {
    r["archived"] = json!(true);
    r["archivedAt"] = json!(at);
    r
}

pub fn default_pipeline() -> Value {
    let stage = |id: &str, label: &str, order: i64, closed: &str, p: &str| {
        json!({
            "label": label, "displayOrder": order,
            "metadata": {"isClosed": closed, "probability": p},
            "id": id, "createdAt": "1970-01-01T00:00:00Z", "updatedAt": "1970-01-01T00:00:00Z",
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT", "archived": false
        })
    };
    json!({
        "label": "Sales Pipeline", "displayOrder": 0, "id": "default",
        "stages": [
            stage("appointmentscheduled", "Appointment Scheduled", 0, "false", "0.2"),
            stage("qualifiedtobuy", "Qualified To Buy", 1, "false", "0.4"),
            stage("contractsent", "Contract Sent", 2, "false", "0.9"),
            stage("closedwon", "Closed Won", 3, "true", "1.0"),
            stage("closedlost", "Closed Lost", 4, "true", "0.0")
        ],
        "createdAt": "1970-01-01T00:00:00Z", "updatedAt": "1970-01-01T00:00:00Z", "archived": false
    })
}

pub fn deal_property_defs(custom: &[&str]) -> Vec<Value> {
    let mut defs: Vec<Value> = ["dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id"]
        .iter()
        .map(|n| json!({"name": n, "label": n, "type": "string", "fieldType": "text", "groupName": "dealinformation", "hubspotDefined": true, "archived": false}))
        .collect();
    for n in custom {
        defs.push(json!({"name": n, "label": n, "type": "string", "fieldType": "text", "groupName": "dealinformation", "archived": false}));
    }
    defs
}
