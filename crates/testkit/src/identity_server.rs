//! A test identity provider in the shape of the Microsoft identity platform's
//! v2.0 token endpoint, on 127.0.0.1, for the client credentials grant: tenants,
//! app registrations with certificates and client secrets, admin consent.
//!
//! `POST /{tenant}/oauth2/v2.0/token` checks what Microsoft Entra ID checks and
//! answers its error shape (`error`, `error_description` starting `AADSTSnnnn:`,
//! `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`): the
//! tenant (AADSTS900023, 90002), the application (700016, 7000112), the scope
//! (`/.default`, 1002012), a client assertion's RS256 signature against the
//! registered certificate found by `x5t#S256` or `x5t` (700027, also for a
//! registered certificate past its end date), `iss` = `sub` = the client (700021),
//! `aud` = this token endpoint (700023), `exp`/`nbf` with 5 minutes of skew
//! (700024), a `jti` used once (50013), or a client secret (7000215, 7000222).
//! A token is an RS256 JWT signed by the provider's own key with `aud` (the
//! scope's resource), `iss`, `tid`, `appid`, `roles` (only after admin consent, as
//! Entra ID issues app-only tokens), `iat`, `nbf`, `exp`.
//!
//! A Graph test server trusts it with [`TestIdentityProvider::public_key_pem`] and
//! [`TestIdentityProvider::issuer`], or checks tokens with
//! [`TestIdentityProvider::verify_access_token`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_lc_rs::digest;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The assertion type of RFC 7523.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The clock skew Entra ID allows on assertions.
const SKEW_SECONDS: i64 = 300;

/// An application registered in a tenant.
#[derive(Debug, Clone)]
pub struct AppRegistration {
    pub app_id: String,
    /// Certificates (DER) with the end date of their key credential.
    certificates: Vec<(Vec<u8>, DateTime<Utc>)>,
    /// Client secrets with their expiry.
    secrets: Vec<(String, DateTime<Utc>)>,
    /// Whether an administrator granted the application permissions.
    pub admin_consent: bool,
    /// The application permissions configured (granted only with consent).
    pub roles: Vec<String>,
    pub enabled: bool,
}

impl AppRegistration {
    /// An enabled application with admin consent to the Graph permissions mailbridge uses.
    pub fn new(app_id: &str) -> AppRegistration {
        AppRegistration {
            app_id: app_id.to_owned(),
            certificates: Vec::new(),
            secrets: Vec::new(),
            admin_consent: true,
            roles: [
                "Mail.ReadWrite",
                "Mail.Send",
                "Calendars.ReadWrite",
                "Contacts.ReadWrite",
                "Tasks.ReadWrite.All",
            ]
            .map(str::to_owned)
            .to_vec(),
            enabled: true,
        }
    }

    /// Registers a certificate (DER), its key credential ending when it does.
    ///
    /// # Panics
    /// When `der` is not a certificate.
    pub fn with_certificate_der(mut self, der: &[u8]) -> AppRegistration {
        let (_, cert) = x509_parser::parse_x509_certificate(der).expect("a DER certificate");
        let end =
            DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0).unwrap_or_default();
        self.certificates.push((der.to_vec(), end));
        self
    }

    /// Registers a certificate given as PEM.
    ///
    /// # Panics
    /// When `pem` holds no certificate.
    pub fn with_certificate_pem(self, pem: &str) -> AppRegistration {
        let block = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
            .filter_map(Result::ok)
            .find(|p| p.label == "CERTIFICATE")
            .expect("a PEM certificate");
        self.with_certificate_der(&block.contents)
    }

    /// Adds a client secret valid until `expires`.
    pub fn with_secret(mut self, secret: &str, expires: DateTime<Utc>) -> AppRegistration {
        self.secrets.push((secret.to_owned(), expires));
        self
    }

    /// Without admin consent: tokens are issued without `roles`.
    pub fn without_consent(mut self) -> AppRegistration {
        self.admin_consent = false;
        self
    }

    /// Only these application permissions.
    pub fn with_roles(mut self, roles: &[&str]) -> AppRegistration {
        self.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    /// Disabled in the tenant.
    pub fn disabled(mut self) -> AppRegistration {
        self.enabled = false;
        self
    }
}

/// The claims of an access token this provider issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub aud: String,
    pub iss: String,
    pub tid: String,
    pub appid: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

#[derive(Default)]
struct Provider {
    /// Tenant id → its applications by app id.
    tenants: BTreeMap<String, BTreeMap<String, AppRegistration>>,
    /// Every `jti` accepted so far.
    used_jtis: BTreeSet<String>,
    token_lifetime: Option<Duration>,
    /// Added to the provider's clock (to simulate a client's clock skew).
    clock_offset_seconds: i64,
    /// The last form accepted, to replay it in tests.
    last_accepted: Option<HashMap<String, String>>,
    /// Every error answered, by AADSTS code.
    errors: Vec<u32>,
}

struct Shared {
    state: Mutex<Provider>,
    origin: String,
    signing_key: EncodingKey,
    public_key_pem: String,
    requests: AtomicU64,
    issued: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Provider> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The test identity provider; stops when dropped.
pub struct TestIdentityProvider {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestIdentityProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIdentityProvider {
    /// Starts the provider on 127.0.0.1 with a new RSA 2048 signing key.
    ///
    /// # Panics
    /// When no port can be bound or no key generated.
    pub async fn start() -> TestIdentityProvider {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding 127.0.0.1:0 for the test identity provider");
        let addr = listener.local_addr().expect("the bound address");
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .expect("an RSA signing key");
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            origin: format!("http://{addr}"),
            signing_key: EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes())
                .expect("the signing key as PEM"),
            public_key_pem: key.public_key_pem(),
            requests: AtomicU64::new(0),
            issued: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestIdentityProvider { shared, task }
    }

    /// The authority URL to configure: `http://127.0.0.1:PORT`.
    pub fn authority_url(&self) -> String {
        self.shared.origin.clone()
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.shared.origin)
    }

    /// The `iss` of the tokens issued for `tenant`: `{authority}/{tenant}/v2.0`.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.shared.origin)
    }

    /// The public key that verifies issued tokens (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> String {
        self.shared.public_key_pem.clone()
    }

    /// Verifies a token as a resource would: signature, `aud` = `audience`,
    /// `iss` of its tenant, unexpired.
    pub fn verify_access_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<AccessTokenClaims, String> {
        let key = DecodingKey::from_rsa_pem(self.shared.public_key_pem.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[audience]);
        v.leeway = 0;
        let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &v)
            .map_err(|e| e.to_string())?
            .claims;
        if claims.iss != self.issuer(&claims.tid) {
            return Err(format!("unexpected issuer {}", claims.iss));
        }
        Ok(claims)
    }

    /// What a Graph test server checks to trust this provider's tokens for
    /// `tenant`: its key, `iss`, `tid`, and `aud` = `graph_url` (the resource the
    /// token client asks for with `{graph_url}/.default`).
    pub fn graph_token_check(
        &self,
        tenant: &str,
        graph_url: &str,
    ) -> crate::graph_server::TokenCheck {
        crate::graph_server::TokenCheck {
            public_key_pem: self.public_key_pem(),
            audience: graph_url.trim_end_matches('/').to_owned(),
            issuer: Some(self.issuer(tenant)),
            tenant: Some(tenant.to_owned()),
        }
    }

    /// Adds a tenant with a new id; returns it.
    pub fn add_tenant(&self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.shared
            .lock()
            .tenants
            .insert(id.clone(), BTreeMap::new());
        id
    }

    /// Registers (or replaces) an application in a tenant.
    ///
    /// # Panics
    /// When the tenant was not added.
    pub fn register_app(&self, tenant: &str, app: AppRegistration) {
        self.shared
            .lock()
            .tenants
            .get_mut(tenant)
            .expect("a tenant added with add_tenant")
            .insert(app.app_id.clone(), app);
    }

    /// How long issued tokens last (default an hour).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token_lifetime = Some(lifetime);
    }

    /// Moves the provider's clock (a positive offset: the client's clock is behind).
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        self.shared.lock().clock_offset_seconds = offset.num_seconds();
    }

    /// Token requests received.
    pub fn token_requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Tokens issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.issued.load(Ordering::Relaxed)
    }

    /// The AADSTS codes answered so far, in order.
    pub fn errors_answered(&self) -> Vec<u32> {
        self.shared.lock().errors.clone()
    }

    /// The `jti`s of the assertions accepted so far.
    pub fn accepted_jtis(&self) -> BTreeSet<String> {
        self.shared.lock().used_jtis.clone()
    }

    /// Posts the last accepted request again, as an attacker replaying a
    /// captured assertion would; returns the status and the answer.
    ///
    /// # Panics
    /// When nothing was accepted yet or the provider does not answer.
    pub async fn replay_last_request(&self, tenant: &str) -> (u16, Value) {
        let form = self
            .shared
            .lock()
            .last_accepted
            .clone()
            .expect("an accepted request to replay");
        let response = reqwest::Client::new()
            .post(self.token_endpoint(tenant))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form.iter()
                    .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
            .send()
            .await
            .expect("the provider answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An AAD error answer.
struct AadError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    text: String,
}

fn aad(status: StatusCode, error: &'static str, code: u32, text: impl Into<String>) -> AadError {
    AadError {
        status,
        error,
        code,
        text: text.into(),
    }
}

impl AadError {
    fn into_response(self, origin: &str) -> Response {
        let now = Utc::now();
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
                self.code, self.text
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("{origin}/error?code={}", self.code),
        });
        (self.status, axum::Json(body)).into_response()
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    match issue(&shared, &tenant, &form) {
        Ok(body) => {
            shared.issued.fetch_add(1, Ordering::Relaxed);
            shared.lock().last_accepted = Some(form);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            shared.lock().errors.push(e.code);
            e.into_response(&shared.origin)
        }
    }
}

fn is_tenant_identifier(t: &str) -> bool {
    uuid::Uuid::parse_str(t).is_ok()
        || (t.contains('.')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        || ["common", "organizations", "consumers"].contains(&t)
}

fn issue(shared: &Shared, tenant: &str, form: &HashMap<String, String>) -> Result<Value, AadError> {
    use StatusCode as S;
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    if param("grant_type") != Some("client_credentials") {
        return Err(aad(
            S::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ));
    }
    if !is_tenant_identifier(tenant) {
        return Err(aad(
            S::BAD_REQUEST,
            "invalid_request",
            900023,
            format!(
                "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."
            ),
        ));
    }
    let mut st = shared.lock();
    let now = Utc::now().timestamp() + st.clock_offset_seconds;
    let Some(apps) = st.tenants.get(tenant) else {
        return Err(aad(
            S::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    };
    let Some(client_id) = param("client_id") else {
        return Err(aad(
            S::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    let Some(app) = apps.get(client_id).cloned() else {
        return Err(aad(
            S::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    };
    if !app.enabled {
        return Err(aad(
            S::BAD_REQUEST,
            "unauthorized_client",
            7000112,
            format!("Application '{client_id}' is disabled."),
        ));
    }
    let scope = param("scope").unwrap_or_default();
    let Some(resource) = scope.strip_suffix("/.default").filter(|r| !r.is_empty()) else {
        return Err(aad(
            S::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", shared.origin);
    match (param("client_assertion"), param("client_secret")) {
        (Some(assertion), _) => {
            if param("client_assertion_type") != Some(JWT_BEARER) {
                return Err(aad(
                    S::BAD_REQUEST,
                    "invalid_request",
                    50027,
                    "JWT token is invalid or malformed: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                ));
            }
            let jti = check_assertion(assertion, &app, client_id, &endpoint, now, &st.used_jtis)?;
            st.used_jtis.insert(jti);
        }
        (None, Some(secret)) => {
            let Some((_, expires)) = app.secrets.iter().find(|(s, _)| s == secret) else {
                return Err(aad(
                    S::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                ));
            };
            if expires.timestamp() <= now {
                return Err(aad(
                    S::UNAUTHORIZED,
                    "invalid_client",
                    7000222,
                    format!(
                        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app."
                    ),
                ));
            }
        }
        (None, None) => {
            return Err(aad(
                S::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
    }
    let lifetime = st
        .token_lifetime
        .unwrap_or(Duration::from_secs(3600))
        .as_secs()
        .max(1);
    let lifetime = i64::try_from(lifetime).unwrap_or(3600);
    drop(st);
    let mut claims = json!({
        "aud": resource,
        "iss": format!("{}/{tenant}/v2.0", shared.origin),
        "tid": tenant,
        "appid": client_id,
        "azp": client_id,
        "oid": client_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    });
    // Entra ID puts the application permissions in `roles` only once an
    // administrator consented; without consent the token simply has none.
    if app.admin_consent && !app.roles.is_empty() {
        claims["roles"] = json!(app.roles);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    header.kid = Some("mailbridge-test-idp".into());
    let access_token =
        jsonwebtoken::encode(&header, &claims, &shared.signing_key).map_err(|e| {
            aad(
                S::INTERNAL_SERVER_ERROR,
                "server_error",
                50000,
                format!("signing failed: {e}"),
            )
        })?;
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
}

fn thumbprint(alg: &'static digest::Algorithm, der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(alg, der).as_ref())
}

fn hex_sha1(der: &[u8]) -> String {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Checks a client assertion as Entra ID does; returns its `jti`.
fn check_assertion(
    jwt: &str,
    app: &AppRegistration,
    client_id: &str,
    endpoint: &str,
    now: i64,
    used: &BTreeSet<String>,
) -> Result<String, AadError> {
    use StatusCode as S;
    let malformed = |why: &str| {
        aad(
            S::BAD_REQUEST,
            "invalid_request",
            50027,
            format!("JWT token is invalid or malformed: {why}."),
        )
    };
    let header =
        jsonwebtoken::decode_header(jwt).map_err(|_| malformed("the header cannot be read"))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(malformed("the algorithm must be RS256 or PS256"));
    }
    let (name, wanted) = match (&header.x5t_s256, &header.x5t) {
        (Some(t), _) => ("x5t#S256", t.clone()),
        (None, Some(t)) => ("x5t", t.clone()),
        (None, None) => {
            return Err(malformed(
                "the header names no certificate (x5t#S256 or x5t)",
            ));
        }
    };
    let found = app.certificates.iter().find(|(der, _)| {
        let own = if name == "x5t#S256" {
            thumbprint(&digest::SHA256, der)
        } else {
            thumbprint(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        };
        own == wanted
    });
    let not_registered = |reason: &str, sha1_hex: String| {
        aad(
            S::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - {reason}, Thumbprint of key used by client: '{sha1_hex}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
            ),
        )
    };
    let Some((der, end)) = found else {
        // Entra ID reports the SHA-1 thumbprint; from x5t#S256 it is not known here.
        let shown = match name {
            "x5t" => URL_SAFE_NO_PAD
                .decode(&wanted)
                .map(|b| b.iter().map(|x| format!("{x:02X}")).collect())
                .unwrap_or(wanted),
            _ => wanted,
        };
        return Err(not_registered("The key was not found.", shown));
    };
    if end.timestamp() <= now {
        return Err(not_registered("The key used is expired.", hex_sha1(der)));
    }
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| {
        aad(
            S::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "a registered certificate cannot be read",
        )
    })?;
    let key = DecodingKey::from_rsa_der(cert.public_key().subject_public_key.data.as_ref());
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AssertionClaims>(jwt, &key, &v)
        .map_err(|_| {
            aad(
                S::UNAUTHORIZED,
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
            )
        })?
        .claims;
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err(aad(
            S::UNAUTHORIZED,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    let audiences: Vec<String> = match &claims.aud {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|a| a == endpoint) {
        return Err(aad(
            S::UNAUTHORIZED,
            "invalid_client",
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials . [audience: {}, expected: {endpoint}]",
                audiences.join(", ")
            ),
        ));
    }
    let exp = claims
        .exp
        .ok_or_else(|| malformed("the exp claim is missing"))?;
    let nbf = claims.nbf.unwrap_or(i64::MIN);
    if exp + SKEW_SECONDS <= now || nbf - SKEW_SECONDS > now {
        let at = |t: i64| {
            DateTime::from_timestamp(t, 0)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        };
        return Err(aad(
            S::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
                at(now),
                at(nbf.max(0)),
                at(exp)
            ),
        ));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| malformed("the jti claim is missing"))?;
    if used.contains(&jti) {
        return Err(aad(
            S::UNAUTHORIZED,
            "invalid_client",
            50013,
            format!(
                "Assertion failed signature validation or is invalid: the assertion with jti '{jti}' was already used (replay)."
            ),
        ));
    }
    Ok(jti)
}
