//! Mirrors end to end (docs/mirrors.md): hush A pushes its tenant's
//! changes to hush B, which serves the provider's API as the provider
//! would; B stands in for the provider, which cannot be reached from here.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ONE_TENANT_THREE_APIS, TestGateway};

const ADMIN: &str = "mirror-admin-token-0123456789";

fn admin_toml() -> String {
    format!(
        "[metrics]\nenabled = true\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nscopes = [\"admin.read\", \"admin.write\"]\n"
    )
}

/// B: tenant `shop`, with a key for each API.
async fn provider() -> TestGateway {
    let tenants = r#"
[[tenants]]
id = "shop"
  [[tenants.keys]]
  api = "v3"
  token = "b-v3-key"
  [[tenants.keys]]
  api = "postmark"
  token = "b-pm-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "b-sp-key"
"#;
    TestGateway::spawn(&format!("{tenants}{}", admin_toml())).await
}

/// A: tenant `demo` with the three APIs, mirrored to B through `api`.
async fn origin(b: &TestGateway, api: &str, extra: &str) -> TestGateway {
    let token = match api {
        "v3" => "b-v3-key",
        "postmark" => "b-pm-token",
        _ => "b-sp-key",
    };
    let tenants = format!(
        "{ONE_TENANT_THREE_APIS}  [[tenants.mirrors]]\n  name = \"b\"\n  provider = \"{api}\"\n  base_url = \"{}\"\n  token = \"{token}\"\n  retry_max_attempts = 1\n{extra}{}",
        b.base(),
        admin_toml()
    );
    TestGateway::spawn(&tenants).await
}

async fn call(
    client: &Client,
    base: &str,
    (header, value): (&str, &str),
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client
        .request(method, format!("{base}{path}"))
        .header(header, value);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// The kinds B holds for an address (empty when it holds none).
async fn held_at(client: &Client, b: &str, email: &str) -> Vec<String> {
    let (status, body) = call(
        client,
        b,
        ("Authorization", &format!("Bearer {ADMIN}")),
        Method::GET,
        &format!("/admin/v1/addresses/{email}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["entries"].as_array().unwrap().clone())
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A's report of its mirror.
async fn report(client: &Client, a: &str) -> Value {
    let (status, body) = call(
        client,
        a,
        ("Authorization", &format!("Bearer {ADMIN}")),
        Method::GET,
        "/admin/v1/tenants/demo/mirrors",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["mirrors"][0].clone()
}

/// Waits until A reports its mirror caught up, and returns the report.
async fn caught_up(client: &Client, a: &str) -> Value {
    for _ in 0..200 {
        let mirror = report(client, a).await;
        if mirror["lag"]["changes"] == 0 && !mirror["position"].is_null() {
            return mirror;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the mirror never caught up: {}", report(client, a).await);
}

/// Writes through each of A's APIs, then a removal, and checks B.
async fn every_api_reaches(api: &str) {
    let b = provider().await;
    let a = origin(&b, api, "").await;
    every_api_of(a.base(), &b, api).await;
}

/// The same with A on PostgreSQL.
#[cfg(hush_postgres_tests)]
async fn every_api_reaches_from_postgres(api: &str) {
    let b = provider().await;
    let database = crate::pg::TempDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    let token = match api {
        "v3" => "b-v3-key",
        "postmark" => "b-pm-token",
        _ => "b-sp-key",
    };
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nbackend = \"postgres\"\nurl = \"{}\"\n[log]\nformat = \"json\"\n{ONE_TENANT_THREE_APIS}  [[tenants.mirrors]]\n  name = \"b\"\n  provider = \"{api}\"\n  base_url = \"{}\"\n  token = \"{token}\"\n{}",
        database.url,
        b.base(),
        admin_toml()
    );
    std::fs::write(&config, toml).unwrap();
    let a = crate::support::Gateway::start(&config, &[]).await;
    every_api_of(&a.base, &b, api).await;
}

#[cfg(hush_postgres_tests)]
#[tokio::test]
async fn every_api_reaches_each_mirror_from_postgres() {
    for api in ["v3", "postmark", "sendpost"] {
        every_api_reaches_from_postgres(api).await;
    }
}

async fn every_api_of(a: &str, b: &TestGateway, api: &str) {
    let client = Client::new();
    let v3 = ("Authorization", "Bearer v3-key");
    let pm = ("X-Postmark-Server-Token", "pm-token");
    let sp = ("X-SubAccount-ApiKey", "sp-key");
    let (status, body) = call(
        &client,
        a,
        v3,
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({"recipient_emails": ["v3-unsub@example.com", "gone@example.com"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        &client,
        a,
        pm,
        Method::POST,
        "/message-streams/outbound/suppressions",
        Some(json!({"Suppressions": [{"EmailAddress": "pm-manual@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &client,
        a,
        sp,
        Method::POST,
        "/api/v1/subaccount/suppression",
        Some(json!({"unsubscribe": [{"email": "sp-unsub@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &client,
        a,
        v3,
        Method::DELETE,
        "/v3/asm/suppressions/global/gone@example.com",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let mirror = caught_up(&client, a).await;
    assert_eq!(mirror["provider"], api);
    let metrics = client
        .get(format!("{a}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"hush_mirror_changes_total{tenant="demo",mirror="b",outcome="pushed"}"#),
        "{metrics}"
    );
    assert_eq!(mirror["failed"], 0, "{mirror}");
    assert!(mirror["last_error"].is_null(), "{mirror}");
    assert!(mirror["last_success_at"].is_string(), "{mirror}");
    for email in ["v3-unsub@example.com", "sp-unsub@example.com"] {
        assert!(
            !held_at(&client, b.base(), email).await.is_empty(),
            "{email} did not reach the {api} mirror"
        );
    }
    // A Postmark suppression is its stream's (docs/mapping.md): a group,
    // which SendPost has none of; the other two have the stream (B's
    // `outbound`, matched by key).
    let streamed = held_at(&client, b.base(), "pm-manual@example.com").await;
    if api == "sendpost" {
        assert!(streamed.is_empty(), "{streamed:?}");
        assert!(mirror["skipped"].as_u64().unwrap() >= 1, "{mirror}");
    } else {
        assert!(
            !streamed.is_empty(),
            "pm-manual@example.com did not reach the {api} mirror"
        );
    }
    assert!(
        held_at(&client, b.base(), "gone@example.com")
            .await
            .is_empty(),
        "the removal did not reach the {api} mirror"
    );
}

#[tokio::test]
async fn every_api_reaches_a_v3_mirror() {
    every_api_reaches("v3").await;
}

#[tokio::test]
async fn every_api_reaches_a_postmark_mirror() {
    every_api_reaches("postmark").await;
}

#[tokio::test]
async fn every_api_reaches_a_sendpost_mirror() {
    every_api_reaches("sendpost").await;
}

/// B stopped with SIGSTOP while A takes writes: the mirror holds its
/// position and reports the error; once B resumes, everything arrives.
/// A restarted meanwhile resumes from its stored position.
#[tokio::test]
async fn a_stopped_provider_loses_nothing_and_a_restart_resumes() {
    let b = provider().await;
    let a = origin(&b, "v3", "  request_timeout_ms = 300\n").await;
    let client = Client::new();
    let v3 = ("Authorization", "Bearer v3-key");
    let add = |email: String| {
        let client = client.clone();
        let base = a.base().to_owned();
        async move {
            let (status, body) = call(
                &client,
                &base,
                v3,
                Method::POST,
                "/v3/asm/suppressions/global",
                Some(json!({"recipient_emails": [email]})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    add("first@example.com".into()).await;
    caught_up(&client, a.base()).await;
    let pid = b.gateway.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    for n in 0..20 {
        add(format!("while-stopped-{n}@example.com")).await;
    }
    // One address added, removed and added again, another added and
    // removed: B must end as A is, which needs each address's changes in
    // order.
    let remove = |email: &'static str| {
        let client = client.clone();
        let base = a.base().to_owned();
        async move {
            let (status, body) = call(
                &client,
                &base,
                v3,
                Method::DELETE,
                &format!("/v3/asm/suppressions/global/{email}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        }
    };
    add("flip@example.com".into()).await;
    remove("flip@example.com").await;
    add("flip@example.com".into()).await;
    add("flop@example.com".into()).await;
    remove("flop@example.com").await;
    // The provider does not answer: the mirror says so and waits.
    let mut stuck = Value::Null;
    for _ in 0..100 {
        stuck = report(&client, a.base()).await;
        if stuck["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stuck["last_error"].is_string(), "{stuck}");
    assert_eq!(stuck["lag"]["changes"], 25, "{stuck}");
    // A restarts while B is stopped; the position it saved is where it
    // resumes.
    let position = stuck["position"].clone();
    let restarted = a.restart().await;
    assert_eq!(
        report(&client, restarted.base()).await["position"],
        position
    );
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mirror = caught_up(&client, restarted.base()).await;
    assert!(mirror["last_error"].is_null(), "{mirror}");
    for n in 0..20 {
        let email = format!("while-stopped-{n}@example.com");
        assert!(
            !held_at(&client, b.base(), &email).await.is_empty(),
            "{email}"
        );
    }
    assert!(
        !held_at(&client, b.base(), "flip@example.com")
            .await
            .is_empty()
    );
    assert!(
        held_at(&client, b.base(), "flop@example.com")
            .await
            .is_empty()
    );
}

/// B killed with SIGKILL and started again on its data: what A pushed
/// before is still there, and what A took meanwhile arrives.
#[tokio::test]
async fn a_provider_killed_and_restarted_gets_everything() {
    let mut b = provider().await;
    let a = origin(&b, "sendpost", "  request_timeout_ms = 300\n").await;
    let client = Client::new();
    let sp = ("X-SubAccount-ApiKey", "sp-key");
    let add = |email: String| {
        let client = client.clone();
        let base = a.base().to_owned();
        async move {
            let (status, body) = call(
                &client,
                &base,
                sp,
                Method::POST,
                "/api/v1/subaccount/suppression",
                Some(json!({"hardBounce": [{"email": email}]})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    add("before@example.com".into()).await;
    caught_up(&client, a.base()).await;
    let base = b.base().to_owned();
    let listen = base.trim_start_matches("http://").to_owned();
    b.gateway.kill_hard();
    for n in 0..10 {
        add(format!("while-dead-{n}@example.com")).await;
    }
    let restarted = crate::support::Gateway::start(
        &b.config_path(),
        &[("HUSH_SERVER__LISTEN", listen.as_str())],
    )
    .await;
    assert_eq!(restarted.base, base);
    let mirror = caught_up(&client, a.base()).await;
    assert!(mirror["last_error"].is_null(), "{mirror}");
    assert!(
        !held_at(&client, &base, "before@example.com")
            .await
            .is_empty()
    );
    for n in 0..10 {
        let email = format!("while-dead-{n}@example.com");
        assert!(!held_at(&client, &base, &email).await.is_empty(), "{email}");
    }
}

/// Changes the provider refuses (Postmark will not touch an address with
/// a spam complaint) are recorded once each, and the mirror moves on.
#[tokio::test]
async fn a_refused_removal_is_recorded_and_passed() {
    let b = provider().await;
    let a = origin(&b, "postmark", "").await;
    let client = Client::new();
    let v3 = ("Authorization", "Bearer v3-key");
    // B's own complaint for the address, which its Postmark API may not
    // delete (docs/mapping.md).
    let (status, body) = call(
        &client,
        b.base(),
        ("X-SubAccount-ApiKey", "b-sp-key"),
        Method::POST,
        "/api/v1/subaccount/suppression",
        Some(json!({"spamComplaint": [{"email": "complaint@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (method, path, body) in [
        (
            Method::POST,
            "/v3/asm/suppressions/global",
            Some(json!({"recipient_emails": ["complaint@example.com"]})),
        ),
        (
            Method::DELETE,
            "/v3/asm/suppressions/global/complaint@example.com",
            None,
        ),
        (
            Method::POST,
            "/v3/asm/suppressions/global",
            Some(json!({"recipient_emails": ["after@example.com"]})),
        ),
    ] {
        let (status, answer) = call(&client, a.base(), v3, method, path, body).await;
        assert!(status.is_success(), "{answer}");
    }
    // B refuses both: the add with its per-item `Failed` and its message
    // (the address has a complaint there), and the removal.
    let mirror = caught_up(&client, a.base()).await;
    assert_eq!(mirror["failed"], 2, "{mirror}");
    assert_eq!(
        mirror["failures"][0]["change"],
        "removed complaint@example.com"
    );
    assert_eq!(
        mirror["failures"][1]["change"],
        "added complaint@example.com"
    );
    assert_eq!(
        mirror["failures"][1]["message"],
        "You do not have the required authority to change this suppression."
    );
    assert!(
        mirror["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complaint@example.com"),
        "{mirror}"
    );
    assert!(
        !held_at(&client, b.base(), "after@example.com")
            .await
            .is_empty()
    );
    assert!(
        !held_at(&client, b.base(), "complaint@example.com")
            .await
            .is_empty()
    );

    // A retry needs admin.write, names a mirror of the tenant, and while
    // B still refuses keeps both refusals.
    let admin = format!("Bearer {ADMIN}");
    let admin = ("Authorization", admin.as_str());
    let retry = "/admin/v1/tenants/demo/mirrors/b/retry";
    let (status, body) = call(&client, a.base(), admin, Method::POST, retry, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"retried": 2, "pushed": 0, "refused": 2, "gone": 0})
    );
    let nope = "/admin/v1/tenants/demo/mirrors/nope/retry";
    let (status, body) = call(&client, a.base(), admin, Method::POST, nope, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    // The complaint lifted at B by hand: a retry pushes both changes, in
    // order, and forgets them; B ends where A is.
    let (status, body) = call(
        &client,
        b.base(),
        ("X-SubAccount-ApiKey", "b-sp-key"),
        Method::DELETE,
        "/api/v1/subaccount/suppression",
        Some(json!({"suppressions": [{"email": "complaint@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&client, a.base(), admin, Method::POST, retry, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"retried": 2, "pushed": 2, "refused": 0, "gone": 0})
    );
    assert!(
        held_at(&client, b.base(), "complaint@example.com")
            .await
            .is_empty()
    );
    let mirror = report(&client, a.base()).await;
    assert_eq!(mirror["failures"], json!([]), "{mirror}");
    assert_eq!(mirror["failed"], 2, "the count is of every refusal met");

    // The same from the command line, on the stopped gateway's store.
    let config = a.config_path();
    let mut a = a;
    a.gateway.terminate();
    let hush = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::HUSH)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let line = hush(&["mirror", "status", "--tenant", "demo"]);
    assert_eq!(line["name"], "b");
    assert_eq!(line["lag"]["changes"], 0, "{line}");
    let done = hush(&["mirror", "retry", "--tenant", "demo", "--mirror", "b"]);
    assert_eq!(done["retried"], 0);

    // An address put at B by hand, which A does not hold: a resync's dry
    // run counts it, the resync removes it, and then there is nothing.
    let (status, body) = call(
        &client,
        b.base(),
        ("X-Postmark-Server-Token", "b-pm-token"),
        Method::POST,
        "/message-streams/outbound/suppressions",
        Some(json!({"Suppressions": [{"EmailAddress": "stray@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resync = ["mirror", "resync", "--tenant", "demo", "--mirror", "b"];
    let counted = hush(&[&resync[..], &["--dry-run"]].concat());
    assert_eq!(
        counted,
        json!({"missing": 0, "extra": 1, "added": 0, "removed": 0, "refused": 0, "dry_run": true})
    );
    assert!(
        !held_at(&client, b.base(), "stray@example.com")
            .await
            .is_empty()
    );
    let done = hush(&resync);
    assert_eq!(done["removed"], 1, "{done}");
    assert!(
        held_at(&client, b.base(), "stray@example.com")
            .await
            .is_empty()
    );
    let again = hush(&[&resync[..], &["--dry-run"]].concat());
    assert_eq!(
        (&again["missing"], &again["extra"]),
        (&json!(0), &json!(0)),
        "{again}"
    );
}

/// A bounce Postmark posted to A's webhook is not pushed back to the
/// Postmark mirror (no echo); a change made through an API is.
#[tokio::test]
async fn no_echo_of_the_providers_own_webhook() {
    let b = provider().await;
    let hook = "  [[tenants.webhooks]]\n  provider = \"postmark\"\n  name = \"main\"\n  header_name = \"X-Hook-Secret\"\n  header_value = \"hook-secret-0123456789\"\n";
    let a = origin(&b, "postmark", hook).await;
    let client = Client::new();
    let fixture = std::fs::read_to_string(
        crate::support::repo_root()
            .join("crates/webhooks/tests/fixtures/postmark/bounce_hard.json"),
    )
    .unwrap();
    let mut bounce: Value = serde_json::from_str(&fixture).unwrap();
    bounce["Email"] = json!("echo@example.com");
    let res = client
        .post(format!("{}/webhooks/postmark/main", a.base()))
        .header("X-Hook-Secret", "hook-secret-0123456789")
        .json(&bounce)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let (status, body) = call(
        &client,
        a.base(),
        ("Authorization", "Bearer v3-key"),
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({"recipient_emails": ["api@example.com"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mirror = caught_up(&client, a.base()).await;
    // The echo, and the creation of the default stream at A's first
    // start (groups are not mirrored).
    assert_eq!(mirror["skipped"], 2, "{mirror}");
    assert!(
        held_at(&client, b.base(), "echo@example.com")
            .await
            .is_empty()
    );
    let metrics = client
        .get(format!("{}/metrics", a.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"hush_webhook_events_total{provider="postmark",outcome="recorded"} 1"#),
        "{metrics}"
    );
    assert!(
        !held_at(&client, b.base(), "api@example.com")
            .await
            .is_empty()
    );
}

/// Every mistake in a mirror's table stops the start, naming the key.
#[test]
fn bad_mirror_config_is_refused_at_start() {
    let mirror =
        |fields: &str| format!("[[tenants]]\nid = \"demo\"\n  [[tenants.mirrors]]\n{fields}");
    let cases = [
        (
            mirror("  provider = \"v3\"\n  token = \"hunter2\"\n"),
            "tenants[0].mirrors[0]",
            "missing field `name`",
        ),
        (
            mirror("  name = \"Bad Name\"\n  provider = \"v3\"\n  token = \"hunter2\"\n"),
            "tenants[0].mirrors[0].name",
            "lowercase",
        ),
        (
            mirror("  name = \"m\"\n  token = \"hunter2\"\n"),
            "tenants[0].mirrors[0].provider",
            "required",
        ),
        (
            mirror("  name = \"m\"\n  provider = \"postmark\"\n"),
            "tenants[0].mirrors[0].token",
            "token_env",
        ),
        (
            mirror(
                "  name = \"m\"\n  provider = \"postmark\"\n  token = \"hunter2\"\n  shape = \"sendgrid\"\n",
            ),
            "tenants[0].mirrors[0].shape",
            "only a v3 mirror",
        ),
        (
            mirror(
                "  name = \"m\"\n  provider = \"v3\"\n  token = \"hunter2\"\n  base_url = \"ftp://x\"\n",
            ),
            "tenants[0].mirrors[0].base_url",
            "not an http",
        ),
        (
            mirror(
                "  name = \"m\"\n  provider = \"v3\"\n  token = \"hunter2\"\n  [[tenants.mirrors]]\n  name = \"m\"\n  provider = \"postmark\"\n  token = \"hunter2\"\n",
            ),
            "tenants[0].mirrors[1].name",
            "two mirrors named",
        ),
        (
            format!(
                "[storage.upstream]\nprovider = \"v3\"\n{}",
                mirror("  name = \"m\"\n  provider = \"v3\"\n  token = \"hunter2\"\n").replace(
                    "id = \"demo\"\n",
                    "id = \"demo\"\nbackend = \"upstream\"\nupstream_token = \"up\"\n"
                )
            ),
            "tenants[0].mirrors[0].name",
            "upstream backend",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hush.toml");
    for (tables, key, says) in &cases {
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n{tables}",
            dir.path().join("hush.db").display()
        );
        std::fs::write(&file, toml).unwrap();
        let (code, stderr) = crate::support::refused_start(Some(&file), &[]);
        assert_eq!(code, 2, "{key}: {stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
        assert!(stderr.contains(says), "{says:?} not in: {stderr}");
        assert!(!stderr.contains("hunter2"), "a secret is shown: {stderr}");
    }
}

/// Two instances of A on one PostgreSQL database share a mirror: one
/// pushes it; killed with SIGKILL, the other takes the mirror over within
/// the lease's 20 s and every change arrives.
#[cfg(hush_postgres_tests)]
#[tokio::test]
async fn on_postgres_another_instance_takes_a_dead_holders_mirror_over() {
    use crate::support::Gateway;

    let b = provider().await;
    let database = crate::pg::TempDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    let toml = format!(
        "{}  [[tenants.mirrors]]\n  name = \"b\"\n  provider = \"v3\"\n  base_url = \"{}\"\n  token = \"b-v3-key\"\n  retry_max_attempts = 1\n{}",
        crate::pg::config_toml(&database.url),
        b.base(),
        admin_toml()
    );
    std::fs::write(&config, toml).unwrap();
    let first = Gateway::start(&config, &[]).await;
    let second = Gateway::start(&config, &[]).await;
    let client = Client::new();
    let add = |base: String, email: String| {
        let client = client.clone();
        async move {
            let (status, body) = call(
                &client,
                &base,
                ("Authorization", "Bearer demo-v3-key"),
                Method::POST,
                "/v3/asm/suppressions/global",
                Some(json!({"recipient_emails": [email]})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    let report_of = |base: String| {
        let client = client.clone();
        async move {
            let (status, body) = call(
                &client,
                &base,
                ("Authorization", &format!("Bearer {ADMIN}")),
                Method::GET,
                "/admin/v1/tenants/demo/mirrors",
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["mirrors"][0].clone()
        }
    };
    let wait_caught_up = |base: String, bound: Duration| async move {
        let deadline = std::time::Instant::now() + bound;
        loop {
            let mirror = report_of(base.clone()).await;
            if mirror["lag"]["changes"] == 0 && !mirror["position"].is_null() {
                return mirror;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not caught up: {mirror}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    for n in 0..10 {
        add(first.base.clone(), format!("before-{n}@example.com")).await;
    }
    wait_caught_up(second.base.clone(), Duration::from_secs(30)).await;
    // Exactly one of them pushes. Logs are written by a thread of their
    // own, so a line may land a little after what it tells of.
    let pushing = |g: &Gateway| g.stderr().contains("pushing the mirror");
    for _ in 0..100 {
        if pushing(&first) || pushing(&second) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pushing(&first) != pushing(&second),
        "one holder, not two or none"
    );
    let (mut holder, survivor) = if pushing(&first) {
        (first, second)
    } else {
        (second, first)
    };
    holder.kill_hard();
    for n in 0..10 {
        add(survivor.base.clone(), format!("after-{n}@example.com")).await;
    }
    // The lease lapses 20 s after its last renewal; the survivor asks every
    // 5 s. Well inside 40 s, everything is at B.
    wait_caught_up(survivor.base.clone(), Duration::from_secs(40)).await;
    let log = survivor.log_with("pushing the mirror").await;
    assert!(log.contains("pushing the mirror"), "{log}");
    for prefix in ["before", "after"] {
        for n in 0..10 {
            let email = format!("{prefix}-{n}@example.com");
            assert!(
                !held_at(&client, b.base(), &email).await.is_empty(),
                "{email}"
            );
        }
    }
}

/// What Postmark answers a create: each address `Suppressed`, in order
/// (Postmark API docs, "Suppressions API").
struct PostmarkCreate;

impl wiremock::Respond for PostmarkCreate {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let items: Vec<Value> = body["Suppressions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| json!({"EmailAddress": s["EmailAddress"], "Status": "Suppressed", "Message": null}))
            .collect();
        wiremock::ResponseTemplate::new(200).set_body_json(json!({ "Suppressions": items }))
    }
}

/// Against a stand-in of Postmark's API: 120 adds of one request go in
/// Postmark's batches of 50; a 429 with `Retry-After` and a 503 hold the
/// position, and the next tries send each batch once more, never a
/// change twice past its success.
#[tokio::test]
async fn postmark_batches_of_50_and_a_429_holds_the_position() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let postmark = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/message-streams/outbound/suppressions"))
        .and(header("X-Postmark-Server-Token", "pm-upstream-token"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&postmark)
        .await;
    Mock::given(method("POST"))
        .and(path("/message-streams/outbound/suppressions"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&postmark)
        .await;
    Mock::given(method("POST"))
        .and(path("/message-streams/outbound/suppressions"))
        .respond_with(PostmarkCreate)
        .with_priority(3)
        .mount(&postmark)
        .await;
    let tenants = format!(
        "{ONE_TENANT_THREE_APIS}  [[tenants.mirrors]]\n  name = \"pm\"\n  provider = \"postmark\"\n  base_url = \"{}\"\n  token = \"pm-upstream-token\"\n  retry_max_attempts = 1\n{}",
        postmark.uri(),
        admin_toml()
    );
    let a = TestGateway::spawn(&tenants).await;
    let client = Client::new();
    let emails: Vec<String> = (0..120)
        .map(|n| format!("batch-{n:03}@example.com"))
        .collect();
    let (status, body) = call(
        &client,
        a.base(),
        ("Authorization", "Bearer v3-key"),
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({ "recipient_emails": emails })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mirror = caught_up(&client, a.base()).await;
    assert!(mirror["last_error"].is_null(), "{mirror}");
    let sizes: Vec<usize> = postmark
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["Suppressions"].as_array().unwrap().len()
        })
        .collect();
    // The 429 and the 503 each cost the first batch one try; then the
    // three batches, once each.
    assert_eq!(sizes, vec![50, 50, 50, 50, 20], "{sizes:?}");
    let sent: std::collections::BTreeSet<String> = postmark
        .received_requests()
        .await
        .unwrap()
        .iter()
        .skip(2)
        .flat_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["Suppressions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["EmailAddress"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(sent.len(), 120);
}

/// A mirror to a stand-in provider: A with the three APIs, mirrored to
/// `server` as `provider`.
async fn mirrored_to(server: &wiremock::MockServer, provider: &str, token: &str) -> TestGateway {
    let tenants = format!(
        "{ONE_TENANT_THREE_APIS}  [[tenants.mirrors]]\n  name = \"stand-in\"\n  provider = \"{provider}\"\n  base_url = \"{}\"\n  token = \"{token}\"\n  retry_max_attempts = 1\n{}",
        server.uri(),
        admin_toml()
    );
    TestGateway::spawn(&tenants).await
}

/// The bodies a stand-in received on one path, as JSON.
async fn bodies(server: &wiremock::MockServer, at: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == at)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// v3: global unsubscribes go up to 1,000 to a call (`recipient_emails`),
/// bounces one to a call, each with the mirror's key.
#[tokio::test]
async fn v3_batches_unsubscribes_by_the_thousand() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let sendgrid = MockServer::start().await;
    for at in ["/v3/asm/suppressions/global", "/v3/suppression/bounces"] {
        Mock::given(method("POST"))
            .and(path(at))
            .and(header("Authorization", "Bearer sg-upstream-key"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
            .mount(&sendgrid)
            .await;
    }
    let a = mirrored_to(&sendgrid, "v3", "sg-upstream-key").await;
    let client = Client::new();
    let v3 = ("Authorization", "Bearer v3-key");
    let emails: Vec<String> = (0..1_200)
        .map(|n| format!("u-{n:04}@example.com"))
        .collect();
    let (status, body) = call(
        &client,
        a.base(),
        v3,
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({ "recipient_emails": emails })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for email in ["b-1@example.com", "b-2@example.com"] {
        let (status, body) = call(
            &client,
            a.base(),
            v3,
            Method::POST,
            "/v3/suppression/bounces",
            Some(json!({"email": email, "bounce_type": "hard", "reason": "550 5.1.1 unknown"})),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    let mirror = caught_up(&client, a.base()).await;
    assert!(mirror["last_error"].is_null(), "{mirror}");
    let global: Vec<usize> = bodies(&sendgrid, "/v3/asm/suppressions/global")
        .await
        .iter()
        .map(|b| b["recipient_emails"].as_array().unwrap().len())
        .collect();
    assert_eq!(global, vec![1_000, 200]);
    let bounces: Vec<String> = bodies(&sendgrid, "/v3/suppression/bounces")
        .await
        .iter()
        .map(|b| b["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bounces, vec!["b-1@example.com", "b-2@example.com"]);
}

/// What SendPost answers a create: a row per address and reason.
struct SendPostCreate;

impl wiremock::Respond for SendPostCreate {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let mut rows = Vec::new();
        for (list, reason) in [
            ("manual", 0),
            ("unsubscribe", 1),
            ("hardBounce", 2),
            ("spamComplaint", 3),
        ] {
            for item in body[list].as_array().into_iter().flatten() {
                rows.push(json!({
                    "id": rows.len() + 1,
                    "email": item["email"],
                    "reason": reason,
                    "created": 1_700_000_000_000_000_000_i64,
                }));
            }
        }
        wiremock::ResponseTemplate::new(200).set_body_json(rows)
    }
}

/// SendPost: 100 addresses to a call, every reason in one body, with the
/// sub-account key.
#[tokio::test]
async fn sendpost_batches_of_100() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer};

    let sendpost = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/subaccount/suppression"))
        .and(header("X-SubAccount-ApiKey", "sp-upstream-key"))
        .respond_with(SendPostCreate)
        .mount(&sendpost)
        .await;
    let a = mirrored_to(&sendpost, "sendpost", "sp-upstream-key").await;
    let client = Client::new();
    let items: Vec<Value> = (0..250)
        .map(|n| json!({"email": format!("s-{n:03}@example.com")}))
        .collect();
    let (status, body) = call(
        &client,
        a.base(),
        ("X-SubAccount-ApiKey", "sp-key"),
        Method::POST,
        "/api/v1/subaccount/suppression",
        Some(json!({"unsubscribe": items, "hardBounce": [{"email": "hard@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mirror = caught_up(&client, a.base()).await;
    assert!(mirror["last_error"].is_null(), "{mirror}");
    let sizes: Vec<usize> = bodies(&sendpost, "/api/v1/subaccount/suppression")
        .await
        .iter()
        .map(|b| {
            ["manual", "unsubscribe", "hardBounce", "spamComplaint"]
                .iter()
                .map(|list| b[*list].as_array().map_or(0, Vec::len))
                .sum()
        })
        .collect();
    assert_eq!(sizes, vec![100, 100, 51], "{sizes:?}");
}
