//! `GET /message-streams/{stream}/suppressions/dump` (Postmark API docs,
//! "Suppressions API", "Suppression dump").

use actix_web::body::{BodySize, MessageBody as _};
use actix_web::http::StatusCode;
use actix_web::test;
use hush_model::{BounceClass, Kind, NewSuppression, Origin, Scope, Timestamp};

use crate::support::*;

fn bounce(class: BounceClass) -> Kind {
    Kind::Bounce {
        class,
        status: None,
        reason: None,
    }
}

/// One entry of every kind and origin, globally, in `outbound` and in
/// another stream.
async fn seeded() -> hush_engine::Engine {
    let engine = engine().await;
    let outbound = group_id(&engine, "outbound").await;
    let other = engine
        .create_group(
            &demo(),
            hush_engine::GroupSpec {
                key: Some(hush_model::GroupKey::parse("broadcast").unwrap()),
                name: "Broadcast".into(),
                description: String::new(),
                is_default: false,
                stream_type: hush_model::StreamType::Broadcasts,
                unsubscribe_handling: None,
            },
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap()
        .id;
    let global = Scope::Global;
    let spam = Kind::SpamComplaint { source: None };
    let invalid = Kind::Invalid { reason: None };
    for (address, scope, kind, origin, at) in [
        (
            "hard@x.com",
            global,
            bounce(BounceClass::Hard),
            Origin::Recipient,
            "2024-01-01T00:00:00Z",
        ),
        (
            "soft@x.com",
            global,
            bounce(BounceClass::Soft),
            Origin::Customer,
            "2024-01-10T12:00:00Z",
        ),
        (
            "block@x.com",
            global,
            bounce(BounceClass::Block),
            Origin::Recipient,
            "2024-01-11T12:00:00Z",
        ),
        (
            "invalid@x.com",
            global,
            invalid,
            Origin::Recipient,
            "2024-01-12T12:00:00Z",
        ),
        (
            "spam@x.com",
            global,
            spam,
            Origin::Recipient,
            "2024-01-20T12:00:00Z",
        ),
        (
            "unsub@x.com",
            global,
            Kind::Unsubscribe,
            Origin::Recipient,
            "2024-01-31T23:59:59Z",
        ),
        (
            "admin@x.com",
            global,
            Kind::Manual,
            Origin::Admin,
            "2024-02-01T00:00:00Z",
        ),
        (
            "mine@x.com",
            Scope::Group(outbound),
            Kind::Manual,
            Origin::Customer,
            "2024-02-02T00:00:00Z",
        ),
        (
            "elsewhere@x.com",
            Scope::Group(other),
            Kind::Manual,
            Origin::Customer,
            "2024-02-03T00:00:00Z",
        ),
    ] {
        seed(&engine, address, scope, kind, origin, at).await;
    }
    engine
}

async fn dump(query: &str) -> (StatusCode, serde_json::Value) {
    let app = app(seeded().await).await;
    call(
        &app,
        get(&format!(
            "/message-streams/outbound/suppressions/dump{query}"
        )),
    )
    .await
}

fn addresses_of(body: &serde_json::Value) -> Vec<String> {
    rows(body).into_iter().map(|(a, _, _)| a).collect()
}

#[actix_web::test]
async fn shows_global_entries_and_the_streams_own_newest_first() {
    let (status, body) = dump("").await;
    assert_eq!(status, StatusCode::OK);
    let rows = rows(&body);
    let want = [
        ("mine@x.com", "ManualSuppression", "Customer"),
        ("admin@x.com", "ManualSuppression", "Admin"),
        ("unsub@x.com", "ManualSuppression", "Recipient"),
        ("spam@x.com", "SpamComplaint", "Recipient"),
        ("invalid@x.com", "HardBounce", "Recipient"),
        ("block@x.com", "HardBounce", "Recipient"),
        ("soft@x.com", "HardBounce", "Customer"),
        ("hard@x.com", "HardBounce", "Recipient"),
    ];
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, r, o)| (a.as_str(), r.as_str(), o.as_str()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        body["Suppressions"][7]["CreatedAt"],
        "2024-01-01T00:00:00+00:00"
    );
}

#[actix_web::test]
async fn the_other_stream_sees_its_own_entry_and_not_outbounds() {
    let app = app(seeded().await).await;
    let (status, body) = call(&app, get("/message-streams/broadcast/suppressions/dump")).await;
    assert_eq!(status, StatusCode::OK);
    let list = addresses_of(&body);
    assert!(list.contains(&"elsewhere@x.com".to_owned()), "{list:?}");
    assert!(!list.contains(&"mine@x.com".to_owned()), "{list:?}");
    assert_eq!(list.len(), 8);
}

#[actix_web::test]
async fn filters_by_each_reason_with_names_and_values_in_any_case() {
    for (query, want) in [
        (
            "?SuppressionReason=HardBounce",
            vec!["invalid@x.com", "block@x.com", "soft@x.com", "hard@x.com"],
        ),
        (
            "?suppressionReason=hardbounce&count=100&offset=0",
            vec!["invalid@x.com", "block@x.com", "soft@x.com", "hard@x.com"],
        ),
        ("?SUPPRESSIONREASON=SPAMCOMPLAINT", vec!["spam@x.com"]),
        (
            "?suppressionreason=ManualSuppression",
            vec!["mine@x.com", "admin@x.com", "unsub@x.com"],
        ),
    ] {
        let (status, body) = dump(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(addresses_of(&body), want, "{query}");
    }
}

#[actix_web::test]
async fn filters_by_origin() {
    for (query, want) in [
        (
            "?Origin=Recipient",
            vec![
                "unsub@x.com",
                "spam@x.com",
                "invalid@x.com",
                "block@x.com",
                "hard@x.com",
            ],
        ),
        ("?origin=customer", vec!["mine@x.com", "soft@x.com"]),
        ("?ORIGIN=ADMIN", vec!["admin@x.com"]),
        (
            "?Origin=Customer&SuppressionReason=HardBounce",
            vec!["soft@x.com"],
        ),
    ] {
        let (status, body) = dump(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(addresses_of(&body), want, "{query}");
    }
}

#[actix_web::test]
async fn date_bounds_are_inclusive_utc_days() {
    for (query, want) in [
        (
            "?fromdate=2024-01-31&todate=2024-02-01",
            vec!["admin@x.com", "unsub@x.com"],
        ),
        ("?fromDate=2024-02-02", vec!["mine@x.com"]),
        ("?ToDate=2024-01-01", vec!["hard@x.com"]),
        ("?todate=2023-12-31", vec![]),
        (
            "?fromdate=2024-01-20T12:00:00Z&todate=2024-01-20T12:00:00%2B00:00",
            vec!["spam@x.com"],
        ),
        (
            "?fromdate=2024-01-20T12:00:00&todate=2024-01-31T23:59:58",
            vec!["spam@x.com"],
        ),
    ] {
        let (status, body) = dump(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(addresses_of(&body), want, "{query}");
    }
}

#[actix_web::test]
async fn filters_by_address_exactly_or_by_fragment() {
    for (query, want) in [
        ("?EmailAddress=spam%40x.com", vec!["spam@x.com"]),
        ("?emailaddress=SPAM@X.COM", vec!["spam@x.com"]),
        ("?EmailAddress=nobody%40x.com", vec![]),
        ("?EmailAddress=sof", vec!["soft@x.com"]),
        (
            "?EmailAddress=",
            vec![
                "mine@x.com",
                "admin@x.com",
                "unsub@x.com",
                "spam@x.com",
                "invalid@x.com",
                "block@x.com",
                "soft@x.com",
                "hard@x.com",
            ],
        ),
    ] {
        let (status, body) = dump(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(addresses_of(&body), want, "{query}");
    }
}

#[actix_web::test]
async fn count_and_offset_are_ignored() {
    let (status, body) = dump("?count=1&offset=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&body).len(), 8);
}

#[actix_web::test]
async fn refuses_a_bad_reason_origin_or_date() {
    let (status, body) = dump("?SuppressionReason=Bounce").await;
    let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1404);
    assert_eq!(message, "Parameter 'SuppressionReason' is invalid.");
    let (status, body) = dump("?Origin=Someone").await;
    let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1405);
    assert_eq!(message, "Parameter 'Origin' is invalid.");
    let (status, body) = dump("?fromdate=01/02/2024").await;
    let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1407);
    assert!(message.contains("fromdate"), "{message}");
}

#[actix_web::test]
async fn an_unknown_stream_is_1226() {
    let app = app(seeded().await).await;
    for path in ["nope", "Not-A-Key", "all"] {
        let (status, body) = call(
            &app,
            get(&format!("/message-streams/{path}/suppressions/dump")),
        )
        .await;
        let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1226);
        assert_eq!(
            message,
            "The message stream for the provided 'ID' was not found."
        );
    }
}

#[actix_web::test]
async fn an_empty_stream_dumps_an_empty_list() {
    let app = app(engine().await).await;
    let (status, body) = call(&app, get("/message-streams/outbound/suppressions/dump")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"Suppressions": []}));
}

/// The body is a stream, not a buffer: its size is unknown when the status
/// is sent, and a dump across several store batches is one valid document
/// with every entry once.
#[actix_web::test]
async fn streams_large_dumps_across_batches() {
    let engine = engine().await;
    let total = 2_345;
    let items = (0..total)
        .map(|i| NewSuppression {
            email: email(&format!("user{i}@bulk.example")),
            scope: Scope::Global,
            kind: bounce(BounceClass::Hard),
            origin: Origin::Recipient,
            created_at: Timestamp::from_unix_seconds(1_700_000_000 + i64::from(i % 7)),
        })
        .collect();
    engine
        .add(&demo(), items, &hush_engine::conformance::tester())
        .await
        .unwrap();
    let app = app(engine).await;
    let res = test::call_service(
        &app,
        get("/message-streams/outbound/suppressions/dump").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.response().body().size(), BodySize::Stream);
    let body: serde_json::Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    let mut list = addresses_of(&body);
    assert_eq!(list.len(), total as usize);
    list.sort();
    list.dedup();
    assert_eq!(list.len(), total as usize);
}

/// The store is read one batch at a time as the client reads: after the
/// first batch of rows has arrived, one scan has been made, though more
/// rows remain; reading on makes the rest. No listing with a total is made.
#[actix_web::test]
async fn the_store_is_read_as_the_body_is_read() {
    use std::sync::Arc;

    use futures_util::future::poll_fn;

    let backend = crate::counting::CountingBackend::new();
    let engine = hush_engine::Engine::new(Arc::clone(&backend) as Arc<dyn hush_engine::Backend>);
    engine.bootstrap_tenant(&demo()).await.unwrap();
    let total: u32 = 3_500;
    let items = (0..total)
        .map(|i| NewSuppression {
            email: email(&format!("user{i}@bulk.example")),
            scope: Scope::Global,
            kind: Kind::Manual,
            origin: Origin::Customer,
            created_at: Timestamp::from_unix_seconds(1_700_000_000 + i64::from(i)),
        })
        .collect();
    engine
        .add(&demo(), items, &hush_engine::conformance::tester())
        .await
        .unwrap();
    let app = app(engine).await;
    let res = test::call_service(
        &app,
        get("/message-streams/outbound/suppressions/dump").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = std::pin::pin!(res.into_body());
    let mut next = async || {
        poll_fn(|cx| body.as_mut().poll_next(cx))
            .await
            .map(|chunk| chunk.map_err(|_| "body error").unwrap())
    };
    let head = next().await.unwrap();
    assert_eq!(&head[..], b"{\"Suppressions\":[");
    let first = next().await.unwrap();
    assert_eq!(backend.scans(), 1);
    let mut received = first.to_vec();
    while let Some(chunk) = next().await {
        received.extend_from_slice(&chunk);
    }
    assert!(backend.scans() >= 4, "{} scans", backend.scans());
    assert!(
        backend
            .largest_scan
            .load(std::sync::atomic::Ordering::SeqCst)
            <= 1_000
    );
    assert_eq!(backend.lists.load(std::sync::atomic::Ordering::SeqCst), 0);
    let mut document = head.to_vec();
    document.extend_from_slice(&received);
    let parsed: serde_json::Value = serde_json::from_slice(&document).unwrap();
    let list = addresses_of(&parsed);
    assert_eq!(list.len(), total as usize);
    assert_eq!(list[0], format!("user{}@bulk.example", total - 1));
}

/// A fragment is literal and bounded: `%` and `_` are themselves, and one
/// longer than any address, or holding a control character (NUL
/// included, which PostgreSQL cannot compare), is refused naming the
/// parameter.
#[actix_web::test]
async fn address_fragments_are_literal_and_bounded() {
    for query in [
        "?EmailAddress=%25",
        "?EmailAddress=_",
        "?EmailAddress=%25x.com",
    ] {
        let (status, body) = dump(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert!(addresses_of(&body).is_empty(), "{query}: {body}");
    }
    let long = format!("?EmailAddress={}", "a".repeat(300));
    for query in [long.as_str(), "?EmailAddress=a%00b"] {
        let (status, body) = dump(query).await;
        let message = assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, 1407);
        assert!(message.contains("EmailAddress"), "{message}");
    }
}
