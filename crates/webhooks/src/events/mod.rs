//! Provider events in hush's words: each provider's webhook body, once
//! verified, read into what hush should record (MAPPING.md in this crate has
//! the table). Pure: no I/O, no clock, no store; deduplication by
//! [`ProviderEvent::id`] and recording are the caller's.
//!
//! What the parsers share:
//! - Every address goes through [`Email::parse`]; one that does not parse is
//!   a [`ParseError`] naming its field, except where a module says why not.
//! - Only the fields an action uses are required: an event that is ignored
//!   needs its type and its id, nothing else, so a provider adding or
//!   reshaping fields hush does not read never turns a delivery report into
//!   a refused body. Unknown fields are tolerated everywhere.
//! - Text hush keeps (ids, reasons, statuses, event names for counts) must
//!   not hold a NUL ([`has_nul`]).
//! - A bounce's `status` is the RFC 3463 enhanced code (`5.1.1`) when the
//!   provider gives one or its reply text contains one, else the provider's
//!   basic SMTP code as text (`550`), else none; its `reason` is the remote
//!   MTA's reply as the provider words it.

pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod sendpost;
pub mod ses;

use hush_model::{Email, GroupKey, Kind, KindSet, Origin, Timestamp, has_nul};
use serde::de::DeserializeOwned;

/// The providers whose events hush reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    SendGrid,
    Postmark,
    SendPost,
    Mailgun,
    Ses,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Self::SendGrid,
        Self::Postmark,
        Self::SendPost,
        Self::Mailgun,
        Self::Ses,
    ];

    /// The name in paths (`/webhooks/{provider}/{hook}`), config and the
    /// journal's door (`webhook:<provider>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendGrid => "sendgrid",
            Self::Postmark => "postmark",
            Self::SendPost => "sendpost",
            Self::Mailgun => "mailgun",
            Self::Ses => "ses",
        }
    }

    /// Exact and lowercase, as [`Provider::as_str`] writes it: a path
    /// segment or config value, not free text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One provider event as hush reads it: what to deduplicate it by, and what
/// it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider's event id (or hush's stable stand-in for one, see each
    /// module): a replay carries the same id.
    pub id: String,
    /// Usually one; an SES notification names several recipients, one
    /// action each.
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Record a suppression.
    Suppress {
        email: Email,
        target: Target,
        kind: Kind,
        origin: Origin,
        at: Timestamp,
    },
    /// The provider lifted a suppression (SendGrid group_resubscribe, Postmark
    /// SubscriptionChange with SuppressSending false).
    Lift {
        email: Email,
        target: Target,
        kinds: KindSet,
    },
    /// Accepted and not recorded.
    Ignore(Ignored),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Global,
    Group(GroupRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupRef {
    /// SendGrid's `asm_group_id`: the group's id as v3 clients see it.
    ShownId(i64),
    /// A group by key: a Postmark stream's ID, a Mailgun tag.
    Key(GroupKey),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// Deliveries, opens, clicks, deferrals, soft/transient bounces: not a
    /// reason to suppress.
    NotSuppressing(String),
    /// Only echoes a suppression the provider already has (SendGrid dropped
    /// for an "… Address" reason, Mailgun suppress-*, SES
    /// OnAccountSuppressionList / Suppressed).
    Echo(String),
    /// A provider's test or set-up post (Postmark's test payloads sent when a
    /// webhook is saved, SES's "Successfully validated SNS topic"
    /// notification).
    Test,
    /// An event type hush does not know (accepted, not recorded, counted).
    Unknown(String),
}

/// Why a body that passed verification still cannot be read: malformed JSON,
/// a required field missing or of the wrong type, an address that does not
/// parse, a NUL in text. The message names the field and is safe to show the
/// caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    /// `` `field`: problem ``, the form every message takes.
    pub(crate) fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self(format!("`{field}`: {problem}"))
    }

    pub(crate) fn missing(field: &str) -> Self {
        Self::field(field, "is missing")
    }
}

/// Deserializes a body, naming the path of the value that did not fit
/// (`[3].asm_group_id`) so the provider's support can find it.
pub(crate) fn from_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // A path names a value of the wrong shape; broken JSON has no
        // meaningful path (it is wherever the text stopped making sense).
        if inner.classify() != serde_json::error::Category::Data || path.is_empty() || path == "." {
            ParseError(format!("{what}: {inner}"))
        } else {
            ParseError::field(&path, inner)
        }
    })?;
    // serde_json stops at the end of the value; anything after it is as
    // malformed as a missing brace.
    deserializer
        .end()
        .map_err(|err| ParseError(format!("{what}: {err}")))?;
    Ok(value)
}

/// A required field, present.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ParseError> {
    value.ok_or_else(|| ParseError::missing(field))
}

/// Text hush keeps: refused when it holds a NUL, the one character no store
/// can hold (model `has_nul`).
pub(crate) fn text(value: String, field: &str) -> Result<String, ParseError> {
    if has_nul(&value) {
        Err(ParseError::field(field, "contains a NUL character"))
    } else {
        Ok(value)
    }
}

/// Optional text hush keeps; empty counts as absent, since providers send
/// `""` for "none" (Mailgun's `description`, Postmark's `Description`).
pub(crate) fn optional_text(
    value: Option<String>,
    field: &str,
) -> Result<Option<String>, ParseError> {
    match value {
        Some(v) if !v.trim().is_empty() => text(v, field).map(Some),
        _ => Ok(None),
    }
}

/// The address in `field`, normalized by the model's one rule.
pub(crate) fn email(raw: Option<&str>, field: &str) -> Result<Email, ParseError> {
    let raw = required(raw, field)?;
    Email::parse(raw).map_err(|err| ParseError::field(field, err))
}

/// An event id: present, not empty, no NUL.
pub(crate) fn event_id(raw: Option<String>, field: &str) -> Result<String, ParseError> {
    let raw = required(raw, field)?;
    if raw.is_empty() {
        return Err(ParseError::field(field, "is empty"));
    }
    text(raw, field)
}

/// An RFC 3339 time with any offset and any number of fractional digits
/// (Postmark writes seven: `2014-08-01T13:28:10.2735393-04:00`).
pub(crate) fn rfc3339(raw: Option<&str>, field: &str) -> Result<Timestamp, ParseError> {
    let raw = required(raw, field)?;
    Timestamp::parse_rfc3339(raw).map_err(|err| ParseError::field(field, err))
}

/// Seconds since the epoch as a JSON number, possibly fractional (Mailgun's
/// `1521233195.375624`), to the nanosecond. Read from the number's decimal
/// text, not through an `f64` product, which would lose the microseconds
/// at this magnitude.
pub(crate) fn unix_seconds(
    raw: Option<&serde_json::Number>,
    field: &str,
) -> Result<Timestamp, ParseError> {
    let raw = required(raw, field)?;
    unix_seconds_text(&raw.to_string(), field)
}

/// [`unix_seconds`] from the number's text.
pub(crate) fn unix_seconds_text(raw: &str, field: &str) -> Result<Timestamp, ParseError> {
    decimal_seconds_to_nanos(raw.trim())
        .map(Timestamp::from_nanos)
        .ok_or_else(|| ParseError::field(field, format!("{raw:?} is not a time in seconds")))
}

/// `1521233195.375624`, `1513299569`, `1.5e9` → nanoseconds; `None` when
/// out of range or not a plain decimal.
fn decimal_seconds_to_nanos(raw: &str) -> Option<i64> {
    let (mantissa, exponent) = match raw.find(['e', 'E']) {
        Some(at) => (&raw[..at], raw[at + 1..].parse::<i32>().ok()?),
        None => (raw, 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The digits as one integer scaled to nanoseconds: shift the decimal
    // point by the exponent and nine places, dropping what falls below a
    // nanosecond.
    let digits = format!("{whole}{fraction}");
    let shift = i64::try_from(fraction.len()).ok()?;
    let scale = 9 + i64::from(exponent) - shift;
    let mut nanos: i128 = 0;
    let kept = if scale >= 0 {
        digits.len()
    } else {
        digits
            .len()
            .saturating_sub(usize::try_from(scale.unsigned_abs()).unwrap_or(usize::MAX))
    };
    for b in digits.bytes().take(kept) {
        nanos = nanos.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    for _ in 0..scale.max(0) {
        nanos = nanos.checked_mul(10)?;
    }
    let nanos = if negative { -nanos } else { nanos };
    i64::try_from(nanos).ok()
}

/// The RFC 3463 enhanced status code in an SMTP reply, e.g. `5.1.1` in
/// `smtp; 550 5.1.1 User unknown`: class 2, 4 or 5, then a subject and a
/// detail of one to three digits. The v3 API reads a bounce's status from
/// its reason the same way (hush-v3 `wire::enhanced_status`).
pub(crate) fn enhanced_status(reply: &str) -> Option<String> {
    reply
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';' | ':' | '<' | '>')
        })
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

/// Ignored for one event type: the name is kept for counts, so it must be
/// text hush can keep.
pub(crate) fn ignore(
    make: fn(String) -> Ignored,
    event_type: &str,
    field: &str,
) -> Result<Action, ParseError> {
    text(event_type.to_owned(), field).map(|t| Action::Ignore(make(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
        assert_eq!(Provider::parse("SendGrid"), None);
        assert_eq!(Provider::parse(""), None);
    }

    #[test]
    fn decimal_seconds_keep_microseconds() {
        assert_eq!(
            decimal_seconds_to_nanos("1521233195.375624"),
            Some(1_521_233_195_375_624_000)
        );
        assert_eq!(
            decimal_seconds_to_nanos("1513299569"),
            Some(1_513_299_569_000_000_000)
        );
        assert_eq!(
            decimal_seconds_to_nanos("1.5e9"),
            Some(1_500_000_000_000_000_000)
        );
        assert_eq!(
            decimal_seconds_to_nanos("1.0000000001234"),
            Some(1_000_000_000)
        );
        assert_eq!(decimal_seconds_to_nanos("-1.5"), Some(-1_500_000_000));
        assert_eq!(decimal_seconds_to_nanos("1e30"), None);
        assert_eq!(decimal_seconds_to_nanos("abc"), None);
        assert_eq!(decimal_seconds_to_nanos(".5"), None);
    }

    #[test]
    fn enhanced_status_in_replies() {
        assert_eq!(
            enhanced_status("smtp; 550 5.1.1 <jane@example.com>... User").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("smtp;550 5.1.1 The email account").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(enhanced_status("No Such User Here"), None);
        assert_eq!(enhanced_status("version 1.2.3"), None);
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let err = from_json::<Vec<serde_json::Value>>(b"[] x", "body").expect_err("garbage");
        assert!(err.0.starts_with("body: trailing characters"), "{err}");
    }
}
