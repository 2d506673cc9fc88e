//! OAuth2 bearer tokens: the exact XOAUTH2 and OAUTHBEARER (RFC 7628) initial
//! responses, and a refused token (the JSON error challenge, then NO or 535)
//! classified as permanent for the mailbox without the token in the message.
//! Scripted servers in the clear (tests/support/dialogues.rs); no setup needed.

#[path = "support/dialogues.rs"]
mod dialogues;
#[path = "support/fake.rs"]
mod fake;
#[path = "support/scripted.rs"]
mod scripted;

use std::net::SocketAddr;
use std::time::Duration;

use dialogues::{Behaviour, ImapServer, SmtpServer};
use fake::{FakeSmtp, TestCa};
use mailbridge_connectors::{Auth, ImapConfig, SmtpConfig, imap_test, smtp_send, smtp_test};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use scripted::{Transcript, bounded, decode, encode, serve};

const TIMEOUT: Duration = Duration::from_secs(10);
const USER: &str = "alice@example.org";
const TOKEN: &str = "ya29.a0AfB_byC-secret-token-4711";

fn oauth2() -> Auth {
    Auth::OAuth2 {
        username: USER.to_owned(),
        access_token: Secret::new(TOKEN),
    }
}

fn offering(mechanisms: &'static [&'static str], refuse_tokens: bool) -> Behaviour {
    Behaviour {
        starttls: false,
        mechanisms,
        refuse_tokens,
    }
}

fn imap(addr: SocketAddr) -> ImapConfig {
    ImapConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls: TlsPolicy::None,
        auth: oauth2(),
        timeout: TIMEOUT,
        extra_roots: Vec::new(),
    }
}

fn smtp(addr: SocketAddr, tls: TlsPolicy) -> SmtpConfig {
    SmtpConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls,
        auth: Some(oauth2()),
        timeout: TIMEOUT,
        extra_roots: Vec::new(),
        hello_name: "mailbridge.test".to_owned(),
    }
}

async fn imap_server(behaviour: Behaviour) -> (SocketAddr, Transcript) {
    let cert = TestCa::new().server_cert("localhost", false);
    serve(cert, move || ImapServer::new(behaviour)).await
}

async fn smtp_server(behaviour: Behaviour) -> (SocketAddr, Transcript) {
    let cert = TestCa::new().server_cert("localhost", false);
    serve(cert, move || SmtpServer::new(behaviour)).await
}

/// The lines heard after the first line containing `words`: the SASL responses.
fn responses_after(transcript: &Transcript, words: &str) -> Vec<String> {
    let heard = transcript.heard();
    let at = heard
        .iter()
        .position(|h| h.line().contains(words))
        .unwrap_or_else(|| panic!("{words}: {heard:?}"));
    heard[at + 1..]
        .iter()
        .map(|h| h.line().to_owned())
        .collect()
}

fn assert_token_refused(e: &SyncError, protocol: &str) {
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox),
        "{e:?}"
    );
    let start = format!("the {protocol} server rejected the user name or password for {USER}");
    assert!(e.message.starts_with(&start), "{}", e.message);
    let everything = format!("{e:?}");
    assert!(!everything.contains(TOKEN), "{everything}");
    assert!(!everything.contains(&encode(TOKEN)), "{everything}");
}

#[tokio::test]
async fn imap_xoauth2_sends_user_and_bearer_token_as_google_and_microsoft_expect() {
    let (addr, transcript) =
        imap_server(offering(&["PLAIN", "OAUTHBEARER", "XOAUTH2"], false)).await;
    let (steps, result) = bounded(imap_test(&imap(addr))).await;
    result.expect("passed");
    let authenticate = steps
        .iter()
        .find(|s| s.name == "authenticate")
        .expect("step");
    assert_eq!(
        authenticate.detail,
        format!("logged in as {USER} with AUTHENTICATE XOAUTH2")
    );
    let responses = responses_after(&transcript, "AUTHENTICATE XOAUTH2");
    assert_eq!(
        decode(&responses[0]),
        format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01")
    );
}

#[tokio::test]
async fn imap_oauthbearer_follows_rfc_7628_when_only_it_is_offered() {
    let (addr, transcript) = imap_server(offering(&["PLAIN", "OAUTHBEARER"], false)).await;
    let (steps, result) = bounded(imap_test(&imap(addr))).await;
    result.expect("passed");
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");
    let responses = responses_after(&transcript, "AUTHENTICATE OAUTHBEARER");
    // gs2-header kvsep *kvpair kvsep (RFC 7628 3.1), host and port as in its 4.1.
    assert_eq!(
        decode(&responses[0]),
        format!(
            "n,a={USER},\x01host=localhost\x01port={}\x01auth=Bearer {TOKEN}\x01\x01",
            addr.port()
        )
    );
}

#[tokio::test]
async fn a_refused_token_is_permanent_for_the_mailbox_and_never_shown_over_imap() {
    // The JSON error challenge is answered as each mechanism says (XOAUTH2: an empty
    // line; OAUTHBEARER: ^A, RFC 7628 3.2.3) so that the server sends its NO.
    for (mechanism, answer) in [("XOAUTH2", ""), ("OAUTHBEARER", "AQ==")] {
        let mechanisms: &'static [&'static str] = if mechanism == "XOAUTH2" {
            &["XOAUTH2"]
        } else {
            &["OAUTHBEARER"]
        };
        let (addr, transcript) = imap_server(offering(mechanisms, true)).await;
        let (steps, result) = bounded(imap_test(&imap(addr))).await;
        let e = result.expect_err("refused");
        assert_token_refused(&e, "IMAP");
        assert!(e.message.contains("AUTHENTICATIONFAILED"), "{}", e.message);
        assert_eq!(
            steps.last().map(|s| (s.name, s.passed)),
            Some(("authenticate", false))
        );
        let responses = responses_after(&transcript, &format!("AUTHENTICATE {mechanism}"));
        assert_eq!(responses[1], answer, "{mechanism}: {responses:?}");
    }
}

#[tokio::test]
async fn imap_without_an_oauth_mechanism_is_permanent_for_the_profile() {
    let (addr, transcript) = imap_server(offering(&["PLAIN"], false)).await;
    let (_, result) = bounded(imap_test(&imap(addr))).await;
    let e = result.expect_err("no mechanism");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(
        e.message.contains("does not accept OAuth2"),
        "{}",
        e.message
    );
    assert!(transcript.find("AUTHENTICATE").is_none());
}

#[tokio::test]
async fn smtp_xoauth2_sends_the_token_as_initial_response_and_delivers() {
    let (addr, transcript) = smtp_server(offering(&["PLAIN", "LOGIN", "XOAUTH2"], false)).await;
    let mut steps = Vec::new();
    bounded(smtp_test(&smtp(addr, TlsPolicy::None), &mut steps))
        .await
        .expect("passed");
    assert_eq!(
        steps.last().map(|s| s.detail.as_str()),
        Some(format!("logged in as {USER} with AUTH XOAUTH2").as_str())
    );
    let auth = transcript.find("AUTH XOAUTH2").expect("AUTH");
    let initial = auth.line().rsplit(' ').next().expect("an initial response");
    assert_eq!(
        decode(initial),
        format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01")
    );

    let message = b"Subject: sent with a token\r\n\r\nHello\r\n";
    bounded(smtp_send(
        &smtp(addr, TlsPolicy::None),
        USER,
        &["bob@example.org".to_owned()],
        message,
    ))
    .await
    .expect("sent");
    assert_eq!(dialogues::smtp_data(&transcript).as_bytes(), message);
}

#[tokio::test]
async fn a_refused_token_is_permanent_for_the_mailbox_and_never_shown_over_smtp() {
    let (addr, transcript) = smtp_server(offering(&["XOAUTH2"], true)).await;
    let mut steps = Vec::new();
    let e = bounded(smtp_test(&smtp(addr, TlsPolicy::None), &mut steps))
        .await
        .expect_err("refused");
    assert_token_refused(&e, "SMTP");
    assert!(e.message.contains("535"), "{}", e.message);
    assert_eq!(
        steps.last().map(|s| (s.name, s.passed)),
        Some(("authenticate", false))
    );
    // The JSON error challenge was answered with an empty line, as XOAUTH2 wants.
    let responses = responses_after(&transcript, "AUTH XOAUTH2");
    assert_eq!(
        responses.first().map(String::as_str),
        Some(""),
        "{responses:?}"
    );
}

#[tokio::test]
async fn smtp_without_xoauth2_says_what_to_do_for_the_connection_it_has() {
    // Over implicit TLS the fix must not ask for TLS.
    let ca = TestCa::new();
    let addr = fake::serve(Some(ca.server_cert("localhost", false)), FakeSmtp::default).await;
    let mut cfg = smtp(addr, TlsPolicy::Implicit);
    cfg.extra_roots = vec![ca.der()];
    let mut steps = Vec::new();
    let e = bounded(smtp_test(&cfg, &mut steps))
        .await
        .expect_err("no XOAUTH2");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(
        e.message.contains("an OAuth2 token (XOAUTH2)"),
        "{}",
        e.message
    );
    let fix = e.fix.unwrap_or_default();
    assert!(fix.starts_with("Check which authentication"), "{fix}");

    // In the clear, the usual reason is that the server wants TLS first.
    let (addr, _) = smtp_server(offering(&["PLAIN"], false)).await;
    let mut steps = Vec::new();
    let e = bounded(smtp_test(&smtp(addr, TlsPolicy::None), &mut steps))
        .await
        .expect_err("no XOAUTH2");
    let fix = e.fix.unwrap_or_default();
    assert!(
        fix.starts_with("Many servers offer authentication only over TLS"),
        "{fix}"
    );
}
