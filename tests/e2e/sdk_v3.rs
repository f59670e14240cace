//! The official SendGrid SDKs against a real gateway: Python `sendgrid`
//! (sendgrid/sendgrid-python) and Node `@sendgrid/client`
//! (sendgrid/sendgrid-nodejs).

use crate::sdk::{node_env, python_env, run_script};
use crate::support::TestGateway;

/// Keys start with `SG.` so the Node client does not warn (its `setApiKey`
/// warns otherwise).
const TENANTS: &str = r#"
[[tenants]]
id = "sdk"
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-writer"
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-reader"
  scopes = ["suppressions.read"]
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-sg-writer"
  shape = "sendgrid"
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-sg-reader"
  shape = "sendgrid"
  scopes = ["suppressions.read"]
[[tenants]]
id = "sdk-sub"
parent = "sdk"
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-sub"
  shape = "sendgrid"
"#;

pub const PYTHON_SENDGRID: &[&str] = &["sendgrid==6.12.5", "python-http-client==3.3.7"];
pub const NODE_SENDGRID: &[&str] = &["@sendgrid/client@8.1.6"];

/// Runs one Python script against a fresh gateway.
async fn python(script: &'static str) -> String {
    let python = tokio::task::spawn_blocking(|| python_env("sendgrid", PYTHON_SENDGRID))
        .await
        .unwrap();
    let gw = TestGateway::spawn(TENANTS).await;
    let base = gw.base().to_owned();
    tokio::task::spawn_blocking(move || run_script(&python, script, &base, &[]))
        .await
        .unwrap()
}

/// Runs one Node script against a fresh gateway.
async fn node(script: &'static str) -> String {
    let modules = tokio::task::spawn_blocking(|| node_env("sendgrid", NODE_SENDGRID))
        .await
        .unwrap();
    let gw = TestGateway::spawn(TENANTS).await;
    let base = gw.base().to_owned();
    let node = std::path::PathBuf::from("node");
    tokio::task::spawn_blocking(move || {
        run_script(
            &node,
            script,
            &base,
            &[("NODE_PATH", modules.to_str().unwrap())],
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn python_sendgrid_sdk_bounces() {
    let out = python("v3_bounces.py").await;
    assert!(out.contains("all passed"), "{out}");
}

#[tokio::test]
async fn node_sendgrid_client_bounces() {
    let out = node("v3_bounces.js").await;
    assert!(out.contains("all passed"), "{out}");
}

#[tokio::test]
async fn python_sendgrid_sdk_seed_shape() {
    let out = python("v3_seed.py").await;
    assert!(out.contains("seed shape: all passed"), "{out}");
}

#[tokio::test]
async fn node_sendgrid_client_seed_shape() {
    let out = node("v3_seed.js").await;
    assert!(out.contains("seed shape: all passed"), "{out}");
}

#[tokio::test]
async fn python_sendgrid_sdk_sendgrid_shape() {
    let out = python("v3_sendgrid.py").await;
    assert!(out.contains("sendgrid shape: all passed"), "{out}");
}

#[tokio::test]
async fn node_sendgrid_client_sendgrid_shape() {
    let out = node("v3_sendgrid.js").await;
    assert!(out.contains("sendgrid shape: all passed"), "{out}");
}
