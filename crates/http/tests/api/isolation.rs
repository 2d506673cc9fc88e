//! The organization boundary: a token of one organization gets 404 for every
//! resource of another, exactly as if it did not exist, and changes nothing.

use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

on_both_backends!(other_organizations_are_invisible, tokens_are_required);

/// The methods each collection offers: list, create, get, patch, delete.
fn offered(kind: &str) -> [bool; 5] {
    match kind {
        "mailboxes" => [true, false, true, true, false],
        "users" => [true, true, true, true, false],
        "alerts" => [true, true, true, false, true],
        "jobs" => [true, true, true, false, false],
        "tokens" => [true, true, false, false, true],
        _ => [true; 5],
    }
}

/// Creates one record of every kind in `org`; returns (collection, id) pairs.
async fn one_of_each(app: &TestApp, org: &str) -> Vec<(String, String)> {
    let base = format!("/api/v1/orgs/{org}");
    let id = |v: Value| v["id"].as_str().expect("id").to_owned();
    let user = app
        .post(
            &format!("{base}/users"),
            &app.admin,
            json!({"full_name": "B User", "email": "b@example.org"}),
        )
        .await
        .expect(201);
    let queue = app
        .post(
            &format!("{base}/queues"),
            &app.admin,
            json!({"name": "B Queue"}),
        )
        .await
        .expect(201);
    let account = app
        .post(
            &format!("{base}/accounts"),
            &app.admin,
            json!({"name": "Fabrikam"}),
        )
        .await
        .expect(201);
    let contact = app
        .post(
            &format!("{base}/contacts"),
            &app.admin,
            json!({"name": "Carl", "email": "carl@fabrikam.com", "account_id": account["id"]}),
        )
        .await
        .expect(201);
    let lead = app
        .post(
            &format!("{base}/leads"),
            &app.admin,
            json!({"name": "Lena", "company": "Tailspin"}),
        )
        .await
        .expect(201);
    let profile = app.imap_profile(org, "B profile").await;
    let email = app
        .post(&format!("{base}/emails"), &app.admin, json!({"subject": "Hi", "message_id": "<b1@example.org>", "regarding_type": "contact", "regarding_id": contact["id"]}))
        .await
        .expect(201);
    let appointment = app
        .post(&format!("{base}/appointments"), &app.admin, json!({"subject": "Call", "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z"}))
        .await
        .expect(201);
    let task = app
        .post(
            &format!("{base}/tasks"),
            &app.admin,
            json!({"subject": "Follow up"}),
        )
        .await
        .expect(201);
    let alert = app
        .post(&format!("{base}/alerts"), &app.admin, json!({"scope": "mailbox", "severity": "error", "mailbox_id": user["mailbox_id"], "message": "x", "recipient_ids": [user["id"]]}))
        .await
        .expect(201);
    let job = app
        .post(
            &format!("{base}/jobs"),
            &app.admin,
            json!({"kind": "test_and_enable", "mailbox_ids": [user["mailbox_id"]]}),
        )
        .await
        .expect(201);
    let token = app
        .post(
            &format!("{base}/tokens"),
            &app.admin,
            json!({"user_id": user["id"]}),
        )
        .await
        .expect(201);
    vec![
        (
            "mailboxes".into(),
            user["mailbox_id"].as_str().unwrap().to_owned(),
        ),
        ("users".into(), id(user)),
        ("queues".into(), id(queue)),
        ("accounts".into(), id(account)),
        ("contacts".into(), id(contact)),
        ("leads".into(), id(lead)),
        ("email-server-profiles".into(), id(profile)),
        ("emails".into(), id(email)),
        ("appointments".into(), id(appointment)),
        ("tasks".into(), id(task)),
        ("alerts".into(), id(alert)),
        ("jobs".into(), id(job)),
        ("tokens".into(), id(token)),
    ]
}

async fn other_organizations_are_invisible(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = app.org("A").await;
    let b = app.org("B").await;
    let records = one_of_each(&app, &b).await;
    let (_, admin_a) = app.member(&a, "Admin A", "org_admin").await;
    let (_, approver_a) = app.member(&a, "Approver A", "approver").await;
    let (_, user_a) = app.member(&a, "User A", "user").await;
    for token in [&admin_a, &approver_a, &user_a] {
        for (kind, id) in &records {
            let collection = format!("/api/v1/orgs/{b}/{kind}");
            let item = format!("{collection}/{id}");
            let [list, create, get, patch, delete] = offered(kind);
            // A method a path does not offer is a 405 whoever asks; every offered
            // one is a 404 for another organization's token.
            let expect = |offered: bool| {
                if offered {
                    (404, "not_found")
                } else {
                    (405, "method_not_allowed")
                }
            };
            let (status, code) = expect(list);
            app.get(&collection, token).await.error(status, code);
            let (status, code) = expect(create);
            app.post(&collection, token, json!({}))
                .await
                .error(status, code);
            let (status, code) = expect(get);
            app.get(&item, token).await.error(status, code);
            let (status, code) = expect(patch);
            app.patch(&item, token, json!({})).await.error(status, code);
            let (status, code) = expect(delete);
            app.delete(&item, token).await.error(status, code);
            // The other organization's id under one's own organization is unknown too.
            if get {
                app.get(&format!("/api/v1/orgs/{a}/{kind}/{id}"), &app.admin)
                    .await
                    .error(404, "not_found");
            }
        }
        app.get(&format!("/api/v1/orgs/{b}/email-settings"), token)
            .await
            .error(404, "not_found");
        app.patch(
            &format!("/api/v1/orgs/{b}/email-settings"),
            token,
            json!({}),
        )
        .await
        .error(404, "not_found");
        app.post(
            &format!("/api/v1/orgs/{b}/mailboxes/approve"),
            token,
            json!({"ids": []}),
        )
        .await
        .error(404, "not_found");
        app.patch(
            &format!("/api/v1/orgs/{b}/mailboxes"),
            token,
            json!({"ids": []}),
        )
        .await
        .error(404, "not_found");
        app.get(&format!("/api/v1/organizations/{b}"), token)
            .await
            .error(404, "not_found");
        app.patch(
            &format!("/api/v1/organizations/{b}"),
            token,
            json!({"name": "Mine"}),
        )
        .await
        .error(404, "not_found");
        let orgs = app.get("/api/v1/organizations", token).await.expect(200);
        let names: Vec<_> = orgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [a.as_str()],
            "members list only their own organization"
        );
    }
    // Naming B's mailboxes in A's bulk edit changes nothing of B's.
    let (_, b_mailbox) = &records[0];
    let e = app
        .patch(
            &format!("/api/v1/orgs/{a}/mailboxes"),
            &admin_a,
            json!({"ids": [b_mailbox], "incoming_method": "none"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "ids[0]");
    app.post(
        &format!("/api/v1/orgs/{a}/mailboxes/approve"),
        &approver_a,
        json!({"ids": [b_mailbox]}),
    )
    .await
    .error(422, "validation_failed");
    let m = app
        .get(
            &format!("/api/v1/orgs/{b}/mailboxes/{b_mailbox}"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(m["incoming_method"], "server_side_sync");
    assert_eq!(m["approval_status"], "pending");
    // References across organizations are refused as unknown.
    let b_profile = &records
        .iter()
        .find(|(k, _)| k == "email-server-profiles")
        .unwrap()
        .1;
    let (a_user, _) = app.member(&a, "Target", "user").await;
    let e = app
        .patch(
            &format!(
                "/api/v1/orgs/{a}/mailboxes/{}",
                a_user["mailbox_id"].as_str().unwrap()
            ),
            &admin_a,
            json!({"profile_id": b_profile}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "profile_id");
    let b_user = &records.iter().find(|(k, _)| k == "users").unwrap().1;
    app.post(
        &format!("/api/v1/orgs/{a}/tokens"),
        &admin_a,
        json!({"user_id": b_user}),
    )
    .await
    .error(422, "validation_failed");
    // An unknown organization is a 404 for the system administrator as well.
    app.get(
        "/api/v1/orgs/01a216bf-06cf-7442-976f-5f1410e77f48/users",
        &app.admin,
    )
    .await
    .error(404, "not_found");
}

async fn tokens_are_required(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("A").await;
    let path = format!("/api/v1/orgs/{org}/users");
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    app.get(&path, "mbt_not-a-real-token")
        .await
        .error(401, "unauthorized");
    // A revoked token stops working at once; so does a disabled user's.
    let (user, token) = app.member(&org, "Alice", "org_admin").await;
    app.get(&path, &token).await.expect(200);
    app.patch(
        &format!("{path}/{}", user["id"].as_str().unwrap()),
        &app.admin,
        json!({"disabled": true}),
    )
    .await
    .expect(200);
    app.get(&path, &token).await.error(401, "unauthorized");
    app.patch(
        &format!("{path}/{}", user["id"].as_str().unwrap()),
        &app.admin,
        json!({"disabled": false}),
    )
    .await
    .expect(200);
    app.get(&path, &token).await.expect(200);
    let listed = app
        .get(&format!("/api/v1/orgs/{org}/tokens"), &app.admin)
        .await
        .expect(200);
    let token_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        listed["items"][0].get("token").is_none(),
        "a listed token never shows its value"
    );
    app.delete(&format!("/api/v1/orgs/{org}/tokens/{token_id}"), &app.admin)
        .await
        .expect(204);
    app.get(&path, &token).await.error(401, "unauthorized");
    // Unknown paths and methods answer in the same JSON envelope.
    app.get("/api/v1/nothing-here", &app.admin)
        .await
        .error(404, "no_route");
    app.call(reqwest::Method::PUT, &path, &app.admin, Some(json!({})))
        .await
        .error(405, "method_not_allowed");
}
