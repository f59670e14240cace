//! A backend that carries a guard which cleans up after it (a temporary
//! database), dropped after the backend.

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, EngineError};
use hush_model::{
    Email, Group, GroupChanges, GroupId, GroupKey, ListFilter, NewGroup, NewSuppression, Page,
    PageRequest, ScanCursor, Suppression, SuppressionId, TenantId,
};

/// Fields drop in order: the backend closes before the guard cleans up.
#[derive(Debug)]
pub struct Guarded<G> {
    pub backend: Box<dyn Backend>,
    /// Held only for its `Drop`.
    #[allow(dead_code)]
    pub guard: G,
}

#[async_trait]
impl<G: std::fmt::Debug + Send + Sync + 'static> Backend for Guarded<G> {
    fn name(&self) -> &'static str {
        self.backend.name()
    }

    async fn ready(&self) -> Result<(), EngineError> {
        self.backend.ready().await
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        self.backend.add(tenant, items).await
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
    ) -> Result<u64, EngineError> {
        self.backend.remove_matching(tenant, filter).await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
    ) -> Result<u64, EngineError> {
        self.backend.remove_ids(tenant, ids).await
    }

    async fn create_group(&self, tenant: &TenantId, group: NewGroup) -> Result<Group, EngineError> {
        self.backend.create_group(tenant, group).await
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
    ) -> Result<Option<Group>, EngineError> {
        self.backend.update_group(tenant, id, changes).await
    }

    async fn delete_group(&self, tenant: &TenantId, id: GroupId) -> Result<bool, EngineError> {
        self.backend.delete_group(tenant, id).await
    }
}
