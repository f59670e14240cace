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
    /// Record metrics and serve `/metrics`. Off by default: recording
    /// costs the lookup path a few hundredths of its rate on the bench
    /// machine (docs/benchmarks.md, "Metrics").
    pub enabled: bool,
    /// Serve `/metrics` on this address only, and not on the main
    /// listener; unset: on the main listener.
    pub listen: Option<std::net::SocketAddr>,
}

/// Whether requests are measured: set once, when the recorder is
/// installed.
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether metrics are being recorded.
pub fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
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
    let handle = HANDLE.get_or_init(|| handle);
    ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    // The recorder keeps each histogram's samples until they are folded
    // into its buckets: by a scrape, or by this upkeep, without which an
    // unscraped instance would grow without bound (the exporter's
    // `PrometheusHandle::run_upkeep`).
    std::thread::Builder::new()
        .name("hush-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                handle.run_upkeep();
            }
        })?;
    Ok(handle)
}

/// How often histogram samples are folded into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

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

/// A request as the histogram cache knows it: its path with each matched
/// parameter (an address, a group id) replaced, its method and status.
/// Only ever a key, never a label.
type Shape = (String, &'static str, u16);

/// Most shapes a worker thread remembers. A matched route has one shape per
/// method and status; a path no route matched is its own shape, so a
/// client sending many such paths would fill the cache, past which they
/// are measured the slow way and not remembered.
const SHAPES: usize = 4_096;

/// The method as a label: the known ones by name, any other `_OTHER`
/// (OpenTelemetry's rule), so that a client inventing methods cannot
/// invent series.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|known| **known == method.as_str())
        .copied()
        .unwrap_or("_OTHER")
}

thread_local! {
    /// Each worker thread's histogram handles by request shape. Finding a
    /// route's template (`HttpRequest::match_pattern`) walks the router
    /// again, and building labels and looking them up in the recorder is
    /// more work still: per request, that cost the lookup benchmark's
    /// ratios several hundredths (docs/benchmarks.md). A shape costs a
    /// string and a hash.
    static SERIES: std::cell::RefCell<std::collections::HashMap<Shape, metrics::Histogram>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
    static ACTIVE: std::cell::RefCell<std::collections::HashMap<&'static str, metrics::Gauge>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The path with each matched parameter's segment replaced by a NUL, in
/// the parameters' order.
fn shape_of(request: &actix_web::HttpRequest) -> String {
    let info = request.match_info();
    let mut values = info.iter().map(|(_, value)| value).peekable();
    let mut shape = String::with_capacity(request.path().len());
    for (n, segment) in request.path().split('/').enumerate() {
        if n > 0 {
            shape.push('/');
        }
        let decoded = if segment.contains('%') {
            percent_encoding::percent_decode_str(segment).decode_utf8_lossy()
        } else {
            std::borrow::Cow::Borrowed(segment)
        };
        if values.peek().is_some_and(|value| *value == decoded) {
            values.next();
            shape.push('\0');
        } else {
            shape.push_str(segment);
        }
    }
    shape
}

fn histogram_for(
    request: &actix_web::HttpRequest,
    method: &'static str,
    status: u16,
) -> metrics::Histogram {
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "UNMATCHED".to_owned());
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "api" => api_of(request.path()),
        "http_route" => route,
        "http_request_method" => method,
        "http_response_status_code" => status.to_string()
    )
}

fn active(api: &'static str) -> metrics::Gauge {
    ACTIVE.with(|active| {
        active
            .borrow_mut()
            .entry(api)
            .or_insert_with(|| metrics::gauge!("http_server_active_requests", "api" => api))
            .clone()
    })
}

/// Counts a request in flight until dropped.
pub struct InFlight(metrics::Gauge);

impl InFlight {
    pub fn start(path: &str) -> Self {
        let gauge = active(api_of(path));
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Records a served request's duration under its route's template.
pub fn record<B>(res: &ServiceResponse<B>, seconds: f64) {
    let request = res.request();
    let shape = (
        shape_of(request),
        method_label(request.method()),
        res.status().as_u16(),
    );
    SERIES.with(|known| {
        let mut known = known.borrow_mut();
        if let Some(histogram) = known.get(&shape) {
            histogram.record(seconds);
            return;
        }
        let histogram = histogram_for(request, shape.1, shape.2);
        histogram.record(seconds);
        if known.len() < SHAPES {
            known.insert(shape, histogram);
        }
    });
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

    #[test]
    fn a_shape_hides_each_parameter_once_in_order() {
        use actix_web::test::TestRequest;
        let grouped = TestRequest::with_uri("/v3/asm/groups/7/suppressions/a%40b.io")
            .param("group_id", "7")
            .param("email", "a@b.io")
            .to_http_request();
        assert_eq!(
            super::shape_of(&grouped),
            "/v3/asm/groups/\0/suppressions/\0"
        );
        let stream = TestRequest::with_uri("/message-streams/suppressions/suppressions")
            .param("stream", "suppressions")
            .to_http_request();
        assert_eq!(super::shape_of(&stream), "/message-streams/\0/suppressions");
        let unmatched = TestRequest::with_uri("/no/such").to_http_request();
        assert_eq!(super::shape_of(&unmatched), "/no/such");
    }

    #[test]
    fn invented_methods_are_one_label() {
        use actix_web::http::Method;
        assert_eq!(super::method_label(&Method::GET), "GET");
        assert_eq!(
            super::method_label(&Method::from_bytes(b"BREW").expect("a valid token")),
            "_OTHER"
        );
    }
}
