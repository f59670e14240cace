//! The shared store: PostgreSQL, for several hush instances behind a load
//! balancer (docs/architecture.md, "Storage"; docs/operations.md).
//!
//! - Every instance holds a pool of connections; every write is one
//!   transaction, acknowledged once committed. Correctness under concurrent
//!   writers on other instances comes from the database, never from process
//!   state: the identity is a unique index and adds are `INSERT … ON
//!   CONFLICT DO NOTHING` (see `sql::add`), group writes of a tenant take an
//!   advisory lock, adds lock the groups they name.
//! - Transactions that PostgreSQL aborts to break a deadlock or a
//!   serialisation conflict are retried a few times.
//! - Every change is journaled in its own transaction, in an order that
//!   readers of a tenant's journal can rely on (`journal`).
//! - The schema is migrated at start under an advisory lock, so instances
//!   that start together apply each migration once (`schema`).
//! - `entries` (a send check's lookup) is answered from an in-memory mirror
//!   of every entry that each instance keeps exact from the database's
//!   change log, which triggers write in every writing transaction
//!   (`mirror`).

mod journal;
mod mirror;
mod mirror_state;
mod schema;
mod sql;

/// The backend's own listing and journal SQL, for tests that EXPLAIN it.
#[doc(hidden)]
pub use journal::journal_statements;
#[doc(hidden)]
pub use sql::{Param as SqlParam, list_statements};

use std::fmt;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, EngineError, ReceivedEvent};
use hush_model::{
    Actor, Email, Group, GroupChanges, GroupId, GroupKey, JournalEntry, JournalQuery, ListFilter,
    MirrorFailure, MirrorName, MirrorState, NewGroup, NewSuppression, Page, PageRequest, Position,
    ScanCursor, Suppression, SuppressionId, TenantId, Timestamp,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};

const NAME: &str = "postgres";

/// Connections per instance unless told otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 10;
/// How long to wait for a connection (including opening one) unless told
/// otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a transaction that PostgreSQL aborted to resolve a deadlock or
/// a serialisation conflict is run again before the error is returned.
const RETRIES: usize = 8;

/// Where the database is and how it is served.
#[derive(Clone)]
pub struct PostgresOptions {
    connect: PgConnectOptions,
    /// Most connections this instance opens.
    pub pool_size: u32,
    /// How long a request waits for a connection, opening one included.
    pub connect_timeout: Duration,
    /// Most MiB the lookup mirror (`mirror.rs`) may hold; 0 turns it off
    /// (every lookup is then its own query).
    pub lookup_index_mib: usize,
}

impl PostgresOptions {
    /// Options for a `postgres://user:password@host:port/database?…` URL
    /// (libpq's format, `sslmode` included). The error never repeats the
    /// URL, which may hold a password.
    pub fn from_url(url: &str) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("a PostgreSQL URL starts with postgres:// or postgresql://".to_owned());
        }
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| format!("not a PostgreSQL connection URL: {e}"))?
            .application_name("hush");
        Ok(Self {
            connect,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            lookup_index_mib: crate::lookup_index::DEFAULT_LOOKUP_INDEX_MIB,
        })
    }

    /// The same server, another database.
    #[must_use]
    pub fn with_database(mut self, database: &str) -> Self {
        self.connect = self.connect.database(database);
        self
    }

    /// `host:port/database`, for logs and errors: no user, no password.
    pub fn location(&self) -> String {
        format!(
            "{}:{}/{}",
            self.connect.get_host(),
            self.connect.get_port(),
            self.connect.get_database().unwrap_or("")
        )
    }

    /// Opens one connection outside any pool (for maintenance such as
    /// creating databases).
    pub async fn connect_once(&self) -> Result<PgConnection, EngineError> {
        tokio::time::timeout(
            self.connect_timeout,
            PgConnection::connect_with(&self.connect),
        )
        .await
        .map_err(|_| self.unreachable("timed out"))?
        .map_err(|e| self.unreachable(e))
    }

    /// Creates a database on this server (connecting to the database these
    /// options name): for tests and tooling that need a fresh store.
    /// `name` must be a plain identifier (letters, digits, `_`).
    pub async fn create_database(&self, name: &str) -> Result<(), EngineError> {
        let sql = format!("CREATE DATABASE {}", plain_identifier(name)?);
        self.maintenance(sql).await
    }

    /// Drops a database of this server if it exists, ending its sessions
    /// (`WITH (FORCE)`).
    pub async fn drop_database(&self, name: &str) -> Result<(), EngineError> {
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            plain_identifier(name)?
        );
        self.maintenance(sql).await
    }

    async fn maintenance(&self, sql: String) -> Result<(), EngineError> {
        let mut conn = self.connect_once().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| EngineError::from(StoreError::from(e)))?;
        conn.close().await.ok();
        Ok(())
    }

    fn unreachable(&self, why: impl fmt::Display) -> EngineError {
        EngineError::Unavailable {
            backend: NAME,
            reason: format!("cannot connect to PostgreSQL at {}: {why}", self.location()),
        }
    }
}

/// A database name that needs no quoting, so that it can be spliced into
/// `CREATE DATABASE`, which takes no parameters.
fn plain_identifier(name: &str) -> Result<&str, EngineError> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        Ok(name)
    } else {
        Err(EngineError::internal(
            NAME,
            format!("{name:?} is not a plain database name (a-z, 0-9, _)"),
        ))
    }
}

// The connect options hold the password: show where, not who.
impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("location", &self.location())
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("lookup_index_mib", &self.lookup_index_mib)
            .finish()
    }
}

/// What goes wrong inside the store, before it becomes an [`EngineError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    #[error("{0}")]
    Setup(String),
    #[error("the database holds a value this build cannot read: {0}")]
    Corrupt(String),
    #[error("concurrent writers kept conflicting: {0}")]
    Contention(String),
    #[error("a group with key {0:?} already exists")]
    KeyTaken(String),
    #[error("a group named {0:?} already exists")]
    NameTaken(String),
}

impl StoreError {
    /// Whether PostgreSQL aborted the transaction to resolve a deadlock
    /// (40P01) or a serialisation conflict (40001): running it again is
    /// correct and will most likely succeed.
    fn is_transient(&self) -> bool {
        let Self::Postgres(err) = self else {
            return false;
        };
        err.as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code == "40P01" || code == "40001")
    }

    /// Whether the database cannot be reached (as opposed to refusing a
    /// statement): `/readyz` and clients see "unavailable", not a fault.
    fn is_unreachable(&self) -> bool {
        let Self::Postgres(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // Class 08: connection exceptions; 57P0x: the server is shutting
            // down or restarting; 53300: too many connections; class 28:
            // the login was refused; 3D000: the database does not exist;
            // 53100: the server's disk is full, so nothing can be written
            // until space is freed (clients get a 503 with Retry-After).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("57P0")
                    || code.starts_with("28")
                    || code == "53300"
                    || code == "53100"
                    || code == "3D000"
            }),
            _ => false,
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        if err.is_unreachable() {
            return Self::Unavailable {
                backend: NAME,
                reason: err.to_string(),
            };
        }
        match err {
            StoreError::KeyTaken(key) => Self::GroupKeyTaken(key),
            StoreError::NameTaken(name) => Self::GroupNameTaken(name),
            other => Self::internal(NAME, other),
        }
    }
}

/// Suppressions in a PostgreSQL database shared by any number of hush
/// instances. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PostgresBackend {
    pool: PgPool,
    location: String,
    shown_ids: hush_model::ShownIds,
    /// `None` when `lookup_index_mib` is 0.
    mirror: Option<Arc<mirror::Mirror>>,
    counters: Arc<mirror::Counters>,
}

/// How a transaction reads.
#[derive(Debug, Clone, Copy)]
enum Isolation {
    /// The default: every statement sees what committed before it began.
    ReadCommitted,
    /// One snapshot for the whole transaction, read only.
    Snapshot,
}

impl PostgresBackend {
    /// Connects, applies pending migrations, and keeps a pool of up to
    /// `pool_size` connections. Fails, naming the server (never the
    /// password), when the database cannot be reached within
    /// `connect_timeout`.
    pub async fn connect(options: PostgresOptions) -> Result<Self, EngineError> {
        let location = options.location();
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_lazy_with(options.connect.clone());
        let mut conn = pool.acquire().await.map_err(|e| options.unreachable(e))?;
        schema::migrate(&mut conn)
            .await
            .map_err(EngineError::from)?;
        let shown_ids = schema::shown_ids(&mut conn)
            .await
            .map_err(EngineError::from)?;
        drop(conn);
        let counters = Arc::new(mirror::Counters::default());
        let mirror = match options.lookup_index_mib {
            0 => None,
            mib => Some(
                mirror::Mirror::open(
                    pool.clone(),
                    &options,
                    mib.saturating_mul(1 << 20),
                    Arc::clone(&counters),
                )
                .await?,
            ),
        };
        tracing::info!(
            location = %location,
            pool_size = options.pool_size,
            lookup_index_mib = options.lookup_index_mib,
            "opened postgres store"
        );
        Ok(Self {
            pool,
            location,
            mirror,
            counters,
            shown_ids,
        })
    }

    /// How many lookups PostgreSQL has answered itself (the mirror off, or
    /// their tenant over its budget): shows, in tests, that the mirror
    /// serves.
    pub fn entry_reads(&self) -> u64 {
        self.counters.reads.load(Ordering::Relaxed)
    }

    /// How many steps the mirror has run for waiting lookups: one answers
    /// every lookup that was waiting when it started.
    pub fn mirror_steps(&self) -> u64 {
        self.counters.rounds.load(Ordering::Relaxed)
    }

    /// How many times the mirror was built from a fresh snapshot (once at
    /// start, then only when the change log could not say what changed).
    pub fn mirror_builds(&self) -> u64 {
        self.counters.rebuilds.load(Ordering::Relaxed)
    }

    /// Prunes the change log below what this instance's mirror holds now,
    /// without waiting out the retention; returns the rows deleted. For
    /// tests of what pruning does to other instances.
    #[doc(hidden)]
    pub async fn prune_change_log_now(&self) -> Result<u64, EngineError> {
        match &self.mirror {
            Some(mirror) => mirror.prune_now().await,
            None => Ok(0),
        }
    }

    /// Addresses the mirror holds now (0 without it).
    pub fn mirrored_addresses(&self) -> usize {
        self.mirror.as_ref().map_or(0, |mirror| mirror.addresses())
    }

    /// `host:port/database` of the store.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every tenant that has a suppression or a group, in order: what a
    /// copy of the whole store walks (the `Backend` trait is per tenant).
    pub async fn tenants(&self) -> Result<Vec<TenantId>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::tenants(&mut conn).await?)
    }

    /// Closes every connection; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Starts a transaction on a pooled connection.
    async fn begin(
        &self,
        isolation: Isolation,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Isolation::Snapshot = isolation {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

/// Runs `$body` (a future using `$conn: &mut PgConnection`) in one
/// transaction and commits it; runs it again, up to [`RETRIES`] times, when
/// PostgreSQL aborted it as a deadlock victim or for a serialisation
/// conflict. A macro rather than a function taking an async closure: the
/// trait's futures must be `Send`, which a closure over borrowed arguments
/// cannot yet promise for every lifetime.
/// `|conn, retry|` also binds `retry: bool`, true when this run follows an
/// aborted one.
macro_rules! in_transaction {
    ($backend:expr, $isolation:expr, |$conn:ident| $body:expr) => {
        in_transaction!($backend, $isolation, |$conn, _retry| $body)
    };
    ($backend:expr, $isolation:expr, |$conn:ident, $retry:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let $retry = attempt > 1;
            let result: Result<_, StoreError> = async {
                let mut tx = $backend.begin($isolation).await?;
                let value = {
                    let $conn: &mut PgConnection = &mut tx;
                    $body.await?
                };
                tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Err(err) if err.is_transient() && attempt <= RETRIES => {
                    tracing::debug!(attempt, error = %err, "retrying a postgres transaction");
                }
                other => break other.map_err(EngineError::from),
            }
        }
    }};
}

#[async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn shown_ids(&self, _tenant: &TenantId) -> Option<&hush_model::ShownIds> {
        Some(&self.shown_ids)
    }

    async fn ready(&self) -> Result<(), EngineError> {
        let mut conn = self.conn().await?;
        sqlx::query("SELECT 1")
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        Ok(())
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
        in_transaction!(self, Isolation::ReadCommitted, |conn, retry| sql::add(
            conn, tenant, &items, retry, actor
        ))
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        if let Some(mirror) = &self.mirror {
            return mirror.lookup(tenant, email).await;
        }
        let mut conn = self.conn().await?;
        let found = sql::entries(&mut conn, tenant, email).await?;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        Ok(found)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        in_transaction!(self, Isolation::Snapshot, |conn| sql::list(
            conn, tenant, filter, page
        ))
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::count(&mut conn, tenant, filter).await?)
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::scan(&mut conn, tenant, filter, after, limit).await?)
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        in_transaction!(self, Isolation::ReadCommitted, |conn| sql::remove_matching(
            conn, tenant, filter, actor
        ))
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
        in_transaction!(self, Isolation::ReadCommitted, |conn| sql::remove_ids(
            conn, tenant, ids, actor
        ))
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        in_transaction!(self, Isolation::ReadCommitted, |conn| sql::create_group(
            conn,
            tenant,
            group.clone(),
            actor
        ))
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::group(&mut conn, tenant, id).await?)
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::group_by_key(&mut conn, tenant, key).await?)
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::groups(&mut conn, tenant).await?)
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        in_transaction!(self, Isolation::ReadCommitted, |conn| sql::update_group(
            conn,
            tenant,
            id,
            changes.clone(),
            actor
        ))
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        in_transaction!(self, Isolation::ReadCommitted, |conn| sql::delete_group(
            conn, tenant, id, actor
        ))
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
        in_transaction!(self, Isolation::ReadCommitted, |conn| sql::put_back(
            conn, tenant, &items, actor
        ))
    }

    async fn put_back_group(
        &self,
        tenant: &TenantId,
        group: Group,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        in_transaction!(self, Isolation::ReadCommitted, |conn| sql::put_back_group(
            conn,
            tenant,
            group.clone(),
            actor
        ))
    }

    async fn journal(
        &self,
        tenant: &TenantId,
        query: &JournalQuery,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(journal::read(&mut conn, tenant, query).await?)
    }

    async fn journal_all(
        &self,
        after: Option<Position>,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(journal::read_all(&mut conn, after, limit).await?)
    }

    async fn append_journal(&self, entries: Vec<JournalEntry>) -> Result<(), EngineError> {
        if entries.is_empty() {
            return Ok(());
        }
        in_transaction!(self, Isolation::ReadCommitted, |conn| journal::append(
            conn, &entries
        ))
    }

    async fn prune_journal(&self, before: Timestamp, limit: u32) -> Result<u64, EngineError> {
        let mut conn = self.conn().await?;
        Ok(journal::prune(&mut conn, before, limit).await?)
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
        in_transaction!(self, Isolation::ReadCommitted, |conn, retry| {
            sql::apply_events(conn, tenant, hook, &events, retry, actor)
        })
    }

    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::events_seen(&mut conn, tenant, hook, keys).await?)
    }

    async fn mirror_state(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
    ) -> Result<MirrorState, EngineError> {
        let mut conn = self.conn().await?;
        Ok(mirror_state::state(&mut conn, tenant, mirror).await?)
    }

    async fn save_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        state: &MirrorState,
        failures: &[MirrorFailure],
    ) -> Result<(), EngineError> {
        let mut tx = self.begin(Isolation::ReadCommitted).await?;
        mirror_state::save(&mut tx, tenant, mirror, state, failures).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    async fn mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        limit: u32,
    ) -> Result<Vec<MirrorFailure>, EngineError> {
        let mut conn = self.conn().await?;
        Ok(mirror_state::failures(&mut conn, tenant, mirror, limit).await?)
    }

    async fn clear_mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        positions: &[Position],
    ) -> Result<(), EngineError> {
        let mut conn = self.conn().await?;
        Ok(mirror_state::clear(&mut conn, tenant, mirror, positions).await?)
    }

    async fn lease_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, EngineError> {
        let mut conn = self.conn().await?;
        Ok(mirror_state::lease(&mut conn, tenant, mirror, holder, ttl).await?)
    }

    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        let mut conn = self.conn().await?;
        Ok(sql::prune_receipts(&mut conn, before).await?)
    }
}
