use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::NormalizePath;
use actix_web::{App, test, web};
use hush_engine::Engine;
use hush_engine::access::{ApiKey, KeyTable, Permission, Permissions, TokenDigest};
use hush_model::TenantId;
use hush_v3::{Shape, V3Profile, V3State};
use serde_json::Value;

pub const WRITER: &str = "SG.writer";
pub const READER: &str = "SG.reader";
pub const OTHER_TENANT: &str = "SG.other";
/// `demo`'s keys in the `sendgrid` shape; the writer may act for `sub`.
pub const SG_WRITER: &str = "SG.sg-writer";
pub const SG_READER: &str = "SG.sg-reader";
/// A key of the subuser `sub` itself.
pub const SUB_WRITER: &str = "SG.sub";
pub const BODY_LIMIT: usize = 4096;
pub const IMPORT_LIMIT: u64 = 1 << 20;

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

pub fn engine() -> Engine {
    Engine::new(Arc::new(hush_store::MemoryBackend::new()))
}

fn keys() -> KeyTable<V3Profile> {
    let mut keys = KeyTable::default();
    let mut add = |token: &str, tenant_id: &str, permissions: Permissions, profile: V3Profile| {
        keys.insert(
            TokenDigest::of(token),
            ApiKey {
                name: "test#1".into(),
                tenant: tenant(tenant_id),
                permissions,
                profile,
            },
        );
    };
    let read_only = Permissions::from_list(&[Permission::Read]);
    add(WRITER, "demo", Permissions::ALL, V3Profile::default());
    add(READER, "demo", read_only, V3Profile::default());
    add(
        OTHER_TENANT,
        "other",
        Permissions::ALL,
        V3Profile::default(),
    );
    let sendgrid = V3Profile {
        shape: Shape::Sendgrid,
        subusers: vec![tenant("sub")],
    };
    add(SG_WRITER, "demo", Permissions::ALL, sendgrid.clone());
    add(SG_READER, "demo", read_only, sendgrid);
    add(SUB_WRITER, "sub", Permissions::ALL, V3Profile::default());
    keys
}

pub async fn app(
    engine: Engine,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    app_with_import_limit(engine, IMPORT_LIMIT).await
}

pub async fn app_with_import_limit(
    engine: Engine,
    import_limit: u64,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    app_with_limits(engine, BODY_LIMIT, import_limit).await
}

pub async fn app_with_limits(
    engine: Engine,
    body_limit: usize,
    import_limit: u64,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    let state = web::Data::new(V3State {
        engine,
        keys: keys(),
        body_limit,
        import_limit,
    });
    test::init_service(
        App::new()
            .wrap(NormalizePath::trim())
            .service(hush_v3::scope(state))
            .default_service(web::to(hush_v3::not_found)),
    )
    .await
}

/// Sends a request and returns the status and the parsed JSON body (`Null`
/// for an empty one), checking that any body is JSON.
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
    if body.is_empty() {
        return (status, Value::Null);
    }
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "status {status}"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

pub fn get(uri: &str, key: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {key}")))
}

pub fn post(uri: &str, key: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

pub fn patch(uri: &str, key: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::patch()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

pub fn csv(uri: &str, key: &str, body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "text/csv"))
        .set_payload(body.to_owned())
}

pub fn delete(uri: &str, key: &str) -> test::TestRequest {
    test::TestRequest::delete()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {key}")))
}

/// Asserts the v3 error envelope: one error with this field and a message.
pub fn assert_envelope(body: &Value, field: Option<&str>) -> String {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("not an envelope: {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["field"].as_str(), field, "{body}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(!message.is_empty());
    message.to_owned()
}
