//! The client assertion of RFC 7523 as the Microsoft identity platform takes it:
//! a JWT signed RS256 with the certificate's key, `x5t#S256` naming the
//! certificate, `aud` the token endpoint, `iss` = `sub` = the application ID, a
//! short `exp` and a new `jti` each time (the identity provider refuses a replay).

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mailbridge_domain::identity::AuthFailure;
use serde::{Deserialize, Serialize};

/// How long an assertion is valid: it is used at once, so a few minutes suffice.
pub const ASSERTION_LIFETIME: Duration = Duration::minutes(10);

/// The claims of a client assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The token endpoint, e.g. `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub aud: String,
    /// The application (client) ID.
    pub iss: String,
    /// The application (client) ID again.
    pub sub: String,
    /// A new UUID for each assertion.
    pub jti: String,
    pub nbf: i64,
    pub iat: i64,
    pub exp: i64,
}

impl AssertionClaims {
    /// The claims for one token request made at `now`.
    pub fn new(client_id: &str, token_endpoint: &str, now: DateTime<Utc>) -> AssertionClaims {
        AssertionClaims {
            aud: token_endpoint.to_owned(),
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            exp: (now + ASSERTION_LIFETIME).timestamp(),
        }
    }
}

/// Signs the claims with the certificate's private key (PEM, PKCS#8 or PKCS#1),
/// naming the certificate by its SHA-256 thumbprint.
pub fn sign_assertion(
    claims: &AssertionClaims,
    private_key_pem: &str,
    x5t_s256: &str,
) -> Result<String, AuthFailure> {
    let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|e| {
        AuthFailure::CertificateUnreadable {
            detail: format!("the private key is not an RSA key in PEM: {e}"),
        }
    })?;
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    header.x5t_s256 = Some(x5t_s256.to_owned());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| AuthFailure::CertificateUnreadable {
        detail: format!("the private key cannot sign: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::material::generate_self_signed;

    #[test]
    fn claims_follow_rfc_7523_and_each_assertion_is_unique() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let endpoint = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
        let a = AssertionClaims::new("app", endpoint, now);
        let b = AssertionClaims::new("app", endpoint, now);
        assert_eq!(a.aud, endpoint);
        assert_eq!((a.iss.as_str(), a.sub.as_str()), ("app", "app"));
        assert_eq!((a.nbf, a.iat), (now.timestamp(), now.timestamp()));
        assert_eq!(a.exp - a.iat, 600);
        assert_ne!(a.jti, b.jti);
        assert_eq!(uuid::Uuid::parse_str(&a.jti).unwrap().get_version_num(), 4);
    }

    #[test]
    fn the_signature_verifies_with_the_certificate_and_names_it() {
        let m = generate_self_signed("sign", Utc::now(), 30).unwrap();
        let claims = AssertionClaims::new("app", "https://idp/t/oauth2/v2.0/token", Utc::now());
        let jwt = sign_assertion(&claims, m.private_key_pem.expose(), &m.x5t_s256).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.x5t_s256.as_deref(), Some(m.x5t_s256.as_str()));
        let (_, cert) = x509_parser::parse_x509_certificate(&m.certificate_der).unwrap();
        let key = jsonwebtoken::DecodingKey::from_rsa_der(
            cert.public_key().subject_public_key.data.as_ref(),
        );
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&["https://idp/t/oauth2/v2.0/token"]);
        let read = jsonwebtoken::decode::<AssertionClaims>(&jwt, &key, &v).unwrap();
        assert_eq!(read.claims, claims);
    }

    #[test]
    fn an_unreadable_key_is_said_so() {
        let claims = AssertionClaims::new("app", "https://idp/t", Utc::now());
        let e = sign_assertion(
            &claims,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "x",
        )
        .unwrap_err();
        assert!(
            matches!(e, AuthFailure::CertificateUnreadable { .. }),
            "{e:?}"
        );
    }
}
