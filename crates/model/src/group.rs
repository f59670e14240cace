//! Groups: v3 suppression groups, which Postmark shows as message streams.

use serde::Serialize;

use crate::{GroupId, GroupKey, TenantId, Timestamp};

/// The Postmark stream type of a group (`MessageStreamType` in Postmark's
/// API docs, "Message Streams API", postmarkapp.com/developer). Groups
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
    /// (Postmark API docs, "Message Streams API").
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

impl Group {
    /// Applies changes in place; the id, tenant, key, stream type and
    /// creation time never change (a Postmark stream's `ID` and type are
    /// fixed: Postmark's edit takes neither). Moving the default flag off
    /// other groups is the store's job, since it spans rows.
    pub fn apply(&mut self, changes: GroupChanges) {
        let GroupChanges {
            name,
            description,
            is_default,
            unsubscribe_handling,
            archived_at,
            updated_at,
        } = changes;
        if let Some(name) = name {
            self.name = name;
        }
        if let Some(description) = description {
            self.description = description;
        }
        if let Some(is_default) = is_default {
            self.is_default = is_default;
        }
        if let Some(handling) = unsubscribe_handling {
            self.unsubscribe_handling = handling;
        }
        if let Some(archived_at) = archived_at {
            self.archived_at = archived_at;
        }
        if let Some(updated_at) = updated_at {
            self.updated_at = Some(updated_at);
        }
    }
}
