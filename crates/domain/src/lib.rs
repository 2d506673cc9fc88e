//! The pure domain of mailbridge: model types, validation rules and the decisions
//! that the store, engine and HTTP surface apply. Nothing here does I/O or awaits.

pub mod act;
pub mod activity;
pub mod alert;
pub mod authz;
pub mod autodiscover;
pub mod census;
pub mod certificate;
pub mod cluster;
pub mod destination;
pub mod enums;
pub mod error_model;
pub mod identity;
pub mod ids;
pub mod inbound;
pub mod ingest;
pub mod job;
pub mod location;
pub mod mailbox;
pub mod organization;
pub mod party;
pub mod profile;
pub mod schedule;
pub mod secret;
pub mod validation;
pub mod webhook;

pub use enums::*;
pub use validation::{FieldError, Validation};
