//! The v3 (SendGrid-style) suppression API of seed 001, served over the
//! shared engine: wire types, routes, the key extractor and the error
//! envelope.

pub mod auth;
mod bounces;
mod error;
pub mod extract;
pub mod listing;
pub mod wire;

use actix_web::{HttpResponse, Resource, Scope, web};
use hush_engine::Engine;
use hush_engine::access::KeyTable;

pub use error::{ErrorEnvelope, ErrorItem, V3Error};

/// What hush keeps per v3 key beyond its tenant and permissions.
#[derive(Debug, Clone, Default)]
pub struct V3Profile {}

/// Everything the v3 routes need.
#[derive(Debug)]
pub struct V3State {
    pub engine: Engine,
    pub keys: KeyTable<V3Profile>,
    /// The largest JSON body accepted, in bytes.
    pub body_limit: usize,
}

/// The `/v3` scope with every v3 route, its 404 and 405 in the v3 envelope.
pub fn scope(state: web::Data<V3State>) -> Scope {
    let limit = state.body_limit;
    web::scope("/v3")
        .app_data(state)
        .app_data(web::PayloadConfig::new(limit))
        .service(
            resource("/suppression/bounces")
                .route(web::get().to(bounces::list))
                .route(web::post().to(bounces::create))
                .route(web::delete().to(bounces::delete_many)),
        )
        .service(
            resource("/suppression/bounces/{email}")
                .route(web::get().to(bounces::get))
                .route(web::delete().to(bounces::delete)),
        )
        .default_service(web::to(not_found))
}

/// A resource whose unmatched methods answer 405 in the v3 envelope.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// The router's 404 in the v3 envelope.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&V3Error::route_not_found())
}

async fn method_not_allowed() -> HttpResponse {
    actix_web::ResponseError::error_response(&V3Error::MethodNotAllowed)
}
