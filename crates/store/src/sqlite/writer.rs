//! The writer thread and its group commit.
//!
//! One thread owns the only connection that writes. Callers send it write
//! commands over a channel, each with a oneshot for the reply. The thread
//! blocks for the first command, then takes whatever else is queued (up to
//! [`MAX_BATCH`] commands or [`MAX_WEIGHT`] rows), and runs them all in one
//! `BEGIN IMMEDIATE` transaction. Each command runs inside its own
//! savepoint, so a command that fails (a taken group key, say) rolls back
//! only itself. The transaction is committed once, with one fsync of the
//! WAL, and only then does every command get its reply: a caller never
//! hears of a write that is not durable. If the commit fails, every command
//! of the batch gets an error.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hush_engine::{EngineError, Throttle, UNAVAILABLE_LOG_INTERVAL};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{FULL, NAME, StoreError, batch_pack, is_full, sql};

/// Most often readiness tries a probe write while the store is full.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Most commands in one transaction.
const MAX_BATCH: usize = 512;
/// Most rows (suppressions of adds; 1 for other commands) in one
/// transaction, so that a batch of large imports stays a bounded amount of
/// work; a batch stops taking commands once it reaches this.
const MAX_WEIGHT: usize = 20_000;
/// Commands that may wait for the writer before senders wait too.
const QUEUE: usize = 4_096;

/// A write command: work to run on the write connection and a reply to send
/// once the batch it ran in is committed (or has failed).
trait Job: Send {
    fn weight(&self) -> usize;
    /// Runs the work and says how it went; after a failure its savepoint
    /// must roll back.
    fn run(&mut self, conn: &Connection) -> Ran;
    /// Sends the reply. `batch_failure` is set when the batch did not
    /// commit, so that work which succeeded inside it was rolled back.
    fn reply(self: Box<Self>, batch_failure: Option<&BatchFailure>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    Failed,
    /// Failed for lack of space (SQLITE_FULL).
    NoSpace,
}

/// Why a batch did not commit.
#[derive(Debug)]
struct BatchFailure {
    message: String,
    no_space: bool,
}

impl BatchFailure {
    fn to_engine_error(&self) -> EngineError {
        if self.no_space {
            EngineError::Unavailable {
                backend: NAME,
                reason: FULL.to_owned(),
            }
        } else {
            EngineError::internal(NAME, &self.message)
        }
    }
}

/// What the writer thread tells the rest: whether writes fit (set when a
/// write fails for lack of space, cleared by the next commit that writes
/// rows), and how many transactions it committed.
#[derive(Debug, Default)]
struct Space {
    full: AtomicBool,
    last_probe: Mutex<Option<Instant>>,
    commits: std::sync::atomic::AtomicU64,
}

struct Pending<T, F, A> {
    work: Option<F>,
    /// Runs on the writer thread once the work is committed, before the
    /// reply: what must follow a durable write before anyone hears of it
    /// (the lookup index, index.rs).
    committed: Option<A>,
    weight: usize,
    outcome: Option<Result<T, EngineError>>,
    reply: oneshot::Sender<Result<T, EngineError>>,
}

impl<T, F, A> Job for Pending<T, F, A>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    A: FnOnce(&T) + Send,
{
    fn weight(&self) -> usize {
        self.weight
    }

    fn run(&mut self, conn: &Connection) -> Ran {
        let mut ran = Ran::Failed;
        let outcome = match self.work.take() {
            Some(work) => match catch_unwind(AssertUnwindSafe(|| work(conn))) {
                Ok(Ok(value)) => {
                    ran = Ran::Done;
                    Ok(value)
                }
                Ok(Err(err)) => {
                    if err.is_full() {
                        ran = Ran::NoSpace;
                    }
                    Err(EngineError::from(err))
                }
                Err(_) => Err(EngineError::internal(NAME, "a write command panicked")),
            },
            None => Err(EngineError::internal(NAME, "a write command ran twice")),
        };
        self.outcome = Some(outcome);
        ran
    }

    fn reply(self: Box<Self>, batch_failure: Option<&BatchFailure>) {
        let result = match (self.outcome, batch_failure) {
            // A command's own failure is the more precise answer.
            (Some(Err(err)), _) => Err(err),
            (_, Some(failure)) => Err(failure.to_engine_error()),
            (Some(Ok(value)), None) => {
                if let Some(committed) = self.committed {
                    committed(&value);
                }
                Ok(value)
            }
            (None, None) => Err(EngineError::internal(NAME, "a write command was not run")),
        };
        // The caller may have gone away (a cancelled request); the write
        // stands either way.
        let _ = self.reply.send(result);
    }
}

/// The handle to the writer thread. Dropping it closes the channel; the
/// thread finishes the batch in hand and exits, and the drop waits for it so
/// that the write connection is closed when the backend is gone.
pub(super) struct Writer {
    sender: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    space: Arc<Space>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(super) fn spawn(conn: Connection) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let space = Arc::new(Space::default());
        let thread_space = Arc::clone(&space);
        let thread = std::thread::Builder::new()
            .name("hush-sqlite-writer".into())
            .spawn(move || write_loop(&conn, receiver, &thread_space))
            .map_err(|e| StoreError::Setup(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
            space,
        })
    }

    /// How many write transactions have committed.
    pub(super) fn commits(&self) -> u64 {
        self.space.commits.load(Ordering::Relaxed)
    }

    /// Whether the last write failed for lack of space and none has
    /// committed since.
    pub(super) fn is_full(&self) -> bool {
        self.space.full.load(Ordering::Acquire)
    }

    /// Tries a write of [`sql::PROBE_BYTES`] (at most once per
    /// [`PROBE_INTERVAL`]; between probes it answers as the last did). Its
    /// commit clears [`Writer::is_full`].
    pub(super) async fn probe(&self) -> Result<(), EngineError> {
        let due = {
            let mut last = self
                .space
                .last_probe
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = last.is_none_or(|at| at.elapsed() >= PROBE_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            return self.run(1, sql::probe_write).await;
        }
        if self.is_full() {
            return Err(EngineError::Unavailable {
                backend: NAME,
                reason: FULL.to_owned(),
            });
        }
        Ok(())
    }

    /// Whether the writer thread is there to take commands.
    pub(super) fn is_running(&self) -> bool {
        self.sender.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Runs `work` on the write connection in the next batch and returns its
    /// result once the batch is durable. `weight` is how many rows it
    /// writes, roughly.
    pub(super) async fn run<T, F>(&self, weight: usize, work: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_then(weight, work, |_: &T| {}).await
    }

    /// [`Writer::run`], and `committed` with the result on the writer
    /// thread after the commit and before the reply. Commands are replied to
    /// in the order they ran, so `committed` sees changes in commit order.
    pub(super) async fn run_then<T, F, A>(
        &self,
        weight: usize,
        work: F,
        committed: A,
    ) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
    {
        let stopped = || EngineError::internal(NAME, "the writer thread has stopped");
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            committed: Some(committed),
            weight: weight.max(1),
            outcome: None,
            reply,
        });
        sender.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(Err(_)) = self.thread.take().map(JoinHandle::join) {
            tracing::error!("the sqlite writer thread panicked");
        }
    }
}

fn write_loop(conn: &Connection, mut receiver: mpsc::Receiver<Box<dyn Job>>, space: &Space) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        let mut weight = first.weight();
        batch.push(first);
        while batch.len() < MAX_BATCH && weight < MAX_WEIGHT {
            match receiver.try_recv() {
                Ok(job) => {
                    weight += job.weight();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit(conn, &mut batch, space);
    }
    tracing::debug!("sqlite writer thread stopping: the backend was dropped");
}

/// Runs one batch in one transaction and replies to each of its commands.
/// A failure that repeats (a full disk refuses every batch) is logged once
/// per interval with a count.
fn commit(conn: &Connection, batch: &mut Vec<Box<dyn Job>>, space: &Space) {
    static FAILURES: Throttle = Throttle::new(UNAVAILABLE_LOG_INTERVAL);
    let outcome = run_batch(conn, batch);
    let failure = outcome.result.err().map(|err| {
        if let Some(unlogged) = FAILURES.admit() {
            tracing::error!(commands = batch.len(), error = %err, failed_since_last_line = unlogged, "sqlite write batch failed");
        }
        let rolled_back = if conn.is_autocommit() {
            Ok(())
        } else {
            execute(conn, "ROLLBACK")
        };
        if let Err(err) = rolled_back {
            tracing::error!(error = %err, "sqlite rollback failed");
        }
        // A full disk can end the transaction inside a command, and the
        // batch then fails on its savepoint ("no such savepoint"): the
        // cause is still the disk.
        BatchFailure {
            message: format!("the write was not committed: {err}"),
            no_space: is_full(&err) || outcome.no_space,
        }
    });
    if outcome.committed {
        space.commits.fetch_add(1, Ordering::Relaxed);
    }
    let no_space = outcome.no_space || failure.as_ref().is_some_and(|f| f.no_space);
    if no_space {
        space.full.store(true, Ordering::Release);
    } else if outcome.wrote {
        space.full.store(false, Ordering::Release);
    }
    tracing::trace!(commands = batch.len(), "sqlite write batch done");
    for job in batch.drain(..) {
        job.reply(failure.as_ref());
    }
}

/// What became of a batch: whether it committed rows, and whether any command
/// in it failed for lack of space (such a command rolls back alone, and
/// the rest may commit).
struct BatchOutcome {
    result: rusqlite::Result<()>,
    committed: bool,
    wrote: bool,
    no_space: bool,
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> BatchOutcome {
    let mut no_space = false;
    let changes = conn.total_changes();
    let result = run_jobs(conn, batch, &mut no_space);
    batch_pack::end_batch();
    let committed = result.as_ref().is_ok_and(|committed| *committed);
    BatchOutcome {
        committed,
        // Only a commit that wrote rows proves that writes fit: one of
        // adds that were all there already writes nothing.
        wrote: committed && conn.total_changes() > changes,
        result: result.map(|_| ()),
        no_space,
    }
}

/// Runs the batch's commands; `Ok(true)` when a transaction committed.
fn run_jobs(
    conn: &Connection,
    batch: &mut [Box<dyn Job>],
    no_space: &mut bool,
) -> rusqlite::Result<bool> {
    execute(conn, "BEGIN IMMEDIATE")?;
    if let [job] = batch {
        // Alone in its batch, a command needs no savepoint: if it fails,
        // rolling back the transaction undoes exactly it. A savepoint is not
        // free: SQLite copies every page the command first touches into a
        // statement journal, a temporary file, which a profile of a bulk
        // import showed among the writer's largest costs
        // (`subjournalPageIfRequired`; docs/benchmarks.md).
        match job.run(conn) {
            Ran::Done => return execute(conn, "COMMIT").map(|()| true),
            Ran::NoSpace => *no_space = true,
            Ran::Failed => {}
        }
        // Some failures (a full disk) end the transaction themselves.
        return if conn.is_autocommit() {
            Ok(false)
        } else {
            execute(conn, "ROLLBACK").map(|()| false)
        };
    }
    // The commands' adds share journal rows (`batch_pack`), written at the
    // latest just before the COMMIT.
    batch_pack::begin_batch();
    for job in batch.iter_mut() {
        execute(conn, "SAVEPOINT command")?;
        batch_pack::command_started();
        let ran = job.run(conn);
        if ran == Ran::NoSpace {
            *no_space = true;
        }
        if ran != Ran::Done {
            // If the failure ended the whole transaction (SQLite does that
            // for some errors, e.g. a full disk), there is no savepoint left
            // and this fails the batch, which is what is wanted.
            execute(conn, "ROLLBACK TO command")?;
            batch_pack::command_failed();
        }
        execute(conn, "RELEASE command")?;
    }
    // Its only failures are SQLite's (a full disk among them, which
    // `commit` recognises on the error).
    batch_pack::finish_batch(conn).map_err(|err| match err {
        StoreError::Sqlite(err) => err,
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    })?;
    execute(conn, "COMMIT").map(|()| true)
}

fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use hush_model::{
        Actor, Door, Email, EmailMatch, JournalOrder, JournalQuery, Kind, KindSet, ListFilter,
        NewSuppression, Origin, Scope, ScopeFilter, TenantId, Timestamp,
    };

    use super::*;

    fn unsubscribe(address: &str) -> NewSuppression {
        NewSuppression {
            email: Email::parse(address).unwrap(),
            scope: Scope::Global,
            kind: Kind::Unsubscribe,
            origin: Origin::Customer,
            created_at: Timestamp::from_unix_seconds(1_700_000_000),
        }
    }

    fn by(door: Door, request: &str) -> Actor {
        Actor::new(door).with_key("k").with_request_id(request)
    }

    fn only(address: &str) -> ListFilter {
        let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
        filter.email = Some(EmailMatch::Exact(Email::parse(address).unwrap()));
        filter
    }

    /// Commands of one batch share journal rows (`batch_pack`); a command
    /// that fails leaves none of its entries, even when a row written
    /// inside its savepoint held earlier commands' adds, and every entry
    /// keeps its own request id, in commit order.
    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_of_commands_journals_each_once_in_commit_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hush.db");
        let mut conn = super::super::schema::open_writer(&path).unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let writer = Writer::spawn(conn).unwrap();
        let t = TenantId::parse("t").unwrap();
        let u = TenantId::parse("u").unwrap();
        let add = |tenant: &TenantId, address: &str, actor: Actor| {
            let tenant = tenant.clone();
            let item = unsubscribe(address);
            writer.run(1, move |conn| {
                sql::add(conn, &tenant, vec![item], &actor).map(|_| ())
            })
        };
        let failing_add = |address: &str, request: &str| {
            let (t, item, actor) = (t.clone(), unsubscribe(address), by(Door::V3, request));
            writer.run(1, move |conn| {
                sql::add(conn, &t, vec![item], &actor)?;
                Err::<(), _>(StoreError::Setup("the command fails after its add".into()))
            })
        };
        // Adds and then a removal (which writes its own row, taking the
        // adds kept so far) in one command that fails.
        let failing_add_remove = |address: &str, request: &str| {
            let (t, item, actor) = (t.clone(), unsubscribe(address), by(Door::V3, request));
            let filter = only(address);
            writer.run(1, move |conn| {
                sql::add(conn, &t, vec![item], &actor)?;
                sql::remove_matching(conn, &t, &filter, &actor)?;
                Err::<(), _>(StoreError::Setup(
                    "the command fails after its removal".into(),
                ))
            })
        };
        let remove = |address: &str, request: &str| {
            let (t, actor) = (t.clone(), by(Door::V3, request));
            let filter = only(address);
            writer.run(1, move |conn| {
                sql::remove_matching(conn, &t, &filter, &actor).map(|_| ())
            })
        };
        // The first command holds the writer; once it runs, every other
        // one is queued behind it, and they all run as one batch.
        let (started, running) = oneshot::channel();
        let hold = writer.run(1, move |_| {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        let rest = async {
            running.await.unwrap();
            tokio::join!(
                add(&t, "a@x.io", by(Door::V3, "r-a")),
                failing_add("b@x.io", "r-b"),
                add(&t, "c@x.io", by(Door::V3, "r-c")),
                add(&u, "d@x.io", by(Door::V3, "r-d")),
                add(&t, "e@x.io", by(Door::V3, "r-e")),
                failing_add_remove("f@x.io", "r-f"),
                add(&t, "g@x.io", by(Door::ADMIN, "r-g")),
                remove("a@x.io", "r-h"),
                add(&t, "i@x.io", by(Door::V3, "r-i")),
            )
        };
        let (held, (a, b, c, d, e, f, g, h, i)) = tokio::join!(hold, rest);
        held.unwrap();
        for ok in [a, c, d, e, g, h, i] {
            ok.unwrap();
        }
        assert!(b.is_err() && f.is_err());
        assert_eq!(writer.commits(), 2, "the hold, then one batch of the rest");
        drop(writer);

        let conn = super::super::schema::open_reader(&path).unwrap();
        let history = sql::journal(
            &conn,
            &t,
            &JournalQuery {
                order: JournalOrder::OldestFirst,
                ..JournalQuery::newest_first(100)
            },
        )
        .unwrap();
        let seen: Vec<(String, &str, &str, Option<&str>)> = history
            .iter()
            .map(|entry| {
                (
                    entry.record.email().unwrap().to_string(),
                    entry.operation.as_str(),
                    entry.actor.door.as_str(),
                    entry.actor.request_id.as_deref(),
                )
            })
            .collect();
        let want = |address: &str, op, door, request| (address.to_owned(), op, door, Some(request));
        assert_eq!(
            seen,
            vec![
                want("a@x.io", "added", "v3", "r-a"),
                want("c@x.io", "added", "v3", "r-c"),
                want("e@x.io", "added", "v3", "r-e"),
                want("g@x.io", "added", "admin", "r-g"),
                want("a@x.io", "removed", "v3", "r-h"),
                want("i@x.io", "added", "v3", "r-i"),
            ]
        );
        let positions: Vec<i64> = history.iter().map(|e| e.position.0).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        // a and c share a row (d, of tenant u, ends it: a row is one
        // tenant's); e, g (another door), the removal and i have one each.
        // Tenant u's add is a row of its own.
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM journal WHERE tenant = 't'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, 5);
        let other = sql::journal(&conn, &u, &JournalQuery::newest_first(10)).unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].actor.request_id.as_deref(), Some("r-d"));
        // The failed commands' addresses are nowhere.
        let held: i64 = conn
            .query_row(
                "SELECT count(*) FROM suppressions WHERE email IN ('b@x.io', 'f@x.io')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(held, 0);
        // Each address's own history reads the same entries.
        let of_c = sql::journal(
            &conn,
            &t,
            &JournalQuery {
                email: Some(Email::parse("c@x.io").unwrap()),
                ..JournalQuery::newest_first(10)
            },
        )
        .unwrap();
        assert_eq!(of_c.len(), 1);
        assert_eq!(of_c[0].actor.request_id.as_deref(), Some("r-c"));
        assert_eq!(of_c[0].position, history[1].position);
    }
}
