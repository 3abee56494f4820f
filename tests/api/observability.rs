//! Request ids, metrics and readiness: what an operator sees of a running
//! service (checklist rows around D and G).

use reqwest::{Method, StatusCode};
use serde_json::json;
use todo_api::ServeOptions;

use crate::helpers::*;

// ---------------------------------------------------------------- request ids

#[tokio::test]
async fn a_request_id_is_echoed_when_plain_and_generated_otherwise() {
    let app = spawn_app().await;
    let echoed = app
        .send(
            app.request(Method::GET, "/healthz", None)
                .header("x-request-id", "trace-42.a_b:c"),
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-42.a_b:c"));

    let generated = app.get("/api/todos", None).await;
    let id = generated.header("x-request-id").expect("a request id");
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(generated.status, StatusCode::UNAUTHORIZED);

    for hostile in ["x".repeat(129), "a b".into(), "<script>".into()] {
        let reply = app
            .send(
                app.request(Method::GET, "/healthz", None)
                    .header("x-request-id", hostile.as_str()),
            )
            .await;
        let id = reply.header("x-request-id").expect("a request id");
        assert_ne!(id, hostile);
        assert_eq!(id.len(), 36, "{id}");
    }
}

// -------------------------------------------------------------------- metrics

#[tokio::test]
async fn metrics_count_requests_by_matched_route_and_logins_by_outcome() {
    let app = metrics_app().await;
    let token = app.alice_token().await;
    for _ in 0..3 {
        let reply = app.get("/api/todos/424242", Some(&token)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    for _ in 0..2 {
        let reply = app.get("/no/such/route-7731", None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    let wrong = app.login("alice", "not her password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = app.login("nobody-here", "not a password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);

    let text = metrics_text(&app).await;
    let requests = "todo_api_http_requests_total";
    assert_eq!(
        sample(
            &text,
            requests,
            &[
                r#"method="GET""#,
                r#"route="/api/todos/{id}""#,
                r#"status="404""#
            ]
        ),
        Some(3.0),
        "{text}"
    );
    assert!(!text.contains("424242"), "raw paths never become labels");
    assert_eq!(
        sample(
            &text,
            requests,
            &[r#"route="unmatched""#, r#"status="404""#]
        ),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("route-7731"), "nor unmatched ones");
    assert_eq!(
        sample(
            &text,
            requests,
            &[r#"route="/auth/token""#, r#"status="200""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "todo_api_http_request_duration_seconds_count",
            &[r#"route="/api/todos/{id}""#, r#"status="404""#]
        ),
        Some(3.0)
    );
    let logins = "todo_api_logins_total";
    assert_eq!(sample(&text, logins, &[r#"outcome="success""#]), Some(1.0));
    assert_eq!(sample(&text, logins, &[r#"outcome="failure""#]), Some(2.0));
    let pools: &[&str] = if on_postgres() {
        &["postgres"]
    } else {
        &["reader", "writer"]
    };
    for pool in pools {
        let pool = format!(r#"pool="{pool}""#);
        for state in [r#"state="idle""#, r#"state="in_use""#] {
            assert!(
                sample(&text, "todo_api_db_pool_connections", &[&pool, state]).is_some(),
                "{pool} {state}: {text}"
            );
        }
    }

    // More logins move the counters by exactly as many.
    app.alice_token().await;
    app.login("alice", "still not it").await;
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, logins, &[r#"outcome="success""#]), Some(2.0));
    assert_eq!(sample(&text, logins, &[r#"outcome="failure""#]), Some(3.0));
}

#[tokio::test]
async fn metrics_count_throttled_requests_and_refresh_token_reuse() {
    let app = metrics_app().await;
    let first = app.login("alice", "wonderland").await.json();
    let spent = first["refresh_token"].as_str().unwrap().to_string();
    let rotated = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &spent)])
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let reused = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &spent)])
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);

    let mut throttled = 0;
    for _ in 0..7 {
        if app.login("bob-the-unknown", "wrong password").await.status
            == StatusCode::TOO_MANY_REQUESTS
        {
            throttled += 1;
        }
    }
    assert!(throttled >= 1, "no 429 after 7 failures");

    let text = metrics_text(&app).await;
    assert_eq!(
        sample(&text, "todo_api_refresh_token_reuse_total", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "todo_api_http_throttled_requests_total",
            &[r#"route="/auth/token""#]
        ),
        Some(f64::from(throttled))
    );
}

#[tokio::test]
async fn metrics_are_not_served_unless_enabled_and_never_documented() {
    let app = spawn_app().await;
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "Not found");

    let enabled = spawn_app_with(|c| c.metrics = true).await;
    let doc = enabled.get("/openapi.json", None).await.json();
    assert!(doc["paths"].get("/metrics").is_none());
    assert!(doc["paths"]["/readyz"]["get"].is_object());
    // No token needed: scrapers have none.
    assert_eq!(enabled.get("/metrics", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_can_be_served_on_a_separate_address_only() {
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(todo_api::serve_with(
        listener,
        todo_api::metrics_app(&app.state),
        std::future::pending(),
        ServeOptions::default(),
    ));
    app.get("/healthz", None).await;
    let scraped = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            "todo_api_http_requests_total",
            &[r#"route="/healthz""#, r#"status="200""#]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        app.get("/metrics", None).await.status,
        StatusCode::NOT_FOUND
    );
    let other = app
        .client
        .get(format!("http://{addr}/api/todos"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------ readiness

#[tokio::test]
async fn readyz_is_200_on_a_migrated_database_and_503_when_the_schema_is_behind() {
    let app = spawn_app().await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json(), json!({"status": "ready"}));

    let todo_api::db::DatabaseUrl::Sqlite(path) = &app.db.url else {
        return; // The schema check below is SQLite's.
    };
    let outside = rusqlite::Connection::open(path).unwrap();
    outside
        .execute_batch(
            "CREATE TABLE saved AS SELECT * FROM refinery_schema_history;
             DELETE FROM refinery_schema_history;",
        )
        .unwrap();
    let behind = app.get("/readyz", None).await;
    assert_eq!(behind.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(behind.error(), "Service temporarily unavailable");
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    outside
        .execute_batch("INSERT INTO refinery_schema_history SELECT * FROM saved;")
        .unwrap();
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
}
