//! hush-store's integration tests: the shared conformance suite against
//! every backend, and what only the SQLite and PostgreSQL backends promise.

#![allow(clippy::unwrap_used)]

mod memory {
    hush_engine::backend_conformance!(|| async {
        std::sync::Arc::new(hush_store::MemoryBackend::new())
            as std::sync::Arc<dyn hush_engine::Backend>
    });
}

mod sqlite {
    hush_engine::backend_conformance!(|| async {
        std::sync::Arc::new(crate::support::TempSqlite::new())
            as std::sync::Arc<dyn hush_engine::Backend>
    });
}

#[cfg(hush_postgres_tests)]
mod guarded;
mod journal;
mod mirror_push;
#[cfg(hush_postgres_tests)]
mod postgres;
#[cfg(hush_postgres_tests)]
mod postgres_journal;
#[cfg(hush_postgres_tests)]
mod postgres_mirror;
mod postgres_setup;
mod sqlite_file;
mod support;

/// Stands in for the PostgreSQL tests when no server is named, so that the
/// run says they were skipped. Running it (`--ignored`) says what to do.
#[cfg(not(hush_postgres_tests))]
#[test]
#[ignore = "PostgreSQL tests skipped: HUSH_TEST_POSTGRES_URL is not set"]
fn postgres_tests_skipped() {
    panic!(
        "set HUSH_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) \
         to run the PostgreSQL tests"
    );
}
