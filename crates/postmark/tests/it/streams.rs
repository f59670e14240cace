//! `/message-streams` (Postmark API docs, "Message Streams API"): streams
//! are canonical groups.

use actix_web::http::StatusCode;
use actix_web::test;
use hush_model::{GroupKey, StreamType, UnsubscribeHandling};
use serde_json::{Value, json};

use crate::support::*;

fn dev_stream() -> Value {
    json!({
        "ID": "transactional-dev",
        "Name": "My Dev Transactional Stream",
        "Description": "This is my second transactional stream",
        "MessageStreamType": "Transactional"
    })
}

/// Every field of a Postmark `MessageStream`, with its type.
fn assert_stream_shape(stream: &Value) {
    let object = stream.as_object().unwrap_or_else(|| panic!("{stream}"));
    assert_eq!(object.len(), 10, "{stream}");
    assert!(stream["ID"].is_string());
    assert!(stream["ServerID"].as_i64().unwrap() > 0);
    assert!(stream["Name"].is_string());
    assert!(stream["Description"].is_string() || stream["Description"].is_null());
    assert!(StreamType::parse(stream["MessageStreamType"].as_str().unwrap()).is_some());
    hush_model::Timestamp::parse_rfc3339(stream["CreatedAt"].as_str().unwrap()).unwrap();
    for field in ["UpdatedAt", "ArchivedAt", "ExpectedPurgeDate"] {
        assert!(
            stream[field].is_null() || stream[field].as_str().unwrap().ends_with("+00:00"),
            "{field}: {stream}"
        );
    }
    let handling = stream["SubscriptionManagementConfiguration"]["UnsubscribeHandlingType"]
        .as_str()
        .unwrap();
    assert!(UnsubscribeHandling::parse(handling).is_some());
}

fn ids(body: &Value) -> Vec<&str> {
    assert_eq!(
        body["TotalCount"].as_u64().unwrap() as usize,
        body["MessageStreams"].as_array().unwrap().len()
    );
    body["MessageStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_stream_shape(s);
            s["ID"].as_str().unwrap()
        })
        .collect()
}

#[actix_web::test]
async fn every_tenant_starts_with_outbound() {
    let app = app(engine().await).await;
    let (status, body) = call(&app, get("/message-streams")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), vec!["outbound"]);
    let (status, outbound) = call(&app, get("/message-streams/outbound")).await;
    assert_eq!(status, StatusCode::OK);
    assert_stream_shape(&outbound);
    assert_eq!(outbound["MessageStreamType"], "Transactional");
    assert_eq!(outbound["ServerID"], body["MessageStreams"][0]["ServerID"]);
    assert_eq!(
        outbound["ServerID"].as_i64(),
        Some(hush_postmark::server_id(&demo()))
    );
    assert_eq!(outbound["UpdatedAt"], Value::Null);
    assert_eq!(outbound["ArchivedAt"], Value::Null);
    assert_eq!(
        outbound["SubscriptionManagementConfiguration"]["UnsubscribeHandlingType"],
        "None"
    );
}

#[actix_web::test]
async fn server_ids_are_stable_and_differ_per_tenant() {
    assert_eq!(
        hush_postmark::server_id(&demo()),
        hush_postmark::server_id(&demo())
    );
    assert_ne!(
        hush_postmark::server_id(&demo()),
        hush_postmark::server_id(&tenant("other"))
    );
}

#[actix_web::test]
async fn create_get_edit_archive_unarchive() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    let (status, created) = call(&app, post("/message-streams", &dev_stream())).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_stream_shape(&created);
    assert_eq!(created["ID"], "transactional-dev");
    assert_eq!(created["Name"], "My Dev Transactional Stream");
    assert_eq!(
        created["Description"],
        "This is my second transactional stream"
    );
    assert_eq!(created["UpdatedAt"], Value::Null);

    // The group behind it: key = ID, name = Name.
    let group = engine
        .group_by_key(&demo(), &GroupKey::parse("transactional-dev").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.name, "My Dev Transactional Stream");
    assert_eq!(group.stream_type, StreamType::Transactional);

    let (status, got) = call(&app, get("/message-streams/transactional-dev")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    let (status, edited) = call(
        &app,
        patch(
            "/message-streams/transactional-dev",
            &json!({"Name": "New name"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["Name"], "New name");
    assert_eq!(edited["Description"], created["Description"]);
    assert!(edited["UpdatedAt"].is_string());

    let (status, edited) = call(
        &app,
        patch(
            "/message-streams/transactional-dev",
            &json!({"Description": "", "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "custom"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["Description"], Value::Null);
    assert_eq!(
        edited["SubscriptionManagementConfiguration"]["UnsubscribeHandlingType"],
        "Custom"
    );

    // Archive: bodiless, as postmarker sends it.
    let req = test::TestRequest::post()
        .uri("/message-streams/transactional-dev/archive")
        .insert_header(("X-Postmark-Server-Token", TOKEN));
    let (status, archived) = call(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{archived}");
    assert_eq!(archived.as_object().unwrap().len(), 3);
    assert_eq!(archived["ID"], "transactional-dev");
    assert_eq!(archived["ServerID"], created["ServerID"]);
    let purge =
        hush_model::Timestamp::parse_rfc3339(archived["ExpectedPurgeDate"].as_str().unwrap())
            .unwrap();

    let (_, list) = call(&app, get("/message-streams")).await;
    assert_eq!(ids(&list), vec!["outbound"]);
    let (_, list) = call(&app, get("/message-streams?IncludeArchivedStreams=True")).await;
    assert_eq!(ids(&list), vec!["outbound", "transactional-dev"]);
    let (_, got) = call(&app, get("/message-streams/transactional-dev")).await;
    let archived_at =
        hush_model::Timestamp::parse_rfc3339(got["ArchivedAt"].as_str().unwrap()).unwrap();
    assert_eq!(
        purge.as_nanos() - archived_at.as_nanos(),
        hush_postmark::wire::PURGE_AFTER_NANOS
    );
    // Archiving again keeps the first date.
    let (_, again) = call(
        &app,
        post("/message-streams/transactional-dev/archive", &json!({})),
    )
    .await;
    assert_eq!(again, archived);

    let (status, back) = call(
        &app,
        post("/message-streams/transactional-dev/unarchive", &json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_stream_shape(&back);
    assert_eq!(back["ArchivedAt"], Value::Null);
    assert_eq!(back["ExpectedPurgeDate"], Value::Null);
    let (_, list) = call(&app, get("/message-streams")).await;
    assert_eq!(ids(&list), vec!["outbound", "transactional-dev"]);
}

#[actix_web::test]
async fn lists_filter_by_type_in_any_case() {
    let app = app(engine().await).await;
    let broadcasts =
        json!({"ID": "broadcast", "Name": "Broadcasts", "MessageStreamType": "broadcasts"});
    let (status, created) = call(&app, post("/message-streams", &broadcasts)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["MessageStreamType"], "Broadcasts");
    // Broadcasts require unsubscribe management (Postmark API docs, "Message
    // Streams API").
    assert_eq!(
        created["SubscriptionManagementConfiguration"]["UnsubscribeHandlingType"],
        "Postmark"
    );
    for (query, want) in [
        ("", vec!["outbound", "broadcast"]),
        (
            "?MessageStreamType=All&IncludeArchivedStreams=false",
            vec!["outbound", "broadcast"],
        ),
        ("?messageStreamType=all", vec!["outbound", "broadcast"]),
        (
            "?messageStreamType=Transactional&includeArchivedStreams=true",
            vec!["outbound"],
        ),
        ("?MESSAGESTREAMTYPE=BROADCASTS", vec!["broadcast"]),
        ("?MessageStreamType=Inbound", vec![]),
    ] {
        let (status, body) = call(&app, get(&format!("/message-streams{query}"))).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids(&body), want, "{query}");
    }
    let (status, body) = call(&app, get("/message-streams?MessageStreamType=Newsletter")).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1221);
    let (status, body) = call(&app, get("/message-streams?IncludeArchivedStreams=maybe")).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1407);
}

#[actix_web::test]
async fn create_checks_every_field_with_its_code() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    let base = dev_stream();
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body
    };
    let cases = [
        (with("ID", Value::Null), 1222),
        (with("ID", json!("")), 1222),
        (with("ID", json!("Upper")), 1227),
        (with("ID", json!("x".repeat(31))), 1227),
        (with("ID", json!("pm-mine")), 1233),
        (with("ID", json!("all")), 1237),
        (with("ID", json!("outbound")), 1230),
        (with("Name", Value::Null), 1223),
        (with("Name", json!("   ")), 1223),
        (with("Name", json!("n".repeat(101))), 1224),
        (with("MessageStreamType", Value::Null), 1221),
        (with("MessageStreamType", json!("Newsletter")), 1221),
        // A new stream is Transactional or Broadcasts (Postmark API docs,
        // "Message Streams API").
        (with("MessageStreamType", json!("Inbound")), 1221),
        (with("MessageStreamType", json!("inbound")), 1221),
        (with("Description", json!("d".repeat(1001))), 1231),
        (with("Description", json!("<b>bold</b>")), 1234),
        (
            with(
                "SubscriptionManagementConfiguration",
                json!({"UnsubscribeHandlingType": "Sometimes"}),
            ),
            1240,
        ),
    ];
    for (body, code) in cases {
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let req = test::TestRequest::post()
        .uri("/message-streams")
        .insert_header(("X-Postmark-Server-Token", TOKEN))
        .set_payload("{not json");
    let (status, reply) = call(&app, req).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 402);
    // Nothing was made.
    assert_eq!(engine.groups(&demo()).await.unwrap().len(), 1);
}

/// A missing type, an unknown one and `Inbound` are one mistake with one
/// code and one text, naming what was sent.
#[actix_web::test]
async fn a_new_streams_type_is_transactional_or_broadcasts() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    let mut messages = Vec::new();
    for kind in [None, Some("Newsletter"), Some("Inbound")] {
        let mut body = json!({"ID": "s1", "Name": "S1"});
        if let Some(kind) = kind {
            body["MessageStreamType"] = json!(kind);
        }
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        let message = assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1221);
        assert!(
            message.starts_with(
                "A valid 'MessageStreamType' must be provided: Transactional or Broadcasts ("
            ),
            "{message}"
        );
        messages.push(message);
    }
    assert!(messages[0].contains("none was given"), "{}", messages[0]);
    assert!(messages[2].contains("\"Inbound\""), "{}", messages[2]);
    assert_eq!(engine.groups(&demo()).await.unwrap().len(), 1);
    for kind in ["Transactional", "broadcasts"] {
        let body = json!({"ID": kind.to_lowercase(), "Name": kind, "MessageStreamType": kind});
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
}

/// "Broadcasts require unsubscribe management" (Postmark API docs, "Message
/// Streams API"): `None` is refused on a Broadcasts stream with 1239, on
/// create and on edit; Transactional streams take it.
#[actix_web::test]
async fn broadcasts_streams_keep_unsubscribe_management() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    let none = json!({"UnsubscribeHandlingType": "none"});
    let body = json!({"ID": "news", "Name": "News", "MessageStreamType": "Broadcasts",
        "SubscriptionManagementConfiguration": none});
    let (status, reply) = call(&app, post("/message-streams", &body)).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1239);
    assert_eq!(engine.groups(&demo()).await.unwrap().len(), 1);

    for handling in ["Postmark", "Custom"] {
        let id = format!("news-{}", handling.to_lowercase());
        let body = json!({"ID": id, "Name": id, "MessageStreamType": "Broadcasts",
            "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": handling}});
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let edit = json!({"Name": "Renamed", "SubscriptionManagementConfiguration": none});
    let (status, reply) = call(&app, patch("/message-streams/news-postmark", &edit)).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1239);
    // Refused as a whole: the name did not change either.
    let (_, stream) = call(&app, get("/message-streams/news-postmark")).await;
    assert_eq!(stream["Name"], "news-postmark");
    assert_eq!(
        stream["SubscriptionManagementConfiguration"]["UnsubscribeHandlingType"],
        "Postmark"
    );
    let custom =
        json!({"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Custom"}});
    let (status, reply) = call(&app, patch("/message-streams/news-postmark", &custom)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    let transactional = json!({"ID": "tx", "Name": "Tx", "MessageStreamType": "Transactional",
        "SubscriptionManagementConfiguration": none});
    let (status, reply) = call(&app, post("/message-streams", &transactional)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = call(
        &app,
        patch(
            "/message-streams/outbound",
            &json!({"SubscriptionManagementConfiguration": none}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

#[actix_web::test]
async fn at_most_ten_streams() {
    let app = app(engine().await).await;
    for i in 1..10 {
        let body = json!({"ID": format!("s{i}"), "Name": format!("Stream {i}"), "MessageStreamType": "Transactional"});
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let body = json!({"ID": "s10", "Name": "Stream 10", "MessageStreamType": "Transactional"});
    let (status, reply) = call(&app, post("/message-streams", &body)).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1225);
    // An archived stream frees its place.
    let (status, _) = call(&app, post("/message-streams/s1/archive", &json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = call(&app, post("/message-streams", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

/// With 10 unarchived streams, an archived one cannot come back: otherwise
/// archive one, create another, unarchive the first would make 11.
#[actix_web::test]
async fn unarchive_respects_the_limit_of_ten() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    for i in 1..10 {
        let body = json!({"ID": format!("s{i}"), "Name": format!("Stream {i}"), "MessageStreamType": "Broadcasts"});
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let (status, _) = call(&app, post("/message-streams/s1/archive", &json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"ID": "s10", "Name": "Stream 10", "MessageStreamType": "Transactional"});
    let (status, reply) = call(&app, post("/message-streams", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    let (status, reply) = call(&app, post("/message-streams/s1/unarchive", &json!({}))).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1225);
    let (_, s1) = call(&app, get("/message-streams/s1")).await;
    assert!(s1["ArchivedAt"].is_string(), "{s1}");
    let (_, listed) = call(&app, get("/message-streams")).await;
    assert_eq!(listed["TotalCount"], 10);
    // Unarchiving one that is not archived changes nothing, so it is answered.
    let (status, reply) = call(&app, post("/message-streams/s2/unarchive", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    // Room made: it comes back.
    let (status, _) = call(&app, post("/message-streams/s2/archive", &json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = call(&app, post("/message-streams/s1/unarchive", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["ArchivedAt"], Value::Null);
}

/// At the limit, an ID that exists is still 1230, not 1225: a create repeated
/// after a lost answer reads as done (docs/api/postmark.md, code 1230).
#[actix_web::test]
async fn a_taken_id_is_1230_even_at_the_limit() {
    let app = app(engine().await).await;
    for i in 1..10 {
        let body = json!({"ID": format!("s{i}"), "Name": format!("Stream {i}"), "MessageStreamType": "Transactional"});
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let (status, _) = call(&app, post("/message-streams/s9/archive", &json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"ID": "s10", "Name": "Stream 10", "MessageStreamType": "Transactional"});
    let (status, reply) = call(&app, post("/message-streams", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    for id in ["s3", "s9", "outbound"] {
        let body = json!({"ID": id, "Name": "Again", "MessageStreamType": "Transactional"});
        let (status, reply) = call(&app, post("/message-streams", &body)).await;
        assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1230);
    }
    let body = json!({"ID": "s11", "Name": "Stream 11", "MessageStreamType": "Transactional"});
    let (status, reply) = call(&app, post("/message-streams", &body)).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1225);
}

#[actix_web::test]
async fn edit_checks_its_fields_and_the_stream() {
    let app = app(engine().await).await;
    for (body, code) in [
        (json!({"Name": ""}), 1223),
        (json!({"Name": "n".repeat(101)}), 1224),
        (json!({"Description": "<script>"}), 1234),
        (
            json!({"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "x"}}),
            1240,
        ),
    ] {
        let (status, reply) = call(&app, patch("/message-streams/outbound", &body)).await;
        assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let (status, reply) = call(&app, patch("/message-streams/nope", &json!({"Name": "x"}))).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1226);
    let (_, outbound) = call(&app, get("/message-streams/outbound")).await;
    assert_eq!(outbound["Name"], "Default Transactional Stream");
}

#[actix_web::test]
async fn outbound_cannot_be_archived() {
    let app = app(engine().await).await;
    let (status, reply) = call(&app, post("/message-streams/outbound/archive", &json!({}))).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1229);
    let (_, outbound) = call(&app, get("/message-streams/outbound")).await;
    assert_eq!(outbound["ArchivedAt"], Value::Null);
}

#[actix_web::test]
async fn unknown_streams_are_1226_on_every_route() {
    let app = app(engine().await).await;
    for req in [
        get("/message-streams/nope"),
        post("/message-streams/nope/archive", &json!({})),
        post("/message-streams/nope/unarchive", &json!({})),
    ] {
        let (status, reply) = call(&app, req).await;
        let message = assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1226);
        assert_eq!(
            message,
            "The message stream for the provided 'ID' was not found."
        );
    }
}

#[actix_web::test]
async fn another_tenants_streams_are_invisible() {
    let app = app(engine().await).await;
    let (status, _) = call(&app, post("/message-streams", &dev_stream())).await;
    assert_eq!(status, StatusCode::OK);
    let req = test::TestRequest::get()
        .uri("/message-streams/transactional-dev")
        .insert_header(("X-Postmark-Server-Token", OTHER_TOKEN));
    let (status, reply) = call(&app, req).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1226);
}

#[actix_web::test]
async fn names_are_unique_per_tenant_but_a_stream_keeps_its_own() {
    let app = app(engine().await).await;
    let (status, _) = call(&app, post("/message-streams", &dev_stream())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, same) = call(
        &app,
        patch(
            "/message-streams/outbound",
            &json!({"Name": "Default Transactional Stream"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    let (status, reply) = call(
        &app,
        patch(
            "/message-streams/outbound",
            &json!({"Name": "My Dev Transactional Stream"}),
        ),
    )
    .await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1223);
    let mut twin = dev_stream();
    twin["ID"] = json!("twin");
    let (status, reply) = call(&app, post("/message-streams", &twin)).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, 1223);
}

/// A NUL character in a stream's name or description is refused (422),
/// on create and on edit: PostgreSQL cannot store one.
#[actix_web::test]
async fn nul_characters_in_stream_texts_are_refused() {
    let app = app(engine().await).await;
    for body in [
        json!({"ID": "nul-name", "Name": "N\u{0}ul", "MessageStreamType": "Broadcasts"}),
        json!({"ID": "nul-desc", "Name": "Nul", "Description": "d\u{0}", "MessageStreamType": "Broadcasts"}),
    ] {
        let (status, error) = call(&app, post("/message-streams", &body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert!(
            error["Message"].as_str().unwrap().contains("NUL"),
            "{error}"
        );
    }
    let (status, error) = call(
        &app,
        patch(
            "/message-streams/outbound",
            &json!({"Name": "Out\u{0}bound"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
}
