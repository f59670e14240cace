//! The v3 API in process: every route, in both shapes, as a client sees
//! it, over the memory backend.

#![allow(clippy::unwrap_used)]

mod bounces;
mod by_address;
mod global;
mod groups;
mod imports;
mod sendgrid;
mod spam_reports;
mod support;
mod upstream;
