//! `/v3/suppression/bounces` (seed 001, "Bounces").

use actix_web::{HttpRequest, HttpResponse, web};
use hush_engine::AddOutcome;
use hush_model::{Kind, KindFamily, KindSet, NewSuppression, Origin, Scope};

use crate::auth::{Read, V3Key, Write};
use crate::extract::{OptionalV3Json, QueryPairs, V3Json, body_email, path_email};
use crate::listing::ListParams;
use crate::wire::{BounceList, BounceRecord, BulkDelete, NewBounce, bounce_class, enhanced_status};
use crate::{V3Error, V3State};

/// A free-form reason longer than this is almost certainly a mistake (a
/// whole message body); SMTP replies are at most 512 octets per line
/// (RFC 5321 §4.5.3.1.5), a few lines at most.
const REASON_MAX: usize = 2048;

fn bounces() -> KindSet {
    KindSet::family(KindFamily::Bounce)
}

pub async fn list(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let params = ListParams::parse(&QueryPairs::from_request(&req))?;
    let page = state
        .engine
        .list(&key.tenant, &params.filter(bounces()), params.page())
        .await?;
    Ok(HttpResponse::Ok().json(BounceList {
        bounces: page
            .items
            .iter()
            .filter_map(BounceRecord::from_suppression)
            .collect(),
        total: page.total,
    }))
}

/// An array, since an address may have bounced more than once (seed 001);
/// 404 when it is not in the list.
pub async fn get(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let email = path_email(&req)?;
    let records: Vec<BounceRecord> = state
        .engine
        .entries(&key.tenant, &email)
        .await?
        .iter()
        .filter(|s| s.scope == Scope::Global)
        .filter_map(BounceRecord::from_suppression)
        .collect();
    if records.is_empty() {
        return Err(V3Error::NotFound(format!(
            "{email} is not in the bounce list"
        )));
    }
    Ok(HttpResponse::Ok().json(records))
}

/// 201 with the stored record. Adding an address that is already listed
/// returns the entry as it was stored first (DESIGN.md: idempotent adds).
pub async fn create(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    V3Json(body): V3Json<NewBounce>,
) -> Result<HttpResponse, V3Error> {
    let email = body_email("email", &body.email)?;
    let class = bounce_class(body.bounce_type.as_deref()).ok_or_else(|| {
        V3Error::bad_request(
            "bounce_type",
            "bounce_type must be one of hard, soft, block",
        )
    })?;
    let reason = body.reason.filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > REASON_MAX)
    {
        return Err(V3Error::bad_request(
            "reason",
            format!("reason is longer than {REASON_MAX} characters"),
        ));
    }
    let status = body
        .status
        .filter(|s| !s.is_empty())
        .or_else(|| reason.as_deref().and_then(enhanced_status));
    let item = NewSuppression {
        email,
        scope: Scope::Global,
        kind: Kind::Bounce {
            class,
            status,
            reason,
        },
        origin: Origin::Customer,
        created_at: hush_engine::Engine::now(),
    };
    let outcome = state.engine.add(&key.tenant, vec![item]).await?;
    match outcome.into_iter().next() {
        Some(AddOutcome::Added { suppression, .. }) => {
            let record = BounceRecord::from_suppression(&suppression).ok_or(V3Error::Internal)?;
            Ok(HttpResponse::Created().json(record))
        }
        _ => Err(V3Error::Internal),
    }
}

/// 204; 404 when the address is not in the list (specs/sendgrid-v3.md §2.1
/// B4).
pub async fn delete(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let email = path_email(&req)?;
    let removed = state
        .engine
        .remove(&key.tenant, &email, Scope::Global, bounces())
        .await?;
    if removed == 0 {
        return Err(V3Error::NotFound(format!(
            "{email} is not in the bounce list"
        )));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `?delete_all=true` (seed 001), or SendGrid's JSON body `{"delete_all":
/// true}` or `{"emails":[…]}` (specs/sendgrid-v3.md §2.1 B3). Anything else
/// is a 400: a bulk delete never happens by accident.
pub async fn delete_many(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
    OptionalV3Json(body): OptionalV3Json<BulkDelete>,
) -> Result<HttpResponse, V3Error> {
    let query = QueryPairs::from_request(&req);
    let body = body.unwrap_or_default();
    let delete_all = match query.get("delete_all") {
        Some(raw) if raw.eq_ignore_ascii_case("true") || raw == "1" => true,
        Some(raw) => {
            return Err(V3Error::bad_request(
                "delete_all",
                format!("delete_all must be true to delete every bounce; got {raw:?}"),
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
            let filter = hush_model::ListFilter::new(bounces(), hush_model::ScopeFilter::Global);
            state.engine.remove_all(&key.tenant, &filter).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        (false, Some(emails)) if !emails.is_empty() => {
            let emails = emails
                .iter()
                .map(|raw| body_email("emails", raw))
                .collect::<Result<Vec<_>, _>>()?;
            for email in &emails {
                state
                    .engine
                    .remove(&key.tenant, email, Scope::Global, bounces())
                    .await?;
            }
            Ok(HttpResponse::NoContent().finish())
        }
        (false, _) => Err(V3Error::bad_request(
            "delete_all",
            "delete_all=true is required to delete every bounce (or give a list of emails)",
        )),
    }
}
