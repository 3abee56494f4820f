//! What the logs of a real run of the binary contain, and what never
//! (checklist rows G1–G3, C1).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::process::*;

const EVIL_NAME: &str = "evil\n\u{1b}[31mFORGED line";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g1_g2_g3_the_logs_name_events_users_and_addresses_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let admin_password = "ops admin passphrase 7f3a";
    let created = command(dir.path())
        .args([
            "create-user",
            "--username",
            "root1",
            "--name",
            "Root",
            "--admin",
        ])
        .env("TODO_API_PASSWORD", admin_password)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");

    let server = Running::start(dir.path(), "json", &[]);
    let http = Http::new(&server.base);
    let first_password = "gina first passphrase 91c2";
    let second_password = "gina second passphrase 4d8e";
    let mut secrets: Vec<String> = vec![
        admin_password.into(),
        first_password.into(),
        second_password.into(),
    ];

    let (status, _) = http
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"username": "gina", "password": first_password, "name": "Gina"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, tokens) = http.login("gina", first_password).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    secrets.extend([access.clone(), refresh.clone()]);
    let (status, rotated) = http
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, StatusCode::OK);
    secrets.extend([
        rotated["access_token"].as_str().unwrap().to_string(),
        rotated["refresh_token"].as_str().unwrap().to_string(),
    ]);
    // Reuse of the spent refresh token; a token in the query string.
    let (status, _) = http
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = http
        .call(
            Method::GET,
            &format!("/api/todos?access_token={access}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = http.login("gina", "a wrong passphrase").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, tokens) = http.login("gina", first_password).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    secrets.push(access.clone());
    secrets.push(tokens["refresh_token"].as_str().unwrap().to_string());
    let (status, _) = http
        .call(Method::GET, "/api/users", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = http
        .call(
            Method::PUT,
            "/api/users/me/password",
            Some(&access),
            Some(json!({"current_password": first_password, "new_password": second_password})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, tokens) = http.login("gina", second_password).await;
    assert_eq!(status, StatusCode::OK);
    secrets.push(tokens["access_token"].as_str().unwrap().to_string());
    let (status, admin) = http.login("root1", admin_password).await;
    assert_eq!(status, StatusCode::OK);
    let admin = admin["access_token"].as_str().unwrap().to_string();
    secrets.push(admin.clone());
    let (_, me) = http
        .call(
            Method::GET,
            "/api/users/me",
            tokens["access_token"].as_str(),
            None,
        )
        .await;
    let gina_id = me["id"].as_i64().unwrap();
    let (status, _) = http
        .call(
            Method::PATCH,
            &format!("/api/users/{gina_id}"),
            Some(&admin),
            Some(json!({"department": "ops", "clearance_level": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = http.call(Method::GET, "/api/todos", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = http.login(EVIL_NAME, "whatever it is").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (exit, log) = server.stop();
    assert!(
        exit.success(),
        "SIGTERM should end the server with 0: {exit}\n{log}"
    );

    // G1: no password, JWT or refresh token, no Authorization header.
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the log: {secret}"
        );
    }
    assert!(!log.contains("eyJ"), "something JWT-like is in the log");
    assert!(!log.to_ascii_lowercase().contains("bearer "));

    // Every line is one JSON record: nothing was forged by the evil name.
    let lines = json_lines(&log);
    // Records of the `log` crate (the migrations) name their own origin.
    assert!(
        lines.iter().any(|l| l["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("refinery"))
            && l["fields"]["log.target"].is_string()),
        "{log}"
    );
    let utc_time = |record: &Value| {
        record["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T'))
    };

    // G2: security events with UTC time, user and client address.
    let from_client = |record: &&Value| record["span"]["client"] == "127.0.0.1";
    for (message, user) in [
        ("login succeeded", "gina"),
        ("login failed", "gina"),
        ("login succeeded", "root1"),
        ("password changed; every session ended", "gina"),
    ] {
        let found = records(&lines, message)
            .into_iter()
            .filter(from_client)
            .find(|r| r["fields"]["user"] == user)
            .unwrap_or_else(|| panic!("no {message:?} for {user}:\n{log}"));
        assert!(utc_time(found), "{found}");
        assert!(
            found["span"]["request_id"]
                .as_str()
                .is_some_and(|id| id.len() == 36)
        );
    }
    let changed = records(&lines, "user changed")
        .into_iter()
        .find(|r| r["fields"]["admin"] == "root1" && r["fields"]["user"] == "gina")
        .unwrap_or_else(|| panic!("no admin change logged:\n{log}"));
    assert!(from_client(&changed));
    let reused = records(&lines, "refresh token reused: session revoked");
    assert_eq!(reused.len(), 1, "{log}");
    let requests = records(&lines, "request");
    let denied = requests
        .iter()
        .find(|r| r["fields"]["status"] == 403 && r["span"]["route"] == "/api/users")
        .unwrap_or_else(|| panic!("no 403 logged:\n{log}"));
    assert_eq!(denied["span"]["user"], "gina");
    assert_eq!(denied["span"]["client"], "127.0.0.1");
    assert!(utc_time(denied));
    let unauthorized = requests
        .iter()
        .filter(|r| r["fields"]["status"] == 401 && r["span"]["route"] == "/api/todos")
        .count();
    assert_eq!(unauthorized, 2, "{log}");
    // Each request is logged once, with its matched route and latency.
    let patches: Vec<_> = requests
        .iter()
        .filter(|r| r["span"]["route"] == "/api/users/{id}")
        .collect();
    assert_eq!(patches.len(), 1, "{log}");
    assert_eq!(patches[0]["span"]["method"], "PATCH");
    assert!(patches[0]["fields"]["latency_ms"].is_number());

    // G3: the evil name is logged escaped.
    let failed: Vec<_> = records(&lines, "login failed")
        .into_iter()
        .filter_map(|r| r["fields"]["user"].as_str())
        .collect();
    let escaped = EVIL_NAME.escape_debug().to_string();
    assert!(failed.contains(&escaped.as_str()), "{failed:?}");
    assert!(!log.contains('\u{1b}'));
    assert!(!log.contains("\nFORGED"));
}

/// Behind a trusted proxy the log names the forwarded client; from any
/// other peer, the peer, whatever the header says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_log_lines_name_the_client_a_trusted_proxy_forwards_for() {
    for (trusted, expected) in [("127.0.0.1", "203.0.113.7"), ("10.0.0.0/8", "127.0.0.1")] {
        let dir = tempfile::tempdir().unwrap();
        let server = Running::start(dir.path(), "json", &[("TODO_API_TRUSTED_PROXIES", trusted)]);
        let reply = reqwest::Client::new()
            .get(format!("{}/healthz", server.base))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        let (exit, log) = server.stop();
        assert!(exit.success(), "{exit}\n{log}");
        let lines = json_lines(&log);
        let request = records(&lines, "request")
            .into_iter()
            .find(|r| r["span"]["route"] == "/healthz")
            .unwrap_or_else(|| panic!("no request logged:\n{log}"));
        assert_eq!(request["span"]["client"], expected, "trusting {trusted}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_g3_without_demo_there_are_no_default_accounts_and_text_logs_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(dir.path(), "text", &[]);
    let http = Http::new(&server.base);
    for (user, password) in [("admin", "secret"), ("alice", "wonderland")] {
        let (status, body) = http.login(user, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}: {body}");
    }
    let (status, _) = http.login(EVIL_NAME, "whatever it is").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (exit, log) = server.stop();
    assert!(exit.success(), "{exit}\n{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(log.lines().all(|line| !line.starts_with("FORGED")), "{log}");
    assert!(log.contains(&EVIL_NAME.escape_debug().to_string()), "{log}");
    assert!(log.contains(r#"route="/auth/token""#), "{log}");
    assert!(log.contains("client=127.0.0.1"), "{log}");
}

/// With the access lines filtered out, security events are still logged,
/// and still name their request and client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_security_events_keep_their_request_when_the_access_lines_are_filtered_out() {
    let dir = tempfile::tempdir().unwrap();
    let filter = [("RUST_LOG", "info,todo_api::telemetry=warn")];
    let server = Running::start(dir.path(), "json", &filter);
    let http = Http::new(&server.base);
    let (status, _) = http.login("nobody", "a wrong passphrase").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (exit, log) = server.stop();
    assert!(exit.success(), "{exit}\n{log}");
    let lines = json_lines(&log);
    assert!(records(&lines, "request").is_empty(), "{log}");
    let failed = records(&lines, "login failed");
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(failed[0]["span"]["client"], "127.0.0.1");
    assert_eq!(failed[0]["span"]["route"], "/auth/token");
    assert_eq!(failed[0]["span"]["method"], "POST");
}
