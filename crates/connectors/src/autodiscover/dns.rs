//! DNS for autodiscover: SRV records and host addresses, asked of the system's
//! name servers (`/etc/resolv.conf`) or of one given server (tests, split DNS).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use mailbridge_domain::autodiscover::Outcome;
use mailbridge_domain::autodiscover::srv::SrvRecord;

/// A resolver for one discovery.
pub(crate) struct Dns {
    resolver: TokioResolver,
    timeout: Duration,
}

impl Dns {
    /// The system's resolver, or one that asks only `nameserver` (over UDP, with
    /// TCP when an answer is truncated).
    pub(crate) fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<Dns, String> {
        let builder = match nameserver {
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("the system's DNS settings cannot be read: {e}"))?,
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        options.attempts = 1;
        // Each discovery builds its own resolver: a cache would only hide a fix.
        options.cache_size = 0;
        let resolver = builder
            .with_options(options)
            .build()
            .map_err(|e| format!("the DNS resolver cannot be set up: {e}"))?;
        Ok(Dns { resolver, timeout })
    }

    /// The SRV records at `name` (fully qualified, with the final dot).
    pub(crate) async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, Outcome> {
        let lookup = self.bounded(self.resolver.srv_lookup(name)).await?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_utf8(),
                }),
                _ => None,
            })
            .collect())
    }

    /// The addresses of a host.
    pub(crate) async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, Outcome> {
        let lookup = self.bounded(self.resolver.lookup_ip(host)).await?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(Outcome::Absent(format!("{host} has no address")));
        }
        Ok(ips)
    }

    async fn bounded<T>(
        &self,
        lookup: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, Outcome> {
        // The resolver has its own timeout; this one also bounds its retries.
        match tokio::time::timeout(self.timeout * 2, lookup).await {
            Err(_) => Err(Outcome::Failed(format!(
                "no DNS answer within {} s",
                (self.timeout * 2).as_secs_f32()
            ))),
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }
}

/// "No such name" and "no such record" are answers; anything else is not.
fn classify(e: &NetError) -> Outcome {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(no))
            if no.response_code == ResponseCode::NXDomain =>
        {
            Outcome::Absent("no such name".to_owned())
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => Outcome::Absent("no record".to_owned()),
        other => Outcome::Failed(format!("the DNS lookup failed: {other}")),
    }
}
