//! hush in front of Postmark: the engine's [`Backend`] over Postmark's
//! suppressions and message-streams APIs (Postmark API docs, "Suppressions
//! API" and "Message Streams API"; cited as in lib.rs), spoken with this
//! crate's own wire types.
//!
//! Where things live (docs/backends.md): a group is the message stream whose
//! `ID` is the group's key; global entries live in the default stream
//! `outbound`, and entries read from `outbound` are global. Postmark keeps
//! one suppression per address and stream, with three reasons; every create
//! makes a `ManualSuppression` of `Customer` origin (postmark-php's wiki,
//! "Managing Suppressions"), so a bounce or spam report added through hush is
//! stored as a manual suppression. Postmark keeps no ids for suppressions:
//! hush derives a stable one from the stream, the address and the reason.
//!
//! What it costs (docs/backends.md, "Upstream request counts"): Postmark's
//! dump has no paging (`count` and `offset` are ignored: its docs have
//! neither), so a dump is always a stream's whole filtered list. An address
//! is read with the dump's `EmailAddress` filter, one dump per stream; a scan
//! reads each stream's dump once per scan, not once per page; and a removal
//! by id finds the address and stream of each id without a dump when the
//! entry was read just before, as the engine's guarded deletes do.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, Capabilities, EngineError};
use hush_model::{
    Actor, BounceClass, DEFAULT_STREAM_KEY, Email, EmailMatch, Group, GroupChanges, GroupId,
    GroupKey, Kind, KindSet, ListFilter, NewGroup, NewSuppression, Origin, Page, PageRequest,
    ScanCursor, Scope, ScopeFilter, StreamType, Suppression, SuppressionId, TenantId, Timestamp,
    UnsubscribeHandling,
};
use hush_upstream::{Answer, Credential, Credentials, Idempotency, Snapshots, Upstream};

use crate::ErrorBody;
use crate::wire::{
    ChangeStatus, MessageStream, MessageStreamChanges, MessageStreams, NewMessageStream,
    SubscriptionManagement, SuppressionAddress, SuppressionChanges, SuppressionDump,
    SuppressionEntry, SuppressionReason, SuppressionStatuses, parse_origin,
};

pub const BACKEND: &str = "upstream-postmark";

const AUTH: &str = "X-Postmark-Server-Token";
/// Addresses per create or delete call (Postmark API docs, "Suppressions
/// API": at most 50; more is code 1410).
pub const BATCH: usize = 50;
/// Code 1226: an unknown stream.
const STREAM_NOT_FOUND: u32 = 1226;
/// Code 1230: the stream ID is taken.
const STREAM_ID_TAKEN: u32 = 1230;
/// How many entries' streams are remembered for removals by id; past it,
/// the memory starts over. An id it has forgotten costs a full dump.
const LOCATED_MAX: usize = 10_000;
/// How many dumps are kept for scans at once (one per tenant and filter);
/// a further one evicts the one least recently read.
const SCANS_MAX: usize = 4;
/// A kept dump not read for this long is dropped; reading on from a
/// cursor then dumps again.
const SCAN_IDLE: Duration = Duration::from_secs(600);

/// The Postmark upstream backend.
#[derive(Debug, Clone)]
pub struct PostmarkUpstream {
    http: Upstream,
    credentials: Credentials,
    memory: Arc<Memory>,
}

/// What the backend remembers between calls, shared by its clones. Both
/// parts only save upstream requests: a miss does what a first call does.
#[derive(Debug)]
struct Memory {
    /// The stream and address behind an id (ids are derived: a dump row has
    /// none), for the entries of single-address reads: the engine's guarded
    /// deletes read an address's entries, then remove some of them by id.
    located: Mutex<HashMap<(TenantId, SuppressionId), (GroupKey, Email)>>,
    /// The dumps scans page through: a scan's dumps, filtered and newest
    /// first, as its first call fetched them. `hush copy` walks a scan
    /// forward, then reads its pages again oldest first, so any cursor into
    /// the dump is served, not only the last one handed out.
    scans: Snapshots,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            located: Mutex::default(),
            scans: Snapshots::new(SCANS_MAX, SCAN_IDLE),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold no invariant a panic elsewhere could break.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Memory {
    fn remember(&self, tenant: &TenantId, entries: &[(GroupKey, Suppression)]) {
        let mut located = lock(&self.located);
        if located.len() + entries.len() > LOCATED_MAX {
            located.clear();
        }
        for (key, entry) in entries.iter().take(LOCATED_MAX) {
            located.insert(
                (tenant.clone(), entry.id),
                (key.clone(), entry.email.clone()),
            );
        }
    }

    fn locate(&self, tenant: &TenantId, id: SuppressionId) -> Option<(GroupKey, Email)> {
        lock(&self.located).get(&(tenant.clone(), id)).cloned()
    }
}

/// Up to `limit` rows strictly after `after` of rows sorted newest first.
fn page_after(rows: &[Suppression], after: Option<ScanCursor>, limit: usize) -> Vec<Suppression> {
    let from = after.map_or(0, |c| rows.partition_point(|s| !c.is_before(s)));
    rows.iter().skip(from).take(limit).cloned().collect()
}

impl PostmarkUpstream {
    pub fn new(http: Upstream, credentials: Credentials) -> Self {
        Self {
            http,
            credentials,
            memory: Arc::default(),
        }
    }

    fn token(&self, tenant: &TenantId) -> Result<&Credential, EngineError> {
        self.credentials.of(BACKEND, tenant)
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        token: &Credential,
    ) -> reqwest::RequestBuilder {
        client
            .request(method, self.http.url(path))
            .header(AUTH, token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Every stream, archived ones included, as groups.
    async fn streams(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        let token = self.token(tenant)?;
        let list: MessageStreams = self
            .http
            .json(Idempotency::Idempotent, |c| {
                self.request(c, reqwest::Method::GET, "/message-streams", token)
                    .query(&[("IncludeArchivedStreams", "true")])
            })
            .await?;
        list.message_streams
            .iter()
            .map(|s| self.group_of(tenant, s))
            .collect()
    }

    fn group_of(&self, tenant: &TenantId, stream: &MessageStream) -> Result<Group, EngineError> {
        let fault = |detail: String| EngineError::Upstream {
            backend: BACKEND,
            status: Some(200),
            request_id: None,
            detail,
        };
        let key = GroupKey::parse(&stream.id)
            .map_err(|e| fault(format!("stream ID {:?}: {e}", stream.id)))?;
        let time = |raw: &str| {
            Timestamp::parse_rfc3339(raw)
                .map_err(|e| fault(format!("stream {:?} time {raw:?}: {e}", stream.id)))
        };
        Ok(Group {
            id: group_id(&key),
            tenant: tenant.clone(),
            name: stream.name.clone(),
            description: stream.description.clone().unwrap_or_default(),
            // Postmark has no default stream to choose (its streams have no
            // such flag).
            is_default: false,
            stream_type: StreamType::parse(&stream.message_stream_type)
                .ok_or_else(|| fault(format!("stream type {:?}", stream.message_stream_type)))?,
            unsubscribe_handling: UnsubscribeHandling::parse(
                &stream
                    .subscription_management_configuration
                    .unsubscribe_handling_type,
            )
            .unwrap_or(UnsubscribeHandling::None),
            archived_at: stream.archived_at.as_deref().map(time).transpose()?,
            created_at: time(&stream.created_at)?,
            updated_at: stream.updated_at.as_deref().map(time).transpose()?,
            key,
        })
    }

    /// One stream by its ID; `None` when Postmark answers 1226.
    async fn stream(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        let token = self.token(tenant)?;
        let path = format!("/message-streams/{}", key.as_str());
        let answer = self
            .http
            .exchange(Idempotency::Idempotent, |c| {
                self.request(c, reqwest::Method::GET, &path, token)
            })
            .await?;
        if let Some(err) = self.client_error(&answer)? {
            return if err.error_code == STREAM_NOT_FOUND {
                Ok(None)
            } else {
                Err(self.http.fault(&answer, err.message))
            };
        }
        let stream: MessageStream = self.http.decode(&answer)?;
        self.group_of(tenant, &stream).map(Some)
    }

    /// A client error's Postmark body (`{"ErrorCode","Message"}`: Postmark
    /// API docs, "API overview"), or `None` for a success.
    fn client_error(&self, answer: &Answer) -> Result<Option<ErrorBody>, EngineError> {
        if answer.status.is_success() {
            return Ok(None);
        }
        self.http.decode(answer).map(Some)
    }

    /// The streams a scope filter reads, with the scope their entries have.
    async fn streams_for(
        &self,
        tenant: &TenantId,
        scope: ScopeFilter,
    ) -> Result<Vec<(GroupKey, Scope)>, EngineError> {
        let default_stream = outbound();
        let group = |id: GroupId| async move {
            let all = self.streams(tenant).await?;
            Ok::<_, EngineError>(
                all.into_iter()
                    .find(|g| g.id == id && g.key != outbound())
                    .map(|g| (g.key, Scope::Group(id))),
            )
        };
        Ok(match scope {
            ScopeFilter::Global => vec![(default_stream, Scope::Global)],
            ScopeFilter::Group(id) => group(id).await?.into_iter().collect(),
            ScopeFilter::GlobalAndGroup(id) => std::iter::once((default_stream, Scope::Global))
                .chain(group(id).await?)
                .collect(),
            ScopeFilter::Any => self
                .streams(tenant)
                .await?
                .into_iter()
                .filter(|g| g.stream_type != StreamType::Inbound)
                .map(|g| {
                    let scope = if g.key == default_stream {
                        Scope::Global
                    } else {
                        Scope::Group(g.id)
                    };
                    (g.key, scope)
                })
                .collect(),
        })
    }

    /// Every entry the filter matches, newest first.
    async fn collect(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
    ) -> Result<Vec<Suppression>, EngineError> {
        Ok(self
            .collect_located(tenant, filter)
            .await?
            .into_iter()
            .map(|(_, entry)| entry)
            .collect())
    }

    /// Every entry the filter matches, newest first, each with the stream it
    /// was read from: one dump per stream the scope reads. An exact address
    /// is sent as the dump's `EmailAddress` filter ("Suppression dump"), and
    /// the entries of such a read are remembered for a removal by id.
    async fn collect_located(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
    ) -> Result<Vec<(GroupKey, Suppression)>, EngineError> {
        if filter.kinds.is_empty() {
            return Ok(Vec::new());
        }
        let token = self.token(tenant)?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(EmailMatch::Exact(email)) = &filter.email {
            query.push(("EmailAddress", email.as_str().to_owned()));
        }
        if let Some(origin) = filter.origin {
            query.push(("Origin", crate::wire::origin_name(origin).to_owned()));
        }
        // Postmark's dates are inclusive days ("Suppression dump"); the exact
        // bounds are applied below.
        if let Some(from) = filter.created_from {
            query.push(("fromdate", day(from)));
        }
        if let Some(to) = filter.created_to {
            query.push(("todate", day(to)));
        }
        let mut found = Vec::new();
        for (key, scope) in self.streams_for(tenant, filter.scope).await? {
            let path = format!("/message-streams/{}/suppressions/dump", key.as_str());
            let dump: SuppressionDump = self
                .http
                .json(Idempotency::Idempotent, |c| {
                    self.request(c, reqwest::Method::GET, &path, token)
                        .query(&query)
                })
                .await?;
            for entry in dump.suppressions {
                let entry = canonical(tenant, &key, scope, &entry)?;
                if filter.matches(&entry) {
                    found.push((key.clone(), entry));
                }
            }
        }
        found.sort_by_key(|(_, s)| std::cmp::Reverse((s.created_at, s.id)));
        if matches!(filter.email, Some(EmailMatch::Exact(_))) {
            self.memory.remember(tenant, &found);
        }
        Ok(found)
    }

    /// Sends addresses to one stream's create or delete, 50 per call, and
    /// returns each address's status in the order given.
    async fn change(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
        emails: &[&Email],
        action: &str,
    ) -> Result<Vec<(ChangeStatus, Option<String>)>, EngineError> {
        let token = self.token(tenant)?;
        let path = format!("/message-streams/{}/suppressions{action}", key.as_str());
        let mut statuses = Vec::with_capacity(emails.len());
        for chunk in emails.chunks(BATCH) {
            let body = SuppressionChanges {
                suppressions: chunk
                    .iter()
                    .map(|e| SuppressionAddress {
                        email_address: e.as_str().to_owned(),
                    })
                    .collect(),
            };
            // Suppressing or deleting an address twice leaves it the same
            // (docs/backends.md, "Faults"), so both may be retried.
            let answer = self
                .http
                .exchange(Idempotency::Idempotent, |c| {
                    self.request(c, reqwest::Method::POST, &path, token)
                        .json(&body)
                })
                .await?;
            if let Some(err) = self.client_error(&answer)? {
                return Err(if err.error_code == STREAM_NOT_FOUND {
                    EngineError::GroupNotFound(group_id(key))
                } else {
                    self.http
                        .fault(&answer, format!("{} {}", err.error_code, err.message))
                });
            }
            let reply: SuppressionStatuses = self.http.decode(&answer)?;
            // One item per address, in input order (Postmark API docs,
            // "Suppressions API").
            if reply.suppressions.len() != chunk.len() {
                return Err(self.http.fault(
                    &answer,
                    format!(
                        "{} statuses for {} addresses",
                        reply.suppressions.len(),
                        chunk.len()
                    ),
                ));
            }
            for (sent, status) in chunk.iter().zip(reply.suppressions) {
                if !status.email_address.eq_ignore_ascii_case(sent.as_str()) {
                    return Err(self.http.fault(
                        &answer,
                        format!("status for {} where {sent} was sent", status.email_address),
                    ));
                }
                statuses.push((status.status, status.message));
            }
        }
        Ok(statuses)
    }

    /// Deletes addresses from streams, each pair once, 50 per call. Returns
    /// how many Postmark answered `Deleted`. A `Failed` item is logged with
    /// Postmark's message and not counted: the engine then finds the entry
    /// still there and answers its caller's item `Failed`
    /// (`Engine::remove_with_authority`).
    async fn delete(
        &self,
        tenant: &TenantId,
        targets: impl IntoIterator<Item = (GroupKey, Email)>,
    ) -> Result<u64, EngineError> {
        let mut by_stream: BTreeMap<GroupKey, Vec<Email>> = BTreeMap::new();
        for (key, email) in targets {
            let emails = by_stream.entry(key).or_default();
            if !emails.contains(&email) {
                emails.push(email);
            }
        }
        let mut removed = 0;
        for (key, emails) in by_stream {
            let sent: Vec<&Email> = emails.iter().collect();
            let statuses = self.change(tenant, &key, &sent, "/delete").await?;
            for ((status, message), email) in statuses.into_iter().zip(&emails) {
                match status {
                    ChangeStatus::Deleted => removed += 1,
                    _ => tracing::warn!(
                        backend = BACKEND,
                        stream = key.as_str(),
                        %email,
                        ?message,
                        "upstream refused to delete a suppression"
                    ),
                }
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl Backend for PostmarkUpstream {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            groups: true,
            soft_and_block_bounces: false,
            created_time_filter: true,
            origins: true,
            invalid_emails: false,
            cheap_removal_by_id: false,
            journal: false,
        }
    }

    async fn ready(&self) -> Result<(), EngineError> {
        self.http.reachable().await
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        _actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        let streams = if items.iter().any(|i| i.scope != Scope::Global) {
            self.streams(tenant).await?
        } else {
            Vec::new()
        };
        let mut outcomes: Vec<Option<AddOutcome>> = vec![None; items.len()];
        let mut by_stream: BTreeMap<String, (Scope, Vec<usize>)> = BTreeMap::new();
        for (at, item) in items.iter().enumerate() {
            let target = match item.scope {
                Scope::Global => Some((outbound(), Scope::Global)),
                Scope::Group(id) => streams
                    .iter()
                    .find(|g| g.id == id && g.archived_at.is_none())
                    .map(|g| {
                        let scope = if g.key == outbound() {
                            Scope::Global
                        } else {
                            Scope::Group(id)
                        };
                        (g.key.clone(), scope)
                    }),
            };
            match (target, item.scope) {
                (Some((key, scope)), _) => by_stream
                    .entry(key.as_str().to_owned())
                    .or_insert((scope, Vec::new()))
                    .1
                    .push(at),
                (None, Scope::Group(id)) => outcomes[at] = Some(AddOutcome::UnknownGroup(id)),
                (None, Scope::Global) => {}
            }
        }
        let now = hush_engine::Engine::now();
        for (key, (scope, positions)) in by_stream {
            let key = GroupKey::parse(&key).map_err(|e| EngineError::internal(BACKEND, e))?;
            let emails: Vec<&Email> = positions.iter().map(|&at| &items[at].email).collect();
            let statuses = self.change(tenant, &key, &emails, "").await?;
            let mut seen = HashSet::new();
            for (&at, (status, message)) in positions.iter().zip(statuses) {
                let email = &items[at].email;
                outcomes[at] = Some(match status {
                    ChangeStatus::Suppressed => {
                        // What a Postmark create stores (see above); Postmark
                        // does not say whether it was there before.
                        let kind = Kind::Manual;
                        AddOutcome::Added {
                            suppression: Suppression {
                                id: entry_id(&key, email, SuppressionReason::ManualSuppression),
                                tenant: tenant.clone(),
                                email: email.clone(),
                                scope,
                                kind,
                                origin: Origin::Customer,
                                created_at: now,
                            },
                            new: seen.insert(email.clone()),
                        }
                    }
                    ChangeStatus::Failed | ChangeStatus::Deleted => AddOutcome::Refused {
                        message: message.unwrap_or_else(|| format!("Postmark answered {status:?}")),
                    },
                });
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| EngineError::internal(BACKEND, "an add item got no outcome")))
            .collect()
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
        filter.email = Some(EmailMatch::Exact(email.clone()));
        self.collect(tenant, &filter).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        // One row per address when asked (ListFilter::per_address).
        let all = filter.collapse(self.collect(tenant, filter).await?);
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(page.limit as usize)
            .collect();
        Ok(Page { items, total })
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        Ok(filter.collapse(self.collect(tenant, filter).await?).len() as u64)
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        let limit = limit as usize;
        // The dump is one whole list per stream with no paging ("Suppression
        // dump" documents none), so a scan's first call dumps and keeps the
        // result, and its next calls page through it by cursor: one dump per
        // stream per scan. A call with a cursor and nothing kept (the scan
        // began on another instance, was resumed later, or sat idle) dumps,
        // and keeps that.
        if let Some(cursor) = after
            && let Some(rows) = self.memory.scans.get(tenant, filter)
        {
            return Ok(page_after(&rows, Some(cursor), limit));
        }
        let rows = filter.collapse(self.collect(tenant, filter).await?);
        let page = page_after(&rows, after, limit);
        // A first page that is the whole answer needs nothing kept.
        if after.is_some() || rows.len() > limit {
            self.memory.scans.put(tenant, filter, Arc::new(rows));
        }
        Ok(page)
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        _actor: &Actor,
    ) -> Result<u64, EngineError> {
        let doomed = self.collect_located(tenant, filter).await?;
        self.delete(tenant, doomed.into_iter().map(|(key, s)| (key, s.email)))
            .await
    }

    /// The engine removes by id what it has just read of an address
    /// (`Engine::remove_with_authority`), so each id's stream and address
    /// are known without a dump. Only an id not read through this instance
    /// lately costs a full dump of every stream to find.
    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        _actor: &Actor,
    ) -> Result<u64, EngineError> {
        let mut targets = Vec::with_capacity(ids.len());
        let mut unknown = HashSet::new();
        for &id in ids {
            match self.memory.locate(tenant, id) {
                Some(target) => targets.push(target),
                None => {
                    unknown.insert(id);
                }
            }
        }
        if !unknown.is_empty() {
            let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
            targets.extend(
                self.collect_located(tenant, &everything)
                    .await?
                    .into_iter()
                    .filter(|(_, s)| unknown.contains(&s.id))
                    .map(|(key, s)| (key, s.email)),
            );
        }
        self.delete(tenant, targets).await
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        _actor: &Actor,
    ) -> Result<Group, EngineError> {
        if group.is_default {
            return Err(EngineError::Unsupported {
                backend: BACKEND,
                operation: "make a group the default (Postmark has no default stream to choose)",
            });
        }
        let token = self.token(tenant)?;
        let body = NewMessageStream {
            id: Some(group.key.as_str().to_owned()),
            name: Some(group.name.clone()),
            message_stream_type: Some(group.stream_type.as_str().to_owned()),
            description: (!group.description.is_empty()).then(|| group.description.clone()),
            subscription_management_configuration: Some(SubscriptionManagement {
                unsubscribe_handling_type: group.unsubscribe_handling.as_str().to_owned(),
            }),
        };
        // A second create of the same ID is refused with 1230, so a retry
        // after a lost answer is recognised rather than doubled.
        let answer = self
            .http
            .exchange(Idempotency::NotIdempotent, |c| {
                self.request(c, reqwest::Method::POST, "/message-streams", token)
                    .json(&body)
            })
            .await?;
        if let Some(err) = self.client_error(&answer)? {
            return Err(if err.error_code == STREAM_ID_TAKEN {
                EngineError::GroupKeyTaken(group.key.as_str().to_owned())
            } else {
                EngineError::InvalidGroup {
                    field: "name",
                    message: err.message,
                }
            });
        }
        let stream: MessageStream = self.http.decode(&answer)?;
        self.group_of(tenant, &stream)
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        Ok(self.streams(tenant).await?.into_iter().find(|g| g.id == id))
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        self.stream(tenant, key).await
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        let mut all = self.streams(tenant).await?;
        all.sort_by_key(|g| g.id);
        Ok(all)
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        _actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        if changes.is_default == Some(true) {
            return Err(EngineError::Unsupported {
                backend: BACKEND,
                operation: "make a group the default (Postmark has no default stream to choose)",
            });
        }
        let Some(group) = self.group(tenant, id).await? else {
            return Ok(None);
        };
        let token = self.token(tenant)?;
        let base = format!("/message-streams/{}", group.key.as_str());
        let edit = MessageStreamChanges {
            name: changes.name,
            description: changes.description,
            subscription_management_configuration: changes.unsubscribe_handling.map(|h| {
                SubscriptionManagement {
                    unsubscribe_handling_type: h.as_str().to_owned(),
                }
            }),
        };
        if edit != MessageStreamChanges::default() {
            self.http
                .send(Idempotency::Idempotent, |c| {
                    self.request(c, reqwest::Method::PATCH, &base, token)
                        .json(&edit)
                })
                .await?;
        }
        if let Some(archived) = changes.archived_at {
            let action = if archived.is_some() {
                "archive"
            } else {
                "unarchive"
            };
            let path = format!("{base}/{action}");
            self.http
                .send(Idempotency::Idempotent, |c| {
                    self.request(c, reqwest::Method::POST, &path, token)
                        .json(&serde_json::json!({}))
                })
                .await?;
        }
        self.stream(tenant, &group.key).await
    }

    async fn delete_group(
        &self,
        _: &TenantId,
        _: GroupId,
        _actor: &Actor,
    ) -> Result<bool, EngineError> {
        Err(EngineError::Unsupported {
            backend: BACKEND,
            operation: "delete groups (Postmark streams are archived, never deleted)",
        })
    }

    async fn apply_events(
        &self,
        tenant: &TenantId,
        _hook: &str,
        events: Vec<hush_engine::ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        hush_engine::apply_events_one_by_one(self, tenant, events, actor).await
    }

    async fn prune_receipts(&self, _before: Timestamp) -> Result<u64, EngineError> {
        Ok(0)
    }

    async fn events_seen(
        &self,
        _tenant: &TenantId,
        _hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        Ok(vec![false; keys.len()])
    }
}

fn outbound() -> GroupKey {
    GroupKey::parse(DEFAULT_STREAM_KEY).unwrap_or_else(|_| GroupKey::from_name(DEFAULT_STREAM_KEY))
}

/// A stable group id for a stream ID: FNV-1a, kept within 2^53 so every
/// JSON client reads it exactly, and never 0.
pub fn group_id(key: &GroupKey) -> GroupId {
    GroupId(stable_id(&[key.as_str()]))
}

fn entry_id(key: &GroupKey, email: &Email, reason: SuppressionReason) -> SuppressionId {
    SuppressionId(stable_id(&[key.as_str(), email.as_str(), reason.as_str()]))
}

fn stable_id(parts: &[&str]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    i64::try_from(hash & ((1 << 53) - 1)).unwrap_or(1).max(1)
}

fn canonical(
    tenant: &TenantId,
    key: &GroupKey,
    scope: Scope,
    entry: &SuppressionEntry,
) -> Result<Suppression, EngineError> {
    let fault = |detail: String| EngineError::Upstream {
        backend: BACKEND,
        status: Some(200),
        request_id: None,
        detail,
    };
    let email = Email::parse(&entry.email_address)
        .map_err(|e| fault(format!("dump address {:?}: {e}", entry.email_address)))?;
    let origin = parse_origin(&entry.origin)
        .ok_or_else(|| fault(format!("dump origin {:?}", entry.origin)))?;
    let kind = match entry.suppression_reason {
        SuppressionReason::HardBounce => Kind::Bounce {
            class: BounceClass::Hard,
            status: None,
            reason: None,
        },
        SuppressionReason::SpamComplaint => Kind::SpamComplaint { source: None },
        // A recipient's own manual suppression is an unsubscribe (Postmark
        // suppresses an unsubscribing recipient as `ManualSuppression`, per
        // its subscription change webhook docs).
        SuppressionReason::ManualSuppression if origin == Origin::Recipient => Kind::Unsubscribe,
        SuppressionReason::ManualSuppression => Kind::Manual,
    };
    let created_at = Timestamp::parse_rfc3339(&entry.created_at)
        .map_err(|e| fault(format!("dump time {:?}: {e}", entry.created_at)))?;
    Ok(Suppression {
        id: entry_id(key, &email, entry.suppression_reason),
        tenant: tenant.clone(),
        email,
        scope,
        kind,
        origin,
        created_at,
    })
}

/// `YYYY-MM-DD` of a timestamp's UTC day (the dump's `fromdate` form).
fn day(at: Timestamp) -> String {
    at.to_rfc3339_offset().chars().take(10).collect()
}
