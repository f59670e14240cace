//! The v3 (SendGrid-style) suppression API, in the documented shape hush
//! follows by default (docs/api/v3.md), served over the shared engine: wire
//! types, routes, the key extractor and the error envelope. A key may opt
//! into the `sendgrid` shape, SendGrid's own responses, on the same routes.
//!
//! SendGrid's behaviour is cited from its API reference
//! (twilio.com/docs/sendgrid), by the operation titles of the OpenAPI
//! document it is generated from (twilio/sendgrid-oai,
//! `spec/yaml/tsg_suppressions_v3.yaml`), e.g. "Retrieve all bounces", and
//! by that document's schema names (`BounceResponse`); what the live API
//! does beyond it, by the GitHub issue that reports it (sendgrid/docs#6194).

pub mod auth;
mod bounces;
mod error;
pub mod extract;
mod global;
mod groups;
mod import;
pub mod listing;
mod lists;
pub mod upstream;
pub mod wire;

use actix_web::{HttpRequest, HttpResponse, Scope, web};
use hush_engine::Engine;
use hush_engine::access::KeyTable;
use hush_http::Endpoint;
use hush_model::TenantId;
use serde::{Deserialize, Serialize};

pub use error::{ErrorEnvelope, ErrorItem, V3Error};

/// Which responses a key gets. `seed` is the documented v3 shape hush follows
/// (docs/api/v3.md) and the default; `sendgrid` is SendGrid's own (bare
/// arrays with a `Link` header, `200 []` and `200 {}` for absent addresses,
/// blocks, invalid emails, …), for clients written against SendGrid itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    #[default]
    Seed,
    Sendgrid,
}

/// What hush keeps per v3 key beyond its tenant and permissions.
#[derive(Debug, Clone, Default)]
pub struct V3Profile {
    pub shape: Shape,
    /// Tenants this key may act for with `on-behalf-of: <tenant>`: the
    /// subusers of its own tenant (SendGrid docs, "On Behalf Of").
    pub subusers: Vec<TenantId>,
}

/// Everything the v3 routes need.
#[derive(Debug)]
pub struct V3State {
    pub engine: Engine,
    pub keys: KeyTable<V3Profile>,
    /// The largest JSON body accepted, in bytes.
    pub body_limit: usize,
    /// The largest CSV import body accepted, in bytes. Imports are streamed,
    /// so this bounds the work of one request, not its memory.
    pub import_limit: u64,
}

/// The `/v3` scope with every v3 route, its 404 and 405 in the v3 envelope.
/// Static segments are registered before `{email}` at the same depth
/// (`bounces/import`, `suppressions/global`, `suppressions/search`): none of
/// those words is an address. The global unsubscribes come first: the
/// router tries resources in order, and the address lookup there is the
/// hot path of a sender (docs/benchmarks.md).
pub fn scope(state: web::Data<V3State>) -> Scope {
    use lists::{Blocks, Bounces, InvalidEmails, SpamReports, Unsubscribes};
    let limit = state.body_limit;
    web::scope("/v3")
        .app_data(state)
        .app_data(web::PayloadConfig::new(limit))
        .service(endpoint("/asm/suppressions/global/import").post(import::global))
        .service(
            endpoint("/asm/suppressions/global")
                .get(global::list)
                .post(global::add),
        )
        .service(
            endpoint("/asm/suppressions/global/{email}")
                .get(global::get)
                .delete(global::delete),
        )
        .service(endpoint("/suppression/bounces/import").post(import::bounces))
        .service(
            endpoint("/suppression/bounces")
                .get(lists::list::<Bounces>)
                .post(bounces::create)
                .delete(lists::delete_many::<Bounces>),
        )
        // SendGrid's bounce classifications (SendGrid API reference,
        // "Retrieve bounce classification totals" and "… over time by domain
        // stats") sit beside `bounces/{email}`: named here so that they are
        // refused as a feature, not read as an address.
        .service(endpoint("/suppression/bounces/classifications").get(bounces::classifications))
        .service(
            endpoint("/suppression/bounces/classifications/{classification}")
                .get(bounces::classifications),
        )
        .service(
            endpoint("/suppression/bounces/{email}")
                .get(lists::get::<Bounces>)
                .delete(lists::delete::<Bounces>),
        )
        .service(endpoint("/suppression/spam_reports/import").post(import::spam_reports))
        .service(
            endpoint("/suppression/spam_reports")
                .get(lists::list::<SpamReports>)
                .post(lists::create_spam_report)
                .delete(lists::delete_many::<SpamReports>),
        )
        .service(
            endpoint("/suppression/spam_reports/{email}")
                .get(lists::get::<SpamReports>)
                .delete(lists::delete::<SpamReports>),
        )
        .service(
            endpoint("/suppression/blocks")
                .get(lists::list::<Blocks>)
                .delete(lists::delete_many::<Blocks>),
        )
        .service(
            endpoint("/suppression/blocks/{email}")
                .get(lists::get::<Blocks>)
                .delete(lists::delete::<Blocks>),
        )
        .service(
            endpoint("/suppression/invalid_emails")
                .get(lists::list::<InvalidEmails>)
                .post(lists::create_invalid_email)
                .delete(lists::delete_many::<InvalidEmails>),
        )
        .service(
            endpoint("/suppression/invalid_emails/{email}")
                .get(lists::get::<InvalidEmails>)
                .delete(lists::delete::<InvalidEmails>),
        )
        .service(endpoint("/suppression/unsubscribes").get(lists::list::<Unsubscribes>))
        .service(endpoint("/asm/suppressions").get(groups::all_suppressions))
        .service(endpoint("/asm/suppressions/{email}").get(groups::address_groups))
        .service(
            endpoint("/asm/groups")
                .get(groups::list)
                .post(groups::create),
        )
        .service(
            endpoint("/asm/groups/{group_id}")
                .get(groups::get)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .service(endpoint("/asm/groups/{group_id}/suppressions/search").post(groups::search))
        .service(
            endpoint("/asm/groups/{group_id}/suppressions")
                .get(groups::members)
                .post(groups::add_members),
        )
        .service(
            endpoint("/asm/groups/{group_id}/suppressions/{email}").delete(groups::remove_member),
        )
        .default_service(web::to(not_found))
}

/// A resource whose unmatched methods answer 405 in the v3 envelope, with
/// `Allow`.
fn endpoint(path: &str) -> Endpoint {
    Endpoint::new(path, method_not_allowed)
}

/// A refusal the gateway makes before routing, in the v3 envelope.
pub fn refuse(refusal: &hush_http::GatewayRefusal) -> HttpResponse {
    let err = match refusal {
        hush_http::GatewayRefusal::EncodedBody(_) => {
            V3Error::UnsupportedMediaType(refusal.message())
        }
        hush_http::GatewayRefusal::TooManyFailures { .. } => {
            V3Error::TooManyRequests(refusal.message())
        }
    };
    refusal.stamp(actix_web::ResponseError::error_response(&err))
}

/// The router's 404 in the v3 envelope.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&V3Error::route_not_found())
}

fn method_not_allowed(_: &HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&V3Error::MethodNotAllowed)
}
