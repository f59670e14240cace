//! Amazon SES notifications through SNS (SES developer guide, "Amazon SNS
//! notification contents" and "Event publishing: contents of event data
//! published to Amazon SNS"; awsdocs/amazon-ses-developer-guide
//! `doc-source/notification-contents.md`,
//! `event-publishing-retrieving-sns-contents.md`). The caller has verified
//! the SNS envelope; this reads its `Message`, a string holding the SES
//! JSON, and takes the envelope's `MessageId`, which SNS keeps across
//! retries, as the event id.
//!
//! Identity notifications name their type in `notificationType`,
//! configuration-set event publishing in `eventType`; the objects inside are
//! the same. One notification may cover several recipients: one action each.
//!
//! Everything is Global: SES's account-level suppression list is one list
//! per account and region.

use hush_model::{BounceClass, Kind, Origin, Timestamp};
use serde::Deserialize;

use super::{
    Action, Ignored, ParseError, ProviderEvent, Target, email, enhanced_status, event_id,
    from_json, ignore, optional_text, required, rfc3339,
};

/// What SES publishes once a topic is confirmed as an event destination
/// (anymail `anymail/webhooks/amazon_ses.py`, which ignores it too). It is
/// plain text, not JSON.
pub const VALIDATION_MESSAGE: &str =
    "Successfully validated SNS topic for Amazon SES event publishing.";

#[derive(Debug, Deserialize)]
#[serde(expecting = "an SES notification object")]
struct RawNotification {
    #[serde(rename = "notificationType")]
    notification_type: Option<String>,
    #[serde(rename = "eventType")]
    event_type: Option<String>,
    bounce: Option<RawBounce>,
    complaint: Option<RawComplaint>,
    mail: Option<RawMail>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a bounce object")]
struct RawBounce {
    #[serde(rename = "bounceType")]
    bounce_type: Option<String>,
    #[serde(rename = "bounceSubType")]
    bounce_sub_type: Option<String>,
    #[serde(rename = "bouncedRecipients")]
    recipients: Option<Vec<RawRecipient>>,
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a complaint object")]
struct RawComplaint {
    #[serde(rename = "complainedRecipients")]
    recipients: Option<Vec<RawRecipient>>,
    timestamp: Option<String>,
    #[serde(rename = "complaintSubType")]
    sub_type: Option<String>,
    #[serde(rename = "complaintFeedbackType")]
    feedback_type: Option<String>,
}

/// A bounced or complained recipient. `emailAddress` is a bare address in
/// every example AWS documents (for a bounce with a DSN it is the DSN's
/// `Final-Recipient`), so a display-name form is refused like any other
/// address that does not parse rather than guessed at.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a recipient object")]
struct RawRecipient {
    #[serde(rename = "emailAddress")]
    email_address: Option<String>,
    /// The DSN's `Status` (`5.1.1`).
    status: Option<String>,
    /// The DSN's `Diagnostic-Code` (`smtp; 550 5.1.1 user unknown`).
    #[serde(rename = "diagnosticCode")]
    diagnostic_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a mail object")]
struct RawMail {
    timestamp: Option<String>,
}

/// `message` is the SNS envelope's `Message`; `message_id` its `MessageId`.
pub fn parse(message: &str, message_id: &str) -> Result<Vec<ProviderEvent>, ParseError> {
    let id = event_id(Some(message_id.to_owned()), "MessageId")?;
    if message.trim() == VALIDATION_MESSAGE {
        return Ok(vec![ProviderEvent {
            id,
            actions: vec![Action::Ignore(Ignored::Test)],
        }]);
    }
    if !message.trim_start().starts_with('{') {
        return Err(ParseError(
            "Message: expected the SES notification as a JSON object".to_owned(),
        ));
    }
    let raw: RawNotification = from_json(message.as_bytes(), "Message")?;
    let mail_time = raw.mail.as_ref().and_then(|m| m.timestamp.as_deref());
    let name = match (&raw.event_type, &raw.notification_type) {
        (Some(name), _) | (None, Some(name)) => name.as_str(),
        (None, None) => return Err(ParseError::missing("notificationType")),
    };
    let actions = match name {
        "Bounce" => bounce(required(raw.bounce.as_ref(), "bounce")?, mail_time)?,
        "Complaint" => complaint(required(raw.complaint.as_ref(), "complaint")?, mail_time)?,
        // Deliveries, sends, opens, clicks, rejections (a virus found in the
        // message), delays, template failures, and contact-list preference
        // changes (per list and topic, which hush does not map to groups).
        "Delivery" | "Send" | "Open" | "Click" | "Reject" | "DeliveryDelay"
        | "Rendering Failure" | "Subscription" => {
            vec![ignore(Ignored::NotSuppressing, name, "eventType")?]
        }
        other => vec![ignore(Ignored::Unknown, other, "eventType")?],
    };
    Ok(vec![ProviderEvent { id, actions }])
}

/// SES's bounce types ("Bounce types" in the notification contents):
/// `Permanent` `General` or `NoEmail` is a hard bounce; `Permanent`
/// `Suppressed` (SES's global list) and `OnAccountSuppressionList` are SES
/// declining to send to an address it already suppresses; `Transient` is
/// published only after SES stopped retrying, and with `Undetermined` says
/// nothing about the address that SES itself acts on. A `Permanent` subtype
/// added later is taken as the hard bounce AWS says to act on ("you should
/// immediately remove the recipient").
fn bounce(bounce: &RawBounce, mail_time: Option<&str>) -> Result<Vec<Action>, ParseError> {
    match required(bounce.bounce_type.as_deref(), "bounce.bounceType")? {
        "Permanent" => {}
        "Transient" | "Undetermined" => {
            return Ok(vec![ignore(
                Ignored::NotSuppressing,
                "Bounce",
                "eventType",
            )?]);
        }
        _ => return Ok(vec![ignore(Ignored::Unknown, "Bounce", "eventType")?]),
    }
    if matches!(
        bounce.bounce_sub_type.as_deref(),
        Some("Suppressed" | "OnAccountSuppressionList")
    ) {
        return Ok(vec![ignore(Ignored::Echo, "Bounce", "eventType")?]);
    }
    let at = at(bounce.timestamp.as_deref(), mail_time, "bounce.timestamp")?;
    recipients(bounce.recipients.as_deref(), "bounce.bouncedRecipients")?
        .iter()
        .enumerate()
        .map(|(index, recipient)| {
            let field = format!("bounce.bouncedRecipients[{index}]");
            let reason = optional_text(
                recipient.diagnostic_code.clone(),
                &format!("{field}.diagnosticCode"),
            )?;
            let status = match optional_text(recipient.status.clone(), &format!("{field}.status"))?
            {
                Some(status) => Some(status),
                None => reason.as_deref().and_then(enhanced_status),
            };
            let kind = Kind::Bounce {
                class: BounceClass::Hard,
                status,
                reason,
            };
            suppress(recipient, &field, kind, at)
        })
        .collect()
}

/// A complaint is a spam complaint unless SES only noted that the address
/// is on the account's suppression list, or the reporter says the message
/// is `not-spam` (an IANA MARF feedback type that corrects an earlier
/// report). Most ISPs redact the complainer, so SES may list every
/// recipient of the message at that ISP; SES itself suppresses all of them,
/// and so does hush.
fn complaint(complaint: &RawComplaint, mail_time: Option<&str>) -> Result<Vec<Action>, ParseError> {
    if complaint.sub_type.as_deref() == Some("OnAccountSuppressionList") {
        return Ok(vec![ignore(Ignored::Echo, "Complaint", "eventType")?]);
    }
    if complaint.feedback_type.as_deref() == Some("not-spam") {
        return Ok(vec![ignore(
            Ignored::NotSuppressing,
            "Complaint",
            "eventType",
        )?]);
    }
    let source = optional_text(
        complaint.feedback_type.clone(),
        "complaint.complaintFeedbackType",
    )?;
    let at = at(
        complaint.timestamp.as_deref(),
        mail_time,
        "complaint.timestamp",
    )?;
    recipients(
        complaint.recipients.as_deref(),
        "complaint.complainedRecipients",
    )?
    .iter()
    .enumerate()
    .map(|(index, recipient)| {
        let field = format!("complaint.complainedRecipients[{index}]");
        let kind = Kind::SpamComplaint {
            source: source.clone(),
        };
        suppress(recipient, &field, kind, at)
    })
    .collect()
}

fn recipients<'a>(
    list: Option<&'a [RawRecipient]>,
    field: &str,
) -> Result<&'a [RawRecipient], ParseError> {
    match required(list, field)? {
        [] => Err(ParseError::field(field, "is empty")),
        list => Ok(list),
    }
}

/// When the ISP reported it; the message's send time only when the report
/// has none.
fn at(own: Option<&str>, mail_time: Option<&str>, field: &str) -> Result<Timestamp, ParseError> {
    match (own, mail_time) {
        (Some(own), _) => rfc3339(Some(own), field),
        (None, Some(mail)) => rfc3339(Some(mail), "mail.timestamp"),
        (None, None) => Err(ParseError::missing(field)),
    }
}

fn suppress(
    recipient: &RawRecipient,
    field: &str,
    kind: Kind,
    at: Timestamp,
) -> Result<Action, ParseError> {
    Ok(Action::Suppress {
        email: email(
            recipient.email_address.as_deref(),
            &format!("{field}.emailAddress"),
        )?,
        target: Target::Global,
        kind,
        origin: Origin::Recipient,
        at,
    })
}
