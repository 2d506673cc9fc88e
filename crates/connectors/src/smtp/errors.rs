//! lettre's errors as classified [`SyncError`]s, by the step they came from.

use std::error::Error as _;

use lettre::transport::smtp::response::Severity;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

use crate::errors::{Endpoint, TRANSIENT, error, rustls_error, scrub};
use crate::imap::Auth;

/// Where in the conversation a failure happened.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stage<'a> {
    Greeting,
    StartTls,
    /// AUTH as this user.
    Auth(&'a str),
    MailFrom,
    /// RCPT TO this recipient.
    Rcpt(&'a str),
    Data,
    Message,
}

impl Stage<'_> {
    pub fn what(&self) -> String {
        match self {
            Stage::Greeting => "the greeting and EHLO".to_owned(),
            Stage::StartTls => "STARTTLS".to_owned(),
            Stage::Auth(_) => "AUTH".to_owned(),
            Stage::MailFrom => "MAIL FROM".to_owned(),
            Stage::Rcpt(rcpt) => format!("RCPT TO <{rcpt}>"),
            Stage::Data => "DATA".to_owned(),
            Stage::Message => "the message".to_owned(),
        }
    }

    /// Whether a refusal here is about this one message rather than the mailbox.
    fn about_the_item(&self) -> bool {
        matches!(self, Stage::Rcpt(_) | Stage::Data | Stage::Message)
    }
}

pub(super) fn classify(
    endpoint: &Endpoint,
    stage: Stage<'_>,
    e: &lettre::transport::smtp::Error,
    secret: &str,
) -> SyncError {
    if let Some(code) = e.status() {
        let words = e.source().map(|s| s.to_string()).unwrap_or_default();
        let text = scrub(format!("{code} {words}").trim(), secret);
        return match code.severity {
            Severity::TransientNegativeCompletion => refused_for_now(endpoint, stage, &text),
            _ => refused(endpoint, stage, &text),
        };
    }
    if e.is_timeout() {
        return endpoint.connection_lost(&format!("{} timed out", stage.what()));
    }
    // The cause: a TLS failure or an I/O error somewhere down the chain.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = cause {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return endpoint.tls(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(tls) = rustls_error(io) {
                return endpoint.tls(tls);
            }
            return endpoint.io(io);
        }
        cause = err.source();
    }
    let text = scrub(&e.to_string(), secret);
    if matches!(stage, Stage::StartTls) {
        return endpoint.tls_failed(&text);
    }
    if e.is_response() && text.contains("incomplete") {
        return endpoint.connection_lost(&text);
    }
    endpoint.protocol(&format!("{}: {text}", stage.what()))
}

/// A 4xx reply: retried later.
fn refused_for_now(endpoint: &Endpoint, stage: Stage<'_>, text: &str) -> SyncError {
    let scope = if stage.about_the_item() {
        ErrorScope::Item
    } else {
        ErrorScope::Mailbox
    };
    error(
        TRANSIENT,
        scope,
        format!(
            "the SMTP server {endpoint} temporarily refused {}: {text}",
            stage.what()
        ),
        "Nothing to do: it is retried later",
    )
}

/// A 5xx reply: permanent, scoped by the step.
fn refused(endpoint: &Endpoint, stage: Stage<'_>, text: &str) -> SyncError {
    match stage {
        Stage::Auth(user) => endpoint.auth_rejected(user, text),
        Stage::Greeting => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!("the SMTP server {endpoint} refuses connections from this host: {text}"),
            format!(
                "Ask the administrator of {} to accept submissions from this host",
                endpoint.host
            ),
        ),
        Stage::StartTls => endpoint.tls_failed(&format!("the server refused STARTTLS: {text}")),
        Stage::MailFrom => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!("the SMTP server {endpoint} refused the sender: {text}"),
            "Check that the mailbox's login may send as its email address",
        ),
        Stage::Rcpt(rcpt) => error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!("the SMTP server {endpoint} refused the recipient {rcpt}: {text}"),
            format!("Check the address {rcpt}; the message was not sent to anyone"),
        ),
        Stage::Data | Stage::Message => error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!("the SMTP server {endpoint} refused the message: {text}"),
            "Check the message's size and content against the server's limits",
        ),
    }
}

/// No mechanism in common for the configured kind of credentials.
pub(super) fn no_mechanism(endpoint: &Endpoint, auth: &Auth, encrypted: bool) -> SyncError {
    let kind = match auth {
        Auth::Password { .. } => "a password (PLAIN or LOGIN)",
        Auth::OAuth2 { .. } => "an OAuth2 token (XOAUTH2)",
    };
    let fix = if encrypted {
        format!("Check which authentication {endpoint} supports and configure the profile to match")
    } else {
        format!(
            "Many servers offer authentication only over TLS: use STARTTLS or implicit TLS for {endpoint}"
        )
    };
    error(
        ErrorClass::Permanent,
        ErrorScope::Profile,
        format!(
            "the SMTP server {endpoint} offers no way to log in with {kind} on this connection"
        ),
        fix,
    )
}
