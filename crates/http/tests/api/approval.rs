//! Approving mailbox addresses takes the approver role; everyone else gets 403.

use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(only_approvers_approve);

async fn only_approvers_approve(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, user_token) = app.member(&org, "Alice", "user").await;
    let (_, admin_token) = app.member(&org, "Oscar", "org_admin").await;
    let (_, approver_token) = app.member(&org, "Ann", "approver").await;
    let mailbox = alice["mailbox_id"].as_str().unwrap();
    let approve = format!("/api/v1/orgs/{org}/mailboxes/approve");
    for (who, token) in [
        ("user", &user_token),
        ("org admin", &admin_token),
        ("system administrator", &app.admin),
    ] {
        let e = app
            .post(&approve, token, json!({"ids": [mailbox]}))
            .await
            .error(403, "forbidden");
        assert!(
            e["message"].as_str().unwrap().contains("approver"),
            "{who}: {e}"
        );
        let m = app
            .get(
                &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
                &app.admin,
            )
            .await
            .expect(200);
        assert_eq!(m["approval_status"], "pending", "{who} changed nothing");
    }
    let approved = app
        .post(&approve, &approver_token, json!({"ids": [mailbox]}))
        .await
        .expect(200);
    assert_eq!(approved["items"][0]["approval_status"], "approved");
    let m = app
        .get(
            &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
            &approver_token,
        )
        .await
        .expect(200);
    assert_eq!(m["approval_status"], "approved");
    // Rejecting is the same privilege.
    app.post(
        &format!("/api/v1/orgs/{org}/mailboxes/reject"),
        &admin_token,
        json!({"ids": [mailbox]}),
    )
    .await
    .error(403, "forbidden");
    let rejected = app
        .post(
            &format!("/api/v1/orgs/{org}/mailboxes/reject"),
            &approver_token,
            json!({"ids": [mailbox]}),
        )
        .await
        .expect(200);
    assert_eq!(rejected["items"][0]["approval_status"], "rejected");
    // An approver lists all mailboxes (to find those pending).
    let pending = app
        .get(
            &format!("/api/v1/orgs/{org}/mailboxes?approval_status=pending"),
            &approver_token,
        )
        .await
        .expect(200);
    assert_eq!(
        pending["items"].as_array().unwrap().len(),
        2,
        "Oscar's and Ann's mailboxes are pending"
    );
    // A mailbox without an address cannot be approved.
    let nobody = app
        .post(
            &format!("/api/v1/orgs/{org}/users"),
            &app.admin,
            json!({"full_name": "No Mail"}),
        )
        .await
        .expect(201);
    let e = app
        .post(
            &approve,
            &approver_token,
            json!({"ids": [nobody["mailbox_id"]]}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "ids[0]");
}
