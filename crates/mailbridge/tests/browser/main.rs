//! The web admin in a real browser (headless Chromium through chromedriver),
//! against a real engine, store and Dovecot: see docs/TESTING.md.

#[path = "../sync/common.rs"]
#[allow(dead_code)]
mod common;
mod driver;

mod emails;
mod jobs;
mod mailboxes;
mod monitoring;
mod nodes;
mod profiles;
mod settings;
mod signin;
mod webhooks;
