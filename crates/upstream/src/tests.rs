#![allow(clippy::unwrap_used)]

use super::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn settings(server: &MockServer, max_attempts: u32) -> UpstreamSettings {
    UpstreamSettings {
        base_url: server.uri(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(1),
        retry: RetrySettings {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(20),
        },
    }
}

async fn get(upstream: &Upstream) -> Result<Answer, EngineError> {
    let url = upstream.url("/thing");
    upstream
        .send(Idempotency::Idempotent, |c| c.get(&url))
        .await
}

async fn post(upstream: &Upstream) -> Result<Answer, EngineError> {
    let url = upstream.url("/thing");
    upstream
        .send(Idempotency::NotIdempotent, |c| c.post(&url).body("{}"))
        .await
}

#[tokio::test]
async fn idempotent_calls_are_retried_on_5xx_up_to_the_cap() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/thing"))
        .respond_with(ResponseTemplate::new(503).insert_header("x-request-id", "req-9"))
        .expect(3)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 3)).unwrap();
    let err = get(&upstream).await.unwrap_err();
    match err {
        EngineError::Upstream {
            status, request_id, ..
        } => {
            assert_eq!(status, Some(503));
            assert_eq!(request_id.as_deref(), Some("req-9"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_retry_that_succeeds_returns_the_answer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[1]"))
        .expect(1)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 5)).unwrap();
    let answer: Vec<u32> = upstream
        .json(Idempotency::Idempotent, |c| c.get(upstream.url("/x")))
        .await
        .unwrap();
    assert_eq!(answer, vec![1]);
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried_on_5xx() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 5)).unwrap();
    let err = post(&upstream).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Upstream {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(422).set_body_string(r#"{"ErrorCode":1}"#))
        .expect(1)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 5)).unwrap();
    let err = get(&upstream).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Upstream {
                status: Some(422),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_time_budget_ends_the_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 5)).unwrap();
    let err = get(&upstream).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Upstream {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn timeouts_are_retried_then_reported_as_timeouts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(2)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 2)).unwrap();
    let err = get(&upstream).await.unwrap_err();
    assert!(
        matches!(err, EngineError::UpstreamTimeout { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_non_idempotent_call_that_timed_out_is_not_sent_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 4)).unwrap();
    let err = post(&upstream).await.unwrap_err();
    assert!(
        matches!(err, EngineError::UpstreamTimeout { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_answer_off_the_wire_format_is_an_error_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 1)).unwrap();
    let err = upstream
        .json::<Vec<u32>>(Idempotency::Idempotent, |c| c.get(upstream.url("/x")))
        .await
        .unwrap_err();
    match err {
        EngineError::Upstream { status, detail, .. } => {
            assert_eq!(status, Some(200));
            assert!(detail.contains("wire format"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_bad_gateway() {
    // A port nobody listens on: bind, note it, drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = Upstream::new(
        "upstream-test",
        UpstreamSettings {
            base_url: format!("http://127.0.0.1:{port}"),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            retry: RetrySettings {
                max_attempts: 2,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
                max_elapsed: Duration::from_secs(5),
            },
        },
    )
    .unwrap();
    let err = post(&upstream).await.unwrap_err();
    match err {
        EngineError::Upstream { status, detail, .. } => {
            assert_eq!(status, None);
            assert!(detail.contains("2 attempt"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

fn with_retry_after(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, value.parse().unwrap());
    headers
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    assert_eq!(
        retry_after(&with_retry_after("7")),
        Some(Duration::from_secs(7))
    );
    // An HTTP-date two minutes after "now".
    let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    assert_eq!(
        retry_after_at(&with_retry_after("Sun, 06 Nov 1994 08:51:37 GMT"), now),
        Some(Duration::from_secs(120))
    );
    // A date in the past: retry now.
    assert_eq!(
        retry_after(&with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT")),
        Some(Duration::ZERO)
    );
    assert_eq!(retry_after(&with_retry_after("soon")), None);
    assert_eq!(retry_after(&HeaderMap::new()), None);
}

#[test]
fn retry_after_replaces_the_backoff_within_the_budget() {
    let status = |after: Option<u64>| Failure::Status {
        status: StatusCode::TOO_MANY_REQUESTS,
        retry_after: after.map(Duration::from_secs),
        request_id: None,
        body: String::new(),
    };
    let backoff = Some(Duration::from_millis(200));
    let budget = Duration::from_secs(30);
    // The provider's wait wins over ours.
    assert_eq!(
        next_wait(&status(Some(3)), backoff, Duration::ZERO, budget),
        Some(Duration::from_secs(3))
    );
    // Without one, ours.
    assert_eq!(
        next_wait(&status(None), backoff, Duration::ZERO, budget),
        backoff
    );
    // Attempts used up: no retry, whatever the provider says.
    assert_eq!(
        next_wait(&status(Some(3)), None, Duration::ZERO, budget),
        None
    );
    // A wait that would end past the budget: no retry.
    assert_eq!(
        next_wait(&status(Some(3)), backoff, Duration::from_secs(28), budget),
        None
    );
    assert_eq!(
        next_wait(
            &Failure::Timeout("t".into()),
            backoff,
            Duration::from_secs(29),
            budget
        ),
        Some(Duration::from_millis(200))
    );
}

#[tokio::test]
async fn a_provider_that_answers_anything_is_reachable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&server, 3)).unwrap();
    upstream.reachable().await.unwrap();
}

#[tokio::test]
async fn a_provider_that_does_not_answer_is_unavailable() {
    // A listener that never accepts: the connection is made (the kernel's
    // backlog), the request is sent, and no answer comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let upstream = Upstream::new(
        "upstream-test",
        UpstreamSettings {
            base_url: format!("http://127.0.0.1:{port}"),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(300),
            retry: RetrySettings::default(),
        },
    )
    .unwrap();
    let err = upstream.reachable().await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Unavailable {
                backend: "upstream-test",
                ..
            }
        ),
        "{err:?}"
    );
    drop(silent);
}

/// A provider that answers with a redirect to another host gets no second
/// request there: the credentials in provider-specific headers would
/// follow it (reqwest strips only the standard auth headers).
#[tokio::test]
async fn redirects_are_not_followed_so_credentials_stay_with_the_provider() {
    let provider = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/thing"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/stolen", elsewhere.uri()).as_str()),
        )
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let upstream = Upstream::new("upstream-test", settings(&provider, 1)).unwrap();
    let url = upstream.url("/thing");
    let err = upstream
        .send(Idempotency::Idempotent, |c| {
            c.get(&url)
                .header("X-Postmark-Server-Token", "secret-token")
        })
        .await
        .unwrap_err();
    match err {
        EngineError::Upstream { status, .. } => assert_eq!(status, Some(302)),
        other => panic!("{other:?}"),
    }
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[test]
fn only_cleartext_to_another_machine_is_flagged() {
    for flagged in [
        "http://api.example.com",
        "http://10.1.2.3:8080/x",
        "http://[2001:db8::1]/",
    ] {
        assert!(sends_credentials_in_clear(flagged), "{flagged}");
    }
    for fine in [
        "https://api.postmarkapp.com",
        "http://127.0.0.1:9000",
        "http://localhost:8080",
        "http://[::1]:8080",
        "http://hush.localhost",
    ] {
        assert!(!sends_credentials_in_clear(fine), "{fine}");
    }
}
