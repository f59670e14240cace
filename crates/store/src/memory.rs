//! A backend in process memory, for tests. Nothing survives the process.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, Engine, EngineError, EventChange, ReceivedEvent};
use hush_model::{
    Actor, Change, Email, Group, GroupChanges, GroupId, GroupKey, JournalEntry, JournalOrder,
    JournalQuery, KindFamily, ListFilter, MirrorFailure, MirrorName, MirrorState, NewGroup,
    NewSuppression, Operation, Page, PageRequest, Position, ScanCursor, Scope, Suppression,
    SuppressionId, TenantId, Timestamp,
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
    /// Every tenant's journal, oldest first. Entries are appended under the
    /// same write lock as their change, so readers see commit order.
    journal: Vec<JournalEntry>,
    /// The last position given, kept apart from the journal so that one
    /// pruned empty does not hand out positions a reader has seen.
    last_position: i64,
    /// The webhook events applied, by tenant, hook and key, with when.
    receipts: HashMap<(TenantId, String, String), Timestamp>,
    /// Each mirror's state and refusals, oldest first.
    mirrors: HashMap<(TenantId, MirrorName), (MirrorState, Vec<MirrorFailure>)>,
}

impl State {
    fn record(&mut self, changes: Vec<Change>, actor: &Actor) {
        let at = Engine::now();
        for change in changes {
            let position = self.next_position();
            self.journal.push(change.entry(position, at, actor));
        }
    }

    fn next_position(&mut self) -> Position {
        self.last_position += 1;
        Position(self.last_position)
    }

    /// Stores what is new of `items`: the outcomes, and the changes to
    /// journal.
    fn add(
        &mut self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
    ) -> (Vec<AddOutcome>, Vec<Change>) {
        let data = self.tenants.entry(tenant.clone()).or_default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut changes = Vec::new();
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
            self.last_suppression += 1;
            let id = SuppressionId(self.last_suppression);
            let suppression = Suppression {
                id,
                tenant: tenant.clone(),
                email: item.email,
                scope: item.scope,
                kind: item.kind,
                origin: item.origin,
                created_at: item.created_at,
            };
            data.insert(suppression.clone());
            changes.push(Change::added(suppression.clone()));
            outcomes.push(AddOutcome::Added {
                suppression,
                new: true,
            });
        }
        (outcomes, changes)
    }

    /// Removes what `filter` matches: the changes to journal.
    fn remove_matching(&mut self, tenant: &TenantId, filter: &ListFilter) -> Vec<Change> {
        let Some(data) = self.tenants.get_mut(tenant) else {
            return Vec::new();
        };
        let mut doomed: Vec<SuppressionId> = data
            .suppressions
            .values()
            .filter(|s| filter.matches(s))
            .map(|s| s.id)
            .collect();
        doomed.sort_unstable();
        doomed
            .into_iter()
            .filter_map(|id| data.remove(id))
            .map(Change::removed)
            .collect()
    }
}

type Identity = (Email, Scope, KindFamily);

#[derive(Debug, Default)]
struct TenantData {
    suppressions: BTreeMap<SuppressionId, Suppression>,
    identities: HashMap<Identity, SuppressionId>,
    groups: BTreeMap<GroupId, Group>,
}

impl TenantData {
    fn remove(&mut self, id: SuppressionId) -> Option<Suppression> {
        let gone = self.suppressions.remove(&id)?;
        self.identities
            .remove(&(gone.email.clone(), gone.scope, gone.kind.family()));
        Some(gone)
    }

    fn insert(&mut self, suppression: Suppression) {
        let identity = (
            suppression.email.clone(),
            suppression.scope,
            suppression.kind.family(),
        );
        self.identities.insert(identity, suppression.id);
        self.suppressions.insert(suppression.id, suppression);
    }

    /// Whether a put-back of `s` finds its identity free and its group there.
    fn fits(&self, s: &Suppression) -> bool {
        let group_there = match s.scope {
            Scope::Global => true,
            Scope::Group(id) => self.groups.contains_key(&id),
        };
        group_there
            && !self.suppressions.contains_key(&s.id)
            && !self
                .identities
                .contains_key(&(s.email.clone(), s.scope, s.kind.family()))
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

    /// Takes the default flag off every group but `except`; the changes,
    /// for the journal.
    fn clear_default(&mut self, except: GroupId) -> Vec<Change> {
        let mut changes = Vec::new();
        for group in self.groups.values_mut() {
            if group.id != except && group.is_default {
                let before = group.clone();
                group.is_default = false;
                changes.push(Change::group(
                    Operation::GroupChanged,
                    group.clone(),
                    Some(before),
                ));
            }
        }
        changes
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
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        let mut state = self.write()?;
        let (outcomes, changes) = state.add(tenant, items);
        state.record(changes, actor);
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
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        let mut state = self.write()?;
        let changes = state.remove_matching(tenant, filter);
        let removed = to_u64(changes.len());
        state.record(changes, actor);
        Ok(removed)
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        let mut guard = self.write()?;
        let state = &mut *guard;
        let Some(data) = state.tenants.get_mut(tenant) else {
            return Ok(0);
        };
        let mut unique: Vec<SuppressionId> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let changes: Vec<Change> = unique
            .into_iter()
            .filter_map(|id| data.remove(id))
            .map(Change::removed)
            .collect();
        let removed = to_u64(changes.len());
        state.record(changes, actor);
        Ok(removed)
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
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
        let mut changes = if group.is_default {
            data.clear_default(id)
        } else {
            Vec::new()
        };
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
        changes.push(Change::group(
            Operation::GroupCreated,
            created.clone(),
            None,
        ));
        state.record(changes, actor);
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
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        let mut guard = self.write()?;
        let state = &mut *guard;
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
        let mut journaled = if changes.is_default == Some(true) {
            data.clear_default(id)
        } else {
            Vec::new()
        };
        let Some(group) = data.groups.get_mut(&id) else {
            return Ok(None);
        };
        let before = group.clone();
        group.apply(changes);
        let after = group.clone();
        journaled.push(Change::group(
            Operation::GroupChanged,
            after.clone(),
            Some(before),
        ));
        state.record(journaled, actor);
        Ok(Some(after))
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        let mut guard = self.write()?;
        let state = &mut *guard;
        let Some(data) = state.tenants.get_mut(tenant) else {
            return Ok(false);
        };
        let Some(group) = data.groups.remove(&id) else {
            return Ok(false);
        };
        let doomed: Vec<SuppressionId> = data
            .suppressions
            .values()
            .filter(|s| s.scope == Scope::Group(id))
            .map(|s| s.id)
            .collect();
        let mut changes: Vec<Change> = doomed
            .into_iter()
            .filter_map(|gone| data.remove(gone))
            .map(Change::removed)
            .collect();
        changes.push(Change::group(Operation::GroupDeleted, group, None));
        state.record(changes, actor);
        Ok(true)
    }

    async fn put_back(
        &self,
        tenant: &TenantId,
        items: Vec<Suppression>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        let mut guard = self.write()?;
        let state = &mut *guard;
        let data = state.tenants.entry(tenant.clone()).or_default();
        let mut changes = Vec::new();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let fits = &item.tenant == tenant && data.fits(&item);
            if fits {
                // An id carried from another store may be ahead of this
                // one's counter, which must never hand it out again.
                state.last_suppression = state.last_suppression.max(item.id.0);
                data.insert(item.clone());
                changes.push(Change::added(item));
            }
            outcomes.push(fits);
        }
        state.record(changes, actor);
        Ok(outcomes)
    }

    async fn put_back_group(
        &self,
        tenant: &TenantId,
        group: Group,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        let mut guard = self.write()?;
        let state = &mut *guard;
        let data = state.tenants.entry(tenant.clone()).or_default();
        if data.groups.contains_key(&group.id) {
            return Ok(false);
        }
        if data.groups.values().any(|g| g.key == group.key) {
            return Err(EngineError::GroupKeyTaken(group.key.as_str().to_owned()));
        }
        if data.name_taken(&group.name, None) {
            return Err(EngineError::GroupNameTaken(group.name));
        }
        let mut changes = if group.is_default {
            data.clear_default(group.id)
        } else {
            Vec::new()
        };
        state.last_group = state.last_group.max(group.id.0);
        data.groups.insert(group.id, group.clone());
        changes.push(Change::group(Operation::GroupCreated, group, None));
        state.record(changes, actor);
        Ok(true)
    }

    async fn journal(
        &self,
        tenant: &TenantId,
        query: &JournalQuery,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        let state = self.read()?;
        let admitted = |e: &&JournalEntry| &e.tenant == tenant && query.admits(e);
        let limit = query.limit as usize;
        Ok(match query.order {
            JournalOrder::NewestFirst => state
                .journal
                .iter()
                .rev()
                .filter(admitted)
                .take(limit)
                .cloned()
                .collect(),
            JournalOrder::OldestFirst => state
                .journal
                .iter()
                .filter(admitted)
                .take(limit)
                .cloned()
                .collect(),
        })
    }

    async fn journal_all(
        &self,
        after: Option<Position>,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        let state = self.read()?;
        Ok(state
            .journal
            .iter()
            .filter(|e| after.is_none_or(|p| e.position > p))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn append_journal(&self, entries: Vec<JournalEntry>) -> Result<(), EngineError> {
        let mut state = self.write()?;
        for mut entry in entries {
            entry.position = state.next_position();
            state.journal.push(entry);
        }
        Ok(())
    }

    async fn mirror_state(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
    ) -> Result<MirrorState, EngineError> {
        let state = self.read()?;
        Ok(state
            .mirrors
            .get(&(tenant.clone(), mirror.clone()))
            .map(|(kept, _)| kept.clone())
            .unwrap_or_default())
    }

    async fn save_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        kept: &MirrorState,
        failures: &[MirrorFailure],
    ) -> Result<(), EngineError> {
        let mut state = self.write()?;
        let entry = state
            .mirrors
            .entry((tenant.clone(), mirror.clone()))
            .or_default();
        entry.0 = kept.clone();
        // A refusal saved again (a step retried) stays as first recorded,
        // as in the stores' tables keyed by position.
        for failure in failures {
            if !entry.1.iter().any(|f| f.position == failure.position) {
                entry.1.push(failure.clone());
            }
        }
        Ok(())
    }

    async fn mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        limit: u32,
    ) -> Result<Vec<MirrorFailure>, EngineError> {
        let state = self.read()?;
        Ok(state
            .mirrors
            .get(&(tenant.clone(), mirror.clone()))
            .map(|(_, failures)| {
                failures
                    .iter()
                    .rev()
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn clear_mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        positions: &[Position],
    ) -> Result<(), EngineError> {
        let mut state = self.write()?;
        if let Some((_, failures)) = state.mirrors.get_mut(&(tenant.clone(), mirror.clone())) {
            failures.retain(|f| !positions.contains(&f.position));
        }
        Ok(())
    }

    async fn lease_mirror(
        &self,
        _tenant: &TenantId,
        _mirror: &MirrorName,
        _holder: &str,
        _ttl: std::time::Duration,
    ) -> Result<bool, EngineError> {
        // One process holds the memory store.
        Ok(true)
    }

    async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        let mut state = self.write()?;
        let now = Engine::now();
        let mut applied = Vec::with_capacity(events.len());
        for event in events {
            let receipt = (tenant.clone(), hook.to_owned(), event.key);
            if state.receipts.contains_key(&receipt) {
                applied.push(false);
                continue;
            }
            let actor = actor.clone().with_event_id(receipt.2.clone());
            for change in event.changes {
                let changes = match change {
                    EventChange::Add(item) => state.add(tenant, vec![item]).1,
                    EventChange::Remove(filter) => state.remove_matching(tenant, &filter),
                };
                state.record(changes, &actor);
            }
            state.receipts.insert(receipt, now);
            applied.push(true);
        }
        Ok(applied)
    }

    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        let state = self.read()?;
        Ok(keys
            .iter()
            .map(|key| {
                state
                    .receipts
                    .contains_key(&(tenant.clone(), hook.to_owned(), key.clone()))
            })
            .collect())
    }

    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        let mut state = self.write()?;
        let held = state.receipts.len();
        state.receipts.retain(|_, at| *at >= before);
        Ok(to_u64(held - state.receipts.len()))
    }

    async fn prune_journal(&self, before: Timestamp, limit: u32) -> Result<u64, EngineError> {
        let mut state = self.write()?;
        let old = state
            .journal
            .iter()
            .take(limit as usize)
            .take_while(|e| e.at < before)
            .count();
        state.journal.drain(..old);
        Ok(to_u64(old))
    }
}
