//! hush-store's integration tests: the shared conformance suite against
//! both backends, and what only the SQLite backend promises.

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

mod sqlite_file;
mod support;
