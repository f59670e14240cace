//! The gateway process: the bounce slice from HTTP to the SQLite file and
//! back, durability, shutdown, config errors, health.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

struct Setup {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    std::fs::write(&config, config_toml(dir.path())).unwrap();
    Setup { _dir: dir, config }
}

async fn add_bounce(client: &reqwest::Client, gw: &Gateway, email: &str) -> Value {
    let res = client
        .post(gw.url("/v3/suppression/bounces"))
        .header("Authorization", bearer("demo-v3-key"))
        .json(&json!({"email": email, "reason": "550 5.1.1 User unknown"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn list(client: &reqwest::Client, gw: &Gateway, query: &str) -> Value {
    let res = client
        .get(gw.url(&format!("/v3/suppression/bounces{query}")))
        .header("Authorization", bearer("demo-v3-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_bounce_walkthrough_survives_a_restart() {
    let s = setup();
    let client = reqwest::Client::new();
    let mut gw = Gateway::start(&s.config, &[]).await;
    let record = add_bounce(&client, &gw, "walk+through@example.com").await;
    let created = record["created"].as_i64().unwrap();
    let listed = list(&client, &gw, "").await;
    assert_eq!(listed["total"], 1);
    let window = list(
        &client,
        &gw,
        &format!("?start_time={created}&end_time={created}&email=walk%2Bthrough%40example.com"),
    )
    .await;
    assert_eq!(window["total"], 1, "filtered by time and email");
    let outside = list(&client, &gw, &format!("?end_time={}", created - 1)).await;
    assert_eq!(outside["total"], 0);

    assert_eq!(gw.terminate().code(), Some(0), "SIGTERM is a clean stop");
    let gw = Gateway::start(&s.config, &[]).await;
    let after = list(&client, &gw, "").await;
    assert_eq!(
        after["bounces"][0], record,
        "the same record after a restart"
    );

    let res = client
        .delete(gw.url("/v3/suppression/bounces/walk+through@example.com"))
        .header("Authorization", bearer("demo-v3-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(list(&client, &gw, "").await["total"], 0);
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let s = setup();
    let client = reqwest::Client::new();
    let mut gw = Gateway::start(&s.config, &[]).await;
    let writes: Vec<_> = (0..40)
        .map(|i| {
            let client = client.clone();
            let url = gw.url("/v3/suppression/bounces");
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("Authorization", bearer("demo-v3-key"))
                    .json(&json!({"email": format!("durable{i}@example.com")}))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    let mut acknowledged = 0;
    for write in writes {
        if write.await.unwrap().unwrap() == StatusCode::CREATED {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, 40);
    gw.kill_hard();
    let gw = Gateway::start(&s.config, &[]).await;
    assert_eq!(
        list(&client, &gw, "?limit=500").await["total"],
        40,
        "every acknowledged write is there"
    );
}

#[tokio::test]
async fn refusals_are_in_the_v3_envelope_with_a_request_id() {
    let s = setup();
    let client = reqwest::Client::new();
    let gw = Gateway::start(&s.config, &[]).await;
    let cases = [
        (
            client
                .get(gw.url("/v3/suppression/bounces"))
                .header("Authorization", bearer("nope")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            client.get(gw.url("/v3/suppression/bounces")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            client
                .post(gw.url("/v3/suppression/bounces"))
                .header("Authorization", bearer("demo-v3-readonly"))
                .json(&json!({"email": "ro@example.com"})),
            StatusCode::FORBIDDEN,
        ),
        (
            client
                .get(gw.url("/no/such/path"))
                .header("Authorization", bearer("demo-v3-key")),
            StatusCode::NOT_FOUND,
        ),
        (client.get(gw.url("/v3/unknown")), StatusCode::NOT_FOUND),
        (
            client
                .put(gw.url("/v3/suppression/bounces"))
                .header("Authorization", bearer("demo-v3-key")),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (request, expected) in cases {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), expected);
        assert!(res.headers().contains_key("x-request-id"));
        assert_eq!(res.headers()["content-type"], "application/json");
        let body: Value = res.json().await.unwrap();
        assert!(body["errors"][0]["message"].is_string(), "{body}");
        assert!(
            body["errors"][0].as_object().unwrap().contains_key("field"),
            "{body}"
        );
    }
    // The tenant configured by digest can use its key; it sees none of demo's data.
    add_bounce(&client, &gw, "demo-only@example.com").await;
    let res = client
        .get(gw.url("/v3/suppression/bounces"))
        .header("Authorization", bearer("other-tenant-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["total"], 0);
    // A caller's request id is echoed.
    let res = client
        .get(gw.url("/healthz"))
        .header("X-Request-Id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-123");
    // No token reaches the log.
    let log = gw.log_with("trace-123").await;
    assert!(
        log.contains("trace-123"),
        "requests are logged with their id"
    );
    for secret in [
        "demo-v3-key",
        "demo-v3-readonly",
        "other-tenant-key",
        "nope",
    ] {
        assert!(!log.contains(secret), "the log shows {secret}");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let s = setup();
    let client = reqwest::Client::new();
    let gw = Gateway::start(&s.config, &[]).await;
    let health: Value = client
        .get(gw.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = client.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["backend"], "sqlite");
}

#[tokio::test]
async fn env_overrides_the_file() {
    let s = setup();
    // Another address than the file's, still on a port the system picks.
    let listen = "127.0.0.2:0".to_owned();
    let gw = Gateway::start(
        &s.config,
        &[
            ("HUSH_SERVER__LISTEN", &listen),
            ("HUSH_STORAGE__BACKEND", "memory"),
        ],
    )
    .await;
    let ready: Value = reqwest::get(gw.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["backend"], "memory");
}

/// The shipped config serves its demo tokens on loopback, and refuses to
/// start beyond it: the README publishes them.
#[test]
fn the_shipped_config_is_refused_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hush.db");
    let shipped = repo_root().join("config/hush.toml");
    let (code, stderr) = refused_start(
        Some(&shipped),
        &[
            ("HUSH_SERVER__LISTEN", "0.0.0.0:0"),
            ("HUSH_STORAGE__PATH", db.to_str().unwrap()),
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("tenants[0].keys[0].token") && stderr.contains("demo tokens"),
        "{stderr}"
    );
    assert!(!db.exists(), "nothing was opened");
}

/// docker-compose.yml's setting: a container listens on 0.0.0.0 with its
/// port published on the host's loopback, and opts in to the demo tokens.
#[tokio::test]
async fn the_demo_tokens_serve_beyond_loopback_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hush.db");
    let shipped = repo_root().join("config/hush.toml");
    let gw = Gateway::start(
        &shipped,
        &[
            ("HUSH_SERVER__LISTEN", "0.0.0.0:0"),
            ("HUSH_SERVER__ALLOW_DEMO_TOKENS", "true"),
            ("HUSH_STORAGE__PATH", db.to_str().unwrap()),
            ("HUSH_LOG__FORMAT", "json"),
        ],
    )
    .await;
    let res = reqwest::Client::new()
        .get(gw.url("/v3/suppression/bounces"))
        .header("Authorization", bearer("demo-v3-readonly"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_shipped_config_starts_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hush.db");
    let shipped = repo_root().join("config/hush.toml");
    let gw = Gateway::start(
        &shipped,
        &[
            ("HUSH_SERVER__LISTEN", "127.0.0.1:0"),
            ("HUSH_STORAGE__PATH", db.to_str().unwrap()),
            ("HUSH_LOG__FORMAT", "json"),
        ],
    )
    .await;
    let res = reqwest::Client::new()
        .get(gw.url("/v3/suppression/bounces"))
        .header("Authorization", bearer("demo-v3-readonly"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the demo read-only key works");
    assert!(
        db.exists(),
        "the store is the file named by HUSH_STORAGE__PATH"
    );
}

#[test]
fn a_bad_config_value_stops_the_start_naming_the_key() {
    let s = setup();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("HUSH_SERVER__LISTEN", "not-an-address")],
            "server.listen",
        ),
        (&[("HUSH_STORAGE__BACKEND", "floppy")], "storage.backend"),
        (&[("HUSH_LOG__FORMAT", "xml")], "log.format"),
        (
            &[("HUSH_SERVER__MAX_BODY_BYTES", "12")],
            "server.max_body_bytes",
        ),
    ];
    for (env, key) in cases {
        let (code, stderr) = refused_start(Some(&s.config), env);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
    let bad_files = [
        ("[[tenants]]\nid = \"Bad Id\"\n", "tenants[0].id"),
        (
            "[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"v3\"\n",
            "tenants[0].keys[0].token",
        ),
        (
            "[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"v3\"\ntoken = \"k\"\nscopes = [\"all\"]\n",
            "tenants[0].keys[0].scopes",
        ),
        (
            "[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"v3\"\ntoken_sha256 = \"abc\"\n",
            "tenants[0].keys[0].token_sha256",
        ),
        (
            "[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"smtp\"\ntoken = \"k\"\n",
            "tenants[0].keys[0].api",
        ),
        ("[server]\nlisten = \"127.0.0.1:1\"\nlsten = 3\n", "lsten"),
        // A duplicated scope, a token that could never match, and a short
        // token beyond loopback.
        (
            "[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"v3\"\ntoken = \"k\"\nscopes = [\"suppressions.read\", \"suppressions.read\"]\n",
            "tenants[0].keys[0].scopes",
        ),
        (
            "[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"postmark\"\ntoken = \"k\"\nscopes = [\"suppressions.read\", \"suppressions.read\"]\n",
            "tenants[0].keys[0].scopes",
        ),
        (
            "[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"v3\"\ntoken = \" spaced-token \"\n",
            "tenants[0].keys[0].token",
        ),
        (
            "[server]\nlisten = \"0.0.0.0:1\"\n[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"v3\"\ntoken = \"k\"\n",
            "tenants[0].keys[0].token",
        ),
        (
            "[server]\nlisten = \"0.0.0.0:1\"\n[[tenants]]\nid = \"t\"\n[[tenants.keys]]\napi = \"sendpost\"\ntoken = \"0123456789abcde\"\n",
            "at least 16",
        ),
    ];
    for (toml, key) in bad_files {
        let file = s.config.with_file_name("bad.toml");
        std::fs::write(&file, toml).unwrap();
        let (code, stderr) = refused_start(Some(&file), &[]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
    let (code, stderr) = refused_start(Some(&s.config.with_file_name("missing.toml")), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--config"), "{stderr}");
}

/// Requests the HTTP stack cannot read (a head too large, a URI too long, a
/// malformed header) are not an ERROR line each: anyone who reaches the
/// port can send them. They are counted into one warning.
#[tokio::test]
async fn unreadable_requests_are_one_counted_warning_not_errors() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let s = setup();
    let gw = Gateway::start(&s.config, &[]).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "u".repeat(96 * 1024)
    );
    let bad_header =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nBad Header\r\n\r\n".to_owned();
    let garbage = "\x01\x02 not http at all\r\n\r\n".to_owned();
    let requests = [huge_header, long_uri, bad_header, garbage];
    let rounds = 10;
    for _ in 0..rounds {
        for request in &requests {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            // The server may close before it has read everything.
            let _ = stream.write_all(request.as_bytes()).await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
        }
    }
    let log = gw.log_with("the HTTP stack refused connections").await;
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(errors.is_empty(), "no ERROR lines: {errors:?}");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the HTTP stack refused connections"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let counted: Value = serde_json::from_str(warnings[0]).unwrap();
    // One or two of actix-http's lines per connection.
    let refusals = counted["refusals"].as_u64().unwrap();
    assert!(
        (1..=2 * rounds * requests.len() as u64).contains(&refusals),
        "{counted}"
    );
}

/// Every path each API serves, with the methods it serves there.
const SERVED: &[(&str, &[&str])] = &[
    ("/v3/asm/suppressions/global/import", &["POST"]),
    ("/v3/asm/suppressions/global", &["GET", "POST"]),
    (
        "/v3/asm/suppressions/global/a@example.com",
        &["GET", "DELETE"],
    ),
    ("/v3/suppression/bounces/import", &["POST"]),
    ("/v3/suppression/bounces", &["GET", "POST", "DELETE"]),
    ("/v3/suppression/bounces/classifications", &["GET"]),
    ("/v3/suppression/bounces/classifications/Content", &["GET"]),
    ("/v3/suppression/bounces/a@example.com", &["GET", "DELETE"]),
    ("/v3/suppression/spam_reports/import", &["POST"]),
    ("/v3/suppression/spam_reports", &["GET", "POST", "DELETE"]),
    (
        "/v3/suppression/spam_reports/a@example.com",
        &["GET", "DELETE"],
    ),
    ("/v3/suppression/blocks", &["GET", "DELETE"]),
    ("/v3/suppression/blocks/a@example.com", &["GET", "DELETE"]),
    ("/v3/suppression/invalid_emails", &["GET", "POST", "DELETE"]),
    (
        "/v3/suppression/invalid_emails/a@example.com",
        &["GET", "DELETE"],
    ),
    ("/v3/suppression/unsubscribes", &["GET"]),
    ("/v3/asm/suppressions", &["GET"]),
    ("/v3/asm/suppressions/a@example.com", &["GET"]),
    ("/v3/asm/groups", &["GET", "POST"]),
    ("/v3/asm/groups/1", &["GET", "PATCH", "DELETE"]),
    ("/v3/asm/groups/1/suppressions/search", &["POST"]),
    ("/v3/asm/groups/1/suppressions", &["GET", "POST"]),
    ("/v3/asm/groups/1/suppressions/a@example.com", &["DELETE"]),
    ("/message-streams", &["GET", "POST"]),
    ("/message-streams/outbound", &["GET", "PATCH"]),
    ("/message-streams/outbound/archive", &["POST"]),
    ("/message-streams/outbound/unarchive", &["POST"]),
    ("/message-streams/outbound/suppressions", &["POST"]),
    ("/message-streams/outbound/suppressions/dump", &["GET"]),
    ("/message-streams/outbound/suppressions/delete", &["POST"]),
    ("/api/v1/subaccount/suppression", &["GET", "POST", "DELETE"]),
    ("/api/v1/subaccount/suppression/count", &["GET"]),
];

/// Every 405 of the three APIs names the methods the path serves in
/// `Allow` (RFC 9110 §15.5.6), and is in the API's own error format.
#[tokio::test]
async fn every_405_says_what_the_path_allows_in_the_apis_format() {
    let s = setup();
    let gw = Gateway::start(&s.config, &[]).await;
    let client = reqwest::Client::new();
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let mut refused = 0;
    for (path, served) in SERVED {
        for method in methods.iter().filter(|m| !served.contains(m)) {
            let res = client
                .request(method.parse().unwrap(), gw.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow = res
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("{method} {path}: no Allow"))
                .to_str()
                .unwrap()
                .to_owned();
            let mut allowed: Vec<&str> = allow.split(", ").collect();
            allowed.sort_unstable();
            let mut expected = served.to_vec();
            expected.sort_unstable();
            assert_eq!(allowed, expected, "{method} {path}");
            let body: Value = res.json().await.unwrap();
            let in_format = if path.starts_with("/v3/") {
                body["errors"][0]["message"].is_string()
            } else if path.starts_with("/message-streams") {
                body["ErrorCode"].is_number() && body["Message"].is_string()
            } else {
                body["error"]["message"].is_string()
            };
            assert!(in_format, "{method} {path}: {body}");
            refused += 1;
        }
    }
    assert!(refused > 80, "{refused} refusals checked");
}

/// Request lines name the route's template, never the path, and stand a
/// keyed hash (`log.address_hash_key`) in for the address: addresses are
/// personal data, and paths carry them.
#[tokio::test]
async fn request_lines_carry_route_templates_and_address_hashes_not_addresses() {
    use hmac::{KeyInit as _, Mac as _};

    let s = setup();
    let gw = Gateway::start(
        &s.config,
        &[("HUSH_LOG__ADDRESS_HASH_KEY", "log-key-for-test")],
    )
    .await;
    let client = reqwest::Client::new();
    add_bounce(&client, &gw, "Secret.Person+x@example.com").await;
    for path in [
        "/v3/suppression/bounces/secret.person+x@example.com",
        "/v3/suppression/bounces/Secret.Person%2Bx%40example.com",
        "/v3/suppression/bounce/secret.person+x@example.com",
    ] {
        client
            .get(gw.url(path))
            .header("Authorization", bearer("demo-v3-key"))
            .header("X-Request-Id", "last-of-three")
            .send()
            .await
            .unwrap();
    }
    let log = gw.log_with("last-of-three").await;
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "request")
        .collect();
    assert!(!log.to_lowercase().contains("secret.person"), "{log}");
    assert!(!log.to_lowercase().contains("secret.person%2bx"), "{log}");
    let mut mac = hmac::Hmac::<sha2_hmac::Sha256>::new_from_slice(b"log-key-for-test").unwrap();
    mac.update(b"secret.person+x@example.com");
    let expected = hex::encode(&mac.finalize().into_bytes()[..8]);
    let reads: Vec<&Value> = lines
        .iter()
        .filter(|l| l["path"] == "/v3/suppression/bounces/{email}")
        .collect();
    assert_eq!(reads.len(), 2, "{lines:?}");
    for read in reads {
        assert_eq!(
            read["address"],
            expected.as_str(),
            "one address, one hash: {read}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "/v3/suppression/bounce/{address}" && l["status"] == 404),
        "an unmatched path has its address segments replaced: {lines:?}"
    );
}
