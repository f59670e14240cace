//! Prometheus metrics (docs/operations.md, "Metrics"): the recorder every
//! crate writes to through the `metrics` facade, the HTTP families, and
//! `GET /metrics`.
//!
//! Names follow OpenTelemetry's HTTP conventions as Prometheus spells them
//! (`http_server_request_duration_seconds`, `http_server_active_requests`;
//! research/operations.md §4.1); hush's own families start with `hush_`.
//! No label ever holds a raw path: a path may carry an address. Routes are
//! their templates (`/v3/suppression/bounces/{email}`), and a request that
//! matched no route is `UNMATCHED`.

use std::sync::OnceLock;

use actix_web::dev::ServiceResponse;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

/// `[metrics]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` on this address only, and not on the main
    /// listener; unset: on the main listener.
    pub listen: Option<std::net::SocketAddr>,
}

/// OpenTelemetry's advised buckets for `http.server.request.duration`.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder, once; later calls return the same.
pub fn install() -> anyhow::Result<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_server_request_duration_seconds".into()),
            &DURATION_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    Ok(HANDLE.get_or_init(|| handle))
}

/// Every family's help text, so that `/metrics` says what each is.
fn describe() {
    metrics::describe_histogram!(
        "http_server_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to serve a request, by API, route template, method and status."
    );
    metrics::describe_gauge!(
        "http_server_active_requests",
        "Requests being served now, by API."
    );
    metrics::describe_counter!(
        "hush_webhook_events_total",
        "Webhook events received, by provider and outcome (recorded, ignored, duplicate)."
    );
    metrics::describe_counter!(
        "hush_webhook_deliveries_refused_total",
        "Webhook deliveries answered 4xx (unverified, stale, unreadable), by provider."
    );
    metrics::describe_counter!(
        "hush_mirror_changes_total",
        "Journal entries a mirror dealt with, by tenant, mirror and outcome (pushed, refused, skipped)."
    );
    metrics::describe_counter!(
        "hush_mirror_step_failures_total",
        "Mirror steps stopped by a temporary failure of the provider, by tenant and mirror."
    );
    metrics::describe_gauge!(
        "hush_mirror_position",
        "The last journal position a mirror has dealt with, by tenant and mirror."
    );
}

/// Which API a path belongs to, for the `api` label.
fn api_of(path: &str) -> &'static str {
    const APIS: [(&str, &str); 5] = [
        ("/v3/", "v3"),
        ("/message-streams", "postmark"),
        ("/api/v1/", "sendpost"),
        ("/admin/", "admin"),
        ("/webhooks/", "webhooks"),
    ];
    APIS.iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or("gateway", |(_, api)| api)
}

/// Counts a request in flight until dropped.
pub struct InFlight(&'static str);

impl InFlight {
    pub fn start(path: &str) -> Self {
        let api = api_of(path);
        metrics::gauge!("http_server_active_requests", "api" => api).increment(1.0);
        Self(api)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("http_server_active_requests", "api" => self.0).decrement(1.0);
    }
}

/// Records a served request's duration under its route's template.
pub fn record<B>(res: &ServiceResponse<B>, seconds: f64) {
    let request = res.request();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "UNMATCHED".to_owned());
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "api" => api_of(request.path()),
        "http_route" => route,
        "http_request_method" => request.method().as_str().to_owned(),
        "http_response_status_code" => res.status().as_u16().to_string()
    )
    .record(seconds);
}

/// `GET /metrics`: the Prometheus text format.
pub async fn serve(handle: web::Data<&'static PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// The server of `metrics.listen`: `/metrics` and nothing else (any other
/// path is a JSON 404).
pub fn listener(addr: std::net::SocketAddr) -> anyhow::Result<actix_web::dev::Server> {
    use anyhow::Context as _;
    let handle = install()?;
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(web::Data::new(handle))
            .route("/metrics", web::get().to(serve))
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(serde_json::json!({
                    "message": "this listener serves only GET /metrics"
                }))
            }))
    })
    .workers(1)
    .bind(addr)
    .with_context(|| format!("binding metrics.listen {addr}"))?;
    for bound in server.addrs() {
        tracing::info!(addr = %bound, "serving /metrics");
    }
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    use super::api_of;

    #[test]
    fn paths_name_their_api() {
        assert_eq!(api_of("/v3/suppression/bounces"), "v3");
        assert_eq!(
            api_of("/message-streams/outbound/suppressions/dump"),
            "postmark"
        );
        assert_eq!(api_of("/api/v1/subaccount/suppression"), "sendpost");
        assert_eq!(api_of("/admin/v1/tenants"), "admin");
        assert_eq!(api_of("/webhooks/sendgrid/main"), "webhooks");
        assert_eq!(api_of("/readyz"), "gateway");
        assert_eq!(api_of("/v3x"), "gateway");
    }
}
