//! The Postmark suppressions API (seed 003, specs/postmark.md) over hush's
//! shared engine: message-stream suppressions (dump, create, delete with a
//! status per item) and the message-stream calls the SDKs make, with
//! Postmark's `{"ErrorCode","Message"}` errors. Not yet served; see
//! docs/architecture.md for where its routes mount.
