//! The admin calls (docs/api/admin.md). Handlers parse, ask the engine and
//! shape the answer with `wire`.

use actix_web::{HttpResponse, web};
use hush_engine::{Engine, EngineError, RestoreWindow};
use hush_model::{
    Door, Email, JournalQuery, KindFamily, KindSet, ListFilter, Position, Scope, ScopeFilter,
    TenantId, Timestamp,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{AdminCaller, Read, Write};
use crate::{AdminError, AdminState, wire};

/// History items per page when the caller names no `limit`, and the most
/// it may name (svix pages the same way).
const HISTORY_DEFAULT: u32 = 50;
const HISTORY_MAX: u32 = 250;

/// The tenant a path names, if the caller may see it; otherwise the same
/// 404 as a tenant that does not exist.
fn tenant_of<S>(
    state: &AdminState,
    caller: &AdminCaller<S>,
    raw: &str,
) -> Result<TenantId, AdminError> {
    let unknown = || AdminError::TenantNotFound(raw.to_owned());
    let tenant = TenantId::parse(raw).map_err(|_| unknown())?;
    if state.tenants.contains(&tenant) && caller.sees(&tenant) {
        Ok(tenant)
    } else {
        Err(unknown())
    }
}

fn time(field: &str, raw: Option<&str>) -> Result<Option<Timestamp>, AdminError> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw).map_err(|_| {
            AdminError::BadRequest(format!(
                "{field} must be an RFC 3339 time such as 2026-12-05T10:00:00Z; got {raw:?}"
            ))
        })
    })
    .transpose()
}

fn parse_email(raw: &str) -> Result<Email, AdminError> {
    Email::parse(raw)
        .map_err(|err| AdminError::BadRequest(format!("{raw:?} is not an email address: {err}")))
}

/// `GET /admin/v1/addresses/{email}`: every tenant the caller sees that
/// holds the address, its entries, and whether mail may go to it globally
/// and in each group.
pub async fn address(
    caller: AdminCaller<Read>,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let email = parse_email(&path)?;
    let mut found = Vec::new();
    for tenant in state.tenants.iter().filter(|t| caller.sees(t)) {
        let entries = state.engine.entries(tenant, &email).await?;
        if entries.is_empty() {
            continue;
        }
        // A store without groups (an upstream) has none to show.
        let groups = state.engine.groups(tenant).await.unwrap_or_default();
        let names = wire::groups_by_id(&groups);
        let global_block = entries.iter().any(|e| e.scope == Scope::Global);
        let per_group: Vec<Value> = groups
            .iter()
            .map(|g| {
                let blocked = global_block || entries.iter().any(|e| e.scope == Scope::Group(g.id));
                json!({"id": g.id.0, "key": g.key.as_str(), "name": g.name, "may_send": !blocked})
            })
            .collect();
        found.push(json!({
            "tenant": tenant.as_str(),
            "entries": entries.iter().map(|e| wire::suppression(e, &names)).collect::<Vec<_>>(),
            "may_send": {"global": !global_block, "groups": per_group},
        }));
    }
    Ok(HttpResponse::Ok().json(json!({"email": email.as_str(), "tenants": found})))
}

/// `GET /admin/v1/tenants`: each tenant the caller sees, with its counts by
/// kind.
pub async fn tenants(
    caller: AdminCaller<Read>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let mut data = Vec::new();
    for tenant in state.tenants.iter().filter(|t| caller.sees(t)) {
        let mut counts = serde_json::Map::new();
        let mut total = 0;
        for family in KindFamily::ALL {
            let filter = ListFilter::new(KindSet::family(family), ScopeFilter::Any);
            let n = state.engine.count(tenant, &filter).await?;
            total += n;
            counts.insert(family_name(family).into(), n.into());
        }
        counts.insert("total".into(), total.into());
        data.push(json!({"tenant": tenant.as_str(), "counts": counts}));
    }
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}

fn family_name(family: KindFamily) -> &'static str {
    match family {
        KindFamily::Bounce => "bounce",
        KindFamily::Invalid => "invalid",
        KindFamily::Spam => "spam_complaint",
        KindFamily::Unsubscribe => "unsubscribe",
        KindFamily::Manual => "manual",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    email: Option<String>,
    since: Option<String>,
    until: Option<String>,
    door: Option<String>,
    limit: Option<u32>,
    iterator: Option<String>,
}

/// `GET /admin/v1/tenants/{tenant}/history`: newest first, a page at a
/// time; `iterator` continues where the last page ended.
pub async fn history(
    caller: AdminCaller<Read>,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_of(&state, &caller, &path)?;
    let limit = query.limit.unwrap_or(HISTORY_DEFAULT);
    if !(1..=HISTORY_MAX).contains(&limit) {
        return Err(AdminError::BadRequest(format!(
            "limit must be between 1 and {HISTORY_MAX}; got {limit}"
        )));
    }
    let cursor = query
        .iterator
        .as_deref()
        .map(|raw| {
            raw.parse::<i64>().map(Position).map_err(|_| {
                AdminError::BadRequest(format!("iterator {raw:?} is not one this API gave out"))
            })
        })
        .transpose()?;
    let journal_query = JournalQuery {
        email: query.email.as_deref().map(parse_email).transpose()?,
        since: time("since", query.since.as_deref())?,
        until: time("until", query.until.as_deref())?,
        door: query.door.clone(),
        cursor,
        // One more than shown: whether there is a next page.
        ..JournalQuery::newest_first(limit + 1)
    };
    let mut entries = state.engine.history(&tenant, &journal_query).await?;
    let done = entries.len() <= limit as usize;
    entries.truncate(limit as usize);
    let groups = state.engine.groups(&tenant).await.unwrap_or_default();
    let names = wire::groups_by_id(&groups);
    let iterator = entries.last().map(|e| e.position.0.to_string());
    Ok(HttpResponse::Ok().json(json!({
        "data": entries.iter().map(|e| wire::entry(e, &names)).collect::<Vec<_>>(),
        "iterator": iterator,
        "done": done,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    since: String,
    until: Option<String>,
    email: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /admin/v1/tenants/{tenant}/restore`: undoes every change in the
/// window, newest first; journaled with door `restore` and the token's
/// name.
pub async fn restore(
    caller: AdminCaller<Write>,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    body: web::Json<RestoreRequest>,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_of(&state, &caller, &path)?;
    let since = time("since", Some(&body.since))?.unwrap_or(Timestamp::MIN);
    let until = time("until", body.until.as_deref())?.unwrap_or_else(Engine::now);
    if since > until {
        return Err(AdminError::BadRequest(
            "since must not be after until".into(),
        ));
    }
    let window = RestoreWindow {
        since,
        until,
        email: body.email.as_deref().map(parse_email).transpose()?,
    };
    let actor = caller.actor(Door::RESTORE);
    let done = state
        .engine
        .restore(&tenant, &window, body.dry_run, &actor)
        .await?;
    tracing::info!(
        %tenant,
        token = %caller.token.name,
        restored = done.restored,
        removed = done.removed,
        dry_run = body.dry_run,
        "admin restore"
    );
    Ok(HttpResponse::Ok().json(json!({
        "restored": done.restored,
        "removed": done.removed,
        "dry_run": body.dry_run,
    })))
}

/// `GET /admin/v1/tenants/{tenant}/webhooks`: each of the tenant's hooks,
/// by provider and label (a SendPost hook's name is its secret and never
/// shown), with what it has received since the gateway started, by
/// outcome, and when it last received an event.
pub async fn webhooks(
    caller: AdminCaller<Read>,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_of(&state, &caller, &path)?;
    let hooks: Vec<Value> = state
        .webhooks
        .as_ref()
        .map(|webhooks| webhooks.reports(&tenant))
        .unwrap_or_default()
        .into_iter()
        .map(|report| {
            json!({
                "provider": report.provider.as_str(),
                "hook": report.label,
                "recorded": report.recorded,
                "ignored": report.ignored,
                "duplicate": report.duplicate,
                "refused": report.refused,
                "last_event_at": report.last_event_at.map(|at| at.to_rfc3339_nanos()),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "tenant": tenant.as_str(), "webhooks": hooks })))
}

/// Entries counted behind a mirror at most: past this the lag reads "at
/// least".
const LAG_SCAN: u32 = 10_000;
/// Refusals shown per mirror.
const FAILURES_SHOWN: u32 = 20;

/// `GET /admin/v1/tenants/{tenant}/mirrors`: each of the tenant's mirrors
/// with its position, lag (entries not yet dealt with, up to 10,000, and
/// the age of the oldest), last success and error, counts, and its latest
/// refusals (docs/mirrors.md).
pub async fn mirrors(
    caller: AdminCaller<Read>,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_of(&state, &caller, &path)?;
    let mut shown = Vec::new();
    for mirror in state.mirrors.iter().filter(|m| m.tenant == tenant) {
        shown.push(mirror_report(&state.engine, &tenant, mirror).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "tenant": tenant.as_str(), "mirrors": shown })))
}

/// One mirror as the admin API and `hush mirror status` show it.
pub async fn mirror_report(
    engine: &Engine,
    tenant: &TenantId,
    mirror: &crate::MirrorEntry,
) -> Result<Value, EngineError> {
    let name = &mirror.target.name;
    let kept = engine.mirror_state(tenant, name).await?;
    let (behind, oldest) = engine.mirror_lag(tenant, name, LAG_SCAN).await?;
    let failures: Vec<Value> = engine
        .mirror_failures(tenant, name, FAILURES_SHOWN)
        .await?
        .into_iter()
        .map(|f| {
            json!({
                "position": f.position.0,
                "at": f.at.to_rfc3339_nanos(),
                "change": f.change,
                "message": f.message,
            })
        })
        .collect();
    let now = Engine::now();
    let lag_seconds = oldest.map_or(0.0, |at| {
        (now.as_nanos().saturating_sub(at.as_nanos())) as f64 / 1e9
    });
    Ok(json!({
        "name": name.as_str(),
        "provider": mirror.provider,
        "position": kept.position.map(|p| p.0),
        "lag": {
            "changes": behind,
            "more": behind >= u64::from(LAG_SCAN),
            "seconds": lag_seconds,
        },
        "last_success_at": kept.last_success.map(|at| at.to_rfc3339_nanos()),
        "last_error": kept.last_error,
        "failed": kept.failed,
        "skipped": kept.skipped,
        "failures": failures,
    }))
}

/// `POST /admin/v1/tenants/{tenant}/mirrors/{mirror}/retry`: pushes the
/// mirror's recorded refusals again; those taken are forgotten.
pub async fn retry_mirror(
    caller: AdminCaller<Write>,
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, name) = path.into_inner();
    let tenant = tenant_of(&state, &caller, &tenant)?;
    let mirror = state
        .mirrors
        .iter()
        .find(|m| m.tenant == tenant && m.target.name.as_str() == name)
        .ok_or(AdminError::MirrorNotFound(name))?;
    let done = state.engine.mirror_retry(&tenant, &mirror.target).await?;
    tracing::info!(
        %tenant,
        mirror = %mirror.target.name,
        token = %caller.token.name,
        retried = done.retried,
        pushed = done.pushed,
        refused = done.refused,
        "admin mirror retry"
    );
    Ok(HttpResponse::Ok().json(json!({
        "retried": done.retried,
        "pushed": done.pushed,
        "refused": done.refused,
        "gone": done.gone,
    })))
}
