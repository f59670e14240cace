//! The id of the request being served, for log lines written while serving
//! it.
//!
//! The gateway logs one line per request with its id (telemetry.rs). A
//! tracing span around each request would put the id on every line written
//! inside it too, but creating, entering and leaving a span cost about a
//! tenth of a send check's CPU in the lookup benchmark (docs/benchmarks.md).
//! A task-local costs a pointer swap per poll, and only the lines that need
//! the id (failures) read it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `work` as the serving of request `id`.
pub async fn serve<F: Future>(id: Arc<str>, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// The id of the request being served, shown as `-` outside one: for a
/// log line's `request_id` field.
pub fn current() -> CurrentId {
    CurrentId(REQUEST_ID.try_with(Arc::clone).ok())
}

/// The id of the request being served, if any.
pub fn current_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// What [`current`] returns; displays as the id.
#[derive(Debug, Clone)]
pub struct CurrentId(Option<Arc<str>>);

impl fmt::Display for CurrentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_there_while_serving_and_only_then() {
        assert_eq!(current().to_string(), "-");
        let inside = serve(Arc::from("req-1"), async {
            tokio::task::yield_now().await;
            current().to_string()
        })
        .await;
        assert_eq!(inside, "req-1");
        assert_eq!(current().to_string(), "-");
    }
}
