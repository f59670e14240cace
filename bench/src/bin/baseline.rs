//! The lookup baseline: a minimal actix-web handler answering from an
//! in-memory `HashMap`, serving the same paths as hush so that one wrk
//! script drives both. It holds `user0..user{rows-1}@bench.example.com`,
//! the addresses the benchmark loads into hush.
//!
//! ```text
//! bench-baseline <port> <rows> <workers>
//! ```

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::HashMap;

use actix_web::{App, HttpResponse, HttpServer, web};

/// When each address was listed, as hush would answer it.
type Listed = HashMap<String, i64>;

async fn lookup(email: web::Path<String>, listed: web::Data<Listed>) -> HttpResponse {
    match listed.get(email.as_str()) {
        Some(created) => HttpResponse::Ok()
            .json(serde_json::json!({"recipient_email": email.as_str(), "created": created})),
        None => {
            HttpResponse::NotFound().json(serde_json::json!({"errors": [{"message": "not found"}]}))
        }
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8090);
    let rows: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let listed: Listed = (0..rows)
        .map(|n| {
            (
                format!("user{n}@bench.example.com"),
                1_700_000_000 + n as i64,
            )
        })
        .collect();
    let listed = web::Data::new(listed);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(listed.clone())
            .route("/v3/asm/suppressions/global/{email}", web::get().to(lookup))
            .route("/v3/suppression/bounces/{email}", web::get().to(lookup))
    })
    .bind(("127.0.0.1", port))?;
    if workers > 0 {
        server = server.workers(workers);
    }
    println!("baseline ready on 127.0.0.1:{port} with {rows} addresses");
    server.run().await
}
