use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn the_lessons_flow_works_end_to_end() {
    let app = spawn_demo_app().await;

    let reply = app.register("jdoe", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.json(),
        json!({"username": "jdoe", "name": "Test User", "role": "user"})
    );

    let jdoe = app.access_token("jdoe", PASSWORD).await;
    let me = app.get("/api/users/me", Some(&jdoe)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["scopes"], json!(["read", "write"]));

    let alice = app.alice_token().await;
    let forbidden = app.get("/api/users", Some(&alice)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.text, r#"{"error":"Not authorized"}"#);
    assert_eq!(forbidden.text.len(), 26);

    let admin = app.admin_token().await;
    let users = app.get("/api/users", Some(&admin)).await;
    assert_eq!(users.status, StatusCode::OK);
    assert_eq!(users.header("x-total-count"), Some("3"));
    let names: Vec<Value> = users
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, ["alice", "admin", "jdoe"]);
}

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let app = spawn_app().await;
    let reply = app.get("/healthz", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok"}));
}
