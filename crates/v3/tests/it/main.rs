//! The v3 API in process: every route of the bounce slice, as a client sees
//! it, over the memory backend.

#![allow(clippy::unwrap_used)]

mod bounces;
mod support;
