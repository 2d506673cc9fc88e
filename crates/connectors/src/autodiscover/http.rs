//! HTTPS for autodiscover: one GET that follows redirects itself (at most
//! [`MAX_REDIRECTS`], HTTPS only), resolving every host through the discovery's
//! own DNS, with the TLS roots of every connector.

use std::net::SocketAddr;
use std::time::Duration;

use mailbridge_domain::autodiscover::Outcome;
use reqwest::Url;
use reqwest::redirect::Policy;

use super::dns::Dns;

/// Redirects followed before giving up (Autodiscover answers with one or two).
pub const MAX_REDIRECTS: usize = 5;

/// Documents larger than this are not configuration files.
const MAX_BODY: usize = 1 << 20;

/// The final answer of a GET, redirects followed.
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
    /// The URLs redirected to, in order.
    pub redirects: Vec<String>,
}

impl Answer {
    /// "(redirected to ...)" for messages, or nothing.
    pub(crate) fn via(&self) -> String {
        match self.redirects.as_slice() {
            [] => String::new(),
            list => format!(" (redirected to {})", list.join(", then ")),
        }
    }
}

/// GETs `url`, following redirects.
///
/// # Errors
/// The outcome to record: `Absent` for a name that does not exist or a redirect
/// that cannot be followed, `Failed` for no answer.
pub(crate) async fn get(
    url: &str,
    dns: &Dns,
    extra_roots: &[Vec<u8>],
    timeout: Duration,
) -> Result<Answer, Outcome> {
    let tls =
        crate::tls::client_config(extra_roots).map_err(|e| Outcome::Failed(e.message.clone()))?;
    let mut url = Url::parse(url).map_err(|e| Outcome::Absent(format!("not a URL: {e}")))?;
    let mut redirects = Vec::new();
    loop {
        if url.scheme() != "https" {
            return Err(Outcome::Absent(format!(
                "redirected to {url}, which is not HTTPS; refused"
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Outcome::Absent(format!("{url} names no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match host.parse() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => dns
                .ips(&host)
                .await
                .map_err(|o| match o {
                    Outcome::Absent(why) => Outcome::Absent(format!("{host}: {why}")),
                    other => other,
                })?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
        };
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .resolve_to_addrs(&host, &addrs)
            .user_agent(concat!("mailbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Outcome::Failed(format!("the HTTP client cannot be set up: {e}")))?;
        let response = client
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/xml, text/xml",
            )
            .send()
            .await
            .map_err(|e| Outcome::Failed(describe(&e, timeout)))?;
        let status = response.status();
        if status.is_redirection() {
            let Some(location) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return Err(Outcome::Absent(format!(
                    "HTTP {} without a Location",
                    status.as_u16()
                )));
            };
            let next = url
                .join(location)
                .map_err(|e| Outcome::Absent(format!("a redirect to `{location}`: {e}")))?;
            if redirects.len() == MAX_REDIRECTS {
                return Err(Outcome::Absent(format!(
                    "more than {MAX_REDIRECTS} redirects; the last to {next}"
                )));
            }
            redirects.push(next.to_string());
            url = next;
            continue;
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Outcome::Failed(describe(&e, timeout)))?;
        if bytes.len() > MAX_BODY {
            return Err(Outcome::Absent(format!(
                "the answer is larger than {MAX_BODY} bytes"
            )));
        }
        return Ok(Answer {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            redirects,
        });
    }
}

/// The outcome of a final answer that is not 200: a client error is an answer
/// ("not here"), a server error is not.
pub(crate) fn status_outcome(answer: &Answer) -> Option<Outcome> {
    let what = format!("HTTP {}{}", answer.status, answer.via());
    match answer.status {
        200..=299 => None,
        500..=599 => Some(Outcome::Failed(what)),
        _ => Some(Outcome::Absent(what)),
    }
}

/// A transport failure in words, with its causes (reqwest's own text is short).
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f32());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
