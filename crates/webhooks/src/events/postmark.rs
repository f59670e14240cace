//! Postmark's webhooks (Postmark developer docs, "Webhooks overview" and one
//! page per record type; ActiveCampaign/postmark.js `src/client/models/
//! webhooks/payload/*.ts`): one JSON object per POST, told apart by
//! `RecordType`.
//!
//! Scope follows docs/mapping.md: a Postmark message stream is a hush group
//! whose key is the stream's `ID`. What a recipient's mailbox says about the
//! address (hard bounce, invalid address, block, spam complaint) is Global,
//! as hush records those from every provider; what is scoped to one stream
//! in Postmark (an unsubscribe, a manual suppression) is Group(stream).

use hush_model::{
    BounceClass, DEFAULT_STREAM_KEY, Email, GroupKey, Kind, KindSet, Origin, Timestamp,
};
use serde::Deserialize;

use super::{
    Action, GroupRef, Ignored, ParseError, ProviderEvent, Target, email, enhanced_status, event_id,
    from_json, ignore, optional_text, required, rfc3339, text,
};

/// The `MessageID` of the test posts Postmark sends for each enabled
/// trigger when a webhook is saved (they must be answered 200; Postmark
/// skill `postmark-webhooks/SKILL.md`, "Endpoint Verification"). Captured
/// test bounces show it (ActiveCampaign/postmark-php issue 110;
/// putyourlightson/craft-campaign issue 388, both with `ID` 42 and
/// `john@example.com`), and so does Postmark's own spam-complaint webhook
/// example. Postmark's message ids are random UUIDs; the nil UUID names no
/// message.
pub const TEST_MESSAGE_ID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Deserialize)]
#[serde(expecting = "a Postmark record object")]
struct RawRecord {
    #[serde(rename = "RecordType")]
    record_type: Option<String>,
    /// The bounce's id (Bounce and SpamComplaint records).
    #[serde(rename = "ID")]
    id: Option<serde_json::Number>,
    #[serde(rename = "Type")]
    bounce_type: Option<String>,
    #[serde(rename = "TypeCode")]
    type_code: Option<i64>,
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
    #[serde(rename = "MessageStream")]
    message_stream: Option<String>,
    /// The address on Bounce and SpamComplaint records.
    #[serde(rename = "Email")]
    email: Option<String>,
    /// The address on SubscriptionChange, Delivery, Open and Click records.
    #[serde(rename = "Recipient")]
    recipient: Option<String>,
    #[serde(rename = "Description")]
    description: Option<String>,
    #[serde(rename = "Details")]
    details: Option<String>,
    #[serde(rename = "BouncedAt")]
    bounced_at: Option<String>,
    #[serde(rename = "ChangedAt")]
    changed_at: Option<String>,
    #[serde(rename = "DeliveredAt")]
    delivered_at: Option<String>,
    #[serde(rename = "ReceivedAt")]
    received_at: Option<String>,
    #[serde(rename = "Origin")]
    origin: Option<String>,
    #[serde(rename = "SuppressSending")]
    suppress_sending: Option<bool>,
    #[serde(rename = "SuppressionReason")]
    suppression_reason: Option<String>,
}

/// Bounce `Type` names and `TypeCode`s (ActiveCampaign/postmark.js
/// `src/client/models/bounces/BounceTypeCode.ts`; Postmark API docs,
/// "Bounce types"). The name decides; the code is read only when the name
/// is absent, since Postmark's own examples pair `SpamComplaint` with 512.
const BOUNCE_TYPES: [(&str, i64); 22] = [
    ("HardBounce", 1),
    ("Transient", 2),
    ("Unsubscribe", 16),
    ("Subscribe", 32),
    ("AutoResponder", 64),
    ("AddressChange", 128),
    ("DnsError", 256),
    ("SpamNotification", 512),
    ("OpenRelayTest", 1024),
    ("Unknown", 2048),
    ("SoftBounce", 4096),
    ("VirusNotification", 8192),
    ("ChallengeVerification", 16384),
    ("BadEmailAddress", 100_000),
    ("SpamComplaint", 100_001),
    ("ManuallyDeactivated", 100_002),
    ("Unconfirmed", 100_003),
    ("Blocked", 100_006),
    ("SMTPApiError", 100_007),
    ("InboundError", 100_008),
    ("DMARCPolicy", 100_009),
    ("TemplateRenderingFailed", 100_010),
];

/// One record. `trace_id` is the `X-PM-Webhook-Trace-Id` header, which
/// Postmark keeps across retries (Postmark skill `postmark-webhooks`,
/// "Idempotency"); without it the id is built from the record itself (see
/// [`stable_key`]).
pub fn parse(body: &[u8], trace_id: Option<&str>) -> Result<Vec<ProviderEvent>, ParseError> {
    let starts_as_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !starts_as_object {
        return Err(ParseError(
            "body: expected one JSON object (Postmark posts one record per request)".to_owned(),
        ));
    }
    let raw: RawRecord = from_json(body, "body")?;
    let record_type = required(raw.record_type.as_deref(), "RecordType")?;
    let id = match trace_id.map(str::trim).filter(|t| !t.is_empty()) {
        Some(trace) => event_id(Some(trace.to_owned()), "X-PM-Webhook-Trace-Id")?,
        None => stable_key(record_type, &raw)?,
    };
    let action = if raw.message_id.as_deref() == Some(TEST_MESSAGE_ID) {
        Action::Ignore(Ignored::Test)
    } else {
        match record_type {
            "Bounce" => bounce(&raw)?,
            "SpamComplaint" => suppress_email(&raw, Target::Global, spam(), Origin::Recipient)?,
            "SubscriptionChange" => subscription_change(&raw)?,
            "Delivery" | "Open" | "Click" => {
                ignore(Ignored::NotSuppressing, record_type, "RecordType")?
            }
            other => ignore(Ignored::Unknown, other, "RecordType")?,
        }
    };
    Ok(vec![ProviderEvent {
        id,
        actions: vec![action],
    }])
}

/// The id without a trace header: record type, stream, the bounce's `ID`
/// (else the `MessageID`), the address, the record's own time and, for a
/// subscription change, its direction. Every part is in the record as
/// Postmark posts it, so a retry builds the same key; two records that
/// share every part describe one change.
fn stable_key(record_type: &str, raw: &RawRecord) -> Result<String, ParseError> {
    let which = match (&raw.id, &raw.message_id) {
        (Some(id), _) => id.to_string(),
        (None, Some(message)) => message.clone(),
        (None, None) => String::new(),
    };
    let address = raw.email.as_deref().or(raw.recipient.as_deref());
    let time = [
        &raw.bounced_at,
        &raw.changed_at,
        &raw.delivered_at,
        &raw.received_at,
    ]
    .into_iter()
    .find_map(Option::as_deref);
    let direction = match raw.suppress_sending {
        Some(true) => "suppress",
        Some(false) => "reactivate",
        None => "",
    };
    let key = [
        record_type,
        raw.message_stream.as_deref().unwrap_or_default(),
        &which,
        address.unwrap_or_default(),
        time.unwrap_or_default(),
        direction,
    ]
    .join(":");
    text(key, "RecordType, ID, MessageID, Email, Recipient and time")
}

/// A Bounce record, by its `Type` (or `TypeCode`).
fn bounce(raw: &RawRecord) -> Result<Action, ParseError> {
    let name = match (&raw.bounce_type, raw.type_code) {
        (Some(name), _) => name.as_str(),
        (None, Some(code)) => BOUNCE_TYPES
            .iter()
            .find(|(_, c)| *c == code)
            .map_or("", |(name, _)| *name),
        (None, None) => return Err(ParseError::missing("Type")),
    };
    match name {
        "HardBounce" => {
            let kind = bounce_kind(raw, BounceClass::Hard)?;
            suppress_email(raw, Target::Global, kind, Origin::Recipient)
        }
        // Postmark's block (an ISP refusing the sender) is what v3 lists as
        // a block, as SendGrid's `blocked` is.
        "Blocked" => {
            let kind = bounce_kind(raw, BounceClass::Block)?;
            suppress_email(raw, Target::Global, kind, Origin::Recipient)
        }
        "BadEmailAddress" => {
            let kind = Kind::Invalid {
                reason: mta_reply(raw)?,
            };
            suppress_email(raw, Target::Global, kind, Origin::Recipient)
        }
        "SpamComplaint" => suppress_email(raw, Target::Global, spam(), Origin::Recipient),
        // Postmark's unsubscribes and manual deactivations belong to a
        // stream, as its suppressions do. "Manually deactivated" is the
        // account holder's act in Postmark's UI or API, so Customer, as a
        // Postmark suppression made through hush's Postmark API is
        // (docs/mapping.md, "What each API creates").
        "Unsubscribe" => {
            let stream = stream(raw)?;
            suppress_email(raw, stream, Kind::Unsubscribe, Origin::Recipient)
        }
        "ManuallyDeactivated" => {
            let stream = stream(raw)?;
            suppress_email(raw, stream, Kind::Manual, Origin::Customer)
        }
        // Transient and soft failures, auto-replies, and what is about the
        // sender or the message (DMARC, templates, API errors): Postmark
        // keeps mailing the address after them.
        known if BOUNCE_TYPES.iter().any(|(n, _)| *n == known) => {
            ignore(Ignored::NotSuppressing, known, "Type")
        }
        "" => ignore(
            Ignored::Unknown,
            &format!("TypeCode {}", raw.type_code.unwrap_or_default()),
            "TypeCode",
        ),
        other => ignore(Ignored::Unknown, other, "Type"),
    }
}

/// A SubscriptionChange record: Postmark added the address to a stream's
/// suppression list, or removed it (Postmark docs, "Subscription change
/// webhook").
fn subscription_change(raw: &RawRecord) -> Result<Action, ParseError> {
    let suppress = required(raw.suppress_sending, "SuppressSending")?;
    let address = email(raw.recipient.as_deref(), "Recipient")?;
    let stream = stream(raw)?;
    if !suppress {
        // A reactivation lifts everything in that stream. Not Global: a
        // reactivation does not say what it undid (`SuppressionReason` is
        // null), and Global entries are shared with every other provider and
        // API, so one stream's reactivation must not lift, say, a spam
        // complaint SendGrid reported. A Postmark hard bounce (recorded
        // Global) therefore stays until removed through an API.
        return Ok(Action::Lift {
            email: address,
            target: stream,
            kinds: KindSet::ALL,
        });
    }
    let origin = origin(raw.origin.as_deref())?;
    let (target, kind) = match raw.suppression_reason.as_deref() {
        // Same scopes as the Bounce and SpamComplaint records: what the
        // mailbox said is Global.
        Some("HardBounce") => (Target::Global, Kind::hard_bounce()),
        Some("SpamComplaint") => (Target::Global, spam()),
        // "If a recipient unsubscribes, they will be suppressed with the
        // SuppressionReason of ManualSuppression" (Postmark docs); the
        // Origin tells the recipient's unsubscribe from the customer's or
        // Postmark's manual entry.
        Some("ManualSuppression") if origin == Origin::Recipient => (stream, Kind::Unsubscribe),
        // ManualSuppression by Customer or Admin, and any reason Postmark
        // adds later: Postmark has stopped mailing the address in this
        // stream, so hush records that much, as a manual entry.
        _ => (stream, Kind::Manual),
    };
    Ok(Action::Suppress {
        email: address,
        target,
        kind,
        origin,
        at: rfc3339(raw.changed_at.as_deref(), "ChangedAt")?,
    })
}

fn bounce_kind(raw: &RawRecord, class: BounceClass) -> Result<Kind, ParseError> {
    let reason = mta_reply(raw)?;
    let status = reason.as_deref().and_then(enhanced_status);
    Ok(Kind::Bounce {
        class,
        status,
        reason,
    })
}

/// `Details` is the remote server's reply (`smtp;550 5.1.1 …`),
/// `Description` Postmark's explanation of the bounce type; the reply is
/// what hush keeps as a reason, the explanation only when there is no reply.
fn mta_reply(raw: &RawRecord) -> Result<Option<String>, ParseError> {
    match optional_text(raw.details.clone(), "Details")? {
        Some(details) => Ok(Some(details)),
        None => optional_text(raw.description.clone(), "Description"),
    }
}

fn spam() -> Kind {
    Kind::SpamComplaint { source: None }
}

/// The record's stream as a group. Records from before message streams
/// (2020) carry no `MessageStream`; all their mail went through the default
/// transactional stream, `outbound`.
fn stream(raw: &RawRecord) -> Result<Target, ParseError> {
    let id = raw.message_stream.as_deref().unwrap_or(DEFAULT_STREAM_KEY);
    GroupKey::parse(id)
        .map(|key| Target::Group(GroupRef::Key(key)))
        .map_err(|err| ParseError::field("MessageStream", err))
}

fn origin(raw: Option<&str>) -> Result<Origin, ParseError> {
    match required(raw, "Origin")? {
        "Recipient" => Ok(Origin::Recipient),
        "Customer" => Ok(Origin::Customer),
        "Admin" => Ok(Origin::Admin),
        other => Err(ParseError::field(
            "Origin",
            format!("{other:?} is not Recipient, Customer or Admin"),
        )),
    }
}

/// A Bounce or SpamComplaint record's address (`Email`) and time
/// (`BouncedAt`).
fn suppress_email(
    raw: &RawRecord,
    target: Target,
    kind: Kind,
    origin: Origin,
) -> Result<Action, ParseError> {
    let address: Email = email(raw.email.as_deref(), "Email")?;
    let at: Timestamp = rfc3339(raw.bounced_at.as_deref(), "BouncedAt")?;
    Ok(Action::Suppress {
        email: address,
        target,
        kind,
        origin,
        at,
    })
}
