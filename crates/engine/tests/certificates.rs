//! Certificate expiry alerts and the credentials of an Exchange Online profile,
//! against real SQLite and PostgreSQL: each threshold (30 days, 7 days,
//! expired) alerts once per certificate, with its fix; a profile without any
//! credential, or with a key the store cannot open, fails authentication with
//! the cause named.

use chrono::{DateTime, Duration, Utc};
use mailbridge_connectors::identity::ClientCredentials;
use mailbridge_connectors::identity::material::generate_self_signed;
use mailbridge_domain::certificate::Certificate;
use mailbridge_domain::identity::AuthFailure;
use mailbridge_domain::profile::ProfileSettings;
use mailbridge_domain::secret::Secret;
use mailbridge_domain::{AlertScope, AlertSeverity, CertificateSource, ServerType};
use mailbridge_engine::certificates::check_certificate_expiry;
use mailbridge_engine::identity::graph_token_request;
use mailbridge_store::{Cipher, NewCertificate, PageRequest, ProfileSecretChanges, Store};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await
                }
            }
        )+
    };
}

on_both_backends!(
    each_expiry_threshold_alerts_once,
    a_profile_without_credentials_or_with_an_unreadable_key_fails_authentication
);

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

async fn open(backend: Backend, dir: &tempfile::TempDir, key: &str) -> (Store, String) {
    let url = match backend {
        Backend::Sqlite => dir.path().join("store.db").display().to_string(),
        Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
    };
    let store = Store::open(&url, Cipher::from_base64(key).unwrap())
        .await
        .unwrap();
    (store, url)
}

async fn org(store: &Store) -> String {
    store
        .create_organization("Contoso", Some(TENANT))
        .await
        .unwrap()
        .id
}

/// A stored certificate that ends at `not_after` (only the dates matter here).
async fn certificate(
    store: &Store,
    org: &str,
    name: &str,
    not_after: DateTime<Utc>,
) -> Certificate {
    store
        .create_certificate(
            org,
            &NewCertificate {
                name: name.into(),
                subject: format!("CN={name}"),
                thumbprint: format!("{:0>40}", name.len()) + name,
                x5t_s256: name.into(),
                not_before: not_after - Duration::days(365),
                not_after,
                key_bits: 2048,
                source: CertificateSource::Uploaded,
                certificate_pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
                private_key_pem: Secret::new(
                    "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
                ),
            },
        )
        .await
        .unwrap()
}

async fn alerts(store: &Store, org: &str) -> Vec<(AlertSeverity, String, Option<String>)> {
    let page = store
        .list_alerts(
            org,
            &[],
            &PageRequest {
                after: None,
                limit: Some(100),
            },
        )
        .await
        .unwrap();
    page.items
        .into_iter()
        .map(|a| {
            assert_eq!(a.scope, AlertScope::Organization);
            (a.severity, a.message, a.fix)
        })
        .collect()
}

async fn each_expiry_threshold_alerts_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(backend, &dir, &Cipher::generate_key()).await;
    let org = org(&store).await;
    let now = Utc::now();
    certificate(&store, &org, "in-20-days", now + Duration::days(20)).await;
    certificate(&store, &org, "in-5-days", now + Duration::days(5)).await;
    certificate(&store, &org, "expired", now - Duration::days(1)).await;
    certificate(&store, &org, "in-60-days", now + Duration::days(60)).await;

    assert_eq!(check_certificate_expiry(&store, now).await.unwrap(), 3);
    let raised = alerts(&store, &org).await;
    assert_eq!(raised.len(), 3, "{raised:?}");
    let find = |text: &str| {
        raised
            .iter()
            .find(|(_, m, _)| m.contains(text))
            .unwrap_or_else(|| panic!("an alert about {text}: {raised:?}"))
            .clone()
    };
    let (severity, message, fix) = find("`in-20-days`");
    assert_eq!(severity, AlertSeverity::Warning);
    assert!(
        message.contains("in 20 days") || message.contains("in 19 days"),
        "{message}"
    );
    assert!(
        fix.unwrap()
            .contains("register it with the app registration")
    );
    assert!(find("`in-5-days`").1.contains("days"));
    let (severity, message, _) = find("`expired`");
    assert_eq!(severity, AlertSeverity::Error);
    assert!(message.contains("Failed Authentication"), "{message}");

    // Once per threshold.
    assert_eq!(check_certificate_expiry(&store, now).await.unwrap(), 0);
    assert_eq!(
        check_certificate_expiry(&store, now + Duration::hours(1))
            .await
            .unwrap(),
        0
    );

    // Sixteen days on: the 20-day one is within 7 days, the 5-day one expired.
    let later = now + Duration::days(16);
    assert_eq!(check_certificate_expiry(&store, later).await.unwrap(), 2);
    // Forty days on: the 60-day one is within 30, the 20-day one expired.
    assert_eq!(
        check_certificate_expiry(&store, now + Duration::days(40))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        check_certificate_expiry(&store, now + Duration::days(40))
            .await
            .unwrap(),
        0
    );
    assert_eq!(alerts(&store, &org).await.len(), 7);
}

async fn a_profile_without_credentials_or_with_an_unreadable_key_fails_authentication(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let key = Cipher::generate_key();
    let (store, url) = open(backend, &dir, &key).await;
    let org = org(&store).await;
    let mut settings = ProfileSettings::new("Exchange Online".into(), ServerType::ExchangeOnline);
    settings.application_id = Some(APP_ID.into());
    let profile = store
        .create_profile(&org, &settings, &ProfileSecretChanges::default())
        .await
        .unwrap();

    let e = graph_token_request(&store, &profile).await.unwrap_err();
    assert_eq!(e, AuthFailure::CertificateMissing);
    assert!(
        e.to_string()
            .starts_with("Failed Authentication: no certificate")
    );

    // An expired certificate is not the organization's default.
    certificate(&store, &org, "old", Utc::now() - Duration::days(1)).await;
    assert_eq!(
        graph_token_request(&store, &profile).await.unwrap_err(),
        AuthFailure::CertificateMissing
    );

    // A valid one is, with the organization's tenant and the public cloud.
    let m = generate_self_signed("EXO", Utc::now(), 30).unwrap();
    let stored = store
        .create_certificate(
            &org,
            &NewCertificate {
                name: "EXO".into(),
                subject: m.subject.clone(),
                thumbprint: m.thumbprint.clone(),
                x5t_s256: m.x5t_s256.clone(),
                not_before: m.not_before,
                not_after: m.not_after,
                key_bits: m.key_bits,
                source: CertificateSource::Generated,
                certificate_pem: m.certificate_pem.clone(),
                private_key_pem: m.private_key_pem.clone(),
            },
        )
        .await
        .unwrap();
    let req = graph_token_request(&store, &profile).await.unwrap();
    assert_eq!(req.tenant, TENANT);
    assert_eq!(req.client_id, APP_ID);
    assert_eq!(
        req.token_endpoint(),
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
    assert_eq!(req.scope, "https://graph.microsoft.com/.default");
    match &req.credentials {
        ClientCredentials::Certificate(c) => assert_eq!(c.thumbprint, stored.thumbprint),
        other => panic!("a certificate, not {other:?}"),
    }

    // The same database under another store key: the key cannot be opened.
    let other_key = Cipher::from_base64(&Cipher::generate_key()).unwrap();
    let reopened = Store::open(&url, other_key).await.unwrap();
    let e = graph_token_request(&reopened, &profile).await.unwrap_err();
    assert!(
        matches!(e, AuthFailure::CertificateUnreadable { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("secret.key"), "{e}");
}
