//! Fills a freshly migrated SQLite database with the data of the benchmark's
//! growth mode (`bench/run.sh --large`): 100,000 users and 1,000,000 todos,
//! 100,000 of them owned by the one user the benchmark reads as, the rest
//! spread over everyone else.
//!
//! ```sh
//! todo-api migrate --database-url sqlite:large.db
//! cargo run --release --example seed_large -- large.db USERNAME PASSWORD
//! ```
//!
//! It writes to the file directly because the API cannot do this in useful
//! time: each registration costs an argon2 hash. Every user gets the same
//! hash of PASSWORD, computed once with the server's own hasher, so any of
//! them can log in. The big user is USERNAME; the others are `user2` to
//! `user100000`, named after their ids.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, params};
use secrecy::SecretString;
use todo_api::auth::password::PasswordHasher;
use todo_api::validation;

const USERS: i64 = 100_000;
const TODOS: i64 = 1_000_000;
/// The big user's id; the others follow it.
const BIG_USER: i64 = 1;
/// Every tenth todo is the big user's, so that their 100,000 are spread over
/// the whole id range, as if written over time among everyone else's.
const BIG_USER_EVERY: i64 = 10;

/// The owner of todo number `k` (0-based, in insertion order).
fn owner_of(k: i64) -> i64 {
    if k % BIG_USER_EVERY == 0 {
        BIG_USER
    } else {
        BIG_USER + 1 + k % (USERS - 1)
    }
}

/// The current time as the server writes its timestamps.
fn timestamp() -> Result<String, time::error::Format> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc().format(format)
}

fn seed(path: &Path, username: &str, password_hash: &str, now: &str) -> Result<(), Box<dyn Error>> {
    // Read-write without create: a mistyped path fails instead of filling a
    // new file the server would never open.
    let mut connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // A large page cache keeps the indexes being built in memory; foreign
    // keys stay on, so an owner that does not exist fails the seeding.
    connection.execute_batch("PRAGMA cache_size = -262144; PRAGMA foreign_keys = ON;")?;
    let tx = connection.transaction()?;
    let existing: i64 = tx.query_row("SELECT count(*) FROM users", [], |row| row.get(0))?;
    if existing != 0 {
        return Err(format!(
            "the database already has {existing} users; seed a freshly migrated one"
        )
        .into());
    }
    {
        let mut user = tx.prepare(
            "INSERT INTO users (id, username, password_hash, name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        user.execute(params![BIG_USER, username, password_hash, "Big User", now])?;
        for id in BIG_USER + 1..=USERS {
            user.execute(params![
                id,
                format!("user{id}"),
                password_hash,
                format!("User {id}"),
                now
            ])?;
        }
        let mut todo = tx.prepare(
            "INSERT INTO todos (owner_id, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        )?;
        for k in 0..TODOS {
            todo.execute(params![owner_of(k), format!("Todo {k}"), now])?;
        }
    }
    tx.commit()?;
    // The server opens the file in WAL mode: start it with an empty log.
    connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, username, password] = args.as_slice() else {
        return Err("usage: seed_large DB_PATH USERNAME PASSWORD".into());
    };
    let username = validation::username(username.clone()).map_err(|e| format!("USERNAME {e}"))?;
    let password = SecretString::from(password.clone());
    validation::password(&password).map_err(|e| format!("PASSWORD {e}"))?;

    let started = Instant::now();
    let password_hash = PasswordHasher::new(1)?.hash(password).await?;
    seed(Path::new(path), &username, &password_hash, &timestamp()?)?;
    eprintln!(
        "seed_large: {USERS} users and {TODOS} todos, {} of them {username}'s, written in {:.1} s",
        TODOS / BIG_USER_EVERY,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
