//! API keys: which tenant a presented token belongs to, and what it may do.
//!
//! Each API crate keeps a [`KeyTable`] of its own keys, so a key for one API
//! is never accepted by another (docs/configuration.md,
//! `tenants[].keys[].api`).

use std::collections::HashMap;
use std::fmt;

use hush_model::TenantId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do. v3 names them `suppressions.read` and
/// `suppressions.write` (docs/api/v3.md, "Authentication").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Write,
}

impl Permission {
    pub fn scope_name(self) -> &'static str {
        match self {
            Self::Read => "suppressions.read",
            Self::Write => "suppressions.write",
        }
    }

    pub fn parse_scope(raw: &str) -> Option<Self> {
        [Self::Read, Self::Write]
            .into_iter()
            .find(|p| p.scope_name() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    read: bool,
    write: bool,
}

impl Permissions {
    pub const ALL: Self = Self {
        read: true,
        write: true,
    };

    pub fn from_list(list: &[Permission]) -> Self {
        Self {
            read: list.contains(&Permission::Read),
            write: list.contains(&Permission::Write),
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => self.read,
            Permission::Write => self.write,
        }
    }
}

/// The SHA-256 digest of a token. Keys are held only as digests, so a clear
/// token in config never stays in memory longer than start-up, and a key may
/// be configured by its digest alone.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether two digests are equal, in constant time.
    pub fn matches(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }

    /// From 64 hex digits.
    pub fn from_hex(hex_digits: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print even a digest in full: logs are not a key store.
        write!(f, "TokenDigest({}…)", hex::encode(&self.0[..4]))
    }
}

/// One key: whose it is and what it may do, plus what the API crate keeps
/// per key (`profile`, e.g. the v3 wire shape).
#[derive(Debug, Clone)]
pub struct ApiKey<P> {
    pub tenant: TenantId,
    /// The key's configured name, for the journal and logs.
    pub name: std::sync::Arc<str>,
    pub permissions: Permissions,
    pub profile: P,
}

/// The keys of one API.
#[derive(Debug, Clone)]
pub struct KeyTable<P> {
    keys: HashMap<TokenDigest, ApiKey<P>>,
}

impl<P> Default for KeyTable<P> {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
        }
    }
}

impl<P> ApiKey<P> {
    /// Who a change made with this key is journaled as: `door`, the key's
    /// name, and the id of the request being served.
    pub fn actor(&self, door: hush_model::Door) -> hush_model::Actor {
        let actor = hush_model::Actor::new(door).with_key(&*self.name);
        match crate::request::current_id() {
            Some(id) => actor.with_request_id(&*id),
            None => actor,
        }
    }
}

impl<P> KeyTable<P> {
    /// Adds a key; false if a key with the same digest is already there.
    pub fn insert(&mut self, digest: TokenDigest, key: ApiKey<P>) -> bool {
        if self.keys.contains_key(&digest) {
            return false;
        }
        self.keys.insert(digest, key);
        true
    }

    /// The key a presented token belongs to. The token is hashed first, so
    /// the map lookup's timing depends only on the digest, never on how many
    /// leading characters of a real key the caller guessed; the final
    /// comparison is constant-time as well.
    pub fn resolve(&self, presented: &str) -> Option<&ApiKey<P>> {
        let digest = TokenDigest::of(presented);
        self.keys
            .get_key_value(&digest)
            .filter(|(stored, _)| bool::from(stored.0.ct_eq(&digest.0)))
            .map(|(_, key)| key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KeyTable<()> {
        let mut table = KeyTable::default();
        let tenant = TenantId::parse("demo").expect("tenant");
        assert!(table.insert(
            TokenDigest::of("secret-1"),
            ApiKey {
                tenant: tenant.clone(),
                name: "k#1".into(),
                permissions: Permissions::ALL,
                profile: (),
            },
        ));
        let digest = hex::encode(Sha256::digest(b"secret-2"));
        assert!(table.insert(
            TokenDigest::from_hex(&digest).expect("hex"),
            ApiKey {
                tenant,
                name: "k#2".into(),
                permissions: Permissions::from_list(&[Permission::Read]),
                profile: (),
            },
        ));
        table
    }

    #[test]
    fn resolves_clear_and_hashed_keys() {
        let table = table();
        let key = table.resolve("secret-1").expect("clear key");
        assert!(key.permissions.allows(Permission::Write));
        let key = table.resolve("secret-2").expect("hashed key");
        assert!(key.permissions.allows(Permission::Read));
        assert!(!key.permissions.allows(Permission::Write));
        assert!(table.resolve("secret-").is_none());
        assert!(table.resolve("").is_none());
    }

    #[test]
    fn rejects_duplicate_keys_and_bad_hex() {
        let mut table = table();
        let dup = ApiKey {
            tenant: TenantId::parse("other").expect("tenant"),
            name: "k#3".into(),
            permissions: Permissions::ALL,
            profile: (),
        };
        assert!(!table.insert(TokenDigest::of("secret-1"), dup));
        assert!(TokenDigest::from_hex("xyz").is_none());
        assert!(TokenDigest::from_hex(&"a".repeat(63)).is_none());
    }

    #[test]
    fn debug_never_shows_the_whole_digest() {
        let shown = format!("{:?}", TokenDigest::of("secret-1"));
        assert!(shown.len() < 30, "{shown}");
    }
}
