//! `GET /metrics` (docs/operations.md, "Metrics"): Prometheus text on the
//! main listener, or only on `metrics.listen`; route templates in labels,
//! never a path with an address in it.

use reqwest::{Client, StatusCode};

use crate::support::{Gateway, ONE_TENANT_THREE_APIS, TestGateway};

#[tokio::test]
async fn requests_are_counted_by_route_template_and_no_address_is_shown() {
    let gw = TestGateway::spawn(&format!(
        "{ONE_TENANT_THREE_APIS}[metrics]\nenabled = true\n"
    ))
    .await;
    let client = Client::new();
    let lookup = client
        .get(format!(
            "{}/v3/suppression/bounces/secret.person@example.com",
            gw.base()
        ))
        .bearer_auth("v3-key")
        .send()
        .await
        .unwrap();
    assert!(lookup.status().is_client_error() || lookup.status().is_success());
    let unknown = client
        .get(format!(
            "{}/no/such/path/other.person@example.com",
            gw.base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let res = client
        .get(format!("{}/metrics", gw.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = res.text().await.unwrap();
    for needle in [
        "# TYPE http_server_request_duration_seconds histogram",
        r#"http_route="/v3/suppression/bounces/{email}""#,
        r#"api="v3""#,
        r#"http_request_method="GET""#,
        r#"http_route="UNMATCHED""#,
        "http_server_active_requests",
        r#"le="0.005""#,
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(
        !text.contains("person@example.com"),
        "an address in a label:\n{text}"
    );
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n[metrics]\nenabled = true\n{ONE_TENANT_THREE_APIS}",
            dir.path().join("hush.db").display()
        ),
    )
    .unwrap();
    let port = crate::support::unused_port();
    let listen = format!("127.0.0.1:{port}");
    let gw = Gateway::start(&config, &[("HUSH_METRICS__LISTEN", listen.as_str())]).await;
    let client = Client::new();
    let main = client.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = main.json().await.unwrap();
    assert!(
        body["errors"].is_array() || body["message"].is_string(),
        "{body}"
    );
    let mut text = String::new();
    for _ in 0..50 {
        if let Ok(res) = client.get(format!("http://{listen}/metrics")).send().await {
            assert_eq!(res.status(), StatusCode::OK);
            text = res.text().await.unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("http_server_request_duration_seconds"),
        "{text}"
    );
    let other = client
        .get(format!("http://{listen}/v3/suppression/bounces"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = other.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test]
async fn metrics_are_off_unless_enabled() {
    let gw = TestGateway::spawn(ONE_TENANT_THREE_APIS).await;
    let res = Client::new()
        .get(format!("{}/metrics", gw.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
