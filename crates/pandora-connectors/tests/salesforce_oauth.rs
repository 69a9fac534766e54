//! Salesforce's OAuth provider against a local token endpoint: the consent
//! URL with its PKCE challenge on the configured login host, the code
//! exchange with the verifier, `instance_url` kept, refresh-token rotation,
//! and which refusals mean the grant is gone.

use std::collections::BTreeMap;

use pandora_connectors::salesforce::{SalesforceConnector, SalesforceHosts};
use pandora_core::auth::SecretToken;
use pandora_core::connector::Connector;
use pandora_core::oauth::{OAuthClient, OAuthProvider, Pkce, RefreshError, StoredTokens};
use pandora_core::ErrorKind;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client() -> OAuthClient {
    OAuthClient {
        client_id: "3MVG9-consumer-key".into(),
        client_secret: SecretToken::from_string("shh-consumer-secret".into()),
        redirect_uri: "https://pandora.example/api/auth/salesforce/callback".into(),
    }
}

fn provider(login: Option<&str>) -> std::sync::Arc<dyn OAuthProvider> {
    SalesforceConnector::new(SalesforceHosts::new(login))
        .oauth()
        .expect("salesforce has an OAuth flow")
}

async fn token_server(status: u16, body: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

async fn form_sent(server: &MockServer) -> BTreeMap<String, String> {
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    assert!(r.headers.get("authorization").is_none());
    let body = String::from_utf8(r.body.clone()).expect("utf-8");
    reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
        .expect("form")
        .query_pairs()
        .into_owned()
        .collect()
}

/// A token response as Salesforce sends it: no `expires_in`.
fn tokens(access: &str, refresh: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "access_token": access,
        "signature": "c2lnbmF0dXJl",
        "scope": "refresh_token api",
        "instance_url": "https://acme.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00DSIM000000001AAA/005SIM000000001AAA",
        "token_type": "Bearer",
        "issued_at": "1778068604000"
    });
    if let Some(r) = refresh {
        v["refresh_token"] = json!(r);
    }
    v
}

#[test]
fn the_consent_url_carries_the_pkce_challenge_on_the_login_host() {
    let pkce = Pkce::generate();
    let p = provider(None);
    assert!(p.uses_pkce());
    let url = p
        .authorize_url(&client(), "state-xyz", Some(pkce.challenge()))
        .expect("url");
    let url = reqwest::Url::parse(&url).expect("parse");
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host_str(), Some("login.salesforce.com"), "the default");
    assert_eq!(url.path(), "/services/oauth2/authorize");
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "3MVG9-consumer-key");
    assert_eq!(
        q["redirect_uri"],
        "https://pandora.example/api/auth/salesforce/callback"
    );
    assert_eq!(q["state"], "state-xyz");
    assert_eq!(q["code_challenge"], pkce.challenge());
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "api refresh_token");
    assert!(!q.values().any(|v| v.contains("shh-consumer-secret")));
    assert!(!q.values().any(|v| v.contains(pkce.verifier().expose())));

    // SALESFORCE_LOGIN_URL: a sandbox or My Domain.
    let sandbox = provider(Some("https://test.salesforce.com/"))
        .authorize_url(&client(), "s", Some(pkce.challenge()))
        .expect("url");
    assert!(
        sandbox.starts_with("https://test.salesforce.com/services/oauth2/authorize?"),
        "{sandbox}"
    );
}

#[tokio::test]
async fn a_code_exchange_posts_the_verifier_and_keeps_instance_url() {
    let server = token_server(200, tokens("00DSIM!access-1", Some("refresh-1"))).await;
    let pkce = Pkce::generate();
    let set = provider(Some(&server.uri()))
        .exchange_code(&client(), "aPrx-code", Some(pkce.verifier().expose()))
        .await
        .expect("tokens");
    assert_eq!(set.access_token.expose(), "00DSIM!access-1");
    assert_eq!(
        set.refresh_token.as_ref().map(|t| t.expose()),
        Some("refresh-1")
    );
    assert_eq!(
        set.instance_url.as_deref(),
        Some("https://acme.my.salesforce.com")
    );
    assert_eq!(set.expires_at, None, "Salesforce sends no expires_in");
    assert_eq!(set.scopes, vec!["refresh_token".to_string(), "api".into()]);
    let form = form_sent(&server).await;
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "aPrx-code");
    assert_eq!(form["code_verifier"], pkce.verifier().expose());
    assert_eq!(form["client_id"], "3MVG9-consumer-key");
    assert_eq!(form["client_secret"], "shh-consumer-secret");
    assert_eq!(
        form["redirect_uri"],
        "https://pandora.example/api/auth/salesforce/callback"
    );
    // What Pandora stores: the credentials the connector reads its API host from.
    let stored = StoredTokens::from_token_set(&set);
    assert_eq!(
        stored.instance_url.as_deref(),
        Some("https://acme.my.salesforce.com")
    );

    // A refused code (invalid, reused, or a verifier that does not match) is the caller's to fix.
    let server = token_server(
        400,
        json!({"error": "invalid_grant", "error_description": "invalid authorization code"}),
    )
    .await;
    let err = provider(Some(&server.uri()))
        .exchange_code(&client(), "used-code", Some("verifier"))
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(
        err.to_string().contains("invalid authorization code"),
        "{err}"
    );
}

#[tokio::test]
async fn a_refresh_posts_the_refresh_token_and_takes_a_rotated_one() {
    // Rotation on: a new refresh token comes back and replaces the old one.
    let server = token_server(200, tokens("00DSIM!access-2", Some("refresh-2"))).await;
    let set = provider(Some(&server.uri()))
        .refresh(&client(), &SecretToken::from_string("refresh-1".into()))
        .await
        .expect("refreshed");
    assert_eq!(set.access_token.expose(), "00DSIM!access-2");
    let old = StoredTokens {
        access_token: "00DSIM!access-1".into(),
        refresh_token: Some("refresh-1".into()),
        expires_at: None,
        instance_url: Some("https://old.my.salesforce.com".into()),
        scopes: vec![],
    };
    let updated = old.updated_by(&set);
    assert_eq!(updated.refresh_token.as_deref(), Some("refresh-2"));
    assert_eq!(
        updated.instance_url.as_deref(),
        Some("https://acme.my.salesforce.com")
    );
    let form = form_sent(&server).await;
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "refresh-1");
    assert_eq!(form["client_id"], "3MVG9-consumer-key");
    assert_eq!(form["client_secret"], "shh-consumer-secret");

    // Rotation off: no refresh token in the answer, the stored one stays.
    let server = token_server(200, tokens("00DSIM!access-3", None)).await;
    let set = provider(Some(&server.uri()))
        .refresh(&client(), &SecretToken::from_string("refresh-2".into()))
        .await
        .expect("refreshed");
    assert!(set.refresh_token.is_none());
    assert_eq!(
        updated.updated_by(&set).refresh_token.as_deref(),
        Some("refresh-2")
    );
}

#[tokio::test]
async fn invalid_grant_is_refused_for_good_and_outages_are_not() {
    let server = token_server(
        400,
        json!({"error": "invalid_grant", "error_description": "expired access/refresh token"}),
    )
    .await;
    let err = provider(Some(&server.uri()))
        .refresh(&client(), &SecretToken::from_string("refresh-old".into()))
        .await
        .expect_err("refused");
    assert!(matches!(err, RefreshError::InvalidGrant(_)), "{err:?}");
    assert!(err.to_string().contains("expired access/refresh token"));
    assert!(!err.to_string().contains("refresh-old"));

    for status in [429, 500, 503] {
        let server = token_server(
            status,
            json!([{"message": "try later", "errorCode": "SERVER_UNAVAILABLE"}]),
        )
        .await;
        let err = provider(Some(&server.uri()))
            .refresh(&client(), &SecretToken::from_string("refresh-1".into()))
            .await
            .expect_err("outage");
        assert!(matches!(err, RefreshError::Other(_)), "{status}: {err:?}");
        assert_eq!(
            server.received_requests().await.expect("requests").len(),
            1,
            "the caller retries, not the provider"
        );
    }
    // Another client error (a wrong secret) is not a revoked grant either.
    let server = token_server(
        400,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
    )
    .await;
    let err = provider(Some(&server.uri()))
        .refresh(&client(), &SecretToken::from_string("refresh-1".into()))
        .await
        .expect_err("refused");
    assert!(matches!(err, RefreshError::Other(_)), "{err:?}");
}
