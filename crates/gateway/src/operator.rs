//! `hush history`, `hush restore` and `hush mirror`: the admin API's
//! history, restore and mirrors for an operator on the box, on the store
//! the config names (docs/operations.md, "History and restore";
//! docs/mirrors.md).

use anyhow::{Context as _, bail};
use hush_engine::{Engine, RestoreWindow};
use hush_model::{Actor, Door, Email, JournalQuery, TenantId, Timestamp};

use crate::config::Config;
use crate::server;

/// What `hush history` asks for.
#[derive(Debug, Clone)]
pub struct HistoryArgs {
    pub tenant: String,
    pub email: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub door: Option<String>,
    pub limit: u32,
}

/// What `hush restore` asks for.
#[derive(Debug, Clone)]
pub struct RestoreArgs {
    pub tenant: String,
    pub since: String,
    pub until: Option<String>,
    pub email: Option<String>,
    pub dry_run: bool,
}

async fn engine_for(config: &Config, raw: &str) -> anyhow::Result<(Engine, TenantId)> {
    let tenant = TenantId::parse(raw).map_err(|e| anyhow::anyhow!("tenant {raw:?}: {e}"))?;
    if !config.tenants.iter().any(|t| t.id == tenant) {
        bail!("no tenant {raw:?} is configured");
    }
    let backend = server::open_backend(config).await?;
    Ok((Engine::new(backend), tenant))
}

fn time(field: &str, raw: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw)
            .map_err(|_| anyhow::anyhow!("--{field} must be an RFC 3339 time; got {raw:?}"))
    })
    .transpose()
}

fn email(raw: Option<&str>) -> anyhow::Result<Option<Email>> {
    raw.map(|raw| Email::parse(raw).with_context(|| format!("--email {raw:?}")))
        .transpose()
}

/// Prints the entries newest first, one JSON object a line, as the admin
/// API shows them.
#[allow(clippy::print_stdout)] // the command's output
pub async fn history(config: &Config, args: HistoryArgs) -> anyhow::Result<()> {
    let (engine, tenant) = engine_for(config, &args.tenant).await?;
    let groups = engine.groups(&tenant).await.unwrap_or_default();
    let names = hush_admin::wire::groups_by_id(&groups);
    let mut query = JournalQuery {
        email: email(args.email.as_deref())?,
        since: time("since", args.since.as_deref())?,
        until: time("until", args.until.as_deref())?,
        door: args.door,
        ..JournalQuery::newest_first(args.limit.min(1_000))
    };
    let mut left = args.limit;
    while left > 0 {
        query.limit = left.min(1_000);
        let page = engine.history(&tenant, &query).await?;
        let Some(last) = page.last() else { break };
        query.cursor = Some(last.position);
        left -= u32::try_from(page.len()).unwrap_or(left);
        let short = page.len() < query.limit as usize;
        for entry in &page {
            println!("{}", hush_admin::wire::entry(entry, &names));
        }
        if short {
            break;
        }
    }
    Ok(())
}

/// Undoes a window of changes and prints what it did.
#[allow(clippy::print_stdout)] // the command's output
pub async fn restore(config: &Config, args: RestoreArgs) -> anyhow::Result<()> {
    let (engine, tenant) = engine_for(config, &args.tenant).await?;
    let since = time("since", Some(&args.since))?.unwrap_or(Timestamp::MIN);
    let until = time("until", args.until.as_deref())?.unwrap_or_else(Engine::now);
    if since > until {
        bail!("--since must not be after --until");
    }
    let window = RestoreWindow {
        since,
        until,
        email: email(args.email.as_deref())?,
    };
    // The operator's login names the key: the journal says who ran it.
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let actor = Actor::new(Door::RESTORE).with_key(format!("cli:{who}"));
    let done = engine
        .restore(&tenant, &window, args.dry_run, &actor)
        .await?;
    println!(
        "{}",
        serde_json::json!({"restored": done.restored, "removed": done.removed, "dry_run": args.dry_run})
    );
    Ok(())
}

/// The tenant's mirrors as the config names them.
fn mirrors_of(config: &Config, tenant: &TenantId) -> anyhow::Result<Vec<hush_admin::MirrorEntry>> {
    Ok(config
        .resolve_mirrors()?
        .iter()
        .filter(|m| &m.tenant == tenant)
        .map(crate::mirror_config::Mirror::admin_entry)
        .collect())
}

/// Prints each of the tenant's mirrors, one JSON object a line.
#[allow(clippy::print_stdout)] // the command's output
pub async fn mirror_status(config: &Config, tenant: String) -> anyhow::Result<()> {
    let (engine, tenant) = engine_for(config, &tenant).await?;
    for mirror in mirrors_of(config, &tenant)? {
        println!(
            "{}",
            hush_admin::mirror_report(&engine, &tenant, &mirror).await?
        );
    }
    Ok(())
}

/// The tenant's mirror of that name.
fn mirror_named(
    config: &Config,
    tenant: &TenantId,
    mirror: &str,
) -> anyhow::Result<hush_admin::MirrorEntry> {
    match mirrors_of(config, tenant)?
        .into_iter()
        .find(|m| m.target.name.as_str() == mirror)
    {
        Some(entry) => Ok(entry),
        None => bail!("the tenant has no mirror {mirror:?}"),
    }
}

/// Compares the tenant with the provider and, unless a dry run, pushes the
/// difference; prints the counts.
#[allow(clippy::print_stdout)] // the command's output
pub async fn mirror_resync(
    config: &Config,
    tenant: String,
    mirror: String,
    dry_run: bool,
) -> anyhow::Result<()> {
    let (engine, tenant) = engine_for(config, &tenant).await?;
    let entry = mirror_named(config, &tenant, &mirror)?;
    let done = engine
        .mirror_resync(&tenant, &entry.target, dry_run)
        .await?;
    println!(
        "{}",
        serde_json::json!({
            "missing": done.missing,
            "extra": done.extra,
            "added": done.added,
            "removed": done.removed,
            "refused": done.refused,
            "dry_run": dry_run,
        })
    );
    Ok(())
}

/// Pushes a mirror's refusals again and prints what became of them.
#[allow(clippy::print_stdout)] // the command's output
pub async fn mirror_retry(config: &Config, tenant: String, mirror: String) -> anyhow::Result<()> {
    let (engine, tenant) = engine_for(config, &tenant).await?;
    let entry = mirror_named(config, &tenant, &mirror)?;
    let done = engine.mirror_retry(&tenant, &entry.target).await?;
    println!(
        "{}",
        serde_json::json!({"retried": done.retried, "pushed": done.pushed, "refused": done.refused, "gone": done.gone})
    );
    Ok(())
}
