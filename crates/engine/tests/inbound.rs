//! The inbound SMTP/LMTP listener end to end on loopback, with lettre as the
//! sending server: a message for a router mailbox is stored before it is
//! acknowledged; an unknown recipient is refused with 550, an oversized message
//! with 552 (above the listener's limit or the recipient organization's own);
//! a failed write answers 451 and stores nothing, and the retry succeeds; LMTP
//! answers once per recipient; STARTTLS and AUTH for clients not allow-listed;
//! with a metrics handle, each of these is counted (`mailbridge_inbound_*`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, MailParameter};
use mailbridge_engine::inbound::auth::PasswordHashString;
use mailbridge_engine::inbound::tls;
use mailbridge_engine::metrics::EngineMetrics;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod listener;

use listener::{TIMEOUT, World, address, mailbox, set_message_limit, world};

impl World {
    async fn smtp_client(&self) -> AsyncSmtpConnection {
        AsyncSmtpConnection::connect_tokio1(
            self.smtp,
            Some(TIMEOUT),
            &ClientId::Domain("relay.fabrikam.com".into()),
            None,
            None,
        )
        .await
        .expect("connects")
    }
}

/// The reply code of a lettre result, `250` or the refusal's.
fn code<T>(r: &Result<T, lettre::transport::smtp::Error>) -> String
where
    T: std::fmt::Debug,
{
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => e
            .status()
            .map(|c| c.to_string())
            .unwrap_or_else(|| format!("{e}")),
    }
}

const MESSAGE: &[u8] = b"From: alice@fabrikam.com\r\nTo: sales@contoso.com\r\nSubject: Order 42\r\nMessage-ID: <order-42@fabrikam.com>\r\n\r\n.A line with a leading dot\r\nThanks\r\n";

#[tokio::test]
async fn a_message_for_a_router_mailbox_is_stored_then_acknowledged() {
    let w = world(|_| {}).await;
    let mut c = w.smtp_client().await;
    let from = Some(address("alice@fabrikam.com"));
    let mail = c
        .command(Mail::new(from, vec![MailParameter::Size(MESSAGE.len())]))
        .await;
    assert_eq!(code(&mail), "ok");
    let tagged = "sales+lead-0190a0b0-c0d0-7e0f-8010-203040506070@contoso.com";
    assert_eq!(
        code(&c.command(Rcpt::new(address(tagged), vec![])).await),
        "ok"
    );
    assert_eq!(
        code(
            &c.command(Rcpt::new(address("support@contoso.com"), vec![]))
                .await
        ),
        "ok"
    );
    assert_eq!(code(&c.command(Data).await), "ok");
    let response = c.message(MESSAGE).await.expect("accepted");
    assert_eq!(response.code().to_string(), "250");
    c.quit().await.expect("quit");

    let sales = w.stored(&w.sales).await;
    assert_eq!(sales.len(), 1);
    // lettre ends the data with CRLF "." CRLF after the message's own CRLF, which
    // is one empty line more; the leading dot came through unstuffed.
    assert_eq!(sales[0].raw, [MESSAGE, b"\r\n"].concat());
    assert_eq!(sales[0].recipient, tagged);
    assert_eq!(
        sales[0].tag.as_deref(),
        Some("lead-0190a0b0-c0d0-7e0f-8010-203040506070")
    );
    assert_eq!(sales[0].envelope_from, "alice@fabrikam.com");
    assert_eq!(sales[0].client_address, "127.0.0.1");
    assert_eq!(sales[0].status, "pending");
    assert_eq!(w.stored(&w.support).await.len(), 1);
}

#[tokio::test]
async fn unknown_and_non_router_recipients_are_refused_with_550() {
    let w = world(|_| {}).await;
    let mut c = w.smtp_client().await;
    assert_eq!(code(&c.command(Mail::new(None, vec![])).await), "ok");
    for to in [
        "nobody@contoso.com",
        "plain@contoso.com",
        "sales@fabrikam.com",
    ] {
        assert_eq!(
            code(&c.command(Rcpt::new(address(to), vec![])).await),
            "550",
            "{to}"
        );
    }
    // With no recipient accepted there is nothing to send.
    assert_eq!(code(&c.command(Data).await), "554");
}

#[tokio::test]
async fn an_oversized_message_is_refused_with_552_at_mail_and_after_data() {
    let w = world(|_| {}).await;
    let mut c = w.smtp_client().await;
    let from = || Some(address("alice@fabrikam.com"));
    assert_eq!(
        code(
            &c.command(Mail::new(from(), vec![MailParameter::Size(2_001)]))
                .await
        ),
        "552"
    );
    // A client that does not declare the size is refused after the data.
    assert_eq!(code(&c.command(Mail::new(from(), vec![])).await), "ok");
    assert_eq!(
        code(
            &c.command(Rcpt::new(address("sales@contoso.com"), vec![]))
                .await
        ),
        "ok"
    );
    assert_eq!(code(&c.command(Data).await), "ok");
    let big = format!(
        "Subject: big\r\n\r\n{}",
        format!("{}\r\n", "x".repeat(900)).repeat(3)
    );
    assert_eq!(code(&c.message(big.as_bytes()).await), "552");
    assert!(w.stored(&w.sales).await.is_empty());
}

/// About 2.7 KB: above a 1 KB organization limit, below the listener's 10 KB.
fn two_kb_message() -> String {
    format!(
        "Subject: big\r\n\r\n{}",
        format!("{}\r\n", "x".repeat(900)).repeat(3)
    )
}

#[tokio::test]
async fn a_message_above_the_organizations_limit_is_refused_with_552() {
    let w = world(|c| c.max_message_size = 10_000).await;
    set_message_limit(&w.store, &w.org, 1).await;
    let mut c = w.smtp_client().await;
    let from = || Some(address("alice@fabrikam.com"));
    let big = two_kb_message();

    // Declared at MAIL: under the listener's limit, so MAIL is accepted, but the
    // recipient's organization takes at most 1 KB: 552 at RCPT.
    let size = MailParameter::Size(big.len());
    assert_eq!(code(&c.command(Mail::new(from(), vec![size])).await), "ok");
    let rcpt = c
        .command(Rcpt::new(address("sales@contoso.com"), vec![]))
        .await;
    assert_eq!(code(&rcpt), "552");
    let text = format!("{:?}", rcpt.expect_err("refused"));
    assert!(text.contains("5.3.4") && text.contains("1 KB"), "{text}");
    assert_eq!(code(&c.command(Rset).await), "ok");

    // Not declared: refused after the data.
    assert_eq!(code(&c.command(Mail::new(from(), vec![])).await), "ok");
    assert_eq!(
        code(
            &c.command(Rcpt::new(address("sales@contoso.com"), vec![]))
                .await
        ),
        "ok"
    );
    assert_eq!(code(&c.command(Data).await), "ok");
    assert_eq!(code(&c.message(big.as_bytes()).await), "552");
    assert!(w.stored(&w.sales).await.is_empty());

    // A message under the limit is still stored.
    let size = MailParameter::Size(MESSAGE.len());
    assert_eq!(code(&c.command(Mail::new(from(), vec![size])).await), "ok");
    assert_eq!(
        code(
            &c.command(Rcpt::new(address("sales@contoso.com"), vec![]))
                .await
        ),
        "ok"
    );
    assert_eq!(code(&c.command(Data).await), "ok");
    assert_eq!(code(&c.message(MESSAGE).await), "ok");
    let stored = w.stored(&w.sales).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].raw, [MESSAGE, b"\r\n"].concat());
}

#[tokio::test]
async fn the_limit_follows_the_organizations_settings_without_a_restart() {
    let w = world(|c| c.max_message_size = 10_000).await;
    let big = two_kb_message();
    let send = || async {
        let mut c = w.smtp_client().await;
        let size = MailParameter::Size(big.len());
        let from = Some(address("alice@fabrikam.com"));
        assert_eq!(code(&c.command(Mail::new(from, vec![size])).await), "ok");
        code(
            &c.command(Rcpt::new(address("sales@contoso.com"), vec![]))
                .await,
        )
    };
    assert_eq!(send().await, "ok");
    set_message_limit(&w.store, &w.org, 2).await;
    assert_eq!(send().await, "552");
    set_message_limit(&w.store, &w.org, 3).await;
    assert_eq!(send().await, "ok");
}

#[tokio::test]
async fn a_failed_write_answers_451_stores_nothing_and_the_retry_succeeds() {
    let w = world(|_| {}).await;
    w.sqlite(
        "CREATE TRIGGER inbound_fails BEFORE INSERT ON inbound_messages
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .await;
    let send = || async {
        let mut c = w.smtp_client().await;
        let from = Some(address("alice@fabrikam.com"));
        assert_eq!(code(&c.command(Mail::new(from, vec![])).await), "ok");
        assert_eq!(
            code(
                &c.command(Rcpt::new(address("sales@contoso.com"), vec![]))
                    .await
            ),
            "ok"
        );
        assert_eq!(
            code(
                &c.command(Rcpt::new(address("support@contoso.com"), vec![]))
                    .await
            ),
            "ok"
        );
        assert_eq!(code(&c.command(Data).await), "ok");
        code(&c.message(MESSAGE).await)
    };
    assert_eq!(send().await, "451");
    assert!(w.stored(&w.sales).await.is_empty());
    assert!(w.stored(&w.support).await.is_empty());
    // The sending server tries again once the store is back.
    w.sqlite("DROP TRIGGER inbound_fails").await;
    assert_eq!(send().await, "ok");
    assert_eq!(w.stored(&w.sales).await.len(), 1);
    assert_eq!(w.stored(&w.support).await.len(), 1);
}

/// A line-level client for LMTP, which lettre does not speak.
struct LineClient {
    reader: BufReader<tokio::net::TcpStream>,
}

impl LineClient {
    async fn connect(addr: SocketAddr) -> LineClient {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let mut c = LineClient {
            reader: BufReader::new(stream),
        };
        assert_eq!(c.replies(1).await, ["220"]);
        c
    }

    /// The codes of the next `n` replies (a multi-line reply counts once).
    async fn replies(&mut self, n: usize) -> Vec<String> {
        let mut codes = Vec::new();
        while codes.len() < n {
            let mut line = String::new();
            let read = tokio::time::timeout(TIMEOUT, self.reader.read_line(&mut line)).await;
            assert!(
                read.expect("in time").expect("read") > 0,
                "connection closed"
            );
            if line.as_bytes().get(3) == Some(&b' ') {
                codes.push(line[..3].to_owned());
            }
        }
        codes
    }

    async fn send(&mut self, line: &str, replies: usize) -> Vec<String> {
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
        self.replies(replies).await
    }
}

#[tokio::test]
async fn lmtp_answers_once_per_recipient_after_data() {
    let w = world(|_| {}).await;
    let mut c = LineClient::connect(w.lmtp).await;
    assert_eq!(c.send("LHLO relay", 1).await, ["250"]);
    assert_eq!(c.send("MAIL FROM:<alice@fabrikam.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<sales@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<nobody@contoso.com>", 1).await, ["550"]);
    assert_eq!(c.send("RCPT TO:<support@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("DATA", 1).await, ["354"]);
    assert_eq!(
        c.send("Subject: hi\r\n\r\n..dot\r\n.", 2).await,
        ["250", "250"]
    );
    assert_eq!(c.send("QUIT", 1).await, ["221"]);
    let sales = w.stored(&w.sales).await;
    assert_eq!(sales[0].raw, b"Subject: hi\r\n\r\n.dot\r\n");
    assert_eq!(w.stored(&w.support).await.len(), 1);
}

#[tokio::test]
async fn lmtp_refuses_only_the_recipients_whose_organization_limit_is_exceeded() {
    let w = world(|c| c.max_message_size = 10_000).await;
    let fabrikam = w
        .store
        .create_organization("Fabrikam", None)
        .await
        .expect("org")
        .id;
    let orders = mailbox(&w.store, &fabrikam, "orders@fabrikam.com", true).await;
    set_message_limit(&w.store, &fabrikam, 1).await;
    let big = two_kb_message();
    // The message's lines, then the final dot.
    let data = format!("{big}.");

    let mut c = LineClient::connect(w.lmtp).await;
    assert_eq!(c.send("LHLO relay", 1).await, ["250"]);
    // Declared: refused at RCPT for Fabrikam only.
    let declared = format!("MAIL FROM:<alice@contoso.com> SIZE={}", big.len());
    assert_eq!(c.send(&declared, 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<orders@fabrikam.com>", 1).await, ["552"]);
    assert_eq!(c.send("RCPT TO:<sales@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("RSET", 1).await, ["250"]);
    // Not declared: one reply per recipient after the data.
    assert_eq!(c.send("MAIL FROM:<alice@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<orders@fabrikam.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<sales@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("DATA", 1).await, ["354"]);
    assert_eq!(c.send(&data, 2).await, ["552", "250"]);
    assert_eq!(c.send("QUIT", 1).await, ["221"]);

    let sales = w.stored(&w.sales).await;
    assert_eq!(sales.len(), 1);
    assert!(sales[0].raw.len() > 1024, "the whole message");
    let orders = w
        .store
        .inbound_messages_of_mailbox(&fabrikam, &orders)
        .await
        .expect("list");
    assert!(
        orders.is_empty(),
        "nothing above Fabrikam's limit is stored"
    );
}

#[tokio::test]
async fn clients_not_allow_listed_need_starttls_and_auth() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let server = tls::server_config(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
        .expect("TLS configuration");
    let w = world(move |c| {
        c.allowed_clients.clear();
        c.tls = Some(server);
        c.users = BTreeMap::from([("relay".to_owned(), PasswordHashString::hash("s3cret"))]);
    })
    .await;
    let hello = ClientId::Domain("relay.fabrikam.com".into());

    // Without TLS: no AUTH on offer, and no mail.
    let mut c = w.smtp_client().await;
    assert_eq!(code(&c.command(Mail::new(None, vec![])).await), "530");

    // With TLS, a wrong password is refused, the right one lets mail through.
    let tls = || {
        TlsParameters::builder("localhost".to_owned())
            .dangerous_accept_invalid_certs(true)
            .build_rustls()
            .expect("client TLS")
    };
    let mut c = w.smtp_client().await;
    c.starttls(tls(), &hello).await.expect("STARTTLS");
    let wrong = Credentials::new("relay".to_owned(), "guess".to_owned());
    assert_eq!(code(&c.auth(&[Mechanism::Plain], &wrong).await), "535");
    // So is an unknown user, even with a password another user has.
    let mut c = w.smtp_client().await;
    c.starttls(tls(), &hello).await.expect("STARTTLS");
    let unknown = Credentials::new("nobody".to_owned(), "s3cret".to_owned());
    assert_eq!(code(&c.auth(&[Mechanism::Plain], &unknown).await), "535");
    let mut c = w.smtp_client().await;
    c.starttls(tls(), &hello).await.expect("STARTTLS");
    let right = Credentials::new("relay".to_owned(), "s3cret".to_owned());
    c.auth(&[Mechanism::Login], &right)
        .await
        .expect("AUTH LOGIN");
    assert_eq!(code(&c.command(Mail::new(None, vec![])).await), "ok");
    assert_eq!(
        code(
            &c.command(Rcpt::new(address("sales@contoso.com"), vec![]))
                .await
        ),
        "ok"
    );
    assert_eq!(code(&c.command(Data).await), "ok");
    assert_eq!(code(&c.message(MESSAGE).await), "ok");
    assert_eq!(w.stored(&w.sales).await.len(), 1);
}

/// The `mailbridge_inbound_*` series of the registry's text encoding, sorted.
fn inbound_series(metrics: &EngineMetrics) -> Vec<String> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, metrics.registry()).expect("encodes");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("mailbridge_inbound_"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn smtp_verdicts_and_outcomes_are_counted() {
    let metrics = Arc::new(EngineMetrics::new());
    let handle = metrics.clone();
    let w = world(move |c| {
        c.metrics = Some(handle);
        c.max_recipients = 1;
    })
    .await;
    assert!(inbound_series(&metrics).is_empty(), "nothing before mail");
    let mut c = w.smtp_client().await;
    let from = || Some(address("alice@fabrikam.com"));
    let rcpt = |to: &str| Rcpt::new(address(to), vec![]);

    // Stored, with an unknown recipient and one over max_recipients on the way.
    assert_eq!(code(&c.command(Mail::new(from(), vec![])).await), "ok");
    assert_eq!(code(&c.command(rcpt("nobody@contoso.com")).await), "550");
    assert_eq!(code(&c.command(rcpt("sales@contoso.com")).await), "ok");
    assert_eq!(code(&c.command(rcpt("support@contoso.com")).await), "452");
    assert_eq!(code(&c.command(Data).await), "ok");
    assert_eq!(code(&c.message(MESSAGE).await), "ok");

    // Too large for the listener: declared at MAIL, then found after the data.
    let size = MailParameter::Size(2_001);
    assert_eq!(code(&c.command(Mail::new(from(), vec![size])).await), "552");
    assert_eq!(code(&c.command(Mail::new(from(), vec![])).await), "ok");
    assert_eq!(code(&c.command(rcpt("sales@contoso.com")).await), "ok");
    assert_eq!(code(&c.command(Data).await), "ok");
    let big = two_kb_message();
    assert_eq!(code(&c.message(big.as_bytes()).await), "552");

    // Too large for the recipient's organization (1 KB), declared at MAIL.
    set_message_limit(&w.store, &w.org, 1).await;
    let size = MailParameter::Size(1_500);
    assert_eq!(code(&c.command(Mail::new(from(), vec![size])).await), "ok");
    assert_eq!(code(&c.command(rcpt("sales@contoso.com")).await), "552");
    assert_eq!(code(&c.command(Rset).await), "ok");

    // The write fails: 451.
    w.sqlite(
        "CREATE TRIGGER inbound_fails BEFORE INSERT ON inbound_messages
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .await;
    assert_eq!(code(&c.command(Mail::new(from(), vec![])).await), "ok");
    assert_eq!(code(&c.command(rcpt("sales@contoso.com")).await), "ok");
    assert_eq!(code(&c.command(Data).await), "ok");
    assert_eq!(code(&c.message(MESSAGE).await), "451");
    assert_eq!(w.stored(&w.sales).await.len(), 1);

    assert_eq!(
        inbound_series(&metrics),
        sorted(&[
            "mailbridge_inbound_connections_total{protocol=\"smtp\",outcome=\"accepted\"} 1",
            "mailbridge_inbound_recipients_total{protocol=\"smtp\",outcome=\"accepted\"} 3",
            "mailbridge_inbound_recipients_total{protocol=\"smtp\",outcome=\"unknown\"} 1",
            "mailbridge_inbound_recipients_total{protocol=\"smtp\",outcome=\"too_many\"} 1",
            "mailbridge_inbound_recipients_total{protocol=\"smtp\",outcome=\"too_large\"} 1",
            "mailbridge_inbound_messages_total{protocol=\"smtp\",outcome=\"stored\"} 1",
            "mailbridge_inbound_messages_total{protocol=\"smtp\",outcome=\"too_large\"} 2",
            "mailbridge_inbound_messages_total{protocol=\"smtp\",outcome=\"store_failed\"} 1",
        ])
    );
}

#[tokio::test]
async fn lmtp_outcomes_and_busy_refusals_are_counted() {
    let metrics = Arc::new(EngineMetrics::new());
    let handle = metrics.clone();
    let w = world(move |c| {
        c.metrics = Some(handle);
        c.max_connections = 1;
        c.max_message_size = 10_000;
    })
    .await;
    let fabrikam = w
        .store
        .create_organization("Fabrikam", None)
        .await
        .expect("org")
        .id;
    mailbox(&w.store, &fabrikam, "orders@fabrikam.com", true).await;
    set_message_limit(&w.store, &fabrikam, 1).await;
    let data = format!("{}.", two_kb_message());

    // This connection holds the only place; the next ones, on either listener,
    // are answered 421.
    let mut c = LineClient::connect(w.lmtp).await;
    for addr in [w.lmtp, w.smtp] {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let mut line = String::new();
        tokio::time::timeout(TIMEOUT, BufReader::new(stream).read_line(&mut line))
            .await
            .expect("in time")
            .expect("read");
        assert!(line.starts_with("421 "), "{line}");
    }

    assert_eq!(c.send("LHLO relay", 1).await, ["250"]);
    // Stored for sales@, refused for Fabrikam's 1 KB: one message, stored.
    assert_eq!(c.send("MAIL FROM:<alice@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<orders@fabrikam.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<nobody@contoso.com>", 1).await, ["550"]);
    assert_eq!(c.send("RCPT TO:<sales@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("DATA", 1).await, ["354"]);
    assert_eq!(c.send(&data, 2).await, ["552", "250"]);
    // Refused for its only recipient.
    assert_eq!(c.send("MAIL FROM:<alice@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<orders@fabrikam.com>", 1).await, ["250"]);
    assert_eq!(c.send("DATA", 1).await, ["354"]);
    assert_eq!(c.send(&data, 1).await, ["552"]);
    // A line over 998 characters.
    assert_eq!(c.send("MAIL FROM:<alice@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("RCPT TO:<sales@contoso.com>", 1).await, ["250"]);
    assert_eq!(c.send("DATA", 1).await, ["354"]);
    let long = format!("Subject: long\r\n\r\n{}\r\n.", "x".repeat(1_000));
    assert_eq!(c.send(&long, 1).await, ["554"]);
    assert_eq!(c.send("QUIT", 1).await, ["221"]);
    assert_eq!(w.stored(&w.sales).await.len(), 1);

    assert_eq!(
        inbound_series(&metrics),
        sorted(&[
            "mailbridge_inbound_connections_total{protocol=\"lmtp\",outcome=\"accepted\"} 1",
            "mailbridge_inbound_connections_total{protocol=\"lmtp\",outcome=\"refused_busy\"} 1",
            "mailbridge_inbound_connections_total{protocol=\"smtp\",outcome=\"refused_busy\"} 1",
            "mailbridge_inbound_recipients_total{protocol=\"lmtp\",outcome=\"accepted\"} 4",
            "mailbridge_inbound_recipients_total{protocol=\"lmtp\",outcome=\"unknown\"} 1",
            "mailbridge_inbound_messages_total{protocol=\"lmtp\",outcome=\"stored\"} 1",
            "mailbridge_inbound_messages_total{protocol=\"lmtp\",outcome=\"too_large\"} 1",
            "mailbridge_inbound_messages_total{protocol=\"lmtp\",outcome=\"line_too_long\"} 1",
        ])
    );
}

#[tokio::test]
async fn refused_logins_are_counted() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let server = tls::server_config(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
        .expect("TLS configuration");
    let metrics = Arc::new(EngineMetrics::new());
    let handle = metrics.clone();
    let w = world(move |c| {
        c.allowed_clients.clear();
        c.tls = Some(server);
        c.users = BTreeMap::from([("relay".to_owned(), PasswordHashString::hash("s3cret"))]);
        c.metrics = Some(handle);
    })
    .await;
    let hello = ClientId::Domain("relay.fabrikam.com".into());
    // lettre closes the connection after a refused AUTH: one connection each.
    let attempt = async |mechanism: Mechanism, password: &str| {
        let tls = TlsParameters::builder("localhost".to_owned())
            .dangerous_accept_invalid_certs(true)
            .build_rustls()
            .expect("client TLS");
        let mut c = w.smtp_client().await;
        c.starttls(tls, &hello).await.expect("STARTTLS");
        let credentials = Credentials::new("relay".to_owned(), password.to_owned());
        code(&c.auth(&[mechanism], &credentials).await)
    };
    assert_eq!(attempt(Mechanism::Plain, "guess").await, "535");
    assert_eq!(attempt(Mechanism::Login, "guess").await, "535");
    assert_eq!(attempt(Mechanism::Plain, "s3cret").await, "ok");

    assert_eq!(
        inbound_series(&metrics),
        sorted(&[
            "mailbridge_inbound_connections_total{protocol=\"smtp\",outcome=\"accepted\"} 3",
            "mailbridge_inbound_auth_failures_total{protocol=\"smtp\"} 2",
        ])
    );
}
