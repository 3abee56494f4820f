//! Todo rules: who may see and change what, decided by the access policy.

use super::Todo;
use super::repository::{ListSink, NewTodo, TodoChanges, TodoListing};
use super::schemas::TodoFilter;
use crate::auth::policy::{self, Action, Resource, SharedReading, Subject};
use crate::error::AppError;
use crate::state::AppState;
use crate::users::User;

/// The caller's todos, and with `shared` those their department shares
/// with them, newest first, handed to `each`; returns the total count.
pub async fn list(
    state: &AppState,
    caller: &User,
    filter: TodoFilter,
    each: &mut ListSink<'_>,
) -> Result<u64, AppError> {
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
    let listed = state
        .db
        .todos
        .list(listing.clone(), filter.page, each)
        .await?;
    match filter.page.total_if_last(listed) {
        Some(total) => Ok(total),
        None => Ok(state.db.todos.count(listing).await?),
    }
}

pub async fn create(state: &AppState, caller: &User, todo: NewTodo) -> Result<Todo, AppError> {
    Ok(state.db.todos.insert(caller.id, todo).await?)
}

/// The todo if the caller may read it; 404 otherwise, exactly as for an id
/// that does not exist, so ids reveal nothing.
pub async fn get(state: &AppState, caller: &User, id: i64) -> Result<Todo, AppError> {
    state
        .db
        .todos
        .find(id)
        .await?
        .filter(|todo| policy::allows(Subject::from(caller), Action::Read, Resource::from(todo)))
        .ok_or(AppError::NotFound)
}

/// Applies changes for the owner. A reader who may see the todo but not
/// change it gets 403; anyone else 404.
pub async fn update(
    state: &AppState,
    caller: &User,
    id: i64,
    changes: TodoChanges,
) -> Result<Todo, AppError> {
    authorize_write(state, caller, id).await?;
    state
        .db
        .todos
        .update(caller.id, id, changes)
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn delete(state: &AppState, caller: &User, id: i64) -> Result<(), AppError> {
    authorize_write(state, caller, id).await?;
    if !state.db.todos.delete(caller.id, id).await? {
        return Err(AppError::NotFound);
    }
    Ok(())
}

async fn authorize_write(state: &AppState, caller: &User, id: i64) -> Result<(), AppError> {
    let todo = get(state, caller, id).await?;
    if !policy::allows(Subject::from(caller), Action::Write, Resource::from(&todo)) {
        return Err(AppError::Forbidden);
    }
    Ok(())
}
