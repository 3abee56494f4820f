//! The SQLite backend: WAL mode, a pool of readers used in place on the
//! async workers, and one writer thread that commits writes in groups.

// Statement texts are put together at compile time (`concat!`), so a
// query's text is not formatted again for every request.

/// The columns `users::user_from_row` reads, qualified so that joins may
/// use them.
macro_rules! user_columns {
    () => {
        "users.id, users.username, users.name, users.email, users.role, users.scopes,
         users.disabled, users.department, users.clearance_level, users.mfa_enabled"
    };
}

/// A todo as a listing shows it, as `todos::listed_from_row` reads it.
macro_rules! listed_columns {
    () => {
        "t.id, t.title, t.description, t.completed, t.visibility, t.clearance_level,
         u.username, t.created_at, t.updated_at"
    };
}

/// Todos joined to their owners.
macro_rules! todos_with_owners {
    () => {
        " FROM todos t JOIN users u ON u.id = t.owner_id"
    };
}

/// A todo's listed columns.
macro_rules! listed_select {
    () => {
        concat!("SELECT ", listed_columns!(), todos_with_owners!())
    };
}

/// A todo with what the access policy needs of its owner, as
/// `todos::todo_from_row` reads it: the listed columns, then the owner's
/// id and department.
macro_rules! todo_select {
    () => {
        concat!(
            "SELECT ",
            listed_columns!(),
            ", t.owner_id, u.department",
            todos_with_owners!()
        )
    };
}

pub mod backup;
mod mfa;
mod sessions;
mod todos;
mod users;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

use super::{HealthCheck, PoolStats};
use crate::repository::RepoError;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// WAL lets readers run while the writer writes; `synchronous=NORMAL` in WAL
/// mode keeps every committed transaction through a crash of the process
/// (only a power loss can take the last ones back).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA foreign_keys = ON;";

/// How long a writer waits for a lock held elsewhere (another process, a
/// checkpoint). Readers run on the async workers and must not stall them:
/// in WAL mode they wait only in rare moments, and briefly.
const WRITER_BUSY_MS: u32 = 5000;
const READER_BUSY_MS: u32 = 250;

/// Read connections kept open: enough that every runtime worker thread has
/// one, since reads run on the worker itself.
fn readers() -> u32 {
    u32::try_from(num_cpus::get()).map_or(8, |cores| cores.max(8))
}

/// The most writes committed together in one transaction.
const MAX_GROUP: usize = 64;

/// A write as the writer thread runs it: given the group's connection, it
/// does its work and returns how to answer once the group's commit is
/// known; given an error (the group could not start), it does nothing and
/// answers with that error.
type WriteJob = Box<dyn FnOnce(Result<&Connection, RepoError>) -> Answer + Send>;
/// Sends a write's result: its own, or the group's commit error.
type Answer = Box<dyn FnOnce(Option<RepoError>) + Send>;

/// A SQLite database file.
pub struct SqliteStore {
    readers: Pool<SqliteConnectionManager>,
    /// Exactly one connection, used only by the writer thread, so writers
    /// queue instead of failing with `SQLITE_BUSY` against each other.
    writer: Pool<SqliteConnectionManager>,
    writes: mpsc::Sender<WriteJob>,
}

impl SqliteStore {
    /// Opens the file, creating and migrating it as needed. Blocking.
    pub fn open(path: &Path, acquire_timeout: Duration) -> Result<Self, RepoError> {
        let pool = |size, busy_ms: u32| {
            let manager = SqliteConnectionManager::file(path).with_init(move |connection| {
                connection.execute_batch(PRAGMAS)?;
                // Keeps each cached statement's plan: without it SQLite
                // re-prepares a statement whenever a bound value could
                // change the plan, which cost a fifth of a list request.
                connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
                connection.busy_timeout(Duration::from_millis(busy_ms.into()))
            });
            Pool::builder()
                .max_size(size)
                // A file connection does not go stale; testing it on every
                // checkout ran an extra statement per query.
                .test_on_check_out(false)
                .connection_timeout(acquire_timeout)
                .build(manager)
                .map_err(|e| RepoError::Internal(e.to_string()))
        };
        let writer = pool(1, WRITER_BUSY_MS)?;
        {
            let mut connection = writer.get().map_err(|_| RepoError::Unavailable)?;
            embedded::migrations::runner()
                .run(&mut *connection)
                .map_err(|e| RepoError::Internal(format!("migration failed: {e}")))?;
        }
        let (writes, queue) = mpsc::channel();
        let connections = writer.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(&connections, &queue))
            .map_err(|e| RepoError::Internal(format!("cannot start the writer: {e}")))?;
        Ok(Self {
            readers: pool(readers(), READER_BUSY_MS)?,
            writer,
            writes,
        })
    }

    /// Runs `query` on a read connection, in place. Reads are short and
    /// indexed, and in WAL mode they never wait for the writer, so handing
    /// them to the blocking pool would cost more (two thread switches) than
    /// the query itself.
    async fn read<T, F>(&self, query: F) -> Result<T, RepoError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
    {
        let connection = checkout(&self.readers)?;
        query(&connection).map_err(RepoError::from)
    }

    /// Runs `work` on the writer thread, inside a savepoint of the current
    /// group's immediate transaction, and answers once the group has been
    /// committed: an `Ok` is durable when it arrives. An `Err` from `work`
    /// rolls back its own changes only.
    async fn write<T, F>(&self, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, RepoError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = write_job(work, reply);
        self.writes
            .send(job)
            .map_err(|_| RepoError::Internal("the writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| RepoError::Internal("a write was dropped unanswered".into()))?
    }
}

/// Wraps `work` for the writer thread, answering through `reply`.
fn write_job<T, F>(work: F, reply: oneshot::Sender<Result<T, RepoError>>) -> WriteJob
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, RepoError> + Send + 'static,
{
    Box::new(move |connection| {
        let outcome = connection.and_then(|connection| in_savepoint(connection, work));
        Box::new(move |group_failed| {
            let result = match (outcome, group_failed) {
                (Ok(_), Some(error)) => Err(error),
                (outcome, _) => outcome,
            };
            // The receiver is gone only if the request was dropped.
            let _ = reply.send(result);
        })
    })
}

/// The writer thread: takes the queued writes (at most [`MAX_GROUP`]) and
/// commits them as one transaction, so that under load one commit, and one
/// wake-up of this thread, serve many requests. Ends when the store is
/// dropped.
fn run_writer(pool: &Pool<SqliteConnectionManager>, queue: &mpsc::Receiver<WriteJob>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        group.extend(queue.try_iter().take(MAX_GROUP - 1));
        match checkout(pool) {
            Ok(connection) => commit_group(&connection, group),
            Err(error) => refuse_group(group, &error),
        }
    }
}

/// Runs the group's writes, each in its own savepoint, in one immediate
/// transaction, commits it, then answers every write.
fn commit_group(connection: &Connection, group: Vec<WriteJob>) {
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE") {
        return refuse_group(group, &error);
    }
    let mut answers = Vec::with_capacity(group.len());
    let mut aborted: Option<RepoError> = None;
    for job in group {
        if let Some(error) = &aborted {
            answers.push(job(Err(error.clone())));
            continue;
        }
        answers.push(job(Ok(connection)));
        // Some errors (a full disk, I/O) roll the whole transaction back:
        // the writes before this one are gone too, and must not succeed.
        if connection.is_autocommit() {
            aborted = Some(RepoError::Internal(
                "the write transaction was rolled back".into(),
            ));
        }
    }
    let failed = aborted.or_else(|| execute(connection, "COMMIT").err());
    if failed.is_some() && !connection.is_autocommit() {
        let _ = execute(connection, "ROLLBACK");
    }
    for answer in answers {
        answer(failed.clone());
    }
}

/// Answers every write of a group that could not start with `error`.
fn refuse_group(group: Vec<WriteJob>, error: &RepoError) {
    for job in group {
        job(Err(error.clone()))(None);
    }
}

/// Runs `work` inside a savepoint, keeping its changes if it succeeds and
/// undoing them if it fails or panics.
fn in_savepoint<T>(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, RepoError>,
) -> Result<T, RepoError> {
    execute(connection, "SAVEPOINT write")?;
    let outcome = catch_unwind(AssertUnwindSafe(|| work(connection)))
        .unwrap_or_else(|_| Err(RepoError::Internal("a write panicked".into())));
    if !connection.is_autocommit() {
        if outcome.is_err() {
            execute(connection, "ROLLBACK TO write")?;
        }
        execute(connection, "RELEASE write")?;
    }
    outcome
}

/// Runs one statement without parameters, prepared once per connection.
fn execute(connection: &Connection, sql: &str) -> Result<(), RepoError> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn checkout(
    pool: &Pool<SqliteConnectionManager>,
) -> Result<PooledConnection<SqliteConnectionManager>, RepoError> {
    pool.get().map_err(|_| RepoError::Unavailable)
}

impl From<rusqlite::Error> for RepoError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation)
                if error.to_string().contains("UNIQUE constraint failed") =>
            {
                RepoError::Duplicate
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => RepoError::Unavailable,
            _ => RepoError::Internal(error.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl HealthCheck for SqliteStore {
    async fn ping(&self) -> Result<(), RepoError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn ready(&self) -> Result<(), RepoError> {
        let expected = latest_migration();
        let applied: Option<i64> = self
            .read(|c| {
                c.query_row(
                    "SELECT MAX(version) FROM refinery_schema_history",
                    [],
                    |row| row.get(0),
                )
            })
            .await?;
        match applied {
            Some(version) if version >= expected => Ok(()),
            _ => Err(RepoError::Unavailable),
        }
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        [("reader", &self.readers), ("writer", &self.writer)]
            .into_iter()
            .map(|(pool, connections)| {
                let state = connections.state();
                PoolStats {
                    pool,
                    in_use: state.connections.saturating_sub(state.idle_connections),
                    idle: state.idle_connections,
                }
            })
            .collect()
    }
}

/// The version of the newest migration built into this binary.
fn latest_migration() -> i64 {
    super::newest_migration(&embedded::migrations::runner())
}

/// The current time as stored: RFC 3339, UTC, microseconds.
fn now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

/// Reads a `count(*)` column.
fn count_column(row: &rusqlite::Row<'_>) -> rusqlite::Result<u64> {
    let count: i64 = row.get(0)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// A text column, borrowed from the row rather than copied.
fn text_column<'r>(row: &'r rusqlite::Row<'_>, index: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(index)?
        .as_str()
        .map_err(|e| conversion_failed(index, e.into()))
}

/// A text column that may be null, borrowed from the row.
fn optional_text_column<'r>(
    row: &'r rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(index)?
        .as_str_or_null()
        .map_err(|e| conversion_failed(index, e.into()))
}

/// Converts a stored text column into a domain value, failing like any
/// other column conversion.
fn parse_column<T: std::str::FromStr>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    text_column(row, index)?
        .parse()
        .map_err(|e: T::Err| conversion_failed(index, e.to_string().into()))
}

fn conversion_failed(
    index: usize,
    cause: Box<dyn std::error::Error + Send + Sync>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Reply = oneshot::Receiver<Result<(), RepoError>>;

    fn insert(value: i64) -> (WriteJob, Reply) {
        let (reply, answer) = oneshot::channel();
        let work = move |c: &Connection| {
            c.execute("INSERT INTO t (x) VALUES (?1)", [value])?;
            Ok(())
        };
        (write_job(work, reply), answer)
    }

    fn stored(connection: &Connection) -> Vec<i64> {
        let mut statement = connection.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn a_failing_or_panicking_write_undoes_only_itself_in_its_group() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (x INTEGER UNIQUE)")
            .unwrap();
        let (first, first_answer) = insert(1);
        let (duplicate, duplicate_answer) = insert(1);
        let (reply, panic_answer) = oneshot::channel();
        let panicking = write_job(
            |c: &Connection| -> Result<(), RepoError> {
                c.execute("INSERT INTO t (x) VALUES (3)", [])?;
                panic!("a bug in a write")
            },
            reply,
        );
        let (last, last_answer) = insert(2);

        commit_group(&connection, vec![first, duplicate, panicking, last]);

        assert!(matches!(first_answer.blocking_recv(), Ok(Ok(()))));
        assert!(matches!(
            duplicate_answer.blocking_recv(),
            Ok(Err(RepoError::Duplicate))
        ));
        assert!(matches!(
            panic_answer.blocking_recv(),
            Ok(Err(RepoError::Internal(_)))
        ));
        assert!(matches!(last_answer.blocking_recv(), Ok(Ok(()))));
        assert_eq!(stored(&connection), [1, 2]);
        assert!(connection.is_autocommit(), "the group's transaction ended");
    }

    #[test]
    fn a_group_that_cannot_start_answers_every_write_with_the_error() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (x INTEGER UNIQUE); BEGIN")
            .unwrap();
        let (job, answer) = insert(1);
        // BEGIN inside an open transaction fails: nothing may run.
        commit_group(&connection, vec![job]);
        assert!(matches!(
            answer.blocking_recv(),
            Ok(Err(RepoError::Internal(_)))
        ));
        connection.execute_batch("ROLLBACK").unwrap();
        assert_eq!(stored(&connection), Vec::<i64>::new());
    }
}
