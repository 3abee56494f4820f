//! Todos in SQLite.

use std::borrow::Cow;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{SqliteStore, count_column, now, optional_text_column, parse_column, text_column};
use crate::auth::policy::SharedReading;
use crate::db::own_todo_count;
use crate::db::query::{self, Placeholders, SqlParam};
use crate::repository::{Page, RepoError};
use crate::todos::repository::{ListSink, NewTodo, TodoChanges, TodoListing, TodoRepository};
use crate::todos::{ListedTodo, Todo};

const LISTED_SELECT: &str = listed_select!();
const TODO_BY_ID: &str = concat!(todo_select!(), " WHERE t.id = ?1");

/// A row of [`listed_select!`] (or the start of one of [`todo_select!`]),
/// borrowed.
fn listed_from_row<'r>(row: &'r Row<'_>) -> rusqlite::Result<ListedTodo<'r>> {
    Ok(ListedTodo {
        id: row.get(0)?,
        title: text_column(row, 1)?,
        description: optional_text_column(row, 2)?,
        completed: row.get(3)?,
        visibility: parse_column(row, 4)?,
        clearance_level: row.get(5)?,
        owner: text_column(row, 6)?,
        created_at: text_column(row, 7)?,
        updated_at: text_column(row, 8)?,
    })
}

/// A row of [`todo_select!`].
fn todo_from_row(row: &Row<'_>) -> rusqlite::Result<Todo> {
    Ok(listed_from_row(row)?.into_todo(row.get(9)?, row.get(10)?))
}

fn find_in(tx: &Connection, id: i64) -> rusqlite::Result<Option<Todo>> {
    tx.prepare_cached(TODO_BY_ID)?
        .query_row([id], todo_from_row)
        .optional()
}

/// The listing's condition on `completed`, if any: always parameter 2.
fn completed_filter(listing: &TodoListing) -> &'static str {
    match listing.completed {
        Some(_) => " AND t.completed = ?2",
        None => "",
    }
}

/// The parameters every listing starts with: the reader, then `completed`
/// when the listing filters on it.
fn reader_values(listing: &TodoListing) -> Vec<Value> {
    let mut values = vec![Value::Integer(listing.reader_id)];
    if let Some(completed) = listing.completed {
        values.push(Value::Integer(completed.into()));
    }
    values
}

/// A query of the ids a shared listing shows, and its parameters: the union
/// of the reader's own todos and their department's shared ones, each side
/// served by an index, so only ids are gathered and sorted.
fn visible_ids(listing: &TodoListing, shared: &SharedReading<'_>) -> (String, Vec<Value>) {
    let mut values = reader_values(listing);
    let completed = completed_filter(listing);
    let (admitted, params) =
        query::shared_reading(shared, Placeholders::Question, values.len() + 1);
    values.extend(params.into_iter().map(|param| match param {
        SqlParam::Id(id) => Value::Integer(id),
        SqlParam::Text(text) => Value::Text(text.to_string()),
        SqlParam::Level(level) => Value::Integer(level.into()),
    }));
    let sql = format!(
        "SELECT t.id FROM todos t WHERE t.owner_id = ?1{completed}
         UNION ALL
         SELECT t.id FROM users o JOIN todos t ON t.owner_id = o.id
         WHERE {admitted}{completed}"
    );
    (sql, values)
}

#[async_trait]
impl TodoRepository for SqliteStore {
    async fn list(
        &self,
        listing: TodoListing,
        page: Page,
        each: &mut ListSink<'_>,
    ) -> Result<usize, RepoError> {
        self.read(move |c| {
            let (sql, mut values): (Cow<'static, str>, _) = match &listing.shared {
                None => {
                    // The owner's index gives the page in order; the owner's
                    // row is read once (u.id = ?1 follows from the join).
                    let sql = match listing.completed {
                        None => concat!(
                            listed_select!(),
                            " WHERE t.owner_id = ?1 ORDER BY t.id DESC LIMIT ?2 OFFSET ?3"
                        ),
                        Some(_) => concat!(
                            listed_select!(),
                            " WHERE t.owner_id = ?1 AND t.completed = ?2
                             ORDER BY t.id DESC LIMIT ?3 OFFSET ?4"
                        ),
                    };
                    (sql.into(), reader_values(&listing))
                }
                Some(shared) => {
                    // Only the page's rows are read in full and joined.
                    let (ids, values) = visible_ids(&listing, shared);
                    let (limit, offset) = (values.len() + 1, values.len() + 2);
                    let sql = format!(
                        "WITH visible(id) AS ({ids})
                         {LISTED_SELECT} WHERE t.id IN
                            (SELECT id FROM visible ORDER BY id DESC LIMIT ?{limit} OFFSET ?{offset})
                         ORDER BY t.id DESC"
                    );
                    (sql.into(), values)
                }
            };
            values.push(Value::Integer(page.limit.into()));
            values.push(Value::Integer(page.offset));
            let mut statement = c.prepare_cached(&sql)?;
            let mut rows = statement.query(params_from_iter(values.iter()))?;
            let mut listed = 0;
            while let Some(row) = rows.next()? {
                each(listed_from_row(row)?);
                listed += 1;
            }
            Ok(listed)
        })
        .await
    }

    async fn count(&self, listing: TodoListing) -> Result<u64, RepoError> {
        self.read(move |c| {
            let Some(shared) = &listing.shared else {
                let column = own_todo_count(listing.completed);
                return c
                    .prepare_cached(&format!("SELECT {column} FROM users WHERE id = ?1"))?
                    .query_row([listing.reader_id], count_column)
                    .optional()
                    .map(Option::unwrap_or_default);
            };
            let (ids, values) = visible_ids(&listing, shared);
            c.prepare_cached(&format!(
                "WITH visible(id) AS ({ids}) SELECT count(*) FROM visible"
            ))?
            .query_row(params_from_iter(values.iter()), count_column)
        })
        .await
    }

    async fn find(&self, id: i64) -> Result<Option<Todo>, RepoError> {
        self.read(move |c| {
            c.prepare_cached(TODO_BY_ID)?
                .query_row([id], todo_from_row)
                .optional()
        })
        .await
    }

    async fn insert(&self, owner_id: i64, todo: NewTodo) -> Result<Todo, RepoError> {
        self.write(move |tx| {
            let created = now();
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO todos (owner_id, title, description, completed, visibility,
                                    clearance_level, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
                )?
                .query_row(
                    params![
                        owner_id,
                        todo.title,
                        todo.description,
                        todo.completed,
                        todo.visibility.as_str(),
                        todo.clearance_level,
                        created
                    ],
                    |row| row.get(0),
                )?;
            find_in(tx, id)?.ok_or_else(|| RepoError::Internal("inserted todo vanished".into()))
        })
        .await
    }

    async fn update(
        &self,
        owner_id: i64,
        id: i64,
        changes: TodoChanges,
    ) -> Result<Option<Todo>, RepoError> {
        self.write(move |tx| {
            // One statement: a field left out keeps its value; the
            // description's flag tells "leave" from "set to null".
            let updated = tx
                .prepare_cached(
                    "UPDATE todos SET
                    title = coalesce(?3, title),
                    description = CASE WHEN ?4 THEN ?5 ELSE description END,
                    completed = coalesce(?6, completed),
                    visibility = coalesce(?7, visibility),
                    clearance_level = coalesce(?8, clearance_level),
                    updated_at = ?9
                 WHERE id = ?1 AND owner_id = ?2",
                )?
                .execute(params![
                    id,
                    owner_id,
                    changes.title,
                    changes.description.is_some(),
                    changes.description.flatten(),
                    changes.completed,
                    changes.visibility.map(|v| v.as_str()),
                    changes.clearance_level,
                    now()
                ])?;
            if updated == 0 {
                return Ok(None);
            }
            Ok(find_in(tx, id)?)
        })
        .await
    }

    async fn delete(&self, owner_id: i64, id: i64) -> Result<bool, RepoError> {
        self.write(move |tx| {
            Ok(tx
                .prepare_cached("DELETE FROM todos WHERE id = ?1 AND owner_id = ?2")?
                .execute([id, owner_id])?
                > 0)
        })
        .await
    }
}
