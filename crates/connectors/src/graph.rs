//! The Microsoft Graph connector for `exchange_online` profiles: the mail of a
//! mailbox read by delta queries per folder, fetched as MIME, moved, tagged with
//! categories (the tracking keyword) and sent as the mailbox, with Outlook's
//! throttling rules kept (4 requests at once per mailbox, `Retry-After` honoured,
//! `$batch` where it saves round trips), and change-notification subscriptions
//! that wake mailboxes (polling stays the safety net).
//!
//! One [`GraphClient`] per profile, holding an [`AccessTokens`] provider (in
//! production, the identity layer's cached app-only tokens); a
//! [`GraphMailbox`] per mailbox from [`GraphClient::mailbox`]. Every failure is a
//! classified [`SyncError`](mailbridge_domain::error_model::SyncError).
//!
//! Behaviour of Graph this relies on, each from Microsoft's documentation:
//! - `QUIRK_IMMUTABLE_IDS`: message ids change on a move unless every request says
//!   `Prefer: IdType="ImmutableId"`; the client says it on every request, batched
//!   ones included.
//! - `QUIRK_DELTA_RESET`: a stored delta link can expire at any time (the token
//!   cache is bounded); Graph answers 410 Gone or a `syncStateNotFound` /
//!   `resyncRequired` code, and the folder must be read again from no state.
//! - `QUIRK_BATCH_THROTTLING`: requests inside a `$batch` are throttled one by one;
//!   the batch itself succeeds with 429 answers inside, which are sent again.
//! - `QUIRK_MIME_SEND_SAVES`: `sendMail` with MIME always saves the copy in Sent
//!   Items (`saveToSentItems` exists only for JSON messages).

pub mod act;
mod batch;
mod census;
mod client;
mod errors;
mod mail;
mod model;
mod subscriptions;
mod throttle;

pub use act::{
    ActChange, ActClaim, ActDelta, CLAIM_PROPERTY_ID, CalendarWindow, GraphAct, GraphActError,
    TodoList, Versioned,
};
pub use batch::MAX_BATCH;
pub use client::{
    AccessTokens, GRAPH_BASE_URL, GraphAnswer, GraphClient, GraphConfig, GraphObserver,
    StaticToken, TokenFuture,
};
pub use mail::{DeltaBatch, DeltaRound, DeltaStep, GraphMailbox, WellKnownFolder};
pub use model::{
    DeltaChange, DeltaLink, DeltaPage, GraphMessage, MailFolder, Recipient, parse_collection,
    parse_delta_page,
};
pub use subscriptions::{
    LifecycleEvent, MAX_MESSAGE_SUBSCRIPTION_MINUTES, Notification, Subscription,
    parse_notifications, renewal_due,
};
pub use throttle::{MAILBOX_CONCURRENCY, RetryPolicy};
