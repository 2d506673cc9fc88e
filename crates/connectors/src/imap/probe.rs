//! Test Connection for IMAP: each step recorded with what it found.

use mailbridge_domain::error_model::SyncError;

use super::{ImapConfig, ImapSession};
use crate::TestStep;

/// Resolves, connects, secures, authenticates and opens the INBOX read-only
/// (EXAMINE), recording the steps `resolve`, `connect`, `tls`, `authenticate` and
/// `open_mailbox`; stops at the first failure, which is also returned.
pub async fn imap_test(cfg: &ImapConfig) -> (Vec<TestStep>, Result<(), SyncError>) {
    let mut steps = Vec::new();
    let mut session = match ImapSession::connect_traced(cfg, &mut steps).await {
        Ok(session) => session,
        Err(e) => return (steps, Err(e)),
    };
    let timeout = session.timeout;
    let result = tokio::time::timeout(timeout, session.session.examine("INBOX")).await;
    let opened = session.finish("EXAMINE INBOX", result);
    let outcome = match opened {
        Ok(mailbox) => {
            steps.push(TestStep::passed(
                "open_mailbox",
                format!(
                    "INBOX holds {} message(s); UIDVALIDITY {}; capabilities: {}",
                    mailbox.exists,
                    mailbox
                        .uid_validity
                        .map_or_else(|| "not given".to_owned(), |v| v.to_string()),
                    session.capabilities.all.join(" ")
                ),
            ));
            Ok(())
        }
        Err(e) => {
            steps.push(TestStep::failed("open_mailbox", &e));
            Err(e)
        }
    };
    session.logout().await;
    (steps, outcome)
}
