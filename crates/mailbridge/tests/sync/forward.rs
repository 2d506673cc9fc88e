//! Forward mailboxes against the real Dovecot: a queue's mailbox receives copies
//! forwarded by two users (as an attachment, and redirected with a resent
//! block); each is tracked as its original recipient's, one email per
//! Message-ID with what that user syncs directly, and the processed copies are
//! deleted from the forward mailbox only.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, email_by_message_id, fast_engine, message, unique, wait};

/// The messages (files) in a Maildir's `new/` and `cur/`.
fn messages_in(maildir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(maildir.join(d)).ok())
        .map(|r| r.count())
        .sum()
}

/// Whether a message of a Maildir (`new/` or `cur/`) carries this Message-ID.
fn holds(maildir: &Path, message_id: &str) -> bool {
    ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(maildir.join(d)).ok())
        .flatten()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .any(|raw| String::from_utf8_lossy(&raw).contains(message_id))
}

/// `original` forwarded by `by` to `to` as a `message/rfc822` attachment, as
/// Outlook's "forward as attachment" writes it.
pub(crate) fn forwarded_as_attachment(by: &str, to: &str, original: &[u8]) -> Vec<u8> {
    let id = format!("{}@contoso.test", uuid::Uuid::now_v7().simple());
    let mut raw = format!(
        "From: {by}\r\nTo: {to}\r\nSubject: FW: forwarded\r\nMessage-ID: <{id}>\r\n\
Date: {}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"_002_\"\r\n\r\n\
--_002_\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\nFYI\r\n\
--_002_\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes();
    raw.extend_from_slice(original);
    raw.extend_from_slice(b"\r\n--_002_--\r\n");
    raw
}

/// `original` redirected by `by` to `to` with a resent block (RFC 5322 §3.6.6).
pub(crate) fn redirected(by: &str, to: &str, original: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "Resent-From: {by}\r\nResent-To: {to}\r\nResent-Date: {}\r\n",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes();
    raw.extend_from_slice(original);
    raw
}

async fn copies_are_attributed_linked_and_deleted(backend: Backend) {
    let w = World::start(backend, fast_engine()).await;
    let (_, alice_mb, alice) = w.member("all").await;
    let (bob_user, bob_mb, bob) = w.member("all").await;
    // The forward mailbox: a queue's, on its own Dovecot user.
    let fwd_name = unique("fwd");
    let fwd = w
        .servers
        .add_user(&fwd_name, &format!("pw-{fwd_name}"))
        .await;
    let queue = w
        .post(
            "/queues",
            json!({"name": "Forwarded mail", "email": fwd.address, "tracking_filter": "all"}),
        )
        .await;
    let fwd_mb = queue["mailbox_id"].as_str().unwrap().to_owned();
    // A user's mailbox cannot be a forward mailbox.
    let (status, v) = w
        .try_call(
            Method::PATCH,
            &format!("/api/v1/orgs/{}/mailboxes/{alice_mb}", w.org),
            json!({"is_forward_mailbox": true}),
            &w.admin,
        )
        .await;
    assert_eq!(status, 422, "{v}");
    let m = w
        .patch(
            &format!("/mailboxes/{fwd_mb}"),
            json!({"profile_id": w.profile, "password": fwd.password,
                   "is_forward_mailbox": true, "delete_after_processing": true}),
        )
        .await;
    assert_eq!(m["is_forward_mailbox"], true, "{m}");
    assert_eq!(m["delete_after_processing"], true, "{m}");
    let (status, v) = w
        .try_call(
            Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
            json!({"ids": [fwd_mb]}),
            &w.approver,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // Alice also syncs directly; Bob does not.
    let job = w.test_and_enable(&[&alice_mb, &fwd_mb]).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let (to_alice, alice_id) = message("Carl <carl@fabrikam.com>", &[&alice.address], "Quote", "");
    let (to_bob, bob_id) = message("Carl <carl@fabrikam.com>", &[&bob.address], "Order", "");
    let (to_dave, dave_id) = message("carl@fabrikam.com", &["dave@elsewhere.org"], "Other", "");
    w.servers.deliver(&alice.address, &to_alice).await.unwrap();
    for raw in [
        forwarded_as_attachment(&alice.address, &fwd.address, &to_alice),
        redirected(&bob.address, &fwd.address, &to_bob),
        redirected("dave@elsewhere.org", &fwd.address, &to_dave),
    ] {
        w.servers.deliver(&fwd.address, &raw).await.unwrap();
    }

    assert_copies_attributed(
        &w,
        &fwd_mb,
        Recipient {
            mailbox: &bob_mb,
            user_id: &bob_user["id"],
            address: &bob.address,
        },
        &alice_mb,
        [&bob_id, &alice_id, &dave_id],
    )
    .await;

    // Every processed copy is deleted from the forward mailbox, and nothing
    // else: Alice's own copy stays in her mailbox.
    let fwd_dir = w.servers.maildir(&fwd.login);
    wait(
        "the forward mailbox emptied",
        Duration::from_secs(15),
        || async { (messages_in(&fwd_dir) == 0).then_some(()) },
    )
    .await;
    assert!(
        holds(&w.servers.maildir(&alice.login), &alice_id),
        "Alice's own copy stays in her mailbox"
    );
}

/// A user a forwarded copy was first sent to.
pub(crate) struct Recipient<'a> {
    pub mailbox: &'a str,
    pub user_id: &'a Value,
    pub address: &'a str,
}

/// The outcome of the three copies every host's scenario forwards, the same on
/// every host: Bob's redirected copy is his email (its decision names the
/// Resent-From); Alice's, forwarded as an attachment, is the attached original
/// and one email with what her own mailbox saw; Dave, no user, is skipped.
pub(crate) async fn assert_copies_attributed(
    w: &World,
    fwd_mb: &str,
    bob: Recipient<'_>,
    alice_mb: &str,
    [bob_id, alice_id, dave_id]: [&str; 3],
) {
    const WAIT: Duration = Duration::from_secs(20);
    let email = email_by_message_id(w, bob_id, WAIT).await;
    assert_eq!(email["mailbox_id"], bob.mailbox, "{email}");
    assert_eq!(email["subject"], "Order", "{email}");
    let to_party = email["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "to")
        .cloned()
        .unwrap();
    assert_eq!(&to_party["party_id"], bob.user_id, "{email}");
    let d = &w.decisions(fwd_mb, &format!("&message_id={bob_id}")).await[0];
    assert_eq!(d["outcome"], "tracked", "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("forwarded copy of {} (Resent-From)", bob.address)),
        "{d}"
    );

    let email = email_by_message_id(w, alice_id, WAIT).await;
    assert_eq!(email["mailbox_id"], alice_mb, "{email}");
    assert_eq!(email["subject"], "Quote", "the original, not the FW: copy");
    for mb in [alice_mb, fwd_mb] {
        wait("both decisions on Alice's", WAIT, || async {
            let d = w.decisions(mb, &format!("&message_id={alice_id}")).await;
            d.first().filter(|d| d["email_id"] == email["id"]).cloned()
        })
        .await;
    }
    assert_eq!(
        w.emails(&format!("&message_id={alice_id}")).await.len(),
        1,
        "one Message-ID, one email"
    );

    let d = wait("the decision on Dave's", WAIT, || async {
        w.decisions(fwd_mb, &format!("&message_id={dave_id}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(d["outcome"], "skipped", "{d}");
    assert_eq!(d["rule"], "original_recipient_unknown", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("dave@"), "{d}");
    assert!(w.emails(&format!("&message_id={dave_id}")).await.is_empty());
}

#[tokio::test]
async fn forward_mailbox_on_sqlite() {
    copies_are_attributed_linked_and_deleted(Backend::Sqlite).await;
}

#[tokio::test]
async fn forward_mailbox_on_postgres() {
    copies_are_attributed_linked_and_deleted(Backend::Postgres).await;
}

/// A copy skipped by its original recipient's filter, then tagged for tracking
/// in the forward mailbox: tracked as that recipient's, not the queue's.
#[tokio::test]
async fn a_copy_tagged_later_is_tracked_as_the_original_recipients() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, bob_mb, bob) = w.member("none").await;
    let fwd_name = unique("fwd");
    let fwd = w
        .servers
        .add_user(&fwd_name, &format!("pw-{fwd_name}"))
        .await;
    let queue = w
        .post(
            "/queues",
            json!({"name": "Forwarded mail", "email": fwd.address, "tracking_filter": "all"}),
        )
        .await;
    let fwd_mb = queue["mailbox_id"].as_str().unwrap().to_owned();
    w.patch(
        &format!("/mailboxes/{fwd_mb}"),
        json!({"profile_id": w.profile, "password": fwd.password, "is_forward_mailbox": true}),
    )
    .await;
    let (status, v) = w
        .try_call(
            Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
            json!({"ids": [fwd_mb]}),
            &w.approver,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (to_bob, id) = message("carl@fabrikam.com", &[&bob.address], "Later", "");
    w.servers
        .deliver(
            &fwd.address,
            &redirected(&bob.address, &fwd.address, &to_bob),
        )
        .await
        .unwrap();
    let job = w.test_and_enable(&[&fwd_mb]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let d = wait("the skip", Duration::from_secs(15), || async {
        w.decisions(&fwd_mb, &format!("&message_id={id}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(d["outcome"], "skipped", "Bob's filter is none: {d}");
    // Someone tags the copy in the forward mailbox.
    let mut imap = crate::hosts::RawImap::login(&w, &fwd).await;
    imap.command("SELECT INBOX").await;
    imap.command("UID STORE 1:* +FLAGS ($MailbridgeTracked)")
        .await;
    let email = email_by_message_id(&w, &id, Duration::from_secs(15)).await;
    assert_eq!(
        email["mailbox_id"],
        bob_mb.as_str(),
        "Bob's, not the queue's: {email}"
    );
    assert_eq!(email["subject"], "Later");
    assert_eq!(email["decision"]["rule"], "tracking_keyword", "{email}");
    assert!(
        email["decision"]["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("forwarded copy of {}", bob.address)),
        "{email}"
    );
}
