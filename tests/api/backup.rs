//! `todo-api backup`: a consistent copy of a live SQLite database, taken
//! while the server takes writes, and a server started on the copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::on_postgres;
use crate::process::*;

const PASSWORD: &str = "backup test passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_holds_every_write_acknowledged_before_it() {
    if on_postgres() {
        return; // a SQLite feature; the binary runs on its own file anyway
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(dir.path(), "text", &[("TODO_API_AUTH_RATE_LIMIT", "0")]);
    let http = Arc::new(Http::new(&server.base));
    let (status, _) = http
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"username": "writer", "password": PASSWORD, "name": "Writer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, tokens) = http.login("writer", PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap().to_string();

    // Two writers, each creating todos one after another until told to stop.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (http, token) = (http.clone(), token.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({"title": format!("writer {writer}, todo {n}")});
                    let (status, todo) = http
                        .call(Method::POST, "/api/todos", Some(&token), Some(body))
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{todo}");
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(todo["id"].as_i64().unwrap());
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before: Vec<i64> = acknowledged.lock().unwrap().clone();
    let copy = dir.path().join("copy.db");
    let run = tokio::task::spawn_blocking({
        let (dir, copy) = (dir.path().to_path_buf(), copy.clone());
        move || command(&dir).arg("backup").arg(&copy).output().unwrap()
    })
    .await
    .unwrap();
    let during = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{run:?}");
    assert!(stdout.contains("pages) to"), "{stdout}");
    assert!(before.len() > 10, "the writers wrote: {}", before.len());
    assert!(
        acknowledged.lock().unwrap().len() > during,
        "writes went on after the backup"
    );

    let copied = rusqlite::Connection::open(&copy).unwrap();
    let check: String = copied
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let ids: std::collections::HashSet<i64> = copied
        .prepare("SELECT id FROM todos")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let missing: Vec<_> = before.iter().filter(|id| !ids.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, not in it: {missing:?}"
    );
    drop(copied);
    let (exit, log) = server.stop();
    assert!(exit.success(), "{log}");

    // Restoring is starting on the copy.
    let url = format!("sqlite:{}", copy.display());
    let restored = Running::start(dir.path(), "json", &[("DATABASE_URL", &url)]);
    let http = Http::new(&restored.base);
    let (status, tokens) = http.login("writer", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let token = tokens["access_token"].as_str().unwrap();
    let (status, first) = http
        .call(
            Method::GET,
            &format!("/api/todos/{}", before[0]),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (exit, log) = restored.stop();
    assert!(exit.success(), "{log}");
}

#[test]
fn a_backup_never_overwrites_and_says_why_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = command(dir.path()).arg("migrate").output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, b"precious").unwrap();
    let refused = command(dir.path())
        .arg("backup")
        .arg(&taken)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert_eq!(std::fs::read(&taken).unwrap(), b"precious");

    let postgres = command(dir.path())
        .arg("backup")
        .arg(dir.path().join("pg.db"))
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!postgres.status.success());
    assert!(String::from_utf8_lossy(&postgres.stderr).contains("pg_dump"));

    let missing = command(dir.path())
        .arg("backup")
        .arg(dir.path().join("copy.db"))
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.path().join("absent.db").display()),
        )
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open the database"));
    assert!(!dir.path().join("absent.db").exists(), "nothing is created");
    assert!(!dir.path().join("copy.db").exists());
}
