//! HTTP request telemetry for every actix server in the process: one process-wide registry of
//! request latency histograms, filled by the [`http_metrics`] middleware and rendered as
//! Prometheus text by the node's `/metrics` (one metrics endpoint per process).
//!
//! Label cardinality is bounded by construction: the service is a static name, the route is the
//! matched pattern (`/v1/wallets/{wallet_id}`, never the raw path; `unmatched` when no route
//! matched), the method is one of the standard ones or `other`, the status a number; and the
//! registry holds at most [`MAX_SERIES`] label sets (requests beyond are not recorded). It never
//! sees a request body, a query string or a path parameter's value.

use actix_web::Error;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

/// The request-latency histogram's name.
pub const HTTP_REQUEST_DURATION: &str = "cbdc_http_request_duration_seconds";

/// Metric names this module renders (checked against the deployment's alerts and dashboards).
pub const RENDERED_METRICS: &[&str] = &[HTTP_REQUEST_DURATION];

/// Upper bounds of the latency buckets, in microseconds.
pub const BUCKETS_MICROS: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// Most label sets kept.
pub const MAX_SERIES: usize = 2_048;

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    service: &'static str,
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Copy, Default)]
struct Histogram {
    /// Requests at or below each bound of [`BUCKETS_MICROS`] (cumulative).
    cumulative: [u64; BUCKETS_MICROS.len()],
    count: u64,
    sum_micros: u64,
}

static REGISTRY: Mutex<BTreeMap<Key, Histogram>> = Mutex::new(BTreeMap::new());

fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method.as_str()).unwrap_or("other")
}

/// Records one request of `service` that matched `route` (a pattern; `None` if no route).
pub fn record(
    service: &'static str,
    route: Option<&str>,
    method: &Method,
    status: u16,
    elapsed: Duration,
) {
    let key = Key {
        service,
        route: route.unwrap_or(UNMATCHED).to_string(),
        method: method_label(method),
        status,
    };
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    // A poisoned lock only means another thread panicked while recording: the counts are
    // still usable, and telemetry must never take a request down.
    let mut registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if registry.len() >= MAX_SERIES && !registry.contains_key(&key) {
        return;
    }
    let h = registry.entry(key).or_default();
    for (bound, bucket) in BUCKETS_MICROS.iter().zip(h.cumulative.iter_mut()) {
        if micros <= *bound {
            *bucket = bucket.saturating_add(1);
        }
    }
    h.count = h.count.saturating_add(1);
    h.sum_micros = h.sum_micros.saturating_add(micros);
}

/// `micros` as decimal seconds, without trailing zeros (`25000` → `0.025`, `1000000` → `1`).
pub fn micros_as_seconds(micros: u64) -> String {
    let text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Escapes a label value for the Prometheus text format.
pub fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The registry as Prometheus text (format 0.0.4): HELP and TYPE once, then every label set in
/// order (service, route, method, status).
pub fn render() -> String {
    let registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let name = HTTP_REQUEST_DURATION;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP {name} HTTP request latency by service, route and status.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (key, h) in &registry {
        let labels = format!(
            "service=\"{}\",route=\"{}\",method=\"{}\",status=\"{}\"",
            key.service,
            escape_label(&key.route),
            key.method,
            key.status
        );
        for (bound, n) in BUCKETS_MICROS.iter().zip(h.cumulative) {
            let le = micros_as_seconds(*bound);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", micros_as_seconds(h.sum_micros));
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
    }
    out
}

/// Middleware recording every request's latency for `service` (`node`, `central_bank_api`,
/// `bank_api`): `App::new().wrap(cbdc_service::telemetry::http_metrics("bank_api"))`.
pub fn http_metrics(service: &'static str) -> HttpMetrics {
    HttpMetrics { service }
}

/// See [`http_metrics`].
#[derive(Debug, Clone, Copy)]
pub struct HttpMetrics {
    service: &'static str,
}

impl<S, B> Transform<S, ServiceRequest> for HttpMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = HttpMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, inner: S) -> Self::Future {
        ready(Ok(HttpMetricsService { inner, service: self.service }))
    }
}

/// The service [`HttpMetrics`] wraps around an application.
#[derive(Debug)]
pub struct HttpMetricsService<S> {
    inner: S,
    service: &'static str,
}

type ResponseFuture<B> = Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, Error>>>>;

impl<S, B> Service<ServiceRequest> for HttpMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = ResponseFuture<B>;

    forward_ready!(inner);

    #[allow(clippy::disallowed_methods, reason = "request latency is real elapsed time")]
    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let service = self.service;
        // The route is known only once the router has matched the request: it is read from
        // the response's request, never from the raw path.
        let response = self.inner.call(req);
        Box::pin(async move {
            let result = response.await;
            let (route, status) = match &result {
                Ok(res) => (res.request().match_pattern(), res.status().as_u16()),
                Err(e) => (None, e.as_response_error().status_code().as_u16()),
            };
            record(service, route.as_deref(), &method, status, started.elapsed());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as actix_test;
    use actix_web::{App, HttpResponse, web};

    #[test]
    fn seconds_are_decimal_text() {
        assert_eq!(micros_as_seconds(5_000), "0.005");
        assert_eq!(micros_as_seconds(25_000), "0.025");
        assert_eq!(micros_as_seconds(1_000_000), "1");
        assert_eq!(micros_as_seconds(2_500_000), "2.5");
        assert_eq!(micros_as_seconds(0), "0");
        assert_eq!(micros_as_seconds(1_234_567), "1.234567");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[actix_web::test]
    async fn the_middleware_labels_by_route_pattern_never_by_raw_path() {
        let app = actix_test::init_service(
            App::new()
                .wrap(http_metrics("telemetry_test"))
                .route(
                    "/v1/things/{thing_id}",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                )
                .default_service(web::to(|| async { HttpResponse::NotFound().finish() })),
        )
        .await;
        for path in ["/v1/things/secret-1", "/v1/things/secret-2", "/nowhere/secret-3"] {
            let req = actix_test::TestRequest::get().uri(path).to_request();
            let _ = actix_test::call_service(&app, req).await;
        }
        let req = actix_test::TestRequest::with_uri("/v1/things/x")
            .method(Method::from_bytes(b"BREW").unwrap_or(Method::GET))
            .to_request();
        let _ = actix_test::call_service(&app, req).await;
        let text = render();
        let routed = "service=\"telemetry_test\",route=\"/v1/things/{thing_id}\",method=\"GET\",\
                      status=\"200\"";
        assert!(text.contains(&format!("{HTTP_REQUEST_DURATION}_count{{{routed}}} 2\n")), "{text}");
        let unmatched =
            "service=\"telemetry_test\",route=\"unmatched\",method=\"GET\",status=\"404\"";
        assert!(text.contains(&format!("{HTTP_REQUEST_DURATION}_count{{{unmatched}}} 1\n")));
        assert!(text.contains(
            "service=\"telemetry_test\",route=\"/v1/things/{thing_id}\",method=\"other\""
        ));
        assert!(!text.contains("secret"), "raw paths never become labels");
        assert!(text.contains(&format!("{routed},le=\"0.025\"}}")));
        assert_eq!(text.matches(&format!("# TYPE {HTTP_REQUEST_DURATION} ")).count(), 1);
    }
}
