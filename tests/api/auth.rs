//! Registration and password login: the P and L rows of SECURITY.md.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::helpers::*;

/// The 401 body of a failed password login, fixed by the contract.
const BAD_CREDENTIALS: &str = r#"{"error":"Incorrect username or password"}"#;
/// The 400 body of a taken username, fixed by the contract.
const USER_EXISTS: &str = r#"{"error":"User already exists"}"#;

/// The claims of a JWT, read without checking its signature.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

/// A password of exactly `chars` ASCII characters that is on no common list.
fn long_password(chars: usize) -> String {
    "Tr0ub4dor&3 Staple Vortex Quill "
        .chars()
        .cycle()
        .take(chars)
        .collect()
}

/// Asserts a 422 whose details name `field`.
fn assert_invalid(reply: &Reply, field: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "expected 422 for {field}: {}",
        reply.text
    );
    assert!(reply.json()["error"].is_string(), "{}", reply.text);
    assert!(
        reply.failed_fields().iter().any(|f| f == field),
        "details do not name {field}: {}",
        reply.text
    );
}

/// Asserts a 201 registration answer for `username`.
fn assert_registered(reply: &Reply, username: &str) {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"username": username, "name": "Test User", "role": "user"})
    );
}

/// Asserts a JSON error response with `status`.
fn assert_json_error(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "not JSON: {:?}",
        reply.headers
    );
    assert!(!reply.error().is_empty());
}

/// Asserts a successful token response and returns its JSON.
fn assert_token(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert!(body["access_token"].is_string(), "{}", reply.text);
    body
}

/// Every header but `Date` and `X-Request-Id` (new for every request),
/// sorted, for byte-for-byte comparison.
fn headers_without_date(reply: &Reply) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = reply
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    headers.sort();
    headers
}

/// Asserts that a body holds neither `password` nor anything like a hash.
fn assert_no_secrets(reply: &Reply, password: &str) {
    for secret in [password, "password_hash", "$argon2"] {
        assert!(
            !reply.text.contains(secret),
            "response body leaks {secret:?}: {}",
            reply.text
        );
    }
}

async fn register_body(app: &TestApp, body: Value) -> Reply {
    app.post_json("/auth/register", None, body).await
}

// --- P1–P6: passwords ------------------------------------------------------

#[tokio::test]
async fn a_password_needs_at_least_eight_characters() {
    let app = spawn_app().await;

    let short = app.register("seven", "xq7#Lm2").await;
    assert_invalid(&short, "password");

    let eight = app.register("eight", "xq7#Lm2p").await;
    assert_registered(&eight, "eight");
}

#[tokio::test]
async fn passwords_of_64_and_256_characters_work_and_257_is_refused() {
    let app = spawn_app().await;
    for (username, chars) in [("len64", 64), ("len256", 256)] {
        let password = long_password(chars);
        assert_registered(&app.register(username, &password).await, username);
        assert_token(&app.login(username, &password).await);
    }

    let too_long = app.register("len257", &long_password(257)).await;
    assert_invalid(&too_long, "password");
}

#[tokio::test]
async fn password_length_counts_code_points_not_bytes() {
    let app = spawn_app().await;

    // Eight single-code-point emoji: 32 bytes, 8 characters.
    let emoji = "\u{1F512}\u{1F511}\u{1F510}\u{1F6AA}\u{1F9F1}\u{1F3B2}\u{1F680}\u{1F30D}";
    assert_eq!(emoji.chars().count(), 8);
    assert_registered(&app.register("emoji", emoji).await, "emoji");
    assert_token(&app.login("emoji", emoji).await);

    // 256 × "é" is 512 bytes but 256 characters.
    let accents = "\u{e9}".repeat(256);
    assert_registered(&app.register("accents", &accents).await, "accents");
    assert_token(&app.login("accents", &accents).await);

    let too_many = app.register("accents2", &"\u{e9}".repeat(257)).await;
    assert_invalid(&too_many, "password");
}

#[tokio::test]
async fn a_lowercase_passphrase_with_spaces_is_accepted() {
    let app = spawn_app().await;
    let passphrase = "purple monkey dishwasher";
    assert_registered(&app.register("phrase", passphrase).await, "phrase");
    assert_token(&app.login("phrase", passphrase).await);
}

#[tokio::test]
async fn a_password_is_verified_exactly_without_truncation_or_case_folding() {
    let app = spawn_app().await;
    let password = long_password(100);
    assert_registered(&app.register("exact", &password).await, "exact");

    let truncated: String = password.chars().take(72).collect();
    let flipped: String = password
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    let trailing_space = format!("{password} ");
    for wrong in [&truncated, &flipped, &trailing_space] {
        let reply = app.login("exact", wrong).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(reply.text, BAD_CREDENTIALS);
    }

    assert_token(&app.login("exact", &password).await);
}

#[tokio::test]
async fn common_passwords_are_refused() {
    let app = spawn_app().await;
    for (i, common) in ["password", "12345678", "qwertyuiop", "iloveyou"]
        .into_iter()
        .enumerate()
    {
        let reply = app.register(&format!("common{i}"), common).await;
        assert_invalid(&reply, "password");
        let details = reply.json()["details"].to_string();
        assert!(
            details.contains("common"),
            "the 422 should say the password is common: {}",
            reply.text
        );
    }
}

// --- P7–P9: registration fields ------------------------------------------

#[tokio::test]
async fn registration_ignores_privileged_fields() {
    let app = spawn_demo_app().await;
    let reply = register_body(
        &app,
        json!({
            "username": "mallory",
            "password": PASSWORD,
            "name": "Test User",
            "role": "admin",
            "scopes": ["admin"],
            "disabled": true,
            "id": 1,
            "department": "finance",
            "clearance_level": 5
        }),
    )
    .await;
    assert_registered(&reply, "mallory");

    let login = assert_token(&app.login("mallory", PASSWORD).await);
    assert_eq!(login["scope"], "read write");
    let token = login["access_token"].as_str().unwrap();

    let me = app.get("/api/users/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let me = me.json();
    assert_ne!(me["id"], 1, "took alice's id");
    assert_eq!(me["username"], "mallory");
    assert_eq!(me["role"], "user");
    assert_eq!(me["scopes"], json!(["read", "write"]));
    assert_eq!(me["disabled"], false);
    assert_eq!(me["department"], Value::Null);
    assert_eq!(me["clearance_level"], 0);

    let forbidden = app.get("/api/users", Some(token)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.text, r#"{"error":"Not authorized"}"#);

    // Alice (id 1) was not overwritten.
    let alice = app.alice_token().await;
    let alice_me = app.get("/api/users/me", Some(&alice)).await.json();
    assert_eq!(alice_me["id"], 1);
    assert_eq!(alice_me["username"], "alice");
}

#[tokio::test]
async fn usernames_outside_the_allowed_shape_are_refused() {
    let app = spawn_app().await;
    let too_long = "x".repeat(33);
    for bad in ["ab", too_long.as_str(), "a b", "a/b"] {
        let reply = app.register(bad, PASSWORD).await;
        assert_invalid(&reply, "username");
    }
    // The bounds themselves are allowed.
    assert_registered(&app.register("abc", PASSWORD).await, "abc");
    let longest = "y".repeat(32);
    assert_registered(&app.register(&longest, PASSWORD).await, &longest);
}

#[tokio::test]
async fn usernames_are_unique_ignoring_case_and_login_returns_the_stored_spelling() {
    let app = spawn_app().await;
    assert_registered(&app.register("alice", PASSWORD).await, "alice");

    let duplicate = app.register("ALICE", "another fine passphrase").await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert_eq!(duplicate.text, USER_EXISTS);

    let login = assert_token(&app.login("ALICE", PASSWORD).await);
    let token = login["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["sub"], "alice");
    let me = app.get("/api/users/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["username"], "alice");
}

#[tokio::test]
async fn no_response_carries_the_password_or_its_hash() {
    let app = spawn_demo_app().await;
    let password = "plaintext-Secret-4711";

    let register = app.register("leaky", password).await;
    assert_registered(&register, "leaky");
    assert_no_secrets(&register, password);

    let duplicate = app.register("leaky", password).await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert_no_secrets(&duplicate, password);

    let too_common = app.register("leaky2", "iloveyou").await;
    assert_invalid(&too_common, "password");
    assert_no_secrets(&too_common, "iloveyou");

    let wrong = app.login("leaky", "plaintext-Secret-4712").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_no_secrets(&wrong, "plaintext-Secret-4712");

    let login = app.login("leaky", password).await;
    let token = assert_token(&login)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_no_secrets(&login, password);

    let me = app.get("/api/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_no_secrets(&me, password);
    let id = me.json()["id"].as_i64().unwrap();

    let admin = app.admin_token().await;
    let list = app.get("/api/users", Some(&admin)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_no_secrets(&list, password);
    assert_no_secrets(&list, "wonderland");
    assert_no_secrets(&list, "secret");
    for user in list.json().as_array().unwrap() {
        let keys: Vec<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            keys.iter()
                .all(|k| !k.contains("password") && !k.contains("hash")),
            "{keys:?}"
        );
    }

    let one = app.get(&format!("/api/users/{id}"), Some(&admin)).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_no_secrets(&one, password);

    let patched = app
        .patch_json(
            &format!("/api/users/{id}"),
            Some(&admin),
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_no_secrets(&patched, password);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_username_create_exactly_one_account() {
    let app = spawn_demo_app().await;
    let url = app.url("/auth/register");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = url.clone();
        // The same name, in two spellings that must collide too.
        let username = if i % 2 == 0 { "racer" } else { "Racer" };
        let body = json!({"username": username, "password": PASSWORD, "name": "Test User"});
        tasks.push(tokio::spawn(async move {
            Reply::from(client.post(url).json(&body).send().await.expect("sent")).await
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        let reply = task.await.expect("task");
        match reply.status {
            StatusCode::CREATED => created += 1,
            StatusCode::BAD_REQUEST => {
                assert_eq!(reply.text, USER_EXISTS);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!((created, refused), (1, 19));

    let admin = app.admin_token().await;
    let users = app.get("/api/users", Some(&admin)).await;
    assert_eq!(users.header("x-total-count"), Some("3"));
    let racers = users
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["username"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("racer")
        })
        .count();
    assert_eq!(racers, 1);
}

// --- L1–L12: the token endpoint --------------------------------------------

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer() {
    let app = spawn_demo_app().await;
    let unknown = app.login("nobody", "wonderland").await;
    let wrong = app.login("alice", "not-wonderland").await;

    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.text, BAD_CREDENTIALS);
    assert_eq!(wrong.text.as_bytes(), unknown.text.as_bytes());
    assert_eq!(unknown.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
    assert_eq!(headers_without_date(&wrong), headers_without_date(&unknown));
}

#[tokio::test]
async fn a_disabled_user_gets_403_only_after_the_right_password() {
    let app = spawn_demo_app().await;
    let (id, _) = app.signed_up("sleeper").await;
    let admin = app.admin_token().await;
    let patched = app
        .patch_json(
            &format!("/api/users/{id}"),
            Some(&admin),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["disabled"], true);

    let unknown = app.login("nobody", "wrong password").await;
    let wrong = app.login("sleeper", "wrong password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text, BAD_CREDENTIALS);
    assert_eq!(wrong.text.as_bytes(), unknown.text.as_bytes());
    assert_eq!(headers_without_date(&wrong), headers_without_date(&unknown));

    let right = app.login("sleeper", PASSWORD).await;
    assert_json_error(&right, StatusCode::FORBIDDEN);
    assert!(!right.text.contains("access_token"), "{}", right.text);
}

#[tokio::test]
async fn a_token_response_is_not_cached() {
    let app = spawn_demo_app().await;
    let reply = app.login("alice", "wonderland").await;
    assert_token(&reply);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
}

#[tokio::test]
async fn a_token_response_has_the_oauth2_shape() {
    let app = spawn_demo_app().await;

    assert_registered(&app.register("plain", PASSWORD).await, "plain");
    let plain = assert_token(&app.login("plain", PASSWORD).await);
    assert_eq!(plain["token_type"], "bearer");
    assert!(plain["expires_in"].is_u64(), "{plain}");
    assert_eq!(
        plain["expires_in"].as_u64(),
        Some(app.state.config.tokens.access.as_secs())
    );
    assert!(plain["refresh_token"].is_string());
    assert_eq!(plain["scope"], "read write");
    assert_eq!(plain["info"]["name"], "Test User");
    assert!(
        plain["info"].as_object().unwrap().get("email").is_none(),
        "email must be left out, not null: {plain}"
    );

    let alice = assert_token(&app.login("alice", "wonderland").await);
    assert_eq!(alice["token_type"], "bearer");
    assert!(alice["expires_in"].is_u64());
    assert_eq!(alice["info"]["name"], "Alice Wonderson");
    assert_eq!(alice["info"]["email"], "alice@example.com");
}

#[tokio::test]
async fn only_the_password_and_refresh_grants_are_supported() {
    let app = spawn_demo_app().await;
    let credentials = [("username", "alice"), ("password", "wonderland")];
    for grant in ["client_credentials", "authorization_code", "", "PASSWORD"] {
        let mut form = credentials.to_vec();
        form.push(("grant_type", grant));
        let reply = app.token_form(&form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{grant:?}");
        assert_eq!(reply.text, r#"{"error":"unsupported_grant_type"}"#);
    }
}

/// The lesson's `curl -d "username=alice&password=wonderland"` sends no
/// `grant_type`, as FastAPI's `OAuth2PasswordRequestForm` allows.
#[tokio::test]
async fn a_username_and_password_without_a_grant_type_are_the_password_grant() {
    let app = spawn_demo_app().await;
    let reply = app
        .token_form(&[("username", "alice"), ("password", "wonderland")])
        .await;
    let token = assert_token(&reply);
    assert_eq!(token["scope"], "read write");
    let me = app
        .get("/api/users/me", token["access_token"].as_str())
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["username"], "alice");

    let wrong = app
        .token_form(&[("username", "alice"), ("password", "not the password")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text, r#"{"error":"Incorrect username or password"}"#);

    let scoped = app
        .token_form(&[
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(assert_token(&scoped)["scope"], "read");
}

#[tokio::test]
async fn without_a_grant_type_both_username_and_password_are_needed() {
    let app = spawn_demo_app().await;
    for form in [
        vec![("username", "alice")],
        vec![("password", "wonderland")],
        vec![("refresh_token", "anything")],
        vec![],
    ] {
        let reply = app.token_form(&form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(reply.text, r#"{"error":"invalid_request"}"#, "{form:?}");
    }
}

#[tokio::test]
async fn a_requested_scope_narrows_the_grant() {
    let app = spawn_demo_app().await;
    let reply = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "read admin"),
        ])
        .await;
    let body = assert_token(&reply);
    assert_eq!(body["scope"], "read");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["scopes"],
        json!(["read"])
    );
}

#[tokio::test]
async fn no_requested_scope_grants_all_of_the_users_scopes() {
    let app = spawn_demo_app().await;
    let body = assert_token(&app.login("alice", "wonderland").await);
    assert_eq!(body["scope"], "read write");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["scopes"],
        json!(["read", "write"])
    );
}

#[tokio::test]
async fn a_requested_scope_the_user_lacks_entirely_is_invalid_scope() {
    let app = spawn_demo_app().await;
    let reply = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "admin"),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text, r#"{"error":"invalid_scope"}"#);
}

#[tokio::test]
async fn credentials_in_the_query_string_are_not_accepted() {
    let app = spawn_demo_app().await;
    let reply = app
        .send(
            app.client
                .post(app.url("/auth/token?username=alice&password=wonderland&grant_type=password"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(""),
        )
        .await;
    assert!(
        reply.status.is_client_error(),
        "expected 4xx, got {}: {}",
        reply.status,
        reply.text
    );
    assert_json_error(&reply, reply.status);
    assert!(!reply.text.contains("access_token"), "{}", reply.text);
}

#[tokio::test]
async fn a_json_body_to_the_token_endpoint_is_415() {
    let app = spawn_demo_app().await;
    let reply = app
        .post_json(
            "/auth/token",
            None,
            json!({"grant_type": "password", "username": "alice", "password": "wonderland"}),
        )
        .await;
    assert_json_error(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(!reply.text.contains("access_token"), "{}", reply.text);
}

#[tokio::test]
async fn each_login_issues_new_tokens() {
    let app = spawn_demo_app().await;
    let first = assert_token(&app.login("alice", "wonderland").await);
    let second = assert_token(&app.login("alice", "wonderland").await);
    assert_ne!(first["access_token"], second["access_token"]);
    assert_ne!(first["refresh_token"], second["refresh_token"]);

    let jti = |body: &Value, key: &str| claims(body[key].as_str().unwrap())["jti"].clone();
    assert!(jti(&first, "access_token").is_string());
    assert_ne!(jti(&first, "access_token"), jti(&second, "access_token"));
    assert_ne!(jti(&first, "refresh_token"), jti(&second, "refresh_token"));
}

// --- Registration input errors ----------------------------------------------

#[tokio::test]
async fn malformed_json_on_registration_is_400() {
    let app = spawn_app().await;
    let reply = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header(CONTENT_TYPE, "application/json")
                .body(r#"{"username": "jdoe", "password": "#),
        )
        .await;
    assert_json_error(&reply, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn registration_without_a_json_content_type_is_415() {
    let app = spawn_app().await;
    let body = json!({"username": "jdoe", "password": PASSWORD, "name": "Test User"});
    let reply = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header(CONTENT_TYPE, "text/plain")
                .body(body.to_string()),
        )
        .await;
    assert_json_error(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing was created.
    assert_registered(&app.register("jdoe", PASSWORD).await, "jdoe");
}

#[tokio::test]
async fn registration_with_a_missing_field_is_422_naming_it() {
    let app = spawn_app().await;
    let reply = register_body(&app, json!({"username": "jdoe", "password": PASSWORD})).await;
    assert_invalid(&reply, "name");
}

#[tokio::test]
async fn a_name_must_have_1_to_100_characters() {
    let app = spawn_app().await;
    for (username, name) in [("empty", String::new()), ("long", "n".repeat(101))] {
        let reply = register_body(
            &app,
            json!({"username": username, "password": PASSWORD, "name": name}),
        )
        .await;
        assert_invalid(&reply, "name");
    }
    let longest = register_body(
        &app,
        json!({"username": "longest", "password": PASSWORD, "name": "n".repeat(100)}),
    )
    .await;
    assert_eq!(longest.status, StatusCode::CREATED, "{}", longest.text);
}

#[tokio::test]
async fn a_bad_email_is_422() {
    let app = spawn_app().await;
    let reply = register_body(
        &app,
        json!({"username": "jdoe", "password": PASSWORD, "name": "Test User", "email": "not-an-email"}),
    )
    .await;
    assert_invalid(&reply, "email");

    let good = register_body(
        &app,
        json!({"username": "jdoe", "password": PASSWORD, "name": "Test User", "email": "jdoe@example.com"}),
    )
    .await;
    assert_eq!(good.status, StatusCode::CREATED, "{}", good.text);
}
