//! Scale check of `GET /api/todos?shared=true`: 100,000 users in 200
//! departments with 1,000,000 todos, then sequential timed requests and the
//! SQLite query plan of the shared listing. Run by hand:
//!
//! ```text
//! cargo test --release --test scale -- --ignored --nocapture
//! ```
//!
//! It asserts only that the server answers 200; the figures are printed.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use secrecy::SecretString;
use todo_api::auth::password::PasswordHasher;
use todo_api::config::Config;
use todo_api::db::DatabaseUrl;
use todo_api::{AppState, build_app};

const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes!!";
const PASSWORD: &str = "scale check password";
const USERS: i64 = 100_000;
const DEPARTMENTS: i64 = 200;
const TODOS_PER_USER: i64 = 10;
const REQUESTS: usize = 200;
/// u400: department dept0 (400 % 200), clearance 4 (400 % 6).
const CALLER: i64 = 400;

/// A user's department and clearance, from their number.
fn department(n: i64) -> String {
    format!("dept{}", n % DEPARTMENTS)
}

/// The k-th second after 2025-01-01T00:00:00Z, as RFC 3339.
fn timestamp(k: i64) -> String {
    let (days, rest) = (k / 86_400, k % 86_400);
    format!(
        "2025-01-{:02}T{:02}:{:02}:{:02}.000000Z",
        1 + days,
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Todo number k (0-based, in insertion order): owner, visibility and
/// clearance. Todos are inserted round by round over all users, so one
/// owner's todos, and one department's, are spread across the whole id range.
fn todo_attributes(k: i64) -> (i64, &'static str, i64, bool) {
    let n = k % USERS;
    let visibility = if (k / 6) % 2 == 0 {
        "department"
    } else {
        "private"
    };
    (n + 1, visibility, k % 6, k % 7 == 0)
}

fn seed(path: &Path, password_hash: &str) -> rusqlite::Result<()> {
    let mut connection = Connection::open(path)?;
    connection.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -262144;",
    )?;
    let tx = connection.transaction()?;
    {
        let mut user = tx.prepare(
            "INSERT INTO users (id, username, password_hash, name, role, scopes,
                                department, clearance_level, created_at)
             VALUES (?1, ?2, ?3, ?4, 'user', 'read write', ?5, ?6, ?7)",
        )?;
        for n in 0..USERS {
            user.execute(params![
                n + 1,
                format!("u{n}"),
                password_hash,
                format!("User {n}"),
                department(n),
                n % 6,
                timestamp(n),
            ])?;
        }
        let mut todo = tx.prepare(
            "INSERT INTO todos (owner_id, title, description, completed, visibility,
                                clearance_level, created_at, updated_at)
             VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?6)",
        )?;
        for k in 0..USERS * TODOS_PER_USER {
            let (owner, visibility, clearance, completed) = todo_attributes(k);
            todo.execute(params![
                owner,
                format!("Todo {k}"),
                completed,
                visibility,
                clearance,
                timestamp(k),
            ])?;
        }
    }
    tx.commit()?;
    connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

/// The shared listing of `src/db/sqlite/todos.rs` (`TODO_SELECT` with
/// `listing_filter`), with the caller's values written in.
fn shared_listing_sql(reader_id: i64, department: &str, clearance: i64) -> (String, String) {
    // The same shape as the SQLite backend's listing (src/db/sqlite/todos.rs).
    let visible = format!(
        "WITH visible(id) AS (SELECT t.id FROM todos t WHERE t.owner_id = {reader_id}
         UNION ALL SELECT t.id FROM users u JOIN todos t ON t.owner_id = u.id
         WHERE u.department = '{department}' AND u.id <> {reader_id}
           AND t.visibility = 'department' AND t.clearance_level <= {clearance})"
    );
    let select = format!(
        "{visible} SELECT t.id, t.title, t.description, t.completed, t.visibility,
        t.clearance_level, t.owner_id, u.username, u.department, t.created_at, t.updated_at
    FROM todos t JOIN users u ON u.id = t.owner_id
    WHERE t.id IN (SELECT id FROM visible ORDER BY id DESC LIMIT 50 OFFSET 0)
    ORDER BY t.id DESC"
    );
    let count = format!("{visible} SELECT count(*) FROM visible");
    (count, select)
}

/// `EXPLAIN QUERY PLAN` as an indented tree.
fn query_plan(connection: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(3)?,
        ))
    })?;
    let mut depth: Vec<(i64, usize)> = Vec::new();
    let mut lines = Vec::new();
    for row in rows {
        let (id, parent, detail) = row?;
        let level = depth
            .iter()
            .find(|(node, _)| *node == parent)
            .map_or(0, |(_, level)| level + 1);
        depth.push((id, level));
        lines.push(format!("{}{detail}", "  ".repeat(level)));
    }
    Ok(lines)
}

/// A plan line that walks the whole todos table, or a whole index of it
/// (`SCAN t USING INDEX ...` is a full pass too), rather than searching it.
fn full_scans_of_todos(plan: &[String]) -> Vec<&String> {
    plan.iter()
        .filter(|line| {
            let line = line.trim();
            ["SCAN t", "SCAN todos"]
                .iter()
                .any(|scan| line == *scan || line.starts_with(&format!("{scan} ")))
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "scale check, run by hand: cargo test --release --test scale -- --ignored --nocapture"]
async fn shared_listing_over_a_million_todos() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("scale.db");
    let config = Config::with_defaults(
        DatabaseUrl::Sqlite(path.clone()),
        SecretString::from(SECRET),
    );
    // Opening the state creates and migrates the schema.
    let state = AppState::new(config).await.expect("application state");

    let password_hash = PasswordHasher::new(1)
        .expect("password hasher")
        .hash(SecretString::from(PASSWORD))
        .await
        .expect("password hash");

    let started = Instant::now();
    let seed_path = path.clone();
    tokio::task::spawn_blocking(move || seed(&seed_path, &password_hash))
        .await
        .expect("seeding task")
        .expect("seeding");
    let seeding = started.elapsed();
    println!(
        "seeded {USERS} users in {DEPARTMENTS} departments and {} todos in {:.1} s",
        USERS * TODOS_PER_USER,
        seeding.as_secs_f64()
    );

    let caller_department = department(CALLER);
    let caller_clearance = CALLER % 6;
    let caller_id = CALLER + 1;
    let plan_connection = Connection::open(&path).expect("plan connection");
    let expected_total: i64 = plan_connection
        .query_row(
            "SELECT count(*) FROM todos t JOIN users u ON u.id = t.owner_id
             WHERE t.owner_id = ?1
                OR (u.department = ?2 AND t.visibility = 'department' AND t.clearance_level <= ?3)",
            params![caller_id, caller_department, caller_clearance],
            |row| row.get(0),
        )
        .expect("count by the rule");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(todo_api::serve(
        listener,
        build_app(state.clone()),
        std::future::pending(),
    ));
    let client = reqwest::Client::new();

    let username = format!("u{CALLER}");
    let login = client
        .post(format!("{base}/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", username.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login sent");
    assert_eq!(login.status(), reqwest::StatusCode::OK, "login");
    let token: serde_json::Value = login.json().await.expect("token response");
    let token = token["access_token"]
        .as_str()
        .expect("access token")
        .to_string();

    let url = format!("{base}/api/todos?shared=true&limit=50");
    let mut latencies = Vec::with_capacity(REQUESTS);
    let mut total_count = String::new();
    let mut first_page_len = 0;
    for _ in 0..REQUESTS {
        let sent = Instant::now();
        let response = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        total_count = response
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("missing")
            .to_string();
        let body = response.bytes().await.expect("response body");
        latencies.push(sent.elapsed());
        assert_eq!(
            status,
            reqwest::StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&body)
        );
        first_page_len = serde_json::from_slice::<Vec<serde_json::Value>>(&body)
            .map(|todos| todos.len())
            .unwrap_or(0);
    }
    let first = latencies[0];
    latencies.sort();
    println!(
        "{REQUESTS} sequential GET /api/todos?shared=true&limit=50 as {username} \
         ({caller_department}, clearance {caller_clearance}): p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms (first request {:.2} ms); {first_page_len} todos per page",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        first.as_secs_f64() * 1000.0,
    );
    println!("X-Total-Count: {total_count} (by the rule, counted directly: {expected_total})");
    if total_count != expected_total.to_string() {
        println!("WARNING: X-Total-Count differs from the count by the rule");
    }

    let (count_sql, select_sql) =
        shared_listing_sql(caller_id, &caller_department, caller_clearance);
    for (name, sql) in [("listing", &select_sql), ("count", &count_sql)] {
        let mut times: Vec<Duration> = (0..20)
            .map(|_| {
                let started = Instant::now();
                let mut statement = plan_connection.prepare_cached(sql).expect("statement");
                let rows = statement.query_map([], |_| Ok(())).expect("query").count();
                assert!(rows > 0);
                started.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "the shared {name} query alone, straight on SQLite: median {:.2} ms over {} runs",
            percentile(&times, 0.5),
            times.len()
        );
    }
    for (name, sql) in [("listing", &select_sql), ("count", &count_sql)] {
        let plan = query_plan(&plan_connection, sql).expect("query plan");
        println!("EXPLAIN QUERY PLAN of the shared {name} query:\n{sql}");
        for line in &plan {
            println!("  {line}");
        }
        let scans = full_scans_of_todos(&plan);
        if scans.is_empty() {
            println!("  => todos is reached through indexes only (no full scan)");
        } else {
            println!("  => WARNING: full scan of todos: {scans:?}");
        }
    }
}
