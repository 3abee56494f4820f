//! A real server on a random port with its own temporary database, and one
//! helper per endpoint.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;
use todo_api::config::Config;
use todo_api::db::DatabaseUrl;
use todo_api::{AppState, build_app, users};

/// The signing secret of test servers.
pub const JWT_SECRET: &str = "integration-tests-secret-that-is-long-enough";
/// A password that passes every registration rule.
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub state: AppState,
    _dir: TempDir,
}

/// A server on an empty database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose configuration `adjust` may change first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = DatabaseUrl::Sqlite(dir.path().join("todo.db"));
    let mut config = Config::with_defaults(url, SecretString::from(JWT_SECRET));
    config.tokens.leeway = Duration::ZERO;
    // Tests log in far more often than people; the limit has its own test.
    config.auth_rate_limit = 10_000;
    adjust(&mut config);
    let state = AppState::new(config).await.expect("application state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("local address");
    let app = build_app(state.clone());
    tokio::spawn(todo_api::serve(listener, app, std::future::pending()));
    TestApp {
        base: format!("http://{addr}"),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        state,
        _dir: dir,
    }
}

/// A server seeded with the demo users: alice (id 1) and admin (id 2).
pub async fn spawn_demo_app() -> TestApp {
    let app = spawn_app().await;
    users::service::seed_demo(&app.state)
        .await
        .expect("demo users");
    app
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
