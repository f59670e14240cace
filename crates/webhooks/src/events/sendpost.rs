//! SendPost's webhook (SendPost docs, "SendPost Webhook Object",
//! https://docs.sendpost.io/api-reference/webhook/sendpost-webhook-object):
//! one JSON object `{ "event": {…}, "emailMessage": {…} }` per POST. Only
//! `event` is read: its id, numeric type, recipient (`to`, a bare address
//! beside `toName`), time and SMTP reply.
//!
//! The `type` codes, from SendPost's SDKs (sendpost/sendpost-java-sdk
//! `docs/Event.md` at 378849d4, and the same text in its JavaScript and Go
//! SDKs: "Numeric event type code"):
//!
//! | code | name | hush |
//! |---|---|---|
//! | 0 | processed | ignored |
//! | 1 | dropped | ignored (suppressed, invalid or unverified: not told apart) |
//! | 2 | delivered | ignored |
//! | 3 | softBounced | ignored (retried up to 5 times over 24 hours, then reported as hardBounced: SendPost stats API docs) |
//! | 4 | hardBounced | Bounce Hard, Global |
//! | 5 | opened | ignored |
//! | 6 | clicked | ignored |
//! | 7 | unsubscribed | Unsubscribe, Global |
//! | 8 | spam | SpamComplaint, Global |
//! | 9 | sent | ignored |
//! | 10 | smtpDropped | ignored |
//!
//! The docs' example uses `type: 2` for "email delivered successfully",
//! which agrees. Everything is Global: SendPost's suppressions are per
//! sub-account with no group scope (its `groups` are labels for stats),
//! and hush's SendPost API shows only Global entries (docs/mapping.md).

use hush_model::{BounceClass, Kind, Origin, Timestamp};
use serde::Deserialize;

use super::{
    Action, Ignored, ParseError, ProviderEvent, Target, email, enhanced_status, event_id,
    from_json, ignore, optional_text, required,
};

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object with `event` and `emailMessage`")]
struct RawBody {
    event: Option<RawEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an event object")]
struct RawEvent {
    /// `eventID` in the webhook docs; `eventId` in the SDKs' newer ("v1
    /// contract") Event model. Either is the dedupe key.
    #[serde(rename = "eventID", alias = "eventId")]
    event_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<i64>,
    to: Option<String>,
    /// When the event happened, in the newer Event model (UNIX ns).
    timestamp: Option<i64>,
    /// When the event happened in the webhook docs (the text says seconds,
    /// the example `1567512491587205000` is nanoseconds, as SendPost's other
    /// times are).
    #[serde(rename = "submittedAt")]
    submitted_at: Option<i64>,
    #[serde(rename = "smtpCode")]
    smtp_code: Option<i64>,
    #[serde(rename = "smtpDescription")]
    smtp_description: Option<String>,
    #[serde(rename = "eventMetadata")]
    metadata: Option<RawMetadata>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct RawMetadata {
    #[serde(rename = "smtpCode")]
    smtp_code: Option<i64>,
    #[serde(rename = "smtpDescription")]
    smtp_description: Option<String>,
}

/// Below this a time cannot be nanoseconds of any real event (it would be
/// in the first 17 minutes of 1970), so it is read as seconds, as the
/// webhook docs' text says.
const SECONDS_LIMIT: i64 = 1_000_000_000_000;

pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, ParseError> {
    let starts_as_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !starts_as_object {
        return Err(ParseError(
            "body: expected one JSON object with `event` and `emailMessage`".to_owned(),
        ));
    }
    let raw: RawBody = from_json(body, "body")?;
    let event = required(raw.event, "event")?;
    let id = event_id(event.event_id.clone(), "event.eventID")?;
    let code = required(event.event_type, "event.type")?;
    let action = match code {
        4 => suppress(&event, bounce(&event)?)?,
        7 => suppress(&event, Kind::Unsubscribe)?,
        8 => suppress(&event, Kind::SpamComplaint { source: None })?,
        _ => match ignored_name(code) {
            Some(name) => ignore(Ignored::NotSuppressing, name, "event.type")?,
            None => ignore(Ignored::Unknown, &code.to_string(), "event.type")?,
        },
    };
    Ok(vec![ProviderEvent {
        id,
        actions: vec![action],
    }])
}

/// SendPost's own names for the codes hush ignores.
fn ignored_name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "processed",
        1 => "dropped",
        2 => "delivered",
        3 => "softBounced",
        5 => "opened",
        6 => "clicked",
        9 => "sent",
        10 => "smtpDropped",
        _ => return None,
    })
}

/// The SMTP reply is on the event and, in the docs' example, repeated in
/// `eventMetadata`; either will do.
fn bounce(event: &RawEvent) -> Result<Kind, ParseError> {
    let metadata = event.metadata.as_ref();
    let reason = match optional_text(event.smtp_description.clone(), "event.smtpDescription")? {
        Some(reason) => Some(reason),
        None => optional_text(
            metadata.and_then(|m| m.smtp_description.clone()),
            "event.eventMetadata.smtpDescription",
        )?,
    };
    let code = event
        .smtp_code
        .or_else(|| metadata.and_then(|m| m.smtp_code))
        .filter(|c| *c > 0);
    let status = reason
        .as_deref()
        .and_then(enhanced_status)
        .or_else(|| code.map(|c| c.to_string()));
    Ok(Kind::Bounce {
        class: BounceClass::Hard,
        status,
        reason,
    })
}

fn suppress(event: &RawEvent, kind: Kind) -> Result<Action, ParseError> {
    Ok(Action::Suppress {
        email: email(event.to.as_deref(), "event.to")?,
        target: Target::Global,
        kind,
        origin: Origin::Recipient,
        at: at(event)?,
    })
}

fn at(event: &RawEvent) -> Result<Timestamp, ParseError> {
    let (raw, field) = match (event.timestamp, event.submitted_at) {
        (Some(t), _) => (t, "event.timestamp"),
        (None, Some(t)) => (t, "event.submittedAt"),
        (None, None) => return Err(ParseError::missing("event.submittedAt")),
    };
    if raw < 0 {
        return Err(ParseError::field(field, format!("{raw} is before 1970")));
    }
    Ok(if raw < SECONDS_LIMIT {
        Timestamp::from_unix_seconds(raw)
    } else {
        Timestamp::from_nanos(raw)
    })
}
