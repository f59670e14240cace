//! What a hostile client can do with one valid key, or none: compressed
//! bodies, bodies that never finish arriving, declared lengths over the
//! limit.

use std::io::Write as _;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{Gateway, TestGateway, bearer};

const TENANTS: &str = crate::support::ONE_TENANT_THREE_APIS;

/// A SendPost webhook's name (its secret) for the slow-body check.
const SLOW_HOOK: &str = "slow-body-hook-0123456789abcdef";

/// `VmHWM` of a process: the most memory it has held, in MiB.
fn peak_rss_mib(gateway: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.child.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024
}

/// A gzip body of `mib` MiB of zeros: about a thousandth of that on the
/// wire.
fn gzip_bomb(mib: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap()
}

/// A compressed body is refused before it is read, in the caller's
/// format, whatever it would inflate to: memory stays flat under many at
/// once (it rose by ~260 MB per 1 MB request when bodies were decoded).
#[tokio::test]
async fn compressed_bodies_are_refused_unread_in_each_apis_format() {
    let gw = TestGateway::spawn(TENANTS).await;
    let bomb = gzip_bomb(512);
    assert!(bomb.len() < 1 << 20, "{} bytes on the wire", bomb.len());
    let before = peak_rss_mib(&gw.gateway);
    let c = Client::new();
    let targets = [
        ("/v3/suppression/bounces", "Authorization", bearer("v3-key")),
        (
            "/v3/suppression/bounces/import",
            "Authorization",
            bearer("v3-key"),
        ),
        (
            "/message-streams/outbound/suppressions",
            "X-Postmark-Server-Token",
            "pm-token".to_owned(),
        ),
        (
            "/api/v1/subaccount/suppression",
            "X-SubAccount-ApiKey",
            "sp-key".to_owned(),
        ),
    ];
    let mut requests = Vec::new();
    for round in 0..4 {
        for (path, header, key) in &targets {
            let content_type = if path.ends_with("import") {
                "text/csv"
            } else {
                "application/json"
            };
            let encoding = if round % 2 == 0 {
                "gzip"
            } else {
                "deflate, gzip"
            };
            requests.push(
                c.post(format!("{}{path}", gw.base()))
                    .header(*header, key)
                    .header("Content-Type", content_type)
                    .header("Content-Encoding", encoding)
                    .body(bomb.clone())
                    .send(),
            );
        }
    }
    for (n, res) in futures_util::future::join_all(requests)
        .await
        .into_iter()
        .enumerate()
    {
        let res = res.unwrap();
        let path = targets[n % targets.len()].0;
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
        let body: Value = res.json().await.unwrap();
        let message = if path.starts_with("/v3") {
            body["errors"][0]["message"].as_str()
        } else if path.starts_with("/message-streams") {
            body["Message"].as_str()
        } else {
            body["error"]["message"].as_str()
        };
        assert!(
            message.is_some_and(|m| m.contains("Content-Encoding")),
            "{path}: {body}"
        );
    }
    let after = peak_rss_mib(&gw.gateway);
    assert!(
        after <= before + 64,
        "peak RSS went from {before} MiB to {after} MiB over 16 compressed requests"
    );
    // `identity` is no encoding.
    let res = c
        .post(format!("{}/v3/suppression/bounces", gw.base()))
        .header("Authorization", bearer("v3-key"))
        .header("Content-Encoding", "identity")
        .json(&serde_json::json!({"email": "plain@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// Sends a request head and then `body` one piece at a time, `gap` apart,
/// and returns the status line and body of whatever the server answers
/// (or "" when it closes without one).
async fn trickle(addr: &str, head: &str, body: &[u8], gap: Duration) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for byte in body {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(gap).await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

/// A body that stops arriving, or trickles in, is answered 408 in the
/// caller's format once it falls behind `server.body_min_bytes_per_sec`
/// after `server.body_timeout_secs`, instead of holding the connection for
/// ever; a declared length over the limit is refused before any byte.
#[tokio::test]
async fn slow_and_lying_bodies_are_timed_out_and_oversized_ones_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbody_timeout_secs = 1\nbody_min_bytes_per_sec = 64\n[storage]\npath = \"{}\"\n[log]\nformat = \"json\"\n{TENANTS}  [[tenants.webhooks]]\n  provider = \"sendpost\"\n  name = \"{SLOW_HOOK}\"\n",
            dir.path().join("hush.db").display()
        ),
    )
    .unwrap();
    let gw = Gateway::start(&config, &[]).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let v3_head = |length: usize| {
        format!(
            "POST /v3/suppression/bounces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer v3-key\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    // A declared length the client never sends.
    let (status, body) = trickle(&addr, &v3_head(100), b"{\"email\":", Duration::ZERO).await;
    assert!(status.contains("408"), "{status}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did not arrive in time"),
        "{body}"
    );
    // A byte every 200 ms: 5 bytes a second against a minimum of 64.
    let json = br#"{"email":"slow@example.com"}"#;
    let (status, _) = trickle(
        &addr,
        &v3_head(json.len()),
        json,
        Duration::from_millis(200),
    )
    .await;
    assert!(status.contains("408"), "{status}");
    // The other APIs answer in their own formats.
    let pm_head = "POST /message-streams/outbound/suppressions HTTP/1.1\r\nHost: x\r\nX-Postmark-Server-Token: pm-token\r\nContent-Length: 50\r\n\r\n";
    let (status, body) = trickle(&addr, pm_head, b"{", Duration::ZERO).await;
    assert!(status.contains("408"), "{status}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["ErrorCode"].is_number());
    let sp_head = "POST /api/v1/subaccount/suppression HTTP/1.1\r\nHost: x\r\nX-SubAccount-ApiKey: sp-key\r\nContent-Length: 50\r\n\r\n";
    let (status, body) = trickle(&addr, sp_head, b"{", Duration::ZERO).await;
    assert!(status.contains("408"), "{status}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"]["message"].is_string());
    // A webhook's body too: 408, which providers retry, in its format.
    let hook_head = format!(
        "POST /webhooks/sendpost/{SLOW_HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n"
    );
    let (status, body) = trickle(&addr, &hook_head, b"{", Duration::ZERO).await;
    assert!(status.contains("408"), "{status}");
    let message = serde_json::from_str::<Value>(&body).unwrap()["message"].clone();
    assert!(
        message.as_str().unwrap().contains("did not arrive in time"),
        "{body}"
    );
    // Over the limit by its own declaration: refused before reading.
    let (status, body) = trickle(&addr, &v3_head(50 << 20), b"", Duration::ZERO).await;
    assert!(status.contains("413"), "{status}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["errors"].is_array());
    // Nothing slow or refused was stored; an honest request still works.
    let c = Client::new();
    let res = c
        .post(gw.url("/v3/suppression/bounces"))
        .header("Authorization", bearer("v3-key"))
        .json(&serde_json::json!({"email": "fast@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let listed: Value = c
        .get(gw.url("/v3/suppression/bounces"))
        .header("Authorization", bearer("v3-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
}

async fn link_with(base: &str, headers: &[(&str, &str)]) -> String {
    let mut req = Client::new()
        .get(format!("{base}/v3/suppression/bounces?limit=1"))
        .header("Authorization", bearer("sg-key-0123456789"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.headers()["link"].to_str().unwrap().to_owned()
}

/// `Link` headers are built from forwarded headers only when a trusted
/// proxy sent them, and then only with an http(s) scheme and a real host.
#[tokio::test]
async fn link_headers_believe_forwarded_headers_only_from_trusted_proxies() {
    let tenants = |trusted: &str| {
        format!(
            "{trusted}[[tenants]]\nid = \"demo\"\n  [[tenants.keys]]\n  api = \"v3\"\n  token = \"sg-key-0123456789\"\n  shape = \"sendgrid\"\n"
        )
    };
    let evil = [
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "javascript"),
        ("Forwarded", "proto=javascript;host=evil.example"),
    ];
    // Nobody trusted: the request's own scheme and host.
    let gw = TestGateway::spawn(&tenants("")).await;
    let own = gw.base().to_owned();
    let link = link_with(&own, &evil).await;
    assert!(
        link.starts_with(&format!("<{own}/v3/suppression/bounces?")),
        "{link}"
    );
    assert!(
        !link.contains("evil") && !link.contains("javascript"),
        "{link}"
    );
    let link = link_with(
        &own,
        &[
            ("X-Forwarded-Host", "api.example.com"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    .await;
    assert!(!link.contains("api.example.com"), "untrusted: {link}");
    drop(gw);
    // Loopback trusted, as a proxy on the same machine would be: its
    // headers count, but only a web scheme and a real host.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.0/8\", \"::1\"]\n[storage]\npath = \"{}\"\n[log]\nformat = \"json\"\n{}",
            dir.path().join("hush.db").display(),
            tenants("")
        ),
    )
    .unwrap();
    let gw = Gateway::start(&config, &[]).await;
    let link = link_with(
        &gw.base,
        &[
            ("X-Forwarded-Host", "api.example.com"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    .await;
    assert!(
        link.starts_with("<https://api.example.com/v3/suppression/bounces?"),
        "{link}"
    );
    let link = link_with(&gw.base, &evil).await;
    assert!(!link.contains("javascript"), "{link}");
    assert!(link.starts_with("<http://"), "{link}");
}

/// Failed authentications are limited per client address: past the limit
/// every request from it is a 429 with `Retry-After`, in the caller's
/// format, good keys included; loopback is not counted unless asked.
#[tokio::test]
async fn failed_authentications_are_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n{extra}[storage]\npath = \"{}\"\n[log]\nformat = \"json\"\n{TENANTS}",
                dir.path().join("hush.db").display()
            ),
        )
        .unwrap();
    };
    let c = Client::new();
    let bad_v3 = |base: &str| {
        c.get(format!("{base}/v3/suppression/bounces"))
            .header("Authorization", bearer("guessed-wrong"))
            .send()
    };
    // Loopback, not counted by default: twenty wrong guesses are twenty 401s.
    write("auth_failures_per_minute = 3\n");
    let gw = Gateway::start(&config, &[]).await;
    for _ in 0..20 {
        assert_eq!(
            bad_v3(&gw.base).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    drop(gw);
    write("auth_failures_per_minute = 3\nauth_failures_on_loopback = true\n");
    let gw = Gateway::start(&config, &[]).await;
    for n in 0..4 {
        let res = bad_v3(&gw.base).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {n}");
    }
    // Blocked now, whatever the key and the API.
    let res = c
        .get(gw.url("/v3/suppression/bounces"))
        .header("Authorization", bearer("v3-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("failed authentications")
    );
    let res = c
        .post(gw.url("/message-streams/outbound/suppressions/dump"))
        .header("X-Postmark-Server-Token", "pm-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.json::<Value>().await.unwrap()["ErrorCode"].is_number());
    let res = c
        .get(gw.url("/api/v1/subaccount/suppression/count"))
        .header("X-SubAccount-ApiKey", "sp-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(
        gw.log_with("too many failed authentications")
            .await
            .contains("too many failed")
    );
}

/// Ids tell one tenant nothing of another's activity: group ids and
/// SendPost ids are per-tenant permutations of the shared sequence, still
/// 32-bit and 53-bit safe integers, and the same after a restart.
#[tokio::test]
async fn ids_do_not_show_other_tenants_activity() {
    let tenants = r#"
[[tenants]]
id = "watcher"
  [[tenants.keys]]
  api = "v3"
  token = "watcher-v3-key"
  [[tenants.keys]]
  api = "sendpost"
  token = "watcher-sp-key"
[[tenants]]
id = "busy"
  [[tenants.keys]]
  api = "v3"
  token = "busy-v3-key"
  [[tenants.keys]]
  api = "sendpost"
  token = "busy-sp-key"
"#;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n[log]\nformat = \"json\"\n{tenants}",
            dir.path().join("hush.db").display()
        ),
    )
    .unwrap();
    let mut gw = Gateway::start(&config, &[]).await;
    let c = Client::new();
    let group = |base: String, key: &'static str, name: String| {
        let c = c.clone();
        async move {
            let res = c
                .post(format!("{base}/v3/asm/groups"))
                .header("Authorization", bearer(key))
                .json(&serde_json::json!({"name": name, "description": "d"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
        }
    };
    let sendpost = |base: String, key: &'static str, address: String| {
        let c = c.clone();
        async move {
            let res = c
                .post(format!("{base}/api/v1/subaccount/suppression"))
                .header("X-SubAccount-ApiKey", key)
                .json(&serde_json::json!({"manual": [{"email": address}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()[0]["id"]
                .as_i64()
                .unwrap()
        }
    };
    let first = group(gw.base.clone(), "watcher-v3-key", "First".into()).await;
    let first_sp = sendpost(gw.base.clone(), "watcher-sp-key", "a@example.com".into()).await;
    for n in 0..5 {
        group(gw.base.clone(), "busy-v3-key", format!("Busy {n}")).await;
        sendpost(gw.base.clone(), "busy-sp-key", format!("b{n}@example.com")).await;
    }
    let second = group(gw.base.clone(), "watcher-v3-key", "Second".into()).await;
    let second_sp = sendpost(gw.base.clone(), "watcher-sp-key", "c@example.com".into()).await;
    // Stored, these would be 6 apart (1 + 5 of the other tenant's).
    assert!((second - first).abs() > 1_000, "{first} {second}");
    assert!(
        (second_sp - first_sp).abs() > 1_000,
        "{first_sp} {second_sp}"
    );
    for id in [first, second] {
        assert!((1..=i64::from(i32::MAX)).contains(&id), "{id}");
    }
    for id in [first_sp, second_sp] {
        assert!((1..=1 << 53).contains(&id), "{id}");
    }
    // The same ids after a restart: a client's configured group id keeps
    // naming its group.
    gw.terminate();
    let gw = Gateway::start(&config, &[]).await;
    let res = c
        .get(gw.url(&format!("/v3/asm/groups/{second}")))
        .header("Authorization", bearer("watcher-v3-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "Second");
    // Another tenant's id names nothing here.
    let res = c
        .get(gw.url(&format!("/v3/asm/groups/{second}")))
        .header("Authorization", bearer("busy-v3-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
