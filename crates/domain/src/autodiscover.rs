//! Autodiscover, the pure half: where to look for a mailbox's server locations
//! (Mozilla autoconfig files and RFC 6186/8314 SRV records for IMAP/SMTP, Exchange
//! Autodiscover v2 for Exchange), how to read what is found, and the locations that
//! follow, written in the profile's own syntax (`imaps://host:993`). The connectors
//! do the lookups; the engine stores the result on the mailbox.

pub mod autoconfig;
pub mod legacy;
pub mod srv;
pub mod v2;

use std::fmt;

use crate::error_model::{ErrorClass, ErrorScope, SyncError};
use crate::location::{Direction, Scheme};
use crate::{DiscoverySource, ServerType};

/// The alert's words when nothing usable was found.
pub const LOCATION_UNKNOWN: &str = "mailbox location could not be determined";

/// What an administrator does about it.
pub const LOCATION_UNKNOWN_FIX: &str = "Enter the Incoming and Outgoing Server Locations on the email server profile and turn Auto Discover off, or publish autoconfig/SRV records for the domain";

/// The domain of an address, lower case and without a final dot: what
/// autodiscover asks about. `None` for something that is not an address.
pub fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let valid = !local.is_empty()
        && !domain.is_empty()
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    valid.then_some(domain)
}

/// A location in the profile's syntax: `imaps://mail.example.org:993`. The host
/// loses the final dot DNS names carry; an IPv6 address is put in brackets.
pub fn location_text(scheme: Scheme, host: &str, port: u16) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let scheme = match scheme {
        Scheme::Imaps => "imaps",
        Scheme::Imap => "imap",
        Scheme::Smtps => "smtps",
        Scheme::Smtp => "smtp",
        Scheme::Https => "https",
        Scheme::Http => "http",
    };
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

/// One place looked at, in the order autodiscover looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A Mozilla autoconfig file at this URL.
    Autoconfig(String),
    /// The SRV records of one service of the domain.
    Srv(srv::SrvService),
    /// An Exchange Autodiscover v2 endpoint at this URL.
    AutodiscoverV2(String),
}

/// Where to look for a mailbox's locations, in order. IMAP/SMTP: the domain's own
/// autoconfig files first (they also say the sign-in name's form), then its SRV
/// records, implicit TLS before STARTTLS (RFC 8314 section 5.1). Exchange:
/// Autodiscover v2 at `autodiscover.<domain>`, then at the domain itself (and, for
/// Exchange Online, Microsoft's own endpoint, which answers for every tenant).
/// `https_port` replaces 443 in the URLs built here (loopback test fixtures only).
pub fn plan(server_type: ServerType, email: &str, https_port: Option<u16>) -> Vec<Lookup> {
    let Some(domain) = email_domain(email) else {
        return Vec::new();
    };
    match server_type {
        ServerType::ImapSmtp => autoconfig::urls(email, &domain, https_port)
            .into_iter()
            .map(Lookup::Autoconfig)
            .chain(
                [Direction::Incoming, Direction::Outgoing]
                    .into_iter()
                    .flat_map(srv::SrvService::for_direction)
                    .map(Lookup::Srv),
            )
            .collect(),
        ServerType::ExchangeOnline | ServerType::ExchangeServer => {
            v2::urls(server_type, email, &domain, v2::V2Protocol::Ews, https_port)
                .into_iter()
                .map(Lookup::AutodiscoverV2)
                .collect()
        }
    }
}

/// What one lookup answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A usable answer: the location it gave.
    Found(String),
    /// A definite "nothing here" (no such name, no record, 404, a document that
    /// cannot be used); asking again will not help.
    Absent(String),
    /// No answer (timeout, refused connection, a server error); it may come back.
    Failed(String),
}

/// One lookup and its outcome, for the error message and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What was asked: `SRV _imaps._tcp.example.org` or a URL.
    pub what: String,
    pub outcome: Outcome,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Found(l) => write!(f, "{}: found {l}", self.what),
            Outcome::Absent(why) | Outcome::Failed(why) => write!(f, "{}: {why}", self.what),
        }
    }
}

/// A discovered location and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// In the profile's syntax, e.g. `imaps://mail.example.org:993`.
    pub location: String,
    pub source: DiscoverySource,
    /// The sign-in name the autoconfig file gives, placeholders expanded.
    pub username: Option<String>,
}

/// What autodiscover found for a mailbox, as stored on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredLocation {
    pub incoming: Option<String>,
    pub outgoing: Option<String>,
    pub source: DiscoverySource,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl DiscoveredLocation {
    /// Whether it is older than `max_age` at `now`, and so must be looked up again.
    pub fn is_stale(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max_age: std::time::Duration,
    ) -> bool {
        // A max age too large for chrono never expires.
        chrono::Duration::from_std(max_age).is_ok_and(|age| now - self.at > age)
    }
}

impl crate::mailbox::Mailbox {
    /// The discovered locations stored on the mailbox, if any.
    pub fn discovered(&self) -> Option<DiscoveredLocation> {
        Some(DiscoveredLocation {
            incoming: self.discovered_incoming_location.clone(),
            outgoing: self.discovered_outgoing_location.clone(),
            source: self.discovered_source?,
            at: self.discovered_at?,
        })
    }
}

/// The error when autodiscover found no usable location: permanent when every
/// lookup was answered (nothing is published), transient when some got no answer
/// (retried on the retry policy, then permanent). It names every lookup.
pub fn location_unknown(email: &str, attempts: &[Attempt]) -> SyncError {
    let transient = attempts
        .iter()
        .any(|a| matches!(a.outcome, Outcome::Failed(_)));
    let tried = if attempts.is_empty() {
        format!("`{email}` has no domain to look up")
    } else {
        attempts
            .iter()
            .map(Attempt::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    SyncError {
        class: if transient {
            ErrorClass::Transient { retry_after: None }
        } else {
            ErrorClass::Permanent
        },
        scope: ErrorScope::Mailbox,
        message: format!("{LOCATION_UNKNOWN} for {email}; tried {tried}"),
        fix: Some(LOCATION_UNKNOWN_FIX.to_owned()),
    }
}

#[cfg(test)]
mod tests;
