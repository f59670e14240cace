//! `[[tenants.mirrors]]` (docs/mirrors.md): the providers a tenant still
//! sends through, to which hush pushes every change of the tenant, and the
//! task that pushes each one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hush_engine::{Engine, MirrorTarget};
use hush_model::{Door, MirrorName, TenantId};
use hush_upstream::{Credential, Credentials};
use serde::{Deserialize, Serialize};

use crate::config::{BackendKind, Config, ConfigError};
use crate::upstream::{Provider, UpstreamConfig, provider_backend, provider_key, settings_of};

/// `[[tenants.mirrors]]`: one provider to push the tenant's changes to.
/// The client settings default to `[storage.upstream]`'s.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Unique within the tenant: where its position is kept.
    pub name: String,
    pub provider: Option<Provider>,
    /// The provider's host; the provider's own by default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The tenant's key at the provider. Never logged.
    #[serde(default, skip_serializing)]
    pub token: Option<Credential>,
    #[serde(default)]
    pub token_env: Option<String>,
    /// v3: `seed` or `sendgrid` response shapes.
    #[serde(default)]
    pub shape: Option<hush_v3::Shape>,
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub retry_max_attempts: Option<u32>,
}

impl std::fmt::Debug for MirrorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorConfig")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("token_env", &self.token_env)
            .finish_non_exhaustive()
    }
}

/// A configured mirror, ready to push.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub tenant: TenantId,
    pub provider: Provider,
    pub target: MirrorTarget,
}

impl Mirror {
    /// As the admin API and `hush mirror` know it.
    pub fn admin_entry(&self) -> hush_admin::MirrorEntry {
        hush_admin::MirrorEntry {
            tenant: self.tenant.clone(),
            provider: self.provider.as_str(),
            target: self.target.clone(),
        }
    }
}

/// The door a provider's webhooks journal their changes under
/// (docs/webhooks.md): what its mirror does not echo back.
fn webhook_door(provider: Provider) -> Door {
    match provider {
        Provider::V3 => Door::webhook("sendgrid"),
        Provider::Postmark => Door::webhook("postmark"),
        Provider::Sendpost => Door::webhook("sendpost"),
    }
}

impl Config {
    /// Every tenant's mirrors, checked, with their clients.
    pub(crate) fn resolve_mirrors(&self) -> Result<Vec<Mirror>, ConfigError> {
        let mut mirrors = Vec::new();
        for (t, tenant) in self.tenants.iter().enumerate() {
            let mut names = HashSet::new();
            for (m, mirror) in tenant.mirrors.iter().enumerate() {
                let at = format!("tenants[{t}].mirrors[{m}]");
                let key = |field: &str| format!("{at}.{field}");
                let name = MirrorName::parse(&mirror.name)
                    .map_err(|e| ConfigError::new(key("name"), e))?;
                if !names.insert(name.clone()) {
                    return Err(ConfigError::new(
                        key("name"),
                        format!("the tenant has two mirrors named {:?}", mirror.name),
                    ));
                }
                if self.backend_of(t) == BackendKind::Upstream {
                    return Err(ConfigError::new(
                        key("name"),
                        "the tenant is on the upstream backend, which keeps no journal to push from: mirrors need sqlite or postgres",
                    ));
                }
                let provider = mirror.provider.ok_or_else(|| {
                    ConfigError::new(key("provider"), "required: v3, postmark or sendpost")
                })?;
                if provider != Provider::V3 && mirror.shape.is_some() {
                    return Err(ConfigError::new(
                        key("shape"),
                        "only a v3 mirror has a shape",
                    ));
                }
                let secret = provider_key(
                    mirror.token.as_ref(),
                    mirror.token_env.as_deref(),
                    &key("token"),
                    "a mirror needs the tenant's key at the provider: token or token_env",
                )?;
                let client = self.mirror_client(mirror);
                let settings = settings_of(&client, provider, &at)?;
                let mut credentials = Credentials::default();
                credentials.insert(tenant.id.clone(), Credential::new(secret));
                let backend = provider_backend(provider, &client, settings, credentials, &at)?;
                mirrors.push(Mirror {
                    tenant: tenant.id.clone(),
                    provider,
                    target: MirrorTarget {
                        name,
                        echo_door: webhook_door(provider),
                        backend,
                    },
                });
            }
        }
        Ok(mirrors)
    }

    /// `[storage.upstream]` with the mirror's own settings over it.
    fn mirror_client(&self, mirror: &MirrorConfig) -> UpstreamConfig {
        let mut client = self.storage.upstream.clone();
        client.base_url.clone_from(&mirror.base_url);
        client.shape = mirror.shape;
        if let Some(ms) = mirror.connect_timeout_ms {
            client.connect_timeout_ms = ms;
        }
        if let Some(ms) = mirror.request_timeout_ms {
            client.request_timeout_ms = ms;
        }
        if let Some(n) = mirror.retry_max_attempts {
            client.retry_max_attempts = n;
        }
        client
    }
}

/// Entries one step pushes at most: as many as v3 takes in one global
/// unsubscribe call, the largest batch of any provider.
const STEP: u32 = 1_000;
/// How long a caught-up mirror waits before it looks for new entries.
const IDLE: Duration = Duration::from_millis(500);
/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a lease lasts unless renewed. An instance renews it before
/// every step; another takes the mirror over once it lapses, so a dead
/// holder's mirror moves on within this plus [`LEASE_POLL`].
pub const LEASE_TTL: Duration = Duration::from_secs(20);
/// How often an instance that does not hold a mirror's lease asks again.
const LEASE_POLL: Duration = Duration::from_secs(5);

/// Starts one task per mirror; each runs until aborted.
pub fn spawn_mirrors(engine: &Engine, mirrors: Vec<Mirror>) -> Vec<tokio::task::JoinHandle<()>> {
    // One name per process, so that a restarted instance does not take
    // over a lease its previous life held before it lapses.
    let holder: Arc<str> =
        format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()).into();
    mirrors
        .into_iter()
        .map(|mirror| tokio::spawn(push(engine.clone(), mirror, Arc::clone(&holder))))
        .collect()
}

async fn push(engine: Engine, mirror: Mirror, holder: Arc<str>) {
    let Mirror {
        tenant,
        provider,
        target,
    } = mirror;
    let mut backoff = FIRST_BACKOFF;
    let mut holding = false;
    loop {
        match engine
            .lease_mirror(&tenant, &target.name, &holder, LEASE_TTL)
            .await
        {
            Ok(true) => {
                if !holding {
                    tracing::info!(%tenant, mirror = %target.name, provider = provider.as_str(), "pushing the mirror");
                }
                holding = true;
            }
            Ok(false) => {
                holding = false;
                tokio::time::sleep(LEASE_POLL).await;
                continue;
            }
            Err(err) => {
                tracing::warn!(%tenant, mirror = %target.name, error = %err, "cannot take the mirror's lease");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        match engine.mirror_step(&tenant, &target, STEP).await {
            Ok(step) => {
                backoff = FIRST_BACKOFF;
                if step.refused > 0 {
                    tracing::warn!(%tenant, mirror = %target.name, refused = step.refused, "the provider refused changes; recorded");
                }
                if step.caught_up {
                    tokio::time::sleep(IDLE).await;
                }
            }
            Err(err) => {
                tracing::warn!(%tenant, mirror = %target.name, error = %err, retry_in_ms = backoff.as_millis(), "mirror push failed; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
