//! Who is calling the admin API: a bearer token matched against every
//! admin token in constant time, and the scope a route needs as a type.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use hush_engine::access::TokenDigest;
use hush_model::{Actor, Door, TenantId};

use crate::{AdminError, AdminState, AdminToken};

/// A scope a route needs.
pub trait AdminScope {
    const NAME: &'static str;
    fn granted(token: &AdminToken) -> bool;
}

/// `admin.read`.
#[derive(Debug)]
pub struct Read;
/// `admin.write`.
#[derive(Debug)]
pub struct Write;

impl AdminScope for Read {
    const NAME: &'static str = "admin.read";
    fn granted(token: &AdminToken) -> bool {
        token.read
    }
}

impl AdminScope for Write {
    const NAME: &'static str = "admin.write";
    fn granted(token: &AdminToken) -> bool {
        token.write
    }
}

/// An operator holding a token with scope `S`.
#[derive(Debug)]
pub struct AdminCaller<S> {
    pub token: AdminToken,
    _scope: PhantomData<S>,
}

impl<S> AdminCaller<S> {
    /// Whether the token may see a tenant.
    pub fn sees(&self, tenant: &TenantId) -> bool {
        self.token
            .tenants
            .as_ref()
            .is_none_or(|allowed| allowed.contains(tenant))
    }

    /// What a change this caller makes is journaled as.
    pub fn actor(&self, door: Door) -> Actor {
        let actor = Actor::new(door).with_key(&*self.token.name);
        match hush_engine::request::current_id() {
            Some(id) => actor.with_request_id(&*id),
            None => actor,
        }
    }
}

impl<S: AdminScope> FromRequest for AdminCaller<S> {
    type Error = AdminError;
    type Future = Ready<Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate::<S>(req))
    }
}

fn authenticate<S: AdminScope>(req: &HttpRequest) -> Result<AdminCaller<S>, AdminError> {
    let state = req.app_data::<web::Data<AdminState>>().ok_or_else(|| {
        tracing::error!("admin routes mounted without their state");
        AdminError::Internal
    })?;
    let presented = bearer_token(req).ok_or(AdminError::Unauthorized)?;
    let digest = TokenDigest::of(presented);
    // Every token is compared, whichever matches: the time taken says
    // nothing about which, or how many, there are.
    let mut found = None;
    for token in &state.tokens {
        if token.digest.matches(&digest) && found.is_none() {
            found = Some(token);
        }
    }
    let token = found.ok_or(AdminError::Unauthorized)?;
    if !S::granted(token) {
        return Err(AdminError::Forbidden(S::NAME));
    }
    Ok(AdminCaller {
        token: token.clone(),
        _scope: PhantomData,
    })
}

/// `Authorization: Bearer <token>`, the scheme case-insensitive (RFC 9110
/// §11.1).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
