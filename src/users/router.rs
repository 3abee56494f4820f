//! `/api/users/me` and the admin routes under `/api/users`.

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schemas::{UserOut, UserPatch};
use super::service;
use crate::auth::extract::{AdminUser, CurrentUser};
use crate::error::{AppError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, with_total_count};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list))
        .routes(routes!(read, update, remove))
}

const ID: &str = "The user's id";

/// The caller's own profile.
#[utoipa::path(get, path = "/api/users/me", tag = "users",
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserOut)))]
async fn me(caller: CurrentUser) -> Json<UserOut> {
    Json(caller.user.into())
}

/// All users, by id (admins only).
#[utoipa::path(get, path = "/api/users", tag = "users", params(PageQuery),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 200, description = "A page of users", body = [UserOut],
        headers(("x-total-count" = u64, description = "Users in all pages")))))]
async fn list(
    _: AdminUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (users, total) = service::list(state.db.users.as_ref(), query.into_page()?).await?;
    let users: Vec<UserOut> = users.into_iter().map(UserOut::from).collect();
    Ok(with_total_count(total, Json(users)))
}

/// One user (admins only).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", params(("id" = i64, Path, description = ID)),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 200, description = "The user", body = UserOut)))]
async fn read(
    _: AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<UserOut>, AppError> {
    Ok(Json(
        service::get(state.db.users.as_ref(), id).await?.into(),
    ))
}

/// Changes a user's profile, role, scopes, status or attributes (admins only).
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", params(("id" = i64, Path, description = ID)),
    request_body = UserPatch, security(("oauth2" = []), ("bearer" = [])),
    responses((status = 200, description = "The changed user", body = UserOut),
        (status = 409, description = "It would leave no active admin", body = ErrorBody)))]
async fn update(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<UserOut>, AppError> {
    let changes = patch.validate()?;
    Ok(Json(
        service::update(
            state.db.users.as_ref(),
            state.db.sessions.as_ref(),
            &admin,
            id,
            changes,
        )
        .await?
        .into(),
    ))
}

/// Deletes a user and their todos (admins only).
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", params(("id" = i64, Path, description = ID)),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "It would leave no active admin", body = ErrorBody)))]
async fn remove(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, AppError> {
    service::delete(state.db.users.as_ref(), &admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
