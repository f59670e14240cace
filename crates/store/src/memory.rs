//! A backend in process memory, for tests. Nothing survives the process.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, EngineError};
use hush_model::{
    Email, Group, GroupChanges, GroupId, GroupKey, KindFamily, ListFilter, NewGroup,
    NewSuppression, Page, PageRequest, ScanCursor, Scope, Suppression, SuppressionId, TenantId,
};

const NAME: &str = "memory";

/// Keeps every tenant's suppressions and groups in process memory behind one
/// lock. Ids of suppressions and of groups come from counters shared by all
/// tenants, starting at 1, so they increase across tenants as a database's
/// would.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: RwLock<State>,
    /// A key drawn per backend: its ids live as long as it does.
    shown_ids: ShownIdsOfMemory,
}

/// [`ShownIds`] with a fresh key, as `Default` needs.
#[derive(Debug)]
struct ShownIdsOfMemory(hush_model::ShownIds);

impl Default for ShownIdsOfMemory {
    fn default() -> Self {
        let mut key = [0_u8; 32];
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        key[..16].copy_from_slice(a.as_bytes());
        key[16..].copy_from_slice(b.as_bytes());
        Self(hush_model::ShownIds::new(key, 0))
    }
}

#[derive(Debug, Default)]
struct State {
    last_suppression: i64,
    last_group: i64,
    tenants: HashMap<TenantId, TenantData>,
}

type Identity = (Email, Scope, KindFamily);

#[derive(Debug, Default)]
struct TenantData {
    suppressions: BTreeMap<SuppressionId, Suppression>,
    identities: HashMap<Identity, SuppressionId>,
    groups: BTreeMap<GroupId, Group>,
}

impl TenantData {
    fn remove(&mut self, id: SuppressionId) -> bool {
        match self.suppressions.remove(&id) {
            Some(gone) => {
                self.identities
                    .remove(&(gone.email, gone.scope, gone.kind.family()));
                true
            }
            None => false,
        }
    }

    /// The entries a filter matches, newest first; with
    /// [`ListFilter::per_address`], only the newest of each address and
    /// scope.
    fn matching(&self, filter: &ListFilter) -> Vec<&Suppression> {
        let mut found: Vec<&Suppression> = self
            .suppressions
            .values()
            .filter(|s| filter.matches(s))
            .collect();
        newest_first(&mut found);
        if filter.per_address {
            let mut seen = HashSet::new();
            found.retain(|s| seen.insert((s.scope, &s.email)));
        }
        found
    }

    fn name_taken(&self, name: &str, except: Option<GroupId>) -> bool {
        self.groups
            .values()
            .any(|g| g.name == name && Some(g.id) != except)
    }

    fn clear_default(&mut self, except: GroupId) {
        for group in self.groups.values_mut() {
            if group.id != except {
                group.is_default = false;
            }
        }
    }
}

fn newest_first(items: &mut [&Suppression]) {
    items.sort_by_key(|s| Reverse((s.created_at, s.id)));
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>, EngineError> {
        self.state.read().map_err(|_| poisoned())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>, EngineError> {
        self.state.write().map_err(|_| poisoned())
    }

    /// Runs `f` on a tenant's data, or returns `absent` when the tenant has
    /// none.
    fn with_tenant<T>(
        &self,
        tenant: &TenantId,
        absent: T,
        f: impl FnOnce(&TenantData) -> T,
    ) -> Result<T, EngineError> {
        let state = self.read()?;
        Ok(state.tenants.get(tenant).map_or(absent, f))
    }
}

/// A panic while the lock was held may have left the data half changed, so
/// the backend refuses to go on rather than serve it.
fn poisoned() -> EngineError {
    EngineError::internal(NAME, "the in-memory state was poisoned by a panic")
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn shown_ids(&self, _tenant: &TenantId) -> Option<&hush_model::ShownIds> {
        Some(&self.shown_ids.0)
    }

    async fn ready(&self) -> Result<(), EngineError> {
        self.read().map(|_| ())
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        let mut guard = self.write()?;
        let state = &mut *guard;
        let data = state.tenants.entry(tenant.clone()).or_default();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            match item.scope {
                Scope::Group(id) if !data.groups.contains_key(&id) => {
                    outcomes.push(AddOutcome::UnknownGroup(id));
                    continue;
                }
                Scope::Global | Scope::Group(_) => {}
            }
            let identity = (item.email.clone(), item.scope, item.kind.family());
            let existing = data
                .identities
                .get(&identity)
                .and_then(|id| data.suppressions.get(id));
            if let Some(existing) = existing {
                outcomes.push(AddOutcome::Added {
                    suppression: existing.clone(),
                    new: false,
                });
                continue;
            }
            state.last_suppression += 1;
            let id = SuppressionId(state.last_suppression);
            let suppression = Suppression {
                id,
                tenant: tenant.clone(),
                email: item.email,
                scope: item.scope,
                kind: item.kind,
                origin: item.origin,
                created_at: item.created_at,
            };
            data.identities.insert(identity, id);
            data.suppressions.insert(id, suppression.clone());
            outcomes.push(AddOutcome::Added {
                suppression,
                new: true,
            });
        }
        Ok(outcomes)
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.with_tenant(tenant, Vec::new(), |data| {
            let mut found: Vec<&Suppression> = data
                .suppressions
                .values()
                .filter(|s| &s.email == email)
                .collect();
            newest_first(&mut found);
            found.into_iter().cloned().collect()
        })
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        let empty = Page {
            items: Vec::new(),
            total: 0,
        };
        self.with_tenant(tenant, empty, |data| {
            let found = data.matching(filter);
            let total = to_u64(found.len());
            let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let items = found
                .into_iter()
                .skip(offset)
                .take(page.limit as usize)
                .cloned()
                .collect();
            Page { items, total }
        })
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        self.with_tenant(tenant, 0, |data| to_u64(data.matching(filter).len()))
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.with_tenant(tenant, Vec::new(), |data| {
            data.matching(filter)
                .into_iter()
                .filter(|s| after.is_none_or(|cursor| cursor.is_before(s)))
                .take(limit as usize)
                .cloned()
                .collect()
        })
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
    ) -> Result<u64, EngineError> {
        let mut state = self.write()?;
        let Some(data) = state.tenants.get_mut(tenant) else {
            return Ok(0);
        };
        let doomed: Vec<SuppressionId> = data
            .suppressions
            .values()
            .filter(|s| filter.matches(s))
            .map(|s| s.id)
            .collect();
        for id in &doomed {
            data.remove(*id);
        }
        Ok(to_u64(doomed.len()))
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
    ) -> Result<u64, EngineError> {
        let mut state = self.write()?;
        let Some(data) = state.tenants.get_mut(tenant) else {
            return Ok(0);
        };
        let unique: HashSet<SuppressionId> = ids.iter().copied().collect();
        Ok(to_u64(
            unique.into_iter().filter(|id| data.remove(*id)).count(),
        ))
    }

    async fn create_group(&self, tenant: &TenantId, group: NewGroup) -> Result<Group, EngineError> {
        let mut guard = self.write()?;
        let state = &mut *guard;
        let data = state.tenants.entry(tenant.clone()).or_default();
        if data.groups.values().any(|g| g.key == group.key) {
            return Err(EngineError::GroupKeyTaken(group.key.as_str().to_owned()));
        }
        if data.name_taken(&group.name, None) {
            return Err(EngineError::GroupNameTaken(group.name));
        }
        state.last_group += 1;
        let id = GroupId(state.last_group);
        if group.is_default {
            data.clear_default(id);
        }
        let created = Group {
            id,
            tenant: tenant.clone(),
            key: group.key,
            name: group.name,
            description: group.description,
            is_default: group.is_default,
            stream_type: group.stream_type,
            unsubscribe_handling: group.unsubscribe_handling,
            archived_at: None,
            created_at: group.created_at,
            updated_at: None,
        };
        data.groups.insert(id, created.clone());
        Ok(created)
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        self.with_tenant(tenant, None, |data| data.groups.get(&id).cloned())
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        self.with_tenant(tenant, None, |data| {
            data.groups.values().find(|g| &g.key == key).cloned()
        })
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        self.with_tenant(tenant, Vec::new(), |data| {
            data.groups.values().cloned().collect()
        })
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
    ) -> Result<Option<Group>, EngineError> {
        let mut state = self.write()?;
        let Some(data) = state.tenants.get_mut(tenant) else {
            return Ok(None);
        };
        if !data.groups.contains_key(&id) {
            return Ok(None);
        }
        if let Some(name) = changes
            .name
            .as_ref()
            .filter(|n| data.name_taken(n, Some(id)))
        {
            return Err(EngineError::GroupNameTaken(name.clone()));
        }
        if changes.is_default == Some(true) {
            data.clear_default(id);
        }
        let Some(group) = data.groups.get_mut(&id) else {
            return Ok(None);
        };
        group.apply(changes);
        Ok(Some(group.clone()))
    }

    async fn delete_group(&self, tenant: &TenantId, id: GroupId) -> Result<bool, EngineError> {
        let mut state = self.write()?;
        let Some(data) = state.tenants.get_mut(tenant) else {
            return Ok(false);
        };
        if data.groups.remove(&id).is_none() {
            return Ok(false);
        }
        let doomed: Vec<SuppressionId> = data
            .suppressions
            .values()
            .filter(|s| s.scope == Scope::Group(id))
            .map(|s| s.id)
            .collect();
        for gone in doomed {
            data.remove(gone);
        }
        Ok(true)
    }
}
