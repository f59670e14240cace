//! The Postmark suppressions API (docs/api/postmark.md) over hush's shared
//! engine: message-stream suppressions (dump, create, delete with a status
//! per item) and the message-stream calls the SDKs make, with Postmark's
//! `{"ErrorCode","Message"}` errors.
//!
//! Postmark's behaviour is cited from its API docs (postmarkapp.com/developer):
//! "Suppressions API" (postmarkapp.com/developer/api/suppressions-api),
//! "Message Streams API", "Bounce API", and "API overview" for
//! authentication and the error codes; what the SDKs do, from their sources:
//! postmark.js (ActiveCampaign/postmark.js), postmark-python
//! (ActiveCampaign/postmark-python), postmarker (Stranger6667/postmarker)
//! and postmark-php (ActiveCampaign/postmark-php).
//!
//! Postmark serves at the host root, and postmarker cannot use a path
//! prefix (it joins its paths onto `root_api_url` with `urljoin`, which
//! drops one), so the routes live under `/message-streams` at the root.

pub mod auth;
mod error;
pub mod extract;
mod streams;
mod suppressions;
pub mod upstream;
pub mod wire;

use actix_web::{HttpRequest, HttpResponse, Scope, web};
use hush_engine::Engine;
use hush_engine::access::KeyTable;
use hush_http::Endpoint;

pub use auth::{PostmarkServer, SERVER_TOKEN_HEADER, speaks_postmark};
pub use error::{ErrorBody, PostmarkError, StreamRule};
pub use streams::{MAX_STREAMS, server_id};
pub use suppressions::MAX_CHANGES;

/// What hush keeps per Postmark server token beyond its tenant. Nothing yet:
/// a server token has every permission on its server.
#[derive(Debug, Clone, Default)]
pub struct PostmarkProfile {}

/// Everything the Postmark routes need.
#[derive(Debug)]
pub struct PostmarkState {
    pub engine: Engine,
    pub keys: KeyTable<PostmarkProfile>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
}

/// The `/message-streams` scope with every Postmark route, its 404 and 405
/// in Postmark's format.
pub fn scope(state: web::Data<PostmarkState>) -> Scope {
    let limit = state.body_limit;
    web::scope("/message-streams")
        .app_data(state)
        .app_data(web::PayloadConfig::new(limit))
        .service(endpoint("").get(streams::list).post(streams::create))
        .service(endpoint("/{stream}").get(streams::get).patch(streams::edit))
        .service(endpoint("/{stream}/archive").post(streams::archive))
        .service(endpoint("/{stream}/unarchive").post(streams::unarchive))
        .service(endpoint("/{stream}/suppressions").post(suppressions::create))
        .service(endpoint("/{stream}/suppressions/dump").get(suppressions::dump))
        .service(endpoint("/{stream}/suppressions/delete").post(suppressions::delete))
        .default_service(web::to(not_found))
}

/// A resource whose unmatched methods answer 405 in Postmark's format,
/// with `Allow`.
fn endpoint(path: &str) -> Endpoint {
    Endpoint::new(path, method_not_allowed)
}

/// A refusal the gateway makes before routing, in Postmark's format.
pub fn refuse(refusal: &hush_http::GatewayRefusal) -> HttpResponse {
    let err = match refusal {
        hush_http::GatewayRefusal::EncodedBody(_) => {
            PostmarkError::UnsupportedMediaType(refusal.message())
        }
        hush_http::GatewayRefusal::TooManyFailures { .. } => {
            PostmarkError::TooManyRequests(refusal.message())
        }
    };
    refusal.stamp(actix_web::ResponseError::error_response(&err))
}

/// Whether a request is for Postmark's API: it carries a Postmark token,
/// or its path is Postmark's.
pub fn is_postmark_request(req: &HttpRequest) -> bool {
    speaks_postmark(req)
        || req.path() == "/message-streams"
        || req.path().starts_with("/message-streams/")
}

/// The router's 404 in Postmark's format.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&PostmarkError::RouteNotFound)
}

fn method_not_allowed(_: &HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&PostmarkError::MethodNotAllowed)
}
