//! `/api/users/me/sessions…` and the admin's `/api/users/{id}/sessions`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AdminUser, CurrentUser};
use super::schemas::SessionOut;
use crate::error::{AppError, ErrorBody};
use crate::extract::ApiPath;
use crate::json::Json;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(own))
        .routes(routes!(end_own))
        .routes(routes!(of_user, end_all_of_user))
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/api/users/me/sessions", tag = "sessions",
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 200, description = "Live sessions, newest first", body = [SessionOut])))]
async fn own(
    caller: CurrentUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<SessionOut>>, AppError> {
    let sessions = state.accounts().own_sessions(&caller.user).await?;
    Ok(Json(SessionOut::list(sessions, Some(&caller.session))))
}

/// Ends one of the caller's sessions; its tokens stop at once.
#[utoipa::path(delete, path = "/api/users/me/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id (the access token's sid)")),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 204, description = "Ended"),
        (status = 404, description = "No session of the caller has this id", body = ErrorBody)))]
async fn end_own(
    caller: CurrentUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state.accounts().end_own_session(&caller.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's live sessions (admins only).
#[utoipa::path(get, path = "/api/users/{id}/sessions", tag = "sessions",
    params(("id" = i64, Path, description = "The user's id")),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 200, description = "Live sessions, newest first", body = [SessionOut])))]
async fn of_user(
    _: AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<Vec<SessionOut>>, AppError> {
    let sessions = state.accounts().user_sessions(id).await?;
    Ok(Json(SessionOut::list(sessions, None)))
}

/// Ends every session of a user (admins only).
#[utoipa::path(delete, path = "/api/users/{id}/sessions", tag = "sessions",
    params(("id" = i64, Path, description = "The user's id")),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 204, description = "Every session ended")))]
async fn end_all_of_user(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, AppError> {
    state.accounts().end_user_sessions(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
