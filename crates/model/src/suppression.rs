//! Suppressions: who must not be mailed, why, and on whose word.

use serde::Serialize;

use crate::{Email, GroupId, SuppressionId, TenantId, Timestamp};

/// Where a suppression applies: to all of a tenant's mail, or to one group
/// (a v3 suppression group, a Postmark message stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Scope {
    Global,
    Group(GroupId),
}

/// Bounce classes, as v3's `bounce_type` names them (docs/api/v3.md,
/// `POST /v3/suppression/bounces`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum BounceClass {
    Hard,
    Soft,
    Block,
}

impl BounceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Block => "block",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "hard" => Some(Self::Hard),
            "soft" => Some(Self::Soft),
            "block" => Some(Self::Block),
            _ => None,
        }
    }
}

/// Why an address is suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Kind {
    Bounce {
        class: BounceClass,
        /// RFC 3463 enhanced status code, e.g. `5.1.1`.
        status: Option<String>,
        /// The remote MTA's reply text, free-form.
        reason: Option<String>,
    },
    Invalid {
        reason: Option<String>,
    },
    SpamComplaint {
        /// Where the complaint came from, e.g. `feedback_loop`.
        source: Option<String>,
    },
    Unsubscribe,
    Manual,
}

/// The one rule for text on every backend: no NUL character. PostgreSQL's
/// `text` cannot hold one, so hush refuses it at every API's edge (a 400
/// naming the field, as the providers refuse it) rather than let SQLite
/// store what PostgreSQL and `hush copy` then cannot.
pub fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

impl Kind {
    /// The kind with any NUL removed from its texts, and whether there was
    /// one: for data stored before the rule (`hush copy` cleans it).
    pub fn without_nul(self) -> (Self, bool) {
        let mut cleaned = false;
        let mut clean = |text: Option<String>| {
            text.map(|t| {
                if has_nul(&t) {
                    cleaned = true;
                    t.replace('\0', "")
                } else {
                    t
                }
            })
        };
        let kind = match self {
            Self::Bounce {
                class,
                status,
                reason,
            } => Self::Bounce {
                class,
                status: clean(status),
                reason: clean(reason),
            },
            Self::Invalid { reason } => Self::Invalid {
                reason: clean(reason),
            },
            Self::SpamComplaint { source } => Self::SpamComplaint {
                source: clean(source),
            },
            other => other,
        };
        (kind, cleaned)
    }

    pub fn family(&self) -> KindFamily {
        match self {
            Self::Bounce { .. } => KindFamily::Bounce,
            Self::Invalid { .. } => KindFamily::Invalid,
            Self::SpamComplaint { .. } => KindFamily::Spam,
            Self::Unsubscribe => KindFamily::Unsubscribe,
            Self::Manual => KindFamily::Manual,
        }
    }

    /// The narrowest selector this kind falls under.
    pub fn selector(&self) -> KindSet {
        match self {
            Self::Bounce { class, .. } => KindSet::bounce_class(*class),
            other => KindSet::family(other.family()),
        }
    }

    /// A hard bounce with no details.
    pub fn hard_bounce() -> Self {
        Self::Bounce {
            class: BounceClass::Hard,
            status: None,
            reason: None,
        }
    }
}

/// Kinds that share an identity: adding a soft bounce for an address that
/// already has a hard bounce in the same scope is the same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum KindFamily {
    Bounce,
    Invalid,
    Spam,
    Unsubscribe,
    Manual,
}

impl KindFamily {
    pub const ALL: [Self; 5] = [
        Self::Bounce,
        Self::Invalid,
        Self::Spam,
        Self::Unsubscribe,
        Self::Manual,
    ];

    /// A stable small number for storage.
    pub fn code(self) -> i64 {
        match self {
            Self::Bounce => 0,
            Self::Invalid => 1,
            Self::Spam => 2,
            Self::Unsubscribe => 3,
            Self::Manual => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }
}

/// A set of kinds to select, finer than families because v3's `sendgrid`
/// shape lists hard and soft bounces apart from blocks (docs/mapping.md,
/// docs/api/v3.md, "The `sendgrid` shape").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KindSet(u8);

impl KindSet {
    const HARD: u8 = 1;
    const SOFT: u8 = 1 << 1;
    const BLOCK: u8 = 1 << 2;
    const INVALID: u8 = 1 << 3;
    const SPAM: u8 = 1 << 4;
    const UNSUBSCRIBE: u8 = 1 << 5;
    const MANUAL: u8 = 1 << 6;

    pub const ALL: Self = Self(0x7f);
    pub const NONE: Self = Self(0);

    pub fn family(family: KindFamily) -> Self {
        Self(match family {
            KindFamily::Bounce => Self::HARD | Self::SOFT | Self::BLOCK,
            KindFamily::Invalid => Self::INVALID,
            KindFamily::Spam => Self::SPAM,
            KindFamily::Unsubscribe => Self::UNSUBSCRIBE,
            KindFamily::Manual => Self::MANUAL,
        })
    }

    pub fn bounce_class(class: BounceClass) -> Self {
        Self(match class {
            BounceClass::Hard => Self::HARD,
            BounceClass::Soft => Self::SOFT,
            BounceClass::Block => Self::BLOCK,
        })
    }

    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn contains(self, kind: &Kind) -> bool {
        self.0 & kind.selector().0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every kind of the family is selected.
    pub fn covers_family(self, family: KindFamily) -> bool {
        let all = Self::family(family).0;
        self.0 & all == all
    }

    /// Whether any kind of the family is selected.
    pub fn touches_family(self, family: KindFamily) -> bool {
        self.0 & Self::family(family).0 != 0
    }

    /// The bounce classes selected, for stores that filter on them.
    pub fn bounce_classes(self) -> impl Iterator<Item = BounceClass> {
        [BounceClass::Hard, BounceClass::Soft, BounceClass::Block]
            .into_iter()
            .filter(move |c| self.0 & Self::bounce_class(*c).0 != 0)
    }
}

/// Who caused a suppression. Postmark's delete rules turn on it
/// (docs/mapping.md, "Deletes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Origin {
    /// The address's owner or their mailbox: a bounce, a complaint, an
    /// unsubscribe link.
    Recipient,
    /// The tenant, through an API call.
    Customer,
    /// The gateway's operator, through the CLI.
    Admin,
}

impl Origin {
    pub fn code(self) -> i64 {
        match self {
            Self::Recipient => 0,
            Self::Customer => 1,
            Self::Admin => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        [Self::Recipient, Self::Customer, Self::Admin]
            .into_iter()
            .find(|o| o.code() == code)
    }
}

/// One stored suppression. Its identity is `(tenant, scope, email, kind
/// family)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub id: SuppressionId,
    pub tenant: TenantId,
    pub email: Email,
    pub scope: Scope,
    pub kind: Kind,
    pub origin: Origin,
    pub created_at: Timestamp,
}

/// A suppression to add. The store assigns the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuppression {
    pub email: Email,
    pub scope: Scope,
    pub kind: Kind,
    pub origin: Origin,
    pub created_at: Timestamp,
}

impl NewSuppression {
    pub fn identity(&self) -> (&Email, Scope, KindFamily) {
        (&self.email, self.scope, self.kind.family())
    }
}
