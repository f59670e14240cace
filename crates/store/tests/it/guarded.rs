//! A backend that carries a guard which cleans up after it (a temporary
//! database), dropped after the backend.

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, Capabilities, EngineError};
use hush_model::{
    Actor, Email, Group, GroupChanges, GroupId, GroupKey, JournalEntry, JournalQuery, ListFilter,
    MirrorFailure, MirrorName, MirrorState, NewGroup, NewSuppression, Page, PageRequest, Position,
    ScanCursor, Suppression, SuppressionId, TenantId, Timestamp,
};

/// Fields drop in order: the backend closes before the guard cleans up.
#[derive(Debug)]
pub struct Guarded<G> {
    pub backend: Box<dyn Backend>,
    /// Held only for its `Drop`.
    #[allow(dead_code)]
    pub guard: G,
}

/// Every method forwards, the journal's included: a default left in place
/// would test the trait's refusal instead of the backend.
#[async_trait]
impl<G: std::fmt::Debug + Send + Sync + 'static> Backend for Guarded<G> {
    fn name(&self) -> &'static str {
        self.backend.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.backend.capabilities()
    }

    fn shown_ids(&self, tenant: &TenantId) -> Option<&hush_model::ShownIds> {
        self.backend.shown_ids(tenant)
    }

    async fn ready(&self) -> Result<(), EngineError> {
        self.backend.ready().await
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        self.backend.add(tenant, items, actor).await
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.backend.entries(tenant, email).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        self.backend.list(tenant, filter, page).await
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        self.backend.count(tenant, filter).await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.backend.scan(tenant, filter, after, limit).await
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.backend.remove_matching(tenant, filter, actor).await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.backend.remove_ids(tenant, ids, actor).await
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        self.backend.create_group(tenant, group, actor).await
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        self.backend.group(tenant, id).await
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        self.backend.group_by_key(tenant, key).await
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        self.backend.groups(tenant).await
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        self.backend.update_group(tenant, id, changes, actor).await
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        self.backend.delete_group(tenant, id, actor).await
    }

    async fn put_back(
        &self,
        tenant: &TenantId,
        items: Vec<Suppression>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        self.backend.put_back(tenant, items, actor).await
    }

    async fn put_back_group(
        &self,
        tenant: &TenantId,
        group: Group,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        self.backend.put_back_group(tenant, group, actor).await
    }

    async fn journal(
        &self,
        tenant: &TenantId,
        query: &JournalQuery,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        self.backend.journal(tenant, query).await
    }

    async fn journal_all(
        &self,
        after: Option<Position>,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        self.backend.journal_all(after, limit).await
    }

    async fn mirror_state(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
    ) -> Result<MirrorState, EngineError> {
        self.backend.mirror_state(tenant, mirror).await
    }

    async fn save_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        state: &MirrorState,
        failures: &[MirrorFailure],
    ) -> Result<(), EngineError> {
        self.backend
            .save_mirror(tenant, mirror, state, failures)
            .await
    }

    async fn mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        limit: u32,
    ) -> Result<Vec<MirrorFailure>, EngineError> {
        self.backend.mirror_failures(tenant, mirror, limit).await
    }

    async fn clear_mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        positions: &[Position],
    ) -> Result<(), EngineError> {
        self.backend
            .clear_mirror_failures(tenant, mirror, positions)
            .await
    }

    async fn lease_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, EngineError> {
        self.backend.lease_mirror(tenant, mirror, holder, ttl).await
    }

    async fn append_journal(&self, entries: Vec<JournalEntry>) -> Result<(), EngineError> {
        self.backend.append_journal(entries).await
    }

    async fn prune_journal(&self, before: Timestamp, limit: u32) -> Result<u64, EngineError> {
        self.backend.prune_journal(before, limit).await
    }

    async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<hush_engine::ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        self.backend.apply_events(tenant, hook, events, actor).await
    }

    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        self.backend.prune_receipts(before).await
    }

    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        self.backend.events_seen(tenant, hook, keys).await
    }
}
