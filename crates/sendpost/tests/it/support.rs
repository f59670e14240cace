use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::NormalizePath;
use actix_web::{App, test, web};
use hush_engine::Engine;
use hush_engine::access::{ApiKey, KeyTable, Permissions, TokenDigest};
use hush_model::{Email, NewSuppression, Suppression, TenantId};
use hush_sendpost::{SendPostProfile, SendPostState};
use serde_json::{Value, json};

pub const KEY: &str = "sp-demo-key";
pub const OTHER_TENANT: &str = "sp-other-key";
pub const BODY_LIMIT: usize = 4096;
pub const PATH: &str = "/api/v1/subaccount/suppression";
pub const COUNT: &str = "/api/v1/subaccount/suppression/count";

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

pub fn engine() -> Engine {
    Engine::new(Arc::new(hush_store::MemoryBackend::new()))
}

fn keys() -> KeyTable<SendPostProfile> {
    let mut keys = KeyTable::default();
    for (token, tenant_id) in [(KEY, "demo"), (OTHER_TENANT, "other")] {
        keys.insert(
            TokenDigest::of(token),
            ApiKey {
                name: "test#1".into(),
                tenant: tenant(tenant_id),
                permissions: Permissions::ALL,
                profile: SendPostProfile::default(),
            },
        );
    }
    keys
}

pub async fn app(
    engine: Engine,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    let state = web::Data::new(SendPostState {
        engine,
        keys: keys(),
        body_limit: BODY_LIMIT,
    });
    test::init_service(
        App::new()
            .wrap(NormalizePath::trim())
            .service(hush_sendpost::scope(state))
            .default_service(web::to(hush_sendpost::not_found)),
    )
    .await
}

/// A response as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn contract(&self) -> &str {
        self.headers
            .get("x-sendpost-public-contract")
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no contract header: {self:?}"))
    }
}

/// Sends a request and returns the status, headers and JSON body, checking
/// that every answer is JSON with an echoed contract.
pub async fn send<S, B>(app: &S, req: test::TestRequest) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    assert_eq!(
        headers.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "status {status}"
    );
    let reply = Reply {
        status,
        headers,
        body: serde_json::from_slice(&body).unwrap(),
    };
    reply.contract();
    reply
}

/// Sends a request expecting 200; returns the body.
pub async fn ok<S, B>(app: &S, req: test::TestRequest) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let reply = send(app, req).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

pub fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("X-SubAccount-ApiKey", KEY))
}

pub fn post(body: &Value) -> test::TestRequest {
    with_body(test::TestRequest::post(), body)
}

pub fn delete(body: &Value) -> test::TestRequest {
    with_body(test::TestRequest::delete(), body)
}

fn with_body(req: test::TestRequest, body: &Value) -> test::TestRequest {
    req.uri(PATH)
        .insert_header(("X-SubAccount-ApiKey", KEY))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

/// `{"reason":[{"email":…}, …]}`.
pub fn create_body(reason: &str, emails: &[&str]) -> Value {
    json!({ reason: emails.iter().map(|e| json!({"email": e})).collect::<Vec<_>>() })
}

/// A listing query over the UTC days around now, so no test depends on the
/// date it runs.
pub fn around_now(extra: &str) -> String {
    let now = Engine::now().unix_seconds();
    format!(
        "{PATH}?from={}&to={}{extra}",
        utc_date(now - 86_400),
        utc_date(now + 86_400)
    )
}

/// `YYYY-MM-DD` of a unix second, in UTC.
pub fn utc_date(seconds: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap()
        .date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Asserts the SendPost error envelope with this param; returns the
/// message.
pub fn assert_error(reply: &Reply, status: StatusCode, param: Option<&str>) -> String {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    let error = reply.body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("not an envelope: {}", reply.body));
    let keys: Vec<_> = error.keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "message", "param", "type"], "{}", reply.body);
    assert_eq!(error["param"].as_str(), param, "{}", reply.body);
    assert!(error["code"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(error["type"].as_str().is_some_and(|t| !t.is_empty()));
    let message = error["message"].as_str().unwrap();
    assert!(!message.is_empty());
    message.to_owned()
}

/// Stores entries directly, as another API or an import would.
pub async fn seed(engine: &Engine, items: Vec<NewSuppression>) -> Vec<Suppression> {
    engine
        .add(&tenant("demo"), items, &hush_engine::conformance::tester())
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            hush_engine::AddOutcome::Added { suppression, .. } => suppression,
            other => panic!("{other:?}"),
        })
        .collect()
}

pub fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

/// The emails of a listing, in order.
pub fn emails(rows: &Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect()
}
