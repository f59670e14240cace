//! The admin API under `/admin/v1` (docs/api/admin.md): find an address in
//! every tenant, read a tenant's history, and restore what a window of it
//! changed. For operators, not tenants: its tokens are the `[[admin.tokens]]`
//! of the config, and without any the gateway does not mount it at all.

mod auth;
mod calls;
mod error;
pub mod wire;

pub use calls::mirror_report;

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, Scope, web};
use hush_engine::Engine;
use hush_engine::access::TokenDigest;
use hush_http::Endpoint;
use hush_model::TenantId;

pub use auth::{AdminCaller, AdminScope};
pub use error::AdminError;

/// The path prefix of every admin route.
pub const PREFIX: &str = "/admin/v1";

/// One admin token as configured: held as a digest only.
#[derive(Debug, Clone)]
pub struct AdminToken {
    /// What the journal and logs call it.
    pub name: Arc<str>,
    pub digest: TokenDigest,
    pub read: bool,
    pub write: bool,
    /// The tenants it may see; `None` for every tenant.
    pub tenants: Option<Vec<TenantId>>,
}

/// Everything the admin routes need.
#[derive(Debug)]
pub struct AdminState {
    pub engine: Engine,
    pub tokens: Vec<AdminToken>,
    /// Every configured tenant, in config order.
    pub tenants: Vec<TenantId>,
    /// The webhooks' counts, when the gateway serves webhooks.
    pub webhooks: Option<web::Data<hush_webhooks::WebhookState>>,
    /// Every configured mirror: its tenant, name and provider.
    pub mirrors: Vec<MirrorEntry>,
    pub body_limit: usize,
}

/// A configured mirror, as the admin API lists it.
#[derive(Debug, Clone)]
pub struct MirrorEntry {
    pub tenant: TenantId,
    /// `v3`, `postmark` or `sendpost`.
    pub provider: &'static str,
    /// Its name and the provider's client, for a retry.
    pub target: hush_engine::MirrorTarget,
}

/// The `/admin/v1` scope with every admin route and its errors.
pub fn scope(
    state: web::Data<AdminState>,
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
        .app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(limit)
                .error_handler(|err, _| {
                    AdminError::BadRequest(format!("the request body is not valid: {err}")).into()
                }),
        )
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            AdminError::BadRequest(format!("the query is not valid: {err}")).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|err, _| {
            AdminError::BadRequest(format!("the path is not valid: {err}")).into()
        }))
        .service(endpoint("/addresses/{email}").get(calls::address))
        .service(endpoint("/tenants").get(calls::tenants))
        .service(endpoint("/tenants/{tenant}/history").get(calls::history))
        .service(endpoint("/tenants/{tenant}/restore").post(calls::restore))
        .service(endpoint("/tenants/{tenant}/webhooks").get(calls::webhooks))
        .service(endpoint("/tenants/{tenant}/mirrors").get(calls::mirrors))
        .service(endpoint("/tenants/{tenant}/mirrors/{mirror}/retry").post(calls::retry_mirror))
        .default_service(web::to(not_found))
}

fn endpoint(path: &str) -> Endpoint {
    Endpoint::new(path, method_not_allowed)
}

fn method_not_allowed(_: &HttpRequest) -> HttpResponse {
    AdminError::MethodNotAllowed.error_response()
}

async fn not_found() -> HttpResponse {
    AdminError::RouteNotFound.error_response()
}
