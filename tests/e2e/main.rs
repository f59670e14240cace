//! End-to-end: the real `hush` binary, started as a user would, spoken to
//! over a real socket.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod abuse;
mod coherence;
mod copy;
mod cross_api;
mod deployment;
mod full_disk;
mod gateway;
mod journal;
mod metrics;
mod mirrors;
#[cfg(hush_postgres_tests)]
mod multi_instance;
#[cfg(hush_postgres_tests)]
mod pg;
mod postgres;
mod sdk;
mod sdk_postmark;
mod sdk_sendpost;
mod sdk_v3;
mod sendpost;
mod support;
mod upstream;
mod v3;
mod webhooks;
