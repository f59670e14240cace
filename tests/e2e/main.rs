//! End-to-end: the real `hush` binary, started as a user would, spoken to
//! over a real socket.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod gateway;
mod sdk;
mod sdk_v3;
mod support;
mod v3;
