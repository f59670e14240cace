//! Reading Postmark requests: query strings matched case-insensitively and
//! bodies that may be absent, whatever the Content-Type says.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use hush_model::Timestamp;

use crate::{PostmarkError, PostmarkState};

/// The query string's pairs. Postmark's SDKs disagree on the case of every
/// name (`SuppressionReason`, `suppressionReason`, `fromdate`, `fromDate`,
/// `FromDate`: postmark.js, postmark-python, postmark-php), so names are
/// matched ignoring case.
#[derive(Debug)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn from_request(req: &HttpRequest) -> Self {
        Self(
            form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The last non-empty value of a parameter, its name matched ignoring
    /// case. An empty value counts as absent: clients that format a missing
    /// filter as `Origin=` mean no filter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.trim().is_empty())
            .map(|(_, value)| value.trim())
    }

    /// A boolean, `true`/`false` in any case: postmarker users pass Python
    /// `True` (postmarker sends query values as given).
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, PostmarkError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        if raw.eq_ignore_ascii_case("true") {
            Ok(Some(true))
        } else if raw.eq_ignore_ascii_case("false") {
            Ok(Some(false))
        } else {
            Err(PostmarkError::invalid_parameter(
                name,
                format!("expected true or false, got {raw:?}."),
            ))
        }
    }

    /// A date bound: `YYYY-MM-DD` as a whole UTC day (docs/mapping.md,
    /// "Postmark dates"), its first or last nanosecond as `end` says, or a
    /// full RFC 3339 date-time as given; a date-time without an offset (how
    /// postmark-python formats the Bounce API's dates) is read as UTC.
    pub fn date_bound(&self, name: &str, end: bool) -> Result<Option<Timestamp>, PostmarkError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let day = if end {
            Timestamp::end_of_day(raw)
        } else {
            Timestamp::start_of_day(raw)
        };
        day.or_else(|_| Timestamp::parse_rfc3339(raw))
            .or_else(|_| Timestamp::parse_rfc3339(&format!("{raw}Z")))
            .map(Some)
            .map_err(|_| {
                PostmarkError::invalid_parameter(
                    name,
                    format!("expected a date like 2020-02-01, got {raw:?}."),
                )
            })
    }
}

/// A request body, possibly empty. The Content-Type is not checked: the
/// SDKs send bodiless POSTs with `application/json`, with no Content-Type at
/// all, or `{}` (docs/api/postmark.md, "Conventions"), and Postmark's 415
/// must not apply.
#[derive(Debug)]
pub struct RawBody(pub web::Bytes);

impl RawBody {
    /// Whether nothing but whitespace was sent.
    pub fn is_blank(&self) -> bool {
        self.0.iter().all(u8::is_ascii_whitespace)
    }
}

impl FromRequest for RawBody {
    type Error = PostmarkError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PostmarkError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<PostmarkState>>()
            .map_or(1 << 20, |state| state.body_limit);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            bytes
                .await
                .map(Self)
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => PostmarkError::PayloadTooLarge(limit),
                    _ if hush_http::is_body_timeout(&err) => PostmarkError::RequestTimeout,
                    _ => PostmarkError::InvalidJson("the request body could not be read".into()),
                })
        })
    }
}
