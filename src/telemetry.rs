//! Logs: the subscriber (text or JSON), one line per request with its id,
//! and what may and may not appear in them.
//!
//! Never logged: passwords, tokens, the `Authorization` header, raw paths
//! or query strings (a token sent as `?access_token=` stays out). Names that
//! come from clients are logged with `escape_debug`, so that a newline or a
//! terminal escape sequence cannot forge or disguise a log line.

use std::cell::{Ref, RefCell};
use std::convert::Infallible;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::registry::LookupSpan;

use crate::client::ClientAddr;

/// The route that metrics and log lines name for requests that matched no
/// route (404 fallback), so that scanners cannot create one time series,
/// or one log label, per probed path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(format == LogFormat::Text && std::io::stdout().is_terminal())
        .with_writer(|| LineSink)
        .event_format(LogLine { format })
        .init();
}

/// Held lines are written once they reach this many bytes, even if the
/// worker holding them never goes idle.
const HELD_LINES_MAX: usize = 16 * 1024;

thread_local! {
    /// Log lines a runtime worker has not written yet; `None` on threads
    /// that write each line at once.
    static HELD_LINES: RefCell<Option<HeldLines>> = const { RefCell::new(None) };
}

/// A worker's unwritten lines; written when the thread ends, too.
struct HeldLines(Vec<u8>);

impl HeldLines {
    fn write_out(&mut self) {
        if !self.0.is_empty() {
            // A log line that cannot be written has nowhere else to go.
            let _ = std::io::stdout().lock().write_all(&self.0);
            self.0.clear();
        }
    }
}

impl Drop for HeldLines {
    fn drop(&mut self) {
        self.write_out();
    }
}

/// Where log lines go: standard output, one `write` per line, except on a
/// busy runtime worker (see [`write_held_lines`]).
struct LineSink;

impl Write for LineSink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        // Not held on a thread that is ending (its lines are gone by now).
        let held = HELD_LINES.try_with(|held| match held.borrow_mut().as_mut() {
            Some(held) => {
                held.0.extend_from_slice(line);
                if held.0.len() >= HELD_LINES_MAX {
                    held.write_out();
                }
                true
            }
            None => false,
        });
        if held != Ok(true) {
            std::io::stdout().lock().write_all(line)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// For the runtime's `on_thread_park`: a worker about to go idle writes
/// the lines it logged since it last did, in one `write`. From then on,
/// this thread holds its lines while it works: under load, one system call
/// carries many lines instead of one each; when the service is quiet, each
/// line is written as soon as its request is done. A crash can lose what a
/// busy worker held (at most [`HELD_LINES_MAX`] bytes each).
pub fn write_held_lines() {
    HELD_LINES.with_borrow_mut(|held| {
        held.get_or_insert_with(|| HeldLines(Vec::with_capacity(HELD_LINES_MAX)))
            .write_out();
    });
}

/// For the runtime's `on_thread_stop`: nothing held is left behind.
pub fn release_held_lines() {
    HELD_LINES.with_borrow_mut(Option::take);
}

/// The request's id: the client's `X-Request-Id` when it is the only one,
/// short and plain (letters, digits, `-`, `_`, `.`, `:`), otherwise a fresh
/// UUID.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    let plain = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    let mut ids = headers.get_all(&REQUEST_ID).iter();
    match (ids.next(), ids.next()) {
        (Some(id), None) if plain(id) => id.clone(),
        _ => {
            let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
            let uuid = uuid::Uuid::new_v4().hyphenated();
            HeaderValue::from_bytes(uuid.encode_lower(&mut text).as_bytes())
                .unwrap_or(HeaderValue::from_static("-"))
        }
    }
}

tokio::task_local! {
    /// What every log line of a request names, set by [`AccessLog`].
    static REQUEST: RequestContext;
}

/// The request a log line belongs to: fixed when it arrives, except the
/// route (known once the router has matched one) and the user (once a
/// token has been checked; escaped only when a line is written).
struct RequestContext {
    method: Method,
    request_id: HeaderValue,
    client: Option<IpAddr>,
    route: RefCell<Option<MatchedPath>>,
    user: RefCell<Option<String>>,
}

impl RequestContext {
    fn of(request: &Request, request_id: HeaderValue) -> Self {
        Self {
            method: request.method().clone(),
            request_id,
            client: request
                .extensions()
                .get::<ClientAddr>()
                .map(|&ClientAddr(client)| client),
            route: RefCell::new(None),
            user: RefCell::new(None),
        }
    }

    fn route(&self) -> Ref<'_, str> {
        Ref::map(self.route.borrow(), |route| {
            route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        })
    }
}

/// The outermost layer: gives the request its id ([`request_id`]), which
/// the handlers see in `X-Request-Id` and the client gets back; everything
/// logged while the request is served names it (see [`LogLine`]), and one
/// line is logged when its response starts, with the status and latency.
/// A layer of its own rather than `from_fn` middleware, which would clone
/// and box the whole stack inside it on every request.
#[derive(Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// The service [`AccessLogLayer`] puts around the application.
#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AccessLogFuture<Oneshot<S, Request>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The inner service is made ready in the request's own future,
        // where the request's log context is set.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = request_id(request.headers());
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let context = RequestContext::of(&request, id);
        AccessLogFuture {
            response: REQUEST.scope(context, self.inner.clone().oneshot(request)),
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's response, served in its log context and logged once
    /// it is ready.
    pub struct AccessLogFuture<F: Future> {
        #[pin]
        response: TaskLocalFuture<RequestContext, F>,
        started: Instant,
    }
}

impl<F> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Ok(mut response) = ready!(this.response.as_mut().poll(cx));
        let latency = this.started.elapsed();
        if let Some(context) = this.response.take_value() {
            response
                .headers_mut()
                .insert(REQUEST_ID, context.request_id.clone());
            REQUEST.sync_scope(context, || {
                tracing::info!(
                    status = response.status().as_u16(),
                    latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
                    "request"
                );
            });
        }
        Poll::Ready(Ok(response))
    }
}

/// Names the matched route in the current request's log lines.
pub fn record_route(route: &MatchedPath) {
    let _outside_a_request = REQUEST.try_with(|context| {
        context.route.replace(Some(route.clone()));
    });
}

/// Names the signed-in user in the current request's log lines.
pub fn record_user(username: &str) {
    let _outside_a_request = REQUEST.try_with(|context| {
        context.user.replace(Some(username.to_owned()));
    });
}

/// The log line format, text or JSON: the time, level, the request (method,
/// route, request id, client address, user) when there is one, the target
/// and the event's fields. A request's fields come from [`REQUEST`], not
/// from a span: one line per request costs one event, not a span's
/// bookkeeping as well.
struct LogLine {
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for LogLine
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        fields: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        // Records from the `log` crate name their own origin.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let (level, target) = (metadata.level(), metadata.target());
        match self.format {
            LogFormat::Text => {
                let (color, reset) = match writer.has_ansi_escapes() {
                    true => (level_color(*level), "\x1b[0m"),
                    false => ("", ""),
                };
                SystemTime.format_time(&mut writer)?;
                write!(writer, " {color}{level:>5}{reset} ")?;
                REQUEST
                    .try_with(|request| write_text_request(&mut writer, request))
                    .unwrap_or(Ok(()))?;
                write!(writer, "{target}: ")?;
                fields.format_fields(writer.by_ref(), event)?;
            }
            LogFormat::Json => {
                let mut values = JsonValues::default();
                event.record(&mut values);
                writer.write_str(r#"{"timestamp":""#)?;
                SystemTime.format_time(&mut writer)?;
                write!(
                    writer,
                    r#"","level":"{level}","fields":{},"target":{}"#,
                    serde_json::Value::Object(values.0),
                    json_string(target)
                )?;
                REQUEST
                    .try_with(|request| write_json_request(&mut writer, request))
                    .unwrap_or(Ok(()))?;
                writer.write_char('}')?;
            }
        }
        writeln!(writer)
    }
}

fn write_text_request(writer: &mut Writer<'_>, request: &RequestContext) -> fmt::Result {
    write!(
        writer,
        "request{{method={} route={:?} request_id={:?}",
        request.method,
        &*request.route(),
        String::from_utf8_lossy(request.request_id.as_bytes())
    )?;
    if let Some(client) = request.client {
        write!(writer, " client={client}")?;
    }
    if let Some(user) = &*request.user.borrow() {
        write!(writer, " user={}", user.escape_debug())?;
    }
    writer.write_str("}: ")
}

fn write_json_request(writer: &mut Writer<'_>, request: &RequestContext) -> fmt::Result {
    write!(
        writer,
        r#","span":{{"method":"{}","route":{},"request_id":{}"#,
        request.method,
        json_string(&request.route()),
        json_string(&String::from_utf8_lossy(request.request_id.as_bytes()))
    )?;
    if let Some(client) = request.client {
        write!(writer, r#","client":"{client}""#)?;
    }
    if let Some(user) = &*request.user.borrow() {
        let escaped = user.escape_debug().to_string();
        write!(writer, r#","user":{}"#, json_string(&escaped))?;
    }
    writer.write_str(r#","name":"request"}"#)
}

/// An event's fields as JSON values, without the `log.` ones that say
/// where a `log` record came from.
#[derive(Default)]
struct JsonValues(serde_json::Map<String, serde_json::Value>);

impl JsonValues {
    fn insert(&mut self, field: &Field, value: impl Into<serde_json::Value>) {
        if !field.name().starts_with("log.") {
            self.0.insert(field.name().to_owned(), value.into());
        }
    }
}

impl Visit for JsonValues {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, format!("{value:?}"));
    }
}

/// `text` as a JSON string, quotes and escapes included.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn level_color(level: Level) -> &'static str {
    match level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_for(values: &[&str]) -> HeaderValue {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(REQUEST_ID, HeaderValue::from_str(value).unwrap());
        }
        request_id(&headers)
    }

    #[test]
    fn a_request_id_is_kept_only_when_it_is_the_only_one_and_plain() {
        assert_eq!(id_for(&["trace-42.a_b:c"]), "trace-42.a_b:c");
        let too_long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        for replaced in [
            &[][..],
            &["a", "b"],
            &["a b"],
            &["<x>"],
            &[too_long.as_str()],
        ] {
            let id = id_for(replaced);
            let text = id.to_str().unwrap();
            assert!(uuid::Uuid::parse_str(text).is_ok(), "{replaced:?}: {text}");
            assert_eq!(text.len(), 36);
        }
    }

    #[test]
    fn a_worker_holds_its_lines_from_its_first_idle_moment_to_the_next() {
        std::thread::spawn(|| {
            let held = || HELD_LINES.with_borrow(|held| held.as_ref().map(|h| h.0.len()));
            LineSink.write_all(b"\n").unwrap();
            assert_eq!(held(), None, "written at once before the thread idles");
            write_held_lines();
            LineSink.write_all(b"\n").unwrap();
            assert_eq!(held(), Some(1));
            write_held_lines();
            assert_eq!(held(), Some(0));
            release_held_lines();
            assert_eq!(held(), None);
        })
        .join()
        .unwrap();
    }
}
