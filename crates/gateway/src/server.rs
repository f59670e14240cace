//! Wiring: the backend the config names, the engine over it, each API's
//! routes and keys, health checks, and the HTTP server.

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use hush_engine::access::{ApiKey, KeyTable};
use hush_engine::{Backend, Engine};
use hush_postmark::{PostmarkProfile, PostmarkState};
use hush_sendpost::{SendPostProfile, SendPostState};
use hush_store::{MemoryBackend, PostgresBackend, SqliteBackend, SqliteOptions};
use hush_v3::{V3Profile, V3State};
use serde_json::json;

use crate::config::{Api, BackendKind, Config, ResolvedKey};
use crate::{guard, telemetry};

/// Opens the backend the config names, and, when tenants override it, the
/// others too behind a router that serves each tenant from its own.
pub async fn open_backend(config: &Config) -> anyhow::Result<Arc<dyn Backend>> {
    let upstream = config.open_upstream()?;
    let mut opened: Vec<(BackendKind, Arc<dyn Backend>)> = Vec::new();
    let wanted = std::iter::once(config.storage.backend)
        .chain((0..config.tenants.len()).map(|t| config.backend_of(t)));
    for kind in wanted {
        if opened.iter().any(|(k, _)| *k == kind) {
            continue;
        }
        let backend = match (kind, &upstream) {
            (BackendKind::Upstream, Some(backend)) => Arc::clone(backend),
            _ => open_store(config, kind).await?,
        };
        opened.push((kind, backend));
    }
    let of = |kind: BackendKind| {
        opened
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, b)| Arc::clone(b))
            .context("a backend was not opened")
    };
    let default = of(config.storage.backend)?;
    let mut routes = std::collections::HashMap::new();
    for (t, tenant) in config.tenants.iter().enumerate() {
        let kind = config.backend_of(t);
        if kind != config.storage.backend {
            routes.insert(tenant.id.clone(), of(kind)?);
        }
    }
    if routes.is_empty() {
        return Ok(default);
    }
    Ok(Arc::new(crate::upstream::TenantRouter::new(
        default, routes,
    )))
}

/// Opens one of hush's own stores.
async fn open_store(config: &Config, kind: BackendKind) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match kind {
        BackendKind::Memory => Arc::new(MemoryBackend::new()),
        BackendKind::Upstream => anyhow::bail!("storage.upstream is not configured"),
        BackendKind::Sqlite => {
            let mut options = SqliteOptions::new(config.storage.path.clone());
            options.read_connections = config.storage.read_connections;
            options.lookup_index_mib = config.storage.lookup_index_mib;
            // Opening runs the migrations; it happens once, before serving.
            let backend = SqliteBackend::open(options)
                .with_context(|| format!("opening {}", config.storage.path.display()))?;
            Arc::new(backend)
        }
        BackendKind::Postgres => {
            for warning in config.storage.deprecations() {
                tracing::warn!("{warning}");
            }
            let options = config.storage.postgres_options()?;
            let location = options.location();
            // Connecting runs the migrations, safely beside other instances.
            let backend = PostgresBackend::connect(options)
                .await
                .with_context(|| format!("opening PostgreSQL at {location}"))?;
            Arc::new(backend)
        }
    })
}

/// Everything the HTTP workers share.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub engine: Engine,
    pub v3: web::Data<V3State>,
    pub sendpost: web::Data<SendPostState>,
    pub postmark: web::Data<PostmarkState>,
    /// `None` when no admin token is configured: the admin API is then not
    /// served at all.
    pub admin: Option<web::Data<hush_admin::AdminState>>,
    pub webhooks: web::Data<hush_webhooks::WebhookState>,
    /// The tenants' mirrors, pushed once the server runs.
    pub mirrors: Vec<crate::mirror_config::Mirror>,
    /// `/metrics` on the main listener; `None` when `metrics.listen`
    /// serves it instead.
    pub metrics: Option<&'static metrics_exporter_prometheus::PrometheusHandle>,
}

impl Gateway {
    pub async fn new(config: &Config, backend: Arc<dyn Backend>) -> anyhow::Result<Self> {
        let engine = Engine::new(backend);
        for tenant in &config.tenants {
            match engine.bootstrap_tenant(&tenant.id).await {
                Ok(()) => {}
                // A provider that cannot be reached now must not keep every
                // other tenant from being served: the tenant's requests
                // answer 502/503 until it can, and its default stream is
                // made then.
                Err(err) if is_unreachable(&err) => {
                    tracing::warn!(tenant = %tenant.id, error = %err, "the tenant's provider cannot be reached; serving the others, and trying it again in the background");
                    tokio::spawn(bootstrap_later(engine.clone(), tenant.id.clone()));
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("preparing tenant {}", tenant.id));
                }
            }
        }
        let keys = config.resolve_keys()?;
        let v3 = web::Data::new(V3State {
            engine: engine.clone(),
            keys: key_table(&keys, Api::V3, |k| V3Profile {
                shape: k.shape,
                subusers: config.subusers_of(&k.tenant),
            }),
            body_limit: config.server.max_body_bytes,
            import_limit: config.server.max_import_bytes,
        });
        let sendpost = web::Data::new(SendPostState {
            engine: engine.clone(),
            keys: key_table(&keys, Api::Sendpost, |_| SendPostProfile::default()),
            body_limit: config.server.max_body_bytes,
        });
        let postmark = web::Data::new(PostmarkState {
            engine: engine.clone(),
            keys: key_table(&keys, Api::Postmark, |_| PostmarkProfile::default()),
            body_limit: config.server.max_body_bytes,
        });
        let webhooks = web::Data::new(hush_webhooks::WebhookState::new(
            engine.clone(),
            config.resolve_webhooks()?,
            config.webhooks.settings(),
        ));
        let metrics = if config.metrics.enabled {
            Some(crate::metrics::install()?)
        } else {
            None
        };
        let mirrors = config.resolve_mirrors()?;
        let admin_tokens = config.resolve_admin_tokens()?;
        let admin = (!admin_tokens.is_empty()).then(|| {
            web::Data::new(hush_admin::AdminState {
                engine: engine.clone(),
                tokens: admin_tokens,
                tenants: config.tenants.iter().map(|t| t.id.clone()).collect(),
                webhooks: Some(webhooks.clone()),
                mirrors: mirrors
                    .iter()
                    .map(crate::mirror_config::Mirror::admin_entry)
                    .collect(),
                body_limit: config.server.max_body_bytes,
            })
        });
        Ok(Self {
            engine,
            v3,
            sendpost,
            postmark,
            admin,
            webhooks,
            mirrors,
            metrics: metrics.filter(|_| config.metrics.listen.is_none()),
        })
    }

    /// Mounts every route on an app.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        if let Some(handle) = self.metrics {
            cfg.app_data(web::Data::new(handle))
                .route("/metrics", web::get().to(crate::metrics::serve));
        }
        cfg.app_data(web::Data::new(self.engine.clone()))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .service(hush_webhooks::scope(self.webhooks.clone()))
            .service(hush_v3::scope(self.v3.clone()))
            .service(hush_sendpost::scope(self.sendpost.clone()))
            .service(hush_postmark::scope(self.postmark.clone()));
        if let Some(admin) = &self.admin {
            cfg.service(hush_admin::scope(admin.clone()));
        }
        cfg.default_service(web::to(fallback));
    }
}

/// Whether a failure is a provider or database that does not answer now,
/// rather than a fault of the configuration or the store.
fn is_unreachable(err: &hush_engine::EngineError) -> bool {
    matches!(
        err,
        hush_engine::EngineError::Unavailable { .. }
            | hush_engine::EngineError::Upstream { .. }
            | hush_engine::EngineError::UpstreamTimeout { .. }
    )
}

/// Retries a tenant's bootstrap until its provider answers: every 5 s,
/// doubling to at most 5 minutes.
async fn bootstrap_later(engine: Engine, tenant: hush_model::TenantId) {
    let mut wait = std::time::Duration::from_secs(5);
    loop {
        tokio::time::sleep(wait).await;
        match engine.bootstrap_tenant(&tenant).await {
            Ok(()) => {
                tracing::info!(%tenant, "the tenant's provider answers again; its default stream is in place");
                return;
            }
            Err(err) => {
                tracing::debug!(%tenant, error = %err, "the tenant's provider still cannot be reached");
                wait = (wait * 2).min(std::time::Duration::from_secs(300));
            }
        }
    }
}

fn key_table<P>(
    keys: &[ResolvedKey],
    api: Api,
    profile: impl Fn(&ResolvedKey) -> P,
) -> KeyTable<P> {
    let mut table = KeyTable::default();
    for key in keys.iter().filter(|k| k.api == api) {
        // Duplicates were refused when the config was checked.
        table.insert(
            key.digest,
            ApiKey {
                tenant: key.tenant.clone(),
                name: Arc::clone(&key.name),
                permissions: key.permissions,
                profile: profile(key),
            },
        );
    }
    table
}

/// Runs the server until SIGTERM or ctrl-c, then finishes in-flight
/// requests (up to `server.shutdown_timeout_secs`).
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let backend = open_backend(&config).await?;
    let gateway = Gateway::new(&config, backend).await?;
    let listen = config.server.listen;
    let shared = gateway.clone();
    let guard = guard::Guard {
        pace: guard::BodyPace {
            grace: std::time::Duration::from_secs(config.server.body_timeout_secs),
            min_bytes_per_sec: config.server.body_min_bytes_per_sec,
        },
        trusted_proxies: config.trusted_proxies()?,
        auth_failures: std::num::NonZeroU32::new(config.server.auth_failures_per_minute).map(
            |per_minute| {
                Arc::new(guard::AuthFailures::new(
                    per_minute,
                    config.server.auth_failures_on_loopback,
                ))
            },
        ),
    };
    let mut server = HttpServer::new(move || {
        let gateway = shared.clone();
        App::new()
            .wrap(from_fn({
                let guard = std::rc::Rc::new(guard.clone());
                move |req, next| guard::guard(std::rc::Rc::clone(&guard), req, next)
            }))
            // Also merges doubled and trims trailing slashes
            // (telemetry::normalize_path).
            .wrap(from_fn(telemetry::request_id))
            .configure(|cfg| gateway.configure(cfg))
    })
    .shutdown_timeout(config.server.shutdown_timeout_secs)
    .bind(listen)
    .with_context(|| format!("binding {listen}"))?;
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    for addr in server.addrs() {
        tracing::info!(%addr, backend = gateway.engine.backend_name(), "listening");
    }
    let metrics_server = match config.metrics.listen {
        Some(addr) if config.metrics.enabled => Some(crate::metrics::listener(addr)?),
        _ => None,
    };
    let noise = tokio::spawn(telemetry::report_connection_noise());
    let pruning = tokio::spawn(prune_journal(
        gateway.engine.clone(),
        config.journal.retention_days,
    ));
    let mirrors = crate::mirror_config::spawn_mirrors(&gateway.engine, gateway.mirrors.clone());
    let metrics_task = metrics_server.map(tokio::spawn);
    let served = server.run().await.context("running the HTTP server");
    if let Some(task) = metrics_task {
        task.abort();
    }
    noise.abort();
    pruning.abort();
    for mirror in mirrors {
        mirror.abort();
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// How often the journal is pruned.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long the keys of applied webhook events are kept: past every
/// provider's retries (SendGrid's are the longest, 24 hours;
/// docs/webhooks.md), so that a redelivery within them changes nothing.
const RECEIPT_DAYS: i64 = 3;

/// Deletes journal entries past `journal.retention_days` (0 keeps them)
/// and webhook event keys past [`RECEIPT_DAYS`], at start and then hourly,
/// in bounded steps (`Engine::prune_journal`). With several instances on
/// one database each prunes; the deletes are idempotent.
async fn prune_journal(engine: Engine, retention_days: u32) {
    let days = |n: i64| {
        hush_model::Timestamp::from_nanos(
            Engine::now()
                .as_nanos()
                .saturating_sub(n * 86_400 * 1_000_000_000),
        )
    };
    let mut every = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        every.tick().await;
        if retention_days > 0 {
            match engine.prune_journal(days(i64::from(retention_days))).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, retention_days, "pruned the journal"),
                Err(err) => {
                    tracing::warn!(error = %err, "pruning the journal failed; trying again in an hour")
                }
            }
        }
        match engine.prune_receipts(days(RECEIPT_DAYS)).await {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(pruned, "forgot webhook event keys past their replay window")
            }
            Err(err) => {
                tracing::warn!(error = %err, "forgetting old webhook event keys failed; trying again in an hour")
            }
        }
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 while the default backend (the one most tenants are served from)
/// answers and can write, else 503 with `Retry-After`. Each backend is
/// listed with its own state: a tenant's own upstream that is down makes
/// the status `degraded`, not unavailable, since a balancer that took the
/// instance out would take every other tenant with it.
async fn readyz(engine: web::Data<Engine>) -> HttpResponse {
    let each = engine.readiness().await;
    let backends: Vec<serde_json::Value> = each
        .iter()
        .map(|(name, state)| match state {
            Ok(()) => json!({"backend": name, "status": "ready"}),
            Err(err) => json!({"backend": name, "status": "unavailable", "reason": reason(err)}),
        })
        .collect();
    let failing: Vec<&hush_engine::EngineError> = each
        .iter()
        .filter_map(|(_, state)| state.as_ref().err())
        .collect();
    if !failing.is_empty() {
        // Balancers ask every few seconds: logged once per interval.
        static NOT_READY: hush_engine::Throttle =
            hush_engine::Throttle::new(hush_engine::UNAVAILABLE_LOG_INTERVAL);
        if let Some(unlogged) = NOT_READY.admit() {
            for err in &failing {
                tracing::warn!(error = %err, not_ready_since_last_line = unlogged, "not ready");
            }
        }
    }
    match each.first() {
        Some((name, Err(err))) => {
            hush_http::with_retry_after(HttpResponse::ServiceUnavailable().json(json!({
                "status": "unavailable",
                "backend": name,
                "reason": reason(err),
                "backends": backends,
            })))
        }
        _ => {
            let status = if failing.is_empty() {
                "ready"
            } else {
                "degraded"
            };
            HttpResponse::Ok().json(json!({
                "status": status,
                "backend": engine.backend_name(),
                "backends": backends,
            }))
        }
    }
}

/// Why a backend is not ready, in words safe to show anyone.
fn reason(err: &hush_engine::EngineError) -> String {
    match err {
        hush_engine::EngineError::Unavailable { reason, .. } => reason.clone(),
        _ => "the store did not answer".to_owned(),
    }
}

/// A path no API serves. The answer is a 404 in the format of the API the
/// caller speaks, told by its auth header (or SendPost's `/api/v1`
/// prefix); v3 otherwise.
async fn fallback(req: HttpRequest) -> HttpResponse {
    match guard::Caller::of(&req) {
        guard::Caller::Postmark => hush_postmark::not_found().await,
        guard::Caller::SendPost => hush_sendpost::not_found(req).await,
        guard::Caller::V3 => hush_v3::not_found().await,
    }
}
