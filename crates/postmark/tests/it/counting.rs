//! A backend that counts the scans made through it, to show that a dump
//! reads the store step by step as the client reads the body.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, EngineError};
use hush_model::{
    Actor, Email, Group, GroupChanges, GroupId, GroupKey, ListFilter, NewGroup, NewSuppression,
    Page, PageRequest, ScanCursor, Suppression, SuppressionId, TenantId, Timestamp,
};
use hush_store::MemoryBackend;

#[derive(Debug, Default)]
pub struct CountingBackend {
    inner: MemoryBackend,
    pub scans: AtomicUsize,
    pub largest_scan: AtomicUsize,
    pub lists: AtomicUsize,
    pub adds: AtomicUsize,
    pub removals: AtomicUsize,
}

impl CountingBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn scans(&self) -> usize {
        self.scans.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> (usize, usize) {
        (
            self.adds.load(Ordering::SeqCst),
            self.removals.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl Backend for CountingBackend {
    fn name(&self) -> &'static str {
        "counting"
    }

    async fn ready(&self) -> Result<(), EngineError> {
        self.inner.ready().await
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        self.adds.fetch_add(1, Ordering::SeqCst);
        self.inner.add(tenant, items, actor).await
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.inner.entries(tenant, email).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(tenant, filter, page).await
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        self.inner.count(tenant, filter).await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.largest_scan
            .fetch_max(limit as usize, Ordering::SeqCst);
        self.inner.scan(tenant, filter, after, limit).await
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.inner.remove_matching(tenant, filter, actor).await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.removals.fetch_add(1, Ordering::SeqCst);
        self.inner.remove_ids(tenant, ids, actor).await
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        self.inner.create_group(tenant, group, actor).await
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        self.inner.group(tenant, id).await
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        self.inner.group_by_key(tenant, key).await
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        self.inner.groups(tenant).await
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        self.inner.update_group(tenant, id, changes, actor).await
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        self.inner.delete_group(tenant, id, actor).await
    }

    async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<hush_engine::ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        self.inner.apply_events(tenant, hook, events, actor).await
    }

    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        self.inner.prune_receipts(before).await
    }

    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        self.inner.events_seen(tenant, hook, keys).await
    }
}
