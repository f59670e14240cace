//! The SendPost upstream backend: its wire checked against a wiremock fake
//! of SendPost, and its behaviour against a second hush serving the SendPost
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
    Email, EmailMatch, GroupId, Kind, KindSet, ListFilter, NewSuppression, Origin, PageRequest,
    Scope, ScopeFilter, Timestamp,
};
use hush_sendpost::upstream::SendPostUpstream;
use hush_sendpost::{SendPostProfile, SendPostState};
use hush_upstream::{Credential, Credentials, RetrySettings, Upstream, UpstreamSettings};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::tenant;

const TENANTS: [&str; 5] = ["t1", "t2", "one", "two", "demo"];

/// Short enough that the timeout tests are quick, long enough for a busy
/// machine: the fakes that time out wait 5 s.
fn timeout() -> Duration {
    Duration::from_millis(1500)
}

fn token(tenant: &str) -> String {
    format!("sp-upstream-{tenant}")
}

fn settings(base_url: String, max_attempts: u32) -> UpstreamSettings {
    UpstreamSettings {
        base_url,
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout(),
        retry: RetrySettings {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(10),
        },
    }
}

/// A SendPost upstream for every test tenant, walking back one year.
fn upstream(base_url: String, max_attempts: u32) -> SendPostUpstream {
    let credentials: Credentials = TENANTS
        .iter()
        .map(|t| (tenant(t), Credential::new(token(t))))
        .collect();
    let today = time::OffsetDateTime::now_utc().date();
    SendPostUpstream::new(
        Upstream::new("upstream-sendpost", settings(base_url, max_attempts)).unwrap(),
        credentials,
        today - time::Duration::days(365),
    )
}

/// hush B: the SendPost API over its own memory store, on a free port.
async fn hush_b() -> String {
    let mut keys = KeyTable::default();
    for t in TENANTS {
        keys.insert(
            TokenDigest::of(&token(t)),
            ApiKey {
                name: "test#1".into(),
                tenant: tenant(t),
                permissions: Permissions::ALL,
                profile: SendPostProfile::default(),
            },
        );
    }
    let state = web::Data::new(SendPostState {
        engine: Engine::new(Arc::new(hush_store::MemoryBackend::new())),
        keys,
        body_limit: 1 << 20,
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(NormalizePath::trim())
            .service(hush_sendpost::scope(state.clone()))
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

/// The conformance checks SendPost can pass. Left out, each for a thing
/// SendPost does not keep (docs/backends.md, "Conformance exceptions"):
/// - the caller's creation time (SendPost stamps its own):
///   `add_is_idempotent_and_keeps_id_and_time`, `count_agrees_with_list`,
///   `list_filters_by_email_origin_and_time` (also origins);
/// - kind details and bounce classes: `kind_details_round_trip`;
/// - groups and streams: every group check, and the checks that set up a
///   group on the way (`identity_is_scope_email_and_family`,
///   `entries_cover_every_scope_newest_first`, `tenants_never_see_each_other`
///   (checked here without the group, below), `list_filters_by_kind_and_scope`, `remove_matching_removes_only_what_matches`,
///   `engine_may_send`, both authority checks);
/// - ids in the order entries were made (`ids_increase`, and the tie-break
///   of `list_pages_with_a_stable_order_and_total`): the provider here is
///   a second hush, whose SendPost ids are opaque per tenant
///   (docs/mapping.md, "Shown ids"), where SendPost's own increase.
mod conformance {
    hush_engine::backend_conformance!(@checks super::against_hush_b;
        add_reports_each_item_in_order,
        list_matches_email_patterns,
        odd_but_real_addresses_round_trip,
        scan_walks_everything_once,
        remove_ids_removes_chosen_entries,
        engine_splits_large_adds,
        engine_scan_streams_in_batches,
    );
}

fn add(email: &str, kind: Kind) -> NewSuppression {
    NewSuppression {
        email: Email::parse(email).unwrap(),
        scope: Scope::Global,
        kind,
        origin: Origin::Customer,
        created_at: Timestamp::from_nanos(0),
    }
}

fn row(id: i64, email: &str, reason: i64, created: i64) -> serde_json::Value {
    json!({"id": id, "email": email, "reason": reason, "created": created})
}

#[tokio::test]
async fn adds_are_one_create_call_with_each_reason_list_and_the_subaccount_key() {
    let fake = MockServer::start().await;
    // Made after the call started: new.
    let now = Engine::now().as_nanos() + 60_000_000_000;
    Mock::given(method("POST"))
        .and(path("/api/v1/subaccount/suppression"))
        .and(header("x-subaccount-apikey", token("t1").as_str()))
        .and(body_json(json!({
            "hardBounce": [{"email": "b@x.com"}],
            "unsubscribe": [{"email": "u@x.com"}],
            "spamComplaint": [{"email": "s@x.com"}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            row(3, "s@x.com", 3, now),
            row(1, "b@x.com", 2, now),
            row(2, "u@x.com", 1, 5),
        ])))
        .expect(1)
        .mount(&fake)
        .await;
    let backend = upstream(fake.uri(), 3);
    let outcomes = backend
        .add(
            &tenant("t1"),
            vec![
                add("b@x.com", Kind::hard_bounce()),
                add("u@x.com", Kind::Unsubscribe),
                add("s@x.com", Kind::SpamComplaint { source: None }),
            ],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    let seen: Vec<(i64, bool)> = outcomes
        .iter()
        .map(|o| match o {
            AddOutcome::Added { suppression, new } => (suppression.id.0, *new),
            other => panic!("{other:?}"),
        })
        .collect();
    // In the caller's order; the entry made long ago was already there.
    assert_eq!(seen, vec![(1, true), (2, false), (3, true)]);
}

#[tokio::test]
async fn a_create_answer_missing_an_item_is_an_upstream_fault() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 3)
        .add(
            &tenant("t1"),
            vec![add("b@x.com", Kind::Manual)],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Upstream {
                status: Some(200),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failed_create_is_not_sent_twice() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 4)
        .add(
            &tenant("t1"),
            vec![add("b@x.com", Kind::Manual)],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Upstream {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn listings_walk_sixty_day_windows_and_pages_newest_first() {
    let fake = MockServer::start().await;
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: time::Date| d.to_string();
    let newest_from = today - time::Duration::days(59);
    let older_to = newest_from.previous_day().unwrap();
    let at = |d: time::Date| d.midnight().assume_utc().unix_timestamp_nanos() as i64;
    // The newest window has a full page and one more row.
    let page: Vec<_> = (0..100)
        .map(|i| row(1000 + i, &format!("p{i}@x.com"), 0, at(today) + i))
        .collect();
    Mock::given(method("GET"))
        .and(query_param("from", day(newest_from)))
        .and(query_param("to", day(today)))
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("from", day(newest_from)))
        .and(query_param("offset", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([row(
            7,
            "late@x.com",
            1,
            at(newest_from)
        )])))
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("to", day(older_to)))
        .and(query_param(
            "from",
            day(older_to - time::Duration::days(59)),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([row(
            3,
            "old@x.com",
            2,
            at(older_to)
        )])))
        .expect(1)
        .mount(&fake)
        .await;
    // Every other window is empty.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&fake)
        .await;
    let backend = upstream(fake.uri(), 1);
    let page = backend
        .list(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Any),
            PageRequest {
                limit: 3,
                offset: 99,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 102);
    let emails: Vec<&str> = page.items.iter().map(|s| s.email.as_str()).collect();
    assert_eq!(emails, vec!["p0@x.com", "late@x.com", "old@x.com"]);
    // A year back in 60-day windows: seven windows, one with two pages.
    let gets = fake.received_requests().await.unwrap();
    assert_eq!(gets.len(), 8, "{gets:?}");
}

#[tokio::test]
async fn an_email_listing_searches_and_keeps_only_exact_matches() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("search", "a@x.com"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([row(1, "a@x.com", 1, 10), row(2, "aa@x.com", 1, 9),])),
        )
        .mount(&fake)
        .await;
    let entries = upstream(fake.uri(), 1)
        .entries(&tenant("t1"), &Email::parse("a@x.com").unwrap())
        .await
        .unwrap();
    // The same row in every window the fake answers; only the exact address.
    assert!(entries.iter().all(|e| e.email.as_str() == "a@x.com"));
    assert!(!entries.is_empty());
}

#[tokio::test]
async fn a_listing_off_the_wire_format_is_an_upstream_fault() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 1)
        .count(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Any),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Upstream { .. }), "{err:?}");
    // An unknown reason code too.
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([row(1, "a@x.com", 9, 1)])))
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 1)
        .count(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Any),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Upstream { .. }), "{err:?}");
}

#[tokio::test]
async fn listings_are_retried_on_429_with_a_counted_number_of_attempts() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .expect(3)
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 3)
        .count(
            &tenant("t1"),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Any),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Upstream {
                status: Some(429),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn removing_a_whole_address_is_one_delete_and_no_listing() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .named("no listing")
        .mount(&fake)
        .await;
    // Asked under the legacy contract, whose reply names each entry removed
    // (docs/api/sendpost.md, "Contracts").
    Mock::given(method("DELETE"))
        .and(path("/api/v1/subaccount/suppression"))
        .and(header("x-subaccount-apikey", token("t1").as_str()))
        .and(header("x-sendpost-public-contract", "legacy"))
        .and(body_json(json!({"suppressions": [{"email": "a@x.com"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 1, "message": "Suppressions have been deleted successfully"},
            {"id": 2, "message": "Suppressions have been deleted successfully"},
        ])))
        .expect(1)
        .mount(&fake)
        .await;
    let backend = upstream(fake.uri(), 1);
    let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
    filter.email = Some(EmailMatch::Exact(Email::parse("a@x.com").unwrap()));
    assert_eq!(
        backend
            .remove_matching(&tenant("t1"), &filter, &hush_engine::conformance::tester())
            .await
            .unwrap(),
        2,
        "the entries the reply names"
    );
    assert_eq!(fake.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn removing_some_kinds_of_an_address_walks_its_entries_once() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("search", "a@x.com"))
        .and(query_param(
            "to",
            time::OffsetDateTime::now_utc().date().to_string(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            row(1, "a@x.com", 1, Engine::now().as_nanos()),
            row(2, "a@x.com", 0, Engine::now().as_nanos()),
        ])))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&fake)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message": "ok"})))
        .expect(1)
        .mount(&fake)
        .await;
    let backend = upstream(fake.uri(), 1);
    let mut filter = ListFilter::new(
        KindSet::family(hush_model::KindFamily::Manual)
            .with(KindSet::family(hush_model::KindFamily::Unsubscribe)),
        ScopeFilter::Global,
    );
    filter.email = Some(EmailMatch::Exact(Email::parse("a@x.com").unwrap()));
    assert_eq!(
        backend
            .remove_matching(&tenant("t1"), &filter, &hush_engine::conformance::tester())
            .await
            .unwrap(),
        2
    );
    // One walk: a GET per window (a year back: 7), then the DELETE.
    let gets = get_count(&fake).await;
    assert_eq!(gets, WINDOWS_IN_A_YEAR, "one walk of the address");
    // One kind of the two cannot go alone: SendPost deletes whole addresses.
    filter.kinds = KindSet::family(hush_model::KindFamily::Manual);
    let err = backend
        .remove_matching(&tenant("t1"), &filter, &hush_engine::conformance::tester())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Unsupported { .. }), "{err:?}");
    assert_eq!(get_count(&fake).await, 2 * WINDOWS_IN_A_YEAR);
}

/// The 60-day windows from today back to a year ago: 366 days.
const WINDOWS_IN_A_YEAR: usize = 7;

async fn get_count(fake: &MockServer) -> usize {
    fake.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::GET)
        .count()
}

/// SendPost lists only 60-day windows (SendPost API reference,
/// get-all-suppressions) and has no call for one address, so a lookup is one
/// `search` call per window back to `history_start`: its cost, counted
/// (docs/backends.md).
#[tokio::test]
async fn a_lookup_is_one_search_per_window() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/subaccount/suppression"))
        .and(query_param("search", "a@x.com"))
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([row(
            1,
            "a@x.com",
            1,
            Engine::now().as_nanos()
        )])))
        .expect(WINDOWS_IN_A_YEAR as u64)
        .mount(&fake)
        .await;
    let entries = upstream(fake.uri(), 1)
        .entries(&tenant("t1"), &Email::parse("a@x.com").unwrap())
        .await
        .unwrap();
    assert!(!entries.is_empty());
    assert_eq!(
        fake.received_requests().await.unwrap().len(),
        WINDOWS_IN_A_YEAR
    );
}

/// A SendPost client of hush in front of SendPost: a v1 delete is one
/// upstream DELETE per address and nothing listed; the legacy reply, which
/// names the ids, costs one lookup per address on top.
#[actix_web::test]
async fn a_sendpost_delete_through_an_upstream_lists_nothing() {
    use crate::support::{app, delete, send};
    use actix_web::http::StatusCode;

    let fake = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(header("x-subaccount-apikey", token("demo").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 7, "message": "x"}])))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("search", "b@x.com"))
        .and(query_param(
            "to",
            time::OffsetDateTime::now_utc().date().to_string(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([row(
            7,
            "b@x.com",
            0,
            Engine::now().as_nanos()
        )])))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&fake)
        .await;
    let engine = Engine::new(Arc::new(upstream(fake.uri(), 1)));
    let app = app(engine).await;
    let body =
        json!({"suppressions": [{"email": "a@x.com"}, {"email": "B@x.com"}, {"email": "a@x.com"}]});
    let reply = send(&app, delete(&body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        reply.body,
        json!({"message": "Suppressions have been deleted successfully"})
    );
    let seen = fake.received_requests().await.unwrap();
    let methods: Vec<_> = seen.iter().map(|r| r.method.to_string()).collect();
    assert_eq!(methods, ["DELETE", "DELETE"], "one per address, no listing");
    let bodies: Vec<serde_json::Value> = seen.iter().map(|r| r.body_json().unwrap()).collect();
    assert_eq!(
        bodies,
        [
            json!({"suppressions": [{"email": "a@x.com"}]}),
            json!({"suppressions": [{"email": "b@x.com"}]}),
        ]
    );
    fake.reset().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 7, "message": "x"}])))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("search", "b@x.com"))
        .and(query_param(
            "to",
            time::OffsetDateTime::now_utc().date().to_string(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([row(
            7,
            "b@x.com",
            0,
            Engine::now().as_nanos()
        )])))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&fake)
        .await;
    let legacy = delete(&json!({"suppressions": [{"email": "b@x.com"}]}))
        .insert_header(("X-SendPost-Public-Contract", "legacy"));
    let reply = send(&app, legacy).await;
    assert_eq!(reply.body[0]["id"], 7, "{:?}", reply.body);
    assert_eq!(get_count(&fake).await, WINDOWS_IN_A_YEAR, "one lookup");
    assert_eq!(
        fake.received_requests().await.unwrap().len(),
        WINDOWS_IN_A_YEAR + 1
    );
}

/// The conformance suite's `tenants_never_see_each_other` makes a group on
/// the way, which SendPost has not; this is the same check without it,
/// through hush B with each tenant's own key.
#[tokio::test]
async fn tenants_never_see_each_other() {
    let backend = against_hush_b().await;
    let (one, two) = (tenant("one"), tenant("two"));
    let a = Email::parse("a@x.com").unwrap();
    backend
        .add(
            &one,
            vec![add("a@x.com", Kind::hard_bounce())],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    let global = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
    let page = PageRequest {
        limit: 10,
        offset: 0,
    };
    assert!(backend.entries(&two, &a).await.unwrap().is_empty());
    assert_eq!(backend.list(&two, &global, page).await.unwrap().total, 0);
    assert_eq!(backend.count(&two, &global).await.unwrap(), 0);
    let ids: Vec<_> = backend
        .entries(&one, &a)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        backend
            .remove_ids(&two, &ids, &hush_engine::conformance::tester())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        backend
            .remove_matching(&two, &global, &hush_engine::conformance::tester())
            .await
            .unwrap(),
        0
    );
    let mut whole = global.clone();
    whole.email = Some(EmailMatch::Exact(a.clone()));
    assert_eq!(
        backend
            .remove_matching(&two, &whole, &hush_engine::conformance::tester())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        backend.entries(&one, &a).await.unwrap().len(),
        1,
        "untouched"
    );
    assert_eq!(backend.list(&one, &global, page).await.unwrap().total, 1);
    // And the owner's own whole-address delete removes it, counted.
    assert_eq!(
        backend
            .remove_matching(&one, &whole, &hush_engine::conformance::tester())
            .await
            .unwrap(),
        1
    );
    assert!(backend.entries(&one, &a).await.unwrap().is_empty());
}

#[tokio::test]
async fn groups_are_refused_naming_the_backend() {
    let engine = Engine::new(Arc::new(upstream("http://127.0.0.1:9".into(), 1)));
    let err = engine.groups(&tenant("t1")).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Unsupported {
                backend: "upstream-sendpost",
                operation: "manage groups"
            }
        ),
        "{err:?}"
    );
    let mut item = add("a@x.com", Kind::Unsubscribe);
    item.scope = Scope::Group(GroupId(1));
    let err = engine
        .add(
            &tenant("t1"),
            vec![item],
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Unsupported { .. }), "{err:?}");
}

#[tokio::test]
async fn a_slow_provider_is_a_timeout_after_the_retries() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(3)
        .mount(&fake)
        .await;
    let err = upstream(fake.uri(), 3)
        .entries(&tenant("t1"), &Email::parse("a@x.com").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::UpstreamTimeout { .. }),
        "{err:?}"
    );
}
