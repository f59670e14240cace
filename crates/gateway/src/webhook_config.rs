//! `[webhooks]` and `[[tenants.webhooks]]` (docs/webhooks.md): the hooks
//! providers post their events to, checked at start-up.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use hush_webhooks::events::Provider;
use hush_webhooks::hooks::check_name;
use hush_webhooks::verify::SendGridKey;
use hush_webhooks::{Hook, PostmarkAuth, Settings, Verification};
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};

/// `[webhooks]`: what every hook shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Hosts SNS certificates and subscription confirmations may be
    /// fetched from, over https; `*` stands for one DNS label. An entry
    /// `http://host:port` allows plain http to that one address (tests).
    pub sns_cert_hosts: Vec<String>,
    /// How far a signed timestamp may be from now, in seconds.
    pub max_age_secs: u64,
    /// The largest body a webhook may post (SendGrid batches up to about
    /// 768 KB).
    pub max_body_bytes: usize,
    /// How long a delivery may wait for the store before it is answered
    /// 503 so that the provider retries: under SendGrid's and Postmark's
    /// timeouts (about 10 to 30 s).
    pub budget_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let settings = Settings::default();
        Self {
            sns_cert_hosts: settings.sns_cert_hosts,
            max_age_secs: settings.max_age.as_secs(),
            max_body_bytes: settings.max_body_bytes,
            budget_secs: settings.budget.as_secs(),
        }
    }
}

/// `[[tenants.webhooks]]`: one hook. Each secret may instead be read from
/// the environment variable its `…_env` key names.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub provider: String,
    /// The last segment of `/webhooks/{provider}/{name}`.
    pub name: String,
    /// sendgrid: the Signed Event Webhook's public key, as SendGrid's
    /// settings page shows it (base64 DER).
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub public_key_env: Option<String>,
    /// postmark: basic auth, and/or a header.
    #[serde(default)]
    pub basic_user: Option<String>,
    #[serde(default, skip_serializing)]
    pub basic_password: Option<String>,
    #[serde(default)]
    pub basic_password_env: Option<String>,
    #[serde(default)]
    pub header_name: Option<String>,
    #[serde(default, skip_serializing)]
    pub header_value: Option<String>,
    #[serde(default)]
    pub header_value_env: Option<String>,
    /// mailgun: the HTTP webhook signing key.
    #[serde(default, skip_serializing)]
    pub signing_key: Option<String>,
    #[serde(default)]
    pub signing_key_env: Option<String>,
    /// ses: the only SNS topics accepted (any when empty).
    #[serde(default)]
    pub topic_arns: Vec<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A SendPost hook's name is its secret; the others are never shown.
        f.debug_struct("WebhookConfig")
            .field("provider", &self.provider)
            .field("basic_user", &self.basic_user)
            .field("header_name", &self.header_name)
            .field("topic_arns", &self.topic_arns)
            .finish_non_exhaustive()
    }
}

impl WebhooksConfig {
    pub fn settings(&self) -> Settings {
        Settings {
            sns_cert_hosts: self.sns_cert_hosts.clone(),
            max_age: Duration::from_secs(self.max_age_secs),
            max_body_bytes: self.max_body_bytes,
            budget: Duration::from_secs(self.budget_secs),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_age_secs == 0 {
            return Err(ConfigError::new(
                "webhooks.max_age_secs",
                "must be at least 1",
            ));
        }
        if self.budget_secs == 0 {
            return Err(ConfigError::new(
                "webhooks.budget_secs",
                "must be at least 1",
            ));
        }
        for host in &self.sns_cert_hosts {
            let Some(address) = host.strip_prefix("http://") else {
                continue;
            };
            let loopback = address
                .rsplit_once(':')
                .is_some_and(|(host, _)| matches!(host, "127.0.0.1" | "[::1]" | "localhost"));
            if !loopback {
                return Err(ConfigError::new(
                    "webhooks.sns_cert_hosts",
                    format!(
                        "{host:?}: plain http is allowed only to a loopback address and port (a test's stand-in for SNS)"
                    ),
                ));
            }
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "webhooks.max_body_bytes",
                format!("{} is too small; at least 1024", self.max_body_bytes),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Every tenant's hooks, checked: a known provider, a URL-safe name
    /// unique per provider (the URL names no tenant), and that provider's
    /// verification settings.
    pub fn resolve_webhooks(&self) -> Result<Vec<Hook>, ConfigError> {
        self.webhooks.validate()?;
        let mut seen = HashSet::new();
        let mut hooks = Vec::new();
        for (t, tenant) in self.tenants.iter().enumerate() {
            for (w, hook) in tenant.webhooks.iter().enumerate() {
                let at = format!("tenants[{t}].webhooks[{w}]");
                let provider = Provider::parse(&hook.provider).ok_or_else(|| {
                    ConfigError::new(
                        format!("{at}.provider"),
                        format!(
                            "{:?} is not one of sendgrid, postmark, sendpost, mailgun, ses",
                            hook.provider
                        ),
                    )
                })?;
                check_name(provider, &hook.name)
                    .map_err(|problem| ConfigError::new(format!("{at}.name"), problem))?;
                if !seen.insert((provider, hook.name.clone())) {
                    return Err(ConfigError::new(
                        format!("{at}.name"),
                        format!("another {} hook has this name", provider.as_str()),
                    ));
                }
                let verification = verification(provider, hook, &at)?;
                hooks.push(Hook::new(
                    provider,
                    hook.name.clone(),
                    tenant.id.clone(),
                    verification,
                ));
            }
        }
        Ok(hooks)
    }
}

fn verification(
    provider: Provider,
    hook: &WebhookConfig,
    at: &str,
) -> Result<Verification, ConfigError> {
    let not_for = |field: &str, given: bool| {
        if given {
            Err(ConfigError::new(
                format!("{at}.{field}"),
                format!("is not a setting of a {} hook", provider.as_str()),
            ))
        } else {
            Ok(())
        }
    };
    if provider != Provider::SendGrid {
        not_for(
            "public_key",
            hook.public_key.is_some() || hook.public_key_env.is_some(),
        )?;
    }
    if provider != Provider::Postmark {
        // Each key named as it was given, so that the error points at it.
        for (field, given) in [
            ("basic_user", hook.basic_user.is_some()),
            ("basic_password", hook.basic_password.is_some()),
            ("basic_password_env", hook.basic_password_env.is_some()),
            ("header_name", hook.header_name.is_some()),
            ("header_value", hook.header_value.is_some()),
            ("header_value_env", hook.header_value_env.is_some()),
        ] {
            not_for(field, given)?;
        }
    }
    if provider != Provider::Mailgun {
        not_for(
            "signing_key",
            hook.signing_key.is_some() || hook.signing_key_env.is_some(),
        )?;
    }
    if provider != Provider::Ses {
        not_for("topic_arns", !hook.topic_arns.is_empty())?;
    }
    Ok(match provider {
        Provider::SendGrid => {
            let key = secret(at, "public_key", &hook.public_key, &hook.public_key_env)?
                .ok_or_else(|| ConfigError::new(format!("{at}.public_key"), "is required"))?;
            Verification::SendGrid(
                SendGridKey::parse(&key)
                    .map_err(|problem| ConfigError::new(format!("{at}.public_key"), problem))?,
            )
        }
        Provider::Postmark => Verification::Postmark(postmark(hook, at)?),
        Provider::SendPost => Verification::SendPost,
        Provider::Mailgun => Verification::Mailgun {
            signing_key: secret(at, "signing_key", &hook.signing_key, &hook.signing_key_env)?
                .ok_or_else(|| ConfigError::new(format!("{at}.signing_key"), "is required"))?,
        },
        // Required: SNS subscriptions are confirmed automatically, so
        // without it any AWS account could subscribe a topic of its own to
        // this URL and post validly signed events.
        Provider::Ses if hook.topic_arns.is_empty() => {
            return Err(ConfigError::new(
                format!("{at}.topic_arns"),
                "is required: name the SNS topics whose events this hook accepts (any AWS account can sign SNS messages)",
            ));
        }
        Provider::Ses => Verification::Ses {
            topic_arns: hook.topic_arns.clone(),
        },
    })
}

fn postmark(hook: &WebhookConfig, at: &str) -> Result<PostmarkAuth, ConfigError> {
    let password = secret(
        at,
        "basic_password",
        &hook.basic_password,
        &hook.basic_password_env,
    )?;
    let basic = match (&hook.basic_user, password) {
        (Some(user), Some(password)) => {
            if user.contains(':') {
                return Err(ConfigError::new(
                    format!("{at}.basic_user"),
                    "cannot hold ':' (basic auth separates user and password with it)",
                ));
            }
            Some((user.clone(), password))
        }
        (None, None) => None,
        _ => {
            return Err(ConfigError::new(
                format!("{at}.basic_user"),
                "basic_user and basic_password go together",
            ));
        }
    };
    let value = secret(
        at,
        "header_value",
        &hook.header_value,
        &hook.header_value_env,
    )?;
    let header = match (&hook.header_name, value) {
        (Some(name), Some(value)) => {
            actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::new(format!("{at}.header_name"), "is not a header name")
            })?;
            Some((name.to_ascii_lowercase(), value))
        }
        (None, None) => None,
        _ => {
            return Err(ConfigError::new(
                format!("{at}.header_name"),
                "header_name and header_value go together",
            ));
        }
    };
    if basic.is_none() && header.is_none() {
        return Err(ConfigError::new(
            at.to_owned(),
            "a postmark hook needs basic_user and basic_password, or header_name and header_value: Postmark signs nothing",
        ));
    }
    Ok(PostmarkAuth { basic, header })
}

/// A secret given inline or by environment variable (not both); an empty
/// one is refused.
fn secret(
    at: &str,
    field: &str,
    inline: &Option<String>,
    env: &Option<String>,
) -> Result<Option<String>, ConfigError> {
    let value = match (inline, env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                format!("{at}.{field}"),
                format!("give {field} or {field}_env, not both"),
            ));
        }
        (Some(value), None) => value.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            ConfigError::new(
                format!("{at}.{field}_env"),
                format!("the environment variable {var} is not set"),
            )
        })?,
        (None, None) => return Ok(None),
    };
    if value.trim().is_empty() {
        return Err(ConfigError::new(format!("{at}.{field}"), "is empty"));
    }
    Ok(Some(value))
}
