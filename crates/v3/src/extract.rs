//! Reading v3 requests: JSON bodies, query strings and emails in paths, each
//! failure a 400 in the v3 envelope naming the input.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use hush_model::Email;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::{Shape, V3Error, V3State};

/// A JSON body. The Content-Type is not checked: the SDKs send
/// `application/json` on every request, bodies or not (@sendgrid/client
/// always; sendgrid-python once any request had a body, as its headers are
/// shared), and curl users often send none.
#[derive(Debug)]
pub struct V3Json<T>(pub T);

/// A JSON body that may be absent (bulk DELETE takes its selector either in
/// the query or in a body).
#[derive(Debug)]
pub struct OptionalV3Json<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for V3Json<T> {
    type Error = V3Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, V3Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = OptionalV3Json::<T>::from_request(req, payload);
        Box::pin(async move {
            body.await?
                .0
                .map(V3Json)
                .ok_or_else(|| V3Error::bad_request("body", "a JSON request body is required"))
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalV3Json<T> {
    type Error = V3Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, V3Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<V3State>>()
            .map_or(1 << 20, |state| state.body_limit);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes
                .await
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => V3Error::PayloadTooLarge(limit),
                    _ if hush_http::is_body_timeout(&err) => V3Error::RequestTimeout,
                    _ => V3Error::bad_request("body", "the request body could not be read"),
                })?;
            match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
                None => Ok(Self(None)),
                Some(b'{') => parse_object(&bytes).map(|value| Self(Some(value))),
                // Every v3 body is an object (docs/api/v3.md): an array or a
                // bare value is not read positionally into one.
                Some(_) => Err(V3Error::bad_request(
                    "body",
                    "the request body must be a JSON object",
                )),
            }
        })
    }
}

/// Reads a JSON object into `T`, tracking where in it a failure is
/// (serde_path_to_error), so the error names the field.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, V3Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = match err.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
            _ => None,
        };
        json_error(field, err.inner())
    })?;
    de.end().map_err(|err| json_error(None, &err))?;
    Ok(value)
}

/// A 400 naming the field, in plain words: serde's own messages name Rust
/// types ("expected struct NewBounce") and positions, which mean nothing to
/// a client.
fn json_error(field: Option<String>, err: &serde_json::Error) -> V3Error {
    use serde_json::error::Category;
    let full = err.to_string();
    // serde_json appends " at line L column C".
    let message = full
        .rfind(" at line ")
        .map_or(full.as_str(), |at| &full[..at]);
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => V3Error::bad_request(
            "body",
            format!(
                "invalid JSON body: it breaks off or is malformed at line {}, column {}",
                err.line(),
                err.column()
            ),
        ),
        Category::Data => {
            // A missing field is reported at the object that lacks it.
            let quoted = message.split('`').nth(1).map(str::to_owned);
            if let (Some(name), true) = (&quoted, message.starts_with("missing field")) {
                return V3Error::bad_request(name, format!("{name} is required"));
            }
            let field = field.or(quoted.filter(|_| message.starts_with("unknown field")));
            let plain = plain_types(message);
            match field {
                Some(field) => V3Error::bad_request(&field, format!("{field}: {plain}")),
                None => V3Error::bad_request("body", plain),
            }
        }
    }
}

/// serde's words in JSON's rather than Rust's: no type names.
fn plain_types(message: &str) -> String {
    let message = message
        .replace("a sequence", "an array")
        .replace("a map", "an object");
    let mut words: Vec<String> = Vec::new();
    let mut iter = message.split(' ');
    while let Some(word) = iter.next() {
        let (bare, comma) = word
            .strip_suffix(',')
            .map_or((word, ""), |bare| (bare, ","));
        let plain = match bare {
            // A Rust type's name follows.
            "struct" | "tuple" => {
                iter.next();
                "a JSON object"
            }
            "enum" => {
                iter.next();
                "one of the allowed values"
            }
            "sequence" => "an array",
            "map" => "an object",
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
            | "i128" | "isize" => "an integer",
            "f32" | "f64" => "a number",
            other => other,
        };
        words.push(format!("{plain}{comma}"));
    }
    words.join(" ")
}

/// The query string's pairs, decoded as a form (`+` is a space there, and
/// `%2B` a plus, as sendgrid-python and @sendgrid/client encode them).
#[derive(Debug)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn from_request(req: &HttpRequest) -> Self {
        Self(
            form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The last value of a parameter; Node sends `id[]=` for repeated keys,
    /// so a trailing `[]` is ignored.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key.strip_suffix("[]").unwrap_or(key) == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated parameter, in order: Python sends `id=1&id=2`,
    /// Node `id[]=1&id[]=2` (sendgrid-python and @sendgrid/client).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key.strip_suffix("[]").unwrap_or(key) == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// An integer parameter within bounds, with a message naming it.
    pub fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, V3Error> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        match raw.trim().parse::<i64>() {
            Ok(value) if (min..=max).contains(&value) => Ok(Some(value)),
            _ if max == i64::MAX => Err(V3Error::bad_request(
                name,
                format!("{name} must be an integer of at least {min}; got {raw:?}"),
            )),
            _ => Err(V3Error::bad_request(
                name,
                format!("{name} must be an integer from {min} to {max}; got {raw:?}"),
            )),
        }
    }
}

/// An email in a path segment. It arrives raw (`a+b@x.com`) or
/// percent-encoded (`a%2Bb%40x.com`); the router has decoded all but `%2B`,
/// `%25` and `%2F`, so one more decode gives the address, and a `+` stays a
/// `+` (sendgrid-python sends paths unencoded, `Bob+tag@Example.com`).
pub fn path_email(req: &HttpRequest) -> Result<Email, V3Error> {
    // Every `{email}` is its path's last segment. It is read from the URI
    // as sent: the router's own decoding replaces escapes that are not
    // UTF-8 with U+FFFD, which would name another address than the one
    // sent; such an address is refused instead.
    let raw = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .filter(|_| req.match_info().get("email").is_some())
        .unwrap_or_default();
    let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| {
        V3Error::bad_request(
            "email",
            "the email address in the path is not valid UTF-8 once percent-decoded",
        )
    })?;
    Email::parse(&decoded).map_err(|err| V3Error::bad_request("email", err.to_string()))
}

/// The address of a single-address read, or `None` where SendGrid's shape
/// answers as for an absent address: SendGrid clients treat a 400 there as
/// an outage, and an address hush cannot store is one that no list holds
/// (SendGrid's `[]` and `{}`: sendgrid/sendgrid-php#354, sendgrid/docs#992).
/// The seed shape names the fault.
pub fn path_email_to_read(req: &HttpRequest, shape: Shape) -> Result<Option<Email>, V3Error> {
    match (path_email(req), shape) {
        (Ok(email), _) => Ok(Some(email)),
        (Err(_), Shape::Sendgrid) => Ok(None),
        (Err(err), Shape::Seed) => Err(err),
    }
}

/// An email in a body or query, with the field named on failure.
pub fn body_email(field: &str, raw: &str) -> Result<Email, V3Error> {
    Email::parse(raw).map_err(|err| V3Error::bad_request(field, format!("{raw:?}: {err}")))
}

/// The group a `{group_id}` of a path names: the number the tenant was
/// shown for it (`Engine::shown_group_id`). A number the tenant cannot have
/// been shown names no group: it becomes [`NO_GROUP`], which no store
/// holds, so every handler answers as it does for an unknown group (a 404,
/// or SendGrid's fall-back to the global list).
pub fn path_group(
    req: &HttpRequest,
    engine: &hush_engine::Engine,
    tenant: &hush_model::TenantId,
) -> Result<hush_model::GroupId, V3Error> {
    let raw = req.match_info().get("group_id").unwrap_or_default();
    let shown = raw.parse::<i64>().map_err(|_| {
        V3Error::bad_request(
            "group_id",
            format!("the group id must be a number; got {raw:?}"),
        )
    })?;
    Ok(engine
        .group_id_from_shown(tenant, shown)
        .unwrap_or(NO_GROUP))
}

/// A group id no store assigns (they start at 1).
const NO_GROUP: hush_model::GroupId = hush_model::GroupId(-1);
