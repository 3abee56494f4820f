//! `/auth/register` and `/auth/token`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::schemas::{RegisterRequest, RegisteredOut, TokenForm};
use super::service;
use crate::AppState;
use crate::error::AppError;
use crate::extract::{ApiForm, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/token", post(token))
}

async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisteredOut>), AppError> {
    let account = body.validate()?;
    let user = service::register(&state, account).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

async fn token(
    State(state): State<AppState>,
    ApiForm(form): ApiForm<TokenForm>,
) -> Result<Response, AppError> {
    let grant = match form.grant_type.as_deref() {
        Some("password") => {
            let (Some(username), Some(password)) = (form.username, form.password) else {
                return Err(AppError::BadRequest("invalid_request".into()));
            };
            service::login(&state, &username, password, form.scope.as_deref()).await?
        }
        _ => return Err(AppError::BadRequest("unsupported_grant_type".into())),
    };
    let mut response = Json(grant).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
