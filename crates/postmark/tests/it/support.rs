use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::NormalizePath;
use actix_web::{App, test, web};
use hush_engine::Engine;
use hush_engine::access::{ApiKey, KeyTable, Permissions, TokenDigest};
use hush_model::{
    Email, GroupId, GroupKey, Kind, NewSuppression, Origin, Scope, TenantId, Timestamp,
};
use hush_postmark::{PostmarkProfile, PostmarkState};
use serde_json::{Value, json};

pub const TOKEN: &str = "server-token";
pub const OTHER_TOKEN: &str = "other-server-token";
pub const BODY_LIMIT: usize = 16 * 1024;

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

pub fn demo() -> TenantId {
    tenant("demo")
}

/// An engine whose tenants `demo` and `other` have what every tenant has.
pub async fn engine() -> Engine {
    let engine = Engine::new(Arc::new(hush_store::MemoryBackend::new()));
    engine.bootstrap_tenant(&demo()).await.unwrap();
    engine.bootstrap_tenant(&tenant("other")).await.unwrap();
    engine
}

fn keys() -> KeyTable<PostmarkProfile> {
    let mut keys = KeyTable::default();
    for (token, tenant_id) in [(TOKEN, "demo"), (OTHER_TOKEN, "other")] {
        keys.insert(
            TokenDigest::of(token),
            ApiKey {
                name: "test#1".into(),
                tenant: tenant(tenant_id),
                permissions: Permissions::ALL,
                profile: PostmarkProfile::default(),
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
    let state = web::Data::new(PostmarkState {
        engine,
        keys: keys(),
        body_limit: BODY_LIMIT,
    });
    test::init_service(
        App::new()
            .wrap(NormalizePath::trim())
            .service(hush_postmark::scope(state))
            .default_service(web::to(hush_postmark::not_found)),
    )
    .await
}

/// Sends a request and returns the status and the parsed JSON body, checking
/// that every answer, success or error, is JSON (docs/api/postmark.md,
/// "Conventions").
pub async fn call<S, B>(app: &S, req: test::TestRequest) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = test::read_body(res).await;
    assert!(!body.is_empty(), "status {status}: empty body");
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "status {status}"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

pub fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("X-Postmark-Server-Token", TOKEN))
        .insert_header(("Accept", "application/json"))
}

pub fn post(uri: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("X-Postmark-Server-Token", TOKEN))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

pub fn patch(uri: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::patch()
        .uri(uri)
        .insert_header(("X-Postmark-Server-Token", TOKEN))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

/// A create or delete body for these addresses.
pub fn addresses(list: &[&str]) -> Value {
    json!({"Suppressions": list.iter().map(|a| json!({"EmailAddress": a})).collect::<Vec<_>>()})
}

/// Asserts Postmark's error envelope with this status and code; returns the
/// message.
pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: u64) -> String {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["ErrorCode"].as_u64(), Some(code), "{body}");
    let message = body["Message"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert!(!message.is_empty());
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    message.to_owned()
}

pub fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

pub async fn group_id(engine: &Engine, key: &str) -> GroupId {
    engine
        .group_by_key(&demo(), &GroupKey::parse(key).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Stores one entry for `demo` directly through the engine, as another API
/// or an import would.
pub async fn seed(
    engine: &Engine,
    address: &str,
    scope: Scope,
    kind: Kind,
    origin: Origin,
    created: &str,
) {
    engine
        .add(
            &demo(),
            vec![NewSuppression {
                email: email(address),
                scope,
                kind,
                origin,
                created_at: Timestamp::parse_rfc3339(created).unwrap(),
            }],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
}

/// The `(EmailAddress, Status, Message)` of each item of a create or delete.
pub fn statuses(body: &Value) -> Vec<(String, String, Option<String>)> {
    body["Suppressions"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|item| {
            assert_eq!(item.as_object().unwrap().len(), 3, "{item}");
            assert!(
                item.get("Message").is_some(),
                "Message must be present: {item}"
            );
            (
                item["EmailAddress"].as_str().unwrap().to_owned(),
                item["Status"].as_str().unwrap().to_owned(),
                item["Message"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The `(EmailAddress, SuppressionReason, Origin)` rows of a dump, checking
/// each row's shape.
pub fn rows(body: &Value) -> Vec<(String, String, String)> {
    body["Suppressions"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|row| {
            assert_eq!(row.as_object().unwrap().len(), 4, "{row}");
            let created = row["CreatedAt"].as_str().unwrap();
            assert!(created.ends_with("+00:00"), "{created}");
            Timestamp::parse_rfc3339(created).unwrap();
            (
                row["EmailAddress"].as_str().unwrap().to_owned(),
                row["SuppressionReason"].as_str().unwrap().to_owned(),
                row["Origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub const NO_AUTHORITY: &str = "You do not have the required authority to change this suppression.";
pub const INVALID_ADDRESS: &str = "An invalid email address was provided.";
