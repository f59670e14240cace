//! The lookup mirror: every instance keeps every entry of every address in
//! memory (the lookup index, `lookup_index.rs`) and answers a send check
//! from it, exact across any number of instances on one database.
//!
//! Why it is current: triggers on `suppressions` log every changed address
//! in the writing transaction, named by that transaction's id (`schema`,
//! migration 3). The mirror is built from one snapshot of the table and
//! then moved forward a snapshot at a time: a statement reads, in its own
//! snapshot, every address whose change the previous snapshot did not
//! see, with what the address holds now (`sql::changes_since`). Replacing
//! those addresses makes the mirror exactly what a read in the new
//! snapshot returns. Commit order does not matter: a transaction is either
//! seen by a snapshot or not, and a later snapshot sees everything an
//! earlier one saw.
//!
//! Why it is exact: a lookup is answered only after such a step whose
//! statement started after the lookup arrived. Any write acknowledged
//! before then, on any instance, had committed, so the step's snapshot
//! sees it. Lookups share steps: one runs at a time, and every lookup that
//! arrives while it runs waits for the next, which then answers them all
//! with one round trip. Between lookups an idle instance steps once a
//! second ([`IDLE_STEP`]), so that a burst of writes elsewhere is applied
//! before the next send check needs it.
//!
//! When the log cannot say what changed, the mirror is built again from a
//! fresh snapshot: at start, when pruning has deleted past the snapshot it
//! holds, when the server's transaction counter went back or its start time
//! changed (a restart, a restore, a failover), and after a TRUNCATE. A step
//! that fails or times out ([`STEP_TIMEOUT`]) leaves the snapshot where it
//! was, and its lookups read PostgreSQL themselves; the next step replaces
//! every address again, which is idempotent.
//!
//! A tenant the index cannot hold (over `storage.lookup_index_mib`) is read
//! from PostgreSQL for each lookup, as is every lookup with the index off.
//! Such a read starts after the lookup arrived, so it is exact too.
//!
//! The log is pruned by each instance as it steps ([`PRUNE_EVERY`]): below
//! the oldest transaction its snapshot of [`RETENTION`] ago still had
//! running. An instance that stopped stepping for longer rebuilds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use hush_engine::EngineError;
use hush_model::{Email, Suppression, TenantId};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};
use tokio::sync::oneshot;

use super::{NAME, StoreError, sql};
use crate::lookup_index::{Change, LookupIndex};

/// How often an instance without lookups applies the log anyway.
const IDLE_STEP: Duration = Duration::from_secs(1);
/// How often an instance prunes the change log.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long the log keeps a change after every transaction older than it
/// has ended: an instance that stops stepping for longer (stopped in a
/// debugger, cut off from the database) rebuilds instead.
const RETENTION: Duration = Duration::from_secs(600);
/// How many times a driver lets other tasks run, before a step, while
/// lookups keep arriving (see `drive`).
const GATHER_YIELDS: usize = 4;
/// How long a step may take, and a build of the whole mirror: past it the
/// connection is dropped and the step fails (its lookups then read
/// PostgreSQL themselves), rather than every lookup waiting on a socket
/// that went quiet.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// Changed addresses applied at a time while a step streams them.
const APPLY_BATCH: usize = 10_000;

/// `None` when the lookup must read PostgreSQL itself: its tenant is not
/// (or no longer) in the index, or the step failed.
type Reply = Option<Vec<Suppression>>;

struct Waiter {
    tenant: TenantId,
    email: Email,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    waiters: Vec<Waiter>,
    /// Whether a driver task is running steps.
    driving: bool,
}

/// Where the mirror stands. Only the task holding it steps.
struct Position {
    /// The snapshot the index is exactly at (`pg_snapshot` as text); `None`
    /// until it has been built.
    snapshot: Option<String>,
    /// The xmin of the snapshot held, sampled every [`PRUNE_EVERY`]: what
    /// pruning may delete below once [`RETENTION`] has passed.
    samples: VecDeque<(Instant, String)>,
    /// Where pruning has still to delete below, while it deletes a chunk a
    /// step.
    prune_below: Option<String>,
    /// The server's start time when the snapshot held was taken.
    server: Option<String>,
    last_step: Instant,
    /// The connection steps run on, kept between them.
    conn: Option<PgConnection>,
}

/// Counters, for tests and for reading what the mirror does.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Lookups read from PostgreSQL directly (index off, tenant over budget).
    pub(super) reads: AtomicU64,
    /// Steps run for waiting lookups.
    pub(super) rounds: AtomicU64,
    /// Builds from a fresh snapshot.
    pub(super) rebuilds: AtomicU64,
}

pub(super) struct Mirror {
    pool: PgPool,
    connect: PgConnectOptions,
    connect_timeout: Duration,
    budget: usize,
    index: LookupIndex,
    queue: Mutex<Queue>,
    position: tokio::sync::Mutex<Position>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding the queue's lock.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops the waiters a driver still holds should it stop early (its
/// runtime shut down), so that their lookups read PostgreSQL instead of
/// waiting for ever, and lets the next lookup start a driver.
struct DriverGuard<'a> {
    mirror: &'a Mirror,
    done: bool,
}

impl Drop for DriverGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut queue = lock(&self.mirror.queue);
            queue.driving = false;
            queue.waiters.clear();
        }
    }
}

/// `work`, or an error once `limit` has passed: a socket that went quiet
/// must not hold every lookup (they read PostgreSQL once the step fails).
async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(limit, work).await {
        Ok(done) => Ok(done?),
        Err(_) => Err(EngineError::Unavailable {
            backend: NAME,
            reason: format!("the lookup mirror's step took more than {limit:?}"),
        }),
    }
}

/// The xmin of a snapshot's text (`xmin:xmax:xip,…`).
fn xmin_of(snapshot: &str) -> &str {
    snapshot.split(':').next().unwrap_or_default()
}

/// What one step read.
enum Step {
    /// The index is at this snapshot.
    At(String),
    /// The log cannot say what changed since the snapshot held.
    Rebuild,
}

impl Mirror {
    /// Builds the mirror from the database (every entry, once) and starts
    /// its idle stepping. `budget` is in bytes and not 0.
    pub(super) async fn open(
        pool: PgPool,
        options: &super::PostgresOptions,
        budget: usize,
        counters: Arc<Counters>,
    ) -> Result<Arc<Self>, EngineError> {
        let mirror = Arc::new(Self {
            pool,
            connect: options.connect.clone(),
            connect_timeout: options.connect_timeout,
            budget,
            index: LookupIndex::new(budget),
            queue: Mutex::new(Queue::default()),
            position: tokio::sync::Mutex::new(Position {
                snapshot: None,
                samples: VecDeque::new(),
                prune_below: None,
                server: None,
                last_step: Instant::now(),
                conn: None,
            }),
            counters,
        });
        {
            let mut position = mirror.position.lock().await;
            mirror.step(&mut position).await?;
        }
        tokio::spawn(idle(Arc::downgrade(&mirror)));
        Ok(mirror)
    }

    /// Addresses held now.
    pub(super) fn addresses(&self) -> usize {
        self.index.addresses()
    }

    /// Every entry of `email`, exact as of a snapshot taken after this call.
    pub(super) async fn lookup(
        self: &Arc<Self>,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        if self.index.covers(tenant) {
            let (reply, answer) = oneshot::channel();
            let start = {
                let mut queue = lock(&self.queue);
                queue.waiters.push(Waiter {
                    tenant: tenant.clone(),
                    email: email.clone(),
                    reply,
                });
                !std::mem::replace(&mut queue.driving, true)
            };
            if start {
                // A task of its own, so that a lookup whose client goes
                // away does not take the step of the others with it.
                tokio::spawn(Arc::clone(self).drive());
            }
            // A driver that stopped without answering (its runtime shut
            // down) leaves the lookup to PostgreSQL too.
            if let Some(found) = answer.await.ok().flatten() {
                return Ok(found);
            }
        }
        self.read(tenant, email).await
    }

    /// A lookup PostgreSQL answers itself.
    async fn read(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let found = sql::entries(&mut conn, tenant, email).await?;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        Ok(found)
    }

    /// Runs steps until no lookup waits.
    async fn drive(self: Arc<Self>) {
        let mut guard = DriverGuard {
            mirror: &self,
            done: false,
        };
        let mut position = self.position.lock().await;
        loop {
            // Let the lookups that are ready to run register first: the
            // answers of the last step wake their clients, whose next
            // requests arrive while this step would run, and one step
            // costs about as much for one lookup as for a hundred.
            let mut waiting = lock(&self.queue).waiters.len();
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
                let now = lock(&self.queue).waiters.len();
                if now == waiting {
                    break;
                }
                waiting = now;
            }
            let batch = {
                let mut queue = lock(&self.queue);
                if queue.waiters.is_empty() {
                    queue.driving = false;
                    guard.done = true;
                    break;
                }
                std::mem::take(&mut queue.waiters)
            };
            self.counters.rounds.fetch_add(1, Ordering::Relaxed);
            // The step's statement starts now, after every waiter of the
            // batch arrived.
            let stepped = self.step(&mut position).await;
            if let Err(err) = &stepped {
                tracing::warn!(error = %err, "the postgres lookup mirror could not step; these lookups read PostgreSQL");
            }
            for waiter in batch {
                // After a failed step each lookup reads PostgreSQL itself,
                // on a pooled connection: as exact, and it reports what is
                // wrong if the database is.
                let reply = match &stepped {
                    Ok(()) => self.index.entries(&waiter.tenant, &waiter.email),
                    Err(_) => None,
                };
                let _ = waiter.reply.send(reply);
            }
        }
        drop(position);
        drop(guard);
    }

    /// Brings the index to a snapshot taken now: the changes since the one
    /// held, or everything when that cannot be told.
    async fn step(&self, position: &mut Position) -> Result<(), EngineError> {
        let mut conn = match position.conn.take() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let stepped = self.step_on(&mut conn, position).await;
        // A connection whose step failed may be broken or stopped half way
        // through a result: the next step opens another.
        if stepped.is_ok() {
            position.conn = Some(conn);
        }
        stepped
    }

    /// The mirror's own connection: a step on a pooled one paid for the
    /// pool's health check (a round trip) and waited behind other requests
    /// for a connection.
    async fn connect(&self) -> Result<PgConnection, EngineError> {
        let unreachable = |why: String| EngineError::Unavailable {
            backend: NAME,
            reason: format!("the lookup mirror cannot connect to PostgreSQL: {why}"),
        };
        let mut conn = tokio::time::timeout(
            self.connect_timeout,
            PgConnection::connect_with(&self.connect),
        )
        .await
        .map_err(|_| unreachable("timed out".to_owned()))?
        .map_err(|e| unreachable(e.to_string()))?;
        // The step is one prepared statement run with a new snapshot each
        // time: left to choose, PostgreSQL planned it afresh for every run
        // (a custom plan looks cheaper), which cost more than running it
        // (157 against 47 µs of the server's CPU a step). Its generic plan is
        // the right one at any size (`sql::changes_since`). A step that
        // would wait on a lock (a DDL statement holding the table) fails
        // soon instead; its lookups read PostgreSQL. Set here rather than
        // as startup options, which PgBouncer refuses.
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan; SET lock_timeout = '2s'")
            .execute(&mut conn)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(conn)
    }

    async fn step_on(
        &self,
        conn: &mut PgConnection,
        position: &mut Position,
    ) -> Result<(), EngineError> {
        let moved = match (position.snapshot.as_deref(), position.server.as_deref()) {
            (Some(held), Some(server)) => {
                within(STEP_TIMEOUT, self.apply_changes(conn, held, server)).await?
            }
            _ => Step::Rebuild,
        };
        let now = match moved {
            Step::At(now) => now,
            Step::Rebuild => {
                position.snapshot = None;
                // Samples of the old snapshots may be of another server's
                // transactions (a restore): none is trusted to prune by.
                position.samples.clear();
                position.prune_below = None;
                let (now, server) = within(BUILD_TIMEOUT, self.rebuild(conn)).await?;
                position.server = Some(server);
                now
            }
        };
        position.snapshot = Some(now);
        position.last_step = Instant::now();
        // The log waits for the next step should pruning fail; the
        // lookups need not.
        if let Err(err) = within(STEP_TIMEOUT, self.prune(conn, position)).await {
            tracing::warn!(error = %err, "pruning the postgres change log failed; the next step tries again");
        }
        Ok(())
    }

    /// Replaces every address changed since `held`.
    async fn apply_changes(
        &self,
        conn: &mut PgConnection,
        held: &str,
        server: &str,
    ) -> Result<Step, StoreError> {
        let bounded = sqlx::query(sql::changes_since_prepared()).bind(held);
        if let Some(step) = self.read_changes(conn, bounded, server, true).await? {
            return Ok(step);
        }
        // More changed than a prepared step reads: once more, planned for
        // this snapshot.
        let sql = sql::changes_since_unbounded(held)
            .ok_or_else(|| StoreError::Corrupt(format!("not a snapshot: {held:?}")))?;
        let unbounded = sqlx::query(sql).persistent(false);
        self.read_changes(conn, unbounded, server, false)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an unbounded step overflowed".into()))
    }

    /// Runs one step's statement and applies what it read; `None` when a
    /// `bounded` one read as many log rows as it may, so that it may have
    /// missed some (nothing was applied then).
    async fn read_changes<'q>(
        &self,
        conn: &mut PgConnection,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
        server: &str,
        bounded: bool,
    ) -> Result<Option<Step>, StoreError> {
        let mut rows = query.fetch(conn);
        let mut now = None;
        let mut pending = Pending::new(true);
        while let Some(row) = rows.try_next().await? {
            if now.is_none() {
                if row.try_get::<bool, _>("rebuild")?
                    || row.try_get::<String, _>("started")? != server
                {
                    return Ok(Some(Step::Rebuild));
                }
                if bounded && row.try_get::<bool, _>("overflow")? {
                    return Ok(None);
                }
                now = Some(row.try_get::<String, _>("now")?);
            }
            let Some(tenant) = row.try_get::<Option<String>, _>("changed_tenant")? else {
                continue;
            };
            let email: String = row.try_get("changed_email")?;
            if tenant.is_empty() {
                // The TRUNCATE marker.
                return Ok(Some(Step::Rebuild));
            }
            // An address's rows are applied together, its `Cleared` first.
            if pending.len() >= APPLY_BATCH && !pending.holds(&tenant, &email) {
                pending.apply(&self.index);
            }
            pending.push(&self.index, &tenant, &email, &row);
        }
        pending.apply(&self.index);
        let now = now.ok_or_else(|| {
            StoreError::Corrupt("the change log read returned no snapshot".into())
        })?;
        Ok(Some(Step::At(now)))
    }

    /// Builds the index again from every entry, returning the snapshot it
    /// was read in.
    async fn rebuild(&self, conn: &mut PgConnection) -> Result<(String, String), StoreError> {
        self.counters.rebuilds.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        self.index.clear(self.budget);
        let mut rows = sqlx::query(sql::EVERYTHING).fetch(conn);
        let mut now = None;
        let mut pending = Pending::new(false);
        while let Some(row) = rows.try_next().await? {
            if now.is_none() {
                now = Some((
                    row.try_get::<String, _>("now")?,
                    row.try_get::<String, _>("started")?,
                ));
            }
            let Some(tenant) = row.try_get::<Option<String>, _>("changed_tenant")? else {
                continue;
            };
            let email: String = row.try_get("email")?;
            if pending.len() >= APPLY_BATCH {
                pending.apply(&self.index);
            }
            pending.push(&self.index, &tenant, &email, &row);
        }
        pending.apply(&self.index);
        self.index.compact_all();
        tracing::info!(
            index = ?self.index,
            millis = started.elapsed().as_millis(),
            "built the postgres lookup mirror"
        );
        now.ok_or_else(|| StoreError::Corrupt("the mirror's build returned no snapshot".into()))
    }

    /// Deletes the change log that no instance stepping within
    /// [`RETENTION`] still needs, a chunk per step (lookups wait for it),
    /// on the step's connection: every instance prunes as it steps, busy
    /// or idle.
    async fn prune(
        &self,
        conn: &mut PgConnection,
        position: &mut Position,
    ) -> Result<(), StoreError> {
        let Some(held) = position.snapshot.as_deref() else {
            return Ok(());
        };
        let due = position
            .samples
            .back()
            .is_none_or(|(at, _)| at.elapsed() >= PRUNE_EVERY);
        if due {
            position
                .samples
                .push_back((Instant::now(), xmin_of(held).to_owned()));
            while let Some((at, _)) = position.samples.front() {
                if at.elapsed() < RETENTION {
                    break;
                }
                position.prune_below = position.samples.pop_front().map(|(_, xmin)| xmin);
            }
        }
        let Some(below) = position.prune_below.clone() else {
            return Ok(());
        };
        let deleted = sql::prune_changes(conn, &below).await?;
        tracing::debug!(deleted, below = %below, "pruned the postgres change log");
        if deleted < sql::PRUNE_CHUNK as u64 {
            position.prune_below = None;
        }
        Ok(())
    }
}

impl Mirror {
    /// Steps, then prunes the log below what this instance holds now, with
    /// no retention: for tests of what pruning does to the others.
    pub(super) async fn prune_now(&self) -> Result<u64, EngineError> {
        let mut position = self.position.lock().await;
        self.step(&mut position).await?;
        let xmin = xmin_of(position.snapshot.as_deref().unwrap_or_default());
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        Ok(sql::prune_changes(&mut conn, xmin).await?)
    }
}

/// Steps an instance without lookups once every [`IDLE_STEP`]; ends when
/// the mirror is dropped.
async fn idle(mirror: Weak<Mirror>) {
    loop {
        tokio::time::sleep(IDLE_STEP).await;
        let Some(mirror) = mirror.upgrade() else {
            return;
        };
        // A driver holds the position while lookups step it.
        let Ok(mut position) = mirror.position.try_lock() else {
            continue;
        };
        if position.last_step.elapsed() >= IDLE_STEP
            && let Err(err) = mirror.step(&mut position).await
        {
            tracing::warn!(error = %err, "the postgres lookup mirror could not catch up; it tries again");
        }
    }
}

/// Addresses read but not yet applied.
struct Pending {
    /// Tenant, address, and the entries read for it.
    addresses: Vec<(String, String, Vec<Suppression>)>,
    /// Whether each address replaces what the index holds for it (a step's
    /// changes, whose rows come grouped by address), or adds to it (a
    /// build into an empty index, whose rows come in any order).
    replace: bool,
}

impl Pending {
    fn new(replace: bool) -> Self {
        Self {
            addresses: Vec::new(),
            replace,
        }
    }

    fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Whether the last address read is this one.
    fn holds(&self, tenant: &str, email: &str) -> bool {
        self.addresses
            .last()
            .is_some_and(|(t, e, _)| t == tenant && e == email)
    }

    /// Adds one row: its entry, if it has one, to its address.
    fn push(&mut self, index: &LookupIndex, tenant: &str, email: &str, row: &PgRow) {
        // A row whose address is not in the form hush stores (written by
        // hand, `X@Example.com`) is never matched by a read of the table
        // (`email = $2` with the parsed address), so the mirror leaves it
        // out too: kept, its entry would be filed under the parsed form,
        // which no `Cleared` of the stored form would reach.
        if Email::parse(email)
            .ok()
            .is_none_or(|parsed| parsed.as_str() != email)
        {
            return;
        }
        let Ok(tenant_id) = TenantId::parse(tenant) else {
            tracing::warn!(
                tenant,
                "a row's tenant is not a valid tenant id; the mirror skips it"
            );
            return;
        };
        let entry = match sql::mirrored_entry(row, &tenant_id) {
            Ok(entry) => entry,
            Err(err) => {
                // Such a tenant is read from PostgreSQL, which reports the
                // row when a read reaches it.
                tracing::warn!(%tenant, error = %err, "a row does not decode; this tenant's lookups read PostgreSQL");
                index.drop_tenant(&tenant_id);
                return;
            }
        };
        if !self.holds(tenant, email) {
            self.addresses
                .push((tenant.to_owned(), email.to_owned(), Vec::new()));
        }
        if let (Some(entry), Some((_, _, entries))) = (entry, self.addresses.last_mut()) {
            entries.push(entry);
        }
    }

    /// Applies what was read, tenant by tenant.
    fn apply(&mut self, index: &LookupIndex) {
        self.addresses
            .sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for tenant_rows in self.addresses.chunk_by(|a, b| a.0 == b.0) {
            let Ok(tenant) = TenantId::parse(&tenant_rows[0].0) else {
                continue;
            };
            let mut changes = Vec::new();
            for (_, email, entries) in tenant_rows {
                if self.replace {
                    changes.push(Change::Cleared(email));
                }
                changes.extend(entries.iter().map(Change::Added));
            }
            index.apply(&tenant, &changes);
        }
        self.addresses.clear();
    }
}
