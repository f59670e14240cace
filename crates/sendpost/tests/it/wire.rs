//! What every response shares: auth, the envelope, the router's 404 and
//! 405, the contract echo, tolerant paths, tenant isolation.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;

use crate::support::*;

#[actix_web::test]
async fn a_missing_or_bad_key_is_401_in_the_envelope() {
    let app = app(engine()).await;
    let requests = [
        TestRequest::get().uri(&around_now("")),
        TestRequest::get()
            .uri(&around_now(""))
            .insert_header(("X-SubAccount-ApiKey", "")),
        TestRequest::get()
            .uri(&around_now(""))
            .insert_header(("X-SubAccount-ApiKey", "wrong")),
        TestRequest::post()
            .uri(PATH)
            .insert_header(("x-subaccount-apikey", "wrong"))
            .set_payload(create_body("manual", &["a@example.com"]).to_string()),
        // A key of another API is not a SendPost key.
        TestRequest::get()
            .uri(COUNT)
            .insert_header(("Authorization", format!("Bearer {KEY}"))),
        TestRequest::get()
            .uri(COUNT)
            .insert_header(("X-Account-ApiKey", KEY)),
    ];
    for request in requests {
        let reply = send(&app, request).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, None);
        assert_eq!(reply.body["error"]["code"], "authentication_failed");
        assert_eq!(reply.body["error"]["type"], "authentication_error");
        assert_eq!(reply.contract(), "v1");
    }
    // Header names match in any case.
    let reply = send(
        &app,
        TestRequest::get()
            .uri(COUNT)
            .insert_header(("x-subaccount-apikey", KEY)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(ok(&app, get(COUNT)).await, json!({"count": 0}));
}

#[actix_web::test]
async fn unknown_paths_and_methods_answer_in_the_envelope() {
    let app = app(engine()).await;
    for uri in [
        "/api/v1/subaccount/suppressions",
        "/api/v1/subaccount/suppression/count/extra",
        "/api/v1",
        "/elsewhere",
    ] {
        let reply = send(&app, get(uri)).await;
        assert_error(&reply, StatusCode::NOT_FOUND, None);
        assert_eq!(reply.body["error"]["code"], "resource_not_found");
        assert_eq!(reply.body["error"]["type"], "not_found_error");
    }
    for request in [
        TestRequest::put().uri(PATH),
        TestRequest::patch().uri(PATH),
        TestRequest::post().uri(COUNT),
        TestRequest::delete().uri(COUNT),
    ] {
        let reply = send(
            &app,
            request
                .insert_header(("X-SubAccount-ApiKey", KEY))
                .insert_header(("X-SendPost-Public-Contract", "legacy")),
        )
        .await;
        assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, None);
        assert_eq!(reply.contract(), "legacy", "echoed on errors too");
        crate::delete::assert_deprecation_signals(&reply);
    }
}

#[actix_web::test]
async fn trailing_and_double_slashes_reach_the_routes() {
    let app = app(engine()).await;
    // Legacy SDKs add a trailing slash; a host ending in `/` doubles one
    // (docs/api/sendpost.md, "Paths").
    let created = ok(
        &app,
        post(&create_body("manual", &["slash@example.com"]))
            .uri("/api/v1//subaccount/suppression/"),
    )
    .await;
    assert_eq!(created[0]["email"], "slash@example.com");
    let query = around_now("").replacen(PATH, "", 1);
    for path in [
        "/api/v1/subaccount/suppression/",
        "/api/v1//subaccount/suppression",
        "//api/v1/subaccount//suppression//",
    ] {
        let rows = ok(&app, get(&format!("{path}{query}"))).await;
        assert_eq!(emails(&rows), ["slash@example.com"], "{path}");
    }
    assert_eq!(
        ok(&app, get("/api/v1/subaccount/suppression/count/")).await,
        json!({"count": 1})
    );
}

#[actix_web::test]
async fn every_success_is_200_json_with_the_contract_echoed() {
    let app = app(engine()).await;
    let replies = [
        send(
            &app,
            post(&create_body("unsubscribe", &["echo@example.com"])),
        )
        .await,
        send(&app, get(&around_now(""))).await,
        send(&app, get(COUNT)).await,
        send(
            &app,
            delete(&json!({"suppressions": [{"email": "echo@example.com"}]})),
        )
        .await,
    ];
    for reply in replies {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.contract(), "v1");
    }
    let reply = send(
        &app,
        get(COUNT).insert_header(("X-SendPost-Public-Contract", "something-else")),
    )
    .await;
    assert_eq!(reply.contract(), "v1", "an unknown contract is the default");
}

#[actix_web::test]
async fn tenants_see_only_their_own_entries() {
    let app = app(engine()).await;
    ok(&app, post(&create_body("manual", &["mine@example.com"]))).await;
    let other = |req: TestRequest| req.insert_header(("X-SubAccount-ApiKey", OTHER_TENANT));
    let rows = ok(&app, other(TestRequest::get().uri(&around_now("")))).await;
    assert_eq!(rows, json!([]));
    let count = ok(&app, other(TestRequest::get().uri(COUNT))).await;
    assert_eq!(count, json!({"count": 0}));
    ok(
        &app,
        other(
            TestRequest::delete()
                .uri(PATH)
                .set_payload(json!({"suppressions": [{"email": "mine@example.com"}]}).to_string()),
        ),
    )
    .await;
    assert_eq!(ok(&app, get(COUNT)).await, json!({"count": 1}), "untouched");
}
