//! The error model of synchronization: every failure is classified as transient or
//! permanent and scoped to an item, a mailbox or a whole profile; the engine decides
//! retries (see `schedule::retry_after_failure`) and alerts from this classification alone.

use std::time::Duration;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network, timeout, server busy, throttling: retried later.
    Transient { retry_after: Option<Duration> },
    /// Authentication rejected, mailbox not found: the workload is disabled.
    Permanent,
}

/// What a failure affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorScope {
    Item,
    Mailbox,
    Profile,
}

/// A classified failure with a plain-language cause and a fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyncError {
    pub class: ErrorClass,
    pub scope: ErrorScope,
    pub message: String,
    pub fix: Option<String>,
}
