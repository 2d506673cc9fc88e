//! async-imap's errors as classified [`SyncError`]s.

use async_imap::error::Error;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

use crate::errors::{Endpoint, error};

/// A failure of command `what` (e.g. `SELECT INBOX`).
pub(super) fn classify(endpoint: &Endpoint, what: &str, e: &Error) -> SyncError {
    match e {
        Error::Io(io) => endpoint.io(io),
        Error::ConnectionLost => endpoint.connection_lost("the server closed the connection"),
        Error::No(text) => refused(endpoint, what, &response_text(text)),
        Error::Bad(text) => endpoint.protocol(&format!(
            "{what} was refused as BAD: {}",
            response_text(text)
        )),
        Error::Validate(v) => error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!("{what} cannot be sent to the IMAP server: {v}"),
            "Remove line breaks from folder names and flags",
        ),
        other => endpoint.protocol(&format!("{what}: {other}")),
    }
}

/// A NO answer: the server understood and refused.
fn refused(endpoint: &Endpoint, what: &str, text: &str) -> SyncError {
    let upper = text.to_ascii_uppercase();
    if upper.contains("UNAVAILABLE") || upper.contains("INUSE") || upper.contains("LIMIT") {
        // RFC 5530 codes for temporary conditions.
        return error(
            crate::errors::TRANSIENT,
            ErrorScope::Mailbox,
            format!("the IMAP server {endpoint} is temporarily unable to do {what}: {text}"),
            "Nothing to do: it is retried later",
        );
    }
    if upper.contains("OVERQUOTA") {
        // The reference: quota errors are retried later (a user frees space).
        return error(
            crate::errors::TRANSIENT,
            ErrorScope::Mailbox,
            format!("the mailbox on {endpoint} is over its quota, so {what} was refused: {text}"),
            "Free space in the mailbox (or raise its quota); it is retried later",
        );
    }
    error(
        ErrorClass::Permanent,
        ErrorScope::Mailbox,
        format!("the IMAP server {endpoint} refused {what}: {text}"),
        "Check the mailbox's folders and rights on the server, then run Test & Enable",
    )
}

/// async-imap words NO and BAD as `code: Some(..), info: Some("..")`; keep the
/// server's words and the response code only.
pub(super) fn response_text(raw: &str) -> String {
    let info = raw
        .split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(info, _)| info.to_owned());
    let code = raw
        .split_once("code: Some(")
        .and_then(|(_, rest)| rest.split_once("), info"))
        .map(|(code, _)| code.to_owned());
    match (code, info) {
        (Some(code), Some(info)) => format!("[{code}] {info}"),
        (None, Some(info)) => info,
        (Some(code), None) => format!("[{code}]"),
        (None, None) => raw.to_owned(),
    }
}

/// Whether a NO text says the folder does not exist (RFC 5530 NONEXISTENT, or the
/// words of servers that predate it).
pub(super) fn is_nonexistent(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("nonexistent")
        || lower.contains("trycreate")
        || lower.contains("doesn't exist")
        || lower.contains("does not exist")
        || lower.contains("not found")
        || lower.contains("unknown mailbox")
}

/// The folder is missing: permanent for the mailbox.
pub(super) fn folder_missing(endpoint: &Endpoint, user: &str, folder: &str) -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Mailbox,
        format!("the folder {folder} does not exist in the mailbox of {user} on {endpoint}"),
        format!(
            "Create the folder {folder} in the mailbox, or choose another folder, then run Test & Enable"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_text_keeps_the_servers_words() {
        let cases = [
            (
                r#"code: Some(Nonexistent), info: Some("Mailbox doesn't exist: Nope")"#,
                "[Nonexistent] Mailbox doesn't exist: Nope",
            ),
            (
                r#"code: None, info: Some("Authentication failed.")"#,
                "Authentication failed.",
            ),
            ("something else", "something else"),
        ];
        for (raw, expected) in cases {
            assert_eq!(response_text(raw), expected, "{raw}");
        }
    }

    #[test]
    fn nonexistent_folders_are_recognized() {
        assert!(is_nonexistent("[Nonexistent] Mailbox doesn't exist: X"));
        assert!(is_nonexistent("[TRYCREATE] Mailbox doesn't exist"));
        assert!(!is_nonexistent("[NOPERM] Permission denied"));
    }
}
