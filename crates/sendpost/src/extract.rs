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

use crate::{SendPostError, SendPostState};

/// A required JSON body, read whatever the Content-Type says (the SDK sends
/// `application/json`, curl users often send none). DELETE carries one too
/// (specs/sendpost.md §4.3).
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
                    _ => SendPostError::invalid_body("body", "the request body could not be read"),
                })?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(SendPostError::invalid_body(
                    "body",
                    "a JSON request body is required",
                ));
            }
            serde_json::from_slice(&bytes).map(Self).map_err(|err| {
                SendPostError::invalid_body("body", format!("the body is not valid JSON: {err}"))
            })
        })
    }
}

/// The query string's parameters, percent-decoded. Not form-decoded: the
/// SDK encodes a space as `%20` and a plus as `%2B` (§4.2), so a literal
/// `+`, as in `search=bob+tag`, is a plus.
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

    /// The last value of a parameter, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// An integer parameter within bounds, with a message naming it.
    pub fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, SendPostError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        match raw.parse::<i64>() {
            Ok(value) if (min..=max).contains(&value) => Ok(Some(value)),
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

    /// A `YYYY-MM-DD` date parameter as its first nanosecond (UTC).
    pub fn day_start(&self, name: &str) -> Result<Option<Timestamp>, SendPostError> {
        self.get(name)
            .map(|raw| Timestamp::start_of_day(raw).map_err(|_| bad_date(name, raw)))
            .transpose()
    }

    /// A `YYYY-MM-DD` date parameter as its last nanosecond (UTC), for
    /// inclusive ends.
    pub fn day_end(&self, name: &str) -> Result<Option<Timestamp>, SendPostError> {
        self.get(name)
            .map(|raw| Timestamp::end_of_day(raw).map_err(|_| bad_date(name, raw)))
            .transpose()
    }
}

fn bad_date(name: &str, raw: &str) -> SendPostError {
    SendPostError::invalid_param(
        name,
        format!("{name} must be a date in the form YYYY-MM-DD; got {raw:?}"),
    )
}

/// The email of one body item, with its place named on failure
/// (`manual[0].email`).
pub fn item_email(param: &str, raw: Option<&str>) -> Result<Email, SendPostError> {
    let raw =
        raw.ok_or_else(|| SendPostError::invalid_body(param, format!("{param} is required")))?;
    Email::parse(raw).map_err(|err| SendPostError::invalid_body(param, format!("{raw:?}: {err}")))
}
