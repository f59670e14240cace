//! SendPost through the real binary: what it shares with v3
//! (docs/mapping.md), and the wire conventions the gateway itself provides
//! (path normalisation, the fallback's format).

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestGateway, bearer};

const TENANTS: &str = r#"
[[tenants]]
id = "demo"
  [[tenants.keys]]
  api = "sendpost"
  token = "sp-key"
  [[tenants.keys]]
  api = "v3"
  token = "v3-key"
"#;

const NANOS: i64 = 1_000_000_000;

struct Apis {
    gw: TestGateway,
    client: Client,
}

impl Apis {
    async fn spawn() -> Self {
        Self {
            gw: TestGateway::spawn(TENANTS).await,
            client: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gw.base())
    }

    async fn sendpost(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("X-SubAccount-ApiKey", "sp-key");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(res.headers()["x-sendpost-public-contract"], "v1");
        (status, res.json().await.unwrap())
    }

    /// A SendPost listing over the UTC days around now.
    async fn sendpost_rows(&self, extra: &str) -> Vec<Value> {
        let now = time::OffsetDateTime::now_utc().date();
        let day = time::Duration::days(1);
        let (status, rows) = self
            .sendpost(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/subaccount/suppression?from={}&to={}&limit=100{extra}",
                    now - day,
                    now + day
                ),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{rows}");
        rows.as_array().unwrap().clone()
    }

    async fn v3(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("Authorization", bearer("v3-key"));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    async fn v3_bounces(&self) -> Value {
        let (status, list) = self
            .v3(
                reqwest::Method::GET,
                "/v3/suppression/bounces?limit=500",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        list
    }
}

#[tokio::test]
async fn each_sendpost_reason_lands_where_design_maps_it_in_v3() {
    let apis = Apis::spawn().await;
    let (status, created) = apis
        .sendpost(
            reqwest::Method::POST,
            "/api/v1/subaccount/suppression",
            Some(json!({
                "hardBounce": [{"email": "hard@example.com"}],
                "manual": [{"email": "manual@example.com"}],
                "unsubscribe": [{"email": "unsub@example.com"}],
                "spamComplaint": [{"email": "spam@example.com"}],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let hard_created = created[0]["created"].as_i64().unwrap();

    // hardBounce is a Global hard bounce: v3's bounce list shows it, in
    // whole seconds of the same instant.
    let list = apis.v3_bounces().await;
    assert_eq!(list["total"], 1, "{list}");
    let bounce = &list["bounces"][0];
    assert_eq!(bounce["email"], "hard@example.com");
    assert_eq!(bounce["bounce_type"], "hard");
    assert_eq!(bounce["created"], hard_created.div_euclid(NANOS));
    assert_eq!(bounce["reason"], "");
    // Manual, unsubscribe and spam are not bounces; they are in the v3
    // lists docs/mapping.md maps them to (the Postmark dump is checked in
    // tests/e2e/cross_api.rs).
    for address in [
        "manual@example.com",
        "unsub@example.com",
        "spam@example.com",
    ] {
        let (status, _) = apis
            .v3(
                reqwest::Method::GET,
                &format!("/v3/suppression/bounces/{address}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{address}");
    }
    let (status, spam) = apis
        .v3(reqwest::Method::GET, "/v3/suppression/spam_reports", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{spam}");
    let spam: Vec<_> = spam["spam_reports"]
        .as_array()
        .unwrap_or_else(|| panic!("{spam}"))
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(spam, ["spam@example.com"]);
    let (status, global) = apis
        .v3(reqwest::Method::GET, "/v3/asm/suppressions/global", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{global}");
    let mut global: Vec<_> = global["recipient_emails"]
        .as_array()
        .unwrap_or_else(|| panic!("{global}"))
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    global.sort();
    assert_eq!(
        global,
        ["manual@example.com", "unsub@example.com"],
        "manual (0) and unsubscribe (1) are v3 global unsubscribes"
    );
    let rows = apis.sendpost_rows("").await;
    let mut reasons: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().to_owned(),
                r["reason"].as_i64().unwrap(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("hard@example.com".to_owned(), 2),
            ("manual@example.com".to_owned(), 0),
            ("spam@example.com".to_owned(), 3),
            ("unsub@example.com".to_owned(), 1),
        ]
    );
}

#[tokio::test]
async fn a_v3_bounce_reads_in_sendpost_as_reason_2() {
    let apis = Apis::spawn().await;
    let mut v3_created = Vec::new();
    for (address, class, reason) in [
        ("hard-v3@example.com", "hard", "550 5.1.1 User unknown"),
        ("soft-v3@example.com", "soft", "452 4.2.2 Mailbox full"),
        ("block-v3@example.com", "block", "554 5.7.1 Blocked"),
    ] {
        let (status, record) = apis
            .v3(
                reqwest::Method::POST,
                "/v3/suppression/bounces",
                Some(json!({"email": address, "bounce_type": class, "reason": reason})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        v3_created.push((address, reason, record["created"].as_i64().unwrap()));
    }
    let rows = apis.sendpost_rows("&type=hardBounce").await;
    assert_eq!(rows.len(), 3);
    for (address, reason, seconds) in v3_created {
        let row = rows.iter().find(|r| r["email"] == address).unwrap();
        assert_eq!(row["reason"], 2, "{row}");
        assert_eq!(row["reasonText"], "hardBounce");
        assert_eq!(row["smtpError"], reason);
        assert_eq!(row["smtp_error"], reason);
        // v3 shows the seconds of the one stored nanosecond instant.
        let created = row["created"].as_i64().unwrap();
        assert_eq!(created.div_euclid(NANOS), seconds, "{row}");
    }
}

/// `created` in SendPost is v3's seconds × 10⁹ plus the sub-second part,
/// exactly (docs/mapping.md, SendPost `created`). No API takes a caller's
/// sub-second time, so the entry is written into the gateway's SQLite file
/// before it starts, with a known sub-second part, and read back through both
/// APIs.
#[tokio::test]
async fn a_v3_bounce_keeps_its_nanoseconds_in_sendpost() {
    use hush_model::{
        BounceClass, Email, Kind, NewSuppression, Origin, Scope, TenantId, Timestamp,
    };

    // 2024-01-10T01:00:00Z and 123456789 ns.
    let seconds: i64 = 1_704_848_400;
    let sub_second: i64 = 123_456_789;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = hush_store::SqliteBackend::open(hush_store::SqliteOptions::new(
            dir.path().join("hush.db"),
        ))
        .unwrap();
        let engine = hush_engine::Engine::new(std::sync::Arc::new(store));
        engine
            .add(
                &TenantId::parse("demo").unwrap(),
                vec![NewSuppression {
                    email: Email::parse("nanos@example.com").unwrap(),
                    scope: Scope::Global,
                    kind: Kind::Bounce {
                        class: BounceClass::Hard,
                        status: Some("5.1.1".into()),
                        reason: Some("550 5.1.1 User unknown".into()),
                    },
                    origin: Origin::Recipient,
                    created_at: Timestamp::from_nanos(seconds * NANOS + sub_second),
                }],
                &crate::support::seeder(),
            )
            .await
            .unwrap();
    }
    let apis = Apis {
        gw: TestGateway::spawn_in(dir, TENANTS).await,
        client: Client::new(),
    };
    let bounces = apis.v3_bounces().await;
    assert_eq!(bounces["total"], 1, "{bounces}");
    assert_eq!(bounces["bounces"][0]["created"], seconds, "{bounces}");
    let (status, rows) = apis
        .sendpost(
            reqwest::Method::GET,
            "/api/v1/subaccount/suppression?from=2024-01-10&to=2024-01-10",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["reason"], 2);
    assert_eq!(rows[0]["created"], seconds * NANOS + sub_second, "{rows}");
}

#[tokio::test]
async fn a_sendpost_delete_removes_the_address_from_v3() {
    let apis = Apis::spawn().await;
    let (status, _) = apis
        .v3(
            reqwest::Method::POST,
            "/v3/suppression/bounces",
            Some(json!({"email": "from-v3@example.com", "bounce_type": "soft"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    apis.sendpost(
        reqwest::Method::POST,
        "/api/v1/subaccount/suppression",
        Some(json!({
            "hardBounce": [{"email": "from-sp@example.com"}],
            "unsubscribe": [{"email": "from-sp@example.com"}],
            "manual": [{"email": "kept@example.com"}],
        })),
    )
    .await;
    assert_eq!(apis.v3_bounces().await["total"], 2);
    let (status, body) = apis
        .sendpost(
            reqwest::Method::DELETE,
            "/api/v1/subaccount/suppression",
            Some(json!({"suppressions": [{"email": "from-v3@example.com"}, {"email": "FROM-SP@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"message": "Suppressions have been deleted successfully"})
    );
    assert_eq!(apis.v3_bounces().await["total"], 0);
    for address in ["from-v3@example.com", "from-sp@example.com"] {
        let (status, _) = apis
            .v3(
                reqwest::Method::GET,
                &format!("/v3/suppression/bounces/{address}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let rows = apis.sendpost_rows("").await;
    assert_eq!(rows.len(), 1, "only the untouched address is left");
    assert_eq!(rows[0]["email"], "kept@example.com");
}

#[tokio::test]
async fn the_gateway_answers_sendpost_callers_in_sendpost_format() {
    let apis = Apis::spawn().await;
    // Trailing and double slashes reach the routes (the SDK with a host
    // ending in `/`, legacy SDKs' trailing slashes: docs/api/sendpost.md,
    // "Paths").
    let (status, created) = apis
        .sendpost(
            reqwest::Method::POST,
            "/api/v1//subaccount/suppression/",
            Some(json!({"manual": [{"email": "slash@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, count) = apis
        .sendpost(
            reqwest::Method::GET,
            "//api/v1/subaccount/suppression/count/",
            None,
        )
        .await;
    assert_eq!((status, count), (StatusCode::OK, json!({"count": 1})));

    let sendpost_errors = [
        (
            apis.client
                .get(apis.url("/no/such/path"))
                .header("X-SubAccount-ApiKey", "sp-key"),
            StatusCode::NOT_FOUND,
        ),
        (
            apis.client.get(apis.url("/api/v1/account/suppression")),
            StatusCode::NOT_FOUND,
        ),
        (
            apis.client
                .put(apis.url("/api/v1/subaccount/suppression"))
                .header("X-SubAccount-ApiKey", "sp-key"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            apis.client
                .get(apis.url("/api/v1/subaccount/suppression/count")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            apis.client
                .get(apis.url("/api/v1/subaccount/suppression/count"))
                .header("X-SubAccount-ApiKey", "v3-key"),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (request, expected) in sendpost_errors {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), expected);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(res.headers()["x-sendpost-public-contract"], "v1");
        assert!(res.headers().contains_key("x-request-id"));
        let body: Value = res.json().await.unwrap();
        let error = body["error"].as_object().unwrap();
        let keys: Vec<_> = error.keys().map(String::as_str).collect();
        assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    }
    // Anyone else still gets v3's format for an unknown path.
    let res = apis
        .client
        .get(apis.url("/no/such/path"))
        .header("Authorization", bearer("v3-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"].is_array(), "{body}");
    // The log is written from a thread of its own: wait until it holds
    // the last request's line, so that every line of the test is in it.
    let log = apis.gw.gateway.log_with("/no/such/path").await;
    assert!(log.contains("/no/such/path"), "the log was flushed: {log}");
    assert!(
        log.contains("/api/v1/"),
        "SendPost requests are logged: {log}"
    );
    assert!(!log.contains("sp-key"), "no key reaches the log");
}
