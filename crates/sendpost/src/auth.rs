//! Who is calling: the SendPost subaccount key extractor. A handler that
//! takes a [`SendPostSubaccount`] cannot run for an unauthenticated caller.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use hush_model::TenantId;

use crate::{SendPostError, SendPostState};

/// The header SendPost's subaccount operations authenticate with
/// (SendPost API reference, introduction; header names match
/// case-insensitively).
pub const KEY_HEADER: &str = "x-subaccount-apikey";

/// An authenticated SendPost subaccount: the tenant its key belongs to.
#[derive(Debug)]
pub struct SendPostSubaccount {
    pub tenant: TenantId,
    /// Who this caller's changes are journaled as.
    pub actor: hush_model::Actor,
}

impl FromRequest for SendPostSubaccount {
    type Error = SendPostError;
    type Future = Ready<Result<Self, SendPostError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<SendPostSubaccount, SendPostError> {
    let state = req.app_data::<web::Data<SendPostState>>().ok_or_else(|| {
        tracing::error!("sendpost routes mounted without their state");
        SendPostError::Internal
    })?;
    let key = presented_key(req).ok_or(SendPostError::MissingKey)?;
    // Every SendPost key may read and write: SendPost has no key scopes,
    // and the config refuses scopes on non-v3 keys.
    let key = state.keys.resolve(key).ok_or(SendPostError::UnknownKey)?;
    Ok(SendPostSubaccount {
        tenant: key.tenant.clone(),
        actor: key.actor(hush_model::Door::SENDPOST),
    })
}

/// The key as sent, or `None` when the header is absent or blank.
fn presented_key(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(KEY_HEADER)?.to_str().ok()?.trim();
    (!value.is_empty()).then_some(value)
}

/// Whether a request speaks SendPost, for answering paths no API serves in
/// the caller's format.
pub fn carries_key(req: &HttpRequest) -> bool {
    req.headers().contains_key(KEY_HEADER)
}
