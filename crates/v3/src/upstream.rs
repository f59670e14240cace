//! hush in front of a v3 provider: the engine's [`Backend`] over the v3
//! suppression API, in the seed shape (what hush serves by default,
//! docs/api/v3.md) or SendGrid's own (its API reference, cited as in
//! lib.rs), spoken with this crate's own wire types.
//!
//! v3 keeps one list per kind and no ids, origins or creation times for
//! unsubscribes (docs/backends.md): ids are derived from the list and the
//! address, every entry reads as Recipient origin, and global and group
//! unsubscribes read with the time they were listed unknown (0).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, Capabilities, EngineError};
use hush_model::{
    Actor, BounceClass, DEFAULT_STREAM_KEY, DEFAULT_STREAM_NAME, Email, EmailMatch, Group,
    GroupChanges, GroupId, GroupKey, Kind, KindFamily, KindSet, ListFilter, NewGroup,
    NewSuppression, Origin, Page, PageRequest, ScanCursor, Scope, ScopeFilter, StreamType,
    Suppression, SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};
use hush_upstream::{Answer, Credential, Credentials, Idempotency, Snapshots, Upstream};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;

use crate::Shape;
use crate::wire::{
    AddressGroups, BounceList, BounceRecord, GroupList, GroupPatch, GroupRecord, NewBounce,
    NewGroupBody, NewInvalidEmail, NewSpamReport, RecipientEmail, RecipientEmailList,
    RecipientEmails, SendgridBounce, SendgridGroup, SendgridInvalidEmail, SendgridSpamReport,
    SendgridUnsubscribe, SpamReportList, SpamReportRecord,
};

pub const BACKEND: &str = "upstream-v3";

/// The largest page v3 serves (`limit` 1..500: docs/api/v3.md, and
/// SendGrid's `PaginationCommonLimit`).
const PAGE: usize = 500;
/// Addresses per global or group unsubscribe add.
const RECIPIENTS_PER_ADD: usize = 1000;

/// How many walks (`scan`s from the start) keep their listing at once.
const WALKS: usize = 4;
/// A walk's listing not read for this long is dropped (an abandoned scan
/// gives its memory back); reading on from a cursor then reads it again.
const WALK_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// The v3 upstream backend.
#[derive(Debug, Clone)]
pub struct V3Upstream {
    http: Upstream,
    credentials: Credentials,
    shape: Shape,
    /// The listings walks read their batches from. v3 lists cannot be read
    /// from a `(created_at, id)` cursor: unsubscribes carry no time in the
    /// seed shape, and the order is a merge of several lists. So a walk
    /// reads each list once, page by page, when it starts, and its later
    /// batches come from that snapshot (`hush_upstream::Snapshots`).
    walks: Arc<Snapshots>,
}

/// Where one entry lives at the provider, for reading ids and deleting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum List {
    Bounces,
    Blocks,
    SpamReports,
    InvalidEmails,
    Global,
    Group(GroupId),
}

impl List {
    fn tag(self) -> String {
        match self {
            Self::Bounces => "bounces".into(),
            Self::Blocks => "blocks".into(),
            Self::SpamReports => "spam_reports".into(),
            Self::InvalidEmails => "invalid_emails".into(),
            Self::Global => "global".into(),
            Self::Group(id) => format!("group-{}", id.0),
        }
    }

    fn of(suppression: &Suppression, shape: Shape) -> Self {
        match (&suppression.scope, &suppression.kind, shape) {
            (Scope::Group(id), _, _) => Self::Group(*id),
            (
                Scope::Global,
                Kind::Bounce {
                    class: BounceClass::Block,
                    ..
                },
                Shape::Sendgrid,
            ) => Self::Blocks,
            (Scope::Global, Kind::Bounce { .. }, _) => Self::Bounces,
            (Scope::Global, Kind::Invalid { .. }, Shape::Sendgrid) => Self::InvalidEmails,
            (Scope::Global, Kind::Invalid { .. }, Shape::Seed) => Self::Bounces,
            (Scope::Global, Kind::SpamComplaint { .. }, _) => Self::SpamReports,
            (Scope::Global, Kind::Unsubscribe | Kind::Manual, _) => Self::Global,
        }
    }

    /// The path that deletes one address from this list.
    fn delete_path(self, email: &Email) -> String {
        let email = utf8_percent_encode(email.as_str(), NON_ALPHANUMERIC);
        match self {
            Self::Bounces => format!("/v3/suppression/bounces/{email}"),
            Self::Blocks => format!("/v3/suppression/blocks/{email}"),
            Self::SpamReports => format!("/v3/suppression/spam_reports/{email}"),
            Self::InvalidEmails => format!("/v3/suppression/invalid_emails/{email}"),
            Self::Global => format!("/v3/asm/suppressions/global/{email}"),
            Self::Group(id) => format!("/v3/asm/groups/{}/suppressions/{email}", id.0),
        }
    }
}

impl V3Upstream {
    pub fn new(http: Upstream, credentials: Credentials, shape: Shape) -> Self {
        Self {
            http,
            credentials,
            shape,
            walks: Arc::new(Snapshots::new(WALKS, WALK_IDLE)),
        }
    }

    /// GET of one address's record: `None` when the provider answers 404
    /// (the seed shape's "not in the list").
    async fn lookup<T: DeserializeOwned>(
        &self,
        key: &Credential,
        path: &str,
    ) -> Result<Option<T>, EngineError> {
        let answer = self
            .http
            .exchange(Idempotency::Idempotent, |c| {
                self.request(c, reqwest::Method::GET, path, key)
            })
            .await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(self
                .http
                .fault(&answer, format!("GET {path} answered {}", answer.status)));
        }
        self.http.decode(&answer).map(Some)
    }

    /// Every entry of one address through the per-address endpoints, a
    /// constant number of calls whatever the size of the lists: in the seed
    /// shape a bounce, a spam report and a global lookup (docs/api/v3.md),
    /// and the members of the groups that have any (the seed has no
    /// per-address group lookup); in SendGrid's, the four lists, the global
    /// check and `/v3/asm/suppressions/{email}` for every group (SendGrid API
    /// reference: "Retrieve a Bounce", "Retrieve a specific block", …,
    /// "Retrieve a Global Suppression", "Retrieve all suppression groups for
    /// an email address").
    async fn address_entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        let key = self.key(tenant)?;
        let at = utf8_percent_encode(email.as_str(), NON_ALPHANUMERIC).to_string();
        let mut found = Vec::new();
        match self.shape {
            Shape::Seed => {
                let bounces: Vec<BounceRecord> = self
                    .lookup(key, &format!("/v3/suppression/bounces/{at}"))
                    .await?
                    .unwrap_or_default();
                for r in bounces {
                    found.push(self.seed_bounce(tenant, r)?);
                }
                let spam: Vec<SpamReportRecord> = self
                    .lookup(key, &format!("/v3/suppression/spam_reports/{at}"))
                    .await?
                    .unwrap_or_default();
                for r in spam {
                    let source = Some(r.source).filter(|s| !s.is_empty());
                    found.push(self.entry(
                        tenant,
                        List::SpamReports,
                        &r.email,
                        Kind::SpamComplaint { source },
                        r.created,
                    )?);
                }
                let global: Option<RecipientEmail> = self
                    .lookup(key, &format!("/v3/asm/suppressions/global/{at}"))
                    .await?;
                if let Some(r) = global {
                    found.push(self.entry(
                        tenant,
                        List::Global,
                        &r.recipient_email,
                        Kind::Unsubscribe,
                        0,
                    )?);
                }
                let groups: GroupList = self.get(key, "/v3/asm/groups", &[]).await?;
                for group in groups.suppression_groups {
                    if group.unsubscribes == 0 {
                        continue;
                    }
                    let id = GroupId(group.id);
                    found.extend(
                        self.group_members(tenant, key, id)
                            .await?
                            .into_iter()
                            .filter(|s| &s.email == email),
                    );
                }
            }
            Shape::Sendgrid => {
                for (list, name, class) in [
                    (List::Bounces, "bounces", BounceClass::Hard),
                    (List::Blocks, "blocks", BounceClass::Block),
                ] {
                    let rows: Vec<SendgridBounce> = self
                        .lookup(key, &format!("/v3/suppression/{name}/{at}"))
                        .await?
                        .unwrap_or_default();
                    for r in rows {
                        found.push(self.sendgrid_bounce(tenant, list, class, r)?);
                    }
                }
                let spam: Vec<SendgridSpamReport> = self
                    .lookup(key, &format!("/v3/suppression/spam_reports/{at}"))
                    .await?
                    .unwrap_or_default();
                for r in spam {
                    found.push(self.entry(
                        tenant,
                        List::SpamReports,
                        &r.email,
                        Kind::SpamComplaint { source: None },
                        r.created,
                    )?);
                }
                let invalid: Vec<SendgridInvalidEmail> = self
                    .lookup(key, &format!("/v3/suppression/invalid_emails/{at}"))
                    .await?
                    .unwrap_or_default();
                for r in invalid {
                    found.push(self.sendgrid_invalid(tenant, r)?);
                }
                // `{"recipient_email":…}`, or `{}` when absent (SendGrid API
                // reference, "Retrieve a Global Suppression").
                let global: Option<serde_json::Value> = self
                    .lookup(key, &format!("/v3/asm/suppressions/global/{at}"))
                    .await?;
                if let Some(address) = global
                    .as_ref()
                    .and_then(|g| g.get("recipient_email"))
                    .and_then(serde_json::Value::as_str)
                {
                    found.push(self.entry(tenant, List::Global, address, Kind::Unsubscribe, 0)?);
                }
                let groups: Option<AddressGroups> = self
                    .lookup(key, &format!("/v3/asm/suppressions/{at}"))
                    .await?;
                for group in groups.map(|g| g.suppressions).unwrap_or_default() {
                    if group.suppressed {
                        found.push(self.entry(
                            tenant,
                            List::Group(GroupId(group.id)),
                            email.as_str(),
                            Kind::Unsubscribe,
                            0,
                        )?);
                    }
                }
            }
        }
        // The provider's own matching may be looser (a prefix); keep the
        // address itself.
        found.retain(|s| &s.email == email);
        found.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(found)
    }

    fn seed_bounce(&self, tenant: &TenantId, r: BounceRecord) -> Result<Suppression, EngineError> {
        let class = BounceClass::parse(&r.bounce_type).ok_or_else(|| EngineError::Upstream {
            backend: BACKEND,
            status: Some(200),
            request_id: None,
            detail: format!("unknown bounce_type {:?}", r.bounce_type),
        })?;
        let kind = Kind::Bounce {
            class,
            status: Some(r.status).filter(|s| !s.is_empty()),
            reason: Some(r.reason).filter(|s| !s.is_empty()),
        };
        self.entry(tenant, List::Bounces, &r.email, kind, r.created)
    }

    fn sendgrid_bounce(
        &self,
        tenant: &TenantId,
        list: List,
        class: BounceClass,
        r: SendgridBounce,
    ) -> Result<Suppression, EngineError> {
        let kind = Kind::Bounce {
            class,
            status: Some(r.status).filter(|s| !s.is_empty()),
            reason: Some(r.reason).filter(|s| !s.is_empty()),
        };
        self.entry(tenant, list, &r.email, kind, r.created)
    }

    fn sendgrid_invalid(
        &self,
        tenant: &TenantId,
        r: SendgridInvalidEmail,
    ) -> Result<Suppression, EngineError> {
        let kind = Kind::Invalid {
            reason: Some(r.reason).filter(|s| !s.is_empty()),
        };
        self.entry(tenant, List::InvalidEmails, &r.email, kind, r.created)
    }

    /// The listing a walk reads its batches from: its own snapshot when the
    /// walk is under way, read anew (page by page) when it starts.
    async fn walk(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        fresh: bool,
    ) -> Result<Arc<Vec<Suppression>>, EngineError> {
        if !fresh && let Some(entries) = self.walks.get(tenant, filter) {
            return Ok(entries);
        }
        let entries = Arc::new(filter.collapse(self.collect(tenant, filter).await?));
        self.walks.put(tenant, filter, Arc::clone(&entries));
        Ok(entries)
    }

    /// A walk that has yielded its last batch lets its snapshot go.
    fn end_walk(&self, tenant: &TenantId, filter: &ListFilter) {
        self.walks.forget(tenant, filter);
    }

    fn key(&self, tenant: &TenantId) -> Result<&Credential, EngineError> {
        self.credentials.of(BACKEND, tenant)
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        key: &Credential,
    ) -> reqwest::RequestBuilder {
        client
            .request(method, self.http.url(path))
            .bearer_auth(key.expose())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn get<T: DeserializeOwned>(
        &self,
        key: &Credential,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, EngineError> {
        self.http
            .json(Idempotency::Idempotent, |c| {
                self.request(c, reqwest::Method::GET, path, key)
                    .query(query)
            })
            .await
    }

    /// Every page of a listing, `limit`/`offset` paged; `rows` reads one
    /// page's items.
    async fn pages<T: DeserializeOwned, R>(
        &self,
        key: &Credential,
        path: &str,
        rows: impl Fn(T) -> Vec<R>,
    ) -> Result<Vec<R>, EngineError> {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let page: T = self
                .get(
                    key,
                    path,
                    &[("limit", PAGE.to_string()), ("offset", offset.to_string())],
                )
                .await?;
            let rows = rows(page);
            let full = rows.len() >= PAGE;
            all.extend(rows);
            if !full {
                return Ok(all);
            }
            offset += PAGE;
        }
    }

    fn entry(
        &self,
        tenant: &TenantId,
        list: List,
        email: &str,
        kind: Kind,
        created_seconds: i64,
    ) -> Result<Suppression, EngineError> {
        let email = Email::parse(email).map_err(|e| EngineError::Upstream {
            backend: BACKEND,
            status: Some(200),
            request_id: None,
            detail: format!("a {} entry has a bad address {email:?}: {e}", list.tag()),
        })?;
        let scope = match list {
            List::Group(id) => Scope::Group(id),
            _ => Scope::Global,
        };
        Ok(Suppression {
            id: entry_id(list, &email),
            tenant: tenant.clone(),
            email,
            scope,
            kind,
            origin: Origin::Recipient,
            created_at: Timestamp::from_unix_seconds(created_seconds),
        })
    }

    /// Every entry the filter matches, newest first.
    async fn collect(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
    ) -> Result<Vec<Suppression>, EngineError> {
        // One address: its own endpoints, not every list.
        if let Some(EmailMatch::Exact(email)) = &filter.email {
            let mut found = self.address_entries(tenant, email).await?;
            found.retain(|s| filter.matches(s));
            return Ok(found);
        }
        let key = self.key(tenant)?;
        let kinds = filter.kinds;
        let global = matches!(
            filter.scope,
            ScopeFilter::Any | ScopeFilter::Global | ScopeFilter::GlobalAndGroup(_)
        );
        let mut found = Vec::new();
        if global && kinds.touches_family(KindFamily::Bounce) {
            found.extend(self.bounces(tenant, key).await?);
        }
        if global && kinds.touches_family(KindFamily::Spam) {
            found.extend(self.spam_reports(tenant, key).await?);
        }
        if global && kinds.touches_family(KindFamily::Invalid) && self.shape == Shape::Sendgrid {
            let rows: Vec<SendgridInvalidEmail> = self
                .pages(key, "/v3/suppression/invalid_emails", |r| r)
                .await?;
            for r in rows {
                found.push(self.sendgrid_invalid(tenant, r)?);
            }
        }
        let unsubscribes = kinds.touches_family(KindFamily::Unsubscribe)
            || kinds.touches_family(KindFamily::Manual);
        if global && unsubscribes {
            found.extend(self.global_unsubscribes(tenant, key).await?);
        }
        let groups: Vec<GroupId> = match filter.scope {
            ScopeFilter::Global => Vec::new(),
            ScopeFilter::Group(id) | ScopeFilter::GlobalAndGroup(id) => vec![id],
            ScopeFilter::Any => self.groups(tenant).await?.iter().map(|g| g.id).collect(),
        };
        if unsubscribes {
            for id in groups {
                found.extend(self.group_members(tenant, key, id).await?);
            }
        }
        found.retain(|s| filter.matches(s));
        found.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(found)
    }

    async fn bounces(
        &self,
        tenant: &TenantId,
        key: &Credential,
    ) -> Result<Vec<Suppression>, EngineError> {
        let mut found = Vec::new();
        match self.shape {
            Shape::Seed => {
                let rows = self
                    .pages(key, "/v3/suppression/bounces", |p: BounceList| p.bounces)
                    .await?;
                for r in rows {
                    found.push(self.seed_bounce(tenant, r)?);
                }
            }
            Shape::Sendgrid => {
                // SendGrid's bounces carry no class; blocks are their own
                // list (docs/api/v3.md, "The `sendgrid` shape").
                for (list, path, class) in [
                    (List::Bounces, "/v3/suppression/bounces", BounceClass::Hard),
                    (List::Blocks, "/v3/suppression/blocks", BounceClass::Block),
                ] {
                    let rows: Vec<SendgridBounce> = self.pages(key, path, |r| r).await?;
                    for r in rows {
                        found.push(self.sendgrid_bounce(tenant, list, class, r)?);
                    }
                }
            }
        }
        Ok(found)
    }

    async fn spam_reports(
        &self,
        tenant: &TenantId,
        key: &Credential,
    ) -> Result<Vec<Suppression>, EngineError> {
        let path = "/v3/suppression/spam_reports";
        let rows: Vec<(String, i64, Option<String>)> = match self.shape {
            Shape::Seed => {
                self.pages(key, path, |p: SpamReportList| {
                    p.spam_reports
                        .into_iter()
                        .map(|r| (r.email, r.created, Some(r.source).filter(|s| !s.is_empty())))
                        .collect()
                })
                .await?
            }
            Shape::Sendgrid => {
                self.pages(key, path, |p: Vec<SendgridSpamReport>| {
                    p.into_iter().map(|r| (r.email, r.created, None)).collect()
                })
                .await?
            }
        };
        rows.into_iter()
            .map(|(email, created, source)| {
                self.entry(
                    tenant,
                    List::SpamReports,
                    &email,
                    Kind::SpamComplaint { source },
                    created,
                )
            })
            .collect()
    }

    async fn global_unsubscribes(
        &self,
        tenant: &TenantId,
        key: &Credential,
    ) -> Result<Vec<Suppression>, EngineError> {
        let rows: Vec<(String, i64)> = match self.shape {
            // The seed's global list has addresses only (docs/api/v3.md).
            Shape::Seed => {
                self.pages(
                    key,
                    "/v3/asm/suppressions/global",
                    |p: RecipientEmailList| {
                        p.recipient_emails.into_iter().map(|e| (e, 0)).collect()
                    },
                )
                .await?
            }
            Shape::Sendgrid => {
                self.pages(
                    key,
                    "/v3/suppression/unsubscribes",
                    |p: Vec<SendgridUnsubscribe>| {
                        p.into_iter().map(|r| (r.email, r.created)).collect()
                    },
                )
                .await?
            }
        };
        rows.into_iter()
            .map(|(email, created)| {
                self.entry(tenant, List::Global, &email, Kind::Unsubscribe, created)
            })
            .collect()
    }

    async fn group_members(
        &self,
        tenant: &TenantId,
        key: &Credential,
        id: GroupId,
    ) -> Result<Vec<Suppression>, EngineError> {
        let path = format!("/v3/asm/groups/{}/suppressions", id.0);
        let emails: Vec<String> = match self.shape {
            Shape::Seed => {
                let mut all = Vec::new();
                let mut page = 1;
                loop {
                    let list: RecipientEmailList = self
                        .get(
                            key,
                            &path,
                            &[("page", page.to_string()), ("page_size", PAGE.to_string())],
                        )
                        .await?;
                    let full = list.recipient_emails.len() >= PAGE;
                    all.extend(list.recipient_emails);
                    if !full {
                        break all;
                    }
                    page += 1;
                }
            }
            Shape::Sendgrid => self.get(key, &path, &[]).await?,
        };
        emails
            .iter()
            .map(|e| self.entry(tenant, List::Group(id), e, Kind::Unsubscribe, 0))
            .collect()
    }

    fn group_of(
        &self,
        tenant: &TenantId,
        id: i64,
        name: String,
        description: String,
        is_default: bool,
        created_at: Option<&str>,
    ) -> Group {
        // v3 groups have no key: the default stream keeps its own, the
        // others are derived from the name (docs/backends.md, "v3").
        let default_stream = name == DEFAULT_STREAM_NAME;
        let key = if default_stream {
            GroupKey::parse(DEFAULT_STREAM_KEY).unwrap_or_else(|_| GroupKey::from_name(&name))
        } else {
            GroupKey::from_name(&name)
        };
        // The default stream is Postmark's transactional one; other v3
        // groups are for bulk mail with an unsubscribe link.
        let (stream_type, unsubscribe_handling) = if default_stream {
            (StreamType::Transactional, UnsubscribeHandling::None)
        } else {
            (StreamType::Broadcasts, UnsubscribeHandling::Postmark)
        };
        Group {
            id: GroupId(id),
            tenant: tenant.clone(),
            key,
            name,
            description,
            is_default,
            stream_type,
            unsubscribe_handling,
            archived_at: None,
            created_at: created_at
                .and_then(|t| Timestamp::parse_rfc3339(t).ok())
                .unwrap_or(Timestamp::from_nanos(0)),
            updated_at: None,
        }
    }

    /// A group from a create, get or update answer.
    fn decode_group(&self, tenant: &TenantId, answer: &Answer) -> Result<Group, EngineError> {
        Ok(match self.shape {
            Shape::Seed => {
                let g: GroupRecord = self.http.decode(answer)?;
                self.group_of(
                    tenant,
                    g.id,
                    g.name,
                    g.description,
                    g.is_default,
                    Some(&g.created_at),
                )
            }
            Shape::Sendgrid => {
                let g: SendgridGroup = self.http.decode(answer)?;
                self.group_of(tenant, g.id, g.name, g.description, g.is_default, None)
            }
        })
    }

    /// A 400 to a group create. Only the duplicate-name refusal is "name
    /// taken" (names are unique: docs/api/v3.md, "Groups"); a refused field
    /// is the caller's error with the provider's words; anything else is the
    /// provider's fault.
    fn group_refusal(&self, answer: &Answer, name: String) -> EngineError {
        let envelope: Option<crate::ErrorEnvelope> = serde_json::from_slice(&answer.body).ok();
        let Some(item) = envelope.and_then(|e| e.errors.into_iter().next()) else {
            return self.http.fault(
                answer,
                "group create answered 400 without a v3 error envelope",
            );
        };
        let message = item.message.to_lowercase();
        let duplicate = [
            "already exists",
            "already in use",
            "taken",
            "duplicate",
            "unique",
        ]
        .iter()
        .any(|words| message.contains(words));
        match item.field.as_deref() {
            Some("name") if duplicate => EngineError::GroupNameTaken(name),
            Some("name") => EngineError::InvalidGroup {
                field: "name",
                message: item.message,
            },
            Some("description") => EngineError::InvalidGroup {
                field: "description",
                message: item.message,
            },
            _ => self
                .http
                .fault(answer, format!("group create refused: {}", item.message)),
        }
    }

    async fn delete(&self, tenant: &TenantId, doomed: &[Suppression]) -> Result<u64, EngineError> {
        let key = self.key(tenant)?;
        let mut done = HashSet::new();
        let mut removed = 0;
        for entry in doomed {
            let path = List::of(entry, self.shape).delete_path(&entry.email);
            removed += 1;
            // One delete per list and address; a second entry of the same
            // list (hard and soft bounce) went with the first.
            if !done.insert(path.clone()) {
                continue;
            }
            let answer = self
                .http
                .exchange(Idempotency::Idempotent, |c| {
                    self.request(c, reqwest::Method::DELETE, &path, key)
                })
                .await?;
            // 404: already gone, which is what a delete wants.
            if !answer.status.is_success() && answer.status != reqwest::StatusCode::NOT_FOUND {
                return Err(self
                    .http
                    .fault(&answer, format!("DELETE {path} answered {}", answer.status)));
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl Backend for V3Upstream {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let sendgrid = self.shape == Shape::Sendgrid;
        Capabilities {
            groups: true,
            soft_and_block_bounces: !sendgrid,
            created_time_filter: true,
            origins: false,
            invalid_emails: sendgrid,
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
        let key = self.key(tenant)?;
        let now = hush_engine::Engine::now();
        // Each request: its path, its body and the items it carries.
        // Unsubscribes go many to a request (`recipient_emails`); the other
        // lists take one address per body (docs/api/v3.md).
        let mut lists: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut requests: Vec<(String, serde_json::Value, Vec<usize>)> = Vec::new();
        for (at, item) in items.iter().enumerate() {
            let email = item.email.as_str().to_owned();
            let single = |path: &str, body: serde_json::Result<serde_json::Value>| {
                body.map(|b| (path.to_owned(), b, vec![at]))
            };
            let request = match (&item.scope, &item.kind) {
                (Scope::Group(id), _) => {
                    lists
                        .entry(format!("/v3/asm/groups/{}/suppressions", id.0))
                        .or_default()
                        .push(at);
                    continue;
                }
                (Scope::Global, Kind::Unsubscribe | Kind::Manual) => {
                    lists
                        .entry("/v3/asm/suppressions/global".to_owned())
                        .or_default()
                        .push(at);
                    continue;
                }
                (
                    Scope::Global,
                    Kind::Bounce {
                        class,
                        status,
                        reason,
                    },
                ) => single(
                    "/v3/suppression/bounces",
                    serde_json::to_value(NewBounce {
                        email,
                        bounce_type: Some(class.as_str().to_owned()),
                        reason: reason.clone(),
                        status: status.clone(),
                    }),
                ),
                (Scope::Global, Kind::Invalid { reason }) if self.shape == Shape::Sendgrid => {
                    single(
                        "/v3/suppression/invalid_emails",
                        serde_json::to_value(NewInvalidEmail {
                            email,
                            reason: reason.clone(),
                        }),
                    )
                }
                // The seed shape has no invalid list: a hard bounce.
                (Scope::Global, Kind::Invalid { reason }) => single(
                    "/v3/suppression/bounces",
                    serde_json::to_value(NewBounce {
                        email,
                        bounce_type: Some(BounceClass::Hard.as_str().to_owned()),
                        reason: reason.clone(),
                        status: None,
                    }),
                ),
                (Scope::Global, Kind::SpamComplaint { source }) => single(
                    "/v3/suppression/spam_reports",
                    serde_json::to_value(NewSpamReport {
                        email,
                        source: source.clone(),
                    }),
                ),
            };
            requests.push(request.map_err(|e| EngineError::internal(BACKEND, e))?);
        }
        for (path, positions) in lists {
            for chunk in positions.chunks(RECIPIENTS_PER_ADD) {
                let body = RecipientEmails {
                    recipient_emails: chunk
                        .iter()
                        .map(|&at| items[at].email.as_str().to_owned())
                        .collect(),
                };
                let body =
                    serde_json::to_value(body).map_err(|e| EngineError::internal(BACKEND, e))?;
                requests.push((path.clone(), body, chunk.to_vec()));
            }
        }
        let mut outcomes: Vec<Option<AddOutcome>> = vec![None; items.len()];
        let mut seen = HashSet::new();
        for (path, body, positions) in requests {
            // Adding an address twice keeps one entry at the provider
            // (adds are idempotent: docs/api/v3.md), so an add may be
            // retried.
            let answer = self
                .http
                .exchange(Idempotency::Idempotent, |c| {
                    self.request(c, reqwest::Method::POST, &path, key)
                        .json(&body)
                })
                .await?;
            for at in positions {
                let item = &items[at];
                if let Scope::Group(id) = item.scope
                    && answer.status == reqwest::StatusCode::NOT_FOUND
                {
                    outcomes[at] = Some(AddOutcome::UnknownGroup(id));
                    continue;
                }
                if !answer.status.is_success() {
                    return Err(self
                        .http
                        .fault(&answer, format!("POST {path} answered {}", answer.status)));
                }
                let kind = match &item.kind {
                    Kind::Manual => Kind::Unsubscribe,
                    other => other.clone(),
                };
                let mut stored = Suppression {
                    id: SuppressionId(0),
                    tenant: tenant.clone(),
                    email: item.email.clone(),
                    scope: item.scope,
                    kind,
                    origin: Origin::Recipient,
                    created_at: now,
                };
                let list = List::of(&stored, self.shape);
                stored.id = entry_id(list, &stored.email);
                let new = seen.insert((list, stored.email.clone()));
                outcomes[at] = Some(AddOutcome::Added {
                    suppression: stored,
                    new,
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
        self.address_entries(tenant, email).await
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
        let entries = self.walk(tenant, filter, after.is_none()).await?;
        // Newest first: the entries the cursor has passed come first.
        let from = after.map_or(0, |c| entries.partition_point(|s| !c.is_before(s)));
        let batch: Vec<Suppression> = entries
            .iter()
            .skip(from)
            .take(limit as usize)
            .cloned()
            .collect();
        if batch.len() < limit as usize {
            self.end_walk(tenant, filter);
        }
        Ok(batch)
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        _actor: &Actor,
    ) -> Result<u64, EngineError> {
        let doomed = self.collect(tenant, filter).await?;
        self.delete(tenant, &doomed).await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        _actor: &Actor,
    ) -> Result<u64, EngineError> {
        let wanted: HashSet<&SuppressionId> = ids.iter().collect();
        let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
        let doomed: Vec<Suppression> = self
            .collect(tenant, &everything)
            .await?
            .into_iter()
            .filter(|s| wanted.contains(&s.id))
            .collect();
        self.delete(tenant, &doomed).await
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        _actor: &Actor,
    ) -> Result<Group, EngineError> {
        let key = self.key(tenant)?;
        let body = NewGroupBody {
            name: group.name.clone(),
            description: Some(group.description.clone()),
            is_default: Some(group.is_default),
        };
        let answer = self
            .http
            .exchange(Idempotency::NotIdempotent, |c| {
                self.request(c, reqwest::Method::POST, "/v3/asm/groups", key)
                    .json(&body)
            })
            .await?;
        if answer.status == reqwest::StatusCode::BAD_REQUEST {
            return Err(self.group_refusal(&answer, group.name));
        }
        if !answer.status.is_success() {
            return Err(self
                .http
                .fault(&answer, format!("group create answered {}", answer.status)));
        }
        self.decode_group(tenant, &answer)
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        Ok(self.groups(tenant).await?.into_iter().find(|g| g.id == id))
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        Ok(self
            .groups(tenant)
            .await?
            .into_iter()
            .find(|g| &g.key == key))
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        let key = self.key(tenant)?;
        let mut groups: Vec<Group> = match self.shape {
            Shape::Seed => {
                let list: GroupList = self.get(key, "/v3/asm/groups", &[]).await?;
                list.suppression_groups
                    .into_iter()
                    .map(|g| {
                        self.group_of(
                            tenant,
                            g.id,
                            g.name,
                            g.description,
                            g.is_default,
                            Some(&g.created_at),
                        )
                    })
                    .collect()
            }
            Shape::Sendgrid => {
                let list: Vec<SendgridGroup> = self.get(key, "/v3/asm/groups", &[]).await?;
                list.into_iter()
                    .map(|g| self.group_of(tenant, g.id, g.name, g.description, g.is_default, None))
                    .collect()
            }
        };
        groups.sort_by_key(|g| g.id);
        Ok(groups)
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        _actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        if changes.archived_at.is_some() || changes.unsubscribe_handling.is_some() {
            return Err(EngineError::Unsupported {
                backend: BACKEND,
                operation: "archive a group or change its unsubscribe handling (v3 groups have neither)",
            });
        }
        let key = self.key(tenant)?;
        let path = format!("/v3/asm/groups/{}", id.0);
        let patch = GroupPatch {
            name: changes.name,
            description: changes.description,
            is_default: changes.is_default,
        };
        let answer = self
            .http
            .exchange(Idempotency::Idempotent, |c| {
                self.request(c, reqwest::Method::PATCH, &path, key)
                    .json(&patch)
            })
            .await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(self
                .http
                .fault(&answer, format!("group update answered {}", answer.status)));
        }
        self.decode_group(tenant, &answer).map(Some)
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        _actor: &Actor,
    ) -> Result<bool, EngineError> {
        let key = self.key(tenant)?;
        let path = format!("/v3/asm/groups/{}", id.0);
        let answer = self
            .http
            .exchange(Idempotency::Idempotent, |c| {
                self.request(c, reqwest::Method::DELETE, &path, key)
            })
            .await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if !answer.status.is_success() {
            return Err(self
                .http
                .fault(&answer, format!("group delete answered {}", answer.status)));
        }
        Ok(true)
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

/// A stable id for an entry of one list: FNV-1a of the list and the
/// address, below 2^53 and never 0.
fn entry_id(list: List, email: &Email) -> SuppressionId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in list
        .tag()
        .bytes()
        .chain(std::iter::once(0))
        .chain(email.as_str().bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    SuppressionId(i64::try_from(hash & ((1 << 53) - 1)).unwrap_or(1).max(1))
}
