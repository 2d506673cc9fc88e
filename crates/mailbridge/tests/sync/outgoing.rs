//! Outgoing email: sent as the mailbox, saved to Sent, marked Sent; replies to it
//! correlate by In-Reply-To and by the tracking token alone.

use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, World, fast_engine, message, wait};

#[tokio::test]
async fn outgoing_mail_is_sent_saved_and_replies_correlate() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, alice) = w.member("replies").await;
    let (_, _, bob) = w.member("none").await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Bob Buyer", "email": bob.address}),
        )
        .await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let created = w
        .post(
            "/emails",
            json!({"from_mailbox_id": mailbox, "to": [bob.address], "subject": "Your quote",
                   "body_text": "Please find the quote.", "body_html": "<p>Please find the quote.</p>",
                   "regarding": {"type": "contact", "id": contact["id"]}, "send": true}),
        )
        .await;
    assert_eq!(created["status"], "pending_send");
    let token = created["tracking_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("CRM:"), "{created}");
    assert!(created["subject"].as_str().unwrap().ends_with(&token));
    let message_id = created["message_id"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let sent = wait("the email to be sent", Duration::from_secs(15), || async {
        let e = w.get(&format!("/emails/{id}")).await;
        (e["status"] == "sent" || e["status"] == "failed").then_some(e)
    })
    .await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert!(sent["sent_at"].is_string());
    // The SMTP server received it as Alice, with our Message-ID.
    let received = w
        .servers
        .wait_smtp_message(Duration::from_secs(10), |m| m.text().contains(&message_id))
        .await;
    assert_eq!(received.auth_user.as_deref(), Some(alice.login.as_str()));
    assert_eq!(received.rcpt_tos, std::slice::from_ref(&bob.address));
    assert!(received.text().contains(&token));
    // A copy is in Alice's Sent folder.
    let cfg = imap_for(&w, &alice);
    let mut session = mailbridge_connectors::ImapSession::connect(&cfg)
        .await
        .unwrap();
    let sent_folder = session
        .find_special_use(mailbridge_connectors::SpecialUse::Sent)
        .await
        .unwrap()
        .unwrap();
    session.logout().await;
    // The copy is appended just after the email is marked sent.
    wait("a copy in Sent", Duration::from_secs(10), || async {
        let mut session = mailbridge_connectors::ImapSession::connect(&cfg)
            .await
            .unwrap();
        session.select(&sent_folder).await.unwrap();
        let copies = session.fetch_after(0, 100).await.unwrap();
        session.logout().await;
        copies
            .iter()
            .any(|m| String::from_utf8_lossy(&m.bytes).contains(&message_id))
            .then_some(())
    })
    .await;

    // Bob replies with headers: correlated by In-Reply-To, regarding the contact.
    let (reply, reply_id) = message(
        &bob.address,
        &[&alice.address],
        "Re: Your quote",
        &format!("In-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n"),
    );
    w.servers.deliver(&alice.address, &reply).await.unwrap();
    let e = wait("the reply", Duration::from_secs(10), || async {
        w.emails(&format!("&message_id={reply_id}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(e["correlation_method"], "in_reply_to");
    assert_eq!(
        e["regarding_id"], contact["id"],
        "the reply regards what the original regarded"
    );
    assert_eq!(e["decision"]["rule"], "reply_to_tracked_email");
    // A reply whose client dropped the headers but kept the token in the subject.
    let (bare, bare_id) = message(
        &bob.address,
        &[&alice.address],
        &format!("RE: Your quote {token}"),
        "",
    );
    w.servers.deliver(&alice.address, &bare).await.unwrap();
    let e = wait("the token reply", Duration::from_secs(10), || async {
        w.emails(&format!("&message_id={bare_id}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(e["correlation_method"], "tracking_token");
    // And an unrelated message is not tracked under the replies filter.
    let (other, other_id) = message(&bob.address, &[&alice.address], "Something else", "");
    w.servers.deliver(&alice.address, &other).await.unwrap();
    let d = wait("the skip", Duration::from_secs(10), || async {
        w.decisions(&mailbox, &format!("&message_id={other_id}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(d["rule"], "not_a_reply");
}

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

pub fn imap_for(
    w: &World,
    login: &mailbridge_testkit::TestUser,
) -> mailbridge_connectors::ImapConfig {
    mailbridge_connectors::ImapConfig {
        host: "127.0.0.1".into(),
        port: w.servers.imap_addr().port(),
        tls: mailbridge_domain::location::TlsPolicy::StartTlsIfOffered,
        auth: mailbridge_connectors::Auth::Password {
            username: login.login.clone(),
            password: mailbridge_domain::secret::Secret::new(login.password.clone()),
        },
        timeout: Duration::from_secs(10),
        extra_roots: Vec::new(),
    }
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
async fn sent_items_are_tracked_when_asked_and_our_own_are_not_doubled() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, alice) = w.member("known_parties").await;
    let (_, _, bob) = w.member("none").await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Bea Buyer", "email": "bea@fabrikam.com"}),
        )
        .await;
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"track_sent_items": true}),
    )
    .await;
    w.test_and_enable(&[&mailbox]).await;
    // Sent from another client: it appears in Sent only.
    let (raw, by_hand) = message(
        &alice.address,
        &["bea@fabrikam.com"],
        "Sent from my phone",
        "",
    );
    let cfg = imap_for(&w, &alice);
    let mut session = mailbridge_connectors::ImapSession::connect(&cfg)
        .await
        .unwrap();
    let sent_folder = session
        .find_special_use(mailbridge_connectors::SpecialUse::Sent)
        .await
        .unwrap()
        .unwrap();
    session
        .append(&sent_folder, &["\\Seen"], &raw)
        .await
        .unwrap();
    session.logout().await;
    let e = wait("the sent item", Duration::from_secs(10), || async {
        w.emails(&format!("&message_id={by_hand}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(e["direction"], "outgoing");
    assert_eq!(e["status"], "sent");
    assert_eq!(
        e["decision"]["rule"], "from_known_party",
        "the recipient is a known contact: {e}"
    );
    let to = e["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "to")
        .unwrap()
        .clone();
    assert_eq!(to["party_id"], contact["id"]);
    // Sent by mailbridge: its copy in Sent links to the same email.
    let created = w
        .post("/emails", json!({"from_mailbox_id": mailbox, "to": [bob.address], "subject": "From the CRM", "send": true}))
        .await;
    let mid = created["message_id"].as_str().unwrap().to_owned();
    let d = wait(
        "the copy in Sent to be looked at",
        Duration::from_secs(15),
        || async {
            w.decisions(&mailbox, &format!("&message_id={mid}"))
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    assert_eq!(d["outcome"], "linked", "{d}");
    assert_eq!(d["email_id"], created["id"]);
    assert_eq!(w.emails(&format!("&message_id={mid}")).await.len(), 1);
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
