//! hush's canonical model: the types every API maps onto and every backend
//! stores. Pure: no I/O, no HTTP, no async.
//!
//! docs/architecture.md lists these types and the engine's rules;
//! docs/mapping.md says how each API shows them.

mod email;
mod group;
mod ids;
mod journal;
mod mirror;
mod query;
mod shown_ids;
mod suppression;
mod timestamp;

pub use email::{Email, EmailError};
pub use group::{
    DEFAULT_STREAM_KEY, DEFAULT_STREAM_NAME, Group, GroupChanges, NewGroup, StreamType,
    UnsubscribeHandling,
};
pub use ids::{
    GROUP_KEY_MAX, GroupId, GroupKey, GroupKeyError, SuppressionId, TenantId, TenantIdError,
};
pub use journal::{
    Actor, Change, Door, JournalEntry, JournalOrder, JournalQuery, Operation, Position,
    RecordError, Recorded,
};
pub use mirror::{MirrorFailure, MirrorName, MirrorState};
pub use query::{
    EmailMatch, FilterError, ListFilter, MAX_FILTER_CHARS, MAX_WILDCARDS, Page, PageRequest,
    ScanCursor, ScopeFilter,
};
pub use shown_ids::ShownIds;
pub use suppression::{
    BounceClass, Kind, KindFamily, KindSet, NewSuppression, Origin, Scope, Suppression, has_nul,
};
pub use timestamp::{Timestamp, TimestampError};
