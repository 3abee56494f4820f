//! The benchmark's floor: the least an axum server can do to answer
//! `GET /api/todos`. It returns a fixed, precomputed JSON array of 20 todos of
//! the same shape as the real API's and does nothing else: no database, no
//! authentication, no middleware. `bench/run.sh` measures it the same way as
//! the real server and reports each scenario as a fraction of it.
//!
//! ```sh
//! cargo run --release --example floor -- 127.0.0.1:8001
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// How many todos the body holds, as the benchmark's seeded user has.
const TODOS: usize = 20;

/// One todo, its fields in the order the real API writes them.
#[derive(serde::Serialize)]
struct Todo {
    id: usize,
    title: String,
    description: Option<String>,
    completed: bool,
    visibility: &'static str,
    clearance_level: u8,
    owner: &'static str,
    created_at: String,
    updated_at: String,
}

/// The body of every answer, built once: what the real server sends for a
/// user with 20 todos (newest first).
fn body() -> Bytes {
    let todos: Vec<Todo> = (1..=TODOS)
        .rev()
        .map(|id| {
            let at = format!("2026-11-27T07:47:{id:02}.115161Z");
            Todo {
                id,
                title: format!("Benchmark todo {id}"),
                description: None,
                completed: false,
                visibility: "private",
                clearance_level: 0,
                owner: "alice",
                created_at: at.clone(),
                updated_at: at,
            }
        })
        .collect();
    Bytes::from(serde_json::to_vec(&todos).expect("todos always serialise"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    let body = body();
    let app = Router::new().route(
        "/api/todos",
        // Cloning `Bytes` is a reference-count increment, not a copy.
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("floor: listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
