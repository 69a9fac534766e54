//! Following a vendor's "next page" cursor.

use std::collections::HashSet;

use super::VendorError;

/// Follows an opaque next-page cursor (HubSpot's `paging.next.after`, a
/// Salesforce `nextRecordsUrl`, a Drive `nextPageToken`) and stops a vendor
/// that hands out a cursor it already gave, which would loop forever.
///
/// ```
/// use pandora_connectors::vendor::CursorPager;
///
/// let mut pager = CursorPager::new("acme", "GET /items", None);
/// assert_eq!(pager.current(), None);
/// assert!(pager.advance(Some("p2".into()))?);
/// assert_eq!(pager.current(), Some("p2"));
/// assert!(pager.advance(Some("p2".into())).is_err(), "a repeated cursor is an error");
/// # Ok::<(), pandora_connectors::vendor::VendorError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CursorPager {
    vendor: &'static str,
    endpoint: String,
    next: Option<String>,
    seen: HashSet<String>,
    pages: u64,
}

impl CursorPager {
    /// A pager starting at `from` (`None`: the first page).
    pub fn new(vendor: &'static str, endpoint: impl Into<String>, from: Option<String>) -> Self {
        let mut seen = HashSet::new();
        if let Some(f) = &from {
            seen.insert(f.clone());
        }
        CursorPager {
            vendor,
            endpoint: endpoint.into(),
            next: from,
            seen,
            pages: 0,
        }
    }

    /// The cursor of the page to read now (`None`: the first page).
    pub fn current(&self) -> Option<&str> {
        self.next.as_deref()
    }

    /// Pages read so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Records the cursor the page just read gave; `true` when there is
    /// another page to read.
    pub fn advance(&mut self, next: Option<String>) -> Result<bool, VendorError> {
        self.pages += 1;
        match next.filter(|n| !n.is_empty()) {
            None => {
                self.next = None;
                Ok(false)
            }
            Some(n) => {
                if !self.seen.insert(n.clone()) {
                    return Err(VendorError::Malformed {
                        vendor: self.vendor,
                        endpoint: self.endpoint.clone(),
                        reason: format!("the vendor repeated the page cursor {n:?}"),
                    });
                }
                self.next = Some(n);
                Ok(true)
            }
        }
    }
}
