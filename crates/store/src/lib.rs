//! Backends that hold hush's suppressions.
//!
//! - [`MemoryBackend`]: process memory, for tests.
//! - [`SqliteBackend`]: one SQLite file in WAL mode, the embedded default
//!   (docs/backends.md). Writes go through one writer thread that
//!   commits many commands per fsync (group commit); reads use a small pool
//!   of read-only connections.
//! - [`PostgresBackend`]: a PostgreSQL database shared by several hush
//!   instances. Runtime queries only, so building needs no database.
//!
//! A backend keeps data consistent (identity, uniqueness, atomicity) and
//! knows no API's rules; those live in `hush_engine::Engine`.

mod lookup_index;
pub mod memory;
pub mod postgres;
pub mod sqlite;

pub use lookup_index::DEFAULT_LOOKUP_INDEX_MIB;
pub use memory::MemoryBackend;
pub use postgres::{PostgresBackend, PostgresOptions};
pub use sqlite::{SqliteBackend, SqliteOptions};
