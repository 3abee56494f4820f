//! `/api/todos` and `/api/todos/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schemas::{TodoIn, TodoListQuery, TodoOut, TodoPatch};
use super::{ListedTodo, Todo, service};
use crate::auth::extract::{ReadScope, Scoped, WriteScope};
use crate::error::AppError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::{Json, JsonArray};
use crate::pagination::with_total_count;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, replace, update, remove))
}

/// One todo as the body of a response.
fn todo_response(todo: &Todo) -> Response {
    Json(TodoOut::from(todo.as_listed())).into_response()
}

/// The id path parameter of `/api/todos/{id}`.
const ID: &str = "The todo's id";

/// The caller's todos, newest first; with `shared=true` also those their
/// department shares with them.
#[utoipa::path(get, path = "/api/todos", tag = "todos", params(TodoListQuery),
    security(("oauth2" = ["read"]), ("bearer" = [])),
    responses((status = 200, description = "A page of todos", body = [TodoOut],
        headers(("x-total-count" = u64, description = "Todos in all pages")))))]
async fn list(
    caller: Scoped<ReadScope>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TodoListQuery>,
) -> Result<Response, AppError> {
    let mut page = JsonArray::new();
    let mut write = |todo: ListedTodo<'_>| page.push(&TodoOut::from(todo));
    let total = service::list(
        state.db.todos.as_ref(),
        &caller,
        query.validate()?,
        &mut write,
    )
    .await?;
    Ok(with_total_count(total, page))
}

/// Creates a todo owned by the caller.
#[utoipa::path(post, path = "/api/todos", tag = "todos", request_body = TodoIn,
    security(("oauth2" = ["write"]), ("bearer" = [])),
    responses((status = 201, description = "Created", body = TodoOut)))]
async fn create(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TodoIn>,
) -> Result<(StatusCode, Response), AppError> {
    let todo = service::create(state.db.todos.as_ref(), &caller, body.validate()?).await?;
    Ok((StatusCode::CREATED, todo_response(&todo)))
}

/// One todo the caller may read.
#[utoipa::path(get, path = "/api/todos/{id}", tag = "todos", params(("id" = i64, Path, description = ID)),
    security(("oauth2" = ["read"]), ("bearer" = [])),
    responses((status = 200, description = "The todo", body = TodoOut)))]
async fn read(
    caller: Scoped<ReadScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Response, AppError> {
    Ok(todo_response(
        &service::get(state.db.todos.as_ref(), &caller, id).await?,
    ))
}

/// Replaces the caller's todo; omitted fields return to their defaults.
#[utoipa::path(put, path = "/api/todos/{id}", tag = "todos", params(("id" = i64, Path, description = ID)),
    request_body = TodoIn, security(("oauth2" = ["write"]), ("bearer" = [])),
    responses((status = 200, description = "The replaced todo", body = TodoOut)))]
async fn replace(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<TodoIn>,
) -> Result<Response, AppError> {
    let changes = body.validate()?.into();
    Ok(todo_response(
        &service::update(state.db.todos.as_ref(), &caller, id, changes).await?,
    ))
}

/// Changes the given fields of the caller's todo.
#[utoipa::path(patch, path = "/api/todos/{id}", tag = "todos", params(("id" = i64, Path, description = ID)),
    request_body = TodoPatch, security(("oauth2" = ["write"]), ("bearer" = [])),
    responses((status = 200, description = "The changed todo", body = TodoOut)))]
async fn update(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<TodoPatch>,
) -> Result<Response, AppError> {
    let changes = body.validate()?;
    Ok(todo_response(
        &service::update(state.db.todos.as_ref(), &caller, id, changes).await?,
    ))
}

/// Deletes the caller's todo.
#[utoipa::path(delete, path = "/api/todos/{id}", tag = "todos", params(("id" = i64, Path, description = ID)),
    security(("oauth2" = ["write"]), ("bearer" = [])),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, AppError> {
    service::delete(state.db.todos.as_ref(), &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
