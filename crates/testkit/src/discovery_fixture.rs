//! [`DiscoveryFixture`]: the DNS and HTTPS servers that autodiscover asks, on
//! loopback. A small DNS responder on UDP answers A, AAAA and SRV queries from
//! configured records (every other name is NXDOMAIN); an HTTPS server with its own
//! test CA serves configured answers (autoconfig XML, Autodiscover JSON,
//! redirects, errors) per host and path. Both log what they were asked.
//!
//! ```no_run
//! # async fn example() {
//! use mailbridge_testkit::{DiscoveryFixture, HttpAnswer};
//! let fixture = DiscoveryFixture::start(&["contoso.test"]).await;
//! fixture.add_srv("_imaps._tcp.contoso.test", 0, 1, 993, "mail.contoso.test");
//! fixture.add_a("autoconfig.contoso.test", [127, 0, 0, 1].into());
//! fixture.set_http("autoconfig.contoso.test", "/mail/config-v1.1.xml", HttpAnswer::xml("<clientConfig/>"));
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};

/// What the HTTPS server answers at one host and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAnswer {
    /// This status with this body and content type.
    Body {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// A 302 to this URL.
    Redirect(String),
}

impl HttpAnswer {
    /// 200 with an XML body (well-formed or not: the fixture does not check).
    pub fn xml(body: impl Into<String>) -> HttpAnswer {
        HttpAnswer::Body {
            status: 200,
            content_type: "application/xml",
            body: body.into(),
        }
    }

    /// A JSON body with a status.
    pub fn json(status: u16, body: impl Into<String>) -> HttpAnswer {
        HttpAnswer::Body {
            status,
            content_type: "application/json",
            body: body.into(),
        }
    }

    /// An empty answer with a status (404, 500, ...).
    pub fn status(status: u16) -> HttpAnswer {
        HttpAnswer::Body {
            status,
            content_type: "text/plain",
            body: String::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    a: BTreeMap<String, Vec<Ipv4Addr>>,
    aaaa: BTreeMap<String, Vec<Ipv6Addr>>,
    srv: BTreeMap<String, Vec<(u16, u16, u16, String)>>,
    http: BTreeMap<(String, String), HttpAnswer>,
    dns_log: Vec<String>,
    http_log: Vec<String>,
}

/// The DNS and HTTPS servers of a discovery test; they stop when it is dropped.
pub struct DiscoveryFixture {
    dns: SocketAddr,
    https: SocketAddr,
    ca_der: Vec<u8>,
    ca_pem: String,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DiscoveryFixture {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DiscoveryFixture {
    /// Starts both servers. The HTTPS certificate is valid for each of `domains`
    /// and every name directly below it (`autoconfig.`, `autodiscover.`, ...).
    ///
    /// # Panics
    /// When loopback sockets cannot be bound or the certificates cannot be made.
    pub async fn start(domains: &[&str]) -> DiscoveryFixture {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let state = Arc::new(Mutex::new(State::default()));
        let udp = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind the DNS socket");
        let dns = udp.local_addr().expect("DNS address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTPS");
        let https = listener.local_addr().expect("HTTPS address");

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mailbridge discovery test CA");
        ca_params.not_before = date_time_ymd(2024, 1, 1);
        ca_params.not_after = date_time_ymd(2040, 1, 1);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA");
        let names: Vec<String> = domains
            .iter()
            .flat_map(|d| [key(d), format!("*.{}", key(d))])
            .collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "discovery fixture");
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let server_key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&server_key, &ca)
            .expect("server certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("TLS server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let tasks = vec![
            tokio::spawn(serve_dns(udp, state.clone())),
            tokio::spawn(serve_https(listener, acceptor, state.clone())),
        ];
        DiscoveryFixture {
            dns,
            https,
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            state,
            tasks,
        }
    }

    /// The DNS server's address (UDP), for the resolver's `nameserver`.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns
    }

    /// The HTTPS server's port: the port that replaces 443 in discovery URLs.
    pub fn https_port(&self) -> u16 {
        self.https.port()
    }

    /// The test CA's certificate in DER, for `extra_roots`.
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca_der.clone()
    }

    /// The test CA's certificate in PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fixture state")
    }

    /// An A record.
    pub fn add_a(&self, name: &str, ip: Ipv4Addr) {
        self.state().a.entry(key(name)).or_default().push(ip);
    }

    /// An AAAA record.
    pub fn add_aaaa(&self, name: &str, ip: Ipv6Addr) {
        self.state().aaaa.entry(key(name)).or_default().push(ip);
    }

    /// An SRV record (`target` `.` says the service is not offered).
    pub fn add_srv(&self, name: &str, priority: u16, weight: u16, port: u16, target: &str) {
        self.state().srv.entry(key(name)).or_default().push((
            priority,
            weight,
            port,
            target.to_owned(),
        ));
    }

    /// Points `host` at the HTTPS server (an A record for 127.0.0.1).
    pub fn serve_host(&self, host: &str) {
        self.add_a(host, Ipv4Addr::LOCALHOST);
    }

    /// What the HTTPS server answers for `host` and `path` (the query string is
    /// not part of the match). Other paths get 404.
    pub fn set_http(&self, host: &str, path: &str, answer: HttpAnswer) {
        self.state()
            .http
            .insert((key(host), path.to_owned()), answer);
    }

    /// The URL of `path` on `host` at this fixture, for redirects.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{}:{}{path}", key(host), self.https.port())
    }

    /// The DNS questions asked so far: `SRV _imaps._tcp.contoso.test`.
    pub fn dns_queries(&self) -> Vec<String> {
        self.state().dns_log.clone()
    }

    /// The HTTPS requests so far: `autoconfig.contoso.test/mail/config-v1.1.xml?...`.
    pub fn http_requests(&self) -> Vec<String> {
        self.state().http_log.clone()
    }
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;

async fn serve_dns(socket: UdpSocket, state: Arc<Mutex<State>>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            return;
        };
        if let Some(reply) = answer_dns(&buf[..n], &state) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

/// Answers one DNS query (RFC 1035 section 4): the question is copied, answers
/// point back to its name, NXDOMAIN for names without any record.
fn answer_dns(query: &[u8], state: &Mutex<State>) -> Option<Vec<u8>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question_end = i + 4;
    let question = query.get(12..question_end)?;
    let name = labels.join(".");

    let mut state = state.lock().ok()?;
    let kind = match qtype {
        TYPE_A => "A",
        TYPE_AAAA => "AAAA",
        TYPE_SRV => "SRV",
        _ => "other",
    };
    state.dns_log.push(format!("{kind} {name}"));
    let exists = state.a.contains_key(&name)
        || state.aaaa.contains_key(&name)
        || state.srv.contains_key(&name);
    let mut answers: Vec<(u16, Vec<u8>)> = Vec::new();
    match qtype {
        TYPE_A => {
            for ip in state.a.get(&name).into_iter().flatten() {
                answers.push((TYPE_A, ip.octets().to_vec()));
            }
        }
        TYPE_AAAA => {
            for ip in state.aaaa.get(&name).into_iter().flatten() {
                answers.push((TYPE_AAAA, ip.octets().to_vec()));
            }
        }
        TYPE_SRV => {
            for (priority, weight, port, target) in state.srv.get(&name).into_iter().flatten() {
                let mut data = Vec::new();
                data.extend_from_slice(&priority.to_be_bytes());
                data.extend_from_slice(&weight.to_be_bytes());
                data.extend_from_slice(&port.to_be_bytes());
                for label in target
                    .trim_end_matches('.')
                    .split('.')
                    .filter(|l| !l.is_empty())
                {
                    data.push(u8::try_from(label.len()).ok()?);
                    data.extend_from_slice(label.as_bytes());
                }
                data.push(0);
                answers.push((TYPE_SRV, data));
            }
        }
        _ => {}
    }
    drop(state);

    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[0..2]);
    // QR, the query's opcode and RD, AA; RA; RCODE 3 (NXDOMAIN) for unknown names.
    let flags_hi = 0x80 | (query[2] & 0x79) | 0x04;
    let flags_lo = 0x80 | if exists { 0 } else { 3 };
    reply.extend_from_slice(&[flags_hi, flags_lo]);
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&u16::try_from(answers.len()).ok()?.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    for (rtype, data) in answers {
        reply.extend_from_slice(&[0xc0, 0x0c]);
        reply.extend_from_slice(&rtype.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes());
        reply.extend_from_slice(&60u32.to_be_bytes());
        reply.extend_from_slice(&u16::try_from(data.len()).ok()?.to_be_bytes());
        reply.extend_from_slice(&data);
    }
    Some(reply)
}

async fn serve_https(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<Mutex<State>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate ends its own connection.
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = answer_http(tls, &state).await;
            }
        });
    }
}

/// Reads one HTTP/1.1 request head and answers it, then closes.
async fn answer_http(
    mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let host = lines
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("host")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let host = key(host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h));
    let path = target.split('?').next().unwrap_or("/").to_owned();
    let answer = {
        let mut s = state.lock().expect("fixture state");
        s.http_log.push(format!("{host}{target}"));
        s.http.get(&(host, path)).cloned()
    }
    .unwrap_or_else(|| HttpAnswer::status(404));
    let response = match answer {
        HttpAnswer::Body {
            status,
            content_type,
            body,
        } => format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            reason(status),
            body.len()
        ),
        HttpAnswer::Redirect(to) => format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn dns_answers() {
        let state = Mutex::new(State::default());
        state.lock().unwrap().srv.insert(
            "_imaps._tcp.contoso.test".into(),
            vec![(0, 1, 993, "mail.contoso.test.".into())],
        );
        state
            .lock()
            .unwrap()
            .a
            .insert("mail.contoso.test".into(), vec![Ipv4Addr::LOCALHOST]);
        // (name, type, RCODE, answers)
        let cases = [
            ("_imaps._tcp.contoso.test", TYPE_SRV, 0, 1),
            ("_IMAPS._tcp.Contoso.test", TYPE_SRV, 0, 1),
            ("mail.contoso.test", TYPE_A, 0, 1),
            ("mail.contoso.test", TYPE_AAAA, 0, 0),
            ("nowhere.test", TYPE_A, 3, 0),
        ];
        for (name, qtype, rcode, count) in cases {
            let reply = answer_dns(&query(name, qtype), &state).unwrap();
            assert_eq!(&reply[0..2], &[0x12, 0x34], "{name}");
            assert_eq!(reply[3] & 0x0f, rcode, "{name}");
            assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), count, "{name}");
        }
        let srv = answer_dns(&query("_imaps._tcp.contoso.test", TYPE_SRV), &state).unwrap();
        assert!(srv.ends_with(b"\x04mail\x07contoso\x04test\x00"));
        assert_eq!(state.lock().unwrap().dns_log.len(), 6);
    }
}
