//! Webhooks: subscriptions with their sealed signing secrets, the events written
//! with the changes they report (`events`), and the outbox the engine delivers
//! from, with its log (`deliveries`).

mod deliveries;
pub(crate) mod events;
mod subscriptions;

pub use deliveries::{AfterAttempt, AttemptResult, ClaimedDelivery};
