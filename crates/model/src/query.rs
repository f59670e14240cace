//! What to list, and how much of it.

use crate::{Email, GroupId, KindSet, Origin, Scope, Suppression, SuppressionId, Timestamp};

/// Which scopes a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeFilter {
    Any,
    Global,
    Group(GroupId),
    /// A Postmark dump of stream S shows the tenant's global entries plus
    /// S's own (DESIGN.md mapping table).
    GlobalAndGroup(GroupId),
}

impl ScopeFilter {
    pub fn matches(self, scope: Scope) -> bool {
        match (self, scope) {
            (Self::Any, _) | (Self::Global | Self::GlobalAndGroup(_), Scope::Global) => true,
            (Self::Group(want) | Self::GlobalAndGroup(want), Scope::Group(got)) => want == got,
            (Self::Global, Scope::Group(_)) | (Self::Group(_), Scope::Global) => false,
        }
    }
}

/// How a listing matches addresses. Prefix and substring needles are
/// lowercase, like stored addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailMatch {
    Exact(Email),
    /// v3 `email` (specs/sendgrid-v3.md §2.1: a prefix match).
    Prefix(String),
    /// SendPost `search` (specs/sendpost.md §4.2: a substring match).
    Contains(String),
    /// v3 `email` with SendGrid's `%` wildcard (specs/sendgrid-v3.md §2.1):
    /// a prefix in which each `%` stands for any run of characters. Holds
    /// the parts between the `%`s, in order: the address starts with the
    /// first and contains the others after it, in order. Other characters,
    /// `_` included, are literal.
    Pattern(Vec<String>),
}

impl EmailMatch {
    pub fn prefix(raw: &str) -> Self {
        Self::Prefix(raw.trim().to_lowercase())
    }

    pub fn contains(raw: &str) -> Self {
        Self::Contains(raw.trim().to_lowercase())
    }

    /// A SendGrid `email` filter: a plain prefix unless it has a `%`.
    pub fn pattern(raw: &str) -> Self {
        let raw = raw.trim().to_lowercase();
        if raw.contains('%') {
            Self::Pattern(raw.split('%').map(str::to_owned).collect())
        } else {
            Self::Prefix(raw)
        }
    }

    pub fn matches(&self, email: &Email) -> bool {
        match self {
            Self::Exact(want) => want == email,
            Self::Prefix(prefix) => email.as_str().starts_with(prefix.as_str()),
            Self::Contains(needle) => email.as_str().contains(needle.as_str()),
            Self::Pattern(parts) => {
                let Some((first, rest)) = parts.split_first() else {
                    return true;
                };
                let Some(mut tail) = email.as_str().strip_prefix(first.as_str()) else {
                    return false;
                };
                // Taking each part at its first place leaves the most room
                // for the ones after it.
                for part in rest {
                    match tail.find(part.as_str()) {
                        Some(at) => tail = &tail[at + part.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// A listing's filter. Every listing is ordered newest first: by
/// `created_at` descending, then `id` descending, so offset paging is
/// stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub kinds: KindSet,
    pub scope: ScopeFilter,
    pub email: Option<EmailMatch>,
    pub origin: Option<Origin>,
    /// Inclusive.
    pub created_from: Option<Timestamp>,
    /// Inclusive.
    pub created_to: Option<Timestamp>,
    /// One row per address: of the entries that match, only the newest of
    /// each `(scope, email)` is listed, scanned and counted, so paging and
    /// totals count addresses. A list of addresses (v3's global and group
    /// unsubscribes, seed 001) shows an address with both an Unsubscribe and
    /// a Manual entry once. Removals ignore it: removing an address removes
    /// every entry the rest of the filter matches.
    pub per_address: bool,
}

impl ListFilter {
    pub fn new(kinds: KindSet, scope: ScopeFilter) -> Self {
        Self {
            kinds,
            scope,
            email: None,
            origin: None,
            created_from: None,
            created_to: None,
            per_address: false,
        }
    }

    /// The same filter, one row per address and scope.
    #[must_use]
    pub fn one_per_address(mut self) -> Self {
        self.per_address = true;
        self
    }

    /// Applies [`Self::per_address`] to matching entries given newest first:
    /// keeps the first (newest) entry of each `(scope, email)`. For
    /// backends that filter in memory; unchanged when the flag is off.
    pub fn collapse(&self, newest_first: Vec<Suppression>) -> Vec<Suppression> {
        if !self.per_address {
            return newest_first;
        }
        let mut seen = std::collections::HashSet::new();
        newest_first
            .into_iter()
            .filter(|s| seen.insert((s.scope, s.email.clone())))
            .collect()
    }

    pub fn matches(&self, suppression: &Suppression) -> bool {
        self.kinds.contains(&suppression.kind)
            && self.scope.matches(suppression.scope)
            && self
                .email
                .as_ref()
                .is_none_or(|m| m.matches(&suppression.email))
            && self.origin.is_none_or(|o| o == suppression.origin)
            && self
                .created_from
                .is_none_or(|t| suppression.created_at >= t)
            && self.created_to.is_none_or(|t| suppression.created_at <= t)
    }
}

/// Offset paging, as v3 and SendPost expose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub offset: u64,
}

/// One page of a listing and the number of entries the filter matches in
/// all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// A position in the newest-first order, for walking a listing of any size
/// without offsets (keyset paging): the next batch starts strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    pub created_at: Timestamp,
    pub id: SuppressionId,
}

impl ScanCursor {
    pub fn after(suppression: &Suppression) -> Self {
        Self {
            created_at: suppression.created_at,
            id: suppression.id,
        }
    }

    /// Whether the cursor comes before the suppression in newest-first order,
    /// that is, whether a scan from the cursor yields it.
    pub fn is_before(&self, suppression: &Suppression) -> bool {
        (suppression.created_at, suppression.id) < (self.created_at, self.id)
    }
}
