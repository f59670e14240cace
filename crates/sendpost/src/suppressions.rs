//! `/api/v1/subaccount/suppression` and its `/count` (docs/api/sendpost.md;
//! SendPost's API reference, cited as in lib.rs).

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, web};
use hush_engine::{AddOutcome, Engine};
use hush_model::{
    EmailMatch, Kind, KindFamily, KindSet, ListFilter, NewSuppression, Origin, PageRequest, Scope,
    ScopeFilter, SuppressionId,
};

use crate::auth::SendPostSubaccount;
use crate::contract::Contract;
use crate::extract::{Day, QueryParams, SendPostJson, item_email};
use crate::wire::{
    CountStat, CreateSuppressionRequest, DELETED_MESSAGE, DeleteResponse, DeleteSuppressionRequest,
    LegacyDeleted, Reason, Suppression,
};
use crate::{SendPostError, SendPostState};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// The widest `from`–`to` range a listing takes (SendPost API reference,
/// get-all-suppressions).
pub const MAX_RANGE_DAYS: i64 = 60;

/// The canonical kind a create list makes (docs/mapping.md, "What each API
/// creates").
fn kind_for(reason: Reason) -> Kind {
    match reason {
        Reason::HardBounce => Kind::hard_bounce(),
        Reason::Manual => Kind::Manual,
        Reason::Unsubscribe => Kind::Unsubscribe,
        Reason::SpamComplaint => Kind::SpamComplaint { source: None },
    }
}

/// The kinds a `type` filter selects: those that read back as that reason.
fn kinds_for(reason: Reason) -> KindSet {
    match reason {
        Reason::HardBounce => {
            KindSet::family(KindFamily::Bounce).with(KindSet::family(KindFamily::Invalid))
        }
        Reason::Manual => KindSet::family(KindFamily::Manual),
        Reason::Unsubscribe => KindSet::family(KindFamily::Unsubscribe),
        Reason::SpamComplaint => KindSet::family(KindFamily::Spam),
    }
}

/// 200 with one `Suppression` per address given, as stored: adding an
/// address that is already listed for that reason returns the entry as
/// first stored, same `id` and `created`. Every item is checked before
/// anything is stored.
pub async fn create(
    subaccount: SendPostSubaccount,
    state: web::Data<SendPostState>,
    SendPostJson(body): SendPostJson<CreateSuppressionRequest>,
) -> Result<HttpResponse, SendPostError> {
    let now = Engine::now();
    let mut items = Vec::new();
    for reason in Reason::ALL {
        for (index, item) in body.list(reason).iter().enumerate() {
            let param = format!("{}[{index}].email", reason.text());
            items.push(NewSuppression {
                email: item_email(&param, item.email.as_deref())?,
                scope: Scope::Global,
                kind: kind_for(reason),
                origin: Origin::Customer,
                created_at: now,
            });
        }
    }
    if items.is_empty() {
        return Err(SendPostError::invalid_body(
            "body",
            "give at least one {\"email\": …} in hardBounce, manual, unsubscribe or spamComplaint",
        ));
    }
    let outcomes = state
        .engine
        .add(&subaccount.tenant, items, &subaccount.actor)
        .await?;
    let mut seen = HashSet::new();
    let mut created = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            // An address given twice in one request is one entry, shown once.
            AddOutcome::Added { suppression, .. } => {
                if seen.insert(suppression.id) {
                    created.push(shown(&state.engine, &subaccount.tenant, &suppression));
                }
            }
            AddOutcome::Refused { message } => {
                return Err(SendPostError::invalid_body("email", message));
            }
            AddOutcome::UnknownGroup(group) => {
                tracing::error!(%group, "a global add reported an unknown group");
                return Err(SendPostError::Internal);
            }
        }
    }
    Ok(HttpResponse::Ok().json(created))
}

/// The query of a listing (SendPost API reference, get-all-suppressions;
/// docs/api/sendpost.md): `from` and `to` required, inclusive UTC days at
/// most 60 apart; `limit` 1–100 (default 20); `offset` ≥ 0; `search` a
/// case-insensitive substring; `type` one reason.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub filter: ListFilter,
    pub page: PageRequest,
}

impl ListParams {
    pub fn parse(query: &QueryParams) -> Result<Self, SendPostError> {
        let from = query.day("from")?.ok_or_else(|| required("from"))?;
        let to = query.day("to")?.ok_or_else(|| required("to"))?;
        if to < from {
            return Err(SendPostError::invalid_param(
                "to",
                "to must not be before from",
            ));
        }
        // On the calendar days themselves, so no date is too far off to
        // count (SendPost's listing: at most 60 days apart).
        let days = to.days_after(from);
        if days > MAX_RANGE_DAYS {
            return Err(SendPostError::invalid_param(
                "to",
                format!("from and to may be at most {MAX_RANGE_DAYS} days apart; these are {days}"),
            ));
        }
        let limit = query
            .integer("limit", 1, MAX_LIMIT)?
            .unwrap_or(DEFAULT_LIMIT);
        let offset = query.integer("offset", 0, i64::MAX)?.unwrap_or(0);
        let kinds = match query.get("type") {
            None => KindSet::ALL,
            Some(raw) => kinds_for(Reason::parse(raw).ok_or_else(|| {
                SendPostError::invalid_param(
                    "type",
                    format!(
                        "type must be one of hardBounce, manual, spamComplaint, unsubscribe; got {raw:?}"
                    ),
                )
            })?),
        };
        let mut filter = global(kinds);
        // A literal substring as sent, not trimmed (docs/mapping.md,
        // "SendPost `search`"), bounded like every filter.
        filter.email = query
            .get("search")
            .map(EmailMatch::contains)
            .transpose()
            .map_err(|err| SendPostError::invalid_param("search", err.to_string()))?;
        filter.created_from = Some(from.start());
        filter.created_to = Some(to.end());
        Ok(Self {
            filter,
            page: PageRequest {
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
                offset: u64::try_from(offset).unwrap_or(0),
            },
        })
    }
}

fn required(param: &str) -> SendPostError {
    SendPostError::invalid_param(
        param,
        format!("{param} is required: a date in the form YYYY-MM-DD"),
    )
}

/// SendPost shows only global entries; group entries belong to v3 groups
/// and Postmark streams (docs/mapping.md, "not shown").
fn global(kinds: KindSet) -> ListFilter {
    ListFilter::new(kinds, ScopeFilter::Global)
}

/// 200 with a bare array, newest first: one row per kind an address has,
/// each with its own `id` (docs/mapping.md).
pub async fn list(
    subaccount: SendPostSubaccount,
    state: web::Data<SendPostState>,
    req: HttpRequest,
) -> Result<HttpResponse, SendPostError> {
    let params = ListParams::parse(&QueryParams::from_request(&req))?;
    let page = state
        .engine
        .list(&subaccount.tenant, &params.filter, params.page)
        .await?;
    let rows: Vec<Suppression> = page
        .items
        .iter()
        .map(|s| shown(&state.engine, &subaccount.tenant, s))
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// A suppression as SendPost shows it, with the id this tenant is shown
/// (`Engine::shown_suppression_id`), not the stored one.
fn shown(
    engine: &Engine,
    tenant: &hush_model::TenantId,
    suppression: &hush_model::Suppression,
) -> Suppression {
    let mut row = Suppression::from_canonical(suppression);
    row.id = engine.shown_suppression_id(tenant, suppression.id);
    row
}

/// `{"count": N}`: the rows a listing over the same days would show in all
/// (the legacy SDKs' "Count Total Suppressions"). `from` and `to` are
/// optional here, and not limited to 60 days: the legacy SDKs count without
/// them.
pub async fn count(
    subaccount: SendPostSubaccount,
    state: web::Data<SendPostState>,
    req: HttpRequest,
) -> Result<HttpResponse, SendPostError> {
    let query = QueryParams::from_request(&req);
    let from = query.day("from")?;
    let to = query.day("to")?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(SendPostError::invalid_param(
            "to",
            "to must not be before from",
        ));
    }
    let mut filter = global(KindSet::ALL);
    filter.created_from = from.map(Day::start);
    filter.created_to = to.map(Day::end);
    let count = state.engine.count(&subaccount.tenant, &filter).await?;
    Ok(HttpResponse::Ok().json(CountStat { count }))
}

/// Removes every global entry of each address, whatever its reason
/// (SendPost's API reference: "regardless of suppression type";
/// docs/mapping.md, "Deletes"). An address with nothing to remove is no
/// error, so a retried DELETE is harmless (the SDK's urllib3 retries
/// DELETEs). 200 with `{"message"}`, or under the legacy contract an array
/// with one `{"id","message"}` per entry removed (docs/api/sendpost.md,
/// "Contracts").
///
/// Each address is one "remove everything global" call, which is what
/// SendPost's own DELETE does: the v1 reply needs nothing listed first, so
/// an upstream SendPost backend forwards it as one DELETE. Only the legacy
/// reply, which names the ids removed, looks the entries up first.
pub async fn delete(
    subaccount: SendPostSubaccount,
    state: web::Data<SendPostState>,
    contract: Contract,
    SendPostJson(body): SendPostJson<DeleteSuppressionRequest>,
) -> Result<HttpResponse, SendPostError> {
    let requested = body.suppressions.unwrap_or_default();
    if requested.is_empty() {
        return Err(SendPostError::invalid_body(
            "suppressions",
            "give at least one {\"email\": …} in suppressions",
        ));
    }
    let emails = requested
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item_email(
                &format!("suppressions[{index}].email"),
                item.email.as_deref(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids: Vec<SuppressionId> = Vec::new();
    let mut seen = HashSet::new();
    for email in &emails {
        if !seen.insert(email.clone()) {
            continue;
        }
        if contract == Contract::Legacy {
            for entry in state.engine.entries(&subaccount.tenant, email).await? {
                if entry.scope == Scope::Global && !ids.contains(&entry.id) {
                    ids.push(entry.id);
                }
            }
        }
        state
            .engine
            .remove(
                &subaccount.tenant,
                email,
                Scope::Global,
                KindSet::ALL,
                &subaccount.actor,
            )
            .await?;
    }
    Ok(match contract {
        Contract::V1 => HttpResponse::Ok().json(DeleteResponse {
            message: DELETED_MESSAGE.to_owned(),
        }),
        Contract::Legacy => HttpResponse::Ok().json(
            ids.iter()
                .map(|id| LegacyDeleted {
                    id: state.engine.shown_suppression_id(&subaccount.tenant, *id),
                    message: DELETED_MESSAGE.to_owned(),
                })
                .collect::<Vec<_>>(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_model::Timestamp;

    const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

    fn in_window(params: &ListParams, at: Timestamp) -> bool {
        params.filter.created_from.is_none_or(|t| at >= t)
            && params.filter.created_to.is_none_or(|t| at <= t)
    }

    fn params(query: &str) -> Result<ListParams, SendPostError> {
        let req = actix_web::test::TestRequest::get()
            .uri(&format!("/x?{query}"))
            .to_http_request();
        ListParams::parse(&QueryParams::from_request(&req))
    }

    #[test]
    fn days_are_inclusive_in_utc() {
        let p = params("from=2024-01-01&to=2024-01-01").expect("params");
        let start = Timestamp::start_of_day("2024-01-01").expect("date");
        assert!(in_window(&p, start));
        assert!(in_window(
            &p,
            Timestamp::from_nanos(start.as_nanos() + NANOS_PER_DAY - 1)
        ));
        assert!(!in_window(
            &p,
            Timestamp::from_nanos(start.as_nanos() + NANOS_PER_DAY)
        ));
        assert!(!in_window(&p, Timestamp::from_nanos(start.as_nanos() - 1)));
    }

    #[test]
    fn sixty_days_is_the_widest_range() {
        assert!(params("from=2024-01-01&to=2024-03-01").is_ok(), "60 days");
        assert!(params("from=2024-01-01&to=2024-03-02").is_err(), "61 days");
    }

    #[test]
    fn a_literal_plus_in_search_is_a_plus() {
        let p = params("from=2024-01-01&to=2024-01-02&search=Bob+Tag%40X").expect("params");
        assert_eq!(
            p.filter.email,
            Some(EmailMatch::Contains("bob+tag@x".into()))
        );
    }
}
