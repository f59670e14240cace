//! PostgreSQL set-up errors, which need no server.

use std::time::Duration;

use hush_engine::EngineError;
use hush_store::{PostgresBackend, PostgresOptions};

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_named() {
    // Port 1 on the loopback: nothing listens there, the refusal is immediate.
    let mut options = PostgresOptions::from_url("postgres://hush:s3cret@127.0.0.1:1/hush").unwrap();
    options.connect_timeout = Duration::from_secs(2);
    let err = PostgresBackend::connect(options).await.unwrap_err();
    assert!(matches!(err, EngineError::Unavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1/hush"), "{message}");
    assert!(
        !message.contains("s3cret"),
        "the password stays out: {message}"
    );
}

#[test]
fn urls_are_checked_without_echoing_them() {
    let err = PostgresOptions::from_url("mysql://root:s3cret@db/hush").unwrap_err();
    assert!(!err.contains("s3cret"), "{err}");
    let options = PostgresOptions::from_url("postgres://u:s3cret@db.example:6432/hush").unwrap();
    assert_eq!(options.location(), "db.example:6432/hush");
    assert!(!format!("{options:?}").contains("s3cret"));
}
