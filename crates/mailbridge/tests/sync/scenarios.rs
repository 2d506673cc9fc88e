//! The email scenarios written once against [`MailHost`] and run on each host:
//! Dovecot with the SMTP relay (IMAP/SMTP), Exchange Online through the Graph
//! test server, and Exchange Server through the EWS test server. Each scenario
//! is a module with one test per host (`scenarios::<scenario>::dovecot`,
//! `::graph`, `::ews`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{decision_on, email_by_message_id, message, wait};
use crate::hosts::{Folder, MailHost};

/// Long enough for a poll-driven host (Graph has no push here) on a busy machine.
const T: Duration = Duration::from_secs(20);

/// One test per host for each scenario.
macro_rules! on_each_host {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use crate::common::Backend;
            use crate::hosts::{Dovecot, Ews, Graph};

            #[tokio::test]
            async fn dovecot() {
                super::$scenario(&Dovecot::start(Backend::Sqlite).await).await;
            }

            #[tokio::test]
            async fn graph() {
                super::$scenario(&Graph::start(Backend::Sqlite, true).await).await;
            }

            #[tokio::test]
            async fn ews() {
                super::$scenario(&Ews::start(Backend::Sqlite).await).await;
            }
        }
    )*};
}

on_each_host!(
    outgoing_is_sent_saved_and_replies_correlate,
    a_message_that_cannot_be_created_ends_in_undeliverable,
    a_message_filed_in_a_tracked_folder_regards_its_record,
    sent_items_are_tracked_when_asked_and_our_own_are_not_doubled,
    a_tracked_folder_that_is_gone_stops_incoming_with_an_alert,
);

async fn enable(h: &impl MailHost, mailbox: &str) {
    let job = h.world().test_and_enable(&[mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
}

/// An email sent from the mailbox regarding a contact goes out as the mailbox,
/// its copy is in Sent, a reply with In-Reply-To correlates to it (and regards
/// the contact), a reply with only the tracking token in its subject correlates
/// by the token, and an unrelated message is skipped under the replies filter.
async fn outgoing_is_sent_saved_and_replies_correlate(h: &impl MailHost) {
    let w = h.world();
    let alice = h.member("replies").await;
    let bob = "bob.buyer@fabrikam.example";
    let contact = w
        .post("/contacts", json!({"name": "Bob Buyer", "email": bob}))
        .await;
    enable(h, &alice.mailbox).await;
    let created = w
        .post(
            "/emails",
            json!({"from_mailbox_id": alice.mailbox, "to": [bob], "subject": "Your quote",
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
    let sent = wait("the email to be sent", T, || async {
        let e = w.get(&format!("/emails/{id}")).await;
        (e["status"] == "sent" || e["status"] == "failed").then_some(e)
    })
    .await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert!(sent["sent_at"].is_string());
    // The host received it as Alice, with our Message-ID and the token.
    let out = h.wait_sent_out(&alice, &message_id, T).await;
    assert_eq!(out.sender, alice.address);
    assert_eq!(out.recipients, [bob]);
    assert!(out.text().contains(&token));
    // One copy is in Alice's Sent folder (appended just after the email is
    // marked sent over IMAP; saved by sendMail on Graph).
    wait("a copy in Sent", T, || async {
        (h.count_in(&alice, Folder::Sent, &message_id).await > 0).then_some(())
    })
    .await;
    assert_eq!(h.count_in(&alice, Folder::Sent, &message_id).await, 1);

    // Bob replies with headers: correlated by In-Reply-To, regarding the contact.
    let (reply, reply_id) = message(
        bob,
        &[&alice.address],
        "Re: Your quote",
        &format!("In-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n"),
    );
    h.deliver(&alice, &reply).await;
    let e = email_by_message_id(w, &reply_id, T).await;
    assert_eq!(e["correlation_method"], "in_reply_to", "{e}");
    assert_eq!(
        e["regarding_id"], contact["id"],
        "the reply regards what the original regarded"
    );
    assert_eq!(e["decision"]["rule"], "reply_to_tracked_email");
    // A reply whose client dropped the headers but kept the token in the subject.
    let (bare, bare_id) = message(
        bob,
        &[&alice.address],
        &format!("RE: Your quote {token}"),
        "",
    );
    h.deliver(&alice, &bare).await;
    let e = email_by_message_id(w, &bare_id, T).await;
    assert_eq!(e["correlation_method"], "tracking_token", "{e}");
    assert_eq!(e["regarding_id"], contact["id"], "{e}");
    // And an unrelated message is not tracked under the replies filter.
    let (other, other_id) = message(bob, &[&alice.address], "Something else", "");
    h.deliver(&alice, &other).await;
    let d = decision_on(w, &alice.mailbox, &other_id, "", T).await;
    assert_eq!(d["rule"], "not_a_reply", "{d}");
    assert!(
        w.emails(&format!("&message_id={other_id}"))
            .await
            .is_empty()
    );
}

/// A message in a folder tracked to a contact that is then deleted cannot be
/// created: after 3 attempts it is moved to the Undeliverable folder (created
/// for it), its decision says so, and one item alert is raised.
async fn a_message_that_cannot_be_created_ends_in_undeliverable(h: &impl MailHost) {
    let w = h.world();
    let m = h.member("all").await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Gone Soon", "email": "gone@fabrikam.com"}),
        )
        .await;
    let (raw, id) = message("gone@fabrikam.com", &[&m.address], "Filed by hand", "");
    h.file(&m, "Customers", &raw).await;
    assert!(
        h.messages(&m, Folder::Named("Undeliverable"))
            .await
            .is_empty()
    );
    w.post(
        &format!("/mailboxes/{}/tracked-folders", m.mailbox),
        json!({"folder": "Customers", "regarding_type": "contact", "regarding_id": contact["id"]}),
    )
    .await;
    w.call(
        Method::DELETE,
        &format!(
            "/api/v1/orgs/{}/contacts/{}",
            w.org,
            contact["id"].as_str().unwrap()
        ),
        Value::Null,
    )
    .await;
    enable(h, &m.mailbox).await;
    let d = decision_on(w, &m.mailbox, &id, "&outcome=failed", T).await;
    assert_eq!(d["attempts"], 3, "{d}");
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .contains("moved to the Undeliverable folder"),
        "{d}"
    );
    // It is in Undeliverable now, and no longer in Customers.
    let undeliverable = h.messages(&m, Folder::Named("Undeliverable")).await;
    assert_eq!(undeliverable.len(), 1);
    assert!(String::from_utf8_lossy(&undeliverable[0]).contains(&id));
    assert!(h.messages(&m, Folder::Named("Customers")).await.is_empty());
    // The alert is raised just after the failure is recorded.
    let alerts = wait("the item failure alert", T, || async {
        let a = w
            .get(&format!("/alerts?scope=item&mailbox_id={}", m.mailbox))
            .await;
        (!a["items"].as_array().unwrap().is_empty()).then_some(a)
    })
    .await;
    assert_eq!(
        alerts["items"].as_array().unwrap().len(),
        1,
        "one item failure alert"
    );
    assert!(w.emails(&format!("&message_id={id}")).await.is_empty());
}

/// Messages filed into a tracked folder become emails regarding the folder's
/// record, even under the tracking filter `none` (which skips the Inbox's
/// messages): one filed before Test & Enable, one while the mailbox is synced.
/// (The folder exists when Test & Enable runs: a tracked folder missing from an
/// IMAP mailbox stops its incoming workload until it is created.)
async fn a_message_filed_in_a_tracked_folder_regards_its_record(h: &impl MailHost) {
    let w = h.world();
    let m = h.member("none").await;
    let account = w
        .post(
            "/accounts",
            json!({"name": "Northwind", "email": "info@northwind.example"}),
        )
        .await;
    let (before, before_id) = message("dana@elsewhere.example", &[&m.address], "Filed before", "");
    h.file(&m, "Key Accounts", &before).await;
    w.post(
        &format!("/mailboxes/{}/tracked-folders", m.mailbox),
        json!({"folder": "Key Accounts", "regarding_type": "account", "regarding_id": account["id"]}),
    )
    .await;
    enable(h, &m.mailbox).await;
    let (inbox, inbox_id) = message("dana@elsewhere.example", &[&m.address], "In the Inbox", "");
    h.deliver(&m, &inbox).await;
    let (after, after_id) = message(
        "dana@elsewhere.example",
        &[&m.address],
        "Filed under the account",
        "",
    );
    h.file(&m, "Key Accounts", &after).await;
    for id in [&before_id, &after_id] {
        let e = email_by_message_id(w, id, T).await;
        assert_eq!(e["direction"], "incoming", "{e}");
        assert_eq!(e["regarding_type"], "account", "{e}");
        assert_eq!(e["regarding_id"], account["id"], "{e}");
        assert_eq!(e["decision"]["rule"], "tracked_folder", "{e}");
        assert_eq!(e["decision"]["outcome"], "tracked", "{e}");
        let to = e["parties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["role"] == "to")
            .cloned()
            .unwrap();
        assert_eq!(
            (&to["party_type"], &to["party_id"]),
            (&json!("user"), &m.user["id"]),
            "{e}"
        );
    }
    let d = decision_on(w, &m.mailbox, &inbox_id, "", T).await;
    assert_eq!(d["rule"], "filter_none", "{d}");
    assert!(
        w.emails(&format!("&message_id={inbox_id}"))
            .await
            .is_empty()
    );
    // Read again on later runs, nothing is doubled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in [&before_id, &after_id] {
        assert_eq!(w.emails(&format!("&message_id={id}")).await.len(), 1);
        assert_eq!(
            w.decisions(&m.mailbox, &format!("&message_id={id}"))
                .await
                .len(),
            1
        );
    }
}

/// With `track_sent_items`, a message sent from another client (in Sent only) is
/// tracked as an outgoing email; the Sent copy of an email sent by mailbridge
/// links to that email instead of making a second one.
async fn sent_items_are_tracked_when_asked_and_our_own_are_not_doubled(h: &impl MailHost) {
    let w = h.world();
    let alice = h.member("known_parties").await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Bea Buyer", "email": "bea@fabrikam.com"}),
        )
        .await;
    w.patch(
        &format!("/mailboxes/{}", alice.mailbox),
        json!({"track_sent_items": true}),
    )
    .await;
    enable(h, &alice.mailbox).await;
    // Sent from another client: it appears in Sent only.
    let (raw, by_hand) = message(
        &alice.address,
        &["bea@fabrikam.com"],
        "Sent from my phone",
        "",
    );
    h.put_in_sent(&alice, &raw).await;
    let e = email_by_message_id(w, &by_hand, T).await;
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
        .post(
            "/emails",
            json!({"from_mailbox_id": alice.mailbox, "to": ["bob@elsewhere.example"],
                                "subject": "From the CRM", "send": true}),
        )
        .await;
    let mid = created["message_id"].as_str().unwrap().to_owned();
    let d = decision_on(w, &alice.mailbox, &mid, "", T).await;
    assert_eq!(d["outcome"], "linked", "{d}");
    assert_eq!(d["email_id"], created["id"]);
    assert_eq!(w.emails(&format!("&message_id={mid}")).await.len(), 1);
    let e = w
        .get(&format!("/emails/{}", created["id"].as_str().unwrap()))
        .await;
    assert_eq!(e["status"], "sent", "{e}");
}

/// A tracked folder that does not exist in the mailbox is not skipped in silence:
/// incoming stops with an alert naming the folder and the fix.
async fn a_tracked_folder_that_is_gone_stops_incoming_with_an_alert(h: &impl MailHost) {
    let w = h.world();
    let m = h.member("all").await;
    let account = w
        .post(
            "/accounts",
            json!({"name": "Contoso Pharma", "email": "info@contoso-pharma.example"}),
        )
        .await;
    enable(h, &m.mailbox).await;
    w.post(
        &format!("/mailboxes/{}/tracked-folders", m.mailbox),
        json!({"folder": "Never Made", "regarding_type": "account", "regarding_id": account["id"]}),
    )
    .await;
    let mailbox = wait("incoming to stop", T, || async {
        let v = w.get(&format!("/mailboxes/{}", m.mailbox)).await;
        (v["incoming_enabled"] == false).then_some(v)
    })
    .await;
    assert_eq!(mailbox["incoming_status"], "failure", "{mailbox}");
    let alerts = w
        .get(&format!("/alerts?mailbox_id={}&severity=error", m.mailbox))
        .await;
    let alert = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["message"]
                .as_str()
                .is_some_and(|t| t.contains("Never Made"))
        })
        .unwrap_or_else(|| panic!("an alert naming the folder: {alerts}"))
        .clone();
    assert!(
        alert["fix"]
            .as_str()
            .is_some_and(|f| f.contains("Create the folder Never Made")),
        "{alert}"
    );
}
