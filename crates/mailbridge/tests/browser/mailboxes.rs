//! The Mailboxes grid and a mailbox's page: Change Multiple Records, Approve
//! Email, Test & Enable with its live job progress, a failure alert, a queue's
//! mailbox made a forward mailbox, and what the email router received for a
//! router mailbox, with a failed message retried.

use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, World, fast_engine, unique, wait};
use crate::driver::{Browser, signed_in};

/// Signs out, then in with `token` (a member of the organization: no picker).
async fn sign_in_as(b: &Browser, token: &str) {
    b.click("form[action='/sign-out'] button").await;
    b.wait_for_text("Sign in", 10).await;
    b.click("#tab-token").await;
    b.fill("#token", token).await;
    b.click("#token-form button[type=submit]").await;
    b.wait_for_text("Sign out", 10).await;
}

/// Ticks the row boxes of these mailboxes in the grid.
async fn select(b: &Browser, ids: &[&str]) {
    for id in ids {
        b.click(&format!("#mailbox-{id} input[data-row]")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_edit_approve_and_test_and_enable_three_mailboxes() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    // Three users on Dovecot whose mailboxes are new: no profile, pending approval.
    let mut ids = Vec::new();
    for i in 0..3 {
        let name = unique(&format!("bulk{i}"));
        let login = w
            .servers
            .add_user_with(&name, &format!("pw-{name}"), &[])
            .await;
        let user = w
            .post(
                "/users",
                json!({"full_name": format!("Bulk User {i} {name}"), "email": login.address}),
            )
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        w.patch(
            &format!("/mailboxes/{mailbox}"),
            json!({"password": login.password}),
        )
        .await;
        ids.push(mailbox);
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();

    let b = signed_in(&w).await;
    b.open("/mailboxes?view=pending_approval").await;
    b.wait_for_text("Pending email approval", 10).await;
    assert!(
        b.text("#view-pending_approval").await.contains('3'),
        "the view counts its mailboxes"
    );
    // Nothing selected: the commands wait for a selection.
    assert!(!b.find("#cmd-edit").await.is_enabled().await.unwrap());

    // Edit: Change Multiple Records sets profile and delivery methods on all three.
    select(&b, &ids).await;
    b.wait_for_text("3 selected", 5).await;
    b.click("#cmd-edit").await;
    b.wait_for_text("Change Multiple Records", 10).await;
    b.select("#profile_id", &w.profile).await;
    b.select("#incoming_method", "server_side_sync").await;
    b.select("#outgoing_method", "server_side_sync").await;
    b.select("#act_method", "none").await;
    b.click("#save").await;
    b.wait_for_text("3 mailboxes updated", 10).await;
    for id in &ids {
        let row = b.text(&format!("#mailbox-{id}")).await;
        assert!(row.contains("Test Dovecot"), "{row}");
        assert!(row.contains("Server-side sync"), "{row}");
        let m = w.get(&format!("/mailboxes/{id}")).await;
        assert_eq!(m["profile_id"], w.profile.as_str());
        assert_eq!(m["act_method"], "none");
    }
    b.screenshot("mailboxes").await;

    // The administrator may not approve: the API's message is shown.
    select(&b, &ids).await;
    b.click("#cmd-approve").await;
    b.wait_for_text("approver", 10).await;

    // Approve Email, as the approver.
    sign_in_as(&b, &w.approver).await;
    b.open("/mailboxes?view=pending_approval").await;
    select(&b, &ids).await;
    b.click("#cmd-approve").await;
    b.wait_for_text("Email approved for 3 mailboxes", 10).await;
    for id in &ids {
        let m = w.get(&format!("/mailboxes/{id}")).await;
        assert_eq!(m["approval_status"], "approved");
    }
    assert!(b.text("#view-pending_approval").await.contains('0'));

    // Test & Enable, as the administrator, from the grid; the job page follows
    // the job by itself until it finishes.
    sign_in_as(&b, &w.admin).await;
    if b.path().await.starts_with("/organizations") {
        b.click(&format!("button.choice[value='{}']", w.org)).await;
        b.wait_for_text("Sign out", 10).await;
    }
    b.open("/mailboxes").await;
    select(&b, &ids).await;
    b.click("#cmd-test").await;
    wait("the job page", Duration::from_secs(10), || async {
        b.path().await.starts_with("/jobs/").then_some(())
    })
    .await;
    b.find("#job-progress").await;
    let body = b.wait_for_text("Completed", 60).await;
    assert!(!body.contains("Completed with failures"), "{body}");
    assert_eq!(b.text("#count-succeeded").await, "3");
    assert_eq!(b.text("#count-failed").await, "0");
    let rows = b.text("#job-items").await;
    assert_eq!(rows.matches("Succeeded").count(), 3, "{rows}");
    b.screenshot("job-progress").await;
    for id in &ids {
        let m = w.get(&format!("/mailboxes/{id}")).await;
        assert_eq!(m["incoming_enabled"], true, "{m}");
    }
    b.open("/mailboxes?view=active").await;
    assert!(b.text("#view-active").await.contains('3'));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_a_failure_alert() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, good, _) = w.member("all").await;
    let (_, bad, _) = w.member("all").await;
    w.patch(
        &format!("/mailboxes/{bad}"),
        json!({"password": "not-the-password"}),
    )
    .await;
    w.test_and_enable(&[&good]).await;

    let b = signed_in(&w).await;
    // Test & Enable from the mailbox's own page.
    b.open(&format!("/mailboxes/{bad}")).await;
    b.click("#cmd-test").await;
    b.wait_for_text("Completed with failures", 60).await;
    assert_eq!(b.text("#count-failed").await, "1");
    let rows = b.text("#job-items").await;
    assert!(rows.contains("Failed"), "{rows}");

    // The mailbox page: failed statuses, the alert with its fix.
    b.open(&format!("/mailboxes/{bad}")).await;
    let alert = b.text("#latest-alert").await;
    assert!(
        alert.to_lowercase().contains("password") || alert.to_lowercase().contains("authentic"),
        "{alert}"
    );
    let workloads = b.text("#workloads").await;
    assert!(workloads.contains("Failure"), "{workloads}");
    assert!(b.text("#mailbox-alerts").await.contains("How to fix"));
    b.screenshot("mailbox").await;

    // The Failed view lists it; the alerts wall has it too.
    b.open("/mailboxes?view=failed").await;
    let grid = b.text("#mailboxes").await;
    assert!(grid.contains("Failure"), "{grid}");
    b.find(&format!("#mailbox-{bad}")).await;
    assert!(
        b.client
            .find(fantoccini::Locator::Css(&format!("#mailbox-{good}")))
            .await
            .is_err(),
        "the working mailbox is not in the Failed view"
    );
    b.open("/alerts?severity=error").await;
    b.find(".alert-card.sev-error").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_mailbox_becomes_a_forward_mailbox() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let queue = w
        .post(
            "/queues",
            json!({"name": "Forwarded mail", "email": format!("{}@example.org", unique("fwd"))}),
        )
        .await;
    let qm = queue["mailbox_id"].as_str().unwrap().to_owned();
    let (_, um, _) = w.member("all").await;

    let b = signed_in(&w).await;
    // A user's mailbox has no forward mailbox settings.
    b.open(&format!("/mailboxes/{um}")).await;
    b.wait_for_text("Synchronization", 10).await;
    assert!(
        b.client
            .find(fantoccini::Locator::Css("#forwarding"))
            .await
            .is_err(),
        "a user's mailbox page offers no forward mailbox settings"
    );

    b.open(&format!("/mailboxes/{qm}")).await;
    b.find("#forwarding-form").await;
    assert!(
        !b.find("#is_forward_mailbox")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    assert!(
        !b.find("#delete_after_processing")
            .await
            .is_selected()
            .await
            .unwrap()
    );

    // Deletion without forwarding: refused, the message next to its box, the box
    // still ticked as posted, nothing saved.
    b.click("#delete_after_processing").await;
    b.click("#save-forwarding").await;
    b.find("#field-delete_after_processing .error-text").await;
    let error = b.text("#field-delete_after_processing .error-text").await;
    assert!(
        error.contains("forward mailboxes only") && error.contains("is_forward_mailbox"),
        "{error}"
    );
    assert!(
        b.client
            .find(fantoccini::Locator::Css(
                "#field-is_forward_mailbox .error-text"
            ))
            .await
            .is_err(),
        "only the wrong field is marked"
    );
    assert!(
        b.find("#delete_after_processing")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    let m = w.get(&format!("/mailboxes/{qm}")).await;
    assert_eq!(m["delete_after_processing"], false, "{m}");
    b.screenshot("mailbox-forwarding-refused").await;

    // Forwarding ticked too: saved, and shown ticked when the page is opened again.
    b.click("#is_forward_mailbox").await;
    b.click("#save-forwarding").await;
    b.wait_for_text("Forward mailbox settings saved", 10).await;
    let m = w.get(&format!("/mailboxes/{qm}")).await;
    assert_eq!(m["is_forward_mailbox"], true, "{m}");
    assert_eq!(m["delete_after_processing"], true, "{m}");
    b.open(&format!("/mailboxes/{qm}")).await;
    assert!(
        b.find("#is_forward_mailbox")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    assert!(
        b.find("#delete_after_processing")
            .await
            .is_selected()
            .await
            .unwrap()
    );

    // Unticking deletion alone keeps forwarding.
    b.click("#delete_after_processing").await;
    b.click("#save-forwarding").await;
    b.wait_for_text("Forward mailbox settings saved", 10).await;
    let m = w.get(&format!("/mailboxes/{qm}")).await;
    assert_eq!(m["is_forward_mailbox"], true, "{m}");
    assert_eq!(m["delete_after_processing"], false, "{m}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_mailbox_shows_what_it_received_and_retries_a_failed_message() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let address = format!("{}@example.org", unique("router"));
    let queue = w
        .post("/queues", json!({"name": "Routed mail", "email": address}))
        .await;
    let mailbox = queue["mailbox_id"].as_str().unwrap().to_owned();

    let b = signed_in(&w).await;
    // Not a router mailbox (yet): no card.
    b.open(&format!("/mailboxes/{mailbox}")).await;
    b.wait_for_text("Synchronization", 10).await;
    assert!(
        b.client
            .find(fantoccini::Locator::Css("#inbound"))
            .await
            .is_err(),
        "only a router mailbox shows what the email router received"
    );

    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"incoming_method": "router"}),
    )
    .await;
    for subject in ["First order", "Second order"] {
        let raw = format!("From: carl@fabrikam.com\r\nSubject: {subject}\r\n\r\nHello\r\n");
        w.store
            .store_inbound_message(&mailbridge_store::ReceivedMessage {
                raw: raw.as_bytes(),
                envelope_from: "carl@fabrikam.com",
                client_address: "127.0.0.1",
                recipients: &[mailbridge_store::InboundRecipient {
                    org_id: w.org.clone(),
                    mailbox_id: mailbox.clone(),
                    recipient: address.clone(),
                    tag: None,
                }],
            })
            .await
            .unwrap();
    }
    // The second one is given up on; the first one waits.
    let claimed = w
        .store
        .claim_inbound_messages("browser-test", Duration::from_secs(60), 10)
        .await
        .unwrap();
    for m in &claimed {
        assert!(
            w.store
                .release_inbound_message(
                    &m.id,
                    "browser-test",
                    "the email could not be created",
                    m.seq == 2
                )
                .await
                .unwrap()
        );
    }
    let failed_id = claimed.iter().find(|m| m.seq == 2).unwrap().id.clone();

    b.open(&format!("/mailboxes/{mailbox}")).await;
    b.find("#inbound-messages").await;
    let counts = b.text("#inbound-counts").await;
    assert!(
        counts.contains("1 pending") && counts.contains("1 failed"),
        "{counts}"
    );
    let failed_row = b.text("#inbound-2").await;
    assert!(
        failed_row.contains("Second order")
            && failed_row.contains("carl@fabrikam.com")
            && failed_row.contains(&address)
            && failed_row.contains("the email could not be created"),
        "{failed_row}"
    );
    assert!(b.text("#inbound-1").await.contains("First order"));
    assert!(
        b.client
            .find(fantoccini::Locator::Css("#retry-1"))
            .await
            .is_err(),
        "only a failed message has a Retry button"
    );
    b.screenshot("mailbox-router-received").await;

    b.click("#retry-2").await;
    b.wait_for_text("sent through the pipeline again", 10).await;
    let retried = w
        .store
        .inbound_messages_of_mailbox(&w.org, &mailbox)
        .await
        .unwrap();
    assert_eq!(
        retried
            .iter()
            .map(|m| (m.seq, m.status.as_str(), m.attempts))
            .collect::<Vec<_>>(),
        [(1, "pending", 1), (2, "pending", 0)]
    );
    assert!(
        b.client
            .find(fantoccini::Locator::Css("#retry-2"))
            .await
            .is_err(),
        "a pending message has no Retry button"
    );

    // A Retry on a page that is out of date: refused with the API's reason.
    let claimed = w
        .store
        .claim_inbound_messages("browser-test", Duration::from_secs(60), 10)
        .await
        .unwrap();
    let again = claimed.iter().find(|m| m.id == failed_id).unwrap();
    w.store
        .release_inbound_message(&again.id, "browser-test", "still broken", true)
        .await
        .unwrap();
    b.open(&format!("/mailboxes/{mailbox}")).await;
    b.find("#retry-2").await;
    w.post(
        &format!("/mailboxes/{mailbox}/inbound-messages/{failed_id}/retry"),
        json!({}),
    )
    .await;
    b.click("#retry-2").await;
    b.wait_for_text("only a failed message can be retried", 10)
        .await;
    b.close().await;
}
