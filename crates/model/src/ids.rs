//! Identifiers: tenants, groups and suppressions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant: one customer of the gateway, with its own keys and its own data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is {0} characters long; the limit is 64")]
    TooLong(usize),
    #[error(
        "tenant id {0:?} may contain only lowercase letters, digits, '-' and '_', and must start with a letter or digit"
    )]
    Syntax(String),
}

impl TenantId {
    /// Tenant ids appear in logs, database rows and `on-behalf-of` headers,
    /// so they are kept to a plain, case-stable alphabet.
    pub fn parse(raw: &str) -> Result<Self, TenantIdError> {
        if raw.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if raw.len() > 64 {
            return Err(TenantIdError::TooLong(raw.len()));
        }
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !(first_ok && rest_ok) {
            return Err(TenantIdError::Syntax(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The store-assigned number of a group. v3 shows it as the suppression
/// group's `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub i64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The store-assigned, increasing number of a suppression. SendPost shows it
/// as `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SuppressionId(pub i64);

/// The textual key of a group. Postmark shows it as the message stream `ID`,
/// so it follows Postmark's rules (its API docs' error codes 1227, 1233 and
/// 1237): lowercase `[a-z][a-z0-9_-]*`, at most 30 characters, no `pm-`
/// prefix, not `all`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GroupKey(String);

pub const GROUP_KEY_MAX: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupKeyError {
    #[error("a group key must not be empty")]
    Empty,
    #[error("the group key {0:?} is longer than 30 characters")]
    TooLong(String),
    #[error(
        "the group key {0:?} must start with a lowercase letter and contain only lowercase letters, digits, '-' and '_'"
    )]
    Syntax(String),
    #[error("the group key {0:?} must not start with 'pm-'")]
    ReservedPrefix(String),
    #[error("the group key 'all' is reserved")]
    Reserved,
}

impl GroupKey {
    pub fn parse(raw: &str) -> Result<Self, GroupKeyError> {
        if raw.is_empty() {
            return Err(GroupKeyError::Empty);
        }
        if raw.chars().count() > GROUP_KEY_MAX {
            return Err(GroupKeyError::TooLong(raw.to_owned()));
        }
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !(first_ok && rest_ok) {
            return Err(GroupKeyError::Syntax(raw.to_owned()));
        }
        if raw.starts_with("pm-") {
            return Err(GroupKeyError::ReservedPrefix(raw.to_owned()));
        }
        if raw == "all" {
            return Err(GroupKeyError::Reserved);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Derives a key from a group's display name, for groups made through an
    /// API that has no key of its own (v3): "Weekly News!" becomes
    /// `weekly-news`. The result is always a valid key; uniqueness is the
    /// caller's concern (see [`GroupKey::with_suffix`]).
    pub fn from_name(name: &str) -> Self {
        let mut slug = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let mut slug: String = slug
            .trim_start_matches(|c: char| !c.is_ascii_lowercase())
            .chars()
            .take(GROUP_KEY_MAX)
            .collect();
        while slug.ends_with('-') {
            slug.pop();
        }
        if slug.is_empty() || slug == "all" || slug.starts_with("pm-") {
            slug = format!("group-{slug}");
            slug.truncate(GROUP_KEY_MAX);
            while slug.ends_with('-') {
                slug.pop();
            }
        }
        Self(slug)
    }

    /// `news` with suffix 2 is `news-2`, shortened so the whole stays within
    /// the length limit.
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let mut base = self.0.clone();
        base.truncate(GROUP_KEY_MAX - suffix.len());
        while base.ends_with('-') {
            base.pop();
        }
        Self(format!("{base}{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tenant_ids() {
        assert!(TenantId::parse("demo").is_ok());
        assert!(TenantId::parse("acme_eu-2").is_ok());
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Empty));
        assert!(matches!(
            TenantId::parse("Demo"),
            Err(TenantIdError::Syntax(_))
        ));
        assert!(matches!(
            TenantId::parse("-x"),
            Err(TenantIdError::Syntax(_))
        ));
    }

    #[test]
    fn group_keys_follow_postmark_rules() {
        assert!(GroupKey::parse("outbound").is_ok());
        assert!(GroupKey::parse("transactional-dev").is_ok());
        assert!(matches!(
            GroupKey::parse("1abc"),
            Err(GroupKeyError::Syntax(_))
        ));
        assert!(matches!(
            GroupKey::parse("Abc"),
            Err(GroupKeyError::Syntax(_))
        ));
        assert!(matches!(
            GroupKey::parse("pm-x"),
            Err(GroupKeyError::ReservedPrefix(_))
        ));
        assert_eq!(GroupKey::parse("all"), Err(GroupKeyError::Reserved));
        assert!(matches!(
            GroupKey::parse(&"a".repeat(31)),
            Err(GroupKeyError::TooLong(_))
        ));
    }

    #[test]
    fn keys_from_names() {
        assert_eq!(GroupKey::from_name("Weekly News!").as_str(), "weekly-news");
        assert_eq!(GroupKey::from_name("2024 Promos").as_str(), "promos");
        assert_eq!(GroupKey::from_name("!!!").as_str(), "group");
        assert_eq!(GroupKey::from_name("All").as_str(), "group-all");
        assert_eq!(
            GroupKey::from_name("news").with_suffix(2).as_str(),
            "news-2"
        );
    }

    proptest! {
        #[test]
        fn derived_keys_are_always_valid(name in "\\PC{0,120}", n in 2u32..10_000) {
            let key = GroupKey::from_name(&name);
            prop_assert_eq!(GroupKey::parse(key.as_str()), Ok(key.clone()));
            let suffixed = key.with_suffix(n);
            prop_assert_eq!(GroupKey::parse(suffixed.as_str()), Ok(suffixed.clone()));
        }
    }
}
