//! hush in front of SendPost: the engine's [`Backend`] over SendPost's
//! subaccount suppression API (its API reference, cited as in lib.rs),
//! spoken with this crate's own wire types.
//!
//! What SendPost keeps is narrower than hush's model, so this backend
//! declares it (docs/backends.md): no groups, one bounce class, no invalid
//! entries of their own, no origins. It lists only by day ranges of at most
//! 60 days (SendPost API reference, get-all-suppressions), so a full listing
//! walks 60-day windows from today back to `history_start`, newest first.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, Capabilities, EngineError};
use hush_model::{
    Actor, BounceClass, Email, EmailMatch, Group, GroupChanges, GroupId, GroupKey, Kind, KindSet,
    ListFilter, NewGroup, NewSuppression, Origin, Page, PageRequest, ScanCursor, Scope,
    ScopeFilter, Suppression, SuppressionId, TenantId, Timestamp,
};
use hush_upstream::{Credential, Credentials, Idempotency, Upstream};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use time::{Date, Duration, OffsetDateTime};

use crate::contract::{CONTRACT_HEADER, Contract};
use crate::wire::{
    CreateSuppressionRequest, DeleteSuppressionRequest, EmailItem, LegacyDeleted, Reason,
    Suppression as WireSuppression,
};

pub const BACKEND: &str = "upstream-sendpost";

/// The API's path below the host (the SDK's default host ends in `/api/v1`;
/// `base_url` is the host without it).
const PATH: &str = "/api/v1/subaccount/suppression";
/// The largest page SendPost serves (SendPost API reference,
/// get-all-suppressions).
const PAGE: usize = 100;
/// Days in one listing window: `from` and `to` inclusive, at most 60 days
/// apart (SendPost API reference, get-all-suppressions).
const WINDOW_DAYS: i64 = 60;
/// Addresses per create or delete call. SendPost publishes no limit;
/// this keeps each body small.
const BATCH: usize = 100;
const AUTH: &str = "X-SubAccount-ApiKey";
const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

/// The SendPost upstream backend.
#[derive(Debug, Clone)]
pub struct SendPostUpstream {
    http: Upstream,
    credentials: Credentials,
    /// The oldest day a full listing walks back to.
    history_start: Date,
}

impl SendPostUpstream {
    pub fn new(http: Upstream, credentials: Credentials, history_start: Date) -> Self {
        Self {
            http,
            credentials,
            history_start,
        }
    }

    fn key(&self, tenant: &TenantId) -> Result<&Credential, EngineError> {
        self.credentials.of(BACKEND, tenant)
    }

    /// One page of one window.
    async fn page(
        &self,
        key: &Credential,
        window: (Date, Date),
        search: Option<&str>,
        offset: usize,
    ) -> Result<Vec<WireSuppression>, EngineError> {
        let mut url = format!(
            "{}?from={}&to={}&limit={PAGE}&offset={offset}",
            self.http.url(PATH),
            day(window.0),
            day(window.1)
        );
        // Percent-encoded as SendPost's SDK does (`urllib.parse.quote`: a
        // space is `%20`, a plus `%2B`), not form-encoded: SendPost
        // reads a `+` in `search` as a plus, so a form-encoded space (as
        // in `"john doe"@…`) would search for another address.
        if let Some(needle) = search {
            url.push_str("&search=");
            url.extend(utf8_percent_encode(needle, NON_ALPHANUMERIC));
        }
        self.http
            .json(Idempotency::Idempotent, |c| {
                c.get(&url).header(AUTH, key.expose())
            })
            .await
    }

    /// Every entry of one window that the filter matches, newest first.
    async fn window(
        &self,
        key: &Credential,
        window: (Date, Date),
        filter: &ListFilter,
        tenant: &TenantId,
    ) -> Result<Vec<Suppression>, EngineError> {
        let search = search_needle(filter.email.as_ref());
        let mut found = Vec::new();
        let mut offset = 0;
        loop {
            let rows = self.page(key, window, search.as_deref(), offset).await?;
            let full = rows.len() >= PAGE;
            for row in rows {
                let entry = self.canonical(tenant, row)?;
                if filter.matches(&entry) {
                    found.push(entry);
                }
            }
            if !full {
                break;
            }
            offset += PAGE;
        }
        found.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(found)
    }

    /// The windows a filter needs, newest first, starting no later than
    /// `newest`.
    fn windows(&self, filter: &ListFilter, newest: Option<Timestamp>) -> Vec<(Date, Date)> {
        let today = OffsetDateTime::now_utc().date();
        let mut to = [filter.created_to, newest]
            .into_iter()
            .flatten()
            .map(date_of)
            .fold(today, Date::min);
        let oldest = filter
            .created_from
            .map(date_of)
            .map_or(self.history_start, |d| d.max(self.history_start));
        let mut windows = Vec::new();
        while to >= oldest {
            let from = (to - Duration::days(WINDOW_DAYS - 1)).max(oldest);
            windows.push((from, to));
            match from.previous_day() {
                Some(day) => to = day,
                None => break,
            }
        }
        windows
    }

    /// Every entry the filter matches, newest first.
    async fn collect(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
    ) -> Result<Vec<Suppression>, EngineError> {
        if !serves(filter) {
            return Ok(Vec::new());
        }
        let key = self.key(tenant)?;
        let mut all = Vec::new();
        for window in self.windows(filter, None) {
            all.extend(self.window(key, window, filter, tenant).await?);
        }
        Ok(all)
    }

    fn canonical(
        &self,
        tenant: &TenantId,
        row: WireSuppression,
    ) -> Result<Suppression, EngineError> {
        let fault = |detail: String| EngineError::Upstream {
            backend: BACKEND,
            status: Some(200),
            request_id: None,
            detail,
        };
        let email = Email::parse(&row.email)
            .map_err(|e| fault(format!("suppression {} has a bad email: {e}", row.id)))?;
        let smtp_error = [row.smtp_error, row.legacy_smtp_error]
            .into_iter()
            .find(|s| !s.is_empty());
        // Reason 4 is a hard bounce found after sending (SDK 3.0.0's
        // `Suppression`).
        let kind = match row.reason {
            0 => Kind::Manual,
            1 => Kind::Unsubscribe,
            2 | 4 => Kind::Bounce {
                class: BounceClass::Hard,
                status: None,
                reason: smtp_error,
            },
            3 => Kind::SpamComplaint { source: None },
            other => return Err(fault(format!("unknown suppression reason {other}"))),
        };
        // SendPost keeps no origin: a manual entry was made by the customer,
        // everything else was caused by the recipient (docs/backends.md,
        // "SendPost").
        let origin = if matches!(kind, Kind::Manual) {
            Origin::Customer
        } else {
            Origin::Recipient
        };
        Ok(Suppression {
            id: SuppressionId(row.id),
            tenant: tenant.clone(),
            email,
            scope: Scope::Global,
            kind,
            origin,
            created_at: Timestamp::from_nanos(row.created),
        })
    }

    /// Deletes every entry of the addresses of `doomed`, which must be all
    /// the entries those addresses have: SendPost removes an address
    /// "regardless of suppression type" (SendPost's API reference).
    async fn delete(&self, tenant: &TenantId, doomed: &[Suppression]) -> Result<u64, EngineError> {
        if doomed.is_empty() {
            return Ok(0);
        }
        let emails: HashSet<&Email> = doomed.iter().map(|s| &s.email).collect();
        let mut everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
        if let [only] = emails.iter().collect::<Vec<_>>().as_slice() {
            everything.email = Some(EmailMatch::Exact((**only).clone()));
        }
        let ids: HashSet<SuppressionId> = doomed.iter().map(|s| s.id).collect();
        let kept = self
            .collect(tenant, &everything)
            .await?
            .into_iter()
            .any(|s| emails.contains(&s.email) && !ids.contains(&s.id));
        if kept {
            return Err(partial_delete());
        }
        let mut emails: Vec<&Email> = emails.into_iter().collect();
        emails.sort();
        self.delete_addresses(tenant, &emails).await?;
        Ok(doomed.len() as u64)
    }

    /// SendPost's DELETE for whole addresses, `BATCH` a call: it removes
    /// every entry of each "regardless of suppression type" (SendPost's API
    /// reference), so nothing needs listing first. Asked under the legacy
    /// contract, whose reply is one `{"id","message"}` per entry removed
    /// (docs/api/sendpost.md, "Contracts"), so the answer says how many went;
    /// a provider that answers the v1 `{"message"}` instead says nothing of
    /// it, and each address counts as one (docs/backends.md).
    async fn delete_addresses(
        &self,
        tenant: &TenantId,
        emails: &[&Email],
    ) -> Result<u64, EngineError> {
        let key = self.key(tenant)?;
        let url = self.http.url(PATH);
        let mut removed = 0;
        for chunk in emails.chunks(BATCH) {
            let body = DeleteSuppressionRequest {
                suppressions: Some(
                    chunk
                        .iter()
                        .map(|e| EmailItem {
                            email: Some(e.as_str().to_owned()),
                        })
                        .collect(),
                ),
            };
            // Deleting twice removes the same thing: safe to retry.
            let answer = self
                .http
                .send(Idempotency::Idempotent, |c| {
                    c.delete(&url)
                        .header(AUTH, key.expose())
                        .header(CONTRACT_HEADER, Contract::Legacy.as_str())
                        .json(&body)
                })
                .await?;
            let reply: DeleteReply = self.http.decode(&answer)?;
            removed += match reply {
                DeleteReply::Legacy(items) => {
                    items.iter().map(|i| i.id).collect::<HashSet<_>>().len() as u64
                }
                DeleteReply::V1 { message } => {
                    tracing::debug!(?message, "a v1 delete reply names no entries");
                    chunk.len() as u64
                }
            };
        }
        Ok(removed)
    }
}

#[async_trait]
impl Backend for SendPostUpstream {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            groups: false,
            soft_and_block_bounces: false,
            created_time_filter: true,
            origins: false,
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
        if let Some(item) = items.iter().find(|i| i.scope != Scope::Global) {
            return Err(EngineError::Unsupported {
                backend: BACKEND,
                operation: if matches!(item.scope, Scope::Group(_)) {
                    "store group suppressions"
                } else {
                    "store this suppression"
                },
            });
        }
        let key = self.key(tenant)?;
        let url = self.http.url(PATH);
        let started = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let mut outcomes = Vec::with_capacity(items.len());
        for chunk in items.chunks(BATCH) {
            let mut body = CreateSuppressionRequest::default();
            for item in chunk {
                let list = match Reason::of(&item.kind) {
                    Reason::HardBounce => &mut body.hard_bounce,
                    Reason::Manual => &mut body.manual,
                    Reason::Unsubscribe => &mut body.unsubscribe,
                    Reason::SpamComplaint => &mut body.spam_complaint,
                };
                list.get_or_insert_with(Vec::new).push(EmailItem {
                    email: Some(item.email.as_str().to_owned()),
                });
            }
            // SendPost does not document what a second create of the same
            // address does, so a create is never blindly repeated.
            let answer = self
                .http
                .send(Idempotency::NotIdempotent, |c| {
                    c.post(&url).header(AUTH, key.expose()).json(&body)
                })
                .await?;
            let rows: Vec<WireSuppression> = self.http.decode(&answer)?;
            let mut stored: HashMap<(String, i64), Suppression> = HashMap::new();
            let mut reported: HashSet<(String, i64)> = HashSet::new();
            for row in rows {
                let reason = if row.reason == 4 { 2 } else { row.reason };
                let entry = self.canonical(tenant, row)?;
                stored.insert((entry.email.as_str().to_owned(), reason), entry);
            }
            for item in chunk {
                let reason = Reason::of(&item.kind).code();
                let entry = stored
                    .get(&(item.email.as_str().to_owned(), reason))
                    .ok_or_else(|| {
                        self.http.fault(
                            &answer,
                            format!(
                                "the create answer has no {} entry for {}",
                                Reason::of(&item.kind).text(),
                                item.email
                            ),
                        )
                    })?;
                // SendPost does not say whether an entry was new; one made
                // before this call was already there.
                // An address twice in one call is one entry, new at most once.
                let first = reported.insert((item.email.as_str().to_owned(), reason));
                let new = first && i128::from(entry.created_at.as_nanos()) >= started;
                outcomes.push(AddOutcome::Added {
                    suppression: entry.clone(),
                    new,
                });
            }
        }
        Ok(outcomes)
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
        if !serves(filter) {
            return Ok(Vec::new());
        }
        // One row per address (ListFilter::per_address) needs every entry
        // of an address, which windows split: walk them all.
        if filter.per_address {
            return Ok(filter
                .collapse(self.collect(tenant, filter).await?)
                .into_iter()
                .filter(|s| after.is_none_or(|c| c.is_before(s)))
                .take(limit as usize)
                .collect());
        }
        let key = self.key(tenant)?;
        let mut found = Vec::new();
        // Windows are disjoint days walked newest first, so each window's
        // entries all come after the previous window's in the order.
        for window in self.windows(filter, after.map(|c| c.created_at)) {
            let rows = self.window(key, window, filter, tenant).await?;
            found.extend(
                rows.into_iter()
                    .filter(|s| after.is_none_or(|c| c.is_before(s))),
            );
            if found.len() >= limit as usize {
                break;
            }
        }
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        _actor: &Actor,
    ) -> Result<u64, EngineError> {
        if !serves(filter) {
            return Ok(0);
        }
        if let Some(email) = whole_address(filter) {
            // SendPost's own delete: one call, no listing.
            return self.delete_addresses(tenant, &[email]).await;
        }
        if let Some(EmailMatch::Exact(email)) = &filter.email {
            // One walk of the address's entries serves both the choice and
            // the check that nothing of it is kept.
            let all = self.entries(tenant, email).await?;
            let (doomed, kept): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| filter.matches(s));
            if doomed.is_empty() {
                return Ok(0);
            }
            if !kept.is_empty() {
                return Err(partial_delete());
            }
            self.delete_addresses(tenant, &[email]).await?;
            return Ok(doomed.len() as u64);
        }
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
        _: &TenantId,
        _: NewGroup,
        _actor: &Actor,
    ) -> Result<Group, EngineError> {
        Err(no_groups())
    }

    async fn group(&self, _: &TenantId, _: GroupId) -> Result<Option<Group>, EngineError> {
        Err(no_groups())
    }

    async fn group_by_key(&self, _: &TenantId, _: &GroupKey) -> Result<Option<Group>, EngineError> {
        Err(no_groups())
    }

    async fn groups(&self, _: &TenantId) -> Result<Vec<Group>, EngineError> {
        Err(no_groups())
    }

    async fn update_group(
        &self,
        _: &TenantId,
        _: GroupId,
        _: GroupChanges,
        _actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        Err(no_groups())
    }

    async fn delete_group(
        &self,
        _: &TenantId,
        _: GroupId,
        _actor: &Actor,
    ) -> Result<bool, EngineError> {
        Err(no_groups())
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

/// SendPost deletes whole addresses ("regardless of suppression type"), so a
/// delete that would keep some of an address's entries is refused rather than
/// over-delete.
fn partial_delete() -> EngineError {
    EngineError::Unsupported {
        backend: BACKEND,
        operation: "remove some kinds of an address's suppressions and keep others",
    }
}

/// The address a filter selects every entry of, as far as SendPost holds
/// entries: an exact address, every kind SendPost reads back, every global
/// entry, no time or origin bound. Such a removal is exactly SendPost's
/// DELETE.
fn whole_address(filter: &ListFilter) -> Option<&Email> {
    let Some(EmailMatch::Exact(email)) = &filter.email else {
        return None;
    };
    let held = [
        Kind::Manual,
        Kind::Unsubscribe,
        Kind::hard_bounce(),
        Kind::SpamComplaint { source: None },
    ];
    let whole = held.iter().all(|k| filter.kinds.contains(k))
        && filter.scope.matches(Scope::Global)
        && filter.origin.is_none()
        && filter.created_from.is_none()
        && filter.created_to.is_none();
    whole.then_some(email)
}

/// SendPost's delete reply in either contract (docs/api/sendpost.md,
/// "Contracts").
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum DeleteReply {
    Legacy(Vec<LegacyDeleted>),
    /// `{"message": …}`; the message is optional in SDK 3.0.0's model
    /// (`DeleteSuppression200Response`).
    V1 {
        #[serde(default)]
        message: Option<String>,
    },
}

/// SendPost has no groups: the engine refuses group calls before they get
/// here, and this backend refuses them too rather than answer "none".
fn no_groups() -> EngineError {
    EngineError::Unsupported {
        backend: BACKEND,
        operation: "manage groups",
    }
}

/// Whether the filter can match anything SendPost holds: it holds only
/// global entries.
fn serves(filter: &ListFilter) -> bool {
    !matches!(filter.scope, ScopeFilter::Group(_)) && !filter.kinds.is_empty()
}

/// SendPost's `search` is a substring match (SendPost API reference,
/// get-all-suppressions), so it narrows every kind of email filter; the exact
/// filter runs locally on what comes back.
fn search_needle(email: Option<&EmailMatch>) -> Option<String> {
    match email? {
        EmailMatch::Exact(e) => Some(e.as_str().to_owned()),
        EmailMatch::Prefix(p) | EmailMatch::Contains(p) => {
            Some(p.clone()).filter(|p| !p.is_empty())
        }
        EmailMatch::Pattern(parts) => parts
            .iter()
            .max_by_key(|p| p.len())
            .filter(|p| !p.is_empty())
            .cloned(),
    }
}

/// The UTC day a timestamp falls on.
fn date_of(at: Timestamp) -> Date {
    let day = i128::from(at.as_nanos()).div_euclid(NANOS_PER_DAY);
    OffsetDateTime::from_unix_timestamp_nanos(day * NANOS_PER_DAY)
        .map_or(Date::MIN, OffsetDateTime::date)
}

/// `YYYY-MM-DD`, the listing's `from` and `to` form.
fn day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}
