//! Classified failures shared by the IMAP and SMTP connectors: each says what
//! happened in plain words and what to do, and carries the class (transient or
//! permanent) and scope (item, mailbox, profile) the engine acts on. No message ever
//! holds a password or a token: they are built from host names, user names and the
//! servers' own words, and server words are scrubbed of the secret first.

use std::io;
use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

/// Which server a failure is about, for the words of the message.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `IMAP` or `SMTP`.
    pub protocol: &'static str,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

pub(crate) fn error(
    class: ErrorClass,
    scope: ErrorScope,
    message: String,
    fix: impl Into<String>,
) -> SyncError {
    SyncError {
        class,
        scope,
        message,
        fix: Some(fix.into()),
    }
}

pub(crate) const TRANSIENT: ErrorClass = ErrorClass::Transient { retry_after: None };

impl Endpoint {
    /// The name could not be resolved: the server (so the profile) is unreachable.
    pub fn dns_failed(&self, detail: &str) -> SyncError {
        error(
            TRANSIENT,
            ErrorScope::Profile,
            format!(
                "the {} server name {} could not be resolved: {detail}",
                self.protocol, self.host
            ),
            format!(
                "Check the server location {self} in the email server profile and this host's DNS"
            ),
        )
    }

    /// Nobody answered at the address: the profile's server is unreachable.
    pub fn unreachable(&self, detail: &str) -> SyncError {
        error(
            TRANSIENT,
            ErrorScope::Profile,
            format!(
                "could not connect to the {} server {self}: {detail}",
                self.protocol
            ),
            format!(
                "Check that {self} is the right {} server and that it accepts connections from this host",
                self.protocol
            ),
        )
    }

    /// One operation took longer than the configured timeout.
    pub fn timed_out(&self, what: &str, after: Duration) -> SyncError {
        error(
            TRANSIENT,
            ErrorScope::Mailbox,
            format!(
                "the {} server {self} did not answer {what} within {} s",
                self.protocol,
                after.as_secs_f32()
            ),
            "Nothing to do if this is rare: it is retried; if it persists, check the server's load or raise the timeout",
        )
    }

    /// The connection broke (reset, closed, BYE) in the middle of a conversation.
    pub fn connection_lost(&self, detail: &str) -> SyncError {
        error(
            TRANSIENT,
            ErrorScope::Mailbox,
            format!(
                "the connection to the {} server {self} was lost: {detail}",
                self.protocol
            ),
            "Nothing to do if this is rare: it is retried; if it persists, check the server's logs",
        )
    }

    /// The server said something this client does not understand or did not expect.
    pub fn protocol(&self, detail: &str) -> SyncError {
        error(
            TRANSIENT,
            ErrorScope::Mailbox,
            format!(
                "the {} server {self} answered unexpectedly: {detail}",
                self.protocol
            ),
            "It is retried; if it persists, report the server software and this message",
        )
    }

    /// The certificate is not trusted (unknown issuer, expired, wrong name).
    pub fn certificate_untrusted(&self, detail: &str) -> SyncError {
        error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "the {} server {self} presented a certificate that is not trusted: {detail}",
                self.protocol
            ),
            format!(
                "On the server, install a certificate for {} from a trusted authority (or, for a lab server, add its CA to the profile's trusted certificates)",
                self.host
            ),
        )
    }

    /// The TLS handshake failed for another reason (no common version or cipher).
    pub fn tls_failed(&self, detail: &str) -> SyncError {
        error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "the TLS handshake with the {} server {self} failed: {detail}",
                self.protocol
            ),
            format!(
                "Check that {self} speaks TLS 1.2 or 1.3 on this port (implicit TLS ports are usually 993 and 465, STARTTLS ports 143 and 587)"
            ),
        )
    }

    /// STARTTLS was required but the server does not offer it.
    pub fn starttls_missing(&self) -> SyncError {
        error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "the {} server {self} does not offer STARTTLS, and the profile requires TLS before credentials are sent",
                self.protocol
            ),
            format!(
                "Enable TLS on {self} or use its implicit TLS port; for a lab server only, set allow_plaintext: true on the profile"
            ),
        )
    }

    /// The server refused the credentials.
    pub fn auth_rejected(&self, user: &str, detail: &str) -> SyncError {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "the {} server rejected the user name or password for {user}{detail}",
                self.protocol
            ),
            "Check the mailbox's user name and password, then run Test & Enable",
        )
    }

    /// An I/O error during a conversation, classified by its kind.
    pub fn io(&self, e: &io::Error) -> SyncError {
        if let Some(tls) = rustls_error(e) {
            return self.tls(tls);
        }
        match e.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => self.unreachable(&e.to_string()),
            io::ErrorKind::TimedOut => self.connection_lost("the connection timed out"),
            io::ErrorKind::UnexpectedEof => {
                self.connection_lost("the server closed the connection")
            }
            _ => self.connection_lost(&e.to_string()),
        }
    }

    /// A TLS failure, by rustls's reason.
    pub fn tls(&self, e: &rustls::Error) -> SyncError {
        match e {
            rustls::Error::InvalidCertificate(reason) => {
                self.certificate_untrusted(&certificate_reason(reason))
            }
            other => self.tls_failed(&other.to_string()),
        }
    }
}

/// A profile's extra trusted certificate that rustls cannot use.
pub(crate) fn bad_extra_root(index: usize, detail: &str) -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Profile,
        format!(
            "trusted certificate {} of the profile cannot be used: {detail}",
            index + 1
        ),
        "Give the profile's trusted CA certificates in DER (or PEM converted to DER) form",
    )
}

/// The rustls error inside an I/O error: tokio-rustls wraps handshake failures
/// in one directly, HTTP clients a few levels down, so the whole chain is looked at.
pub(crate) fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    // An `io::Error`'s `source()` skips its own payload: step into it instead.
    fn inside(e: &io::Error) -> Option<&(dyn std::error::Error + 'static)> {
        e.get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static))
    }
    let mut source = inside(e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        source = match s.downcast_ref::<io::Error>() {
            Some(io) => inside(io),
            None => s.source(),
        };
    }
    None
}

fn certificate_reason(reason: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match reason {
        C::UnknownIssuer => "it is not signed by a trusted certificate authority".to_owned(),
        C::Expired | C::ExpiredContext { .. } => "it has expired".to_owned(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".to_owned(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not valid for this host name".to_owned()
        }
        C::Revoked => "it has been revoked".to_owned(),
        // A trusted authority with the issuer's name exists but did not sign it.
        C::BadSignature => {
            "it is not signed by a trusted certificate authority (the signature does not match the trusted one of that name)".to_owned()
        }
        other => format!("it was refused ({other:?})"),
    }
}

/// Removes a secret from text that came from a server, in case it echoes it.
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.len() < 3 {
        return text.to_owned();
    }
    text.replace(secret, "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            protocol: "IMAP",
            host: "mail.example.org".to_owned(),
            port: 993,
        }
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        let cases = [
            (
                io::ErrorKind::ConnectionRefused,
                TRANSIENT,
                ErrorScope::Profile,
            ),
            (
                io::ErrorKind::ConnectionReset,
                TRANSIENT,
                ErrorScope::Mailbox,
            ),
            (io::ErrorKind::UnexpectedEof, TRANSIENT, ErrorScope::Mailbox),
            (io::ErrorKind::TimedOut, TRANSIENT, ErrorScope::Mailbox),
        ];
        for (kind, class, scope) in cases {
            let e = endpoint().io(&io::Error::from(kind));
            assert_eq!((e.class, e.scope), (class, scope), "{kind:?}");
        }
    }

    #[test]
    fn certificate_errors_are_permanent_for_the_profile() {
        let cases = [
            (
                rustls::CertificateError::UnknownIssuer,
                "trusted certificate authority",
            ),
            (rustls::CertificateError::Expired, "expired"),
            (
                rustls::CertificateError::NotValidForName,
                "not valid for this host name",
            ),
        ];
        for (reason, words) in cases {
            let wrapped = io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(reason),
            );
            let e = endpoint().io(&wrapped);
            assert_eq!(
                (e.class, e.scope),
                (ErrorClass::Permanent, ErrorScope::Profile)
            );
            assert!(e.message.contains(words), "{}", e.message);
            assert!(
                e.fix.as_deref().unwrap_or("").contains(
                    "install a certificate for mail.example.org from a trusted authority"
                )
            );
        }
    }

    #[test]
    fn endpoints_print_ipv6_in_brackets() {
        let mut e = endpoint();
        assert_eq!(e.to_string(), "mail.example.org:993");
        e.host = "::1".to_owned();
        assert_eq!(e.to_string(), "[::1]:993");
    }

    #[test]
    fn scrub_hides_an_echoed_secret() {
        assert_eq!(scrub("NO bad pass hunter2", "hunter2"), "NO bad pass ***");
        assert_eq!(scrub("NO a", "a"), "NO a");
    }
}
