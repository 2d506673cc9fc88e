//! STARTTLS with a real TLS upgrade: scripted servers greet in the clear, offer
//! STARTTLS, run a rustls handshake with a test CA's certificate and continue over
//! TLS; they record whether each line came over TLS, so the tests see that
//! credentials and messages never travel in the clear. No test server setup needed.

#[path = "support/dialogues.rs"]
mod dialogues;
#[path = "support/fake.rs"]
mod fake;
#[path = "support/scripted.rs"]
mod scripted;

use std::net::SocketAddr;
use std::time::Duration;

use dialogues::{Behaviour, ImapServer, SmtpServer, smtp_data};
use fake::TestCa;
use mailbridge_connectors::{
    Auth, ImapConfig, ImapSession, SmtpConfig, imap_test, smtp_send, smtp_test,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use scripted::{Transcript, bounded, decode, serve};

/// The connectors' bound of each operation.
const TIMEOUT: Duration = Duration::from_secs(10);

const PASSWORD: &str = "pw-alice-over-tls";

const STARTTLS_PLAIN: Behaviour = Behaviour {
    starttls: true,
    mechanisms: &["PLAIN", "LOGIN"],
    refuse_tokens: false,
};

fn auth() -> Auth {
    Auth::Password {
        username: "alice".to_owned(),
        password: Secret::new(PASSWORD),
    }
}

fn imap(addr: SocketAddr, tls: TlsPolicy, extra_roots: Vec<Vec<u8>>) -> ImapConfig {
    ImapConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls,
        auth: auth(),
        timeout: TIMEOUT,
        extra_roots,
    }
}

fn smtp(addr: SocketAddr, tls: TlsPolicy, extra_roots: Vec<Vec<u8>>) -> SmtpConfig {
    SmtpConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls,
        auth: Some(auth()),
        timeout: TIMEOUT,
        extra_roots,
        hello_name: "mailbridge.test".to_owned(),
    }
}

async fn imap_server(ca: &TestCa, behaviour: Behaviour) -> (SocketAddr, Transcript) {
    serve(ca.server_cert("localhost", false), move || {
        ImapServer::new(behaviour)
    })
    .await
}

async fn smtp_server(ca: &TestCa, behaviour: Behaviour) -> (SocketAddr, Transcript) {
    serve(ca.server_cert("localhost", false), move || {
        SmtpServer::new(behaviour)
    })
    .await
}

/// No line heard in the clear holds the password, in any encoding.
fn assert_password_never_in_the_clear(transcript: &Transcript) {
    for line in transcript.plaintext() {
        let decoded = scripted::encode(&format!("\0alice\0{PASSWORD}"));
        assert!(
            !line.contains(PASSWORD) && !line.contains(&decoded),
            "heard in the clear: {line}"
        );
    }
}

fn assert_permanent_for_the_profile(e: &SyncError, words: &str) {
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(e.message.contains(words), "{}", e.message);
}

#[tokio::test]
async fn imap_test_upgrades_with_starttls_before_authenticate_plain() {
    let ca = TestCa::new();
    let (addr, transcript) = imap_server(&ca, STARTTLS_PLAIN).await;
    let cfg = imap(addr, TlsPolicy::StartTlsRequired, vec![ca.der()]);
    let (steps, result) = bounded(imap_test(&cfg)).await;
    result.expect("passed");
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["resolve", "connect", "tls", "authenticate", "open_mailbox"]
    );
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");
    assert!(
        steps[2]
            .detail
            .starts_with("STARTTLS: TLS 1.3 established; the certificate of localhost is trusted"),
        "{}",
        steps[2].detail
    );
    assert_eq!(
        steps[3].detail,
        "logged in as alice with AUTHENTICATE PLAIN"
    );

    // Only STARTTLS in the clear (the greeting listed the capabilities); the
    // capabilities are asked again over TLS, before anything else.
    assert_eq!(transcript.plaintext(), ["p1 STARTTLS"]);
    let heard = transcript.heard();
    assert!(
        heard[1].tls && heard[1].line().ends_with(" CAPABILITY"),
        "{heard:?}"
    );
    let authenticate = transcript.find("AUTHENTICATE PLAIN").expect("AUTHENTICATE");
    assert!(authenticate.tls, "{authenticate:?}");
    let response = transcript.after("AUTHENTICATE PLAIN").expect("a response");
    assert!(response.tls);
    assert_eq!(decode(response.line()), format!("\0alice\0{PASSWORD}"));
    let examine = transcript.find("EXAMINE").expect("EXAMINE");
    assert!(
        examine.tls && examine.line().contains("INBOX"),
        "{examine:?}"
    );
}

#[tokio::test]
async fn imap_login_goes_over_tls_when_plain_is_not_offered() {
    let ca = TestCa::new();
    let behaviour = Behaviour {
        mechanisms: &[],
        ..STARTTLS_PLAIN
    };
    let (addr, transcript) = imap_server(&ca, behaviour).await;
    let cfg = imap(addr, TlsPolicy::StartTlsRequired, vec![ca.der()]);
    let session = bounded(ImapSession::connect(&cfg))
        .await
        .expect("logged in");
    assert!(session.capabilities().idle, "{:?}", session.capabilities());
    bounded(session.logout()).await;

    let login = transcript.find("LOGIN").expect("LOGIN");
    assert!(login.tls, "{login:?}");
    assert!(login.line().contains(PASSWORD), "{login:?}");
    assert_password_never_in_the_clear(&transcript);
}

#[tokio::test]
async fn smtp_upgrades_with_starttls_then_sends_the_exact_bytes() {
    let ca = TestCa::new();
    let (addr, transcript) = smtp_server(&ca, STARTTLS_PLAIN).await;
    let cfg = smtp(addr, TlsPolicy::StartTlsRequired, vec![ca.der()]);
    let mut steps = Vec::new();
    bounded(smtp_test(&cfg, &mut steps)).await.expect("passed");
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");
    let tls = steps.iter().find(|s| s.name == "tls").expect("a tls step");
    assert!(
        tls.detail.starts_with("STARTTLS: TLS established"),
        "{}",
        tls.detail
    );
    let authenticate = steps.last().expect("steps");
    assert_eq!(authenticate.detail, "logged in as alice with AUTH PLAIN");

    // EHLO, STARTTLS in the clear; EHLO again, AUTH and the rest over TLS.
    assert_eq!(transcript.plaintext(), ["EHLO mailbridge.test", "STARTTLS"]);
    let heard = transcript.heard();
    assert_eq!(
        (heard[2].tls, heard[2].line()),
        (true, "EHLO mailbridge.test")
    );
    let auth = transcript.find("AUTH PLAIN").expect("AUTH");
    assert!(auth.tls);
    let response = auth.line().rsplit(' ').next().expect("an initial response");
    assert_eq!(decode(response), format!("\0alice\0{PASSWORD}"));

    let message = "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: over STARTTLS\r\n\
                   \r\nHello\r\n.a line that starts with a dot\r\n\r\nBye\r\n";
    let (addr, transcript) = smtp_server(&ca, STARTTLS_PLAIN).await;
    let cfg = smtp(addr, TlsPolicy::StartTlsRequired, vec![ca.der()]);
    let recipients = ["bob@example.org".to_owned(), "carol@example.org".to_owned()];
    bounded(smtp_send(
        &cfg,
        "alice@example.org",
        &recipients,
        message.as_bytes(),
    ))
    .await
    .expect("sent");
    assert_eq!(smtp_data(&transcript), message);
    let stuffed = transcript.find(".a line").expect("the dotted line");
    assert_eq!(stuffed.line(), "..a line that starts with a dot");
    for words in [
        "MAIL FROM:<alice@example.org>",
        "RCPT TO:<bob@example.org>",
        "RCPT TO:<carol@example.org>",
        "DATA",
        "Subject: over STARTTLS",
    ] {
        let heard = transcript.find(words).unwrap_or_else(|| panic!("{words}"));
        assert!(heard.tls, "{heard:?}");
    }
    assert_password_never_in_the_clear(&transcript);
}

#[tokio::test]
async fn an_untrusted_certificate_after_starttls_is_refused_for_the_profile() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let (addr, transcript) = imap_server(&ca, STARTTLS_PLAIN).await;
    let cfg = imap(addr, TlsPolicy::StartTlsRequired, vec![other.der()]);
    let (steps, result) = bounded(imap_test(&cfg)).await;
    let e = result.expect_err("not trusted");
    assert_permanent_for_the_profile(&e, "not signed by a trusted certificate authority");
    assert_eq!(
        steps.iter().map(|s| (s.name, s.passed)).collect::<Vec<_>>(),
        [("resolve", true), ("connect", true), ("tls", false)]
    );
    assert_eq!(transcript.plaintext(), ["p1 STARTTLS"]);
    assert!(transcript.heard().iter().all(|h| !h.tls));

    let (addr, transcript) = smtp_server(&ca, STARTTLS_PLAIN).await;
    let cfg = smtp(addr, TlsPolicy::StartTlsIfOffered, Vec::new());
    let mut steps = Vec::new();
    let e = bounded(smtp_test(&cfg, &mut steps))
        .await
        .expect_err("not trusted");
    assert_permanent_for_the_profile(&e, "not signed by a trusted certificate authority");
    assert_eq!(
        steps.last().map(|s| (s.name, s.passed)),
        Some(("tls", false))
    );
    assert_eq!(transcript.plaintext(), ["EHLO mailbridge.test", "STARTTLS"]);
    assert!(transcript.heard().iter().all(|h| !h.tls));
}

#[tokio::test]
async fn without_a_starttls_offer_required_refuses_and_if_offered_goes_on_in_the_clear() {
    let ca = TestCa::new();
    let plaintext = Behaviour {
        starttls: false,
        ..STARTTLS_PLAIN
    };
    let (addr, transcript) = imap_server(&ca, plaintext).await;
    let required = imap(addr, TlsPolicy::StartTlsRequired, vec![ca.der()]);
    let e = bounded(ImapSession::connect(&required))
        .await
        .expect_err("refused");
    assert_permanent_for_the_profile(&e, "does not offer STARTTLS");
    assert!(
        transcript.find("AUTHENTICATE").is_none(),
        "{:?}",
        transcript.heard()
    );

    let if_offered = imap(addr, TlsPolicy::StartTlsIfOffered, vec![ca.der()]);
    let (steps, result) = bounded(imap_test(&if_offered)).await;
    result.expect("passed in the clear");
    let tls = steps.iter().find(|s| s.name == "tls").expect("a tls step");
    assert!(tls.passed);
    assert!(
        tls.detail
            .starts_with("the server does not offer STARTTLS; continuing without TLS"),
        "{}",
        tls.detail
    );
    assert!(transcript.find("STARTTLS").is_none());
    assert!(transcript.find("AUTHENTICATE PLAIN").is_some());

    let (addr, transcript) = smtp_server(&ca, plaintext).await;
    let required = smtp(addr, TlsPolicy::StartTlsRequired, vec![ca.der()]);
    let mut steps = Vec::new();
    let e = bounded(smtp_test(&required, &mut steps))
        .await
        .expect_err("refused");
    assert_permanent_for_the_profile(&e, "does not offer STARTTLS");
    assert!(
        transcript.find("AUTH").is_none(),
        "{:?}",
        transcript.heard()
    );

    let if_offered = smtp(addr, TlsPolicy::StartTlsIfOffered, vec![ca.der()]);
    let mut steps = Vec::new();
    bounded(smtp_test(&if_offered, &mut steps))
        .await
        .expect("passed in the clear");
    let tls = steps.iter().find(|s| s.name == "tls").expect("a tls step");
    assert!(
        tls.detail
            .starts_with("the server does not offer STARTTLS; continuing without TLS"),
        "{}",
        tls.detail
    );
    assert!(transcript.find("AUTH PLAIN").is_some());
}
