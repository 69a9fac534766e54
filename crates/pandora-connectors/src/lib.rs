//! # pandora-connectors
//!
//! Pandora's connectors: one folder per source under `src/<vendor>/`.
//!
//! * [`hubspot`] — HubSpot's CRM: owners, companies, contacts, deal
//!   pipelines, deals with their contacts and field history (OAuth 2.0 or a
//!   private-app token).
//! * [`salesforce`] — Salesforce's REST API (SOQL): users with their
//!   managers, accounts, contacts, the opportunity stage picklist,
//!   opportunities with their field history, and contact roles (OAuth 2.0
//!   with PKCE).
//! * [`sample`] — a deterministic, realistic GTM dataset (reps, accounts,
//!   contacts, a pipeline, deals with field history, deal–contact roles and
//!   calls) at any size from 100 to 1,000,000 deals, evolving one simulated
//!   day per incremental sync. The demo and benchmark source; it needs no
//!   credentials.
//!
//! What all vendors share — the HTTP client with its retry rules, the rate
//! budget, bearer tokens, paging — is [`vendor`].

pub mod hubspot;
pub mod salesforce;
pub mod sample;
pub mod vendor;

use pandora_core::connector::ConnectorRegistry;

/// The vendor hosts a deployment talks to (each [`Default`] is the
/// vendor's own); a server fills them from `HUBSPOT_OAUTH_BASE_URL`,
/// `HUBSPOT_API_BASE_URL`, `SALESFORCE_LOGIN_URL`, … so that a sandbox or a
/// local simulator can stand in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VendorHosts {
    /// HubSpot's hosts.
    pub hubspot: hubspot::HubSpotHosts,
    /// Salesforce's login host (its API hosts are per connection).
    pub salesforce: salesforce::SalesforceHosts,
}

impl VendorHosts {
    /// With these HubSpot hosts.
    pub fn with_hubspot(mut self, hosts: hubspot::HubSpotHosts) -> Self {
        self.hubspot = hosts;
        self
    }

    /// With this Salesforce login host.
    pub fn with_salesforce(mut self, hosts: salesforce::SalesforceHosts) -> Self {
        self.salesforce = hosts;
        self
    }
}

/// Every connector this crate provides, against the vendors' own hosts, ready for
/// [`PandoraBuilder::connectors`](pandora_core::PandoraBuilder::connectors).
pub fn all() -> ConnectorRegistry {
    all_with(VendorHosts::default())
}

/// Every connector this crate provides, against `hosts`.
pub fn all_with(hosts: VendorHosts) -> ConnectorRegistry {
    ConnectorRegistry::new()
        .with(sample::SampleConnector)
        .with(hubspot::HubSpotConnector::new(hosts.hubspot))
        .with(salesforce::SalesforceConnector::new(hosts.salesforce))
}
