//! Logs: tracing-subscriber's text or JSON lines, the span that names a
//! request in every line logged while it is served, its access line,
//! request ids, and what may and may not appear in them.
//!
//! Never logged: passwords, tokens, the `Authorization` header, raw paths
//! or query strings (a token sent as `?access_token=` stays out). Names that
//! come from clients are logged with `escape_debug`, so that a newline or a
//! terminal escape sequence cannot forge or disguise a log line.

use std::cell::RefCell;
use std::io::Write;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use tracing::field::{Empty, display};
use tracing::{Level, Span};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

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
/// UTC RFC 3339 timestamps, no colours; in JSON, the
/// request's fields under `span`.
pub fn init(format: LogFormat) {
    let lines = tracing_subscriber::fmt::layer().with_writer(|| LineSink);
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(log_filter())
        .with(lines)
        .init();
}

/// `RUST_LOG`'s levels by target (`info` when unset or unreadable). A
/// filter by target alone, unlike one that can also match span fields,
/// decides once per call site and keeps no state per span.
fn log_filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO))
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

/// Whether a client's request id may be kept: short and plain (letters,
/// digits, `-`, `_`, `.`, `:`), so that it can neither forge a log line
/// nor grow it without bound.
fn is_plain_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Keeps the client's `X-Request-Id` only when it is the only one and
/// plain; otherwise removes it, and the request-id layer that follows
/// gives the request a fresh UUID.
fn keep_plain_request_id(headers: &mut HeaderMap) {
    let mut ids = headers.get_all(&REQUEST_ID).iter();
    let keep = matches!((ids.next(), ids.next()), (Some(id), None) if is_plain_request_id(id));
    if !keep {
        headers.remove(&REQUEST_ID);
    }
}

/// For the outermost `map_request`: see [`keep_plain_request_id`].
pub fn screen_request_id(mut request: Request) -> Request {
    keep_plain_request_id(request.headers_mut());
    request
}

/// The span a request is served in, made once the router has matched its
/// route: the method, route, request id and client address, and the user
/// once a token has been checked ([`record_user`]). It has a target of its
/// own and the highest level, so that it names the request in every line
/// that is logged at all, even with the access lines filtered out.
pub fn request_span(request: &Request, route: Option<&MatchedPath>) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .map(display);
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map(|&ClientAddr(client)| display(client));
    tracing::span!(
        target: "todo_api::request",
        Level::ERROR,
        "request",
        method = %request.method(),
        route = route.map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
        request_id,
        client,
        user = Empty,
    )
}

/// The access line, logged in the request's span once its response starts.
pub fn log_response(response: &Response, latency: Duration) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "request"
    );
}

/// Names the signed-in user, escaped, in the current request's log lines.
pub fn record_user(username: &str) {
    Span::current().record("user", display(username.escape_debug()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(values: &[&str]) -> Option<HeaderValue> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(REQUEST_ID, HeaderValue::from_str(value).unwrap());
        }
        keep_plain_request_id(&mut headers);
        headers.get(REQUEST_ID).cloned()
    }

    #[test]
    fn a_request_id_is_kept_only_when_it_is_the_only_one_and_plain() {
        assert_eq!(kept(&["trace-42.a_b:c"]).unwrap(), "trace-42.a_b:c");
        let too_long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        for removed in [
            &[][..],
            &["a", "b"],
            &["a b"],
            &["<x>"],
            &[too_long.as_str()],
        ] {
            assert_eq!(kept(removed), None, "{removed:?}");
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
