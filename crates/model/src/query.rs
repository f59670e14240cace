//! What to list, and how much of it.

use crate::{Email, GroupId, KindSet, Origin, Scope, Suppression, SuppressionId, Timestamp};

/// Which scopes a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeFilter {
    Any,
    Global,
    Group(GroupId),
    /// A Postmark dump of stream S shows the tenant's global entries plus
    /// S's own (docs/mapping.md).
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
/// lowercase, like stored addresses, and made only through the
/// constructors, which bound them ([`MAX_FILTER_CHARS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailMatch {
    Exact(Email),
    /// v3 `email`: a prefix match (SendGrid's `EmailPartialMatch`).
    Prefix(String),
    /// SendPost `search`: a substring match (SendPost API reference,
    /// docs.sendpost.io/api-reference/suppression/get-all-suppressions).
    Contains(String),
    /// v3 `email` with SendGrid's `%` wildcard (its `EmailPartialMatch`):
    /// a prefix in which each `%` stands for any run of characters. Holds
    /// the parts between the `%`s, in order: the address starts with the
    /// first and contains the others after it, in order. Other characters,
    /// `_` included, are literal.
    Pattern(Vec<String>),
}

/// The longest filter text an API accepts, in characters: no address is
/// longer (RFC 5321 §4.5.3.1.3), so a longer needle matches nothing, and
/// the bound bounds the work of a match.
pub const MAX_FILTER_CHARS: usize = 254;
/// Most `%` wildcards in a SendGrid pattern: each one multiplies the work
/// of a LIKE match (SQLite backtracks per wildcard), and no real filter
/// needs more than a few.
pub const MAX_WILDCARDS: usize = 8;

/// Why a filter's text is unusable. Every API answers it with a 400 in its
/// own format, naming its parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter is {0} characters long; the limit is 254, the longest an address can be")]
    TooLong(usize),
    #[error("the filter contains the control character {0:?}, which no address can contain")]
    ControlChar(char),
    #[error("the filter has {0} '%' wildcards; the limit is 8")]
    TooManyWildcards(usize),
}

impl EmailMatch {
    /// A literal prefix: every character, `%` and `_` included, is itself.
    pub fn prefix(raw: &str) -> Result<Self, FilterError> {
        Ok(Self::Prefix(needle(raw.trim())?))
    }

    /// A literal substring, not trimmed (SendPost's `search` is a
    /// substring as sent, docs/mapping.md, "SendPost `search`").
    pub fn contains(raw: &str) -> Result<Self, FilterError> {
        Ok(Self::Contains(needle(raw)?))
    }

    /// A SendGrid `email` filter (its `EmailPartialMatch`): a prefix in
    /// which `%` stands for any run of characters, a plain prefix when it
    /// has none. A run of `%`s is one wildcard.
    pub fn pattern(raw: &str) -> Result<Self, FilterError> {
        let raw = needle(raw.trim())?;
        if !raw.contains('%') {
            return Ok(Self::Prefix(raw));
        }
        let mut parts: Vec<String> = Vec::new();
        for (at, part) in raw.split('%').enumerate() {
            // The first part is the prefix, even when empty; an empty part
            // after it is a doubled '%'.
            if at == 0 || !part.is_empty() {
                parts.push(part.to_owned());
            }
        }
        let wildcards = if raw.ends_with('%') {
            parts.len()
        } else {
            parts.len() - 1
        };
        if wildcards > MAX_WILDCARDS {
            return Err(FilterError::TooManyWildcards(wildcards));
        }
        Ok(Self::Pattern(parts))
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

/// A filter's text, lowercased, once it is known to be usable.
fn needle(raw: &str) -> Result<String, FilterError> {
    let length = raw.chars().count();
    if length > MAX_FILTER_CHARS {
        return Err(FilterError::TooLong(length));
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(FilterError::ControlChar(c));
    }
    Ok(raw.to_lowercase())
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
    /// unsubscribes, docs/api/v3.md) shows an address with both an
    /// Unsubscribe and a Manual entry once. Removals ignore it: removing an
    /// address removes every entry the rest of the filter matches.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn prefixes_and_substrings_are_literal() {
        let odd = email("100%_odd@x.com");
        let plain = email("1a0b@x.com");
        for needle in ["%", "_", "1_0", "%_"] {
            let prefix = EmailMatch::prefix(needle).unwrap_or_else(|e| panic!("{e}"));
            assert!(!prefix.matches(&plain), "{needle:?} is no wildcard");
            let contains = EmailMatch::contains(needle).unwrap_or_else(|e| panic!("{e}"));
            assert!(!contains.matches(&plain), "{needle:?} is no wildcard");
        }
        assert_eq!(
            EmailMatch::prefix("100%_"),
            Ok(EmailMatch::Prefix("100%_".into()))
        );
        assert!(EmailMatch::contains("%_o").is_ok_and(|m| m.matches(&odd)));
    }

    #[test]
    fn patterns_collapse_runs_and_are_bounded() {
        assert_eq!(
            EmailMatch::pattern("a%%%b%"),
            Ok(EmailMatch::Pattern(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            EmailMatch::pattern("%"),
            Ok(EmailMatch::Pattern(vec![String::new()]))
        );
        assert!(
            EmailMatch::pattern(&"%".repeat(5_000))
                .is_err_and(|e| e == FilterError::TooLong(5_000))
        );
        assert!(
            EmailMatch::pattern(&"%".repeat(200)).is_ok(),
            "one run is one wildcard"
        );
        assert_eq!(
            EmailMatch::pattern("a%b%c%d%e%f%g%h%i%j"),
            Err(FilterError::TooManyWildcards(9))
        );
        assert!(EmailMatch::pattern("a%b%c%d%e%f%g%h%i").is_ok());
    }

    #[test]
    fn unusable_text_is_refused() {
        assert_eq!(
            EmailMatch::contains("a\u{0}b"),
            Err(FilterError::ControlChar('\u{0}'))
        );
        assert_eq!(
            EmailMatch::prefix(&"a".repeat(255)),
            Err(FilterError::TooLong(255))
        );
        assert!(EmailMatch::prefix(&"a".repeat(254)).is_ok());
    }
}
