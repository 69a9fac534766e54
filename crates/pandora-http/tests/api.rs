//! The REST API through the real router (`tower::ServiceExt::oneshot`) over a
//! real SQLite store in a temporary directory.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use http_body_util::BodyExt;
use pandora_core::auth::{SecretToken, ADMIN_TOKEN_PREFIX};
use pandora_core::batch::RecordBatch;
use pandora_core::model::{
    ChangeOrigin, DealField, NewAccount, NewContact, NewDeal, NewDealChange, NewPipelineStage,
    NewUser, StageCategory,
};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A router over a fresh SQLite database, with a known admin token.
struct Api {
    app: Router,
    pandora: Pandora,
    admin: String,
    /// Every response body seen, to check that none holds a key hash.
    bodies: Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

/// A response: status, headers and the body (JSON, or `Value::Null` when empty).
struct Res {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Res {
    /// Asserts an RFC 9457 problem with `status`, returning its `field`.
    #[track_caller]
    fn problem(&self, status: u16) -> Option<String> {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            self.body
        );
        for key in ["type", "title", "detail"] {
            assert!(self.body[key].is_string(), "{key} missing: {}", self.body);
        }
        assert_eq!(self.body["status"], status);
        self.body["field"].as_str().map(str::to_string)
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let admin = SecretToken::generate(ADMIN_TOKEN_PREFIX);
    let pandora = Pandora::builder()
        .store(store)
        .admin_token(&admin)
        .build()
        .unwrap();
    Api {
        app: pandora_http::router(pandora.clone()),
        pandora,
        admin: admin.expose().to_string(),
        bodies: Mutex::new(Vec::new()),
        _dir: dir,
    }
}

impl Api {
    async fn send(&self, req: Request<Body>) -> Res {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        assert!(
            headers.contains_key("x-request-id"),
            "no request id on {status}"
        );
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Res {
            status,
            headers,
            body,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    async fn get(&self, uri: &str, token: &str) -> Res {
        self.call(Method::GET, uri, Some(token), None).await
    }

    /// Creates a workspace; returns its id and key.
    async fn workspace(&self, name: &str) -> (String, String) {
        let res = self
            .call(
                Method::POST,
                "/api/workspaces",
                Some(&self.admin),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        (
            res.body["workspace"]["id"].as_str().unwrap().to_string(),
            res.body["api_key"].as_str().unwrap().to_string(),
        )
    }
}

fn uuid(s: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(s).unwrap()
}

// ---- workspaces -------------------------------------------------------------

#[tokio::test]
async fn workspace_lifecycle() {
    let api = api().await;
    let admin = api.admin.clone();

    let res = api
        .call(
            Method::POST,
            "/api/workspaces",
            Some(&admin),
            Some(json!({"name": "  Acme  ", "settings": {"fiscal_year_start": 2}})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let ws = res.body["workspace"].clone();
    let id = ws["id"].as_str().unwrap().to_string();
    let key = res.body["api_key"].as_str().unwrap().to_string();
    assert_eq!(ws["name"], "Acme");
    assert_eq!(ws["settings"]["fiscal_year_start"], 2);
    assert!(key.starts_with("pk_"));
    assert_eq!(
        res.headers[header::LOCATION],
        format!("/api/workspaces/{id}")
    );

    // The admin and the workspace's own key see it.
    for token in [&admin, &key] {
        let res = api.get(&format!("/api/workspaces/{id}"), token).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body["name"], "Acme");
    }

    // A workspace key may not create workspaces.
    let res = api
        .call(
            Method::POST,
            "/api/workspaces",
            Some(&key),
            Some(json!({"name": "X"})),
        )
        .await;
    res.problem(403);

    // Lists: the admin pages through all, a key sees only its own.
    let (other, _) = api.workspace("Globex").await;
    let (third, _) = api.workspace("Initech").await;
    let mut seen = Vec::new();
    let mut uri = "/api/workspaces?limit=2".to_string();
    loop {
        let res = api.get(&uri, &admin).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        for w in res.body["data"].as_array().unwrap() {
            seen.push(w["id"].as_str().unwrap().to_string());
        }
        match res.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/workspaces?limit=2&cursor={c}"),
            None => break,
        }
    }
    let set: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(set, BTreeSet::from([id.clone(), other.clone(), third]));
    let res = api.get("/api/workspaces", &key).await;
    assert_eq!(res.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(res.body["data"][0]["id"], id.as_str());
    assert_eq!(res.body["next_cursor"], Value::Null);

    // Patch: rename, replace settings; bad values are 422 naming the field.
    let res = api
        .call(
            Method::PATCH,
            &format!("/api/workspaces/{id}"),
            Some(&key),
            Some(json!({"name": "Acme Corp", "settings": {"a": 1}})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["name"], "Acme Corp");
    assert_eq!(res.body["settings"], json!({"a": 1}));
    let res = api
        .call(
            Method::PATCH,
            &format!("/api/workspaces/{id}"),
            Some(&admin),
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!(res.problem(422).as_deref(), Some("name"));
    let res = api
        .call(
            Method::PATCH,
            &format!("/api/workspaces/{id}"),
            Some(&admin),
            Some(json!({"settings": [1]})),
        )
        .await;
    assert_eq!(res.problem(422).as_deref(), Some("settings"));

    // Delete: 204, then gone for everyone, and its key no longer works.
    let res = api
        .call(
            Method::DELETE,
            &format!("/api/workspaces/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(res.body, Value::Null);
    api.get(&format!("/api/workspaces/{id}"), &admin)
        .await
        .problem(404);
    api.get(&format!("/api/workspaces/{id}"), &key)
        .await
        .problem(401);
    api.call(
        Method::DELETE,
        &format!("/api/workspaces/{id}"),
        Some(&admin),
        None,
    )
    .await
    .problem(404);
    let res = api.get("/api/workspaces", &admin).await;
    assert_eq!(res.body["data"].as_array().unwrap().len(), 2);
}

// ---- API keys -----------------------------------------------------------------

#[tokio::test]
async fn api_key_create_list_delete() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let (other_ws, other_key) = api.workspace("Globex").await;
    let keys_uri = format!("/api/workspaces/{ws}/api-keys");

    let res = api
        .call(
            Method::POST,
            &keys_uri,
            Some(&key),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let ci_key = res.body["api_key"].as_str().unwrap().to_string();
    let ci_id = res.body["key"]["id"].as_str().unwrap().to_string();
    assert_eq!(res.body["key"]["name"], "ci");
    assert!(ci_key.starts_with("pk_"));

    // No body at all is fine too (name "default").
    let res = api
        .call(Method::POST, &keys_uri, Some(&api.admin), None)
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["key"]["name"], "default");
    let req = Request::post(&keys_uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.send(req).await.status, StatusCode::CREATED);

    // Bad bodies.
    let res = api
        .call(
            Method::POST,
            &keys_uri,
            Some(&key),
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!(res.problem(422).as_deref(), Some("name"));
    let res = api
        .call(
            Method::POST,
            &keys_uri,
            Some(&key),
            Some(json!({"nam": "x"})),
        )
        .await;
    assert_eq!(res.problem(422).as_deref(), Some("nam"));

    // The new key works; the list shows prefixes, never secrets or hashes.
    let res = api.get(&keys_uri, &ci_key).await;
    assert_eq!(res.status, StatusCode::OK);
    let listed = res.body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 4);
    for k in listed {
        let obj = k.as_object().unwrap();
        let fields: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["id", "workspace_id", "name", "prefix", "created_at"])
        );
    }
    let text = res.body.to_string();
    assert!(!text.contains(&ci_key) && !text.contains(&key));

    // Another workspace's key cannot see or revoke these keys.
    api.get(&keys_uri, &other_key).await.problem(404);
    api.call(
        Method::DELETE,
        &format!("{keys_uri}/{ci_id}"),
        Some(&other_key),
        None,
    )
    .await
    .problem(404);
    // Nor can this workspace's key be revoked under the other workspace's path.
    api.call(
        Method::DELETE,
        &format!("/api/workspaces/{other_ws}/api-keys/{ci_id}"),
        Some(&api.admin),
        None,
    )
    .await
    .problem(404);

    // Revoke: 204; the key is then refused with 401; revoking again is 404.
    let res = api
        .call(
            Method::DELETE,
            &format!("{keys_uri}/{ci_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = api.get(&keys_uri, &ci_key).await;
    res.problem(401);
    assert_eq!(res.headers[header::WWW_AUTHENTICATE], "Bearer");
    api.call(
        Method::DELETE,
        &format!("{keys_uri}/{ci_id}"),
        Some(&key),
        None,
    )
    .await
    .problem(404);
    assert_eq!(
        api.get(&keys_uri, &key).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

// ---- data -------------------------------------------------------------------

/// 40 deals over 3 owners, 4 stages, amounts 1000..40000 (some missing),
/// close dates over 2024 (some missing), plus a stage history for `d0`.
fn sample_batch() -> RecordBatch {
    let mut b = RecordBatch::new("hubspot");
    for (i, name) in ["Ann", "Bob", "Cy"].iter().enumerate() {
        b.users.push(NewUser {
            source_id: format!("u{i}"),
            name: Some(name.to_string()),
            email: Some(format!("{}@acme.test", name.to_lowercase())),
            manager_source_id: (i > 0).then(|| "u0".to_string()),
            team: Some(if i == 2 { "west" } else { "east" }.into()),
            active: true,
            properties: json!({}),
            ..Default::default()
        });
    }
    b.accounts.push(NewAccount {
        source_id: "a1".into(),
        name: Some("Initech".into()),
        domain: Some("initech.test".into()),
        properties: json!({}),
        ..Default::default()
    });
    b.contacts.push(NewContact {
        source_id: "c1".into(),
        first_name: Some("Peter".into()),
        account_source_id: Some("a1".into()),
        properties: json!({}),
        ..Default::default()
    });
    let stages = [
        ("qualify", StageCategory::Open),
        ("propose", StageCategory::Open),
        ("won", StageCategory::Won),
        ("lost", StageCategory::Lost),
    ];
    for (order, (stage, category)) in stages.iter().enumerate() {
        b.stages.push(NewPipelineStage {
            pipeline: "default".into(),
            stage: stage.to_string(),
            label: Some(stage.to_string()),
            category: *category,
            display_order: Some(order as i32),
            ..Default::default()
        });
    }
    for i in 0..40u32 {
        let (stage, category) = stages[(i % 4) as usize];
        b.deals.push(NewDeal {
            source_id: format!("d{i}"),
            name: if i % 5 == 0 {
                format!("Big Deal {i}")
            } else {
                format!("Deal {i}")
            },
            amount: (i % 7 != 3).then(|| Decimal::new(1000 * (i as i64 + 1), 0)),
            currency: Some("USD".into()),
            pipeline: Some(if i % 10 == 9 { "renewals" } else { "default" }.into()),
            stage: Some(stage.into()),
            stage_category: category,
            owner_source_id: Some(format!("u{}", i % 3)),
            account_source_id: Some("a1".into()),
            close_date: (i % 6 != 5)
                .then(|| NaiveDate::from_ymd_opt(2024, 1 + (i % 12), 1 + (i % 28)).unwrap()),
            properties: json!({}),
            ..Default::default()
        });
    }
    let t0 = Utc.with_ymd_and_hms(2024, 1, 10, 9, 0, 0).unwrap();
    for (n, (old, new)) in [
        (None, "qualify"),
        (Some("qualify"), "propose"),
        (Some("propose"), "qualify"),
    ]
    .iter()
    .enumerate()
    {
        b.deal_changes.push(NewDealChange {
            deal_source_id: "d0".into(),
            field: DealField::Stage,
            old_value: old.map(str::to_string),
            new_value: Some(new.to_string()),
            changed_at: t0 + Duration::days(n as i64 * 7),
            origin: ChangeOrigin::Vendor,
        });
    }
    b.deal_changes.push(NewDealChange {
        deal_source_id: "d0".into(),
        field: DealField::Amount,
        old_value: Some("500".into()),
        new_value: Some("1000".into()),
        changed_at: t0,
        origin: ChangeOrigin::Vendor,
    });
    // Risk signals besides the passed close dates: d1's close date pushed
    // once, d4's amount cut from 8000 to 5000.
    for (deal, field, old, new) in [
        ("d1", DealField::CloseDate, "2024-01-15", "2024-02-02"),
        ("d4", DealField::Amount, "8000", "5000"),
    ] {
        b.deal_changes.push(NewDealChange {
            deal_source_id: deal.into(),
            field,
            old_value: Some(old.into()),
            new_value: Some(new.into()),
            changed_at: t0,
            origin: ChangeOrigin::Vendor,
        });
    }
    b
}

/// Walks every page of `uri` (which has a query string), checking that no
/// deal repeats; returns the deals in order.
async fn walk(api: &Api, uri: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let mut next = uri.to_string();
    for _ in 0..100 {
        let res = api.get(&next, token).await;
        assert_eq!(res.status, StatusCode::OK, "{next}: {}", res.body);
        for d in res.body["data"].as_array().unwrap() {
            assert!(
                ids.insert(d["id"].as_str().unwrap().to_string()),
                "repeat in {uri}"
            );
            out.push(d.clone());
        }
        match res.body["next_cursor"].as_str() {
            Some(c) => next = format!("{uri}&cursor={c}"),
            None => return out,
        }
    }
    panic!("no end of pages for {uri}");
}

fn amount(d: &Value) -> Option<Decimal> {
    d["amount"].as_str().map(|s| s.parse().unwrap())
}

#[tokio::test]
async fn deals_filter_sort_and_paginate() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    api.pandora
        .ingest(uuid(&ws), &sample_batch(), None)
        .await
        .unwrap();
    let base = format!("/api/workspaces/{ws}/deals");

    // Everything, default order, in pages of 7 without repeats.
    let all = walk(&api, &format!("{base}?limit=7"), &key).await;
    assert_eq!(all.len(), 40);
    let first = api.get(&base, &key).await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 40);
    assert_eq!(first.body["next_cursor"], Value::Null);

    // Every sort, both directions, walks the same 40 deals in order.
    for sort in ["updated_at", "close_date", "amount"] {
        for order in ["asc", "desc"] {
            let deals = walk(
                &api,
                &format!("{base}?limit=6&sort={sort}&order={order}"),
                &key,
            )
            .await;
            assert_eq!(deals.len(), 40, "{sort} {order}");
            if sort == "amount" {
                let amounts: Vec<Decimal> = deals.iter().filter_map(amount).collect();
                let mut sorted = amounts.clone();
                sorted.sort();
                if order == "desc" {
                    sorted.reverse();
                }
                assert_eq!(amounts, sorted, "{order}");
                // Deals without an amount come last.
                assert!(deals[deals.len() - 1]["amount"].is_null());
            }
            if sort == "close_date" {
                let dates: Vec<&str> = deals
                    .iter()
                    .filter_map(|d| d["close_date"].as_str())
                    .collect();
                let mut sorted = dates.clone();
                sorted.sort();
                if order == "desc" {
                    sorted.reverse();
                }
                assert_eq!(dates, sorted, "{order}");
            }
        }
    }

    // Filters, each checked against the full list.
    let users = api.get(&format!("/api/workspaces/{ws}/users"), &key).await;
    let bob = users.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Bob")
        .unwrap()
        .clone();
    assert_eq!(bob["team"], "east");
    assert!(bob["manager_id"].is_string(), "manager resolved: {bob}");
    let bob_id = bob["id"].as_str().unwrap();

    type Pred = Box<dyn Fn(&Value) -> bool>;
    let date = |d: &Value| d["close_date"].as_str().map(|s| s.to_string());
    let cases: Vec<(String, Pred)> = vec![
        (
            "stage=propose".into(),
            Box::new(|d| d["stage"] == "propose"),
        ),
        (
            "pipeline=renewals".into(),
            Box::new(|d| d["pipeline"] == "renewals"),
        ),
        (
            format!("owner_id={bob_id}"),
            Box::new(|d| d["owner_source_id"] == "u1"),
        ),
        (
            "status=won".into(),
            Box::new(|d| d["stage_category"] == "won"),
        ),
        (
            "status=open".into(),
            Box::new(|d| d["stage_category"] == "open"),
        ),
        (
            "close_date_from=2024-06-01&close_date_to=2024-09-30".into(),
            Box::new(move |d| {
                date(d).is_some_and(|s| s.as_str() >= "2024-06-01" && s.as_str() <= "2024-09-30")
            }),
        ),
        (
            "min_amount=10000&max_amount=20000.5".into(),
            Box::new(|d| {
                amount(d)
                    .is_some_and(|a| a >= Decimal::new(10000, 0) && a <= Decimal::new(200005, 1))
            }),
        ),
        (
            "q=big".into(),
            Box::new(|d| d["name"].as_str().unwrap().contains("Big")),
        ),
        (
            "status=open&min_amount=5000&sort=amount&order=asc".into(),
            Box::new(|d| {
                d["stage_category"] == "open"
                    && amount(d).is_some_and(|a| a >= Decimal::new(5000, 0))
            }),
        ),
    ];
    for (query, pred) in cases {
        let got = walk(&api, &format!("{base}?limit=4&{query}"), &key).await;
        let want: BTreeSet<&str> = all
            .iter()
            .filter(|d| pred(d))
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        let got_ids: BTreeSet<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert!(!want.is_empty(), "{query} matches nothing");
        assert_eq!(got_ids, want, "{query}");
    }
    let past = Utc::now() - Duration::hours(1);
    let since = walk(
        &api,
        &format!(
            "{base}?limit=50&updated_since={}",
            past.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        &key,
    )
    .await;
    assert_eq!(since.len(), 40);
    let future = walk(
        &api,
        &format!("{base}?limit=50&updated_since=2999-01-01T00:00:00Z"),
        &key,
    )
    .await;
    assert!(future.is_empty());

    // One deal, and its stage history (stage rows only, oldest first).
    let d0 = all.iter().find(|d| d["source_id"] == "d0").unwrap();
    let d0_id = d0["id"].as_str().unwrap();
    let res = api.get(&format!("{base}/{d0_id}"), &key).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["name"], "Big Deal 0");
    let res = api
        .get(&format!("{base}/{d0_id}/stage-history"), &key)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let changes = res.body["data"].as_array().unwrap();
    let stages: Vec<&str> = changes
        .iter()
        .map(|c| c["new_value"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["qualify", "propose", "qualify"]);
    assert!(changes.iter().all(|c| c["field"] == "stage"));
    let d1 = all.iter().find(|d| d["source_id"] == "d1").unwrap();
    let res = api
        .get(
            &format!("{base}/{}/stage-history", d1["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(res.body["data"], json!([]));
    api.get(&format!("{base}/{}", uuid::Uuid::now_v7()), &key)
        .await
        .problem(404);

    // Contacts and accounts.
    let res = api
        .get(&format!("/api/workspaces/{ws}/contacts?limit=1"), &key)
        .await;
    assert_eq!(res.body["data"][0]["first_name"], "Peter");
    assert!(res.body["data"][0]["account_id"].is_string());
    assert_eq!(res.body["next_cursor"], Value::Null);
    let res = api
        .get(&format!("/api/workspaces/{ws}/accounts"), &key)
        .await;
    assert_eq!(res.body["data"][0]["name"], "Initech");
    let users = walk(&api, &format!("/api/workspaces/{ws}/users?limit=2"), &key).await;
    assert_eq!(users.len(), 3);

    // A cursor from one sort is refused by another.
    let res = api.get(&format!("{base}?limit=1&sort=amount"), &key).await;
    let cursor = res.body["next_cursor"].as_str().unwrap();
    let res = api
        .get(
            &format!("{base}?limit=1&sort=close_date&cursor={cursor}"),
            &key,
        )
        .await;
    assert_eq!(res.problem(400).as_deref(), Some("cursor"));
}

// ---- tenancy ----------------------------------------------------------------

#[tokio::test]
async fn cross_tenant_matrix() {
    let api = api().await;
    let (a, key_a) = api.workspace("A").await;
    let (b, key_b) = api.workspace("B").await;
    api.pandora
        .ingest(uuid(&a), &sample_batch(), None)
        .await
        .unwrap();
    api.pandora
        .ingest(uuid(&b), &sample_batch(), None)
        .await
        .unwrap();
    let deal_a = api
        .get(&format!("/api/workspaces/{a}/deals?limit=1"), &key_a)
        .await
        .body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let keys_b = api.pandora.list_api_keys(uuid(&b)).await.unwrap();
    let key_b_id = keys_b[0].id.to_string();
    let missing = uuid::Uuid::now_v7().to_string();

    // Every route under B's id (or a missing id), with A's key: the same 404.
    let routes = |ws: &str| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (Method::GET, format!("/api/workspaces/{ws}"), None),
            (
                Method::PATCH,
                format!("/api/workspaces/{ws}"),
                Some(json!({"name": "pwned"})),
            ),
            (Method::DELETE, format!("/api/workspaces/{ws}"), None),
            (Method::GET, format!("/api/workspaces/{ws}/deals"), None),
            (
                Method::GET,
                format!("/api/workspaces/{ws}/deals/{deal_a}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/workspaces/{ws}/deals/{deal_a}/stage-history"),
                None,
            ),
            (Method::GET, format!("/api/workspaces/{ws}/contacts"), None),
            (Method::GET, format!("/api/workspaces/{ws}/accounts"), None),
            (Method::GET, format!("/api/workspaces/{ws}/users"), None),
            (Method::GET, format!("/api/workspaces/{ws}/api-keys"), None),
            (
                Method::POST,
                format!("/api/workspaces/{ws}/api-keys"),
                Some(json!({"name": "x"})),
            ),
            (
                Method::DELETE,
                format!("/api/workspaces/{ws}/api-keys/{key_b_id}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/auth/hubspot/authorize?workspaceId={ws}"),
                None,
            ),
            (Method::GET, format!("/api/workspaces/{ws}/webhooks"), None),
            (
                Method::POST,
                format!("/api/workspaces/{ws}/webhooks"),
                Some(json!({"url": "https://example.com/x", "events": ["deal.high_risk"]})),
            ),
            (
                Method::GET,
                format!("/api/workspaces/{ws}/webhooks/{missing}"),
                None,
            ),
            (
                Method::DELETE,
                format!("/api/workspaces/{ws}/webhooks/{missing}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/workspaces/{ws}/webhooks/{missing}/deliveries"),
                None,
            ),
        ]
    };
    for ws in [&b, &missing] {
        for (method, uri, body) in routes(ws) {
            let res = api.call(method.clone(), &uri, Some(&key_a), body).await;
            res.problem(404);
            assert_eq!(
                res.body["detail"],
                format!("workspace {ws} not found"),
                "{method} {uri}"
            );
        }
    }
    // The admin on a missing workspace gets the very same body.
    for (method, uri, body) in routes(&missing) {
        let res = api.call(method.clone(), &uri, Some(&api.admin), body).await;
        res.problem(404);
        assert_eq!(
            res.body["detail"],
            format!("workspace {missing} not found"),
            "{method} {uri}"
        );
    }

    // A's deal under B's path: 404 even for the admin, and for B's key.
    for token in [&api.admin, &key_b] {
        for uri in [
            format!("/api/workspaces/{b}/deals/{deal_a}"),
            format!("/api/workspaces/{b}/deals/{deal_a}/stage-history"),
        ] {
            api.get(&uri, token).await.problem(404);
        }
    }

    // Nothing of B changed, and B's key still works.
    let res = api.get(&format!("/api/workspaces/{b}"), &key_b).await;
    assert_eq!(res.body["name"], "B");
    assert_eq!(api.pandora.list_api_keys(uuid(&b)).await.unwrap().len(), 1);
    let res = api
        .get(&format!("/api/workspaces/{b}/deals?limit=500"), &key_b)
        .await;
    let b_ids: HashSet<&str> = res.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(b_ids.len(), 40);
    assert!(!b_ids.contains(deal_a.as_str()));
}

fn risk(d: &Value) -> Option<u64> {
    d["computed"]["risk_score"].as_u64()
}

#[tokio::test]
async fn deals_carry_computed_fields_and_sort_and_filter_by_risk() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    api.pandora
        .ingest(uuid(&ws), &sample_batch(), None)
        .await
        .unwrap();
    let base = format!("/api/workspaces/{ws}/deals");
    let all = walk(&api, &format!("{base}?limit=50"), &key).await;
    assert_eq!(all.len(), 40);
    // Ingested deals carry their computed fields.
    for d in &all {
        let c = &d["computed"];
        assert!(c.is_object(), "{d}");
        assert!(c["computed_at"].is_string() && c["deal_age_days"].is_number());
        let reasons = c["risk_reasons"].as_array().unwrap();
        let points: u64 = reasons.iter().map(|r| r["points"].as_u64().unwrap()).sum();
        assert_eq!(risk(d), Some(points.min(100)), "{d}");
        if d["stage_category"] != "open" {
            assert_eq!(risk(d), Some(0), "closed deals score 0: {d}");
        }
    }
    let scores: BTreeSet<u64> = all.iter().filter_map(risk).collect();
    assert!(scores.len() >= 3, "varied scores: {scores:?}");

    // sort=risk (descending by default), order=asc, and the -risk form.
    for (query, descending) in [
        ("sort=risk", true),
        ("sort=risk&order=asc", false),
        ("sort=-risk", true),
        ("sort=-risk&order=desc", true),
    ] {
        let deals = walk(&api, &format!("{base}?limit=6&{query}"), &key).await;
        assert_eq!(deals.len(), 40, "{query}");
        let keys: Vec<(u64, String)> = deals
            .iter()
            .map(|d| (risk(d).unwrap(), d["id"].as_str().unwrap().to_string()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if descending {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "{query}: by (risk, id)");
    }

    // min_risk, alone and with the risk sort, across pages.
    let threshold = *scores.iter().nth(1).unwrap();
    let want: BTreeSet<&str> = all
        .iter()
        .filter(|d| risk(d).unwrap() >= threshold)
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(!want.is_empty() && want.len() < 40);
    for query in [
        format!("min_risk={threshold}"),
        format!("min_risk={threshold}&sort=-risk"),
        format!("min_risk={threshold}&sort=risk&order=asc&status=open"),
    ] {
        let got = walk(&api, &format!("{base}?limit=4&{query}"), &key).await;
        let got: BTreeSet<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(got, want, "{query}");
    }
    let none = walk(&api, &format!("{base}?min_risk=100"), &key).await;
    assert!(none.iter().all(|d| risk(d) == Some(100)));

    // A risk cursor is refused by another sort, and bad values name their field.
    let res = api.get(&format!("{base}?limit=1&sort=-risk"), &key).await;
    let cursor = res.body["next_cursor"].as_str().unwrap().to_string();
    let res = api
        .get(&format!("{base}?limit=1&sort=amount&cursor={cursor}"), &key)
        .await;
    assert_eq!(res.problem(400).as_deref(), Some("cursor"));
    let res = api.get(&format!("{base}?min_risk=101"), &key).await;
    assert_eq!(res.problem(400).as_deref(), Some("min_risk"));
    let res = api.get(&format!("{base}?sort=risky"), &key).await;
    assert_eq!(res.problem(400).as_deref(), Some("sort"));
}

// ---- problems -----------------------------------------------------------------

#[tokio::test]
async fn bad_input_answers_problems() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let deals = format!("/api/workspaces/{ws}/deals");

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("close_date_from=2024-02-30", "close_date_from"),
        ("close_date_to=tomorrow", "close_date_to"),
        ("updated_since=2024-01-01", "updated_since"),
        ("min_amount=ten", "min_amount"),
        ("owner_id=bob", "owner_id"),
        ("status=maybe", "status"),
        ("sort=name", "sort"),
        ("order=sideways", "order"),
        ("min_risk=101", "min_risk"),
        ("min_risk=-5", "min_risk"),
        ("sort=-risk&order=asc", "order"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
        (
            "close_date_from=2024-05-01&close_date_to=2024-01-01",
            "close_date_from",
        ),
    ] {
        let res = api.get(&format!("{deals}?{query}"), &key).await;
        assert_eq!(res.problem(400).as_deref(), Some(field), "{query}");
    }
    for uri in [
        format!("/api/workspaces/{ws}/contacts?limit=0"),
        format!("/api/workspaces/{ws}/contacts?sort=amount"),
        format!("/api/workspaces/{ws}?verbose=1"),
        "/api/workspaces?limit=501".to_string(),
    ] {
        api.get(&uri, &key).await.problem(400);
    }

    // Bad UUIDs in the path name the parameter.
    let res = api.get("/api/workspaces/not-a-uuid/deals", &key).await;
    assert_eq!(res.problem(400).as_deref(), Some("id"));
    let res = api.get(&format!("{deals}/12345"), &key).await;
    assert_eq!(res.problem(400).as_deref(), Some("dealId"));
    let res = api
        .call(
            Method::DELETE,
            &format!("/api/workspaces/{ws}/api-keys/nope"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(res.problem(400).as_deref(), Some("keyId"));

    // Bodies: unknown field, wrong type, malformed JSON, wrong content type, too large.
    let admin = api.admin.clone();
    let res = api
        .call(
            Method::POST,
            "/api/workspaces",
            Some(&admin),
            Some(json!({"name": "x", "plan": "pro"})),
        )
        .await;
    assert_eq!(res.problem(422).as_deref(), Some("plan"));
    let res = api
        .call(
            Method::POST,
            "/api/workspaces",
            Some(&admin),
            Some(json!({"name": 42})),
        )
        .await;
    assert_eq!(res.problem(422).as_deref(), Some("name"));
    let res = api
        .call(
            Method::POST,
            "/api/workspaces",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(res.problem(422).as_deref(), Some("name"));
    let raw = |body: &'static str, content_type: Option<&str>| {
        let mut req = Request::post("/api/workspaces")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(Body::from(body)).unwrap()
    };
    api.send(raw("{\"name\": ", Some("application/json")))
        .await
        .problem(400);
    api.send(raw("", Some("application/json")))
        .await
        .problem(400);
    api.send(raw("{\"name\": \"x\"}", Some("text/plain")))
        .await
        .problem(415);
    api.send(raw("{\"name\": \"x\"}", None)).await.problem(415);
    let res = api
        .send(raw(
            "{\"name\": \"x\"}",
            Some("application/json; charset=utf-8"),
        ))
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 1 - 12));
    assert_eq!(big.len(), 1024 * 1024 + 1);
    let req = Request::post("/api/workspaces")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big.clone()))
        .unwrap();
    api.send(req).await.problem(413);
    // Also when the length is not announced up front (streamed body).
    let stream = futures_like_stream(big.into_bytes());
    let req = Request::post("/api/workspaces")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(stream)
        .unwrap();
    api.send(req).await.problem(413);

    // Authentication.
    let res = api.call(Method::GET, &deals, None, None).await;
    res.problem(401);
    assert_eq!(res.headers[header::WWW_AUTHENTICATE], "Bearer");
    for auth in ["Basic abc", "Bearer", "Bearer pk_nope", "token"] {
        let req = Request::get(&deals)
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap();
        let res = api.send(req).await;
        res.problem(401);
        assert_eq!(res.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    // 401 comes before anything else about the request.
    api.call(
        Method::GET,
        "/api/workspaces/not-a-uuid/deals?limit=0",
        None,
        None,
    )
    .await
    .problem(401);

    // Unknown routes and methods.
    api.get("/api/nothing-here", &key).await.problem(404);
    api.get("/", &key).await.problem(404);
    let res = api
        .call(
            Method::PUT,
            &format!("/api/workspaces/{ws}"),
            Some(&key),
            None,
        )
        .await;
    res.problem(405);
    assert!(res.headers.contains_key(header::ALLOW));
    api.call(Method::DELETE, "/api/workspaces", Some(&admin), None)
        .await
        .problem(405);
}

/// A body of unknown length (no Content-Length), delivered in 64 KiB chunks.
fn futures_like_stream(bytes: Vec<u8>) -> Body {
    use axum::body::Bytes;
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}

// ---- probes, request ids, OpenAPI --------------------------------------------

#[tokio::test]
async fn probes_request_ids_and_openapi() {
    let api = api().await;
    let res = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (res.status, res.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let res = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (res.status, res.body.clone()),
        (StatusCode::OK, json!({"status": "ready"}))
    );

    // A given request id is echoed; otherwise one is generated.
    let req = Request::get("/healthz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.send(req).await.headers["x-request-id"], "abc-123");
    let a = api.call(Method::GET, "/healthz", None, None).await;
    let b = api.call(Method::GET, "/nope", None, None).await;
    assert_ne!(a.headers["x-request-id"], b.headers["x-request-id"]);

    // The document lists every route with its methods, and the problem schema.
    let res = api.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in pandora_http::ROUTES {
        let op = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from the OpenAPI document"))
            [method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} missing");
        // The OAuth callback is reached by the user's browser from the
        // vendor: its signed, single-use state authenticates it.
        let unauthenticated = [
            "/healthz",
            "/readyz",
            "/api/openapi.json",
            "/api/auth/{connector}/callback",
        ];
        if !unauthenticated.contains(path) {
            assert!(op["security"].is_array(), "{method} {path} has no security");
            assert!(
                op["responses"]["401"]["content"]["application/problem+json"].is_object(),
                "{method} {path}: 401 is not a problem"
            );
        }
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        pandora_http::ROUTES.len(),
        "undocumented or extra operations"
    );
    for schema in [
        "Problem",
        "Deal",
        "Workspace",
        "ApiKey",
        "DealList",
        "CreatedWorkspaceResponse",
        "ComputedFields",
        "RiskReason",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} schema missing"
        );
    }
    assert!(doc["components"]["schemas"]["ApiKey"]["properties"]["hash"].is_null());
    assert!(
        doc["components"]["schemas"]["Deal"]
            .to_string()
            .contains("ComputedFields"),
        "Deal.computed undocumented: {}",
        doc["components"]["schemas"]["Deal"]
    );
    let deal_params = paths["/api/workspaces/{id}/deals"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(
        deal_params.iter().any(|p| p["name"] == "min_risk"),
        "min_risk undocumented"
    );

    // Every documented route is really served (never the 404 fallback).
    for (method, path) in pandora_http::ROUTES {
        let uri = path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{dealId}", &uuid::Uuid::now_v7().to_string())
            .replace("{keyId}", &uuid::Uuid::now_v7().to_string());
        let res = api
            .call(method.parse().unwrap(), &uri, Some(&api.admin), None)
            .await;
        assert_ne!(
            res.body["detail"], "no such route",
            "{method} {path} is documented but not routed"
        );
    }
}

// ---- secrets ------------------------------------------------------------------

/// Standard base64 (with padding) of `bytes`.
fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn no_response_ever_contains_a_key_hash() {
    let api = api().await;
    let (ws, key) = api.workspace("Acme").await;
    let keys = format!("/api/workspaces/{ws}/api-keys");
    api.call(
        Method::POST,
        &keys,
        Some(&key),
        Some(json!({"name": "second"})),
    )
    .await;
    api.get(&keys, &key).await;
    api.get(&keys, &api.admin).await;
    api.get("/api/workspaces", &api.admin).await;
    api.get(&format!("/api/workspaces/{ws}"), &key).await;
    api.call(Method::GET, "/api/openapi.json", None, None).await;
    api.get(&format!("{keys}?limit=1"), &key).await;
    api.get("/api/workspaces", "pk_wrong").await;

    let stored = api.pandora.list_api_keys(uuid(&ws)).await.unwrap();
    assert_eq!(stored.len(), 2);
    let std_alphabet: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let url_alphabet: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bodies = api.bodies.lock().unwrap();
    assert!(bodies.len() >= 9);
    for k in &stored {
        assert_eq!(k.hash.len(), 32);
        let hex: String = k.hash.iter().map(|b| format!("{b:02x}")).collect();
        let forms = [
            hex.clone(),
            hex.to_uppercase(),
            base64(&k.hash, std_alphabet),
            base64(&k.hash, url_alphabet),
            serde_json::to_string(&k.hash).unwrap(),
        ];
        for body in bodies.iter() {
            for form in &forms {
                // The first 16 characters suffice to spot any encoding of the hash.
                assert!(
                    !body.contains(&form[..16]),
                    "a response holds a key hash: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_closed_database_answers_503_problems() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pandora.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let admin = SecretToken::generate(ADMIN_TOKEN_PREFIX);
    let pandora = Pandora::builder()
        .store(store.clone())
        .admin_token(&admin)
        .build()
        .unwrap();
    let created = pandora
        .create_workspace(pandora_core::model::NewWorkspace {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    let api = Api {
        app: pandora_http::router(pandora.clone()),
        pandora,
        admin: admin.expose().to_string(),
        bodies: Mutex::new(Vec::new()),
        _dir: dir,
    };
    api.call(Method::GET, "/readyz", None, None)
        .await
        .problem(503);
    api.call(Method::GET, "/healthz", None, None).await;
    let ws = created.workspace.id;
    api.get(&format!("/api/workspaces/{ws}/deals"), &api.admin)
        .await
        .problem(503);
    // A key cannot be checked without the database: 503, not 401.
    api.get("/api/workspaces", created.api_key.expose())
        .await
        .problem(503);
}
