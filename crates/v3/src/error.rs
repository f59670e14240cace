//! The v3 error envelope and the one table from every failure to it.
//!
//! Every v3 error, the router's 404 and 405 included, is
//! `{"errors":[{"field":…,"message":…}]}` with `Content-Type:
//! application/json` (docs/api/v3.md, "Errors"; SendGrid's
//! `ErrorResponse`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hush_engine::EngineError;
use hush_engine::access::Permission;
use serde::{Deserialize, Serialize};

/// One entry of the envelope. `field` is `null` when the error is not about
/// one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    pub field: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum V3Error {
    /// The text SendGrid sends for a missing key (the 401 example of
    /// "Delete bounces" in its API reference).
    #[error("authorization required")]
    MissingKey,
    /// The text SendGrid sends for a bad or revoked key
    /// (sendgrid/sendgrid-php#793).
    #[error("The provided authorization grant is invalid, expired, or revoked")]
    UnknownKey,
    #[error("access forbidden: this key lacks the {} scope", .0.scope_name())]
    Forbidden(Permission),
    /// The key's tenant is not the parent of the tenant named in
    /// `on-behalf-of` (SendGrid docs, "On Behalf Of").
    #[error(
        "access forbidden: on-behalf-of names {0:?}, which is not a subuser of this key's account"
    )]
    NotSubuser(String),
    /// An import whose body ended early or failed to arrive: what was
    /// committed before the cut stays.
    #[error(
        "the upload was cut off after row {last_row}: {imported} rows were imported and stay imported, {skipped} were skipped; send the rest again ({reason})"
    )]
    ImportCutOff {
        imported: u64,
        skipped: u64,
        last_row: u64,
        reason: String,
    },
    #[error(
        "the import body is larger than the limit of {limit} bytes (server.max_import_bytes); the import stopped at row {last_row}: {imported} rows before it were imported and stay"
    )]
    ImportTooLarge {
        limit: u64,
        imported: u64,
        last_row: u64,
    },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{}", hush_http::BODY_TIMEOUT_MESSAGE)]
    RequestTimeout,
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("the {0} upstream provider failed")]
    BadGateway(&'static str),
    #[error("the {0} upstream provider did not answer in time")]
    GatewayTimeout(&'static str),
    #[error("service unavailable")]
    Unavailable,
    #[error("internal server error")]
    Internal,
}

impl V3Error {
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    /// The router's own 404, in SendGrid's words (sendgrid/sendgrid-php#354).
    pub fn route_not_found() -> Self {
        Self::NotFound("resource not found".into())
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::BadRequest { field, .. } => field.clone(),
            Self::ImportCutOff { .. } => Some("body".to_owned()),
            _ => None,
        }
    }
}

/// The one table from engine errors to v3 errors.
impl From<EngineError> for V3Error {
    fn from(err: EngineError) -> Self {
        match err {
            // The id inside is the stored one, not the one the client was
            // shown (Engine::shown_group_id): it is not repeated.
            EngineError::GroupNotFound(_) => Self::NotFound("the group was not found".to_owned()),
            EngineError::GroupNameTaken(name) => {
                Self::bad_request("name", format!("a group named {name:?} already exists"))
            }
            EngineError::GroupKeyTaken(key) => {
                Self::bad_request("name", format!("a group with key {key:?} already exists"))
            }
            EngineError::InvalidGroup { field, message } => Self::bad_request(field, message),
            EngineError::GroupProtected(key) => Self::bad_request(
                "group_id",
                format!("the group {key:?} is the default stream and cannot be deleted"),
            ),
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

impl ResponseError for V3Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::UnknownKey => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::NotSubuser(_) => StatusCode::FORBIDDEN,
            Self::ImportCutOff { .. } => StatusCode::BAD_REQUEST,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) | Self::ImportTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let envelope = ErrorEnvelope {
            errors: vec![ErrorItem {
                field: self.field(),
                message: self.to_string(),
            }],
        };
        hush_http::with_retry_after(HttpResponse::build(self.status_code()).json(envelope))
    }
}

#[cfg(test)]
mod upstream_tests {
    use super::*;

    fn status(err: EngineError) -> StatusCode {
        V3Error::from(err).error_response().status()
    }

    /// A backend's refusals and an upstream's faults reach the caller with
    /// the status that says whose fault it is.
    #[test]
    fn refusals_and_upstream_faults_have_their_status() {
        let unsupported = EngineError::Unsupported {
            backend: "upstream-sendpost",
            operation: "manage groups",
        };
        let body = V3Error::from(unsupported).to_string();
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
        let shown = V3Error::from(upstream);
        assert!(!shown.to_string().contains("secret"), "{shown}");
        assert_eq!(shown.error_response().status(), StatusCode::BAD_GATEWAY);
        let timeout = EngineError::UpstreamTimeout {
            backend: "upstream-v3",
            detail: "slow".into(),
        };
        assert_eq!(status(timeout), StatusCode::GATEWAY_TIMEOUT);
    }
}
