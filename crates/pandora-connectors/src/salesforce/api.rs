//! Salesforce's REST endpoints, one method each. Paths are relative to the
//! org's API host (the `instance_url` of its tokens, or the connection's
//! `config.base_url`).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::payloads::{DeletedPage, Describe, QueryPage};
use super::rate::limit_reached;
use super::SOURCE;
use crate::vendor::{Request, VendorClient, VendorError};

/// `query` (live records) or `queryAll` (deleted ones too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// `GET /services/data/vNN.N/query`.
    Query,
    /// `GET /services/data/vNN.N/queryAll`.
    QueryAll,
}

impl QueryKind {
    fn resource(self) -> &'static str {
        match self {
            QueryKind::Query => "query",
            QueryKind::QueryAll => "queryAll",
        }
    }
}

/// Salesforce's REST API over a [`VendorClient`].
#[derive(Debug)]
pub struct SalesforceApi {
    client: VendorClient,
    version: String,
}

/// The object a SOQL statement reads (`… FROM Account …` → `Account`), for errors and logs.
fn object_of(soql: &str) -> &str {
    soql.split_whitespace()
        .skip_while(|w| !w.eq_ignore_ascii_case("FROM"))
        .nth(1)
        .unwrap_or("?")
}

impl SalesforceApi {
    /// The API over `client`, at REST API `version` (`v62.0`).
    pub fn new(client: VendorClient, version: impl Into<String>) -> Self {
        SalesforceApi {
            client,
            version: version.into(),
        }
    }

    /// The client (its budget, for health).
    pub fn client(&self) -> &VendorClient {
        &self.client
    }

    /// `/services/data/vNN.N`.
    pub fn data_path(&self) -> String {
        format!("/services/data/{}", self.version)
    }

    async fn send<T: DeserializeOwned>(&self, r: Request) -> Result<T, VendorError> {
        self.client
            .send(&r)
            .await
            .map_err(|e| limit_reached(e, self.client.budget()))
    }

    /// The first page of `soql`.
    pub async fn query<T: DeserializeOwned>(
        &self,
        kind: QueryKind,
        soql: &str,
    ) -> Result<QueryPage<T>, VendorError> {
        let path = format!("{}/{}", self.data_path(), kind.resource());
        let label = format!("GET {path} (FROM {})", object_of(soql));
        tracing::debug!(vendor = SOURCE, %soql, "SOQL");
        self.send(Request::get(path).query("q", soql).label(label))
            .await
    }

    /// A later page: the `nextRecordsUrl` of the page before, a path on the
    /// API host (anything else is refused: the bearer token goes nowhere else).
    pub async fn query_more<T: DeserializeOwned>(
        &self,
        next: &str,
        object: &str,
    ) -> Result<QueryPage<T>, VendorError> {
        let endpoint = format!("GET {}/query/… (FROM {object})", self.data_path());
        if !next.starts_with("/services/data/") || next.contains("://") {
            return Err(VendorError::Malformed {
                vendor: SOURCE,
                endpoint,
                reason: format!("nextRecordsUrl {next:?} is not a path on the API host"),
            });
        }
        self.send(Request::get(next).label(endpoint)).await
    }

    /// `GET /services/data/vNN.N/sobjects/{object}/describe/`: the names of
    /// the fields of `object` the connected user may see.
    pub async fn visible_fields(&self, object: &str) -> Result<Vec<String>, VendorError> {
        let path = format!("{}/sobjects/{object}/describe/", self.data_path());
        let d: Describe = self.send(Request::get(path)).await?;
        Ok(d.fields.into_iter().map(|f| f.name).collect())
    }

    /// `GET /services/data/vNN.N/sobjects/{object}/deleted/?start=…&end=…`:
    /// the records of `object` deleted between `start` and `end` (minutes;
    /// Salesforce ignores the seconds).
    pub async fn deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedPage, VendorError> {
        let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
        let path = format!("{}/sobjects/{object}/deleted/", self.data_path());
        self.send(
            Request::get(path)
                .query("start", fmt(start))
                .query("end", fmt(end)),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_of_a_statement_names_it_in_errors() {
        assert_eq!(
            object_of("SELECT Id, Name FROM Account WHERE X = 1"),
            "Account"
        );
        assert_eq!(object_of("select Id from Contact"), "Contact");
        assert_eq!(object_of("nonsense"), "?");
    }
}
