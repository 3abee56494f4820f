//! Prometheus metrics: what is counted, the middleware that counts requests
//! and the `/metrics` exposition. Each [`crate::state::AppState`] has its own
//! registry, so servers in one process (the tests) never mix their numbers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};
use tracing::instrument::{Instrument, Instrumented};

use crate::db::{Database, PoolStats};
use crate::telemetry::{self, UNMATCHED_ROUTE};

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

/// How a password login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Right password, enabled account: a session was started.
    Success,
    /// Unknown user or wrong password.
    Failure,
    /// Right password, but the account is disabled (403).
    Disabled,
}

impl LoginOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Disabled => "disabled",
        }
    }
}

/// The service's metrics, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    /// Serialises scrapes, which set the pool gauges before encoding.
    scrape: Mutex<()>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    throttled: Family<RouteLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    refresh_reuse: Counter,
    pool_connections: Family<PoolLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("todo_api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, matched route and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to sending its response headers, in seconds",
            latency.clone(),
        );
        let throttled = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_throttled_requests",
            "Requests answered 429 (login throttling or the per-address limit), by route",
            throttled.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "logins",
            "Password logins at /auth/token by outcome: success, failure (unknown user or \
             wrong password) or disabled (right password, disabled account)",
            logins.clone(),
        );
        let refresh_reuse = Counter::default();
        registry.register(
            "refresh_token_reuse",
            "Spent refresh tokens presented again; each revoked its session",
            refresh_reuse.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections by pool and state (in_use or idle), at scrape time",
            pool_connections.clone(),
        );
        // Known series start at zero, so that rates work from the first scrape.
        for outcome in [
            LoginOutcome::Success,
            LoginOutcome::Failure,
            LoginOutcome::Disabled,
        ] {
            drop(logins.get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            }));
        }
        Self {
            registry,
            scrape: Mutex::new(()),
            requests,
            latency,
            throttled,
            logins,
            refresh_reuse,
            pool_connections,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.to_string(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
        if status == 429 {
            self.throttled
                .get_or_create(&RouteLabels {
                    route: labels.route,
                })
                .inc();
        }
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub fn refresh_token_reused(&self) {
        self.refresh_reuse.inc();
    }

    /// The exposition in the Prometheus text format (0.0.4), with the pool
    /// gauges set from `pools` first.
    pub fn render(&self, pools: &[PoolStats]) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        for stats in pools {
            for (state, value) in [("in_use", stats.in_use), ("idle", stats.idle)] {
                self.pool_connections
                    .get_or_create(&PoolLabels {
                        pool: stats.pool,
                        state,
                    })
                    .set(i64::from(value));
            }
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// Standard methods by name; anything else is `OTHER`, so that made-up
/// methods cannot create new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Wraps each route (and the fallback): serves every request in its log
/// span, counts it by its matched route (never the raw path) and status,
/// with its latency, logs its access line, and answers 503 when the request
/// takes longer than the timeout, counted under its route too. A layer of
/// its own rather than `from_fn` middleware: it runs for every route on
/// every request, and this way neither clones nor boxes anything.
#[derive(Clone)]
pub struct TrackLayer {
    metrics: Arc<Metrics>,
    timeout: Duration,
}

impl TrackLayer {
    pub fn new(metrics: Arc<Metrics>, timeout: Duration) -> Self {
        Self { metrics, timeout }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`TrackLayer`] puts around a route.
#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    layer: TrackLayer,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let span = telemetry::request_span(&request, route.as_ref());
        let method = request.method().clone();
        let response =
            span.in_scope(|| tokio::time::timeout(self.layer.timeout, self.inner.call(request)));
        TrackFuture {
            response: response.instrument(span),
            started: Instant::now(),
            method,
            route,
            metrics: self.layer.metrics.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A tracked request's response, counted when it is ready.
    pub struct TrackFuture<F> {
        #[pin]
        response: Instrumented<tokio::time::Timeout<F>>,
        started: Instant,
        method: Method,
        route: Option<MatchedPath>,
        metrics: Arc<Metrics>,
    }
}

impl<F> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let response = match ready!(this.response.as_mut().poll(cx)) {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_elapsed) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        };
        let route = this
            .route
            .as_ref()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let latency = this.started.elapsed();
        this.metrics.observe_request(
            this.method,
            route,
            response.status().as_u16(),
            latency.as_secs_f64(),
        );
        let _in_the_request = this.response.span().enter();
        telemetry::log_response(&response, latency);
        Poll::Ready(Ok(response))
    }
}

/// What `GET /metrics` shows: the counters, and the database's pools as
/// they are at the scrape.
#[derive(Clone)]
pub struct Exposition {
    pub metrics: Arc<Metrics>,
    pub db: Database,
}

impl Exposition {
    /// `GET /metrics`: no token needed; serve it only where scrapers, not
    /// the public, can reach it (`--metrics-bind`), or on the main port
    /// with `--metrics`.
    pub fn respond(&self) -> Response {
        let text = self.metrics.render(&self.db.pool_stats());
        let mut response = text.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        );
        response
    }

    /// The `/metrics` route, for any router.
    pub fn route<S: Clone + Send + Sync + 'static>(self) -> MethodRouter<S> {
        get(move || std::future::ready(self.respond()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status_in_the_prometheus_text_format() {
        let metrics = Metrics::new();
        metrics.observe_request(&Method::GET, "/api/todos/{id}", 200, 0.003);
        metrics.observe_request(&Method::GET, "/api/todos/{id}", 200, 0.004);
        metrics.observe_request(&Method::POST, "/auth/token", 429, 0.001);
        metrics.login(LoginOutcome::Failure);
        metrics.refresh_token_reused();
        let text = metrics.render(&[PoolStats {
            pool: "reader",
            in_use: 1,
            idle: 7,
        }]);
        for line in [
            r#"todo_api_http_requests_total{method="GET",route="/api/todos/{id}",status="200"} 2"#,
            r#"todo_api_http_throttled_requests_total{route="/auth/token"} 1"#,
            r#"todo_api_logins_total{outcome="failure"} 1"#,
            r#"todo_api_logins_total{outcome="success"} 0"#,
            "todo_api_refresh_token_reuse_total 1",
            r#"todo_api_db_pool_connections{pool="reader",state="idle"} 7"#,
            r#"todo_api_http_request_duration_seconds_count{method="GET",route="/api/todos/{id}",status="200"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(text.contains("# TYPE todo_api_http_requests_total counter"));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let method = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&method), "OTHER");
    }
}
