//! App-only tokens against the test identity provider (testkit's
//! identity_server.rs): a certificate or a client secret gets a token Graph can
//! verify; every "Failed Authentication" cause is named with its fix, the local
//! ones without a request; tokens are cached and replaced ahead of expiry; no
//! assertion is sent twice. No setup needed: the provider runs in the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use mailbridge_connectors::identity::assertion::{AssertionClaims, sign_assertion};
use mailbridge_connectors::identity::material::{CertificateMaterial, generate_self_signed};
use mailbridge_connectors::identity::{
    CertificateCredential, ClientCredentials, TokenRequest, TokenSource,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::identity::{AuthFailure, GRAPH_ROLES};
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::identity_server::{AppRegistration, TestIdentityProvider};

const GRAPH: &str = "https://graph.microsoft.com";
const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const SECRET: &str = "Vx8Q~secret.value-4711";

struct Setup {
    idp: TestIdentityProvider,
    tenant: String,
    cert: CertificateMaterial,
    source: TokenSource,
}

async fn setup(
    register: impl FnOnce(AppRegistration, &CertificateMaterial) -> AppRegistration,
) -> Setup {
    let idp = TestIdentityProvider::start().await;
    let tenant = idp.add_tenant();
    let cert = generate_self_signed("mailbridge test", Utc::now(), 30).expect("a certificate");
    idp.register_app(&tenant, register(AppRegistration::new(APP), &cert));
    let source = TokenSource::new(Duration::from_secs(10)).expect("a token source");
    Setup {
        idp,
        tenant,
        cert,
        source,
    }
}

fn with_cert(app: AppRegistration, cert: &CertificateMaterial) -> AppRegistration {
    app.with_certificate_der(&cert.certificate_der)
}

fn certificate(cert: &CertificateMaterial) -> ClientCredentials {
    ClientCredentials::Certificate(
        CertificateCredential::from_pem(&cert.certificate_pem, cert.private_key_pem.clone())
            .expect("a readable certificate"),
    )
}

impl Setup {
    fn request(&self, credentials: ClientCredentials) -> TokenRequest {
        self.request_in(&self.tenant.clone(), credentials)
    }

    fn request_in(&self, tenant: &str, credentials: ClientCredentials) -> TokenRequest {
        TokenRequest::for_graph(&self.idp.authority_url(), tenant, APP, GRAPH, credentials)
    }

    async fn fail(&self, req: &TokenRequest) -> AuthFailure {
        self.source
            .token(req)
            .await
            .expect_err("authentication fails")
    }
}

#[track_caller]
fn assert_failed_authentication(f: &AuthFailure, cause: &str) {
    let e: SyncError = f.clone().into();
    assert!(
        e.message.starts_with("Failed Authentication: ") && e.message.contains(cause),
        "{}",
        e.message
    );
    assert!(e.message.contains(" — "), "the fix follows: {}", e.message);
    assert_eq!(e.scope, ErrorScope::Profile);
}

#[tokio::test]
async fn a_certificate_gets_a_token_graph_accepts() {
    let s = setup(with_cert).await;
    let token = s
        .source
        .token(&s.request(certificate(&s.cert)))
        .await
        .expect("a token");
    let claims = s
        .idp
        .verify_access_token(token.token.expose(), GRAPH)
        .expect("the token verifies");
    assert_eq!(claims.tid, s.tenant);
    assert_eq!(claims.appid, APP);
    assert_eq!(claims.iss, s.idp.issuer(&s.tenant));
    for role in GRAPH_ROLES {
        assert!(
            claims.roles.iter().any(|r| r == role),
            "{role} in {:?}",
            claims.roles
        );
    }
    let lifetime = (token.expires_at - token.issued_at).num_seconds();
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    assert!(
        !format!("{token:?}").contains(token.token.expose()),
        "Debug redacts the token"
    );
}

#[tokio::test]
async fn a_client_secret_gets_a_token() {
    let s = setup(|app, _| app.with_secret(SECRET, Utc::now() + Span::days(90))).await;
    let token = s
        .source
        .token(&s.request(ClientCredentials::Secret(Secret::new(SECRET))))
        .await
        .expect("a token");
    assert!(
        s.idp
            .verify_access_token(token.token.expose(), GRAPH)
            .is_ok()
    );
}

#[tokio::test]
async fn local_causes_are_found_without_a_request() {
    let s = setup(with_cert).await;
    // Unreadable certificate.
    let e = CertificateCredential::from_pem("not a certificate", s.cert.private_key_pem.clone())
        .expect_err("unreadable");
    assert!(
        matches!(e, AuthFailure::CertificateUnreadable { .. }),
        "{e:?}"
    );
    assert_failed_authentication(&e, "cannot be read");
    // Unreadable key.
    let broken = CertificateCredential::from_pem(
        &s.cert.certificate_pem,
        Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    )
    .expect("the certificate itself reads");
    let e = s
        .fail(&s.request(ClientCredentials::Certificate(broken)))
        .await;
    assert!(
        matches!(e, AuthFailure::CertificateUnreadable { .. }),
        "{e:?}"
    );
    // Expired certificate.
    let old = generate_self_signed("old", Utc::now() - Span::days(10), 5).expect("a certificate");
    let e = s.fail(&s.request(certificate(&old))).await;
    assert_eq!(
        e,
        AuthFailure::CertificateExpired {
            thumbprint: old.thumbprint.clone(),
            not_after: old.not_after,
        }
    );
    assert_failed_authentication(
        &e,
        &format!("the certificate {} expired on", old.thumbprint),
    );
    assert_eq!(s.idp.token_requests(), 0, "nothing was sent");
    // Missing: the profile has nothing to authenticate with (decided by the domain).
    assert_failed_authentication(&AuthFailure::CertificateMissing, "no certificate");
}

#[tokio::test]
async fn an_unregistered_certificate_is_named_by_its_thumbprint() {
    let s = setup(with_cert).await;
    let other = generate_self_signed("other", Utc::now(), 30).expect("a certificate");
    let e = s.fail(&s.request(certificate(&other))).await;
    assert_eq!(
        e,
        AuthFailure::CertificateNotRegistered {
            thumbprint: Some(other.thumbprint.clone())
        }
    );
    assert_failed_authentication(&e, "AADSTS700027");
    assert_eq!(s.idp.errors_answered(), [700027]);
}

#[tokio::test]
async fn wrong_tenants_and_applications_are_told_apart() {
    let s = setup(with_cert).await;
    let unknown = "00000000-1111-2222-3333-444444444444";
    let e = s.fail(&s.request_in(unknown, certificate(&s.cert))).await;
    assert_eq!(
        e,
        AuthFailure::UnknownTenant {
            tenant: unknown.into(),
            code: 90002
        }
    );
    assert_failed_authentication(&e, "tenant");
    let e = s.fail(&s.request_in("contoso", certificate(&s.cert))).await;
    assert!(
        matches!(e, AuthFailure::UnknownTenant { code: 900023, .. }),
        "{e:?}"
    );

    let mut req = s.request(certificate(&s.cert));
    req.client_id = "0f0f0f0f-0000-0000-0000-000000000000".into();
    let e = s.fail(&req).await;
    assert!(
        matches!(e, AuthFailure::ApplicationNotFound { .. }),
        "{e:?}"
    );
    assert_failed_authentication(&e, "AADSTS700016");

    s.idp.register_app(
        &s.tenant,
        with_cert(AppRegistration::new(APP), &s.cert).disabled(),
    );
    let e = s.fail(&s.request(certificate(&s.cert))).await;
    assert!(
        matches!(e, AuthFailure::ApplicationDisabled { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn without_admin_consent_the_missing_permissions_are_named() {
    let s = setup(|app, cert| with_cert(app, cert).without_consent()).await;
    let e = s.fail(&s.request(certificate(&s.cert))).await;
    assert_eq!(
        e,
        AuthFailure::NoAdminConsent {
            missing_roles: GRAPH_ROLES.iter().map(|r| r.to_string()).collect()
        }
    );
    assert_failed_authentication(&e, "consent");
    assert!(e.fix().contains("Grant admin consent"));

    // Consent to some permissions only.
    s.idp.register_app(
        &s.tenant,
        with_cert(AppRegistration::new(APP), &s.cert).with_roles(&["Mail.ReadWrite", "Mail.Send"]),
    );
    let e = s.fail(&s.request(certificate(&s.cert))).await;
    assert_eq!(
        e,
        AuthFailure::NoAdminConsent {
            missing_roles: vec![
                "Calendars.ReadWrite".into(),
                "Contacts.ReadWrite".into(),
                "Tasks.ReadWrite.All".into()
            ]
        }
    );
}

#[tokio::test]
async fn wrong_and_expired_secrets_are_told_apart() {
    let s = setup(|app, _| {
        app.with_secret(SECRET, Utc::now() + Span::days(1))
            .with_secret("old-secret", Utc::now() - Span::days(1))
    })
    .await;
    let e = s
        .fail(&s.request(ClientCredentials::Secret(Secret::new("guess"))))
        .await;
    assert_eq!(e, AuthFailure::InvalidClientSecret);
    assert_failed_authentication(&e, "AADSTS7000215");
    assert!(!e.to_string().contains("guess"));
    let e = s
        .fail(&s.request(ClientCredentials::Secret(Secret::new("old-secret"))))
        .await;
    assert_eq!(e, AuthFailure::ClientSecretExpired);
    assert_failed_authentication(&e, "AADSTS7000222");
}

#[tokio::test]
async fn a_slow_clock_is_named_as_such() {
    let s = setup(with_cert).await;
    // The provider's clock is 20 minutes ahead: the 10-minute assertion expired
    // beyond the 5 minutes of skew.
    s.idp.set_clock_offset(Span::minutes(20));
    let e = s.fail(&s.request(certificate(&s.cert))).await;
    assert_eq!(e, AuthFailure::AssertionOutOfTime { code: 700024 });
    assert_failed_authentication(&e, "clock");
}

#[tokio::test]
async fn an_unreachable_provider_is_transient() {
    let s = setup(with_cert).await;
    let mut req = s.request(certificate(&s.cert));
    req.authority_url = format!("http://127.0.0.1:{}", mailbridge_testkit::free_port());
    let e = s.fail(&req).await;
    assert!(e.is_transient(), "{e:?}");
    let sync: SyncError = e.into();
    assert!(matches!(sync.class, ErrorClass::Transient { .. }));
    assert!(
        sync.message
            .starts_with("Failed Authentication: the identity provider is unavailable")
    );
}

#[tokio::test]
async fn tokens_are_cached_then_replaced_ahead_of_expiry() {
    let s = setup(with_cert).await;
    let offset = Arc::new(AtomicI64::new(0));
    let clock = offset.clone();
    let source = TokenSource::new(Duration::from_secs(10))
        .expect("a token source")
        .with_clock(move || Utc::now() + Span::seconds(clock.load(Ordering::Relaxed)));
    let req = s.request(certificate(&s.cert));
    let first = source.token(&req).await.expect("a token");
    let again = source.token(&req).await.expect("a token");
    assert_eq!(first.token, again.token, "the cached token");
    assert_eq!((source.requests_sent(), s.idp.token_requests()), (1, 1));

    // 50 minutes on: still more than 5 minutes left.
    offset.store(50 * 60, Ordering::Relaxed);
    s.idp.set_clock_offset(Span::minutes(50));
    source.token(&req).await.expect("a token");
    assert_eq!(s.idp.token_requests(), 1);

    // 56 minutes on: less than 5 minutes left, a new token.
    offset.store(56 * 60, Ordering::Relaxed);
    s.idp.set_clock_offset(Span::minutes(56));
    let renewed = source.token(&req).await.expect("a renewed token");
    assert_ne!(renewed.token, first.token);
    assert_eq!((source.requests_sent(), s.idp.token_requests()), (2, 2));

    // Another scope is another token.
    let mut other = req.clone();
    other.scope = "https://outlook.office365.com/.default".into();
    other.required_roles.clear();
    source.token(&other).await.expect("a token");
    assert_eq!(s.idp.token_requests(), 3);

    // Invalidated (Graph refused it): asked for again.
    source.invalidate(&req);
    source.token(&req).await.expect("a token");
    assert_eq!(s.idp.token_requests(), 4);
}

#[tokio::test]
async fn short_lived_tokens_are_replaced() {
    let s = setup(with_cert).await;
    s.idp.set_token_lifetime(Duration::from_secs(2));
    let req = s.request(certificate(&s.cert));
    s.source.token(&req).await.expect("a token");
    s.source.token(&req).await.expect("a token");
    assert_eq!(s.idp.token_requests(), 1);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    s.source.token(&req).await.expect("a token");
    assert_eq!(
        s.idp.token_requests(),
        2,
        "replaced with a fifth of its lifetime left"
    );
}

#[tokio::test]
async fn each_assertion_is_new_and_a_replay_is_refused() {
    let s = setup(with_cert).await;
    let req = s.request(certificate(&s.cert));
    s.source.token(&req).await.expect("a token");
    s.source.invalidate(&req);
    s.source.token(&req).await.expect("a token");
    assert_eq!(s.idp.accepted_jtis().len(), 2, "two distinct jti");
    let (status, answer) = s.idp.replay_last_request(&s.tenant).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"], "invalid_client");
    assert_eq!(answer["error_codes"][0], 50013);
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(answer[field].is_string(), "{field}: {answer}");
    }
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS50013: "),
        "{answer}"
    );
}

#[tokio::test]
async fn the_provider_checks_the_assertions_audience_and_issuer() {
    let s = setup(with_cert).await;
    let endpoint = s.idp.token_endpoint(&s.tenant);
    let post = |assertion: String| {
        let endpoint = endpoint.clone();
        async move {
            let body = format!(
                "grant_type=client_credentials&client_id={APP}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
            );
            let r = reqwest::Client::new()
                .post(&endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("an answer");
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.expect("JSON"))
        }
    };
    let key = s.cert.private_key_pem.expose();
    let wrong_aud = AssertionClaims::new(
        APP,
        "https://login.microsoftonline.com/x/oauth2/v2.0/token",
        Utc::now(),
    );
    let (status, answer) = post(sign_assertion(&wrong_aud, key, &s.cert.x5t_s256).unwrap()).await;
    assert_eq!(
        (status, answer["error_codes"][0].as_u64()),
        (401, Some(700023)),
        "{answer}"
    );

    let mut wrong_iss = AssertionClaims::new(APP, &endpoint, Utc::now());
    wrong_iss.iss = "someone-else".into();
    let (_, answer) = post(sign_assertion(&wrong_iss, key, &s.cert.x5t_s256).unwrap()).await;
    assert_eq!(answer["error_codes"][0], 700021, "{answer}");

    // Signed by another key while naming the registered certificate.
    let other = generate_self_signed("other", Utc::now(), 30).unwrap();
    let forged = AssertionClaims::new(APP, &endpoint, Utc::now());
    let (_, answer) =
        post(sign_assertion(&forged, other.private_key_pem.expose(), &s.cert.x5t_s256).unwrap())
            .await;
    assert_eq!(answer["error_codes"][0], 700027, "{answer}");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("signature validation")
    );
}

#[tokio::test]
async fn the_graph_test_server_accepts_the_providers_tokens() {
    use mailbridge_testkit::graph_server::GraphTestServer;
    let s = setup(with_cert).await;
    let graph = GraphTestServer::start(s.idp.graph_token_check(&s.tenant, GRAPH)).await;
    graph.add_user("bob@example.org");
    let token = s
        .source
        .token(&s.request(certificate(&s.cert)))
        .await
        .expect("a token");
    let folders = format!("{}/users/bob@example.org/mailFolders", graph.base_url());
    let http = reqwest::Client::new();
    let ok = http
        .get(&folders)
        .bearer_auth(token.token.expose())
        .send()
        .await
        .expect("an answer");
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap_or_default());

    // A token of another tenant is refused.
    let other = s.idp.add_tenant();
    s.idp
        .register_app(&other, with_cert(AppRegistration::new(APP), &s.cert));
    let foreign = s
        .source
        .token(&s.request_in(&other, certificate(&s.cert)))
        .await
        .expect("a token");
    let refused = http
        .get(&folders)
        .bearer_auth(foreign.token.expose())
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 401);
}
