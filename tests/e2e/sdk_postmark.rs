//! The Postmark SDKs against a real gateway (docs/api/postmark.md): npm
//! `postmark`, PyPI `postmark-python`, and `postmarker` through
//! `client.call`; and the cross-API promises of docs/mapping.md between v3
//! and Postmark.
//!
//! Some entries cannot be made through any API on purpose: a recipient's
//! spam complaint and unsubscribe, an operator's block. The gateway's SQLite
//! file is seeded with them through the engine before the gateway starts,
//! as an import would.

use std::sync::Arc;

use hush_engine::Engine;
use hush_model::{
    BounceClass, Email, GroupKey, Kind, KindSet, ListFilter, NewSuppression, Origin, Scope,
    ScopeFilter, TenantId, Timestamp,
};
use hush_store::{SqliteBackend, SqliteOptions};
use serde_json::{Value, json};

use crate::sdk::{node_env, python_env, run_script};
use crate::support::TestGateway;

const TOKEN: &str = "pm-sdk-server-token";
const V3_KEY: &str = "SG.cross-api";
pub(crate) const TENANTS: &str = r#"
[[tenants]]
id = "sdk"
  [[tenants.keys]]
  api = "postmark"
  token = "pm-sdk-server-token"
  [[tenants.keys]]
  api = "v3"
  token = "SG.cross-api"
[[tenants]]
id = "other"
  [[tenants.keys]]
  api = "postmark"
  token = "pm-other-server-token"
"#;

pub const PYTHON_POSTMARK: &[&str] = &["postmark-python==0.4.0", "postmarker==1.0"];
pub const NODE_POSTMARK: &[&str] = &["postmark@5.1.0"];

fn tenant() -> TenantId {
    TenantId::parse("sdk").unwrap()
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

fn engine_on(dir: &std::path::Path) -> Engine {
    let backend = SqliteBackend::open(SqliteOptions::new(dir.join("hush.db"))).unwrap();
    Engine::new(Arc::new(backend))
}

/// A folder whose `hush.db` holds, for tenant `sdk`, the entries the SDK
/// scripts expect: one per case the customer may or may not change.
pub(crate) async fn seeded_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_on(dir.path());
    let entry = |address: &str, kind: Kind, origin: Origin, at: &str| NewSuppression {
        email: email(address),
        scope: Scope::Global,
        kind,
        origin,
        created_at: Timestamp::parse_rfc3339(at).unwrap(),
    };
    let hard = Kind::Bounce {
        class: BounceClass::Hard,
        status: Some("5.1.1".into()),
        reason: Some("550 5.1.1 User unknown".into()),
    };
    let spam = Kind::SpamComplaint {
        source: Some("feedback_loop".into()),
    };
    let items = vec![
        entry(
            "hard.bounce@example.com",
            hard,
            Origin::Recipient,
            "2019-12-05T10:00:00Z",
        ),
        entry(
            "spam.complaint@example.com",
            spam,
            Origin::Recipient,
            "2019-12-10T10:00:00Z",
        ),
        entry(
            "unsubscribed@example.com",
            Kind::Unsubscribe,
            Origin::Recipient,
            "2019-12-20T10:00:00Z",
        ),
        entry(
            "admin.blocked@example.com",
            Kind::Manual,
            Origin::Admin,
            "2020-01-05T10:00:00Z",
        ),
    ];
    engine
        .add(&tenant(), items, &crate::support::seeder())
        .await
        .unwrap();
    dir
}

async fn python_script(script: &'static str) {
    let python = tokio::task::spawn_blocking(|| python_env("postmark", PYTHON_POSTMARK))
        .await
        .unwrap();
    let gw = TestGateway::spawn_in(seeded_dir().await, TENANTS).await;
    let base = gw.base().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        run_script(&python, script, &base, &[("POSTMARK_TOKEN", TOKEN)])
    })
    .await
    .unwrap();
    assert!(out.contains("all passed"), "{out}");
}

#[tokio::test]
async fn node_postmark_sdk() {
    let modules = tokio::task::spawn_blocking(|| node_env("postmark", NODE_POSTMARK))
        .await
        .unwrap();
    let gw = TestGateway::spawn_in(seeded_dir().await, TENANTS).await;
    let base = gw.base().to_owned();
    let node = std::path::PathBuf::from("node");
    let out = tokio::task::spawn_blocking(move || {
        run_script(
            &node,
            "postmark_sdk.js",
            &base,
            &[
                ("NODE_PATH", modules.to_str().unwrap()),
                ("POSTMARK_TOKEN", TOKEN),
            ],
        )
    })
    .await
    .unwrap();
    assert!(out.contains("all passed"), "{out}");
}

#[tokio::test]
async fn python_postmark_sdk() {
    python_script("postmark_python.py").await;
}

#[tokio::test]
async fn python_postmarker_call() {
    python_script("postmark_postmarker.py").await;
}

/// A small client speaking both APIs to one gateway.
struct Both {
    http: reqwest::Client,
    base: String,
}

impl Both {
    async fn postmark(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Postmark-Server-Token", TOKEN)
            .header("Accept", "application/json");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn dump(&self, stream: &str) -> Vec<(String, String)> {
        let (status, body) = self
            .postmark(
                reqwest::Method::GET,
                &format!("/message-streams/{stream}/suppressions/dump"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["Suppressions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["EmailAddress"].as_str().unwrap().to_owned(),
                    r["SuppressionReason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn change(&self, stream: &str, action: &str, address: &str) -> Value {
        let suffix = if action == "delete" { "/delete" } else { "" };
        let (status, body) = self
            .postmark(
                reqwest::Method::POST,
                &format!("/message-streams/{stream}/suppressions{suffix}"),
                Some(json!({"Suppressions": [{"EmailAddress": address}]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["Suppressions"][0].clone()
    }

    async fn v3(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(V3_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn v3_bounces(&self) -> Vec<String> {
        let (status, body) = self
            .v3(reqwest::Method::GET, "/v3/suppression/bounces", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["bounces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["email"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// docs/mapping.md: what one API writes, the others read.
#[tokio::test]
async fn v3_and_postmark_share_one_set_of_suppressions() {
    let dir = seeded_dir().await;
    let db = dir.path().to_path_buf();
    let mut gw = TestGateway::spawn_in(dir, TENANTS).await;
    let both = Both {
        http: reqwest::Client::new(),
        base: gw.base().to_owned(),
    };

    // A bounce added through v3 is a HardBounce in the outbound dump.
    let (status, body) = both
        .v3(
            reqwest::Method::POST,
            "/v3/suppression/bounces",
            Some(json!({"email": "cross@example.com", "bounce_type": "hard", "reason": "550 5.1.1 User unknown"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dump = both.dump("outbound").await;
    assert_eq!(dump[0], ("cross@example.com".into(), "HardBounce".into()));

    // Deleting it through Postmark reactivates it: v3 no longer lists it.
    let item = both.change("outbound", "delete", "cross@example.com").await;
    assert_eq!(item["Status"], "Deleted", "{item}");
    assert!(
        !both
            .v3_bounces()
            .await
            .contains(&"cross@example.com".to_owned())
    );
    let (status, _) = both
        .v3(
            reqwest::Method::GET,
            "/v3/suppression/bounces/cross@example.com",
            None,
        )
        .await;
    assert_eq!(status, 404);
    // The seeded recipient bounce is still listed by v3, untouched.
    assert_eq!(both.v3_bounces().await, vec!["hard.bounce@example.com"]);

    // A spam complaint cannot be deleted through Postmark.
    let item = both
        .change("outbound", "delete", "spam.complaint@example.com")
        .await;
    assert_eq!(item["Status"], "Failed", "{item}");
    assert!(
        both.dump("outbound")
            .await
            .contains(&("spam.complaint@example.com".into(), "SpamComplaint".into()))
    );

    // A Postmark create in `broadcast` lands in that stream's group only.
    let (status, body) = both
        .postmark(
            reqwest::Method::POST,
            "/message-streams",
            Some(
                json!({"ID": "broadcast", "Name": "Broadcast", "MessageStreamType": "Broadcasts"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let item = both.change("broadcast", "create", "news@example.com").await;
    assert_eq!(item["Status"], "Suppressed", "{item}");
    assert!(
        both.dump("broadcast")
            .await
            .contains(&("news@example.com".into(), "ManualSuppression".into()))
    );
    assert!(
        !both
            .dump("outbound")
            .await
            .iter()
            .any(|(a, _)| a == "news@example.com")
    );
    assert!(
        !both
            .v3_bounces()
            .await
            .contains(&"news@example.com".to_owned())
    );

    // And in the store: one entry, in the group behind `broadcast`.
    assert!(gw.gateway.terminate().success());
    let engine = engine_on(&db);
    let broadcast = engine
        .group_by_key(&tenant(), &GroupKey::parse("broadcast").unwrap())
        .await
        .unwrap()
        .unwrap();
    let entries = engine
        .entries(&tenant(), &email("news@example.com"))
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].scope, Scope::Group(broadcast.id));
    assert_eq!(entries[0].kind, Kind::Manual);
    assert_eq!(entries[0].origin, Origin::Customer);
    let in_group = ListFilter::new(KindSet::ALL, ScopeFilter::Group(broadcast.id));
    assert_eq!(engine.count(&tenant(), &in_group).await.unwrap(), 1);
    // Nothing reached the other tenant.
    let other = TenantId::parse("other").unwrap();
    let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    assert_eq!(engine.count(&other, &everything).await.unwrap(), 0);
}

/// Paths no route serves answer in the caller's format, told by its auth
/// header; unknown methods on Postmark paths are Postmark 405s.
#[tokio::test]
async fn unknown_paths_and_methods_answer_in_postmark_format() {
    let gw = TestGateway::spawn(TENANTS).await;
    let both = Both {
        http: reqwest::Client::new(),
        base: gw.base().to_owned(),
    };
    for (method, path, status) in [
        (reqwest::Method::GET, "/nowhere", 404),
        (reqwest::Method::GET, "/bounces/1/activate/now", 404),
        (reqwest::Method::DELETE, "/message-streams", 405),
        (reqwest::Method::PUT, "/message-streams/outbound", 405),
        (
            reqwest::Method::GET,
            "/message-streams/outbound/suppressions",
            405,
        ),
    ] {
        let (got, body) = both.postmark(method.clone(), path, None).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(body["ErrorCode"].is_u64(), "{body}");
        assert!(body["Message"].is_string(), "{body}");
    }
    let res = reqwest::Client::new()
        .get(format!("{}/servers", gw.base()))
        .header("X-Postmark-Account-Token", "account")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ErrorCode"], 0, "{body}");
    // Without the header, the same unknown path is a v3 404.
    let res = reqwest::get(format!("{}/nowhere", gw.base()))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"].is_array(), "{body}");
    // A bad token everywhere is 401/10.
    let res = reqwest::Client::new()
        .get(format!("{}/message-streams", gw.base()))
        .header("x-postmark-server-token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ErrorCode"], 10);
    // A key belongs to one API: a v3 key is no server token, and a server
    // token is no v3 key.
    let res = reqwest::Client::new()
        .get(format!("{}/message-streams", gw.base()))
        .header("X-Postmark-Server-Token", V3_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = reqwest::Client::new()
        .get(format!("{}/v3/suppression/bounces", gw.base()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // The configured server token works.
    let (status, body) = both
        .postmark(reqwest::Method::GET, "/message-streams", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["MessageStreams"][0]["ID"], "outbound");
}
