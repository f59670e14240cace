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

/// Logs a failure that repeats (a full disk, an unreachable database) at
/// most once per interval, with how many times it happened since the last
/// line: a client retrying in a loop, or a load balancer's health checks,
/// must not fill the disk with the log of why the disk is full.
#[derive(Debug)]
pub struct Throttle {
    interval: std::time::Duration,
    state: std::sync::Mutex<ThrottleState>,
}

#[derive(Debug)]
struct ThrottleState {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

impl Throttle {
    pub const fn new(interval: std::time::Duration) -> Self {
        Self {
            interval,
            state: std::sync::Mutex::new(ThrottleState {
                last: None,
                unlogged: 0,
            }),
        }
    }

    /// Counts one occurrence. `Some(n)` when this one is to be logged, `n`
    /// being how many were not since the last line; `None` otherwise.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(std::time::Instant::now())
    }

    fn admit_at(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.last {
            Some(last) if now.duration_since(last) < self.interval => {
                state.unlogged += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.unlogged))
            }
        }
    }
}

/// How often a backend that stays unavailable is logged.
pub const UNAVAILABLE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Logs that a backend is unavailable, for every API's error table, once
/// per [`UNAVAILABLE_LOG_INTERVAL`] with the count of the requests refused
/// in between.
pub fn log_unavailable(backend: &str, reason: &str) {
    static THROTTLE: Throttle = Throttle::new(UNAVAILABLE_LOG_INTERVAL);
    if let Some(unlogged) = THROTTLE.admit() {
        tracing::error!(
            request_id = %crate::request::current(),
            backend,
            %reason,
            refused_since_last_line = unlogged,
            "backend unavailable"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_failure_is_admitted_once_per_interval_with_a_count() {
        let interval = std::time::Duration::from_secs(10);
        let throttle = Throttle::new(interval);
        let start = std::time::Instant::now();
        assert_eq!(throttle.admit_at(start), Some(0), "the first is logged");
        for n in 0..1_000 {
            let within = start + interval * n / 1_000;
            assert_eq!(throttle.admit_at(within), None);
        }
        let later = start + interval;
        assert_eq!(
            throttle.admit_at(later),
            Some(1_000),
            "the next line counts them"
        );
        assert_eq!(throttle.admit_at(later), None);
    }
}
