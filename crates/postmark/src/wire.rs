//! Postmark's wire types (Postmark API docs, "Suppressions API" and "Message
//! Streams API"; cited as in lib.rs). The same structs serve requests and,
//! for an upstream Postmark provider, make them.

use hush_model::{Group, Kind, Origin, Suppression, Timestamp};
use serde::{Deserialize, Serialize};

/// Postmark keeps an archived stream 45 days before purging it (Postmark API
/// docs, "Message Streams API"). hush never purges; it shows the date
/// Postmark would, since typed clients read it.
pub const PURGE_AFTER_NANOS: i64 = 45 * 86_400 * 1_000_000_000;

/// `SuppressionReason` (Postmark API docs, "Suppressions API", "Suppression
/// dump").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuppressionReason {
    HardBounce,
    SpamComplaint,
    ManualSuppression,
}

impl SuppressionReason {
    pub const ALL: [Self; 3] = [
        Self::HardBounce,
        Self::SpamComplaint,
        Self::ManualSuppression,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "HardBounce",
            Self::SpamComplaint => "SpamComplaint",
            Self::ManualSuppression => "ManualSuppression",
        }
    }

    /// Case-insensitive: Postmark's own example sends `origin=recipient`
    /// (Postmark API docs, "Suppressions API").
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(raw))
    }

    /// How a canonical kind shows in a dump (docs/mapping.md): every
    /// bounce class and an invalid address are `HardBounce`, since either
    /// makes Postmark stop sending; unsubscribes and manual blocks are
    /// `ManualSuppression`.
    pub fn of(kind: &Kind) -> Self {
        match kind {
            Kind::Bounce { .. } | Kind::Invalid { .. } => Self::HardBounce,
            Kind::SpamComplaint { .. } => Self::SpamComplaint,
            Kind::Unsubscribe | Kind::Manual => Self::ManualSuppression,
        }
    }
}

/// `Origin`, in Postmark's words (Postmark API docs, "Suppressions API").
pub fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Recipient => "Recipient",
        Origin::Customer => "Customer",
        Origin::Admin => "Admin",
    }
}

/// Case-insensitive (the doc's own example sends `origin=recipient`).
pub fn parse_origin(raw: &str) -> Option<Origin> {
    [Origin::Recipient, Origin::Customer, Origin::Admin]
        .into_iter()
        .find(|o| origin_name(*o).eq_ignore_ascii_case(raw))
}

/// One row of a dump. All four fields are always present: postmark-python
/// requires them (its `SuppressionEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SuppressionEntry {
    pub email_address: String,
    pub suppression_reason: SuppressionReason,
    pub origin: String,
    /// RFC 3339 with an offset.
    pub created_at: String,
}

impl SuppressionEntry {
    pub fn from_suppression(suppression: &Suppression) -> Self {
        Self {
            email_address: suppression.email.as_str().to_owned(),
            suppression_reason: SuppressionReason::of(&suppression.kind),
            origin: origin_name(suppression.origin).to_owned(),
            created_at: suppression.created_at.to_rfc3339_offset(),
        }
    }
}

/// The dump's body. hush writes it incrementally (see `suppressions::dump`);
/// this type is the shape a client reads back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionDump {
    #[serde(rename = "Suppressions")]
    pub suppressions: Vec<SuppressionEntry>,
}

/// One address of a create or delete request.
///
/// Reading one never fails. hush answers 1409 only when the body is not an
/// object with a `Suppressions` array; a bad item is that item's `Failed`
/// "An invalid email address was provided.", and the good items beside it
/// are processed (docs/mapping.md, "Postmark malformed items"). postmark.js
/// sends `{}` for an item whose `EmailAddress` is undefined
/// (`JSON.stringify` drops it). What the item echoes (each result echoes
/// its `EmailAddress` as sent, as in Postmark's "Suppressions API" examples):
/// - a string: itself;
/// - missing or `null`, or an item that is not an object: `""`, there being
///   no address to echo (typed SDKs read `EmailAddress` as a string);
/// - any other JSON value: its compact JSON text (`5` echoes `"5"`).
///
/// Such a text never passes as an address: a number or boolean has no `@`,
/// and an array or object ends in `]` or `}`, which no domain may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "serde_json::Value")]
pub struct SuppressionAddress {
    #[serde(rename = "EmailAddress")]
    pub email_address: String,
}

impl From<serde_json::Value> for SuppressionAddress {
    fn from(item: serde_json::Value) -> Self {
        let email_address = match item.get("EmailAddress") {
            Some(serde_json::Value::String(text)) => text.clone(),
            None | Some(serde_json::Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        Self { email_address }
    }
}

/// The body of create and delete (Postmark API docs, "Suppressions API").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionChanges {
    #[serde(rename = "Suppressions")]
    pub suppressions: Vec<SuppressionAddress>,
}

/// `Status` of one item (Postmark API docs, "Suppressions API").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeStatus {
    Suppressed,
    Deleted,
    Failed,
}

/// One item's result. `Message` is `null` on success and always present
/// (Postmark API docs, "Suppressions API", "Create a Suppression").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SuppressionStatus {
    pub email_address: String,
    pub status: ChangeStatus,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionStatuses {
    #[serde(rename = "Suppressions")]
    pub suppressions: Vec<SuppressionStatus>,
}

/// `SubscriptionManagementConfiguration` (Postmark API docs, "Message
/// Streams API").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionManagement {
    #[serde(rename = "UnsubscribeHandlingType")]
    pub unsubscribe_handling_type: String,
}

/// A message stream: a canonical group seen through Postmark
/// (docs/api/postmark.md, "Message streams"; Postmark API docs, "Message
/// Streams API").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageStream {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ServerID")]
    pub server_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub message_stream_type: String,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub archived_at: Option<String>,
    pub expected_purge_date: Option<String>,
    pub subscription_management_configuration: SubscriptionManagement,
}

impl MessageStream {
    pub fn from_group(group: &Group, server_id: i64) -> Self {
        Self {
            id: group.key.as_str().to_owned(),
            server_id,
            name: group.name.clone(),
            description: (!group.description.is_empty()).then(|| group.description.clone()),
            message_stream_type: group.stream_type.as_str().to_owned(),
            created_at: group.created_at.to_rfc3339_offset(),
            updated_at: group.updated_at.map(Timestamp::to_rfc3339_offset),
            archived_at: group.archived_at.map(Timestamp::to_rfc3339_offset),
            expected_purge_date: group.archived_at.map(purge_date),
            subscription_management_configuration: SubscriptionManagement {
                unsubscribe_handling_type: group.unsubscribe_handling.as_str().to_owned(),
            },
        }
    }
}

/// When Postmark would purge a stream archived at `archived_at`.
pub fn purge_date(archived_at: Timestamp) -> String {
    Timestamp::from_nanos(archived_at.as_nanos().saturating_add(PURGE_AFTER_NANOS))
        .to_rfc3339_offset()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageStreams {
    pub message_streams: Vec<MessageStream>,
    pub total_count: usize,
}

/// `POST /message-streams/{id}/archive`'s answer. `ID` is a string, though
/// postmark.js types it as a number (its `MessageStreamArchiveResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedStream {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ServerID")]
    pub server_id: i64,
    #[serde(rename = "ExpectedPurgeDate")]
    pub expected_purge_date: String,
}

/// `POST /message-streams`. Every field is optional here so that a missing
/// one gets its own Postmark code (1221–1223) rather than a parse error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewMessageStream {
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_stream_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_management_configuration: Option<SubscriptionManagement>,
}

/// `PATCH /message-streams/{id}`: omitted fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageStreamChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_management_configuration: Option<SubscriptionManagement>,
}
