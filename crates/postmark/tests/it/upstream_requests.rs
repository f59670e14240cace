//! The Postmark upstream backend against a stateful fake of Postmark, which
//! keeps its suppressions and refuses to delete some: each `Failed` reaches
//! its caller's item, deletes go 50 a call, and the number of upstream
//! requests a lookup, a delete and a whole scan cost is counted. Postmark's
//! dump has no paging (its docs have neither `count` nor `offset`), so every
//! dump is a stream's whole filtered list: what must not happen is one per
//! page, or a full dump to delete one address.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use futures_util::StreamExt as _;
use hush_engine::{Authority, Backend, Engine, GuardedRemoval};
use hush_model::{Email, GroupKey, KindSet, ListFilter, ScanCursor, ScopeFilter, Suppression};
use hush_postmark::upstream::group_id;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{
    INVALID_ADDRESS, NO_AUTHORITY, addresses, app, call, demo, get, post, rows, statuses,
};
use crate::upstream::{token, upstream};

/// A Postmark server: streams `outbound` and `news`, each with its dump.
/// Deleting an address containing "spam" is `Failed`, as Postmark refuses
/// what the customer may not change (Postmark API docs, "Suppressions
/// API"); the rest is deleted.
#[derive(Clone, Default)]
struct FakePostmark {
    dumps: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
}

const REFUSAL: &str = "You do not have the required authority to change this suppression.";

impl FakePostmark {
    fn with(stream: &str, emails: impl IntoIterator<Item = String>) -> Self {
        let fake = Self::default();
        fake.add(stream, emails);
        fake
    }

    /// Hard bounces of Recipient origin: hush's rules let the customer
    /// delete them (docs/mapping.md, "Deletes"), so only Postmark itself
    /// can refuse.
    fn add(&self, stream: &str, emails: impl IntoIterator<Item = String>) {
        let mut dumps = self.dumps.lock().unwrap();
        let rows = dumps.entry(stream.to_owned()).or_default();
        for (at, email) in emails.into_iter().enumerate() {
            let second = at % 60;
            let minute = (at / 60) % 60;
            let hour = at / 3600;
            rows.push(json!({
                "EmailAddress": email,
                "SuppressionReason": "HardBounce",
                "Origin": "Recipient",
                "CreatedAt": format!("2024-01-01T{hour:02}:{minute:02}:{second:02}+00:00"),
            }));
        }
    }

    fn held(&self, stream: &str) -> Vec<String> {
        self.dumps.lock().unwrap()[stream]
            .iter()
            .map(|r| r["EmailAddress"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn serve(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }
}

fn stream(id: &str, kind: &str) -> Value {
    json!({"ID": id, "ServerID": 1, "Name": id, "Description": null,
           "MessageStreamType": kind, "CreatedAt": "2024-01-01T00:00:00+00:00",
           "UpdatedAt": null, "ArchivedAt": null, "ExpectedPurgeDate": null,
           "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "None"}})
}

impl Respond for FakePostmark {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        assert_eq!(
            request
                .headers
                .get("x-postmark-server-token")
                .map(|v| v.to_str().unwrap()),
            Some(token("demo").as_str())
        );
        let path = request.url.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let streams = [
            stream("outbound", "Transactional"),
            stream("news", "Broadcasts"),
        ];
        let not_found = ResponseTemplate::new(422).set_body_json(json!({"ErrorCode": 1226, "Message": "The message stream for the provided 'ID' was not found."}));
        let mut dumps = self.dumps.lock().unwrap();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["message-streams"]) => ResponseTemplate::new(200)
                .set_body_json(json!({"MessageStreams": streams, "TotalCount": 2})),
            ("GET", ["message-streams", id]) => match streams.iter().find(|s| s["ID"] == *id) {
                Some(found) => ResponseTemplate::new(200).set_body_json(found),
                None => not_found,
            },
            ("GET", ["message-streams", id, "suppressions", "dump"]) => {
                let wanted = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "EmailAddress")
                    .map(|(_, v)| v.to_lowercase());
                let rows: Vec<&Value> = dumps
                    .get(*id)
                    .into_iter()
                    .flatten()
                    .filter(|r| {
                        wanted
                            .as_ref()
                            .is_none_or(|w| r["EmailAddress"] == w.as_str())
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"Suppressions": rows}))
            }
            ("POST", ["message-streams", id, "suppressions", "delete"]) => {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let items = body["Suppressions"].as_array().unwrap();
                if items.len() > 50 {
                    return ResponseTemplate::new(422).set_body_json(json!({"ErrorCode": 1410, "Message": "You cannot provide more than the maximum number of suppressions for this request."}));
                }
                let rows = dumps.entry((*id).to_owned()).or_default();
                let statuses: Vec<Value> = items
                    .iter()
                    .map(|item| {
                        let email = item["EmailAddress"].as_str().unwrap();
                        if email.contains("spam") {
                            json!({"EmailAddress": email, "Status": "Failed", "Message": REFUSAL})
                        } else {
                            rows.retain(|r| r["EmailAddress"] != email);
                            json!({"EmailAddress": email, "Status": "Deleted", "Message": null})
                        }
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"Suppressions": statuses}))
            }
            _ => ResponseTemplate::new(404)
                .set_body_json(json!({"ErrorCode": 0, "Message": "not faked"})),
        }
    }
}

/// The requests the fake received, as `METHOD path[?query]`.
async fn requests(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| match r.url.query() {
            Some(q) => format!("{} {}?{q}", r.method, r.url.path()),
            None => format!("{} {}", r.method, r.url.path()),
        })
        .collect()
}

/// The sizes of the delete calls' batches, in order.
async fn delete_batches(server: &MockServer) -> Vec<usize> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/suppressions/delete"))
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["Suppressions"].as_array().unwrap().len()
        })
        .collect()
}

fn engine_on(server: &MockServer) -> Engine {
    Engine::new(Arc::new(upstream(server.uri(), 1)))
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

/// A `Failed` from Postmark on delete is that item's `Failed` for a
/// Postmark client of hush; the other items are deleted.
#[actix_web::test]
async fn a_failed_delete_reaches_its_callers_item() {
    let fake = FakePostmark::with("outbound", ["gone@x.com", "spam@x.com"].map(str::to_owned));
    let server = fake.serve().await;
    let app = app(engine_on(&server)).await;
    let (status, body) = call(
        &app,
        post(
            "/message-streams/outbound/suppressions/delete",
            &addresses(&["gone@x.com", "spam@x.com", "none@x.com", "bad"]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        vec![
            ("gone@x.com".into(), "Deleted".into(), None),
            (
                "spam@x.com".into(),
                "Failed".into(),
                Some(NO_AUTHORITY.into())
            ),
            ("none@x.com".into(), "Deleted".into(), None),
            ("bad".into(), "Failed".into(), Some(INVALID_ADDRESS.into())),
        ]
    );
    assert_eq!(fake.held("outbound"), vec!["spam@x.com"]);
}

/// More than 50 addresses go 50 a call, and each refused one is its own
/// caller's refusal, at its place.
#[actix_web::test]
async fn deletes_go_fifty_a_call_and_each_failed_item_reaches_its_caller() {
    let all: Vec<String> = (0..120)
        .map(|i| match i {
            7 | 101 => format!("spam{i}@x.com"),
            _ => format!("a{i}@x.com"),
        })
        .collect();
    let fake = FakePostmark::with("outbound", all.clone());
    let server = fake.serve().await;
    let engine = engine_on(&server);
    let outbound = group_id(&GroupKey::parse("outbound").unwrap());
    let emails: Vec<Email> = all.iter().map(|a| email(a)).collect();
    let outcomes = engine
        .remove_with_authority(
            &demo(),
            &emails,
            ScopeFilter::GlobalAndGroup(outbound),
            Authority::Customer,
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 120);
    for (at, outcome) in outcomes.iter().enumerate() {
        match outcome {
            GuardedRemoval::Refused { protected } => {
                assert!([7, 101].contains(&at), "item {at} refused");
                assert_eq!(protected.email.as_str(), all[at]);
            }
            GuardedRemoval::Removed { removed } => {
                assert!(![7, 101].contains(&at), "item {at} removed");
                assert_eq!(*removed, 1, "item {at}");
            }
        }
    }
    assert_eq!(delete_batches(&server).await, vec![50, 50, 20]);
    assert_eq!(fake.held("outbound"), vec!["spam7@x.com", "spam101@x.com"]);

    // The same through remove_matching: one dump, then the batches.
    let fake = FakePostmark::with("outbound", all.clone());
    let server = fake.serve().await;
    let removed = engine_on(&server)
        .remove_all(
            &demo(),
            &ListFilter::new(KindSet::ALL, ScopeFilter::Global),
            &hush_engine::conformance::tester(),
        )
        .await
        .unwrap();
    assert_eq!(removed, 118);
    assert_eq!(delete_batches(&server).await, vec![50, 50, 20]);
    let dumps = requests(&server)
        .await
        .into_iter()
        .filter(|r| r.contains("/dump"))
        .count();
    assert_eq!(dumps, 1);
}

/// A lookup is one filtered dump per stream it reads, never a full one.
#[actix_web::test]
async fn a_lookup_dumps_each_stream_once_filtered_by_address() {
    let fake = FakePostmark::with("outbound", (0..30).map(|i| format!("a{i}@x.com")));
    fake.add("news", ["a3@x.com".to_owned()]);
    let server = fake.serve().await;
    let engine = engine_on(&server);

    let found = engine.entries(&demo(), &email("a3@x.com")).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(
        requests(&server).await,
        vec![
            "GET /message-streams?IncludeArchivedStreams=true",
            "GET /message-streams/outbound/suppressions/dump?EmailAddress=a3%40x.com",
            "GET /message-streams/news/suppressions/dump?EmailAddress=a3%40x.com",
        ]
    );

    // Through the Postmark API: the stream, the streams, one dump.
    server.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let app = app(engine).await;
    let (status, body) = call(
        &app,
        get("/message-streams/outbound/suppressions/dump?EmailAddress=a3@x.com"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(rows(&body).len(), 1);
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    let dumps: Vec<&String> = seen.iter().filter(|r| r.contains("/dump")).collect();
    assert_eq!(
        dumps,
        vec!["GET /message-streams/outbound/suppressions/dump?EmailAddress=a3%40x.com"]
    );
}

/// A delete of one address: its filtered dumps, then the delete call. No
/// full dump to find what the filtered ones just showed.
#[actix_web::test]
async fn a_delete_costs_filtered_dumps_and_one_delete_call() {
    let fake = FakePostmark::with("outbound", (0..30).map(|i| format!("a{i}@x.com")));
    fake.add("news", ["b@x.com".to_owned()]);
    let server = fake.serve().await;
    let app = app(engine_on(&server)).await;
    let (status, body) = call(
        &app,
        post(
            "/message-streams/outbound/suppressions/delete",
            &addresses(&["a3@x.com"]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        vec![("a3@x.com".into(), "Deleted".into(), None)]
    );
    assert_eq!(
        requests(&server).await,
        vec![
            "GET /message-streams/outbound",
            "GET /message-streams?IncludeArchivedStreams=true",
            "GET /message-streams/outbound/suppressions/dump?EmailAddress=a3%40x.com",
            "GET /message-streams/news/suppressions/dump?EmailAddress=a3%40x.com",
            "POST /message-streams/outbound/suppressions/delete",
        ]
    );
    assert_eq!(delete_batches(&server).await, vec![1]);
    assert_eq!(fake.held("outbound").len(), 29);
}

/// A whole scan, page after page, dumps each stream once; two scans under
/// way at once each see every entry once.
#[actix_web::test]
async fn a_scan_dumps_each_stream_once_not_once_per_page() {
    let fake = FakePostmark::with("outbound", (0..2_500).map(|i| format!("a{i}@x.com")));
    fake.add("news", (0..120).map(|i| format!("n{i}@x.com")));
    let server = fake.serve().await;
    let engine = engine_on(&server);
    let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);

    let mut one = Box::pin(engine.scan(demo(), everything.clone(), 100));
    let mut two = Box::pin(engine.scan(demo(), everything.clone(), 100));
    let (mut first, mut second): (Vec<Suppression>, Vec<Suppression>) = (Vec::new(), Vec::new());
    loop {
        let (a, b) = (one.next().await, two.next().await);
        if a.is_none() && b.is_none() {
            break;
        }
        first.extend(a.map(Result::unwrap));
        second.extend(b.map(Result::unwrap));
    }
    for seen in [&first, &second] {
        assert_eq!(seen.len(), 2_620);
        let mut ids: Vec<_> = seen.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 2_620);
        assert!(
            seen.windows(2)
                .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)),
            "newest first"
        );
    }
    let seen = requests(&server).await;
    let count = |needle: &str| seen.iter().filter(|r| r.contains(needle)).count();
    // Per scan: the stream list and one dump of each stream.
    assert_eq!(count("/outbound/suppressions/dump"), 2, "{seen:?}");
    assert_eq!(count("/news/suppressions/dump"), 2, "{seen:?}");
    assert_eq!(seen.len(), 6, "{seen:?}");

    // hush copy's two passes over the backend: forward to find where each
    // page starts, then the pages again, oldest first.
    server.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let backend = upstream(server.uri(), 1);
    let global = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
    let mut starts = vec![None];
    let mut forward = Vec::new();
    loop {
        let page = backend
            .scan(&demo(), &global, *starts.last().unwrap(), 1_000)
            .await
            .unwrap();
        forward.push(page.clone());
        match page.last() {
            Some(last) if page.len() == 1_000 => starts.push(Some(ScanCursor::after(last))),
            _ => break,
        }
    }
    assert_eq!(
        forward.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1_000, 1_000, 500]
    );
    for (start, page) in starts.iter().zip(&forward).rev() {
        let again = backend.scan(&demo(), &global, *start, 1_000).await.unwrap();
        assert_eq!(&again, page);
    }
    assert_eq!(
        requests(&server).await,
        vec![
            "GET /message-streams/outbound/suppressions/dump",
            "GET /message-streams/outbound/suppressions/dump",
        ]
    );

    // Through the Postmark API, whose dump scans 1,000 rows a step.
    server.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let app = app(engine).await;
    let (status, body) = call(&app, get("/message-streams/outbound/suppressions/dump")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&body).len(), 2_500);
    let seen = requests(&server).await;
    assert_eq!(
        seen.iter().filter(|r| r.contains("/dump")).count(),
        1,
        "{seen:?}"
    );
}
