use actix_web::http::StatusCode;
use hush_model::{Email, Kind, NewSuppression, Origin, Scope, Timestamp};
use serde_json::{Value, json};

use crate::support::*;

const GLOBAL: &str = "/v3/asm/suppressions/global";

#[actix_web::test]
async fn post_adds_and_answers_201_with_the_addresses() {
    let app = app(engine()).await;
    let body =
        json!({"recipient_emails": ["User@Example.com", "other@example.com", "user@example.com"]});
    let (status, added) = call(&app, post(GLOBAL, WRITER, &body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        added,
        json!({"recipient_emails": ["user@example.com", "other@example.com"]})
    );
    let (status, again) = call(&app, post(GLOBAL, WRITER, &body)).await;
    assert_eq!(
        (status, &again),
        (StatusCode::CREATED, &added),
        "idempotent"
    );
    let (status, list) = call(&app, get(GLOBAL, READER)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    let mut listed: Vec<&str> = list["recipient_emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, ["other@example.com", "user@example.com"]);
}

#[actix_web::test]
async fn post_refuses_bad_bodies_and_stores_nothing() {
    let app = app(engine()).await;
    for body in [
        json!({"recipient_emails": ["ok@example.com", "not-an-email"]}),
        json!({"recipient_emails": []}),
        json!({"emails": ["ok@example.com"]}),
        json!({"recipient_emails": "ok@example.com"}),
    ] {
        let (status, error) = call(&app, post(GLOBAL, WRITER, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let field = error["errors"][0]["field"].as_str().unwrap().to_owned();
        assert_eq!(field, "recipient_emails", "{error}");
    }
    let (_, list) = call(&app, get(GLOBAL, READER)).await;
    assert_eq!(list["total"], 0, "one bad address stores none");
    let (status, _) = call(
        &app,
        post(
            GLOBAL,
            READER,
            &json!({"recipient_emails": ["a@example.com"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn unsubscribe_and_manual_entries_both_appear() {
    let engine = engine();
    let entry = |address: &str, kind: Kind, seconds: i64| NewSuppression {
        email: Email::parse(address).unwrap(),
        scope: Scope::Global,
        kind,
        origin: Origin::Customer,
        created_at: Timestamp::from_unix_seconds(seconds),
    };
    engine
        .add(
            &tenant("demo"),
            vec![
                entry("unsub@example.com", Kind::Unsubscribe, 1_000),
                entry("manual@example.com", Kind::Manual, 2_000),
                entry("bounce@example.com", Kind::hard_bounce(), 3_000),
            ],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    let app = app(engine).await;
    let (_, list) = call(&app, get(GLOBAL, READER)).await;
    assert_eq!(
        list,
        json!({"recipient_emails": ["manual@example.com", "unsub@example.com"], "total": 2})
    );
    let (_, page) = call(&app, get(&format!("{GLOBAL}?limit=1&offset=1"), READER)).await;
    assert_eq!(
        page,
        json!({"recipient_emails": ["unsub@example.com"], "total": 2})
    );
    let (_, window) = call(&app, get(&format!("{GLOBAL}?end_time=1500"), READER)).await;
    assert_eq!(window["recipient_emails"], json!(["unsub@example.com"]));
    let (status, one) = call(&app, get(&format!("{GLOBAL}/MANUAL%40example.com"), READER)).await;
    assert_eq!(
        (status, one),
        (
            StatusCode::OK,
            json!({"recipient_email": "manual@example.com"})
        )
    );
    let (status, error) = call(&app, get(&format!("{GLOBAL}/bounce@example.com"), READER)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a bounce is not an unsubscribe"
    );
    assert_envelope(&error, None);
}

#[actix_web::test]
async fn delete_resubscribes() {
    let app = app(engine()).await;
    call(
        &app,
        post(
            GLOBAL,
            WRITER,
            &json!({"recipient_emails": ["a+b@example.com"]}),
        ),
    )
    .await;
    let (status, body) = call(&app, delete(&format!("{GLOBAL}/a+b@example.com"), WRITER)).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = call(&app, get(&format!("{GLOBAL}/a+b@example.com"), READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = call(&app, delete(&format!("{GLOBAL}/a+b@example.com"), WRITER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "seed shape: absent is 404");
    assert_envelope(&error, None);
    let (status, error) = call(&app, delete(&format!("{GLOBAL}/bad"), WRITER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("email"));
    let (status, _) = call(&app, delete(&format!("{GLOBAL}/x@example.com"), READER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
