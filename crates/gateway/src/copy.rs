//! `hush copy --from STORE --to STORE`: every group and every suppression of
//! every tenant, from one store to another: SQLite, PostgreSQL, or an
//! upstream provider (`upstream:postmark`, `upstream:sendpost`,
//! `upstream:v3`), whose address and per-tenant credentials come from the
//! config's `[storage.upstream]` and the tenants on the upstream backend.
//!
//! - Rate-limit aware: an upstream's calls are retried with backoff on 429
//!   and 5xx, honouring `Retry-After` (docs/backends.md), so a long copy
//!   slows down instead of failing.
//! - What a destination provider cannot hold (groups on SendPost, an item
//!   Postmark refuses) is counted and named in the summary, never dropped
//!   silently.
//! - Idempotent: groups are matched by key, suppressions by identity (an
//!   add of an existing identity changes nothing), so a re-run copies only
//!   what is missing, and re-running after an interruption completes the
//!   copy.
//! - Faithful: ids are the destination's own, but everything else (kinds,
//!   origins, nanosecond times, group settings, archive state) is copied as
//!   is, and entries are added oldest first so that entries with equal
//!   times list in the same order at the destination as at the source.
//! - Bounded memory: the source is read in keyset batches.
//! - The journal goes along: between hush stores, each tenant's history is
//!   carried (its times, doors, keys and records as they were; positions
//!   are the destination's), and the copy's own writes are journaled with
//!   door `copy`. A re-run carries only what the destination lacks.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use hush_engine::{AddOutcome, Backend, EngineError};
use hush_model::{
    Actor, Door, GroupChanges, GroupId, JournalEntry, JournalOrder, JournalQuery, KindSet,
    ListFilter, NewGroup, NewSuppression, Recorded, ScanCursor, Scope, ScopeFilter, TenantId,
    has_nul,
};
use hush_store::{PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::upstream::Provider;

/// A store named on the command line: `sqlite:PATH`, `postgres:URL` (a
/// bare `postgres://…` URL works too) or `upstream:PROVIDER`.
#[derive(Clone)]
pub enum StoreSpec {
    Sqlite(PathBuf),
    // Boxed: the connect options are large beside a path.
    Postgres(Box<PostgresOptions>),
    Upstream(Provider),
}

impl StoreSpec {
    pub fn is_upstream(&self) -> bool {
        matches!(self, Self::Upstream(_))
    }
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if let Some(provider) = raw.strip_prefix("upstream:") {
            return match provider {
                "v3" => Ok(Self::Upstream(Provider::V3)),
                "postmark" => Ok(Self::Upstream(Provider::Postmark)),
                "sendpost" => Ok(Self::Upstream(Provider::Sendpost)),
                other => Err(format!(
                    "unknown upstream provider {other:?}; it is upstream:v3, upstream:postmark or upstream:sendpost"
                )),
            };
        }
        if let Some(path) = raw.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("sqlite: needs a file, e.g. sqlite:data/hush.db".to_owned());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let url = raw
            .strip_prefix("postgres:")
            .filter(|rest| !rest.starts_with("//"))
            .unwrap_or(raw);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return PostgresOptions::from_url(url).map(|options| Self::Postgres(Box::new(options)));
        }
        Err(
            "a store is sqlite:PATH, postgres:postgres://user:password@host:port/database or upstream:PROVIDER"
                .to_owned(),
        )
    }
}

// Never the password.
impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(options) => write!(f, "postgres:{}", options.location()),
            Self::Upstream(provider) => write!(f, "upstream:{}", provider.as_str()),
        }
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An open store. The `Backend` trait works per tenant; listing the tenants
/// is each store's own.
#[derive(Debug)]
pub enum Store {
    Sqlite(SqliteBackend),
    Postgres(PostgresBackend),
    /// A provider; its tenants are the config's tenants on the upstream
    /// backend, since a provider cannot list hush's tenants.
    Upstream {
        backend: Arc<dyn Backend>,
        tenants: Vec<TenantId>,
    },
}

impl Store {
    /// Opens a store, migrating its schema. A source must exist: opening a
    /// SQLite path would otherwise create an empty file and copy nothing.
    pub async fn open(
        spec: &StoreSpec,
        is_source: bool,
        config: Option<&Config>,
    ) -> anyhow::Result<Self> {
        Ok(match spec {
            StoreSpec::Upstream(provider) => {
                let config = config.context("an upstream store needs the config")?;
                if config.storage.upstream.provider != Some(*provider) {
                    bail!(
                        "{spec}: the config's storage.upstream.provider is {}",
                        config
                            .storage
                            .upstream
                            .provider
                            .map_or("not set", Provider::as_str)
                    );
                }
                let backend = config.open_upstream()?.with_context(|| {
                    format!("{spec}: no tenant in the config is on the upstream backend")
                })?;
                Self::Upstream {
                    backend,
                    tenants: config.upstream_tenants(),
                }
            }
            StoreSpec::Sqlite(path) => {
                if is_source && !path.is_file() {
                    bail!("{spec}: no such file");
                }
                let mut options = SqliteOptions::new(path.clone());
                // A copy lists and adds; it never looks an address up, so
                // the lookup index would cost its build and its memory for
                // nothing.
                options.lookup_index_mib = 0;
                let backend = tokio::task::spawn_blocking(move || SqliteBackend::open(options))
                    .await
                    .context("opening SQLite")?
                    .with_context(|| format!("opening {spec}"))?;
                Self::Sqlite(backend)
            }
            StoreSpec::Postgres(options) => {
                let mut options = options.as_ref().clone();
                // As for SQLite: a copy never looks an address up, so the
                // lookup mirror would cost a read of the whole table.
                options.lookup_index_mib = 0;
                Self::Postgres(
                    PostgresBackend::connect(options)
                        .await
                        .with_context(|| format!("opening {spec}"))?,
                )
            }
        })
    }

    fn backend(&self) -> &dyn Backend {
        match self {
            Self::Sqlite(backend) => backend,
            Self::Postgres(backend) => backend,
            Self::Upstream { backend, .. } => backend.as_ref(),
        }
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, EngineError> {
        match self {
            Self::Sqlite(backend) => backend.tenants().await,
            Self::Postgres(backend) => backend.tenants().await,
            Self::Upstream { tenants, .. } => Ok(tenants.clone()),
        }
    }
}

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub tenants: usize,
    pub groups_created: u64,
    pub groups_existing: u64,
    pub suppressions_copied: u64,
    pub suppressions_existing: u64,
    /// Groups the destination cannot hold (a provider without groups), with
    /// their suppressions.
    pub groups_skipped: u64,
    pub suppressions_skipped: u64,
    /// Items a destination provider refused, with its reasons.
    pub suppressions_refused: u64,
    pub refusals: Vec<String>,
    /// Entries and groups whose text held a NUL character, copied without
    /// it: stored before hush refused NUL at its edges, and unstorable in
    /// PostgreSQL (`hush_model::has_nul`).
    pub nul_cleaned: u64,
    /// Journal entries carried to the destination.
    pub journal_carried: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tenant(s); groups: {} created, {} already there; \
             suppressions: {} copied, {} already there",
            self.tenants,
            self.groups_created,
            self.groups_existing,
            self.suppressions_copied,
            self.suppressions_existing
        )?;
        if self.journal_carried > 0 {
            write!(f, "; journal: {} entries carried", self.journal_carried)?;
        }
        if self.groups_skipped + self.suppressions_skipped > 0 {
            write!(
                f,
                "; not held by the destination: {} group(s) with {} suppression(s)",
                self.groups_skipped, self.suppressions_skipped
            )?;
        }
        if self.nul_cleaned > 0 {
            write!(
                f,
                "; {} entr(ies) or group(s) copied with NUL characters removed from their text",
                self.nul_cleaned
            )?;
        }
        if self.suppressions_refused > 0 {
            write!(
                f,
                "; refused by the destination: {} ({})",
                self.suppressions_refused,
                self.refusals.join("; ")
            )?;
        }
        Ok(())
    }
}

fn every_entry() -> ListFilter {
    ListFilter::new(KindSet::ALL, ScopeFilter::Any)
}

/// Copies everything; `progress` counts suppressions.
pub async fn copy(
    from: &Store,
    to: &Store,
    batch: u32,
    progress: &ProgressBar,
) -> anyhow::Result<Summary> {
    let batch = batch.max(1);
    let tenants = from
        .tenants()
        .await
        .context("listing the source's tenants")?;
    let mut total = 0;
    for tenant in &tenants {
        total += from.backend().count(tenant, &every_entry()).await?;
    }
    progress.set_length(total);
    let mut summary = Summary {
        tenants: tenants.len(),
        ..Summary::default()
    };
    for tenant in &tenants {
        progress.set_message(format!("tenant {tenant}"));
        let groups = copy_groups(from.backend(), to.backend(), tenant, &mut summary)
            .await
            .with_context(|| format!("copying the groups of tenant {tenant}"))?;
        carry_journal(from.backend(), to.backend(), tenant, &groups, &mut summary)
            .await
            .with_context(|| format!("carrying the journal of tenant {tenant}"))?;
        copy_suppressions(
            from.backend(),
            to.backend(),
            tenant,
            &groups,
            batch,
            progress,
            &mut summary,
        )
        .await
        .with_context(|| format!("copying the suppressions of tenant {tenant}"))?;
    }
    Ok(summary)
}

/// What the copy's own writes are journaled as.
fn copier() -> Actor {
    Actor::new(Door::COPY)
}

/// Journal entries read and appended at a time.
const JOURNAL_BATCH: u32 = 1_000;

/// Appends the source's journal of one tenant to the destination's, oldest
/// first, with group ids as the destination knows them. Entries the
/// destination already holds (same time, operation and record: an earlier
/// run) are skipped, so a re-run carries only the rest.
async fn carry_journal(
    from: &dyn Backend,
    to: &dyn Backend,
    tenant: &TenantId,
    groups: &HashMap<GroupId, GroupId>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if !from.capabilities_for(tenant).journal || !to.capabilities_for(tenant).journal {
        return Ok(());
    }
    let mut query = JournalQuery {
        order: JournalOrder::OldestFirst,
        ..JournalQuery::newest_first(JOURNAL_BATCH)
    };
    loop {
        let page = from.journal(tenant, &query).await?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            break;
        };
        query.cursor = Some(last.position);
        let full = page.len() == JOURNAL_BATCH as usize;
        let mut held = to
            .journal(
                tenant,
                &JournalQuery {
                    since: Some(first.at),
                    until: Some(last.at),
                    order: JournalOrder::OldestFirst,
                    ..JournalQuery::newest_first(u32::MAX)
                },
            )
            .await?;
        let fresh: Vec<JournalEntry> = page
            .into_iter()
            .map(|entry| with_groups_of_destination(entry, groups))
            .filter(|entry| {
                match held.iter().position(|h| {
                    h.at == entry.at && h.operation == entry.operation && h.record == entry.record
                }) {
                    Some(found) => {
                        held.swap_remove(found);
                        false
                    }
                    None => true,
                }
            })
            .collect();
        summary.journal_carried += fresh.len() as u64;
        if !fresh.is_empty() {
            to.append_journal(fresh).await?;
        }
        if !full {
            break;
        }
    }
    Ok(())
}

/// An entry with its group ids mapped to the destination's, so that a
/// restore there puts entries back into the right group.
fn with_groups_of_destination(
    mut entry: JournalEntry,
    groups: &HashMap<GroupId, GroupId>,
) -> JournalEntry {
    let map = |id: &mut GroupId| {
        if let Some(to) = groups.get(id) {
            *id = *to;
        }
    };
    match &mut entry.record {
        Recorded::Suppression(s) => {
            if let Scope::Group(id) = &mut s.scope {
                map(id);
            }
        }
        Recorded::Group { group, before } => {
            map(&mut group.id);
            if let Some(before) = before {
                map(&mut before.id);
            }
        }
    }
    entry
}

/// Creates the groups the destination lacks (matched by key) and returns
/// the map from source ids to destination ids.
async fn copy_groups(
    from: &dyn Backend,
    to: &dyn Backend,
    tenant: &TenantId,
    summary: &mut Summary,
) -> anyhow::Result<HashMap<GroupId, GroupId>> {
    let mut ids = HashMap::new();
    if !from.capabilities_for(tenant).groups {
        return Ok(ids);
    }
    let groups = from.groups(tenant).await?;
    if !to.capabilities_for(tenant).groups {
        summary.groups_skipped += groups.len() as u64;
        return Ok(ids);
    }
    for mut group in groups {
        if has_nul(&group.name) || has_nul(&group.description) {
            group.name = group.name.replace('\0', "");
            group.description = group.description.replace('\0', "");
            summary.nul_cleaned += 1;
        }
        if let Some(existing) = to.group_by_key(tenant, &group.key).await? {
            ids.insert(group.id, existing.id);
            summary.groups_existing += 1;
            continue;
        }
        let created = to
            .create_group(
                tenant,
                NewGroup {
                    key: group.key.clone(),
                    name: group.name.clone(),
                    description: group.description.clone(),
                    is_default: group.is_default,
                    stream_type: group.stream_type,
                    unsubscribe_handling: group.unsubscribe_handling,
                    created_at: group.created_at,
                },
                &copier(),
            )
            .await
            .with_context(|| format!("creating group {:?}", group.key.as_str()))?;
        if group.archived_at.is_some() || group.updated_at.is_some() {
            let changes = GroupChanges {
                archived_at: Some(group.archived_at),
                updated_at: group.updated_at,
                ..GroupChanges::default()
            };
            to.update_group(tenant, created.id, changes, &copier())
                .await?;
        }
        ids.insert(group.id, created.id);
        summary.groups_created += 1;
    }
    Ok(ids)
}

/// Walks the source newest first once to find where each batch starts,
/// then adds the batches oldest first, each oldest first: the destination's
/// ids then grow with time as the source's did.
async fn copy_suppressions(
    from: &dyn Backend,
    to: &dyn Backend,
    tenant: &TenantId,
    groups: &HashMap<GroupId, GroupId>,
    batch: u32,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let filter = every_entry();
    let holds_groups = to.capabilities_for(tenant).groups;
    let mut starts: Vec<Option<ScanCursor>> = vec![None];
    loop {
        let start = starts.last().copied().flatten();
        let page = from.scan(tenant, &filter, start, batch).await?;
        match page.last() {
            Some(last) if page.len() == batch as usize => {
                starts.push(Some(ScanCursor::after(last)));
            }
            _ => break,
        }
    }
    for start in starts.into_iter().rev() {
        let page = from.scan(tenant, &filter, start, batch).await?;
        let mut items = Vec::with_capacity(page.len());
        let mut skipped = 0;
        for entry in page.into_iter().rev() {
            let scope = match entry.scope {
                Scope::Global => Scope::Global,
                Scope::Group(_) if !holds_groups => {
                    skipped += 1;
                    continue;
                }
                Scope::Group(id) => Scope::Group(*groups.get(&id).ok_or_else(|| {
                    anyhow!(
                        "{} is in group {id}, which the source does not list",
                        entry.email
                    )
                })?),
            };
            let (kind, cleaned) = entry.kind.without_nul();
            if cleaned {
                summary.nul_cleaned += 1;
            }
            items.push(NewSuppression {
                email: entry.email,
                scope,
                kind,
                origin: entry.origin,
                created_at: entry.created_at,
            });
        }
        let count = items.len() as u64 + skipped;
        summary.suppressions_skipped += skipped;
        for outcome in to.add(tenant, items, &copier()).await? {
            match outcome {
                AddOutcome::Added { new: true, .. } => summary.suppressions_copied += 1,
                AddOutcome::Added { new: false, .. } => summary.suppressions_existing += 1,
                AddOutcome::UnknownGroup(id) => {
                    bail!("the destination lost group {id} during the copy")
                }
                // Only an upstream refuses single items (Postmark's per-item
                // `Failed`); a re-run would be refused again, so it is
                // reported, not retried.
                AddOutcome::Refused { message } => {
                    summary.suppressions_refused += 1;
                    if summary.refusals.len() < 10 {
                        summary.refusals.push(message);
                    }
                }
            }
        }
        progress.inc(count);
    }
    Ok(())
}

/// The `hush copy` command: opens both stores, copies with a progress bar
/// on stderr, prints the summary on stdout.
#[allow(clippy::print_stdout)] // the command's output
pub async fn run(
    from: StoreSpec,
    to: StoreSpec,
    batch: u32,
    config: Option<&Config>,
) -> anyhow::Result<()> {
    let source = Store::open(&from, true, config).await?;
    let destination = Store::open(&to, false, config).await?;
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} suppressions \
             ({eta} left) {msg}",
        )
        .context("progress bar template")?,
    );
    let result = copy(&source, &destination, batch, &progress).await;
    progress.finish_and_clear();
    let summary = result?;
    println!("copied {from} to {to}: {summary}");
    Ok(())
}
