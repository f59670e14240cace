//! The SendPost API in process: every route, parameter error and shape, as
//! a client sees it, over the memory backend.

#![allow(clippy::unwrap_used)]

mod create;
mod delete;
mod list;
mod support;
mod upstream;
mod wire;
