//! Outgoing email over SMTP: what may send, and recovery of emails interrupted
//! while sending. Sending, the copy in Sent, the correlation of replies and
//! tracked Sent items are scenarios run on every host (scenarios.rs).

use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, World, fast_engine, wait};
use crate::hosts::imap_for;

#[tokio::test]
async fn sending_needs_a_sending_mailbox_and_a_recipient() {
    let w = World::start(Backend::Postgres, fast_engine()).await;
    let (_, mailbox, _) = w.member("all").await;
    let path = format!("/api/v1/orgs/{}/emails", w.org);
    let (status, e) = w
        .try_call(
            reqwest::Method::POST,
            &path,
            json!({"subject": "x", "send": true}),
            &w.admin,
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (422, Some("from_mailbox_id")),
        "{e}"
    );
    let (status, e) = w
        .try_call(
            reqwest::Method::POST,
            &path,
            json!({"subject": "x", "from_mailbox_id": mailbox, "send": true}),
            &w.admin,
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (422, Some("to")),
        "{e}"
    );
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"outgoing_method": "none"}),
    )
    .await;
    let (status, e) = w
        .try_call(
            reqwest::Method::POST,
            &path,
            json!({"subject": "x", "from_mailbox_id": mailbox, "to": ["a@b.org"], "send": true}),
            &w.admin,
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outgoing_method"),
        "{e}"
    );
}

#[tokio::test]
async fn emails_interrupted_while_sending_are_not_sent_twice() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, alice) = w.member("none").await;
    let (_, _, bob) = w.member("none").await;
    w.test_and_enable(&[&mailbox]).await;
    // Two emails a stopped node left in `sending`: the first had reached Sent.
    let reached = format!("{}.reached@example.org", uuid::Uuid::now_v7().simple());
    let lost = format!("{}.lost@example.org", uuid::Uuid::now_v7().simple());
    let cfg = imap_for(&w, &alice);
    let mut session = mailbridge_connectors::ImapSession::connect(&cfg)
        .await
        .unwrap();
    let sent_folder = session
        .find_special_use(mailbridge_connectors::SpecialUse::Sent)
        .await
        .unwrap()
        .unwrap();
    let copy = format!(
        "From: {}\r\nTo: {}\r\nSubject: Reached\r\nMessage-ID: <{reached}>\r\n\r\nx\r\n",
        alice.address, bob.address
    );
    session
        .append(&sent_folder, &["\\Seen"], copy.as_bytes())
        .await
        .unwrap();
    session.logout().await;
    let mut ids = Vec::new();
    for (mid, subject) in [(&reached, "Reached"), (&lost, "Lost")] {
        let e = w
            .post(
                "/emails",
                json!({"from_mailbox_id": mailbox, "to": [bob.address], "subject": subject,
                                   "status": "sending", "message_id": mid}),
            )
            .await;
        ids.push(e["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let e = wait("the recovery", Duration::from_secs(15), || async {
            let e = w.get(&format!("/emails/{id}")).await;
            (e["status"] == "sent").then_some(e)
        })
        .await;
        assert!(e["sent_at"].is_string());
    }
    // Only the lost one went out (again); the one already in Sent did not.
    w.servers
        .wait_smtp_message(Duration::from_secs(10), |m| m.text().contains(&lost))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !w.servers
            .smtp_received()
            .iter()
            .any(|m| m.text().contains(&reached)),
        "sent twice"
    );
}

#[tokio::test]
async fn users_send_only_from_their_own_mailbox() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (alice, alice_mailbox, _) = w.member("none").await;
    let (_, bob_mailbox, bob) = w.member("none").await;
    let token = w.post("/tokens", json!({"user_id": alice["id"]})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/orgs/{}/emails", w.org);
    let (status, e) = w
        .try_call(reqwest::Method::POST, &path, json!({"from_mailbox_id": bob_mailbox, "to": [bob.address], "subject": "As Bob", "send": true}), &token)
        .await;
    assert_eq!(status, 403, "{e}");
    assert!(
        w.emails("").await.iter().all(|e| e["subject"] != "As Bob"),
        "a refused send leaves no draft"
    );
    let (status, e) = w
        .try_call(reqwest::Method::POST, &path, json!({"from_mailbox_id": alice_mailbox, "to": [bob.address], "subject": "As me", "send": true}), &token)
        .await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "pending_send");
}
