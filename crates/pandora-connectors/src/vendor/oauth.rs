//! What every vendor's OAuth provider and health check share: the token
//! request's form, the granted scopes, and the health detail line.

use pandora_core::oauth::OAuthClient;

/// The form fields every token request carries: the grant type and the
/// app's credentials (`client_id`, `client_secret`). Vendors add their own
/// (`code`, `redirect_uri`, `code_verifier`, `refresh_token`).
pub(crate) fn token_form(client: &OAuthClient, grant: &str) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), grant.into()),
        ("client_id".into(), client.client_id.clone()),
        (
            "client_secret".into(),
            client.client_secret.expose().to_string(),
        ),
    ]
}

/// The scopes of a space-separated `scope` answer (none when absent).
pub(crate) fn split_scopes(scope: Option<String>) -> Vec<String> {
    scope
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A check's detail line: `parts` (e.g. the API budget) and the granted
/// scopes, joined with `; `, or "`vendor` answered" when there is nothing to say.
pub(crate) fn health_detail(vendor: &str, mut parts: Vec<String>, scopes: &[String]) -> String {
    if !scopes.is_empty() {
        parts.push(format!("scopes: {}", scopes.join(", ")));
    }
    if parts.is_empty() {
        format!("{vendor} answered")
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pandora_core::auth::SecretToken;

    #[test]
    fn forms_scopes_and_details() {
        let client = OAuthClient {
            client_id: "id-1".into(),
            client_secret: SecretToken::from_string("s3cret".into()),
            redirect_uri: "https://x/cb".into(),
        };
        let form = token_form(&client, "refresh_token");
        assert_eq!(form[0], ("grant_type".into(), "refresh_token".into()));
        assert_eq!(form[1], ("client_id".into(), "id-1".into()));
        assert_eq!(form[2], ("client_secret".into(), "s3cret".into()));
        assert_eq!(
            split_scopes(Some(" api  refresh_token ".into())),
            vec!["api".to_string(), "refresh_token".to_string()]
        );
        assert!(split_scopes(None).is_empty());
        assert_eq!(health_detail("Acme", vec![], &[]), "Acme answered");
        assert_eq!(
            health_detail("Acme", vec!["budget: 5".into()], &["crm".into()]),
            "budget: 5; scopes: crm"
        );
    }
}
