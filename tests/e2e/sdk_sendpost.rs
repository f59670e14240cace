//! The official SendPost Python SDKs against a real gateway
//! (docs/api/sendpost.md): `sendpost` 3.0.0 for the v1 contract and
//! `sendpost-python-sdk` 2.0.1 for the legacy one. Both import as
//! `sendpost_python_sdk`, so each has its own environment.

use serde_json::json;

use crate::sdk::{python_env, run_script};
use crate::support::{TestGateway, bearer};

pub const SENDPOST_KEY: &str = "sp-sdk-key";

const TENANTS: &str = r#"
[[tenants]]
id = "sdk"
  [[tenants.keys]]
  api = "sendpost"
  token = "sp-sdk-key"
  [[tenants.keys]]
  api = "v3"
  token = "SG.sdk-writer"
"#;

pub const PYTHON_SENDPOST: &[&str] = &["sendpost==3.0.0"];
pub const PYTHON_SENDPOST_LEGACY: &[&str] = &["sendpost-python-sdk==2.0.1"];

/// A gateway with one v3 bounce already in it, so the scripts also read
/// another API's entry through the SDK.
async fn gateway_with_a_v3_bounce(address: &str) -> TestGateway {
    let gw = TestGateway::spawn(TENANTS).await;
    let res = reqwest::Client::new()
        .post(format!("{}/v3/suppression/bounces", gw.base()))
        .header("Authorization", bearer("SG.sdk-writer"))
        .json(&json!({"email": address, "reason": "550 5.1.1 User unknown"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    gw
}

async fn run(packages: &'static [&'static str], env: &'static str, script: &'static str) {
    let python = tokio::task::spawn_blocking(move || python_env(env, packages))
        .await
        .unwrap();
    let bounce = "v3-bounce@example.com";
    let gw = gateway_with_a_v3_bounce(bounce).await;
    let base = gw.base().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        run_script(
            &python,
            script,
            &base,
            &[("SENDPOST_KEY", SENDPOST_KEY), ("V3_BOUNCE", bounce)],
        )
    })
    .await
    .unwrap();
    assert!(out.contains("all passed"), "{out}");
}

#[tokio::test]
async fn python_sendpost_sdk_3_0_0() {
    run(PYTHON_SENDPOST, "sendpost3", "sendpost_suppressions.py").await;
}

#[tokio::test]
async fn python_sendpost_sdk_2_0_1_legacy_contract() {
    run(PYTHON_SENDPOST_LEGACY, "sendpost2", "sendpost_legacy.py").await;
}
