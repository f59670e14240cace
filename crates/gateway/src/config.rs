//! Configuration: built-in defaults, then `config/hush.toml` (or
//! `--config FILE`), then `HUSH_…` environment variables with `__` for
//! nesting. Checked once at start-up; a bad value stops the start with a
//! message naming the key.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use hush_engine::access::{Permission, Permissions, TokenDigest};
use hush_model::TenantId;
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given, relative to the working
/// directory; it is optional.
pub const DEFAULT_CONFIG_FILE: &str = "config/hush.toml";

/// The demo tenant's tokens in `config/hush.toml`. Serving them on anything
/// but loopback is a mistake worth a warning.
pub const DEMO_TOKENS: [&str; 4] = [
    "demo-v3-key",
    "demo-v3-readonly",
    "demo-postmark-token",
    "demo-sendpost-key",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub journal: JournalConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub webhooks: crate::webhook_config::WebhooksConfig,
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
}

/// `[journal]`: how long the record of changes is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Entries older than this many days are pruned (docs/operations.md,
    /// "History and restore"). 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            retention_days: 400,
        }
    }
}

/// `[admin]`: the admin API's tokens. Without any, the API is not served.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub tokens: Vec<AdminTokenConfig>,
}

/// `[[admin.tokens]]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    pub name: String,
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// `admin.read`, `admin.write`.
    pub scopes: Vec<String>,
    /// The tenants the token may see; every tenant when absent.
    #[serde(default)]
    pub tenants: Option<Vec<TenantId>>,
}

impl fmt::Debug for AdminTokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An admin token is the key to every tenant: never printed.
        f.debug_struct("AdminTokenConfig")
            .field("name", &self.name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("scopes", &self.scopes)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

/// The shortest token a gateway listening beyond loopback accepts: one a
/// client cannot guess (the demo tokens are shorter, and are refused there).
pub const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes (CSV imports excepted).
    pub max_body_bytes: usize,
    /// The largest CSV import body accepted, in bytes. Imports are streamed
    /// and committed in batches, so this bounds one request's work, not its
    /// memory.
    pub max_import_bytes: u64,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// How long a request body may take before its first bytes, and the
    /// grace on top of the minimum rate after them (guard.rs).
    pub body_timeout_secs: u64,
    /// The slowest a request body may arrive on average, in bytes a
    /// second, once the grace is spent.
    pub body_min_bytes_per_sec: u64,
    /// Peers whose `Forwarded` and `X-Forwarded-*` headers are believed:
    /// the reverse proxies in front of hush (addresses or CIDR blocks).
    /// Anyone else's are removed before routing (guard.rs).
    pub trusted_proxies: Vec<String>,
    /// Failed authentications a client address may make per minute
    /// before it is answered 429 (guard.rs); 0 turns the limit off.
    pub auth_failures_per_minute: u32,
    /// Whether the limit counts loopback clients too (off: local tools and
    /// tests are not throttled).
    pub auth_failures_on_loopback: bool,
    /// Lets the demo tokens serve although `listen` is beyond loopback:
    /// for a container that must listen on 0.0.0.0 but whose port is
    /// published on the host's loopback only (docker-compose.yml).
    pub allow_demo_tokens: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            max_import_bytes: 1 << 30,
            workers: 0,
            shutdown_timeout_secs: 30,
            body_timeout_secs: 10,
            body_min_bytes_per_sec: 1024,
            allow_demo_tokens: false,
            trusted_proxies: Vec::new(),
            auth_failures_per_minute: 10,
            auth_failures_on_loopback: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sqlite,
    Memory,
    Postgres,
    /// A real provider: `[storage.upstream]` (docs/backends.md).
    Upstream,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: BackendKind,
    /// The SQLite file.
    pub path: PathBuf,
    /// SQLite read connections.
    pub read_connections: usize,
    /// Most MiB the in-memory lookup index holds (SQLite), or the lookup
    /// mirror of each instance (PostgreSQL); 0 turns it off.
    pub lookup_index_mib: usize,
    /// PostgreSQL: `postgres://user:password@host:port/database`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PostgreSQL: most connections per instance.
    pub pool_size: u32,
    /// PostgreSQL: how long to wait for a connection, opening one included.
    pub connect_timeout_secs: u64,
    /// Replaced by `lookup_index_mib`: the PostgreSQL lookup cache it sized
    /// is gone. Still read, so that a config file that sets it keeps
    /// loading: 0 turns the mirror off as it turned the cache off, any other
    /// value is ignored (`deprecations` warns about both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_entries: Option<usize>,
    pub upstream: crate::upstream::UpstreamConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Sqlite,
            path: PathBuf::from("data/hush.db"),
            read_connections: 4,
            lookup_index_mib: hush_store::sqlite::DEFAULT_LOOKUP_INDEX_MIB,
            url: None,
            pool_size: hush_store::postgres::DEFAULT_POOL_SIZE,
            connect_timeout_secs: hush_store::postgres::DEFAULT_CONNECT_TIMEOUT.as_secs(),
            cache_entries: None,
            upstream: crate::upstream::UpstreamConfig::default(),
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: only where it points is shown.
        let url = self.postgres_options().ok().map(|o| o.location());
        f.debug_struct("StorageConfig")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("read_connections", &self.read_connections)
            .field("lookup_index_mib", &self.lookup_index_mib)
            .field("url", &url)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("cache_entries", &self.cache_entries)
            .finish()
    }
}

impl StorageConfig {
    /// The PostgreSQL settings, checked; errors name the key.
    pub fn postgres_options(&self) -> Result<hush_store::PostgresOptions, ConfigError> {
        let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Err(ConfigError::new(
                "storage.url",
                "must be set when storage.backend is postgres \
                 (postgres://user:password@host:5432/database)",
            ));
        };
        let mut options = hush_store::PostgresOptions::from_url(url.trim())
            .map_err(|problem| ConfigError::new("storage.url", problem))?;
        if self.pool_size == 0 {
            return Err(ConfigError::new("storage.pool_size", "must be at least 1"));
        }
        if self.connect_timeout_secs == 0 {
            return Err(ConfigError::new(
                "storage.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        options.pool_size = self.pool_size;
        options.connect_timeout = std::time::Duration::from_secs(self.connect_timeout_secs);
        options.lookup_index_mib = match self.cache_entries {
            Some(0) => 0,
            _ => self.lookup_index_mib,
        };
        Ok(options)
    }

    /// What the settings use that is deprecated, as warnings to log at start.
    pub fn deprecations(&self) -> Vec<String> {
        match self.cache_entries {
            None => Vec::new(),
            Some(0) => vec![
                "storage.cache_entries is deprecated: set storage.lookup_index_mib = 0 instead \
                 (0 still turns the PostgreSQL lookup mirror off)"
                    .to_owned(),
            ],
            Some(_) => vec![
                "storage.cache_entries is deprecated and ignored: the PostgreSQL lookup mirror \
                 is sized by storage.lookup_index_mib"
                    .to_owned(),
            ],
        }
    }
}

#[cfg(test)]
mod storage_tests {
    #![allow(clippy::unwrap_used)]

    use super::Config;

    fn load(storage: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hush.toml");
        std::fs::write(
            &file,
            format!(
                "[storage]\nbackend = \"postgres\"\nurl = \"postgres://h@127.0.0.1/h\"\n{storage}"
            ),
        )
        .unwrap();
        Config::load(Some(&file)).unwrap()
    }

    #[test]
    fn the_lookup_mirror_is_on_by_default_and_sized_by_lookup_index_mib() {
        let config = load("");
        let options = config.storage.postgres_options().unwrap();
        assert_eq!(
            options.lookup_index_mib,
            hush_store::DEFAULT_LOOKUP_INDEX_MIB
        );
        assert!(config.storage.deprecations().is_empty());
        let options = load("lookup_index_mib = 0")
            .storage
            .postgres_options()
            .unwrap();
        assert_eq!(options.lookup_index_mib, 0, "0 turns the mirror off");
        let options = load("lookup_index_mib = 7")
            .storage
            .postgres_options()
            .unwrap();
        assert_eq!(options.lookup_index_mib, 7);
    }

    /// A file written for the old cache still loads and means what it did
    /// where it still can.
    #[test]
    fn the_old_cache_entries_key_still_loads_and_warns() {
        let config = load("cache_entries = 0");
        assert_eq!(
            config.storage.postgres_options().unwrap().lookup_index_mib,
            0
        );
        assert_eq!(config.storage.deprecations().len(), 1);
        let config = load("cache_entries = 1000");
        assert_eq!(
            config.storage.postgres_options().unwrap().lookup_index_mib,
            hush_store::DEFAULT_LOOKUP_INDEX_MIB,
            "any other value is ignored"
        );
        assert!(config.storage.deprecations()[0].contains("ignored"));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, `hush=debug,actix_web=warn`, …
    pub level: String,
    /// The key of the hash that stands for an address in request lines
    /// (telemetry.rs); empty: a random key per start.
    pub address_hash_key: SecretText,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            address_hash_key: SecretText::default(),
        }
    }
}

/// A secret from the config that never prints.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "(unset)"
        } else {
            "(set)"
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: TenantId,
    /// v3: the tenant whose keys may act for this one with `on-behalf-of`
    /// (a SendGrid subuser of that account).
    #[serde(default)]
    pub parent: Option<TenantId>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Overrides `storage.backend` for this tenant, so moved and unmoved
    /// tenants share one gateway.
    #[serde(default)]
    pub backend: Option<BackendKind>,
    /// The tenant's key at the upstream provider. Never logged: `Debug`
    /// hides it.
    #[serde(default, skip_serializing)]
    pub upstream_token: Option<hush_upstream::Credential>,
    /// The environment variable holding the upstream key instead.
    #[serde(default)]
    pub upstream_token_env: Option<String>,
    /// The hooks providers post their events to (docs/webhooks.md).
    #[serde(default)]
    pub webhooks: Vec<crate::webhook_config::WebhookConfig>,
    /// The providers the tenant's changes are pushed to (docs/mirrors.md).
    #[serde(default)]
    pub mirrors: Vec<crate::mirror_config::MirrorConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    V3,
    Postmark,
    Sendpost,
}

impl Api {
    /// As config spells it, and the door its changes are journaled under.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V3 => "v3",
            Self::Postmark => "postmark",
            Self::Sendpost => "sendpost",
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub api: Api,
    /// What the journal and the logs call the key; defaults to its API and
    /// its position among the tenant's keys of that API, e.g. `v3#1`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// v3 only; defaults to read and write.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// v3 only: `seed` (default) or `sendgrid`, SendGrid's own response
    /// shapes.
    #[serde(default)]
    pub shape: Option<hush_v3::Shape>,
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token never reaches a log, not even through a debug print.
        f.debug_struct("KeyConfig")
            .field("api", &self.api)
            .field("name", &self.name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "token_sha256",
                &self.token_sha256.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .field("shape", &self.shape)
            .finish()
    }
}

/// A key, checked and reduced to what the API crates need.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub tenant: TenantId,
    pub api: Api,
    /// The key's configured name (never its secret), for the journal.
    pub name: std::sync::Arc<str>,
    pub digest: TokenDigest,
    pub permissions: Permissions,
    /// v3 only.
    pub shape: hush_v3::Shape,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// `["tenants", "0", "id"]` as `tenants[0].id`, the form the other checks
/// use.
fn key_path(path: &[String]) -> String {
    let mut key = String::new();
    for part in path {
        if part.bytes().all(|b| b.is_ascii_digit()) && !key.is_empty() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    if key.is_empty() {
        "config".to_owned()
    } else {
        key
    }
}

impl Config {
    /// Merges the layers. `file` is `--config`; without it the default file
    /// is read if it exists.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Self::defaults()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::new(
                        "--config",
                        format!("{} does not exist or is not a file", path.display()),
                    ));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        // `HUSH_TEST_…` variables belong to the test suites, not the gateway.
        let env = Env::prefixed("HUSH_")
            // The key keeps the variable's case here (`TEST_…`); compare without it.
            .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_"))
            .split("__");
        let figment = figment.merge(env);
        let config: Self = figment.extract().map_err(|err| {
            let key = key_path(&err.path);
            ConfigError::new(key, err.kind.to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    fn defaults() -> Self {
        Self {
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            log: LogConfig::default(),
            journal: JournalConfig::default(),
            admin: AdminConfig::default(),
            webhooks: crate::webhook_config::WebhooksConfig::default(),
            metrics: crate::metrics::MetricsConfig::default(),
            tenants: Vec::new(),
        }
    }

    /// `server.trusted_proxies`, parsed: each an address (`10.0.0.7`) or a
    /// CIDR block (`10.0.0.0/8`, `fd00::/8`).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let raw = raw.trim();
                raw.parse::<ipnet::IpNet>()
                    .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::new(
                            format!("server.trusted_proxies[{i}]"),
                            format!("{raw:?} is not an IP address or a CIDR block"),
                        )
                    })
            })
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.trusted_proxies()?;
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "server.max_body_bytes",
                format!("{} is too small; at least 1024", self.server.max_body_bytes),
            ));
        }
        if self.server.body_timeout_secs == 0 {
            return Err(ConfigError::new(
                "server.body_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.server.body_min_bytes_per_sec == 0 {
            return Err(ConfigError::new(
                "server.body_min_bytes_per_sec",
                "must be at least 1",
            ));
        }
        if self.storage.backend == BackendKind::Sqlite && self.storage.path.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "storage.path",
                "must name a file when storage.backend is sqlite",
            ));
        }
        if self.storage.backend == BackendKind::Postgres {
            self.storage.postgres_options()?;
        }
        if self.storage.read_connections == 0 {
            return Err(ConfigError::new(
                "storage.read_connections",
                "must be at least 1",
            ));
        }
        if self.server.max_import_bytes < 1024 {
            return Err(ConfigError::new(
                "server.max_import_bytes",
                format!(
                    "{} is too small; at least 1024",
                    self.server.max_import_bytes
                ),
            ));
        }
        self.check_parents()?;
        self.check_upstream()?;
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::new("log.level", err.to_string()));
        }
        self.resolve_admin_tokens()?;
        self.resolve_webhooks()?;
        self.resolve_mirrors()?;
        self.resolve_keys().map(drop)
    }

    /// Each `parent` names another configured tenant that has no parent
    /// itself: SendGrid subusers are one level deep.
    fn check_parents(&self) -> Result<(), ConfigError> {
        for (t, tenant) in self.tenants.iter().enumerate() {
            let Some(parent) = &tenant.parent else {
                continue;
            };
            let at = format!("tenants[{t}].parent");
            if parent == &tenant.id {
                return Err(ConfigError::new(at, "a tenant cannot be its own parent"));
            }
            match self.tenants.iter().find(|p| &p.id == parent) {
                None => {
                    return Err(ConfigError::new(
                        at,
                        format!("no tenant {:?} is configured", parent.as_str()),
                    ));
                }
                Some(p) if p.parent.is_some() => {
                    return Err(ConfigError::new(
                        at,
                        format!(
                            "tenant {:?} is itself a subuser; subusers are one level deep",
                            parent.as_str()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The tenants whose `parent` is `tenant`: those its v3 keys may act for
    /// with `on-behalf-of`.
    pub fn subusers_of(&self, tenant: &TenantId) -> Vec<TenantId> {
        self.tenants
            .iter()
            .filter(|t| t.parent.as_ref() == Some(tenant))
            .map(|t| t.id.clone())
            .collect()
    }

    /// Every key, checked: a token or its digest (not both), known scopes,
    /// no tenant twice, no token twice within an API.
    pub fn resolve_keys(&self) -> Result<Vec<ResolvedKey>, ConfigError> {
        let demo: Vec<TokenDigest> = DEMO_TOKENS.iter().map(|t| TokenDigest::of(t)).collect();
        let mut tenants = HashSet::new();
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        for (t, tenant) in self.tenants.iter().enumerate() {
            if !tenants.insert(tenant.id.clone()) {
                return Err(ConfigError::new(
                    format!("tenants[{t}].id"),
                    format!("tenant {:?} is configured twice", tenant.id.as_str()),
                ));
            }
            let mut names = HashSet::new();
            for (k, key) in tenant.keys.iter().enumerate() {
                let at = |field: &str| format!("tenants[{t}].keys[{k}].{field}");
                let name = match &key.name {
                    Some(name) => {
                        check_key_name(name).map_err(|p| ConfigError::new(at("name"), p))?
                    }
                    None => {
                        let position = tenant.keys[..=k]
                            .iter()
                            .filter(|o| o.api == key.api)
                            .count();
                        format!("{}#{position}", key.api.as_str())
                    }
                };
                if !names.insert(name.clone()) {
                    return Err(ConfigError::new(
                        at("name"),
                        format!(
                            "the tenant already has a key named {name:?}; key names are unique per tenant"
                        ),
                    ));
                }
                let digest = match (&key.token, &key.token_sha256) {
                    (Some(token), None) if token.trim().is_empty() => {
                        return Err(ConfigError::new(at("token"), "must not be empty"));
                    }
                    // Every API trims the token a client sends, so one with
                    // spaces around it could never authenticate.
                    (Some(token), None) if token.trim() != token => {
                        return Err(ConfigError::new(
                            at("token"),
                            "has spaces or line breaks around it, so no request could ever match it; remove them",
                        ));
                    }
                    (Some(token), None)
                        if !self.server.listen.ip().is_loopback()
                            && token.chars().count() < MIN_TOKEN_CHARS
                            && !DEMO_TOKENS.contains(&token.as_str()) =>
                    {
                        return Err(ConfigError::new(
                            at("token"),
                            format!(
                                "is {} characters long; a gateway that listens beyond loopback needs tokens of at least {MIN_TOKEN_CHARS} (random, e.g. `openssl rand -hex 24`)",
                                token.chars().count()
                            ),
                        ));
                    }
                    (Some(token), None) => TokenDigest::of(token),
                    (None, Some(hex)) => TokenDigest::from_hex(hex.trim()).ok_or_else(|| {
                        ConfigError::new(at("token_sha256"), "must be 64 hexadecimal digits")
                    })?,
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::new(
                            at("token"),
                            "give token or token_sha256, not both",
                        ));
                    }
                    (None, None) => {
                        return Err(ConfigError::new(
                            at("token"),
                            "a token or token_sha256 is required",
                        ));
                    }
                };
                if !seen.insert((key.api, digest)) {
                    return Err(ConfigError::new(
                        at("token"),
                        "the same token is configured twice for this API",
                    ));
                }
                let permissions = match &key.scopes {
                    None => Permissions::ALL,
                    Some(scopes) => {
                        let mut list = Vec::new();
                        for scope in scopes {
                            let permission = Permission::parse_scope(scope).ok_or_else(|| {
                                ConfigError::new(
                                    at("scopes"),
                                    format!(
                                        "unknown scope {scope:?}; the scopes are suppressions.read and suppressions.write"
                                    ),
                                )
                            })?;
                            if list.contains(&permission) {
                                return Err(ConfigError::new(
                                    at("scopes"),
                                    format!("{scope:?} is listed twice"),
                                ));
                            }
                            list.push(permission);
                        }
                        // Only v3 checks scopes: a Postmark or SendPost key
                        // may do everything, so anything less than both
                        // scopes would be a promise it does not keep.
                        if key.api != Api::V3 && list.len() != 2 {
                            return Err(ConfigError::new(
                                at("scopes"),
                                "only v3 keys can be limited to some scopes",
                            ));
                        }
                        Permissions::from_list(&list)
                    }
                };
                if key.shape.is_some() && key.api != Api::V3 {
                    return Err(ConfigError::new(at("shape"), "only v3 keys have a shape"));
                }
                // The demo tokens are printed in the README: anyone who
                // can reach a gateway beyond loopback could use them.
                let listens_beyond_loopback = !self.server.listen.ip().is_loopback();
                if listens_beyond_loopback
                    && !self.server.allow_demo_tokens
                    && demo.contains(&digest)
                {
                    return Err(ConfigError::new(
                        at("token"),
                        "is one of the demo tokens published in the README, and server.listen is not a loopback address: replace it (or, for a container published on the host's loopback only, set server.allow_demo_tokens)",
                    ));
                }
                keys.push(ResolvedKey {
                    tenant: tenant.id.clone(),
                    api: key.api,
                    name: name.into(),
                    digest,
                    permissions,
                    shape: key.shape.unwrap_or_default(),
                });
            }
        }
        Ok(keys)
    }
}

/// Longest key name: it is written into every journal entry the key makes.
const KEY_NAME_MAX: usize = 64;

/// A key name as given, or why it cannot be one.
fn check_key_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > KEY_NAME_MAX {
        return Err(format!("is longer than {KEY_NAME_MAX} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

impl Config {
    /// The admin tokens, checked: names unique, one of token or digest,
    /// known scopes, known tenants; a clear token beyond loopback at least
    /// [`MIN_TOKEN_CHARS`] long.
    pub fn resolve_admin_tokens(&self) -> Result<Vec<hush_admin::AdminToken>, ConfigError> {
        let mut names = HashSet::new();
        let mut digests: Vec<TokenDigest> = Vec::new();
        let mut resolved = Vec::new();
        for (i, token) in self.admin.tokens.iter().enumerate() {
            let at = |field: &str| format!("admin.tokens[{i}].{field}");
            let name = check_key_name(&token.name).map_err(|p| ConfigError::new(at("name"), p))?;
            if !names.insert(name.clone()) {
                return Err(ConfigError::new(
                    at("name"),
                    format!("another admin token is named {name:?}"),
                ));
            }
            let digest = match (&token.token, &token.token_sha256) {
                (Some(clear), None) => {
                    let clear = clear.trim();
                    if clear.chars().count() < MIN_TOKEN_CHARS
                        && !self.server.listen.ip().is_loopback()
                    {
                        return Err(ConfigError::new(
                            at("token"),
                            format!(
                                "an admin token beyond loopback needs at least {MIN_TOKEN_CHARS} random characters"
                            ),
                        ));
                    }
                    if clear.is_empty() {
                        return Err(ConfigError::new(at("token"), "must not be empty"));
                    }
                    TokenDigest::of(clear)
                }
                (None, Some(hex)) => TokenDigest::from_hex(hex.trim()).ok_or_else(|| {
                    ConfigError::new(at("token_sha256"), "must be 64 hexadecimal digits")
                })?,
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        at("token"),
                        "give token or token_sha256, not both",
                    ));
                }
                (None, None) => {
                    return Err(ConfigError::new(
                        at("token"),
                        "a token or token_sha256 is required",
                    ));
                }
            };
            if digests.iter().any(|d| d.matches(&digest)) {
                return Err(ConfigError::new(
                    at("token"),
                    "the same token is configured twice",
                ));
            }
            digests.push(digest);
            let (mut read, mut write) = (false, false);
            for scope in &token.scopes {
                match scope.as_str() {
                    "admin.read" => read = true,
                    "admin.write" => write = true,
                    other => {
                        return Err(ConfigError::new(
                            at("scopes"),
                            format!(
                                "unknown scope {other:?}; the scopes are admin.read and admin.write"
                            ),
                        ));
                    }
                }
            }
            if !read && !write {
                return Err(ConfigError::new(
                    at("scopes"),
                    "name admin.read, admin.write or both",
                ));
            }
            if let Some(tenants) = &token.tenants
                && let Some(unknown) = tenants
                    .iter()
                    .find(|t| !self.tenants.iter().any(|c| &c.id == *t))
            {
                return Err(ConfigError::new(
                    at("tenants"),
                    format!("no tenant {:?} is configured", unknown.as_str()),
                ));
            }
            resolved.push(hush_admin::AdminToken {
                name: name.into(),
                digest,
                read,
                write,
                tenants: token.tenants.clone(),
            });
        }
        Ok(resolved)
    }
}
