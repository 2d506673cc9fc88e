//! Mail-server events: who may send them, which mailboxes they wake, and clear
//! errors for bad ones.

use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(mail_events_wake_the_named_mailbox_of_the_profile,);

async fn mail_events_wake_the_named_mailbox_of_the_profile(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let other_org = app.org("Fabrikam").await;
    let dovecot = app.imap_profile(&org, "Dovecot").await;
    let other = app.imap_profile(&org, "Other server").await;
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let (bob, _) = app.member(&org, "Bob", "user").await;
    for (user, profile) in [(&alice, &dovecot), (&bob, &other)] {
        app.patch(
            &format!(
                "/api/v1/orgs/{org}/mailboxes/{}",
                user["mailbox_id"].as_str().unwrap()
            ),
            &app.admin,
            json!({"profile_id": profile["id"]}),
        )
        .await
        .expect(200);
    }
    let url = |profile: &serde_json::Value| {
        format!(
            "/api/v1/orgs/{org}/email-server-profiles/{}/mail-events",
            profile["id"].as_str().unwrap()
        )
    };
    // Dovecot's OX-driver fields, and more than mailbridge reads.
    let event = |user: &str, name: &str| {
        json!({"event": name, "user": user, "folder": "INBOX", "imap-uidvalidity": 1700000000,
               "imap-uid": 42, "from": "carl@fabrikam.com", "subject": "Hi", "unseen": 1})
    };
    let woken = |v: serde_json::Value| v["mailboxes_woken"].as_u64().unwrap();

    let v = app
        .post(
            &url(&dovecot),
            &app.admin,
            event("ALICE@example.org", "messageNew"),
        )
        .await
        .expect(202);
    assert_eq!(woken(v), 1, "the address matches without case");
    let v = app
        .post(
            &url(&other),
            &app.admin,
            event("alice@example.org", "MessageNew"),
        )
        .await
        .expect(202);
    assert_eq!(woken(v), 0, "alice's mailbox is not on the other profile");
    let v = app
        .post(
            &url(&other),
            &app.admin,
            event("bob@example.org", "MessageNew"),
        )
        .await
        .expect(202);
    assert_eq!(woken(v), 1);
    let v = app
        .post(
            &url(&dovecot),
            &app.admin,
            event("alice@example.org", "FlagsSet"),
        )
        .await
        .expect(202);
    assert_eq!(woken(v), 0, "only new mail wakes a mailbox");
    let v = app
        .post(
            &url(&dovecot),
            &app.admin,
            event("nobody@example.org", "messageNew"),
        )
        .await
        .expect(202);
    assert_eq!(woken(v), 0);

    // Bad input names the field.
    let e = app
        .post(&url(&dovecot), &app.admin, event("  ", "messageNew"))
        .await
        .error(422, "missing_field");
    assert_eq!(e["field"], "user", "{e}");
    let e = app
        .post(
            &url(&dovecot),
            &app.admin,
            json!({"user": "alice@example.org"}),
        )
        .await;
    assert_eq!(e.status, 422, "{}", e.text);
    assert!(e.text.contains("event"), "{}", e.text);

    // Who may send events: an administrator of the organization, not a user,
    // and nobody from another organization; no token, no event.
    app.post(
        &url(&dovecot),
        &alice_token,
        event("alice@example.org", "messageNew"),
    )
    .await
    .error(403, "forbidden");
    let (_, stranger) = app.member(&other_org, "Mallory", "org_admin").await;
    app.post(
        &url(&dovecot),
        &stranger,
        event("alice@example.org", "messageNew"),
    )
    .await
    .error(404, "not_found");
    app.post(
        &url(&dovecot),
        "not-a-token",
        event("alice@example.org", "messageNew"),
    )
    .await
    .error(401, "unauthorized");
    app.post(
        &format!("/api/v1/orgs/{org}/email-server-profiles/no-such-profile/mail-events"),
        &app.admin,
        event("alice@example.org", "messageNew"),
    )
    .await
    .error(404, "not_found");
}

on_both_backends!(a_wake_up_during_a_run_outlives_the_run,);

/// A mail server's event that arrives while the mailbox's run is going (after the
/// run looked) keeps the mailbox due when the run ends; the run's own schedule
/// applies only when nothing woke it meanwhile.
async fn a_wake_up_during_a_run_outlives_the_run(backend: Backend) {
    use chrono::{Duration, Utc};
    use mailbridge_domain::WorkloadStatus;
    use mailbridge_store::Workload;

    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let dovecot = app.imap_profile(&org, "Dovecot").await;
    let (alice, _) = app.member(&org, "Alice", "user").await;
    let mailbox = alice["mailbox_id"].as_str().unwrap().to_owned();
    app.patch(
        &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
        &app.admin,
        json!({"profile_id": dovecot["id"]}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/v1/orgs/{org}/email-settings"),
        &app.admin,
        json!({"process_email_for_approved_users_only": false}),
    )
    .await
    .expect(200);
    let store = &app.store;
    store
        .record_test_results(
            &mailbox,
            WorkloadStatus::Success,
            WorkloadStatus::NotRun,
            WorkloadStatus::NotRun,
            None,
            None,
        )
        .await
        .unwrap();
    let url = format!(
        "/api/v1/orgs/{org}/email-server-profiles/{}/mail-events",
        dovecot["id"].as_str().unwrap()
    );
    let event = json!({"event": "messageNew", "user": "alice@example.org"});

    let started = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.post(&url, &app.admin, event.clone()).await.expect(202);
    let later = Utc::now() + Duration::minutes(10);
    store
        .workload_succeeded(&mailbox, Workload::Incoming, started, later, true)
        .await
        .unwrap();
    assert!(
        incoming_due(store, &mailbox, Utc::now() + Duration::milliseconds(1)).await,
        "the event during the run keeps the mailbox due"
    );

    // The control: the event came before the next run started; that run's
    // schedule stands.
    app.post(&url, &app.admin, event).await.expect(202);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let started = Utc::now();
    store
        .workload_succeeded(&mailbox, Workload::Incoming, started, later, true)
        .await
        .unwrap();
    assert!(
        !incoming_due(store, &mailbox, Utc::now()).await,
        "not due until its next poll"
    );
    assert!(
        incoming_due(store, &mailbox, later).await,
        "due at its next poll"
    );
}

async fn incoming_due(
    store: &mailbridge_store::Store,
    mailbox: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> bool {
    // The scheduler sees only the mailboxes assigned to its node.
    store
        .claim_mailboxes("test-node", at, at + chrono::Duration::hours(1), 100)
        .await
        .unwrap();
    store
        .due_mailboxes("test-node", at, 100)
        .await
        .unwrap()
        .iter()
        .any(|w| w.mailbox_id == mailbox && w.incoming_due)
}
