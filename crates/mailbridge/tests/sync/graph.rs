//! Exchange Online end to end, what only Graph has: an expired delta link, a lost
//! sendMail answer and a stop mid-send (nothing sent twice), an
//! unregistered certificate, the tracking category. The set-up (the testkit's
//! test identity provider and Graph test server, a certificate generated through
//! the API) is hosts.rs's [`Graph`], shared with the scenarios run on every host.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, message, wait};
use crate::hosts::{Graph, MailHost};

#[tokio::test]
async fn exchange_online_mail_is_tracked_once_and_sent_through_graph() {
    tracked_once_and_sent(Backend::Sqlite).await;
}

#[tokio::test]
async fn exchange_online_mail_is_tracked_once_and_sent_through_graph_on_postgres() {
    tracked_once_and_sent(Backend::Postgres).await;
}

async fn tracked_once_and_sent(backend: Backend) {
    let x = Graph::start(backend, true).await;
    let w = &x.w;
    let m = x.member("all").await;
    let (mailbox, address) = (m.mailbox, m.address);
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_status"], "success", "{m}");
    assert_eq!(m["outgoing_status"], "success", "{m}");
    assert!(
        x.graph
            .sent_mail()
            .iter()
            .any(|s| String::from_utf8_lossy(&s.mime).contains("Your mailbox is now connected")),
        "the test message went out through sendMail"
    );

    // Incoming: one email per Message-ID, with its decision.
    let mut ids = Vec::new();
    for i in 0..3 {
        let (raw, id) = message(
            "carol@fabrikam.example",
            &[&address],
            &format!("Order {i}"),
            "",
        );
        x.graph.deliver(&address, "inbox", &raw);
        ids.push(id);
    }
    // The same message delivered twice (two items, one Message-ID).
    let (raw, dup) = message("carol@fabrikam.example", &[&address], "Twice", "");
    x.graph.deliver(&address, "inbox", &raw);
    x.graph.deliver(&address, "inbox", &raw);
    ids.push(dup.clone());
    for id in &ids {
        let found = wait(
            "the email to be tracked",
            Duration::from_secs(20),
            || async {
                let e = w.emails(&format!("&message_id={}", id)).await;
                (!e.is_empty()).then_some(e)
            },
        )
        .await;
        assert_eq!(found.len(), 1, "one email per Message-ID: {found:?}");
    }
    let decisions = wait("the decisions", Duration::from_secs(10), || async {
        let d = w.decisions(&mailbox, "").await;
        let ours: Vec<Value> = d
            .into_iter()
            .filter(|d| {
                d["message_id"]
                    .as_str()
                    .is_some_and(|m| ids.iter().any(|i| m.contains(i.as_str())))
            })
            .collect();
        (ours.len() >= 5).then_some(ours)
    })
    .await;
    assert_eq!(decisions.len(), 5, "a decision per item: {decisions:?}");

    // An expired delta link: the folder is read again, nothing is duplicated.
    x.graph.expire_delta_tokens();
    let (raw, after) = message("carol@fabrikam.example", &[&address], "After expiry", "");
    x.graph.deliver(&address, "inbox", &raw);
    wait(
        "the email after expiry",
        Duration::from_secs(20),
        || async {
            let e = w.emails(&format!("&message_id={}", after)).await;
            (!e.is_empty()).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let e = w.emails(&format!("&message_id={}", id)).await;
        assert_eq!(e.len(), 1, "not duplicated after the re-read: {e:?}");
    }
    let d = w.decisions(&mailbox, "").await;
    let ours = d
        .iter()
        .filter(|d| {
            d["message_id"]
                .as_str()
                .is_some_and(|m| ids.iter().any(|i| m.contains(i.as_str())))
        })
        .count();
    assert_eq!(ours, 5, "no decision twice after the re-read");

    // Outgoing: sent through sendMail and marked sent.
    let created = w
        .post(
            "/emails",
            json!({"from_mailbox_id": mailbox, "to": ["dave@fabrikam.example"], "subject": "Your quote",
                   "body_text": "Please find the quote.", "send": true}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let message_id = created["message_id"].as_str().unwrap().to_owned();
    let sent = wait("the email to be sent", Duration::from_secs(20), || async {
        let e = w.get(&format!("/emails/{id}")).await;
        (e["status"] == "sent" || e["status"] == "failed").then_some(e)
    })
    .await;
    assert_eq!(sent["status"], "sent", "{sent}");
    let out = x
        .graph
        .sent_mail()
        .into_iter()
        .find(|s| String::from_utf8_lossy(&s.mime).contains(&message_id))
        .expect("sent through sendMail");
    assert_eq!(out.from_upn, address);
    assert_eq!(out.recipients, vec!["dave@fabrikam.example".to_owned()]);
}

#[tokio::test]
async fn an_unregistered_certificate_fails_authentication() {
    let x = Graph::start(Backend::Sqlite, false).await;
    let w = &x.w;
    let mailbox = x.member("all").await.mailbox;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "failed", "{job}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_status"], "failure", "{m}");
    assert_eq!(m["incoming_enabled"], false);
    let alerts = w
        .get(&format!("/alerts?mailbox_id={mailbox}&severity=error"))
        .await;
    let text = alerts["items"][0]["message"].as_str().unwrap_or_default();
    assert!(text.contains("Failed Authentication"), "{alerts}");
}

#[tokio::test]
async fn the_tracked_category_tracks_a_skipped_message() {
    let x = Graph::start(Backend::Sqlite, true).await;
    let w = &x.w;
    let m = x.member("none").await;
    let (mailbox, address) = (m.mailbox, m.address);
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (raw, id) = message("erin@fabrikam.example", &[&address], "Untracked", "");
    let item = x.graph.deliver(&address, "inbox", &raw);
    let decision = wait("the skip", Duration::from_secs(20), || async {
        let d = w.decisions(&mailbox, &format!("&message_id={id}")).await;
        d.into_iter().next()
    })
    .await;
    assert_ne!(decision["outcome"], "tracked", "{decision}");
    assert!(w.emails(&format!("&message_id={id}")).await.is_empty());
    // Categorized in Outlook: tracked on the next run.
    x.graph.add_category(&address, &item, "Tracked");
    let found = wait(
        "the email to be tracked",
        Duration::from_secs(20),
        || async {
            let e = w.emails(&format!("&message_id={id}")).await;
            (!e.is_empty()).then_some(e)
        },
    )
    .await;
    assert_eq!(found.len(), 1);
}

/// Nothing is sent twice for a lost answer: a sendMail whose answer was lost
/// (a gateway timeout after Exchange sent it) and an email a stop left in
/// `sending` whose copy is in Sent Items are marked sent without a second
/// send; an email in flight that never reached Exchange is sent once.
#[tokio::test]
async fn a_lost_send_answer_or_a_stop_mid_send_sends_nothing_twice() {
    let x = Graph::start(Backend::Sqlite, true).await;
    let w = &x.w;
    let m = x.member("none").await;
    let job = w.test_and_enable(&[&m.mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let sends_of = |mid: &str| {
        x.graph
            .sent_mail()
            .iter()
            .filter(|s| String::from_utf8_lossy(&s.mime).contains(mid))
            .count()
    };
    let wait_sent = |id: String| async move {
        wait("the email to be sent", Duration::from_secs(30), || async {
            let e = w.get(&format!("/emails/{id}")).await;
            (e["status"] == "sent" || e["status"] == "failed").then_some(e)
        })
        .await
    };

    // The answer to sendMail is lost: the retry finds the copy in Sent Items.
    x.graph.lose_next_send_answers(1);
    let lost = w
        .post(
            "/emails",
            json!({"from_mailbox_id": m.mailbox, "to": ["dave@fabrikam.example"],
                   "subject": "Answer lost", "send": true}),
        )
        .await;
    let lost_mid = lost["message_id"].as_str().unwrap().to_owned();
    let e = wait_sent(lost["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(e["status"], "sent", "{e}");
    assert_eq!(
        sends_of(&lost_mid),
        1,
        "sent once though its answer was lost"
    );

    // Two emails a stop left in `sending`: one had reached Exchange (its copy is
    // in Sent Items), one had not.
    let reached = format!("{}.reached@example.org", uuid::Uuid::now_v7().simple());
    let never = format!("{}.never@example.org", uuid::Uuid::now_v7().simple());
    x.graph.deliver(
        &m.address,
        "sentitems",
        format!(
            "From: {}\r\nTo: dave@fabrikam.example\r\nSubject: Reached\r\nMessage-ID: <{reached}>\r\n\r\nx\r\n",
            m.address
        )
        .as_bytes(),
    );
    let mut ids = Vec::new();
    for (mid, subject) in [(&reached, "Reached"), (&never, "Never")] {
        let e = w
            .post(
                "/emails",
                json!({"from_mailbox_id": m.mailbox, "to": ["dave@fabrikam.example"],
                       "subject": subject, "status": "sending", "message_id": mid}),
            )
            .await;
        ids.push(e["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let e = wait_sent(id.clone()).await;
        assert_eq!(e["status"], "sent", "{e}");
    }
    assert_eq!(
        sends_of(&reached),
        0,
        "its copy was in Sent Items: not sent again"
    );
    assert_eq!(sends_of(&never), 1, "it never reached Exchange: sent once");
}
