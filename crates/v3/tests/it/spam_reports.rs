use actix_web::http::StatusCode;
use hush_model::{Email, Kind, NewSuppression, Origin, Scope, Timestamp};
use serde_json::{Value, json};

use crate::support::*;

const SPAM: &str = "/v3/suppression/spam_reports";

fn emails(list: &Value) -> Vec<String> {
    list["spam_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn post_creates_a_report_with_the_documented_record() {
    let app = app(engine()).await;
    let body = json!({"email": " Abuser@Example.com", "source": "feedback_loop"});
    let (status, record) = call(&app, post(SPAM, WRITER, &body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let keys: Vec<_> = record.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["created", "email", "source"]);
    assert_eq!(record["email"], "abuser@example.com");
    assert_eq!(record["source"], "feedback_loop");
    assert!(record["created"].as_i64().unwrap() > 1_700_000_000);

    let (status, again) = call(
        &app,
        post(SPAM, WRITER, &json!({"email": "ABUSER@example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, record, "adding twice keeps the first entry");
    let (_, list) = call(&app, get(SPAM, READER)).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["spam_reports"][0], record);

    let (_, plain) = call(&app, post(SPAM, WRITER, &json!({"email": "x@example.com"}))).await;
    assert_eq!(plain["source"], "", "no source is an empty string");
}

#[actix_web::test]
async fn post_refuses_bad_input_and_stores_nothing() {
    let app = app(engine()).await;
    for (body, field) in [
        (json!({"email": "nope"}), "email"),
        (json!({"source": "x"}), "email"),
        (
            json!({"email": "a@example.com", "source": "s".repeat(3000)}),
            "source",
        ),
    ] {
        let (status, error) = call(&app, post(SPAM, WRITER, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_envelope(&error, Some(field));
    }
    let (status, error) = call(&app, post(SPAM, READER, &json!({"email": "a@example.com"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_envelope(&error, None);
    let (_, list) = call(&app, get(SPAM, READER)).await;
    assert_eq!(list["total"], 0);
}

#[actix_web::test]
async fn list_takes_the_bounce_parameters() {
    let engine = engine();
    let demo = tenant("demo");
    let report = |address: &str, seconds: i64| NewSuppression {
        email: Email::parse(address).unwrap(),
        scope: Scope::Global,
        kind: Kind::SpamComplaint {
            source: Some("fbl".into()),
        },
        origin: Origin::Recipient,
        created_at: Timestamp::from_unix_seconds(seconds),
    };
    engine
        .add(
            &demo,
            vec![
                report("a@example.com", 1_000),
                report("b@example.com", 2_000),
                report("c@other.org", 3_000),
            ],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    // A bounce is not a spam report.
    engine
        .add(
            &demo,
            vec![NewSuppression {
                kind: Kind::hard_bounce(),
                ..report("d@example.com", 4_000)
            }],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    let app = app(engine).await;
    let (status, list) = call(&app, get(SPAM, READER)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 3);
    assert_eq!(
        emails(&list),
        ["c@other.org", "b@example.com", "a@example.com"]
    );
    assert_eq!(
        list["spam_reports"][0],
        json!({"email": "c@other.org", "created": 3000, "source": "fbl"})
    );
    let (_, page) = call(&app, get(&format!("{SPAM}?limit=1&offset=1"), READER)).await;
    assert_eq!(
        (emails(&page), &page["total"]),
        (vec!["b@example.com".to_owned()], &json!(3))
    );
    let (_, window) = call(
        &app,
        get(&format!("{SPAM}?start_time=1500&end_time=2000"), READER),
    )
    .await;
    assert_eq!(emails(&window), ["b@example.com"]);
    let (_, by_email) = call(&app, get(&format!("{SPAM}?email=a%40example.com"), READER)).await;
    assert_eq!(emails(&by_email), ["a@example.com"]);
    let (status, error) = call(&app, get(&format!("{SPAM}?limit=0"), READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("limit"));
}

#[actix_web::test]
async fn get_one_delete_one_and_delete_all() {
    let app = app(engine()).await;
    for address in ["a@example.com", "b@example.com", "c@example.com"] {
        call(
            &app,
            post(SPAM, WRITER, &json!({"email": address, "source": "fbl"})),
        )
        .await;
    }
    // A bounce of the same address is not touched by spam deletes.
    call(
        &app,
        post(
            "/v3/suppression/bounces",
            WRITER,
            &json!({"email": "a@example.com"}),
        ),
    )
    .await;
    let (status, records) = call(&app, get(&format!("{SPAM}/A%40example.com"), READER)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(records.as_array().unwrap().len(), 1);
    assert_eq!(records[0]["source"], "fbl");
    let (status, error) = call(&app, get(&format!("{SPAM}/nobody@example.com"), READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(assert_envelope(&error, None).contains("spam report"));

    let (status, body) = call(&app, delete(&format!("{SPAM}/a@example.com"), WRITER)).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = call(&app, delete(&format!("{SPAM}/a@example.com"), WRITER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, bounces) = call(&app, get("/v3/suppression/bounces", READER)).await;
    assert_eq!(bounces["total"], 1, "the bounce stays");

    let (status, error) = call(&app, delete(SPAM, WRITER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("delete_all"));
    let (status, _) = call(&app, delete(&format!("{SPAM}?delete_all=true"), WRITER)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = call(&app, get(SPAM, READER)).await;
    assert_eq!(list["total"], 0);
    let (_, bounces) = call(&app, get("/v3/suppression/bounces", READER)).await;
    assert_eq!(bounces["total"], 1, "delete_all empties only the spam list");
}
