//! Connections: the request timeout, slow clients, the connection cap and
//! graceful shutdown (checklist rows D3, D4).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use todo_api::{ServeOptions, build_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

// ------------------------------------------------------ D4: request timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d4_a_request_stuck_on_a_locked_database_gets_503_json_within_the_timeout() {
    let app = spawn_app_with(|c| {
        c.request_timeout = Duration::from_secs(1);
        c.metrics = true;
    })
    .await;
    let lock = app.lock_writes().await;
    let started = Instant::now();
    let reply = app.register("stuck-writer", PASSWORD).await;
    let took = started.elapsed();
    lock.release().await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert_eq!(
        reply.json(),
        json!({"error": "Service temporarily unavailable"})
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // The server is fine afterwards.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    // The timed-out request is counted under its route.
    assert_eq!(
        sample(
            &metrics_text(&app).await,
            "todo_api_http_requests_total",
            &[r#"route="/auth/register""#, r#"status="503""#]
        ),
        Some(1.0)
    );
}

// ------------------------------------------------- D3: slow clients, the cap

/// Opens a connection that sends `GET / HTTP/1.1\r\n` and then one byte a
/// second; returns how long the server kept it open (None: still open
/// after `give_up`).
async fn trickle(addr: SocketAddr, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut reader, mut writer) = stream.into_split();
    let _ = writer.write_all(b"GET / HTTP/1.1\r\n").await;
    let dripping = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"X").await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let closed = async {
        let mut buf = [0u8; 512];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                // A 408/400 answer may come first; the close follows.
                Ok(_) => continue,
            }
        }
    };
    tokio::select! {
        closed = closed => Some(closed),
        () = dripping => None,
        () = tokio::time::sleep(give_up) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d3_connections_trickling_headers_are_cut_off_while_normal_clients_are_served() {
    let _heavy = HEAVY.lock().await;
    const SLOW: usize = 200;
    let header_timeout = Duration::from_millis(1500);
    let app = spawn_app_with(|c| c.header_read_timeout = header_timeout).await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();

    let slow: Vec<_> = (0..SLOW)
        .map(|_| tokio::spawn(trickle(addr, Duration::from_secs(10))))
        .collect();
    // Normal clients, meanwhile, on fresh connections each time.
    let mut served = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let client = reqwest::Client::new();
        let reply = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut kept = Vec::new();
    for handle in slow {
        kept.push(handle.await.unwrap());
    }
    let cut: Vec<Duration> = kept.iter().flatten().copied().collect();
    let longest = cut.iter().max().copied().unwrap_or_default();
    println!(
        "D3: {} of {SLOW} trickling connections cut, the longest after {longest:?}; \
         {served} normal requests served meanwhile",
        cut.len()
    );
    assert_eq!(cut.len(), SLOW, "some slow connections were never closed");
    assert!(
        longest < header_timeout + Duration::from_millis(2500),
        "{longest:?}"
    );
    assert!(served >= 10, "{served}");
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection stayed open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let app = spawn_app_with(|c| {
        c.max_connections = 2;
        c.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    // Two silent connections take both slots until the header timeout.
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let reply = reqwest::Client::new()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(waited >= Duration::from_millis(600), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

// --------------------------------------------------- graceful shutdown

/// A second server on `app`'s state whose shutdown the test triggers.
async fn stoppable(
    app: &TestApp,
    grace: Duration,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        shutdown_grace: grace,
        ..ServeOptions::default()
    };
    let server = tokio::spawn(todo_api::serve_with(
        listener,
        build_app(app.state.clone()),
        async {
            let _ = stopped.await;
        },
        options,
    ));
    (base, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish_and_refuses_new_connections() {
    let app = spawn_app().await;
    let (base, stop, server) = stoppable(&app, Duration::from_secs(10)).await;
    let lock = app.lock_writes().await;
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(
        client
            .post(format!("{base}/auth/register"))
            .json(&json!({"username": "in-flight", "password": PASSWORD, "name": "F"}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection was served after shutdown"
    );
    lock.release().await;
    let reply = in_flight
        .await
        .unwrap()
        .expect("the request in flight was answered");
    assert_eq!(reply.status(), StatusCode::CREATED);
    let finished = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "serve did not return: {finished:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_on_requests_after_the_grace_period() {
    let app = spawn_app_with(|c| c.request_timeout = Duration::from_secs(20)).await;
    let (base, stop, server) = stoppable(&app, Duration::from_secs(1)).await;
    let lock = app.lock_writes().await;
    let stuck = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{base}/auth/register"))
            .json(&json!({"username": "stuck", "password": PASSWORD, "name": "S"}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(4), server).await;
    let took = started.elapsed();
    lock.release().await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    stuck.abort();
}
