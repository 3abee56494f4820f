//! `/auth/register`, `/auth/token`, `/auth/logout`, `/api/users/me/password`.

use crate::json::Json;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::CurrentUser;
use super::limit;
use super::repository::LoginOrigin;
use super::schemas::{
    LogoutRequest, PasswordChange, RegisterRequest, RegisteredOut, TokenForm, TokenResponse,
};
use super::service::SecondFactor;
use crate::client::ClientAddr;
use crate::error::{AppError, ErrorBody};
use crate::extract::{ApiForm, ApiJson, MaybeJson};
use crate::state::AppState;

/// The auth routes; `/auth/register` and `/auth/token` are limited to
/// `--auth-rate-limit` requests a minute per client address (0: no limit).
pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let public = OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(token));
    let public = if state.config.auth_rate_limit > 0 {
        limit::spawn_purge(&state.db.sessions);
        public.layer(middleware::from_fn_with_state(
            state.clone(),
            limit::per_address,
        ))
    } else {
        public
    };
    public
        .routes(routes!(logout))
        .routes(routes!(change_password))
}

/// Creates an account with role `user` and scopes `read write`.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, description = "Registered", body = RegisteredOut),
        (status = 400, description = "User already exists", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait")))))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisteredOut>), AppError> {
    let account = body.validate()?;
    let user = state.accounts().register(account).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// OAuth2 token endpoint: the `password` and `refresh_token` grants.
#[utoipa::path(post, path = "/auth/token", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "A new token pair", body = TokenResponse,
            headers(("cache-control" = String, description = "no-store"))),
        (status = 400, description = "unsupported_grant_type, invalid_request or invalid_scope", body = ErrorBody),
        (status = 401, description = "Incorrect username or password, invalid refresh token, or (two-step login on) invalid one-time code", body = ErrorBody),
        (status = 403, description = "Account disabled, or mfa_required: two-step login is on and no code was sent", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait")))))]
async fn token(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    ApiForm(form): ApiForm<TokenForm>,
) -> Result<Response, AppError> {
    let scope = form.scope.as_deref();
    // FastAPI's `OAuth2PasswordRequestForm` lets clients leave the grant
    // type out, and the lesson's own curl does: a username and a password
    // alone are the password grant.
    let implied = (form.username.is_some() && form.password.is_some()).then_some("password");
    let grant = match form.grant_type.as_deref().or(implied) {
        Some("password") => {
            let (Some(username), Some(password)) = (form.username, form.password) else {
                return Err(AppError::BadRequest("invalid_request".into()));
            };
            let factor = SecondFactor {
                otp: form.otp,
                recovery_code: form.recovery_code,
            };
            let origin = LoginOrigin {
                method: "password",
                address: client.map(|Extension(ClientAddr(address))| address.to_string()),
                user_agent: user_agent(&headers),
            };
            state
                .accounts()
                .login(&username, password, factor, scope, origin)
                .await?
        }
        Some("refresh_token") => {
            let Some(refresh_token) = form.refresh_token else {
                return Err(AppError::BadRequest("invalid_request".into()));
            };
            state.accounts().refresh(&refresh_token, scope).await?
        }
        Some(_) => return Err(AppError::BadRequest("unsupported_grant_type".into())),
        None => return Err(AppError::BadRequest("invalid_request".into())),
    };
    let mut response = Json(TokenResponse::from(grant)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The longest `User-Agent` kept with a session, in characters.
const USER_AGENT_MAX_CHARS: usize = 256;

/// The client's `User-Agent`, cut to a length worth keeping.
fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(agent.chars().take(USER_AGENT_MAX_CHARS).collect())
}

/// Ends the session of the given refresh token, or without a body every
/// session of the caller.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>),
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 204, description = "Logged out")))]
async fn logout(
    caller: CurrentUser,
    State(state): State<AppState>,
    MaybeJson(body): MaybeJson<LogoutRequest>,
) -> Result<StatusCode, AppError> {
    let refresh_token = body.as_ref().map(|b| b.refresh_token.as_str());
    state.accounts().logout(&caller.user, refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password; every session ends.
#[utoipa::path(put, path = "/api/users/me/password", tag = "users", request_body = PasswordChange,
    security(("oauth2" = []), ("bearer" = [])),
    responses((status = 204, description = "Changed"),
        (status = 400, description = "Current password is incorrect", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait")))))]
async fn change_password(
    caller: CurrentUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, AppError> {
    let body = body.validate()?;
    state
        .accounts()
        .change_password(&caller.user, body.current_password, body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
