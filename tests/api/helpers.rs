//! A real server on a random port with its own temporary database, and one
//! helper per endpoint.
//!
//! The backend comes from [`TEST_DATABASE_URL`]: unset, every test gets a
//! SQLite file in a temporary directory; set to the URL of a PostgreSQL
//! server (`postgres://postgres@127.0.0.1:PORT/postgres`), every test gets a
//! database of its own created there, so tests stay independent and may
//! run in parallel. `.ci/postgres.sh` runs the suite that way.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;
use todo_api::config::{Config, TotpKeySource};
use todo_api::db::DatabaseUrl;
use todo_api::{AppState, build_app};

/// The signing secret of test servers.
pub const JWT_SECRET: &str = "integration-tests-secret-that-is-long-enough";
/// A password that passes every registration rule.
pub const PASSWORD: &str = "correct horse battery";
/// The key the test servers seal TOTP secrets under (32 bytes, base64).
pub const MFA_KEY: &str = "dGVzdC1rZXktb2YtdGhlLXR3by1zdGVwLWxvZ2lucyE=";

/// The environment variable that names the PostgreSQL server to test on.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// The storage backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend of this run, from [`TEST_DATABASE_URL`].
pub fn backend() -> Backend {
    match postgres_server() {
        Some(_) => Backend::Postgres,
        None => Backend::Sqlite,
    }
}

/// Whether this run tests PostgreSQL.
pub fn on_postgres() -> bool {
    backend() == Backend::Postgres
}

fn postgres_server() -> Option<String> {
    std::env::var(TEST_DATABASE_URL)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// One test's own empty database, kept while an app that uses it lives.
/// On PostgreSQL it is a fresh database on the test server, left for the
/// server's owner to drop (`.ci/postgres.sh` throws the whole cluster away).
pub struct TestDatabase {
    pub url: DatabaseUrl,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let Some(server) = postgres_server() else {
            let dir = tempfile::tempdir().expect("temporary directory");
            return Self {
                url: DatabaseUrl::Sqlite(dir.path().join("todo.db")),
                _dir: Some(dir),
            };
        };
        let mut config: tokio_postgres::Config = server
            .parse()
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} is not a PostgreSQL URL: {e}"));
        let name = format!("todo_api_test_{}", uuid::Uuid::new_v4().simple());
        {
            let (admin, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the {TEST_DATABASE_URL} server: {e}"));
            let connection = tokio::spawn(connection);
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("CREATE DATABASE");
            drop(admin);
            let _ = connection.await;
        }
        config.dbname(&name);
        Self {
            url: DatabaseUrl::Postgres(Box::new(config)),
            _dir: None,
        }
    }

    /// An outside connection to the database, for what a test must do
    /// behind the service's back (PostgreSQL only).
    pub async fn postgres_client(&self) -> tokio_postgres::Client {
        let DatabaseUrl::Postgres(config) = &self.url else {
            panic!("not a PostgreSQL database");
        };
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub state: AppState,
    pub db: Arc<TestDatabase>,
}

/// A server on an empty database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose configuration `adjust` may change first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(Arc::new(TestDatabase::new().await), adjust).await
}

/// Two instances of the service on one database, as behind a load balancer.
pub async fn spawn_pair() -> (TestApp, TestApp) {
    spawn_pair_with(|_| {}).await
}

/// Two instances on one database, both configured by `adjust`.
pub async fn spawn_pair_with(adjust: impl Fn(&mut Config)) -> (TestApp, TestApp) {
    let db = Arc::new(TestDatabase::new().await);
    let a = spawn_on(db.clone(), &adjust).await;
    let b = spawn_on(db, &adjust).await;
    (a, b)
}

/// Two instances on one database seeded with the demo users.
pub async fn spawn_demo_pair() -> (TestApp, TestApp) {
    let (a, b) = spawn_pair().await;
    todo_api::demo::seed_demo(a.state.db.users.as_ref(), &a.state.passwords)
        .await
        .expect("demo users");
    (a, b)
}

/// A server on `db`, whose configuration `adjust` may change first.
pub async fn spawn_on(db: Arc<TestDatabase>, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::with_defaults(db.url.clone(), SecretString::from(JWT_SECRET));
    config.tokens.leeway = Duration::ZERO;
    // Tests log in far more often than people; the limit has its own test.
    config.auth_rate_limit = 10_000;
    config.totp_keys = TotpKeySource::Configured {
        current: SecretString::from(MFA_KEY),
        previous: Vec::new(),
    };
    adjust(&mut config);
    let state = AppState::new(config).await.expect("application state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("local address");
    let app = build_app(state.clone());
    let options = todo_api::ServeOptions::from_config(&state.config);
    tokio::spawn(todo_api::serve_with(
        listener,
        app,
        std::future::pending(),
        options,
    ));
    TestApp {
        base: format!("http://{addr}"),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        state,
        db,
    }
}

/// A server seeded with the demo users: alice (id 1) and admin (id 2).
pub async fn spawn_demo_app() -> TestApp {
    let app = spawn_app().await;
    todo_api::demo::seed_demo(app.state.db.users.as_ref(), &app.state.passwords)
        .await
        .expect("demo users");
    app
}

/// Writes to `users` held back by an outside connection while reads go on:
/// SQLite's database-wide write lock, or PostgreSQL's `EXCLUSIVE` lock on
/// the table (which lets `SELECT` through).
pub enum WriteLock {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl WriteLock {
    pub async fn release(self) {
        match self {
            Self::Sqlite(connection) => connection
                .execute_batch("ROLLBACK")
                .expect("release the write lock"),
            Self::Postgres(client) => client
                .batch_execute("ROLLBACK")
                .await
                .expect("release the lock"),
        }
    }
}

/// A response read whole: status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn from(response: Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("response body"),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error` message of an error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {:?}", self.text))
            .to_string()
    }

    /// The fields named in a 422's details.
    pub fn failed_fields(&self) -> Vec<String> {
        self.json()["details"]
            .as_array()
            .unwrap_or_else(|| panic!("no details in {:?}", self.text))
            .iter()
            .map(|d| d["field"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl TestApp {
    /// Takes a [`WriteLock`] on this app's database.
    pub async fn lock_writes(&self) -> WriteLock {
        match &self.db.url {
            DatabaseUrl::Sqlite(path) => {
                let lock = rusqlite::Connection::open(path).expect("open the database");
                lock.execute_batch("BEGIN IMMEDIATE")
                    .expect("take the write lock");
                WriteLock::Sqlite(lock)
            }
            DatabaseUrl::Postgres(_) => {
                let client = self.db.postgres_client().await;
                client
                    .batch_execute("BEGIN; LOCK TABLE users IN EXCLUSIVE MODE")
                    .await
                    .expect("lock the users table");
                WriteLock::Postgres(client)
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        Reply::from(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.request(Method::GET, path, token)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.request(Method::DELETE, path, token)).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(self.request(Method::POST, path, token).json(&body))
            .await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(self.request(Method::PUT, path, token).json(&body))
            .await
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(self.request(Method::PATCH, path, token).json(&body))
            .await
    }

    pub async fn register(&self, username: &str, password: &str) -> Reply {
        self.post_json(
            "/auth/register",
            None,
            json!({"username": username, "password": password, "name": "Test User"}),
        )
        .await
    }

    /// `POST /auth/token` with the given form fields.
    pub async fn token_form(&self, form: &[(&str, &str)]) -> Reply {
        self.send(self.client.post(self.url("/auth/token")).form(form))
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.token_form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .await
    }

    /// The access token of a successful login.
    pub async fn access_token(&self, username: &str, password: &str) -> String {
        let reply = self.login(username, password).await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.text);
        reply.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Registers `username` with [`PASSWORD`] and logs in: (user id, token).
    pub async fn signed_up(&self, username: &str) -> (i64, String) {
        let reply = self.register(username, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let token = self.access_token(username, PASSWORD).await;
        let me = self.get("/api/users/me", Some(&token)).await.json();
        (me["id"].as_i64().expect("id"), token)
    }

    pub async fn admin_token(&self) -> String {
        self.access_token("admin", "secret").await
    }

    pub async fn alice_token(&self) -> String {
        self.access_token("alice", "wonderland").await
    }

    /// Creates a todo and returns its JSON.
    pub async fn create_todo(&self, token: &str, body: Value) -> Value {
        let reply = self.post_json("/api/todos", Some(token), body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()
    }
}

/// The ids of a todo list and its `X-Total-Count`.
pub async fn todo_list(app: &TestApp, token: &str, query: &str) -> (Vec<i64>, u64) {
    let reply = app.get(&format!("/api/todos{query}"), Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    let total = reply
        .header("x-total-count")
        .unwrap_or_else(|| panic!("no X-Total-Count on {query}"))
        .parse()
        .expect("a numeric X-Total-Count");
    let ids = reply
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", reply.text))
        .iter()
        .map(|todo| todo["id"].as_i64().expect("todo id"))
        .collect();
    (ids, total)
}

pub fn content_type(reply: &Reply) -> &str {
    reply.header("content-type").unwrap_or_default()
}

/// The contract's error shape: JSON, `{"error": "..."}` and perhaps
/// `details`, nothing else.
pub fn assert_error_body(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert!(
        content_type(reply).starts_with("application/json"),
        "{what}: Content-Type {:?}",
        content_type(reply)
    );
    let body = reply.json();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {}", reply.text))
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys == BTreeSet::from(["error"]) || keys == BTreeSet::from(["error", "details"]),
        "{what}: keys {keys:?}"
    );
    assert!(
        !reply.error().trim().is_empty(),
        "{what}: empty error message"
    );
}

/// A 422 whose details name exactly `fields`, in any order.
pub fn assert_invalid_fields(reply: &Reply, fields: &[&str], what: &str) {
    assert_error_body(reply, StatusCode::UNPROCESSABLE_ENTITY, what);
    for detail in reply.json()["details"].as_array().expect("details") {
        assert!(
            detail["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {detail}"
        );
    }
    let named: BTreeSet<String> = reply.failed_fields().into_iter().collect();
    let expected: BTreeSet<String> = fields.iter().map(|f| f.to_string()).collect();
    assert_eq!(named, expected, "{what}");
}

/// A 429 with a JSON error and an integer `Retry-After` of at least one
/// second; returns that number.
#[track_caller]
pub fn assert_too_many(reply: &Reply) -> u64 {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
    assert!(!reply.error().is_empty());
    let retry_after = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {:?}", reply.headers));
    let seconds: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not integer seconds: {retry_after:?}"));
    assert!(seconds >= 1, "Retry-After {seconds}");
    seconds
}

/// The load tests run one at a time, so that they measure the server
/// rather than each other.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The value of the first sample line of `metric` whose labels include all
/// of `labels` (`name="value"` pairs).
pub fn sample(exposition: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|l| label_text.split(',').any(|have| have == *l))
            .then(|| value.trim().parse().ok())?
    })
}

pub async fn metrics_text(app: &TestApp) -> String {
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    reply.text
}

pub async fn metrics_app() -> TestApp {
    let app = spawn_app_with(|c| c.metrics = true).await;
    todo_api::demo::seed_demo(app.state.db.users.as_ref(), &app.state.passwords)
        .await
        .expect("demo users");
    app
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Peak resident memory of this process (the servers under test run in it).
pub fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
