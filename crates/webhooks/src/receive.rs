//! `POST /webhooks/{provider}/{name}`: find the hook, read the body within
//! its limit, verify it as its provider signs it, read its events, and
//! apply them once each (`Engine::apply_events`) within the time budget.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, Scope, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt as _;
use hush_engine::{Engine, EngineError, EventChange, GroupSpec, ReceivedEvent};
use hush_http::Endpoint;
use hush_model::{
    Actor, Door, EmailMatch, GroupKey, ListFilter, NewSuppression, Scope as EntryScope,
    ScopeFilter, StreamType, TenantId,
};
use subtle::ConstantTimeEq as _;

use crate::error::WebhookError;
use crate::events::{self, Action, GroupRef, Provider, ProviderEvent, Target};
use crate::hooks::{Hook, PostmarkAuth, Settings, Verification};
use crate::verify::{self, SendGridKey, sns};

/// The path prefix of every webhook.
pub const PREFIX: &str = "/webhooks";

/// Everything the webhook routes need.
#[derive(Debug)]
pub struct WebhookState {
    pub engine: Engine,
    hooks: HashMap<(Provider, String), Arc<Hook>>,
    settings: Settings,
    http: reqwest::Client,
    /// SNS signing certificates by URL: fetched once each.
    certificates: Mutex<HashMap<String, sns::Certificate>>,
}

impl WebhookState {
    /// `hooks` must have distinct (provider, name) pairs; the config checks.
    pub fn new(engine: Engine, hooks: Vec<Hook>, settings: Settings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            engine,
            hooks: hooks
                .into_iter()
                .map(|hook| ((hook.provider, hook.name.clone()), Arc::new(hook)))
                .collect(),
            settings,
            http,
            certificates: Mutex::new(HashMap::new()),
        }
    }

    /// What each of a tenant's hooks has received, by provider and label.
    pub fn reports(&self, tenant: &TenantId) -> Vec<crate::HookReport> {
        let mut reports: Vec<_> = self
            .hooks
            .values()
            .filter(|hook| &hook.tenant == tenant)
            .map(|hook| hook.report())
            .collect();
        reports.sort_by(|a, b| a.label.cmp(&b.label));
        reports
    }
}

/// The `/webhooks` scope: one route for every hook, and the webhooks' own
/// 404 for anything else under it.
pub fn scope(
    state: web::Data<WebhookState>,
) -> Scope<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope(PREFIX)
        .app_data(state)
        .app_data(web::PathConfig::default().error_handler(|_, _| WebhookError::NoHook.into()))
        .service(Endpoint::new("/{provider}/{name}", refuse_method).post(receive))
        .default_service(web::to(not_found))
}

fn refuse_method(_req: &HttpRequest) -> HttpResponse {
    WebhookError::MethodNotAllowed.response()
}

async fn not_found() -> HttpResponse {
    WebhookError::NoHook.response()
}

async fn receive(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<WebhookState>,
) -> Result<HttpResponse, WebhookError> {
    let (provider, name) = path.into_inner();
    let hook = Provider::parse(&provider)
        .and_then(|provider| state.hooks.get(&(provider, name)))
        .ok_or(WebhookError::NoHook)?;
    let outcome = async {
        let body = read_body(payload, state.settings.max_body_bytes).await?;
        let events = state.verified_events(&req, hook, &body).await?;
        // Everything the store is asked (which events it has seen, the
        // groups, the changes) within the budget; on SQLite a write past
        // it still commits, and the provider's retry is then a duplicate.
        let budget = state.settings.budget;
        tokio::time::timeout(budget, state.apply(hook, events))
            .await
            .map_err(|_| WebhookError::OverBudget(budget))?
    }
    .await;
    match &outcome {
        Ok(_) => {}
        Err(err) if err.is_refusal() => {
            hook.counts.refused.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("hush_webhook_deliveries_refused_total", "provider" => hook.provider.as_str())
                .increment(1);
            tracing::warn!(hook = %hook.label, tenant = %hook.tenant, error = %err, "a webhook delivery was refused");
        }
        Err(err) => {
            tracing::error!(hook = %hook.label, tenant = %hook.tenant, error = %err, "a webhook delivery could not be recorded; the provider will retry");
        }
    }
    outcome.map(|applied| HttpResponse::Ok().json(applied))
}

/// The body, refused past `limit` bytes without reading further.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, WebhookError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            // A body the gateway's pacing cut off is the 408 every API
            // answers (hush_http), which providers retry.
            let err = actix_web::Error::from(err);
            if hush_http::is_body_timeout(&err) {
                WebhookError::RequestTimeout
            } else {
                WebhookError::Malformed(format!("the body: {err}"))
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(WebhookError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What a delivery did, by event.
#[derive(Debug, Default, serde::Serialize)]
struct Applied {
    recorded: u64,
    ignored: u64,
    duplicate: u64,
}

impl WebhookState {
    /// The body's events, once the body is proved to be the provider's.
    async fn verified_events(
        &self,
        req: &HttpRequest,
        hook: &Hook,
        body: &[u8],
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        let parsed = |result: Result<Vec<ProviderEvent>, events::ParseError>| {
            result.map_err(|err| WebhookError::Malformed(err.0))
        };
        match &hook.verification {
            Verification::SendGrid(key) => {
                self.check_sendgrid(req, key, body)?;
                parsed(events::sendgrid::parse(body))
            }
            Verification::Postmark(auth) => {
                check_postmark(req, auth)?;
                parsed(events::postmark::parse(
                    body,
                    header(req, "x-pm-webhook-trace-id"),
                ))
            }
            Verification::SendPost => parsed(events::sendpost::parse(body)),
            Verification::Mailgun { signing_key } => {
                // Mailgun signs inside the body (Mailgun docs, "Securing
                // Webhooks"): the body is read for its signature first.
                let (signed, events) = events::mailgun::parse(body)
                    .map_err(|err| WebhookError::MailgunMalformed(err.0))?;
                verify::mailgun(
                    signing_key,
                    &signed.timestamp,
                    &signed.token,
                    &signed.signature,
                )?;
                self.check_age(verify::unix_secs("timestamp", &signed.timestamp)?)?;
                Ok(events)
            }
            Verification::Ses { topic_arns } => self.ses_events(hook, topic_arns, body).await,
        }
    }

    fn check_sendgrid(
        &self,
        req: &HttpRequest,
        key: &SendGridKey,
        body: &[u8],
    ) -> Result<(), WebhookError> {
        let signature = header(req, SendGridKey::SIGNATURE_HEADER)
            .ok_or(verify::Refusal::Missing(SendGridKey::SIGNATURE_HEADER))?;
        let timestamp = header(req, SendGridKey::TIMESTAMP_HEADER)
            .ok_or(verify::Refusal::Missing(SendGridKey::TIMESTAMP_HEADER))?;
        key.verify(timestamp, body, signature)?;
        self.check_age(verify::unix_secs(SendGridKey::TIMESTAMP_HEADER, timestamp)?)
    }

    fn check_age(&self, signed_at: i64) -> Result<(), WebhookError> {
        let now = Engine::now().as_nanos().div_euclid(1_000_000_000);
        Ok(verify::check_age(signed_at, now, self.settings.max_age)?)
    }

    /// An SNS message: verified with the certificate it names, from an
    /// allowed host; a subscription confirmed by fetching its URL; a
    /// notification's SES events.
    async fn ses_events(
        &self,
        hook: &Hook,
        topic_arns: &[String],
        body: &[u8],
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        // SNS posts JSON as text/plain (SNS docs, "HTTP/HTTPS headers"):
        // the content type is not looked at.
        let envelope: sns::Envelope = serde_json::from_slice(body)
            .map_err(|err| WebhookError::Malformed(format!("the SNS message: {err}")))?;
        if !topic_arns.is_empty() && !topic_arns.contains(&envelope.topic_arn) {
            return Err(WebhookError::Forbidden(format!(
                "topic {} is not one this hook accepts",
                envelope.topic_arn
            )));
        }
        let certificate = self.certificate(&envelope.signing_cert_url).await?;
        certificate.verify_envelope(&envelope)?;
        self.check_age(sns::signed_at(&envelope)?)?;
        match envelope.r#type.as_str() {
            "SubscriptionConfirmation" => {
                self.confirm(hook, &envelope).await?;
                Ok(Vec::new())
            }
            "Notification" => events::ses::parse(&envelope.message, &envelope.message_id)
                .map_err(|err| WebhookError::Malformed(err.0)),
            // UnsubscribeConfirmation, and whatever SNS adds later.
            _ => Ok(Vec::new()),
        }
    }

    /// The certificate at `url`, fetched once from an allowed host.
    async fn certificate(&self, url: &str) -> Result<sns::Certificate, WebhookError> {
        if let Some(found) = self.cached_certificate(url) {
            return Ok(found);
        }
        if !self.fetch_allowed(url) {
            return Err(WebhookError::Forbidden(format!(
                "SigningCertURL {url} is not on an allowed host (webhooks.sns_cert_hosts)"
            )));
        }
        let pem = self.fetch(url).await?;
        let certificate = sns::Certificate::parse(&pem).map_err(WebhookError::Upstream)?;
        self.certificates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(url.to_owned(), certificate.clone());
        Ok(certificate)
    }

    fn cached_certificate(&self, url: &str) -> Option<sns::Certificate> {
        self.certificates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(url)
            .cloned()
    }

    /// Confirms a subscription by fetching its `SubscribeURL` (SNS docs,
    /// "Confirm the subscription"), from an allowed host only.
    async fn confirm(&self, hook: &Hook, envelope: &sns::Envelope) -> Result<(), WebhookError> {
        let url = envelope
            .subscribe_url
            .as_deref()
            .ok_or(verify::Refusal::Missing("SubscribeURL"))?;
        if !self.fetch_allowed(url) {
            return Err(WebhookError::Forbidden(format!(
                "SubscribeURL {url} is not on an allowed host (webhooks.sns_cert_hosts)"
            )));
        }
        self.fetch(url).await?;
        tracing::info!(hook = %hook.label, topic = %envelope.topic_arn, "confirmed the SNS subscription");
        Ok(())
    }

    /// Whether `url` may be fetched: an allowed https host, or an
    /// `http://host:port` the settings name exactly.
    fn fetch_allowed(&self, url: &str) -> bool {
        let patterns = &self.settings.sns_cert_hosts;
        if sns::url_allowed(url, patterns) {
            return true;
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return false;
        };
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port()) else {
            return false;
        };
        parsed.scheme() == "http"
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && patterns
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&format!("http://{host}:{port}")))
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, WebhookError> {
        let failed = |err: reqwest::Error| WebhookError::Upstream(format!("fetching {url}: {err}"));
        let response = self.http.get(url).send().await.map_err(failed)?;
        let response = response.error_for_status().map_err(failed)?;
        Ok(response.bytes().await.map_err(failed)?.to_vec())
    }

    /// Applies a delivery's events once each, in one transaction, within
    /// the budget.
    async fn apply(
        &self,
        hook: &Hook,
        events: Vec<ProviderEvent>,
    ) -> Result<Applied, WebhookError> {
        let mut actor =
            Actor::new(Door::webhook(hook.provider.as_str())).with_key(hook.label.clone());
        if let Some(id) = hush_engine::request::current_id() {
            actor = actor.with_request_id(id.to_string());
        }
        let keys: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let seen = self
            .engine
            .events_seen(&hook.tenant, &hook.label, &keys)
            .await?;
        let mut groups = GroupCache::default();
        let mut received = Vec::with_capacity(events.len());
        let mut suppressing = Vec::with_capacity(events.len());
        for (event, seen) in events.into_iter().zip(seen) {
            // A redelivery: nothing to make (a group deleted since stays
            // deleted); the store tells it a duplicate again.
            if seen {
                suppressing.push(false);
                received.push(ReceivedEvent {
                    key: event.id,
                    changes: Vec::new(),
                });
                continue;
            }
            let mut changes = Vec::new();
            for action in event.actions {
                if let Some(change) = self.change(hook, &mut groups, action, &actor).await? {
                    changes.push(change);
                }
            }
            suppressing.push(!changes.is_empty());
            received.push(ReceivedEvent {
                key: event.id,
                changes,
            });
        }
        let fresh = self
            .engine
            .apply_events(&hook.tenant, &hook.label, received, &actor)
            .await?;
        let mut applied = Applied::default();
        for (fresh, suppressing) in fresh.into_iter().zip(suppressing) {
            match (fresh, suppressing) {
                (false, _) => applied.duplicate += 1,
                (true, true) => applied.recorded += 1,
                (true, false) => applied.ignored += 1,
            }
        }
        for (outcome, events) in [
            ("recorded", applied.recorded),
            ("ignored", applied.ignored),
            ("duplicate", applied.duplicate),
        ] {
            metrics::counter!(
                "hush_webhook_events_total",
                "provider" => hook.provider.as_str(),
                "outcome" => outcome
            )
            .increment(events);
        }
        let counts = &hook.counts;
        counts
            .recorded
            .fetch_add(applied.recorded, Ordering::Relaxed);
        counts.ignored.fetch_add(applied.ignored, Ordering::Relaxed);
        counts
            .duplicate
            .fetch_add(applied.duplicate, Ordering::Relaxed);
        counts
            .last_event_at
            .store(Engine::now().as_nanos(), Ordering::Relaxed);
        Ok(applied)
    }

    /// The change an action asks for, its group made if the tenant lacks
    /// it (DESIGN-HUB, "Events in": a group an event names is created,
    /// never dropped); none for what is ignored.
    async fn change(
        &self,
        hook: &Hook,
        groups: &mut GroupCache,
        action: Action,
        actor: &Actor,
    ) -> Result<Option<EventChange>, WebhookError> {
        Ok(match action {
            Action::Suppress {
                email,
                target,
                kind,
                origin,
                at,
            } => {
                let Some(scope) = self.scope(hook, groups, target, actor).await? else {
                    return Ok(None);
                };
                Some(EventChange::Add(NewSuppression {
                    email,
                    scope,
                    kind,
                    origin,
                    created_at: at,
                }))
            }
            Action::Lift {
                email,
                target,
                kinds,
            } => {
                let scope = match self.scope(hook, groups, target, actor).await? {
                    None => return Ok(None),
                    Some(EntryScope::Global) => ScopeFilter::Global,
                    Some(EntryScope::Group(id)) => ScopeFilter::Group(id),
                };
                let mut filter = ListFilter::new(kinds, scope);
                filter.email = Some(EmailMatch::Exact(email));
                Some(EventChange::Remove(filter))
            }
            Action::Ignore(_) => None,
        })
    }

    /// Where an action's entry goes; `None` when the tenant's store keeps
    /// no groups (an upstream SendPost): the action is then not taken, and
    /// the rest of the delivery is.
    async fn scope(
        &self,
        hook: &Hook,
        groups: &mut GroupCache,
        target: Target,
        actor: &Actor,
    ) -> Result<Option<EntryScope>, WebhookError> {
        let reference = match target {
            Target::Global => return Ok(Some(EntryScope::Global)),
            Target::Group(reference) => reference,
        };
        if let Some(scope) = groups.0.get(&reference) {
            return Ok(Some(*scope));
        }
        if !self.engine.capabilities_for(&hook.tenant).groups {
            tracing::warn!(hook = %hook.label, tenant = %hook.tenant, "an event names a group, and the tenant's store keeps none: that change is not made");
            return Ok(None);
        }
        let tenant = &hook.tenant;
        let key = match &reference {
            GroupRef::ShownId(shown) => {
                if let Some(id) = self.engine.group_id_from_shown(tenant, *shown)
                    && let Ok(group) = self.engine.group(tenant, id).await
                {
                    groups.0.insert(reference, EntryScope::Group(group.id));
                    return Ok(Some(EntryScope::Group(group.id)));
                }
                // A SendGrid group hush does not know by that id: a group
                // of its own, found again by key next time.
                GroupKey::parse(&format!("sendgrid-group-{shown}"))
                    .map_err(|err| WebhookError::Malformed(format!("asm_group_id: {err}")))?
            }
            GroupRef::Key(key) => key.clone(),
        };
        let group = match self.engine.group_by_key(tenant, &key).await? {
            Some(group) => group,
            None => self.create_group(hook, &key, actor).await?,
        };
        let scope = EntryScope::Group(group.id);
        groups.0.insert(reference, scope);
        Ok(Some(scope))
    }

    /// Makes the group `key` names, named after it; if another group has
    /// that name, named after the provider too.
    async fn create_group(
        &self,
        hook: &Hook,
        key: &GroupKey,
        actor: &Actor,
    ) -> Result<hush_model::Group, WebhookError> {
        let provider = hook.provider.as_str();
        let names = [
            key.as_str().to_owned(),
            format!("{key} ({provider} webhook)"),
        ];
        for name in names {
            let spec = GroupSpec {
                key: Some(key.clone()),
                name,
                description: format!("made for a {provider} webhook event"),
                is_default: false,
                stream_type: StreamType::Broadcasts,
                unsubscribe_handling: None,
            };
            match self.engine.create_group(&hook.tenant, spec, actor).await {
                Ok(group) => return Ok(group),
                Err(EngineError::GroupNameTaken(_)) => {}
                // Made meanwhile by a delivery racing this one.
                Err(EngineError::GroupKeyTaken(_)) => {
                    if let Some(group) = self.engine.group_by_key(&hook.tenant, key).await? {
                        return Ok(group);
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(WebhookError::Engine(EngineError::GroupNameTaken(
            key.as_str().to_owned(),
        )))
    }
}

/// The groups a delivery's events named, resolved once each.
#[derive(Default)]
struct GroupCache(HashMap<GroupRef, EntryScope>);

/// Postmark's basic auth and/or header, compared in constant time.
fn check_postmark(req: &HttpRequest, auth: &PostmarkAuth) -> Result<(), WebhookError> {
    if let Some((user, password)) = &auth.basic {
        let expected = format!("Basic {}", BASE64.encode(format!("{user}:{password}")));
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(expected.as_bytes())) {
            return Err(WebhookError::Unauthorized { basic: true });
        }
    }
    if let Some((name, value)) = &auth.header {
        let given = header(req, name).unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(value.as_bytes())) {
            return Err(WebhookError::Unauthorized { basic: false });
        }
    }
    Ok(())
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}
