//! `/api/users/me/mfa…` and the admin's `/api/users/{id}/mfa`.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AdminUser, CurrentUser};
use super::schemas::{
    MfaRemoval, PasswordConfirmation, RecoveryCodesOut, TotpConfirmation, TotpEnrolmentOut,
};
use crate::error::{AppError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::json::Json;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(disable))
        .routes(routes!(reset))
}

/// Starts turning on two-step login: a new TOTP secret, pending until a
/// first code confirms it (asking again replaces a pending one).
#[utoipa::path(post, path = "/api/users/me/mfa/totp", tag = "two-step login",
    request_body = PasswordConfirmation, security(("oauth2" = []), ("bearer" = [])),
    responses((status = 201, description = "Pending: add it to an authenticator app", body = TotpEnrolmentOut),
        (status = 401, description = "Incorrect password", body = ErrorBody),
        (status = 409, description = "Two-step login is already on", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Two-step login is not configured", body = ErrorBody)))]
async fn start_totp(
    caller: CurrentUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordConfirmation>,
) -> Result<(StatusCode, Json<TotpEnrolmentOut>), AppError> {
    let enrolment = state
        .accounts()
        .start_totp(&caller.user, body.password)
        .await?;
    Ok((StatusCode::CREATED, Json(enrolment.into())))
}

/// Turns two-step login on with a first code; every other session ends.
#[utoipa::path(post, path = "/api/users/me/mfa/totp/confirm", tag = "two-step login",
    request_body = TotpConfirmation, security(("oauth2" = []), ("bearer" = [])),
    responses((status = 200, description = "On: ten single-use recovery codes, shown once", body = RecoveryCodesOut),
        (status = 400, description = "Invalid one-time code", body = ErrorBody),
        (status = 409, description = "No two-step login is pending", body = ErrorBody),
        (status = 503, description = "Two-step login is not configured", body = ErrorBody)))]
async fn confirm_totp(
    caller: CurrentUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TotpConfirmation>,
) -> Result<Json<RecoveryCodesOut>, AppError> {
    let recovery_codes = state
        .accounts()
        .confirm_totp(&caller.user, &caller.session, &body.code)
        .await?;
    Ok(Json(RecoveryCodesOut { recovery_codes }))
}

/// Turns the caller's two-step login off; every other session ends.
#[utoipa::path(delete, path = "/api/users/me/mfa", tag = "two-step login",
    request_body = MfaRemoval, security(("oauth2" = []), ("bearer" = [])),
    responses((status = 204, description = "Off"),
        (status = 400, description = "Invalid one-time code", body = ErrorBody),
        (status = 401, description = "Incorrect password", body = ErrorBody),
        (status = 409, description = "Two-step login is off", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait")))))]
async fn disable(
    caller: CurrentUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<MfaRemoval>,
) -> Result<StatusCode, AppError> {
    state
        .accounts()
        .disable_mfa(&caller.user, &caller.session, body.password, body.code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns a user's two-step login off, for a lost device (admins only);
/// every session of that user ends.
#[utoipa::path(delete, path = "/api/users/{id}/mfa", tag = "two-step login",
    params(("id" = i64, Path, description = "The user's id")),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 204, description = "Off, and signed out everywhere")))]
async fn reset(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, AppError> {
    state.accounts().reset_mfa(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
