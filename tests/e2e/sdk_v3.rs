//! The official SendGrid SDKs against a real gateway (specs/sendgrid-v3.md
//! §4): Python `sendgrid` and Node `@sendgrid/client`.

use crate::sdk::{node_env, python_env, run_script};
use crate::support::TestGateway;

/// Keys start with `SG.` so the Node client does not warn (spec §1.2).
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
"#;

pub const PYTHON_SENDGRID: &[&str] = &["sendgrid==6.12.5", "python-http-client==3.3.7"];
pub const NODE_SENDGRID: &[&str] = &["@sendgrid/client@8.1.6"];

#[tokio::test]
async fn python_sendgrid_sdk_bounces() {
    let python = tokio::task::spawn_blocking(|| python_env("sendgrid", PYTHON_SENDGRID))
        .await
        .unwrap();
    let gw = TestGateway::spawn(TENANTS).await;
    let base = gw.base().to_owned();
    let out = tokio::task::spawn_blocking(move || run_script(&python, "v3_bounces.py", &base, &[]))
        .await
        .unwrap();
    assert!(out.contains("all passed"), "{out}");
}

#[tokio::test]
async fn node_sendgrid_client_bounces() {
    let modules = tokio::task::spawn_blocking(|| node_env("sendgrid", NODE_SENDGRID))
        .await
        .unwrap();
    let gw = TestGateway::spawn(TENANTS).await;
    let base = gw.base().to_owned();
    let node = std::path::PathBuf::from("node");
    let out = tokio::task::spawn_blocking(move || {
        run_script(
            &node,
            "v3_bounces.js",
            &base,
            &[("NODE_PATH", modules.to_str().unwrap())],
        )
    })
    .await
    .unwrap();
    assert!(out.contains("all passed"), "{out}");
}
