//! The webhooks' one error table: every refusal and failure, its status,
//! and its body, `{"message": …}`. Providers retry 5xx (and Postmark 408
//! and 429), and drop or retry other 4xx by their own rules
//! (docs/webhooks.md), so a delivery that can never be accepted is a 4xx
//! and one the store could not take is a 5xx.

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use hush_engine::EngineError;
use serde_json::json;

use crate::verify::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no such webhook")]
    NoHook,
    #[error("only POST is served here")]
    MethodNotAllowed,
    #[error("the body is over the {0} bytes a webhook may post")]
    TooLarge(usize),
    #[error("{}", hush_http::BODY_TIMEOUT_MESSAGE)]
    RequestTimeout,
    /// Postmark's credentials do not match; `basic` when basic auth is
    /// configured, which asks for it (SNS and Postmark send credentials
    /// only after a 401 with `WWW-Authenticate`).
    #[error("the credentials do not match this webhook's")]
    Unauthorized { basic: bool },
    #[error("the delivery is not verified: {0}")]
    Unverified(#[from] Refusal),
    #[error("{0}")]
    Forbidden(String),
    #[error("the body cannot be read: {0}")]
    Malformed(String),
    /// Mailgun stops retrying on 406 only (Mailgun docs, "Webhook
    /// retries"): what can never be read is answered so.
    #[error("the body cannot be read: {0}")]
    MailgunMalformed(String),
    #[error("{0}")]
    Upstream(String),
    #[error("the store did not answer within {} s; the provider will retry", .0.as_secs())]
    OverBudget(std::time::Duration),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl WebhookError {
    /// Whether the delivery was refused for what it is (counted as
    /// refused), rather than failed here.
    pub fn is_refusal(&self) -> bool {
        self.status().is_client_error()
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NoHook => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized { .. } | Self::Unverified(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::MailgunMalformed(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::OverBudget(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Engine(err) => match err {
                EngineError::Unavailable { .. }
                | EngineError::Upstream { .. }
                | EngineError::UpstreamTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    pub(crate) fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        match self {
            Self::Unauthorized { basic: true } => {
                response.insert_header((WWW_AUTHENTICATE, "Basic realm=\"hush webhooks\""));
            }
            Self::MethodNotAllowed => {
                response.insert_header((ALLOW, "POST"));
            }
            _ => {}
        }
        // What failed inside is logged, not told.
        let message = match self {
            Self::Engine(_) => "the change could not be recorded; try again".to_owned(),
            other => other.to_string(),
        };
        response.json(json!({ "message": message }))
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}
