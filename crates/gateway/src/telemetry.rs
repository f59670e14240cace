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
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::log_lines::{BatchedStderr, FlushGuard, TextFormat};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber. `RUST_LOG` overrides `log.level` when set.
///
/// Lines go through [`BatchedStderr`]: each thread's lines are collected
/// and written in batches (warnings and errors at once), never dropped;
/// text lines are formatted by [`TextFormat`] (log_lines.rs says why).
/// Keep the returned guard until exit; dropping it writes what is
/// buffered.
pub fn init(config: &LogConfig) -> FlushGuard {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter, fmt};

    let level = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let key = match config.address_hash_key.expose() {
        "" => {
            let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            [a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat()
        }
        set => set.as_bytes().to_vec(),
    };
    // A second init (tests) keeps the first key.
    let _ = ADDRESS_KEY.set(key);
    let (writer, guard) = BatchedStderr::start();
    let lines = match config.format {
        LogFormat::Text => fmt::layer()
            .event_format(TextFormat)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(writer)
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(level)
        .with(lines.with_filter(filter::filter_fn(|meta| !is_connection_noise(meta))))
        .try_init();
    // Tests install their own subscriber first; that is fine.
    drop(installed);
    guard
}

/// Connections whose requests the HTTP stack refused before any handler
/// saw them (a head or URI too large, a malformed header, a stream cut
/// off), counted by [`is_connection_noise`] and not yet reported.
static CONNECTION_NOISE: AtomicU64 = AtomicU64::new(0);

/// How often refused connections are reported, as one warning with their
/// count.
pub const CONNECTION_NOISE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether an event is actix-http's ERROR line for a connection it gave up
/// on (`stream error: …` from its HTTP/1 dispatcher). Anyone who can reach
/// the port can cause one per connection, so each is counted here instead
/// of logged, and [`report_connection_noise`] writes one warning with the
/// count; actix-http logs each refusal's detail at trace
/// (`RUST_LOG=actix_http=trace`).
fn is_connection_noise(meta: &tracing::Metadata<'_>) -> bool {
    let noise = meta.is_event()
        && *meta.level() == tracing::Level::ERROR
        && meta.target().starts_with("actix_http::h1");
    if noise {
        CONNECTION_NOISE.fetch_add(1, Ordering::Relaxed);
    }
    noise
}

/// Writes the count of refused connections: the first soon after it
/// happens, then at most once per [`CONNECTION_NOISE_INTERVAL`]. Runs for
/// as long as the server does.
pub async fn report_connection_noise() {
    let throttle = hush_engine::Throttle::new(CONNECTION_NOISE_INTERVAL);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if CONNECTION_NOISE.load(Ordering::Relaxed) == 0 || throttle.admit().is_none() {
            continue;
        }
        let refused = CONNECTION_NOISE.swap(0, Ordering::Relaxed);
        // A connection may cost two of actix-http's lines (the overflow and
        // the stream error): this counts lines it would have written.
        tracing::warn!(
            refusals = refused,
            "the HTTP stack refused connections whose requests it could not read (head or URI too large, malformed headers, streams cut off); RUST_LOG=actix_http=trace logs each"
        );
    }
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
    let measured = crate::metrics::enabled();
    let in_flight = measured.then(|| crate::metrics::InFlight::start(uri.path()));
    let mut res = hush_engine::request::serve(id.clone(), next.call(req)).await?;
    drop(in_flight);
    if measured {
        crate::metrics::record(&res, started.elapsed().as_secs_f64());
    }
    let status = res.status().as_u16();
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    // One line per request at info is part of the contract (tests/e2e
    // gateway.rs: requests are logged with their id); `log.level = "warn"`
    // drops it. Lines written while serving carry the id too
    // (`hush_engine::request`).
    // The route's template, never the path: paths carry addresses, which
    // are personal data. The address is a keyed hash, enough to follow
    // one address through the log without writing it.
    let email = res.request().match_info().get("email");
    let address = email.map(address_hash);
    let path = match email {
        // Every `{email}` is its route's last segment.
        Some(_) => std::borrow::Cow::Owned(with_email_template(uri.path())),
        None => without_hook_name(uri.path()).unwrap_or_else(|| scrubbed(uri.path())),
    };
    let address = address.as_deref().unwrap_or("");
    // A 503's cause (a full disk, an unreachable database) is logged by
    // the backend once per interval; a line per refused request at warn
    // would repeat it for every retry.
    if status >= 500 && status != 503 {
        tracing::warn!(request_id = %id, %method, path = %path, address, status, micros, "request failed");
    } else {
        tracing::info!(request_id = %id, %method, path = %path, address, status, micros, "request");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// The key of [`address_hash`], set once by [`init`].
static ADDRESS_KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// What stands for an address in the log: the first 16 hex digits of
/// HMAC-SHA-256 over it (percent-decoded, trimmed, lowercased), keyed by
/// `log.address_hash_key` or a key drawn at start. The same address gives
/// the same hash for as long as the key stays.
pub fn address_hash(raw: &str) -> String {
    use hmac::{KeyInit as _, Mac as _};
    type Keyed = hmac::Hmac<sha2_hmac::Sha256>;
    // Keyed once: cloning the prepared state costs a copy, where keying
    // costs two hash blocks, on every lookup's request line.
    static KEYED: std::sync::OnceLock<Option<Keyed>> = std::sync::OnceLock::new();
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    // The address's identity (every spelling one hash), or its text as a
    // fallback for one that does not parse.
    let address = hush_model::Email::parse(&decoded).map_or_else(
        |_| decoded.trim().to_lowercase(),
        hush_model::Email::into_string,
    );
    let keyed = KEYED.get_or_init(|| {
        let key = ADDRESS_KEY.get().map_or(&[][..], Vec::as_slice);
        Keyed::new_from_slice(key).ok()
    });
    let Some(mut mac) = keyed.clone() else {
        return String::new();
    };
    mac.update(address.as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..8])
}

/// A path whose last segment is an address, with that segment written as
/// its route's template writes it: `/v3/suppression/bounces/{email}`.
fn with_email_template(path: &str) -> String {
    let head = path.rsplit_once('/').map_or("", |(head, _)| head);
    format!("{head}/{{email}}")
}

/// A webhook's path with its name written as the template writes it: a
/// SendPost hook's name is its only secret (docs/webhooks.md), and the
/// webhooks log each hook by a label that never shows it.
fn without_hook_name(path: &str) -> Option<std::borrow::Cow<'static, str>> {
    let rest = path.strip_prefix("/webhooks/")?;
    let provider = rest.split('/').next().unwrap_or_default();
    let provider = hush_webhooks::events::Provider::parse(provider)
        .map_or("{provider}", hush_webhooks::events::Provider::as_str);
    Some(std::borrow::Cow::Owned(format!(
        "/webhooks/{provider}/{{name}}"
    )))
}

/// A path no route matched, with every segment that may hold an address
/// (an `@`, raw or percent-encoded) replaced: a mistyped route can still
/// carry one.
fn scrubbed(path: &str) -> std::borrow::Cow<'_, str> {
    if !(path.contains('@') || path.contains("%40")) {
        return std::borrow::Cow::Borrowed(path);
    }
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| {
            if s.contains('@') || s.contains("%40") {
                "{address}"
            } else {
                s
            }
        })
        .collect();
    std::borrow::Cow::Owned(segments.join("/"))
}

/// SDKs build `//v3/…` from a host with a trailing slash, and SendPost
/// clients add trailing slashes (sendgrid-python given a host ending in `/`;
/// docs/api/sendpost.md, "Paths"): doubled slashes are merged and trailing
/// ones trimmed before routing, as actix's `NormalizePath::trim` does. Done
/// here, and only for a path that needs it, because `NormalizePath` copies
/// and runs a regex over every path (a profile of the lookup benchmark,
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
    let mut id = String::with_capacity(32);
    for half in [*PROCESS, NEXT.fetch_add(1, Ordering::Relaxed)] {
        // By hand: `format!("{:016x}")` was a percent of a lookup's CPU.
        for shift in (0..16).rev() {
            let digit = ((half >> (shift * 4)) & 0xF) as u8;
            id.push(char::from(if digit < 10 {
                b'0' + digit
            } else {
                b'a' + digit - 10
            }));
        }
    }
    id
}

fn is_sane_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_32_hex_digits_and_distinct() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(a[..16], b[..16], "one process half");
        let (x, y) = (
            u64::from_str_radix(&a[16..], 16).unwrap_or_default(),
            u64::from_str_radix(&b[16..], 16).unwrap_or_default(),
        );
        assert!(y > x);
        assert!(is_sane_id(&a));
    }
}
