//! The SendPost subaccount suppressions API (docs/api/sendpost.md) over
//! hush's shared engine: numeric reason codes, nanosecond timestamps and
//! `{"error":{…}}` errors, under `/api/v1`.
//!
//! SendPost's behaviour is cited from its API reference
//! (docs.sendpost.io/api-reference): the introduction (the key header,
//! status codes, "API Contract Versioning"), "Create Suppressions"
//! (suppression/create-new-suppressions) and the listing
//! (suppression/get-all-suppressions); from the OpenAPI document its SDKs
//! are generated from, 1.3.0 as the Python SDK `sendpost` 3.0.0 ships it
//! (sendpost/sendpost-python-sdk) and 1.0.0 in sendpost/sendpost-go-sdk's
//! `api/openapi.yaml`; and what that Python SDK does, from its source.

pub mod auth;
pub mod contract;
mod error;
pub mod extract;
mod suppressions;
pub mod upstream;
pub mod wire;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Scope, web};
use hush_engine::Engine;
use hush_engine::access::KeyTable;
use hush_http::Endpoint;

pub use auth::SendPostSubaccount;
pub use contract::Contract;
pub use error::{ErrorBody, ErrorEnvelope, SendPostError};

/// The path prefix of every SendPost route: the SDK's default host is
/// `https://api.sendpost.io/api/v1` (the Python SDK's `Configuration`).
pub const PREFIX: &str = "/api/v1";

/// What hush keeps per SendPost key beyond its tenant.
#[derive(Debug, Clone, Default)]
pub struct SendPostProfile {}

/// Everything the SendPost routes need.
#[derive(Debug)]
pub struct SendPostState {
    pub engine: Engine,
    pub keys: KeyTable<SendPostProfile>,
    /// The largest JSON body accepted, in bytes.
    pub body_limit: usize,
}

/// The `/api/v1` scope with every SendPost route, its 404 and 405 in the
/// SendPost envelope, and the contract echoed on every response ("API
/// Contract Versioning"). Trailing slashes and `//` (an SDK host ending in
/// `/`, the legacy SDKs' paths: docs/api/sendpost.md, "Paths") are the
/// app's `NormalizePath`'s job, so the gateway and the tests wrap the app
/// in it.
pub fn scope(
    state: web::Data<SendPostState>,
) -> Scope<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.body_limit;
    web::scope(PREFIX)
        .wrap(from_fn(contract::echo))
        .app_data(state)
        .app_data(web::PayloadConfig::new(limit))
        .service(
            endpoint("/subaccount/suppression")
                .get(suppressions::list)
                .post(suppressions::create)
                .delete(suppressions::delete),
        )
        .service(endpoint("/subaccount/suppression/count").get(suppressions::count))
        .default_service(web::to(not_found))
}

/// A resource whose unmatched methods answer 405 in the SendPost envelope,
/// with `Allow`.
fn endpoint(path: &str) -> Endpoint {
    Endpoint::new(path, method_not_allowed)
}

/// A refusal the gateway makes before routing, in the SendPost envelope
/// with the contract echoed.
pub fn refuse(req: &HttpRequest, refusal: &hush_http::GatewayRefusal) -> HttpResponse {
    let err = match refusal {
        hush_http::GatewayRefusal::EncodedBody(_) => {
            SendPostError::UnsupportedMediaType(refusal.message())
        }
        hush_http::GatewayRefusal::TooManyFailures { .. } => {
            SendPostError::TooManyRequests(refusal.message())
        }
    };
    refusal.stamp(contract::respond(req, &err))
}

/// The router's 404 in the SendPost envelope, with the contract echoed; the
/// gateway answers unknown paths with it for SendPost callers.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    contract::respond(&req, &SendPostError::route_not_found())
}

fn method_not_allowed(req: &HttpRequest) -> HttpResponse {
    contract::respond(req, &SendPostError::MethodNotAllowed)
}

/// Whether a request that no route served is a SendPost one: it carries
/// the SendPost key header, or its path is under `/api/v1`.
pub fn speaks_sendpost(req: &HttpRequest) -> bool {
    auth::carries_key(req) || req.path() == PREFIX || req.path().starts_with("/api/v1/")
}
