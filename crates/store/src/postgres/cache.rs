//! An exact cache of `entries` (every entry of one address), kept coherent
//! across any number of hush instances on one database.
//!
//! Every write transaction that changes a tenant's data bumps the tenant's
//! row in `hush_tenant_versions` as its last statement (`sql::bump_version`),
//! so the version commits with the change. A lookup is answered only after a
//! read of that version which *started after the lookup arrived*: any write
//! acknowledged before then (on any instance) has committed its bump, so the
//! read sees it. A cached answer is used only when it was read at exactly
//! the version now current; no write has committed since, so it is what a
//! read of the table would return.
//!
//! The version read is shared: a lookup registers as a waiter and, when no
//! round is running, starts one. A round takes every waiter registered so
//! far and, per tenant, runs one statement (`sql::versioned_entries`) that
//! reads the version and, in the same snapshot, the entries of every
//! address of the round that is not cached at the tenant's last known
//! version. Waiters that arrive while it runs wait for the next round (up
//! to [`MAX_ROUNDS`] run at once). One PostgreSQL round trip then answers
//! every lookup waiting when it started, hits and misses alike, and what it
//! reads is tagged with the version of its own snapshot.
//!
//! A cached answer that turns out stale (the round found a newer version
//! than the one the answer was read at) goes back into the queue: the next
//! round reads it, and that round also started after the lookup arrived.
//!
//! Bounded by `capacity` addresses (absent ones included: most send checks
//! are for addresses with no entry). When full, every stale answer and about
//! half of the current ones are dropped (by position in the hash table, so
//! effectively at random).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hush_engine::EngineError;
use hush_model::{Email, Kind, Origin, Scope, Suppression, SuppressionId, TenantId, Timestamp};
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::{NAME, StoreError, sql};

type Reply = Result<Vec<Suppression>, EngineError>;

/// A lookup waiting for the next round.
struct Waiter {
    tenant: TenantId,
    email: Email,
    reply: oneshot::Sender<Reply>,
}

/// Rounds that may be in flight at once. One round at a time makes every
/// lookup wait for the rest of the running round and then a whole one;
/// letting a new round start while one runs cuts that wait, and a few
/// rounds still answer a whole queue each.
const MAX_ROUNDS: usize = 3;

#[derive(Default)]
struct Queue {
    waiters: Vec<Waiter>,
    /// Round drivers running; each keeps running rounds until the queue is
    /// empty.
    drivers: usize,
}

/// One entry of an address, without what the cache's keys already say
/// (tenant and address), to keep an entry small.
struct Row {
    id: SuppressionId,
    scope: Scope,
    kind: Kind,
    origin: Origin,
    created_at: Timestamp,
}

struct Cached {
    /// The tenant's version in the snapshot this answer was read from.
    version: i64,
    /// Newest first; empty for an address with no entry.
    rows: Box<[Row]>,
}

/// The entries of an address, as the model has them.
fn answer(rows: &[Row], tenant: &TenantId, email: &Email) -> Vec<Suppression> {
    rows.iter()
        .map(|row| Suppression {
            id: row.id,
            tenant: tenant.clone(),
            email: email.clone(),
            scope: row.scope,
            kind: row.kind.clone(),
            origin: row.origin,
            created_at: row.created_at,
        })
        .collect()
}

#[derive(Default)]
struct TenantEntries {
    /// The newest version a round has seen for this tenant.
    latest: i64,
    /// [`Entries::epoch`] when `latest` was last raised.
    latest_epoch: u64,
    by_email: HashMap<Box<str>, Cached>,
}

impl TenantEntries {
    /// The cached answer for an address, if it was read at the newest
    /// version seen.
    fn current(&self, email: &str) -> Option<&Cached> {
        self.by_email
            .get(email)
            .filter(|cached| cached.version == self.latest)
    }
}

#[derive(Default)]
struct Entries {
    tenants: HashMap<TenantId, TenantEntries>,
    /// Addresses held, over every tenant.
    len: usize,
    /// Counts every raise of a tenant's `latest`. A round that reads it
    /// before its query knows which `latest` values were set by snapshots
    /// older than its own.
    epoch: u64,
}

impl Entries {
    /// Makes room for one more address.
    fn make_room(&mut self, capacity: usize) {
        if self.len < capacity {
            return;
        }
        let mut n = 0_u64;
        for tenant in self.tenants.values_mut() {
            let latest = tenant.latest;
            tenant.by_email.retain(|_, cached| {
                n += 1;
                cached.version == latest && n.is_multiple_of(2)
            });
        }
        self.len = self.tenants.values().map(|t| t.by_email.len()).sum();
        if self.len >= capacity {
            self.tenants.clear();
            self.len = 0;
        }
        self.tenants.retain(|_, t| !t.by_email.is_empty());
    }

    fn insert(
        &mut self,
        tenant: &TenantId,
        email: Box<str>,
        version: i64,
        rows: Vec<Row>,
        capacity: usize,
    ) {
        self.make_room(capacity);
        let tenant_entries = self.tenants.entry(tenant.clone()).or_default();
        // A tenant dropped to make room starts again from this version.
        tenant_entries.latest = tenant_entries.latest.max(version);
        let cached = Cached {
            version,
            rows: rows.into_boxed_slice(),
        };
        if tenant_entries.by_email.insert(email, cached).is_none() {
            self.len += 1;
        }
    }
}

/// Counters, for tests and for reading what the cache does.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Addresses whose entries were read from PostgreSQL.
    pub(super) reads: AtomicU64,
    /// Rounds run (version reads).
    pub(super) rounds: AtomicU64,
}

pub(super) struct LookupCache {
    pool: PgPool,
    capacity: usize,
    queue: Mutex<Queue>,
    entries: Mutex<Entries>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for LookupCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; should it, the data is
    // still consistent enough to go on (at worst a stale answer is dropped).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A copy of an error for each waiter of a failed round (`EngineError` is
/// not `Clone`), keeping whether the database was unreachable.
fn copy_error(err: &EngineError) -> EngineError {
    match err {
        EngineError::Unavailable { backend, reason } => EngineError::Unavailable {
            backend,
            reason: reason.clone(),
        },
        other => EngineError::internal(NAME, other),
    }
}

/// Resets the queue should a driver stop without emptying it (its runtime
/// shut down): the waiters it held are dropped, so their lookups fail
/// instead of waiting for ever, and the next lookup starts a new driver.
struct DriverGuard<'a> {
    cache: &'a LookupCache,
    done: bool,
}

impl Drop for DriverGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queue = lock(&self.cache.queue);
        queue.drivers = queue.drivers.saturating_sub(1);
        if queue.drivers == 0 {
            queue.waiters.clear();
        }
    }
}

impl LookupCache {
    pub(super) fn new(pool: PgPool, capacity: usize, counters: Arc<Counters>) -> Self {
        Self {
            pool,
            capacity,
            queue: Mutex::new(Queue::default()),
            entries: Mutex::new(Entries::default()),
            counters,
        }
    }

    /// Addresses held now.
    pub(super) fn len(&self) -> usize {
        lock(&self.entries).len
    }

    /// Every entry of `email`, exact as of a version read that started
    /// after this call.
    pub(super) async fn lookup(
        self: &Arc<Self>,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.queue);
            queue.waiters.push(Waiter {
                tenant: tenant.clone(),
                email: email.clone(),
                reply,
            });
            let start = queue.drivers < MAX_ROUNDS;
            if start {
                queue.drivers += 1;
            }
            start
        };
        if start {
            // A task of its own, so that a lookup whose client goes away
            // does not take the round of the others with it.
            tokio::spawn(Arc::clone(self).drive());
        }
        answer.await.unwrap_or_else(|_| {
            Err(EngineError::Unavailable {
                backend: NAME,
                reason: "the lookup was abandoned while the gateway stopped".to_owned(),
            })
        })
    }

    /// Runs rounds until no lookup waits.
    async fn drive(self: Arc<Self>) {
        let mut guard = DriverGuard {
            cache: &self,
            done: false,
        };
        loop {
            let batch = {
                let mut queue = lock(&self.queue);
                if queue.waiters.is_empty() {
                    queue.drivers -= 1;
                    guard.done = true;
                    break;
                }
                std::mem::take(&mut queue.waiters)
            };
            let again = self.round(batch).await;
            if !again.is_empty() {
                lock(&self.queue).waiters.extend(again);
            }
        }
        drop(guard);
    }

    /// One round: answers the batch, returning the waiters whose cached
    /// answer turned out stale (for the next round).
    async fn round(&self, batch: Vec<Waiter>) -> Vec<Waiter> {
        self.counters.rounds.fetch_add(1, Ordering::Relaxed);
        let mut by_tenant: HashMap<TenantId, Vec<Waiter>> = HashMap::new();
        for waiter in batch {
            by_tenant
                .entry(waiter.tenant.clone())
                .or_default()
                .push(waiter);
        }
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                let err = EngineError::from(StoreError::from(err));
                for waiter in by_tenant.into_values().flatten() {
                    let _ = waiter.reply.send(Err(copy_error(&err)));
                }
                return Vec::new();
            }
        };
        let mut again = Vec::new();
        for (tenant, waiters) in by_tenant {
            // What to read: every address not cached at the version last
            // seen. Should the version have moved, the rest is read next
            // round.
            let (epoch_at_start, mut wanted): (u64, Vec<&str>) = {
                let entries = lock(&self.entries);
                let known = entries.tenants.get(&tenant);
                let wanted = waiters
                    .iter()
                    .filter(|w| known.and_then(|t| t.current(w.email.as_str())).is_none())
                    .map(|w| w.email.as_str())
                    .collect();
                (entries.epoch, wanted)
            };
            wanted.sort_unstable();
            wanted.dedup();
            let result = sql::versioned_entries(&mut conn, &tenant, &wanted).await;
            let (version, found) = match result {
                Ok(read) => read,
                Err(err) => {
                    let err = EngineError::from(err);
                    for waiter in waiters {
                        let _ = waiter.reply.send(Err(copy_error(&err)));
                    }
                    continue;
                }
            };
            self.counters
                .reads
                .fetch_add(wanted.len() as u64, Ordering::Relaxed);
            let mut read: HashMap<Box<str>, Vec<Row>> = wanted
                .iter()
                .map(|email| (Box::<str>::from(*email), Vec::new()))
                .collect();
            for s in found {
                if let Some(rows) = read.get_mut(s.email.as_str()) {
                    rows.push(Row {
                        id: s.id,
                        scope: s.scope,
                        kind: s.kind,
                        origin: s.origin,
                        created_at: s.created_at,
                    });
                }
            }
            let mut guard = lock(&self.entries);
            let entries = &mut *guard;
            let tenant_entries = entries.tenants.entry(tenant.clone()).or_default();
            if version < tenant_entries.latest && epoch_at_start >= tenant_entries.latest_epoch {
                // This round's snapshot is newer than the one that set
                // `latest`, yet its version is lower: the count went back
                // (a restore, a failover that lost commits, a deleted
                // version row). Nothing cached for the tenant can be trusted
                // any more, and its waiters are read afresh next round.
                entries.len -= tenant_entries.by_email.len();
                tenant_entries.by_email.clear();
                tenant_entries.latest = version;
                entries.epoch += 1;
                tenant_entries.latest_epoch = entries.epoch;
            }
            // Rounds overlap, so one may end after a later one that saw a
            // newer version: what it read still answers its own waiters
            // (its snapshot started after they arrived), but is not kept.
            let keep = version >= tenant_entries.latest;
            if keep && version > tenant_entries.latest {
                tenant_entries.latest = version;
                entries.epoch += 1;
                tenant_entries.latest_epoch = entries.epoch;
            }
            for waiter in waiters {
                let answer = match read.get(waiter.email.as_str()) {
                    Some(rows) => Some(answer(rows, &waiter.tenant, &waiter.email)),
                    None => tenant_entries
                        .by_email
                        .get(waiter.email.as_str())
                        .filter(|c| c.version == version)
                        .map(|c| answer(&c.rows, &waiter.tenant, &waiter.email)),
                };
                match answer {
                    Some(answer) => {
                        let _ = waiter.reply.send(Ok(answer));
                    }
                    None => again.push(waiter),
                }
            }
            if keep {
                for (email, rows) in read {
                    guard.insert(&tenant, email, version, rows, self.capacity);
                }
            }
        }
        again
    }
}
