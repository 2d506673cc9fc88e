//! Certificate material: a self-signed certificate generated for evaluation, or
//! an uploaded one read from PEM or PKCS#12, with the facts the identity provider
//! and the administrator need (subject, thumbprints, validity, key size). What is
//! wrong with an upload is said field by field, through the domain's rules.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use mailbridge_domain::certificate::{KeyAlgorithm, UploadFacts, validate_upload};
use mailbridge_domain::secret::Secret;
use mailbridge_domain::{FieldError, Validation};
use x509_parser::pem::Pem;
use x509_parser::public_key::PublicKey;

/// A certificate with its private key, ready to store.
#[derive(Debug, Clone)]
pub struct CertificateMaterial {
    pub subject: String,
    /// SHA-1 of the DER, upper-case hex (as Microsoft Entra ID shows it).
    pub thumbprint: String,
    /// SHA-256 of the DER, base64url: the `x5t#S256` of client assertions.
    pub x5t_s256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key_bits: i64,
    pub certificate_pem: String,
    pub certificate_der: Vec<u8>,
    /// The private key as PEM (PKCS#8 when generated or read from PKCS#12).
    pub private_key_pem: Secret,
}

/// The public facts of a certificate read from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    pub thumbprint: String,
    pub x5t_s256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key: KeyAlgorithm,
    /// The RSA public key (PKCS#1 DER) when the key is RSA.
    rsa_public_key: Option<Vec<u8>>,
}

/// The SHA-1 thumbprint in upper-case hex and the SHA-256 one in base64url.
pub fn thumbprints(der: &[u8]) -> (String, String) {
    let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    let hex = sha1
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>();
    let sha256 = digest::digest(&digest::SHA256, der);
    (hex, URL_SAFE_NO_PAD.encode(sha256.as_ref()))
}

/// Wraps DER in PEM armour with the given label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn from_timestamp(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// Reads a certificate's facts from its DER.
pub fn inspect_certificate(der: &[u8]) -> Result<CertificateInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let (thumbprint, x5t_s256) = thumbprints(der);
    let spki = cert.public_key();
    let (key, rsa_public_key) = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => (
            KeyAlgorithm::Rsa {
                bits: i64::try_from(rsa.key_size()).unwrap_or(0),
            },
            Some(spki.subject_public_key.data.to_vec()),
        ),
        Ok(PublicKey::EC(_)) => (KeyAlgorithm::Other("EC".into()), None),
        Ok(_) | Err(_) => (
            KeyAlgorithm::Other(spki.algorithm.algorithm.to_id_string()),
            None,
        ),
    };
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        thumbprint,
        x5t_s256,
        not_before: from_timestamp(cert.validity().not_before.timestamp()),
        not_after: from_timestamp(cert.validity().not_after.timestamp()),
        key,
        rsa_public_key,
    })
}

/// Generates an RSA 2048 key and a self-signed certificate for it, valid from
/// an hour before `now` (clock skew) for `validity_days`.
pub fn generate_self_signed(
    common_name: &str,
    now: DateTime<Utc>,
    validity_days: i64,
) -> Result<CertificateMaterial, String> {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .map_err(|e| format!("RSA key generation failed: {e}"))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let offset = |t: DateTime<Utc>| {
        time::OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|e| format!("invalid validity: {e}"))
    };
    params.not_before = offset(now - Duration::hours(1))?;
    params.not_after = offset(now + Duration::days(validity_days))?;
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| "no randomness for the serial number")?;
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("certificate signing failed: {e}"))?;
    let der = cert.der().to_vec();
    let info = inspect_certificate(&der)?;
    let bits = match info.key {
        KeyAlgorithm::Rsa { bits } => bits,
        KeyAlgorithm::Other(_) => 0,
    };
    Ok(CertificateMaterial {
        subject: info.subject,
        thumbprint: info.thumbprint,
        x5t_s256: info.x5t_s256,
        not_before: info.not_before,
        not_after: info.not_after,
        key_bits: bits,
        certificate_pem: cert.pem(),
        certificate_der: der,
        private_key_pem: Secret::new(key.serialize_pem()),
    })
}

/// A private key read from PEM or PKCS#8 DER.
struct ParsedKey {
    algorithm: KeyAlgorithm,
    /// The RSA public key (PKCS#1 DER), to compare with the certificate's.
    rsa_public_key: Option<Vec<u8>>,
    pem: String,
}

fn read_pkcs8(der: &[u8], field: &str) -> Result<ParsedKey, FieldError> {
    match RsaKeyPair::from_pkcs8(der) {
        Ok(k) => Ok(ParsedKey {
            algorithm: KeyAlgorithm::Rsa {
                bits: i64::try_from(k.public_modulus_len() * 8).unwrap_or(0),
            },
            rsa_public_key: Some(k.public_key().as_ref().to_vec()),
            pem: to_pem("PRIVATE KEY", der),
        }),
        Err(_) => Ok(ParsedKey {
            algorithm: KeyAlgorithm::Other(non_rsa_name(der).ok_or_else(|| {
                FieldError::new(field, "the private key cannot be read as PKCS#8")
            })?),
            rsa_public_key: None,
            pem: to_pem("PRIVATE KEY", der),
        }),
    }
}

/// The name of a key that aws-lc reads but is not RSA (for the message).
fn non_rsa_name(pkcs8: &[u8]) -> Option<String> {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair,
    };
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).is_ok()
        || EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8).is_ok()
    {
        return Some("EC".into());
    }
    Ed25519KeyPair::from_pkcs8(pkcs8)
        .is_ok()
        .then(|| "Ed25519".into())
}

fn read_key_pem(text: &str, field: &str) -> Result<ParsedKey, FieldError> {
    let err = |m: &str| FieldError::new(field, m);
    let pem = Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label.ends_with("PRIVATE KEY"))
        .ok_or_else(|| {
            err("private_key_pem holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
        })?;
    match pem.label.as_str() {
        "PRIVATE KEY" => read_pkcs8(&pem.contents, field),
        "RSA PRIVATE KEY" => {
            let k = RsaKeyPair::from_der(&pem.contents)
                .map_err(|_| err("the RSA private key (PKCS#1) cannot be read"))?;
            Ok(ParsedKey {
                algorithm: KeyAlgorithm::Rsa {
                    bits: i64::try_from(k.public_modulus_len() * 8).unwrap_or(0),
                },
                rsa_public_key: Some(k.public_key().as_ref().to_vec()),
                pem: to_pem("RSA PRIVATE KEY", &pem.contents),
            })
        }
        "EC PRIVATE KEY" => Ok(ParsedKey {
            algorithm: KeyAlgorithm::Other("EC".into()),
            rsa_public_key: None,
            pem: String::new(),
        }),
        "ENCRYPTED PRIVATE KEY" => Err(err(
            "the private key is encrypted; upload it without a password, or upload a PKCS#12 file with its password",
        )),
        other => Err(err(&format!(
            "`{other}` is not a private key format mailbridge reads; use PKCS#8 (BEGIN PRIVATE KEY)"
        ))),
    }
}

fn read_certificate_pem(text: &str, field: &str) -> Result<Vec<u8>, FieldError> {
    let pem = Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label == "CERTIFICATE")
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("{field} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            )
        })?;
    Ok(pem.contents)
}

/// Combines a certificate and a key into material after the domain's checks.
fn combine(
    der: Vec<u8>,
    key: ParsedKey,
    fields: (&'static str, &'static str),
    now: DateTime<Utc>,
) -> Result<CertificateMaterial, Validation> {
    let info = inspect_certificate(&der).map_err(|e| vec![FieldError::new(fields.0, e)])?;
    let facts = UploadFacts {
        certificate_field: fields.0,
        key_field: fields.1,
        certificate_key: info.key.clone(),
        private_key: key.algorithm.clone(),
        key_matches_certificate: info.rsa_public_key.is_some()
            && info.rsa_public_key == key.rsa_public_key,
        not_before: info.not_before,
        not_after: info.not_after,
    };
    let errors = validate_upload(&facts, now);
    if !errors.is_empty() {
        return Err(errors);
    }
    let key_bits = match info.key {
        KeyAlgorithm::Rsa { bits } => bits,
        KeyAlgorithm::Other(_) => 0,
    };
    Ok(CertificateMaterial {
        subject: info.subject,
        thumbprint: info.thumbprint,
        x5t_s256: info.x5t_s256,
        not_before: info.not_before,
        not_after: info.not_after,
        key_bits,
        certificate_pem: to_pem("CERTIFICATE", &der),
        certificate_der: der,
        private_key_pem: Secret::new(key.pem),
    })
}

/// Reads an upload of a PEM certificate and its PEM private key.
pub fn from_pem(
    certificate_pem: &str,
    private_key_pem: &str,
    now: DateTime<Utc>,
) -> Result<CertificateMaterial, Validation> {
    let der = read_certificate_pem(certificate_pem, "certificate_pem");
    let key = read_key_pem(private_key_pem, "private_key_pem");
    match (der, key) {
        (Ok(der), Ok(key)) => combine(der, key, ("certificate_pem", "private_key_pem"), now),
        (der, key) => Err([der.err(), key.err()].into_iter().flatten().collect()),
    }
}

/// Reads an upload of a PKCS#12 (.pfx) file with its password: the first key
/// and the certificate that goes with it.
pub fn from_pkcs12(
    der: &[u8],
    password: &str,
    now: DateTime<Utc>,
) -> Result<CertificateMaterial, Validation> {
    const FIELD: &str = "pkcs12_base64";
    let store = p12_keystore::KeyStore::from_pkcs12(
        der,
        password,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| {
        let message = match e {
            p12_keystore::error::Error::MacError(_) => {
                FieldError::new("pkcs12_password", "the PKCS#12 password is wrong")
            }
            other => FieldError::new(FIELD, format!("the PKCS#12 file cannot be read: {other}")),
        };
        vec![message]
    })?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        vec![FieldError::new(
            FIELD,
            "the PKCS#12 file holds no private key; export the certificate with its private key",
        )]
    })?;
    let cert = chain.certs().first().ok_or_else(|| {
        vec![FieldError::new(
            FIELD,
            "the PKCS#12 file holds a key but no certificate for it",
        )]
    })?;
    let key = read_pkcs8(chain.key().as_der(), FIELD).map_err(|e| vec![e])?;
    combine(cert.as_der().to_vec(), key, (FIELD, FIELD), now)
}

/// A PKCS#12 file (AES-256, HMAC-SHA-256) holding the material's key (PKCS#8)
/// and certificate, protected by `password`.
pub fn to_pkcs12(m: &CertificateMaterial, password: &str) -> Result<Vec<u8>, String> {
    let key = Pem::iter_from_buffer(m.private_key_pem.expose().as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label == "PRIVATE KEY")
        .ok_or("the key is not PKCS#8")?;
    let chain = p12_keystore::PrivateKeyChain::new(
        m.thumbprint.as_str(),
        p12_keystore::PrivateKey::from_der(&key.contents).map_err(|e| e.to_string())?,
        [p12_keystore::Certificate::from_der(&m.certificate_der).map_err(|e| e.to_string())?],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "mailbridge",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    store.writer(password).write().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn a_generated_certificate_has_a_real_validity_and_reads_back() {
        let m = generate_self_signed("mailbridge eval", now(), 365).unwrap();
        assert_eq!(m.subject, "CN=mailbridge eval");
        assert_eq!(m.key_bits, 2048);
        let days = (m.not_after - m.not_before).num_days();
        assert_eq!(days, 365, "{} .. {}", m.not_before, m.not_after);
        assert!(m.not_after.timestamp() < 4_000_000_000, "not the year 4096");
        assert_eq!(m.thumbprint.len(), 40);
        assert!(
            m.thumbprint
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_eq!(m.x5t_s256.len(), 43);
        assert!(
            m.private_key_pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let again = from_pem(&m.certificate_pem, m.private_key_pem.expose(), now()).unwrap();
        assert_eq!(again.thumbprint, m.thumbprint);
        assert_eq!(again.x5t_s256, m.x5t_s256);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = generate_self_signed("a", now(), 30).unwrap();
        let b = generate_self_signed("b", now(), 30).unwrap();
        let errors = from_pem(&a.certificate_pem, b.private_key_pem.expose(), now()).unwrap_err();
        assert_eq!(errors[0].field, "private_key_pem");
        assert!(errors[0].message.contains("does not belong"), "{errors:?}");
    }

    #[test]
    fn garbage_is_named_by_field() {
        let errors = from_pem("hello", "world", now()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["certificate_pem", "private_key_pem"]);
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let m = generate_self_signed("old", now() - Duration::days(40), 30).unwrap();
        let errors = from_pem(&m.certificate_pem, m.private_key_pem.expose(), now()).unwrap_err();
        assert_eq!(errors[0].field, "certificate_pem");
        assert!(errors[0].message.contains("expired"));
    }

    #[test]
    fn pkcs12_round_trips_and_a_wrong_password_is_named() {
        let m = generate_self_signed("pfx", now(), 30).unwrap();
        let pfx = pkcs12(&m, "s3cret");
        let read = from_pkcs12(&pfx, "s3cret", now()).unwrap();
        assert_eq!(read.thumbprint, m.thumbprint);
        assert!(
            read.private_key_pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let errors = from_pkcs12(&pfx, "wrong", now()).unwrap_err();
        assert_eq!(errors[0].field, "pkcs12_password");
    }

    fn pkcs12(m: &CertificateMaterial, password: &str) -> Vec<u8> {
        to_pkcs12(m, password).unwrap()
    }
}
