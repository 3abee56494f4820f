//! The one place where an error becomes an HTTP response in the contract's shape.

use crate::json::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::password::HashError;
use crate::auth::service::AuthError;
use crate::repository::RepoError;
use crate::todos::service::TodoError;
use crate::users::service::UserError;
use crate::validation::{FieldError, Invalid};

/// The body of `403 Not authorized`, fixed by the contract to the byte.
pub const NOT_AUTHORIZED: &str = "Not authorized";

const INVALID_CODE: &str = "Invalid one-time code";

/// Why a request without valid credentials was refused (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials were sent: the challenge carries no error code.
    Missing,
    /// A token was sent but is malformed, forged, expired or revoked.
    InvalidToken,
    /// A login with a wrong username or password.
    BadCredentials,
    /// A refresh token that is unknown, spent, expired or revoked.
    InvalidRefresh,
    /// A login's one-time or recovery code that is wrong or already used.
    InvalidCode,
    /// The password that guards a two-step login change.
    IncorrectPassword,
}

/// Every failure a handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("unauthorized: {0:?}")]
    Unauthorized(AuthFailure),
    #[error("forbidden")]
    Forbidden,
    #[error("{0}")]
    ForbiddenWith(&'static str),
    #[error("insufficient scope, needs {0}")]
    InsufficientScope(&'static str),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type, expected {0}")]
    UnsupportedMediaType(&'static str),
    #[error("too many requests, retry in {0} s")]
    TooManyRequests(u64),
    #[error("service unavailable")]
    Unavailable,
    /// A feature this instance is not configured for.
    #[error("{0}")]
    NotConfigured(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A 429 whose `Retry-After` is `wait_ms` rounded up to whole seconds,
    /// and at least one.
    pub fn retry_in_ms(wait_ms: i64) -> Self {
        Self::TooManyRequests(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1))
    }

    /// A 422 for a single field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ForbiddenWith(_) | Self::InsufficientScope(_) => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Validation(_) => "Validation failed".into(),
            Self::BadRequest(message) => message.clone(),
            Self::Unauthorized(AuthFailure::Missing) => "Not authenticated".into(),
            Self::Unauthorized(AuthFailure::InvalidToken) => {
                "Could not validate credentials".into()
            }
            Self::Unauthorized(AuthFailure::BadCredentials) => {
                "Incorrect username or password".into()
            }
            Self::Unauthorized(AuthFailure::InvalidRefresh) => "Invalid refresh token".into(),
            Self::Unauthorized(AuthFailure::InvalidCode) => INVALID_CODE.into(),
            Self::Unauthorized(AuthFailure::IncorrectPassword) => "Incorrect password".into(),
            Self::Forbidden | Self::InsufficientScope(_) => NOT_AUTHORIZED.into(),
            Self::ForbiddenWith(message)
            | Self::Conflict(message)
            | Self::NotConfigured(message) => (*message).into(),
            Self::NotFound => "Not found".into(),
            Self::PayloadTooLarge => "Request body is larger than 64 KiB".into(),
            Self::UnsupportedMediaType(expected) => format!("Content-Type must be {expected}"),
            Self::TooManyRequests(_) => "Too many attempts, try again later".into(),
            Self::Unavailable => "Service temporarily unavailable".into(),
            Self::Internal(_) => "Internal server error".into(),
        }
    }

    fn challenge(&self) -> Option<String> {
        match self {
            Self::Unauthorized(AuthFailure::InvalidToken | AuthFailure::InvalidRefresh) => {
                Some(r#"Bearer error="invalid_token""#.into())
            }
            Self::Unauthorized(_) => Some("Bearer".into()),
            Self::InsufficientScope(scope) => Some(format!(
                r#"Bearer error="insufficient_scope", scope="{scope}""#
            )),
            _ => None,
        }
    }
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A human-readable message.
    error: String,
    /// With 422: the fields that failed and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Vec<FieldError>>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let status = self.status();
        let challenge = self.challenge();
        let retry_after = match self {
            Self::TooManyRequests(seconds) => Some(seconds),
            _ => None,
        };
        let body = ErrorBody {
            error: self.message(),
            details: match self {
                Self::Validation(details) => Some(details),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<TodoError> for AppError {
    fn from(error: TodoError) -> Self {
        match error {
            TodoError::NotFound => Self::NotFound,
            TodoError::ReadOnly => Self::Forbidden,
            TodoError::Storage(error) => error.into(),
        }
    }
}

impl From<UserError> for AppError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::NotFound => Self::NotFound,
            UserError::Storage(error) => error.into(),
        }
    }
}

impl From<Invalid> for AppError {
    fn from(Invalid(details): Invalid) -> Self {
        Self::Validation(details)
    }
}

impl From<AuthError> for AppError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::BadCredentials => Self::Unauthorized(AuthFailure::BadCredentials),
            AuthError::InvalidRefresh => Self::Unauthorized(AuthFailure::InvalidRefresh),
            AuthError::Disabled => Self::ForbiddenWith("Account disabled"),
            AuthError::InvalidScope => Self::BadRequest("invalid_scope".into()),
            AuthError::WrongPassword => Self::BadRequest("Current password is incorrect".into()),
            AuthError::Throttled(wait_ms) => Self::retry_in_ms(wait_ms),
            AuthError::MfaRequired => Self::ForbiddenWith("mfa_required"),
            AuthError::WrongCode => Self::Unauthorized(AuthFailure::InvalidCode),
            AuthError::CodeRejected => Self::BadRequest(INVALID_CODE.into()),
            AuthError::IncorrectPassword => Self::Unauthorized(AuthFailure::IncorrectPassword),
            AuthError::MfaAlreadyOn => Self::Conflict("Two-step login is already on"),
            AuthError::MfaOff => Self::Conflict("Two-step login is off"),
            AuthError::NothingPending => Self::Conflict("No two-step login is pending"),
            AuthError::MfaUnconfigured => Self::NotConfigured("Two-step login is not configured"),
            error @ AuthError::Sealing => Self::internal(error),
            AuthError::UnknownUser | AuthError::UnknownSession => Self::NotFound,
            AuthError::Hashing(error) => error.into(),
            AuthError::Signing(cause) => Self::Internal(cause),
            AuthError::Storage(error) => error.into(),
        }
    }
}

impl From<HashError> for AppError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Unavailable,
            HashError::Failed(cause) => Self::Internal(cause),
        }
    }
}

impl From<RepoError> for AppError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::Unavailable => Self::Unavailable,
            RepoError::LastAdmin => Self::Conflict("Cannot remove the last active admin"),
            RepoError::Duplicate => Self::BadRequest("User already exists".into()),
            RepoError::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// Gives every error response that left its handler without a body (axum's
/// 404 and 405 fallbacks, timeouts, layers' rejections) the contract's JSON
/// shape, keeping its status and headers such as `Allow`.
pub fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let message = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::INTERNAL_SERVER_ERROR => "Internal server error",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is larger than 64 KiB",
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            "Service temporarily unavailable"
        }
        s => s.canonical_reason().unwrap_or("Request failed"),
    };
    let mut json = Json(ErrorBody {
        error: message.into(),
        details: None,
    })
    .into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    *json.status_mut() = status;
    json.headers_mut().extend(parts.headers);
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_told_in_whole_seconds_rounded_up_and_never_zero() {
        let seconds = |wait_ms| match AppError::retry_in_ms(wait_ms) {
            AppError::TooManyRequests(seconds) => seconds,
            other => panic!("not a 429: {other:?}"),
        };
        assert_eq!(seconds(1), 1);
        assert_eq!(seconds(1_000), 1);
        assert_eq!(seconds(1_001), 2);
        assert_eq!(seconds(19_997), 20);
        assert_eq!(seconds(0), 1);
        assert_eq!(seconds(-5), 1);
    }

    #[test]
    fn insufficient_scope_names_the_scope_in_the_challenge() {
        let error = AppError::InsufficientScope("write");
        assert_eq!(
            error.challenge().as_deref(),
            Some(r#"Bearer error="insufficient_scope", scope="write""#)
        );
        assert_eq!(error.message(), NOT_AUTHORIZED);
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let error = AppError::internal("no such table: users");
        assert_eq!(error.message(), "Internal server error");
    }

    #[test]
    fn a_missing_token_gets_a_bare_challenge() {
        let error = AppError::Unauthorized(AuthFailure::Missing);
        assert_eq!(error.challenge().as_deref(), Some("Bearer"));
    }
}
