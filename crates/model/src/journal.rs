//! The journal: one entry for every committed change to a suppression or a
//! group, written in the change's own transaction, so that an operator can
//! see who changed an address and undo it (docs/operations.md, "History
//! and restore").

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    BounceClass, Email, Group, GroupId, GroupKey, Kind, Origin, Scope, StreamType, Suppression,
    SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};

/// Where an entry stands in the journal. Positions increase in commit order
/// within a tenant: a reader that has read a tenant's entries up to P never
/// later finds one of its committed entries below P.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Position(pub i64);

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Operation {
    Added,
    Removed,
    GroupCreated,
    GroupChanged,
    GroupDeleted,
}

impl Operation {
    pub const ALL: [Self; 5] = [
        Self::Added,
        Self::Removed,
        Self::GroupCreated,
        Self::GroupChanged,
        Self::GroupDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::GroupCreated => "group_created",
            Self::GroupChanged => "group_changed",
            Self::GroupDeleted => "group_deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == raw)
    }
}

/// The way a change came in: an API, a webhook, or an operator's tool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Door(Cow<'static, str>);

impl Door {
    pub const V3: Self = Self(Cow::Borrowed("v3"));
    pub const POSTMARK: Self = Self(Cow::Borrowed("postmark"));
    pub const SENDPOST: Self = Self(Cow::Borrowed("sendpost"));
    /// A CSV import (`hush import`, v3's CSV upload).
    pub const IMPORT: Self = Self(Cow::Borrowed("import"));
    /// `hush copy` writing into the store it copies to.
    pub const COPY: Self = Self(Cow::Borrowed("copy"));
    /// The admin API or CLI changing an entry directly.
    pub const ADMIN: Self = Self(Cow::Borrowed("admin"));
    /// A restore undoing earlier changes.
    pub const RESTORE: Self = Self(Cow::Borrowed("restore"));
    /// hush itself: the default stream every tenant is given at start-up.
    pub const SYSTEM: Self = Self(Cow::Borrowed("system"));
    /// A mirror pushing to its provider (docs/mirrors.md): the actor of
    /// its calls, which the provider's client does not journal.
    pub const MIRROR: Self = Self(Cow::Borrowed("mirror"));

    /// Events a provider posted to a webhook: `webhook:<provider>`.
    pub fn webhook(provider: &str) -> Self {
        Self(Cow::Owned(format!("webhook:{provider}")))
    }

    /// A door as stored; any text is kept, so entries written by a newer
    /// build still read.
    pub fn from_stored(raw: &str) -> Self {
        Self(Cow::Owned(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who made a change: the door, the configured name of the key (never its
/// secret), the request id, and for a provider's event its event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub door: Door,
    pub key: Option<String>,
    pub request_id: Option<String>,
    pub event_id: Option<String>,
}

impl Actor {
    pub fn new(door: Door) -> Self {
        Self {
            door,
            key: None,
            request_id: None,
            event_id: None,
        }
    }

    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    #[must_use]
    pub fn with_event_id(mut self, id: impl Into<String>) -> Self {
        self.event_id = Some(id.into());
        self
    }
}

/// What an entry recorded, whole, so that a restore can put it back
/// exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The suppression added, or the one removed as it was.
    Suppression(Suppression),
    /// The group created or deleted as it was; for a change, the group after
    /// it and `before` as it was.
    Group { group: Group, before: Option<Group> },
}

impl Recorded {
    pub fn email(&self) -> Option<&Email> {
        match self {
            Self::Suppression(s) => Some(&s.email),
            Self::Group { .. } => None,
        }
    }

    /// The suppression's id (none for a group's entry): the stores find an
    /// address's `added` entries by it, since the ids a store hands out
    /// increase and such an index only ever grows at its end.
    pub fn suppression_id(&self) -> Option<SuppressionId> {
        match self {
            Self::Suppression(s) => Some(s.id),
            Self::Group { .. } => None,
        }
    }
}

/// One change on the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub position: Position,
    pub tenant: TenantId,
    pub at: Timestamp,
    pub operation: Operation,
    pub actor: Actor,
    pub record: Recorded,
}

/// A change for a store to journal: what it did and to what. The store
/// gives it its position and time when it commits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub operation: Operation,
    pub record: Recorded,
}

impl Change {
    pub fn added(s: Suppression) -> Self {
        Self {
            operation: Operation::Added,
            record: Recorded::Suppression(s),
        }
    }

    pub fn removed(s: Suppression) -> Self {
        Self {
            operation: Operation::Removed,
            record: Recorded::Suppression(s),
        }
    }

    pub fn group(operation: Operation, group: Group, before: Option<Group>) -> Self {
        Self {
            operation,
            record: Recorded::Group { group, before },
        }
    }

    /// The entry this change becomes.
    pub fn entry(self, position: Position, at: Timestamp, actor: &Actor) -> JournalEntry {
        let tenant = match &self.record {
            Recorded::Suppression(s) => s.tenant.clone(),
            Recorded::Group { group, .. } => group.tenant.clone(),
        };
        JournalEntry {
            position,
            tenant,
            at,
            operation: self.operation,
            actor: actor.clone(),
            record: self.record,
        }
    }
}

/// Which way a journal read walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JournalOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A read of one tenant's journal. Every filter is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalQuery {
    pub email: Option<Email>,
    /// Entries at or after this time.
    pub since: Option<Timestamp>,
    /// Entries at or before this time.
    pub until: Option<Timestamp>,
    pub door: Option<String>,
    /// Entries strictly past this position, in the order walked.
    pub cursor: Option<Position>,
    pub order: JournalOrder,
    pub limit: u32,
}

impl JournalQuery {
    pub fn newest_first(limit: u32) -> Self {
        Self {
            email: None,
            since: None,
            until: None,
            door: None,
            cursor: None,
            order: JournalOrder::NewestFirst,
            limit,
        }
    }

    /// Whether an entry passes every filter but the cursor and the limit:
    /// what stores that cannot filter in a query (memory) apply.
    pub fn admits(&self, entry: &JournalEntry) -> bool {
        self.email
            .as_ref()
            .is_none_or(|e| entry.record.email() == Some(e))
            && self.since.is_none_or(|t| entry.at >= t)
            && self.until.is_none_or(|t| entry.at <= t)
            && self
                .door
                .as_deref()
                .is_none_or(|d| entry.actor.door.as_str() == d)
            && self.cursor.is_none_or(|c| match self.order {
                JournalOrder::NewestFirst => entry.position < c,
                JournalOrder::OldestFirst => entry.position > c,
            })
    }
}

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("journal record does not read: {0}")]
pub struct RecordError(String);

fn bad(what: impl fmt::Display) -> RecordError {
    RecordError(what.to_string())
}

/// A suppression as a journal row stores it (JSON). Field names are short:
/// a bulk delete writes one per removed address.
#[derive(Serialize, Deserialize)]
struct StoredSuppression {
    id: i64,
    email: String,
    /// 0 for global, else the group's id.
    g: i64,
    /// `KindFamily` name plus class: `hard`, `soft`, `block`, `invalid`,
    /// `spam`, `unsubscribe`, `manual`.
    k: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    source: Option<String>,
    o: i64,
    at: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredGroup {
    id: i64,
    key: String,
    name: String,
    description: String,
    is_default: bool,
    stream_type: String,
    unsubscribe_handling: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    archived_at: Option<i64>,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    updated_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredRecord {
    Suppression(StoredSuppression),
    Group {
        group: StoredGroup,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        before: Option<StoredGroup>,
    },
}

impl StoredSuppression {
    fn of(s: &Suppression) -> Self {
        let (k, status, reason, source) = match &s.kind {
            Kind::Bounce {
                class,
                status,
                reason,
            } => (class.as_str(), status.clone(), reason.clone(), None),
            Kind::Invalid { reason } => ("invalid", None, reason.clone(), None),
            Kind::SpamComplaint { source } => ("spam", None, None, source.clone()),
            Kind::Unsubscribe => ("unsubscribe", None, None, None),
            Kind::Manual => ("manual", None, None, None),
        };
        Self {
            id: s.id.0,
            email: s.email.as_str().to_owned(),
            g: match s.scope {
                Scope::Global => 0,
                Scope::Group(g) => g.0,
            },
            k: k.to_owned(),
            status,
            reason,
            source,
            o: s.origin.code(),
            at: s.created_at.as_nanos(),
        }
    }

    fn read(self, tenant: &TenantId) -> Result<Suppression, RecordError> {
        let kind = match self.k.as_str() {
            "invalid" => Kind::Invalid {
                reason: self.reason,
            },
            "spam" => Kind::SpamComplaint {
                source: self.source,
            },
            "unsubscribe" => Kind::Unsubscribe,
            "manual" => Kind::Manual,
            class => Kind::Bounce {
                class: BounceClass::parse(class).ok_or_else(|| bad(format!("kind {class}")))?,
                status: self.status,
                reason: self.reason,
            },
        };
        Ok(Suppression {
            id: SuppressionId(self.id),
            tenant: tenant.clone(),
            email: Email::parse_stored(&self.email).map_err(bad)?,
            scope: match self.g {
                0 => Scope::Global,
                g => Scope::Group(GroupId(g)),
            },
            kind,
            origin: Origin::from_code(self.o).ok_or_else(|| bad(format!("origin {}", self.o)))?,
            created_at: Timestamp::from_nanos(self.at),
        })
    }
}

impl StoredGroup {
    fn of(g: &Group) -> Self {
        Self {
            id: g.id.0,
            key: g.key.as_str().to_owned(),
            name: g.name.clone(),
            description: g.description.clone(),
            is_default: g.is_default,
            stream_type: g.stream_type.as_str().to_owned(),
            unsubscribe_handling: g.unsubscribe_handling.as_str().to_owned(),
            archived_at: g.archived_at.map(Timestamp::as_nanos),
            created_at: g.created_at.as_nanos(),
            updated_at: g.updated_at.map(Timestamp::as_nanos),
        }
    }

    fn read(self, tenant: &TenantId) -> Result<Group, RecordError> {
        Ok(Group {
            id: GroupId(self.id),
            tenant: tenant.clone(),
            key: GroupKey::parse(&self.key).map_err(bad)?,
            name: self.name,
            description: self.description,
            is_default: self.is_default,
            stream_type: StreamType::parse(&self.stream_type)
                .ok_or_else(|| bad(format!("stream type {}", self.stream_type)))?,
            unsubscribe_handling: UnsubscribeHandling::parse(&self.unsubscribe_handling)
                .ok_or_else(|| bad(format!("handling {}", self.unsubscribe_handling)))?,
            archived_at: self.archived_at.map(Timestamp::from_nanos),
            created_at: Timestamp::from_nanos(self.created_at),
            updated_at: self.updated_at.map(Timestamp::from_nanos),
        })
    }
}

impl Recorded {
    /// The JSON a store keeps for this record (its tenant is a column).
    pub fn to_stored(&self) -> String {
        let stored = match self {
            Self::Suppression(s) => StoredRecord::Suppression(StoredSuppression::of(s)),
            Self::Group { group, before } => StoredRecord::Group {
                group: StoredGroup::of(group),
                before: before.as_ref().map(StoredGroup::of),
            },
        };
        // Plain structs of strings and numbers always serialize.
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// A record from what [`Self::to_stored`] wrote.
    pub fn from_stored(tenant: &TenantId, json: &str) -> Result<Self, RecordError> {
        match serde_json::from_str::<StoredRecord>(json).map_err(bad)? {
            StoredRecord::Suppression(s) => Ok(Self::Suppression(s.read(tenant)?)),
            StoredRecord::Group { group, before } => Ok(Self::Group {
                group: group.read(tenant)?,
                before: before.map(|b| b.read(tenant)).transpose()?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("tenant")
    }

    fn group(id: i64) -> Group {
        Group {
            id: GroupId(id),
            tenant: tenant(),
            key: GroupKey::parse("news").expect("key"),
            name: "News, weekly".into(),
            description: "d\"q".into(),
            is_default: true,
            stream_type: StreamType::Broadcasts,
            unsubscribe_handling: UnsubscribeHandling::Postmark,
            archived_at: Some(Timestamp::from_nanos(7)),
            created_at: Timestamp::from_nanos(1_700_000_000_123_456_789),
            updated_at: None,
        }
    }

    #[test]
    fn every_record_reads_back_as_written() {
        let kinds = [
            Kind::Bounce {
                class: BounceClass::Soft,
                status: Some("4.2.2".into()),
                reason: Some("mailbox full".into()),
            },
            Kind::Invalid { reason: None },
            Kind::SpamComplaint {
                source: Some("feedback_loop".into()),
            },
            Kind::Unsubscribe,
            Kind::Manual,
        ];
        for (n, kind) in kinds.into_iter().enumerate() {
            let n = i64::try_from(n).expect("small");
            let record = Recorded::Suppression(Suppression {
                id: SuppressionId(n + 40),
                tenant: tenant(),
                email: Email::parse("Ünï@exämple.com").expect("email"),
                scope: if n % 2 == 0 {
                    Scope::Global
                } else {
                    Scope::Group(GroupId(n))
                },
                kind,
                origin: Origin::from_code(n % 3).expect("origin"),
                created_at: Timestamp::from_nanos(-5 + n),
            });
            let back = Recorded::from_stored(&tenant(), &record.to_stored()).expect("reads");
            assert_eq!(back, record);
        }
        for before in [None, Some(group(9))] {
            let record = Recorded::Group {
                group: group(3),
                before,
            };
            let back = Recorded::from_stored(&tenant(), &record.to_stored()).expect("reads");
            assert_eq!(back, record);
        }
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_guess() {
        assert!(Recorded::from_stored(&tenant(), "{").is_err());
        let wrong_kind = r#"{"id":1,"email":"a@b.c","g":0,"k":"lukewarm","o":0,"at":1}"#;
        assert!(Recorded::from_stored(&tenant(), wrong_kind).is_err());
    }

    #[test]
    fn operations_and_doors_read_back() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        assert_eq!(Door::webhook("ses").as_str(), "webhook:ses");
        assert_eq!(Door::from_stored("v3"), Door::V3);
    }
}
