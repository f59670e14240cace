//! SendPost's response contract versions (SendPost API reference,
//! introduction, "API Contract Versioning"; docs/api/sendpost.md): `v1`,
//! which SDK 3.0.0 decodes, and `legacy`, which SDK 2.x and the older
//! swagger-codegen SDKs decode. Only the delete reply differs between them
//! here; the suppression objects carry the fields of both.

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::SendPostError;

/// The header a client names its contract in, and that every response
/// echoes with the contract applied ("API Contract Versioning").
pub const CONTRACT_HEADER: &str = "x-sendpost-public-contract";

/// The `Link` sent with the legacy contract: SendPost's API introduction,
/// where its contract versioning and the legacy to v1 changes are
/// documented.
pub const DEPRECATION_LINK: &str =
    "<https://docs.sendpost.io/api-reference/introduction>; rel=\"deprecation\"";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    V1,
    Legacy,
}

impl Contract {
    /// The contract a request gets: the one it names, else `legacy` for a
    /// generated SDK built before the v1 contract (told by its User-Agent),
    /// else `v1`.
    ///
    /// SendPost itself defaults to `legacy` until a sunset date ("API
    /// Contract Versioning"), but SDK 3.0.0 sends no contract header and
    /// breaks on the legacy delete reply, so hush defaults to `v1`
    /// (docs/api/sendpost.md, "Contracts"). An explicit header wins over the
    /// User-Agent; a value hush does not know is treated as absent.
    pub fn of(headers: &HeaderMap) -> Self {
        let named = headers
            .get(CONTRACT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        match named {
            Some(v) if v.eq_ignore_ascii_case("legacy") => return Self::Legacy,
            Some(v) if v.eq_ignore_ascii_case("v1") => return Self::V1,
            _ => {}
        }
        let agent = headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if predates_v1(agent) {
            Self::Legacy
        } else {
            Self::V1
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Legacy => "legacy",
        }
    }

    /// Sets the echo header on a response and, under `legacy`, the
    /// deprecation signals SendPost sends with that contract ("API Contract
    /// Versioning"): `Deprecation: true` and a `Link` to the contract's
    /// documentation. SendPost's `Sunset` carries its own cut-over date,
    /// which its docs do not give; hush has none of its own, so it sends no
    /// `Sunset` rather than invent one (docs/api/sendpost.md, "Known
    /// differences").
    pub fn stamp(self, headers: &mut HeaderMap) {
        headers.insert(
            HeaderName::from_static(CONTRACT_HEADER),
            HeaderValue::from_static(self.as_str()),
        );
        if self == Self::Legacy {
            headers.insert(
                HeaderName::from_static("deprecation"),
                HeaderValue::from_static("true"),
            );
            headers.insert(
                HeaderName::from_static("link"),
                HeaderValue::from_static(DEPRECATION_LINK),
            );
        }
    }
}

impl FromRequest for Contract {
    type Error = SendPostError;
    type Future = Ready<Result<Self, SendPostError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req.headers())))
    }
}

/// Middleware for the SendPost scope: every response, errors and the
/// router's 404 and 405 included, says which contract it was served under.
pub async fn echo(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let contract = Contract::of(req.headers());
    match next.call(req).await {
        Ok(res) => {
            let mut res = res.map_into_boxed_body();
            contract.stamp(res.headers_mut());
            Ok(res)
        }
        // Handlers and extractors answer in the envelope themselves; this
        // catches whatever else fails, so it too gets the envelope.
        Err(err) => {
            let mut response = match err.as_error::<SendPostError>() {
                Some(known) => known.error_response(),
                None => {
                    tracing::error!(request_id = %hush_engine::request::current(), error = %err, "sendpost request failed outside a handler");
                    SendPostError::Internal.error_response()
                }
            };
            contract.stamp(response.headers_mut());
            Err(InternalError::from_response(err.to_string(), response).into())
        }
    }
}

/// The first SDK release generated from the v1 contract: the Python SDK
/// 3.0.0, whose delete model is the `{"message"}` object
/// (`DeleteSuppression200Response`).
const FIRST_V1_SDK_MAJOR: u64 = 3;

/// Whether a User-Agent is one of SendPost's generated SDKs from before the
/// v1 contract, in any language: every one of them decodes the legacy
/// delete array (docs/api/sendpost.md, "Contracts").
///
/// Generated clients name themselves `OpenAPI-Generator/<sdk
/// version>/<language>` (openapi-generator's default `httpUserAgent`).
/// Every SendPost SDK before Python 3.0.0 (Go, Java, JavaScript, PHP, Ruby
/// and Python, 1.x and 2.x, in the current and the 2023 repositories)
/// decodes the delete reply as an array; the version in the agent is not
/// always the package's, but it is below 3 in all of them
/// (docs/api/sendpost.md lists each). The 2020 SDKs were generated by
/// swagger-codegen (`Swagger-Codegen/1.0.0/<language>`) and predate v1. An agent that is neither, or
/// whose version does not parse, is no generated SDK of SendPost's, and
/// gets the default.
fn predates_v1(agent: &str) -> bool {
    let agent = agent.trim_start();
    let Some((generator, rest)) = agent.split_once('/') else {
        return false;
    };
    if generator.eq_ignore_ascii_case("swagger-codegen") {
        return true;
    }
    if !generator.eq_ignore_ascii_case("openapi-generator") {
        return false;
    }
    let version = rest.split(['/', ' ']).next().unwrap_or_default();
    version
        .split('.')
        .next()
        .and_then(|major| major.parse::<u64>().ok())
        .is_some_and(|major| major < FIRST_V1_SDK_MAJOR)
}

/// An error response with the contract echoed, for answers given outside
/// the scope (the gateway's fallback).
pub fn respond(req: &HttpRequest, err: &SendPostError) -> HttpResponse {
    let mut res = err.error_response();
    Contract::of(req.headers()).stamp(res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(agent: &str, named: Option<&str>) -> Contract {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(agent).unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        if let Some(named) = named {
            headers.insert(
                HeaderName::from_static(CONTRACT_HEADER),
                HeaderValue::from_str(named).unwrap_or_else(|_| HeaderValue::from_static("")),
            );
        }
        Contract::of(&headers)
    }

    #[test]
    fn generated_sdks_before_v1_get_legacy_in_every_language() {
        // Every User-Agent of SendPost's generated SDKs before Python 3.0.0,
        // as their sources set it (docs/api/sendpost.md, "Contracts").
        for agent in [
            "OpenAPI-Generator/2.0.1/python",
            "OpenAPI-Generator/2.0.0/python",
            "OpenAPI-Generator/1.1.1/python",
            "OpenAPI-Generator/1.0.1/go",
            "OpenAPI-Generator/1.0.0/go",
            "OpenAPI-Generator/1.2.2/go",
            "OpenAPI-Generator/1.0.0/java",
            "OpenAPI-Generator/2.0.1/Javascript",
            "OpenAPI-Generator/1.2.2/Javascript",
            "OpenAPI-Generator/1.0.0/PHP",
            "OpenAPI-Generator/1.2.2/PHP",
            "OpenAPI-Generator/2.0.2/ruby",
            "OpenAPI-Generator/1.2.2/ruby",
            "openapi-generator/2.9.9/rust",
            "Swagger-Codegen/1.0.0/rust",
            "Swagger-Codegen/1.0.0/java",
            "Swagger-Codegen/1.0.0/go",
        ] {
            assert_eq!(contract(agent, None), Contract::Legacy, "{agent}");
        }
    }

    #[test]
    fn v1_sdks_and_other_agents_get_v1() {
        for agent in [
            "OpenAPI-Generator/3.0.0/python",
            "OpenAPI-Generator/3.1.0/go",
            "OpenAPI-Generator/10.0.0/java",
            "OpenAPI-Generator/x.y/go",
            "OpenAPI-Generator",
            "python-requests/2.32.3",
            "curl/8.5.0",
            "Go-http-client/1.1",
            "",
        ] {
            assert_eq!(contract(agent, None), Contract::V1, "{agent:?}");
        }
    }

    #[test]
    fn the_named_contract_wins_over_the_agent() {
        assert_eq!(
            contract("OpenAPI-Generator/1.0.1/go", Some("v1")),
            Contract::V1
        );
        assert_eq!(
            contract("OpenAPI-Generator/3.0.0/python", Some("Legacy")),
            Contract::Legacy
        );
        assert_eq!(
            contract("OpenAPI-Generator/1.0.1/go", Some("v2")),
            Contract::Legacy,
            "an unknown name is treated as absent"
        );
    }
}
