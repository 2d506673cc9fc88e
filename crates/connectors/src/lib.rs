//! The connectors: everything that speaks a mail protocol. Each returns bytes and
//! errors already classified by the domain's error model (transient or permanent;
//! item, mailbox or profile scope), so the engine decides retries and alerts without
//! knowing the protocol.
//!
//! Today: IMAP ([`imap`]) and SMTP ([`smtp`]) over a shared TLS setup ([`tls`]) with
//! certificate verification always on. Microsoft Graph, EWS and DAV follow.

pub mod autodiscover;
pub mod dav;
mod errors;
pub mod ews;
pub mod graph;
pub mod identity;
pub mod imap;
mod net;
mod sasl;
pub mod smtp;
pub mod tls;

pub use imap::{
    Auth, Capabilities, FetchedMessage, Folder, FolderState, IdleOutcome, ImapConfig, ImapSession,
    SpecialUse, imap_test,
};
pub use smtp::{SmtpConfig, SmtpSession, smtp_send, smtp_test};

/// One step of Test Connection, shown to administrators in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStep {
    /// `resolve`, `connect`, `tls`, `authenticate`, `open_mailbox`, `send`.
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

impl TestStep {
    pub(crate) fn passed(name: &'static str, detail: impl Into<String>) -> TestStep {
        TestStep {
            name,
            passed: true,
            detail: detail.into(),
        }
    }

    pub(crate) fn failed(
        name: &'static str,
        error: &mailbridge_domain::error_model::SyncError,
    ) -> TestStep {
        TestStep {
            name,
            passed: false,
            detail: error.message.clone(),
        }
    }
}

/// Where Test Connection steps go: a list for Test Connection, nowhere for sync.
pub(crate) struct Trace<'a>(Option<&'a mut Vec<TestStep>>);

impl<'a> Trace<'a> {
    pub(crate) fn new(steps: &'a mut Vec<TestStep>) -> Trace<'a> {
        Trace(Some(steps))
    }

    pub(crate) fn none() -> Trace<'static> {
        Trace(None)
    }

    pub(crate) fn pass(&mut self, name: &'static str, detail: impl FnOnce() -> String) {
        if let Some(steps) = self.0.as_deref_mut() {
            steps.push(TestStep::passed(name, detail()));
        }
    }

    /// Records a failed step and hands the error back, for `map_err`.
    pub(crate) fn fail(
        &mut self,
        name: &'static str,
        error: mailbridge_domain::error_model::SyncError,
    ) -> mailbridge_domain::error_model::SyncError {
        if let Some(steps) = self.0.as_deref_mut() {
            steps.push(TestStep::failed(name, &error));
        }
        error
    }

    /// Records the outcome of one step.
    pub(crate) fn step<T>(
        &mut self,
        name: &'static str,
        result: Result<T, mailbridge_domain::error_model::SyncError>,
        detail: impl FnOnce(&T) -> String,
    ) -> Result<T, mailbridge_domain::error_model::SyncError> {
        match result {
            Ok(value) => {
                self.pass(name, || detail(&value));
                Ok(value)
            }
            Err(error) => Err(self.fail(name, error)),
        }
    }
}
