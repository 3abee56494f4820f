//! Todo rules: who may see and change what, decided by the access policy.
//! The service needs only the todo repository, and answers in its own
//! errors, which `error.rs` turns into the contract's JSON.

use super::repository::{ListSink, NewTodo, TodoChanges, TodoListing, TodoRepository};
use super::{Todo, TodoFilter};
use crate::auth::policy::{self, Action, Resource, SharedReading, Subject};
use crate::repository::RepoError;
use crate::users::User;

/// Why a todo operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TodoError {
    /// No such todo, or none the caller may read: the two look the same.
    #[error("no todo the caller may read has this id")]
    NotFound,
    /// The caller may read the todo but not change it.
    #[error("the todo is read-only to the caller")]
    ReadOnly,
    #[error(transparent)]
    Storage(#[from] RepoError),
}

/// The caller's todos, and with `shared` those their department shares
/// with them, newest first, handed to `each`; returns the total count.
pub async fn list(
    todos: &dyn TodoRepository,
    caller: &User,
    filter: TodoFilter,
    each: &mut ListSink<'_>,
) -> Result<u64, TodoError> {
    let shared = filter
        .shared
        .then(|| policy::shared_reading(Subject::from(caller)))
        .flatten()
        .map(SharedReading::into_owned);
    let listing = TodoListing {
        reader_id: caller.id,
        completed: filter.completed,
        shared,
    };
    let listed = todos.list(listing.clone(), filter.page, each).await?;
    match filter.page.total_if_last(listed) {
        Some(total) => Ok(total),
        None => Ok(todos.count(listing).await?),
    }
}

pub async fn create(
    todos: &dyn TodoRepository,
    caller: &User,
    todo: NewTodo,
) -> Result<Todo, TodoError> {
    Ok(todos.insert(caller.id, todo).await?)
}

/// The todo if the caller may read it; 404 otherwise, exactly as for an id
/// that does not exist, so ids reveal nothing.
pub async fn get(todos: &dyn TodoRepository, caller: &User, id: i64) -> Result<Todo, TodoError> {
    todos
        .find(id)
        .await?
        .filter(|todo| policy::allows(Subject::from(caller), Action::Read, Resource::from(todo)))
        .ok_or(TodoError::NotFound)
}

/// Applies changes for the owner. A reader who may see the todo but not
/// change it gets 403; anyone else 404.
pub async fn update(
    todos: &dyn TodoRepository,
    caller: &User,
    id: i64,
    changes: TodoChanges,
) -> Result<Todo, TodoError> {
    authorize_write(todos, caller, id).await?;
    todos
        .update(caller.id, id, changes)
        .await?
        .ok_or(TodoError::NotFound)
}

pub async fn delete(todos: &dyn TodoRepository, caller: &User, id: i64) -> Result<(), TodoError> {
    authorize_write(todos, caller, id).await?;
    if !todos.delete(caller.id, id).await? {
        return Err(TodoError::NotFound);
    }
    Ok(())
}

async fn authorize_write(
    todos: &dyn TodoRepository,
    caller: &User,
    id: i64,
) -> Result<(), TodoError> {
    let todo = get(todos, caller, id).await?;
    if !policy::allows(Subject::from(caller), Action::Write, Resource::from(&todo)) {
        return Err(TodoError::ReadOnly);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::db::sqlite::SqliteStore;
    use crate::todos::Visibility;
    use crate::users::Role;
    use crate::users::repository::{NewUser, UserChanges, UserRepository};

    async fn account(store: &SqliteStore, name: &str, role: Role) -> User {
        let user = NewUser {
            username: name.into(),
            password_hash: "not a hash: these users never log in".into(),
            name: name.into(),
            email: None,
            role,
        };
        UserRepository::insert(store, user).await.unwrap()
    }

    async fn colleague(store: &SqliteStore, name: &str, department: &str) -> User {
        let user = account(store, name, Role::User).await;
        let changes = UserChanges {
            department: Some(Some(department.into())),
            clearance_level: Some(1),
            ..UserChanges::default()
        };
        UserRepository::update(store, user.id, changes)
            .await
            .unwrap()
            .unwrap()
    }

    /// The rules of a single todo, with the repository alone: the owner may
    /// change it, a colleague it is shared with may only read it, and
    /// anyone else cannot tell it exists.
    #[tokio::test]
    async fn a_shared_todo_is_read_only_to_colleagues_and_absent_to_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), Duration::from_secs(1)).unwrap();
        // Users are changed only while an active admin remains.
        account(&store, "admin", Role::Admin).await;
        let owner = colleague(&store, "owner", "ops").await;
        let reader = colleague(&store, "reader", "ops").await;
        let stranger = colleague(&store, "stranger", "sales").await;
        let todo = NewTodo {
            title: "Rotate the keys".into(),
            description: None,
            completed: false,
            visibility: Visibility::Department,
            clearance_level: 1,
        };
        let id = create(&store, &owner, todo).await.unwrap().id;
        let done = || TodoChanges {
            completed: Some(true),
            ..TodoChanges::default()
        };

        assert_eq!(get(&store, &reader, id).await.unwrap().id, id);
        assert!(matches!(
            update(&store, &reader, id, done()).await,
            Err(TodoError::ReadOnly)
        ));
        assert!(matches!(
            delete(&store, &reader, id).await,
            Err(TodoError::ReadOnly)
        ));
        assert!(matches!(
            get(&store, &stranger, id).await,
            Err(TodoError::NotFound)
        ));
        assert!(matches!(
            update(&store, &stranger, id, done()).await,
            Err(TodoError::NotFound)
        ));
        assert!(update(&store, &owner, id, done()).await.unwrap().completed);
        delete(&store, &owner, id).await.unwrap();
        assert!(matches!(
            get(&store, &owner, id).await,
            Err(TodoError::NotFound)
        ));
    }
}
