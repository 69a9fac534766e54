//! Connections as their users see them: connecting with credentials the
//! connector has checked first, listing a workspace's connections, and a
//! connection's health (its state, its runs, and a live check).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Pandora;
use crate::connector::{AuthKind, CheckContext, CheckOutcome, Connector};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Connection, ConnectionStatus, SyncRun, WorkspaceId};
use crate::query::PageRequest;
use crate::vault::Credentials;

/// How long a connector's credential check may take by default (see
/// [`PandoraBuilder::check_timeout`](crate::PandoraBuilder::check_timeout)).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection with the state of its credentials (never the credentials).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionSummary {
    /// The connection.
    #[serde(flatten)]
    pub connection: Connection,
    /// How its credentials rest (see [`Pandora::credential_state`]):
    /// `"encrypted"`, `"unencrypted"` (legacy plaintext), `"unreadable"` or
    /// `"missing"`.
    #[cfg_attr(feature = "openapi", schema(example = "encrypted"))]
    pub credentials: String,
}

impl ConnectionSummary {
    fn of(connection: Connection) -> Self {
        ConnectionSummary {
            credentials: Pandora::credential_state(&connection).to_string(),
            connection,
        }
    }
}

/// What [`Pandora::connect_checked`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Connected {
    /// The connection, with its credentials sealed.
    #[serde(flatten)]
    pub connection: ConnectionSummary,
    /// The connector's answer to the check made before the credentials were stored.
    pub check: CheckOutcome,
    /// Whether the connection was created (else an existing one got new credentials).
    #[serde(skip)]
    pub created: bool,
}

/// The live check made for a connection's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveCheck {
    /// Whether the connector answered and accepted the credentials.
    pub ok: bool,
    /// The connector's note, or the vendor's reason when it refused.
    pub detail: Option<String>,
    /// Why the check gave no answer (not run, timed out, credentials that do
    /// not open, vendor unreachable); `null` when it answered.
    pub error: Option<String>,
    /// How long the check took, in milliseconds (0 when it was not run).
    pub duration_ms: u64,
}

impl LiveCheck {
    fn not_run(why: impl Into<String>) -> Self {
        LiveCheck {
            ok: false,
            detail: None,
            error: Some(why.into()),
            duration_ms: 0,
        }
    }
}

/// A connection's health: its state, its runs, and a live check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionHealth {
    /// Connector id.
    pub connector: String,
    /// Connection id.
    pub connection_id: Uuid,
    /// Lifecycle state.
    pub status: ConnectionStatus,
    /// How its credentials rest: `"encrypted"`, `"unencrypted"` (legacy
    /// plaintext, until `pandora credentials encrypt-existing`),
    /// `"unreadable"` or `"missing"`.
    #[cfg_attr(feature = "openapi", schema(example = "encrypted"))]
    pub credentials: String,
    /// End of the last successful sync.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The last sync's error, when it failed.
    pub last_error: Option<String>,
    /// The run queued or running now, if any.
    pub active_run: Option<SyncRun>,
    /// The latest finished run (succeeded, failed or cancelled), if any.
    pub last_run: Option<SyncRun>,
    /// The connector's own check, made now. Its failure is reported here;
    /// it never fails the health request.
    pub check: LiveCheck,
}

/// What a credential field holds.
#[derive(Clone, Copy)]
enum FieldKind {
    /// A non-empty string.
    Text,
    /// An RFC 3339 timestamp.
    Timestamp,
    /// An array of non-empty strings.
    TextList,
}

/// A credential field: its name and what it holds.
type Field = (&'static str, FieldKind);

/// The credential fields an auth kind requires, and those it also accepts.
/// The OAuth fields are those of stored OAuth tokens (`access_token`,
/// `refresh_token`, `expires_at`, `instance_url`, `scopes`).
fn credential_fields(auth: AuthKind) -> (&'static [Field], &'static [Field]) {
    use FieldKind::{Text, TextList, Timestamp};
    match auth {
        AuthKind::None => (&[], &[]),
        AuthKind::ApiKey => (&[("api_key", Text)], &[]),
        AuthKind::Basic => (&[("username", Text), ("password", Text)], &[]),
        AuthKind::OAuth2 => (
            &[("access_token", Text)],
            &[
                ("refresh_token", Text),
                ("expires_at", Timestamp),
                ("instance_url", Text),
                ("scopes", TextList),
            ],
        ),
    }
}

/// Checks one credential field's value; the error says what it must be.
fn check_field(
    kind: FieldKind,
    value: &serde_json::Value,
) -> std::result::Result<(), &'static str> {
    let text = |v: &serde_json::Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    let ok = match kind {
        FieldKind::Text => text(value),
        FieldKind::Timestamp => value
            .as_str()
            .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
        FieldKind::TextList => value.as_array().is_some_and(|a| a.iter().all(text)),
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        FieldKind::Text => "must be a non-empty string",
        FieldKind::Timestamp => "must be an RFC 3339 timestamp such as 2025-01-31T12:00:00Z",
        FieldKind::TextList => "must be an array of non-empty strings",
    })
}

/// Checks that `credentials` has the shape `auth` takes: a JSON object with
/// every required field, each field of the right type (strings non-empty),
/// and nothing else. Errors name the field and never quote a value.
fn check_credential_shape(
    connector: &str,
    auth: AuthKind,
    credentials: &Credentials,
) -> Result<()> {
    let value = credentials.expose_json()?;
    let Some(fields) = value.as_object() else {
        return Err(Error::invalid("credentials", "must be a JSON object"));
    };
    let (required, optional) = credential_fields(auth);
    for (name, _) in required {
        if !fields.contains_key(*name) {
            return Err(Error::invalid(
                *name,
                format!("is required by the {connector} connector"),
            ));
        }
    }
    for (name, value) in fields {
        let Some((_, kind)) = required
            .iter()
            .chain(optional)
            .find(|(known, _)| known == name)
        else {
            let accepted: Vec<&str> = required.iter().chain(optional).map(|(n, _)| *n).collect();
            let message = if accepted.is_empty() {
                format!("is not accepted: the {connector} connector takes no credentials")
            } else {
                format!(
                    "is not a credential of the {connector} connector (it takes {})",
                    accepted.join(", ")
                )
            };
            return Err(Error::invalid(name.clone(), message));
        };
        check_field(*kind, value).map_err(|m| Error::invalid(name.clone(), m))?;
    }
    Ok(())
}

/// The message a check error leaves in a health report: the error's
/// display, except for internal errors (logged, reported generically).
fn check_error(connector: &str, e: &Error) -> String {
    if e.kind() == ErrorKind::Internal {
        tracing::error!(connector, error = %e, "connector check failed unexpectedly");
        "the check failed unexpectedly; details are in the server log".to_string()
    } else {
        e.to_string()
    }
}

impl Pandora {
    /// Connects the workspace to `connector` with credentials the connector
    /// has accepted: the credentials must have the shape of the connector's
    /// [`AuthKind`] (`{"api_key"}`, `{"username", "password"}`,
    /// `{"access_token"[, "refresh_token"]}`, or `{}` for a connector that
    /// takes none), the connector checks them against the vendor, and only
    /// then are they sealed and stored (see [`Pandora::connect`]).
    ///
    /// `config` `None` keeps the existing connection's configuration (or
    /// `{}` for a new one).
    ///
    /// Errors: an unknown connector is [`Error::NotFound`] listing the known
    /// ones; a missing, empty or unexpected credential field is
    /// [`Error::InvalidInput`] naming it (never quoting a value); a check
    /// that answers `ok: false` is [`Error::Rejected`] with the vendor's
    /// reason, and nothing is stored; a check that does not answer within the
    /// [check timeout](crate::PandoraBuilder::check_timeout) is
    /// [`Error::Unavailable`]; an error of the check itself (e.g. invalid
    /// configuration) is returned as is.
    pub async fn connect_checked(
        &self,
        workspace: WorkspaceId,
        connector: &str,
        credentials: Credentials,
        config: Option<serde_json::Value>,
    ) -> Result<Connected> {
        let imp = self.inner.connectors.get(connector)?;
        let auth = imp.info().auth;
        check_credential_shape(connector, auth, &credentials)?;
        self.inner.store.get_workspace(workspace).await?;
        let existing = match self.inner.store.get_connection(workspace, connector).await {
            Ok(c) => Some(c),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let config = match (config, &existing) {
            (Some(config), _) => config,
            (None, Some(c)) => c.config.clone(),
            (None, None) => serde_json::json!({}),
        };
        // What `connect` would refuse, refused before the vendor is asked.
        super::check_connection_config(&config)?;
        if auth != AuthKind::None && self.inner.vault.current_key_id().is_none() {
            return Err(crate::vault::VaultError::NoKey.into());
        }

        // An OAuth check may refresh the tokens (a vendor may rotate the
        // refresh token): what is stored is then the refreshed tokens.
        let check_tokens = self.check_tokens(imp.as_ref(), connector, &credentials);
        let ctx = CheckContext {
            workspace_id: workspace,
            config: crate::scheduler::connector_config(&config),
            credentials: (auth != AuthKind::None).then(|| credentials.clone()),
            tokens: check_tokens
                .clone()
                .map(|t| t as std::sync::Arc<dyn crate::connector::TokenSource>),
        };
        let timeout = self.inner.check_timeout;
        let check = match tokio::time::timeout(timeout, imp.check(&ctx)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Error::unavailable(format!(
                    "the {connector} connector did not answer its credential check within {} s",
                    timeout.as_secs_f64()
                )))
            }
        };
        if !check.ok {
            let reason = check
                .detail
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or("no reason given");
            tracing::info!(workspace_id = %workspace, connector, reason, "credentials rejected by the connector's check");
            return Err(Error::rejected(format!(
                "{connector} rejected the credentials: {reason}"
            )));
        }

        let connection = if auth == AuthKind::None {
            // Nothing to seal: a connector without credentials needs no vault key.
            self.inner
                .store
                .upsert_connection(
                    workspace,
                    &crate::model::NewConnection {
                        connector: connector.to_string(),
                        status: crate::model::ConnectionStatus::Active,
                        credentials: None,
                        config,
                    },
                )
                .await?
        } else {
            let credentials = match &check_tokens {
                Some(source) => match source.refreshed_tokens().await {
                    Some(tokens) => Credentials::from_json(&serde_json::to_value(&tokens)?),
                    None => credentials,
                },
                None => credentials,
            };
            self.connect(workspace, connector, credentials, config)
                .await?
        };
        Ok(Connected {
            connection: ConnectionSummary::of(connection),
            check,
            created: existing.is_none(),
        })
    }

    /// The workspace's connections, each with the state of its credentials.
    pub async fn list_connections(&self, workspace: WorkspaceId) -> Result<Vec<ConnectionSummary>> {
        self.inner.store.get_workspace(workspace).await?;
        let connections = self.inner.store.list_connections(workspace).await?;
        Ok(connections.into_iter().map(ConnectionSummary::of).collect())
    }

    /// The workspace's connection to `connector`. [`Error::NotFound`]
    /// listing the known connectors when the deployment offers no such
    /// connector and the workspace has no such connection.
    pub async fn connection(&self, workspace: WorkspaceId, connector: &str) -> Result<Connection> {
        match self.inner.store.get_connection(workspace, connector).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.inner.connectors.get(connector)?;
                Err(e)
            }
            other => other,
        }
    }

    /// The health of the workspace's connection to `connector`: its status,
    /// the state of its credentials, its last successful sync and last
    /// error, its active and latest finished runs, and a live check by the
    /// connector (bounded by the
    /// [check timeout](crate::PandoraBuilder::check_timeout)). The check's
    /// failure is reported in [`ConnectionHealth::check`]; it is not run for
    /// a disconnected connection.
    ///
    /// [`Error::NotFound`] when there is no such connection (listing the
    /// known connectors when the id is unknown too).
    pub async fn connection_health(
        &self,
        workspace: WorkspaceId,
        connector: &str,
    ) -> Result<ConnectionHealth> {
        let connection = self.connection(workspace, connector).await?;
        // The active run, if any, is the newest: no run is created while one is active.
        let recent = self
            .inner
            .store
            .list_sync_runs(workspace, connection.id, &PageRequest::first(2))
            .await?
            .data;
        let active_run = recent.iter().find(|r| r.status.is_active()).cloned();
        let last_run = recent.into_iter().find(|r| r.status.is_finished());
        let check = self.live_check(&connection).await;
        Ok(ConnectionHealth {
            connector: connection.connector.clone(),
            connection_id: connection.id,
            status: connection.status,
            credentials: Pandora::credential_state(&connection).to_string(),
            last_sync_at: connection.last_sync_at,
            last_error: connection.last_error.clone(),
            active_run,
            last_run,
            check,
        })
    }

    /// Runs the connector's check on `connection`, reporting every failure.
    async fn live_check(&self, connection: &Connection) -> LiveCheck {
        let connector = connection.connector.as_str();
        if connection.status == ConnectionStatus::Disconnected {
            return LiveCheck::not_run("not run: the connection is disconnected");
        }
        if connection.status == ConnectionStatus::NeedsReauth {
            // Its refresh token was refused: asking the vendor again would not help.
            return LiveCheck::not_run(format!(
                "not run: the connection needs to be authorized again (start the {connector} OAuth flow, or connect with new tokens)"
            ));
        }
        let imp: std::sync::Arc<dyn Connector> = match self.inner.connectors.get(connector) {
            Ok(imp) => imp,
            Err(_) => {
                return LiveCheck::not_run(format!(
                    "not run: this deployment does not offer the {connector} connector"
                ))
            }
        };
        let auth = imp.info().auth;
        let credentials = match self.open_credentials(connection).await {
            // Vault errors never carry key material or plaintext.
            Err(e) => {
                return LiveCheck::not_run(format!("not run: the credentials do not open: {e}"))
            }
            Ok(None) if auth != AuthKind::None => {
                return LiveCheck::not_run("not run: the connection holds no credentials")
            }
            Ok(c) => c.filter(|_| auth != AuthKind::None),
        };
        let ctx = CheckContext {
            workspace_id: connection.workspace_id,
            config: crate::scheduler::connector_config(&connection.config),
            credentials,
            tokens: self.connection_tokens(imp.as_ref(), connection),
        };
        let timeout = self.inner.check_timeout;
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, imp.check(&ctx)).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(Ok(outcome)) => LiveCheck {
                ok: outcome.ok,
                detail: outcome.detail,
                error: None,
                duration_ms,
            },
            Ok(Err(e)) => LiveCheck {
                ok: false,
                detail: None,
                error: Some(check_error(connector, &e)),
                duration_ms,
            },
            Err(_) => LiveCheck {
                ok: false,
                detail: None,
                error: Some(format!(
                    "the check did not answer within {} s",
                    timeout.as_secs_f64()
                )),
                duration_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(v: serde_json::Value) -> Credentials {
        Credentials::from_json(&v)
    }

    fn field_of(r: Result<()>) -> String {
        match r {
            Err(Error::InvalidInput { field, message }) => {
                assert!(!message.contains("s3cret"), "{message}");
                field
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn auth_kinds_have_plain_wire_names() {
        let names: Vec<serde_json::Value> = [
            AuthKind::None,
            AuthKind::ApiKey,
            AuthKind::Basic,
            AuthKind::OAuth2,
        ]
        .iter()
        .map(|k| serde_json::to_value(k).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                serde_json::json!("none"),
                serde_json::json!("api_key"),
                serde_json::json!("basic"),
                serde_json::json!("oauth2")
            ]
        );
    }

    #[test]
    fn credential_shapes_follow_the_auth_kind() {
        use serde_json::json;
        let ok = |auth, v| check_credential_shape("x", auth, &creds(v));
        assert!(ok(AuthKind::None, json!({})).is_ok());
        assert!(ok(AuthKind::ApiKey, json!({"api_key": "s3cret"})).is_ok());
        assert!(ok(
            AuthKind::Basic,
            json!({"username": "u", "password": "s3cret"})
        )
        .is_ok());
        assert!(ok(AuthKind::OAuth2, json!({"access_token": "s3cret"})).is_ok());
        assert!(ok(
            AuthKind::OAuth2,
            json!({"access_token": "s3cret", "refresh_token": "s3cret"})
        )
        .is_ok());
        assert!(ok(
            AuthKind::OAuth2,
            json!({
                "access_token": "s3cret",
                "expires_at": "2025-01-31T12:00:00Z",
                "instance_url": "https://acme.my.salesforce.com",
                "scopes": ["api", "refresh_token"]
            })
        )
        .is_ok());

        let cases = [
            (AuthKind::None, json!({"api_key": "s3cret"}), "api_key"),
            (AuthKind::ApiKey, json!({}), "api_key"),
            (AuthKind::ApiKey, json!({"api_key": ""}), "api_key"),
            (AuthKind::ApiKey, json!({"api_key": "  "}), "api_key"),
            (AuthKind::ApiKey, json!({"api_key": 5}), "api_key"),
            (
                AuthKind::ApiKey,
                json!({"api_key": "s3cret", "token": "s3cret"}),
                "token",
            ),
            (AuthKind::Basic, json!({"username": "u"}), "password"),
            (
                AuthKind::Basic,
                json!({"username": "", "password": "s3cret"}),
                "username",
            ),
            (
                AuthKind::OAuth2,
                json!({"refresh_token": "s3cret"}),
                "access_token",
            ),
            (
                AuthKind::OAuth2,
                json!({"access_token": "s3cret", "refresh_token": null}),
                "refresh_token",
            ),
            (
                AuthKind::OAuth2,
                json!({"access_token": "s3cret", "expires_at": "tomorrow"}),
                "expires_at",
            ),
            (
                AuthKind::OAuth2,
                json!({"access_token": "s3cret", "scopes": "api"}),
                "scopes",
            ),
            (
                AuthKind::OAuth2,
                json!({"access_token": "s3cret", "scopes": ["api", ""]}),
                "scopes",
            ),
            (AuthKind::ApiKey, json!(["s3cret"]), "credentials"),
        ];
        for (auth, value, field) in cases {
            assert_eq!(field_of(ok(auth, value.clone())), field, "{auth:?} {value}");
        }
    }
}
