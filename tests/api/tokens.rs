//! Access tokens and the Bearer scheme: the J rows and Z7 of SECURITY.md.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const NOT_AUTHORIZED: &str = r#"{"error":"Not authorized"}"#;
const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;
/// A key the server does not know.
const WRONG_SECRET: &str = "an-attacker-chosen-secret-that-is-long-enough";

// --- Token surgery -----------------------------------------------------------

fn encode(part: &Value) -> String {
    URL_SAFE_NO_PAD.encode(part.to_string())
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The header, claims and signature of a JWT.
fn split(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS: {token}");
    (decode(parts[0]), decode(parts[1]), parts[2].to_string())
}

fn claims(token: &str) -> Value {
    split(token).1
}

/// `token` with its header replaced, payload and signature kept.
fn with_header(token: &str, header: &Value) -> String {
    let (_, claims, signature) = split(token);
    format!("{}.{}.{signature}", encode(header), encode(&claims))
}

/// `token` with its claims replaced, header and signature kept.
fn with_claims(token: &str, claims: &Value) -> String {
    let (header, _, signature) = split(token);
    format!("{}.{}.{signature}", encode(&header), encode(claims))
}

/// A token with exactly this header and these claims, signed with `secret`.
fn sign(header: &Value, claims: &Value, secret: &[u8], alg: Algorithm) -> String {
    let message = format!("{}.{}", encode(header), encode(claims));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), alg)
            .expect("signature");
    format!("{message}.{signature}")
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

// --- Assertions ----------------------------------------------------------------

/// Asserts a 401 `{"error": …}` with `Bearer error="invalid_token"`.
fn assert_invalid_token(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        reply.text
    );
    assert_eq!(
        reply.header("www-authenticate"),
        Some(INVALID_TOKEN),
        "{what}"
    );
    assert_error_body(reply);
}

/// Asserts a body that is exactly `{"error": "<message>"}`.
fn assert_error_body(reply: &Reply) {
    let body = reply.json();
    let object = body.as_object().expect("a JSON object");
    assert_eq!(object.len(), 1, "{}", reply.text);
    assert!(!reply.error().is_empty());
}

/// Asserts a 403 for a missing `scope`, per RFC 6750 §3.1.
fn assert_insufficient_scope(reply: &Reply, scope: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(format!(r#"Bearer error="insufficient_scope", scope="{scope}""#).as_str())
    );
    assert_eq!(reply.text, NOT_AUTHORIZED);
}

/// `GET /api/users/me` with a raw `Authorization` value.
async fn me_with_authorization(app: &TestApp, value: HeaderValue) -> Reply {
    app.send(
        app.client
            .get(app.url("/api/users/me"))
            .header(AUTHORIZATION, value),
    )
    .await
}

async fn me(app: &TestApp, token: &str) -> Reply {
    app.get("/api/users/me", Some(token)).await
}

/// Asserts that `token` works, so that a refusal of its forgery means something.
async fn assert_accepted(app: &TestApp, token: &str) {
    let reply = me(app, token).await;
    assert_eq!(reply.status, StatusCode::OK, "control: {}", reply.text);
}

async fn patch_user(app: &TestApp, admin: &str, id: i64, body: Value) -> Value {
    let reply = app
        .patch_json(&format!("/api/users/{id}"), Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

// --- J1–J4: what a token must be ------------------------------------------------

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let payload = token.split('.').nth(1).unwrap();
    for header in [json!({"alg": "none"}), json!({"alg": "none", "typ": "JWT"})] {
        let unsigned = format!("{}.{payload}.", encode(&header));
        assert_invalid_token(&me(&app, &unsigned).await, &unsigned);
    }
    assert_accepted(&app, &token).await;
}

#[tokio::test]
async fn only_hs256_is_accepted_whatever_the_header_says() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;

    for alg in [
        "HS384", "HS512", "RS256", "ES256", "none", "None", "NONE", "nOnE",
    ] {
        let forged = with_header(&token, &json!({"alg": alg, "typ": "JWT"}));
        assert_invalid_token(&me(&app, &forged).await, alg);
    }

    // Even genuinely signed with the server's own secret, another HMAC is refused.
    let claims = claims(&token);
    for (name, alg) in [("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512)] {
        let header = json!({"alg": name, "typ": "JWT"});
        let resigned = sign(&header, &claims, JWT_SECRET.as_bytes(), alg);
        assert_invalid_token(&me(&app, &resigned).await, name);
    }

    // The same claims signed HS256 with that secret work: the forging is sound.
    let control = sign(&hs256(), &claims, JWT_SECRET.as_bytes(), Algorithm::HS256);
    assert_accepted(&app, &control).await;
}

#[tokio::test]
async fn edited_claims_under_the_original_signature_are_refused() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let original = claims(&token);
    let edits = [
        ("role", json!("admin")),
        ("scopes", json!(["read", "write", "admin"])),
        ("scopes", json!(["read"])),
        ("sub", json!("admin")),
        ("uid", json!(2)),
        ("exp", json!(original["exp"].as_i64().unwrap() + 3600)),
    ];
    for (claim, value) in edits {
        let mut edited = original.clone();
        edited[claim] = value;
        let forged = with_claims(&token, &edited);
        assert_invalid_token(&me(&app, &forged).await, claim);
        let admin_route = app.get("/api/users", Some(&forged)).await;
        assert_invalid_token(&admin_route, claim);
    }
    assert_accepted(&app, &token).await;
}

#[tokio::test]
async fn an_edited_token_re_signed_with_a_wrong_key_is_refused() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let mut edited = claims(&token);
    edited["role"] = json!("admin");
    let forged = sign(&hs256(), &edited, WRONG_SECRET.as_bytes(), Algorithm::HS256);

    assert_invalid_token(&app.get("/api/users", Some(&forged)).await, "admin route");
    assert_invalid_token(&me(&app, &forged).await, "me");
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let app = spawn_demo_app().await;
    let now = jsonwebtoken::get_current_timestamp() as i64;
    // Claims of the right shape, for a real user, in a real session.
    let session = claims(&app.alice_token().await)["sid"].clone();
    let claims = json!({
        "sub": "alice", "uid": 1, "sid": session, "scopes": ["read", "write"],
        "role": "user", "type": "access", "iat": now, "exp": now + 600,
        "jti": "forged-jti", "iss": "todo-api", "aud": "todo-api"
    });
    let forged = sign(&hs256(), &claims, WRONG_SECRET.as_bytes(), Algorithm::HS256);
    assert_invalid_token(&me(&app, &forged).await, "another key");

    let control = sign(&hs256(), &claims, JWT_SECRET.as_bytes(), Algorithm::HS256);
    assert_accepted(&app, &control).await;
}

#[tokio::test]
async fn a_genuinely_signed_role_claim_grants_no_admin_rights() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let mut edited = claims(&token);
    edited["role"] = json!("admin");
    let resigned = sign(&hs256(), &edited, JWT_SECRET.as_bytes(), Algorithm::HS256);

    let reply = app.get("/api/users", Some(&resigned)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert_eq!(reply.text, NOT_AUTHORIZED);
    assert_eq!(me(&app, &resigned).await.json()["role"], "user");
}

#[tokio::test]
async fn malformed_tokens_are_401_never_500() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let parts: Vec<&str> = token.split('.').collect();
    let junk = "A".repeat(16 * 1024);
    let malformed = [
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        "a.b".to_string(),
        "a.b.c.d".to_string(),
        "!!!.???.***".to_string(),
        format!("{}.%%%%.{}", parts[0], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("not json"),
            parts[2]
        ),
        format!("{}.{junk}.{}", parts[0], parts[2]),
        junk.clone(),
        ".".to_string(),
        "..".to_string(),
    ];
    for bad in &malformed {
        let value = HeaderValue::from_str(&format!("Bearer {bad}")).unwrap();
        let reply = me_with_authorization(&app, value).await;
        assert_invalid_token(&reply, &bad[..bad.len().min(40)]);
    }

    // Non-ASCII bytes, in the token and inside a segment.
    for bad in [
        "\u{e9}.\u{e9}.\u{e9}".to_string(),
        format!("{}.{}\u{e9}.{}", parts[0], parts[1], parts[2]),
    ] {
        let value = HeaderValue::from_bytes(format!("Bearer {bad}").as_bytes()).unwrap();
        let reply = me_with_authorization(&app, value).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{bad}: {}",
            reply.text
        );
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{:?}",
            reply.headers
        );
        assert_error_body(&reply);
    }
}

// --- J5–J7 ----------------------------------------------------------------------

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let app = spawn_app_with(|config| config.tokens.access = Duration::from_secs(1)).await;
    assert_eq!(
        app.register("shortlived", PASSWORD).await.status,
        StatusCode::CREATED
    );
    let login = app.login("shortlived", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.json()["expires_in"], 1);
    let token = login.json()["access_token"].as_str().unwrap().to_string();
    assert_accepted(&app, &token).await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_invalid_token(&me(&app, &token).await, "expired");
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let app = spawn_demo_app().await;
    let login = app.login("alice", "wonderland").await;
    assert_eq!(login.status, StatusCode::OK);
    let refresh = login.json()["refresh_token"].as_str().unwrap().to_string();

    assert_invalid_token(&me(&app, &refresh).await, "refresh as bearer");
    let todos = app.get("/api/todos", Some(&refresh)).await;
    assert_invalid_token(&todos, "refresh on todos");
}

#[tokio::test]
async fn key_material_in_the_token_header_is_not_trusted() {
    let app = spawn_demo_app().await;
    let mut claims = claims(&app.alice_token().await);
    claims["role"] = json!("admin");
    // Anything that tried to fetch a key would connect here.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_url = format!("http://{}/jwks.json", trap.local_addr().unwrap());

    let attacker_jwk = json!({
        "kty": "oct",
        "k": URL_SAFE_NO_PAD.encode(WRONG_SECRET),
        "alg": "HS256",
        "kid": "attacker"
    });
    let forged = [
        (
            "jwk",
            sign(
                &json!({"alg": "HS256", "typ": "JWT", "jwk": attacker_jwk}),
                &claims,
                WRONG_SECRET.as_bytes(),
                Algorithm::HS256,
            ),
        ),
        (
            "jku",
            sign(
                &json!({"alg": "HS256", "typ": "JWT", "jku": trap_url, "kid": "attacker"}),
                &claims,
                WRONG_SECRET.as_bytes(),
                Algorithm::HS256,
            ),
        ),
        (
            "x5u",
            sign(
                &json!({"alg": "HS256", "typ": "JWT", "x5u": trap_url}),
                &claims,
                WRONG_SECRET.as_bytes(),
                Algorithm::HS256,
            ),
        ),
        (
            "kid path traversal, empty key",
            sign(
                &json!({"alg": "HS256", "typ": "JWT", "kid": "../../../../dev/null"}),
                &claims,
                b"",
                Algorithm::HS256,
            ),
        ),
        (
            "kid injection",
            sign(
                &json!({"alg": "HS256", "typ": "JWT", "kid": "x' UNION SELECT 'key"}),
                &claims,
                b"key",
                Algorithm::HS256,
            ),
        ),
    ];
    for (what, token) in &forged {
        assert_invalid_token(&me(&app, token).await, what);
        assert_invalid_token(&app.get("/api/users", Some(token)).await, what);
    }

    let fetched = tokio::time::timeout(Duration::from_millis(200), trap.accept()).await;
    assert!(
        fetched.is_err(),
        "the server fetched a key from the token's URL"
    );
}

// --- J9: the database is the authority ----------------------------------------------

#[tokio::test]
async fn a_demoted_admin_loses_admin_routes_on_the_next_request() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (id, _) = app.signed_up("deputy").await;
    patch_user(&app, &admin, id, json!({"role": "admin"})).await;
    let deputy = app.access_token("deputy", PASSWORD).await;
    assert_eq!(claims(&deputy)["role"], "admin");
    assert_eq!(
        app.get("/api/users", Some(&deputy)).await.status,
        StatusCode::OK
    );

    patch_user(&app, &admin, id, json!({"role": "user"})).await;
    let reply = app.get("/api/users", Some(&deputy)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert_eq!(reply.text, NOT_AUTHORIZED);
    let one = app.get("/api/users/2", Some(&deputy)).await;
    assert_eq!(one.status, StatusCode::FORBIDDEN);
    assert_eq!(one.text, NOT_AUTHORIZED);

    // The token itself still works for what a user may do.
    let me = me(&app, &deputy).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["role"], "user");
}

#[tokio::test]
async fn a_promoted_users_old_token_reaches_admin_routes() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (id, token) = app.signed_up("rising").await;
    assert_eq!(claims(&token)["role"], "user");
    let before = app.get("/api/users", Some(&token)).await;
    assert_eq!(before.status, StatusCode::FORBIDDEN);

    patch_user(&app, &admin, id, json!({"role": "admin"})).await;
    let after = app.get("/api/users", Some(&token)).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    assert_eq!(after.header("x-total-count"), Some("3"));
    assert_eq!(after.json().as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_disabled_users_token_stops_working_at_once() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (id, token) = app.signed_up("sleeper").await;
    assert_accepted(&app, &token).await;

    patch_user(&app, &admin, id, json!({"disabled": true})).await;
    assert_invalid_token(&me(&app, &token).await, "disabled");
    assert_invalid_token(&app.get("/api/todos", Some(&token)).await, "disabled");
}

#[tokio::test]
async fn a_deleted_users_token_stops_working_at_once() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (id, token) = app.signed_up("leaver").await;
    assert_accepted(&app, &token).await;

    let deleted = app.delete(&format!("/api/users/{id}"), Some(&admin)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_invalid_token(&me(&app, &token).await, "deleted");
    assert_invalid_token(&app.get("/api/todos", Some(&token)).await, "deleted");
}

#[tokio::test]
async fn a_deleted_users_token_stays_refused_after_the_name_is_taken_again() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (old_id, old_token) = app.signed_up("phoenix").await;
    let deleted = app
        .delete(&format!("/api/users/{old_id}"), Some(&admin))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let (new_id, new_token) = app.signed_up("phoenix").await;
    assert_ne!(new_id, old_id, "a deleted user's id was handed out again");
    assert_accepted(&app, &new_token).await;
    assert_invalid_token(&me(&app, &old_token).await, "old token, name reused");

    // The new user's own live session under the old id: still refused.
    let mut stale = claims(&new_token);
    stale["uid"] = json!(old_id);
    let forged = sign(&hs256(), &stale, JWT_SECRET.as_bytes(), Algorithm::HS256);
    assert_invalid_token(&me(&app, &forged).await, "uid of the deleted user");
}

// --- J10–J13: the Bearer scheme ----------------------------------------------------

#[tokio::test]
async fn an_access_token_in_the_query_string_is_not_accepted() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let reply = app
        .get(&format!("/api/users/me?access_token={token}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert_error_body(&reply);
    assert!(!reply.text.contains("alice"), "{}", reply.text);
}

#[tokio::test]
async fn a_request_without_credentials_gets_a_bare_bearer_challenge() {
    let app = spawn_demo_app().await;
    for path in ["/api/users/me", "/api/todos", "/api/users"] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{path}");
        assert_error_body(&reply);
    }
}

#[tokio::test]
async fn a_bad_token_gets_an_invalid_token_challenge() {
    let app = spawn_demo_app().await;
    for path in ["/api/users/me", "/api/todos", "/api/users"] {
        let reply = app.get(path, Some("not-a-token")).await;
        assert_invalid_token(&reply, path);
    }
}

#[tokio::test]
async fn a_read_only_token_gets_insufficient_scope_on_a_write() {
    let app = spawn_demo_app().await;
    let login = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let token = login.json()["access_token"].as_str().unwrap().to_string();

    let reply = app
        .post_json("/api/todos", Some(&token), json!({"title": "nope"}))
        .await;
    assert_insufficient_scope(&reply, "write");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let value = HeaderValue::from_str(&format!("{scheme} {token}")).unwrap();
        let reply = me_with_authorization(&app, value).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {}", reply.text);
        assert_eq!(reply.json()["username"], "alice");
    }
}

#[tokio::test]
async fn another_scheme_or_an_empty_bearer_is_refused() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    for value in [
        format!("Basic {token}"),
        format!("Token {token}"),
        token.clone(),
        "Bearer".to_string(),
        "Bearer ".to_string(),
    ] {
        let reply = me_with_authorization(&app, HeaderValue::from_str(&value).unwrap()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{value:?}: {}",
            reply.text
        );
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{value:?}: {:?}",
            reply.headers
        );
        assert_error_body(&reply);
    }
}

#[tokio::test]
async fn two_authorization_headers_are_refused_without_a_server_error() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let bearer = format!("Bearer {token}");
    for second in [bearer.clone(), "Bearer not-a-token".to_string()] {
        let reply = app
            .send(
                app.client
                    .get(app.url("/api/users/me"))
                    .header(AUTHORIZATION, bearer.as_str())
                    .header(AUTHORIZATION, second.as_str()),
            )
            .await;
        assert!(
            matches!(
                reply.status,
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
            ),
            "{}: {}",
            reply.status,
            reply.text
        );
        assert_error_body(&reply);
    }
}

#[tokio::test]
async fn a_64_kib_authorization_header_is_refused_without_a_server_error() {
    let app = spawn_demo_app().await;
    let token = app.alice_token().await;
    let huge = format!("Bearer {token}{}", "A".repeat(64 * 1024));
    let reply = me_with_authorization(&app, HeaderValue::from_str(&huge).unwrap()).await;
    assert!(
        matches!(
            reply.status,
            StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ),
        "{}: {}",
        reply.status,
        reply.text
    );
    assert!(!reply.text.contains("alice"), "{}", reply.text);
    // The server is still there.
    assert_accepted(&app, &token).await;
}

// --- Z7: effective scopes = token ∩ database ------------------------------------------

#[tokio::test]
async fn a_read_only_token_may_read_but_not_write() {
    let app = spawn_demo_app().await;
    let full = app.alice_token().await;
    let todo = app.create_todo(&full, json!({"title": "mine"})).await;
    let path = format!("/api/todos/{}", todo["id"]);

    let login = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(login.json()["scope"], "read");
    let read_only = login.json()["access_token"].as_str().unwrap().to_string();

    let list = app.get("/api/todos", Some(&read_only)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    let one = app.get(&path, Some(&read_only)).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["title"], "mine");

    let writes = [
        (
            Method::POST,
            "/api/todos".to_string(),
            Some(json!({"title": "new"})),
        ),
        (
            Method::PUT,
            path.clone(),
            Some(json!({"title": "replaced"})),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"completed": true})),
        ),
        (Method::DELETE, path.clone(), None),
    ];
    for (method, target, body) in writes {
        let mut request = app.request(method.clone(), &target, Some(&read_only));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = app.send(request).await;
        assert_insufficient_scope(&reply, "write");
    }

    // Nothing changed.
    let after = app.get(&path, Some(&full)).await.json();
    assert_eq!(after["title"], "mine");
    assert_eq!(after["completed"], false);
    assert_eq!(
        app.get("/api/todos", Some(&full))
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn removing_the_write_scope_stops_a_full_scope_token_at_once() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (id, token) = app.signed_up("writer").await;
    assert_eq!(claims(&token)["scopes"], json!(["read", "write"]));
    app.create_todo(&token, json!({"title": "before"})).await;

    let changed = patch_user(&app, &admin, id, json!({"scopes": ["read"]})).await;
    assert_eq!(changed["scopes"], json!(["read"]));
    let refused = app
        .post_json("/api/todos", Some(&token), json!({"title": "during"}))
        .await;
    assert_insufficient_scope(&refused, "write");
    let list = app.get("/api/todos", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.json().as_array().unwrap().len(), 1);

    patch_user(&app, &admin, id, json!({"scopes": ["read", "write"]})).await;
    let created = app
        .post_json("/api/todos", Some(&token), json!({"title": "after"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["title"], "after");
}
