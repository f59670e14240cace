//! The embedded store: one SQLite file in WAL mode (DESIGN.md, "Backends").
//!
//! - Every write goes through one writer thread that owns the only write
//!   connection and commits many commands per fsync (group commit; see
//!   `writer`). A write is acknowledged only once it is durable
//!   (`synchronous=FULL`).
//! - Reads run on a small pool of read-only connections: listings, counts
//!   and scans on tokio's blocking threads, point lookups of one address on
//!   the caller's thread.
//! - The schema is migrated at open and versioned with `PRAGMA user_version`.

mod pool;
mod schema;
pub(crate) mod sql;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, EngineError};
use hush_model::{
    Email, Group, GroupChanges, GroupId, GroupKey, ListFilter, NewGroup, NewSuppression, Page,
    PageRequest, ScanCursor, Suppression, SuppressionId, TenantId,
};

use pool::ReadPool;
use writer::Writer;

const NAME: &str = "sqlite";

/// How many read-only connections a backend opens unless told otherwise.
pub const DEFAULT_READ_CONNECTIONS: usize = 4;

/// Where the database lives and how it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file. Missing parent directories are created. SQLite
    /// keeps `-wal` and `-shm` files beside it.
    pub path: PathBuf,
    /// How many reads may run at once, each on its own read-only
    /// connection. At least 1.
    pub read_connections: usize,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            read_connections: DEFAULT_READ_CONNECTIONS,
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

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
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
    // Declared first so it drops first: queued writes finish before the read
    // connections close.
    writer: Writer,
    readers: Arc<ReadPool>,
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
        } = options;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Setup(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let mut conn = schema::open_writer(&path)?;
        schema::migrate(&mut conn)?;
        let readers = Arc::new(ReadPool::open(path.clone(), read_connections)?);
        let writer = Writer::spawn(conn)?;
        tracing::info!(path = %path.display(), read_connections, "opened sqlite store");
        Ok(Self {
            path,
            writer,
            readers,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tenant that has a suppression or a group, in order: what a
    /// copy of the whole store walks (the `Backend` trait is per tenant).
    pub async fn tenants(&self) -> Result<Vec<TenantId>, EngineError> {
        self.readers.run(|conn| sql::tenants(conn)).await
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn ready(&self) -> Result<(), EngineError> {
        if !self.writer.is_running() {
            return Err(EngineError::Unavailable {
                backend: NAME,
                reason: "the writer thread has stopped".into(),
            });
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
    ) -> Result<Vec<AddOutcome>, EngineError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let tenant = tenant.clone();
        self.writer
            .run(items.len(), move |conn| sql::add(conn, &tenant, items))
            .await
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        // A point read on the identity index: inline (see `run_inline`).
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
    ) -> Result<u64, EngineError> {
        let (tenant, filter) = (tenant.clone(), filter.clone());
        self.writer
            .run(1, move |conn| sql::remove_matching(conn, &tenant, &filter))
            .await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
    ) -> Result<u64, EngineError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (tenant, ids) = (tenant.clone(), ids.to_vec());
        self.writer
            .run(ids.len(), move |conn| sql::remove_ids(conn, &tenant, &ids))
            .await
    }

    async fn create_group(&self, tenant: &TenantId, group: NewGroup) -> Result<Group, EngineError> {
        let tenant = tenant.clone();
        self.writer
            .run(1, move |conn| sql::create_group(conn, &tenant, group))
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
    ) -> Result<Option<Group>, EngineError> {
        let tenant = tenant.clone();
        self.writer
            .run(1, move |conn| sql::update_group(conn, &tenant, id, changes))
            .await
    }

    async fn delete_group(&self, tenant: &TenantId, id: GroupId) -> Result<bool, EngineError> {
        let tenant = tenant.clone();
        self.writer
            .run(1, move |conn| sql::delete_group(conn, &tenant, id))
            .await
    }
}
