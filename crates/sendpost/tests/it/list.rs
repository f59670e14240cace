use actix_web::http::StatusCode;
use hush_engine::GroupSpec;
use hush_model::{BounceClass, Kind, NewSuppression, Origin, Scope, StreamType, Timestamp};
use serde_json::{Value, json};

use crate::support::*;

/// 2024-01-10T00:00:00Z.
const DAY: i64 = 1_704_844_800;
const NANOS: i64 = 1_000_000_000;

fn at(address: &str, kind: Kind, nanos: i64) -> NewSuppression {
    NewSuppression {
        email: email(address),
        scope: Scope::Global,
        kind,
        origin: Origin::Recipient,
        created_at: Timestamp::from_nanos(nanos),
    }
}

fn bounce(class: BounceClass, reason: &str) -> Kind {
    Kind::Bounce {
        class,
        status: Some("5.1.1".into()),
        reason: Some(reason.into()),
    }
}

fn list_uri(query: &str) -> String {
    format!("{PATH}?{query}")
}

async fn rows_of<S, B>(app: &S, query: &str) -> Value
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    ok(app, get(&list_uri(query))).await
}

#[actix_web::test]
async fn bad_parameters_are_422_naming_the_parameter() {
    let app = app(engine()).await;
    let cases = [
        ("to=2024-01-02", "from"),
        ("from=2024-01-01", "to"),
        ("from=&to=2024-01-02", "from"),
        ("from=01/02/2024&to=2024-01-02", "from"),
        ("from=2024-01-01&to=2024-02-30", "to"),
        ("from=2024-01-01T00:00:00&to=2024-01-02", "from"),
        ("from=2024-01-02&to=2024-01-01", "to"),
        ("from=2024-01-01&to=2024-03-02", "to"),
        ("from=2024-01-01&to=2024-01-02&limit=0", "limit"),
        ("from=2024-01-01&to=2024-01-02&limit=101", "limit"),
        ("from=2024-01-01&to=2024-01-02&limit=100000", "limit"),
        ("from=2024-01-01&to=2024-01-02&limit=ten", "limit"),
        ("from=2024-01-01&to=2024-01-02&offset=-5", "offset"),
        ("from=2024-01-01&to=2024-01-02&offset=1.5", "offset"),
        ("from=2024-01-01&to=2024-01-02&type=not-a-type", "type"),
        ("from=2024-01-01&to=2024-01-02&type=hard_bounce", "type"),
        // Strictly YYYY-MM-DD and digits, nothing trimmed
        // (docs/api/sendpost.md).
        ("from=%2B2024-01-01&to=2024-01-02", "from"),
        ("from=2024-01-01%20&to=2024-01-02", "from"),
        ("from=%202024-01-01&to=2024-01-02", "from"),
        ("from=2024-1-01&to=2024-01-02", "from"),
        ("from=02024-01-01&to=2024-01-02", "from"),
        ("from=2024-01-01&to=2024-01-02-", "to"),
        ("from=2024-01-01&to=2024-01-02&limit=%2B5", "limit"),
        ("from=2024-01-01&to=2024-01-02&limit=5%20", "limit"),
        ("from=2024-01-01&to=2024-01-02&offset=%2B0", "offset"),
        ("from=2024-01-01&to=2024-01-02&offset=%200", "offset"),
        ("from=2024-01-01&to=2024-01-02&type=manual%20", "type"),
        // Days a nanosecond timestamp cannot hold are refused, not
        // saturated into a span of 0 days.
        ("from=2300-01-01&to=2300-12-31", "from"),
        ("from=1000-01-01&to=1500-12-31", "from"),
        ("from=2262-04-10&to=2262-04-11", "to"),
        ("from=1677-09-21&to=1677-09-22", "from"),
        // Far apart but representable: the span is counted on the days.
        ("from=1700-01-01&to=2200-12-31", "to"),
        ("from=2262-02-09&to=2262-04-10&limit=0", "limit"),
    ];
    for (query, param) in cases {
        let reply = send(&app, get(&list_uri(query))).await;
        let message = assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some(param));
        assert!(message.contains(param), "{query}: {message}");
        assert_eq!(reply.body["error"]["code"], "invalid_request", "{query}");
        assert_eq!(reply.body["error"]["type"], "invalid_request_error");
    }
    let reply = send(&app, get(&list_uri("from=2300-01-01&to=2300-12-31"))).await;
    let message = assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("from"));
    assert!(
        message.contains("1677-09-22") && message.contains("2262-04-10"),
        "{message}"
    );
    // The edges that are allowed: 60 days apart, limit 1 and 100, offset 0.
    for query in [
        "from=2024-01-01&to=2024-03-01",
        "from=2024-01-01&to=2024-01-01&limit=1&offset=0",
        "from=2024-01-01&to=2024-01-01&limit=100",
        "from=2024-01-01&to=2024-01-01&type=&search=",
        "from=1677-09-22&to=1677-09-22",
        "from=2262-02-09&to=2262-04-10",
        "from=2024-01-01&to=2024-01-01&limit=007&offset=00",
    ] {
        assert_eq!(rows_of(&app, query).await, json!([]), "{query}");
    }
}

#[actix_web::test]
async fn days_are_inclusive_utc_and_newest_first() {
    let engine = engine();
    seed(
        &engine,
        vec![
            at("before@example.com", Kind::Manual, DAY * NANOS - 1),
            at("first@example.com", Kind::Manual, DAY * NANOS),
            at("last@example.com", Kind::Manual, (DAY + 86_400) * NANOS - 1),
            at("after@example.com", Kind::Manual, (DAY + 86_400) * NANOS),
        ],
    )
    .await;
    let app = app(engine).await;
    let rows = rows_of(&app, "from=2024-01-10&to=2024-01-10").await;
    assert_eq!(emails(&rows), ["last@example.com", "first@example.com"]);
    let rows = rows_of(&app, "from=2024-01-09&to=2024-01-11").await;
    assert_eq!(rows.as_array().unwrap().len(), 4);
    assert_eq!(
        rows[3]["created"].as_i64(),
        Some(DAY * NANOS - 1),
        "nanoseconds as stored"
    );
}

#[actix_web::test]
async fn limit_defaults_to_20_and_offset_pages() {
    let engine = engine();
    let items = (0..25)
        .map(|i| {
            at(
                &format!("user{i:02}@example.com"),
                Kind::Manual,
                (DAY + i) * NANOS,
            )
        })
        .collect();
    seed(&engine, items).await;
    let app = app(engine).await;
    let all = rows_of(&app, "from=2024-01-10&to=2024-01-10").await;
    let all = emails(&all);
    assert_eq!(all.len(), 20, "default limit");
    assert_eq!(all[0], "user24@example.com", "newest first");
    let full = emails(&rows_of(&app, "from=2024-01-10&to=2024-01-10&limit=100").await);
    assert_eq!(full.len(), 25);
    let mut paged = Vec::new();
    for offset in (0..25).step_by(10) {
        let page = rows_of(
            &app,
            &format!("from=2024-01-10&to=2024-01-10&limit=10&offset={offset}"),
        )
        .await;
        paged.extend(emails(&page));
    }
    assert_eq!(paged, full, "pages join up without gaps or repeats");
    let past = rows_of(&app, "from=2024-01-10&to=2024-01-10&offset=25").await;
    assert_eq!(past, json!([]));
}

#[actix_web::test]
async fn search_is_a_case_insensitive_substring() {
    let engine = engine();
    seed(
        &engine,
        vec![
            at("bob+tag@hooli.com", Kind::Manual, DAY * NANOS),
            at("alice@hooli.com", Kind::Manual, DAY * NANOS + 1),
            at("carol@piedpiper.com", Kind::Manual, DAY * NANOS + 2),
        ],
    )
    .await;
    let app = app(engine).await;
    let base = "from=2024-01-10&to=2024-01-10";
    for (search, want) in [
        ("HOOLI", vec!["alice@hooli.com", "bob+tag@hooli.com"]),
        ("ice%40Hooli.COM", vec!["alice@hooli.com"]),
        // The SDK sends `+` as %2B (`urllib.parse.quote`); a literal `+` is
        // a plus too.
        ("bob%2Btag", vec!["bob+tag@hooli.com"]),
        ("bob+tag", vec!["bob+tag@hooli.com"]),
        // Not trimmed: no address holds a space.
        ("%20piedpiper%20", vec![]),
        ("piedpiper", vec!["carol@piedpiper.com"]),
        ("nobody", vec![]),
    ] {
        let rows = rows_of(&app, &format!("{base}&search={search}")).await;
        assert_eq!(emails(&rows), want, "{search}");
    }
}

#[actix_web::test]
async fn one_row_per_kind_and_type_filters_by_reason() {
    let engine = engine();
    let t = DAY * NANOS;
    seed(
        &engine,
        vec![
            at("many@example.com", Kind::Manual, t),
            at("many@example.com", Kind::Unsubscribe, t + 1),
            at(
                "many@example.com",
                bounce(BounceClass::Hard, "550 5.1.1 User unknown"),
                t + 2,
            ),
            at(
                "many@example.com",
                Kind::SpamComplaint { source: None },
                t + 3,
            ),
            at(
                "soft@example.com",
                bounce(BounceClass::Soft, "452 4.2.2 Mailbox full"),
                t + 4,
            ),
            at(
                "block@example.com",
                bounce(BounceClass::Block, "554 5.7.1 blocked"),
                t + 5,
            ),
            at(
                "invalid@example.com",
                Kind::Invalid {
                    reason: Some("Mail domain is unknown".into()),
                },
                t + 6,
            ),
        ],
    )
    .await;
    let app = app(engine).await;
    let base = "from=2024-01-10&to=2024-01-10";
    let rows = rows_of(&app, base).await;
    let rows = rows.as_array().unwrap();
    let many: Vec<_> = rows
        .iter()
        .filter(|r| r["email"] == "many@example.com")
        .collect();
    assert_eq!(many.len(), 4, "one row per kind");
    let mut ids: Vec<_> = many.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each with its own id");
    let reasons: Vec<_> = many.iter().map(|r| r["reason"].as_i64().unwrap()).collect();
    assert_eq!(reasons, [3, 2, 1, 0], "newest first");

    // Every bounce class and an invalid address read as reason 2, with the
    // bounce's reason text as smtpError.
    let hard = rows_of(&app, &format!("{base}&type=hardBounce")).await;
    let shown: Vec<_> = hard
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["reason"], 2);
            assert_eq!(r["reasonText"], "hardBounce");
            assert_eq!(r["smtpError"], r["smtp_error"]);
            (
                r["email"].as_str().unwrap(),
                r["smtpError"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("invalid@example.com", "Mail domain is unknown"),
            ("block@example.com", "554 5.7.1 blocked"),
            ("soft@example.com", "452 4.2.2 Mailbox full"),
            ("many@example.com", "550 5.1.1 User unknown"),
        ]
    );
    for (kind, code) in [("manual", 0), ("unsubscribe", 1), ("spamComplaint", 3)] {
        let rows = rows_of(&app, &format!("{base}&type={kind}")).await;
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{kind}");
        assert_eq!(rows[0]["email"], "many@example.com");
        assert_eq!(rows[0]["reason"], code);
        assert_eq!(rows[0]["reasonText"], kind);
        assert_eq!(rows[0]["smtpError"], "");
    }
    let counted = ok(&app, get(&format!("{COUNT}?{base}"))).await;
    assert_eq!(counted, json!({"count": 7}));
}

#[actix_web::test]
async fn a_v3_bounce_keeps_its_sub_second_part() {
    let engine = engine();
    let seconds = DAY + 3_600;
    seed(
        &engine,
        vec![at(
            "v3@example.com",
            bounce(BounceClass::Hard, "550 5.1.1 User unknown"),
            seconds * NANOS + 250_000_000,
        )],
    )
    .await;
    let app = app(engine).await;
    let rows = rows_of(&app, "from=2024-01-10&to=2024-01-10").await;
    assert_eq!(rows[0]["created"], seconds * NANOS + 250_000_000);
    assert_eq!(rows[0]["reason"], 2);
}

#[actix_web::test]
async fn group_entries_are_not_shown_counted_or_deleted() {
    let engine = engine();
    let demo = tenant("demo");
    let group = engine
        .create_group(
            &demo,
            GroupSpec {
                key: None,
                name: "Newsletter".into(),
                description: String::new(),
                is_default: false,
                stream_type: StreamType::Broadcasts,
                unsubscribe_handling: None,
            },
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    let mut grouped = at("grouped@example.com", Kind::Unsubscribe, DAY * NANOS);
    grouped.scope = Scope::Group(group.id);
    seed(
        &engine,
        vec![
            grouped,
            at("grouped@example.com", Kind::Manual, DAY * NANOS + 1),
        ],
    )
    .await;
    let app = app(engine.clone()).await;
    let rows = rows_of(&app, "from=2024-01-10&to=2024-01-10").await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["reason"], 0, "only the global entry");
    assert_eq!(ok(&app, get(COUNT)).await, json!({"count": 1}));
    ok(
        &app,
        delete(&json!({"suppressions": [{"email": "grouped@example.com"}]})),
    )
    .await;
    let left = engine
        .entries(&demo, &email("grouped@example.com"))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].scope,
        Scope::Group(group.id),
        "the group's entry stays"
    );
}

#[actix_web::test]
async fn count_takes_optional_days() {
    let engine = engine();
    seed(
        &engine,
        vec![
            at("a@example.com", Kind::Manual, DAY * NANOS),
            at("b@example.com", Kind::Manual, (DAY + 86_400) * NANOS),
            at(
                "c@example.com",
                Kind::Unsubscribe,
                (DAY + 2 * 86_400) * NANOS,
            ),
        ],
    )
    .await;
    let app = app(engine).await;
    for (query, want) in [
        ("", 3),
        ("?from=2024-01-11", 2),
        ("?to=2024-01-11", 2),
        ("?from=2024-01-11&to=2024-01-11", 1),
        ("?from=2023-01-01&to=2025-01-01", 3),
    ] {
        let body = ok(&app, get(&format!("{COUNT}{query}"))).await;
        assert!(body["count"].is_u64(), "{body}");
        assert_eq!(body, json!({"count": want}), "{query}");
    }
    for (query, param) in [
        ("?from=yesterday", "from"),
        ("?to=2024-13-01", "to"),
        ("?from=2024-01-12&to=2024-01-11", "to"),
        ("?from=2300-01-01", "from"),
        ("?to=1000-01-01", "to"),
        ("?from=%2B2024-01-11", "from"),
        ("?to=2024-01-11%20", "to"),
    ] {
        let reply = send(&app, get(&format!("{COUNT}{query}"))).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some(param));
    }
}

/// `search` is literal and bounded: `%` and `_` are themselves, and one
/// longer than any address, or holding a control character (NUL
/// included, which PostgreSQL cannot compare), is refused naming it.
#[actix_web::test]
async fn search_is_literal_and_bounded() {
    let engine = engine();
    seed(
        &engine,
        vec![
            at("alice@hooli.com", Kind::Manual, DAY * NANOS),
            at("a_b@hooli.com", Kind::Manual, DAY * NANOS + 1),
        ],
    )
    .await;
    let app = app(engine).await;
    let base = "from=2024-01-10&to=2024-01-10";
    for (search, want) in [
        ("%25", vec![]),
        ("a_", vec!["a_b@hooli.com"]),
        ("_", vec!["a_b@hooli.com"]),
    ] {
        let rows = rows_of(&app, &format!("{base}&search={search}")).await;
        assert_eq!(emails(&rows), want, "{search}");
    }
    let long = "a".repeat(300);
    for search in [long.as_str(), "a%00b"] {
        let reply = send(&app, get(&list_uri(&format!("{base}&search={search}")))).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, Some("search"));
    }
}
