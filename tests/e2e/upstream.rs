//! hush A on the upstream backend in front of hush B, which serves that
//! provider's API on its own SQLite: what a client of A sees and changes is
//! exactly what B holds (docs/backends.md). One tenant of A has moved to the
//! upstream; another stays on A's own store, through the same gateway.

use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestGateway, bearer, unused_port};

/// B: the provider, with one tenant whose key A holds.
const B_TENANTS: &str = r#"
[[tenants]]
id = "acme"
  [[tenants.keys]]
  api = "postmark"
  token = "b-postmark-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "b-sendpost-key"
  [[tenants.keys]]
  api = "v3"
  token = "b-v3-key"
  [[tenants.keys]]
  api = "v3"
  token = "b-v3-sendgrid-key"
  shape = "sendgrid"
"#;

/// A: tenant `acme` moved to the upstream, tenant `stay` on A's SQLite.
fn a_tenants(provider: &str, base_url: &str, token: &str) -> String {
    a_tenants_shaped(provider, base_url, token, "")
}

/// `shape` is a line of TOML, empty for providers without one.
fn a_tenants_shaped(provider: &str, base_url: &str, token: &str, shape: &str) -> String {
    format!(
        r#"
[storage.upstream]
provider = "{provider}"
{shape}
base_url = "{base_url}"
retry_max_attempts = 2
retry_initial_backoff_ms = 10
request_timeout_ms = 5000
[[tenants]]
id = "acme"
backend = "upstream"
upstream_token = "{token}"
  [[tenants.keys]]
  api = "postmark"
  token = "a-postmark-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "a-sendpost-key"
  [[tenants.keys]]
  api = "v3"
  token = "a-v3-key"
[[tenants]]
id = "stay"
  [[tenants.keys]]
  api = "sendpost"
  token = "a-stay-key"
  [[tenants.keys]]
  api = "postmark"
  token = "a-stay-token"
"#
    )
}

async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"))
    };
    (status, value)
}

fn postmark(c: &Client, base: &str, token: &str, method: Method, path: &str) -> RequestBuilder {
    c.request(method, format!("{base}{path}"))
        .header("X-Postmark-Server-Token", token)
        .header("Accept", "application/json")
}

fn sendpost(c: &Client, base: &str, key: &str, method: Method, path: &str) -> RequestBuilder {
    c.request(
        method,
        format!("{base}/api/v1/subaccount/suppression{path}"),
    )
    .header("X-SubAccount-ApiKey", key)
}

fn v3(c: &Client, base: &str, key: &str, method: Method, path: &str) -> RequestBuilder {
    c.request(method, format!("{base}{path}"))
        .header("Authorization", bearer(key))
}

async fn dump(c: &Client, base: &str, token: &str, stream: &str) -> Vec<(String, String)> {
    let (status, body) = send(postmark(
        c,
        base,
        token,
        Method::GET,
        &format!("/message-streams/{stream}/suppressions/dump"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut rows: Vec<(String, String)> = body["Suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["EmailAddress"].as_str().unwrap().to_owned(),
                r["SuppressionReason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn changes(emails: &[&str]) -> Value {
    json!({"Suppressions": emails.iter().map(|e| json!({"EmailAddress": e})).collect::<Vec<_>>()})
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_postmark_upstream_shows_and_changes_what_the_provider_holds() {
    let b = TestGateway::spawn(B_TENANTS).await;
    let a = TestGateway::spawn(&a_tenants("postmark", b.base(), "b-postmark-token")).await;
    let c = Client::new();

    // B already holds an entry; A's Postmark client sees it.
    let (status, _) = send(
        postmark(
            &c,
            b.base(),
            "b-postmark-token",
            Method::POST,
            "/message-streams/outbound/suppressions",
        )
        .json(&changes(&["before@x.com"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        dump(&c, a.base(), "a-postmark-token", "outbound").await,
        pairs(&[("before@x.com", "ManualSuppression")])
    );

    // A's clients write; B holds it.
    let many: Vec<String> = (0..45).map(|i| format!("m{i:02}@x.com")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, body) = send(
        postmark(
            &c,
            a.base(),
            "a-postmark-token",
            Method::POST,
            "/message-streams/outbound/suppressions",
        )
        .json(&changes(&refs)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Suppressions"].as_array().unwrap().len(), 45);
    assert!(
        body["Suppressions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["Status"] == "Suppressed"),
        "{body}"
    );
    // v3 takes more addresses at once than Postmark: A sends them on in
    // batches of 50.
    let v3_many: Vec<String> = (0..60).map(|i| format!("v{i:02}@x.com")).collect();
    let (status, body) = send(
        v3(
            &c,
            a.base(),
            "a-v3-key",
            Method::POST,
            "/v3/asm/suppressions/global",
        )
        .json(&json!({"recipient_emails": v3_many})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let on_b = dump(&c, b.base(), "b-postmark-token", "outbound").await;
    assert_eq!(on_b.len(), 106, "{on_b:?}");
    assert!(on_b.contains(&("v59@x.com".to_owned(), "ManualSuppression".to_owned())));
    assert_eq!(
        dump(&c, a.base(), "a-postmark-token", "outbound").await,
        on_b
    );

    // Streams are groups: a stream made on B is a v3 group on A.
    let (status, body) = send(
        postmark(
            &c,
            b.base(),
            "b-postmark-token",
            Method::POST,
            "/message-streams",
        )
        .json(&json!({
            "ID": "news", "Name": "News", "MessageStreamType": "Broadcasts"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, groups) = send(v3(&c, a.base(), "a-v3-key", Method::GET, "/v3/asm/groups")).await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    let names: Vec<&str> = groups["suppression_groups"]
        .as_array()
        .unwrap_or_else(|| panic!("{groups}"))
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"News"), "{groups}");

    // A deletes; B no longer holds it.
    let (status, body) = send(
        postmark(
            &c,
            a.base(),
            "a-postmark-token",
            Method::POST,
            "/message-streams/outbound/suppressions/delete",
        )
        .json(&changes(&["before@x.com", "m00@x.com"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_b = dump(&c, b.base(), "b-postmark-token", "outbound").await;
    assert_eq!(on_b.len(), 104);
    assert!(
        !on_b
            .iter()
            .any(|(e, _)| e == "before@x.com" || e == "m00@x.com")
    );

    // The tenant that stayed is served from A's own store, untouched by B.
    assert!(
        dump(&c, a.base(), "a-stay-token", "outbound")
            .await
            .is_empty()
    );
    let (status, _) = send(
        postmark(
            &c,
            a.base(),
            "a-stay-token",
            Method::POST,
            "/message-streams/outbound/suppressions",
        )
        .json(&changes(&["local@x.com"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        dump(&c, a.base(), "a-stay-token", "outbound").await,
        pairs(&[("local@x.com", "ManualSuppression")])
    );
    assert!(
        !dump(&c, b.base(), "b-postmark-token", "outbound")
            .await
            .iter()
            .any(|(e, _)| e == "local@x.com")
    );

    // Deleting a group cannot be done on Postmark: 501 naming the backend,
    // in v3's format.
    let news = groups["suppression_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "News")
        .unwrap()["id"]
        .clone();
    let (status, body) = send(v3(
        &c,
        a.base(),
        "a-v3-key",
        Method::DELETE,
        &format!("/v3/asm/groups/{news}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("upstream-postmark") && message.contains("delete groups"),
        "{message}"
    );
}

async fn sendpost_list(c: &Client, base: &str, key: &str) -> Vec<(String, i64)> {
    let today = time::OffsetDateTime::now_utc().date();
    let from = today - time::Duration::days(30);
    let (status, body) = send(sendpost(
        c,
        base,
        key,
        Method::GET,
        &format!("?from={from}&to={today}&limit=100"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut rows: Vec<(String, i64)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().to_owned(),
                r["reason"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn a_sendpost_upstream_shows_and_changes_what_the_provider_holds() {
    let b = TestGateway::spawn(B_TENANTS).await;
    let a = TestGateway::spawn(&a_tenants("sendpost", b.base(), "b-sendpost-key")).await;
    let c = Client::new();

    let (status, _) = send(
        sendpost(&c, b.base(), "b-sendpost-key", Method::POST, "")
            .json(&json!({"manual": [{"email": "before@x.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sendpost_list(&c, a.base(), "a-sendpost-key").await,
        vec![("before@x.com".to_owned(), 0)]
    );

    // A's SendPost and v3 clients write; B holds it.
    let (status, body) = send(
        sendpost(&c, a.base(), "a-sendpost-key", Method::POST, "")
            .json(&json!({"hardBounce": [{"email": "hb@x.com"}], "spamComplaint": [{"email": "spam@x.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2, "{body}");
    let (status, body) = send(
        v3(
            &c,
            a.base(),
            "a-v3-key",
            Method::POST,
            "/v3/asm/suppressions/global",
        )
        .json(&json!({"recipient_emails": ["v3@x.com"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let on_b = sendpost_list(&c, b.base(), "b-sendpost-key").await;
    assert_eq!(
        on_b,
        vec![
            ("before@x.com".to_owned(), 0),
            ("hb@x.com".to_owned(), 2),
            ("spam@x.com".to_owned(), 3),
            ("v3@x.com".to_owned(), 1),
        ]
    );
    assert_eq!(sendpost_list(&c, a.base(), "a-sendpost-key").await, on_b);
    let (status, body) = send(v3(
        &c,
        a.base(),
        "a-v3-key",
        Method::GET,
        "/v3/suppression/bounces/hb@x.com",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");

    // A deletes; B no longer holds it.
    let (status, body) = send(
        sendpost(&c, a.base(), "a-sendpost-key", Method::DELETE, "")
            .json(&json!({"suppressions": [{"email": "spam@x.com"}, {"email": "before@x.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        sendpost_list(&c, b.base(), "b-sendpost-key").await,
        vec![("hb@x.com".to_owned(), 2), ("v3@x.com".to_owned(), 1)]
    );

    // Groups cannot live on SendPost: 501 naming the backend and the
    // operation, in the caller's format.
    let (status, body) = send(v3(&c, a.base(), "a-v3-key", Method::GET, "/v3/asm/groups")).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("upstream-sendpost") && message.contains("manage groups"),
        "{message}"
    );

    // The tenant that stayed keeps its own store, with everything it can
    // do there: capabilities are the tenant's backend's, so its streams
    // (groups) work on the same gateway.
    assert!(sendpost_list(&c, a.base(), "a-stay-key").await.is_empty());
    assert!(
        dump(&c, a.base(), "a-stay-token", "outbound")
            .await
            .is_empty()
    );
    let (status, body) = send(
        postmark(
            &c,
            a.base(),
            "a-stay-token",
            Method::POST,
            "/message-streams",
        )
        .json(&json!({
            "ID": "local-news", "Name": "Local News", "MessageStreamType": "Broadcasts"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_in_each_callers_format() {
    // Nobody listens on this port.
    let dead = format!("http://127.0.0.1:{}", unused_port());
    let a = TestGateway::spawn(&a_tenants("sendpost", &dead, "b-sendpost-key")).await;
    let c = Client::new();
    reads_fail_in_sendpost_and_v3_format(&c, a.base(), StatusCode::BAD_GATEWAY).await;
    let (status, body) = send(postmark(
        &c,
        a.base(),
        "a-postmark-token",
        Method::GET,
        "/message-streams/outbound/suppressions/dump",
    ))
    .await;
    // A Postmark dump needs streams, which SendPost lacks: refused, not failed.
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert_eq!(body["ErrorCode"], 0, "{body}");
    // The token never reaches the log, once the log holds the failures
    // (it is written from a thread of its own).
    let log = a.gateway.log_with("suppressions/dump").await;
    assert!(
        log.contains("upstream failure"),
        "the failures were logged: {log}"
    );
    assert!(
        log.contains("suppressions/dump"),
        "the log was flushed: {log}"
    );
    assert!(!log.contains("b-sendpost-key"));
    // Ready but degraded: `stay` is served from SQLite, and a balancer
    // must not take it down with `acme`'s provider. The provider is named.
    let ready = c.get(format!("{}/readyz", a.base())).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["backends"][0]["backend"], "sqlite", "{ready}");
    assert_eq!(ready["backends"][0]["status"], "ready", "{ready}");
    assert_eq!(
        ready["backends"][1]["backend"], "upstream-sendpost",
        "{ready}"
    );
    assert_eq!(ready["backends"][1]["status"], "unavailable", "{ready}");
}

/// A provider that refuses connections at start-up (one with streams,
/// which hush prepares for each tenant at start) no longer stops the
/// gateway: the other tenant is served, the unreachable one answers 502 in
/// each caller's format, and when the provider is the default backend the
/// gateway starts and reports itself unavailable.
#[tokio::test]
async fn a_provider_down_at_start_up_stops_only_its_own_tenant() {
    let dead = format!("http://127.0.0.1:{}", unused_port());
    for provider in ["postmark", "v3"] {
        let a = TestGateway::spawn(&a_tenants(provider, &dead, "b-key")).await;
        let c = Client::new();
        let (status, body) = send(
            postmark(
                &c,
                a.base(),
                "a-stay-token",
                Method::POST,
                "/message-streams/outbound/suppressions",
            )
            .json(&changes(&["kept@example.com"])),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{provider}: {body}");
        let (status, body) = send(postmark(
            &c,
            a.base(),
            "a-postmark-token",
            Method::GET,
            "/message-streams/outbound/suppressions/dump",
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{provider}: {body}");
        assert!(body["ErrorCode"].is_number(), "{body}");
        let (status, body) = send(v3(
            &c,
            a.base(),
            "a-v3-key",
            Method::GET,
            "/v3/suppression/bounces",
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{provider}: {body}");
        assert!(body["errors"].is_array(), "{body}");
        let ready: Value = c
            .get(format!("{}/readyz", a.base()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "degraded", "{provider}: {ready}");
    }
    // The default backend itself down: the gateway still starts, and says
    // it is not ready.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nbackend = \"upstream\"\n[storage.upstream]\nprovider = \"postmark\"\nbase_url = \"{dead}\"\nretry_max_attempts = 1\n[log]\nformat = \"json\"\n[[tenants]]\nid = \"acme\"\nupstream_token = \"b-key\"\n[[tenants.keys]]\napi = \"postmark\"\ntoken = \"a-postmark-token\"\n"
        ),
    )
    .unwrap();
    let gw = crate::support::Gateway::start(&config, &[]).await;
    let ready = Client::new().get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        gw.log_with("trying it again in the background")
            .await
            .contains("trying it again"),
        "{}",
        gw.stderr()
    );
}

#[tokio::test]
async fn a_gateway_on_a_reachable_upstream_is_ready() {
    let b = TestGateway::spawn(B_TENANTS).await;
    let a = TestGateway::spawn(&a_tenants("postmark", b.base(), "b-postmark-token")).await;
    let ready = Client::new()
        .get(format!("{}/readyz", a.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_upstream_settings_stop_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = "[[tenants]]\nid = \"t\"\nbackend = \"upstream\"\n";
    let storage = "[storage]\nbackend = \"memory\"\n";
    let cases = [
        (
            format!("{storage}{tenant}upstream_token = \"secret-1\"\n"),
            "storage.upstream.provider",
        ),
        (
            format!("{storage}[storage.upstream]\nprovider = \"postmark\"\n{tenant}"),
            "tenants[0].upstream_token",
        ),
        (
            format!(
                "{storage}[storage.upstream]\nprovider = \"postmark\"\n{tenant}upstream_token_env = \"ACME_NOT_SET_ANYWHERE_FOR_TEST\"\n"
            ),
            "tenants[0].upstream_token_env",
        ),
        (
            format!(
                "{storage}[storage.upstream]\nprovider = \"sendpost\"\nbase_url = \"ftp://x\"\n{tenant}upstream_token = \"secret-1\"\n"
            ),
            "storage.upstream.base_url",
        ),
        (
            format!(
                "{storage}[storage.upstream]\nprovider = \"sendpost\"\nretry_max_attempts = 0\n{tenant}upstream_token = \"secret-1\"\n"
            ),
            "storage.upstream.retry_max_attempts",
        ),
        (
            format!(
                "{storage}[storage.upstream]\nprovider = \"sendpost\"\nhistory_start = \"yesterday\"\n{tenant}upstream_token = \"secret-1\"\n"
            ),
            "storage.upstream.history_start",
        ),
        (
            format!("{storage}[storage.upstream]\nprovider = \"carrier-pigeon\"\n"),
            "storage.upstream.provider",
        ),
        (
            format!("{storage}[[tenants]]\nid = \"t\"\nupstream_token = \"secret-1\"\n"),
            "tenants[0].upstream_token",
        ),
        (
            format!(
                "{storage}[storage.upstream]\nprovider = \"postmark\"\nshape = \"sendgrid\"\n{tenant}upstream_token = \"secret-1\"\n"
            ),
            "storage.upstream.shape",
        ),
    ];
    for (toml, key) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, &toml).unwrap();
        let (code, stderr) = crate::support::refused_start(Some(&file), &[]);
        assert_eq!(code, 2, "{toml}\n{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
        assert!(!stderr.contains("secret-1"), "the token leaked: {stderr}");
    }
}

#[tokio::test]
async fn the_upstream_token_can_come_from_the_environment() {
    let b = TestGateway::spawn(B_TENANTS).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nbackend = \"upstream\"\n[storage.upstream]\nprovider = \"sendpost\"\nbase_url = \"{}\"\n[[tenants]]\nid = \"acme\"\nupstream_token_env = \"ACME_UPSTREAM_KEY_FOR_TEST\"\n[[tenants.keys]]\napi = \"sendpost\"\ntoken = \"a-sendpost-key\"\n",
        b.base()
    );
    let config = dir.path().join("hush.toml");
    std::fs::write(&config, toml).unwrap();
    let a = crate::support::Gateway::start(
        &config,
        &[("ACME_UPSTREAM_KEY_FOR_TEST", "b-sendpost-key")],
    )
    .await;
    let c = Client::new();
    let (status, _) = send(
        sendpost(&c, b.base(), "b-sendpost-key", Method::POST, "")
            .json(&json!({"unsubscribe": [{"email": "env@x.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sendpost_list(&c, &a.base, "a-sendpost-key").await,
        vec![("env@x.com".to_owned(), 1)]
    );
}

/// A provider that fails: wiremock stands in for Postmark (the only mock,
/// and only of an upstream). A's clients get 502 in their own format after
/// the configured number of attempts, and A's log names the upstream status
/// and request id.
#[tokio::test]
async fn upstream_faults_are_retried_then_reported_in_the_callers_format() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let fake = MockServer::start().await;
    let outbound = json!({
        "ID": "outbound", "ServerID": 1, "Name": "Default Transactional Stream",
        "Description": null, "MessageStreamType": "Transactional",
        "CreatedAt": "2024-01-01T00:00:00+00:00", "UpdatedAt": null, "ArchivedAt": null,
        "ExpectedPurgeDate": null,
        "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "None"}
    });
    // Start-up and every stream call read the streams.
    Mock::given(method("GET"))
        .and(path("/message-streams/outbound"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&outbound))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/message-streams"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"MessageStreams": [outbound], "TotalCount": 1})),
        )
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/message-streams/outbound/suppressions/dump"))
        .respond_with(ResponseTemplate::new(503).insert_header("x-request-id", "pm-req-777"))
        .expect(6)
        .named("three reads, each retried once")
        .mount(&fake)
        .await;
    let a = TestGateway::spawn(&a_tenants("postmark", &fake.uri(), "pm-secret-token")).await;
    let c = Client::new();

    let (status, body) = send(
        postmark(
            &c,
            a.base(),
            "a-postmark-token",
            Method::GET,
            "/message-streams/outbound/suppressions/dump",
        )
        .header("X-Request-Id", "caller-req-1"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["ErrorCode"], 0, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("upstream-postmark"),
        "{body}"
    );
    let (status, body) = send(v3(
        &c,
        a.base(),
        "a-v3-key",
        Method::GET,
        "/v3/suppression/bounces/x@x.com",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body["errors"][0]["message"].as_str().is_some(), "{body}");

    // A create first reads what the address has (Postmark's authority
    // rules), so it fails before anything is written.
    let (status, body) = send(
        postmark(
            &c,
            a.base(),
            "a-postmark-token",
            Method::POST,
            "/message-streams/outbound/suppressions",
        )
        .json(&changes(&["a@x.com"])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["ErrorCode"], 0, "{body}");

    let log = a.gateway.log_with("pm-req-777").await;
    assert!(
        log.contains("pm-req-777"),
        "no request id in the log: {log}"
    );
    assert!(log.contains("503"), "no upstream status in the log: {log}");
    // The failure's own line, written while serving the request, names the
    // caller's request id (hush_engine::request), as does the request line
    // (the test gateway logs JSON).
    for line in ["upstream failure", "request failed"] {
        assert!(
            log.lines()
                .any(|l| l.contains(line) && l.contains(r#""request_id":"caller-req-1""#)),
            "no {line:?} line with the request id: {log}"
        );
    }
    assert!(!log.contains("pm-secret-token"), "the token leaked: {log}");
    // Each of the three reads was tried twice (retry_max_attempts = 2).
    let dumps = fake
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/message-streams/outbound/suppressions/dump")
        .count();
    assert_eq!(dumps, 6);
}

async fn bounce_emails(c: &Client, base: &str, key: &str) -> Vec<String> {
    let (status, body) = send(v3(c, base, key, Method::GET, "/v3/suppression/bounces")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body
        .get("bounces")
        .unwrap_or(&body)
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    let mut emails: Vec<String> = rows
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    emails
}

/// hush A in front of a v3 provider, in the provider's shape.
async fn v3_upstream_round_trip(shape: &str, b_key: &str) {
    let b = TestGateway::spawn(B_TENANTS).await;
    let shape = format!("shape = \"{shape}\"");
    let a = TestGateway::spawn(&a_tenants_shaped("v3", b.base(), b_key, &shape)).await;
    let c = Client::new();

    // B holds a bounce; A's v3 and SendPost clients see it.
    let (status, body) = send(
        v3(
            &c,
            b.base(),
            "b-v3-key",
            Method::POST,
            "/v3/suppression/bounces",
        )
        .json(&json!({"email": "before@x.com", "reason": "550 5.1.1 unknown"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        bounce_emails(&c, a.base(), "a-v3-key").await,
        ["before@x.com"]
    );
    assert_eq!(
        sendpost_list(&c, a.base(), "a-sendpost-key").await,
        vec![("before@x.com".to_owned(), 2)]
    );

    // A's SendPost and v3 clients write; B holds it.
    let (status, body) = send(
        sendpost(&c, a.base(), "a-sendpost-key", Method::POST, "")
            .json(&json!({"hardBounce": [{"email": "sp@x.com"}], "unsubscribe": [{"email": "unsub@x.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        bounce_emails(&c, b.base(), "b-v3-key").await,
        ["before@x.com", "sp@x.com"]
    );
    let (status, body) = send(v3(
        &c,
        b.base(),
        "b-v3-key",
        Method::GET,
        "/v3/asm/suppressions/global/unsub@x.com",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recipient_email"], "unsub@x.com", "{body}");

    // A group made through A is a group on B, and its members too.
    let (status, group) = send(
        v3(&c, a.base(), "a-v3-key", Method::POST, "/v3/asm/groups")
            .json(&json!({"name": "Weekly", "description": "news"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let id = group["id"].as_i64().unwrap();
    let (status, body) = send(
        v3(
            &c,
            a.base(),
            "a-v3-key",
            Method::POST,
            &format!("/v3/asm/groups/{id}/suppressions"),
        )
        .json(&json!({"recipient_emails": ["member@x.com"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, members) = send(v3(
        &c,
        b.base(),
        "b-v3-key",
        Method::GET,
        &format!("/v3/asm/groups/{id}/suppressions"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{members}");
    assert!(members.to_string().contains("member@x.com"), "{members}");

    // A deletes; B no longer holds it.
    let (status, body) = send(v3(
        &c,
        a.base(),
        "a-v3-key",
        Method::DELETE,
        "/v3/suppression/bounces/before@x.com",
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(bounce_emails(&c, b.base(), "b-v3-key").await, ["sp@x.com"]);

    // The tenant that stayed is untouched.
    assert!(sendpost_list(&c, a.base(), "a-stay-key").await.is_empty());
}

#[tokio::test]
async fn a_v3_upstream_in_the_seed_shape_shows_and_changes_what_the_provider_holds() {
    v3_upstream_round_trip("seed", "b-v3-key").await;
}

#[tokio::test]
async fn a_v3_upstream_in_the_sendgrid_shape_shows_and_changes_what_the_provider_holds() {
    v3_upstream_round_trip("sendgrid", "b-v3-sendgrid-key").await;
}

/// No client notices the move: the official SendPost SDK's own suite, run
/// unchanged against A whose tenant lives at B.
#[tokio::test]
async fn the_sendpost_sdk_suite_passes_against_a_sendpost_upstream() {
    let python = tokio::task::spawn_blocking(|| {
        crate::sdk::python_env("sendpost3", crate::sdk_sendpost::PYTHON_SENDPOST)
    })
    .await
    .unwrap();
    let b = TestGateway::spawn(B_TENANTS).await;
    let a = TestGateway::spawn(&a_tenants("sendpost", b.base(), "b-sendpost-key")).await;
    let base = a.base().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        crate::sdk::run_script(
            &python,
            "sendpost_suppressions.py",
            &base,
            &[("SENDPOST_KEY", "a-sendpost-key")],
        )
    })
    .await
    .unwrap();
    assert!(out.contains("all passed"), "{out}");
    // And it all happened at B.
    assert!(
        !sendpost_list(&Client::new(), b.base(), "b-sendpost-key")
            .await
            .is_empty()
    );
}

/// The same for v3: the official Python SendGrid SDK's bounce suite, run
/// unchanged against A whose tenant lives at a v3 provider (B, seed shape).
#[tokio::test]
async fn the_sendgrid_sdk_bounce_suite_passes_against_a_v3_upstream() {
    let python = tokio::task::spawn_blocking(|| {
        crate::sdk::python_env("sendgrid", crate::sdk_v3::PYTHON_SENDGRID)
    })
    .await
    .unwrap();
    let b = TestGateway::spawn(B_TENANTS).await;
    let a = TestGateway::spawn(&format!(
        r#"
[storage.upstream]
provider = "v3"
base_url = "{}"
[[tenants]]
id = "sdk"
backend = "upstream"
upstream_token = "b-v3-key"
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-writer"
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-reader"
  scopes = ["suppressions.read"]
"#,
        b.base()
    ))
    .await;
    let base = a.base().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        crate::sdk::run_script(&python, "v3_bounces.py", &base, &[])
    })
    .await
    .unwrap();
    assert!(out.contains("all passed"), "{out}");
}

/// And for Postmark: the official postmark-python suite, run unchanged
/// against A whose tenant lives at B (seeded as that suite expects).
#[tokio::test]
async fn the_postmark_sdk_suite_passes_against_a_postmark_upstream() {
    let python = tokio::task::spawn_blocking(|| {
        crate::sdk::python_env("postmark", crate::sdk_postmark::PYTHON_POSTMARK)
    })
    .await
    .unwrap();
    let b = TestGateway::spawn_in(
        crate::sdk_postmark::seeded_dir().await,
        crate::sdk_postmark::TENANTS,
    )
    .await;
    let a = TestGateway::spawn(&format!(
        r#"
[storage.upstream]
provider = "postmark"
base_url = "{}"
[[tenants]]
id = "sdk"
backend = "upstream"
upstream_token = "pm-sdk-server-token"
  [[tenants.keys]]
  api = "postmark"
  token = "a-pm-token"
"#,
        b.base()
    ))
    .await;
    let base = a.base().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        crate::sdk::run_script(
            &python,
            "postmark_python.py",
            &base,
            &[("POSTMARK_TOKEN", "a-pm-token")],
        )
    })
    .await
    .unwrap();
    assert!(out.contains("all passed"), "{out}");
}

/// `hush copy` with an upstream: the config names the provider and the
/// tenants whose credentials it holds.
fn copy_with_config(config: &std::path::Path, from: &str, to: &str) -> String {
    let output = std::process::Command::new(crate::support::HUSH)
        .args(["copy", "--config"])
        .arg(config)
        .args(["--from", from, "--to", to])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hush copy failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn hush_copy_pulls_a_tenant_s_postmark_list_into_sqlite_and_pushes_it_to_sendpost() {
    let b = TestGateway::spawn(B_TENANTS).await;
    let c = Client::new();
    // The provider holds entries in its default stream and in a stream of
    // its own.
    let (status, _) = send(
        postmark(
            &c,
            b.base(),
            "b-postmark-token",
            Method::POST,
            "/message-streams",
        )
        .json(&json!({"ID": "news", "Name": "News", "MessageStreamType": "Broadcasts"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let outbound: Vec<String> = (0..30).map(|i| format!("out{i:02}@x.com")).collect();
    let refs: Vec<&str> = outbound.iter().map(String::as_str).collect();
    for (stream, emails) in [
        ("outbound", refs.as_slice()),
        ("news", &["reader@x.com"][..]),
    ] {
        let (status, _) = send(
            postmark(
                &c,
                b.base(),
                "b-postmark-token",
                Method::POST,
                &format!("/message-streams/{stream}/suppressions"),
            )
            .json(&changes(emails)),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("copy.toml");
    std::fs::write(&config, a_tenants("postmark", b.base(), "b-postmark-token")).unwrap();
    let db = dir.path().join("pulled.db");
    let to = format!("sqlite:{}", db.display());
    let out = copy_with_config(&config, "upstream:postmark", &to);
    assert!(out.contains("31 copied"), "{out}");
    let again = copy_with_config(&config, "upstream:postmark", &to);
    assert!(
        again.contains("0 copied, 31 already there"),
        "a re-run copies nothing twice: {again}"
    );

    // What was pulled is what the provider holds, served by a gateway on it.
    // The Postmark upstream keeps hush's Global entries in `outbound`
    // (docs/backends.md), so those come back Global: in every stream's dump.
    let served_toml = dir.path().join("served.toml");
    std::fs::write(
        &served_toml,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n[[tenants]]\nid = \"acme\"\n  [[tenants.keys]]\n  api = \"postmark\"\n  token = \"local\"\n",
            db.display()
        ),
    )
    .unwrap();
    let served = crate::support::Gateway::start(&served_toml, &[]).await;
    let pulled = dump(&c, &served.base, "local", "outbound").await;
    assert_eq!(pulled.len(), 30);
    assert!(
        pulled
            .iter()
            .all(|(_, reason)| reason == "ManualSuppression")
    );
    let news = dump(&c, &served.base, "local", "news").await;
    assert_eq!(
        news.len(),
        31,
        "Global entries and the stream's own: {news:?}"
    );
    assert!(news.contains(&("reader@x.com".to_owned(), "ManualSuppression".to_owned())));
    drop(served);

    // Pushed to a provider without groups: the Global entries go, the
    // stream's own entry is counted as not held, never dropped silently.
    let push_config = dir.path().join("push.toml");
    std::fs::write(
        &push_config,
        a_tenants("sendpost", b.base(), "b-sendpost-key"),
    )
    .unwrap();
    let out = copy_with_config(&push_config, &to, "upstream:sendpost");
    assert!(out.contains("30 copied"), "{out}");
    assert!(
        out.contains("not held by the destination: 2 group(s) with 1 suppression(s)"),
        "{out}"
    );
    let held = sendpost_list(&c, b.base(), "b-sendpost-key").await;
    assert_eq!(
        held.len(),
        30,
        "SendPost at B holds the Global entries: {held:?}"
    );
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_in_time_is_a_504_in_each_callers_format() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let fake = MockServer::start().await;
    // Slower than the request timeout below, on every call.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(3)))
        .mount(&fake)
        .await;
    let tenants = a_tenants("sendpost", &fake.uri(), "sp-token")
        .replace("request_timeout_ms = 5000", "request_timeout_ms = 200");
    let a = TestGateway::spawn(&tenants).await;
    reads_fail_in_sendpost_and_v3_format(&Client::new(), a.base(), StatusCode::GATEWAY_TIMEOUT)
        .await;
}

/// A SendPost list and a v3 lookup through a failing upstream: `expected`,
/// each in its caller's error envelope, naming the upstream.
async fn reads_fail_in_sendpost_and_v3_format(c: &Client, base: &str, expected: StatusCode) {
    let today = time::OffsetDateTime::now_utc().date();
    let (status, body) = send(sendpost(
        c,
        base,
        "a-sendpost-key",
        Method::GET,
        &format!("?from={today}&to={today}"),
    ))
    .await;
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream"),
        "{body}"
    );
    let (status, body) = send(v3(
        c,
        base,
        "a-v3-key",
        Method::GET,
        "/v3/suppression/bounces/x@x.com",
    ))
    .await;
    assert_eq!(status, expected, "{body}");
    assert!(body["errors"][0]["message"].as_str().is_some(), "{body}");
}
