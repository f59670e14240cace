//! The webhooks a config names (`[[tenants.webhooks]]`), what proves a
//! delivery to each, and what each has received since the gateway started.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use hush_model::{TenantId, Timestamp};
use sha2::{Digest as _, Sha256};

use crate::events::Provider;
use crate::verify::SendGridKey;

/// The shortest name a SendPost hook may have: SendPost signs nothing
/// (docs/webhooks.md), so the name in the URL is the secret, and 22
/// characters of the URL-safe alphabet carry more than 128 bits.
pub const MIN_SECRET_NAME_CHARS: usize = 22;

/// The longest hook name.
pub const MAX_NAME_CHARS: usize = 128;

/// What proves that a delivery comes from the provider.
#[derive(Debug, Clone)]
pub enum Verification {
    /// The Signed Event Webhook's public key.
    SendGrid(SendGridKey),
    /// Postmark signs nothing: basic auth and/or a header of the operator's
    /// choosing, set on Postmark's webhook settings page.
    Postmark(PostmarkAuth),
    /// The secret name in the URL.
    SendPost,
    /// The HTTP webhook signing key (not the API key).
    Mailgun { signing_key: String },
    /// The SNS message signature; `topic_arns`, when not empty, are the
    /// only topics accepted.
    Ses { topic_arns: Vec<String> },
}

/// Postmark's credentials; at least one of the two.
#[derive(Clone, Default)]
pub struct PostmarkAuth {
    pub basic: Option<(String, String)>,
    /// The header's name, and its value.
    pub header: Option<(String, String)>,
}

impl std::fmt::Debug for PostmarkAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostmarkAuth")
            .field("basic", &self.basic.as_ref().map(|(user, _)| user))
            .field("header", &self.header.as_ref().map(|(name, _)| name))
            .finish()
    }
}

/// One configured webhook.
#[derive(Debug)]
pub struct Hook {
    pub provider: Provider,
    /// The URL's last segment.
    pub name: String,
    pub tenant: TenantId,
    pub verification: Verification,
    /// What receipts, the journal and logs call it: the provider and the
    /// hook's name, or for SendPost, whose name is a secret, a digest of it.
    pub label: String,
    pub(crate) counts: Counts,
}

impl Hook {
    pub fn new(
        provider: Provider,
        name: String,
        tenant: TenantId,
        verification: Verification,
    ) -> Self {
        let label = match provider {
            Provider::SendPost => {
                let digest = hex::encode(Sha256::digest(name.as_bytes()));
                format!("sendpost/{}", &digest[..16])
            }
            _ => format!("{}/{name}", provider.as_str()),
        };
        Self {
            provider,
            name,
            tenant,
            verification,
            label,
            counts: Counts::default(),
        }
    }

    /// What the hook has received since the gateway started.
    pub fn report(&self) -> HookReport {
        let last = self.counts.last_event_at.load(Ordering::Relaxed);
        HookReport {
            provider: self.provider,
            label: self.label.clone(),
            recorded: self.counts.recorded.load(Ordering::Relaxed),
            ignored: self.counts.ignored.load(Ordering::Relaxed),
            duplicate: self.counts.duplicate.load(Ordering::Relaxed),
            refused: self.counts.refused.load(Ordering::Relaxed),
            last_event_at: (last != 0).then(|| Timestamp::from_nanos(last)),
        }
    }
}

/// Whether a hook name is one the URL carries as it is: 1 to
/// [`MAX_NAME_CHARS`] of `A-Z a-z 0-9 - _ .`; a SendPost hook's at least
/// [`MIN_SECRET_NAME_CHARS`].
pub fn check_name(provider: Provider, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_CHARS {
        return Err(format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may hold only A-Z, a-z, 0-9, '-', '_' and '.'".into());
    }
    if provider == Provider::SendPost && name.len() < MIN_SECRET_NAME_CHARS {
        return Err(format!(
            "is a SendPost hook's only secret (SendPost signs nothing) and must be at least {MIN_SECRET_NAME_CHARS} random characters"
        ));
    }
    Ok(())
}

/// Counters of one hook.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) recorded: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) duplicate: AtomicU64,
    pub(crate) refused: AtomicU64,
    /// Nanoseconds; 0 before the first event.
    pub(crate) last_event_at: AtomicI64,
}

/// What one hook has received since the gateway started, by outcome:
/// events recorded (at least one change asked for), ignored (accepted, not
/// suppressing), duplicate (a key already applied), and deliveries refused
/// (unverified, stale or unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    pub provider: Provider,
    pub label: String,
    pub recorded: u64,
    pub ignored: u64,
    pub duplicate: u64,
    pub refused: u64,
    pub last_event_at: Option<Timestamp>,
}

/// `[webhooks]`: what every hook shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Hosts certificates and subscription confirmations may be fetched
    /// from (`verify::sns::url_allowed`), plus any `http://host:port`
    /// entries, which allow plain http to that one address (tests).
    pub sns_cert_hosts: Vec<String>,
    /// How far a signed timestamp may be from now.
    pub max_age: Duration,
    /// The largest body accepted.
    pub max_body_bytes: usize,
    /// How long a delivery may wait for the store before it is answered
    /// 503 (and the provider retries): under the providers' own timeouts.
    pub budget: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sns_cert_hosts: crate::verify::sns::default_patterns(),
            max_age: Duration::from_secs(600),
            max_body_bytes: 2 << 20,
            budget: Duration::from_secs(8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_safe_and_sendpost_names_are_long() {
        assert!(check_name(Provider::SendGrid, "main").is_ok());
        assert!(check_name(Provider::SendGrid, "").is_err());
        assert!(check_name(Provider::SendGrid, "a/b").is_err());
        assert!(check_name(Provider::SendGrid, "a b").is_err());
        assert!(check_name(Provider::SendGrid, &"a".repeat(129)).is_err());
        assert!(check_name(Provider::SendPost, "short-secret").is_err());
        assert!(check_name(Provider::SendPost, "Zq3v9XkP2mW7tR1yB8nL4c").is_ok());
    }

    #[test]
    fn a_sendpost_label_hides_its_name() {
        let secret = "Zq3v9XkP2mW7tR1yB8nL4c";
        let hook = Hook::new(
            Provider::SendPost,
            secret.into(),
            TenantId::parse("acme").expect("tenant"),
            Verification::SendPost,
        );
        assert!(hook.label.starts_with("sendpost/"));
        assert!(!hook.label.contains(secret));
        let mailgun = Hook::new(
            Provider::Mailgun,
            "main".into(),
            TenantId::parse("acme").expect("tenant"),
            Verification::Mailgun {
                signing_key: "k".into(),
            },
        );
        assert_eq!(mailgun.label, "mailgun/main");
    }
}
