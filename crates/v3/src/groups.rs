//! `/v3/asm/groups` and group suppressions (docs/api/v3.md, "Groups";
//! SendGrid API reference, "Create a new suppression group" and the group
//! calls after it). A v3 group is the canonical group, so every Postmark
//! stream, the tenant's `outbound` included, is listed here
//! (docs/mapping.md).

use std::collections::{HashMap, HashSet};

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use hush_engine::{EngineError, GroupSpec};
use hush_model::{
    Group, GroupChanges, GroupId, ListFilter, Scope, ScopeFilter, StreamType, TenantId,
};
use serde::Serialize;

use crate::auth::{Read, V3Key, Write};
use crate::extract::{QueryPairs, V3Json, path_email, path_email_to_read, path_group};
use crate::global::{added, recipient_emails, unsubscribes};
use crate::listing::{ListParams, group_page, link_header};
use crate::lists::global_unsubscribe_kinds;
use crate::wire::{
    AddressGroup, AddressGroups, GroupList, GroupPatch, GroupRecord, NewGroupBody,
    RecipientEmailList, RecipientEmails, SendgridGroup, SendgridGroupSuppression,
};
use crate::{Shape, V3Error, V3State};

/// The seed shape allows 500 characters (docs/api/v3.md, "Groups"); the
/// engine's own limit is Postmark's 1000.
pub const DESCRIPTION_MAX: usize = 500;
/// How many entries a walk over group suppressions fetches at a time.
const SCAN_BATCH: u32 = 500;

/// A group's members: one row per address, though an address may have
/// both an Unsubscribe (v3) and a Manual entry (a Postmark create in the
/// group's stream), so lists, totals and `unsubscribes` count addresses.
fn members_filter(id: GroupId) -> ListFilter {
    ListFilter::new(global_unsubscribe_kinds(), ScopeFilter::Group(id)).one_per_address()
}

async fn unsubscribes_in(state: &V3State, tenant: &TenantId, id: GroupId) -> Result<u64, V3Error> {
    Ok(state.engine.count(tenant, &members_filter(id)).await?)
}

/// A group as one shape or the other shows it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ShownGroup {
    Seed(GroupRecord),
    Sendgrid(SendgridGroup),
}

/// A group as the key's shape shows it.
async fn shown(
    state: &V3State,
    tenant: &TenantId,
    shape: Shape,
    group: &Group,
) -> Result<ShownGroup, V3Error> {
    let unsubscribes = unsubscribes_in(state, tenant, group.id).await?;
    Ok(match shape {
        Shape::Seed => ShownGroup::Seed(GroupRecord {
            id: state.engine.shown_group_id(tenant, group.id),
            name: group.name.clone(),
            description: group.description.clone(),
            is_default: group.is_default,
            unsubscribes,
            created_at: group.created_at.to_rfc3339_z_seconds(),
        }),
        Shape::Sendgrid => ShownGroup::Sendgrid(SendgridGroup {
            id: state.engine.shown_group_id(tenant, group.id),
            name: group.name.clone(),
            description: group.description.clone(),
            is_default: group.is_default,
            unsubscribes,
            last_email_sent_at: None,
        }),
    })
}

fn check_description(description: &str) -> Result<(), V3Error> {
    let length = description.chars().count();
    if length > DESCRIPTION_MAX {
        return Err(V3Error::bad_request(
            "description",
            format!(
                "a group description is at most {DESCRIPTION_MAX} characters; this one has {length}"
            ),
        ));
    }
    Ok(())
}

/// Seed: `{"suppression_groups":[…]}`; SendGrid: a bare array. `?id=` (or
/// `id[]=`, repeated) keeps only those groups (SendGrid API reference,
/// "Retrieve all suppression groups associated with the user.").
pub async fn list(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let query = QueryPairs::from_request(&req);
    let wanted = query
        .all("id")
        .into_iter()
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| {
                V3Error::bad_request("id", format!("id must be a group number; got {raw:?}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Shown ids name the groups; one that names none matches none.
    let asked = !wanted.is_empty();
    let wanted: HashSet<GroupId> = wanted
        .into_iter()
        .filter_map(|shown| state.engine.group_id_from_shown(&key.tenant, shown))
        .collect();
    let mut seed = Vec::new();
    let mut sendgrid = Vec::new();
    for group in state.engine.groups(&key.tenant).await? {
        if !asked || wanted.contains(&group.id) {
            match shown(&state, &key.tenant, key.shape, &group).await? {
                ShownGroup::Seed(record) => seed.push(record),
                ShownGroup::Sendgrid(record) => sendgrid.push(record),
            }
        }
    }
    Ok(match key.shape {
        Shape::Seed => HttpResponse::Ok().json(GroupList {
            suppression_groups: seed,
        }),
        Shape::Sendgrid => HttpResponse::Ok().json(sendgrid),
    })
}

/// 201 with the group. `name` 1–100 characters, unique in the tenant;
/// `description` 0–500; `is_default` moves the flag from the previous
/// default (docs/api/v3.md, "Groups").
pub async fn create(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    V3Json(body): V3Json<NewGroupBody>,
) -> Result<HttpResponse, V3Error> {
    let description = body.description.unwrap_or_default();
    check_description(&description)?;
    let spec = GroupSpec {
        key: None,
        name: body.name,
        description,
        is_default: body.is_default.unwrap_or(false),
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: None,
    };
    let group = state
        .engine
        .create_group(&key.tenant, spec, &key.actor)
        .await?;
    Ok(HttpResponse::Created().json(shown(&state, &key.tenant, key.shape, &group).await?))
}

pub async fn get(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let group = state
        .engine
        .group(&key.tenant, path_group(&req, &state.engine, &key.tenant)?)
        .await?;
    Ok(HttpResponse::Ok().json(shown(&state, &key.tenant, key.shape, &group).await?))
}

/// Any subset of `name`, `description`, `is_default`. 200 in the seed
/// shape, 201 in SendGrid's (SendGrid API reference, "Update a suppression
/// group."; docs/api/v3.md).
pub async fn update(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
    V3Json(body): V3Json<GroupPatch>,
) -> Result<HttpResponse, V3Error> {
    let id = path_group(&req, &state.engine, &key.tenant)?;
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let changes = GroupChanges {
        name: body.name,
        description: body.description,
        is_default: body.is_default,
        ..GroupChanges::default()
    };
    let group = state
        .engine
        .update_group(&key.tenant, id, changes, &key.actor)
        .await?;
    let shown = shown(&state, &key.tenant, key.shape, &group).await?;
    Ok(match key.shape {
        Shape::Seed => HttpResponse::Ok().json(shown),
        Shape::Sendgrid => HttpResponse::Created().json(shown),
    })
}

/// Answers 204; the group's suppressions go with it. The default stream `outbound`
/// cannot be deleted (a 400 naming it).
pub async fn delete(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    state
        .engine
        .delete_group(
            &key.tenant,
            path_group(&req, &state.engine, &key.tenant)?,
            &key.actor,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Seed: one page (`page` from 1, `page_size` 1–500, default 50) as
/// `{"recipient_emails":[…],"total":N}`. SendGrid: every member as a bare
/// array of strings (SendGrid API reference, "Retrieve all suppressions for
/// a suppression group", which has no paging).
pub async fn members(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let id = path_group(&req, &state.engine, &key.tenant)?;
    let page = group_page(&QueryPairs::from_request(&req))?;
    state.engine.group(&key.tenant, id).await?;
    match key.shape {
        Shape::Seed => {
            let page = state
                .engine
                .list(&key.tenant, &members_filter(id), page)
                .await?;
            Ok(HttpResponse::Ok().json(RecipientEmailList {
                recipient_emails: page
                    .items
                    .into_iter()
                    .map(|s| s.email.into_string())
                    .collect(),
                total: page.total,
            }))
        }
        Shape::Sendgrid => {
            let mut scan = Box::pin(state.engine.scan(
                key.tenant.clone(),
                members_filter(id),
                SCAN_BATCH,
            ));
            let mut emails = Vec::new();
            while let Some(entry) = scan.next().await {
                emails.push(entry?.email.into_string());
            }
            Ok(HttpResponse::Ok().json(emails))
        }
    }
}

/// 201 with the addresses added. An unknown group is a 404 in the seed
/// shape; SendGrid puts the addresses on the global list instead
/// (SendGrid API reference, "Add suppressions to a suppression group";
/// docs/mapping.md, "Unknown group").
pub async fn add_members(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
    V3Json(body): V3Json<RecipientEmails>,
) -> Result<HttpResponse, V3Error> {
    let id = path_group(&req, &state.engine, &key.tenant)?;
    let emails = recipient_emails(&body)?;
    let scope = match state.engine.group(&key.tenant, id).await {
        Ok(_) => Scope::Group(id),
        Err(EngineError::GroupNotFound(_)) if key.shape == Shape::Sendgrid => Scope::Global,
        Err(err) => return Err(err.into()),
    };
    let outcomes = state
        .engine
        .add(&key.tenant, unsubscribes(&emails, scope), &key.actor)
        .await?;
    // The group was deleted between the check and the add.
    if let Some(hush_engine::AddOutcome::UnknownGroup(gone)) = outcomes
        .iter()
        .find(|o| matches!(o, hush_engine::AddOutcome::UnknownGroup(_)))
    {
        return Err(EngineError::GroupNotFound(*gone).into());
    }
    Ok(HttpResponse::Created().json(added(key.shape, body, emails)))
}

/// Answers 204. For an address not in the group: 404 in the seed shape, and 204
/// in SendGrid's (its "Delete a suppression from a suppression group"
/// documents only 204).
pub async fn remove_member(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let id = path_group(&req, &state.engine, &key.tenant)?;
    let email = path_email(&req)?;
    state.engine.group(&key.tenant, id).await?;
    let removed = state
        .engine
        .remove(
            &key.tenant,
            &email,
            Scope::Group(id),
            global_unsubscribe_kinds(),
            &key.actor,
        )
        .await?;
    if removed == 0 && key.shape == Shape::Seed {
        let shown = state.engine.shown_group_id(&key.tenant, id);
        return Err(V3Error::NotFound(format!(
            "{email} is not suppressed in group {shown}"
        )));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `sendgrid` shape: which of the given addresses are in the group, echoed
/// as the caller spelled them, as a bare array (SendGrid API reference,
/// "Search for suppressions within a group").
pub async fn search(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
    V3Json(body): V3Json<RecipientEmails>,
) -> Result<HttpResponse, V3Error> {
    key.require_sendgrid_shape()?;
    let id = path_group(&req, &state.engine, &key.tenant)?;
    let emails = recipient_emails(&body)?;
    state.engine.group(&key.tenant, id).await?;
    let kinds = global_unsubscribe_kinds();
    let mut found = Vec::new();
    for (raw, email) in body.recipient_emails.iter().zip(&emails) {
        let member = state
            .engine
            .entries(&key.tenant, email)
            .await?
            .iter()
            .any(|s| s.scope == Scope::Group(id) && kinds.contains(&s.kind));
        if member {
            found.push(raw.clone());
        }
    }
    Ok(HttpResponse::Ok().json(found))
}

/// `sendgrid` shape: every group suppression of the tenant, newest first,
/// with `limit` (1–500, default 50) and `offset` (SendGrid API reference,
/// "Retrieve all suppressions"; its paging is reported in
/// sendgrid/docs#5178).
pub async fn all_suppressions(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    key.require_sendgrid_shape()?;
    let page = ListParams::parse(&QueryPairs::from_request(&req))?.page();
    let names: HashMap<GroupId, String> = state
        .engine
        .groups(&key.tenant)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    // One row per address and group (see `members_filter`).
    let filter = ListFilter::new(global_unsubscribe_kinds(), ScopeFilter::Any).one_per_address();
    let filter_all = filter.clone();
    // The stores page by scope, not by "any group", so the walk skips the
    // global entries; memory stays bounded by the page.
    let entries = state
        .engine
        .scan(key.tenant.clone(), filter, SCAN_BATCH)
        .filter_map(|entry| async move {
            match entry {
                Ok(s) => match s.scope {
                    Scope::Group(id) => Some(Ok((id, s))),
                    Scope::Global => None,
                },
                Err(err) => Some(Err(err)),
            }
        });
    let mut entries = Box::pin(entries);
    let (offset, limit) = (
        usize::try_from(page.offset).unwrap_or(usize::MAX),
        usize::try_from(page.limit).unwrap_or(0),
    );
    let mut rows = Vec::new();
    let mut skipped = 0;
    // Offset and limit count rows, never errors: a store error inside the
    // skipped part must fail the request, not shorten the page.
    while rows.len() < limit
        && let Some(entry) = entries.next().await
    {
        let (id, s) = entry?;
        if skipped < offset {
            skipped += 1;
            continue;
        }
        rows.push(SendgridGroupSuppression {
            email: s.email.into_string(),
            group_id: state.engine.shown_group_id(&key.tenant, id),
            group_name: names.get(&id).cloned().unwrap_or_default(),
            created_at: s.created_at.unix_seconds(),
        });
    }
    // Lists page with a `Link` header (SendGrid docs, "Responses"):
    // the group rows are every row less the global ones.
    let everywhere = state.engine.count(&key.tenant, &filter_all).await?;
    let global = ListFilter::new(global_unsubscribe_kinds(), ScopeFilter::Global).one_per_address();
    let global = state.engine.count(&key.tenant, &global).await?;
    let total = everywhere.saturating_sub(global);
    Ok(HttpResponse::Ok()
        .insert_header(("Link", link_header(&req, page, total)))
        .json(rows))
}

/// `sendgrid` shape: every group of the tenant, each with whether the
/// address is suppressed in it (SendGrid API reference, "Retrieve all
/// suppression groups for an email address").
pub async fn address_groups(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    key.require_sendgrid_shape()?;
    // An address hush cannot store is in no group: every group, none
    // suppressed, as for any absent address.
    let entries = match path_email_to_read(&req, key.shape)? {
        Some(email) => state.engine.entries(&key.tenant, &email).await?,
        None => Vec::new(),
    };
    let kinds = global_unsubscribe_kinds();
    let suppressed_in: HashSet<GroupId> = entries
        .into_iter()
        .filter(|s| kinds.contains(&s.kind))
        .filter_map(|s| match s.scope {
            Scope::Group(id) => Some(id),
            Scope::Global => None,
        })
        .collect();
    let suppressions = state
        .engine
        .groups(&key.tenant)
        .await?
        .into_iter()
        .map(|g| AddressGroup {
            id: state.engine.shown_group_id(&key.tenant, g.id),
            suppressed: suppressed_in.contains(&g.id),
            name: g.name,
            description: g.description,
            is_default: g.is_default,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AddressGroups { suppressions }))
}
