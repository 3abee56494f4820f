//! The real binary run as a process: its command, a running server and
//! its log, and a small HTTP client for it.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_todo-api");

/// A JWT secret for the binary runs (not the in-process servers' [`crate::helpers::JWT_SECRET`], to tell them apart).
pub const RUN_SECRET: &str = "ops-test-secret-0123456789-abcdefghijklmnop";

pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("RUST_LOG", "info")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("ops.db").display()),
        )
        .current_dir(dir)
        .stdin(Stdio::null());
    command
}

/// Waits for `child` to exit, killing it after `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The binary serving on a free port, logging to a file.
pub struct Running {
    pub child: Child,
    pub log: PathBuf,
    pub base: String,
}

impl Running {
    pub fn start(dir: &Path, format: &str, extra_env: &[(&str, &str)]) -> Self {
        let log = dir.join(format!("server-{format}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = command(dir);
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--shutdown-grace", "5"])
            .env("TODO_API_JWT_SECRET", RUN_SECRET)
            .env("TODO_API_LOG_FORMAT", format)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the server");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(at) = text.find("listening on http://") {
                let rest = &text[at + "listening on http://".len()..];
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return Self {
                    child,
                    log,
                    base: format!("http://{addr}"),
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the server exited with {status}: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status and the whole log.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = wait_bounded(&mut self.child, Duration::from_secs(15))
            .expect("the server did not stop within 15 s of SIGTERM");
        let mut log = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        (status, log)
    }
}

pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/auth/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .await
    }
}

pub fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line:?}"))
        })
        .collect()
}

/// The log records whose message is `message`.
pub fn records<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}
