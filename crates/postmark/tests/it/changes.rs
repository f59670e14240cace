//! `POST /message-streams/{stream}/suppressions` and `…/delete` (Postmark
//! API docs, "Suppressions API"; docs/api/postmark.md): a status per item,
//! in request order.

use actix_web::http::StatusCode;
use actix_web::test;
use hush_engine::Engine;
use hush_model::{BounceClass, Kind, KindSet, ListFilter, Origin, Scope, ScopeFilter};
use serde_json::json;

use crate::support::*;

const CREATE: &str = "/message-streams/outbound/suppressions";
const DELETE: &str = "/message-streams/outbound/suppressions/delete";
const AT: &str = "2024-03-01T00:00:00Z";

fn hard() -> Kind {
    Kind::Bounce {
        class: BounceClass::Hard,
        status: Some("5.1.1".into()),
        reason: None,
    }
}

fn spam() -> Kind {
    Kind::SpamComplaint { source: None }
}

async fn total(engine: &Engine) -> u64 {
    engine
        .count(&demo(), &ListFilter::new(KindSet::ALL, ScopeFilter::Any))
        .await
        .unwrap()
}

fn ok(address: &str, status: &str) -> (String, String, Option<String>) {
    (address.to_owned(), status.to_owned(), None)
}

fn failed(address: &str, message: &str) -> (String, String, Option<String>) {
    (
        address.to_owned(),
        "Failed".to_owned(),
        Some(message.to_owned()),
    )
}

#[actix_web::test]
async fn create_follows_the_seed_example() {
    let engine = engine().await;
    seed(
        &engine,
        "spammy.address@wildbit.com",
        Scope::Global,
        spam(),
        Origin::Recipient,
        AT,
    )
    .await;
    let app = app(engine.clone()).await;
    let (status, body) = call(
        &app,
        post(
            CREATE,
            &addresses(&[
                "good.address@wildbit.com",
                "spammy.address@wildbit.com",
                "invalid-email-address",
            ]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        vec![
            ok("good.address@wildbit.com", "Suppressed"),
            failed("spammy.address@wildbit.com", NO_AUTHORITY),
            failed("invalid-email-address", INVALID_ADDRESS),
        ]
    );
    // Manual, Customer, in the stream's group (docs/mapping.md).
    let outbound = group_id(&engine, "outbound").await;
    let entries = engine
        .entries(&demo(), &email("good.address@wildbit.com"))
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].scope, Scope::Group(outbound));
    assert_eq!(entries[0].kind, Kind::Manual);
    assert_eq!(entries[0].origin, Origin::Customer);
    // The spam complaint is untouched and nothing else was stored.
    assert_eq!(total(&engine).await, 2);
    let (_, dump) = call(&app, get("/message-streams/outbound/suppressions/dump")).await;
    assert!(rows(&dump).contains(&(
        "good.address@wildbit.com".into(),
        "ManualSuppression".into(),
        "Customer".into()
    )));
}

#[actix_web::test]
async fn create_is_refused_over_entries_the_customer_may_not_change() {
    let engine = engine().await;
    seed(
        &engine,
        "unsub@x.com",
        Scope::Global,
        Kind::Unsubscribe,
        Origin::Recipient,
        AT,
    )
    .await;
    seed(
        &engine,
        "admin@x.com",
        Scope::Global,
        Kind::Manual,
        Origin::Admin,
        AT,
    )
    .await;
    seed(
        &engine,
        "bounced@x.com",
        Scope::Global,
        hard(),
        Origin::Recipient,
        AT,
    )
    .await;
    let app = app(engine.clone()).await;
    let (status, body) = call(
        &app,
        post(
            CREATE,
            &addresses(&["unsub@x.com", "admin@x.com", "bounced@x.com"]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        statuses(&body),
        vec![
            failed("unsub@x.com", NO_AUTHORITY),
            failed("admin@x.com", NO_AUTHORITY),
            // A bounce is the customer's to reactivate, so it may also be
            // blocked by hand on top.
            ok("bounced@x.com", "Suppressed"),
        ]
    );
    assert_eq!(total(&engine).await, 4);
}

#[actix_web::test]
async fn create_handles_duplicates_and_repeats_idempotently() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    let list = ["a@x.com", "A@X.COM", " a@x.com ", "a@x.com"];
    for _ in 0..2 {
        let (status, body) = call(&app, post(CREATE, &addresses(&list))).await;
        assert_eq!(status, StatusCode::OK);
        let got = statuses(&body);
        // Each item echoes the address exactly as it was sent.
        let want: Vec<_> = list.iter().map(|a| ok(a, "Suppressed")).collect();
        assert_eq!(got, want);
    }
    assert_eq!(total(&engine).await, 1);
}

#[actix_web::test]
async fn create_takes_up_to_fifty() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    let fifty: Vec<String> = (0..50).map(|i| format!("u{i}@x.com")).collect();
    let refs: Vec<&str> = fifty.iter().map(String::as_str).collect();
    let (status, body) = call(&app, post(CREATE, &addresses(&refs))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statuses(&body).len(), 50);

    let mut many = refs.clone();
    many.push("one-more@x.com");
    let (status, body) = call(&app, post(CREATE, &addresses(&many))).await;
    let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1410);
    assert_eq!(
        message,
        "You cannot provide more than the maximum number of suppressions for this request."
    );
    assert!(
        engine
            .entries(&demo(), &email("one-more@x.com"))
            .await
            .unwrap()
            .is_empty()
    );
    let (status, body) = call(&app, post(DELETE, &addresses(&many))).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1410);
    assert_eq!(total(&engine).await, 50);
}

#[actix_web::test]
async fn a_missing_or_malformed_body_is_1409() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    for uri in [CREATE, DELETE] {
        for raw in [
            "",
            "{",
            "{}",
            "[]",
            "null",
            r#""a@x.com""#,
            r#"{"Suppressions":"a@x.com"}"#,
            r#"{"Suppressions":null}"#,
            r#"{"Suppressions":{"EmailAddress":"a@x.com"}}"#,
            r#"{"suppressions":[{"EmailAddress":"a@x.com"}]}"#,
        ] {
            let req = test::TestRequest::post()
                .uri(uri)
                .insert_header(("X-Postmark-Server-Token", TOKEN))
                .set_payload(raw);
            let (status, body) = call(&app, req).await;
            let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1409);
            assert_eq!(message, "A proper request body must be provided.", "{raw}");
        }
    }
    assert_eq!(total(&engine).await, 0);
}

/// 1409 is for the body's shape only (docs/mapping.md, "Postmark malformed
/// items"). A malformed item (postmark.js sends `{}` for an undefined
/// address) is that item's `Failed`, and the good address beside it is
/// stored. With no address to echo the item echoes `""`; a non-string
/// echoes its JSON text.
#[actix_web::test]
async fn a_malformed_item_is_that_items_failed() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    let raw = r#"{"Suppressions":[{"EmailAddress":"ok1@example.com"},{},{"EmailAddress":null},
        {"EmailAddress":5},{"Email":"a@x.com"},"b@x.com",{"EmailAddress":["c@x.com"]},
        {"EmailAddress":{"x":"d@x.com"}},{"EmailAddress":true}]}"#;
    let send = |uri: &str| {
        test::TestRequest::post()
            .uri(uri)
            .insert_header(("X-Postmark-Server-Token", TOKEN))
            .insert_header(("Content-Type", "application/json"))
            .set_payload(raw)
    };
    let malformed = |first: (String, String, Option<String>)| {
        vec![
            first,
            failed("", INVALID_ADDRESS),
            failed("", INVALID_ADDRESS),
            failed("5", INVALID_ADDRESS),
            failed("", INVALID_ADDRESS),
            failed("", INVALID_ADDRESS),
            failed(r#"["c@x.com"]"#, INVALID_ADDRESS),
            failed(r#"{"x":"d@x.com"}"#, INVALID_ADDRESS),
            failed("true", INVALID_ADDRESS),
        ]
    };
    let (status, body) = call(&app, send(CREATE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        malformed(ok("ok1@example.com", "Suppressed"))
    );
    let (_, dump) = call(&app, get("/message-streams/outbound/suppressions/dump")).await;
    assert_eq!(
        rows(&dump),
        vec![(
            "ok1@example.com".to_owned(),
            "ManualSuppression".to_owned(),
            "Customer".to_owned()
        )]
    );

    let (status, body) = call(&app, send(DELETE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), malformed(ok("ok1@example.com", "Deleted")));
    assert_eq!(total(&engine).await, 0);
}

#[actix_web::test]
async fn changes_in_an_unknown_stream_are_1226() {
    let app = app(engine().await).await;
    for uri in [
        "/message-streams/nope/suppressions",
        "/message-streams/nope/suppressions/delete",
    ] {
        let (status, body) = call(&app, post(uri, &addresses(&["a@x.com"]))).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1226);
    }
}

#[actix_web::test]
async fn delete_follows_the_authority_rules() {
    let engine = engine().await;
    let outbound = group_id(&engine, "outbound").await;
    let mine = Scope::Group(outbound);
    for (address, scope, kind, origin) in [
        ("manual@x.com", mine, Kind::Manual, Origin::Customer),
        (
            "global-manual@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Customer,
        ),
        (
            "customer-unsub@x.com",
            Scope::Global,
            Kind::Unsubscribe,
            Origin::Customer,
        ),
        ("bounced@x.com", Scope::Global, hard(), Origin::Recipient),
        (
            "posted-bounce@x.com",
            Scope::Global,
            hard(),
            Origin::Customer,
        ),
        (
            "invalid@x.com",
            Scope::Global,
            Kind::Invalid { reason: None },
            Origin::Recipient,
        ),
        ("spam@x.com", Scope::Global, spam(), Origin::Recipient),
        (
            "customer-spam@x.com",
            Scope::Global,
            spam(),
            Origin::Customer,
        ),
        (
            "unsub@x.com",
            Scope::Global,
            Kind::Unsubscribe,
            Origin::Recipient,
        ),
        (
            "recipient-manual@x.com",
            mine,
            Kind::Manual,
            Origin::Recipient,
        ),
        ("admin@x.com", Scope::Global, Kind::Manual, Origin::Admin),
        ("admin-bounce@x.com", Scope::Global, hard(), Origin::Admin),
    ] {
        seed(&engine, address, scope, kind, origin, AT).await;
    }
    let app = app(engine.clone()).await;
    let (status, body) = call(
        &app,
        post(
            DELETE,
            &addresses(&[
                "manual@x.com",
                "spam@x.com",
                "global-manual@x.com",
                "customer-unsub@x.com",
                "bounced@x.com",
                "posted-bounce@x.com",
                "invalid@x.com",
                "customer-spam@x.com",
                "unsub@x.com",
                "recipient-manual@x.com",
                "admin@x.com",
                "admin-bounce@x.com",
                "not.suppressed@x.com",
                "not-an-address",
            ]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        statuses(&body),
        vec![
            ok("manual@x.com", "Deleted"),
            failed("spam@x.com", NO_AUTHORITY),
            ok("global-manual@x.com", "Deleted"),
            ok("customer-unsub@x.com", "Deleted"),
            ok("bounced@x.com", "Deleted"),
            ok("posted-bounce@x.com", "Deleted"),
            ok("invalid@x.com", "Deleted"),
            failed("customer-spam@x.com", NO_AUTHORITY),
            failed("unsub@x.com", NO_AUTHORITY),
            failed("recipient-manual@x.com", NO_AUTHORITY),
            failed("admin@x.com", NO_AUTHORITY),
            failed("admin-bounce@x.com", NO_AUTHORITY),
            ok("not.suppressed@x.com", "Deleted"),
            failed("not-an-address", INVALID_ADDRESS),
        ]
    );
    // Deleted means gone (a bounce is reactivated: mail may go again);
    // Failed means untouched.
    for address in [
        "manual@x.com",
        "bounced@x.com",
        "invalid@x.com",
        "customer-unsub@x.com",
    ] {
        assert!(
            engine
                .entries(&demo(), &email(address))
                .await
                .unwrap()
                .is_empty(),
            "{address}"
        );
        assert!(
            engine
                .may_send(&demo(), &email(address), Some(outbound))
                .await
                .unwrap()
        );
    }
    for address in [
        "spam@x.com",
        "unsub@x.com",
        "recipient-manual@x.com",
        "admin@x.com",
    ] {
        assert_eq!(
            engine
                .entries(&demo(), &email(address))
                .await
                .unwrap()
                .len(),
            1,
            "{address}"
        );
    }
    assert_eq!(total(&engine).await, 6);
}

#[actix_web::test]
async fn delete_leaves_other_streams_and_refused_addresses_whole() {
    let engine = engine().await;
    let outbound = group_id(&engine, "outbound").await;
    let app = app(engine.clone()).await;
    let (status, _) = call(
        &app,
        post(
            "/message-streams",
            &json!({"ID": "broadcast", "Name": "Broadcast", "MessageStreamType": "Broadcasts"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let broadcast = group_id(&engine, "broadcast").await;
    seed(
        &engine,
        "two@x.com",
        Scope::Group(outbound),
        Kind::Manual,
        Origin::Customer,
        AT,
    )
    .await;
    seed(
        &engine,
        "two@x.com",
        Scope::Group(broadcast),
        Kind::Manual,
        Origin::Customer,
        AT,
    )
    .await;
    // A bounce the customer could reactivate, and a complaint it cannot:
    // the address stays suppressed, so nothing is removed.
    seed(
        &engine,
        "mixed@x.com",
        Scope::Global,
        hard(),
        Origin::Recipient,
        AT,
    )
    .await;
    seed(
        &engine,
        "mixed@x.com",
        Scope::Global,
        spam(),
        Origin::Recipient,
        AT,
    )
    .await;

    let (status, body) = call(
        &app,
        post(
            DELETE,
            &addresses(&["two@x.com", "mixed@x.com", "TWO@x.com"]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        statuses(&body),
        vec![
            ok("two@x.com", "Deleted"),
            failed("mixed@x.com", NO_AUTHORITY),
            ok("TWO@x.com", "Deleted"),
        ]
    );
    let left = engine.entries(&demo(), &email("two@x.com")).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].scope, Scope::Group(broadcast));
    assert_eq!(
        engine
            .entries(&demo(), &email("mixed@x.com"))
            .await
            .unwrap()
            .len(),
        2
    );
}

#[actix_web::test]
async fn the_other_tenants_entries_are_out_of_reach() {
    let engine = engine().await;
    engine
        .add(
            &tenant("other"),
            vec![hush_model::NewSuppression {
                email: email("theirs@x.com"),
                scope: Scope::Global,
                kind: spam(),
                origin: Origin::Recipient,
                created_at: Engine::now(),
            }],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    let app = app(engine.clone()).await;
    // demo sees nothing of other's complaint and may block the address itself.
    let (_, body) = call(&app, post(CREATE, &addresses(&["theirs@x.com"]))).await;
    assert_eq!(statuses(&body), vec![ok("theirs@x.com", "Suppressed")]);
    let (_, body) = call(&app, get("/message-streams/outbound/suppressions/dump")).await;
    assert_eq!(rows(&body).len(), 1);
    assert_eq!(rows(&body)[0].2, "Customer");
}

/// A whole create or delete is one store write, whatever the number of
/// addresses: one durable commit, not fifty.
#[actix_web::test]
async fn a_request_is_one_store_write() {
    use std::sync::Arc;

    let backend = crate::counting::CountingBackend::new();
    let engine = Engine::new(Arc::clone(&backend) as Arc<dyn hush_engine::Backend>);
    engine.bootstrap_tenant(&demo()).await.unwrap();
    seed(
        &engine,
        "spam@x.com",
        Scope::Global,
        spam(),
        Origin::Recipient,
        AT,
    )
    .await;
    let app = app(engine.clone()).await;
    let list: Vec<String> = (0..20).map(|i| format!("u{i}@x.com")).collect();
    let mut refs: Vec<&str> = list.iter().map(String::as_str).collect();
    refs.push("spam@x.com");
    let before = backend.writes();

    let (status, body) = call(&app, post(CREATE, &addresses(&refs))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        statuses(&body)
            .iter()
            .filter(|s| s.1 == "Suppressed")
            .count(),
        20
    );
    assert_eq!(backend.writes(), (before.0 + 1, before.1));

    let (status, body) = call(&app, post(DELETE, &addresses(&refs))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        statuses(&body).iter().filter(|s| s.1 == "Deleted").count(),
        20
    );
    assert_eq!(backend.writes(), (before.0 + 1, before.1 + 1));
    assert_eq!(total(&engine).await, 1);
}

#[actix_web::test]
async fn an_empty_list_or_only_invalid_addresses_store_nothing() {
    let engine = engine().await;
    let app = app(engine.clone()).await;
    for uri in [CREATE, DELETE] {
        let (status, body) = call(&app, post(uri, &json!({"Suppressions": []}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"Suppressions": []}));
        let (status, body) = call(&app, post(uri, &addresses(&["", "no-at-sign", "a@"]))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            statuses(&body),
            vec![
                failed("", INVALID_ADDRESS),
                failed("no-at-sign", INVALID_ADDRESS),
                failed("a@", INVALID_ADDRESS),
            ]
        );
    }
    assert_eq!(total(&engine).await, 0);
}
