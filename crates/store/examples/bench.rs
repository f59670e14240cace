//! Import and lookup rates of a store, for `docs/benchmarks.md`. Not a test.
//!
//! ```sh
//! cargo run --release -p hush-store --example bench -- sqlite:/tmp/bench.db 1000000
//! cargo run --release -p hush-store --example bench -- postgres://postgres@127.0.0.1/bench 1000000
//! ```
//!
//! Imports `N` global hard bounces for one tenant through `Backend::add` in
//! batches of `hush_engine::ADD_BATCH` (what an import through the engine
//! does), one batch at a time; then looks up random addresses with
//! `Backend::entries` (what a send check does) from 8 concurrent tasks.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use hush_engine::{ADD_BATCH, Backend};
use hush_model::{
    Actor, BounceClass, Door, Email, Kind, NewSuppression, Origin, Scope, TenantId, Timestamp,
};
use hush_store::{PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions};

const LOOKUPS: usize = 40_000;
const LOOKUP_TASKS: usize = 8;

fn address(i: usize) -> Email {
    Email::parse(&format!("user{i}@bench{}.example", i % 97)).unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(store), Some(n)) = (args.get(1), args.get(2)) else {
        panic!("usage: bench sqlite:PATH|postgres://URL N");
    };
    let n: usize = n.parse().unwrap();
    let backend: Arc<dyn Backend> = if let Some(path) = store.strip_prefix("sqlite:") {
        let _ = std::fs::remove_file(path);
        Arc::new(SqliteBackend::open(SqliteOptions::new(path)).unwrap())
    } else {
        Arc::new(
            PostgresBackend::connect(PostgresOptions::from_url(store).unwrap())
                .await
                .unwrap(),
        )
    };
    let tenant = TenantId::parse("bench").unwrap();
    let importer = Actor::new(Door::IMPORT).with_key("bench");

    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + ADD_BATCH).min(n);
        let items = (i..end)
            .map(|k| NewSuppression {
                email: address(k),
                scope: Scope::Global,
                kind: Kind::Bounce {
                    class: BounceClass::Hard,
                    status: Some("5.1.1".into()),
                    reason: Some("550 5.1.1 User unknown".into()),
                },
                origin: Origin::Recipient,
                created_at: Timestamp::from_nanos(1_700_000_000_000_000_000 + k as i64),
            })
            .collect();
        backend.add(&tenant, items, &importer).await.unwrap();
        i = end;
    }
    let import = started.elapsed();
    println!(
        "{} import: {n} entries in {:.1} s = {:.0} entries/s",
        backend.name(),
        import.as_secs_f64(),
        n as f64 / import.as_secs_f64()
    );

    let started = Instant::now();
    let tasks: Vec<_> = (0..LOOKUP_TASKS)
        .map(|t| {
            let (backend, tenant) = (Arc::clone(&backend), tenant.clone());
            tokio::spawn(async move {
                // A cheap deterministic spread over the imported addresses.
                let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ t as u64;
                for _ in 0..LOOKUPS / LOOKUP_TASKS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = (x % n as u64) as usize;
                    let found = backend.entries(&tenant, &address(k)).await.unwrap();
                    assert_eq!(found.len(), 1);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let lookups = started.elapsed();
    println!(
        "{} lookups: {LOOKUPS} by address from {LOOKUP_TASKS} tasks in {:.1} s = {:.0} lookups/s",
        backend.name(),
        lookups.as_secs_f64(),
        LOOKUPS as f64 / lookups.as_secs_f64()
    );
}
