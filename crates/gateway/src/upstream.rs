//! `storage.backend = "upstream"`: hush in front of a real provider, and
//! per-tenant backends so one gateway serves tenants that have moved to an
//! upstream and tenants that have not (docs/backends.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, Capabilities, EngineError};
use hush_model::{
    Actor, Email, Group, GroupChanges, GroupId, GroupKey, JournalEntry, JournalQuery, ListFilter,
    MirrorFailure, MirrorName, MirrorState, NewGroup, NewSuppression, Page, PageRequest, Position,
    ScanCursor, Suppression, SuppressionId, TenantId, Timestamp,
};
use hush_upstream::{Credential, Credentials, RetrySettings, Upstream, UpstreamSettings};
use serde::{Deserialize, Serialize};

use crate::config::{BackendKind, Config, ConfigError};

/// The provider an upstream backend speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    V3,
    Postmark,
    Sendpost,
}

impl Provider {
    /// As config and `hush copy` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V3 => "v3",
            Self::Postmark => "postmark",
            Self::Sendpost => "sendpost",
        }
    }

    /// The provider's own API host.
    fn default_base_url(self) -> &'static str {
        match self {
            Self::V3 => "https://api.sendgrid.com",
            Self::Postmark => "https://api.postmarkapp.com",
            Self::Sendpost => "https://api.sendpost.io",
        }
    }
}

/// `[storage.upstream]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// `v3`, `postmark` or `sendpost`; required when any tenant uses the
    /// upstream backend.
    pub provider: Option<Provider>,
    /// The provider's host, without the API's path; the provider's own by
    /// default.
    pub base_url: Option<String>,
    pub connect_timeout_ms: u64,
    /// One attempt, from sending to the last byte of the answer.
    pub request_timeout_ms: u64,
    /// Attempts in all for a call that is safe to repeat; 1 turns retries off.
    pub retry_max_attempts: u32,
    pub retry_initial_backoff_ms: u64,
    pub retry_max_backoff_ms: u64,
    /// No retry starts past this long after the first attempt began.
    pub retry_max_elapsed_ms: u64,
    /// SendPost: the oldest day a full listing walks back to (`YYYY-MM-DD`).
    pub history_start: String,
    /// v3: the provider's response shapes, `seed` (hush's own) or
    /// `sendgrid` (SendGrid itself).
    pub shape: Option<hush_v3::Shape>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        let retry = RetrySettings::default();
        Self {
            provider: None,
            base_url: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            retry_max_attempts: retry.max_attempts,
            retry_initial_backoff_ms: millis(retry.initial_backoff),
            retry_max_backoff_ms: millis(retry.max_backoff),
            retry_max_elapsed_ms: millis(retry.max_elapsed),
            history_start: "2015-01-01".into(),
            shape: None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Config {
    /// The backend one tenant is served by.
    pub fn backend_of(&self, tenant: usize) -> BackendKind {
        self.tenants
            .get(tenant)
            .and_then(|t| t.backend)
            .unwrap_or(self.storage.backend)
    }

    /// The tenants whose suppressions live at the upstream.
    pub fn upstream_tenants(&self) -> Vec<TenantId> {
        (0..self.tenants.len())
            .filter(|&t| self.backend_of(t) == BackendKind::Upstream)
            .map(|t| self.tenants[t].id.clone())
            .collect()
    }

    fn uses(&self, kind: BackendKind) -> bool {
        self.storage.backend == kind || (0..self.tenants.len()).any(|t| self.backend_of(t) == kind)
    }

    /// Checks the upstream settings and every upstream tenant's credential,
    /// naming the key at fault.
    pub(crate) fn check_upstream(&self) -> Result<(), ConfigError> {
        // A credential on a tenant that does not use it is a mistake in the
        // making: the operator thinks the tenant moved.
        for (t, tenant) in self.tenants.iter().enumerate() {
            if self.backend_of(t) != BackendKind::Upstream
                && (tenant.upstream_token.is_some() || tenant.upstream_token_env.is_some())
            {
                return Err(ConfigError::new(
                    format!("tenants[{t}].upstream_token"),
                    "given, but the tenant is not on the upstream backend (set backend = \"upstream\" on the tenant or storage.backend)",
                ));
            }
        }
        if !self.uses(BackendKind::Upstream) {
            return Ok(());
        }
        self.upstream_settings()?;
        self.credentials().map(drop)
    }

    fn provider(&self) -> Result<Provider, ConfigError> {
        let provider = self.storage.upstream.provider.ok_or_else(|| {
            ConfigError::new(
                "storage.upstream.provider",
                "required when a tenant uses the upstream backend: v3, postmark or sendpost",
            )
        })?;
        if provider != Provider::V3 && self.storage.upstream.shape.is_some() {
            return Err(ConfigError::new(
                "storage.upstream.shape",
                "only the v3 provider has a shape",
            ));
        }
        Ok(provider)
    }

    fn upstream_settings(&self) -> Result<UpstreamSettings, ConfigError> {
        settings_of(&self.storage.upstream, self.provider()?, "storage.upstream")
    }

    /// Each upstream tenant's credential: `upstream_token`, or the variable
    /// `upstream_token_env` names, read now.
    fn credentials(&self) -> Result<Credentials, ConfigError> {
        let mut credentials = Credentials::default();
        for (t, tenant) in self.tenants.iter().enumerate() {
            if self.backend_of(t) != BackendKind::Upstream {
                continue;
            }
            let secret = provider_key(
                tenant.upstream_token.as_ref(),
                tenant.upstream_token_env.as_deref(),
                &format!("tenants[{t}].upstream_token"),
                "a tenant on the upstream backend needs upstream_token or upstream_token_env",
            )?;
            credentials.insert(tenant.id.clone(), Credential::new(secret));
        }
        Ok(credentials)
    }

    /// The upstream backend, when any tenant uses it.
    pub fn open_upstream(&self) -> Result<Option<Arc<dyn Backend>>, ConfigError> {
        if !self.uses(BackendKind::Upstream) {
            return Ok(None);
        }
        let provider = self.provider()?;
        let settings = self.upstream_settings()?;
        let credentials = self.credentials()?;
        let backend = provider_backend(
            provider,
            &self.storage.upstream,
            settings,
            credentials,
            "storage.upstream",
        )?;
        Ok(Some(backend))
    }
}

/// A key at a provider, given in the file (`{at}`) or in the environment
/// variable `{at}_env` names, read now; `missing` says what to give when
/// neither is.
pub(crate) fn provider_key(
    value: Option<&Credential>,
    env: Option<&str>,
    at: &str,
    missing: &str,
) -> Result<String, ConfigError> {
    let secret = match (value, env) {
        (Some(token), None) => token.expose().to_owned(),
        (None, Some(name)) => std::env::var(name).map_err(|_| {
            ConfigError::new(
                format!("{at}_env"),
                format!("the environment variable {name:?} is not set"),
            )
        })?,
        (Some(_), Some(_)) => {
            let field = at.rsplit('.').next().unwrap_or(at);
            return Err(ConfigError::new(
                at,
                format!("give {field} or {field}_env, not both"),
            ));
        }
        (None, None) => return Err(ConfigError::new(at, missing)),
    };
    if secret.trim().is_empty() {
        return Err(ConfigError::new(at, "must not be empty"));
    }
    Ok(secret)
}

/// A provider client's settings from `u` (`[storage.upstream]`, or a
/// mirror's copy of it with its own overrides), errors named under `at`.
pub(crate) fn settings_of(
    u: &UpstreamConfig,
    provider: Provider,
    at: &str,
) -> Result<UpstreamSettings, ConfigError> {
    let key = |field: &str| format!("{at}.{field}");
    let base_url = u
        .base_url
        .clone()
        .unwrap_or_else(|| provider.default_base_url().to_owned());
    match reqwest::Url::parse(&base_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        _ => {
            return Err(ConfigError::new(
                key("base_url"),
                format!("{base_url:?} is not an http or https URL"),
            ));
        }
    }
    for (field, value) in [
        ("connect_timeout_ms", u.connect_timeout_ms),
        ("request_timeout_ms", u.request_timeout_ms),
    ] {
        if value == 0 {
            return Err(ConfigError::new(key(field), "must be at least 1"));
        }
    }
    if u.retry_max_attempts == 0 {
        return Err(ConfigError::new(
            key("retry_max_attempts"),
            "must be at least 1 (1 turns retries off)",
        ));
    }
    if u.retry_initial_backoff_ms > u.retry_max_backoff_ms {
        return Err(ConfigError::new(
            key("retry_initial_backoff_ms"),
            format!("must not exceed {at}.retry_max_backoff_ms"),
        ));
    }
    history_start_of(u, at)?;
    Ok(UpstreamSettings {
        base_url,
        connect_timeout: Duration::from_millis(u.connect_timeout_ms),
        request_timeout: Duration::from_millis(u.request_timeout_ms),
        retry: RetrySettings {
            max_attempts: u.retry_max_attempts,
            initial_backoff: Duration::from_millis(u.retry_initial_backoff_ms),
            max_backoff: Duration::from_millis(u.retry_max_backoff_ms),
            max_elapsed: Duration::from_millis(u.retry_max_elapsed_ms),
        },
    })
}

pub(crate) fn history_start_of(u: &UpstreamConfig, at: &str) -> Result<time::Date, ConfigError> {
    let raw = &u.history_start;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format).map_err(|e| {
        ConfigError::new(
            format!("{at}.history_start"),
            format!("{raw:?} is not a YYYY-MM-DD date: {e}"),
        )
    })
}

/// A provider's client as a backend: the upstream store, or a mirror.
pub(crate) fn provider_backend(
    provider: Provider,
    u: &UpstreamConfig,
    settings: UpstreamSettings,
    credentials: Credentials,
    at: &str,
) -> Result<Arc<dyn Backend>, ConfigError> {
    let name = match provider {
        Provider::Postmark => hush_postmark::upstream::BACKEND,
        Provider::Sendpost => hush_sendpost::upstream::BACKEND,
        Provider::V3 => hush_v3::upstream::BACKEND,
    };
    let http = Upstream::new(name, settings).map_err(|e| ConfigError::new(at, e.to_string()))?;
    Ok(match provider {
        Provider::Postmark => Arc::new(hush_postmark::upstream::PostmarkUpstream::new(
            http,
            credentials,
        )),
        Provider::Sendpost => Arc::new(hush_sendpost::upstream::SendPostUpstream::new(
            http,
            credentials,
            history_start_of(u, at)?,
        )),
        Provider::V3 => Arc::new(hush_v3::upstream::V3Upstream::new(
            http,
            credentials,
            u.shape.unwrap_or_default(),
        )),
    })
}

/// How long `/readyz` waits for a backend that a router serves some tenants
/// from.
const READINESS_BOUND: Duration = Duration::from_secs(2);

/// Serves each tenant from its own backend: the ones named in
/// `routes`, everyone else from `default`.
#[derive(Debug)]
pub struct TenantRouter {
    default: Arc<dyn Backend>,
    routes: HashMap<TenantId, Arc<dyn Backend>>,
}

impl TenantRouter {
    pub fn new(default: Arc<dyn Backend>, routes: HashMap<TenantId, Arc<dyn Backend>>) -> Self {
        Self { default, routes }
    }

    fn of(&self, tenant: &TenantId) -> &Arc<dyn Backend> {
        self.routes.get(tenant).unwrap_or(&self.default)
    }

    /// Each store once: the default and every other a tenant is routed to.
    fn distinct(&self) -> Vec<&Arc<dyn Backend>> {
        let mut distinct: Vec<&Arc<dyn Backend>> = vec![&self.default];
        for backend in self.routes.values() {
            if !distinct.iter().any(|seen| Arc::ptr_eq(seen, backend)) {
                distinct.push(backend);
            }
        }
        distinct
    }
}

#[async_trait]
impl Backend for TenantRouter {
    fn name(&self) -> &'static str {
        self.default.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.default.capabilities()
    }

    fn capabilities_for(&self, tenant: &TenantId) -> Capabilities {
        self.of(tenant).capabilities()
    }

    fn name_for(&self, tenant: &TenantId) -> &'static str {
        self.of(tenant).name()
    }

    fn shown_ids(&self, tenant: &TenantId) -> Option<&hush_model::ShownIds> {
        self.of(tenant).shown_ids(tenant)
    }

    /// The default backend's: a tenant served elsewhere whose backend is
    /// down must not take every other tenant out of a load balancer with
    /// it (`readiness` reports it).
    async fn ready(&self) -> Result<(), EngineError> {
        self.default.ready().await
    }

    async fn readiness(&self) -> Vec<(&'static str, Result<(), EngineError>)> {
        let mut distinct: Vec<&Arc<dyn Backend>> = vec![&self.default];
        for backend in self.routes.values() {
            if !distinct.iter().any(|seen| Arc::ptr_eq(seen, backend)) {
                distinct.push(backend);
            }
        }
        // All at once, each within a bound: a provider that does not answer
        // must not make /readyz slower than a balancer's probe, which
        // would take the instance out after all.
        let checks = distinct.into_iter().map(|backend| async move {
            let state = match tokio::time::timeout(READINESS_BOUND, backend.ready()).await {
                Ok(state) => state,
                Err(_) => Err(EngineError::Unavailable {
                    backend: backend.name(),
                    reason: format!("did not answer within {} s", READINESS_BOUND.as_secs()),
                }),
            };
            (backend.name(), state)
        });
        futures_util::future::join_all(checks).await
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        self.of(tenant).add(tenant, items, actor).await
    }

    async fn put_back(
        &self,
        tenant: &TenantId,
        items: Vec<Suppression>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        self.of(tenant).put_back(tenant, items, actor).await
    }

    async fn put_back_group(
        &self,
        tenant: &TenantId,
        group: Group,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        self.of(tenant).put_back_group(tenant, group, actor).await
    }

    async fn journal(
        &self,
        tenant: &TenantId,
        query: &JournalQuery,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        self.of(tenant).journal(tenant, query).await
    }

    /// The default backend's: `hush copy` opens stores itself, never
    /// through a router.
    async fn journal_all(
        &self,
        after: Option<Position>,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        self.default.journal_all(after, limit).await
    }

    async fn mirror_state(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
    ) -> Result<MirrorState, EngineError> {
        self.of(tenant).mirror_state(tenant, mirror).await
    }

    async fn save_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        state: &MirrorState,
        failures: &[MirrorFailure],
    ) -> Result<(), EngineError> {
        self.of(tenant)
            .save_mirror(tenant, mirror, state, failures)
            .await
    }

    async fn mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        limit: u32,
    ) -> Result<Vec<MirrorFailure>, EngineError> {
        self.of(tenant).mirror_failures(tenant, mirror, limit).await
    }

    async fn clear_mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        positions: &[Position],
    ) -> Result<(), EngineError> {
        self.of(tenant)
            .clear_mirror_failures(tenant, mirror, positions)
            .await
    }

    async fn lease_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, EngineError> {
        self.of(tenant)
            .lease_mirror(tenant, mirror, holder, ttl)
            .await
    }

    async fn append_journal(&self, entries: Vec<JournalEntry>) -> Result<(), EngineError> {
        for entry in entries {
            let tenant = entry.tenant.clone();
            self.of(&tenant).append_journal(vec![entry]).await?;
        }
        Ok(())
    }

    /// Prunes each distinct store that keeps a journal.
    async fn prune_journal(&self, before: Timestamp, limit: u32) -> Result<u64, EngineError> {
        let mut pruned = 0;
        for backend in self.distinct() {
            if backend.capabilities().journal {
                pruned = pruned.max(backend.prune_journal(before, limit).await?);
            }
        }
        Ok(pruned)
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.of(tenant).entries(tenant, email).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        self.of(tenant).list(tenant, filter, page).await
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        self.of(tenant).count(tenant, filter).await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.of(tenant).scan(tenant, filter, after, limit).await
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.of(tenant).remove_matching(tenant, filter, actor).await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.of(tenant).remove_ids(tenant, ids, actor).await
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        self.of(tenant).create_group(tenant, group, actor).await
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        self.of(tenant).group(tenant, id).await
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        self.of(tenant).group_by_key(tenant, key).await
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        self.of(tenant).groups(tenant).await
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        self.of(tenant)
            .update_group(tenant, id, changes, actor)
            .await
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        self.of(tenant).delete_group(tenant, id, actor).await
    }

    async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<hush_engine::ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        self.of(tenant)
            .apply_events(tenant, hook, events, actor)
            .await
    }

    /// Prunes each distinct store.
    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        let mut pruned = 0;
        for backend in self.distinct() {
            pruned += backend.prune_receipts(before).await?;
        }
        Ok(pruned)
    }

    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        self.of(tenant).events_seen(tenant, hook, keys).await
    }
}
