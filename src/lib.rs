//! todo-api: a multi-user Todo service with OAuth2 password login, JWTs,
//! role-, scope- and attribute-based access, on SQLite or PostgreSQL.

pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod extract;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod repository;
pub mod runtime;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod todos;
pub mod users;
pub mod validation;
pub mod web;

pub use server::{ServeOptions, serve_with};
pub use state::AppState;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{AppError, json_error_bodies};
use crate::json::Json;

/// mimalloc rather than the system's malloc, for the binary and the tests
/// alike: a listing allocates a few hundred small strings, and mimalloc
/// serves them about 12 % faster (server CPU per `GET /api/todos`). Built
/// without transparent huge pages, which would make each of its arenas
/// resident 2 MiB at a time. A freed argon2 block (~19 MiB) is kept for
/// the next hash, so the peak stays where the hashing permits put it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole HTTP application: the domain routers and the layers around them.
///
/// The layers wrap the router once, from outside, rather than each route
/// (`Router::layer`): a per-route layer boxes and clones every route's
/// service on each request, which cost several microseconds per layer on
/// the hottest paths. Only [`metrics::TrackLayer`] needs the matched route and
/// runs per route, with the request timeout inside it so that a request cut
/// short is counted under its route; it also names the route in the
/// request's log lines.
pub fn build_app(state: AppState) -> Router {
    let request_timeout = state.config.request_timeout;
    let trusted_proxies = Arc::new(state.config.trusted_proxies.clone());
    let cors = (!state.config.cors_origins.is_empty()).then(|| cors(&state.config.cors_origins));
    let (router, mut api) = OpenApiRouter::with_openapi(openapi::base())
        .merge(auth::router::router(&state))
        .merge(auth::two_step_router::router())
        .merge(auth::sessions_router::router())
        .merge(users::router::router())
        .merge(todos::router::router())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .split_for_parts();
    openapi::document_common_errors(&mut api);
    let router = router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(web::router());
    let router = if state.config.metrics {
        router.route("/metrics", exposition(&state).route())
    } else {
        router
    };
    let routes = router
        .fallback(|| async { AppError::NotFound })
        .layer(metrics::TrackLayer::new(
            state.metrics.clone(),
            request_timeout,
        ))
        .with_state(state);
    let layered = ServiceBuilder::new()
        .map_request(move |request| client::resolve(&trusted_proxies, request))
        .map_request(telemetry::screen_request_id)
        .layer(SetRequestIdLayer::new(
            telemetry::REQUEST_ID,
            MakeRequestUuid,
        ))
        .layer(PropagateRequestIdLayer::new(telemetry::REQUEST_ID))
        .option_layer(cors)
        .map_response(finish_response)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .service(routes);
    Router::new().fallback_service(layered)
}

/// What `/metrics` shows of `state`.
fn exposition(state: &AppState) -> metrics::Exposition {
    metrics::Exposition {
        metrics: state.metrics.clone(),
        db: state.db.clone(),
    }
}

/// A router with `/metrics` alone, for a separate metrics address.
pub fn metrics_app(state: &AppState) -> Router {
    Router::new()
        .route("/metrics", exposition(state).route())
        .fallback(|| async { AppError::NotFound })
}

/// What every response gets (but a CORS preflight's): a JSON body if it is
/// an error without one, `nosniff`, and `no-store` unless a route chose
/// its own caching.
fn finish_response(response: axum::response::Response) -> axum::response::Response {
    let mut response = json_error_bodies(response);
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Browsers on `origins` may call the API with a bearer token.
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            telemetry::REQUEST_ID,
        ])
        .expose_headers([
            HeaderName::from_static("x-total-count"),
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            telemetry::REQUEST_ID,
        ])
        .max_age(Duration::from_secs(600))
}

/// Serves `app` on `listener` with the default [`ServeOptions`] until
/// `shutdown` completes, giving handlers the peer address (the client's
/// address is found from it). See [`serve_with`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve_with(listener, app, shutdown, server::ServeOptions::default()).await
}

/// 200 while the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Healthy", body = Object, example = json!({"status": "ok"})),
        (status = 503, description = "The database does not answer", body = error::ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state.db.ping().await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// 200 when the service can take traffic: the database answers and has
/// every migration of this build.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "The database does not answer or is not migrated", body = error::ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state.db.ready().await?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}
