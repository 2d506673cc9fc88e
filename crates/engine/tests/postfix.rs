//! The inbound listener behind a real Postfix (3.7, a private instance per test, see
//! `mailbridge_testkit::private_postfix`): mail submitted to Postfix on loopback is
//! relayed to the listener over SMTP or LMTP and stored once per recipient; Postfix
//! bounces what the listener refuses with 5xx (unknown recipient, oversize) and
//! retries what it defers with 451 (a failed store write) until it is stored.

use std::net::SocketAddr;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailbridge_testkit::private_postfix::{NextHop, PrivatePostfix};

mod listener;

use listener::{World, address};

/// The bound of every wait for Postfix (its retries come about once a second).
const WAIT: Duration = Duration::from_secs(30);

/// The listener's world, limited to `max_message_size` bytes.
async fn world(max_message_size: u64) -> World {
    listener::world(|c| c.max_message_size = max_message_size).await
}

/// Submits `raw` to Postfix over SMTP with lettre; Postfix queues it and answers 250.
async fn submit(postfix: &PrivatePostfix, from: &str, to: &[&str], raw: &[u8]) {
    let smtp = postfix.smtp_addr();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .timeout(Some(WAIT))
        .build();
    let envelope = Envelope::new(Some(address(from)), to.iter().map(|a| address(a)).collect())
        .expect("envelope");
    transport
        .send_raw(&envelope, raw)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Postfix refused the submission: {e}; {}",
                postfix.log_tail()
            )
        });
}

/// A complete message (Date and Message-ID included, so that Postfix adds no header
/// but its Received:), with a line that starts with a dot.
fn message(id: &str, to: &str) -> Vec<u8> {
    format!(
        "From: alice@fabrikam.com\r\nTo: {to}\r\nSubject: Order {id}\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@fabrikam.com>\r\n\
         \r\n.A line with a leading dot\r\nThanks\r\n"
    )
    .into_bytes()
}

/// Asserts that `stored` is `sent` preceded only by the trace header Postfix adds
/// (`Received:` and its continuation lines). lettre ends the data with CRLF "." CRLF
/// after the message's own CRLF, which is one empty line more: Postfix keeps it.
fn assert_relayed_bytes(stored: &[u8], sent: &[u8]) {
    let sent = &[sent, b"\r\n"].concat()[..];
    let text = String::from_utf8_lossy(stored);
    assert!(
        stored.ends_with(sent),
        "the stored message does not end with the submitted one:\n{text}"
    );
    let added = String::from_utf8_lossy(&stored[..stored.len() - sent.len()]).into_owned();
    assert!(
        added.starts_with("Received: "),
        "Postfix's trace header is missing:\n{text}"
    );
    for line in added.split_terminator("\r\n") {
        assert!(
            line.starts_with("Received: ") || line.starts_with([' ', '\t']),
            "unexpected header added on the way: {line:?} in\n{text}"
        );
    }
}

/// The log says the next hop (the listener) answered 250 for `recipient`.
async fn assert_sent(postfix: &PrivatePostfix, recipient: &str, next_hop: SocketAddr) {
    let line = postfix.wait_for_delivery(recipient, "sent", WAIT).await;
    assert!(
        line.contains(&format!(
            "relay={}[{}]:{}",
            next_hop.ip(),
            next_hop.ip(),
            next_hop.port()
        )),
        "delivered elsewhere: {line}"
    );
    assert!(line.contains("(250 "), "{line}");
}

#[tokio::test]
async fn a_message_relayed_over_smtp_is_stored_once_with_its_envelope() {
    let w = world(100_000).await;
    let postfix = PrivatePostfix::start(NextHop::Smtp(w.smtp)).await;
    let raw = message("smtp-1", "sales@contoso.com");
    let tagged = "sales+lead-7@contoso.com";
    submit(&postfix, "alice@fabrikam.com", &[tagged], &raw).await;
    assert_sent(&postfix, tagged, w.smtp).await;

    let sales = w.stored(&w.sales).await;
    assert_eq!(sales.len(), 1, "{}", postfix.log_tail());
    assert_eq!(sales[0].recipient, tagged);
    assert_eq!(sales[0].tag.as_deref(), Some("lead-7"));
    assert_eq!(sales[0].envelope_from, "alice@fabrikam.com");
    assert_eq!(sales[0].client_address, "127.0.0.1");
    assert_eq!(sales[0].status, "pending");
    assert_relayed_bytes(&sales[0].raw, &raw);
    assert!(w.stored(&w.support).await.is_empty());
    assert_eq!(
        postfix.deliveries(tagged).len(),
        1,
        "{}",
        postfix.log_tail()
    );
}

#[tokio::test]
async fn a_message_relayed_over_lmtp_is_stored_once_per_recipient() {
    let w = world(100_000).await;
    let postfix = PrivatePostfix::start(NextHop::Lmtp(w.lmtp)).await;
    let raw = message("lmtp-1", "sales@contoso.com, support@contoso.com");
    let to = ["sales@contoso.com", "support@contoso.com"];
    submit(&postfix, "alice@fabrikam.com", &to, &raw).await;
    for rcpt in to {
        assert_sent(&postfix, rcpt, w.lmtp).await;
        let line = postfix.deliveries(rcpt).join("\n");
        assert!(
            line.contains("postfix-") && line.contains("/lmtp["),
            "{line}"
        );
    }

    for mailbox in [&w.sales, &w.support] {
        let stored = w.stored(mailbox).await;
        assert_eq!(stored.len(), 1, "{}", postfix.log_tail());
        assert_eq!(stored[0].envelope_from, "alice@fabrikam.com");
        assert_relayed_bytes(&stored[0].raw, &raw);
    }
    assert_eq!(w.stored(&w.sales).await[0].recipient, to[0]);
    assert_eq!(w.stored(&w.support).await[0].recipient, to[1]);
}

#[tokio::test]
async fn an_unknown_recipient_is_bounced_by_postfix_and_nothing_is_stored() {
    let w = world(100_000).await;
    let postfix = PrivatePostfix::start(NextHop::Smtp(w.smtp)).await;
    let raw = message("unknown-1", "nobody@contoso.com");
    submit(
        &postfix,
        "alice@fabrikam.com",
        &["nobody@contoso.com"],
        &raw,
    )
    .await;
    let line = postfix
        .wait_for_delivery("nobody@contoso.com", "bounced", WAIT)
        .await;
    assert!(line.contains("said: 550 5.1.1"), "{line}");
    assert!(line.contains("in reply to RCPT TO command"), "{line}");
    assert!(w.stored(&w.sales).await.is_empty());
    assert!(w.stored(&w.support).await.is_empty());
}

/// A message of about 4,600 bytes, over the listener's limit of 2,000.
fn big_message() -> String {
    let body = format!("{}\r\n", "x".repeat(70)).repeat(60);
    format!(
        "From: alice@fabrikam.com\r\nTo: sales@contoso.com\r\nSubject: big\r\n\
         Message-ID: <big-1@fabrikam.com>\r\n\r\n{body}"
    )
}

#[tokio::test]
async fn an_oversized_message_is_bounced_by_postfix_on_the_advertised_size() {
    let w = world(2_000).await;
    let postfix = PrivatePostfix::start(NextHop::Smtp(w.smtp)).await;
    let raw = big_message();
    submit(
        &postfix,
        "alice@fabrikam.com",
        &["sales@contoso.com"],
        raw.as_bytes(),
    )
    .await;
    let line = postfix
        .wait_for_delivery("sales@contoso.com", "bounced", WAIT)
        .await;
    // Postfix compares the message with the SIZE the listener advertises and
    // bounces it without sending MAIL FROM.
    assert!(line.contains("dsn=5.3.4"), "{line}");
    assert!(line.contains("exceeds size limit 2000 of server"), "{line}");
    assert!(w.stored(&w.sales).await.is_empty());
}

#[tokio::test]
async fn an_oversized_message_is_refused_with_552_after_data_and_bounced() {
    let w = world(2_000).await;
    // Postfix ignores the SIZE keyword of the listener's EHLO reply, so the listener
    // sees the whole message and refuses it after the data.
    let postfix = PrivatePostfix::start_with(
        NextHop::Smtp(w.smtp),
        &[("smtp_discard_ehlo_keywords", "size")],
    )
    .await;
    let raw = big_message();
    submit(
        &postfix,
        "alice@fabrikam.com",
        &["sales@contoso.com"],
        raw.as_bytes(),
    )
    .await;
    let line = postfix
        .wait_for_delivery("sales@contoso.com", "bounced", WAIT)
        .await;
    assert!(line.contains("said: 552 5.3.4"), "{line}");
    assert!(line.contains("in reply to end of DATA command"), "{line}");
    assert!(w.stored(&w.sales).await.is_empty());
}

#[tokio::test]
async fn a_failed_store_write_is_deferred_by_postfix_and_stored_once_on_retry() {
    let w = world(100_000).await;
    w.sqlite(
        "CREATE TRIGGER inbound_fails BEFORE INSERT ON inbound_messages
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .await;
    let postfix = PrivatePostfix::start(NextHop::Smtp(w.smtp)).await;
    let raw = message("retry-1", "sales@contoso.com");
    submit(&postfix, "alice@fabrikam.com", &["sales@contoso.com"], &raw).await;
    let line = postfix
        .wait_for_delivery("sales@contoso.com", "deferred", WAIT)
        .await;
    assert!(line.contains("said: 451 4.3.0"), "{line}");
    assert!(line.contains("end of DATA"), "{line}");
    assert!(w.stored(&w.sales).await.is_empty());

    // The store is back: the next attempt (now, or Postfix's own retry) stores it.
    w.sqlite("DROP TRIGGER inbound_fails").await;
    postfix.flush();
    assert_sent(&postfix, "sales@contoso.com", w.smtp).await;
    let sales = w.stored(&w.sales).await;
    assert_eq!(sales.len(), 1, "{}", postfix.log_tail());
    assert_relayed_bytes(&sales[0].raw, &raw);
    let attempts = postfix.deliveries("sales@contoso.com");
    assert!(
        attempts.last().is_some_and(|l| l.contains("status=sent")),
        "{attempts:#?}"
    );
    assert_eq!(
        attempts
            .iter()
            .filter(|l| l.contains("status=sent"))
            .count(),
        1,
        "{attempts:#?}"
    );
}
