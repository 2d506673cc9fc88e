//! The REST API's routes, one module per resource. Each handler carries its
//! OpenAPI annotation; `api_router` registers them through utoipa-axum, so a route
//! cannot exist without being in the document.

mod alerts;
mod appointments;
mod certificates;
mod emails;
mod graph_notifications;
pub mod health;
mod inbound_messages;
mod jobs;
mod mail_events;
mod mailboxes;
mod me;
pub mod metrics;
pub(crate) mod monitoring;
pub(crate) mod nodes;
mod organizations;
mod parties;
mod profiles;
mod queues;
mod settings;
mod sync;
mod tasks;
mod tokens;
mod users;
mod webhooks;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::openapi::ApiDoc;

pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(organizations::list, organizations::create))
        .routes(routes!(organizations::get, organizations::update))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update))
        .routes(routes!(users::set_password))
        .routes(routes!(users::get_sync_filters, users::set_sync_filters))
        .routes(routes!(queues::list, queues::create))
        .routes(routes!(queues::get, queues::update, queues::delete))
        .routes(routes!(parties::list_contacts, parties::create_contact))
        .routes(routes!(
            parties::get_contact,
            parties::update_contact,
            parties::delete_contact
        ))
        .routes(routes!(parties::list_accounts, parties::create_account))
        .routes(routes!(
            parties::get_account,
            parties::update_account,
            parties::delete_account
        ))
        .routes(routes!(parties::list_leads, parties::create_lead))
        .routes(routes!(
            parties::get_lead,
            parties::update_lead,
            parties::delete_lead
        ))
        .routes(routes!(profiles::list, profiles::create))
        .routes(routes!(profiles::get, profiles::update, profiles::delete))
        .routes(routes!(mailboxes::list, mailboxes::bulk_update))
        .routes(routes!(mailboxes::counts))
        .routes(routes!(mailboxes::get, mailboxes::update))
        .routes(routes!(mailboxes::approve))
        .routes(routes!(mailboxes::reject))
        .routes(routes!(mailboxes::apply_default_settings))
        .routes(routes!(mailboxes::act_decisions))
        .routes(routes!(mailboxes::act_links))
        .routes(routes!(sync::test_and_enable))
        .routes(routes!(sync::messages))
        .routes(routes!(inbound_messages::list))
        .routes(routes!(inbound_messages::counts))
        .routes(routes!(inbound_messages::retry))
        .routes(routes!(
            sync::list_tracked_folders,
            sync::add_tracked_folder
        ))
        .routes(routes!(sync::delete_tracked_folder))
        .routes(routes!(sync::test_connection))
        .routes(routes!(mail_events::receive))
        .routes(routes!(graph_notifications::receive))
        .routes(routes!(emails::send))
        .routes(routes!(settings::get, settings::update))
        .routes(routes!(emails::list, emails::create))
        .routes(routes!(emails::get, emails::update, emails::delete))
        .routes(routes!(appointments::list, appointments::create))
        .routes(routes!(
            appointments::get,
            appointments::update,
            appointments::delete
        ))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::get, tasks::update, tasks::delete))
        .routes(routes!(alerts::list, alerts::create))
        .routes(routes!(alerts::get, alerts::delete))
        .routes(routes!(jobs::list, jobs::create))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::items))
        .routes(routes!(emails::decisions))
        .routes(routes!(monitoring::summary))
        .routes(routes!(monitoring::profiles))
        .routes(routes!(monitoring::mailboxes))
        .routes(routes!(monitoring::mailbox))
        .routes(routes!(monitoring::throughput))
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::mailboxes))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::delete))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::retry))
        .routes(routes!(webhooks::test))
        .routes(routes!(certificates::list, certificates::upload))
        .routes(routes!(certificates::generate))
        .routes(routes!(certificates::get, certificates::delete))
        .routes(routes!(certificates::download_pem))
        .routes(routes!(certificates::download_cer))
        .routes(routes!(me::get))
}
