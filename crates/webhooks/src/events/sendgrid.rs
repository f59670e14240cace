//! SendGrid's Event Webhook (Twilio SendGrid docs, "Event Webhook
//! Reference", sendgrid/docs `content/docs/for-developers/tracking-events/
//! event.md`): a JSON array of events, even for one, each with `email`,
//! `timestamp` (unix seconds), `event` and `sg_event_id`. Categories and
//! unique arguments ride along as extra top-level keys (`category` is a
//! string or an array), so only the keys read here are declared and the
//! rest are left alone.

use hush_model::{BounceClass, Kind, KindFamily, KindSet, Origin};
use serde::Deserialize;

use super::{
    Action, GroupRef, Ignored, ParseError, ProviderEvent, Target, email, enhanced_status, event_id,
    from_json, ignore, optional_text, required, unix_seconds,
};

#[derive(Debug, Deserialize)]
#[serde(expecting = "an event object")]
struct RawEvent {
    event: Option<String>,
    sg_event_id: Option<String>,
    email: Option<String>,
    timestamp: Option<serde_json::Number>,
    reason: Option<String>,
    status: Option<String>,
    /// On `bounce`: `bounce` (permanent) or `blocked` (SendGrid docs,
    /// "Bounce" and "Blocked" rows; absent in older payloads).
    #[serde(rename = "type")]
    bounce_type: Option<String>,
    asm_group_id: Option<i64>,
}

/// Drop reasons that only say SendGrid already suppresses the address
/// (SendGrid docs, "Dropped": Unsubscribed Address, Bounced Address, Spam
/// Reporting Address); the suppression itself arrived, or will, as its own
/// event.
const ECHO_DROP_REASONS: [&str; 3] = [
    "Bounced Address",
    "Unsubscribed Address",
    "Spam Reporting Address",
];

/// Every event of the batch, in order. One event that cannot be read fails
/// the batch: SendGrid retries a refused batch whole (up to 24 hours), so
/// the caller must not record part of it and then refuse it.
pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, ParseError> {
    let starts_as_array = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    if !starts_as_array {
        return Err(ParseError(
            "body: expected a JSON array of events (SendGrid posts an array even for one event)"
                .to_owned(),
        ));
    }
    let raw: Vec<RawEvent> = from_json(body, "body")?;
    raw.into_iter()
        .enumerate()
        .map(|(index, event)| read_event(index, &event))
        .collect()
}

fn read_event(index: usize, raw: &RawEvent) -> Result<ProviderEvent, ParseError> {
    let field = |name: &str| format!("[{index}].{name}");
    let id = event_id(raw.sg_event_id.clone(), &field("sg_event_id"))?;
    let name = required(raw.event.as_deref(), &field("event"))?;
    let action = match name {
        "bounce" => bounce(raw, &field)?,
        "dropped" => dropped(raw, &field)?,
        "spamreport" => suppress(
            raw,
            &field,
            Target::Global,
            Kind::SpamComplaint { source: None },
        )?,
        // "Opt Out of All Emails" (SendGrid docs, "Unsubscribe").
        "unsubscribe" => suppress(raw, &field, Target::Global, Kind::Unsubscribe)?,
        "group_unsubscribe" => {
            let group = group(raw, &field)?;
            suppress(raw, &field, group, Kind::Unsubscribe)?
        }
        "group_resubscribe" => Action::Lift {
            email: email(raw.email.as_deref(), &field("email"))?,
            target: group(raw, &field)?,
            // A group's suppressions are one list to SendGrid; hush keeps
            // Unsubscribe and Manual entries in it and v3's delete of a
            // group member removes both (docs/mapping.md, "Deletes"), so a
            // resubscribe lifts both.
            kinds: KindSet::family(KindFamily::Unsubscribe)
                .with(KindSet::family(KindFamily::Manual)),
        },
        "processed" | "delivered" | "deferred" | "open" | "click" => {
            ignore(Ignored::NotSuppressing, name, &field("event"))?
        }
        other => ignore(Ignored::Unknown, other, &field("event"))?,
    };
    Ok(ProviderEvent {
        id,
        actions: vec![action],
    })
}

/// `type: blocked` is a bounce SendGrid lists as a block
/// (`/v3/suppression/blocks`), kept as the Block class; `bounce`, absent or
/// any other value is the permanent bounce the `bounce` event documents.
fn bounce(raw: &RawEvent, field: &dyn Fn(&str) -> String) -> Result<Action, ParseError> {
    let class = match raw.bounce_type.as_deref() {
        Some("blocked") => BounceClass::Block,
        _ => BounceClass::Hard,
    };
    let reason = optional_text(raw.reason.clone(), &field("reason"))?;
    // `status` is sometimes absent on blocks (a logged real payload, see
    // the research notes §1.1); the reply text often carries the code.
    let status = match optional_text(raw.status.clone(), &field("status"))? {
        Some(status) => Some(status),
        None => reason.as_deref().and_then(enhanced_status),
    };
    let kind = Kind::Bounce {
        class,
        status,
        reason,
    };
    suppress(raw, field, Target::Global, kind)
}

/// Only `Invalid` is SendGrid's own verdict on the address; the "…
/// Address" reasons echo an existing suppression, and the others (spam
/// content, quota, a bad SMTPAPI header) are about the sender.
fn dropped(raw: &RawEvent, field: &dyn Fn(&str) -> String) -> Result<Action, ParseError> {
    let reason = raw.reason.as_deref().map(str::trim).unwrap_or_default();
    if ECHO_DROP_REASONS.contains(&reason) {
        return ignore(Ignored::Echo, "dropped", &field("event"));
    }
    if reason != "Invalid" {
        return ignore(Ignored::NotSuppressing, "dropped", &field("event"));
    }
    // SendGrid drops as Invalid the addresses it judges malformed, and some
    // of those hush cannot parse either (`invalid@invalid` in anymail's
    // real payload). Such an address can never be mailed nor stored; failing
    // the batch for it would make SendGrid retry every other event of it for
    // a day.
    if raw
        .email
        .as_deref()
        .is_some_and(|e| hush_model::Email::parse(e).is_err())
    {
        return ignore(Ignored::NotSuppressing, "dropped", &field("event"));
    }
    let kind = Kind::Invalid {
        reason: optional_text(raw.reason.clone(), &field("reason"))?,
    };
    suppress(raw, field, Target::Global, kind)
}

fn group(raw: &RawEvent, field: &dyn Fn(&str) -> String) -> Result<Target, ParseError> {
    let id = required(raw.asm_group_id, &field("asm_group_id"))?;
    Ok(Target::Group(GroupRef::ShownId(id)))
}

/// Every SendGrid event is the recipient's doing: their mailbox bounced,
/// they complained or unsubscribed.
fn suppress(
    raw: &RawEvent,
    field: &dyn Fn(&str) -> String,
    target: Target,
    kind: Kind,
) -> Result<Action, ParseError> {
    Ok(Action::Suppress {
        email: email(raw.email.as_deref(), &field("email"))?,
        target,
        kind,
        origin: Origin::Recipient,
        at: unix_seconds(raw.timestamp.as_ref(), &field("timestamp"))?,
    })
}
