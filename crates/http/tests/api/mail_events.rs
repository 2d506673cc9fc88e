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
