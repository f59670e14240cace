//! The v3 wire types of the seed shape (docs/api/v3.md) and of SendGrid's
//! (cited as in lib.rs). The same structs serve requests and, for an upstream
//! v3 provider, make them.

use hush_model::{BounceClass, Kind, Suppression};
use serde::{Deserialize, Serialize};

/// A bounce as v3 shows it (docs/api/v3.md, `GET /v3/suppression/bounces`).
/// Every field is always present, as strings where the model has none:
/// typed clients decode all four (as SendGrid's `BounceResponse` has them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceRecord {
    pub email: String,
    /// Unix seconds.
    pub created: i64,
    pub reason: String,
    pub bounce_type: String,
    pub status: String,
}

impl BounceRecord {
    /// `None` for a suppression that is not a bounce.
    pub fn from_suppression(suppression: &Suppression) -> Option<Self> {
        let Kind::Bounce {
            class,
            status,
            reason,
        } = &suppression.kind
        else {
            return None;
        };
        Some(Self {
            email: suppression.email.as_str().to_owned(),
            created: suppression.created_at.unix_seconds(),
            reason: reason.clone().unwrap_or_default(),
            bounce_type: class.as_str().to_owned(),
            status: status.clone().unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceList {
    pub bounces: Vec<BounceRecord>,
    pub total: u64,
}

/// `POST /v3/suppression/bounces`. `status` is a hush extension: when absent
/// it is read from the reason's enhanced status code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBounce {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A spam report as the seed shows it (docs/api/v3.md,
/// `GET /v3/suppression/spam_reports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpamReportRecord {
    pub email: String,
    /// Unix seconds.
    pub created: i64,
    pub source: String,
}

impl SpamReportRecord {
    pub fn from_suppression(suppression: &Suppression) -> Option<Self> {
        let Kind::SpamComplaint { source } = &suppression.kind else {
            return None;
        };
        Some(Self {
            email: suppression.email.as_str().to_owned(),
            created: suppression.created_at.unix_seconds(),
            source: source.clone().unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpamReportList {
    pub spam_reports: Vec<SpamReportRecord>,
    pub total: u64,
}

/// `POST /v3/suppression/spam_reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSpamReport {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `{"recipient_emails":[…]}`: the body of global and group adds and their
/// answer (docs/api/v3.md; SendGrid API reference, "Add recipient addresses
/// to the global suppression group.", "Add suppressions to a suppression
/// group", "Search for suppressions within a group").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientEmails {
    pub recipient_emails: Vec<String>,
}

/// A global or group listing in the seed shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientEmailList {
    pub recipient_emails: Vec<String>,
    pub total: u64,
}

/// `GET /v3/asm/suppressions/global/{email}` when the address is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientEmail {
    pub recipient_email: String,
}

/// A suppression group as the seed shows it (docs/api/v3.md, "Groups").
/// `created_at` is RFC 3339 with `Z` there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub unsubscribes: u64,
    pub created_at: String,
}

/// `GET /v3/asm/groups` in the seed shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupList {
    pub suppression_groups: Vec<GroupRecord>,
}

/// A suppression group as SendGrid shows it (its `SuppressionGroup`;
/// `last_email_sent_at` is in the older sendgrid/sendgrid-oai):
/// no creation time, and `last_email_sent_at`, which hush never knows
/// (it sends no mail), so it is always `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendgridGroup {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub unsubscribes: u64,
    pub last_email_sent_at: Option<i64>,
}

/// `POST /v3/asm/groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGroupBody {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

/// `PATCH /v3/asm/groups/{id}`: any subset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

/// The answer of a CSV import (docs/api/v3.md, "CSV imports").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub imported: u64,
    pub skipped: u64,
    pub errors: Vec<ImportRowError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRowError {
    /// The record's 1-based line in the file, a header line counted.
    pub row: u64,
    pub email: String,
    pub error: String,
}

/// SendGrid's bounce and block item (`BounceResponse`, `BlocksResponse`): the
/// four fields exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendgridBounce {
    pub created: i64,
    pub email: String,
    pub reason: String,
    pub status: String,
}

impl SendgridBounce {
    pub fn from_suppression(suppression: &Suppression) -> Option<Self> {
        let Kind::Bounce { status, reason, .. } = &suppression.kind else {
            return None;
        };
        Some(Self {
            created: suppression.created_at.unix_seconds(),
            email: suppression.email.as_str().to_owned(),
            reason: reason.clone().unwrap_or_default(),
            status: status.clone().unwrap_or_default(),
        })
    }
}

/// SendGrid's spam report item (`SpamReportsResponse`): `ip` instead of
/// a source. hush records where a complaint came from, not the IP it was
/// sent from, so `ip` is `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendgridSpamReport {
    pub created: i64,
    pub email: String,
    pub ip: String,
}

/// SendGrid's invalid email item (`InvalidEmail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendgridInvalidEmail {
    pub created: i64,
    pub email: String,
    pub reason: String,
}

/// `POST /v3/suppression/invalid_emails`, a hush extension: SendGrid has no
/// public create (its API reference has none for these lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvalidEmail {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// SendGrid's global unsubscribe item (SendGrid API reference, "Retrieve
/// all global suppressions").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendgridUnsubscribe {
    pub created: i64,
    pub email: String,
}

/// One row of `GET /v3/asm/suppressions` (SendGrid API reference, "Retrieve
/// all suppressions").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendgridGroupSuppression {
    pub email: String,
    pub group_id: i64,
    pub group_name: String,
    pub created_at: i64,
}

/// `GET /v3/asm/suppressions/{email}` (SendGrid API reference, "Retrieve
/// all suppression groups for an email address").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressGroups {
    pub suppressions: Vec<AddressGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressGroup {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub suppressed: bool,
}

/// The JSON form of a bulk delete (SendGrid API reference, "Delete bounces");
/// the seed form is the `delete_all=true` query parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkDelete {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
}

/// The bounce class a `bounce_type` names; `hard` when absent
/// (docs/api/v3.md).
pub fn bounce_class(raw: Option<&str>) -> Option<BounceClass> {
    raw.map_or(Some(BounceClass::Hard), |t| {
        BounceClass::parse(&t.trim().to_ascii_lowercase())
    })
}

/// The RFC 3463 enhanced status code in an SMTP reply, e.g. `5.1.1` in
/// `550 5.1.1 User unknown`: class 2, 4 or 5, then a subject and a detail
/// of one to three digits.
pub fn enhanced_status(reason: &str) -> Option<String> {
    reason
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';' | ':'))
        .find(|token| is_enhanced_status(token))
        .map(str::to_owned)
}

fn is_enhanced_status(token: &str) -> bool {
    let mut parts = token.split('.');
    let class_ok = matches!(parts.next(), Some("2" | "4" | "5"));
    let digits = |part: Option<&str>| {
        part.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    class_ok && digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_enhanced_status_code() {
        assert_eq!(
            enhanced_status("550 5.1.1 User unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("452 4.2.2 Mailbox full").as_deref(),
            Some("4.2.2")
        );
        assert_eq!(
            enhanced_status("smtp; 550 (5.7.1) rejected").as_deref(),
            Some("5.7.1")
        );
        assert_eq!(enhanced_status("550 User unknown"), None);
        assert_eq!(enhanced_status("version 1.2.3"), None);
        assert_eq!(enhanced_status("5.1.1234"), None);
    }

    #[test]
    fn bounce_types() {
        assert_eq!(bounce_class(None), Some(BounceClass::Hard));
        assert_eq!(bounce_class(Some("SOFT")), Some(BounceClass::Soft));
        assert_eq!(bounce_class(Some("block")), Some(BounceClass::Block));
        assert_eq!(bounce_class(Some("bogus")), None);
    }
}
