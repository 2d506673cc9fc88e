//! TLS: implicit TLS to a server whose certificate comes from a test CA is
//! accepted with that CA in `extra_roots`, and refused (permanent, profile-wide)
//! without it, for the wrong name, or when expired; a CA given as PEM works once
//! converted with `roots_from_pem`. The servers are scripted loopback servers
//! (tests/support/fake.rs); no test server setup is needed.

#[path = "support/common.rs"]
mod common;
#[path = "support/fake.rs"]
mod fake;

use std::net::SocketAddr;

use common::TIMEOUT;
use fake::{FakeImap, FakeSmtp, TestCa, serve};
use mailbridge_connectors::{
    Auth, ImapConfig, ImapSession, SmtpConfig, imap_test, smtp_send, smtp_test,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;

fn auth() -> Auth {
    Auth::Password {
        username: "alice".to_owned(),
        password: Secret::new("pw-alice"),
    }
}

fn imaps(addr: SocketAddr, extra_roots: Vec<Vec<u8>>) -> ImapConfig {
    ImapConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls: TlsPolicy::Implicit,
        auth: auth(),
        timeout: TIMEOUT,
        extra_roots,
    }
}

fn smtps(addr: SocketAddr, extra_roots: Vec<Vec<u8>>) -> SmtpConfig {
    SmtpConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls: TlsPolicy::Implicit,
        auth: Some(auth()),
        timeout: TIMEOUT,
        extra_roots,
        hello_name: "mailbridge.test".to_owned(),
    }
}

fn assert_untrusted(e: &SyncError, words: &str) {
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(e.message.contains(words), "{}", e.message);
    assert!(
        e.fix
            .as_deref()
            .unwrap_or("")
            .contains("install a certificate for localhost from a trusted authority"),
        "{e:?}"
    );
}

#[tokio::test]
async fn implicit_tls_is_accepted_with_the_ca_in_extra_roots() {
    let ca = TestCa::new();
    let addr = serve(Some(ca.server_cert("localhost", false)), FakeImap::default).await;
    let session = ImapSession::connect(&imaps(addr, vec![ca.der()]))
        .await
        .expect("connected over TLS");
    assert!(session.capabilities().idle && session.capabilities().move_);
    session.logout().await;

    let (steps, result) = imap_test(&imaps(addr, vec![ca.der()])).await;
    result.expect("passed");
    let tls = steps.iter().find(|s| s.name == "tls").expect("a tls step");
    assert!(tls.passed);
    assert!(
        tls.detail.starts_with("TLS 1.3 established"),
        "{}",
        tls.detail
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_for_the_profile() {
    let ca = TestCa::new();
    let addr = serve(Some(ca.server_cert("localhost", false)), FakeImap::default).await;
    let e = ImapSession::connect(&imaps(addr, Vec::new()))
        .await
        .expect_err("not trusted");
    assert_untrusted(&e, "not signed by a trusted certificate authority");

    // Another CA's certificate is no better.
    let other = TestCa::new();
    let e = ImapSession::connect(&imaps(addr, vec![other.der()]))
        .await
        .expect_err("not trusted");
    assert_untrusted(&e, "not signed by a trusted certificate authority");

    let (steps, result) = imap_test(&imaps(addr, Vec::new())).await;
    assert!(result.is_err());
    assert_eq!(
        steps.iter().map(|s| (s.name, s.passed)).collect::<Vec<_>>(),
        [("resolve", true), ("connect", true), ("tls", false)]
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_or_expired_is_refused() {
    let ca = TestCa::new();
    let wrong_name = serve(
        Some(ca.server_cert("mail.example.org", false)),
        FakeImap::default,
    )
    .await;
    let e = ImapSession::connect(&imaps(wrong_name, vec![ca.der()]))
        .await
        .expect_err("wrong name");
    assert_untrusted(&e, "not valid for this host name");

    let expired = serve(Some(ca.server_cert("localhost", true)), FakeImap::default).await;
    let e = ImapSession::connect(&imaps(expired, vec![ca.der()]))
        .await
        .expect_err("expired");
    assert_untrusted(&e, "expired");
}

#[tokio::test]
async fn smtp_over_implicit_tls_follows_the_same_trust() {
    let ca = TestCa::new();
    let addr = serve(Some(ca.server_cert("localhost", false)), FakeSmtp::default).await;
    let mut steps = Vec::new();
    smtp_test(&smtps(addr, vec![ca.der()]), &mut steps)
        .await
        .expect("passed");
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    assert_eq!(names, ["resolve", "connect", "tls", "authenticate"]);
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");
    assert_eq!(steps[3].detail, "logged in as alice with AUTH PLAIN");

    let e = smtp_send(
        &smtps(addr, Vec::new()),
        "alice@example.org",
        &["bob@example.org".to_owned()],
        b"Subject: x\r\n\r\nx\r\n",
    )
    .await
    .expect_err("not trusted");
    assert_untrusted(&e, "not signed by a trusted certificate authority");
}

#[tokio::test]
async fn a_ca_given_as_pem_is_trusted_once_converted() {
    let ca = TestCa::new();
    let addr = serve(Some(ca.server_cert("localhost", false)), FakeImap::default).await;
    let roots = mailbridge_connectors::tls::roots_from_pem(ca.pem().as_bytes()).expect("DER");
    assert_eq!(roots, [ca.der()]);
    let (steps, result) = tokio::time::timeout(TIMEOUT * 2, imap_test(&imaps(addr, roots)))
        .await
        .expect("in time");
    result.expect("passed");
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");

    let e = mailbridge_connectors::tls::roots_from_pem(b"MIIB this is not PEM")
        .expect_err("no certificate");
    assert!(e.contains("no certificate found"), "{e}");
}
