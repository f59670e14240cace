//! The Postmark upstream backend: its wire checked against a wiremock fake
//! of Postmark, and its behaviour against a second hush serving the Postmark
//! API on its own store (the shared conformance suite, with the exceptions
//! docs/backends.md explains).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::NormalizePath;
use actix_web::{App, HttpServer, web};
use hush_engine::access::{ApiKey, KeyTable, Permissions, TokenDigest};
use hush_engine::{AddOutcome, Backend, Engine, EngineError};
use hush_model::{
    Email, GroupKey, Kind, KindSet, ListFilter, NewSuppression, Origin, Scope, ScopeFilter,
    Timestamp,
};
use hush_postmark::upstream::{PostmarkUpstream, group_id};
use hush_postmark::{PostmarkProfile, PostmarkState};
use hush_upstream::{Credential, Credentials, RetrySettings, Upstream, UpstreamSettings};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::tenant;

const TENANTS: [&str; 5] = ["t1", "t2", "one", "two", "demo"];

/// Short enough that the timeout tests are quick, long enough for a busy
/// machine: the fakes that time out wait 5 s.
fn timeout() -> Duration {
    Duration::from_millis(1500)
}

pub fn token(tenant: &str) -> String {
    format!("pm-upstream-{tenant}")
}

pub fn upstream(base_url: String, max_attempts: u32) -> PostmarkUpstream {
    let credentials: Credentials = TENANTS
        .iter()
        .map(|t| (tenant(t), Credential::new(token(t))))
        .collect();
    let settings = UpstreamSettings {
        base_url,
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout(),
        retry: RetrySettings {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(10),
        },
    };
    PostmarkUpstream::new(
        Upstream::new("upstream-postmark", settings).unwrap(),
        credentials,
    )
}

/// hush B: the Postmark API over its own memory store, on a free port, with
/// every test tenant bootstrapped as a new Postmark server is.
async fn hush_b() -> String {
    let engine = Engine::new(Arc::new(hush_store::MemoryBackend::new()));
    let mut keys = KeyTable::default();
    for t in TENANTS {
        engine.bootstrap_tenant(&tenant(t)).await.unwrap();
        keys.insert(
            TokenDigest::of(&token(t)),
            ApiKey {
                name: "test#1".into(),
                tenant: tenant(t),
                permissions: Permissions::ALL,
                profile: PostmarkProfile::default(),
            },
        );
    }
    let state = web::Data::new(PostmarkState {
        engine,
        keys,
        body_limit: 1 << 20,
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(NormalizePath::trim())
            .service(hush_postmark::scope(state.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

async fn against_hush_b() -> Arc<dyn Backend> {
    Arc::new(upstream(hush_b().await, 2))
}

/// The conformance checks Postmark can pass. Left out, each for a thing
/// Postmark does not keep (docs/backends.md, "Conformance exceptions"):
/// - ids (derived from stream, address and reason, not increasing):
///   `ids_increase`, `list_pages_with_a_stable_order_and_total`;
/// - the caller's creation time, kind and origin (a create is always a
///   `ManualSuppression` of `Customer` origin, stamped by Postmark):
///   `add_is_idempotent_and_keeps_id_and_time`, `kind_details_round_trip`,
///   `count_agrees_with_list`, `list_filters_by_email_origin_and_time`,
///   `list_filters_by_kind_and_scope`, `entries_cover_every_scope_newest_first`,
///   `tenants_never_see_each_other`, `remove_matching_removes_only_what_matches`;
/// - one entry per address and stream, not per kind:
///   `identity_is_scope_email_and_family`;
/// - the default-group flag, group deletion, and creation and update times
///   Postmark stamps itself: `default_flag_moves`,
///   `deleting_a_group_removes_its_suppressions`, `groups_are_created_and_read`,
///   `groups_update_and_archive`, `engine_checks_group_fields`,
///   `engine_derives_unique_group_keys`, `group_keys_and_names_are_unique_per_tenant`;
/// - the authority checks use a tenant outside this setup's credentials
///   and a stored Admin origin, which a Postmark create cannot make.
mod conformance {
    hush_engine::backend_conformance!(@checks super::against_hush_b;
        add_reports_each_item_in_order,
        adding_to_an_unknown_group_is_refused,
        engine_bootstraps_the_default_stream,
        engine_may_send,
        engine_scan_streams_in_batches,
        engine_splits_large_adds,
        list_matches_email_patterns,
        odd_but_real_addresses_round_trip,
        remove_ids_removes_chosen_entries,
        scan_walks_everything_once,
    );
}

fn global(email: &str) -> NewSuppression {
    NewSuppression {
        email: Email::parse(email).unwrap(),
        scope: Scope::Global,
        kind: Kind::Unsubscribe,
        origin: Origin::Customer,
        created_at: Timestamp::from_nanos(0),
    }
}

/// Answers a create with `Suppressed` for each address, `Failed` for the
/// ones containing "spam".
fn statuses(request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let items: Vec<Value> = body["Suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let email = i["EmailAddress"].as_str().unwrap();
            if email.contains("spam") {
                json!({"EmailAddress": email, "Status": "Failed", "Message": "You do not have the required authority to change this suppression."})
            } else {
                json!({"EmailAddress": email, "Status": "Suppressed", "Message": null})
            }
        })
        .collect();
    assert!(items.len() <= 50, "a batch of {}", items.len());
    ResponseTemplate::new(200).set_body_json(json!({"Suppressions": items}))
}

#[tokio::test]
async fn adds_go_in_batches_of_fifty_and_each_failed_item_reaches_its_caller() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/message-streams/outbound/suppressions"))
        .and(header("x-postmark-server-token", token("t1").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(statuses)
        .expect(3)
        .mount(&fake)
        .await;
    let mut items: Vec<NewSuppression> = (0..120).map(|i| global(&format!("a{i}@x.com"))).collect();
    items[7] = global("spam7@x.com");
    items[101] = global("spam101@x.com");
    let outcomes = upstream(fake.uri(), 1)
        .add(&tenant("t1"), items, &hush_engine::conformance::tester())
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 120);
    for (at, outcome) in outcomes.iter().enumerate() {
        match outcome {
            AddOutcome::Refused { message } => {
                assert!([7, 101].contains(&at), "item {at} refused");
                assert!(message.contains("authority"), "{message}");
            }
            AddOutcome::Added { suppression, .. } => {
                assert_eq!(suppression.email.as_str(), format!("a{at}@x.com"));
                assert_eq!(suppression.scope, Scope::Global);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unknown_stream_is_an_unknown_group() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/message-streams/gone"))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"ErrorCode": 1226, "Message": "The message stream for the provided 'ID' was not found."}),
        ))
        .expect(1)
        .mount(&fake)
        .await;
    let found = upstream(fake.uri(), 3)
        .group_by_key(&tenant("t1"), &GroupKey::parse("gone").unwrap())
        .await
        .unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn the_dump_is_read_per_stream_into_canonical_entries() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/message-streams"))
        .and(query_param("IncludeArchivedStreams", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "MessageStreams": [
                {"ID": "outbound", "ServerID": 1, "Name": "Default", "Description": null,
                 "MessageStreamType": "Transactional", "CreatedAt": "2024-01-01T00:00:00+00:00",
                 "UpdatedAt": null, "ArchivedAt": null, "ExpectedPurgeDate": null,
                 "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "None"}},
                {"ID": "news", "ServerID": 1, "Name": "News", "Description": "weekly",
                 "MessageStreamType": "Broadcasts", "CreatedAt": "2024-01-02T00:00:00-05:00",
                 "UpdatedAt": null, "ArchivedAt": null, "ExpectedPurgeDate": null,
                 "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Postmark"}}
            ],
            "TotalCount": 2
        })))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/message-streams/outbound/suppressions/dump"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Suppressions": [
            {"EmailAddress": "b@x.com", "SuppressionReason": "HardBounce", "Origin": "Recipient", "CreatedAt": "2024-02-01T00:00:00+00:00"},
            {"EmailAddress": "s@x.com", "SuppressionReason": "SpamComplaint", "Origin": "Recipient", "CreatedAt": "2024-02-02T00:00:00+00:00"}
        ]})))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/message-streams/news/suppressions/dump"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Suppressions": [
            {"EmailAddress": "u@x.com", "SuppressionReason": "ManualSuppression", "Origin": "Recipient", "CreatedAt": "2024-02-03T00:00:00+00:00"}
        ]})))
        .mount(&fake)
        .await;
    let backend = upstream(fake.uri(), 1);
    let all = backend
        .scan(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Any),
            None,
            10,
        )
        .await
        .unwrap();
    let seen: Vec<(&str, Scope, &Kind)> = all
        .iter()
        .map(|s| (s.email.as_str(), s.scope, &s.kind))
        .collect();
    let news = group_id(&GroupKey::parse("news").unwrap());
    assert_eq!(
        seen,
        vec![
            ("u@x.com", Scope::Group(news), &Kind::Unsubscribe),
            (
                "s@x.com",
                Scope::Global,
                &Kind::SpamComplaint { source: None }
            ),
            ("b@x.com", Scope::Global, &Kind::hard_bounce()),
        ]
    );
    let groups = backend.groups(&tenant("t1")).await.unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g.id == news && g.description == "weekly")
    );
}

#[tokio::test]
async fn a_dump_off_the_wire_format_is_an_upstream_fault() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Suppressions": [
            {"EmailAddress": "b@x.com", "SuppressionReason": "Bounced", "Origin": "Recipient", "CreatedAt": "x"}
        ]})))
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 1)
        .count(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Global),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Upstream { .. }), "{err:?}");
}

#[tokio::test]
async fn dumps_are_retried_on_5xx_a_counted_number_of_times() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/message-streams/outbound/suppressions/dump"))
        .respond_with(ResponseTemplate::new(500).insert_header("x-request-id", "pm-42"))
        .expect(4)
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 4)
        .count(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Global),
        )
        .await
        .unwrap_err();
    match err {
        EngineError::Upstream {
            status, request_id, ..
        } => {
            assert_eq!(status, Some(500));
            assert_eq!(request_id.as_deref(), Some("pm-42"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_upstream_is_a_timeout() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(2)
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 2)
        .count(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Global),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::UpstreamTimeout { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn deleting_a_group_is_refused_naming_the_backend() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/message-streams"))
        .and(header("x-postmark-server-token", token("t1").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "MessageStreams": [
                {"ID": "news", "ServerID": 1, "Name": "News", "Description": null,
                 "MessageStreamType": "Broadcasts", "CreatedAt": "2024-01-02T00:00:00+00:00",
                 "UpdatedAt": null, "ArchivedAt": null, "ExpectedPurgeDate": null,
                 "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Postmark"}}
            ],
            "TotalCount": 1
        })))
        .expect(1..)
        .mount(&fake)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&fake)
        .await;
    let engine = Engine::new(Arc::new(upstream(fake.uri(), 1)));
    let news = group_id(&GroupKey::parse("news").unwrap());
    // The group is found upstream, so the refusal is the backend's own.
    let err = engine
        .delete_group(&tenant("t1"), news, &hush_engine::conformance::tester())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Unsupported {
                backend: "upstream-postmark",
                operation,
            } if operation.starts_with("delete groups")
        ),
        "{err:?}"
    );
    let shown = hush_postmark::PostmarkError::from(err);
    let response = actix_web::ResponseError::error_response(&shown);
    assert_eq!(
        response.status(),
        actix_web::http::StatusCode::NOT_IMPLEMENTED
    );
    let message = shown.to_string();
    assert!(
        message.contains("upstream-postmark") && message.contains("delete groups"),
        "{message}"
    );
    // Nothing was sent upstream to drop the stream.
    let received = fake.received_requests().await.unwrap();
    assert!(!received.is_empty());
    assert!(
        received.iter().all(|r| r.method.as_str() == "GET"),
        "{:?}",
        received
            .iter()
            .map(|r| (&r.method, r.url.path()))
            .collect::<Vec<_>>()
    );
}
