//! Mirrors: where pushing a tenant's journal out to a provider stands
//! (docs/mirrors.md). The store keeps it beside the data, so that a
//! restart resumes where the last push stopped.

use std::fmt;

use crate::{Position, Timestamp};

/// A mirror's configured name, unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MirrorName(String);

impl MirrorName {
    /// Longest name, in bytes: it is a key column and a URL segment.
    pub const MAX: usize = 64;

    /// A name of lowercase letters, digits, `-` and `_`, starting with a
    /// letter or digit.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && raw
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "the mirror name {raw:?} must be 1 to {} lowercase letters, digits, '-' or '_', starting with a letter or digit",
                Self::MAX
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MirrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a mirror stands: the last journal position it has dealt with
/// (pushed, refused, or skipped), and how the last attempts went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MirrorState {
    /// `None` until the first push: the mirror starts at the journal's
    /// beginning.
    pub position: Option<Position>,
    /// When a push last succeeded.
    pub last_success: Option<Timestamp>,
    /// The last temporary failure, cleared by the next success.
    pub last_error: Option<String>,
    /// Changes the provider refused, in all.
    pub failed: u64,
    /// Changes the provider cannot hold (a group on SendPost), in all.
    pub skipped: u64,
}

/// A change a provider refused for good (Postmark's `Failed` for deleting
/// a spam complaint): recorded, and the mirror moves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorFailure {
    /// The journal entry's position.
    pub position: Position,
    /// When the provider refused it.
    pub at: Timestamp,
    /// What it was, as `"<operation> <address or group key>"`.
    pub change: String,
    /// The provider's reason.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        assert!(MirrorName::parse("postmark-old").is_ok());
        assert!(MirrorName::parse("sp_2").is_ok());
        for bad in ["", "-x", "Upper", "a/b", "a b", &"x".repeat(65)] {
            assert!(MirrorName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
