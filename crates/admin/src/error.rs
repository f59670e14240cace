//! The admin API's one error table: `{"error":{"code":…,"message":…}}`
//! with the status each code answers (docs/api/admin.md, "Errors").

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hush_engine::EngineError;
use serde_json::json;

#[derive(Debug)]
pub enum AdminError {
    /// No token, or one no admin token matches.
    Unauthorized,
    /// The token lacks the scope the call needs.
    Forbidden(&'static str),
    /// An unknown tenant, or one the token may not see: the same answer,
    /// so that a token cannot learn which tenants exist.
    TenantNotFound(String),
    /// The tenant has no mirror of that name.
    MirrorNotFound(String),
    RouteNotFound,
    MethodNotAllowed,
    BadRequest(String),
    /// The tenant's store keeps no journal (an upstream provider).
    Unsupported(String),
    Unavailable(String),
    Internal,
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl AdminError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::TenantNotFound(_) | Self::MirrorNotFound(_) | Self::RouteNotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadRequest(_) => "invalid_request",
            Self::Unsupported(_) => "not_supported",
            Self::Unavailable(_) => "unavailable",
            Self::Internal => "internal_error",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Unauthorized => {
                "a valid admin token is required: Authorization: Bearer <token>".into()
            }
            Self::Forbidden(scope) => format!("this admin token lacks the scope {scope}"),
            Self::TenantNotFound(tenant) => format!("no tenant {tenant:?}"),
            Self::MirrorNotFound(name) => format!("the tenant has no mirror {name:?}"),
            Self::RouteNotFound => "no such admin path".into(),
            Self::MethodNotAllowed => "this admin path does not serve that method".into(),
            Self::BadRequest(message) | Self::Unsupported(message) => message.clone(),
            Self::Unavailable(reason) => format!("the store is unavailable: {reason}"),
            Self::Internal => "internal error; the gateway's log has the details".into(),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TenantNotFound(_) | Self::MirrorNotFound(_) | Self::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let res = HttpResponse::build(self.status_code()).json(json!({
            "error": {"code": self.code(), "message": self.message()}
        }));
        match self {
            Self::Unavailable(_) => hush_http::with_retry_after(res),
            _ => res,
        }
    }
}

impl From<EngineError> for AdminError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Unsupported { backend, operation } => {
                Self::Unsupported(format!("the tenant's store ({backend}) cannot {operation}"))
            }
            EngineError::Unavailable { reason, .. } => Self::Unavailable(reason),
            EngineError::Upstream { .. } | EngineError::UpstreamTimeout { .. } => {
                Self::Unavailable("the upstream provider did not answer".into())
            }
            other => {
                tracing::error!(error = %other, "an admin call failed");
                Self::Internal
            }
        }
    }
}
