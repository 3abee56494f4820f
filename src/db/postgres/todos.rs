//! Todos in PostgreSQL.

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, count, level, parse_text, timestamp};
use crate::db::own_todo_count;
use crate::db::query::{self, Placeholders, SqlParam};
use crate::repository::{Page, RepoError};
use crate::todos::Todo;
use crate::todos::repository::{ListSink, NewTodo, TodoChanges, TodoListing, TodoRepository};

/// The columns [`todo_from_row`] reads, from `t` (todos) and `u` (owners).
const TODO_COLUMNS: &str = "t.id, t.title, t.description, t.completed, t.visibility,
    t.clearance_level, t.owner_id, u.username, u.department, t.created_at, t.updated_at";

fn todo_from_row(row: &Row) -> Result<Todo, RepoError> {
    Ok(Todo {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        description: row.try_get(2)?,
        completed: row.try_get(3)?,
        visibility: parse_text(row, 4)?,
        clearance_level: level(row, 5)?,
        owner_id: row.try_get(6)?,
        owner: row.try_get(7)?,
        owner_department: row.try_get(8)?,
        created_at: timestamp(row, 9)?,
        updated_at: timestamp(row, 10)?,
    })
}

type Param = Box<dyn ToSql + Sync + Send>;

fn as_params(values: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A query of the ids a listing shows, and its parameters. With sharing, it
/// is the union of the reader's own todos and their department's shared
/// ones (two disjoint sets: the second excludes the reader), each side
/// served by an index, so only ids are gathered and sorted.
fn visible_ids(listing: &TodoListing) -> (String, Vec<Param>) {
    let mut values: Vec<Param> = vec![Box::new(listing.reader_id)];
    let completed = match listing.completed {
        Some(completed) => {
            values.push(Box::new(completed));
            " AND t.completed = $2"
        }
        None => "",
    };
    let own = format!("SELECT t.id FROM todos t WHERE t.owner_id = $1{completed}");
    let Some(shared) = &listing.shared else {
        return (own, values);
    };
    let (admitted, params) = query::shared_reading(shared, Placeholders::Dollar, values.len() + 1);
    values.extend(params.into_iter().map(|param| -> Param {
        match param {
            SqlParam::Id(id) => Box::new(id),
            SqlParam::Text(text) => Box::new(text.to_string()),
            SqlParam::Level(level) => Box::new(i16::from(level)),
        }
    }));
    let others = format!(
        "SELECT t.id FROM users o JOIN todos t ON t.owner_id = o.id WHERE {admitted}{completed}"
    );
    (format!("{own} UNION ALL {others}"), values)
}

#[async_trait]
impl TodoRepository for PgStore {
    async fn list(
        &self,
        listing: TodoListing,
        page: Page,
        each: &mut ListSink<'_>,
    ) -> Result<usize, RepoError> {
        let (ids, mut values) = visible_ids(&listing);
        let client = self.client().await?;
        let n = values.len();
        values.push(Box::new(i64::from(page.limit)));
        values.push(Box::new(page.offset));
        // Only the page's rows are read in full and joined.
        let statement = client
            .prepare_cached(&format!(
                "WITH visible(id) AS ({ids})
                 SELECT {TODO_COLUMNS} FROM todos t JOIN users u ON u.id = t.owner_id
                 WHERE t.id IN (SELECT id FROM visible ORDER BY id DESC LIMIT ${} OFFSET ${})
                 ORDER BY t.id DESC",
                n + 1,
                n + 2
            ))
            .await?;
        let rows = client.query(&statement, &as_params(&values)).await?;
        for row in &rows {
            each(todo_from_row(row)?.as_listed());
        }
        Ok(rows.len())
    }

    async fn count(&self, listing: TodoListing) -> Result<u64, RepoError> {
        let client = self.client().await?;
        if listing.shared.is_none() {
            let column = own_todo_count(listing.completed);
            let statement = client
                .prepare_cached(&format!("SELECT {column} FROM users WHERE id = $1"))
                .await?;
            return match client.query_opt(&statement, &[&listing.reader_id]).await? {
                Some(row) => count(&row),
                None => Ok(0),
            };
        }
        let (ids, values) = visible_ids(&listing);
        let statement = client
            .prepare_cached(&format!(
                "WITH visible(id) AS ({ids}) SELECT count(*) FROM visible"
            ))
            .await?;
        count(&client.query_one(&statement, &as_params(&values)).await?)
    }

    async fn find(&self, id: i64) -> Result<Option<Todo>, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {TODO_COLUMNS} FROM todos t JOIN users u ON u.id = t.owner_id
                 WHERE t.id = $1"
            ))
            .await?;
        client
            .query_opt(&statement, &[&id])
            .await?
            .map(|row| todo_from_row(&row))
            .transpose()
    }

    async fn insert(&self, owner_id: i64, todo: NewTodo) -> Result<Todo, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH t AS (
                    INSERT INTO todos (owner_id, title, description, completed, visibility,
                                       clearance_level)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    RETURNING *)
                 SELECT {TODO_COLUMNS} FROM t JOIN users u ON u.id = t.owner_id"
            ))
            .await?;
        let row = client
            .query_opt(
                &statement,
                &[
                    &owner_id,
                    &todo.title,
                    &todo.description,
                    &todo.completed,
                    &todo.visibility.as_str(),
                    &i16::from(todo.clearance_level),
                ],
            )
            .await?;
        match row {
            Some(row) => todo_from_row(&row),
            None => Err(RepoError::Internal("inserted todo has no owner".into())),
        }
    }

    async fn update(
        &self,
        owner_id: i64,
        id: i64,
        changes: TodoChanges,
    ) -> Result<Option<Todo>, RepoError> {
        let client = self.client().await?;
        // One statement: a field left out keeps its value; the
        // description's flag tells "leave" from "set to null".
        let statement = client
            .prepare_cached(&format!(
                "WITH t AS (
                    UPDATE todos SET
                        title = coalesce($3, title),
                        description = CASE WHEN $4 THEN $5 ELSE description END,
                        completed = coalesce($6, completed),
                        visibility = coalesce($7, visibility),
                        clearance_level = coalesce($8, clearance_level),
                        updated_at = now()
                    WHERE id = $1 AND owner_id = $2
                    RETURNING *)
                 SELECT {TODO_COLUMNS} FROM t JOIN users u ON u.id = t.owner_id"
            ))
            .await?;
        let description_given = changes.description.is_some();
        let row = client
            .query_opt(
                &statement,
                &[
                    &id,
                    &owner_id,
                    &changes.title,
                    &description_given,
                    &changes.description.flatten(),
                    &changes.completed,
                    &changes.visibility.map(|v| v.as_str()),
                    &changes.clearance_level.map(i16::from),
                ],
            )
            .await?;
        row.map(|row| todo_from_row(&row)).transpose()
    }

    async fn delete(&self, owner_id: i64, id: i64) -> Result<bool, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("DELETE FROM todos WHERE id = $1 AND owner_id = $2")
            .await?;
        Ok(client.execute(&statement, &[&id, &owner_id]).await? > 0)
    }
}
