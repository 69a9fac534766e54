//! Who from the buyer's side a deal has engaged: conversations matched to
//! deals through their participants, shared by the single-thread alert and
//! deal risk.
//!
//! A conversation's **external participants** are those whose email domain
//! is not one of the workspace's own domains (the `internal_domains`
//! setting, else the domains of its users' emails); participants without an
//! email cannot be matched and are ignored. People are identified by their
//! email, compared without case. Each external participant reaches deals by
//! the first of these paths that gives any deal:
//!
//! 1. **role**: the participant's email is a contact's, and that contact has
//!    a role on deals open within ±`match_window_days` of the call;
//! 2. **account**: failing roles, the deals of the contact's account open
//!    within the window;
//! 3. **domain**: failing both, the deals open within the window of the one
//!    account whose contacts use the participant's email domain (a domain
//!    shared by several accounts matches none).
//!
//! In addition, **linked**: the deals the vendor linked the conversation to
//! count for every external participant, whatever the window. "Open within
//! the window" means the deal was created by the call + window and was open
//! at the window's start (or its creation, if later) or at its end (or the
//! as-of time, if earlier). Conversations without a start time are ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use pandora_core::model::{Contact, StageCategory};
use pandora_core::skill::{SkillContext, SkillDeal};

/// How a participant was matched to a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchPath {
    /// The vendor linked the conversation to the deal.
    Linked,
    /// The participant is a contact with a role on the deal.
    Role,
    /// The participant is a contact of the deal's account.
    Account,
    /// The participant's email domain is the deal's account's.
    Domain,
}

impl MatchPath {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchPath::Linked => "linked",
            MatchPath::Role => "role",
            MatchPath::Account => "account",
            MatchPath::Domain => "domain",
        }
    }
}

/// One external person attending one conversation matched to a deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The person: their email, lower-cased.
    pub email: String,
    /// Their name (the contact's, else the participant's, else the email).
    pub name: String,
    /// The contact's index in `ctx.contacts`, when the email is a contact's.
    pub contact: Option<usize>,
    /// When the conversation started.
    pub at: DateTime<Utc>,
    /// The conversation's index in `ctx.conversations`.
    pub conversation: usize,
    /// How the person was matched to the deal.
    pub path: MatchPath,
}

/// The conversations of a workspace matched to its deals.
#[derive(Debug, Clone)]
pub struct Engagement {
    /// The workspace's own email domains.
    pub internal_domains: Vec<String>,
    /// Each deal's touches (index into `ctx.deals`), oldest first.
    pub touches: BTreeMap<usize, Vec<Touch>>,
    /// Each deal's contact roles: (contact index, role), by contact index.
    pub roles: BTreeMap<usize, Vec<(usize, Option<String>)>>,
}

/// The domain of an email, lower-cased.
pub fn domain(email: &str) -> Option<String> {
    let (_, d) = email.trim().rsplit_once('@')?;
    let d = d.trim().to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// A contact's display name.
pub fn contact_name(c: &Contact) -> String {
    let parts: Vec<&str> = [&c.fields.first_name, &c.fields.last_name]
        .into_iter()
        .filter_map(|p| p.as_deref().map(str::trim).filter(|s| !s.is_empty()))
        .collect();
    if parts.is_empty() {
        c.fields
            .email
            .clone()
            .unwrap_or_else(|| c.fields.source_id.clone())
    } else {
        parts.join(" ")
    }
}

/// Whether a deal was open at some point within `[s - w, s + w]` (see the
/// module documentation).
fn open_near(deal: &SkillDeal, ctx: &SkillContext, s: DateTime<Utc>, w: Duration) -> bool {
    let (from, to) = (s - w, (s + w).min(ctx.as_of));
    if deal.created_at > s + w || deal.deleted_at.is_some_and(|d| d <= from) {
        return false;
    }
    let open_at =
        |t: DateTime<Utc>| deal.stage_category_at(t, &ctx.stages) == Some(StageCategory::Open);
    open_at(from.max(deal.created_at)) || (to >= deal.created_at && open_at(to))
}

/// Conversations processed per thread at least: below this, one thread.
const PARALLEL_MIN: usize = 4_096;

/// What matching reads, built once per [`Engagement::build`]. The maps are
/// only looked up, never iterated, so hash maps keep the output deterministic.
struct Matcher<'a> {
    ctx: &'a SkillContext,
    internal: HashSet<&'a str>,
    window: Duration,
    deal_by_key: HashMap<(&'a str, &'a str), usize>,
    deals_by_account: HashMap<(&'a str, &'a str), Vec<usize>>,
    contact_by_email: HashMap<String, usize>,
    /// Per domain: its one account, or `None` when contacts of several
    /// accounts use it.
    account_of_domain: HashMap<String, Option<(&'a str, &'a str)>>,
    deals_of_contact: HashMap<usize, Vec<usize>>,
}

impl Matcher<'_> {
    /// The touches of conversations `range` (index into `ctx.conversations`),
    /// as (deal, touch), in conversation order.
    fn touches(&self, range: std::ops::Range<usize>) -> Vec<(usize, Touch)> {
        let ctx = self.ctx;
        let mut out = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut linked: Vec<usize> = Vec::new();
        for ci in range {
            let conv = &ctx.conversations[ci];
            if conv.deleted_at.is_some() {
                continue;
            }
            let Some(s) = conv.fields.started_at else {
                continue;
            };
            linked.clear();
            linked.extend(
                conv.fields
                    .deal_refs
                    .iter()
                    .filter_map(|r| {
                        self.deal_by_key
                            .get(&(r.source.as_str(), r.source_id.as_str()))
                    })
                    .copied(),
            );
            seen.clear();
            for p in &conv.fields.participants {
                let Some(email) = p.email.as_deref().map(|e| e.trim().to_ascii_lowercase()) else {
                    continue;
                };
                let Some(dom) = domain(&email) else { continue };
                if self.internal.contains(dom.as_str()) || seen.contains(&email) {
                    continue;
                }
                seen.push(email.clone());
                let contact = self.contact_by_email.get(&email).copied();
                let near = |ds: &[usize], path: MatchPath| -> Vec<(usize, MatchPath)> {
                    ds.iter()
                        .copied()
                        .filter(|&d| open_near(&ctx.deals[d], ctx, s, self.window))
                        .map(|d| (d, path))
                        .collect()
                };
                let mut found: Vec<(usize, MatchPath)> = Vec::new();
                if let Some(c) = contact {
                    if let Some(ds) = self.deals_of_contact.get(&c) {
                        found = near(ds, MatchPath::Role);
                    }
                    if found.is_empty() {
                        let contact = &ctx.contacts[c];
                        if let Some(ds) =
                            contact.fields.account_source_id.as_deref().and_then(|a| {
                                self.deals_by_account.get(&(contact.source.as_str(), a))
                            })
                        {
                            found = near(ds, MatchPath::Account);
                        }
                    }
                }
                if found.is_empty() {
                    if let Some(Some(a)) = self.account_of_domain.get(&dom) {
                        if let Some(ds) = self.deals_by_account.get(a) {
                            found = near(ds, MatchPath::Domain);
                        }
                    }
                }
                if linked.is_empty() && found.is_empty() {
                    continue;
                }
                let name = contact
                    .map(|c| contact_name(&ctx.contacts[c]))
                    .or_else(|| p.name.clone().filter(|n| !n.trim().is_empty()))
                    .unwrap_or_else(|| email.clone());
                let matched = linked
                    .iter()
                    .map(|&d| (d, MatchPath::Linked))
                    .chain(found.into_iter().filter(|(d, _)| !linked.contains(d)));
                for (d, path) in matched {
                    out.push((
                        d,
                        Touch {
                            email: email.clone(),
                            name: name.clone(),
                            contact,
                            at: s,
                            conversation: ci,
                            path,
                        },
                    ));
                }
            }
        }
        out
    }
}

impl Engagement {
    /// Matches every conversation of `ctx` to its deals. `internal_domains`
    /// (lower-cased) overrides the users' email domains when not empty;
    /// `window_days` is the ± window of the role, account and domain paths.
    ///
    /// Large workspaces are matched on two threads (halves of the
    /// conversations); the result does not depend on it.
    pub fn build(ctx: &SkillContext, internal_domains: &[String], window_days: i64) -> Engagement {
        let internal: BTreeSet<String> = if internal_domains.is_empty() {
            ctx.users
                .iter()
                .filter_map(|u| u.fields.email.as_deref().and_then(domain))
                .collect()
        } else {
            internal_domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect()
        };

        let deal_by_key: HashMap<(&str, &str), usize> = ctx
            .deals
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.source.as_str(), d.source_id.as_str()), i))
            .collect();
        let mut deals_by_account: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, d) in ctx.deals.iter().enumerate() {
            if let Some(a) = d.account_source_id.as_deref() {
                deals_by_account
                    .entry((d.source.as_str(), a))
                    .or_default()
                    .push(i);
            }
        }
        let contact_by_key: HashMap<(&str, &str), usize> = ctx
            .contacts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.deleted_at.is_none())
            .map(|(i, c)| ((c.source.as_str(), c.fields.source_id.as_str()), i))
            .collect();
        let mut contact_by_email: HashMap<String, usize> = HashMap::new();
        let mut account_of_domain: HashMap<String, Option<(&str, &str)>> = HashMap::new();
        for (i, c) in ctx.contacts.iter().enumerate() {
            if c.deleted_at.is_some() {
                continue;
            }
            let Some(email) = c.fields.email.as_deref() else {
                continue;
            };
            contact_by_email
                .entry(email.trim().to_ascii_lowercase())
                .or_insert(i);
            if let (Some(dom), Some(a)) = (domain(email), c.fields.account_source_id.as_deref()) {
                let account = (c.source.as_str(), a);
                account_of_domain
                    .entry(dom)
                    .and_modify(|one| {
                        if *one != Some(account) {
                            *one = None;
                        }
                    })
                    .or_insert(Some(account));
            }
        }
        let mut roles: BTreeMap<usize, Vec<(usize, Option<String>)>> = BTreeMap::new();
        let mut deals_of_contact: HashMap<usize, Vec<usize>> = HashMap::new();
        for r in &ctx.deal_contacts {
            if r.deleted_at.is_some() {
                continue;
            }
            let deal = deal_by_key.get(&(r.source.as_str(), r.fields.deal_source_id.as_str()));
            let contact =
                contact_by_key.get(&(r.source.as_str(), r.fields.contact_source_id.as_str()));
            if let (Some(&d), Some(&c)) = (deal, contact) {
                roles.entry(d).or_default().push((c, r.fields.role.clone()));
                deals_of_contact.entry(c).or_default().push(d);
            }
        }
        for v in roles.values_mut() {
            v.sort();
            v.dedup();
        }
        for v in deals_of_contact.values_mut() {
            v.sort_unstable();
            v.dedup();
        }

        let matcher = Matcher {
            ctx,
            internal: internal.iter().map(String::as_str).collect(),
            window: Duration::days(window_days),
            deal_by_key,
            deals_by_account,
            contact_by_email,
            account_of_domain,
            deals_of_contact,
        };
        let n = ctx.conversations.len();
        let pieces: Vec<Vec<(usize, Touch)>> = if n < 2 * PARALLEL_MIN {
            vec![matcher.touches(0..n)]
        } else {
            let half = n / 2;
            std::thread::scope(|scope| {
                let first = scope.spawn(|| matcher.touches(0..half));
                let second = matcher.touches(half..n);
                let first = first
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                vec![first, second]
            })
        };
        let mut touches: BTreeMap<usize, Vec<Touch>> = BTreeMap::new();
        for (d, t) in pieces.into_iter().flatten() {
            touches.entry(d).or_default().push(t);
        }
        for v in touches.values_mut() {
            v.sort_by(|a, b| {
                a.at.cmp(&b.at)
                    .then_with(|| a.conversation.cmp(&b.conversation))
                    .then_with(|| a.email.cmp(&b.email))
            });
        }
        Engagement {
            internal_domains: internal.into_iter().collect(),
            touches,
            roles,
        }
    }

    /// Deal `deal`'s touches in `[from, to]`, oldest first.
    pub fn touches_in(
        &self,
        deal: usize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = &Touch> {
        self.touches
            .get(&deal)
            .into_iter()
            .flatten()
            .filter(move |t| from <= t.at && t.at <= to)
    }

    /// The distinct people of deal `deal` engaged in `[from, to]`, each with
    /// their latest touch then, by email.
    pub fn engaged(
        &self,
        deal: usize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BTreeMap<&str, &Touch> {
        let mut out: BTreeMap<&str, &Touch> = BTreeMap::new();
        for t in self.touches_in(deal, from, to) {
            out.insert(t.email.as_str(), t);
        }
        out
    }

    /// The roles held on deal `deal`, normalized (see [`role_key`]), sorted.
    pub fn roles_of(&self, deal: usize) -> BTreeSet<String> {
        self.roles
            .get(&deal)
            .into_iter()
            .flatten()
            .filter_map(|(_, r)| r.as_deref().map(role_key))
            .filter(|r| !r.is_empty())
            .collect()
    }
}

/// A role compared without case, spaces or punctuation: `"Economic Buyer"`,
/// `"economic-buyer"` and `"economic_buyer"` are all `economic_buyer`.
pub fn role_key(role: &str) -> String {
    let mut out = String::new();
    for c in role.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}
