//! A small pool of read-only connections. Reads that may touch many rows
//! run on tokio's blocking threads; a semaphore keeps at most one of them
//! per connection in flight. Point reads by an index key run on the
//! caller's thread ([`ReadPool::run_inline`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use hush_engine::EngineError;
use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::{NAME, StoreError, schema};

#[derive(Debug)]
pub(super) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub(super) fn open(path: PathBuf, size: usize) -> Result<Self, StoreError> {
        let size = size.max(1);
        let idle = (0..size)
            .map(|_| schema::open_reader(&path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            path,
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `read` on an idle connection on a blocking thread.
    pub(super) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| EngineError::internal(NAME, e))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.take()?;
            let result = read(&mut conn);
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|e| EngineError::internal(NAME, format!("a read task failed: {e}")))?
        .map_err(EngineError::from)
    }

    /// Runs `read` on an idle connection on the calling thread. For reads
    /// that walk a handful of index entries (an address's entries): they take
    /// microseconds, less than handing them to a blocking thread and waking
    /// the caller again, which a profile of the lookup benchmark showed to be
    /// the larger part of a lookup's cost (docs/benchmarks.md). It takes no
    /// permit: when every connection is busy it opens another, so the pool
    /// grows to at most the number of threads reading at once.
    pub(super) fn run_inline<T>(
        &self,
        read: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, EngineError> {
        let mut conn = self.take()?;
        let result = read(&mut conn);
        self.give_back(conn);
        result.map_err(EngineError::from)
    }

    /// An idle connection. There is one per permit, so the list is empty only
    /// if a read panicked and lost its connection; then a new one replaces it.
    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}
