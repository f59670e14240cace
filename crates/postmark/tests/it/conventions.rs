//! Wire conventions every Postmark route shares (docs/api/postmark.md,
//! "Conventions"): the token, JSON errors with both keys, the router's 404
//! and 405, bodies and Content-Types as the SDKs send them.

use actix_web::http::StatusCode;
use actix_web::test;
use serde_json::json;

use crate::support::*;

const DUMP: &str = "/message-streams/outbound/suppressions/dump";

#[actix_web::test]
async fn a_missing_or_wrong_token_is_401_code_10() {
    let app = app(engine().await).await;
    let (status, body) = call(&app, test::TestRequest::get().uri(DUMP)).await;
    let message = assert_error(status, &body, StatusCode::UNAUTHORIZED, 10);
    assert_eq!(message, "Request does not contain a valid Server token.");
    for token in ["bad-token", "", "   "] {
        let req = test::TestRequest::get()
            .uri(DUMP)
            .insert_header(("X-Postmark-Server-Token", token));
        let (status, body) = call(&app, req).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, 10);
    }
    let req = test::TestRequest::get()
        .uri(DUMP)
        .insert_header(("Authorization", format!("Bearer {TOKEN}")));
    let (status, body) = call(&app, req).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, 10);
    // Every route checks it, before anything else.
    for req in [
        test::TestRequest::get().uri("/message-streams"),
        test::TestRequest::get().uri("/message-streams/nope"),
        test::TestRequest::post().uri("/message-streams/outbound/suppressions"),
        test::TestRequest::post().uri("/message-streams/outbound/suppressions/delete"),
        test::TestRequest::post().uri("/message-streams"),
        test::TestRequest::patch().uri("/message-streams/outbound"),
        test::TestRequest::post().uri("/message-streams/outbound/archive"),
        test::TestRequest::post().uri("/message-streams/outbound/unarchive"),
    ] {
        let (status, body) = call(&app, req).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, 10);
    }
}

#[actix_web::test]
async fn the_header_name_and_token_spacing_do_not_matter() {
    let app = app(engine().await).await;
    for (name, value) in [
        ("x-postmark-server-token", TOKEN.to_owned()),
        ("X-POSTMARK-SERVER-TOKEN", format!("  {TOKEN} ")),
    ] {
        let req = test::TestRequest::get()
            .uri(DUMP)
            .insert_header((name, value));
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[actix_web::test]
async fn the_routers_404_and_405_are_postmark_errors() {
    let app = app(engine().await).await;
    for uri in [
        "/message-streams/outbound/suppressions/dump/more",
        "/message-streams/a/b/c/d/e",
        "/nowhere",
    ] {
        let (status, body) = call(&app, get(uri)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, 0);
    }
    for req in [
        test::TestRequest::delete().uri("/message-streams"),
        test::TestRequest::put().uri("/message-streams/outbound"),
        test::TestRequest::delete().uri("/message-streams/outbound"),
        test::TestRequest::get().uri("/message-streams/outbound/archive"),
        test::TestRequest::get().uri("/message-streams/outbound/unarchive"),
        test::TestRequest::get().uri("/message-streams/outbound/suppressions"),
        test::TestRequest::post().uri(DUMP),
        test::TestRequest::get().uri("/message-streams/outbound/suppressions/delete"),
    ] {
        let (status, body) =
            call(&app, req.insert_header(("X-Postmark-Server-Token", TOKEN))).await;
        assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, 0);
    }
}

#[actix_web::test]
async fn trailing_slashes_are_tolerated() {
    let app = app(engine().await).await;
    let (status, _) = call(&app, get("/message-streams/")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, get("/message-streams/outbound/suppressions/dump/")).await;
    assert_eq!(status, StatusCode::OK);
}

/// postmark.js and postmark-python send `Content-Type: application/json`
/// on GETs; postmarker sends bodiless POSTs with no Content-Type,
/// postmark-python with one and `Content-Length: 0`.
#[actix_web::test]
async fn bodies_and_content_types_as_the_sdks_send_them() {
    let app = app(engine().await).await;
    let (status, _) = call(
        &app,
        get(DUMP).insert_header(("Content-Type", "application/json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        post(
            "/message-streams",
            &json!({"ID": "b", "Name": "B", "MessageStreamType": "Broadcasts"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (content_type, body) in [
        (None, ""),
        (Some("application/json"), ""),
        (Some("application/json"), "{}"),
        (Some("text/plain"), ""),
    ] {
        for action in ["archive", "unarchive"] {
            let mut req = test::TestRequest::post()
                .uri(&format!("/message-streams/b/{action}"))
                .insert_header(("X-Postmark-Server-Token", TOKEN))
                .insert_header(("Content-Length", body.len().to_string()))
                .set_payload(body);
            if let Some(value) = content_type {
                req = req.insert_header(("Content-Type", value));
            }
            let (status, reply) = call(&app, req).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{action} {content_type:?} {body:?}: {reply}"
            );
            assert_eq!(reply["ID"], "b");
        }
    }
    // A create with a JSON body and no Content-Type still works.
    let req = test::TestRequest::post()
        .uri("/message-streams/outbound/suppressions")
        .insert_header(("X-Postmark-Server-Token", TOKEN))
        .set_payload(addresses(&["a@x.com"]).to_string());
    let (status, reply) = call(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statuses(&reply)[0].1, "Suppressed");
}

#[actix_web::test]
async fn an_oversized_body_is_413_in_postmark_format() {
    let app = app(engine().await).await;
    let huge = "x".repeat(BODY_LIMIT + 1);
    let (status, body) = call(
        &app,
        post(
            "/message-streams/outbound/suppressions",
            &json!({"Suppressions": [{"EmailAddress": huge}]}),
        ),
    )
    .await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, 0);
}
