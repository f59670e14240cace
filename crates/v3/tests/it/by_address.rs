//! Lists of addresses show an address once. An address can have two entries
//! that v3 shows the same way: an Unsubscribe (a v3 POST) and a Manual entry
//! (a SendPost `manual` create globally, a Postmark create in the group's
//! stream). The seed shape's lists are of addresses and `total` counts
//! addresses, so each address is one row, in every list, total and count.

use actix_web::http::StatusCode;
use actix_web::test;
use hush_engine::Engine;
use hush_model::{Email, Kind, NewSuppression, Origin, Scope, Timestamp};
use serde_json::json;

use crate::support::*;

const GLOBAL: &str = "/v3/asm/suppressions/global";

/// A Manual entry as SendPost's `manual` or a Postmark create makes it.
async fn manual(engine: &Engine, address: &str, scope: Scope) {
    engine
        .add(
            &tenant("demo"),
            vec![NewSuppression {
                email: Email::parse(address).unwrap(),
                scope,
                kind: Kind::Manual,
                origin: Origin::Customer,
                created_at: Timestamp::from_unix_seconds(1_000),
            }],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
}

async fn entries(engine: &Engine, address: &str) -> usize {
    engine
        .entries(&tenant("demo"), &Email::parse(address).unwrap())
        .await
        .unwrap()
        .len()
}

#[actix_web::test]
async fn the_global_list_shows_an_unsubscribed_and_manual_address_once() {
    let engine = engine();
    manual(&engine, "m@example.com", Scope::Global).await;
    manual(&engine, "only-manual@example.com", Scope::Global).await;
    let app = app(engine.clone()).await;
    let (status, _) = call(
        &app,
        post(
            GLOBAL,
            WRITER,
            &json!({"recipient_emails": ["m@example.com", "n@example.com"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(entries(&engine, "m@example.com").await, 2, "two entries");

    let (_, list) = call(&app, get(GLOBAL, READER)).await;
    assert_eq!(list["total"], 3, "{list}");
    let listed = list["recipient_emails"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{list}");
    assert_eq!(
        listed.iter().filter(|e| *e == "m@example.com").count(),
        1,
        "{list}"
    );
    // Paging goes by address: three pages of one, then nothing.
    let mut paged = Vec::new();
    for offset in 0..4 {
        let (_, page) = call(
            &app,
            get(&format!("{GLOBAL}?limit=1&offset={offset}"), READER),
        )
        .await;
        assert_eq!(page["total"], 3);
        paged.extend(page["recipient_emails"].as_array().unwrap().clone());
    }
    assert_eq!(&paged, listed);

    // SendGrid's list and the alias on the global path.
    for path in ["/v3/suppression/unsubscribes", GLOBAL] {
        let res = test::call_service(&app, get(path, SG_READER).to_request()).await;
        let link = res
            .headers()
            .get("link")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body: serde_json::Value = test::read_body_json(res).await;
        let rows = body.as_array().unwrap();
        assert_eq!(rows.len(), 3, "{path}: {body}");
        assert_eq!(
            rows.iter()
                .filter(|r| r["email"] == "m@example.com")
                .count(),
            1,
            "{path}: {body}"
        );
        assert!(link.contains("offset=0>; rel=\"last\""), "{link}");
    }

    // One address, both entries: a v3 delete takes both, since v3 shows
    // them as one.
    let (status, one) = call(&app, get(&format!("{GLOBAL}/m@example.com"), READER)).await;
    assert_eq!(
        (status, one),
        (StatusCode::OK, json!({"recipient_email": "m@example.com"}))
    );
    let (status, _) = call(&app, delete(&format!("{GLOBAL}/m@example.com"), WRITER)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(entries(&engine, "m@example.com").await, 0);
    let (status, _) = call(&app, get(&format!("{GLOBAL}/m@example.com"), READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = call(&app, get(GLOBAL, READER)).await;
    assert_eq!(list["total"], 2, "{list}");
}

#[actix_web::test]
async fn group_lists_and_counts_show_an_address_once() {
    let engine = engine();
    engine.bootstrap_tenant(&tenant("demo")).await.unwrap();
    let app = app(engine.clone()).await;
    let (status, group) = call(
        &app,
        post("/v3/asm/groups", WRITER, &json!({"name": "Weekly"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = group["id"].as_i64().unwrap();
    let stored = engine
        .group_id_from_shown(&tenant("demo"), id)
        .expect("the shown id names the group");
    // A Postmark create in the group's stream, then a v3 group POST.
    manual(&engine, "m@example.com", Scope::Group(stored)).await;
    let members = format!("/v3/asm/groups/{id}/suppressions");
    let body = json!({"recipient_emails": ["m@example.com", "n@example.com"]});
    let (status, _) = call(&app, post(&members, WRITER, &body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(entries(&engine, "m@example.com").await, 2);

    let (_, page) = call(&app, get(&members, READER)).await;
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["recipient_emails"].as_array().unwrap().len(), 2);
    let (_, shown) = call(&app, get(&format!("/v3/asm/groups/{id}"), READER)).await;
    assert_eq!(shown["unsubscribes"], 2, "{shown}");
    let (_, all) = call(&app, get("/v3/asm/groups", READER)).await;
    let listed = all["suppression_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(listed["unsubscribes"], 2);

    // The sendgrid shape: members, the cross-group view, the group itself.
    let (_, members_sg) = call(&app, get(&members, SG_READER)).await;
    assert_eq!(members_sg.as_array().unwrap().len(), 2, "{members_sg}");
    let (_, every) = call(&app, get("/v3/asm/suppressions", SG_READER)).await;
    assert_eq!(every.as_array().unwrap().len(), 2, "{every}");
    let (_, sg_group) = call(&app, get(&format!("/v3/asm/groups/{id}"), SG_READER)).await;
    assert_eq!(sg_group["unsubscribes"], 2);

    let (status, _) = call(&app, delete(&format!("{members}/m@example.com"), WRITER)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        entries(&engine, "m@example.com").await,
        0,
        "both entries go"
    );
    let (_, page) = call(&app, get(&members, READER)).await;
    assert_eq!(
        page,
        json!({"recipient_emails": ["n@example.com"], "total": 1})
    );
}
