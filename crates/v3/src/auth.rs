//! Who is calling: the v3 key extractor. A handler's argument type names the
//! permission it needs (`V3Key<Read>`, `V3Key<Write>`), so no route can
//! forget to check it.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use hush_engine::access::Permission;
use hush_model::{Actor, Door, TenantId};

use crate::{Shape, V3Error, V3State};

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

/// An authenticated v3 caller with permission `P`: the tenant it acts for
/// and the response shape its key asked for.
#[derive(Debug)]
pub struct V3Key<P> {
    pub tenant: TenantId,
    pub shape: Shape,
    /// Who this caller's changes are journaled as.
    pub actor: Actor,
    _need: PhantomData<P>,
}

impl<P> V3Key<P> {
    /// Routes that exist only in SendGrid's own API answer a seed-shape key
    /// as an unknown path would.
    pub fn require_sendgrid_shape(&self) -> Result<(), V3Error> {
        match self.shape {
            Shape::Sendgrid => Ok(()),
            Shape::Seed => Err(V3Error::route_not_found()),
        }
    }
}

/// The subuser header (SendGrid docs, "On Behalf Of"); header names are
/// case-insensitive.
const ON_BEHALF_OF: &str = "on-behalf-of";

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
    let tenant = match on_behalf_of(req)? {
        None => key.tenant.clone(),
        Some(subuser) => key
            .profile
            .subusers
            .iter()
            .find(|t| t.as_str() == subuser)
            .cloned()
            .ok_or_else(|| V3Error::NotSubuser(subuser.to_owned()))?,
    };
    Ok(V3Key {
        tenant,
        shape: key.profile.shape,
        actor: key.actor(Door::V3),
        _need: PhantomData,
    })
}

/// The tenant named by `on-behalf-of`, if any. SendGrid also accepts
/// `account-id <id>` for customer accounts; hush's subusers are tenants, so
/// both forms name a tenant id.
fn on_behalf_of(req: &HttpRequest) -> Result<Option<&str>, V3Error> {
    let Some(value) = req.headers().get(ON_BEHALF_OF) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| V3Error::NotSubuser("(not text)".into()))?
        .trim();
    let value = value.strip_prefix("account-id ").unwrap_or(value).trim();
    Ok((!value.is_empty()).then_some(value))
}

/// `Authorization: Bearer <key>`, the scheme matched case-insensitively
/// (SendGrid docs, "Authentication"; a scheme is a case-insensitive token,
/// RFC 9110 §11.1).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
