//! App-only access tokens: OAuth 2.0 client credentials against the Microsoft
//! identity platform's v2.0 token endpoint, with a certificate (a signed client
//! assertion) or a client secret. Tokens are cached per (authority, tenant,
//! client, scope) and replaced ahead of their expiry; a failure is one of the
//! domain's "Failed Authentication" causes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use mailbridge_domain::identity::{
    AadErrorResponse, AuthFailure, RequestContext, classify_token_error, missing_roles,
    token_refresh_due,
};
use mailbridge_domain::secret::Secret;
use x509_parser::pem::Pem;

use super::assertion::{AssertionClaims, sign_assertion};
use super::material::inspect_certificate;

/// The RFC 7523 client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A certificate that signs client assertions, with its key.
#[derive(Clone)]
pub struct CertificateCredential {
    /// SHA-1, upper-case hex: named in messages, as Entra ID shows it.
    pub thumbprint: String,
    /// SHA-256, base64url: the `x5t#S256` header.
    pub x5t_s256: String,
    pub not_after: DateTime<Utc>,
    private_key_pem: Secret,
}

impl std::fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("thumbprint", &self.thumbprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateCredential {
    /// Reads the certificate (PEM) and takes its key (PEM); an unreadable
    /// certificate is the "unreadable" cause.
    pub fn from_pem(
        certificate_pem: &str,
        private_key_pem: Secret,
    ) -> Result<CertificateCredential, AuthFailure> {
        let unreadable = |detail: String| AuthFailure::CertificateUnreadable { detail };
        let pem = Pem::iter_from_buffer(certificate_pem.as_bytes())
            .filter_map(Result::ok)
            .find(|p| p.label == "CERTIFICATE")
            .ok_or_else(|| unreadable("the certificate is not PEM".into()))?;
        let info = inspect_certificate(&pem.contents).map_err(unreadable)?;
        Ok(CertificateCredential {
            thumbprint: info.thumbprint,
            x5t_s256: info.x5t_s256,
            not_after: info.not_after,
            private_key_pem,
        })
    }
}

/// What the application proves itself with.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    Certificate(CertificateCredential),
    Secret(Secret),
}

/// One kind of token: for which application, in which tenant, for what.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The token service, e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority_url: String,
    /// The directory (tenant) ID.
    pub tenant: String,
    /// The application (client) ID.
    pub client_id: String,
    /// E.g. `https://graph.microsoft.com/.default`.
    pub scope: String,
    pub credentials: ClientCredentials,
    /// Application permissions the token must carry in `roles` (none: not checked).
    pub required_roles: Vec<String>,
}

impl TokenRequest {
    /// A request for Microsoft Graph at `graph_url` with the application permissions
    /// mailbridge needs.
    pub fn for_graph(
        authority_url: &str,
        tenant: &str,
        client_id: &str,
        graph_url: &str,
        credentials: ClientCredentials,
    ) -> TokenRequest {
        TokenRequest {
            authority_url: authority_url.trim_end_matches('/').to_owned(),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            scope: format!("{}/.default", graph_url.trim_end_matches('/')),
            credentials,
            required_roles: mailbridge_domain::identity::GRAPH_ROLES
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
        }
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`: also the assertion's audience.
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_url.trim_end_matches('/'),
            self.tenant
        )
    }

    fn key(&self) -> CacheKey {
        (
            self.authority_url.clone(),
            self.tenant.clone(),
            self.client_id.clone(),
            self.scope.clone(),
        )
    }

    fn context(&self) -> RequestContext<'_> {
        RequestContext {
            tenant: &self.tenant,
            client_id: &self.client_id,
            thumbprint: match &self.credentials {
                ClientCredentials::Certificate(c) => Some(&c.thumbprint),
                ClientCredentials::Secret(_) => None,
            },
        }
    }
}

/// An access token and its lifetime.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer token; its `Debug` is redacted.
    pub token: Secret,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

type CacheKey = (String, String, String, String);
type Slot = Arc<tokio::sync::Mutex<Option<AccessToken>>>;
type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Hands out app-only tokens, one request per token lifetime per kind of token.
/// Cheap to share: clone the `Arc` it lives in.
pub struct TokenSource {
    http: reqwest::Client,
    slots: Mutex<HashMap<CacheKey, Slot>>,
    clock: Clock,
    requests: AtomicU64,
}

impl TokenSource {
    /// A source whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> Result<TokenSource, AuthFailure> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mailbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AuthFailure::Unavailable {
                detail: format!("the HTTP client cannot start: {e}"),
                retry_after: None,
            })?;
        Ok(TokenSource {
            http,
            slots: Mutex::default(),
            clock: Arc::new(Utc::now),
            requests: AtomicU64::new(0),
        })
    }

    /// The same source reading the time from `clock` (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many token requests this source sent.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A valid token for `req`: the cached one unless it is due for refresh.
    pub async fn token(&self, req: &TokenRequest) -> Result<AccessToken, AuthFailure> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(req.key()).or_default().clone()
        };
        // One request at a time per kind of token: callers that wait get the new one.
        let mut cached = slot.lock().await;
        let now = (self.clock)();
        if let Some(t) = cached.as_ref()
            && !token_refresh_due(t.issued_at, t.expires_at, now)
        {
            return Ok(t.clone());
        }
        let token = self.request(req, now).await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Drops the cached token for `req` (e.g. after Graph refused it).
    pub fn invalidate(&self, req: &TokenRequest) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(&req.key());
    }

    async fn request(
        &self,
        req: &TokenRequest,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, AuthFailure> {
        let endpoint = req.token_endpoint();
        let body = form_body(req, &endpoint, now)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| AuthFailure::Unavailable {
                detail: format!("{endpoint}: {}", error_chain(&e)),
                retry_after: None,
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .text()
            .await
            .map_err(|e| AuthFailure::Unavailable {
                detail: format!("{endpoint}: the answer was cut: {e}"),
                retry_after: None,
            })?;
        if !(200..300).contains(&status) {
            let answer: AadErrorResponse =
                serde_json::from_str(&body).unwrap_or_else(|_| AadErrorResponse {
                    error: body.chars().take(200).collect(),
                    ..Default::default()
                });
            return Err(classify_token_error(
                status,
                &answer,
                retry_after,
                &req.context(),
            ));
        }
        let token = read_token(&body, now).ok_or_else(|| AuthFailure::Rejected {
            code: None,
            description: "the token endpoint answered without an access_token".into(),
        })?;
        if !req.required_roles.is_empty()
            && let Some(granted) = token_roles(token.token.expose())
        {
            let missing = missing_roles(&req.required_roles, &granted);
            if !missing.is_empty() {
                return Err(AuthFailure::NoAdminConsent {
                    missing_roles: missing,
                });
            }
        }
        Ok(token)
    }
}

/// The form of a token request; a certificate is checked for expiry first, since
/// the identity provider would only say that the assertion is invalid.
fn form_body(
    req: &TokenRequest,
    endpoint: &str,
    now: DateTime<Utc>,
) -> Result<String, AuthFailure> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &req.client_id)
        .append_pair("scope", &req.scope);
    match &req.credentials {
        ClientCredentials::Certificate(c) => {
            if c.not_after <= now {
                return Err(AuthFailure::CertificateExpired {
                    thumbprint: c.thumbprint.clone(),
                    not_after: c.not_after,
                });
            }
            let claims = AssertionClaims::new(&req.client_id, endpoint, now);
            let jwt = sign_assertion(&claims, c.private_key_pem.expose(), &c.x5t_s256)?;
            form.append_pair("client_assertion_type", JWT_BEARER)
                .append_pair("client_assertion", &jwt);
        }
        ClientCredentials::Secret(s) => {
            form.append_pair("client_secret", s.expose());
        }
    }
    Ok(form.finish())
}

/// An error and its sources, on one line (reqwest hides the cause in them).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The token and its lifetime from a successful answer (`expires_in` is a
/// number, or a string on some services).
fn read_token(body: &str, now: DateTime<Utc>) -> Option<AccessToken> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let token = v.get("access_token")?.as_str()?.to_owned();
    let expires_in = match v.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    Some(AccessToken {
        token: Secret::new(token),
        issued_at: now,
        expires_at: now + chrono::Duration::seconds(expires_in),
    })
}

/// The `roles` of a token that is a JWT; `None` when it is opaque (then the
/// permissions are not checked here, and Graph refuses what is missing).
fn token_roles(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(
        v.get("roles")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers hold tokens across tasks: the future must be `Send`.
    #[allow(dead_code)]
    fn token_futures_are_send(source: &TokenSource, req: &TokenRequest) {
        fn send<T: Send>(_: T) {}
        send(source.token(req));
    }

    #[test]
    fn the_endpoint_and_scope_follow_the_authority_and_graph() {
        let r = TokenRequest::for_graph(
            "https://login.microsoftonline.us/",
            "tenant",
            "app",
            "https://graph.microsoft.us/",
            ClientCredentials::Secret(Secret::new("s")),
        );
        assert_eq!(
            r.token_endpoint(),
            "https://login.microsoftonline.us/tenant/oauth2/v2.0/token"
        );
        assert_eq!(r.scope, "https://graph.microsoft.us/.default");
        assert_eq!(r.required_roles.len(), 5);
    }

    #[test]
    fn answers_are_read_with_either_form_of_expires_in() {
        let now = Utc::now();
        let t = read_token(r#"{"access_token":"a","expires_in":3599}"#, now).unwrap();
        assert_eq!((t.expires_at - now).num_seconds(), 3599);
        let t = read_token(r#"{"access_token":"a","expires_in":"60"}"#, now).unwrap();
        assert_eq!((t.expires_at - now).num_seconds(), 60);
        assert!(read_token(r#"{"token_type":"Bearer"}"#, now).is_none());
    }

    #[test]
    fn roles_are_read_from_jwt_tokens_only() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"roles":["Mail.Send"]}"#);
        assert_eq!(
            token_roles(&format!("h.{payload}.s")),
            Some(vec!["Mail.Send".to_owned()])
        );
        let none = URL_SAFE_NO_PAD.encode(br#"{"aud":"x"}"#);
        assert_eq!(token_roles(&format!("h.{none}.s")), Some(vec![]));
        assert_eq!(token_roles("opaque"), None);
    }
}
