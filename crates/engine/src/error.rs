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
