//! Reading SendPost requests: JSON bodies and query strings, each failure a
//! 422 in the SendPost envelope naming the input.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use hush_model::{Email, Timestamp};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use time::{Date, Month};

use crate::{SendPostError, SendPostState};

/// A required JSON body, read whatever the Content-Type says (the SDK sends
/// `application/json`, curl users often send none). DELETE carries one too
/// (the SDK's `delete_suppression` sends it).
#[derive(Debug)]
pub struct SendPostJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for SendPostJson<T> {
    type Error = SendPostError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, SendPostError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<SendPostState>>()
            .map_or(1 << 20, |state| state.body_limit);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes
                .await
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => SendPostError::PayloadTooLarge(limit),
                    _ if hush_http::is_body_timeout(&err) => SendPostError::RequestTimeout,
                    _ => SendPostError::invalid_body("body", "the request body could not be read"),
                })?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(SendPostError::invalid_body(
                    "body",
                    "a JSON request body is required",
                ));
            }
            serde_json::from_slice(&bytes).map(Self).map_err(|err| {
                let message = if err.is_data() {
                    // Well-formed JSON of the wrong shape: an array or a
                    // string where an object or a list belongs (the SDK's
                    // request models).
                    format!("the body does not have the expected shape: {err}")
                } else {
                    format!("the body is not valid JSON: {err}")
                };
                SendPostError::invalid_body("body", message)
            })
        })
    }
}

/// The query string's parameters, percent-decoded. Not form-decoded: the SDK
/// encodes a space as `%20` and a plus as `%2B` (`urllib.parse.quote`), so a
/// literal `+`, as in `search=bob+tag`, is a plus.
#[derive(Debug)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn from_request(req: &HttpRequest) -> Self {
        let decode = |raw: &str| percent_decode_str(raw).decode_utf8_lossy().into_owned();
        Self(
            req.query_string()
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key), decode(value))
                })
                .collect(),
        )
    }

    /// The last value of a parameter as sent; `None` when absent or empty.
    /// Nothing is trimmed: SendPost's API reference gives exact forms
    /// (`YYYY-MM-DD`, integers, enum names) and the SDK sends them exactly,
    /// so `from=2024-01-01%20` is a bad date, not a date.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// An integer parameter within bounds, with a message naming it. Only
    /// ASCII digits: no sign, no spaces, no `+5` (Rust's `parse` takes a
    /// leading `+`).
    pub fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, SendPostError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let parsed = raw
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| raw.parse::<i64>().ok())
            .flatten();
        match parsed {
            Some(value) if (min..=max).contains(&value) => Ok(Some(value)),
            _ if max == i64::MAX => Err(SendPostError::invalid_param(
                name,
                format!("{name} must be an integer of at least {min}; got {raw:?}"),
            )),
            _ => Err(SendPostError::invalid_param(
                name,
                format!("{name} must be an integer from {min} to {max}; got {raw:?}"),
            )),
        }
    }

    /// A `YYYY-MM-DD` date parameter (SendPost API reference,
    /// get-all-suppressions), strictly that form, within the days whose every
    /// nanosecond a [`Timestamp`] holds.
    pub fn day(&self, name: &str) -> Result<Option<Day>, SendPostError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let date = parse_day(raw).ok_or_else(|| {
            SendPostError::invalid_param(
                name,
                format!("{name} must be a date in the form YYYY-MM-DD; got {raw:?}"),
            )
        })?;
        Day::new(date).map(Some).ok_or_else(|| {
            SendPostError::invalid_param(
                name,
                format!(
                    "{name} must be a date from {} to {}; got {raw:?}",
                    Day::FIRST,
                    Day::LAST
                ),
            )
        })
    }
}

const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

/// A UTC day given as `YYYY-MM-DD`, known to lie within the range of
/// [`Timestamp`] (about 1677 to 2262), so its first and last nanosecond
/// are exact rather than saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    date: Date,
    start: Timestamp,
    end: Timestamp,
}

impl Day {
    /// The first and last days every nanosecond of which is a `Timestamp`.
    pub const FIRST: &str = "1677-09-22";
    pub const LAST: &str = "2262-04-10";

    fn new(date: Date) -> Option<Self> {
        let days = i128::from(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY);
        let start = i64::try_from(days * NANOS_PER_DAY).ok()?;
        let end = i64::try_from((days + 1) * NANOS_PER_DAY - 1).ok()?;
        Some(Self {
            date,
            start: Timestamp::from_nanos(start),
            end: Timestamp::from_nanos(end),
        })
    }

    /// The day's first nanosecond (UTC).
    pub fn start(self) -> Timestamp {
        self.start
    }

    /// The day's last nanosecond (UTC), for inclusive ends.
    pub fn end(self) -> Timestamp {
        self.end
    }

    /// Whole days from `earlier` to this day, counted on the calendar.
    pub fn days_after(self, earlier: Self) -> i64 {
        (self.date - earlier.date).whole_days()
    }
}

/// 1970-01-01 as a Julian day number.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// `YYYY-MM-DD` and nothing else: four, two and two ASCII digits with
/// dashes, a real calendar day. (The `time` parser alone would also take
/// a signed year such as `+2026-12-01`.)
fn parse_day(raw: &str) -> Option<Date> {
    let mut parts = raw.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let digits =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(year, 4) || !digits(month, 2) || !digits(day, 2) {
        return None;
    }
    let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

/// The email of one body item, with its place named on failure
/// (`manual[0].email`).
pub fn item_email(param: &str, raw: Option<&str>) -> Result<Email, SendPostError> {
    let raw =
        raw.ok_or_else(|| SendPostError::invalid_body(param, format!("{param} is required")))?;
    Email::parse(raw).map_err(|err| SendPostError::invalid_body(param, format!("{raw:?}: {err}")))
}
