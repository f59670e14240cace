//! Who is calling: the server-token extractor. A handler that takes a
//! [`PostmarkServer`] cannot run for a caller without a valid token.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use hush_model::TenantId;

use crate::{PostmarkError, PostmarkState};

/// The header every endpoint here needs (Postmark API docs, "API overview").
/// Header names are matched case-insensitively by the HTTP layer.
pub const SERVER_TOKEN_HEADER: &str = "X-Postmark-Server-Token";

/// An authenticated Postmark caller: a server token resolved to its tenant.
/// A hush tenant is what Postmark calls a server.
#[derive(Debug)]
pub struct PostmarkServer {
    pub tenant: TenantId,
    /// Who this caller's changes are journaled as.
    pub actor: hush_model::Actor,
}

impl FromRequest for PostmarkServer {
    type Error = PostmarkError;
    type Future = Ready<Result<Self, PostmarkError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<PostmarkServer, PostmarkError> {
    let state = req.app_data::<web::Data<PostmarkState>>().ok_or_else(|| {
        tracing::error!("postmark routes mounted without their state");
        PostmarkError::Internal
    })?;
    let token = server_token(req).ok_or(PostmarkError::MissingToken)?;
    let key = state
        .keys
        .resolve(token)
        .ok_or(PostmarkError::InvalidToken)?;
    Ok(PostmarkServer {
        tenant: key.tenant.clone(),
        actor: key.actor(hush_model::Door::POSTMARK),
    })
}

/// The token, trimmed as postmark.js trims it.
fn server_token(req: &HttpRequest) -> Option<&str> {
    let token = req
        .headers()
        .get(SERVER_TOKEN_HEADER)?
        .to_str()
        .ok()?
        .trim();
    (!token.is_empty()).then_some(token)
}

/// Postmark's account-level header (Postmark API docs, "API overview"). hush
/// serves no account endpoints, but a caller sending it speaks Postmark.
pub const ACCOUNT_TOKEN_HEADER: &str = "X-Postmark-Account-Token";

/// Whether a request speaks Postmark, for the gateway's fallback: it carries
/// a Postmark token header, whatever its value.
pub fn speaks_postmark(req: &HttpRequest) -> bool {
    req.headers().contains_key(SERVER_TOKEN_HEADER)
        || req.headers().contains_key(ACCOUNT_TOKEN_HEADER)
}
