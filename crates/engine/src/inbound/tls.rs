//! The listener's STARTTLS certificate: a PEM certificate chain and private key
//! read from files, turned into a rustls server configuration.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The server configuration for a PEM certificate chain and its private key (PKCS#8,
/// PKCS#1 or SEC1). The error says which part is wrong, never the key.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    mailbridge_connectors::tls::install_crypto_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the inbound TLS certificate file is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the inbound TLS certificate file holds no CERTIFICATE block".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| "the inbound TLS key file holds no PEM private key".to_owned())?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the inbound TLS certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(config))
}

/// [`server_config`] from two files.
pub fn server_config_from_files(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    server_config(&read(cert_file)?, &read(key_file)?)
}
