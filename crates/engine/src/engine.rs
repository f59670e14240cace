//! The rules every API shares, over whichever backend the operator chose.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::Stream;
use hush_model::{
    Actor, DEFAULT_STREAM_KEY, DEFAULT_STREAM_NAME, Door, Email, Group, GroupChanges, GroupId,
    GroupKey, KindSet, ListFilter, NewGroup, NewSuppression, Page, PageRequest, ScanCursor, Scope,
    ScopeFilter, StreamType, Suppression, SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};

use crate::{AddOutcome, Backend, Capabilities, EngineError};

/// Group names are 1–100 characters in both v3 (docs/api/v3.md, "Groups")
/// and Postmark (its API docs' error code 1224).
pub const GROUP_NAME_MAX: usize = 100;
/// Postmark allows 1000 (code 1231); v3 narrows it to 500 in its own crate.
pub const GROUP_DESCRIPTION_MAX: usize = 1000;
/// Addresses whose entries one store call removes in
/// [`Engine::remove_addresses`].
pub const REMOVE_BATCH: usize = 1000;
/// Lookups [`Engine::remove_addresses`] keeps in flight.
const LOOKUPS_AT_ONCE: usize = 32;
/// How many suppressions one backend call adds at most; larger adds (CSV
/// imports) are split so no single transaction grows without bound.
pub const ADD_BATCH: usize = 5_000;
/// How many times a derived group key is retried with a numeric suffix.
const KEY_ATTEMPTS: u32 = 100;

/// A group to create, as an API asks for it. Without a key, one is derived
/// from the name (docs/architecture.md, "The engine's rules").
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub key: Option<GroupKey>,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub stream_type: StreamType,
    pub unsubscribe_handling: Option<UnsubscribeHandling>,
}

#[derive(Debug, Clone)]
pub struct Engine {
    backend: Arc<dyn Backend>,
}

impl Engine {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn capabilities(&self) -> Capabilities {
        self.backend.capabilities()
    }

    /// What the store that serves `tenant` can do.
    pub fn capabilities_for(&self, tenant: &TenantId) -> Capabilities {
        self.backend.capabilities_for(tenant)
    }

    /// The current time, in the precision every API derives its own from.
    pub fn now() -> Timestamp {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Timestamp::from_nanos(nanos)
    }

    pub async fn ready(&self) -> Result<(), EngineError> {
        self.backend.ready().await
    }

    /// The id a tenant is shown for one of its groups (`Backend::shown_ids`).
    pub fn shown_group_id(&self, tenant: &TenantId, id: GroupId) -> i64 {
        self.backend
            .shown_ids(tenant)
            .map_or(id.0, |shown| shown.group(tenant, id))
    }

    /// The group a tenant means by an id it was shown; `None` for an id it
    /// cannot have been shown.
    pub fn group_id_from_shown(&self, tenant: &TenantId, shown: i64) -> Option<GroupId> {
        match self.backend.shown_ids(tenant) {
            Some(ids) => ids.group_of(tenant, shown),
            None => Some(GroupId(shown)),
        }
    }

    /// The id a tenant is shown for one of its suppressions (SendPost's).
    pub fn shown_suppression_id(&self, tenant: &TenantId, id: SuppressionId) -> i64 {
        self.backend
            .shown_ids(tenant)
            .map_or(id.0, |shown| shown.suppression(tenant, id))
    }

    /// Readiness of each backend, the default first (`Backend::readiness`).
    pub async fn readiness(&self) -> Vec<(&'static str, Result<(), EngineError>)> {
        self.backend.readiness().await
    }

    /// Makes sure a tenant has what every tenant has from the start: the
    /// Postmark default stream `outbound` (docs/architecture.md). Safe to
    /// call on every start and from several instances at once.
    pub async fn bootstrap_tenant(&self, tenant: &TenantId) -> Result<(), EngineError> {
        if !self.backend.capabilities_for(tenant).groups {
            return Ok(());
        }
        let key = GroupKey::parse(DEFAULT_STREAM_KEY)
            .map_err(|e| EngineError::internal(self.backend_name(), e))?;
        if self.backend.group_by_key(tenant, &key).await?.is_some() {
            return Ok(());
        }
        let outbound = NewGroup {
            key,
            name: DEFAULT_STREAM_NAME.to_owned(),
            description: String::new(),
            is_default: false,
            stream_type: StreamType::Transactional,
            unsubscribe_handling: UnsubscribeHandling::None,
            created_at: Self::now(),
        };
        let hush = Actor::new(Door::SYSTEM);
        match self.backend.create_group(tenant, outbound, &hush).await {
            // Another instance made it first.
            Ok(_) | Err(EngineError::GroupKeyTaken(_) | EngineError::GroupNameTaken(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Adds suppressions idempotently, with one outcome per item in order.
    /// Items are stored in batches of [`ADD_BATCH`]; each batch is atomic
    /// and durable before the next starts.
    pub async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        self.require_scopes(
            tenant,
            items.iter().map(|i| i.scope),
            "store group suppressions",
        )?;
        if items.len() <= ADD_BATCH {
            return self.backend.add(tenant, items, actor).await;
        }
        let mut outcomes = Vec::with_capacity(items.len());
        let mut rest = items;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(ADD_BATCH));
            outcomes.extend(self.backend.add(tenant, rest, actor).await?);
            rest = tail;
        }
        Ok(outcomes)
    }

    /// Every entry of one address, newest first.
    pub async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.backend.entries(tenant, email).await
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        self.require_filter(tenant, filter)?;
        self.backend.list(tenant, filter, page).await
    }

    pub async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        self.require_filter(tenant, filter)?;
        self.backend.count(tenant, filter).await
    }

    /// Every entry a filter matches, newest first, fetched `batch` at a time
    /// with keyset paging, so a listing of any size streams in bounded
    /// memory.
    pub fn scan(
        &self,
        tenant: TenantId,
        filter: ListFilter,
        batch: u32,
    ) -> impl Stream<Item = Result<Suppression, EngineError>> + Send + 'static {
        use futures_util::StreamExt as _;
        use futures_util::stream;

        let backend = Arc::clone(&self.backend);
        let checked = self.require_filter(&tenant, &filter);
        let state = (
            backend,
            tenant,
            filter,
            None::<ScanCursor>,
            checked.err(),
            false,
        );
        stream::unfold(
            state,
            move |(backend, tenant, filter, cursor, failure, done)| async move {
                if done {
                    return None;
                }
                if let Some(err) = failure {
                    return Some((
                        vec![Err(err)],
                        (backend, tenant, filter, cursor, None, true),
                    ));
                }
                match backend.scan(&tenant, &filter, cursor, batch).await {
                    Ok(rows) if rows.is_empty() => None,
                    Ok(rows) => {
                        let last = rows.last().map(ScanCursor::after);
                        let finished = rows.len() < batch as usize;
                        let items = rows.into_iter().map(Ok).collect();
                        Some((items, (backend, tenant, filter, last, None, finished)))
                    }
                    Err(err) => Some((
                        vec![Err(err)],
                        (backend, tenant, filter, cursor, None, true),
                    )),
                }
            },
        )
        .flat_map(stream::iter)
    }

    /// Removes the entries of one address in one scope whose kinds are
    /// selected; returns how many.
    pub async fn remove(
        &self,
        tenant: &TenantId,
        email: &Email,
        scope: Scope,
        kinds: KindSet,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        let scope = match scope {
            Scope::Global => ScopeFilter::Global,
            Scope::Group(id) => ScopeFilter::Group(id),
        };
        let mut filter = ListFilter::new(kinds, scope);
        filter.email = Some(hush_model::EmailMatch::Exact(email.clone()));
        self.backend.remove_matching(tenant, &filter, actor).await
    }

    /// Removes the entries of many addresses in one scope and of the given
    /// kinds; returns how many went. The addresses are read (the lookup
    /// path: memory on SQLite and PostgreSQL) and their entries removed
    /// by id, [`REMOVE_BATCH`] addresses to a store call, each call one
    /// transaction. A removal one transaction per address ran 420 s for
    /// 10,000 addresses on PostgreSQL. When the caller goes away the
    /// future is dropped between calls: what was removed stays removed,
    /// and nothing is half done.
    pub async fn remove_addresses(
        &self,
        tenant: &TenantId,
        emails: &[Email],
        scope: Scope,
        kinds: KindSet,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        if !self.backend.capabilities_for(tenant).cheap_removal_by_id {
            // An upstream: each address alone, by the provider's own
            // per-address delete, rather than walks of its lists by id.
            let mut removed = 0;
            for email in emails {
                removed += self.remove(tenant, email, scope, kinds, actor).await?;
            }
            return Ok(removed);
        }
        let mut removed = 0;
        for chunk in emails.chunks(REMOVE_BATCH) {
            // Read a few at a time: PostgreSQL's lookup mirror answers every
            // lookup waiting at a step in one statement.
            let found: Vec<Vec<Suppression>> = futures_util::stream::iter(chunk)
                .map(|email| self.backend.entries(tenant, email))
                .buffered(LOOKUPS_AT_ONCE)
                .try_collect()
                .await?;
            let mut ids: Vec<SuppressionId> = found
                .into_iter()
                .flatten()
                .filter(|s| s.scope == scope && kinds.contains(&s.kind))
                .map(|s| s.id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if !ids.is_empty() {
                removed += self.backend.remove_ids(tenant, &ids, actor).await?;
            }
        }
        Ok(removed)
    }

    /// Removes every entry a filter matches (v3 `delete_all`).
    pub async fn remove_all(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.require_filter(tenant, filter)?;
        self.backend.remove_matching(tenant, filter, actor).await
    }

    /// Applies one delivery of a webhook's events, once per event key
    /// (`Backend::apply_events`): per event, whether it was new.
    pub async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<crate::ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.backend.apply_events(tenant, hook, events, actor).await
    }

    /// Per key, whether an event with it was applied for the tenant and
    /// hook.
    pub async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.backend.events_seen(tenant, hook, keys).await
    }

    /// Forgets webhook event keys applied before `before`.
    pub async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        self.backend.prune_receipts(before).await
    }

    /// Removes chosen entries, for APIs whose delete rules look at each
    /// entry first (Postmark's authority rules).
    pub async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.backend.remove_ids(tenant, ids, actor).await
    }

    /// Whether mail may go to an address, for a group or for mail outside
    /// any group: not if it has any global entry or any entry in the group.
    pub async fn may_send(
        &self,
        tenant: &TenantId,
        email: &Email,
        group: Option<GroupId>,
    ) -> Result<bool, EngineError> {
        let entries = self.backend.entries(tenant, email).await?;
        Ok(!entries.iter().any(|e| match e.scope {
            Scope::Global => true,
            Scope::Group(id) => Some(id) == group,
        }))
    }

    pub async fn create_group(
        &self,
        tenant: &TenantId,
        spec: GroupSpec,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        self.require_groups(tenant)?;
        let name = check_group_name(&spec.name)?;
        check_group_description(&spec.description)?;
        let unsubscribe_handling = spec
            .unsubscribe_handling
            .unwrap_or_else(|| UnsubscribeHandling::default_for(spec.stream_type));
        let draft = |key: GroupKey| NewGroup {
            key,
            name: name.clone(),
            description: spec.description.clone(),
            is_default: spec.is_default,
            stream_type: spec.stream_type,
            unsubscribe_handling,
            created_at: Self::now(),
        };
        if let Some(key) = spec.key {
            return self.backend.create_group(tenant, draft(key), actor).await;
        }
        let base = GroupKey::from_name(&name);
        let mut key = base.clone();
        for attempt in 2..=KEY_ATTEMPTS + 1 {
            match self.backend.create_group(tenant, draft(key), actor).await {
                Err(EngineError::GroupKeyTaken(_)) => key = base.with_suffix(attempt),
                other => return other,
            }
        }
        Err(EngineError::GroupKeyTaken(base.as_str().to_owned()))
    }

    pub async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Group, EngineError> {
        self.require_groups(tenant)?;
        self.backend
            .group(tenant, id)
            .await?
            .ok_or(EngineError::GroupNotFound(id))
    }

    pub async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        self.require_groups(tenant)?;
        self.backend.group_by_key(tenant, key).await
    }

    pub async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        self.require_groups(tenant)?;
        self.backend.groups(tenant).await
    }

    pub async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        mut changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        self.require_groups(tenant)?;
        if let Some(name) = &changes.name {
            changes.name = Some(check_group_name(name)?);
        }
        if let Some(description) = &changes.description {
            check_group_description(description)?;
        }
        changes.updated_at = Some(Self::now());
        self.backend
            .update_group(tenant, id, changes, actor)
            .await?
            .ok_or(EngineError::GroupNotFound(id))
    }

    /// Deletes a group and its suppressions. The default stream `outbound`
    /// stays: Postmark's default streams cannot be deleted (Postmark API
    /// docs, "Message Streams API"), and it is a stream of every tenant.
    pub async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<(), EngineError> {
        let group = self.group(tenant, id).await?;
        if group.key.as_str() == DEFAULT_STREAM_KEY {
            return Err(EngineError::GroupProtected(group.key.as_str().to_owned()));
        }
        if self.backend.delete_group(tenant, id, actor).await? {
            Ok(())
        } else {
            Err(EngineError::GroupNotFound(id))
        }
    }

    fn require(
        &self,
        tenant: &TenantId,
        capable: bool,
        operation: &'static str,
    ) -> Result<(), EngineError> {
        if capable {
            Ok(())
        } else {
            Err(EngineError::Unsupported {
                backend: self.backend.name_for(tenant),
                operation,
            })
        }
    }

    fn require_groups(&self, tenant: &TenantId) -> Result<(), EngineError> {
        let groups = self.backend.capabilities_for(tenant).groups;
        self.require(tenant, groups, "manage groups")
    }

    fn require_scopes(
        &self,
        tenant: &TenantId,
        mut scopes: impl Iterator<Item = Scope>,
        operation: &'static str,
    ) -> Result<(), EngineError> {
        let groups = self.backend.capabilities_for(tenant).groups;
        self.require(
            tenant,
            groups || !scopes.any(|s| matches!(s, Scope::Group(_))),
            operation,
        )
    }

    fn require_filter(&self, tenant: &TenantId, filter: &ListFilter) -> Result<(), EngineError> {
        let caps = self.backend.capabilities_for(tenant);
        self.require(
            tenant,
            caps.groups || matches!(filter.scope, ScopeFilter::Global | ScopeFilter::Any),
            "list group suppressions",
        )?;
        self.require(
            tenant,
            caps.created_time_filter
                || (filter.created_from.is_none() && filter.created_to.is_none()),
            "filter by creation time",
        )?;
        self.require(
            tenant,
            caps.origins || filter.origin.is_none(),
            "filter by origin",
        )?;
        crate::capability::filter_refusal(self.backend.name_for(tenant), caps, filter)
    }
}

fn check_group_name(raw: &str) -> Result<String, EngineError> {
    let name = raw.trim();
    if hush_model::has_nul(name) {
        return Err(EngineError::InvalidGroup {
            field: "name",
            message: "a group name must not contain a NUL character".into(),
        });
    }
    if name.is_empty() {
        return Err(EngineError::InvalidGroup {
            field: "name",
            message: "a group name must not be empty".into(),
        });
    }
    let length = name.chars().count();
    if length > GROUP_NAME_MAX {
        return Err(EngineError::InvalidGroup {
            field: "name",
            message: format!(
                "a group name is at most {GROUP_NAME_MAX} characters; this one has {length}"
            ),
        });
    }
    Ok(name.to_owned())
}

fn check_group_description(description: &str) -> Result<(), EngineError> {
    if hush_model::has_nul(description) {
        return Err(EngineError::InvalidGroup {
            field: "description",
            message: "a group description must not contain a NUL character".into(),
        });
    }
    let length = description.chars().count();
    if length > GROUP_DESCRIPTION_MAX {
        return Err(EngineError::InvalidGroup {
            field: "description",
            message: format!(
                "a group description is at most {GROUP_DESCRIPTION_MAX} characters; this one has {length}"
            ),
        });
    }
    Ok(())
}
