//! todo-api: a multi-user Todo service with OAuth2 password login, JWTs,
//! role-, scope- and attribute-based access, on SQLite.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod pagination;
pub mod todos;
pub mod users;
pub mod validation;
pub mod web;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::map_response;
use axum::{Json, Router};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::jwt::TokenKeys;
use crate::auth::password::PasswordHasher;
use crate::config::Config;
use crate::db::Database;
use crate::error::{AppError, json_error_bodies};

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub passwords: Arc<PasswordHasher>,
    pub tokens: Arc<TokenKeys>,
    pub config: Arc<Config>,
}

impl AppState {
    /// Opens the database and prepares the keys; fails with a sentence.
    pub async fn new(config: Config) -> Result<Self, String> {
        let tokens =
            TokenKeys::new(&config.jwt_secret, config.tokens).map_err(|e| e.to_string())?;
        let db = Database::connect(&config.database_url, config.db_timeout)
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let passwords = PasswordHasher::new(config.hash_concurrency).map_err(|e| e.to_string())?;
        Ok(Self {
            db,
            passwords: Arc::new(passwords),
            tokens: Arc::new(tokens),
            config: Arc::new(config),
        })
    }
}

/// The whole HTTP application: the domain routers and the layers around them.
pub fn build_app(state: AppState) -> Router {
    let request_timeout = state.config.request_timeout;
    let (router, mut api) = OpenApiRouter::with_openapi(openapi::base())
        .merge(auth::router::router(state.config.auth_rate_limit))
        .merge(users::router::router())
        .merge(todos::router::router())
        .routes(routes!(healthz))
        .split_for_parts();
    openapi::document_common_errors(&mut api);
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(web::router())
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(map_response(json_error_bodies))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, giving handlers
/// the peer address (the per-address rate limit needs it).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// 200 while the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Healthy", body = Object, example = json!({"status": "ok"})),
        (status = 503, description = "The database does not answer", body = error::ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state.db.ping().await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}
