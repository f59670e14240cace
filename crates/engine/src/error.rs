//! The one error type of the engine and its backends. Each API crate maps it
//! to its own wire errors in one table.

use hush_model::GroupId;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("group {0} not found")]
    GroupNotFound(GroupId),
    #[error("a group named {0:?} already exists")]
    GroupNameTaken(String),
    #[error("a group with key {0:?} already exists")]
    GroupKeyTaken(String),
    #[error("{field}: {message}")]
    InvalidGroup {
        field: &'static str,
        message: String,
    },
    #[error("the group {0:?} is the tenant's default stream and cannot be deleted")]
    GroupProtected(String),
    #[error("the {backend} backend cannot {operation}")]
    Unsupported {
        backend: &'static str,
        operation: &'static str,
    },
    #[error("the {backend} backend is unavailable: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
    /// An upstream provider refused or failed a call. `status` is the
    /// provider's HTTP status (`None` when it answered something that is not
    /// its wire format); `request_id` is the provider's id for the call when
    /// it sent one. Logged in full; clients see a 502 in their own format.
    #[error(
        "the {backend} upstream failed (status {status:?}, request id {request_id:?}): {detail}"
    )]
    Upstream {
        backend: &'static str,
        status: Option<u16>,
        request_id: Option<String>,
        detail: String,
    },
    /// An upstream provider did not answer in time, after any retries.
    /// Clients see a 504 in their own format.
    #[error("the {backend} upstream timed out: {detail}")]
    UpstreamTimeout {
        backend: &'static str,
        detail: String,
    },
    /// A fault inside a backend: logged with its detail, shown to clients
    /// as a plain internal error.
    #[error("{backend} backend failure: {detail}")]
    Internal {
        backend: &'static str,
        detail: String,
    },
}

impl EngineError {
    pub fn internal(backend: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Internal {
            backend,
            detail: detail.to_string(),
        }
    }
}
