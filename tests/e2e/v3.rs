//! The rest of the v3 API through the real binary: config of shapes and
//! subusers, and CSV imports over a real socket, including one cut off
//! mid-body.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const TENANTS: &str = r#"
[[tenants]]
id = "parent"
  [[tenants.keys]]
  api = "v3"
  token = "SG.parent-seed"
  [[tenants.keys]]
  api = "v3"
  token = "SG.parent-sendgrid"
  shape = "sendgrid"
[[tenants]]
id = "child"
parent = "parent"
  [[tenants.keys]]
  api = "v3"
  token = "SG.child"
"#;

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

#[tokio::test]
async fn shapes_and_subusers_come_from_config() {
    let gw = TestGateway::spawn(TENANTS).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", gw.base());
    let (status, body) = send(
        client
            .get(url("/v3/asm/suppressions/global/nobody@example.com"))
            .bearer_auth("SG.parent-sendgrid"),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _) = send(
        client
            .get(url("/v3/asm/suppressions/global/nobody@example.com"))
            .bearer_auth("SG.parent-seed"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the seed shape is the default"
    );

    let (status, _) = send(
        client
            .post(url("/v3/asm/suppressions/global"))
            .bearer_auth("SG.parent-sendgrid")
            .header("On-Behalf-Of", "child")
            .json(&json!({"recipient_emails": ["kid@example.com"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, child) = send(
        client
            .get(url("/v3/asm/suppressions/global"))
            .bearer_auth("SG.child"),
    )
    .await;
    assert_eq!(child["recipient_emails"], json!(["kid@example.com"]));
    let (status, error) = send(
        client
            .get(url("/v3/asm/suppressions/global"))
            .bearer_auth("SG.child")
            .header("on-behalf-of", "parent"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        error["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("parent")
    );
}

#[test]
fn bad_shapes_and_parents_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let cases = [
        (
            "[[tenants]]\nid = \"a\"\nparent = \"nobody\"\n",
            "tenants[0].parent",
        ),
        (
            "[[tenants]]\nid = \"a\"\nparent = \"a\"\n",
            "tenants[0].parent",
        ),
        (
            "[[tenants]]\nid = \"a\"\n[[tenants]]\nid = \"b\"\nparent = \"a\"\n[[tenants]]\nid = \"c\"\nparent = \"b\"\n",
            "tenants[2].parent",
        ),
        (
            "[[tenants]]\nid = \"a\"\n[[tenants.keys]]\napi = \"postmark\"\ntoken = \"k\"\nshape = \"sendgrid\"\n",
            "tenants[0].keys[0].shape",
        ),
        (
            "[[tenants]]\nid = \"a\"\n[[tenants.keys]]\napi = \"v3\"\ntoken = \"k\"\nshape = \"mailgun\"\n",
            "shape",
        ),
        (
            "[server]\nmax_import_bytes = 10\n",
            "server.max_import_bytes",
        ),
    ];
    for (toml, key) in cases {
        std::fs::write(&file, toml).unwrap();
        let (code, stderr) = refused_start(Some(&file), &[]);
        assert_eq!(code, 2, "{toml}: {stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
}

#[tokio::test]
async fn an_import_over_a_real_socket() {
    let gw = TestGateway::spawn(TENANTS).await;
    let rows = 20_000;
    let body: String = std::iter::once("email,reason\r\n".to_owned())
        .chain((0..rows).map(|n| format!("user{n}@example.com,\"550 5.1.1 gone, {n}\"\r\n")))
        .chain(std::iter::once("broken,row\r\n".to_owned()))
        .collect();
    let (status, report) = send(
        reqwest::Client::new()
            .post(format!("{}/v3/suppression/bounces/import", gw.base()))
            .bearer_auth("SG.parent-seed")
            .header("Content-Type", "text/csv")
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"imported": rows, "skipped": 1, "errors": [
            {"row": rows + 2, "email": "broken", "error": "email address has no '@'"}
        ]})
    );
    let (_, list) = send(
        reqwest::Client::new()
            .get(format!(
                "{}/v3/suppression/bounces?limit=1&email=user1999%40",
                gw.base()
            ))
            .bearer_auth("SG.parent-seed"),
    )
    .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["bounces"][0]["status"], "5.1.1");
}

#[tokio::test]
async fn an_import_cut_off_mid_body_keeps_the_rows_that_arrived() {
    let gw = TestGateway::spawn(TENANTS).await;
    let addr = gw.base().trim_start_matches("http://").to_owned();
    let sent_rows = 7_000;
    let rows: String = (0..sent_rows)
        .map(|n| format!("cut{n}@example.com\n"))
        .collect();
    let partial = format!("{rows}half-a-row@exa");
    // The client promises more than it sends, then goes away.
    let head = format!(
        "POST /v3/asm/suppressions/global/import HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer SG.parent-seed\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
        partial.len() + 100_000
    );
    let mut socket = TcpStream::connect(&addr).unwrap();
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(partial.as_bytes()).unwrap();
    socket.flush().unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    // Whatever the server still manages to say, it must not be success.
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(socket);

    let client = reqwest::Client::new();
    let mut total = Value::Null;
    // The server logs and commits as soon as it sees the cut.
    for _ in 0..100 {
        let (_, list) = send(
            client
                .get(format!("{}/v3/asm/suppressions/global?limit=1", gw.base()))
                .bearer_auth("SG.parent-seed"),
        )
        .await;
        total = list["total"].clone();
        if total == json!(sent_rows) && gw.gateway.stderr().contains("cut off") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        total,
        json!(sent_rows),
        "every whole row that arrived stays"
    );
    let log = gw.gateway.stderr();
    assert!(log.contains("import cut off mid-body"), "{log}");
}
