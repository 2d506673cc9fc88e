//! Forward mailboxes on Exchange Online (the Graph test server) and Exchange
//! Server (the EWS test server), as forward.rs does on Dovecot: a queue's
//! mailbox receives copies forwarded by users (one redirected with a resent
//! block, one forwarded as a `message/rfc822` attachment, one from someone who
//! is no user); each is tracked as its original recipient's, one email per
//! Message-ID with what that user's own mailbox syncs, and the processed copies
//! are deleted from the forward mailbox, to its Deleted Items, and nothing else.
//! A copy skipped, then given the tracking category, is the recipient's too.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::{Backend, email_by_message_id, message, unique, wait};
use crate::forward::{Recipient, assert_copies_attributed, forwarded_as_attachment, redirected};
use crate::hosts::{Ews, Graph, MailHost};

/// What the scenario needs beyond [`MailHost`]: the Exchange profile, and
/// accounts on the server by address (the forward mailbox is a queue's, not a
/// user's): made bare, delivered to (returning the item's id), a message tagged
/// with the tracking category, and a folder's messages (by a well-known name:
/// `inbox`, `deleteditems`).
trait Exchange: MailHost {
    fn profile(&self) -> &str;
    fn add_account(&self, address: &str);
    fn deliver_to(&self, address: &str, raw: &[u8]) -> String;
    fn tag(&self, address: &str, id: &str);
    fn messages_of(&self, address: &str, folder: &str) -> Vec<Vec<u8>>;

    /// How many messages of the folder hold `message_id`.
    fn count_of(&self, address: &str, folder: &str, message_id: &str) -> usize {
        self.messages_of(address, folder)
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains(message_id))
            .count()
    }
}

impl Exchange for Graph {
    fn profile(&self) -> &str {
        &self.profile
    }

    fn add_account(&self, address: &str) {
        self.graph.add_user(address);
    }

    fn deliver_to(&self, address: &str, raw: &[u8]) -> String {
        self.graph.deliver(address, "inbox", raw)
    }

    fn tag(&self, address: &str, id: &str) {
        self.graph.set_categories(address, id, &["Tracked"]);
    }

    fn messages_of(&self, address: &str, folder: &str) -> Vec<Vec<u8>> {
        self.graph
            .messages_in(address, folder)
            .into_iter()
            .map(|m| m.mime)
            .collect()
    }
}

impl Exchange for Ews {
    fn profile(&self) -> &str {
        &self.profile
    }

    fn add_account(&self, address: &str) {
        self.ews.add_mailbox(address, "Forwarded mail");
    }

    fn deliver_to(&self, address: &str, raw: &[u8]) -> String {
        self.ews.deliver(address, "inbox", raw)
    }

    fn tag(&self, address: &str, id: &str) {
        self.ews.set_categories(address, id, &["Tracked"]);
    }

    fn messages_of(&self, address: &str, folder: &str) -> Vec<Vec<u8>> {
        self.ews
            .items_in(address, folder)
            .into_iter()
            .filter_map(|i| i.mime)
            .collect()
    }
}

async fn copies_are_attributed_linked_and_deleted<H: Exchange>(x: H) {
    let w = x.world();
    let alice = x.member("all").await;
    let bob = x.member("all").await;
    let fwd_address = format!("{}@contoso.example", unique("fwd"));
    x.add_account(&fwd_address);
    let queue = w
        .post(
            "/queues",
            json!({"name": "Forwarded mail", "email": fwd_address, "tracking_filter": "all"}),
        )
        .await;
    let fwd_mb = queue["mailbox_id"].as_str().unwrap().to_owned();
    let m = w
        .patch(
            &format!("/mailboxes/{fwd_mb}"),
            json!({"profile_id": x.profile(), "is_forward_mailbox": true,
                   "delete_after_processing": true}),
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
    // Alice also syncs her own mailbox; Bob does not.
    let job = w.test_and_enable(&[&alice.mailbox, &fwd_mb]).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let carl = "Carl <carl@fabrikam.example>";
    let (to_alice, alice_id) = message(carl, &[&alice.address], "Quote", "");
    let (to_bob, bob_id) = message(carl, &[&bob.address], "Order", "");
    let (to_dave, dave_id) = message(carl, &["dave@elsewhere.example"], "Other", "");
    x.deliver_to(&alice.address, &to_alice);
    for raw in [
        forwarded_as_attachment(&alice.address, &fwd_address, &to_alice),
        redirected(&bob.address, &fwd_address, &to_bob),
        redirected("dave@elsewhere.example", &fwd_address, &to_dave),
    ] {
        x.deliver_to(&fwd_address, &raw);
    }

    assert_copies_attributed(
        w,
        &fwd_mb,
        Recipient {
            mailbox: &bob.mailbox,
            user_id: &bob.user["id"],
            address: &bob.address,
        },
        &alice.mailbox,
        [&bob_id, &alice_id, &dave_id],
    )
    .await;

    // Every processed copy leaves the forward mailbox's Inbox for its Deleted
    // Items; nothing else is deleted: Alice's own copy stays in her Inbox.
    wait(
        "the forward mailbox's Inbox emptied",
        Duration::from_secs(20),
        || async {
            x.messages_of(&fwd_address, "inbox")
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let trash = "deleteditems";
    assert_eq!(
        x.messages_of(&fwd_address, trash).len(),
        3,
        "the three copies, in Deleted Items"
    );
    for id in [&alice_id, &bob_id, &dave_id] {
        assert_eq!(x.count_of(&fwd_address, trash, id), 1, "<{id}>");
    }
    assert_eq!(
        x.count_of(&alice.address, "inbox", &alice_id),
        1,
        "Alice's own copy stays in her mailbox"
    );
    for address in [&alice.address, &bob.address] {
        assert!(x.messages_of(address, trash).is_empty(), "{address}");
    }
}

/// A copy skipped by its original recipient's filter, then tagged with the
/// tracking category in the forward mailbox: tracked as that recipient's, not
/// the queue's.
async fn a_copy_tagged_later_is_the_original_recipients<H: Exchange>(x: H) {
    let w = x.world();
    let bob = x.member("none").await;
    let fwd_address = format!("{}@contoso.example", unique("fwd"));
    x.add_account(&fwd_address);
    let queue = w
        .post(
            "/queues",
            json!({"name": "Forwarded mail", "email": fwd_address, "tracking_filter": "all"}),
        )
        .await;
    let fwd_mb = queue["mailbox_id"].as_str().unwrap().to_owned();
    w.patch(
        &format!("/mailboxes/{fwd_mb}"),
        json!({"profile_id": x.profile(), "is_forward_mailbox": true}),
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
    let job = w.test_and_enable(&[&fwd_mb]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (to_bob, id) = message("carl@fabrikam.example", &[&bob.address], "Later", "");
    let item = x.deliver_to(
        &fwd_address,
        &redirected(&bob.address, &fwd_address, &to_bob),
    );
    let d = wait("the skip", Duration::from_secs(20), || async {
        w.decisions(&fwd_mb, &format!("&message_id={id}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(d["outcome"], "skipped", "Bob's filter is none: {d}");
    assert!(w.emails(&format!("&message_id={id}")).await.is_empty());
    // Someone gives the copy the tracking category in the forward mailbox.
    x.tag(&fwd_address, &item);
    let email = email_by_message_id(w, &id, Duration::from_secs(20)).await;
    assert_eq!(
        email["mailbox_id"],
        bob.mailbox.as_str(),
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

#[tokio::test]
async fn forward_mailbox_copy_tagged_later_on_exchange_online() {
    a_copy_tagged_later_is_the_original_recipients(Graph::start(Backend::Sqlite, true).await).await;
}

#[tokio::test]
async fn forward_mailbox_copy_tagged_later_on_exchange_server() {
    a_copy_tagged_later_is_the_original_recipients(Ews::start(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn forward_mailbox_on_exchange_online() {
    copies_are_attributed_linked_and_deleted(Graph::start(Backend::Sqlite, true).await).await;
}

#[tokio::test]
async fn forward_mailbox_on_exchange_online_on_postgres() {
    copies_are_attributed_linked_and_deleted(Graph::start(Backend::Postgres, true).await).await;
}

#[tokio::test]
async fn forward_mailbox_on_exchange_server() {
    copies_are_attributed_linked_and_deleted(Ews::start(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn forward_mailbox_on_exchange_server_on_postgres() {
    copies_are_attributed_linked_and_deleted(Ews::start(Backend::Postgres).await).await;
}
