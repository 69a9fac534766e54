//! HubSpot's OAuth provider against a local token endpoint: the consent URL,
//! the code exchange and refresh request bodies, `expires_in`, and which
//! refusals mean the grant is gone.

use std::collections::BTreeMap;

use pandora_connectors::hubspot::{HubSpotConnector, HubSpotHosts};
use pandora_core::auth::SecretToken;
use pandora_core::connector::Connector;
use pandora_core::oauth::{OAuthClient, OAuthProvider, RefreshError};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client() -> OAuthClient {
    OAuthClient {
        client_id: "client-123".into(),
        client_secret: SecretToken::from_string("shh-secret".into()),
        redirect_uri: "https://pandora.example/api/auth/hubspot/callback".into(),
    }
}

fn provider(api: &str) -> std::sync::Arc<dyn OAuthProvider> {
    HubSpotConnector::new(HubSpotHosts::new(
        Some("https://consent.example"),
        Some(api),
    ))
    .oauth()
    .expect("hubspot has an OAuth flow")
}

async fn token_server(status: u16, body: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
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
    let body = String::from_utf8(r.body.clone()).expect("utf-8");
    reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
        .expect("form")
        .query_pairs()
        .into_owned()
        .collect()
}

#[test]
fn the_consent_url_carries_client_redirect_scopes_and_state() {
    let url = provider("https://api.example")
        .authorize_url(&client(), "state-xyz", None)
        .expect("url");
    let url = reqwest::Url::parse(&url).expect("parse");
    assert_eq!(url.host_str(), Some("consent.example"));
    assert_eq!(url.path(), "/oauth/authorize");
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "client-123");
    assert_eq!(
        q["redirect_uri"],
        "https://pandora.example/api/auth/hubspot/callback"
    );
    assert_eq!(q["state"], "state-xyz");
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(scopes.contains(&"oauth") && scopes.contains(&"crm.objects.deals.read"));
    assert!(!q.contains_key("code_challenge"));
    assert!(!provider("https://api.example").uses_pkce());
    assert!(!q.values().any(|v| v.contains("shh-secret")));
}

#[tokio::test]
async fn a_code_exchange_posts_the_form_and_reads_expires_in() {
    let server = token_server(
        200,
        json!({"token_type": "bearer", "refresh_token": "r-1", "access_token": "a-1", "expires_in": 1800}),
    )
    .await;
    let before = chrono::Utc::now();
    let set = provider(&server.uri())
        .exchange_code(&client(), "code-9", None)
        .await
        .expect("tokens");
    assert_eq!(set.access_token.expose(), "a-1");
    assert_eq!(set.refresh_token.as_ref().map(|t| t.expose()), Some("r-1"));
    let expires = set.expires_at.expect("expires_at") - before;
    assert!(
        expires > chrono::Duration::seconds(1795) && expires <= chrono::Duration::seconds(1801)
    );
    let form = form_sent(&server).await;
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "code-9");
    assert_eq!(form["client_id"], "client-123");
    assert_eq!(form["client_secret"], "shh-secret");
    assert_eq!(
        form["redirect_uri"],
        "https://pandora.example/api/auth/hubspot/callback"
    );
}

#[tokio::test]
async fn a_refresh_posts_the_refresh_token() {
    let server = token_server(
        200,
        json!({"token_type": "bearer", "refresh_token": "r-2", "access_token": "a-2", "expires_in": 1800}),
    )
    .await;
    let set = provider(&server.uri())
        .refresh(&client(), &SecretToken::from_string("r-1".into()))
        .await
        .expect("refreshed");
    assert_eq!(set.access_token.expose(), "a-2");
    assert_eq!(set.refresh_token.as_ref().map(|t| t.expose()), Some("r-2"));
    let form = form_sent(&server).await;
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "r-1");
    assert_eq!(form["client_id"], "client-123");
    assert_eq!(form["client_secret"], "shh-secret");
}

#[tokio::test]
async fn a_refused_refresh_token_is_invalid_grant_and_outages_are_not() {
    for body in [
        json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token", "correlationId": "c"}),
        json!({"error": "invalid_grant", "error_description": "refresh token revoked"}),
    ] {
        let server = token_server(400, body).await;
        let err = provider(&server.uri())
            .refresh(&client(), &SecretToken::from_string("r-old".into()))
            .await
            .expect_err("refused");
        assert!(matches!(err, RefreshError::InvalidGrant(_)), "{err:?}");
        assert!(!err.to_string().contains("r-old"));
    }
    for status in [429, 500, 503] {
        let server = token_server(status, json!({"status": "error", "message": "try later"})).await;
        let err = provider(&server.uri())
            .refresh(&client(), &SecretToken::from_string("r-1".into()))
            .await
            .expect_err("outage");
        assert!(matches!(err, RefreshError::Other(_)), "{status}: {err:?}");
        assert_eq!(
            server.received_requests().await.expect("requests").len(),
            1,
            "the caller retries, not the provider"
        );
    }
}
