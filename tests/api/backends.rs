//! Where the backends differ underneath, the API must not: text that
//! PostgreSQL cannot store or index (NUL, very long values) gets the same
//! answers as on SQLite. Then the PostgreSQL backend's limits: a statement
//! that runs past `--db-statement-timeout`, or a request that waits for a
//! pool connection longer than `--db-timeout`, is answered 503 and the
//! service goes on; those tests return early when TEST_DATABASE_URL is not set.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;

use crate::helpers::*;

fn on_postgres_or_skip(test: &str) -> bool {
    if !on_postgres() {
        eprintln!("{test}: skipped, it needs {TEST_DATABASE_URL} (a PostgreSQL server)");
    }
    on_postgres()
}

#[track_caller]
fn assert_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert_eq!(reply.error(), "Service temporarily unavailable");
}

#[track_caller]
fn assert_bad_credentials(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        reply.text
    );
    assert_eq!(reply.error(), "Incorrect username or password", "{what}");
}

/// Waits until the wall clock is early in a second, so that the last
/// failure and the attempt after it fall in one second of throttling.
async fn early_in_a_second() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let ms = u64::from(now.subsec_millis());
    if ms > 300 {
        tokio::time::sleep(Duration::from_millis(1_010 - ms)).await;
    }
}

#[tokio::test]
async fn login_names_no_backend_can_store_are_ordinary_failures_and_are_throttled() {
    let app = spawn_demo_app().await;
    // NUL is refused by PostgreSQL's text; 10,000 characters exceed any
    // btree key. Neither can be a username, so both are unknown users.
    let long = "x".repeat(10_000);
    for (what, name) in [("NUL", "ali\0ce"), ("long", long.as_str())] {
        for attempt in 1..=4 {
            let reply = app.login(name, "wonderland").await;
            assert_bad_credentials(&reply, &format!("{what} name, attempt {attempt}"));
        }
        early_in_a_second().await;
        assert_bad_credentials(&app.login(name, "wonderland").await, what);
        let throttled = app.login(name, "wonderland").await;
        assert_eq!(
            throttled.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{what} name after five failures: {}",
            throttled.text
        );
    }
    // The real alice was never throttled by any of it.
    app.alice_token().await;
}

#[tokio::test]
async fn usernames_match_in_any_ascii_case_and_in_no_unicode_look_alike() {
    let app = spawn_app().await;
    app.signed_up("kelvin").await;
    app.access_token("KELVIN", PASSWORD).await;
    // U+212A KELVIN SIGN lower-cases to an ASCII `k` in Unicode (and in
    // PostgreSQL under a UTF-8 locale), but it is not the name `kelvin`.
    assert_bad_credentials(&app.login("\u{212A}elvin", PASSWORD).await, "Kelvin sign");
    // Nor can it register as a second spelling of the name.
    let again = app.register("\u{212A}elvin", PASSWORD).await;
    assert_eq!(
        again.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        again.text
    );
}

#[tokio::test]
async fn a_statement_blocked_past_the_statement_timeout_is_503_and_the_next_request_works() {
    if !on_postgres_or_skip("statement timeout") {
        return;
    }
    let app = spawn_app_with(|config| config.db_statement_timeout = Duration::from_secs(1)).await;
    let (_, token) = app.signed_up("patient").await;

    let outside = app.db.postgres_client().await;
    outside
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock users");
    let started = Instant::now();
    let blocked = app.get("/api/users/me", Some(&token)).await;
    assert_unavailable(&blocked);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "answered after {waited:?}"
    );

    outside.batch_execute("ROLLBACK").await.expect("unlock");
    let after = app.get("/api/users/me", Some(&token)).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_longer_than_the_db_timeout_for_a_connection_is_503() {
    if !on_postgres_or_skip("pool wait timeout") {
        return;
    }
    let app = spawn_app_with(|config| {
        config.db_pool_size = 1;
        config.db_timeout = Duration::from_millis(500);
        config.db_statement_timeout = Duration::from_secs(5);
    })
    .await;
    let (_, token) = app.signed_up("queued").await;

    let outside = app.db.postgres_client().await;
    outside
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock users");
    // The first request takes the only connection and waits on the lock.
    let first = {
        let request = app.request(reqwest::Method::GET, "/api/users/me", Some(&token));
        tokio::spawn(async move { Reply::from(request.send().await.expect("sent")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let second = app.get("/api/users/me", Some(&token)).await;
    assert_unavailable(&second);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );

    outside.batch_execute("ROLLBACK").await.expect("unlock");
    let first = first.await.expect("first request");
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let after = app.get("/api/users/me", Some(&token)).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
}
