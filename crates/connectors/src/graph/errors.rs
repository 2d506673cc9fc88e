//! Graph's error answers as classified [`SyncError`]s. Graph says what went wrong in
//! the status and in `{"error": {"code", "message", "innerError"}}`
//! (learn.microsoft.com/graph/errors); the code, not the message, is what to
//! branch on.

use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use serde::Deserialize;

use crate::errors::error;

#[derive(Debug, Deserialize)]
struct Envelope {
    error: Detail,
}

#[derive(Debug, Deserialize)]
struct Detail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner: Option<Box<Detail>>,
}

/// The error code and message of a Graph error body, and every nested code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GraphErrorBody {
    pub code: String,
    pub message: String,
    pub inner_codes: Vec<String>,
}

impl GraphErrorBody {
    /// Whether this code or a nested one is `code` (case-insensitive).
    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.code.eq_ignore_ascii_case(code)
            || self
                .inner_codes
                .iter()
                .any(|c| c.eq_ignore_ascii_case(code))
    }
}

/// Reads an error body; anything else gives an empty code and the text as message.
pub(crate) fn parse_error_body(body: &[u8]) -> GraphErrorBody {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) => {
            let mut inner_codes = Vec::new();
            let mut next = e.error.inner.as_deref();
            while let Some(d) = next {
                if !d.code.is_empty() {
                    inner_codes.push(d.code.clone());
                }
                next = d.inner.as_deref();
            }
            GraphErrorBody {
                code: e.error.code,
                message: e.error.message,
                inner_codes,
            }
        }
        Err(_) => GraphErrorBody {
            message: String::from_utf8_lossy(&body[..body.len().min(300)])
                .trim()
                .to_owned(),
            ..GraphErrorBody::default()
        },
    }
}

/// Whether an answer says the delta state is gone and the folder must be read again:
/// 410 Gone, or the codes `syncStateNotFound`, `syncStateInvalid` and `resyncRequired`
/// ("Synchronization reset" and "Token duration" in the delta query overview).
pub(crate) fn is_resync(status: u16, body: &GraphErrorBody) -> bool {
    status == 410
        || ["syncStateNotFound", "syncStateInvalid", "resyncRequired"]
            .iter()
            .any(|c| body.has_code(c))
}

/// What a failed request was, for the words of the message.
pub(crate) struct Failed<'a> {
    /// e.g. `read the delta of folder AAMk...`.
    pub what: &'a str,
    /// The mailbox (user id or address).
    pub mailbox: &'a str,
}

/// A non-success answer as a classified error.
pub(crate) fn classify(
    status: u16,
    body: &GraphErrorBody,
    retry_after: Option<Duration>,
    f: &Failed<'_>,
) -> SyncError {
    let said = if body.code.is_empty() {
        body.message.clone()
    } else {
        format!("{}: {}", body.code, body.message)
    };
    let (what, mailbox) = (f.what, f.mailbox);
    match status {
        401 => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "Failed Authentication: Microsoft Graph refused the profile's access token ({said})"
            ),
            "Check the profile's tenant, application (client) id and certificate or secret, and that the app registration still exists; then run Test & Enable",
        ),
        403 => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "Microsoft Graph denied the app access to {what} in the mailbox {mailbox} ({said})"
            ),
            "Grant the app registration the application permissions Mail.ReadWrite and Mail.Send with admin consent, and check that no application access policy excludes this mailbox; then run Test & Enable",
        ),
        404 if body.has_code("ErrorItemNotFound") => error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!(
                "the item is gone from the mailbox {mailbox}, so Microsoft Graph could not {what} ({said})"
            ),
            "Nothing to do: the message was deleted or moved away meanwhile",
        ),
        404 => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "the mailbox {mailbox} was not found in Exchange Online, so Microsoft Graph could not {what} ({said})"
            ),
            "Check the mailbox's email address (it must be an Exchange Online mailbox of the profile's tenant), then run Test & Enable",
        ),
        429 | 503 | 504 | 509 => error(
            ErrorClass::Transient { retry_after },
            ErrorScope::Mailbox,
            format!(
                "Microsoft Graph is throttling or busy and did not {what} for the mailbox {mailbox} ({status} {said})"
            ),
            "Nothing to do: it is retried after the delay the service asked for",
        ),
        507 => error(
            ErrorClass::Transient { retry_after },
            ErrorScope::Mailbox,
            format!(
                "the mailbox {mailbox} is over its quota, so Microsoft Graph could not {what} ({said})"
            ),
            "Free space in the mailbox (or raise its quota); it is retried later",
        ),
        400 | 409 | 413 | 415 | 422 => error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!("Microsoft Graph refused to {what} in the mailbox {mailbox} ({status} {said})"),
            "Report this message with the item concerned; the other items go on",
        ),
        _ => error(
            crate::errors::TRANSIENT,
            ErrorScope::Mailbox,
            format!(
                "Microsoft Graph answered {status} when asked to {what} for the mailbox {mailbox} ({said})"
            ),
            "It is retried; if it persists, check the Microsoft 365 service health",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_with_their_nested_codes() {
        let cases: [(&str, &str, &[&str]); 3] = [
            (
                r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty.","innerError":{"date":"2025-01-01T00:00:00","request-id":"x"}}}"#,
                "InvalidAuthenticationToken",
                &[],
            ),
            (
                r#"{"error":{"code":"generalException","message":"m","innererror":{"code":"resyncRequired","innererror":{"code":"deeper"}}}}"#,
                "generalException",
                &["resyncRequired", "deeper"],
            ),
            ("<html>Bad gateway</html>", "", &[]),
        ];
        for (body, code, inner) in cases {
            let parsed = parse_error_body(body.as_bytes());
            assert_eq!(parsed.code, code, "{body}");
            assert_eq!(parsed.inner_codes, inner, "{body}");
        }
        assert_eq!(
            parse_error_body(b"<html>Bad gateway</html>").message,
            "<html>Bad gateway</html>"
        );
    }

    #[test]
    fn resync_is_410_or_a_sync_state_code() {
        let body = |code: &str| GraphErrorBody {
            code: code.to_owned(),
            ..GraphErrorBody::default()
        };
        let cases = [
            (410, "", true),
            (400, "syncStateNotFound", true),
            (404, "SyncStateNotFound", true),
            (400, "resyncRequired", true),
            (400, "syncStateInvalid", true),
            (404, "ErrorItemNotFound", false),
            (429, "", false),
        ];
        for (status, code, expected) in cases {
            assert_eq!(is_resync(status, &body(code)), expected, "{status} {code}");
        }
    }

    #[test]
    fn statuses_are_classified_by_class_and_scope() {
        let f = Failed {
            what: "read a message",
            mailbox: "bob@example.org",
        };
        let wait = Some(Duration::from_secs(7));
        let body = |code: &str| GraphErrorBody {
            code: code.to_owned(),
            message: "m".to_owned(),
            inner_codes: Vec::new(),
        };
        let cases = [
            (
                401,
                "InvalidAuthenticationToken",
                ErrorClass::Permanent,
                ErrorScope::Profile,
            ),
            (
                403,
                "ErrorAccessDenied",
                ErrorClass::Permanent,
                ErrorScope::Profile,
            ),
            (
                404,
                "ErrorInvalidUser",
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
            ),
            (
                404,
                "MailboxNotEnabledForRESTAPI",
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
            ),
            (
                404,
                "ErrorItemNotFound",
                ErrorClass::Permanent,
                ErrorScope::Item,
            ),
            (
                429,
                "ApplicationThrottled",
                ErrorClass::Transient { retry_after: wait },
                ErrorScope::Mailbox,
            ),
            (
                503,
                "ServiceUnavailable",
                ErrorClass::Transient { retry_after: wait },
                ErrorScope::Mailbox,
            ),
            (
                400,
                "ErrorMimeContentInvalidBase64String",
                ErrorClass::Permanent,
                ErrorScope::Item,
            ),
            (
                500,
                "generalException",
                crate::errors::TRANSIENT,
                ErrorScope::Mailbox,
            ),
        ];
        for (status, code, class, scope) in cases {
            let e = classify(status, &body(code), wait, &f);
            assert_eq!((e.class, e.scope), (class, scope), "{status} {code}");
            assert!(e.fix.is_some());
        }
        let auth = classify(401, &body("InvalidAuthenticationToken"), None, &f);
        assert!(
            auth.message.starts_with("Failed Authentication: "),
            "{}",
            auth.message
        );
    }
}
