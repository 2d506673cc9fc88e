//! What the email router received for a mailbox: the list (newest first, paged,
//! filtered, never the bytes), the counts, and the retry of a failed message.

use std::time::Duration;

use mailbridge_store::{InboundRecipient, ReceivedMessage};
use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

on_both_backends!(
    the_router_trail_lists_pages_filters_and_retries,
    the_router_trail_follows_the_mailbox_s_visibility,
);

/// A router mailbox for a new user of `org`: (mailbox id, user's token).
async fn router_mailbox(app: &TestApp, org: &str, name: &str) -> (String, String) {
    let (user, token) = app.member(org, name, "user").await;
    let mailbox = user["mailbox_id"].as_str().expect("mailbox").to_owned();
    app.patch(
        &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
        &app.admin,
        json!({"incoming_method": "router"}),
    )
    .await
    .expect(200);
    (mailbox, token)
}

async fn receive(app: &TestApp, org: &str, mailbox: &str, raw: &[u8]) -> String {
    let stored = app
        .store
        .store_inbound_message(&ReceivedMessage {
            raw,
            envelope_from: "carl@fabrikam.com",
            client_address: "10.0.0.7",
            recipients: &[InboundRecipient {
                org_id: org.to_owned(),
                mailbox_id: mailbox.to_owned(),
                recipient: "sales+contact-1@example.org".to_owned(),
                tag: Some("contact-1".to_owned()),
            }],
        })
        .await
        .expect("stored");
    stored[0].id.clone()
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: carl@fabrikam.com\r\nSubject: Order {i}\r\nMessage-ID: <order-{i}@fabrikam.com>\r\n\r\nSecret body {i}\r\n"
    )
    .into_bytes()
}

fn seqs(v: &Value) -> Vec<i64> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}

async fn the_router_trail_lists_pages_filters_and_retries(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (mailbox, _) = router_mailbox(&app, &org, "Sales").await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(receive(&app, &org, &mailbox, &message(i)).await);
    }
    let base = format!("/api/v1/orgs/{org}/mailboxes/{mailbox}/inbound-messages");

    // Newest first, with the header's facts and the size, never the bytes.
    let all = app.get(&base, &app.admin).await.expect(200);
    assert_eq!(seqs(&all), [5, 4, 3, 2, 1]);
    let newest = &all["items"][0];
    assert_eq!(newest["subject"], "Order 5");
    assert_eq!(newest["message_id"], "order-5@fabrikam.com");
    assert_eq!(newest["size"], message(5).len());
    assert_eq!(newest["envelope_from"], "carl@fabrikam.com");
    assert_eq!(newest["recipient"], "sales+contact-1@example.org");
    assert_eq!(newest["tag"], "contact-1");
    assert_eq!(newest["status"], "pending");
    assert_eq!(newest["held"], false);
    assert!(newest.get("raw").is_none());
    let text = app.get(&base, &app.admin).await.text;
    assert!(
        !text.contains("Secret body"),
        "no bytes of the body: {text}"
    );

    // Paging.
    let mut seen = Vec::new();
    let mut url = format!("{base}?limit=2");
    loop {
        let page = app.get(&url, &app.admin).await.expect(200);
        seen.extend(seqs(&page));
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("{base}?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);
    app.get(&format!("{base}?limit=0"), &app.admin)
        .await
        .error(422, "invalid_value");
    app.get(&format!("{base}?cursor=nonsense"), &app.admin)
        .await
        .error(422, "invalid_value");

    // Seq 2 fails for good, seq 1 is processed, seq 3 is held; the rest wait.
    let claimed = app
        .store
        .claim_inbound_messages("node", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    let by_seq = |seq: i64| {
        claimed
            .iter()
            .find(|m| m.seq == seq)
            .expect("claimed")
            .id
            .clone()
    };
    assert!(
        app.store
            .release_inbound_message(&by_seq(2), "node", "the record could not be created", true)
            .await
            .expect("give up")
    );
    assert!(
        app.store
            .complete_inbound_message(&by_seq(1), "node")
            .await
            .expect("complete")
    );
    app.store
        .defer_inbound_messages(
            &[by_seq(3)],
            "node",
            chrono::Utc::now() + chrono::Duration::minutes(5),
            "held: the mailbox's email address is not approved",
        )
        .await
        .expect("defer");
    for seq in [4, 5] {
        app.store
            .release_inbound_message(&by_seq(seq), "node", "busy", false)
            .await
            .expect("release");
    }
    // What the worker records when it gives up: a failed decision for the UID.
    app.store
        .record_item_failure(
            &org,
            &mailbox,
            "router",
            1,
            2,
            None,
            None,
            "failed",
            "the record could not be created",
            true,
        )
        .await
        .expect("decision");

    let failed = app
        .get(&format!("{base}?status=failed"), &app.admin)
        .await
        .expect(200);
    assert_eq!(seqs(&failed), [2]);
    assert_eq!(
        failed["items"][0]["last_error"],
        "the record could not be created"
    );
    let pending = app
        .get(&format!("{base}?status=pending"), &app.admin)
        .await
        .expect(200);
    assert_eq!(seqs(&pending), [5, 4, 3]);
    assert_eq!(pending["items"][2]["held"], true);
    app.get(&format!("{base}?status=lost"), &app.admin)
        .await
        .error(422, "invalid_value");
    let counts = app
        .get(&format!("{base}/counts"), &app.admin)
        .await
        .expect(200);
    assert_eq!(
        counts,
        json!({"pending": 3, "held": 1, "processed": 1, "failed": 1})
    );

    // Only a failed message can be retried.
    for seq in [1, 3, 4] {
        let e = app
            .post(
                &format!("{base}/{}/retry", ids[seq - 1]),
                &app.admin,
                json!({}),
            )
            .await
            .error(409, "conflict");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("only a failed message can be retried"),
            "{e}"
        );
    }
    app.post(
        &format!("{base}/{}/retry", mailbridge_domain::ids::new_id()),
        &app.admin,
        json!({}),
    )
    .await
    .error(404, "not_found");
    let retried = app
        .post(&format!("{base}/{}/retry", ids[1]), &app.admin, json!({}))
        .await
        .expect(200);
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["attempts"], 0);
    // The pipeline may look at it again: its failed decision is gone…
    let decided = app
        .store
        .decided_uids(&mailbox, "router", 1, 1)
        .await
        .expect("decided");
    assert!(!decided.contains(&2), "{decided:?}");
    // …and the worker claims it.
    let again = app
        .store
        .claim_inbound_messages("node", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    assert!(again.iter().any(|m| m.id == ids[1]));
    app.post(&format!("{base}/{}/retry", ids[1]), &app.admin, json!({}))
        .await
        .error(409, "conflict");
}

async fn the_router_trail_follows_the_mailbox_s_visibility(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let other_org = app.org("Fabrikam").await;
    let (mailbox, owner_token) = router_mailbox(&app, &org, "Sales").await;
    let (_, stranger_token) = app.member(&org, "Bob", "user").await;
    let id = receive(&app, &org, &mailbox, &message(1)).await;
    let claimed = app
        .store
        .claim_inbound_messages("node", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    app.store
        .release_inbound_message(&claimed[0].id, "node", "boom", true)
        .await
        .expect("give up");
    let base = format!("/api/v1/orgs/{org}/mailboxes/{mailbox}/inbound-messages");

    // The owner sees their mailbox's trail; another user of the org does not.
    let own = app.get(&base, &owner_token).await.expect(200);
    assert_eq!(seqs(&own), [1]);
    app.get(&base, &stranger_token)
        .await
        .error(404, "not_found");
    app.get(&format!("{base}/counts"), &stranger_token)
        .await
        .error(404, "not_found");
    app.post(&format!("{base}/{id}/retry"), &stranger_token, json!({}))
        .await
        .error(404, "not_found");

    // Another organization's path to this mailbox finds nothing.
    let (_, other_admin) = app.member(&other_org, "Eve", "org_admin").await;
    let foreign = format!("/api/v1/orgs/{other_org}/mailboxes/{mailbox}/inbound-messages");
    app.get(&foreign, &other_admin)
        .await
        .error(404, "not_found");
    app.get(&foreign, &app.admin).await.error(404, "not_found");
    app.post(&format!("{foreign}/{id}/retry"), &app.admin, json!({}))
        .await
        .error(404, "not_found");
    // A user of the other organization may not use this one's path either.
    let status = app.get(&base, &other_admin).await.status;
    assert!(status == 403 || status == 404, "{status}");
    app.post(&format!("{foreign}/{id}/retry"), &other_admin, json!({}))
        .await
        .error(404, "not_found");

    // The message is still failed, and the owner may retry it.
    app.post(&format!("{base}/{id}/retry"), &owner_token, json!({}))
        .await
        .expect(200);
}
