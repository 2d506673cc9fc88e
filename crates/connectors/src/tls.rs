//! TLS for every connector: rustls with the web PKI roots plus the profile's extra
//! trusted CA certificates, certificate and host name verification always on.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use mailbridge_domain::error_model::SyncError;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::errors::Endpoint;

/// Installs the process-wide rustls crypto provider (aws-lc-rs) unless one is
/// installed already; several crates of the workspace rely on the default.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The client configuration: web PKI roots and `extra_roots` (DER CA certificates).
///
/// # Errors
/// A permanent, profile-wide error when an extra root is not a usable certificate.
pub fn client_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, SyncError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (i, der) in extra_roots.iter().enumerate() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| crate::errors::bad_extra_root(i, &e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::errors::bad_extra_root(0, &e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The DER form of every `CERTIFICATE` block in `pem`, in order, for `extra_roots`
/// (trusted CA certificates are usually handed out as PEM). Other blocks, such as
/// keys, and text around the blocks are skipped.
///
/// # Errors
/// What is wrong, in words: a block that cannot be read, or no certificate at all.
pub fn roots_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::{Error, PemObject as _};
    let mut roots = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| match e {
            Error::MissingSectionEnd { end_marker } => format!(
                "a PEM block has no end line `-----END {}-----`",
                String::from_utf8_lossy(&end_marker)
            ),
            Error::IllegalSectionStart { line } => format!(
                "a PEM block starts with the unreadable line `{}`",
                String::from_utf8_lossy(&line)
            ),
            Error::Base64Decode(e) => format!("a CERTIFICATE block is not valid base64: {e}"),
            other => format!("the PEM text cannot be read: {other}"),
        })?;
        roots.push(cert.to_vec());
    }
    if roots.is_empty() {
        // A DER certificate starts with a SEQUENCE tag; say so rather than "no PEM".
        let hint = if pem.first() == Some(&0x30) {
            " (it looks like DER, which can be used as a trusted certificate as it is)"
        } else {
            ""
        };
        return Err(format!(
            "no certificate found: the text holds no `-----BEGIN CERTIFICATE-----` block{hint}"
        ));
    }
    Ok(roots)
}

/// Runs the TLS handshake over `tcp` for `host`, within `timeout`.
pub(crate) async fn handshake(
    tcp: TcpStream,
    endpoint: &Endpoint,
    extra_roots: &[Vec<u8>],
    timeout: std::time::Duration,
) -> Result<Stream, SyncError> {
    let config = client_config(extra_roots)?;
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|_| {
        endpoint.tls_failed(&format!("`{}` is not a valid server name", endpoint.host))
    })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => Err(endpoint.timed_out("the TLS handshake", timeout)),
        Ok(Err(e)) => Err(endpoint.io(&e)),
        Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
    }
}

/// A connection, in the clear or over TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The negotiated TLS version, for Test Connection.
    pub fn tls_version(&self) -> Option<String> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => tls
                .get_ref()
                .1
                .protocol_version()
                .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1.")),
        }
    }

    pub(crate) fn into_tcp(self) -> Option<TcpStream> {
        match self {
            Stream::Plain(tcp) => Some(tcp),
            Stream::Tls(_) => None,
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_tls() { "Tls" } else { "Plain" };
        write!(f, "Stream::{kind}({:?})", self.tcp().peer_addr().ok())
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for Stream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> (String, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA");
        (cert.pem(), cert.der().to_vec())
    }

    #[test]
    fn every_certificate_block_becomes_der_in_order() {
        let (first_pem, first_der) = ca_pem("first CA");
        let (second_pem, second_der) = ca_pem("second CA");
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        let bundle = format!("# lab CAs\n{first_pem}\n{key}junk between blocks\n{second_pem}");
        let roots = roots_from_pem(bundle.as_bytes()).expect("two certificates");
        assert_eq!(roots, [first_der.clone(), second_der]);
        // Usable as extra roots.
        client_config(&roots).expect("a client configuration");
        assert_eq!(
            roots_from_pem(first_pem.replace('\n', "\r\n").as_bytes()),
            Ok(vec![first_der])
        );
    }

    #[test]
    fn text_without_a_certificate_is_refused_with_the_reason() {
        let (pem, der) = ca_pem("CA");
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        let truncated = &pem[..pem.find("-----END").expect("an end line")];
        let corrupted = pem.replacen("MII", "M*I", 1);
        let cases: [(&[u8], &str); 6] = [
            (b"", "no certificate found"),
            (b"not a certificate at all", "no certificate found"),
            (key.as_bytes(), "no certificate found"),
            (&der, "it looks like DER"),
            (
                truncated.as_bytes(),
                "has no end line `-----END CERTIFICATE-----`",
            ),
            (corrupted.as_bytes(), "not valid base64"),
        ];
        for (input, words) in cases {
            match roots_from_pem(input) {
                Err(e) => assert!(e.contains(words), "{e}"),
                Ok(roots) => panic!("{words}: {} roots", roots.len()),
            }
        }
    }
}
