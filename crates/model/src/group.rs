//! Groups: v3 suppression groups, which Postmark shows as message streams.

use serde::Serialize;

use crate::{GroupId, GroupKey, TenantId, Timestamp};

/// The Postmark stream type of a group (specs/postmark.md §3.1). Groups
/// made through v3 are `Broadcasts`: an unsubscribe group is what Postmark
/// calls a broadcast stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StreamType {
    Transactional,
    Broadcasts,
    Inbound,
}

impl StreamType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transactional => "Transactional",
            Self::Broadcasts => "Broadcasts",
            Self::Inbound => "Inbound",
        }
    }

    /// Case-insensitive, as Postmark's own parsers are.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Transactional, Self::Broadcasts, Self::Inbound]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

/// Who handles unsubscribes for a stream (Postmark's
/// `SubscriptionManagementConfiguration.UnsubscribeHandlingType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum UnsubscribeHandling {
    None,
    Postmark,
    Custom,
}

impl UnsubscribeHandling {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Postmark => "Postmark",
            Self::Custom => "Custom",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::None, Self::Postmark, Self::Custom]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }

    /// Broadcasts require unsubscribe management; the others default to none
    /// (specs/postmark.md §3.1).
    pub fn default_for(stream_type: StreamType) -> Self {
        match stream_type {
            StreamType::Broadcasts => Self::Postmark,
            StreamType::Transactional | StreamType::Inbound => Self::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub tenant: TenantId,
    pub key: GroupKey,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub stream_type: StreamType,
    pub unsubscribe_handling: UnsubscribeHandling,
    pub archived_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

/// The key and name of the stream every tenant has from the start: Postmark's
/// default transactional stream.
pub const DEFAULT_STREAM_KEY: &str = "outbound";
pub const DEFAULT_STREAM_NAME: &str = "Default Transactional Stream";

/// A group to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub key: GroupKey,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub stream_type: StreamType,
    pub unsubscribe_handling: UnsubscribeHandling,
    pub created_at: Timestamp,
}

/// Changes to a group; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub is_default: Option<bool>,
    pub unsubscribe_handling: Option<UnsubscribeHandling>,
    /// `Some(None)` unarchives.
    pub archived_at: Option<Option<Timestamp>>,
    pub updated_at: Option<Timestamp>,
}
