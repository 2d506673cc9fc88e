//! Autodiscover, the I/O half: asks DNS and HTTPS where a mailbox's servers are,
//! in the order the domain's [`plan`](mailbridge_domain::autodiscover::plan) gives,
//! and records every lookup and its answer for the error message. IMAP/SMTP:
//! Mozilla autoconfig files, then RFC 6186/8314 SRV records. Exchange:
//! Autodiscover v2.

mod dns;
mod http;
mod legacy;

use std::net::SocketAddr;
use std::time::Duration;

use mailbridge_domain::autodiscover::srv::{self, SrvService};
use mailbridge_domain::autodiscover::v2::{self, V2Protocol};
use mailbridge_domain::autodiscover::{
    Attempt, Found, Lookup, Outcome, autoconfig, email_domain, location_unknown, plan,
};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::location::Direction;
use mailbridge_domain::{DiscoverySource, ServerType};

use dns::Dns;

pub use http::MAX_REDIRECTS;
pub use legacy::{AutodiscoverCredentials, LegacyFound, LegacyMethod, discover_exchange_legacy};

/// How autodiscover reaches DNS and HTTPS.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The DNS server to ask; `None` asks the system's (`/etc/resolv.conf`).
    pub nameserver: Option<SocketAddr>,
    /// Replaces 443 in the autoconfig and Autodiscover URLs built from the
    /// address's domain (not in redirects, which carry their own port). For
    /// loopback test fixtures, which cannot listen on 443; never set it in
    /// production.
    pub https_port: Option<u16>,
    /// The bound of each DNS query and of each HTTP request.
    pub timeout: Duration,
    /// Extra trusted CA certificates (DER), as for every connector.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            nameserver: None,
            https_port: None,
            timeout: Duration::from_secs(10),
            extra_roots: Vec::new(),
        }
    }
}

/// What autodiscover found for an IMAP/SMTP mailbox, and every lookup it made.
#[derive(Debug, Clone, Default)]
pub struct ImapSmtpDiscovery {
    pub incoming: Option<Found>,
    pub outgoing: Option<Found>,
    pub attempts: Vec<Attempt>,
}

impl ImapSmtpDiscovery {
    /// Both locations, or the "mailbox location could not be determined" error
    /// naming every lookup.
    ///
    /// # Errors
    /// When either direction was not found.
    pub fn into_locations(self, email: &str) -> Result<(Found, Found), SyncError> {
        match (self.incoming, self.outgoing) {
            (Some(i), Some(o)) => Ok((i, o)),
            _ => Err(location_unknown(email, &self.attempts)),
        }
    }
}

/// Finds the IMAP and SMTP servers of `email`: the domain's autoconfig files,
/// then its SRV records for what is still missing. `allow_plaintext` is the
/// profile's: without it, servers offered only in the clear are refused.
pub async fn discover_imap_smtp(
    email: &str,
    allow_plaintext: bool,
    cfg: &DiscoveryConfig,
) -> ImapSmtpDiscovery {
    let mut out = ImapSmtpDiscovery::default();
    let Some(domain) = email_domain(email) else {
        return out;
    };
    let dns = match Dns::new(cfg.nameserver, cfg.timeout) {
        Ok(d) => d,
        Err(why) => {
            out.attempts.push(Attempt {
                what: "DNS".to_owned(),
                outcome: Outcome::Failed(why),
            });
            return out;
        }
    };
    let mut read_a_file = false;
    for lookup in plan(ServerType::ImapSmtp, email, cfg.https_port) {
        match lookup {
            Lookup::Autoconfig(url) => {
                if read_a_file {
                    continue;
                }
                read_a_file =
                    autoconfig_file(&url, email, allow_plaintext, &dns, cfg, &mut out).await;
            }
            Lookup::Srv(service) => {
                let slot = match service.direction() {
                    Direction::Incoming => &out.incoming,
                    Direction::Outgoing => &out.outgoing,
                };
                if slot.is_some() {
                    continue;
                }
                let (attempt, found) = srv_lookup(service, &domain, &dns).await;
                out.attempts.push(attempt);
                if let Some(found) = found {
                    match service.direction() {
                        Direction::Incoming => out.incoming = Some(found),
                        Direction::Outgoing => out.outgoing = Some(found),
                    }
                }
            }
            Lookup::AutodiscoverV2(_) => {}
        }
        if out.incoming.is_some() && out.outgoing.is_some() {
            break;
        }
    }
    out
}

/// Reads one autoconfig file into the directions still missing; whether a file
/// was there (then the other autoconfig location is not asked).
async fn autoconfig_file(
    url: &str,
    email: &str,
    allow_plaintext: bool,
    dns: &Dns,
    cfg: &DiscoveryConfig,
    out: &mut ImapSmtpDiscovery,
) -> bool {
    let mut record = |outcome| {
        out.attempts.push(Attempt {
            what: format!("GET {url}"),
            outcome,
        })
    };
    let answer = match http::get(url, dns, &cfg.extra_roots, cfg.timeout).await {
        Ok(a) => a,
        Err(outcome) => {
            record(outcome);
            return false;
        }
    };
    if let Some(outcome) = http::status_outcome(&answer) {
        record(outcome);
        return false;
    }
    let entries = match autoconfig::parse(&answer.body) {
        Ok(e) => e,
        Err(why) => {
            record(Outcome::Absent(format!("{why}{}", answer.via())));
            return false;
        }
    };
    let mut said = Vec::new();
    for direction in [Direction::Incoming, Direction::Outgoing] {
        let slot = match direction {
            Direction::Incoming => &mut out.incoming,
            Direction::Outgoing => &mut out.outgoing,
        };
        if slot.is_some() {
            continue;
        }
        match autoconfig::choose(&entries, direction, email, allow_plaintext) {
            Ok(found) => {
                said.push(found.location.clone());
                *slot = Some(found);
            }
            Err(why) => said.push(why),
        }
    }
    let text = format!("{}{}", said.join(" and "), answer.via());
    let found_any = out.incoming.is_some() || out.outgoing.is_some();
    out.attempts.push(Attempt {
        what: format!("GET {url}"),
        outcome: if found_any {
            Outcome::Found(text)
        } else {
            Outcome::Absent(text)
        },
    });
    true
}

async fn srv_lookup(service: SrvService, domain: &str, dns: &Dns) -> (Attempt, Option<Found>) {
    let name = service.query_name(domain);
    let what = format!("SRV {}", name.trim_end_matches('.'));
    let records = match dns.srv(&name).await {
        Ok(r) => r,
        Err(outcome) => return (Attempt { what, outcome }, None),
    };
    if srv::not_offered(&records) {
        let outcome = Outcome::Absent(
            "the domain says it does not offer the service (target `.`)".to_owned(),
        );
        return (Attempt { what, outcome }, None);
    }
    match srv::order(&records, random).first() {
        Some(first) => {
            let location = srv::location(service, first);
            let found = Found {
                location: location.clone(),
                source: DiscoverySource::Srv,
                username: None,
            };
            (
                Attempt {
                    what,
                    outcome: Outcome::Found(location),
                },
                Some(found),
            )
        }
        None => (
            Attempt {
                what,
                outcome: Outcome::Absent("no usable record".to_owned()),
            },
            None,
        ),
    }
}

/// A uniform number in `0..=n` for RFC 2782's weighted choice: the standard
/// library's randomly keyed hasher is random enough to spread load.
fn random(n: u32) -> u32 {
    use std::hash::BuildHasher as _;
    let draw = std::collections::hash_map::RandomState::new().hash_one(n);
    u32::try_from(draw % (u64::from(n) + 1)).unwrap_or(0)
}

/// Finds an Exchange mailbox's endpoint for `protocol` with Autodiscover v2: at
/// `autodiscover.<domain>`, then at the domain (then, for Exchange Online, at
/// Microsoft's endpoint), following redirects. Returns it with every lookup.
///
/// # Errors
/// "mailbox location could not be determined", naming every lookup.
pub async fn discover_exchange(
    server_type: ServerType,
    email: &str,
    protocol: V2Protocol,
    allow_plaintext: bool,
    cfg: &DiscoveryConfig,
) -> Result<(Found, Vec<Attempt>), SyncError> {
    let mut attempts = Vec::new();
    let Some(domain) = email_domain(email) else {
        return Err(location_unknown(email, &attempts));
    };
    let dns = Dns::new(cfg.nameserver, cfg.timeout).map_err(|why| {
        location_unknown(
            email,
            &[Attempt {
                what: "DNS".to_owned(),
                outcome: Outcome::Failed(why),
            }],
        )
    })?;
    for url in v2::urls(server_type, email, &domain, protocol, cfg.https_port) {
        let what = format!("GET {url}");
        let answer = match http::get(&url, &dns, &cfg.extra_roots, cfg.timeout).await {
            Ok(a) => a,
            Err(outcome) => {
                attempts.push(Attempt { what, outcome });
                continue;
            }
        };
        let parsed =
            v2::parse(&answer.body, protocol).and_then(|url| v2::location(&url, allow_plaintext));
        match (http::status_outcome(&answer), parsed) {
            (None, Ok(location)) => {
                attempts.push(Attempt {
                    what,
                    outcome: Outcome::Found(format!("{location}{}", answer.via())),
                });
                let found = Found {
                    location,
                    source: DiscoverySource::AutodiscoverV2,
                    username: None,
                };
                return Ok((found, attempts));
            }
            // Exchange explains a refusal in the JSON body: keep its words.
            (Some(Outcome::Absent(status)), Err(why)) if why.starts_with("Exchange answered") => {
                attempts.push(Attempt {
                    what,
                    outcome: Outcome::Absent(format!("{status}: {why}")),
                });
            }
            (Some(outcome), _) => attempts.push(Attempt { what, outcome }),
            (None, Err(why)) => attempts.push(Attempt {
                what,
                outcome: Outcome::Absent(format!("{why}{}", answer.via())),
            }),
        }
    }
    Err(location_unknown(email, &attempts))
}
