//! Logging: tracing, as text or JSON, and one request id per request.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::uri::PathAndQuery;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber. `RUST_LOG` overrides `log.level` when set.
///
/// Lines are written by a thread of their own through a buffer, so a
/// request's worker never waits on a `write` to stderr: a slow sink (a pipe
/// to a log collector) does not stall request handling until the queue is
/// full. (In the lookup benchmark it made no measurable difference either
/// way, docs/benchmarks.md.) The queue is not lossy: when it is full,
/// workers wait for it rather than drop lines. Keep the returned guard
/// until exit; dropping it flushes what is queued.
pub fn init(config: &LogConfig) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colour codes only help a person at a terminal; in a file or a
        // log collector they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // Tests install their own subscriber first; that is fine.
    drop(installed);
    guard
}

/// Gives every request an id (the caller's `X-Request-Id` when it is a sane
/// token, else a new one), logs the request under it, and echoes it.
pub async fn request_id(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    normalize_path(&mut req);
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_id(v))
        .map_or_else(new_request_id, str::to_owned);
    let id: std::sync::Arc<str> = id.into();
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let started = Instant::now();
    let mut res = hush_engine::request::serve(id.clone(), next.call(req)).await?;
    let status = res.status().as_u16();
    let micros = started.elapsed().as_micros();
    // One line per request at info is part of the contract (tests/e2e
    // gateway.rs: requests are logged with their id); `log.level = "warn"`
    // drops it. Lines written while serving carry the id too
    // (`hush_engine::request`).
    let path = uri.path();
    if status >= 500 {
        tracing::warn!(request_id = %id, %method, path = %path, status, micros, "request failed");
    } else {
        tracing::info!(request_id = %id, %method, path = %path, status, micros, "request");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// SDKs build `//v3/…` from a host with a trailing slash, and SendPost
/// clients add trailing slashes (specs/sendgrid-v3.md §4.1,
/// specs/sendpost.md §10): doubled slashes are merged and trailing ones
/// trimmed before routing, as actix's `NormalizePath::trim` does. Done here,
/// and only for a path that needs it, because `NormalizePath` copies and
/// runs a regex over every path (a profile of the lookup benchmark,
/// docs/benchmarks.md).
fn normalize_path(req: &mut ServiceRequest) {
    let path = req.path();
    if path.len() <= 1 || !(path.ends_with('/') || path.contains("//")) {
        return;
    }
    let mut normalized = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && normalized.ends_with('/')) {
            normalized.push(c);
        }
    }
    while normalized.len() > 1 && normalized.ends_with('/') {
        normalized.pop();
    }
    let mut parts = req.uri().clone().into_parts();
    let path_and_query = match parts.path_and_query.as_ref().and_then(|pq| pq.query()) {
        Some(query) => format!("{normalized}?{query}"),
        None => normalized,
    };
    let Ok(path_and_query) = PathAndQuery::from_maybe_shared(Bytes::from(path_and_query)) else {
        return;
    };
    parts.path_and_query = Some(path_and_query);
    let Ok(uri) = Uri::from_parts(parts) else {
        return;
    };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// 32 hex digits, like a simple UUID: a random half drawn once per process
/// and a counter. Unique without a `getrandom` system call per request,
/// which a profile of the lookup benchmark showed (docs/benchmarks.md).
fn new_request_id() -> String {
    static PROCESS: LazyLock<u64> = LazyLock::new(|| {
        let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
        high
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}{:016x}",
        *PROCESS,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_sane_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
