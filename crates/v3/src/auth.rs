//! Who is calling: the v3 key extractor. A handler's argument type names the
//! permission it needs (`V3Key<Read>`, `V3Key<Write>`), so no route can
//! forget to check it.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use hush_engine::access::Permission;
use hush_model::TenantId;

use crate::{V3Error, V3State};

/// A permission a route needs, as a type.
pub trait Need {
    const PERMISSION: Permission;
}

/// `suppressions.read`.
#[derive(Debug)]
pub struct Read;
/// `suppressions.write`.
#[derive(Debug)]
pub struct Write;

impl Need for Read {
    const PERMISSION: Permission = Permission::Read;
}
impl Need for Write {
    const PERMISSION: Permission = Permission::Write;
}

/// An authenticated v3 caller with permission `P`.
#[derive(Debug)]
pub struct V3Key<P> {
    pub tenant: TenantId,
    _need: PhantomData<P>,
}

impl<P: Need> FromRequest for V3Key<P> {
    type Error = V3Error;
    type Future = Ready<Result<Self, V3Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate::<P>(req))
    }
}

fn authenticate<P: Need>(req: &HttpRequest) -> Result<V3Key<P>, V3Error> {
    let state = req.app_data::<web::Data<V3State>>().ok_or_else(|| {
        tracing::error!("v3 routes mounted without their state");
        V3Error::Internal
    })?;
    let token = bearer_token(req).ok_or(V3Error::MissingKey)?;
    let key = state.keys.resolve(token).ok_or(V3Error::UnknownKey)?;
    if !key.permissions.allows(P::PERMISSION) {
        return Err(V3Error::Forbidden(P::PERMISSION));
    }
    Ok(V3Key {
        tenant: key.tenant.clone(),
        _need: PhantomData,
    })
}

/// `Authorization: Bearer <key>`, the scheme matched case-insensitively
/// (specs/sendgrid-v3.md §5.2).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
