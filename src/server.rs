//! The accept loop: HTTP/1.1 on hyper with a header-read timeout, a cap on
//! connections and a graceful shutdown bounded in time.
//!
//! Released axum 0.8's `axum::serve` sets no header-read timeout, so a
//! client that sends its headers one byte at a time holds a connection for
//! as long as it likes (slowloris). Here hyper closes any connection whose
//! request headers, or whose next request on a kept-alive connection, take
//! longer than `header_read_timeout`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::config::Config;

/// At most this long after the shutdown signal, connections keep being
/// served normally, so that requests that raced the signal are read.
const SETTLE: Duration = Duration::from_millis(500);

/// How the server treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Time a client has to send a request's headers, and to start its next
    /// request on a kept-alive connection; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the kernel's listen queue.
    pub max_connections: usize,
    /// After the shutdown signal, how long requests in flight may still run
    /// before the remaining connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServeOptions {
    /// The options a configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections.max(1),
            shutdown_grace: config.shutdown_grace,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish within the grace period and
/// returns. Handlers get the peer address as `ConnectInfo<SocketAddr>`
/// (the per-address rate limit needs it).
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        spawn_connection(&builder, &graceful, &app, stream, peer, Some(permit));
    }

    // Connections the kernel completed before the signal belong to clients
    // that may have sent their request already: serve them (over the cap
    // if need be, up to as many again) rather than reset them when the
    // listener closes.
    for (stream, peer) in drain_backlog(listener, options.max_connections) {
        let permit = permits.clone().try_acquire_owned().ok();
        spawn_connection(&builder, &graceful, &app, stream, peer, permit);
    }

    let open = graceful.count();
    tracing::info!(
        connections = open,
        grace_seconds = options.shutdown_grace.as_secs_f64(),
        "no longer accepting connections; finishing requests in flight"
    );
    // hyper closes at once any connection on which it has read nothing yet,
    // even when the client's request is already in the socket: connections
    // accepted just before the signal (and those drained above) get a moment
    // to be read before they are told to stop.
    let settle = (options.shutdown_grace / 4).min(SETTLE);
    if open > 0 {
        tokio::time::sleep(settle).await;
    }
    let remaining = options.shutdown_grace.saturating_sub(settle);
    if tokio::time::timeout(remaining, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the shutdown grace period ended with requests still in flight");
    }
    Ok(())
}

/// Takes the connections waiting in the listen queue now, at most `limit`,
/// then closes the listener (the kernel resets any others).
fn drain_backlog(listener: TcpListener, limit: usize) -> Vec<(TcpStream, SocketAddr)> {
    let Ok(listener) = listener.into_std() else {
        return Vec::new();
    };
    let mut waiting = Vec::new();
    // The listener is non-blocking: accept until the queue is empty.
    while waiting.len() < limit
        && let Ok((stream, peer)) = listener.accept()
    {
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        if let Ok(stream) = TcpStream::from_std(stream) {
            waiting.push((stream, peer));
        }
    }
    waiting
}

fn spawn_connection(
    builder: &Arc<Builder<TokioExecutor>>,
    graceful: &GracefulShutdown,
    app: &Router,
    stream: TcpStream,
    peer: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
) {
    let _ = stream.set_nodelay(true);
    let service = app.clone().map_request(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let service = TowerToHyperService::new(service);
    let builder = builder.clone();
    let watcher = graceful.watcher();
    tokio::spawn(async move {
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        if let Err(error) = watcher.watch(connection).await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
        drop(permit);
    });
}

/// Accept errors are about one connection (reset before accept) or about
/// the process (out of file descriptors): the latter clears up as
/// connections close, so wait a little instead of spinning.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
