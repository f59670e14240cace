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
        "[[admin.tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nscopes = [\"admin.read\", \"admin.write\"]\n"
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
async fn held_at(client: &Client, b: &TestGateway, email: &str) -> Vec<String> {
    let (status, body) = call(
        client,
        b.base(),
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
async fn report(client: &Client, a: &TestGateway) -> Value {
    let (status, body) = call(
        client,
        a.base(),
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
async fn caught_up(client: &Client, a: &TestGateway) -> Value {
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
    let client = Client::new();
    let v3 = ("Authorization", "Bearer v3-key");
    let pm = ("X-Postmark-Server-Token", "pm-token");
    let sp = ("X-SubAccount-ApiKey", "sp-key");
    let (status, body) = call(
        &client,
        a.base(),
        v3,
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({"recipient_emails": ["v3-unsub@example.com", "gone@example.com"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        &client,
        a.base(),
        pm,
        Method::POST,
        "/message-streams/outbound/suppressions",
        Some(json!({"Suppressions": [{"EmailAddress": "pm-manual@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &client,
        a.base(),
        sp,
        Method::POST,
        "/api/v1/subaccount/suppression",
        Some(json!({"unsubscribe": [{"email": "sp-unsub@example.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &client,
        a.base(),
        v3,
        Method::DELETE,
        "/v3/asm/suppressions/global/gone@example.com",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let mirror = caught_up(&client, &a).await;
    assert_eq!(mirror["provider"], api);
    assert_eq!(mirror["failed"], 0, "{mirror}");
    assert!(mirror["last_error"].is_null(), "{mirror}");
    assert!(mirror["last_success_at"].is_string(), "{mirror}");
    for email in ["v3-unsub@example.com", "sp-unsub@example.com"] {
        assert!(
            !held_at(&client, &b, email).await.is_empty(),
            "{email} did not reach the {api} mirror"
        );
    }
    // A Postmark suppression is its stream's (docs/mapping.md): a group,
    // which SendPost has none of; the other two have the stream (B's
    // `outbound`, matched by key).
    let streamed = held_at(&client, &b, "pm-manual@example.com").await;
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
        held_at(&client, &b, "gone@example.com").await.is_empty(),
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
    caught_up(&client, &a).await;
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
    // The provider does not answer: the mirror says so and waits.
    let mut stuck = Value::Null;
    for _ in 0..100 {
        stuck = report(&client, &a).await;
        if stuck["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stuck["last_error"].is_string(), "{stuck}");
    assert_eq!(stuck["lag"]["changes"], 20, "{stuck}");
    // A restarts while B is stopped; the position it saved is where it
    // resumes.
    let position = stuck["position"].clone();
    let restarted = a.restart().await;
    assert_eq!(report(&client, &restarted).await["position"], position);
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mirror = caught_up(&client, &restarted).await;
    assert!(mirror["last_error"].is_null(), "{mirror}");
    for n in 0..20 {
        let email = format!("while-stopped-{n}@example.com");
        assert!(!held_at(&client, &b, &email).await.is_empty(), "{email}");
    }
}
