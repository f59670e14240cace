//! The embedded store: one SQLite file in WAL mode (docs/architecture.md,
//! "Storage").
//!
//! - Every write goes through one writer thread that owns the only write
//!   connection and commits many commands per fsync (group commit; see
//!   `writer`). A write is acknowledged only once it is durable
//!   (`synchronous=FULL`).
//! - Reads run on a small pool of read-only connections: listings, counts
//!   and scans on tokio's blocking threads, point lookups of one address on
//!   the caller's thread.
//! - The schema is migrated at open and versioned with `PRAGMA user_version`.
//! - Every change writes its journal entries (`sql::Journal`) inside the
//!   writer command that makes it, so they commit or roll back with it; the
//!   single writer makes commit order the journal's position order.
//! - One backend serves a file at a time, across processes too: it holds an
//!   exclusive lock on `<file>.lock` while open. That is what lets lookups
//!   trust the in-process [`addresses::AddressFilter`]: no write reaches the
//!   file behind its back. Several instances share PostgreSQL instead.

mod addresses;
mod batch_pack;
mod mirrors;
mod pool;
mod schema;
pub(crate) mod sql;
mod writer;

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, EngineError, EventChange, ReceivedEvent};
use hush_model::{
    Actor, Email, Group, GroupChanges, GroupId, GroupKey, JournalEntry, JournalQuery, ListFilter,
    MirrorFailure, MirrorName, MirrorState, NewGroup, NewSuppression, Page, PageRequest, Position,
    ScanCursor, Suppression, SuppressionId, TenantId, Timestamp,
};

use crate::lookup_index::{Change, LookupIndex};
use addresses::AddressFilter;
use pool::ReadPool;
use writer::Writer;

const NAME: &str = "sqlite";

/// How many read-only connections a backend opens unless told otherwise.
pub const DEFAULT_READ_CONNECTIONS: usize = 4;
/// The lookup index's budget unless told otherwise, in MiB.
pub use crate::lookup_index::DEFAULT_LOOKUP_INDEX_MIB;

/// Where the database lives and how it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file. Missing parent directories are created. SQLite
    /// keeps `-wal` and `-shm` files beside it.
    pub path: PathBuf,
    /// How many reads may run at once, each on its own read-only
    /// connection. At least 1.
    pub read_connections: usize,
    /// Most MiB the in-memory lookup index may hold (index.rs); 0 turns
    /// it off.
    pub lookup_index_mib: usize,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            read_connections: DEFAULT_READ_CONNECTIONS,
            lookup_index_mib: DEFAULT_LOOKUP_INDEX_MIB,
        }
    }
}

/// What goes wrong inside the store, before it becomes an [`EngineError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Setup(String),
    #[error("a group with key {0:?} already exists")]
    KeyTaken(String),
    #[error("a group named {0:?} already exists")]
    NameTaken(String),
}

impl StoreError {
    /// Whether SQLite refused the write for lack of space: the disk is
    /// full, or the file reached `max_page_count` (SQLITE_FULL; SQLite's
    /// unix VFS reports ENOSPC as it).
    pub(crate) fn is_full(&self) -> bool {
        matches!(self, Self::Sqlite(err) if is_full(err))
    }
}

pub(crate) fn is_full(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// What clients are told while the store cannot write.
pub(crate) const FULL: &str =
    "the database's disk is full: nothing can be written until space is freed";

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        if err.is_full() {
            return Self::Unavailable {
                backend: NAME,
                reason: FULL.to_owned(),
            };
        }
        match err {
            StoreError::KeyTaken(key) => Self::GroupKeyTaken(key),
            StoreError::NameTaken(name) => Self::GroupNameTaken(name),
            other @ (StoreError::Sqlite(_) | StoreError::Setup(_)) => Self::internal(NAME, other),
        }
    }
}

/// Suppressions in one SQLite file. Cheap to share behind an `Arc`; dropping
/// the last handle stops the writer thread and closes the file.
#[derive(Debug)]
pub struct SqliteBackend {
    path: PathBuf,
    shown_ids: hush_model::ShownIds,
    // Declared first so it drops first: queued writes finish before the read
    // connections close.
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Answers lookups of the tenants it covers; the filter and SQLite the
    /// others.
    index: Arc<LookupIndex>,
    addresses: AddressFilter,
    /// Lookups SQLite answered itself (see [`SqliteBackend::entry_reads`]).
    entry_reads: AtomicU64,
    /// The lock on `<file>.lock`, held while the backend is open.
    _serving: File,
}

impl SqliteBackend {
    /// Opens (or creates) the database, applies pending migrations, opens the
    /// read pool and starts the writer thread. Blocking: call it at start-up,
    /// or from `spawn_blocking`.
    pub fn open(options: SqliteOptions) -> Result<Self, EngineError> {
        Self::try_open(options).map_err(EngineError::from)
    }

    fn try_open(options: SqliteOptions) -> Result<Self, StoreError> {
        let SqliteOptions {
            path,
            read_connections,
            lookup_index_mib,
        } = options;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Setup(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let serving = lock_for_serving(&path)?;
        let mut conn = schema::open_writer(&path)?;
        schema::migrate(&mut conn)?;
        let shown_ids = sql::shown_ids(&conn)?;
        let addresses = sql::address_filter(&conn)?;
        let index = Arc::new(LookupIndex::new(lookup_index_mib.saturating_mul(1 << 20)));
        sql::fill_index(&conn, &index)?;
        let readers = Arc::new(ReadPool::open(path.clone(), read_connections)?);
        let writer = Writer::spawn(conn)?;
        tracing::info!(path = %path.display(), read_connections, ?addresses, ?index, "opened sqlite store");
        Ok(Self {
            path,
            shown_ids,
            writer,
            readers,
            index,
            addresses,
            entry_reads: AtomicU64::new(0),
            _serving: serving,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many lookups SQLite has answered itself (the index off, or
    /// their tenant over its budget, and the address filter unsure): shows,
    /// in tests, that the lookup index serves. A test hook, like
    /// `PostgresBackend::entry_reads`.
    #[doc(hidden)]
    pub fn entry_reads(&self) -> u64 {
        self.entry_reads.load(Ordering::Relaxed)
    }

    /// How many write transactions have committed: tests count them to
    /// show that a bulk change is a few transactions, not one per address.
    #[doc(hidden)]
    pub fn write_commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Every tenant that has a suppression or a group, in order: what a
    /// copy of the whole store walks (the `Backend` trait is per tenant).
    pub async fn tenants(&self) -> Result<Vec<TenantId>, EngineError> {
        self.readers.run(|conn| sql::tenants(conn)).await
    }
}

impl SqliteBackend {
    /// Runs a removal on the writer and, once it is committed, takes what
    /// it removed out of the lookup index. Returns how many entries went.
    async fn removing<F>(
        &self,
        tenant: &TenantId,
        weight: usize,
        work: F,
    ) -> Result<u64, EngineError>
    where
        F: FnOnce(&rusqlite::Connection, &TenantId) -> Result<sql::Removed, StoreError>
            + Send
            + 'static,
    {
        let (index, work_tenant) = (Arc::clone(&self.index), tenant.clone());
        let tenant = tenant.clone();
        let removed = self
            .writer
            .run_then(
                weight,
                move |conn| work(conn, &work_tenant),
                move |removed: &sql::Removed| index.apply(&tenant, &removals(removed)),
            )
            .await?;
        Ok(removed.len() as u64)
    }
}

fn removals(removed: &sql::Removed) -> Vec<Change<'_>> {
    removed
        .iter()
        .map(|(email, id)| Change::Removed(email, *id))
        .collect()
}

/// Takes the exclusive lock that makes this backend the only one serving
/// `path`, or says who holds it. An advisory `flock` on a file beside the
/// database, released by the kernel when the process ends however it ends,
/// so a `kill -9` never leaves the file locked.
fn lock_for_serving(path: &Path) -> Result<File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Setup(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Setup(format!(
            "{} is in use by another hush (it holds {}): one process serves a SQLite file; \
             stop it first, or run several instances on PostgreSQL",
            path.display(),
            lock_path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(StoreError::Setup(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn shown_ids(&self, _tenant: &TenantId) -> Option<&hush_model::ShownIds> {
        Some(&self.shown_ids)
    }

    async fn ready(&self) -> Result<(), EngineError> {
        if !self.writer.is_running() {
            return Err(EngineError::Unavailable {
                backend: NAME,
                reason: "the writer thread has stopped".into(),
            });
        }
        // Not ready while writes do not fit. Only a write can tell when
        // they fit again, and one must be tried even when no client writes
        // (a balancer stops sending them), so readiness probes, at most
        // once per interval.
        if self.writer.is_full() {
            self.writer.probe().await?;
        }
        self.readers
            .run(|conn| {
                conn.query_row("SELECT 1", [], |_| Ok(()))
                    .map_err(StoreError::from)
            })
            .await
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Into the filter before the write is queued: a lookup racing the
        // commit may read SQLite for nothing, but never skips a committed
        // entry (addresses.rs).
        for item in &items {
            self.addresses.insert(tenant, &item.email);
        }
        let tenant = tenant.clone();
        let index = Arc::clone(&self.index);
        let weight = items.len();
        let (work_tenant, actor) = (tenant.clone(), actor.clone());
        self.writer
            .run_then(
                weight,
                move |conn| sql::add(conn, &work_tenant, items, &actor),
                move |outcomes: &Vec<AddOutcome>| {
                    let changes: Vec<Change<'_>> = outcomes
                        .iter()
                        .filter_map(|outcome| match outcome {
                            AddOutcome::Added {
                                suppression,
                                new: true,
                            } => Some(Change::Added(suppression)),
                            _ => None,
                        })
                        .collect();
                    index.apply(&tenant, &changes);
                },
            )
            .await
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        if let Some(found) = self.index.entries(tenant, email) {
            return Ok(found);
        }
        if !self.addresses.may_hold(tenant, email) {
            return Ok(Vec::new());
        }
        // A point read on the identity index: inline (see `run_inline`).
        self.entry_reads.fetch_add(1, Ordering::Relaxed);
        self.readers
            .run_inline(|conn| sql::entries(conn, tenant, email))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        let (tenant, filter) = (tenant.clone(), filter.clone());
        self.readers
            .run(move |conn| sql::list(conn, &tenant, &filter, page))
            .await
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        let (tenant, filter) = (tenant.clone(), filter.clone());
        self.readers
            .run(move |conn| sql::count(conn, &tenant, &filter))
            .await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        let (tenant, filter) = (tenant.clone(), filter.clone());
        self.readers
            .run(move |conn| sql::scan(conn, &tenant, &filter, after, limit))
            .await
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        let (tenant, filter, actor) = (tenant.clone(), filter.clone(), actor.clone());
        self.removing(&tenant, 1, move |conn, tenant| {
            sql::remove_matching(conn, tenant, &filter, &actor)
        })
        .await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        if ids.is_empty() {
            return Ok(0);
        }
        // Each id once, in order, as the memory store takes them: a repeated
        // id removes one entry and journals it once either way.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let actor = actor.clone();
        self.removing(tenant, ids.len(), move |conn, tenant| {
            sql::remove_ids(conn, tenant, &ids, &actor)
        })
        .await
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        let (tenant, actor) = (tenant.clone(), actor.clone());
        self.writer
            .run(1, move |conn| {
                sql::create_group(conn, &tenant, group, &actor)
            })
            .await
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        let tenant = tenant.clone();
        self.readers
            .run(move |conn| sql::group(conn, &tenant, id))
            .await
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        let (tenant, key) = (tenant.clone(), key.clone());
        self.readers
            .run(move |conn| sql::group_by_key(conn, &tenant, &key))
            .await
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        let tenant = tenant.clone();
        self.readers
            .run(move |conn| sql::groups(conn, &tenant))
            .await
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        let (tenant, actor) = (tenant.clone(), actor.clone());
        self.writer
            .run(1, move |conn| {
                sql::update_group(conn, &tenant, id, changes, &actor)
            })
            .await
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        let (index, work_tenant) = (Arc::clone(&self.index), tenant.clone());
        let (tenant, actor) = (tenant.clone(), actor.clone());
        let removed = self
            .writer
            .run_then(
                1,
                move |conn| sql::delete_group(conn, &work_tenant, id, &actor),
                move |removed: &Option<sql::Removed>| {
                    if let Some(removed) = removed {
                        index.apply(&tenant, &removals(removed));
                    }
                },
            )
            .await?;
        Ok(removed.is_some())
    }

    async fn put_back(
        &self,
        tenant: &TenantId,
        items: Vec<Suppression>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Into the filter before the write, as for an add.
        for item in &items {
            self.addresses.insert(tenant, &item.email);
        }
        let (index, tenant) = (Arc::clone(&self.index), tenant.clone());
        let (work_tenant, actor) = (tenant.clone(), actor.clone());
        let put = self
            .writer
            .run_then(
                items.len(),
                move |conn| sql::put_back(conn, &work_tenant, items, &actor),
                move |put: &sql::PutBack| {
                    let changes: Vec<Change<'_>> = put.put.iter().map(Change::Added).collect();
                    index.apply(&tenant, &changes);
                },
            )
            .await?;
        Ok(put.outcomes)
    }

    async fn put_back_group(
        &self,
        tenant: &TenantId,
        group: Group,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        let (tenant, actor) = (tenant.clone(), actor.clone());
        self.writer
            .run(1, move |conn| {
                sql::put_back_group(conn, &tenant, group, &actor)
            })
            .await
    }

    async fn journal(
        &self,
        tenant: &TenantId,
        query: &JournalQuery,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.readers
            .run(move |conn| sql::journal(conn, &tenant, &query))
            .await
    }

    async fn journal_all(
        &self,
        after: Option<Position>,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        self.readers
            .run(move |conn| sql::journal_all(conn, after, limit))
            .await
    }

    async fn append_journal(&self, entries: Vec<JournalEntry>) -> Result<(), EngineError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.writer
            .run(entries.len(), move |conn| {
                sql::append_journal(conn, &entries)
            })
            .await
    }

    async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Into the filter before the write is queued, as `add` does.
        for event in &events {
            for change in &event.changes {
                if let EventChange::Add(item) = change {
                    self.addresses.insert(tenant, &item.email);
                }
            }
        }
        let weight = events.iter().map(|e| e.changes.len().max(1)).sum();
        let (index, work_tenant, tenant) =
            (Arc::clone(&self.index), tenant.clone(), tenant.clone());
        let (hook, actor) = (hook.to_owned(), actor.clone());
        let applied = self
            .writer
            .run_then(
                weight,
                move |conn| sql::apply_events(conn, &work_tenant, &hook, events, &actor),
                move |applied: &sql::EventsApplied| {
                    let changes: Vec<Change<'_>> = applied
                        .changes
                        .iter()
                        .map(|change| match change {
                            sql::Applied::Added(suppression) => Change::Added(suppression),
                            sql::Applied::Removed(email, id) => Change::Removed(email, *id),
                        })
                        .collect();
                    index.apply(&tenant, &changes);
                },
            )
            .await?;
        Ok(applied.fresh)
    }

    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        let (tenant, hook, keys) = (tenant.clone(), hook.to_owned(), keys.to_vec());
        self.readers
            .run(move |conn| sql::events_seen(conn, &tenant, &hook, &keys))
            .await
    }

    async fn mirror_state(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
    ) -> Result<MirrorState, EngineError> {
        let (tenant, mirror) = (tenant.clone(), mirror.clone());
        self.readers
            .run(move |conn| mirrors::state(conn, &tenant, &mirror))
            .await
    }

    async fn save_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        state: &MirrorState,
        failures: &[MirrorFailure],
    ) -> Result<(), EngineError> {
        let (tenant, mirror, state, failures) = (
            tenant.clone(),
            mirror.clone(),
            state.clone(),
            failures.to_vec(),
        );
        self.writer
            .run(1 + failures.len(), move |conn| {
                mirrors::save(conn, &tenant, &mirror, &state, &failures)
            })
            .await
    }

    async fn mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        limit: u32,
    ) -> Result<Vec<MirrorFailure>, EngineError> {
        let (tenant, mirror) = (tenant.clone(), mirror.clone());
        self.readers
            .run(move |conn| mirrors::failures(conn, &tenant, &mirror, limit))
            .await
    }

    async fn clear_mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        positions: &[Position],
    ) -> Result<(), EngineError> {
        let (tenant, mirror, positions) = (tenant.clone(), mirror.clone(), positions.to_vec());
        self.writer
            .run(positions.len(), move |conn| {
                mirrors::clear(conn, &tenant, &mirror, &positions)
            })
            .await
    }

    async fn lease_mirror(
        &self,
        _tenant: &TenantId,
        _mirror: &MirrorName,
        _holder: &str,
        _ttl: std::time::Duration,
    ) -> Result<bool, EngineError> {
        // One process serves the file (the lock on `<file>.lock`).
        Ok(true)
    }

    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        self.writer
            .run(1, move |conn| sql::prune_receipts(conn, before))
            .await
    }

    async fn prune_journal(&self, before: Timestamp, limit: u32) -> Result<u64, EngineError> {
        if limit == 0 {
            return Ok(0);
        }
        self.writer
            .run(limit as usize, move |conn| {
                sql::prune_journal(conn, before, limit)
            })
            .await
    }
}
