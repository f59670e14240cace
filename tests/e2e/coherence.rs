//! Read-after-write across instances: a faster read path (the lookup
//! index, the PostgreSQL mirror) must never serve a stale answer.
//!
//! - SQLite: one gateway serves a file. A second one on the same file is
//!   refused at start-up, naming the file, so no write can reach the file
//!   behind the first one's address filter.
//! - PostgreSQL: two gateways on one database. A write acknowledged by one
//!   is seen by the very next read on the other, and by its own next read.
//!   Each read comes after a read of the same address that saw the opposite
//!   state, so a cache (or a read transaction kept open) that kept that
//!   answer fails.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Gateway, bearer, config_toml, refused_start};

const KEY: &str = "demo-v3-key";

async fn status(req: reqwest::RequestBuilder) -> StatusCode {
    req.header("Authorization", bearer(KEY))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_second_gateway_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("a.toml");
    std::fs::write(&config, config_toml(dir.path())).unwrap();
    let first = Gateway::start(&config, &[]).await;

    let second = dir.path().join("b.toml");
    std::fs::write(&second, config_toml(dir.path())).unwrap();
    let (code, stderr) = refused_start(Some(&second), &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("is in use by another hush") && stderr.contains("hush.db"),
        "{stderr}"
    );

    // So is a copy out of (or into) the served file.
    let copy = std::process::Command::new(crate::support::HUSH)
        .args(["copy", "--from"])
        .arg(format!("sqlite:{}", dir.path().join("hush.db").display()))
        .arg("--to")
        .arg(format!("sqlite:{}", dir.path().join("copy.db").display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&copy.stderr);
    assert!(!copy.status.success(), "{stderr}");
    assert!(stderr.contains("is in use by another hush"), "{stderr}");

    // The first still serves, and its writes are read back.
    let client = reqwest::Client::new();
    let add = client
        .post(first.url("/v3/asm/suppressions/global"))
        .json(&json!({"recipient_emails": ["still@example.com"]}));
    assert_eq!(status(add).await, StatusCode::CREATED);
    let read = client.get(first.url("/v3/asm/suppressions/global/still@example.com"));
    assert_eq!(status(read).await, StatusCode::OK);
}

#[cfg(hush_postgres_tests)]
#[tokio::test]
async fn a_write_on_one_postgres_gateway_is_seen_by_the_next_read_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::pg::TempDatabase::create().await;
    let mut gateways = Vec::new();
    for name in ["a", "b"] {
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, crate::pg::config_toml(&db.url)).unwrap();
        gateways.push(Gateway::start(&config, &[]).await);
    }
    let client = reqwest::Client::new();
    for round in 0..20 {
        // Alternate which gateway writes and which reads.
        let (writer, reader) = if round % 2 == 0 {
            (&gateways[0], &gateways[1])
        } else {
            (&gateways[1], &gateways[0])
        };
        let address = format!("coherent{round}@example.com");
        let global = |gw: &Gateway| gw.url(&format!("/v3/asm/suppressions/global/{address}"));
        let bounce = |gw: &Gateway| gw.url(&format!("/v3/suppression/bounces/{address}"));
        for gw in [reader, writer] {
            assert_eq!(status(client.get(global(gw))).await, StatusCode::NOT_FOUND);
            assert_eq!(status(client.get(bounce(gw))).await, StatusCode::NOT_FOUND);
        }

        let add = client
            .post(writer.url("/v3/asm/suppressions/global"))
            .json(&json!({"recipient_emails": [address]}));
        assert_eq!(status(add).await, StatusCode::CREATED);
        let bounced = client
            .post(writer.url("/v3/suppression/bounces"))
            .json(&json!({"email": address, "reason": "550 5.1.1 user unknown"}));
        assert_eq!(status(bounced).await, StatusCode::CREATED);
        for gw in [reader, writer] {
            assert_eq!(
                status(client.get(global(gw))).await,
                StatusCode::OK,
                "round {round}: an added global unsubscribe was not seen"
            );
            assert_eq!(
                status(client.get(bounce(gw))).await,
                StatusCode::OK,
                "round {round}: an added bounce was not seen"
            );
        }

        // The reader removes; the writer must see it gone at once.
        assert_eq!(
            status(client.delete(global(reader))).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            status(client.delete(bounce(reader))).await,
            StatusCode::NO_CONTENT
        );
        for gw in [writer, reader] {
            assert_eq!(
                status(client.get(global(gw))).await,
                StatusCode::NOT_FOUND,
                "round {round}: a removed global unsubscribe was still served"
            );
            assert_eq!(
                status(client.get(bounce(gw))).await,
                StatusCode::NOT_FOUND,
                "round {round}: a removed bounce was still served"
            );
        }
    }
}
