//! Logs: the subscriber (text or JSON), one line per request with its id,
//! and what may and may not appear in them.
//!
//! Never logged: passwords, tokens, the `Authorization` header, raw paths
//! or query strings (a token sent as `?access_token=` stays out). Names that
//! come from clients are logged with `escape_debug`, so that a newline or a
//! terminal escape sequence cannot forge or disguise a log line.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, Response};
use axum::middleware::Next;
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber: level from `RUST_LOG` (default `info`),
/// UTC RFC 3339 timestamps, colours only on a terminal.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Middleware before the request-id layer: a client's `X-Request-Id` is
/// kept only when it is short and plain (letters, digits, `-`, `_`, `.`,
/// `:`), otherwise a fresh one is made.
pub async fn sanitize_request_id(mut request: Request, next: Next) -> axum::response::Response {
    let plain = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    let headers = request.headers();
    let keep = headers.get_all(&REQUEST_ID).iter().count() == 1
        && headers.get(&REQUEST_ID).is_some_and(plain);
    if !keep {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// The span every request runs in: method, request id and client address;
/// `route` is filled in once the router has matched one
/// ([`record_route`]), `user` once a token has been checked.
pub fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| tracing::field::display(peer.ip()));
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = tracing::field::Empty,
        request_id,
        client,
        user = tracing::field::Empty,
    )
}

/// Names the matched route (or [`crate::metrics::UNMATCHED_ROUTE`]) in the
/// current request's span.
pub fn record_route(route: &str) {
    Span::current().record("route", route);
}

/// The one line logged per request, when its response starts.
pub fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "request"
    );
}

/// Names the signed-in user in the current request's span.
pub fn record_user(username: &str) {
    Span::current().record("user", tracing::field::display(username.escape_debug()));
}
