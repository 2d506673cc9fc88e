//! The small traits every protocol family implements, so that the engine is
//! written once. Each method returns errors already classified by the domain's
//! error model (transient or permanent; item, mailbox or profile scope).
//!
//! This crate holds the contract only; the IMAP/SMTP implementation arrives with
//! server-side synchronization (issue 3), Microsoft Graph, EWS and DAV after it.

use chrono::{DateTime, Utc};
use mailbridge_domain::error_model::SyncError;

/// One message as the server holds it: bytes only; parsing is the ingest
/// pipeline's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub folder: String,
    /// The server's id for the message (an IMAP UID, a Graph immutable id, ...).
    pub server_id: String,
    pub bytes: Vec<u8>,
    /// Keywords or categories on the message (the tracking keyword among them).
    pub keywords: Vec<String>,
    pub received_at: Option<DateTime<Utc>>,
}

/// Opaque per-folder sync state (UIDVALIDITY/UIDNEXT/MODSEQ, a delta link, an
/// EWS sync state), stored with the activities it produced in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint(pub String);

/// The messages that changed since a checkpoint, and the checkpoint after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub messages: Vec<RawMessage>,
    pub next: Checkpoint,
}

/// One step of Test Connection, shown to administrators in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStep {
    /// `resolve`, `connect`, `tls`, `authenticate`, `open_mailbox`, `send`.
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// Reading a mailbox.
pub trait IncomingSource {
    /// The folders to process: the Inbox, tracked folders, optionally Sent.
    fn list_folders(&mut self) -> impl Future<Output = Result<Vec<String>, SyncError>> + Send;
    /// The messages of `folder` that changed since `since`.
    fn fetch_changes(
        &mut self,
        folder: &str,
        since: &Checkpoint,
    ) -> impl Future<Output = Result<Changes, SyncError>> + Send;
    /// Moves a message that cannot be tracked to the Undeliverable folder.
    fn move_to_undeliverable(
        &mut self,
        message: &RawMessage,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;
    /// Waits until the server reports a change (IMAP IDLE, a notification) or the
    /// timeout passes; `Ok(false)` on timeout.
    fn wait_for_push(
        &mut self,
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<bool, SyncError>> + Send;
}

/// Sending as a mailbox.
pub trait OutgoingSink {
    /// Sends an RFC 5322 message as the mailbox and saves a copy to its Sent folder.
    fn send(
        &mut self,
        envelope_from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> impl Future<Output = Result<(), SyncError>> + Send;
}
