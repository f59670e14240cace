use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use hush_model::{BounceClass, Email, Kind, NewSuppression, Origin, Scope, Timestamp};
use serde_json::json;

use crate::support::*;

const BOUNCES: &str = "/v3/suppression/bounces";

fn seeded(address: &str, seconds: i64) -> NewSuppression {
    NewSuppression {
        email: Email::parse(address).unwrap(),
        scope: Scope::Global,
        kind: Kind::Bounce {
            class: BounceClass::Hard,
            status: Some("5.1.1".into()),
            reason: Some("550 5.1.1 User unknown".into()),
        },
        origin: Origin::Recipient,
        created_at: Timestamp::from_nanos(seconds * 1_000_000_000 + 250_000_000),
    }
}

#[actix_web::test]
async fn post_creates_a_bounce_with_the_documented_record() {
    let app = app(engine()).await;
    let body = json!({"email": " Bob+Tag@Example.com ", "reason": "550 5.1.1 User unknown"});
    let (status, record) = call(&app, post(BOUNCES, WRITER, &body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(record["email"], "bob+tag@example.com");
    assert_eq!(record["bounce_type"], "hard", "hard is the default");
    assert_eq!(record["reason"], "550 5.1.1 User unknown");
    assert_eq!(
        record["status"], "5.1.1",
        "read from the reason's enhanced code"
    );
    assert!(record["created"].as_i64().unwrap() > 1_700_000_000);
    let keys: Vec<_> = record.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["bounce_type", "created", "email", "reason", "status"]
    );

    let soft = json!({"email": "soft@example.com", "bounce_type": "soft"});
    let (status, record) = call(&app, post(BOUNCES, WRITER, &soft)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (
            record["bounce_type"].as_str(),
            record["reason"].as_str(),
            record["status"].as_str()
        ),
        (Some("soft"), Some(""), Some(""))
    );
}

#[actix_web::test]
async fn adding_twice_is_idempotent() {
    let app = app(engine()).await;
    let body = json!({"email": "twice@example.com", "reason": "first"});
    let (_, first) = call(&app, post(BOUNCES, WRITER, &body)).await;
    let again = json!({"email": "TWICE@example.com", "reason": "second", "bounce_type": "block"});
    let (status, second) = call(&app, post(BOUNCES, WRITER, &again)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second, first, "the entry as first stored");
    let (_, list) = call(&app, get(BOUNCES, WRITER)).await;
    assert_eq!(list["total"], 1);
}

#[actix_web::test]
async fn post_refuses_bad_input_with_the_field_named() {
    let app = app(engine()).await;
    let cases = [
        (json!({"email": "not-an-email"}), "email"),
        (json!({"reason": "no email"}), "email"),
        (
            json!({"email": "a@example.com", "bounce_type": "squishy"}),
            "bounce_type",
        ),
        (json!({"email": 42}), "email"),
        (
            json!({"email": "a@example.com", "reason": "x".repeat(3000)}),
            "reason",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = call(&app, post(BOUNCES, WRITER, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_envelope(&error, Some(field));
    }
    let malformed = TestRequest::post()
        .uri(BOUNCES)
        .insert_header(("Authorization", format!("Bearer {WRITER}")))
        .set_payload("{\"email\": ");
    let (status, error) = call(&app, malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_envelope(&error, Some("body")).contains("invalid JSON"));
    let empty = TestRequest::post()
        .uri(BOUNCES)
        .insert_header(("Authorization", format!("Bearer {WRITER}")));
    let (status, error) = call(&app, empty).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("body"));
    let (_, list) = call(&app, get(BOUNCES, WRITER)).await;
    assert_eq!(list["total"], 0, "nothing stored by a bad request");
}

/// Every v3 body is an object: an array is not read positionally into
/// one, and no message names a Rust type.
#[actix_web::test]
async fn bodies_must_be_objects_and_errors_name_the_field_plainly() {
    let app = app(engine()).await;
    let raw = |uri: &str, body: &str| {
        TestRequest::post()
            .uri(uri)
            .insert_header(("Authorization", format!("Bearer {WRITER}")))
            .insert_header(("Content-Type", "application/json"))
            .set_payload(body.to_owned())
    };
    for (uri, body) in [
        (BOUNCES, r#"["seq@example.com","soft"]"#),
        (BOUNCES, "[]"),
        (BOUNCES, r#""seq@example.com""#),
        (BOUNCES, "5"),
        ("/v3/asm/groups", r#"["ArrGroup"]"#),
        ("/v3/asm/suppressions/global", r#"[["a@example.com"]]"#),
        ("/v3/suppression/spam_reports", "null"),
    ] {
        let (status, error) = call(&app, raw(uri, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}");
        let message = assert_envelope(&error, Some("body"));
        assert!(message.contains("JSON object"), "{message}");
    }
    let (_, list) = call(&app, get(BOUNCES, WRITER)).await;
    assert_eq!(list["total"], 0, "nothing stored");
    let (_, groups) = call(&app, get("/v3/asm/groups", WRITER)).await;
    assert_eq!(groups["suppression_groups"], json!([]), "no group made");

    for (uri, body, field) in [
        (BOUNCES, r#"{"email": 5}"#, "email"),
        (
            BOUNCES,
            r#"{"email": "a@example.com", "reason": ["x"]}"#,
            "reason",
        ),
        (
            "/v3/asm/groups",
            r#"{"name": "N", "is_default": "yes"}"#,
            "is_default",
        ),
        ("/v3/asm/groups", r#"{"name": {"a": 1}}"#, "name"),
        (
            "/v3/asm/suppressions/global",
            r#"{"recipient_emails": "a@example.com"}"#,
            "recipient_emails",
        ),
        (
            "/v3/asm/suppressions/global",
            r#"{"recipient_emails": [1]}"#,
            "recipient_emails",
        ),
        ("/v3/asm/suppressions/global", r#"{}"#, "recipient_emails"),
    ] {
        let (status, error) = call(&app, raw(uri, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}");
        let message = assert_envelope(&error, Some(field));
        for rust in [
            "struct",
            "NewBounce",
            "NewGroupBody",
            "RecipientEmails",
            "sequence",
            " at line ",
        ] {
            assert!(!message.contains(rust), "{body}: {message}");
        }
    }
    let (status, error) = call(&app, raw(BOUNCES, r#"{"email": "a@example.com"} x"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_envelope(&error, Some("body")).contains("invalid JSON"));
}

#[actix_web::test]
async fn an_oversize_body_is_413_in_the_envelope() {
    let app = app(engine()).await;
    let body = json!({"email": "big@example.com", "reason": "x".repeat(BODY_LIMIT)});
    let (status, error) = call(&app, post(BOUNCES, WRITER, &body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(assert_envelope(&error, None).contains("4096"));
}

#[actix_web::test]
async fn get_one_returns_an_array_or_404() {
    let app = app(engine()).await;
    call(
        &app,
        post(
            BOUNCES,
            WRITER,
            &json!({"email": "a+b@example.com", "reason": "550 5.1.1 x"}),
        ),
    )
    .await;
    for path in [
        "a+b@example.com",
        "A%2Bb%40Example.com",
        "a%2bb@example.com",
    ] {
        let (status, records) = call(&app, get(&format!("{BOUNCES}/{path}"), READER)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(records.as_array().unwrap().len(), 1, "{path}");
        assert_eq!(records[0]["email"], "a+b@example.com");
    }
    let (status, error) = call(&app, get(&format!("{BOUNCES}/nobody@example.com"), READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, None);
    let (status, error) = call(&app, get(&format!("{BOUNCES}/not-an-email"), READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("email"));
    // A plus in a path is a plus, never a space.
    let (status, _) = call(
        &app,
        get(
            &format!("{BOUNCES}/a b@example.com").replace(' ', "%20"),
            READER,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn list_pages_with_total_and_filters() {
    let engine = engine();
    let demo = tenant("demo");
    let items = vec![
        seeded("old@example.com", 1_000),
        seeded("mid@example.com", 2_000),
        seeded("new@example.com", 3_000),
        seeded("newer@other.org", 3_000),
    ];
    engine
        .add(&demo, items, &hush_engine::conformance::tester())
        .await
        .unwrap();
    let app = app(engine).await;

    let (status, list) = call(&app, get(BOUNCES, READER)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 4);
    let emails = |list: &serde_json::Value| -> Vec<String> {
        list["bounces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["email"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        emails(&list),
        [
            "newer@other.org",
            "new@example.com",
            "mid@example.com",
            "old@example.com"
        ]
    );
    assert_eq!(list["bounces"][0]["created"], 3_000, "whole seconds");

    let (_, page) = call(&app, get(&format!("{BOUNCES}?limit=2&offset=1"), READER)).await;
    assert_eq!(emails(&page), ["new@example.com", "mid@example.com"]);
    assert_eq!(page["total"], 4, "the total is the filter's");

    let (_, window) = call(
        &app,
        get(&format!("{BOUNCES}?start_time=2000&end_time=3000"), READER),
    )
    .await;
    assert_eq!(
        emails(&window),
        ["newer@other.org", "new@example.com", "mid@example.com"],
        "inclusive seconds"
    );
    assert_eq!(window["total"], 3);
    let (_, before) = call(&app, get(&format!("{BOUNCES}?end_time=1999"), READER)).await;
    assert_eq!(emails(&before), ["old@example.com"]);

    let (_, one) = call(
        &app,
        get(&format!("{BOUNCES}?email=mid%40example.com"), READER),
    )
    .await;
    assert_eq!(emails(&one), ["mid@example.com"]);
    assert_eq!(one["total"], 1);
    let (_, prefix) = call(&app, get(&format!("{BOUNCES}?email=NEW"), READER)).await;
    assert_eq!(emails(&prefix), ["newer@other.org", "new@example.com"]);
}

#[actix_web::test]
async fn list_refuses_bad_parameters() {
    let app = app(engine()).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("start_time=yesterday", "start_time"),
        ("end_time=-5", "end_time"),
        ("start_time=10&end_time=5", "start_time"),
    ] {
        let (status, error) = call(&app, get(&format!("{BOUNCES}?{query}"), READER)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_envelope(&error, Some(field));
    }
    let (status, _) = call(&app, get(&format!("{BOUNCES}?limit=500"), READER)).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn delete_one_then_404() {
    let app = app(engine()).await;
    call(
        &app,
        post(BOUNCES, WRITER, &json!({"email": "gone@example.com"})),
    )
    .await;
    let (status, body) = call(
        &app,
        delete(&format!("{BOUNCES}/gone%40example.com"), WRITER),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::NO_CONTENT, serde_json::Value::Null)
    );
    let (status, error) = call(&app, delete(&format!("{BOUNCES}/gone@example.com"), WRITER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, None);
    let (status, _) = call(&app, get(&format!("{BOUNCES}/gone@example.com"), READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn bulk_delete_needs_delete_all() {
    let app = app(engine()).await;
    for address in ["a@example.com", "b@example.com", "c@example.com"] {
        call(&app, post(BOUNCES, WRITER, &json!({"email": address}))).await;
    }
    let (status, error) = call(&app, delete(BOUNCES, WRITER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("delete_all"));
    let (status, _) = call(&app, delete(&format!("{BOUNCES}?delete_all=false"), WRITER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, list) = call(&app, get(BOUNCES, READER)).await;
    assert_eq!(list["total"], 3, "a refused bulk delete deletes nothing");

    // SendGrid's JSON form, as its SDKs send it.
    let by_list =
        delete(BOUNCES, WRITER).set_payload(json!({"emails": ["a@example.com"]}).to_string());
    assert_eq!(call(&app, by_list).await.0, StatusCode::NO_CONTENT);
    let both = delete(BOUNCES, WRITER)
        .set_payload(json!({"emails": ["b@example.com"], "delete_all": true}).to_string());
    assert_eq!(call(&app, both).await.0, StatusCode::BAD_REQUEST);
    let (_, list) = call(&app, get(BOUNCES, READER)).await;
    assert_eq!(list["total"], 2);

    let (status, body) = call(&app, delete(&format!("{BOUNCES}?delete_all=true"), WRITER)).await;
    assert_eq!(
        (status, body),
        (StatusCode::NO_CONTENT, serde_json::Value::Null)
    );
    let (_, list) = call(&app, get(BOUNCES, READER)).await;
    assert_eq!(list["total"], 0);
}

#[actix_web::test]
async fn keys_are_checked_in_the_envelope() {
    let app = app(engine()).await;
    let anonymous = TestRequest::get().uri(BOUNCES);
    let (status, error) = call(&app, anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(assert_envelope(&error, None), "authorization required");
    let (status, error) = call(&app, get(BOUNCES, "SG.wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_envelope(&error, None);
    let basic = TestRequest::get()
        .uri(BOUNCES)
        .insert_header(("Authorization", format!("Basic {WRITER}")));
    assert_eq!(call(&app, basic).await.0, StatusCode::UNAUTHORIZED);
    let lower = TestRequest::get()
        .uri(BOUNCES)
        .insert_header(("Authorization", format!("bearer {WRITER}")));
    assert_eq!(
        call(&app, lower).await.0,
        StatusCode::OK,
        "the scheme is case-insensitive"
    );

    let (status, error) = call(
        &app,
        post(BOUNCES, READER, &json!({"email": "r@example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(assert_envelope(&error, None).contains("suppressions.write"));
    assert_eq!(
        call(&app, delete(&format!("{BOUNCES}?delete_all=true"), READER))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call(&app, get(BOUNCES, READER)).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn one_tenant_never_sees_another() {
    let app = app(engine()).await;
    call(
        &app,
        post(BOUNCES, WRITER, &json!({"email": "mine@example.com"})),
    )
    .await;
    let (_, list) = call(&app, get(BOUNCES, OTHER_TENANT)).await;
    assert_eq!(list["total"], 0);
    assert_eq!(
        call(
            &app,
            get(&format!("{BOUNCES}/mine@example.com"), OTHER_TENANT)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            delete(&format!("{BOUNCES}/mine@example.com"), OTHER_TENANT)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    call(
        &app,
        delete(&format!("{BOUNCES}?delete_all=true"), OTHER_TENANT),
    )
    .await;
    let (_, list) = call(&app, get(BOUNCES, WRITER)).await;
    assert_eq!(list["total"], 1, "another tenant's delete_all leaves mine");
}

#[actix_web::test]
async fn router_errors_use_the_envelope() {
    let app = app(engine()).await;
    let (status, error) = call(&app, get("/v3/suppression/nothing-here", WRITER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(assert_envelope(&error, None), "resource not found");
    let (status, error) = call(&app, get("/elsewhere", WRITER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, None);
    let put = TestRequest::put()
        .uri(BOUNCES)
        .insert_header(("Authorization", format!("Bearer {WRITER}")));
    let (status, error) = call(&app, put).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&error, None);
    let patch = TestRequest::patch().uri(&format!("{BOUNCES}/a@example.com"));
    assert_eq!(call(&app, patch).await.0, StatusCode::METHOD_NOT_ALLOWED);
    // A trailing slash and a doubled one reach the same route.
    assert_eq!(
        call(&app, get("//v3/suppression/bounces/", READER)).await.0,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn get_with_a_json_content_type_and_no_body_is_fine() {
    let app = app(engine()).await;
    let req = get(BOUNCES, READER).insert_header(("Content-Type", "application/json"));
    assert_eq!(call(&app, req).await.0, StatusCode::OK);
    let req = delete(&format!("{BOUNCES}?delete_all=true"), WRITER)
        .insert_header(("Content-Type", "application/json"));
    assert_eq!(call(&app, req).await.0, StatusCode::NO_CONTENT);
}

/// SendGrid's bounce classifications sit beside `bounces/{email}`: they are
/// refused as a feature hush lacks (501, named), not read as an address
/// ("email address has no '@'"), and only for a valid key.
#[actix_web::test]
async fn bounce_classifications_are_a_501_not_an_address() {
    let app = app(engine()).await;
    for path in [
        "/v3/suppression/bounces/classifications",
        "/v3/suppression/bounces/classifications/Invalid%20Address",
    ] {
        let (status, error) = call(&app, get(path, READER)).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{path}: {error}");
        let message = assert_envelope(&error, None);
        assert!(message.contains("classifications"), "{message}");
        let (status, _) = call(&app, get(path, "SG.nobody")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

/// A path address whose percent-escapes are not UTF-8 is refused, not
/// read with replacement characters as some other address.
#[actix_web::test]
async fn a_path_address_that_is_not_utf8_is_a_400() {
    let app = app(engine()).await;
    let (status, error) = call(&app, get(&format!("{BOUNCES}/%FF%FE@example.com"), READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let message = assert_envelope(&error, Some("email"));
    assert!(message.contains("UTF-8"), "{message}");
}

/// A bulk delete by `emails` takes at most 10,000 addresses (a bound on
/// one request's work, answered in the v3 envelope); below it, every
/// listed address goes, across store batches, and nothing else.
#[actix_web::test]
async fn bulk_deletes_are_bounded_and_cross_batches() {
    let app = app_with_limits(engine(), 1 << 20, 1 << 30).await;
    let too_many: Vec<String> = (0..10_001).map(|n| format!("x{n}@example.com")).collect();
    let body = json!({ "emails": too_many });
    let req = TestRequest::delete()
        .uri(BOUNCES)
        .insert_header(("Authorization", format!("Bearer {WRITER}")))
        .set_json(&body);
    let (status, error) = call(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(assert_envelope(&error, Some("emails")).contains("10000"));
    let mut csv_body = String::from("email\n");
    for n in 0..2_100 {
        csv_body.push_str(&format!("b{n}@example.com\n"));
    }
    let (status, report) = call(&app, csv(&format!("{BOUNCES}/import"), WRITER, &csv_body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let doomed: Vec<String> = (0..2_050).map(|n| format!("b{n}@example.com")).collect();
    let req = TestRequest::delete()
        .uri(BOUNCES)
        .insert_header(("Authorization", format!("Bearer {WRITER}")))
        .set_json(json!({ "emails": doomed }));
    let (status, _) = call(&app, req).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = call(&app, get(BOUNCES, READER)).await;
    assert_eq!(list["total"], 50, "{list}");
}
