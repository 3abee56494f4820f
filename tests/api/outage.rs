//! PostgreSQL stopped under load (`pg_ctl stop -m immediate`) and started
//! again: every request is answered in time, 503 in the contract's shape
//! while the database is away, `/readyz` says so, the service recovers by
//! itself, and no acknowledged write is lost. It stops the cluster, so it
//! runs alone: `.ci/postgres.sh` runs it after the suite, with the commands
//! that stop and start the cluster in TEST_PG_STOP and TEST_PG_START.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How late an answer may be beyond the request timeout (scheduling).
const SLACK: Duration = Duration::from_secs(2);
/// How long the service may take to serve again once PostgreSQL is back.
const RECOVERY: Duration = Duration::from_secs(15);

fn run(command: &str) {
    let status = Command::new("sh").args(["-c", command]).status().unwrap();
    assert!(status.success(), "{command}: {status}");
}

/// What the writers saw: acknowledged todo ids, and every other answer.
#[derive(Default)]
struct Seen {
    acknowledged: Vec<i64>,
    unavailable: usize,
    slowest: Duration,
}

/// Notes one writer's answer; anything but 201 or a 503 in the
/// contract's shape fails the test.
fn record(seen: &Mutex<Seen>, reply: &Reply, took: Duration) {
    let mut seen = seen.lock().unwrap();
    seen.slowest = seen.slowest.max(took);
    match reply.status {
        StatusCode::CREATED => seen.acknowledged.push(reply.json()["id"].as_i64().unwrap()),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_error_body(reply, StatusCode::SERVICE_UNAVAILABLE, "outage");
            seen.unavailable += 1;
        }
        other => panic!("during the outage: {other} {}", reply.text),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_answer_503_while_postgresql_is_down_and_recover_by_themselves() {
    let (Ok(stop), Ok(start)) = (
        std::env::var("TEST_PG_STOP"),
        std::env::var("TEST_PG_START"),
    ) else {
        eprintln!("skipped: TEST_PG_STOP and TEST_PG_START name no cluster to stop");
        return;
    };
    let app = Arc::new(
        spawn_app_with(|config| {
            config.request_timeout = REQUEST_TIMEOUT;
            config.db_timeout = Duration::from_secs(1);
            config.db_connect_timeout = Duration::from_secs(1);
            config.db_statement_timeout = Duration::from_secs(1);
        })
        .await,
    );
    let (_, token) = app.signed_up("jdoe").await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let halt = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (app, token) = (app.clone(), token.clone());
            let (seen, halt) = (seen.clone(), halt.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !halt.load(Ordering::Relaxed) {
                    n += 1;
                    let began = Instant::now();
                    let reply = app
                        .post_json(
                            "/api/todos",
                            Some(&token),
                            json!({"title": format!("writer {writer}, todo {n}")}),
                        )
                        .await;
                    let took = began.elapsed();
                    record(&seen, &reply, took);
                    if reply.status != StatusCode::CREATED {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_outage = seen.lock().unwrap().acknowledged.len();
    assert!(before_outage > 0, "the writers wrote before the outage");

    run(&stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready = app.get("/readyz", None).await;
    assert_error_body(
        &ready,
        StatusCode::SERVICE_UNAVAILABLE,
        "/readyz while down",
    );
    let read = app.get("/api/todos", Some(&token)).await;
    assert_error_body(&read, StatusCode::SERVICE_UNAVAILABLE, "a read while down");
    let unavailable = seen.lock().unwrap().unavailable;
    assert!(unavailable > 0, "the writers saw the outage");

    run(&start);
    let back = Instant::now();
    let recovered = loop {
        let reply = app.get("/readyz", None).await;
        if reply.status == StatusCode::OK {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < RECOVERY,
            "not back after {RECOVERY:?}: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Writes succeed again, by themselves.
    let acknowledged_when_back = seen.lock().unwrap().acknowledged.len();
    let deadline = Instant::now() + RECOVERY;
    while seen.lock().unwrap().acknowledged.len() <= acknowledged_when_back {
        assert!(
            Instant::now() < deadline,
            "no write succeeded after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    halt.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    assert!(
        seen.slowest <= REQUEST_TIMEOUT + SLACK,
        "an answer took {:?}",
        seen.slowest
    );
    eprintln!(
        "outage: {} writes acknowledged, {} answered 503, slowest answer {:?}, ready again {:?} after the restart",
        seen.acknowledged.len(),
        seen.unavailable,
        seen.slowest,
        recovered
    );
    for id in &seen.acknowledged {
        let reply = app.get(&format!("/api/todos/{id}"), Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "acknowledged todo {id}: {}",
            reply.text
        );
    }
}
