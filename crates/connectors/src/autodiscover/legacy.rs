//! Exchange Server's own Autodiscover (POX, then SOAP), the I/O half: asks
//! `autodiscover.<domain>`, the domain, then the `_autodiscover._tcp` SRV
//! target, each first at `autodiscover.xml` (POX) and, when that host answers
//! but not usefully, at `autodiscover.svc` (SOAP `GetUserSettings`). Requests are
//! authenticated with the service account (these endpoints refuse anonymous
//! callers), so credentials follow only HTTPS redirects within the address's
//! domain; `redirectAddr` starts again for the new address. At most
//! [`MAX_LEGACY_REDIRECTS`] redirects of any kind; every request is recorded.

use std::collections::VecDeque;
use std::net::SocketAddr;

use mailbridge_domain::autodiscover::legacy::{
    self, Candidate, EwsUrls, GET_USER_SETTINGS_ACTION, LegacyAnswer, MAX_LEGACY_REDIRECTS,
};
use mailbridge_domain::autodiscover::{Attempt, Outcome, email_domain, location_unknown, srv, v2};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::secret::Secret;
use reqwest::Url;
use reqwest::redirect::Policy;

use super::DiscoveryConfig;
use super::dns::Dns;

/// Answers larger than this are not Autodiscover documents.
const MAX_BODY: usize = 1 << 20;

/// How the Autodiscover requests authenticate.
#[derive(Clone)]
pub enum AutodiscoverCredentials {
    /// The service account (`DOMAIN\user` or `user@domain`) with Basic.
    Basic { user: String, password: Secret },
    /// An OAuth bearer token (hybrid modern authentication).
    Bearer(Secret),
}

impl std::fmt::Debug for AutodiscoverCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AutodiscoverCredentials::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .finish_non_exhaustive(),
            AutodiscoverCredentials::Bearer(_) => f.write_str("Bearer"),
        }
    }
}

/// Which service gave the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyMethod {
    Pox,
    Soap,
}

/// What Exchange's own Autodiscover found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyFound {
    /// The EWS URL to use (the external one first), checked as a profile location.
    pub ews_url: String,
    pub method: LegacyMethod,
    /// Both URLs the answer gave.
    pub urls: EwsUrls,
    /// The address the answer is for (another one after a `redirectAddr`).
    pub address: String,
}

/// Finds the EWS URL of `email` with Exchange's POX and SOAP Autodiscover.
///
/// # Errors
/// "mailbox location could not be determined", naming every request.
pub async fn discover_exchange_legacy(
    email: &str,
    credentials: &AutodiscoverCredentials,
    allow_plaintext: bool,
    cfg: &DiscoveryConfig,
) -> Result<(LegacyFound, Vec<Attempt>), SyncError> {
    let mut session = Session {
        dns: Dns::new(cfg.nameserver, cfg.timeout).map_err(|why| {
            location_unknown(
                email,
                &[Attempt {
                    what: "DNS".to_owned(),
                    outcome: Outcome::Failed(why),
                }],
            )
        })?,
        cfg,
        credentials,
        allow_plaintext,
        attempts: Vec::new(),
        redirects: 0,
    };
    match session.run(email).await {
        Some(found) => Ok((found, session.attempts)),
        None => Err(location_unknown(email, &session.attempts)),
    }
}

/// One place to ask.
enum Target {
    /// A host: POX, then SOAP when it answers but not usefully.
    Host(Candidate),
    /// A URL a redirect named, of one service.
    Url(String, LegacyMethod),
}

/// What one request led to.
enum Step {
    Found(LegacyFound),
    Address(String),
    Url(String, LegacyMethod),
    /// The host answered, but not with a usable EWS URL.
    NotHere,
    /// The host did not answer (or does not exist): do not ask it again.
    Unreachable,
}

struct Session<'a> {
    dns: Dns,
    cfg: &'a DiscoveryConfig,
    credentials: &'a AutodiscoverCredentials,
    allow_plaintext: bool,
    attempts: Vec<Attempt>,
    redirects: usize,
}

impl Session<'_> {
    async fn run(&mut self, email: &str) -> Option<LegacyFound> {
        let mut address = email.trim().to_owned();
        'address: loop {
            let domain = email_domain(&address)?;
            let mut queue: VecDeque<Target> = legacy::candidates(&domain, self.cfg.https_port)
                .into_iter()
                .map(Target::Host)
                .collect();
            let mut srv_asked = false;
            loop {
                let target = match queue.pop_front() {
                    Some(t) => t,
                    None if !srv_asked => {
                        srv_asked = true;
                        queue.extend(
                            self.srv_candidates(&domain)
                                .await
                                .into_iter()
                                .map(Target::Host),
                        );
                        continue;
                    }
                    None => return None,
                };
                let steps = match target {
                    Target::Host(c) => {
                        let pox = self
                            .ask(&c.pox_url, LegacyMethod::Pox, &address, &domain)
                            .await;
                        match pox {
                            Step::NotHere => {
                                self.ask(&c.soap_url, LegacyMethod::Soap, &address, &domain)
                                    .await
                            }
                            other => other,
                        }
                    }
                    Target::Url(url, method) => self.ask(&url, method, &address, &domain).await,
                };
                match steps {
                    Step::Found(found) => return Some(found),
                    Step::Address(next) => {
                        if !self.redirect(format!("redirected to the address {next}")) {
                            return None;
                        }
                        address = next;
                        continue 'address;
                    }
                    Step::Url(url, method) => {
                        if !self.redirect(format!("redirected to {url}")) {
                            return None;
                        }
                        match legacy::redirect_allowed(&domain, &url) {
                            Ok(()) => queue.push_front(Target::Url(url, method)),
                            Err(why) => {
                                self.record(format!("redirect to {url}"), Outcome::Absent(why))
                            }
                        }
                    }
                    Step::NotHere | Step::Unreachable => {}
                }
            }
        }
    }

    /// Counts a redirect; false (recorded) when there were too many.
    fn redirect(&mut self, what: String) -> bool {
        self.redirects += 1;
        if self.redirects > MAX_LEGACY_REDIRECTS {
            self.record(
                what,
                Outcome::Absent(format!(
                    "more than {MAX_LEGACY_REDIRECTS} redirects; stopped"
                )),
            );
            return false;
        }
        true
    }

    fn record(&mut self, what: String, outcome: Outcome) {
        self.attempts.push(Attempt { what, outcome });
    }

    async fn srv_candidates(&mut self, domain: &str) -> Vec<Candidate> {
        let name = legacy::srv_name(domain);
        let what = format!("SRV {}", name.trim_end_matches('.'));
        match self.dns.srv(&name).await {
            Err(outcome) => {
                self.record(what, outcome);
                Vec::new()
            }
            Ok(records) => {
                let ordered = srv::order(&records, super::random);
                let found: Vec<Candidate> = ordered
                    .iter()
                    .map(|r| legacy::candidate(&r.target, Some(r.port)))
                    .collect();
                let outcome = match found.first() {
                    Some(c) => Outcome::Found(c.host.clone()),
                    None => Outcome::Absent("no usable record".to_owned()),
                };
                self.record(what, outcome);
                found
            }
        }
    }

    /// One request to `url` of `method` for `address`, recorded.
    async fn ask(&mut self, url: &str, method: LegacyMethod, address: &str, domain: &str) -> Step {
        let what = format!("POST {url}");
        let body = match method {
            LegacyMethod::Pox => legacy::pox_request(address),
            LegacyMethod::Soap => legacy::soap_request(address, url),
        };
        let answer = match self.post(url, &body, method, domain).await {
            Ok(a) => a,
            Err(outcome) => {
                self.record(what, outcome);
                return Step::Unreachable;
            }
        };
        let via = match answer.redirects.as_slice() {
            [] => String::new(),
            list => format!(" (redirected to {})", list.join(", then ")),
        };
        if !(200..300).contains(&answer.status) {
            let said = match answer.status {
                401 => format!("HTTP 401{via}: the service account's credentials were refused"),
                s => format!("HTTP {s}{via}"),
            };
            let outcome = if answer.status >= 500 {
                Outcome::Failed(said)
            } else {
                Outcome::Absent(said)
            };
            self.record(what, outcome);
            return Step::NotHere;
        }
        let parsed = match method {
            LegacyMethod::Pox => legacy::parse_pox(&answer.body),
            LegacyMethod::Soap => legacy::parse_soap(&answer.body),
        };
        match parsed {
            Err(why) => {
                self.record(what, Outcome::Absent(format!("{why}{via}")));
                Step::NotHere
            }
            Ok(LegacyAnswer::RedirectAddr(next)) => {
                self.record(
                    what,
                    Outcome::Absent(format!("redirects to the address {next}{via}")),
                );
                Step::Address(next)
            }
            Ok(LegacyAnswer::RedirectUrl(next)) => {
                self.record(what, Outcome::Absent(format!("redirects to {next}{via}")));
                Step::Url(next, method)
            }
            Ok(LegacyAnswer::Ews(urls)) => {
                let mut refused = Vec::new();
                for candidate in urls.in_order() {
                    match v2::location(candidate, self.allow_plaintext) {
                        Ok(ews_url) => {
                            self.record(what, Outcome::Found(format!("{ews_url}{via}")));
                            return Step::Found(LegacyFound {
                                ews_url,
                                method,
                                urls: urls.clone(),
                                address: address.to_owned(),
                            });
                        }
                        Err(why) => refused.push(format!("{candidate}: {why}")),
                    }
                }
                self.record(
                    what,
                    Outcome::Absent(format!("{}{via}", refused.join("; "))),
                );
                Step::NotHere
            }
        }
    }

    /// POSTs `body` to `url` with the credentials, following HTTPS redirects
    /// within `domain` (bounded).
    async fn post(
        &self,
        url: &str,
        body: &str,
        method: LegacyMethod,
        domain: &str,
    ) -> Result<Answer, Outcome> {
        let tls = crate::tls::client_config(&self.cfg.extra_roots)
            .map_err(|e| Outcome::Failed(e.message.clone()))?;
        let mut url = Url::parse(url).map_err(|e| Outcome::Absent(format!("not a URL: {e}")))?;
        let mut redirects = Vec::new();
        loop {
            if url.scheme() != "https" {
                return Err(Outcome::Absent(format!(
                    "{url} is not HTTPS; credentials are not sent there"
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
                Err(_) => self
                    .dns
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
                .tls_backend_preconfigured((*tls).clone())
                .redirect(Policy::none())
                .timeout(self.cfg.timeout)
                .connect_timeout(self.cfg.timeout)
                .resolve_to_addrs(&host, &addrs)
                .user_agent(concat!("mailbridge/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| Outcome::Failed(format!("the HTTP client cannot be set up: {e}")))?;
            let mut request = client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(body.to_owned());
            if method == LegacyMethod::Soap {
                request = request.header("SOAPAction", GET_USER_SETTINGS_ACTION);
            }
            request = match self.credentials {
                AutodiscoverCredentials::Basic { user, password } => {
                    request.basic_auth(user, Some(password.expose()))
                }
                AutodiscoverCredentials::Bearer(token) => request.bearer_auth(token.expose()),
            };
            let response = request
                .send()
                .await
                .map_err(|e| Outcome::Failed(describe(&e, self.cfg.timeout)))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        Outcome::Absent(format!("HTTP {} without a Location", status.as_u16()))
                    })?;
                let next = url
                    .join(location)
                    .map_err(|e| Outcome::Absent(format!("a redirect to `{location}`: {e}")))?;
                if redirects.len() == MAX_LEGACY_REDIRECTS {
                    return Err(Outcome::Absent(format!(
                        "more than {MAX_LEGACY_REDIRECTS} redirects; the last to {next}"
                    )));
                }
                legacy::redirect_allowed(domain, next.as_str()).map_err(Outcome::Absent)?;
                redirects.push(next.to_string());
                url = next;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| Outcome::Failed(describe(&e, self.cfg.timeout)))?;
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
}

/// A final answer, redirects followed.
struct Answer {
    status: u16,
    body: String,
    redirects: Vec<String>,
}

/// A transport failure in words, with its causes.
fn describe(e: &reqwest::Error, timeout: std::time::Duration) -> String {
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
