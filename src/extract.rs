//! Request extractors that answer bad input in the contract's JSON shape,
//! where axum's own would answer in plain text.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::validation::FieldError;

/// A JSON body: 415 without `application/json`, 400 when it is not JSON,
/// 422 naming the field when it does not fit the schema, 413 when too large.
pub struct ApiJson<T>(pub T);

/// An optional JSON body: `None` when the request has no body at all.
pub struct MaybeJson<T>(pub Option<T>);

/// An `application/x-www-form-urlencoded` body, with the same answers.
pub struct ApiForm<T>(pub T);

/// Query parameters: 422 naming the parameter when a value does not parse.
pub struct ApiQuery<T>(pub T);

/// A numeric id in the path: 422 when it is not a 64-bit integer.
pub struct ApiPath(pub i64);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let body = body_of_type(req, state, "application/json").await?;
        parse_json(&body).map(ApiJson)
    }
}

impl<S, T> FromRequest<S> for MaybeJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let has_body = req.headers().contains_key(header::CONTENT_TYPE)
            || req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|length| length != "0")
            || req.headers().contains_key(header::TRANSFER_ENCODING);
        if !has_body {
            return Ok(MaybeJson(None));
        }
        let body = body_of_type(req, state, "application/json").await?;
        parse_json(&body).map(|value| MaybeJson(Some(value)))
    }
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| AppError::BadRequest("Request body is not valid JSON".into()))?;
    // serde would read a struct from an array of its fields' values.
    if !value.is_object() {
        return Err(AppError::invalid("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| schema_mismatch(e.path().to_string(), e.inner()))
}

impl<S, T> FromRequest<S> for ApiForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let body = body_of_type(req, state, "application/x-www-form-urlencoded").await?;
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&body));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiForm)
            .map_err(|e| schema_mismatch(e.path().to_string(), e.inner()))
    }
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| schema_mismatch(e.path().to_string(), e.inner()))
    }
}

impl<S> FromRequestParts<S> for ApiPath
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| ApiPath(id))
            .map_err(|_| AppError::invalid("id", "must be an integer"))
    }
}

async fn body_of_type<S: Send + Sync>(
    req: Request,
    state: &S,
    expected: &'static str,
) -> Result<Bytes, AppError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if content_type.as_deref() != Some(expected) {
        return Err(AppError::UnsupportedMediaType(expected));
    }
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection: BytesRejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            _ => AppError::BadRequest("Could not read the request body".into()),
        })
}

fn schema_mismatch(path: String, error: &impl std::fmt::Display) -> AppError {
    // serde names the missing field only in its message; "." means the top level.
    let message = error.to_string();
    let field = match (path.as_str(), missing_field(&message)) {
        (".", Some(missing)) => missing.to_string(),
        (".", None) => "body".to_string(),
        (path, _) => path.to_string(),
    };
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_string();
    AppError::Validation(vec![FieldError::new(field, message)])
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_is_named_in_the_details() {
        let error = schema_mismatch(".".into(), &"missing field `title` at line 1 column 2");
        let AppError::Validation(details) = error else {
            panic!("expected a validation error");
        };
        assert_eq!(
            details,
            vec![FieldError::new("title", "missing field `title`")]
        );
    }

    #[test]
    fn a_mistyped_field_is_named_by_its_path() {
        let error = schema_mismatch("completed".into(), &"invalid type: string \"yes\"");
        let AppError::Validation(details) = error else {
            panic!("expected a validation error");
        };
        assert_eq!(details[0].field, "completed");
    }
}
