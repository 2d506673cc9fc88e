//! The REST API over real HTTP, against both SQLite and PostgreSQL: every test
//! function here runs twice, once per backend (see `on_both_backends!`).

#[macro_use]
mod common;
mod act;
mod approval;
mod authz;
mod certificates;
mod inbound_messages;
mod isolation;
mod mail_events;
mod mailboxes;
mod me;
mod metrics;
mod monitoring;
mod openapi;
mod records;
mod secrets;
mod security;
mod validation;
mod web_sessions;
mod webhooks;
