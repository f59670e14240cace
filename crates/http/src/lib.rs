//! What every API crate shares about serving HTTP, and nothing about any
//! one provider's wire format: each API passes in how it words a refusal.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::Method;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, web};

/// How an API words the 405 it answers for a method a resource does not
/// serve. [`Endpoint`] adds the `Allow` header.
pub type Refusal = fn(&HttpRequest) -> HttpResponse;

/// A resource and the methods its routes serve. Any other method is
/// answered by the API's [`Refusal`] with an `Allow` header naming the
/// served ones, which a 405 must carry (RFC 9110 §15.5.6). The methods are
/// collected as routes are added, so the header cannot drift from them.
pub struct Endpoint {
    resource: Resource,
    allowed: Vec<Method>,
    refusal: Refusal,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn new(path: &str, refusal: Refusal) -> Self {
        Self {
            resource: web::resource(path),
            allowed: Vec::new(),
            refusal,
        }
    }

    /// Serves `method` with `handler`.
    pub fn route<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.allowed.push(method);
        self
    }

    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::GET, handler)
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::POST, handler)
    }

    pub fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PATCH, handler)
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::DELETE, handler)
    }

    /// The `Allow` value: the served methods, comma-separated.
    pub fn allow(&self) -> String {
        self.allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The resource, with every other method refused.
    pub fn into_resource(self) -> Resource {
        let allow = HeaderValue::from_str(&self.allow()).unwrap_or(HeaderValue::from_static(""));
        let refusal = self.refusal;
        self.resource
            .default_service(web::to(move |req: HttpRequest| {
                std::future::ready(refuse(refusal, &req, allow.clone()))
            }))
    }
}

fn refuse(refusal: Refusal, req: &HttpRequest, allow: HeaderValue) -> HttpResponse {
    let mut res = refusal(req);
    res.headers_mut().insert(ALLOW, allow);
    res
}

impl HttpServiceFactory for Endpoint {
    fn register(self, config: &mut AppService) {
        self.into_resource().register(config);
    }
}

/// What the gateway refuses before any API's handler runs. Each API words
/// it in its own error format (`refuse` in each API crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRefusal {
    /// A request body sent with a `Content-Encoding` other than
    /// `identity`: no client of these APIs compresses what it sends, and
    /// decoding is where a small body becomes a large one.
    EncodedBody(String),
    /// Too many failed authentications from the client's address: it is
    /// to wait this many seconds (`Retry-After`).
    TooManyFailures { retry_after_secs: u64 },
}

impl GatewayRefusal {
    /// The message every API shows.
    pub fn message(&self) -> String {
        match self {
            Self::EncodedBody(encoding) => format!(
                "request bodies with Content-Encoding {encoding:?} are not accepted; send the body uncompressed"
            ),
            Self::TooManyFailures { retry_after_secs } => format!(
                "too many failed authentications from this address; retry after {retry_after_secs} seconds"
            ),
        }
    }
}

impl GatewayRefusal {
    /// Adds what the refusal tells a client beyond its body: how long to
    /// wait, for a 429.
    pub fn stamp(&self, mut res: HttpResponse) -> HttpResponse {
        if let Self::TooManyFailures { retry_after_secs } = self {
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                HeaderValue::from(*retry_after_secs),
            );
        }
        res
    }
}

/// The message of a 408: a body that stopped arriving, or arrived slower
/// than the server's minimum rate.
pub const BODY_TIMEOUT_MESSAGE: &str = "the request body did not arrive in time (server.body_timeout_secs, server.body_min_bytes_per_sec)";

/// Whether a body read failed because the body did not arrive in time (the
/// gateway's pacing, which fails the stream with `TimedOut`).
pub fn is_body_timeout(err: &actix_web::Error) -> bool {
    matches!(
        err.as_error::<actix_web::error::PayloadError>(),
        Some(actix_web::error::PayloadError::Io(io)) if io.kind() == std::io::ErrorKind::TimedOut
    )
}

/// How long a client is told to wait after a 503, in seconds. Short:
/// SendPost's SDK sleeps that long before each of its three automatic
/// retries of a GET or DELETE (urllib3 honours `Retry-After` on 503), and
/// a full disk or a restarting database is seldom fixed faster.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Adds `Retry-After` to a 503, which every API answers while its store
/// cannot be reached or cannot write (RFC 9110 §10.2.3); other responses
/// are left as they are.
pub fn with_retry_after(mut res: HttpResponse) -> HttpResponse {
    if res.status() == actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER_SECS),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::{App, test};

    use super::*;

    fn teapot(_: &HttpRequest) -> HttpResponse {
        HttpResponse::MethodNotAllowed().body("refused in the API's words")
    }

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().finish()
    }

    #[actix_web::test]
    async fn other_methods_are_refused_naming_the_served_ones() {
        let app =
            test::init_service(App::new().service(Endpoint::new("/x", teapot).get(ok).delete(ok)))
                .await;
        let res = test::call_service(
            &app,
            test::TestRequest::default()
                .method(Method::PUT)
                .uri("/x")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            res.headers().get(ALLOW).and_then(|v| v.to_str().ok()),
            Some("GET, DELETE")
        );
        let body = test::read_body(res).await;
        assert_eq!(body, "refused in the API's words");
        let served =
            test::call_service(&app, test::TestRequest::get().uri("/x").to_request()).await;
        assert_eq!(served.status(), StatusCode::OK);
        assert!(served.headers().get(ALLOW).is_none());
    }
}
