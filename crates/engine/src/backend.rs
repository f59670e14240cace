//! The interface that every store of suppressions implements.
//!
//! A backend keeps data and keeps it consistent (identity, uniqueness,
//! atomicity); it knows no API's rules. Those live in [`crate::Engine`].

use std::fmt;

use async_trait::async_trait;
use hush_model::{
    Actor, Email, Group, GroupChanges, GroupId, GroupKey, JournalEntry, JournalQuery, ListFilter,
    MirrorFailure, MirrorName, MirrorState, NewGroup, NewSuppression, Page, PageRequest, Position,
    ScanCursor, Suppression, SuppressionId, TenantId, Timestamp,
};

use crate::EngineError;

/// What a backend can serve. An API call that needs a capability the backend
/// lacks is refused with [`EngineError::Unsupported`], never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub groups: bool,
    pub soft_and_block_bounces: bool,
    pub created_time_filter: bool,
    pub origins: bool,
    pub invalid_emails: bool,
    /// Whether removing entries by id costs one call whatever the tenant
    /// holds. Upstreams find ids by walking their lists, so many addresses
    /// are removed one address at a time there (`Engine::remove_addresses`).
    pub cheap_removal_by_id: bool,
    /// Whether the backend keeps a journal of its changes (hush's own
    /// stores). An upstream's changes are the provider's to record.
    pub journal: bool,
}

impl Capabilities {
    /// Everything: hush's own stores.
    pub const FULL: Self = Self {
        groups: true,
        soft_and_block_bounces: true,
        created_time_filter: true,
        origins: true,
        invalid_emails: true,
        cheap_removal_by_id: true,
        journal: true,
    };
}

/// One provider event to apply (`Backend::apply_events`): the key it is
/// remembered by (the provider's event id) and its changes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    pub key: String,
    pub changes: Vec<EventChange>,
}

/// One change a provider event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventChange {
    /// Record a suppression (a re-add of what is there changes nothing).
    Add(NewSuppression),
    /// Lift what the filter matches (a resubscribe, a reactivation).
    Remove(ListFilter),
}

/// What happened to one suppression of an add, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// Stored. `new` is false when an entry with the same identity was
    /// already there; that entry is returned unchanged, keeping its id and
    /// creation time (docs/mapping.md, "Re-adding").
    Added { suppression: Suppression, new: bool },
    /// The item's group does not exist (or was deleted meanwhile).
    UnknownGroup(GroupId),
    /// An upstream provider refused this one item and took the others
    /// (Postmark answers `Failed` per item: Postmark API docs, "Suppressions
    /// API");
    /// `message` is the provider's reason. hush's own stores never refuse.
    Refused { message: String },
}

#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// A short name for errors and logs: `sqlite`, `memory`, …
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities {
        Capabilities::FULL
    }

    /// What the backend can serve for one tenant. The same for every tenant
    /// except in a backend that routes tenants to different stores.
    fn capabilities_for(&self, _tenant: &TenantId) -> Capabilities {
        self.capabilities()
    }

    /// The name of the backend that serves one tenant, for its errors.
    fn name_for(&self, _tenant: &TenantId) -> &'static str {
        self.name()
    }

    /// How this backend's stored ids are shown to one tenant: hush's own
    /// stores number every tenant from one sequence, so they show ids
    /// through a per-tenant permutation (`ShownIds`). `None` shows ids as
    /// stored: an upstream's ids are the provider's own, which its
    /// clients also use there.
    fn shown_ids(&self, _tenant: &TenantId) -> Option<&hush_model::ShownIds> {
        None
    }

    /// Whether the backend can serve requests now (`/readyz`).
    async fn ready(&self) -> Result<(), EngineError>;

    /// Readiness of each backend behind this one, the default first: one
    /// for a plain backend, one per distinct backend for a router that
    /// serves tenants from several (`/readyz` reports each).
    async fn readiness(&self) -> Vec<(&'static str, Result<(), EngineError>)> {
        vec![(self.name(), self.ready().await)]
    }

    /// Adds suppressions atomically: either every outcome is stored and
    /// durable when this returns, or an error is returned and nothing is.
    /// Each new entry is journaled as `added` by `actor` in the same
    /// transaction; one that was already there writes nothing.
    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError>;

    /// Every entry of one address, in any scope, newest first.
    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError>;

    /// One page of a listing and its total, newest first.
    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError>;

    /// How many entries a filter matches.
    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError>;

    /// Up to `limit` entries strictly after `after`, newest first: keyset
    /// paging for walks over listings of any size.
    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError>;

    /// Removes every entry the filter matches; returns how many. Each is
    /// journaled whole as `removed`, in the same transaction.
    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError>;

    /// Removes entries by id; returns how many existed. Journaled as
    /// [`Backend::remove_matching`] is.
    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError>;

    /// Creates a group. Fails with [`EngineError::GroupKeyTaken`] or
    /// [`EngineError::GroupNameTaken`]. When the new group is the default,
    /// the previous default loses the flag in the same transaction (and
    /// that change is journaled too).
    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError>;

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError>;

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError>;

    /// Every group of the tenant, archived ones included, by id.
    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError>;

    /// Applies changes; `None` when the group does not exist. Setting
    /// `is_default` moves the flag atomically.
    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError>;

    /// Deletes a group and every suppression in it; false when it did not
    /// exist. Journals each suppression as `removed`, then the group as
    /// `group_deleted`, so that undoing newest first puts the group back
    /// before its members.
    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError>;

    /// Puts back suppressions exactly as they were, ids included, for a
    /// restore; journaled as `added`. Per item, false when its identity
    /// holds an entry again or its group is gone.
    async fn put_back(
        &self,
        _tenant: &TenantId,
        _items: Vec<Suppression>,
        _actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        Err(self.no_journal("restore"))
    }

    /// Puts back a deleted group with its id, for a restore; journaled as
    /// `group_created`. False when a group with its id exists; its key or
    /// name taken by another group is [`EngineError::GroupKeyTaken`] or
    /// [`EngineError::GroupNameTaken`].
    async fn put_back_group(
        &self,
        _tenant: &TenantId,
        _group: Group,
        _actor: &Actor,
    ) -> Result<bool, EngineError> {
        Err(self.no_journal("restore"))
    }

    /// A page of one tenant's journal.
    async fn journal(
        &self,
        _tenant: &TenantId,
        _query: &JournalQuery,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        Err(self.no_journal("read the journal"))
    }

    /// Up to `limit` entries of every tenant after `after`, oldest first:
    /// what `hush copy` carries.
    async fn journal_all(
        &self,
        _after: Option<Position>,
        _limit: u32,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        Err(self.no_journal("read the journal"))
    }

    /// Appends entries as they were written elsewhere (`hush copy`), in the
    /// order given, each with a new position.
    async fn append_journal(&self, _entries: Vec<JournalEntry>) -> Result<(), EngineError> {
        Err(self.no_journal("write a journal"))
    }

    /// Deletes up to `limit` of the oldest entries written before `before`;
    /// returns how many. Bounded, so that pruning never holds writes up.
    async fn prune_journal(&self, _before: Timestamp, _limit: u32) -> Result<u64, EngineError> {
        Ok(0)
    }

    /// Where a mirror of the tenant stands; the default state (nothing
    /// pushed yet) for a mirror never saved.
    async fn mirror_state(
        &self,
        _tenant: &TenantId,
        _mirror: &MirrorName,
    ) -> Result<MirrorState, EngineError> {
        Err(self.no_journal("keep a mirror's position"))
    }

    /// Saves a mirror's state and the refusals met on the way there, in one
    /// transaction, so that a refusal is recorded once and never
    /// without the position that moved past it.
    async fn save_mirror(
        &self,
        _tenant: &TenantId,
        _mirror: &MirrorName,
        _state: &MirrorState,
        _failures: &[MirrorFailure],
    ) -> Result<(), EngineError> {
        Err(self.no_journal("keep a mirror's position"))
    }

    /// Up to `limit` refusals of a mirror, newest first.
    async fn mirror_failures(
        &self,
        _tenant: &TenantId,
        _mirror: &MirrorName,
        _limit: u32,
    ) -> Result<Vec<MirrorFailure>, EngineError> {
        Err(self.no_journal("keep a mirror's position"))
    }

    /// Forgets the refusals of a mirror at these positions (retried and
    /// taken, or their entries pruned).
    async fn clear_mirror_failures(
        &self,
        _tenant: &TenantId,
        _mirror: &MirrorName,
        _positions: &[Position],
    ) -> Result<(), EngineError> {
        Err(self.no_journal("keep a mirror's position"))
    }

    /// Takes or renews the lease of a mirror for `holder` for `ttl`; `true`
    /// when `holder` has it. One process serves an embedded store, so it
    /// always has it; on PostgreSQL instances compete for it.
    async fn lease_mirror(
        &self,
        _tenant: &TenantId,
        _mirror: &MirrorName,
        _holder: &str,
        _ttl: std::time::Duration,
    ) -> Result<bool, EngineError> {
        Err(self.no_journal("keep a mirror's position"))
    }

    /// Applies one delivery of a webhook's events (`hook`: the provider and
    /// the hook's name) in one transaction: an event whose key the store
    /// has seen for that hook is skipped whole; the others' changes are
    /// made in order, each journaled as `actor`'s with the event's key as
    /// its event id, and their keys remembered. Returns, per event, whether
    /// it was new. Nothing is applied unless everything is. An upstream,
    /// which remembers nothing, uses [`apply_events_one_by_one`]. No default,
    /// so that no wrapper of a backend can forget to pass it on.
    async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError>;

    /// Forgets the event keys remembered before `before`; returns how many.
    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError>;

    /// Per key, whether `apply_events` has applied an event with it for
    /// this tenant and hook (and not forgotten it): so that what an event
    /// needs made first (its group) is made for new events only.
    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError>;

    /// The refusal of a journal operation by a backend that keeps none.
    fn no_journal(&self, operation: &'static str) -> EngineError {
        EngineError::Unsupported {
            backend: self.name(),
            operation,
        }
    }
}

/// `Backend::apply_events` for a backend that remembers no event keys (an
/// upstream: the provider is the store): each change by itself, journaled
/// nowhere, every event reported new. A redelivered event is applied again,
/// which the providers' own idempotent adds and removes absorb.
pub async fn apply_events_one_by_one<B: Backend + ?Sized>(
    backend: &B,
    tenant: &TenantId,
    events: Vec<ReceivedEvent>,
    actor: &Actor,
) -> Result<Vec<bool>, EngineError> {
    let mut applied = Vec::with_capacity(events.len());
    for event in events {
        let actor = actor.clone().with_event_id(event.key);
        for change in event.changes {
            match change {
                EventChange::Add(item) => {
                    backend.add(tenant, vec![item], &actor).await?;
                }
                EventChange::Remove(filter) => {
                    backend.remove_matching(tenant, &filter, &actor).await?;
                }
            }
        }
        applied.push(true);
    }
    Ok(applied)
}
