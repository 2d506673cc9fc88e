//! Roles inside one organization: what each may do, and the 403 that says why not.

use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(roles_are_enforced, users_see_only_their_alerts);

async fn roles_are_enforced(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (_, admin) = app.member(&org, "Oscar", "org_admin").await;
    let (_, approver) = app.member(&org, "Ann", "approver").await;
    let (_, user) = app.member(&org, "Alice", "user").await;
    let base = format!("/api/v1/orgs/{org}");
    let profile = json!({"name": "P", "server_type": "imap_smtp", "auto_discover": true});
    // Administrators manage everything in their organization.
    let p = app
        .post(
            &format!("{base}/email-server-profiles"),
            &admin,
            profile.clone(),
        )
        .await
        .expect(201);
    app.post(
        &format!("{base}/users"),
        &admin,
        json!({"full_name": "New"}),
    )
    .await
    .expect(201);
    app.patch(
        &format!("{base}/email-settings"),
        &admin,
        json!({"tracking_token_enabled": false}),
    )
    .await
    .expect(200);
    // ...but not organizations.
    app.post("/api/v1/organizations", &admin, json!({"name": "Mine"}))
        .await
        .error(403, "forbidden");
    // Users and approvers do not manage profiles, users, settings, tokens or jobs.
    for token in [&user, &approver] {
        app.post(
            &format!("{base}/email-server-profiles"),
            token,
            profile.clone(),
        )
        .await
        .error(403, "forbidden");
        app.get(&format!("{base}/email-server-profiles"), token)
            .await
            .error(403, "forbidden");
        app.get(
            &format!("{base}/email-server-profiles/{}", p["id"].as_str().unwrap()),
            token,
        )
        .await
        .error(403, "forbidden");
        app.post(&format!("{base}/users"), token, json!({"full_name": "X"}))
            .await
            .error(403, "forbidden");
        app.patch(
            &format!("{base}/email-settings"),
            token,
            json!({"tracking_token_enabled": true}),
        )
        .await
        .error(403, "forbidden");
        app.post(&format!("{base}/tokens"), token, json!({"user_id": "x"}))
            .await
            .error(403, "forbidden");
        app.get(&format!("{base}/jobs"), token)
            .await
            .error(403, "forbidden");
        app.post("/api/v1/organizations", token, json!({"name": "Mine"}))
            .await
            .error(403, "forbidden");
    }
    // Users work with records: read users, create and edit contacts, not delete them.
    app.get(&format!("{base}/users"), &user).await.expect(200);
    app.get(&format!("{base}/email-settings"), &user)
        .await
        .expect(200);
    let c = app
        .post(&format!("{base}/contacts"), &user, json!({"name": "Carl"}))
        .await
        .expect(201);
    let c_path = format!("{base}/contacts/{}", c["id"].as_str().unwrap());
    app.patch(&c_path, &user, json!({"phone": "+1 555 0100"}))
        .await
        .expect(200);
    let e = app.delete(&c_path, &user).await.error(403, "forbidden");
    assert_eq!(
        e["message"],
        "the user role may not delete contacts, accounts and leads"
    );
    app.delete(&c_path, &admin).await.expect(204);
}

async fn users_see_only_their_alerts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let (bob, _) = app.member(&org, "Bob", "user").await;
    let path = format!("/api/v1/orgs/{org}/alerts");
    for who in [&alice, &bob] {
        app.post(
            &path,
            &app.admin,
            json!({"scope": "mailbox", "severity": "error", "mailbox_id": who["mailbox_id"],
                   "message": format!("{} cannot sign in", who["full_name"]), "fix": "Update the password",
                   "recipient_ids": [who["id"]]}),
        )
        .await
        .expect(201);
    }
    let all = app.get(&path, &app.admin).await.expect(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let mine = app.get(&path, &alice_token).await.expect(200);
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["recipient_ids"], json!([alice["id"]]));
    let bobs = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["recipient_ids"] == json!([bob["id"]]))
        .unwrap();
    app.get(
        &format!("{path}/{}", bobs["id"].as_str().unwrap()),
        &alice_token,
    )
    .await
    .error(404, "not_found");
    let errors = app
        .get(&format!("{path}?severity=error&scope=mailbox"), &app.admin)
        .await
        .expect(200);
    assert_eq!(errors["items"].as_array().unwrap().len(), 2);
    let e = app
        .post(
            &path,
            &app.admin,
            json!({"scope": "profile", "severity": "warning", "message": "x"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "profile_id");
}
