//! The SendPost error envelope and the one table from every failure to it.
//!
//! Every SendPost error, the router's 404 and 405 included, is the v1
//! `ErrorResponse` of SendPost's OpenAPI 1.3.0 (as SDK 3.0.0 ships it):
//! `{"error":{"code":…,"message":…,"param":…,"type":…}}` with `Content-Type:
//! application/json`. The SDK never parses it (its `ApiException` keeps the
//! raw body), so the envelope is for people and other clients; the status is
//! what the SDK turns into its exception class.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hush_engine::EngineError;
use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// `code` and `type` take the values SendPost documents (its
/// `ErrorResponse`); `param` names the input at fault, or is `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub param: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SendPostError {
    /// The SDK omits the header entirely when no key is configured.
    #[error("the X-SubAccount-ApiKey header is required")]
    MissingKey,
    #[error("the X-SubAccount-ApiKey is not valid")]
    UnknownKey,
    /// A bad JSON body (SendPost API reference, introduction: "request body
    /// is not in proper format", 422).
    #[error("{message}")]
    InvalidBody { param: String, message: String },
    /// A bad query parameter; 422 like the body errors, so one status
    /// covers every validation failure (SendPost's docs do not settle 400
    /// vs 422 for it).
    #[error("{message}")]
    InvalidParam { param: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{}", hush_http::BODY_TIMEOUT_MESSAGE)]
    RequestTimeout,
    /// SendPost's rate-limit answer (its API reference's error types:
    /// `rate_limit_exceeded`, `rate_limit_error`).
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("the {0} upstream provider failed")]
    BadGateway(&'static str),
    #[error("the {0} upstream provider did not answer in time")]
    GatewayTimeout(&'static str),
    /// With `Retry-After: 5`, as every API's 503 (hush_http): urllib3 then
    /// retries a GET or DELETE up to three times, 5 s apart (urllib3's
    /// default `Retry`, which the SDK keeps), which both are safe to repeat;
    /// a create is not retried.
    #[error("service unavailable")]
    Unavailable,
    #[error("internal server error")]
    Internal,
}

impl SendPostError {
    pub fn invalid_body(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidBody {
            param: param.into(),
            message: message.into(),
        }
    }

    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidParam {
            param: param.into(),
            message: message.into(),
        }
    }

    /// The router's own 404.
    pub fn route_not_found() -> Self {
        Self::NotFound("no such resource".into())
    }

    fn param(&self) -> Option<String> {
        match self {
            Self::InvalidBody { param, .. } | Self::InvalidParam { param, .. } => {
                Some(param.clone())
            }
            _ => None,
        }
    }

    /// `code` and `type` from the lists of SendPost's `ErrorResponse`.
    fn code_and_type(&self) -> (&'static str, &'static str) {
        match self {
            Self::MissingKey | Self::UnknownKey => {
                ("authentication_failed", "authentication_error")
            }
            Self::InvalidBody { .. } => ("validation_error", "invalid_request_error"),
            Self::InvalidParam { .. }
            | Self::MethodNotAllowed
            | Self::PayloadTooLarge(_)
            | Self::UnsupportedMediaType(_)
            | Self::RequestTimeout => ("invalid_request", "invalid_request_error"),
            Self::NotFound(_) => ("resource_not_found", "not_found_error"),
            Self::TooManyRequests(_) => ("rate_limit_exceeded", "rate_limit_error"),
            Self::Conflict(_) => ("resource_exists", "conflict_error"),
            Self::NotImplemented(_)
            | Self::BadGateway(_)
            | Self::GatewayTimeout(_)
            | Self::Unavailable
            | Self::Internal => ("internal_error", "api_error"),
        }
    }
}

/// The one table from engine errors to SendPost errors. SendPost routes
/// never touch groups; the group rows are here so that no engine error can
/// reach a client unmapped.
impl From<EngineError> for SendPostError {
    fn from(err: EngineError) -> Self {
        match err {
            // The id inside is the stored one, never shown to a client.
            EngineError::GroupNotFound(_) => Self::NotFound("the group was not found".to_owned()),
            EngineError::GroupNameTaken(_) | EngineError::GroupKeyTaken(_) => {
                Self::Conflict(err.to_string())
            }
            EngineError::InvalidGroup { field, message } => Self::invalid_body(field, message),
            EngineError::GroupProtected(_) => Self::Conflict(err.to_string()),
            EngineError::Unsupported { backend, operation } => {
                Self::NotImplemented(format!("the {backend} backend cannot {operation}"))
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

impl ResponseError for SendPostError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::UnknownKey => StatusCode::UNAUTHORIZED,
            Self::InvalidBody { .. } | Self::InvalidParam { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            // SendPost's docs table: 403 "resource with same name or details
            // already exist" (SendPost API reference, introduction).
            Self::Conflict(_) => StatusCode::FORBIDDEN,
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
        let (code, kind) = self.code_and_type();
        hush_http::with_retry_after(HttpResponse::build(self.status_code()).json(ErrorEnvelope {
            error: ErrorBody {
                code: code.to_owned(),
                message: self.to_string(),
                param: self.param(),
                kind: kind.to_owned(),
            },
        }))
    }
}

#[cfg(test)]
mod upstream_tests {
    use super::*;

    fn status(err: EngineError) -> StatusCode {
        SendPostError::from(err).error_response().status()
    }

    /// A backend's refusals and an upstream's faults reach the caller with
    /// the status that says whose fault it is.
    #[test]
    fn refusals_and_upstream_faults_have_their_status() {
        let unsupported = EngineError::Unsupported {
            backend: "upstream-sendpost",
            operation: "manage groups",
        };
        let body = SendPostError::from(unsupported).to_string();
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
        let shown = SendPostError::from(upstream);
        assert!(!shown.to_string().contains("secret"), "{shown}");
        assert_eq!(shown.error_response().status(), StatusCode::BAD_GATEWAY);
        let timeout = EngineError::UpstreamTimeout {
            backend: "upstream-v3",
            detail: "slow".into(),
        };
        assert_eq!(status(timeout), StatusCode::GATEWAY_TIMEOUT);
    }
}
