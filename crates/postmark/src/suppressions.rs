//! `/message-streams/{stream}/suppressions…` (Postmark API docs,
//! "Suppressions API"): the dump, create and delete, with a status per item.

use std::collections::HashMap;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::{Stream, StreamExt as _, stream};
use hush_engine::{AddOutcome, Authority, Engine, EngineError, GuardedAdd, GuardedRemoval};
use hush_model::{
    Email, EmailMatch, Kind, KindFamily, KindSet, ListFilter, NewSuppression, Origin, Scope,
    ScopeFilter, Suppression,
};

use crate::auth::PostmarkServer;
use crate::extract::{QueryPairs, RawBody};
use crate::streams::stream_group;
use crate::wire::{
    ChangeStatus, SuppressionAddress, SuppressionChanges, SuppressionEntry, SuppressionReason,
    SuppressionStatus, SuppressionStatuses, parse_origin,
};
use crate::{PostmarkError, PostmarkState};

/// Create and delete take at most 50 addresses (Postmark API docs,
/// "Suppressions API").
pub const MAX_CHANGES: usize = 50;
/// Rows fetched from the store per step of a dump, and written per chunk.
const DUMP_BATCH: u32 = 1_000;

const NO_AUTHORITY: &str = "You do not have the required authority to change this suppression.";
const INVALID_ADDRESS: &str = "An invalid email address was provided.";

/// The kinds a `SuppressionReason` filter selects (docs/mapping.md).
fn kinds_of(reason: SuppressionReason) -> KindSet {
    match reason {
        SuppressionReason::HardBounce => {
            KindSet::family(KindFamily::Bounce).with(KindSet::family(KindFamily::Invalid))
        }
        SuppressionReason::SpamComplaint => KindSet::family(KindFamily::Spam),
        SuppressionReason::ManualSuppression => {
            KindSet::family(KindFamily::Unsubscribe).with(KindSet::family(KindFamily::Manual))
        }
    }
}

/// The dump's filters (Postmark API docs, "Suppressions API", "Suppression
/// dump"). `count` and `offset`, which postmark.js always sends, are not
/// read.
fn dump_filter(query: &QueryPairs, stream: ScopeFilter) -> Result<ListFilter, PostmarkError> {
    let kinds = match query.get("SuppressionReason") {
        None => KindSet::ALL,
        Some(raw) => kinds_of(SuppressionReason::parse(raw).ok_or(PostmarkError::InvalidReason)?),
    };
    let mut filter = ListFilter::new(kinds, stream);
    filter.origin = query
        .get("Origin")
        .map(|raw| parse_origin(raw).ok_or(PostmarkError::InvalidOrigin))
        .transpose()?;
    filter.created_from = query.date_bound("fromdate", false)?;
    filter.created_to = query.date_bound("todate", true)?;
    // A whole address matches exactly (ignoring case, as addresses are
    // stored lowercase); anything else is a fragment matched anywhere, which
    // is how integrators describe Postmark's filter (its docs say only
    // "Filter by email address"; docs/mapping.md).
    // Fragments are literal (no wildcards) and bounded like every filter.
    filter.email = query
        .get("EmailAddress")
        .map(|raw| match Email::parse(raw) {
            Ok(email) => Ok(EmailMatch::Exact(email)),
            Err(_) => EmailMatch::contains(raw.trim()),
        })
        .transpose()
        .map_err(|err| PostmarkError::invalid_parameter("EmailAddress", err.to_string()))?;
    Ok(filter)
}

/// `GET /message-streams/{stream}/suppressions/dump`: the tenant's global
/// entries plus the stream's own (docs/mapping.md). The body is written as
/// the rows arrive from a keyset scan, so a dump of any size takes bounded
/// memory.
pub async fn dump(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    req: HttpRequest,
    stream_id: web::Path<String>,
) -> Result<HttpResponse, PostmarkError> {
    let query = QueryPairs::from_request(&req);
    let group = stream_group(&state.engine, &server.tenant, &stream_id).await?;
    let filter = dump_filter(&query, ScopeFilter::GlobalAndGroup(group.id))?;
    let mut rows = Box::pin(state.engine.scan(server.tenant, filter, DUMP_BATCH).fuse());
    // The first row decides the status: a store or upstream that fails
    // before anything is sent gets its own error (a 502 from a failing
    // upstream), not a 200 cut short.
    let first = rows.next().await;
    if let Some(Err(err)) = first {
        return Err(err.into());
    }
    let rows = stream::iter(first).chain(rows);
    Ok(HttpResponse::Ok()
        .insert_header(ContentType::json())
        .streaming(dump_body(rows)))
}

/// `{"Suppressions":[…]}`, one chunk per batch of rows. An error midway can
/// no longer change the status, so it ends the response early and the
/// client sees a truncated body rather than a complete-looking short list.
fn dump_body(
    rows: impl Stream<Item = Result<Suppression, EngineError>> + 'static,
) -> impl Stream<Item = Result<web::Bytes, EngineError>> + 'static {
    let head = stream::once(async { Ok(web::Bytes::from_static(b"{\"Suppressions\":[")) });
    let tail = stream::once(async { Ok(web::Bytes::from_static(b"]}")) });
    let body = rows
        .ready_chunks(DUMP_BATCH as usize)
        .enumerate()
        .map(|(index, batch)| {
            let mut chunk = Vec::with_capacity(batch.len() * 128);
            for (position, row) in batch.into_iter().enumerate() {
                let row = row.inspect_err(|err| tracing::error!(request_id = %hush_engine::request::current(), error = %err, "dump failed"))?;
                if index > 0 || position > 0 {
                    chunk.push(b',');
                }
                serde_json::to_writer(&mut chunk, &SuppressionEntry::from_suppression(&row))
                    .map_err(|err| EngineError::internal("postmark", err))?;
            }
            Ok(web::Bytes::from(chunk))
        });
    head.chain(body).chain(tail)
}

/// The addresses of a create or delete, checked as Postmark does: a JSON
/// object with a `Suppressions` array (else 1409) of at most 50 (else 1410).
/// Items are not checked here: a malformed one is its own `Failed`
/// (docs/mapping.md, "Postmark malformed items"; `SuppressionAddress`).
fn parse_changes(body: &RawBody) -> Result<Vec<SuppressionAddress>, PostmarkError> {
    let changes: SuppressionChanges =
        serde_json::from_slice(&body.0).map_err(|_| PostmarkError::BadSuppressionsBody)?;
    if changes.suppressions.len() > MAX_CHANGES {
        return Err(PostmarkError::TooManySuppressions);
    }
    Ok(changes.suppressions)
}

/// One address's result before it is echoed back.
#[derive(Debug, Clone)]
enum Verdict {
    Done(ChangeStatus),
    NoAuthority,
    /// An upstream provider's own `Failed`, with its message.
    Failed(String),
}

/// Answers every item in request order, duplicates included, echoing each
/// address as it was sent (as in the examples of Postmark's "Suppressions
/// API"). `change` gets each distinct valid address once, in order, and
/// returns one verdict per address, so a whole request is one store write.
async fn each_address(
    items: Vec<SuppressionAddress>,
    change: impl AsyncFnOnce(Vec<Email>) -> Result<Vec<Verdict>, PostmarkError>,
) -> Result<SuppressionStatuses, PostmarkError> {
    let parsed: Vec<Option<Email>> = items
        .iter()
        .map(|item| Email::parse(&item.email_address).ok())
        .collect();
    let mut distinct: Vec<Email> = Vec::new();
    for email in parsed.iter().flatten() {
        if !distinct.contains(email) {
            distinct.push(email.clone());
        }
    }
    let verdicts = change(distinct.clone()).await?;
    if verdicts.len() != distinct.len() {
        tracing::error!(
            "a change returned {} verdicts for {} addresses",
            verdicts.len(),
            distinct.len()
        );
        return Err(PostmarkError::Internal);
    }
    let verdict_of: HashMap<Email, Verdict> = distinct.into_iter().zip(verdicts).collect();
    let statuses = items
        .into_iter()
        .zip(parsed)
        .map(|(item, email)| {
            let verdict = email.and_then(|e| verdict_of.get(&e).cloned());
            let (status, message) = match verdict {
                Some(Verdict::Done(status)) => (status, None),
                Some(Verdict::NoAuthority) => (ChangeStatus::Failed, Some(NO_AUTHORITY.to_owned())),
                Some(Verdict::Failed(message)) => (ChangeStatus::Failed, Some(message)),
                None => (ChangeStatus::Failed, Some(INVALID_ADDRESS.to_owned())),
            };
            SuppressionStatus {
                email_address: item.email_address,
                status,
                message,
            }
        })
        .collect();
    Ok(SuppressionStatuses {
        suppressions: statuses,
    })
}

/// `POST /message-streams/{stream}/suppressions`: a manual, customer-made
/// suppression in the stream's group (docs/mapping.md), refused
/// over an entry the customer may not change, such as a spam complaint.
pub async fn create(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    stream_id: web::Path<String>,
    body: RawBody,
) -> Result<HttpResponse, PostmarkError> {
    let items = parse_changes(&body)?;
    let group = stream_group(&state.engine, &server.tenant, &stream_id).await?;
    let statuses = each_address(items, async |emails| {
        let now = Engine::now();
        let items = emails
            .into_iter()
            .map(|email| NewSuppression {
                email,
                scope: Scope::Group(group.id),
                kind: Kind::Manual,
                origin: Origin::Customer,
                created_at: now,
            })
            .collect();
        let visible = ScopeFilter::GlobalAndGroup(group.id);
        state
            .engine
            .add_with_authority(
                &server.tenant,
                items,
                visible,
                Authority::Customer,
                &server.actor,
            )
            .await?
            .into_iter()
            .map(|outcome| match outcome {
                GuardedAdd::Added(AddOutcome::Added { .. }) => {
                    Ok(Verdict::Done(ChangeStatus::Suppressed))
                }
                // The stream was deleted meanwhile.
                GuardedAdd::Added(AddOutcome::UnknownGroup(_)) => {
                    Err(PostmarkError::StreamNotFound)
                }
                GuardedAdd::Refused { .. } => Ok(Verdict::NoAuthority),
                GuardedAdd::Added(AddOutcome::Refused { message }) => Ok(Verdict::Failed(message)),
            })
            .collect()
    })
    .await?;
    Ok(HttpResponse::Ok().json(statuses))
}

/// `POST /message-streams/{stream}/suppressions/delete`: removes what the
/// stream's dump shows for each address, under the customer's authority
/// (docs/mapping.md, "Deletes"). Removing a bounce is reactivating it, for
/// every API. An address with nothing to delete is `Deleted` too (as in the
/// example of "Delete a Suppression" in Postmark's "Suppressions API").
pub async fn delete(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    stream_id: web::Path<String>,
    body: RawBody,
) -> Result<HttpResponse, PostmarkError> {
    let items = parse_changes(&body)?;
    let group = stream_group(&state.engine, &server.tenant, &stream_id).await?;
    let statuses = each_address(items, async |emails| {
        let visible = ScopeFilter::GlobalAndGroup(group.id);
        Ok(state
            .engine
            .remove_with_authority(
                &server.tenant,
                &emails,
                visible,
                Authority::Customer,
                &server.actor,
            )
            .await?
            .into_iter()
            .map(|outcome| match outcome {
                GuardedRemoval::Removed { .. } => Verdict::Done(ChangeStatus::Deleted),
                GuardedRemoval::Refused { .. } => Verdict::NoAuthority,
            })
            .collect())
    })
    .await?;
    Ok(HttpResponse::Ok().json(statuses))
}
