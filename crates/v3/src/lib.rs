//! The v3 (SendGrid-style) suppression API of seed 001, served over the
//! shared engine: wire types, routes, the key extractor and the error
//! envelope. A key may opt into the `sendgrid` shape, SendGrid's own
//! responses (specs/sendgrid-v3.md §0, §2), on the same routes.

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

use actix_web::{HttpResponse, Resource, Scope, web};
use hush_engine::Engine;
use hush_engine::access::KeyTable;
use hush_model::TenantId;
use serde::{Deserialize, Serialize};

pub use error::{ErrorEnvelope, ErrorItem, V3Error};

/// Which responses a key gets. `seed` is seed 001's documented shape and
/// the default; `sendgrid` is SendGrid's own (bare arrays with a `Link`
/// header, `200 []` and `200 {}` for absent addresses, blocks, invalid
/// emails, …), for clients written against SendGrid itself.
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
    /// subusers of its own tenant (specs/sendgrid-v3.md §1.3).
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
        .service(resource("/asm/suppressions/global/import").route(web::post().to(import::global)))
        .service(
            resource("/asm/suppressions/global")
                .route(web::get().to(global::list))
                .route(web::post().to(global::add)),
        )
        .service(
            resource("/asm/suppressions/global/{email}")
                .route(web::get().to(global::get))
                .route(web::delete().to(global::delete)),
        )
        .service(resource("/suppression/bounces/import").route(web::post().to(import::bounces)))
        .service(
            resource("/suppression/bounces")
                .route(web::get().to(lists::list::<Bounces>))
                .route(web::post().to(bounces::create))
                .route(web::delete().to(lists::delete_many::<Bounces>)),
        )
        .service(
            resource("/suppression/bounces/{email}")
                .route(web::get().to(lists::get::<Bounces>))
                .route(web::delete().to(lists::delete::<Bounces>)),
        )
        .service(
            resource("/suppression/spam_reports/import")
                .route(web::post().to(import::spam_reports)),
        )
        .service(
            resource("/suppression/spam_reports")
                .route(web::get().to(lists::list::<SpamReports>))
                .route(web::post().to(lists::create_spam_report))
                .route(web::delete().to(lists::delete_many::<SpamReports>)),
        )
        .service(
            resource("/suppression/spam_reports/{email}")
                .route(web::get().to(lists::get::<SpamReports>))
                .route(web::delete().to(lists::delete::<SpamReports>)),
        )
        .service(
            resource("/suppression/blocks")
                .route(web::get().to(lists::list::<Blocks>))
                .route(web::delete().to(lists::delete_many::<Blocks>)),
        )
        .service(
            resource("/suppression/blocks/{email}")
                .route(web::get().to(lists::get::<Blocks>))
                .route(web::delete().to(lists::delete::<Blocks>)),
        )
        .service(
            resource("/suppression/invalid_emails")
                .route(web::get().to(lists::list::<InvalidEmails>))
                .route(web::post().to(lists::create_invalid_email))
                .route(web::delete().to(lists::delete_many::<InvalidEmails>)),
        )
        .service(
            resource("/suppression/invalid_emails/{email}")
                .route(web::get().to(lists::get::<InvalidEmails>))
                .route(web::delete().to(lists::delete::<InvalidEmails>)),
        )
        .service(
            resource("/suppression/unsubscribes").route(web::get().to(lists::list::<Unsubscribes>)),
        )
        .service(resource("/asm/suppressions").route(web::get().to(groups::all_suppressions)))
        .service(resource("/asm/suppressions/{email}").route(web::get().to(groups::address_groups)))
        .service(
            resource("/asm/groups")
                .route(web::get().to(groups::list))
                .route(web::post().to(groups::create)),
        )
        .service(
            resource("/asm/groups/{group_id}")
                .route(web::get().to(groups::get))
                .route(web::patch().to(groups::update))
                .route(web::delete().to(groups::delete)),
        )
        .service(
            resource("/asm/groups/{group_id}/suppressions/search")
                .route(web::post().to(groups::search)),
        )
        .service(
            resource("/asm/groups/{group_id}/suppressions")
                .route(web::get().to(groups::members))
                .route(web::post().to(groups::add_members)),
        )
        .service(
            resource("/asm/groups/{group_id}/suppressions/{email}")
                .route(web::delete().to(groups::remove_member)),
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
