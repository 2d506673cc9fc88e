//! Where mailbridge may send a request it is told to make (a webhook URL). Loopback
//! and private networks are allowed: receivers and mail servers live there in
//! many deployments. Link-local addresses are not: cloud instance metadata
//! services answer there (169.254.169.254, fd00:ec2::254) and hand out
//! credentials, and no webhook receiver needs one, so a subscription can never
//! make a node fetch them (server-side request forgery).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The AWS instance metadata service's IPv6 address (a unique local address,
/// outside fe80::/10).
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Whether requests to `ip` are refused: link-local (IPv4 169.254.0.0/16, IPv6
/// fe80::/10, and IPv4 ones written as IPv6), the IPv6 metadata address, and the
/// unspecified address (which reaches the local host).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == METADATA_V6
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    v4.is_link_local() || v4.is_unspecified()
}

/// Why a URL's host is refused, when it is an address literal that is.
pub fn forbidden_host(host: &url::Host<&str>) -> Option<String> {
    let ip = match host {
        url::Host::Ipv4(a) => IpAddr::V4(*a),
        url::Host::Ipv6(a) => IpAddr::V6(*a),
        url::Host::Domain(_) => return None,
    };
    is_forbidden(ip).then(|| {
        format!("{ip} is a link-local or unspecified address, where cloud metadata services answer")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_refused() {
        for a in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::",
        ] {
            assert!(is_forbidden(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn loopback_private_and_public_addresses_are_allowed() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.10",
            "172.16.0.5",
            "203.0.113.7",
            "::1",
            "fd00::1",
            "fec0::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_forbidden(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn only_address_literals_are_judged_by_their_text() {
        let url = url::Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        assert!(forbidden_host(&url.host().unwrap()).is_some());
        let url = url::Url::parse("http://[fe80::1]/").unwrap();
        assert!(forbidden_host(&url.host().unwrap()).is_some());
        let url = url::Url::parse("http://metadata.example/").unwrap();
        assert!(forbidden_host(&url.host().unwrap()).is_none());
    }
}
