//! What every request passes before any API sees it: forwarded headers
//! only from trusted proxies, no encoded bodies, and bodies that keep
//! arriving.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_ENCODING, HeaderName};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse};
use futures_util::Stream;
use hush_http::GatewayRefusal;
use tokio::time::{Instant, Sleep};

/// How fast a request body must arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    /// Allowed before the first byte, and on top of the rate after it.
    pub grace: Duration,
    /// The least average rate, in bytes a second.
    pub min_bytes_per_sec: u64,
}

impl BodyPace {
    /// When a body that started at `start` and has delivered `received`
    /// bytes must have delivered more: the grace, plus the time those
    /// bytes may take at the least rate. A trickle of a byte every few
    /// seconds, or a declared length the client never sends, runs out of
    /// it; a large import at any honest speed does not.
    fn deadline(&self, start: Instant, received: u64) -> Instant {
        let earned = Duration::from_secs_f64(received as f64 / self.min_bytes_per_sec as f64);
        start + self.grace + earned
    }
}

/// What the guard enforces.
#[derive(Debug, Clone)]
pub struct Guard {
    pub pace: BodyPace,
    /// `server.trusted_proxies`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Shared by every worker; `None` when the limit is off.
    pub auth_failures: Option<Arc<AuthFailures>>,
}

/// Failed authentications per client address: each 401 takes a cell of a
/// GCRA bucket per address (governor); an address whose bucket is empty is
/// answered 429, with `Retry-After`, until a cell comes back. Brute-forcing
/// a token then costs a minute per `per_minute` guesses.
pub struct AuthFailures {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    clock: governor::clock::DefaultClock,
    /// Addresses told to wait, and until when.
    blocked: Mutex<HashMap<IpAddr, std::time::Instant>>,
    on_loopback: bool,
}

impl std::fmt::Debug for AuthFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailures")
            .field("addresses", &self.limiter.len())
            .field("on_loopback", &self.on_loopback)
            .finish_non_exhaustive()
    }
}

/// The most addresses kept before the expired ones are dropped.
const TRACKED_ADDRESSES: usize = 10_000;

impl AuthFailures {
    pub fn new(per_minute: NonZeroU32, on_loopback: bool) -> Self {
        Self {
            limiter: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            clock: governor::clock::DefaultClock::default(),
            blocked: Mutex::new(HashMap::new()),
            on_loopback,
        }
    }

    fn counts(&self, client: IpAddr) -> bool {
        self.on_loopback || !client.is_loopback()
    }

    /// How many seconds `client` is still to wait, if it is blocked.
    fn waiting(&self, client: IpAddr) -> Option<u64> {
        let blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        let until = *blocked.get(&client)?;
        let now = std::time::Instant::now();
        // Rounded up: a client that waits what it is told is let in.
        (until > now).then(|| until.duration_since(now).as_secs() + 1)
    }

    /// Counts a failed authentication of `client`.
    fn failed(&self, client: IpAddr) {
        use governor::clock::Clock as _;
        if let Err(not_until) = self.limiter.check_key(&client) {
            let wait = not_until.wait_time_from(self.clock.now());
            let now = std::time::Instant::now();
            let until = now + wait;
            let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
            if blocked.len() >= TRACKED_ADDRESSES {
                blocked.retain(|_, at| *at > now);
            }
            blocked.insert(client, until);
            tracing::warn!(%client, "too many failed authentications from one address; answering 429 for a while");
        }
        if self.limiter.len() >= TRACKED_ADDRESSES {
            self.limiter.retain_recent();
        }
    }
}

/// The headers through which a proxy says who the client is and what it
/// asked for. actix-web believes them from anyone (`ConnectionInfo`), and
/// SendGrid-shape `Link` headers are built from them.
/// Named once: a `&str` name is parsed into a `HeaderName` on every use,
/// which showed in a profile of lookups.
const FORWARDED_HEADERS: [HeaderName; 5] = [
    HeaderName::from_static("forwarded"),
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-real-ip"),
];
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

impl Guard {
    /// Removes the forwarded headers of a peer that is not a trusted
    /// proxy, and from a trusted one any that name a scheme other than
    /// `http`/`https` or a host that is not a host: a client must not
    /// choose the scheme and host of the links hush answers with
    /// (`X-Forwarded-Proto: javascript` made `Link: <javascript://…>`).
    fn sanitize_forwarded(&self, req: &mut ServiceRequest) {
        let trusted = req.peer_addr().is_some_and(|peer| {
            self.trusted_proxies
                .iter()
                .any(|net| net.contains(&peer.ip()))
        });
        let headers = req.headers_mut();
        if !trusted {
            let mut forwarded = false;
            for name in &FORWARDED_HEADERS {
                if headers.contains_key(name) {
                    headers.remove(name);
                    forwarded = true;
                }
            }
            if forwarded && req.peer_addr().is_some_and(|peer| peer.ip().is_loopback()) {
                warn_untrusted_local_proxy();
            }
            return;
        }
        let bad_proto = headers
            .get_all(&X_FORWARDED_PROTO)
            .any(|v| !v.to_str().is_ok_and(is_web_scheme));
        if bad_proto {
            headers.remove(&X_FORWARDED_PROTO);
        }
        let bad_host = headers
            .get_all(&X_FORWARDED_HOST)
            .any(|v| !v.to_str().is_ok_and(is_authority));
        if bad_host {
            headers.remove(&X_FORWARDED_HOST);
        }
        let bad_forwarded = headers
            .get_all(&FORWARDED)
            .any(|v| !v.to_str().is_ok_and(forwarded_is_sane));
        if bad_forwarded {
            headers.remove(&FORWARDED);
        }
    }
}

/// A proxy on this machine that is not in `server.trusted_proxies` makes
/// every client look like loopback: the failed-authentication limit does
/// not count loopback, and a gateway listening on loopback accepts the
/// demo tokens and short ones. Said once per interval.
fn warn_untrusted_local_proxy() {
    static THROTTLE: hush_engine::Throttle =
        hush_engine::Throttle::new(hush_engine::UNAVAILABLE_LOG_INTERVAL);
    if let Some(unlogged) = THROTTLE.admit() {
        tracing::warn!(
            requests_since_last_line = unlogged,
            "requests with forwarded headers arrive from a proxy on this machine that is not in server.trusted_proxies: every client looks like loopback, which the failed-authentication limit does not count; list the proxy in server.trusted_proxies"
        );
    }
}

fn is_web_scheme(value: &str) -> bool {
    let value = value.trim();
    value.eq_ignore_ascii_case("http") || value.eq_ignore_ascii_case("https")
}

/// A host, optionally with a port: letters, digits, `.`, `-`, or a
/// bracketed IPv6 address.
fn is_authority(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// RFC 7239: every `proto` is http or https, and every `host` an
/// authority.
fn forwarded_is_sane(value: &str) -> bool {
    value.split([',', ';']).all(|pair| {
        let Some((name, raw)) = pair.split_once('=') else {
            return pair.trim().is_empty();
        };
        let raw = raw.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "proto" => is_web_scheme(raw),
            "host" => is_authority(raw),
            _ => true,
        }
    })
}

/// The middleware: drops forwarded headers hush must not believe, refuses
/// a body with a `Content-Encoding` other than `identity` in the caller's
/// API format (415), and paces every body.
///
/// No SDK of these APIs compresses what it sends, and decoding is where a
/// 1 MB body becomes 1 GB before any limit sees it, so hush decodes
/// nothing: actix-web is built without request decompression, and an
/// encoded body is refused here before it is read.
pub async fn guard(
    guard: std::rc::Rc<Guard>,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    guard.sanitize_forwarded(&mut req);
    // A webhook's refusals are not a client guessing keys: a provider
    // posting with a stale secret would otherwise get its sending address
    // throttled for every hook and tenant behind it.
    let counted = !req.path().starts_with(hush_webhooks::PREFIX);
    let limited = guard
        .auth_failures
        .as_ref()
        .filter(|_| counted)
        .and_then(|limit| {
            client_address(&req, &guard.trusted_proxies)
                .filter(|client| limit.counts(*client))
                .map(|client| (limit, client))
        });
    if let Some((limit, client)) = limited
        && let Some(retry_after_secs) = limit.waiting(client)
    {
        let refusal = GatewayRefusal::TooManyFailures { retry_after_secs };
        let response = refuse(req.request(), &refusal);
        return Ok(req.into_response(response));
    }
    let pace = guard.pace;
    let encoding = req
        .headers()
        .get_all(CONTENT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        .map(str::to_owned);
    if let Some(encoding) = encoding {
        let refusal = GatewayRefusal::EncodedBody(encoding);
        let response = refuse(req.request(), &refusal);
        return Ok(req.into_response(response));
    }
    // A request without a body (a lookup) has nothing to pace, and a
    // timer per request is not free on the lookup path.
    if may_have_body(&req) {
        let payload = req.take_payload();
        req.set_payload(Payload::Stream {
            payload: Box::pin(Paced::new(payload, pace)),
        });
    }
    let res = next.call(req).await?;
    if res.status() == actix_web::http::StatusCode::UNAUTHORIZED
        && let Some((limit, client)) = limited
    {
        limit.failed(client);
    }
    Ok(res.map_into_boxed_body())
}

/// Whether a request declares a body: a `Content-Length` above zero, or a
/// `Transfer-Encoding` (chunked).
fn may_have_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(actix_web::http::header::TRANSFER_ENCODING) {
        return true;
    }
    match headers.get(actix_web::http::header::CONTENT_LENGTH) {
        None => false,
        Some(length) => length.to_str().map_or(true, |v| v.trim() != "0"),
    }
}

/// The client's address: the peer's; or, when the peer is a trusted proxy,
/// the last address of `X-Forwarded-For` that is not a trusted proxy
/// itself. Read from the right: a proxy appends what it saw, and anything
/// to the left of that is what the client claimed, which a client would
/// use to pick a fresh address for each guess (or a victim's). An entry
/// that does not parse ends the walk at the hop before it.
fn client_address(req: &ServiceRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = req.peer_addr()?.ip().to_canonical();
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    let hops = req
        .headers()
        .get_all(&X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    Some(client)
}

/// An address as proxies write it in `X-Forwarded-For`: bare, with a
/// port, or bracketed.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| hop.trim_start_matches('[').split(']').next()?.parse().ok())
}

/// The API a request speaks, for answers given before or outside any
/// API's routes (a gateway refusal, the fallback 404): Postmark's by its
/// token header or path, SendPost's by its key header or `/api/v1`, v3's
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    V3,
    Postmark,
    SendPost,
}

impl Caller {
    pub fn of(req: &HttpRequest) -> Self {
        if hush_postmark::is_postmark_request(req) {
            Self::Postmark
        } else if hush_sendpost::speaks_sendpost(req) {
            Self::SendPost
        } else {
            Self::V3
        }
    }
}

/// A gateway refusal in the format of the API the caller speaks.
pub fn refuse(req: &HttpRequest, refusal: &GatewayRefusal) -> HttpResponse {
    match Caller::of(req) {
        Caller::Postmark => hush_postmark::refuse(refusal),
        Caller::SendPost => hush_sendpost::refuse(req, refusal),
        Caller::V3 => hush_v3::refuse(refusal),
    }
}

/// A request body that fails with `TimedOut` when it falls behind its
/// [`BodyPace`].
struct Paced {
    inner: Payload,
    pace: BodyPace,
    start: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
    /// When the last chunk was handed to the reader: the time until it
    /// asks for the next one is the server's (an import committing a
    /// batch), not the client's, and is not counted against it.
    handed_at: Option<Instant>,
}

impl Paced {
    fn new(inner: Payload, pace: BodyPace) -> Self {
        let start = Instant::now();
        Self {
            inner,
            pace,
            start,
            received: 0,
            handed_at: None,
            timer: Box::pin(tokio::time::sleep_until(pace.deadline(start, 0))),
        }
    }
}

impl Stream for Paced {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(handed_at) = this.handed_at.take() {
            this.start += handed_at.elapsed();
            let deadline = this.pace.deadline(this.start, this.received);
            this.timer.as_mut().reset(deadline);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                let deadline = this.pace.deadline(this.start, this.received);
                this.timer.as_mut().reset(deadline);
                this.handed_at = Some(Instant::now());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    hush_http::BODY_TIMEOUT_MESSAGE,
                ))))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_schemes_and_hosts_are_believed() {
        assert!(is_web_scheme("https") && is_web_scheme(" HTTP "));
        assert!(!is_web_scheme("javascript") && !is_web_scheme("https, javascript"));
        assert!(is_authority("api.example.com:8443") && is_authority("[::1]:80"));
        assert!(!is_authority("evil.example/x") && !is_authority("a b") && !is_authority(""));
        assert!(forwarded_is_sane(
            "for=192.0.2.60;proto=https;host=api.example.com"
        ));
        assert!(forwarded_is_sane("for=192.0.2.60, for=198.51.100.17"));
        assert!(!forwarded_is_sane("for=192.0.2.60;proto=javascript"));
        assert!(!forwarded_is_sane("host=\"evil.example/<x>\""));
    }

    fn client_of(peer: &str, forwarded_for: Option<&str>, trusted: &[&str]) -> Option<IpAddr> {
        let mut req = actix_web::test::TestRequest::default()
            .peer_addr(peer.parse().unwrap_or_else(|e| panic!("{e}")));
        if let Some(value) = forwarded_for {
            req = req.insert_header(("X-Forwarded-For", value));
        }
        let trusted: Vec<ipnet::IpNet> = trusted
            .iter()
            .map(|t| t.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        client_address(&req.to_srv_request(), &trusted)
    }

    /// Behind a trusted proxy the client is the rightmost address that is
    /// not a proxy: what a client writes to the left is not believed.
    #[test]
    fn the_client_is_what_the_last_proxy_saw() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            client_of("198.51.100.7:1", Some("1.2.3.4"), &[]),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_of(
                "127.0.0.1:1",
                Some("6.6.6.6, 203.0.113.9"),
                &["127.0.0.1/32"]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_of(
                "127.0.0.1:1",
                Some("6.6.6.6, 203.0.113.9, 10.0.0.5"),
                &["127.0.0.1/32", "10.0.0.0/8"]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_of(
                "127.0.0.1:1",
                Some("203.0.113.9, unknown"),
                &["127.0.0.1/32"]
            ),
            ip("127.0.0.1"),
            "an unparsable hop ends the walk"
        );
        assert_eq!(
            client_of("127.0.0.1:1", None, &["127.0.0.1/32"]),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_of("[::ffff:10.1.2.3]:1", Some("203.0.113.9"), &["10.0.0.0/8"]),
            ip("203.0.113.9"),
            "an IPv4 peer on a dual-stack listener"
        );
    }

    /// Time the server takes between reading one chunk and asking for the
    /// next (an import committing a batch) is not the client's: the body
    /// is not timed out for it.
    #[tokio::test]
    async fn time_the_server_holds_a_chunk_is_not_counted() {
        use futures_util::StreamExt as _;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, PayloadError>>(1);
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
        let payload = Payload::Stream { payload: boxed };
        let pace = BodyPace {
            grace: Duration::from_secs(1),
            min_bytes_per_sec: 1_000_000,
        };
        let mut body = Paced::new(payload, pace);
        sender
            .send(Ok(Bytes::from_static(b"first")))
            .await
            .unwrap_or_else(|_| panic!("send"));
        assert!(matches!(body.next().await, Some(Ok(_))));
        // The server holds the chunk three times the grace...
        tokio::time::sleep(Duration::from_secs(3)).await;
        // ...and the client's next chunk comes soon after it asks.
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = sender.send(Ok(Bytes::from_static(b"second"))).await;
            sender
        });
        let next = body.next().await;
        assert!(matches!(next, Some(Ok(_))), "{next:?}");
        drop(late.await);
    }

    #[test]
    fn the_deadline_grows_with_what_arrived() {
        let pace = BodyPace {
            grace: Duration::from_secs(10),
            min_bytes_per_sec: 1024,
        };
        let start = Instant::now();
        assert_eq!(pace.deadline(start, 0), start + Duration::from_secs(10));
        assert_eq!(
            pace.deadline(start, 10 * 1024),
            start + Duration::from_secs(20)
        );
    }
}
