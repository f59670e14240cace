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

use super::{FULL, NAME, StoreError, is_full, sql};

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
    for job in batch.iter_mut() {
        execute(conn, "SAVEPOINT command")?;
        let ran = job.run(conn);
        if ran == Ran::NoSpace {
            *no_space = true;
        }
        if ran != Ran::Done {
            // If the failure ended the whole transaction (SQLite does that
            // for some errors, e.g. a full disk), there is no savepoint left
            // and this fails the batch, which is what is wanted.
            execute(conn, "ROLLBACK TO command")?;
        }
        execute(conn, "RELEASE command")?;
    }
    execute(conn, "COMMIT").map(|()| true)
}

fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
