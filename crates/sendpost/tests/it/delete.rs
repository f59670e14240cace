use actix_web::http::StatusCode;
use hush_model::{BounceClass, Kind, NewSuppression, Origin, Scope};
use serde_json::json;

use crate::support::*;

async fn seed_every_kind(engine: &hush_engine::Engine, address: &str) -> Vec<i64> {
    let kinds = [
        Kind::Manual,
        Kind::Unsubscribe,
        Kind::SpamComplaint { source: None },
        Kind::Bounce {
            class: BounceClass::Soft,
            status: None,
            reason: None,
        },
        Kind::Invalid { reason: None },
    ];
    let items = kinds
        .into_iter()
        .map(|kind| NewSuppression {
            email: email(address),
            scope: Scope::Global,
            kind,
            origin: Origin::Recipient,
            created_at: hush_engine::Engine::now(),
        })
        .collect();
    // The ids a tenant is shown, not the stored ones.
    let tenant = hush_model::TenantId::parse("demo").unwrap();
    seed(engine, items)
        .await
        .iter()
        .map(|s| engine.shown_suppression_id(&tenant, s.id))
        .collect()
}

#[actix_web::test]
async fn delete_removes_every_global_entry_of_each_address() {
    let engine = engine();
    seed_every_kind(&engine, "gone@example.com").await;
    seed_every_kind(&engine, "also@example.com").await;
    let app = app(engine.clone()).await;
    ok(&app, post(&create_body("manual", &["stays@example.com"]))).await;

    let body = json!({"suppressions": [{"email": "Gone@Example.com"}, {"email": "also@example.com"}, {"email": "never@example.com"}]});
    let reply = send(&app, delete(&body)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"message": "Suppressions have been deleted successfully"})
    );
    assert_eq!(reply.contract(), "v1");
    let rows = ok(&app, get(&around_now(""))).await;
    assert_eq!(emails(&rows), ["stays@example.com"]);
    for address in ["gone@example.com", "also@example.com"] {
        assert!(
            engine
                .entries(&tenant("demo"), &email(address))
                .await
                .unwrap()
                .is_empty()
        );
    }
    // Deleting again is no error: a retried DELETE (urllib3 retries them)
    // is harmless.
    let again = ok(&app, delete(&body)).await;
    assert_eq!(
        again["message"],
        "Suppressions have been deleted successfully"
    );
}

#[actix_web::test]
async fn legacy_callers_get_the_array_reply() {
    let engine = engine();
    let app = app(engine.clone()).await;
    let legacy_requests = [
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("X-SendPost-Public-Contract", "legacy")),
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "OpenAPI-Generator/2.0.1/python")),
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "Swagger-Codegen/1.2.2/ruby")),
        // The Go and Java SDKs, generated from SendPost's published spec
        // before the v1 contract, decode `[]DeleteSuppression`.
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "OpenAPI-Generator/1.0.1/go")),
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "OpenAPI-Generator/1.0.0/java")),
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "OpenAPI-Generator/2.0.1/Javascript")),
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "OpenAPI-Generator/1.0.0/PHP")),
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "OpenAPI-Generator/2.0.2/ruby")),
    ];
    for request in legacy_requests {
        let mut ids = seed_every_kind(&engine, "old@example.com").await;
        let reply = send(&app, request).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.contract(), "legacy");
        assert_deprecation_signals(&reply);
        let items = reply.body.as_array().unwrap();
        let mut removed: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        for item in items {
            assert_eq!(
                item["message"],
                "Suppressions have been deleted successfully"
            );
        }
        ids.sort_unstable();
        removed.sort_unstable();
        assert_eq!(removed, ids, "one item per entry removed, with its id");
    }
    // An explicit v1 wins over a 2.x User-Agent.
    let reply = send(
        &app,
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("User-Agent", "OpenAPI-Generator/2.0.1/python"))
            .insert_header(("X-SendPost-Public-Contract", "v1")),
    )
    .await;
    assert_eq!(reply.contract(), "v1");
    assert!(reply.body["message"].is_string());
    for name in ["deprecation", "sunset", "link"] {
        assert!(!reply.headers.contains_key(name), "v1 sends no {name}");
    }
    // Nothing removed is an empty legacy array.
    let reply = send(
        &app,
        delete(&json!({"suppressions": [{"email": "old@example.com"}]}))
            .insert_header(("X-SendPost-Public-Contract", "LEGACY")),
    )
    .await;
    assert_eq!(reply.body, json!([]));
}

#[actix_web::test]
async fn bad_delete_bodies_are_422_and_remove_nothing() {
    let app = app(engine()).await;
    ok(&app, post(&create_body("manual", &["kept@example.com"]))).await;
    let cases = [
        (json!({}), "suppressions"),
        (json!({"suppressions": []}), "suppressions"),
        (json!({"suppressions": [{}]}), "suppressions[0].email"),
        (
            json!({"suppressions": [{"email": "kept@example.com"}, {"email": "nope"}]}),
            "suppressions[1].email",
        ),
        (json!({"suppressions": "kept@example.com"}), "body"),
        // Objects only (the SDK's `DeleteSuppressionRequest`): a positional
        // array is not a body.
        (json!([[{"email": "kept@example.com"}]]), "body"),
        (json!([]), "body"),
        (json!({"suppressions": [["kept@example.com"]]}), "body"),
    ];
    for (body, param) in cases {
        let reply = send(&app, delete(&body)).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some(param));
    }
    let reply = send(
        &app,
        actix_web::test::TestRequest::delete()
            .uri(PATH)
            .insert_header(("X-SubAccount-ApiKey", KEY)),
    )
    .await;
    assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("body"));
    assert_eq!(ok(&app, get(COUNT)).await, json!({"count": 1}));
}

/// Under the legacy contract SendPost also sends `Deprecation: true` and a
/// `Link` with `rel="deprecation"` (SendPost API reference, introduction,
/// "API Contract Versioning").
pub fn assert_deprecation_signals(reply: &Reply) {
    let header = |name: &str| {
        reply
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {name}: {reply:?}"))
    };
    assert_eq!(header("deprecation"), "true");
    let link = header("link");
    assert!(
        link.starts_with("<https://") && link.ends_with(">; rel=\"deprecation\""),
        "{link}"
    );
}
