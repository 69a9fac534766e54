//! HubSpot's endpoints, one method each. Paths are relative to the API host
//! (`https://api.hubapi.com`, or the connection's `config.base_url`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::payloads::{
    AssociationRow, BatchResults, CrmObject, Owner, Page, Pipeline, PropertyDefinition, TokenInfo,
};
use crate::vendor::{RateBudget, Request, VendorClient, VendorError};

/// The CRM object types Pandora reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// Companies (→ accounts).
    Companies,
    /// Contacts.
    Contacts,
    /// Deals.
    Deals,
}

impl ObjectType {
    /// The path segment, also the stream name.
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Companies => "companies",
            ObjectType::Contacts => "contacts",
            ObjectType::Deals => "deals",
        }
    }

    /// The property that holds the last modification time (what search filters on).
    pub fn modification_property(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            ObjectType::Companies | ObjectType::Deals => "hs_lastmodifieddate",
        }
    }
}

/// What a list request asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    /// Properties to return.
    pub properties: &'a [String],
    /// Properties to return with their history (at most 50 records per page then).
    pub history: &'a [&'a str],
    /// Object types whose associated ids to return.
    pub associations: &'a [&'a str],
    /// Archived records instead of live ones.
    pub archived: bool,
    /// Page size.
    pub limit: u32,
    /// Where to start.
    pub after: Option<&'a str>,
}

/// HubSpot's API over a [`VendorClient`].
#[derive(Debug)]
pub struct HubSpotApi {
    client: VendorClient,
    search_budget: Arc<RateBudget>,
}

impl HubSpotApi {
    /// The API over `client`; search requests also spend `search_budget`.
    pub fn new(client: VendorClient, search_budget: Arc<RateBudget>) -> Self {
        HubSpotApi {
            client,
            search_budget,
        }
    }

    /// The client (its budget, for health).
    pub fn client(&self) -> &VendorClient {
        &self.client
    }

    /// `GET /crm/v3/owners`.
    pub async fn owners(
        &self,
        after: Option<&str>,
        archived: bool,
        limit: u32,
    ) -> Result<Page<Owner>, VendorError> {
        let mut r = Request::get("/crm/v3/owners")
            .query("limit", limit.to_string())
            .query("archived", archived.to_string());
        if let Some(a) = after {
            r = r.query("after", a);
        }
        self.client.send(&r).await
    }

    /// `GET /crm/v3/pipelines/deals`: every deal pipeline with its stages.
    pub async fn deal_pipelines(&self) -> Result<Vec<Pipeline>, VendorError> {
        let page: Page<Pipeline> = self
            .client
            .send(&Request::get("/crm/v3/pipelines/deals"))
            .await?;
        Ok(page.results)
    }

    /// `GET /crm/v3/properties/deals`: the deal property catalog (custom ones included).
    pub async fn deal_properties(&self) -> Result<Vec<PropertyDefinition>, VendorError> {
        let page: Page<PropertyDefinition> = self
            .client
            .send(&Request::get("/crm/v3/properties/deals"))
            .await?;
        Ok(page.results)
    }

    /// `GET /crm/v3/objects/{type}`: one page of the list, by `after`.
    pub async fn list(
        &self,
        object: ObjectType,
        q: &ListQuery<'_>,
    ) -> Result<Page<CrmObject>, VendorError> {
        let mut r = Request::get(format!("/crm/v3/objects/{}", object.name()))
            .query("limit", q.limit.to_string())
            .query("archived", q.archived.to_string());
        if !q.properties.is_empty() {
            r = r.query("properties", q.properties.join(","));
        }
        if !q.history.is_empty() {
            r = r.query("propertiesWithHistory", q.history.join(","));
        }
        if !q.associations.is_empty() {
            r = r.query("associations", q.associations.join(","));
        }
        if let Some(a) = q.after {
            r = r.query("after", a);
        }
        self.client.send(&r).await
    }

    /// `POST /crm/v3/objects/{type}/search`: records whose modification
    /// property is at or after `since`, oldest first.
    pub async fn search_modified_since(
        &self,
        object: ObjectType,
        since: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
        properties: &[String],
    ) -> Result<Page<CrmObject>, VendorError> {
        let property = object.modification_property();
        let mut body = json!({
            "filterGroups": [{"filters": [{
                "propertyName": property,
                "operator": "GTE",
                "value": since.timestamp_millis().to_string(),
            }]}],
            "sorts": [{"propertyName": property, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": limit,
        });
        if let Some(a) = after {
            body["after"] = json!(a);
        }
        let r = Request::post(format!("/crm/v3/objects/{}/search", object.name()))
            .json(body)
            .budget(self.search_budget.clone());
        self.client.send(&r).await
    }

    /// `POST /crm/v3/objects/{type}/batch/read` (at most 50 ids with history).
    pub async fn batch_read(
        &self,
        object: ObjectType,
        ids: &[String],
        properties: &[String],
        history: &[&str],
    ) -> Result<Vec<CrmObject>, VendorError> {
        let inputs: Vec<_> = ids.iter().map(|id| json!({"id": id})).collect();
        let r = Request::post(format!("/crm/v3/objects/{}/batch/read", object.name())).json(
            json!({"inputs": inputs, "properties": properties, "propertiesWithHistory": history}),
        );
        let answer: BatchResults<CrmObject> = self.client.send(&r).await?;
        Ok(answer.results)
    }

    /// `POST /crm/v4/associations/{from}/{to}/batch/read`.
    pub async fn associations(
        &self,
        from: ObjectType,
        to: ObjectType,
        ids: &[String],
    ) -> Result<Vec<AssociationRow>, VendorError> {
        let inputs: Vec<_> = ids.iter().map(|id| json!({"id": id})).collect();
        let r = Request::post(format!(
            "/crm/v4/associations/{}/{}/batch/read",
            from.name(),
            to.name()
        ))
        .json(json!({"inputs": inputs}));
        let answer: BatchResults<AssociationRow> = self.client.send(&r).await?;
        Ok(answer.results)
    }

    /// The granted scopes of the token in use: private-app tokens (`pat-…`)
    /// through `POST /oauth/v2/private-apps/get/access-token-info`, OAuth
    /// tokens through `GET /oauth/v1/access-tokens/{token}` (logged without the token).
    pub async fn token_info(&self) -> Result<TokenInfo, VendorError> {
        let Some(auth) = self.client.auth() else {
            return Err(VendorError::Config {
                vendor: super::SOURCE,
                message: "no access token".into(),
            });
        };
        let token = auth.token().await.map_err(|source| VendorError::Token {
            vendor: super::SOURCE,
            endpoint: "token info".into(),
            source,
        })?;
        let r = if token.expose().starts_with("pat-") {
            Request::post("/oauth/v2/private-apps/get/access-token-info")
                .json(json!({"tokenKey": token.expose()}))
        } else {
            Request::get(format!("/oauth/v1/access-tokens/{}", token.expose()))
                .label("GET /oauth/v1/access-tokens/[token]")
        };
        self.client.send(&r).await
    }
}
