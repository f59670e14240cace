//! Postmark's error envelope and the one table from every failure to it.
//!
//! Every Postmark error, the router's 404 and 405 included, is
//! `{"ErrorCode":n,"Message":"…"}` with `Content-Type: application/json`
//! (Postmark API docs, "API overview"). Both keys are always present:
//! postmarker raises `KeyError` without either. Validation and "not found"
//! use HTTP 422 with a Postmark code, never 404. The codes are those of the
//! API overview's error code table.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hush_engine::EngineError;
use serde::{Deserialize, Serialize};

/// The error body every SDK reads (postmark.js, postmark-python,
/// postmarker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
    #[serde(rename = "Message")]
    pub message: String,
}

/// The message-stream rules that have their own Postmark codes
/// (Postmark API docs, "API overview", codes 1221–1241).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRule {
    InvalidType,
    IdRequired,
    NameRequired,
    NameTooLong,
    TooManyStreams,
    IdFormat,
    DefaultStreamArchive,
    IdTaken,
    DescriptionTooLong,
    PmPrefix,
    DescriptionHtml,
    IdReserved,
    HandlingUnsupported,
    InvalidUnsubscribeHandling,
}

impl StreamRule {
    pub fn code(self) -> u32 {
        match self {
            Self::InvalidType => 1221,
            Self::IdRequired => 1222,
            Self::NameRequired => 1223,
            Self::NameTooLong => 1224,
            Self::TooManyStreams => 1225,
            Self::IdFormat => 1227,
            Self::DefaultStreamArchive => 1229,
            Self::IdTaken => 1230,
            Self::DescriptionTooLong => 1231,
            Self::PmPrefix => 1233,
            Self::DescriptionHtml => 1234,
            Self::IdReserved => 1237,
            Self::HandlingUnsupported => 1239,
            Self::InvalidUnsubscribeHandling => 1240,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PostmarkError {
    /// Code 10: the text Postmark sends without a token.
    #[error("Request does not contain a valid Server token.")]
    MissingToken,
    /// Code 10: the text Postmark sends for a wrong token.
    #[error(
        "The Server Token you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a valid token."
    )]
    InvalidToken,
    /// Code 1404.
    #[error("Parameter 'SuppressionReason' is invalid.")]
    InvalidReason,
    /// Code 1405.
    #[error("Parameter 'Origin' is invalid.")]
    InvalidOrigin,
    /// A query value Postmark documents no code for (a date, a boolean).
    /// hush uses 1407, Postmark's generic suppression-request failure.
    #[error("Parameter '{name}' is invalid: {detail}")]
    InvalidParameter { name: String, detail: String },
    /// Code 1409.
    #[error("A proper request body must be provided.")]
    BadSuppressionsBody,
    /// Code 1410.
    #[error("You cannot provide more than the maximum number of suppressions for this request.")]
    TooManySuppressions,
    /// Code 1226, verbatim from Postmark's live tests (postmark-php's
    /// integration tests).
    #[error("The message stream for the provided 'ID' was not found.")]
    StreamNotFound,
    #[error("{message}")]
    Stream { rule: StreamRule, message: String },
    /// Code 402.
    #[error("Invalid JSON: {0}")]
    InvalidJson(String),
    #[error("The requested resource was not found.")]
    RouteNotFound,
    #[error("The request method is not allowed for this resource.")]
    MethodNotAllowed,
    #[error("The request body is larger than the limit of {0} bytes.")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{}", hush_http::BODY_TIMEOUT_MESSAGE)]
    RequestTimeout,
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("The {0} upstream provider failed.")]
    BadGateway(&'static str),
    #[error("The {0} upstream provider did not answer in time.")]
    GatewayTimeout(&'static str),
    /// Code 100: Postmark's maintenance answer, which postmark-python
    /// retries.
    #[error("The service is temporarily unavailable.")]
    Unavailable,
    #[error("Internal server error.")]
    Internal,
}

impl PostmarkError {
    pub fn stream(rule: StreamRule, message: impl Into<String>) -> Self {
        Self::Stream {
            rule,
            message: message.into(),
        }
    }

    /// Code 1230.
    pub fn id_taken(key: &str) -> Self {
        Self::stream(
            StreamRule::IdTaken,
            format!("A message stream with the ID '{key}' already exists."),
        )
    }

    pub fn invalid_parameter(name: &str, detail: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.to_owned(),
            detail: detail.into(),
        }
    }

    /// The `ErrorCode`. Errors Postmark has no code for (the router's 404
    /// and 405, 413, 500, 501) carry 0, which every SDK reads as "no
    /// specific code" and classifies by the HTTP status (postmark.js,
    /// postmark-python, postmarker).
    pub fn error_code(&self) -> u32 {
        match self {
            Self::MissingToken | Self::InvalidToken => 10,
            Self::InvalidReason => 1404,
            Self::InvalidOrigin => 1405,
            Self::InvalidParameter { .. } => 1407,
            Self::BadSuppressionsBody => 1409,
            Self::TooManySuppressions => 1410,
            Self::StreamNotFound => 1226,
            Self::Stream { rule, .. } => rule.code(),
            Self::InvalidJson(_) => 402,
            Self::Unavailable => 100,
            Self::RouteNotFound
            | Self::MethodNotAllowed
            | Self::PayloadTooLarge(_)
            | Self::UnsupportedMediaType(_)
            | Self::RequestTimeout
            | Self::TooManyRequests(_)
            | Self::NotImplemented(_)
            | Self::BadGateway(_)
            | Self::GatewayTimeout(_)
            | Self::Internal => 0,
        }
    }
}

/// The one table from engine errors to Postmark errors.
impl From<EngineError> for PostmarkError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::GroupNotFound(_) => Self::StreamNotFound,
            EngineError::GroupKeyTaken(key) => Self::id_taken(&key),
            // hush keeps stream names unique because v3 shows them as group
            // names, which are unique there (docs/api/v3.md, "Groups").
            EngineError::GroupNameTaken(name) => Self::stream(
                StreamRule::NameRequired,
                format!("A message stream named {name:?} already exists; names are unique."),
            ),
            EngineError::InvalidGroup { field, message } => {
                let rule = if field == "description" {
                    StreamRule::DescriptionTooLong
                } else {
                    StreamRule::NameRequired
                };
                Self::stream(rule, message)
            }
            EngineError::GroupProtected(key) => Self::stream(
                StreamRule::DefaultStreamArchive,
                format!("The default stream '{key}' cannot be removed."),
            ),
            EngineError::Unsupported { backend, operation } => {
                Self::NotImplemented(format!("The {backend} backend cannot {operation}."))
            }
            EngineError::Unavailable { backend, reason } => {
                hush_engine::log_unavailable(backend, &reason);
                Self::Unavailable
            }
            EngineError::Upstream {
                backend,
                status,
                request_id,
                detail,
            } => {
                tracing::error!(request_id = %hush_engine::request::current(), backend, ?status, upstream_request_id = ?request_id, %detail, "upstream failure");
                Self::BadGateway(backend)
            }
            EngineError::UpstreamTimeout { backend, detail } => {
                tracing::error!(request_id = %hush_engine::request::current(), backend, %detail, "upstream timeout");
                Self::GatewayTimeout(backend)
            }
            EngineError::Internal { backend, detail } => {
                tracing::error!(request_id = %hush_engine::request::current(), backend, %detail, "backend failure");
                Self::Internal
            }
        }
    }
}

impl ResponseError for PostmarkError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InvalidReason
            | Self::InvalidOrigin
            | Self::InvalidParameter { .. }
            | Self::BadSuppressionsBody
            | Self::TooManySuppressions
            | Self::StreamNotFound
            | Self::Stream { .. }
            | Self::InvalidJson(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        hush_http::with_retry_after(HttpResponse::build(self.status_code()).json(ErrorBody {
            error_code: self.error_code(),
            message: self.to_string(),
        }))
    }
}

#[cfg(test)]
mod upstream_tests {
    use super::*;

    fn status(err: EngineError) -> StatusCode {
        PostmarkError::from(err).error_response().status()
    }

    /// A backend's refusals and an upstream's faults reach the caller with
    /// the status that says whose fault it is.
    #[test]
    fn refusals_and_upstream_faults_have_their_status() {
        let unsupported = EngineError::Unsupported {
            backend: "upstream-sendpost",
            operation: "manage groups",
        };
        let body = PostmarkError::from(unsupported).to_string();
        assert!(
            body.contains("upstream-sendpost") && body.contains("manage groups"),
            "{body}"
        );
        assert_eq!(
            status(EngineError::Unsupported {
                backend: "b",
                operation: "o"
            }),
            StatusCode::NOT_IMPLEMENTED
        );
        let upstream = EngineError::Upstream {
            backend: "upstream-postmark",
            status: Some(500),
            request_id: Some("req-1".into()),
            detail: "secret detail".into(),
        };
        let shown = PostmarkError::from(upstream);
        assert!(!shown.to_string().contains("secret"), "{shown}");
        assert_eq!(shown.error_response().status(), StatusCode::BAD_GATEWAY);
        let timeout = EngineError::UpstreamTimeout {
            backend: "upstream-v3",
            detail: "slow".into(),
        };
        assert_eq!(status(timeout), StatusCode::GATEWAY_TIMEOUT);
    }
}
