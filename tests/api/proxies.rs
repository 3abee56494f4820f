//! The client's address behind proxies (`--trusted-proxies`) and the
//! per-address limit of the auth routes, counted in the database.

use reqwest::StatusCode;
use serde_json::json;
use todo_api::client::TrustedProxies;

use crate::helpers::*;

/// A token request that fails fast (no hashing) but counts against the
/// limit, sent as if forwarded for `forwarded_for`.
async fn token_via(app: &TestApp, forwarded_for: Option<&str>) -> Reply {
    let mut request = app
        .client
        .post(app.url("/auth/token"))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    app.send(request).await
}

fn assert_let_through(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.text
    );
    assert_eq!(
        reply.json(),
        json!({"error": "unsupported_grant_type"}),
        "{what}"
    );
}

fn trusting(proxies: &[&str]) -> TrustedProxies {
    TrustedProxies::parse(proxies).expect("valid proxies")
}

#[tokio::test]
async fn a_forwarded_header_from_a_peer_that_is_not_trusted_is_ignored() {
    let app = spawn_app_with(|config| {
        config.auth_rate_limit = 2;
        config.trusted_proxies = trusting(&["10.0.0.0/8"]);
    })
    .await;
    assert_let_through(&token_via(&app, Some("203.0.113.1")).await, "first");
    assert_let_through(&token_via(&app, Some("203.0.113.2")).await, "second");
    // Another made-up client is still the same peer, which has spent its two.
    assert_too_many(&token_via(&app, Some("203.0.113.3")).await);
    assert_too_many(&token_via(&app, None).await);
}

#[tokio::test]
async fn behind_a_trusted_proxy_forwarded_clients_are_counted_apart() {
    let app = spawn_app_with(|config| {
        config.auth_rate_limit = 2;
        config.trusted_proxies = trusting(&["127.0.0.1"]);
    })
    .await;
    for attempt in 1..=2 {
        assert_let_through(
            &token_via(&app, Some("203.0.113.7")).await,
            &format!("first client, attempt {attempt}"),
        );
    }
    assert_too_many(&token_via(&app, Some("203.0.113.7")).await);

    // A second client behind the same proxy has its own allowance.
    assert_let_through(
        &token_via(&app, Some("198.51.100.9")).await,
        "second client",
    );
    // The first client cannot pass for the second by writing its address
    // first: the proxy appends the real one, and that is the one counted.
    assert_too_many(&token_via(&app, Some("198.51.100.9, 203.0.113.7")).await);
    // A chain through another trusted proxy is followed to its client.
    assert_let_through(
        &token_via(&app, Some("198.51.100.9, 127.0.0.1")).await,
        "second client, through two proxies",
    );
    assert_too_many(&token_via(&app, Some("198.51.100.9")).await);
    // The proxy itself, forwarding nobody, is a client of its own.
    assert_let_through(&token_via(&app, None).await, "the proxy itself");
}

#[tokio::test]
async fn the_wait_is_what_refills_one_request() {
    let app = spawn_app_with(|config| config.auth_rate_limit = 3).await;
    for attempt in 1..=3 {
        assert_let_through(&token_via(&app, None).await, &format!("attempt {attempt}"));
    }
    // Three a minute: one request comes back every 20 s.
    let seconds = assert_too_many(&token_via(&app, None).await);
    assert!((19..=20).contains(&seconds), "Retry-After {seconds}");
    // A refused request does not push the wait further.
    let again = assert_too_many(&token_via(&app, None).await);
    assert!(again <= seconds, "{again} after {seconds}");
}

#[tokio::test]
async fn registration_and_login_share_the_allowance_and_other_routes_have_none() {
    let app = spawn_app_with(|config| config.auth_rate_limit = 2).await;
    let registered = app.register("jdoe", PASSWORD).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    assert_let_through(&token_via(&app, None).await, "login");
    assert_too_many(&app.register("jane", PASSWORD).await);
    assert_too_many(&app.login("jdoe", PASSWORD).await);
    for _ in 0..5 {
        let health = app.get("/healthz", None).await;
        assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    }
}

/// The allowance is in the database, so a client spreading its requests
/// over two instances gets no more than from one.
#[tokio::test]
async fn the_limit_holds_across_two_instances() {
    let (a, b) = spawn_pair_with(|config| config.auth_rate_limit = 4).await;
    for (attempt, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        assert_let_through(&token_via(app, None).await, &format!("attempt {attempt}"));
    }
    assert_too_many(&token_via(&a, None).await);
    assert_too_many(&token_via(&b, None).await);
}
