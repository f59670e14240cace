use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use hush_engine::Engine;
use serde_json::{Value, json};

use crate::support::*;

const GROUPS: &str = "/v3/asm/groups";

/// An engine whose `demo` tenant has what the gateway gives every tenant:
/// the default stream `outbound`.
async fn bootstrapped() -> Engine {
    let engine = engine();
    engine.bootstrap_tenant(&tenant("demo")).await.unwrap();
    engine
}

fn group_body(name: &str) -> Value {
    json!({"name": name, "description": "Our weekly digest"})
}

#[actix_web::test]
async fn create_answers_201_with_the_documented_group() {
    let app = app(bootstrapped().await).await;
    let (status, group) = call(&app, post(GROUPS, WRITER, &group_body("Newsletter"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let keys: Vec<_> = group.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "description",
            "id",
            "is_default",
            "name",
            "unsubscribes"
        ]
    );
    assert_eq!(group["name"], "Newsletter");
    assert_eq!(group["description"], "Our weekly digest");
    assert_eq!(group["is_default"], false);
    assert_eq!(group["unsubscribes"], 0);
    let created = group["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    let id = group["id"].as_i64().unwrap();

    let (status, fetched) = call(&app, get(&format!("{GROUPS}/{id}"), READER)).await;
    assert_eq!((status, &fetched), (StatusCode::OK, &group));

    let (status, list) = call(&app, get(GROUPS, READER)).await;
    assert_eq!(status, StatusCode::OK);
    let groups = list["suppression_groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Default Transactional Stream", "Newsletter"],
        "the default stream is a group too"
    );
    let (_, only) = call(&app, get(&format!("{GROUPS}?id={id}"), READER)).await;
    assert_eq!(only["suppression_groups"], json!([group]));
}

#[actix_web::test]
async fn create_checks_name_and_description() {
    let app = app(bootstrapped().await).await;
    call(&app, post(GROUPS, WRITER, &group_body("Taken"))).await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": "Taken"}), "name"),
        (
            json!({"name": "Long", "description": "d".repeat(501)}),
            "description",
        ),
        (json!({"description": "no name"}), "name"),
        (json!({"name": "Typed", "is_default": "yes"}), "is_default"),
    ];
    for (body, field) in cases {
        let (status, error) = call(&app, post(GROUPS, WRITER, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_envelope(&error, Some(field));
    }
    let (_, list) = call(&app, get(GROUPS, READER)).await;
    assert_eq!(list["suppression_groups"].as_array().unwrap().len(), 2);
    let (status, _) = call(
        &app,
        post(
            GROUPS,
            WRITER,
            &json!({"name": "n".repeat(100), "description": "d".repeat(500)}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "the limits are inclusive");
    let (status, _) = call(&app, post(GROUPS, READER, &group_body("Reader"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn is_default_moves_to_the_newest_default() {
    let app = app(bootstrapped().await).await;
    let (_, first) = call(
        &app,
        post(
            GROUPS,
            WRITER,
            &json!({"name": "First", "is_default": true}),
        ),
    )
    .await;
    assert_eq!(first["is_default"], true);
    let (_, second) = call(
        &app,
        post(
            GROUPS,
            WRITER,
            &json!({"name": "Second", "is_default": true}),
        ),
    )
    .await;
    assert_eq!(second["is_default"], true);
    let (_, first_now) = call(&app, get(&format!("{GROUPS}/{}", first["id"]), READER)).await;
    assert_eq!(first_now["is_default"], false, "the flag moved");
    let (status, patched) = call(
        &app,
        patch(
            &format!("{GROUPS}/{}", first["id"]),
            WRITER,
            &json!({"is_default": true}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "seed shape: PATCH is 200");
    assert_eq!(patched["is_default"], true);
    let (_, list) = call(&app, get(GROUPS, READER)).await;
    let defaults = list["suppression_groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["is_default"] == true)
        .count();
    assert_eq!(defaults, 1);
}

#[actix_web::test]
async fn patch_changes_only_what_is_given() {
    let app = app(bootstrapped().await).await;
    let (_, group) = call(&app, post(GROUPS, WRITER, &group_body("Old"))).await;
    call(&app, post(GROUPS, WRITER, &group_body("Other"))).await;
    let path = format!("{GROUPS}/{}", group["id"]);
    let (status, renamed) = call(&app, patch(&path, WRITER, &json!({"name": "New"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "New");
    assert_eq!(renamed["description"], "Our weekly digest");
    assert_eq!(renamed["created_at"], group["created_at"]);
    for (body, field) in [
        (json!({"name": "Other"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"description": "d".repeat(501)}), "description"),
    ] {
        let (status, error) = call(&app, patch(&path, WRITER, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_envelope(&error, Some(field));
    }
    let (_, unchanged) = call(&app, get(&path, READER)).await;
    assert_eq!(unchanged["name"], "New");
    let (status, error) = call(
        &app,
        patch(&format!("{GROUPS}/999"), WRITER, &json!({"name": "X"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, None);
}

#[actix_web::test]
async fn unknown_groups_are_404_in_the_envelope() {
    let app = app(bootstrapped().await).await;
    let missing = format!("{GROUPS}/4242");
    for req in [
        get(&missing, READER),
        delete(&missing, WRITER),
        get(&format!("{missing}/suppressions"), READER),
        post(
            &format!("{missing}/suppressions"),
            WRITER,
            &json!({"recipient_emails": ["a@example.com"]}),
        ),
        delete(&format!("{missing}/suppressions/a@example.com"), WRITER),
    ] {
        let (status, error) = call(&app, req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            assert_envelope(&error, None).contains("group was not found"),
            "{error}"
        );
    }
    let (_, global) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(global["total"], 0, "seed shape: nothing goes to global");
    let (status, error) = call(&app, get(&format!("{GROUPS}/abc"), READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("group_id"));
}

#[actix_web::test]
async fn group_suppressions_add_page_and_remove() {
    let app = app(bootstrapped().await).await;
    let (_, group) = call(&app, post(GROUPS, WRITER, &group_body("News"))).await;
    let members = format!("{GROUPS}/{}/suppressions", group["id"]);
    let body = json!({"recipient_emails": ["C@example.com", "b@example.com", "a@example.com"]});
    let (status, added) = call(&app, post(&members, WRITER, &body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        added,
        json!({"recipient_emails": ["c@example.com", "b@example.com", "a@example.com"]})
    );
    let (status, again) = call(&app, post(&members, WRITER, &body)).await;
    assert_eq!(
        (status, &again),
        (StatusCode::CREATED, &added),
        "idempotent"
    );

    let (status, all) = call(&app, get(&members, READER)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["total"], 3);
    assert_eq!(all["recipient_emails"].as_array().unwrap().len(), 3);
    let (_, first) = call(&app, get(&format!("{members}?page=1&page_size=2"), READER)).await;
    let (_, second) = call(&app, get(&format!("{members}?page=2&page_size=2"), READER)).await;
    assert_eq!(first["recipient_emails"].as_array().unwrap().len(), 2);
    assert_eq!(second["recipient_emails"].as_array().unwrap().len(), 1);
    assert_eq!((&first["total"], &second["total"]), (&json!(3), &json!(3)));
    let mut paged: Vec<Value> = first["recipient_emails"].as_array().unwrap().clone();
    paged.extend(
        second["recipient_emails"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    assert_eq!(
        Value::Array(paged),
        all["recipient_emails"],
        "pages start at 1"
    );
    for query in ["page=0", "page_size=0", "page_size=501", "page=x"] {
        let (status, error) = call(&app, get(&format!("{members}?{query}"), READER)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let field = query.split('=').next().unwrap();
        assert_envelope(&error, Some(field));
    }

    let (_, counted) = call(&app, get(&format!("{GROUPS}/{}", group["id"]), READER)).await;
    assert_eq!(counted["unsubscribes"], 3);

    let (status, body) = call(&app, delete(&format!("{members}/B%40example.com"), WRITER)).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, error) = call(&app, delete(&format!("{members}/b@example.com"), WRITER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, None);
    let (_, after) = call(&app, get(&members, READER)).await;
    assert_eq!(after["total"], 2);

    let (status, error) = call(
        &app,
        post(
            &members,
            WRITER,
            &json!({"recipient_emails": ["ok@example.com", "bad"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("recipient_emails"));
    let (_, after) = call(&app, get(&members, READER)).await;
    assert_eq!(after["total"], 2, "nothing stored by a bad request");
}

#[actix_web::test]
async fn an_address_added_through_a_group_appears_only_there() {
    let app = app(bootstrapped().await).await;
    let (_, news) = call(&app, post(GROUPS, WRITER, &group_body("News"))).await;
    let (_, promos) = call(&app, post(GROUPS, WRITER, &group_body("Promos"))).await;
    call(
        &app,
        post(
            &format!("{GROUPS}/{}/suppressions", news["id"]),
            WRITER,
            &json!({"recipient_emails": ["only-news@example.com"]}),
        ),
    )
    .await;
    let (_, in_news) = call(
        &app,
        get(&format!("{GROUPS}/{}/suppressions", news["id"]), READER),
    )
    .await;
    assert_eq!(
        in_news["recipient_emails"],
        json!(["only-news@example.com"])
    );
    let (_, in_promos) = call(
        &app,
        get(&format!("{GROUPS}/{}/suppressions", promos["id"]), READER),
    )
    .await;
    assert_eq!(in_promos, json!({"recipient_emails": [], "total": 0}));
    let (_, global) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(global["total"], 0);
    let (status, _) = call(
        &app,
        get("/v3/asm/suppressions/global/only-news@example.com", READER),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And a global unsubscribe is not listed in any group.
    call(
        &app,
        post(
            "/v3/asm/suppressions/global",
            WRITER,
            &json!({"recipient_emails": ["everywhere@example.com"]}),
        ),
    )
    .await;
    let (_, in_news) = call(
        &app,
        get(&format!("{GROUPS}/{}/suppressions", news["id"]), READER),
    )
    .await;
    assert_eq!(in_news["total"], 1);
}

#[actix_web::test]
async fn delete_removes_the_group_and_its_suppressions() {
    let engine = bootstrapped().await;
    let app = app(engine.clone()).await;
    let (_, group) = call(&app, post(GROUPS, WRITER, &group_body("Doomed"))).await;
    let id = group["id"].as_i64().unwrap();
    call(
        &app,
        post(
            &format!("{GROUPS}/{id}/suppressions"),
            WRITER,
            &json!({"recipient_emails": ["gone@example.com"]}),
        ),
    )
    .await;
    let (status, body) = call(&app, delete(&format!("{GROUPS}/{id}"), WRITER)).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = call(&app, get(&format!("{GROUPS}/{id}"), READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let entries = engine
        .entries(
            &tenant("demo"),
            &hush_model::Email::parse("gone@example.com").unwrap(),
        )
        .await
        .unwrap();
    assert!(
        entries.is_empty(),
        "its suppressions went with it: {entries:?}"
    );
    let (status, _) = call(&app, delete(&format!("{GROUPS}/{id}"), WRITER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_default_stream_cannot_be_deleted() {
    let app = app(bootstrapped().await).await;
    let (_, list) = call(&app, get(GROUPS, READER)).await;
    let outbound = list["suppression_groups"][0]["id"].as_i64().unwrap();
    let (status, error) = call(&app, delete(&format!("{GROUPS}/{outbound}"), WRITER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = assert_envelope(&error, Some("group_id"));
    assert!(
        message.contains("outbound") && message.contains("cannot be deleted"),
        "{message}"
    );
    let (status, _) = call(&app, get(&format!("{GROUPS}/{outbound}"), READER)).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn groups_are_per_tenant_and_need_write_to_change() {
    let app = app(bootstrapped().await).await;
    let (_, group) = call(&app, post(GROUPS, WRITER, &group_body("Mine"))).await;
    let path = format!("{GROUPS}/{}", group["id"]);
    assert_eq!(
        call(&app, get(&path, OTHER_TENANT)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, delete(&path, OTHER_TENANT)).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, error) = call(&app, delete(&path, READER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_envelope(&error, None);
    let (status, _) = call(&app, patch(&path, READER, &json!({"name": "X"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let put = TestRequest::put()
        .uri(&path)
        .insert_header(("Authorization", format!("Bearer {WRITER}")));
    let (status, error) = call(&app, put).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&error, None);
}

/// docs/mapping.md, "Group names": unique as written, case included; no
/// spec says names compare without case.
#[actix_web::test]
async fn group_names_are_unique_as_written() {
    let app = app(engine()).await;
    let (status, upper) = call(
        &app,
        post("/v3/asm/groups", WRITER, &json!({"name": "Newsletter"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, lower) = call(
        &app,
        post("/v3/asm/groups", WRITER, &json!({"name": "newsletter"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{lower}");
    assert_ne!(upper["id"], lower["id"]);
    let (status, error) = call(
        &app,
        post("/v3/asm/groups", WRITER, &json!({"name": "Newsletter"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&error, Some("name"));
}
