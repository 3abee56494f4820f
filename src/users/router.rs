//! `/api/users/me` and the admin routes under `/api/users`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::schemas::{UserOut, UserPatch};
use super::service;
use crate::AppState;
use crate::auth::extract::{AdminUser, CurrentUser};
use crate::error::AppError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, with_total_count};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/me", get(me))
        .route("/api/users", get(list))
        .route("/api/users/{id}", get(read).patch(update).delete(remove))
}

async fn me(caller: CurrentUser) -> Json<UserOut> {
    Json(caller.user.into())
}

async fn list(
    _: AdminUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (users, total) = service::list(&state, query.into_page()?).await?;
    let users: Vec<UserOut> = users.into_iter().map(UserOut::from).collect();
    Ok(with_total_count(total, users))
}

async fn read(
    _: AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<UserOut>, AppError> {
    Ok(Json(service::get(&state, id).await?.into()))
}

async fn update(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<UserOut>, AppError> {
    let changes = patch.validate()?;
    Ok(Json(
        service::update(&state, &admin, id, changes).await?.into(),
    ))
}

async fn remove(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, AppError> {
    service::delete(&state, &admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
