//! Provider events in (docs/webhooks.md): `POST /webhooks/{provider}/{hook}`
//! receives a provider's event webhook, verifies it as its provider signs
//! it (on the raw bytes, or for Mailgun and SNS, whose signatures are
//! fields of the body, on the fields it signs), and records what the provider itself would
//! suppress, each change journaled with door `webhook:<provider>` and the
//! provider's event id.

mod error;
pub mod events;
pub mod hooks;
mod receive;
pub mod verify;

pub use error::WebhookError;
pub use hooks::{Hook, HookReport, PostmarkAuth, Settings, Verification};
pub use receive::{PREFIX, WebhookState, scope};
