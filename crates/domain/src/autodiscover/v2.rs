//! Exchange Autodiscover v2 (the JSON endpoint): `GET
//! https://autodiscover.<domain>/autodiscover/autodiscover.json/v1.0/<address>?Protocol=EWS`
//! answers `{"Protocol": "EWS", "Url": "https://.../EWS/Exchange.asmx"}`, or an
//! `{"ErrorCode": ..., "ErrorMessage": ...}`; HTTP redirects point to another
//! Autodiscover endpoint.

use crate::ServerType;
use crate::location::{Direction, parse_location};

/// The endpoint Microsoft runs for every Exchange Online tenant.
pub const EXCHANGE_ONLINE_HOST: &str = "outlook.office365.com";

/// The protocol whose endpoint is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Protocol {
    /// Exchange Web Services (`/EWS/Exchange.asmx`).
    Ews,
    /// The Outlook REST API.
    Rest,
    ActiveSync,
}

impl V2Protocol {
    /// The `Protocol=` value, as Exchange spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            V2Protocol::Ews => "EWS",
            V2Protocol::Rest => "REST",
            V2Protocol::ActiveSync => "ActiveSync",
        }
    }
}

/// The Autodiscover v2 URLs for an address, in order: `autodiscover.<domain>`,
/// the domain itself, and for Exchange Online Microsoft's own endpoint.
/// `https_port` replaces 443 (loopback test fixtures only).
pub fn urls(
    server_type: ServerType,
    email: &str,
    domain: &str,
    protocol: V2Protocol,
    https_port: Option<u16>,
) -> Vec<String> {
    let mut hosts = vec![format!("autodiscover.{domain}"), domain.to_owned()];
    if server_type == ServerType::ExchangeOnline {
        hosts.push(EXCHANGE_ONLINE_HOST.to_owned());
    }
    hosts
        .into_iter()
        .filter_map(|host| {
            let mut url = url::Url::parse(&format!("https://{host}/")).ok()?;
            url.set_port(https_port).ok()?;
            url.path_segments_mut().ok()?.clear().extend([
                "autodiscover",
                "autodiscover.json",
                "v1.0",
                email,
            ]);
            url.query_pairs_mut()
                .append_pair("Protocol", protocol.as_str());
            Some(url.to_string())
        })
        .collect()
}

/// Reads an Autodiscover v2 answer: the URL of `protocol`'s endpoint.
///
/// # Errors
/// In words: not JSON, Exchange's own error (its code and message), another
/// protocol's answer, or no URL.
pub fn parse(json: &str, protocol: V2Protocol) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("the answer is not a JSON object")?;
    // Exchange writes `Protocol` and `Url`; accept any case of the names.
    let field = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    if let Some(code) = field("ErrorCode") {
        return Err(format!(
            "Exchange answered {code}: {}",
            field("ErrorMessage").unwrap_or("(no message)")
        ));
    }
    match field("Protocol") {
        Some(p) if p.eq_ignore_ascii_case(protocol.as_str()) => {}
        Some(p) => return Err(format!("the answer is for {p}, not {}", protocol.as_str())),
        None => return Err("the answer names no Protocol".to_owned()),
    }
    field("Url")
        .map(str::to_owned)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| "the answer has no Url".to_owned())
}

/// The location an Autodiscover v2 URL gives, checked as a profile location.
///
/// # Errors
/// When the URL is not one (e.g. `http://` without `allow_plaintext`).
pub fn location(url: &str, allow_plaintext: bool) -> Result<String, String> {
    parse_location(
        "discovered",
        url,
        ServerType::ExchangeServer,
        Direction::Incoming,
        allow_plaintext,
    )
    .map(|_| url.to_owned())
    .map_err(|e| e.message)
}
