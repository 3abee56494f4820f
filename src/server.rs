//! The accept loop: HTTP/1.1 on hyper with a header-read timeout, a cap on
//! connections and a graceful shutdown bounded in time.
//!
//! Released axum 0.8's `axum::serve` sets no header-read timeout, so a
//! client that sends its headers one byte at a time holds a connection for
//! as long as it likes (slowloris). Here hyper closes any connection whose
//! request headers, or whose next request on a kept-alive connection, take
//! longer than `header_read_timeout`.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
        let connection =
            builder.serve_connection(TokioIo::new(BatchedWrites::new(stream)), service);
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

/// A connection whose writes wait until the runtime worker has polled its
/// other ready tasks: responses finished in the same round then leave
/// together, and a client waiting on many connections is woken once for
/// them rather than once for each (a wake-up from another core costs more
/// than handling a small request). A quiet worker writes at once; a busy
/// one still writes at least every few dozen polls, when tokio checks for
/// I/O.
struct BatchedWrites {
    stream: TcpStream,
    /// The yield the write in progress waits on, if it waits.
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Set once the write in progress has yielded; cleared by flush.
    yielded: bool,
}

impl BatchedWrites {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            waiting: None,
            yielded: false,
        }
    }

    /// Ready once the worker has run its other tasks since the first call.
    fn poll_yield(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        let waiting = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::task::yield_now()));
        ready!(waiting.as_mut().poll(cx));
        self.waiting = None;
        self.yielded = true;
        Poll::Ready(())
    }
}

impl AsyncRead for BatchedWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BatchedWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.poll_yield(cx));
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.poll_yield(cx));
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        self.yielded = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_write_lets_the_other_ready_tasks_run_first_then_arrives_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let record = |event: &'static str| {
            let order = order.clone();
            move || order.lock().unwrap().push(event)
        };

        let written = record("written");
        let writer = tokio::spawn(async move {
            let mut connection = BatchedWrites::new(server);
            connection.write_all(b"a response").await.unwrap();
            connection.flush().await.unwrap();
            written();
            connection
        });
        let other = record("other task");
        let other = tokio::spawn(async move { other() });
        let _connection = writer.await.unwrap();
        other.await.unwrap();

        assert_eq!(*order.lock().unwrap(), ["other task", "written"]);
        let mut received = [0; 10];
        client.read_exact(&mut received).await.unwrap();
        assert_eq!(&received, b"a response");
    }
}
