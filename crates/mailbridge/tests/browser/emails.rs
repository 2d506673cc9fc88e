//! Tracked emails: the list, and one email's parties, regarding record,
//! correlation and decision.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, message, wait};
use crate::driver::signed_in;

async fn tracked(w: &World, message_id: &str) -> Value {
    wait(
        &format!("the email <{message_id}>"),
        Duration::from_secs(20),
        || async {
            w.emails(&format!("&message_id={message_id}"))
                .await
                .into_iter()
                .next()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_email_shows_its_parties_correlation_and_decision() {
    let w = World::start(Backend::Postgres, fast_engine()).await;
    let (_, mailbox, alice) = w.member("all").await;
    let account = w
        .post(
            "/accounts",
            json!({"name": "Fabrikam", "email": "info@fabrikam.com"}),
        )
        .await;
    w.post(
        "/contacts",
        json!({"name": "Carl Fabrikam", "email": "carl@fabrikam.com", "account_id": account["id"]}),
    )
    .await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // An email Alice sent regarding Fabrikam, and Carl's reply to it.
    let original_id = format!("{}@contoso.example", uuid::Uuid::now_v7().simple());
    w.post(
        "/emails",
        json!({"direction": "outgoing", "status": "sent", "subject": "Quote for 200 licences",
               "message_id": original_id, "from_mailbox_id": mailbox, "to": ["carl@fabrikam.com"],
               "sent_at": chrono::Utc::now().to_rfc3339(),
               "regarding": {"type": "account", "id": account["id"]}}),
    )
    .await;
    let (reply, reply_id) = message(
        "Carl Fabrikam <carl@fabrikam.com>",
        &[&alice.address, "dana@elsewhere.org"],
        "Re: Quote for 200 licences",
        &format!("In-Reply-To: <{original_id}>\r\nReferences: <{original_id}>\r\n"),
    );
    w.servers.deliver(&alice.address, &reply).await.unwrap();
    // And an unrelated message, tracked because Alice tracks all email.
    let (other, other_id) = message(
        "dana@elsewhere.org",
        &[&alice.address],
        "Conference dates",
        "",
    );
    w.servers.deliver(&alice.address, &other).await.unwrap();
    let email = tracked(&w, &reply_id).await;
    assert_eq!(email["correlation_method"], "in_reply_to");
    tracked(&w, &other_id).await;

    let b = signed_in(&w).await;
    b.open("/emails").await;
    let list = b.text("#emails").await;
    assert!(list.contains("Re: Quote for 200 licences"), "{list}");
    assert!(list.contains("Conference dates"), "{list}");
    assert!(list.contains("In-Reply-To"), "{list}");
    assert!(list.contains("Fabrikam"), "the regarding account: {list}");
    b.screenshot("emails").await;

    // Search narrows the list.
    b.fill("#search", "conference").await;
    b.click(".filters button[type=submit]").await;
    b.wait_for_text("Conference dates", 10).await;
    assert!(!b.text("#emails").await.contains("Quote"));

    // The reply's page: parties resolved, regarding, correlation, decision.
    b.open("/emails").await;
    b.click(&format!(
        "#email-{} td.subject a",
        email["id"].as_str().unwrap()
    ))
    .await;
    b.wait_for_text("Correlation method", 10).await;
    let parties = b.text("#parties").await;
    assert!(
        parties.contains("Contact") && parties.contains("Carl Fabrikam"),
        "{parties}"
    );
    assert!(parties.contains("Unresolved"), "dana is nobody: {parties}");
    assert!(parties.contains("User"), "alice is a user: {parties}");
    let regarding = b.text("#regarding").await;
    assert!(regarding.contains("Fabrikam"), "{regarding}");
    assert!(regarding.contains("In-Reply-To"), "{regarding}");
    assert!(regarding.contains(&reply_id), "the Message-ID: {regarding}");
    let decision = b.text("#decision").await;
    assert!(decision.contains("filter_all"), "the rule: {decision}");
    assert!(
        decision.contains("In reply to"),
        "the trail's correlation: {decision}"
    );
    assert!(decision.contains("Tracked"), "{decision}");
    b.screenshot("email-detail").await;
    b.close().await;
}
