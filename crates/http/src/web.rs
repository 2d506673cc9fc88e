//! The web admin: server-rendered pages at `/` for administrators, mirroring the
//! screens of Dynamics 365's server-side synchronization (Email Server Profiles,
//! Mailboxes, Alerts, Email Configuration Settings) plus monitoring.
//!
//! The pages are a client of the REST API, called in process with the session's
//! own API token ([`api::Api`]): every read and write goes through the API's
//! authorization, validation and error messages, so the two cannot drift apart.
//! Templates are MiniJinja (HTML auto-escaped, undefined values are errors), htmx
//! is vendored; no CDN, no build step.

mod alerts;
mod api;
mod assets;
mod certificates;
mod emails;
mod error;
mod form_values;
mod jobs;
mod mailboxes;
mod monitoring;
mod nodes;
mod profiles;
mod render;
mod session;
mod settings;
mod signin;
mod throttle;
mod webhooks;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::get;
use mailbridge_store::Store;

/// What the pages share.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    /// The REST API, called in process.
    pub api: Router,
    /// Wrong passwords per address, to slow down guessing.
    pub throttle: std::sync::Arc<std::sync::Mutex<throttle::SignInThrottle>>,
}

/// The web admin's routes; anything else falls through to `api`.
pub fn router(store: Store, api: Router) -> Router {
    let state = WebState {
        store,
        api: api.clone(),
        throttle: Default::default(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/mailboxes") }))
        .merge(signin::routes())
        .merge(alerts::routes())
        .merge(mailboxes::routes())
        .merge(jobs::routes())
        .merge(monitoring::routes())
        .merge(nodes::routes())
        .merge(emails::routes())
        .merge(profiles::routes())
        .merge(settings::routes())
        .merge(webhooks::routes())
        .merge(certificates::routes())
        .merge(assets::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::verify_csrf,
        ))
        .with_state(state)
        .fallback_service(api)
}
