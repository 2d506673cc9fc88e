//! mailbridge's HTTP surface: the REST API under `/api/v1`, its OpenAPI document
//! (generated from the handlers' annotations), bearer-token authorization and the
//! JSON error envelope. Only this crate knows HTTP and JSON.

mod auth;
mod error;
mod input;
mod list;
mod openapi;
mod routes;
mod send;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use mailbridge_engine::{Engine, EngineConfig};
use mailbridge_store::Store;
use tokio::sync::Notify;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use routes::metrics::with_metrics_token;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The engine's settings, for what the API runs itself (Test Connection).
    pub engine: Arc<EngineConfig>,
    /// Wakes the engine's scheduler at once (new mail announced, an email queued).
    pub wake: Arc<Notify>,
    /// The engine's counters, on a node that runs one (`/metrics`, `/readyz`).
    pub engine_metrics: Option<Arc<mailbridge_engine::metrics::EngineMetrics>>,
}

/// The whole HTTP application, with the engine's default settings.
pub fn app(store: Store) -> Router {
    app_with(store, EngineConfig::default())
}

/// The whole HTTP application, beside no engine of this process (work it queues
/// is found by the engines' next tick).
pub fn app_with(store: Store, engine: EngineConfig) -> Router {
    build(AppState {
        store,
        engine: Arc::new(engine),
        wake: Arc::new(Notify::new()),
        engine_metrics: None,
    })
}

/// The whole HTTP application of a node that runs `engine`: work the API makes
/// due (an announced mail, a queued email) wakes that engine at once.
pub fn app_for_engine(engine: &Engine) -> Router {
    build(AppState {
        store: engine.store.clone(),
        engine: Arc::new(engine.config.clone()),
        wake: engine.wake.clone(),
        engine_metrics: Some(engine.metrics.clone()),
    })
}

fn build(state: AppState) -> Router {
    let (api, mut doc) = routes::api_router().split_for_parts();
    openapi::unique_operation_ids(&mut doc);
    let doc_json = serde_json::to_string(&doc).expect("the OpenAPI document serializes");
    let store = state.store.clone();
    let api = Router::new()
        .merge(api)
        .route("/healthz", axum::routing::get(routes::health::healthz))
        .merge(routes::metrics::router())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    doc_json.clone(),
                )
            }),
        )
        .fallback(error::not_found_route)
        .with_state(state)
        .layer(middleware::from_fn(error::json_errors));
    // The web admin's pages at `/`; every other path is the API's.
    web::router(store, api)
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        // The default span holds the method and path only: never headers (the
        // Authorization header carries a token) and never bodies (secrets).
        .layer(TraceLayer::new_for_http())
}
