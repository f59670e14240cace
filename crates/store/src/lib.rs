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

/// Reads a store's shown-id settings as both SQL stores keep them in
/// `hush_meta`: the key as 64 hex digits, the legacy bound as a number.
pub(crate) fn shown_ids_from(key: &str, legacy: &str) -> Result<hush_model::ShownIds, String> {
    let mut bytes = [0_u8; 32];
    hex::decode_to_slice(key.trim(), &mut bytes)
        .map_err(|e| format!("hush_meta.shown_ids_key is not 32 bytes of hexadecimal: {e}"))?;
    let legacy = legacy
        .trim()
        .parse()
        .map_err(|_| "hush_meta.legacy_groups_up_to is not a number".to_owned())?;
    Ok(hush_model::ShownIds::new(bytes, legacy))
}
