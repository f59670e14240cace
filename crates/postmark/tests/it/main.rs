//! The Postmark API in process: every route, error code and per-item case,
//! as a client sees it, over the memory backend.

#![allow(clippy::unwrap_used)]

mod changes;
mod conventions;
mod counting;
mod dump;
mod streams;
mod support;
mod upstream;
mod upstream_requests;
