//! The journal and the admin API end to end: every door writes the actor it
//! should, a bulk delete comes back exactly, tokens see only what they may,
//! the CLI reads and restores the same store, and a kill -9 leaves no change
//! without its entry.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{HUSH, TestGateway};

const READER: &str = "admin-reader-token-0123456789";
const WRITER: &str = "admin-writer-token-0123456789";
const OTHERS: &str = "admin-others-token-0123456789";

/// Two tenants; `demo` has a key for each API, one of them named.
const TENANTS: &str = r#"
[[tenants]]
id = "demo"
  [[tenants.keys]]
  api = "v3"
  name = "billing-service"
  token = "v3-key"
  [[tenants.keys]]
  api = "postmark"
  token = "pm-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "sp-key"
[[tenants]]
id = "other"
  [[tenants.keys]]
  api = "v3"
  token = "other-v3-key"
[[admin.tokens]]
name = "reader"
token = "admin-reader-token-0123456789"
scopes = ["admin.read"]
[[admin.tokens]]
name = "oncall"
token = "admin-writer-token-0123456789"
scopes = ["admin.read", "admin.write"]
[[admin.tokens]]
name = "other-only"
token = "admin-others-token-0123456789"
scopes = ["admin.read", "admin.write"]
tenants = ["other"]
"#;

struct Hub {
    gw: TestGateway,
    client: Client,
}

impl Hub {
    async fn spawn() -> Self {
        Self {
            gw: TestGateway::spawn(TENANTS).await,
            client: Client::new(),
        }
    }

    async fn call(
        &self,
        (header, value): (&str, &str),
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.gw.base()))
            .header(header, value)
            .header("X-Request-Id", format!("test-{}", path.len()));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    async fn v3(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(("Authorization", "Bearer v3-key"), method, path, body)
            .await
    }

    async fn admin(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let auth = format!("Bearer {token}");
        self.call(("Authorization", &auth), method, path, body)
            .await
    }

    async fn history(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .admin(
                READER,
                Method::GET,
                &format!("/admin/v1/tenants/demo/history?{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    /// Every entry of an address as the admin API shows it, by tenant.
    async fn entries(&self, email: &str) -> BTreeMap<String, Value> {
        let (status, body) = self
            .admin(
                READER,
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
            .map(|t| {
                (
                    t["tenant"].as_str().unwrap().to_owned(),
                    t["entries"].clone(),
                )
            })
            .collect()
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn every_door_writes_its_actor() {
    let hub = Hub::spawn().await;
    let (status, _) = hub
        .v3(
            Method::POST,
            "/v3/asm/suppressions/global",
            Some(json!({"recipient_emails": ["v3@example.com"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = hub
        .call(
            ("X-Postmark-Server-Token", "pm-token"),
            Method::POST,
            "/message-streams/outbound/suppressions",
            Some(json!({"Suppressions": [{"EmailAddress": "pm@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = hub
        .call(
            ("X-SubAccount-ApiKey", "sp-key"),
            Method::POST,
            "/api/v1/subaccount/suppression",
            Some(json!({"unsubscribe": [{"email": "sp@example.com"}]})),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let csv = "email\ncsv@example.com\n";
    let res = hub
        .client
        .post(format!(
            "{}/v3/asm/suppressions/global/import",
            hub.gw.base()
        ))
        .header("Authorization", "Bearer v3-key")
        .header("Content-Type", "text/csv")
        .header("X-Request-Id", "test-csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );

    let doors: BTreeMap<String, (String, String, String)> = hub
        .history("limit=50")
        .await
        .iter()
        .filter(|e| e["op"] == "added")
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (
                s(&e["suppression"]["email"]),
                (
                    s(&e["actor"]["door"]),
                    s(&e["actor"]["key"]),
                    s(&e["actor"]["request_id"]),
                ),
            )
        })
        .collect();
    let door = |email: &str| {
        let (door, key, request) = doors
            .get(email)
            .unwrap_or_else(|| panic!("{email}: {doors:?}"));
        assert!(
            request.starts_with("test-"),
            "{email}: request id {request}"
        );
        (door.as_str(), key.as_str())
    };
    assert_eq!(door("v3@example.com"), ("v3", "billing-service"));
    assert_eq!(door("pm@example.com"), ("postmark", "postmark#1"));
    assert_eq!(door("sp@example.com"), ("sendpost", "sendpost#1"));
    assert_eq!(door("csv@example.com"), ("import", "billing-service"));
    // The secret is in no entry.
    let all = serde_json::to_string(&hub.history("limit=50").await).unwrap();
    assert!(!all.contains("v3-key") && !all.contains("pm-token"));
}

#[tokio::test]
async fn a_bulk_delete_through_v3_is_restored_exactly() {
    let hub = Hub::spawn().await;
    for (n, class) in ["hard", "soft", "block", "hard"].iter().enumerate() {
        let (status, body) = hub
            .v3(
                Method::POST,
                "/v3/suppression/bounces",
                Some(json!({
                    "email": format!("b{n}@example.com"),
                    "bounce_type": class,
                    "reason": format!("550 reason {n}"),
                    "status": "5.1.1",
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let emails: Vec<String> = (0..4).map(|n| format!("b{n}@example.com")).collect();
    let mut before = BTreeMap::new();
    for email in &emails {
        before.insert(email.clone(), hub.entries(email).await);
    }
    let (_, listed_before) = hub.v3(Method::GET, "/v3/suppression/bounces", None).await;

    let since = now_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, _) = hub
        .v3(
            Method::DELETE,
            "/v3/suppression/bounces",
            Some(json!({"delete_all": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let removed = hub.history("door=v3").await;
    assert_eq!(removed.iter().filter(|e| e["op"] == "removed").count(), 4);

    let (status, dry) = hub
        .admin(
            WRITER,
            Method::POST,
            "/admin/v1/tenants/demo/restore",
            Some(json!({"since": since, "dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry, json!({"restored": 4, "removed": 0, "dry_run": true}));
    assert!(
        hub.entries("b0@example.com").await.is_empty(),
        "a dry run changes nothing"
    );

    let (status, done) = hub
        .admin(
            WRITER,
            Method::POST,
            "/admin/v1/tenants/demo/restore",
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done, json!({"restored": 4, "removed": 0, "dry_run": false}));
    for email in &emails {
        assert_eq!(
            hub.entries(email).await,
            before[email],
            "{email}, field by field"
        );
    }
    let (_, listed_after) = hub.v3(Method::GET, "/v3/suppression/bounces", None).await;
    assert_eq!(listed_after, listed_before);
    let restores = hub.history("door=restore").await;
    assert_eq!(restores.len(), 4);
    assert!(restores.iter().all(|e| e["actor"]["key"] == "oncall"));
}

#[tokio::test]
async fn admin_tokens_need_their_scope_and_see_only_their_tenants() {
    let hub = Hub::spawn().await;
    hub.v3(
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({"recipient_emails": ["shared@example.com"]})),
    )
    .await;
    hub.call(
        ("Authorization", "Bearer other-v3-key"),
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({"recipient_emails": ["shared@example.com", "theirs@example.com"]})),
    )
    .await;

    let (status, body) = hub
        .call(("X-Nothing", "x"), Method::GET, "/admin/v1/tenants", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = hub
        .admin("not-a-token", Method::GET, "/admin/v1/tenants", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = hub
        .admin(
            READER,
            Method::POST,
            "/admin/v1/tenants/demo/restore",
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(hub.entries("shared@example.com").await.contains_key("demo"));

    let (status, tenants) = hub
        .admin(OTHERS, Method::GET, "/admin/v1/tenants", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tenants["data"].as_array().unwrap().len(), 1, "{tenants}");
    assert_eq!(tenants["data"][0]["tenant"], "other");
    assert_eq!(tenants["data"][0]["counts"]["unsubscribe"], 2);
    for (method, path, body) in [
        (Method::GET, "/admin/v1/tenants/demo/history", None),
        (
            Method::POST,
            "/admin/v1/tenants/demo/restore",
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (Method::GET, "/admin/v1/tenants/nobody/history", None),
    ] {
        let (status, body) = hub.admin(OTHERS, method, path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, found) = hub
        .admin(
            OTHERS,
            Method::GET,
            "/admin/v1/addresses/shared@example.com",
            None,
        )
        .await;
    let seen: Vec<&str> = found["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["other"]);
    assert_eq!(found["tenants"][0]["may_send"]["global"], false);
    // One tenant's history holds none of the other's changes.
    let demo = hub.history("limit=250").await;
    assert!(
        demo.iter()
            .all(|e| e["suppression"]["email"] != "theirs@example.com")
    );
    // A restore of one tenant leaves the other alone.
    let (status, _) = hub
        .admin(
            OTHERS,
            Method::POST,
            "/admin/v1/tenants/other/restore",
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = hub.entries("shared@example.com").await;
    assert!(after.contains_key("demo") && !after.contains_key("other"));

    // Errors and unknown paths answer in the admin format.
    let (status, body) = hub
        .admin(
            READER,
            Method::GET,
            "/admin/v1/tenants/demo/history?limit=0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_request");
    let (status, body) = hub
        .admin(READER, Method::DELETE, "/admin/v1/tenants", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn history_pages_newest_first_with_an_iterator() {
    let hub = Hub::spawn().await;
    for n in 0..5 {
        hub.v3(
            Method::POST,
            "/v3/asm/suppressions/global",
            Some(json!({"recipient_emails": [format!("p{n}@example.com")]})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut iterator = String::new();
    loop {
        let (status, page) = hub
            .admin(
                READER,
                Method::GET,
                &format!("/admin/v1/tenants/demo/history?door=v3&limit=2{iterator}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        for item in page["data"].as_array().unwrap() {
            seen.push(item["suppression"]["email"].as_str().unwrap().to_owned());
        }
        if page["done"] == true {
            break;
        }
        iterator = format!("&iterator={}", page["iterator"].as_str().unwrap());
    }
    let expected: Vec<String> = (0..5).rev().map(|n| format!("p{n}@example.com")).collect();
    assert_eq!(seen, expected);
    let one = hub.history("email=p3@example.com").await;
    assert_eq!(one.len(), 1);
}

#[tokio::test]
async fn without_admin_tokens_there_is_no_admin_api() {
    let gw = TestGateway::spawn(crate::support::ONE_TENANT_THREE_APIS).await;
    let res = Client::new()
        .get(format!("{}/admin/v1/tenants", gw.base()))
        .header("Authorization", format!("Bearer {WRITER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_cli_reads_the_history_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    let db = dir.path().join("hush.db");
    let mut hub = Hub {
        gw: TestGateway::spawn_in(dir, TENANTS).await,
        client: Client::new(),
    };
    hub.v3(
        Method::POST,
        "/v3/asm/suppressions/global",
        Some(json!({"recipient_emails": ["cli@example.com"]})),
    )
    .await;
    let since = now_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    hub.v3(
        Method::DELETE,
        "/v3/asm/suppressions/global/cli@example.com",
        None,
    )
    .await;
    // One process serves a SQLite file: the CLI runs with the gateway
    // stopped (on PostgreSQL, beside it).
    assert!(hub.gw.gateway.terminate().success());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(HUSH)
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
        String::from_utf8(out.stdout).unwrap()
    };
    let history = run(&["history", "--tenant", "demo", "--email", "cli@example.com"]);
    let ops: Vec<String> = history
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["op"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ops, ["removed", "added"]);
    let dry = run(&[
        "restore",
        "--tenant",
        "demo",
        "--since",
        &since,
        "--dry-run",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&dry).unwrap(),
        json!({"restored": 1, "removed": 0, "dry_run": true})
    );
    run(&["restore", "--tenant", "demo", "--since", &since]);
    let store = hush_store::SqliteBackend::open(hush_store::SqliteOptions::new(db)).unwrap();
    let tenant = hush_model::TenantId::parse("demo").unwrap();
    let email = hush_model::Email::parse("cli@example.com").unwrap();
    let back = hush_engine::Backend::entries(&store, &tenant, &email)
        .await
        .unwrap();
    assert_eq!(back.len(), 1, "put back by the CLI");
    let newest =
        hush_engine::Backend::journal(&store, &tenant, &hush_model::JournalQuery::newest_first(1))
            .await
            .unwrap();
    assert_eq!(newest[0].actor.door, hush_model::Door::RESTORE);
    assert!(newest[0].actor.key.as_deref().unwrap().starts_with("cli:"));
}

/// Writes race a kill -9; afterwards every entry in the store has an
/// `added` entry in the journal as its last word, and every removed one a
/// `removed`: no change committed without its entry.
#[tokio::test]
async fn a_kill_9_leaves_no_change_without_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hush.db");
    let mut hub = Hub {
        gw: TestGateway::spawn_in(dir, TENANTS).await,
        client: Client::new(),
    };
    let base = hub.gw.base().to_owned();
    let client = hub.client.clone();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let email = format!("w{w}-{}@example.com", n % 50);
                    let req = if n % 3 == 2 {
                        client.delete(format!("{base}/v3/asm/suppressions/global/{email}"))
                    } else {
                        client
                            .post(format!("{base}/v3/asm/suppressions/global"))
                            .json(&json!({"recipient_emails": [email]}))
                    };
                    if req
                        .header("Authorization", "Bearer v3-key")
                        .send()
                        .await
                        .is_err()
                    {
                        return n;
                    }
                }
                unreachable!()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    hub.gw.gateway.kill_hard();
    let mut sent = 0;
    for writer in writers {
        sent += writer.await.unwrap();
    }
    assert!(sent > 50, "the writers barely ran ({sent} requests)");

    let store = hush_store::SqliteBackend::open(hush_store::SqliteOptions::new(db)).unwrap();
    let store: Arc<dyn hush_engine::Backend> = Arc::new(store);
    let tenant = hush_model::TenantId::parse("demo").unwrap();
    let entries = store
        .journal(
            &tenant,
            &hush_model::JournalQuery {
                order: hush_model::JournalOrder::OldestFirst,
                ..hush_model::JournalQuery::newest_first(u32::MAX)
            },
        )
        .await
        .unwrap();
    let mut last_word: BTreeMap<i64, hush_model::Operation> = BTreeMap::new();
    for entry in &entries {
        if let hush_model::Recorded::Suppression(s) = &entry.record {
            last_word.insert(s.id.0, entry.operation);
        }
    }
    let filter =
        hush_model::ListFilter::new(hush_model::KindSet::ALL, hush_model::ScopeFilter::Global);
    let held = store.count(&tenant, &filter).await.unwrap();
    let mut present = 0;
    let mut cursor = None;
    loop {
        let page = store.scan(&tenant, &filter, cursor, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(hush_model::ScanCursor::after(last));
        for s in &page {
            present += 1;
            assert_eq!(
                last_word.get(&s.id.0),
                Some(&hush_model::Operation::Added),
                "{} is stored, and its last journal entry must be its add",
                s.email
            );
        }
    }
    assert_eq!(present, held);
    let journaled_present = last_word
        .values()
        .filter(|op| **op == hush_model::Operation::Added)
        .count() as u64;
    assert_eq!(
        journaled_present, held,
        "every entry the journal says is there is there, and no other"
    );
}

/// Key names and admin tokens are checked at start, naming the key.
#[test]
fn bad_key_names_and_admin_tokens_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[tenants]]\nid = \"a\"\n  [[tenants.keys]]\n  api = \"v3\"\n  name = \"svc\"\n  token = \"k1\"\n  [[tenants.keys]]\n  api = \"postmark\"\n  name = \"svc\"\n  token = \"k2\"\n",
            "tenants[0].keys[1].name",
        ),
        (
            "[[tenants]]\nid = \"a\"\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"t-0123456789abcdef\"\nscopes = [\"admin.root\"]\n",
            "admin.tokens[0].scopes",
        ),
        (
            "[[tenants]]\nid = \"a\"\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"t-0123456789abcdef\"\nscopes = [\"admin.read\"]\ntenants = [\"nobody\"]\n",
            "admin.tokens[0].tenants",
        ),
        (
            "[[tenants]]\nid = \"a\"\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"t-0123456789abcdef\"\nscopes = [\"admin.read\"]\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"t-fedcba9876543210\"\nscopes = [\"admin.read\"]\n",
            "admin.tokens[1].name",
        ),
    ];
    for (n, (toml, key)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("c{n}.toml"));
        std::fs::write(&file, format!("[storage]\nbackend = \"memory\"\n{toml}")).unwrap();
        let (code, stderr) = crate::support::refused_start(Some(&file), &[]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}
