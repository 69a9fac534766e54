//! What every vendor connector shares: the HTTP client and its retry rules,
//! the rate budget, bearer-token handling and pagination helpers.
//!
//! A connector builds one [`VendorClient`] per sync (or check) from
//!
//! * a `reqwest::Client` (rustls; one per connector, reused across syncs),
//! * its [`VendorRules`] — the few things that differ between vendors: how an
//!   error body reads, what a 429 means, which response headers feed the
//!   [`RateBudget`],
//! * a [`RetryPolicy`] (429, 5xx and network errors only; `Retry-After`
//!   honoured exactly, otherwise exponential backoff with full jitter; an
//!   overall deadline per request),
//! * the connection's [`RateBudget`] (shared by every sync of the connection
//!   in the process), and
//! * a [`BearerAuth`]: the context's [`TokenSource`] when there is one (a 401
//!   refreshes once and retries), else the access token of the opened
//!   credentials.
//!
//! Every failure is a [`VendorError`] naming the vendor, the endpoint and the
//! reason, and never a token; it converts into [`pandora_core::Error`] by
//! meaning.
//!
//! [`TokenSource`]: pandora_core::connector::TokenSource

mod auth;
mod client;
mod error;
mod oauth;
mod paging;
mod rate;
mod retry;

pub(crate) use auth::stored_scopes;
pub use auth::BearerAuth;
pub use client::{default_error_details, Request, Throttle, VendorClient, VendorRules};
pub use error::VendorError;
pub(crate) use oauth::{health_detail, split_scopes, token_form};
pub use paging::CursorPager;
pub use rate::{BudgetSnapshot, RateBudget, RateWindow, WindowSnapshot};
pub use retry::{parse_retry_after, RetryPolicy};
