//! Mozilla autoconfig files (`config-v1.1.xml`; draft-ietf-mailmaint-autoconfig):
//! where the domain publishes them, what their `incomingServer type="imap"` and
//! `outgoingServer type="smtp"` say, and which of the listed servers to use.

use crate::DiscoverySource;
use crate::autodiscover::{Found, location_text};
use crate::location::{Direction, Scheme};

/// The autoconfig URLs of a domain, in order: the `autoconfig.` host, then the
/// domain's well-known path. Only HTTPS: the answer decides where a password goes.
pub fn urls(email: &str, domain: &str, https_port: Option<u16>) -> Vec<String> {
    let port = https_port.map(|p| format!(":{p}")).unwrap_or_default();
    let address: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
    vec![
        format!("https://autoconfig.{domain}{port}/mail/config-v1.1.xml?emailaddress={address}"),
        format!("https://{domain}{port}/.well-known/autoconfig/mail/config-v1.1.xml"),
    ]
}

/// How a listed server is secured (`<socketType>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SocketType {
    /// `SSL` (also written `TLS`): TLS from the first byte.
    Ssl,
    /// `STARTTLS`.
    StartTls,
    /// `plain`: no TLS at all.
    Plain,
}

/// One `incomingServer type="imap"` or `outgoingServer type="smtp"` of the file,
/// placeholders not yet expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    pub direction: Direction,
    pub hostname: String,
    pub port: u16,
    pub socket_type: SocketType,
    pub username: Option<String>,
}

/// Reads a `clientConfig` document: its IMAP and SMTP servers in document order
/// (the provider's order of preference). Other server types (POP3, JMAP, ...)
/// and unknown elements are skipped; an entry without a usable host name, port or
/// socket type is skipped too.
///
/// # Errors
/// In words, when the text is not XML or not a `clientConfig` with an
/// `emailProvider`.
pub fn parse(xml: &str) -> Result<Vec<ServerEntry>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "clientConfig" {
        return Err(format!(
            "the document is a `{}`, not a `clientConfig`",
            root.tag_name().name()
        ));
    }
    let provider = root
        .children()
        .find(|n| n.has_tag_name("emailProvider"))
        .ok_or("the clientConfig has no emailProvider")?;
    let mut out = Vec::new();
    for server in provider.children().filter(roxmltree::Node::is_element) {
        let (direction, wanted) = match server.tag_name().name() {
            "incomingServer" => (Direction::Incoming, "imap"),
            "outgoingServer" => (Direction::Outgoing, "smtp"),
            _ => continue,
        };
        if server.attribute("type") != Some(wanted) {
            continue;
        }
        let text = |name: &str| {
            server
                .children()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        let socket_type = match text("socketType").map(str::to_ascii_uppercase).as_deref() {
            Some("SSL" | "TLS") => SocketType::Ssl,
            Some("STARTTLS") => SocketType::StartTls,
            Some("PLAIN") => SocketType::Plain,
            _ => continue,
        };
        let (Some(hostname), Some(Ok(port))) = (text("hostname"), text("port").map(str::parse))
        else {
            continue;
        };
        if port == 0 {
            continue;
        }
        out.push(ServerEntry {
            direction,
            hostname: hostname.to_owned(),
            port,
            socket_type,
            username: text("username").map(str::to_owned),
        });
    }
    Ok(out)
}

/// Expands the placeholders of a host or user name: `%EMAILADDRESS%`,
/// `%EMAILLOCALPART%`, `%EMAILDOMAIN%`.
pub fn expand(template: &str, email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    template
        .replace("%EMAILADDRESS%", email)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
}

/// The server to use for one direction: the provider's first entry with implicit
/// TLS, else its first with STARTTLS, else (only with `allow_plaintext`) its first
/// plaintext one, as a location in the profile's syntax. A plaintext entry becomes
/// `imap://` / `smtp://`, which a profile with `allow_plaintext` uses in the clear
/// when the server offers no STARTTLS.
///
/// # Errors
/// Why none fits: the file lists no server for the direction, or only plaintext
/// ones while the profile does not allow plaintext.
pub fn choose(
    entries: &[ServerEntry],
    direction: Direction,
    email: &str,
    allow_plaintext: bool,
) -> Result<Found, String> {
    let what = match direction {
        Direction::Incoming => "IMAP",
        Direction::Outgoing => "SMTP",
    };
    let mut candidates: Vec<&ServerEntry> = entries
        .iter()
        .filter(|e| e.direction == direction)
        .collect();
    if candidates.is_empty() {
        return Err(format!("the file lists no {what} server"));
    }
    // A stable sort keeps the provider's order within each kind of security.
    candidates.sort_by_key(|e| e.socket_type);
    let entry = candidates
        .into_iter()
        .find(|e| allow_plaintext || e.socket_type != SocketType::Plain)
        .ok_or_else(|| {
            format!(
                "the file lists only plaintext {what} servers, refused because the profile does not set allow_plaintext"
            )
        })?;
    let scheme = match (direction, entry.socket_type) {
        (Direction::Incoming, SocketType::Ssl) => Scheme::Imaps,
        (Direction::Incoming, _) => Scheme::Imap,
        (Direction::Outgoing, SocketType::Ssl) => Scheme::Smtps,
        (Direction::Outgoing, _) => Scheme::Smtp,
    };
    Ok(Found {
        location: location_text(scheme, &expand(&entry.hostname, email), entry.port),
        source: DiscoverySource::Autoconfig,
        username: entry.username.as_deref().map(|u| expand(u, email)),
    })
}
