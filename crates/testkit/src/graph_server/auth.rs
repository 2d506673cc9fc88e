//! Access tokens as Graph checks them: an RS256 JWT signed by the identity provider,
//! for the Graph audience, unexpired; app-only tokens carry their permissions in
//! `roles`, delegated ones in `scp`. [`TestTokens`] signs such tokens for tests
//! that do not run the test identity provider.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, header};
use axum::response::Response;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::{access_denied, unauthorized};

/// How the server checks bearer tokens.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    /// The identity provider's public key (`PUBLIC KEY` or `RSA PUBLIC KEY` PEM).
    pub public_key_pem: String,
    /// The expected `aud` (Graph's base URL, e.g. `https://graph.microsoft.com`).
    pub audience: String,
    /// The expected `iss`, when set.
    pub issuer: Option<String>,
    /// The expected `tid`, when set.
    pub tenant: Option<String>,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    ReadWrite,
    Send,
    /// Any valid token (the `$batch` envelope: each request inside is checked).
    Any,
}

/// The caller a valid token names.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub app_id: String,
    pub tenant: String,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scp: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

/// Checks the `Authorization` header: 401 for a missing or invalid token, 403 when
/// the token lacks the permission.
pub(crate) fn authorize(
    check: &TokenCheck,
    headers: &HeaderMap,
    need: Need,
) -> Result<Caller, Response> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthorized("Access token is empty."));
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or("")
        .trim();
    if token.is_empty() {
        return Err(unauthorized("Access token is empty."));
    }
    let key = DecodingKey::from_rsa_pem(check.public_key_pem.as_bytes()).map_err(|_| {
        unauthorized("Access token validation failure: the signing key is unusable.")
    })?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[check.audience.as_str()]);
    validation.leeway = 0;
    if let Some(iss) = &check.issuer {
        validation.set_issuer(&[iss.as_str()]);
    }
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
                unauthorized("Access token has expired or is not yet valid.")
            }
            ErrorKind::InvalidAudience => {
                unauthorized("Access token validation failure. Invalid audience.")
            }
            ErrorKind::InvalidIssuer => {
                unauthorized("Access token validation failure. Invalid issuer.")
            }
            ErrorKind::InvalidSignature => {
                unauthorized("Access token validation failure. Invalid signature.")
            }
            _ => unauthorized("IDX14100: JWT is not well formed."),
        })?
        .claims;
    let tenant = claims.tid.clone().unwrap_or_default();
    if let Some(expected) = &check.tenant
        && !expected.eq_ignore_ascii_case(&tenant)
    {
        return Err(unauthorized(
            "Access token validation failure. Invalid tenant.",
        ));
    }
    let mut granted: BTreeSet<String> = claims.roles.iter().cloned().collect();
    if let Some(scp) = &claims.scp {
        granted.extend(scp.split_whitespace().map(str::to_owned));
    }
    let has = |p: &str| granted.iter().any(|g| g.eq_ignore_ascii_case(p));
    let allowed = match need {
        Need::Any => true,
        Need::Read => has("Mail.Read") || has("Mail.ReadWrite") || has("Mail.ReadBasic"),
        Need::ReadWrite => has("Mail.ReadWrite"),
        Need::Send => has("Mail.Send"),
    };
    if !allowed {
        return Err(access_denied());
    }
    Ok(Caller {
        app_id: claims.appid.or(claims.azp).unwrap_or_default(),
        tenant,
    })
}

/// A signing key of a test's own and tokens signed with it, in the shape the
/// Microsoft identity platform issues app-only tokens.
pub struct TestTokens {
    private_pem: String,
    public_pem: String,
    /// The `aud` of the tokens and of [`TestTokens::token_check`].
    pub audience: String,
    pub tenant: String,
    pub app_id: String,
}

impl TestTokens {
    /// A new 2048-bit RSA key; `audience` is what the server expects in `aud`.
    ///
    /// # Panics
    /// When the key cannot be generated.
    pub fn new(audience: &str) -> TestTokens {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("an RSA key");
        TestTokens {
            private_pem: key.serialize_pem(),
            public_pem: key.public_key_pem(),
            audience: audience.to_owned(),
            tenant: uuid::Uuid::new_v4().to_string(),
            app_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The check a server trusting this key does (audience and tenant).
    pub fn token_check(&self) -> TokenCheck {
        TokenCheck {
            public_key_pem: self.public_pem.clone(),
            audience: self.audience.clone(),
            issuer: None,
            tenant: Some(self.tenant.clone()),
        }
    }

    /// An app-only token with these application permissions, valid for an hour.
    pub fn app_token(&self, roles: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(&json!({
            "aud": self.audience,
            "iss": format!("https://login.microsoftonline.com/{}/v2.0", self.tenant),
            "tid": self.tenant,
            "appid": self.app_id,
            "roles": roles,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }))
    }

    /// A token that expired a minute ago.
    pub fn expired_token(&self, roles: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(&json!({
            "aud": self.audience, "tid": self.tenant, "appid": self.app_id,
            "roles": roles, "iat": now - 7200, "nbf": now - 7200, "exp": now - 60,
        }))
    }

    /// Any claims, signed with the key (RS256).
    ///
    /// # Panics
    /// When the key cannot sign.
    pub fn sign(&self, claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).expect("the test key");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("a signed token")
    }
}
