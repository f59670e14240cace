//! A full disk under the SQLite file: writes answer 503 with `Retry-After`
//! in each API's format, `/readyz` says why, the log says it once per
//! interval, and everything recovers once space is freed.
//!
//! The disk is a 1 MiB tmpfs the test mounts over its own folder, which
//! needs root (CI runs as root); without it the test says so and stops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestGateway, bearer};

/// The three APIs' keys, and a SendPost webhook.
const TENANTS: &str = r#"
[[tenants]]
id = "demo"
  [[tenants.keys]]
  api = "v3"
  token = "v3-key"
  [[tenants.keys]]
  api = "postmark"
  token = "pm-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "sp-key"
  [[tenants.webhooks]]
  provider = "sendpost"
  name = "full-disk-hook-0123456789abcdef"
"#;

/// A SendPost hard bounce event (its documentation's payload), to `to`.
fn webhook_event(to: &str) -> Value {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../webhooks/tests/fixtures/sendpost/hard_bounced.json"
    ))
    .unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    event["event"]["to"] = json!(to);
    event
}

async fn post_webhook(c: &Client, base: &str, event: &Value) -> reqwest::Response {
    c.post(format!(
        "{base}/webhooks/sendpost/full-disk-hook-0123456789abcdef"
    ))
    .json(event)
    .send()
    .await
    .unwrap()
}

/// A small tmpfs mounted on a folder; unmounted when dropped.
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self { at: at.to_owned() })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        let _ = std::fs::remove_dir(&self.at);
    }
}

fn bounce(n: usize) -> Value {
    // Long reasons fill the disk in a few hundred writes.
    json!({"email": format!("b{n}@example.com"), "reason": "x".repeat(2_000)})
}

async fn post_bounce(c: &Client, base: &str, n: usize) -> reqwest::Response {
    c.post(format!("{base}/v3/suppression/bounces"))
        .header("Authorization", bearer("v3-key"))
        .json(&bounce(n))
        .send()
        .await
        .unwrap()
}

fn retry_after(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn a_full_disk_is_a_503_with_retry_after_and_readiness_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_disk) = SmallDisk::mount(dir.path(), "1m") else {
        println!("skipped: mounting a tmpfs needs root");
        return;
    };
    // Taken back later to free space.
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 192 * 1024]).unwrap();
    let gw = TestGateway::spawn_in(dir, TENANTS).await;
    let (c, base) = (Client::new(), gw.base().to_owned());
    let started = Instant::now();

    // Fill it: every acknowledged write is kept, then writes are refused.
    let mut acknowledged = Vec::new();
    let mut acknowledged_small = Vec::new();
    let mut refused = None;
    for n in 0..2_000 {
        let res = post_bounce(&c, &base, n).await;
        match res.status() {
            StatusCode::CREATED => acknowledged.push(n),
            _ => {
                refused = Some(res);
                break;
            }
        }
    }
    assert!(!acknowledged.is_empty(), "some writes fit");
    let res = refused.expect("the disk filled within 2,000 writes");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&res).as_deref(), Some("5"));
    let body: Value = res.json().await.unwrap();
    assert!(
        body["errors"][0]["message"].is_string(),
        "v3 envelope: {body}"
    );

    // Small writes can still fit where a large one did not: fill those
    // pages too, so that every write below is refused.
    let mut small_refused = false;
    for n in 0..5_000 {
        let res = c
            .post(format!("{base}/v3/suppression/bounces"))
            .header("Authorization", bearer("v3-key"))
            .json(&json!({"email": format!("s{n}@example.com")}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::CREATED {
            acknowledged_small.push(n);
        } else {
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            small_refused = true;
            break;
        }
    }
    assert!(small_refused, "small writes filled the disk too");
    // Each API answers in its own format while the disk stays full.
    let more = 200;
    for n in 0..more {
        let res = post_bounce(&c, &base, 10_000 + n).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let res = c
        .post(format!("{base}/message-streams/outbound/suppressions"))
        .header("X-Postmark-Server-Token", "pm-token")
        .json(&json!({"Suppressions": [{"EmailAddress": "pm@example.com"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&res).is_some());
    let body: Value = res.json().await.unwrap();
    assert!(body["ErrorCode"].is_number(), "Postmark format: {body}");
    let res = c
        .post(format!("{base}/api/v1/subaccount/suppression"))
        .header("X-SubAccount-ApiKey", "sp-key")
        .json(&json!({"manual": [{"email": "sp@example.com"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&res).is_some());
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"].is_string(),
        "SendPost format: {body}"
    );

    // A webhook delivery is answered 5xx, so that the provider retries it,
    // and nothing of it is kept.
    let event = webhook_event("hook@example.com");
    let res = post_webhook(&c, &base, &event).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].is_string(), "webhook format: {body}");

    // Readiness says why; reads still work.
    let res = c.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().contains("disk is full"),
        "{body}"
    );
    let first = acknowledged[0];
    let res = c
        .get(format!(
            "{base}/v3/suppression/bounces/b{first}@example.com"
        ))
        .header("Authorization", bearer("v3-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Over 200 refused writes, the failure is logged once per 10 s with a
    // count, not once or twice per request.
    let log = gw.gateway.log_with("backend unavailable").await;
    let intervals = usize::try_from(started.elapsed().as_secs() / 10).unwrap() + 1;
    for needle in ["backend unavailable", "sqlite write batch failed"] {
        let lines = lines_with(&log, needle);
        assert!(
            (1..=intervals).contains(&lines),
            "{lines} lines of {needle:?} in {intervals} intervals"
        );
    }
    assert_eq!(
        lines_with(&log, "request failed"),
        0,
        "503s are not warnings"
    );

    // Space comes back: readiness probes its way to ready, writes work.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = c.get(format!("{base}/readyz")).send().await.unwrap();
        if res.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = post_bounce(&c, &base, 99_999).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // The provider's retry is recorded: the refused delivery kept nothing,
    // not even its event id.
    let res = post_webhook(&c, &base, &event).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"recorded": 1, "ignored": 0, "duplicate": 0}));
    let kept = acknowledged
        .iter()
        .map(|n| format!("b{n}"))
        .chain(acknowledged_small.iter().map(|n| format!("s{n}")));
    for name in kept {
        let res = c
            .get(format!("{base}/v3/suppression/bounces/{name}@example.com"))
            .header("Authorization", bearer("v3-key"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "acknowledged {name} is kept");
    }
}
