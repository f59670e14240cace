//! Compiles the PostgreSQL integration tests in only when a server is named.
//!
//! With `HUSH_TEST_POSTGRES_URL` set they are required (an unreachable
//! server fails them); without it they are replaced by one ignored test
//! whose reason says that they were skipped, so `cargo test` reports it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(hush_postgres_tests)");
    println!("cargo::rerun-if-env-changed=HUSH_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("HUSH_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=hush_postgres_tests");
    }
}
