//! The SendPost subaccount suppressions API (seed 004, specs/sendpost.md)
//! over hush's shared engine: numeric reason codes, nanosecond timestamps
//! and `{"error":{…}}` errors. Not yet served; see docs/architecture.md for
//! where its routes mount.
