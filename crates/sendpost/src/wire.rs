//! The SendPost wire types (SendPost API reference, "Create Suppressions";
//! the models of its OpenAPI 1.3.0; cited as in lib.rs). The same structs
//! serve requests and, for an upstream SendPost provider, make them.

use std::fmt;

use hush_model::{Kind, Suppression as Canonical};
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Request bodies and their items are JSON objects (SendPost API reference,
/// "Create Suppressions"; the SDK's request models). Serde's derived structs
/// also take a positional array (`[[{"email":…}],null]` as a create body), so
/// each request type derives with `#[serde(remote = "Self")]`, which makes
/// inherent `serialize`/`deserialize` functions, and this implements the
/// traits over them, reading only a map: anything else is "invalid type: …,
/// expected a JSON object …".
macro_rules! json_object {
    ($ty:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Only;
                impl<'de> Visitor<'de> for Only {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $ty::deserialize(MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(Only)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, serializer)
            }
        }
    };
}

/// SendPost's numeric suppression reasons (SendPost API reference, "Create
/// Suppressions"; the `reason` enum of SDK 3.0.0's `Suppression`). Code 4,
/// "hard bounce detected by post-send validation", is never written by hush:
/// it has no canonical kind of its own, so such entries read back as 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Manual,
    Unsubscribe,
    HardBounce,
    SpamComplaint,
}

impl Reason {
    /// In the order a create request's lists are taken ("Create
    /// Suppressions").
    pub const ALL: [Self; 4] = [
        Self::HardBounce,
        Self::Manual,
        Self::Unsubscribe,
        Self::SpamComplaint,
    ];

    pub fn code(self) -> i64 {
        match self {
            Self::Manual => 0,
            Self::Unsubscribe => 1,
            Self::HardBounce => 2,
            Self::SpamComplaint => 3,
        }
    }

    /// The `reasonText` value, also the create request's list name and the
    /// list's `type` filter value.
    pub fn text(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Unsubscribe => "unsubscribe",
            Self::HardBounce => "hardBounce",
            Self::SpamComplaint => "spamComplaint",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.text().eq_ignore_ascii_case(raw))
    }

    /// How SendPost shows a canonical kind (docs/mapping.md): every
    /// bounce class and an invalid address are reason 2.
    pub fn of(kind: &Kind) -> Self {
        match kind {
            Kind::Bounce { .. } | Kind::Invalid { .. } => Self::HardBounce,
            Kind::SpamComplaint { .. } => Self::SpamComplaint,
            Kind::Unsubscribe => Self::Unsubscribe,
            Kind::Manual => Self::Manual,
        }
    }
}

/// One suppression as SendPost shows it. It carries the fields of both
/// contracts, which SDK 3.0.0 and 2.0.1 both decode (docs/api/sendpost.md,
/// "Contracts"): `smtpError` for v1 and `smtp_error` for legacy. `id`,
/// `reason` and `created` are JSON integers, which the SDK's strict types
/// (pydantic `StrictInt`) require.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub id: i64,
    pub email: String,
    pub reason: i64,
    /// Absent rather than `""`, which the SDK rejects (its `reasonText`
    /// enum).
    #[serde(
        rename = "reasonText",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reason_text: Option<String>,
    #[serde(rename = "smtpError", default)]
    pub smtp_error: String,
    #[serde(rename = "smtp_error", default)]
    pub legacy_smtp_error: String,
    /// The message the entry came from, `""` when none (SDK 3.0.0's
    /// `Suppression`: "Empty for manual entries"). hush keeps no message
    /// ids, so its entries, like any made through the API, have none.
    #[serde(rename = "messageUUID", default)]
    pub message_uuid: String,
    /// Unix epoch nanoseconds.
    pub created: i64,
}

impl Suppression {
    pub fn from_canonical(suppression: &Canonical) -> Self {
        let reason = Reason::of(&suppression.kind);
        // docs/mapping.md, SendPost `Suppression`: smtpError carries a
        // bounce's reason text; an invalid address's reason says why it
        // cannot receive mail.
        let smtp_error = match &suppression.kind {
            Kind::Bounce { reason, .. } | Kind::Invalid { reason } => {
                reason.clone().unwrap_or_default()
            }
            _ => String::new(),
        };
        Self {
            id: suppression.id.0,
            email: suppression.email.as_str().to_owned(),
            reason: reason.code(),
            reason_text: Some(reason.text().to_owned()),
            legacy_smtp_error: smtp_error.clone(),
            smtp_error,
            message_uuid: String::new(),
            created: suppression.created_at.as_nanos(),
        }
    }
}

/// `{"email": …}`, an item of every create list and of a delete. The email is
/// optional on the wire (the SDK sends `{}` for an item without one), so its
/// absence is reported as a validation error, not a parse error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct EmailItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `POST /subaccount/suppression` (SendPost API reference, "Create
/// Suppressions"). Every list is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct CreateSuppressionRequest {
    #[serde(
        rename = "hardBounce",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hard_bounce: Option<Vec<EmailItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<Vec<EmailItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<Vec<EmailItem>>,
    #[serde(
        rename = "spamComplaint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub spam_complaint: Option<Vec<EmailItem>>,
}

json_object!(EmailItem, "a JSON object {\"email\": …}");
json_object!(
    CreateSuppressionRequest,
    "a JSON object with hardBounce, manual, unsubscribe or spamComplaint lists"
);
json_object!(
    DeleteSuppressionRequest,
    "a JSON object {\"suppressions\": [{\"email\": …}]}"
);

impl CreateSuppressionRequest {
    /// The list of one reason.
    pub fn list(&self, reason: Reason) -> &[EmailItem] {
        let list = match reason {
            Reason::HardBounce => &self.hard_bounce,
            Reason::Manual => &self.manual,
            Reason::Unsubscribe => &self.unsubscribe,
            Reason::SpamComplaint => &self.spam_complaint,
        };
        list.as_deref().unwrap_or_default()
    }
}

/// `DELETE /subaccount/suppression` (`DeleteSuppressionRequest` in the SDK).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct DeleteSuppressionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressions: Option<Vec<EmailItem>>,
}

/// The text of both contracts' delete reply (the example of SendPost's
/// OpenAPI 1.0.0, sendpost/sendpost-go-sdk `api/openapi.yaml`).
pub const DELETED_MESSAGE: &str = "Suppressions have been deleted successfully";

/// The v1 delete reply: `{"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResponse {
    pub message: String,
}

/// One item of the legacy delete reply `[{"id":…,"message":…}]` (SendPost's
/// OpenAPI 1.0.0 example):
/// one per entry removed, with that entry's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyDeleted {
    pub id: i64,
    pub message: String,
}

/// `GET /subaccount/suppression/count` (the legacy SDKs' "Count Total
/// Suppressions", `CountStat`: sendpost/sendpost_ruby_sdk
/// docs/SuppressionApi.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountStat {
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_model::BounceClass;

    #[test]
    fn every_kind_has_its_reason() {
        let bounce = |class| Kind::Bounce {
            class,
            status: None,
            reason: None,
        };
        for class in [BounceClass::Hard, BounceClass::Soft, BounceClass::Block] {
            assert_eq!(Reason::of(&bounce(class)).code(), 2);
        }
        assert_eq!(Reason::of(&Kind::Invalid { reason: None }).code(), 2);
        assert_eq!(Reason::of(&Kind::SpamComplaint { source: None }).code(), 3);
        assert_eq!(Reason::of(&Kind::Unsubscribe).code(), 1);
        assert_eq!(Reason::of(&Kind::Manual).code(), 0);
    }

    #[test]
    fn type_names_parse_back() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.text()), Some(reason));
        }
        assert_eq!(Reason::parse("HARDBOUNCE"), Some(Reason::HardBounce));
        assert_eq!(Reason::parse("hard_bounce"), None);
    }
}
