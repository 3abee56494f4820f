//! Sessions a user can see and end, and an admin's view of a user's, on
//! one instance and across two.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const SESSION_KEYS: [&str; 8] = [
    "id",
    "method",
    "created_at",
    "last_used_at",
    "expires_at",
    "address",
    "user_agent",
    "current",
];

/// The session id (`sid`) a token belongs to.
fn sid_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).unwrap();
    claims["sid"].as_str().expect("sid").to_string()
}

impl TestApp {
    /// A login from a client that names itself `agent`: the token pair.
    async fn login_as_agent(&self, username: &str, agent: &str) -> Value {
        let reply = self
            .send(
                self.client
                    .post(self.url("/auth/token"))
                    .header("user-agent", agent)
                    .form(&[("username", username), ("password", PASSWORD)]),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }

    async fn sessions_of(&self, path: &str, token: &str) -> Vec<Value> {
        let reply = self.get(path, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json().as_array().expect("an array").clone()
    }
}

fn access(pair: &Value) -> String {
    pair["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_user_sees_their_live_sessions_newest_first_with_where_they_began() {
    let app = spawn_app().await;
    app.register("jdoe", PASSWORD).await;
    let laptop = access(&app.login_as_agent("jdoe", "laptop-browser/1.0").await);
    let phone = access(&app.login_as_agent("jdoe", "phone-app/2.0").await);

    let listed = app.sessions_of("/api/users/me/sessions", &laptop).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for session in &listed {
        let keys: BTreeSet<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(SESSION_KEYS));
        assert_eq!(session["method"], "password");
        assert_eq!(session["address"], "127.0.0.1");
        for time in ["created_at", "last_used_at", "expires_at"] {
            let text = session[time].as_str().unwrap();
            assert!(
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .is_ok()
                    && text.ends_with('Z'),
                "{time}: {text}"
            );
        }
    }
    assert_eq!(listed[0]["id"], sid_of(&phone), "newest first");
    assert_eq!(listed[0]["user_agent"], "phone-app/2.0");
    assert_eq!(listed[0]["current"], false);
    assert_eq!(listed[1]["id"], sid_of(&laptop));
    assert_eq!(listed[1]["user_agent"], "laptop-browser/1.0");
    assert_eq!(listed[1]["current"], true);
}

#[tokio::test]
async fn ending_a_session_stops_its_tokens_at_once_and_only_the_owner_may() {
    let app = spawn_app().await;
    app.register("jdoe", PASSWORD).await;
    let (_, mallory) = app.signed_up("mallory").await;
    let kept = access(&app.login_as_agent("jdoe", "kept").await);
    let ended_pair = app.login_as_agent("jdoe", "ended").await;
    let ended = access(&ended_pair);
    let ended_id = sid_of(&ended);

    let foreign = app
        .delete(
            &format!("/api/users/me/sessions/{ended_id}"),
            Some(&mallory),
        )
        .await;
    assert_error_body(&foreign, StatusCode::NOT_FOUND, "another user's session");
    let unknown = app
        .delete("/api/users/me/sessions/no-such-session", Some(&kept))
        .await;
    assert_error_body(&unknown, StatusCode::NOT_FOUND, "an unknown session");
    assert_eq!(
        app.get("/api/users/me", Some(&ended)).await.status,
        StatusCode::OK
    );

    let reply = app
        .delete(&format!("/api/users/me/sessions/{ended_id}"), Some(&kept))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(
        app.get("/api/users/me", Some(&ended)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = ended_pair["refresh_token"].as_str().unwrap();
    let refreshed = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    let listed = app.sessions_of("/api/users/me/sessions", &kept).await;
    let ids: Vec<&Value> = listed.iter().map(|s| &s["id"]).collect();
    assert_eq!(
        ids,
        [&Value::from(sid_of(&kept))],
        "ended sessions are not listed"
    );
}

#[tokio::test]
async fn a_session_ended_on_one_instance_stops_on_the_other() {
    let (a, b) = spawn_pair().await;
    a.register("jdoe", PASSWORD).await;
    let on_a = a.access_token("jdoe", PASSWORD).await;
    let on_b = b.access_token("jdoe", PASSWORD).await;
    assert_eq!(
        b.get("/api/users/me", Some(&on_b)).await.status,
        StatusCode::OK
    );
    let reply = a
        .delete(
            &format!("/api/users/me/sessions/{}", sid_of(&on_b)),
            Some(&on_a),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        b.get("/api/users/me", Some(&on_b)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_admin_lists_and_ends_a_users_sessions() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let alice = app.alice_token().await;
    let (id, token) = app.signed_up("jdoe").await;

    let refused = app
        .get(&format!("/api/users/{id}/sessions"), Some(&alice))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.text, r#"{"error":"Not authorized"}"#);
    let unknown = app.get("/api/users/9999/sessions", Some(&admin)).await;
    assert_error_body(&unknown, StatusCode::NOT_FOUND, "unknown user");

    let listed = app
        .sessions_of(&format!("/api/users/{id}/sessions"), &admin)
        .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], sid_of(&token));
    assert_eq!(listed[0]["current"], false);

    let not_admin = app
        .delete(&format!("/api/users/{id}/sessions"), Some(&alice))
        .await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);
    let ended = app
        .delete(&format!("/api/users/{id}/sessions"), Some(&admin))
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.text);
    assert_eq!(
        app.get("/api/users/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let after = app
        .sessions_of(&format!("/api/users/{id}/sessions"), &admin)
        .await;
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(
        app.get("/api/users/me", Some(&admin)).await.status,
        StatusCode::OK,
        "the admin's own session goes on"
    );
}

/// Makes the session's `last_used_at` `seconds` older, then reads it.
async fn age_last_used(app: &TestApp, session: &str, seconds: i64) -> i64 {
    match &app.db.url {
        todo_api::db::DatabaseUrl::Sqlite(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            db.execute(
                "UPDATE sessions SET last_used_at = last_used_at - ?2 WHERE id = ?1",
                rusqlite::params![session, seconds],
            )
            .unwrap();
            db.query_row(
                "SELECT last_used_at FROM sessions WHERE id = ?1",
                [session],
                |row| row.get(0),
            )
            .unwrap()
        }
        todo_api::db::DatabaseUrl::Postgres(_) => {
            let db = app.db.postgres_client().await;
            db.execute(
                "UPDATE sessions SET last_used_at = last_used_at - $2 WHERE id = $1",
                &[&session, &seconds],
            )
            .await
            .unwrap();
            db.query_one(
                "SELECT last_used_at FROM sessions WHERE id = $1",
                &[&session],
            )
            .await
            .unwrap()
            .get(0)
        }
    }
}

/// "Last used" is noted by an access token once it is a minute old, and
/// not on every request: reads stay reads.
#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let sid = sid_of(&token);
    let recent = age_last_used(&app, &sid, 30).await;
    assert_eq!(
        app.get("/api/users/me", Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        age_last_used(&app, &sid, 0).await,
        recent,
        "half a minute old: left alone"
    );

    let stale = age_last_used(&app, &sid, 120).await;
    assert_eq!(
        app.get("/api/users/me", Some(&token)).await.status,
        StatusCode::OK
    );
    let noted = age_last_used(&app, &sid, 0).await;
    assert!(
        noted >= stale + 120,
        "a stale session is noted again: {stale} -> {noted}"
    );
}
