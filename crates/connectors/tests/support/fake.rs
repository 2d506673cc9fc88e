//! Scripted line servers on loopback, in the clear or over TLS with certificates
//! from a test CA made with rcgen: for what the real servers cannot show (TLS,
//! a refused recipient).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Vec<u8>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mailbridge test CA");
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let key = KeyPair::generate().expect("key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }

    /// The CA certificate in DER, for `extra_roots`.
    pub fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// The CA certificate in PEM, as administrators hand it out.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name`, valid from 2024 to 2040 unless `expired`
    /// (then 2020 to 2021).
    pub fn server_cert(&self, name: &str, expired: bool) -> ServerCert {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        } else {
            params.not_before = date_time_ymd(2024, 1, 1);
            params.not_after = date_time_ymd(2040, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        ServerCert {
            chain: vec![cert.der().clone(), self.issuer.der().clone()],
            key: key.serialize_der(),
        }
    }
}

/// A TLS server configuration for `cert`.
pub fn acceptor(cert: &ServerCert) -> tokio_rustls::TlsAcceptor {
    mailbridge_connectors::tls::install_crypto_provider();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone()));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// What the scripted server says: the greeting, then the replies to each line.
pub trait Script: Send + 'static {
    fn greeting(&self) -> String;
    /// The lines to send back after `line` (without its CRLF); `None` closes.
    fn reply(&mut self, line: &str) -> Option<Vec<String>>;
}

/// Serves connections with a fresh `script()` each, over TLS when `cert` is given.
/// Handshake failures (a client refusing the certificate) end that connection.
pub async fn serve<S: Script>(
    cert: Option<ServerCert>,
    script: impl Fn() -> S + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = cert.as_ref().map(acceptor);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let script = script();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            converse(tls, script).await;
                        }
                    }
                    None => converse(tcp, script).await,
                }
            });
        }
    });
    addr
}

async fn converse<T: AsyncRead + AsyncWrite + Unpin>(stream: T, mut script: impl Script) {
    let mut reader = BufReader::new(stream);
    let greeting = format!("{}\r\n", script.greeting());
    if reader
        .get_mut()
        .write_all(greeting.as_bytes())
        .await
        .is_err()
    {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(replies) = script.reply(line.trim_end_matches(['\r', '\n'])) else {
            return;
        };
        for reply in replies {
            let reply = format!("{reply}\r\n");
            if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// A minimal IMAP server: AUTHENTICATE PLAIN accepts anyone, CAPABILITY lists
/// IDLE and MOVE, every other command is OK.
#[derive(Default)]
pub struct FakeImap {
    authenticating: Option<String>,
}

impl Script for FakeImap {
    fn greeting(&self) -> String {
        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake IMAP ready".to_owned()
    }

    fn reply(&mut self, line: &str) -> Option<Vec<String>> {
        if let Some(tag) = self.authenticating.take() {
            return Some(vec![format!("{tag} OK logged in")]);
        }
        let (tag, command) = line.split_once(' ')?;
        let command = command.to_ascii_uppercase();
        if command.starts_with("AUTHENTICATE PLAIN") {
            self.authenticating = Some(tag.to_owned());
            return Some(vec!["+ ".to_owned()]);
        }
        if command == "CAPABILITY" {
            return Some(vec![
                "* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS".to_owned(),
                format!("{tag} OK done"),
            ]);
        }
        if command == "LOGOUT" {
            return Some(vec!["* BYE bye".to_owned(), format!("{tag} OK done")]);
        }
        Some(vec![format!("{tag} OK done")])
    }
}

/// A minimal SMTP server: AUTH PLAIN accepts anyone; RCPT to an address starting
/// with `refused` gets 550, with `later` 451; the message is accepted.
#[derive(Default)]
pub struct FakeSmtp {
    in_data: bool,
}

impl Script for FakeSmtp {
    fn greeting(&self) -> String {
        "220 fake.example ESMTP".to_owned()
    }

    fn reply(&mut self, line: &str) -> Option<Vec<String>> {
        if self.in_data {
            if line == "." {
                self.in_data = false;
                return Some(vec!["250 2.0.0 queued".to_owned()]);
            }
            return Some(vec![]);
        }
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            return Some(vec![
                "250-fake.example".to_owned(),
                "250-8BITMIME".to_owned(),
                "250 AUTH PLAIN LOGIN".to_owned(),
            ]);
        } else if upper.starts_with("AUTH PLAIN") {
            "235 2.7.0 Authentication successful"
        } else if upper.starts_with("RCPT TO:<REFUSED") {
            "550 5.1.1 No such user here"
        } else if upper.starts_with("RCPT TO:<LATER") {
            "451 4.7.1 Greylisted, try again later"
        } else if upper == "DATA" {
            self.in_data = true;
            "354 go ahead"
        } else if upper == "QUIT" {
            return Some(vec!["221 bye".to_owned()]);
        } else {
            "250 2.0.0 OK"
        };
        Some(vec![reply.to_owned()])
    }
}
