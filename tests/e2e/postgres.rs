//! The gateway on PostgreSQL: switched by one setting, the bounce slice end
//! to end, data surviving a restart; and the start-up checks of the
//! PostgreSQL settings (which need no server).

use crate::support::*;

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hush.toml");
    std::fs::write(&config, config_toml(dir.path())).unwrap();
    (dir, config)
}

#[test]
fn postgres_settings_are_checked_at_start_naming_the_key() {
    let (_dir, config) = setup();
    let pg = ("HUSH_STORAGE__BACKEND", "postgres");
    let url = ("HUSH_STORAGE__URL", "postgres://hush@127.0.0.1:1/hush");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[pg], "storage.url"),
        (
            &[pg, ("HUSH_STORAGE__URL", "mysql://root:s3cret@db/hush")],
            "storage.url",
        ),
        (
            &[pg, url, ("HUSH_STORAGE__POOL_SIZE", "0")],
            "storage.pool_size",
        ),
        (
            &[pg, url, ("HUSH_STORAGE__CONNECT_TIMEOUT_SECS", "0")],
            "storage.connect_timeout_secs",
        ),
    ];
    for (env, key) in cases {
        let (code, stderr) = refused_start(Some(&config), env);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
        assert!(
            !stderr.contains("s3cret"),
            "the password stays out: {stderr}"
        );
    }
}

#[test]
fn an_unreachable_database_stops_the_start_naming_it() {
    let (_dir, config) = setup();
    let (code, stderr) = refused_start(
        Some(&config),
        &[
            ("HUSH_STORAGE__BACKEND", "postgres"),
            (
                "HUSH_STORAGE__URL",
                "postgres://hush:s3cret@127.0.0.1:1/hush",
            ),
            ("HUSH_STORAGE__CONNECT_TIMEOUT_SECS", "2"),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("127.0.0.1:1/hush"), "{stderr}");
    assert!(
        !stderr.contains("s3cret"),
        "the password stays out: {stderr}"
    );
}

#[cfg(hush_postgres_tests)]
mod with_server {
    use super::*;
    use crate::pg::TempDatabase;
    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use sqlx::Row as _;

    async fn list(client: &reqwest::Client, gw: &Gateway, query: &str) -> Value {
        let res = client
            .get(gw.url(&format!("/v3/suppression/bounces{query}")))
            .header("Authorization", bearer("demo-v3-key"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// The SQLite config of the other end-to-end tests, switched to
    /// PostgreSQL by environment alone.
    #[tokio::test]
    async fn the_bounce_walkthrough_on_postgres_survives_a_restart() {
        let (dir, config) = setup();
        let db = TempDatabase::create().await;
        let env = [
            ("HUSH_STORAGE__BACKEND", "postgres"),
            ("HUSH_STORAGE__URL", db.url.as_str()),
        ];
        let client = reqwest::Client::new();
        let mut gw = Gateway::start(&config, &env).await;
        let res = client
            .post(gw.url("/v3/suppression/bounces"))
            .header("Authorization", bearer("demo-v3-key"))
            .json(&json!({"email": "walk+through@example.com", "reason": "550 5.1.1 User unknown"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let record: Value = res.json().await.unwrap();
        assert_eq!(record["status"], "5.1.1");
        let created = record["created"].as_i64().unwrap();
        assert_eq!(list(&client, &gw, "").await["total"], 1);
        let window = list(
            &client,
            &gw,
            &format!("?start_time={created}&end_time={created}&email=WALK%2Bthrough"),
        )
        .await;
        assert_eq!(window["bounces"][0], record, "filtered by time and prefix");
        let outside = list(&client, &gw, &format!("?end_time={}", created - 1)).await;
        assert_eq!(outside["total"], 0);

        assert_eq!(gw.terminate().code(), Some(0), "SIGTERM is a clean stop");
        assert!(
            !dir.path().join("hush.db").exists(),
            "nothing went to the SQLite file of the config"
        );
        let mut conn = db.connection().await;
        let rows: i64 = sqlx::query("SELECT count(*) FROM suppressions WHERE tenant = 'demo'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1, "the entry is in PostgreSQL");

        let gw = Gateway::start(&config, &env).await;
        let after = list(&client, &gw, "").await;
        assert_eq!(
            after["bounces"][0], record,
            "the same record after a restart"
        );
        let res = client
            .delete(gw.url("/v3/suppression/bounces/walk+through@example.com"))
            .header("Authorization", bearer("demo-v3-key"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(list(&client, &gw, "").await["total"], 0);
        let ready = client.get(gw.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
    }

    /// The database ends every session of hush (a failover, a restart of
    /// the server, an administrator): the next requests are served on new
    /// connections, and the data is there.
    #[tokio::test]
    async fn lost_connections_are_replaced() {
        let (_dir, config) = setup();
        let db = TempDatabase::create().await;
        let env = [
            ("HUSH_STORAGE__BACKEND", "postgres"),
            ("HUSH_STORAGE__URL", db.url.as_str()),
        ];
        let client = reqwest::Client::new();
        let gw = Gateway::start(&config, &env).await;
        let res = client
            .post(gw.url("/v3/suppression/bounces"))
            .header("Authorization", bearer("demo-v3-key"))
            .json(&json!({"email": "kept@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let mut conn = db.connection().await;
        let ended: i64 = sqlx::query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'hush' \
               AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
        assert!(ended > 0, "hush had connections to end");
        // Termination is a signal: wait until those sessions are gone, so
        // that what follows meets closed connections, not dying ones.
        for _ in 0..100 {
            let left: i64 = sqlx::query(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = 'hush' \
                   AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        for _ in 0..3 {
            assert_eq!(list(&client, &gw, "").await["total"], 1);
        }
        let ready = client.get(gw.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
    }
}

/// Stands in for the PostgreSQL end-to-end tests when no server is named,
/// so that the run says they were skipped.
#[cfg(not(hush_postgres_tests))]
#[test]
#[ignore = "PostgreSQL tests skipped: HUSH_TEST_POSTGRES_URL is not set"]
fn postgres_e2e_tests_skipped() {
    panic!(
        "set HUSH_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) \
         to run the PostgreSQL tests"
    );
}
