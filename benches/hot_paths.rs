//! Micro-benchmarks of the pure pieces on the request paths: JWT signing and
//! checking, the authorization decision and input validation. A regression
//! in one of them shows up here in a minute, without the full load test of
//! `bench/run.sh`.
//!
//! ```sh
//! cargo bench --bench hot_paths
//! ```

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use todo_api::auth::jwt::{TokenKeys, TokenKind, TokenLifetimes, TokenSubject, unix_now};
use todo_api::auth::policy::{self, Action, Resource, Subject};
use todo_api::error::AppError;
use todo_api::extract::ApiJson;
use todo_api::todos::Visibility;
use todo_api::todos::repository::NewTodo;
use todo_api::todos::schemas::TodoIn;
use todo_api::users::{Role, Scopes, User};
use todo_api::validation;

const SECRET: &str = "a-benchmark-secret-of-more-than-thirty-two-bytes";

/// A create-todo body with every field set, so that every rule runs.
const TODO_BODY: &[u8] = br#"{"title": "Renew the passport", "description": "Photos first, then the form at the town hall", "completed": false, "visibility": "department", "clearance_level": 2}"#;

fn user(id: i64, role: Role) -> User {
    User {
        id,
        username: "alice".into(),
        name: "Alice Liddell".into(),
        email: Some("alice@example.com".into()),
        role,
        scopes: Scopes::DEFAULT,
        disabled: false,
        department: Some("ops".into()),
        clearance_level: 2,
        mfa_enabled: false,
    }
}

/// `token` with its payload rewritten to claim the admin role, the signature
/// left as it was: what a forger would send.
fn with_forged_role(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let payload = URL_SAFE_NO_PAD
        .decode(&parts[1])
        .expect("our tokens are base64url");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&payload).expect("our tokens carry JSON");
    claims["role"] = "admin".into();
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    parts.join(".")
}

fn jwt(c: &mut Criterion) {
    let lifetimes = TokenLifetimes {
        access: Duration::from_secs(900),
        refresh: Duration::from_secs(86_400),
        session: Duration::from_secs(30 * 86_400),
        leeway: Duration::from_secs(30),
    };
    let keys =
        TokenKeys::new(&SecretString::from(SECRET), lifetimes).expect("the secret is long enough");
    let alice = user(1, Role::User);
    let subject = TokenSubject {
        user: &alice,
        session: "5f1e0c3a9b8d4e6f8a7b6c5d4e3f2a1b",
        scopes: Scopes::DEFAULT,
    };
    let now = unix_now();
    let access = keys
        .access_token(&subject, now, i64::MAX)
        .expect("signing works");
    let refresh = keys
        .refresh_token(
            &subject,
            "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            now,
            now + 86_400,
        )
        .expect("signing works");
    let forged = with_forged_role(&access);
    assert!(keys.verify(&access, TokenKind::Access).is_some());
    assert!(keys.verify(&forged, TokenKind::Access).is_none());
    assert!(keys.verify(&refresh, TokenKind::Access).is_none());

    let mut group = c.benchmark_group("jwt");
    group.bench_function("sign an access token", |b| {
        b.iter(|| keys.access_token(black_box(&subject), now, i64::MAX))
    });
    // A fresh token each time: the full check, and remembering the token.
    group.bench_function("verify an access token, first use", |b| {
        b.iter_batched(
            || keys.access_token(&subject, now, i64::MAX),
            |token| keys.verify(&token.expect("signing works"), TokenKind::Access),
            BatchSize::SmallInput,
        )
    });
    for (name, token) in [
        ("verify an access token, again", &access),
        ("refuse a forged payload", &forged),
        ("refuse a refresh token as access", &refresh),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| keys.verify(black_box(token), TokenKind::Access))
        });
    }
    group.finish();
}

fn authorization(c: &mut Criterion) {
    let shared = Resource {
        owner_id: 1,
        owner_department: Some("ops"),
        visibility: Visibility::Department,
        clearance_level: 2,
    };
    let subject = |id, department| Subject {
        id,
        department: Some(department),
        clearance_level: 3,
    };
    // The shortest path (the owner), the longest (a colleague, through every
    // condition) and a refusal on the department.
    let cases = [
        ("the owner writes", subject(1, "ops"), Action::Write, true),
        ("a colleague reads", subject(2, "ops"), Action::Read, true),
        (
            "an outsider reads",
            subject(3, "sales"),
            Action::Read,
            false,
        ),
    ];
    let admin = user(9, Role::Admin);

    let mut group = c.benchmark_group("authorization");
    for (name, caller, action, expected) in cases {
        assert_eq!(policy::allows(caller, action, shared), expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| policy::allows(black_box(caller), black_box(action), black_box(shared)))
        });
    }
    assert!(policy::may_manage_users(&admin));
    group.bench_function("an admin manages users", |b| {
        b.iter(|| policy::may_manage_users(black_box(&admin)))
    });
    group.finish();
}

/// Runs a future that never has to wait. The JSON extractor reads a body
/// that is already in memory, so it finishes on its first poll; no runtime
/// is involved whose own cost would be measured with it.
fn at_once<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("reading an in-memory body does not wait"),
    }
}

fn create_todo_request() -> Request {
    Request::builder()
        .method(Method::POST)
        .uri("/api/todos")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(Bytes::from_static(TODO_BODY)))
        .expect("a well-formed request")
}

/// What `POST /api/todos` does with its body before the service sees it:
/// the extractor's parsing, then the field rules.
fn parse_create_todo(request: Request) -> Result<NewTodo, AppError> {
    at_once(ApiJson::<TodoIn>::from_request(request, &()))
        .and_then(|ApiJson(body)| Ok(body.validate()?))
}

fn validation(c: &mut Criterion) {
    parse_create_todo(create_todo_request()).expect("the body is valid");
    let uncommon = SecretString::from("wonderland rabbit hole");
    let common = SecretString::from("iloveyou");
    assert!(validation::password(&uncommon).is_ok());
    assert!(validation::password(&common).is_err());

    let mut group = c.benchmark_group("validation");
    group.bench_function("create-todo body from JSON", |b| {
        b.iter_batched(
            create_todo_request,
            parse_create_todo,
            BatchSize::SmallInput,
        )
    });
    group.bench_function("username", |b| {
        b.iter_batched(
            || "alice.liddell".to_string(),
            validation::username,
            BatchSize::SmallInput,
        )
    });
    // Registration checks the password against zxcvbn's list of common
    // passwords: the dearest rule, on the register path.
    group.bench_function("password, accepted", |b| {
        b.iter(|| validation::password(black_box(&uncommon)))
    });
    group.bench_function("password, too common", |b| {
        b.iter(|| validation::password(black_box(&common)))
    });
    group.bench_function("text (a title)", |b| {
        b.iter_batched(
            || "Renew the passport".to_string(),
            |title| validation::text(title, 1, 200),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("email", |b| {
        b.iter_batched(
            || "alice.liddell@example.com".to_string(),
            validation::email,
            BatchSize::SmallInput,
        )
    });
    group.bench_function("clearance", |b| {
        b.iter(|| validation::clearance(black_box(3)))
    });
    group.finish();
}

criterion_group!(hot_paths, jwt, authorization, validation);
criterion_main!(hot_paths);
