//! hush's engine: the rules every API shares (idempotent adds, group rules,
//! batching, send checks) and the [`Backend`] trait that storage
//! implements. It knows no wire format.

pub mod access;
mod authority;
mod backend;
mod capability;
#[cfg(feature = "conformance")]
pub mod conformance;
mod engine;
mod error;
mod import;
mod journal;
mod mirror;
pub mod request;

pub use authority::{Authority, GuardedAdd, GuardedRemoval};
pub use backend::{
    AddOutcome, Backend, Capabilities, EventChange, ReceivedEvent, apply_events_one_by_one,
};
pub use engine::{
    ADD_BATCH, Engine, GROUP_DESCRIPTION_MAX, GROUP_NAME_MAX, GroupSpec, REMOVE_BATCH,
};
pub use error::{EngineError, Throttle, UNAVAILABLE_LOG_INTERVAL, log_unavailable};
pub use import::Importer;
pub use journal::{PRUNE_STEP, RestoreWindow, Restored};
pub use mirror::{MirrorResync, MirrorRetry, MirrorStep, MirrorTarget, is_temporary};
