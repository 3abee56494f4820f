//! Two-step login (TOTP, RFC 6238), against the contract: enrolment,
//! confirmation, the password grant's second factor, replays, recovery
//! codes, turning it off and an admin's reset. Codes come from an
//! authenticator built from the otpauth URI alone, as an app would.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use totp_rs::TOTP;

use crate::helpers::*;

const MFA_REQUIRED: &str = r#"{"error":"mfa_required"}"#;
const INVALID_CODE: &str = r#"{"error":"Invalid one-time code"}"#;
const INCORRECT_PASSWORD: &str = r#"{"error":"Incorrect password"}"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An authenticator app: it knows only what the otpauth URI says.
struct Authenticator(TOTP);

impl Authenticator {
    fn from_uri(uri: &str) -> Self {
        Self(TOTP::from_url(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}")))
    }

    /// The code of the step `steps` away from the current one.
    fn code(&self, steps: i64) -> String {
        let at = now().checked_add_signed(steps * 30).unwrap();
        self.0.generate(at)
    }
}

impl TestApp {
    async fn start_totp(&self, token: &str, password: &str) -> Reply {
        self.post_json(
            "/api/users/me/mfa/totp",
            Some(token),
            json!({"password": password}),
        )
        .await
    }

    async fn confirm_totp(&self, token: &str, code: &str) -> Reply {
        self.post_json(
            "/api/users/me/mfa/totp/confirm",
            Some(token),
            json!({"code": code}),
        )
        .await
    }

    async fn delete_json(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(self.request(Method::DELETE, path, token).json(&body))
            .await
    }

    async fn login_with(&self, username: &str, field: &str, code: &str) -> Reply {
        self.token_form(&[
            ("username", username),
            ("password", PASSWORD),
            (field, code),
        ])
        .await
    }

    /// Turns two-step login on for a new user: (id, the token of the
    /// session that did it, the authenticator, the recovery codes).
    async fn with_two_step(&self, username: &str) -> (i64, String, Authenticator, Vec<String>) {
        let (id, token) = self.signed_up(username).await;
        let started = self.start_totp(&token, PASSWORD).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        let app = Authenticator::from_uri(started.json()["otpauth_uri"].as_str().unwrap());
        let confirmed = self.confirm_totp(&token, &app.code(0)).await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
        let codes = confirmed.json()["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        (id, token, app, codes)
    }
}

#[tokio::test]
async fn enrolment_gives_a_base32_secret_and_the_uri_authenticator_apps_read() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let wrong = app.start_totp(&token, "not my password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text, INCORRECT_PASSWORD);
    let started = app.start_totp(&token, PASSWORD).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let body = started.json();
    let secret = body["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    assert_eq!(
        body["otpauth_uri"],
        format!("otpauth://totp/todo-api:jdoe?secret={secret}&issuer=todo-api")
    );
    // Pending: logins need no code yet, and asking again replaces it.
    assert_eq!(app.login("jdoe", PASSWORD).await.status, StatusCode::OK);
    let again = app.start_totp(&token, PASSWORD).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(again.json()["secret"], secret);
    let me = app.get("/api/users/me", Some(&token)).await.json();
    assert_eq!(me["mfa_enabled"], false);
}

#[tokio::test]
async fn confirmation_needs_a_code_of_the_pending_secret_and_gives_ten_recovery_codes() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let nothing = app.confirm_totp(&token, "123456").await;
    assert_error_body(&nothing, StatusCode::CONFLICT, "nothing pending");
    let started = app.start_totp(&token, PASSWORD).await;
    let authenticator = Authenticator::from_uri(started.json()["otpauth_uri"].as_str().unwrap());
    let far = authenticator.code(-5);
    let wrong = app.confirm_totp(&token, &far).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.text, INVALID_CODE);
    let confirmed = app.confirm_totp(&token, &authenticator.code(0)).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let codes = confirmed.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::BTreeSet<_> = codes.iter().map(Value::to_string).collect();
    assert_eq!(distinct.len(), 10);
    assert!(codes.iter().all(|c| c.as_str().unwrap().len() >= 10));
    // The session that turned it on goes on; it is on now.
    let me = app.get("/api/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["mfa_enabled"], true);
    let twice = app.start_totp(&token, PASSWORD).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.text, r#"{"error":"Two-step login is already on"}"#);
}

#[tokio::test]
async fn turning_it_on_ends_every_other_session() {
    let app = spawn_app().await;
    app.register("jdoe", PASSWORD).await;
    let other = app.access_token("jdoe", PASSWORD).await;
    let token = app.access_token("jdoe", PASSWORD).await;
    let started = app.start_totp(&token, PASSWORD).await;
    let authenticator = Authenticator::from_uri(started.json()["otpauth_uri"].as_str().unwrap());
    let confirmed = app.confirm_totp(&token, &authenticator.code(0)).await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/users/me", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/users/me", Some(&token)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_two_step_login_on_the_password_grant_needs_a_code_that_works_once() {
    let app = spawn_app().await;
    let (_, _, authenticator, _) = app.with_two_step("jdoe").await;

    let bare = app.login("jdoe", PASSWORD).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
    assert_eq!(bare.text, MFA_REQUIRED);
    // A wrong password with no code is still the plain 401.
    let wrong_password = app.login("jdoe", "not the password").await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.error(), "Incorrect username or password");

    // The confirming code's step is spent: it and earlier steps are refused.
    for spent in [authenticator.code(0), authenticator.code(-1)] {
        let replay = app.login_with("jdoe", "otp", &spent).await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{spent}");
        assert_eq!(replay.text, INVALID_CODE);
        assert!(replay.header("www-authenticate").is_some());
    }
    let next = authenticator.code(1);
    let ok = app.login_with("jdoe", "otp", &next).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(ok.json()["access_token"].is_string());
    let replay = app.login_with("jdoe", "otp", &next).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.text, INVALID_CODE);
    for malformed in ["", "12345", "abcdef", "1234567"] {
        let reply = app.login_with("jdoe", "otp", malformed).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{malformed:?}");
    }
    // Refresh tokens need no code.
    let refresh = ok.json()["refresh_token"].as_str().unwrap().to_string();
    let refreshed = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
}

#[tokio::test]
async fn a_recovery_code_logs_in_once() {
    let app = spawn_app().await;
    let (_, _, _, codes) = app.with_two_step("jdoe").await;
    let first = app.login_with("jdoe", "recovery_code", &codes[0]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = app.login_with("jdoe", "recovery_code", &codes[0]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.text, INVALID_CODE);
    // Typed loosely, another one works too.
    let loose = codes[1].to_lowercase().replace('-', "");
    let second = app.login_with("jdoe", "recovery_code", &loose).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let made_up = app
        .login_with("jdoe", "recovery_code", "AAAA-BBBB-CCCC-DDDD")
        .await;
    assert_eq!(made_up.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_codes_are_counted_by_the_per_account_throttle() {
    let app = spawn_app().await;
    let (_, _, authenticator, _) = app.with_two_step("jdoe").await;
    // The right password each time must not reset the count.
    for _ in 0..5 {
        let wrong = app.login_with("jdoe", "otp", "000000").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = app.login_with("jdoe", "otp", &authenticator.code(1)).await;
    assert_too_many(&throttled);
}

#[tokio::test]
async fn turning_it_off_needs_the_password_and_a_code() {
    let app = spawn_app().await;
    let (_, token, authenticator, codes) = app.with_two_step("jdoe").await;
    let other = app.login_with("jdoe", "otp", &authenticator.code(1)).await;
    let other = other.json()["access_token"].as_str().unwrap().to_string();

    let wrong_password = app
        .delete_json(
            "/api/users/me/mfa",
            Some(&token),
            json!({"password": "nope nope nope", "code": codes[0]}),
        )
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.text, INCORRECT_PASSWORD);
    let wrong_code = app
        .delete_json(
            "/api/users/me/mfa",
            Some(&token),
            json!({"password": PASSWORD, "code": "000000"}),
        )
        .await;
    assert_eq!(wrong_code.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_code.text, INVALID_CODE);
    let off = app
        .delete_json(
            "/api/users/me/mfa",
            Some(&token),
            json!({"password": PASSWORD, "code": codes[0]}),
        )
        .await;
    assert_eq!(off.status, StatusCode::NO_CONTENT, "{}", off.text);
    assert_eq!(
        app.get("/api/users/me", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED,
        "every other session ends"
    );
    let me = app.get("/api/users/me", Some(&token)).await.json();
    assert_eq!(me["mfa_enabled"], false);
    assert_eq!(app.login("jdoe", PASSWORD).await.status, StatusCode::OK);
    let twice = app
        .delete_json(
            "/api/users/me/mfa",
            Some(&token),
            json!({"password": PASSWORD, "code": codes[1]}),
        )
        .await;
    assert_error_body(&twice, StatusCode::CONFLICT, "already off");
}

#[tokio::test]
async fn an_admin_resets_a_lost_device_and_ends_every_session() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (id, token, _, _) = app.with_two_step("jdoe").await;
    let alice = app.alice_token().await;

    let refused = app
        .delete(&format!("/api/users/{id}/mfa"), Some(&alice))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.text, r#"{"error":"Not authorized"}"#);
    let unknown = app.delete("/api/users/9999/mfa", Some(&admin)).await;
    assert_error_body(&unknown, StatusCode::NOT_FOUND, "unknown user");
    let reset = app
        .delete(&format!("/api/users/{id}/mfa"), Some(&admin))
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.text);
    assert_eq!(
        app.get("/api/users/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let back = app.login("jdoe", PASSWORD).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    let user = app
        .get(&format!("/api/users/{id}"), Some(&admin))
        .await
        .json();
    assert_eq!(user["mfa_enabled"], false);
}

#[tokio::test]
async fn without_a_key_two_step_login_cannot_be_turned_on() {
    let app = spawn_app_with(|config| {
        config.totp_keys = todo_api::config::TotpKeySource::Unset;
    })
    .await;
    let (_, token) = app.signed_up("jdoe").await;
    let refused = app.start_totp(&token, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused.text,
        r#"{"error":"Two-step login is not configured"}"#
    );
}

/// The secret at rest is sealed: neither its base32 nor its bytes are in
/// the database file or row.
#[tokio::test]
async fn the_secret_is_stored_sealed() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let started = app.start_totp(&token, PASSWORD).await;
    let secret = started.json()["secret"].as_str().unwrap().to_string();
    let stored: String = match &app.db.url {
        todo_api::db::DatabaseUrl::Sqlite(path) => rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT sealed FROM totp_secrets", [], |row| row.get(0))
            .unwrap(),
        todo_api::db::DatabaseUrl::Postgres(_) => app
            .db
            .postgres_client()
            .await
            .query_one("SELECT sealed FROM totp_secrets", &[])
            .await
            .unwrap()
            .get(0),
    };
    assert!(stored.starts_with("v1."), "{stored}");
    assert!(!stored.contains(&secret));
    assert!(!stored.to_lowercase().contains(&secret.to_lowercase()));
}
