use std::time::Duration;

use actix_http::Payload;
use actix_http::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::test;
use actix_web::web::Bytes;
use hush_engine::ADD_BATCH;
use hush_model::{Email, Kind, KindSet, ListFilter, Origin, Scope, ScopeFilter};
use serde_json::{Value, json};

use crate::support::*;

const BOUNCES_IMPORT: &str = "/v3/suppression/bounces/import";
const SPAM_IMPORT: &str = "/v3/suppression/spam_reports/import";
const GLOBAL_IMPORT: &str = "/v3/asm/suppressions/global/import";

/// Sends a CSV body in the given chunks, optionally failing after them as
/// a connection that drops mid-upload does.
async fn streamed<S, B>(
    app: &S,
    uri: &str,
    chunks: Vec<String>,
    then_fail: bool,
) -> (StatusCode, Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let mut items: Vec<Result<Bytes, PayloadError>> =
        chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
    if then_fail {
        items.push(Err(PayloadError::Incomplete(None)));
    }
    streamed_from(app, uri, Box::pin(futures_util::stream::iter(items))).await
}

/// Sends a CSV body read from a stream, which may still be arriving while
/// the import runs.
async fn streamed_from<S, B>(
    app: &S,
    uri: &str,
    stream: actix_http::BoxedPayloadStream,
) -> (StatusCode, Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let req = test::TestRequest::post()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {WRITER}")))
        .insert_header(("Content-Type", "text/csv"))
        .to_request();
    let (req, _) = req.replace_payload(Payload::from(stream));
    let res = test::call_service(app, req).await;
    let status = res.status();
    let body = test::read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap())
}

#[actix_web::test]
async fn bounce_import_with_header_bom_crlf_and_quotes() {
    let engine = engine();
    let app = app(engine.clone()).await;
    let body = "\u{feff}email,reason\r\n\
                a@example.com,\"550 5.1.1 User unknown, really\"\r\n\
                not-an-email,whatever\r\n\
                \r\n\
                B@Example.com,\"multi\r\nline \"\"quoted\"\" reason\"\r\n\
                ,no email\r\n\
                c@example.com\r\n";
    let (status, report) = call(&app, csv(BOUNCES_IMPORT, WRITER, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["imported"], 3);
    assert_eq!(report["skipped"], 2);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (&errors[0]["row"], &errors[0]["email"]),
        (&json!(3), &json!("not-an-email"))
    );
    assert!(!errors[0]["error"].as_str().unwrap().is_empty());
    assert_eq!(
        (&errors[1]["row"], &errors[1]["email"]),
        (&json!(7), &json!(""))
    );

    let entries = engine
        .entries(&tenant("demo"), &Email::parse("a@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].origin,
        Origin::Recipient,
        "imports are Recipient origin"
    );
    assert_eq!(entries[0].scope, Scope::Global);
    assert_eq!(
        entries[0].kind,
        Kind::Bounce {
            class: hush_model::BounceClass::Hard,
            status: Some("5.1.1".into()),
            reason: Some("550 5.1.1 User unknown, really".into()),
        }
    );
    let (_, b) = call(&app, get("/v3/suppression/bounces/b@example.com", READER)).await;
    assert_eq!(b[0]["reason"], "multi\r\nline \"quoted\" reason");
    let (_, list) = call(&app, get("/v3/suppression/bounces", READER)).await;
    assert_eq!(list["total"], 3);

    // The same file again changes nothing: adds are idempotent.
    let (_, again) = call(&app, csv(BOUNCES_IMPORT, WRITER, body)).await;
    assert_eq!(again["imported"], 3);
    let (_, list) = call(&app, get("/v3/suppression/bounces", READER)).await;
    assert_eq!(list["total"], 3);
}

#[actix_web::test]
async fn the_header_row_is_optional_and_columns_follow_it() {
    let app = app(engine()).await;
    let (status, report) = call(
        &app,
        csv(SPAM_IMPORT, WRITER, "x@example.com,fbl\ny@example.com\n"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report, json!({"imported": 2, "skipped": 0, "errors": []}));
    let (_, x) = call(
        &app,
        get("/v3/suppression/spam_reports/x@example.com", READER),
    )
    .await;
    assert_eq!(x[0]["source"], "fbl");
    // With a header, columns go by name, in any order.
    let (_, report) = call(
        &app,
        csv(
            SPAM_IMPORT,
            WRITER,
            "Source,EMAIL\nabuse-desk,z@example.com",
        ),
    )
    .await;
    assert_eq!(report["imported"], 1);
    let (_, z) = call(
        &app,
        get("/v3/suppression/spam_reports/z@example.com", READER),
    )
    .await;
    assert_eq!(z[0]["source"], "abuse-desk");
    // A first row with other names is data, not a header, and its error is
    // reported: guessing would silently drop a first row like `broken`.
    let (_, report) = call(
        &app,
        csv(SPAM_IMPORT, WRITER, "Recipient,Origin\nw@example.com,fbl\n"),
    )
    .await;
    assert_eq!(report["imported"], 1);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["errors"][0]["row"], 1);
    assert_eq!(report["errors"][0]["email"], "Recipient");
}

#[actix_web::test]
async fn global_import_makes_unsubscribes() {
    let engine = engine();
    let app = app(engine.clone()).await;
    let (status, report) = call(
        &app,
        csv(
            GLOBAL_IMPORT,
            WRITER,
            "email\nu1@example.com\nu2@example.com\nbad@\n",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&report["imported"], &report["skipped"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(report["errors"][0]["row"], 4);
    let (_, list) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(list["total"], 2);
    let entries = engine
        .entries(&tenant("demo"), &Email::parse("u1@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (&entries[0].kind, entries[0].origin),
        (&Kind::Unsubscribe, Origin::Recipient)
    );
}

#[actix_web::test]
async fn imports_refuse_json_bodies_and_read_only_keys() {
    let app = app(engine()).await;
    let json_body = post(BOUNCES_IMPORT, WRITER, &json!({"email": "a@example.com"}));
    let (status, error) = call(&app, json_body).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(assert_envelope(&error, None).contains("text/csv"));
    let (status, error) = call(&app, csv(GLOBAL_IMPORT, READER, "a@example.com\n")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_envelope(&error, None);
    let (_, list) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(list["total"], 0);
    let (status, report) = call(&app, csv(GLOBAL_IMPORT, WRITER, "")).await;
    assert_eq!(
        (status, report),
        (
            StatusCode::OK,
            json!({"imported": 0, "skipped": 0, "errors": []})
        )
    );
}

#[actix_web::test]
async fn a_large_streamed_import_commits_in_batches() {
    let engine = engine();
    let app = app(engine.clone()).await;
    let rows: u64 = 12_345;
    let batches: u64 = 2;
    let committed_early = batches * ADD_BATCH as u64;
    let body: String = std::iter::once("email\n".to_owned())
        .chain((0..rows).map(|n| format!("user{n}@example.com\n")))
        .collect();
    // The rows of the first two batches and the start of the next row: the
    // rest of the body is held back until those batches are seen stored.
    let cut = body.find(&format!("user{committed_early}@")).unwrap() + 8;
    let (head, tail) = body.split_at(cut);
    // Chunk boundaries fall inside rows, as they do on a real socket.
    let chunks = |part: &str| -> Vec<String> {
        part.as_bytes()
            .chunks(1000)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect()
    };
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let payload = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, PayloadError>(Bytes::from(chunk)), receiver))
    });
    let import = streamed_from(&app, GLOBAL_IMPORT, Box::pin(payload));
    let uploader = async {
        for chunk in chunks(head) {
            sender.send(chunk).unwrap();
        }
        // The body is not finished, so whatever is stored now was committed
        // mid-upload. Bounded wait: 1000 polls, 10 ms apart.
        let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
        let mut seen = 0;
        for _ in 0..1000 {
            seen = engine.count(&tenant("demo"), &everything).await.unwrap();
            if seen >= committed_early {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for chunk in chunks(tail) {
            sender.send(chunk).unwrap();
        }
        drop(sender);
        seen
    };
    let ((status, report), seen_mid_upload) = futures_util::join!(import, uploader);
    assert_eq!(
        seen_mid_upload, committed_early,
        "whole batches are stored while the body is still arriving, the rest is not"
    );
    assert!(seen_mid_upload > 0 && seen_mid_upload < rows);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["imported"], rows);
    let (_, list) = call(&app, get("/v3/asm/suppressions/global?limit=1", READER)).await;
    assert_eq!(list["total"], rows);
}

#[actix_web::test]
async fn an_import_cut_off_mid_body_keeps_what_came_and_says_so() {
    let app = app(engine()).await;
    let chunks = vec![
        "email\na@example.com\nb@example.com\n".to_owned(),
        "c@example.com\nd@exam".to_owned(),
    ];
    let (status, error) = streamed(&app, GLOBAL_IMPORT, chunks, true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = assert_envelope(&error, Some("body"));
    assert!(
        message.contains("cut off") && message.contains("3 rows were imported"),
        "{message}"
    );
    let (_, list) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(list["total"], 3, "the whole rows before the cut stay");
    let (status, _) = call(&app, get("/v3/asm/suppressions/global/d@exam", READER)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the half row is not an address"
    );
}

#[actix_web::test]
async fn an_import_over_the_limit_is_413_and_keeps_what_came_before() {
    let app = app_with_import_limit(engine(), 2048).await;
    let chunk = |from: usize| -> String {
        (from..from + 50)
            .map(|n| format!("u{n:04}@example.com\n"))
            .collect()
    };
    // 50 rows of 18 bytes per chunk: the third chunk crosses 2048 bytes,
    // inside row 114 (bytes 2034..2052). The 13 rows of that chunk before
    // the limit are kept too.
    let chunks = vec![chunk(0), chunk(50), chunk(100), chunk(150)];
    let (status, error) = streamed(&app, GLOBAL_IMPORT, chunks, false).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let message = assert_envelope(&error, None);
    assert!(
        message.contains("2048") && message.contains("row 114: 113 rows"),
        "{message}"
    );
    let (_, list) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(list["total"], 113);
}

/// docs/configuration.md: a 413 comes "after the rows before the limit were
/// committed", also when the first chunk is already over the limit.
#[actix_web::test]
async fn one_chunk_over_the_limit_keeps_the_rows_before_the_limit() {
    let app = app_with_import_limit(engine(), 2048).await;
    // 3.7 KB: a header of 6 bytes and 205 rows of 18.
    let body: String = std::iter::once("email\n".to_owned())
        .chain((0..205).map(|n| format!("u{n:04}@example.com\n")))
        .collect();
    assert!(body.len() > 3600);
    let (status, error) = streamed(&app, GLOBAL_IMPORT, vec![body], false).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // (2048 - 6) / 18 = 113 whole rows, on lines 2..=114; line 115 is cut.
    let message = assert_envelope(&error, None);
    assert!(message.contains("row 115: 113 rows"), "{message}");
    let (_, list) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(list["total"], 113);
    let (status, _) = call(
        &app,
        get("/v3/asm/suppressions/global/u0112@example.com", READER),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the last whole row is in");
    let (status, _) = call(
        &app,
        get("/v3/asm/suppressions/global/u0113@example.com", READER),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the cut row is not");
}

/// Row numbers count lines as the parser ends records: bare CRs too.
#[actix_web::test]
async fn row_numbers_follow_bare_cr_line_endings() {
    let app = app(engine()).await;
    let (status, report) = call(
        &app,
        csv(GLOBAL_IMPORT, WRITER, "email\rbad\rok9@example.com\rbad2\r"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 1);
    assert_eq!(report["skipped"], 2);
    let rows: Vec<&Value> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["row"])
        .collect();
    assert_eq!(rows, [&json!(2), &json!(4)], "{report}");
}

/// A NUL character is refused in every text field, as PostgreSQL cannot
/// store one: a 400 naming the field for a JSON body, and the row alone
/// for an import, whose other rows are kept.
#[actix_web::test]
async fn nul_characters_are_refused_naming_the_field_and_imports_keep_the_other_rows() {
    let engine = engine();
    let app = app(engine.clone()).await;
    let cases = [
        (
            "/v3/suppression/bounces",
            json!({"email": "a@example.com", "reason": "550\u{0}x"}),
            "reason",
        ),
        (
            "/v3/suppression/bounces",
            json!({"email": "a@example.com", "status": "5.1\u{0}.1"}),
            "status",
        ),
        (
            "/v3/suppression/spam_reports",
            json!({"email": "a@example.com", "source": "f\u{0}bl"}),
            "source",
        ),
        (
            "/v3/suppression/bounces",
            json!({"email": "a\u{0}@example.com"}),
            "email",
        ),
        (
            "/v3/asm/groups",
            json!({"name": "N\u{0}ews", "description": "d"}),
            "name",
        ),
        (
            "/v3/asm/groups",
            json!({"name": "News", "description": "d\u{0}"}),
            "description",
        ),
    ];
    for (path, body, field) in cases {
        let (status, error) = call(&app, post(path, WRITER, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {error}");
        assert_envelope(&error, Some(field));
    }
    let mut rows = String::from("email,reason\n");
    for n in 0..200 {
        let reason = if n == 99 {
            "550 \u{0} nul"
        } else {
            "550 unknown"
        };
        rows.push_str(&format!("r{n}@example.com,{reason}\n"));
    }
    let (status, report) = call(&app, csv(BOUNCES_IMPORT, WRITER, &rows)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 199, "{report}");
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["errors"][0]["row"], 101, "the header is row 1");
    assert!(
        report["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("NUL"),
        "{report}"
    );
}

/// The reply's error list is bounded in bytes, not only in count: values
/// are echoed cut to 254 characters, and listing stops at 256 KiB, while
/// `skipped` counts every bad row.
#[actix_web::test]
async fn the_error_list_is_bounded_in_bytes() {
    let app = app_with_import_limit(engine(), 1 << 30).await;
    let huge = "x".repeat(60_000);
    let mut rows = String::from("email,reason\n");
    for n in 0..1_100 {
        rows.push_str(&format!("{n}{huge},r\n"));
    }
    let req = csv(BOUNCES_IMPORT, WRITER, &rows);
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = test::read_body(res).await;
    assert!(
        bytes.len() <= 300 * 1024,
        "a reply of {} bytes",
        bytes.len()
    );
    let report: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(report["imported"], 0);
    assert_eq!(report["skipped"], 1_100, "every bad row is counted");
    let errors = report["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    for error in errors {
        assert!(
            error["email"].as_str().unwrap().chars().count() <= 255,
            "{error}"
        );
        assert!(
            error["error"].as_str().unwrap().chars().count() <= 255,
            "{error}"
        );
    }
}

/// A body that declares a length over the limit is refused before any of
/// it is read: nothing is imported.
#[actix_web::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let app = app_with_import_limit(engine(), 2048).await;
    let body: String = (0..205).map(|n| format!("u{n:04}@example.com\n")).collect();
    let req =
        csv(GLOBAL_IMPORT, WRITER, &body).insert_header(("Content-Length", body.len().to_string()));
    let (status, error) = call(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert!(assert_envelope(&error, None).contains("2048"));
    let (_, list) = call(&app, get("/v3/asm/suppressions/global", READER)).await;
    assert_eq!(list["total"], 0, "nothing was imported");
}
