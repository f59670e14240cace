//! The global lists that share one set of operations: bounces and spam
//! reports (docs/api/v3.md), and in the `sendgrid` shape also blocks, invalid
//! emails and the global unsubscribe list, as SendGrid's API reference has
//! them ("Retrieve all bounces" … "Retrieve all global suppressions").
//! Each list is a type naming its kinds and its records; the handlers are
//! written once.

use actix_web::{HttpRequest, HttpResponse, web};
use hush_engine::AddOutcome;
use hush_model::{
    BounceClass, Email, Kind, KindFamily, KindSet, ListFilter, NewSuppression, Origin, Scope,
    ScopeFilter, Suppression,
};
use serde::Serialize;

use crate::auth::{Read, V3Key, Write};
use crate::extract::{
    OptionalV3Json, QueryPairs, V3Json, body_email, path_email, path_email_to_read,
};
use crate::listing::{ListParams, link_header};
use crate::wire::{
    BounceList, BounceRecord, BulkDelete, NewInvalidEmail, NewSpamReport, SendgridBounce,
    SendgridInvalidEmail, SendgridSpamReport, SendgridUnsubscribe, SpamReportList,
    SpamReportRecord,
};
use crate::{Shape, V3Error, V3State};

/// Free-form text (a bounce reason, a complaint source) longer than this is
/// almost certainly a mistake (a whole message body); SMTP replies are at
/// most 512 octets per line (RFC 5321 §4.5.3.1.5), a few lines at most.
pub const TEXT_MAX: usize = 2048;
/// The most addresses one bulk `DELETE` with `emails` takes: a bound on one
/// request's work (a 1 MiB body holds about 40,000).
pub const BULK_DELETE_MAX: usize = 10_000;

/// The records of a list in the seed shape.
#[derive(Debug)]
pub enum SeedRecords {
    Bounces(Vec<BounceRecord>),
    SpamReports(Vec<SpamReportRecord>),
}

/// One global list.
pub trait GlobalList {
    /// As messages name it: "the bounce list".
    const NAME: &'static str;
    /// Whether the seed shape has the list (docs/api/v3.md); the others
    /// answer seed-shape keys as unknown paths do.
    const IN_SEED: bool;
    /// What SendGrid shows per entry.
    type Sendgrid: Serialize;
    /// Whether the list is of addresses over more than one kind family, so
    /// an address with entries of two families (an Unsubscribe and a
    /// Manual) must be listed and counted once (the seed's global list is
    /// of addresses: docs/api/v3.md, "Notes for both shapes").
    const BY_ADDRESS: bool = false;

    /// The kinds the list shows to a key of this shape.
    fn kinds(shape: Shape) -> KindSet;
    fn sendgrid(suppression: &Suppression) -> Option<Self::Sendgrid>;
    /// The seed shape's records; `None` for lists the seed does not have.
    fn seed(items: &[Suppression]) -> Option<SeedRecords>;
}

#[derive(Debug)]
pub struct Bounces;
#[derive(Debug)]
pub struct Blocks;
#[derive(Debug)]
pub struct SpamReports;
#[derive(Debug)]
pub struct InvalidEmails;
/// `GET /v3/suppression/unsubscribes`: the global unsubscribe list as
/// SendGrid lists it (SendGrid API reference, "Retrieve all global
/// suppressions").
#[derive(Debug)]
pub struct Unsubscribes;

impl GlobalList for Bounces {
    const NAME: &'static str = "the bounce list";
    const IN_SEED: bool = true;
    type Sendgrid = SendgridBounce;

    /// The seed lists every class with its `bounce_type`; SendGrid lists
    /// blocks apart (docs/api/v3.md, "The `sendgrid` shape").
    fn kinds(shape: Shape) -> KindSet {
        match shape {
            Shape::Seed => KindSet::family(KindFamily::Bounce),
            Shape::Sendgrid => KindSet::bounce_class(BounceClass::Hard)
                .with(KindSet::bounce_class(BounceClass::Soft)),
        }
    }
    fn sendgrid(suppression: &Suppression) -> Option<SendgridBounce> {
        SendgridBounce::from_suppression(suppression)
    }
    fn seed(items: &[Suppression]) -> Option<SeedRecords> {
        Some(SeedRecords::Bounces(
            items
                .iter()
                .filter_map(BounceRecord::from_suppression)
                .collect(),
        ))
    }
}

impl GlobalList for Blocks {
    const NAME: &'static str = "the block list";
    const IN_SEED: bool = false;
    type Sendgrid = SendgridBounce;

    fn kinds(_: Shape) -> KindSet {
        KindSet::bounce_class(BounceClass::Block)
    }
    fn sendgrid(suppression: &Suppression) -> Option<SendgridBounce> {
        SendgridBounce::from_suppression(suppression)
    }
    fn seed(_: &[Suppression]) -> Option<SeedRecords> {
        None
    }
}

impl GlobalList for SpamReports {
    const NAME: &'static str = "the spam report list";
    const IN_SEED: bool = true;
    type Sendgrid = SendgridSpamReport;

    fn kinds(_: Shape) -> KindSet {
        KindSet::family(KindFamily::Spam)
    }
    fn sendgrid(suppression: &Suppression) -> Option<SendgridSpamReport> {
        matches!(suppression.kind, Kind::SpamComplaint { .. }).then(|| SendgridSpamReport {
            created: suppression.created_at.unix_seconds(),
            email: suppression.email.as_str().to_owned(),
            ip: String::new(),
        })
    }
    fn seed(items: &[Suppression]) -> Option<SeedRecords> {
        Some(SeedRecords::SpamReports(
            items
                .iter()
                .filter_map(SpamReportRecord::from_suppression)
                .collect(),
        ))
    }
}

impl GlobalList for InvalidEmails {
    const NAME: &'static str = "the invalid email list";
    const IN_SEED: bool = false;
    type Sendgrid = SendgridInvalidEmail;

    fn kinds(_: Shape) -> KindSet {
        KindSet::family(KindFamily::Invalid)
    }
    fn sendgrid(suppression: &Suppression) -> Option<SendgridInvalidEmail> {
        let Kind::Invalid { reason } = &suppression.kind else {
            return None;
        };
        Some(SendgridInvalidEmail {
            created: suppression.created_at.unix_seconds(),
            email: suppression.email.as_str().to_owned(),
            reason: reason.clone().unwrap_or_default(),
        })
    }
    fn seed(_: &[Suppression]) -> Option<SeedRecords> {
        None
    }
}

impl GlobalList for Unsubscribes {
    const NAME: &'static str = "the global unsubscribe list";
    const IN_SEED: bool = false;
    type Sendgrid = SendgridUnsubscribe;
    const BY_ADDRESS: bool = true;

    /// Unsubscribes and manual entries alike (docs/mapping.md).
    fn kinds(_: Shape) -> KindSet {
        global_unsubscribe_kinds()
    }
    fn sendgrid(suppression: &Suppression) -> Option<SendgridUnsubscribe> {
        Some(SendgridUnsubscribe {
            created: suppression.created_at.unix_seconds(),
            email: suppression.email.as_str().to_owned(),
        })
    }
    fn seed(_: &[Suppression]) -> Option<SeedRecords> {
        None
    }
}

/// What `/v3/asm/suppressions/global` and group lists show.
pub fn global_unsubscribe_kinds() -> KindSet {
    KindSet::family(KindFamily::Unsubscribe).with(KindSet::family(KindFamily::Manual))
}

fn require_list<L: GlobalList, P>(key: &V3Key<P>) -> Result<(), V3Error> {
    if !L::IN_SEED {
        key.require_sendgrid_shape()?;
    }
    Ok(())
}

/// Seed: `{"<list>":[…],"total":N}`. SendGrid: a bare array and a `Link`
/// header (SendGrid docs, "Responses"; sendgrid/docs#6413).
pub async fn list<L: GlobalList>(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    require_list::<L, _>(&key)?;
    let params = ListParams::parse(&QueryPairs::from_request(&req))?;
    let mut filter = params.filter(L::kinds(key.shape), key.shape)?;
    filter.per_address = L::BY_ADDRESS;
    let page = state
        .engine
        .list(&key.tenant, &filter, params.page())
        .await?;
    match (key.shape, L::seed(&page.items)) {
        (Shape::Seed, Some(SeedRecords::Bounces(bounces))) => {
            Ok(HttpResponse::Ok().json(BounceList {
                bounces,
                total: page.total,
            }))
        }
        (Shape::Seed, Some(SeedRecords::SpamReports(spam_reports))) => {
            Ok(HttpResponse::Ok().json(SpamReportList {
                spam_reports,
                total: page.total,
            }))
        }
        (Shape::Seed, None) => Err(V3Error::route_not_found()),
        (Shape::Sendgrid, _) => {
            let items: Vec<L::Sendgrid> = page.items.iter().filter_map(L::sendgrid).collect();
            Ok(HttpResponse::Ok()
                .insert_header(("Link", link_header(&req, params.page(), page.total)))
                .json(items))
        }
    }
}

/// An array either way. Absent: 404 in the seed shape; `200 []` in
/// SendGrid's (sendgrid/sendgrid-php#354).
pub async fn get<L: GlobalList>(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    require_list::<L, _>(&key)?;
    let Some(email) = path_email_to_read(&req, key.shape)? else {
        return Ok(HttpResponse::Ok().json(Vec::<L::Sendgrid>::new()));
    };
    let kinds = L::kinds(key.shape);
    let entries: Vec<Suppression> = state
        .engine
        .entries(&key.tenant, &email)
        .await?
        .into_iter()
        .filter(|s| s.scope == Scope::Global && kinds.contains(&s.kind))
        .collect();
    match key.shape {
        Shape::Sendgrid => {
            let items: Vec<L::Sendgrid> = entries.iter().filter_map(L::sendgrid).collect();
            Ok(HttpResponse::Ok().json(items))
        }
        Shape::Seed if entries.is_empty() => Err(not_listed::<L>(&email)),
        Shape::Seed => match L::seed(&entries) {
            Some(SeedRecords::Bounces(records)) => Ok(HttpResponse::Ok().json(records)),
            Some(SeedRecords::SpamReports(records)) => Ok(HttpResponse::Ok().json(records)),
            None => Err(V3Error::route_not_found()),
        },
    }
}

fn not_listed<L: GlobalList>(email: &Email) -> V3Error {
    V3Error::NotFound(format!("{email} is not in {}", L::NAME))
}

/// 204; 404 when the address is not in the list, in both shapes
/// (as SendGrid answers for bounces, blocks and spam reports:
/// sendgrid/docs#6194).
pub async fn delete<L: GlobalList>(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    require_list::<L, _>(&key)?;
    let email = path_email(&req)?;
    let removed = state
        .engine
        .remove(
            &key.tenant,
            &email,
            Scope::Global,
            L::kinds(key.shape),
            &key.actor,
        )
        .await?;
    if removed == 0 {
        return Err(not_listed::<L>(&email));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `?delete_all=true` (docs/api/v3.md), or SendGrid's JSON body
/// `{"delete_all": true}` or `{"emails":[…]}` (SendGrid API reference,
/// "Delete bounces"). Anything else is a 400: a bulk delete never happens by
/// accident. Addresses of the `emails` form that are not listed are ignored.
pub async fn delete_many<L: GlobalList>(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
    OptionalV3Json(body): OptionalV3Json<BulkDelete>,
) -> Result<HttpResponse, V3Error> {
    require_list::<L, _>(&key)?;
    let query = QueryPairs::from_request(&req);
    let body = body.unwrap_or_default();
    let kinds = L::kinds(key.shape);
    let delete_all = match query.get("delete_all") {
        Some(raw) if raw.eq_ignore_ascii_case("true") || raw == "1" => true,
        Some(raw) => {
            return Err(V3Error::bad_request(
                "delete_all",
                format!("delete_all must be true to empty {}; got {raw:?}", L::NAME),
            ));
        }
        None => body.delete_all == Some(true),
    };
    match (delete_all, body.emails) {
        (true, Some(_)) => Err(V3Error::bad_request(
            "delete_all",
            "give either delete_all or emails, not both",
        )),
        (true, None) => {
            let filter = ListFilter::new(kinds, ScopeFilter::Global);
            state
                .engine
                .remove_all(&key.tenant, &filter, &key.actor)
                .await?;
            Ok(HttpResponse::NoContent().finish())
        }
        (false, Some(emails)) if emails.len() > BULK_DELETE_MAX => Err(V3Error::bad_request(
            "emails",
            format!(
                "emails lists {} addresses; one request deletes at most {BULK_DELETE_MAX}: send the rest in further requests",
                emails.len()
            ),
        )),
        (false, Some(emails)) if !emails.is_empty() => {
            let emails = emails
                .iter()
                .map(|raw| body_email("emails", raw))
                .collect::<Result<Vec<_>, _>>()?;
            state
                .engine
                .remove_addresses(&key.tenant, &emails, Scope::Global, kinds, &key.actor)
                .await?;
            Ok(HttpResponse::NoContent().finish())
        }
        (false, _) => Err(V3Error::bad_request(
            "delete_all",
            format!(
                "delete_all=true is required to empty {} (or give a list of emails)",
                L::NAME
            ),
        )),
    }
}

/// Checks optional free text: empty is none; too long, or holding a NUL
/// character (`hush_model::has_nul`), is a 400.
pub fn optional_text(field: &str, raw: Option<String>) -> Result<Option<String>, V3Error> {
    let text = raw.filter(|r| !r.is_empty());
    if let Some(text) = &text {
        text_problem(field, text)
            .map_or(Ok(()), |message| Err(V3Error::bad_request(field, message)))?;
    }
    Ok(text)
}

/// What is wrong with a free text field, if anything: the rule of the JSON
/// bodies and of the CSV imports.
pub fn text_problem(field: &str, text: &str) -> Option<String> {
    if text.chars().count() > TEXT_MAX {
        return Some(format!("{field} is longer than {TEXT_MAX} characters"));
    }
    if hush_model::has_nul(text) {
        return Some(format!(
            "{field} contains a NUL character, which no text may"
        ));
    }
    None
}

/// Adds one global entry made by the caller and returns it as stored:
/// adding twice returns the entry as first stored (docs/mapping.md,
/// "Re-adding").
pub async fn add_one(
    state: &V3State,
    tenant: &hush_model::TenantId,
    email: Email,
    kind: Kind,
    actor: &hush_model::Actor,
) -> Result<Suppression, V3Error> {
    let item = NewSuppression {
        email,
        scope: Scope::Global,
        kind,
        origin: Origin::Customer,
        created_at: hush_engine::Engine::now(),
    };
    match state.engine.add(tenant, vec![item], actor).await?.pop() {
        Some(AddOutcome::Added { suppression, .. }) => Ok(suppression),
        Some(AddOutcome::Refused { message }) => Err(V3Error::bad_request("email", message)),
        _ => Err(V3Error::Internal),
    }
}

/// `POST /v3/suppression/spam_reports` `{email, source}` (docs/api/v3.md): 201
/// with the record. In the `sendgrid` shape it is a hush extension
/// (SendGrid's API reference has no create) answering SendGrid's record.
pub async fn create_spam_report(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    V3Json(body): V3Json<NewSpamReport>,
) -> Result<HttpResponse, V3Error> {
    let email = body_email("email", &body.email)?;
    let source = optional_text("source", body.source)?;
    let stored = add_one(
        &state,
        &key.tenant,
        email,
        Kind::SpamComplaint { source },
        &key.actor,
    )
    .await?;
    match key.shape {
        Shape::Seed => Ok(HttpResponse::Created()
            .json(SpamReportRecord::from_suppression(&stored).ok_or(V3Error::Internal)?)),
        Shape::Sendgrid => {
            Ok(HttpResponse::Created()
                .json(SpamReports::sendgrid(&stored).ok_or(V3Error::Internal)?))
        }
    }
}

/// `POST /v3/suppression/invalid_emails` `{email, reason}`: a hush
/// extension of the `sendgrid` shape, which has no public create
/// (none in SendGrid's API reference).
pub async fn create_invalid_email(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    V3Json(body): V3Json<NewInvalidEmail>,
) -> Result<HttpResponse, V3Error> {
    key.require_sendgrid_shape()?;
    let email = body_email("email", &body.email)?;
    let reason = optional_text("reason", body.reason)?;
    let stored = add_one(
        &state,
        &key.tenant,
        email,
        Kind::Invalid { reason },
        &key.actor,
    )
    .await?;
    Ok(HttpResponse::Created().json(InvalidEmails::sendgrid(&stored).ok_or(V3Error::Internal)?))
}
