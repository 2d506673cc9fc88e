//! The SMTP connector against the test SMTP server (aiosmtpd relaying into
//! Dovecot), and a scripted server for refusals the real one never makes.

#[path = "support/common.rs"]
mod common;
#[path = "support/fake.rs"]
mod fake;

use std::time::Duration;

use common::*;
use mailbridge_connectors::{Auth, ImapSession, smtp_send, smtp_test};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::TestServers;

const TRANSIENT: ErrorClass = ErrorClass::Transient { retry_after: None };

#[tokio::test]
async fn smtp_send_with_auth_delivers_to_the_recipients_inbox() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let bob = fresh_user(&servers, "bob").await;
    let (id, raw) = message(&alice.address, &bob.address, "sent by mailbridge");
    let cfg = smtp_for(&servers, Some(password(&alice)));
    smtp_send(
        &cfg,
        &alice.address,
        std::slice::from_ref(&bob.address),
        &raw,
    )
    .await
    .expect("sent");

    let received = servers
        .wait_smtp_message(Duration::from_secs(10), |m| {
            m.header("message-id").as_deref() == Some(id.as_str())
        })
        .await;
    assert_eq!(received.mail_from, alice.address);
    assert_eq!(received.rcpt_tos, std::slice::from_ref(&bob.address));
    assert_eq!(received.auth_user.as_deref(), Some("alice"));
    assert_eq!(received.raw, raw, "the message arrives byte for byte");
    assert_eq!(received.lmtp_delivered, std::slice::from_ref(&bob.address));

    let mut imap = ImapSession::connect(&imap_for(&servers, &bob))
        .await
        .expect("login");
    imap.select("INBOX").await.expect("selected");
    let inbox = imap.fetch_after(0, 10).await.expect("fetched");
    assert_eq!(inbox.len(), 1);
    assert!(has_message_id(&inbox[0].bytes, &id));
    imap.logout().await;
}

#[tokio::test]
async fn a_wrong_smtp_password_is_permanent_for_the_mailbox() {
    let servers = TestServers::from_env();
    let wrong = "certainly-not-alices-5150";
    let cfg = smtp_for(
        &servers,
        Some(Auth::Password {
            username: "alice".to_owned(),
            password: Secret::new(wrong),
        }),
    );
    let (_, raw) = message("alice@example.org", "bob@example.org", "never sent");
    let e = smtp_send(
        &cfg,
        "alice@example.org",
        &["bob@example.org".to_owned()],
        &raw,
    )
    .await
    .expect_err("refused");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox),
        "{e:?}"
    );
    assert!(
        e.message
            .starts_with("the SMTP server rejected the user name or password for alice"),
        "{}",
        e.message
    );
    assert!(e.message.contains("535"), "{}", e.message);
    assert!(!format!("{e:?}").contains(wrong));

    let mut steps = Vec::new();
    let e2 = smtp_test(&cfg, &mut steps).await.expect_err("refused");
    assert_eq!(e2.message, e.message);
    assert_eq!(
        steps.iter().map(|s| (s.name, s.passed)).collect::<Vec<_>>(),
        [
            ("resolve", true),
            ("connect", true),
            ("tls", true),
            ("authenticate", false)
        ]
    );
}

#[tokio::test]
async fn smtp_test_records_each_step() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let mut steps = Vec::new();
    smtp_test(&smtp_for(&servers, Some(password(&alice))), &mut steps)
        .await
        .expect("passed");
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    assert_eq!(names, ["resolve", "connect", "tls", "authenticate"]);
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");
    assert!(
        steps[2].detail.contains("does not offer STARTTLS"),
        "{steps:#?}"
    );
    assert!(
        steps[3].detail.starts_with("logged in as alice with AUTH"),
        "{steps:#?}"
    );
}

#[tokio::test]
async fn smtp_connection_failures_are_classified() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let mut cfg = smtp_for(&servers, Some(password(&alice)));
    cfg.port = closed_port();
    let mut steps = Vec::new();
    let e = smtp_test(&cfg, &mut steps).await.expect_err("refused");
    assert_eq!(
        (e.class, e.scope),
        (TRANSIENT, ErrorScope::Profile),
        "{e:?}"
    );
    assert_eq!(
        steps.last().map(|s| (s.name, s.passed)),
        Some(("connect", false))
    );

    let mut cfg = smtp_for(&servers, Some(password(&alice)));
    cfg.tls = TlsPolicy::StartTlsRequired;
    let e = smtp_test(&cfg, &mut Vec::new())
        .await
        .expect_err("no STARTTLS");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(
        e.fix.as_deref().unwrap_or("").contains("allow_plaintext"),
        "{e:?}"
    );
}

#[tokio::test]
async fn sending_without_auth_is_refused_for_the_mailbox() {
    let servers = TestServers::from_env();
    let (_, raw) = message("alice@example.org", "bob@example.org", "no auth");
    let e = smtp_send(
        &smtp_for(&servers, None),
        "alice@example.org",
        &["bob@example.org".to_owned()],
        &raw,
    )
    .await
    .expect_err("530");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox),
        "{e:?}"
    );
    assert!(e.message.contains("530"), "{}", e.message);
}

#[tokio::test]
async fn a_refused_recipient_is_permanent_for_the_item_and_a_delay_transient() {
    let addr = fake::serve(None, fake::FakeSmtp::default).await;
    let cfg = mailbridge_connectors::SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port: addr.port(),
        tls: TlsPolicy::None,
        auth: Some(Auth::Password {
            username: "alice".to_owned(),
            password: Secret::new("pw-alice"),
        }),
        timeout: TIMEOUT,
        extra_roots: Vec::new(),
        hello_name: "mailbridge.test".to_owned(),
    };
    let raw = b"Subject: x\r\n\r\nx\r\n";
    smtp_send(
        &cfg,
        "alice@example.org",
        &["ok@example.org".to_owned()],
        raw,
    )
    .await
    .expect("accepted");

    let e = smtp_send(
        &cfg,
        "alice@example.org",
        &[
            "ok@example.org".to_owned(),
            "refused@example.org".to_owned(),
        ],
        raw,
    )
    .await
    .expect_err("550");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Item),
        "{e:?}"
    );
    assert!(
        e.message
            .contains("refused the recipient refused@example.org: 550"),
        "{}",
        e.message
    );

    let e = smtp_send(
        &cfg,
        "alice@example.org",
        &["later@example.org".to_owned()],
        raw,
    )
    .await
    .expect_err("451");
    assert_eq!((e.class, e.scope), (TRANSIENT, ErrorScope::Item), "{e:?}");

    let e = smtp_send(
        &cfg,
        "alice@example.org",
        &["not an address".to_owned()],
        raw,
    )
    .await
    .expect_err("invalid");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Item),
        "{e:?}"
    );
}
