//! Mailgun's webhooks (Mailgun docs, "Webhooks" and "Securing webhooks";
//! anymail `anymail/webhooks/mailgun.py`): one JSON object per POST,
//! `{"signature": {timestamp, token, signature}, "event-data": {…}}`. The
//! signature is inside the body, so this parser hands it back for the
//! verifier rather than checking it.
//!
//! Scope: Mailgun's unsubscribes carry tags, and hush's Mailgun API treats
//! the tag `*` as Global and any other tag as the group with that key
//! (DESIGN, "The provider registry, and two more dialects"); bounces and
//! complaints are Global, as Mailgun's own lists for them are per domain,
//! not per tag.

use hush_model::{BounceClass, GroupKey, Kind, Origin};
use serde::Deserialize;

use super::{
    Action, GroupRef, Ignored, ParseError, ProviderEvent, Target, email, enhanced_status, event_id,
    from_json, ignore, optional_text, required, text, unix_seconds_text,
};

/// The body's `signature` object, for the verifier: HMAC-SHA256 of
/// `timestamp` then `token` with the webhook signing key must equal
/// `signature` (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The text as sent: Mailgun's example sends a string; a number is
    /// returned as its JSON text, which is what was signed.
    pub timestamp: String,
    pub token: String,
    pub signature: String,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object with `signature` and `event-data`")]
struct RawBody {
    signature: Option<RawSignature>,
    #[serde(rename = "event-data")]
    event_data: Option<RawEventData>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object with `timestamp`, `token` and `signature`")]
struct RawSignature {
    timestamp: Option<TextOrNumber>,
    token: Option<String>,
    signature: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an event object")]
struct RawEventData {
    event: Option<String>,
    /// On `failed`: `permanent` or `temporary`.
    severity: Option<String>,
    /// On `failed`: `bounce`, `suppress-bounce`, `generic`, … .
    reason: Option<String>,
    recipient: Option<String>,
    /// Seconds with microseconds, a JSON number (a string in some
    /// captures, which anymail also accepts).
    timestamp: Option<TextOrNumber>,
    #[serde(rename = "delivery-status")]
    delivery_status: Option<RawDeliveryStatus>,
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct RawDeliveryStatus {
    /// The SMTP reply code (`550`), or Mailgun's own (`605`).
    code: Option<TextOrNumber>,
    /// RFC 3463 (`5.1.1`), often `""`.
    #[serde(rename = "enhanced-code")]
    enhanced_code: Option<String>,
    /// The remote server's reply.
    message: Option<String>,
    /// Mailgun's explanation when there was no reply.
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[serde(expecting = "a string or a number")]
enum TextOrNumber {
    Text(String),
    Number(serde_json::Number),
}

impl TextOrNumber {
    fn into_text(self) -> String {
        match self {
            Self::Text(t) => t,
            Self::Number(n) => n.to_string(),
        }
    }
}

/// The signature to verify and the event. The id is the signature's
/// `token`: `event-data.id` is only "guaranteed to be unique within a day"
/// (anymail, quoting Mailgun).
pub fn parse(body: &[u8]) -> Result<(Signed, Vec<ProviderEvent>), ParseError> {
    let starts_as_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !starts_as_object {
        return Err(ParseError(
            "body: expected one JSON object with `signature` and `event-data`".to_owned(),
        ));
    }
    let raw: RawBody = from_json(body, "body")?;
    let signed = signed(required(raw.signature, "signature")?)?;
    let data = required(raw.event_data, "event-data")?;
    let actions = actions(&data)?;
    let event = ProviderEvent {
        id: signed.token.clone(),
        actions,
    };
    Ok((signed, vec![event]))
}

fn signed(raw: RawSignature) -> Result<Signed, ParseError> {
    let timestamp = required(raw.timestamp, "signature.timestamp")?.into_text();
    Ok(Signed {
        timestamp: text(timestamp, "signature.timestamp")?,
        token: event_id(raw.token, "signature.token")?,
        signature: text(
            required(raw.signature, "signature.signature")?,
            "signature.signature",
        )?,
    })
}

fn actions(data: &RawEventData) -> Result<Vec<Action>, ParseError> {
    let name = required(data.event.as_deref(), "event-data.event")?;
    let action = match name {
        "failed" => failed(data)?,
        "complained" => suppress(data, Target::Global, Kind::SpamComplaint { source: None })?,
        "unsubscribed" => return unsubscribed(data),
        // `rejected` is Mailgun refusing the message (a sandbox domain, a
        // bad request), not the recipient's doing.
        "accepted" | "rejected" | "delivered" | "opened" | "clicked" | "stored" => {
            ignore(Ignored::NotSuppressing, name, "event-data.event")?
        }
        other => ignore(Ignored::Unknown, other, "event-data.event")?,
    };
    Ok(vec![action])
}

/// `failed` is both hard and soft: `severity` tells them apart, and a
/// permanent `reason` starting `suppress-` is Mailgun declining to send to
/// an address already on its bounce, unsubscribe or complaint list
/// ("Not delivering to previously bounced address", code 605).
fn failed(data: &RawEventData) -> Result<Action, ParseError> {
    match required(data.severity.as_deref(), "event-data.severity")? {
        "permanent" => {
            let reason = data.reason.as_deref().unwrap_or_default();
            if reason.starts_with("suppress-") {
                ignore(Ignored::Echo, "failed", "event-data.event")
            } else {
                let kind = bounce(data.delivery_status.as_ref())?;
                suppress(data, Target::Global, kind)
            }
        }
        "temporary" => ignore(Ignored::NotSuppressing, "failed", "event-data.event"),
        _ => ignore(Ignored::Unknown, "failed", "event-data.event"),
    }
}

fn bounce(status: Option<&RawDeliveryStatus>) -> Result<Kind, ParseError> {
    let field = "event-data.delivery-status";
    let reason = match optional_text(
        status.and_then(|s| s.message.clone()),
        &format!("{field}.message"),
    )? {
        Some(message) => Some(message),
        None => optional_text(
            status.and_then(|s| s.description.clone()),
            &format!("{field}.description"),
        )?,
    };
    let enhanced = optional_text(
        status.and_then(|s| s.enhanced_code.clone()),
        &format!("{field}.enhanced-code"),
    )?;
    let code = match status.and_then(|s| s.code.as_ref()) {
        Some(TextOrNumber::Text(t)) => optional_text(Some(t.clone()), &format!("{field}.code"))?,
        Some(TextOrNumber::Number(n)) => Some(n.to_string()),
        None => None,
    };
    let status = enhanced
        .or_else(|| reason.as_deref().and_then(enhanced_status))
        .or(code);
    Ok(Kind::Bounce {
        class: BounceClass::Hard,
        status,
        reason,
    })
}

/// One Unsubscribe per tag: `*` is Global, any other tag the group with
/// that key. No tags, or a tag that cannot be a group key (Mailgun allows
/// any text, hush keys are `[a-z][a-z0-9_-]*`), is Global: hush cannot name
/// a group for it, and an unsubscribe must not be lost.
fn unsubscribed(data: &RawEventData) -> Result<Vec<Action>, ParseError> {
    let mut targets: Vec<Target> = Vec::new();
    for tag in data.tags.iter().flatten() {
        let target = match GroupKey::parse(tag) {
            Ok(key) if tag != "*" => Target::Group(GroupRef::Key(key)),
            _ => Target::Global,
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    if targets.is_empty() {
        targets.push(Target::Global);
    }
    targets
        .into_iter()
        .map(|target| suppress(data, target, Kind::Unsubscribe))
        .collect()
}

/// Mailgun's events are the recipient's doing: their server refused, they
/// complained or unsubscribed.
fn suppress(data: &RawEventData, target: Target, kind: Kind) -> Result<Action, ParseError> {
    let timestamp = required(data.timestamp.as_ref(), "event-data.timestamp")?;
    let seconds = match timestamp {
        TextOrNumber::Text(t) => t.clone(),
        TextOrNumber::Number(n) => n.to_string(),
    };
    Ok(Action::Suppress {
        email: email(data.recipient.as_deref(), "event-data.recipient")?,
        target,
        kind,
        origin: Origin::Recipient,
        at: unix_seconds_text(&seconds, "event-data.timestamp")?,
    })
}
