//! The HTTP plumbing every upstream provider client shares: one pooled
//! reqwest client (rustls) with connect and request timeouts, retries with
//! exponential backoff and jitter for calls that are safe to repeat, and the
//! mapping of transport faults to [`EngineError`].
//!
//! The provider clients themselves live in their API crates
//! (`hush_v3::upstream`, `hush_postmark::upstream`,
//! `hush_sendpost::upstream`), because they speak with that crate's wire
//! types: the same structs serve and call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable as _};
use hush_engine::EngineError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// Response headers that carry a provider's id for a call, in the order
/// they are looked for. postmark-python logs `X-Request-Id`
/// (ActiveCampaign/postmark-python); hush itself answers with it.
const REQUEST_ID_HEADERS: [&str; 3] = ["x-request-id", "request-id", "x-message-id"];

/// How much of an error body goes into a log line.
const DETAIL_MAX: usize = 512;

/// How an upstream is reached: where, how long to wait, how often to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// The provider's base URL without a trailing slash, e.g.
    /// `https://api.postmarkapp.com`.
    pub base_url: String,
    pub connect_timeout: Duration,
    /// For one attempt, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    pub retry: RetrySettings,
}

/// Retries of idempotent calls (docs/backends.md, "Faults").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The first backoff; each next one doubles, with jitter, up to
    /// `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry starts when it would end later than this after the first
    /// attempt began, `Retry-After` included.
    pub max_elapsed: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

/// Whether a call may be sent twice without changing its effect. A call
/// that is not is retried only when it never reached the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    Idempotent,
    NotIdempotent,
}

/// Whether a base URL would carry credentials unencrypted off this
/// machine: `http://` to a host that is not a loopback address or
/// `localhost`.
pub fn sends_credentials_in_clear(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let name = host.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    !loopback
}

/// A successful answer, read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// One provider, reached over one pooled client.
#[derive(Debug, Clone)]
pub struct Upstream {
    backend: &'static str,
    client: reqwest::Client,
    settings: Arc<UpstreamSettings>,
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        request_id: Option<String>,
        body: String,
    },
    Timeout(String),
    /// The connection was never made, so the provider saw nothing.
    Connect(String),
    Transport(String),
}

impl Failure {
    fn retryable(&self, idempotency: Idempotency) -> bool {
        match (self, idempotency) {
            (Self::Connect(_), _) => true,
            (Self::Status { status, .. }, Idempotency::Idempotent) => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            (Self::Timeout(_) | Self::Transport(_), Idempotency::Idempotent) => true,
            _ => false,
        }
    }
}

impl Upstream {
    /// `backend` names the backend in errors and logs, e.g.
    /// `upstream-postmark`.
    pub fn new(backend: &'static str, settings: UpstreamSettings) -> Result<Self, EngineError> {
        // No redirect is followed: none of these APIs redirects, and
        // reqwest strips only the standard auth headers when a redirect
        // leaves the origin, so `X-Postmark-Server-Token` and
        // `X-SubAccount-ApiKey` would go to whatever host a `Location`
        // names. A 3xx is an upstream fault like any other non-2xx.
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hush/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::internal(backend, format!("HTTP client: {e}")))?;
        if sends_credentials_in_clear(&settings.base_url) {
            tracing::warn!(
                backend,
                base_url = %settings.base_url,
                "the upstream base URL is http:// to a host that is not loopback: the tenant's provider credentials cross the network unencrypted; use https://"
            );
        }
        Ok(Self {
            backend,
            client,
            settings: Arc::new(settings),
        })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `base_url` + `path`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    /// Readiness (`/readyz`): whether the provider answers HTTP at all. One
    /// unauthenticated GET of the base URL, no retries; any status, a 401 or
    /// 404 included, means the provider is there. Only a connection that
    /// cannot be made, or no answer within the request timeout, is
    /// [`EngineError::Unavailable`]: then hush cannot serve the tenants
    /// that live there, and a load balancer should know.
    pub async fn reachable(&self) -> Result<(), EngineError> {
        match self.client.get(self.url("/")).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(EngineError::Unavailable {
                backend: self.backend,
                reason: format!("{:?}", classify(&e)),
            }),
        }
    }

    /// Sends a request built by `build` (called once per attempt) and reads
    /// the answer. A 2xx answer is returned; anything else, after the
    /// retries `idempotency` allows, becomes [`EngineError::Upstream`] or
    /// [`EngineError::UpstreamTimeout`].
    pub async fn send(
        &self,
        idempotency: Idempotency,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, EngineError> {
        self.call(idempotency, false, build).await
    }

    /// Like [`Self::send`], but a client error other than 429 is an answer
    /// too, for callers that read a provider's own error codes (Postmark's
    /// `ErrorCode` 1226 for an unknown stream).
    pub async fn exchange(
        &self,
        idempotency: Idempotency,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, EngineError> {
        self.call(idempotency, true, build).await
    }

    async fn call(
        &self,
        idempotency: Idempotency,
        client_errors: bool,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, EngineError> {
        let retry = self.settings.retry;
        let started = Instant::now();
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(retry.initial_backoff)
            .with_max_delay(retry.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(retry.max_attempts.saturating_sub(1) as usize);
        let attempt = || async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(&build, client_errors).await
        };
        let outcome = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|failure: &Failure| failure.retryable(idempotency))
            .adjust(|failure, delay| {
                next_wait(failure, delay, started.elapsed(), retry.max_elapsed)
            })
            .notify(|failure, wait| {
                tracing::warn!(
                    backend = self.backend,
                    ?failure,
                    ?wait,
                    attempt = attempts.load(Ordering::Relaxed),
                    "upstream call failed; retrying"
                );
            })
            .await;
        outcome.map_err(|failure| self.engine_error(failure, attempts.load(Ordering::Relaxed)))
    }

    /// Sends a request and decodes its JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        idempotency: Idempotency,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<T, EngineError> {
        let answer = self.send(idempotency, build).await?;
        self.decode(&answer)
    }

    /// Reads an answer as the wire type the spec promises; anything else is
    /// an upstream fault, never a panic.
    pub fn decode<T: DeserializeOwned>(&self, answer: &Answer) -> Result<T, EngineError> {
        serde_json::from_slice(&answer.body).map_err(|e| EngineError::Upstream {
            backend: self.backend,
            status: Some(answer.status.as_u16()),
            request_id: request_id(&answer.headers),
            detail: format!(
                "the answer does not match the provider's wire format ({e}): {}",
                excerpt(&answer.body)
            ),
        })
    }

    /// An upstream fault that the client found in an answer itself.
    pub fn fault(&self, answer: &Answer, detail: impl Into<String>) -> EngineError {
        EngineError::Upstream {
            backend: self.backend,
            status: Some(answer.status.as_u16()),
            request_id: request_id(&answer.headers),
            detail: detail.into(),
        }
    }

    async fn attempt(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
        client_errors: bool,
    ) -> Result<Answer, Failure> {
        let response = build(&self.client).send().await.map_err(|e| classify(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| classify(&e))?.to_vec();
        let answered =
            client_errors && status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS;
        if status.is_success() || answered {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        Err(Failure::Status {
            status,
            retry_after: retry_after(&headers),
            request_id: request_id(&headers),
            body: excerpt(&body),
        })
    }

    fn engine_error(&self, failure: Failure, attempts: u32) -> EngineError {
        let backend = self.backend;
        match failure {
            Failure::Status {
                status,
                request_id,
                body,
                ..
            } => EngineError::Upstream {
                backend,
                status: Some(status.as_u16()),
                request_id,
                detail: format!("answered {status} after {attempts} attempt(s): {body}"),
            },
            Failure::Timeout(detail) => EngineError::UpstreamTimeout {
                backend,
                detail: format!("{detail} (after {attempts} attempt(s))"),
            },
            Failure::Connect(detail) | Failure::Transport(detail) => EngineError::Upstream {
                backend,
                status: None,
                request_id: None,
                detail: format!("{detail} (after {attempts} attempt(s))"),
            },
        }
    }
}

fn classify(err: &reqwest::Error) -> Failure {
    // reqwest's Display leaves out the cause; the chain says what happened.
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_timeout() {
        Failure::Timeout(detail)
    } else if err.is_connect() {
        Failure::Connect(detail)
    } else {
        Failure::Transport(detail)
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    REQUEST_ID_HEADERS
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok().map(str::to_owned))
}

/// How long to wait before the next attempt, or `None` for no retry:
/// `delay` is the backoff's (`None` once the attempts are used up). The
/// provider's `Retry-After` wins over our own backoff (RFC 9110 §10.2.3);
/// either way no retry may end past the time budget.
fn next_wait(
    failure: &Failure,
    delay: Option<Duration>,
    elapsed: Duration,
    budget: Duration,
) -> Option<Duration> {
    let wait = match failure {
        Failure::Status {
            retry_after: Some(after),
            ..
        } => delay.map(|_| *after),
        _ => delay,
    }?;
    (elapsed + wait <= budget).then_some(wait)
}

/// `Retry-After` as delay-seconds or as an HTTP-date, both of which RFC
/// 9110 §10.2.3 allows; a date in the past means now. Anything else is
/// treated as absent, leaving our own backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, std::time::SystemTime::now())
}

fn retry_after_at(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(DETAIL_MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.into_owned(),
    }
}

mod snapshots;

pub use snapshots::Snapshots;

#[cfg(test)]
mod tests;

/// A tenant's key at a provider. It never reaches a log: `Debug` hides it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Credential(String);

impl Credential {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// For the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(***)")
    }
}

/// Each tenant's credential at one provider.
#[derive(Debug, Clone, Default)]
pub struct Credentials(std::collections::HashMap<hush_model::TenantId, Credential>);

impl Credentials {
    pub fn insert(&mut self, tenant: hush_model::TenantId, credential: Credential) {
        self.0.insert(tenant, credential);
    }

    /// The tenant's credential; a tenant without one cannot be served,
    /// which start-up validation rules out.
    pub fn of(
        &self,
        backend: &'static str,
        tenant: &hush_model::TenantId,
    ) -> Result<&Credential, EngineError> {
        self.0.get(tenant).ok_or_else(|| EngineError::Unavailable {
            backend,
            reason: format!("tenant {} has no upstream credential", tenant.as_str()),
        })
    }
}

impl FromIterator<(hush_model::TenantId, Credential)> for Credentials {
    fn from_iter<I: IntoIterator<Item = (hush_model::TenantId, Credential)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}
