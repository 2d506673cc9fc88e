//! Server locations: URLs whose scheme says the transport. `imaps://` and
//! `smtps://` are implicit TLS; `imap://` and `smtp://` require STARTTLS;
//! `https://` is TLS; `http://` is plaintext. A profile may connect without TLS only
//! when it sets `allow_plaintext` (lab servers): then `imap://` and `smtp://` use
//! STARTTLS when the server offers it and continue in the clear otherwise, and
//! `http://` is accepted.

use crate::{FieldError, ServerType};

/// Which direction a location serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// The transport named by a location's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Imaps,
    Imap,
    Smtps,
    Smtp,
    Https,
    Http,
}

impl Scheme {
    fn parse(s: &str) -> Option<Scheme> {
        Some(match s {
            "imaps" => Scheme::Imaps,
            "imap" => Scheme::Imap,
            "smtps" => Scheme::Smtps,
            "smtp" => Scheme::Smtp,
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            _ => return None,
        })
    }

    /// The port used when the URL names none (RFC 8314 for submission).
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Imaps => 993,
            Scheme::Imap => 143,
            Scheme::Smtps => 465,
            Scheme::Smtp => 587,
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }
}

/// How a connection to a location must be secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// TLS from the first byte.
    Implicit,
    /// STARTTLS must succeed before credentials are sent.
    StartTlsRequired,
    /// STARTTLS when offered, else the clear (only with `allow_plaintext`).
    StartTlsIfOffered,
    /// No TLS at all (`http://`, only with `allow_plaintext`).
    None,
}

/// A parsed, validated server location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLocation {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// The path, for HTTP locations (e.g. `/EWS/Exchange.asmx`); `/` when none.
    pub path: String,
    pub tls: TlsPolicy,
}

/// The schemes a direction of a server type accepts, as written in messages.
fn accepted(server_type: ServerType, direction: Direction) -> (&'static [Scheme], &'static str) {
    match (server_type, direction) {
        (ServerType::ImapSmtp, Direction::Incoming) => (
            &[Scheme::Imaps, Scheme::Imap],
            "imaps://host:993 (TLS) or imap://host:143 (STARTTLS)",
        ),
        (ServerType::ImapSmtp, Direction::Outgoing) => (
            &[Scheme::Smtps, Scheme::Smtp],
            "smtps://host:465 (TLS) or smtp://host:587 (STARTTLS)",
        ),
        (ServerType::ExchangeOnline | ServerType::ExchangeServer, _) => {
            (&[Scheme::Https, Scheme::Http], "https://host/path")
        }
    }
}

/// Parses and checks a location for one direction of a profile.
pub fn parse_location(
    field: &str,
    text: &str,
    server_type: ServerType,
    direction: Direction,
    allow_plaintext: bool,
) -> Result<ServerLocation, FieldError> {
    let (schemes, example) = accepted(server_type, direction);
    let err = |msg: String| FieldError::new(field, msg);
    let text = text.trim();
    let Some((scheme_text, _)) = text.split_once("://") else {
        return Err(err(format!(
            "`{}` has no scheme; write the location as a URL: {example}",
            shown_location(text)
        )));
    };
    let scheme = Scheme::parse(&scheme_text.to_ascii_lowercase())
        .filter(|s| schemes.contains(s))
        .ok_or_else(|| {
            err(format!(
                "`{}://` is not an {direction} scheme for {server_type} profiles; use {example}",
                shown_location(scheme_text),
                direction = match direction {
                    Direction::Incoming => "incoming",
                    Direction::Outgoing => "outgoing",
                }
            ))
        })?;
    let url = url::Url::parse(text).map_err(|e| {
        err(format!(
            "`{}` is not a valid URL: {e}",
            shown_location(text)
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(
            "credentials do not belong in a server location; put them in the credential fields"
                .to_owned(),
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| err(format!("`{text}` names no host; use {example}")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port().unwrap_or_else(|| scheme.default_port());
    let is_http = matches!(scheme, Scheme::Https | Scheme::Http);
    let path = if is_http {
        url.path().to_owned()
    } else {
        "/".to_owned()
    };
    if !is_http && !matches!(url.path(), "" | "/") {
        return Err(err(format!("`{text}` has a path; {example} takes none")));
    }
    let tls = match (scheme, allow_plaintext) {
        (Scheme::Imaps | Scheme::Smtps | Scheme::Https, _) => TlsPolicy::Implicit,
        (Scheme::Imap | Scheme::Smtp, false) => TlsPolicy::StartTlsRequired,
        (Scheme::Imap | Scheme::Smtp, true) => TlsPolicy::StartTlsIfOffered,
        (Scheme::Http, true) => TlsPolicy::None,
        (Scheme::Http, false) => {
            return Err(err(format!(
                "`{text}` would send credentials in the clear; use https:// or, for a lab server only, set allow_plaintext: true"
            )));
        }
    };
    Ok(ServerLocation {
        scheme,
        host,
        port,
        path,
        tls,
    })
}

/// Parses and checks the CalDAV/CardDAV base URL of an `imap_smtp` profile
/// (`dav_location`): `https://`, or `http://` only with `allow_plaintext`.
pub fn parse_dav_location(
    field: &str,
    text: &str,
    allow_plaintext: bool,
) -> Result<ServerLocation, FieldError> {
    let scheme = text
        .trim()
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("https" | "http")) {
        return Err(FieldError::new(
            field,
            format!(
                "`{}` is not a CalDAV/CardDAV URL; write it like https://dav.example.org/ (http:// only with allow_plaintext)",
                shown_location(text.trim())
            ),
        ));
    }
    // The HTTP rules (host, no credentials, TLS unless allow_plaintext) are those of
    // an Exchange location.
    parse_location(
        field,
        text,
        ServerType::ExchangeServer,
        Direction::Incoming,
        allow_plaintext,
    )
}

/// A location as an error message may repeat it: whatever precedes the last `@`
/// after the scheme (a user name and password pasted into the URL) is left out,
/// so that refusing a location never echoes a password.
pub fn shown_location(text: &str) -> String {
    // Only letters, digits, `+`, `-` and `.` make a scheme (RFC 3986 section 3.1).
    let (scheme, rest) = match text.find("://") {
        Some(i)
            if text[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            text.split_at(i + 3)
        }
        _ => ("", text),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}…{}", &rest[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;
    use ServerType::*;

    fn ok(text: &str, st: ServerType, d: Direction, plain: bool) -> ServerLocation {
        parse_location("f", text, st, d, plain).unwrap_or_else(|e| panic!("{text}: {}", e.message))
    }

    fn fails(text: &str, st: ServerType, d: Direction, plain: bool) -> String {
        parse_location("f", text, st, d, plain)
            .expect_err(text)
            .message
    }

    #[test]
    fn dav_locations_are_http_urls() {
        let cases = [
            ("https://dav.example.org/", false, Ok(TlsPolicy::Implicit)),
            ("http://localhost:5232/", true, Ok(TlsPolicy::None)),
            ("http://localhost:5232/", false, Err("in the clear")),
            (
                "imaps://mail.example.org",
                false,
                Err("not a CalDAV/CardDAV URL"),
            ),
            ("dav.example.org", false, Err("not a CalDAV/CardDAV URL")),
            (
                "https://user:pw@dav.example.org/",
                false,
                Err("credentials"),
            ),
        ];
        for (text, plain, expected) in cases {
            match (parse_dav_location("dav_location", text, plain), expected) {
                (Ok(l), Ok(tls)) => assert_eq!(l.tls, tls, "{text}"),
                (Err(e), Err(part)) => {
                    assert_eq!(e.field, "dav_location");
                    assert!(e.message.contains(part), "{text}: {}", e.message);
                }
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn accepted_locations() {
        let cases = [
            (
                "imaps://mail.example.org",
                ImapSmtp,
                Incoming,
                false,
                Scheme::Imaps,
                993,
                TlsPolicy::Implicit,
            ),
            (
                "imap://mail.example.org:1143",
                ImapSmtp,
                Incoming,
                false,
                Scheme::Imap,
                1143,
                TlsPolicy::StartTlsRequired,
            ),
            (
                "imap://127.0.0.1:1143",
                ImapSmtp,
                Incoming,
                true,
                Scheme::Imap,
                1143,
                TlsPolicy::StartTlsIfOffered,
            ),
            (
                "smtp://mail.example.org",
                ImapSmtp,
                Outgoing,
                false,
                Scheme::Smtp,
                587,
                TlsPolicy::StartTlsRequired,
            ),
            (
                "SMTPS://mail.example.org:465/",
                ImapSmtp,
                Outgoing,
                false,
                Scheme::Smtps,
                465,
                TlsPolicy::Implicit,
            ),
            (
                "https://outlook.office365.com/EWS/Exchange.asmx",
                ExchangeServer,
                Incoming,
                false,
                Scheme::Https,
                443,
                TlsPolicy::Implicit,
            ),
            (
                "http://127.0.0.1:8081/ews",
                ExchangeServer,
                Outgoing,
                true,
                Scheme::Http,
                8081,
                TlsPolicy::None,
            ),
        ];
        for (text, st, d, plain, scheme, port, tls) in cases {
            let loc = ok(text, st, d, plain);
            assert_eq!(
                (loc.scheme, loc.port, loc.tls),
                (scheme, port, tls),
                "{text}"
            );
        }
        assert_eq!(
            ok(
                "https://ex.example.org/EWS/Exchange.asmx",
                ExchangeServer,
                Incoming,
                false
            )
            .path,
            "/EWS/Exchange.asmx"
        );
        assert_eq!(
            ok("imaps://[::1]:993", ImapSmtp, Incoming, false).host,
            "::1"
        );
    }

    #[test]
    fn refused_locations_say_what_would_be_valid() {
        assert_eq!(
            fails("mail.example.org:993", ImapSmtp, Incoming, false),
            "`mail.example.org:993` has no scheme; write the location as a URL: imaps://host:993 (TLS) or imap://host:143 (STARTTLS)"
        );
        assert!(
            fails("smtp://mail.example.org", ImapSmtp, Incoming, false)
                .starts_with("`smtp://` is not an incoming scheme for imap_smtp profiles")
        );
        assert!(
            fails("imaps://mail.example.org", ImapSmtp, Outgoing, false)
                .contains("smtps://host:465")
        );
        assert!(
            fails("http://ex.example.org/ews", ExchangeServer, Incoming, false)
                .contains("allow_plaintext: true")
        );
        assert!(
            fails(
                "imaps://bob:secret@mail.example.org",
                ImapSmtp,
                Incoming,
                false
            )
            .contains("credential fields")
        );
        assert!(
            fails("imaps://mail.example.org/INBOX", ImapSmtp, Incoming, false)
                .contains("has a path")
        );
        assert!(
            fails("imaps://", ImapSmtp, Incoming, false).contains("URL")
                || fails("imaps://", ImapSmtp, Incoming, false).contains("host")
        );
    }
}
