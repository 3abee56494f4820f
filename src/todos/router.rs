//! `/api/todos` and `/api/todos/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};

use super::schemas::{TodoIn, TodoListQuery, TodoOut, TodoPatch};
use super::service;
use crate::AppState;
use crate::auth::extract::{ReadScope, Scoped, WriteScope};
use crate::error::AppError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::with_total_count;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/todos", get(list).post(create))
        .route(
            "/api/todos/{id}",
            get(read).put(replace).patch(update).delete(remove),
        )
}

async fn list(
    caller: Scoped<ReadScope>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TodoListQuery>,
) -> Result<Response, AppError> {
    let (todos, total) = service::list(&state, &caller, query.validate()?).await?;
    let todos: Vec<TodoOut> = todos.into_iter().map(TodoOut::from).collect();
    Ok(with_total_count(total, todos))
}

async fn create(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TodoIn>,
) -> Result<(StatusCode, Json<TodoOut>), AppError> {
    let todo = service::create(&state, &caller, body.validate()?).await?;
    Ok((StatusCode::CREATED, Json(todo.into())))
}

async fn read(
    caller: Scoped<ReadScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<TodoOut>, AppError> {
    Ok(Json(service::get(&state, &caller, id).await?.into()))
}

async fn replace(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<TodoIn>,
) -> Result<Json<TodoOut>, AppError> {
    let changes = body.validate()?.into();
    Ok(Json(
        service::update(&state, &caller, id, changes).await?.into(),
    ))
}

async fn update(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<TodoPatch>,
) -> Result<Json<TodoOut>, AppError> {
    let changes = body.validate()?;
    Ok(Json(
        service::update(&state, &caller, id, changes).await?.into(),
    ))
}

async fn remove(
    caller: Scoped<WriteScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, AppError> {
    service::delete(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
