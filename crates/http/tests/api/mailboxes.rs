//! Mailboxes: created with their owner from the organization's defaults, edited
//! one by one or in bulk, the process-email-from rule, and forward mailboxes
//! (a queue's only; delete after processing only with forwarding).

use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(
    every_owner_gets_a_mailbox_with_the_defaults,
    bulk_edit_changes_all_or_nothing,
    process_email_from_not_before_the_profile,
    owner_changes_follow_to_the_mailbox,
    users_edit_only_their_own_delivery_settings,
    discovered_locations_are_shown_and_forgotten_with_the_profile,
    forward_mailboxes_are_queue_mailboxes_only,
);

async fn every_owner_gets_a_mailbox_with_the_defaults(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let profile = app.imap_profile(&org, "Dovecot").await;
    app.patch(
        &format!("/api/v1/orgs/{org}/email-settings"),
        &app.admin,
        json!({"default_profile_id": profile["id"], "default_incoming_method": "server_side_sync",
               "default_outgoing_method": "none", "default_act_method": "server_side_sync"}),
    )
    .await
    .expect(200);
    let user = app
        .post(
            &format!("/api/v1/orgs/{org}/users"),
            &app.admin,
            json!({"full_name": "Alice", "email": "alice@example.org"}),
        )
        .await
        .expect(201);
    assert_eq!(
        user["tracking_filter"], "replies",
        "the default tracking filter"
    );
    assert_eq!(user["role"], "user");
    let queue = app
        .post(
            &format!("/api/v1/orgs/{org}/queues"),
            &app.admin,
            json!({"name": "Support", "email": "support@example.org"}),
        )
        .await
        .expect(201);
    for (owner, kind, address) in [
        (&user, "user", "alice@example.org"),
        (&queue, "queue", "support@example.org"),
    ] {
        let id = owner["mailbox_id"].as_str().expect("mailbox id");
        let m = app
            .get(&format!("/api/v1/orgs/{org}/mailboxes/{id}"), &app.admin)
            .await
            .expect(200);
        assert_eq!(m["owner_type"], kind);
        assert_eq!(m["owner_id"], owner["id"]);
        assert_eq!(m["email_address"], address);
        assert_eq!(m["profile_id"], profile["id"]);
        assert_eq!(m["incoming_method"], "server_side_sync");
        assert_eq!(m["outgoing_method"], "none");
        assert_eq!(m["act_method"], "server_side_sync");
        assert_eq!(m["approval_status"], "pending");
        for status in ["incoming_status", "outgoing_status", "act_status"] {
            assert_eq!(m[status], "not_run", "{status}");
        }
        assert_eq!(m["incoming_enabled"], false);
    }
    // Without an address there is nothing to approve yet.
    let nobody = app
        .post(
            &format!("/api/v1/orgs/{org}/users"),
            &app.admin,
            json!({"full_name": "No Mail"}),
        )
        .await
        .expect(201);
    let m = app
        .get(
            &format!(
                "/api/v1/orgs/{org}/mailboxes/{}",
                nobody["mailbox_id"].as_str().unwrap()
            ),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(m["approval_status"], "empty");
    // Mailboxes are created with their owner, not on their own.
    app.post(
        &format!("/api/v1/orgs/{org}/mailboxes"),
        &app.admin,
        json!({}),
    )
    .await
    .error(405, "method_not_allowed");
    // Deleting a queue deletes its mailbox.
    let qm = queue["mailbox_id"].as_str().unwrap();
    app.delete(
        &format!(
            "/api/v1/orgs/{org}/queues/{}",
            queue["id"].as_str().unwrap()
        ),
        &app.admin,
    )
    .await
    .expect(204);
    app.get(&format!("/api/v1/orgs/{org}/mailboxes/{qm}"), &app.admin)
        .await
        .error(404, "not_found");
}

async fn bulk_edit_changes_all_or_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let p1 = app.imap_profile(&org, "One").await;
    let p2 = app.imap_profile(&org, "Two").await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        let u = app
            .post(
                &format!("/api/v1/orgs/{org}/users"),
                &app.admin,
                json!({"full_name": name, "email": format!("{name}@example.org")}),
            )
            .await
            .expect(201);
        ids.push(u["mailbox_id"].as_str().unwrap().to_owned());
    }
    let path = format!("/api/v1/orgs/{org}/mailboxes");
    let changed = app
        .patch(&path, &app.admin, json!({"ids": ids, "profile_id": p1["id"], "incoming_method": "server_side_sync", "outgoing_method": "router"}))
        .await
        .expect(200);
    assert_eq!(changed["items"].as_array().unwrap().len(), 3);
    for id in &ids {
        let m = app
            .get(&format!("{path}/{id}"), &app.admin)
            .await
            .expect(200);
        assert_eq!(m["profile_id"], p1["id"]);
        assert_eq!(m["outgoing_method"], "router");
    }
    // A list that names a mailbox of nowhere changes nothing.
    let mut bad = ids.clone();
    bad.push("01a216bf-06cf-7442-976f-5f1410e77f48".to_owned());
    let e = app
        .patch(
            &path,
            &app.admin,
            json!({"ids": bad, "profile_id": p2["id"]}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "ids[3]");
    for id in &ids {
        let m = app
            .get(&format!("{path}/{id}"), &app.admin)
            .await
            .expect(200);
        assert_eq!(
            m["profile_id"], p1["id"],
            "unchanged after the refused bulk edit"
        );
    }
    // Filter by profile, then clear it.
    let listed = app
        .get(
            &format!("{path}?profile_id={}", p1["id"].as_str().unwrap()),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    app.patch(&path, &app.admin, json!({"ids": ids, "profile_id": null}))
        .await
        .expect(200);
    let listed = app
        .get(
            &format!("{path}?profile_id={}", p1["id"].as_str().unwrap()),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    // Apply Default Settings puts the organization's defaults back.
    app.patch(
        &format!("/api/v1/orgs/{org}/email-settings"),
        &app.admin,
        json!({"default_profile_id": p2["id"], "default_outgoing_method": "none"}),
    )
    .await
    .expect(200);
    let applied = app
        .post(
            &format!("{path}/apply-default-settings"),
            &app.admin,
            json!({"ids": [ids[1].clone()]}),
        )
        .await
        .expect(200);
    assert_eq!(applied["items"][0]["profile_id"], p2["id"]);
    assert_eq!(applied["items"][0]["outgoing_method"], "none");
    assert_eq!(applied["items"][0]["incoming_method"], "server_side_sync");
    app.patch(
        &format!("/api/v1/orgs/{org}/email-settings"),
        &app.admin,
        json!({"default_profile_id": null}),
    )
    .await
    .expect(200);
    // Nothing to set is an error, not a silent no-op.
    app.patch(&path, &app.admin, json!({"ids": ids}))
        .await
        .error(422, "missing_field");
    // A profile in use cannot be deleted; an unused one can.
    app.patch(
        &path,
        &app.admin,
        json!({"ids": [ids[0].clone()], "profile_id": p2["id"]}),
    )
    .await
    .expect(200);
    app.delete(
        &format!(
            "/api/v1/orgs/{org}/email-server-profiles/{}",
            p2["id"].as_str().unwrap()
        ),
        &app.admin,
    )
    .await
    .error(409, "conflict");
    app.delete(
        &format!(
            "/api/v1/orgs/{org}/email-server-profiles/{}",
            p1["id"].as_str().unwrap()
        ),
        &app.admin,
    )
    .await
    .expect(204);
}

async fn process_email_from_not_before_the_profile(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let profile = app
        .post(
            &format!("/api/v1/orgs/{org}/email-server-profiles"),
            &app.admin,
            json!({"name": "P", "server_type": "imap_smtp", "auto_discover": true, "process_email_from": "2026-01-01T00:00:00Z"}),
        )
        .await
        .expect(201);
    let (user, _) = app.member(&org, "Alice", "user").await;
    let path = format!(
        "/api/v1/orgs/{org}/mailboxes/{}",
        user["mailbox_id"].as_str().unwrap()
    );
    let e = app
        .patch(
            &path,
            &app.admin,
            json!({"profile_id": profile["id"], "process_email_from": "2025-12-31T23:59:59Z"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "process_email_from");
    assert!(e["message"].as_str().unwrap().contains("2026-01-01"), "{e}");
    let m = app
        .patch(
            &path,
            &app.admin,
            json!({"profile_id": profile["id"], "process_email_from": "2026-02-01T00:00:00Z"}),
        )
        .await
        .expect(200);
    assert_eq!(m["process_email_from"], "2026-02-01T00:00:00Z");
}

async fn owner_changes_follow_to_the_mailbox(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (user, _) = app.member(&org, "Alice", "user").await;
    let (_, approver) = app.member(&org, "Ann", "approver").await;
    let mailbox = user["mailbox_id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/orgs/{org}/mailboxes/approve"),
        &approver,
        json!({"ids": [mailbox]}),
    )
    .await
    .expect(200);
    let uid = user["id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/orgs/{org}/users/{uid}"),
        &app.admin,
        json!({"full_name": "Alice Smith"}),
    )
    .await
    .expect(200);
    let m = app
        .get(
            &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(m["name"], "Alice Smith");
    assert_eq!(
        m["approval_status"], "approved",
        "same address keeps its approval"
    );
    app.patch(
        &format!("/api/v1/orgs/{org}/users/{uid}"),
        &app.admin,
        json!({"email": "alice@contoso.com"}),
    )
    .await
    .expect(200);
    let m = app
        .get(
            &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(m["email_address"], "alice@contoso.com");
    assert_eq!(
        m["approval_status"], "pending",
        "a new address needs approval again"
    );
}

async fn users_edit_only_their_own_delivery_settings(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let profile = app.imap_profile(&org, "P").await;
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let (bob, _) = app.member(&org, "Bob", "user").await;
    let mine = alice["mailbox_id"].as_str().unwrap();
    let theirs = bob["mailbox_id"].as_str().unwrap();
    let list = app
        .get(&format!("/api/v1/orgs/{org}/mailboxes"), &alice_token)
        .await
        .expect(200);
    let ids: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [mine.to_owned()],
        "a user lists only their own mailbox"
    );
    app.get(
        &format!("/api/v1/orgs/{org}/mailboxes/{theirs}"),
        &alice_token,
    )
    .await
    .error(404, "not_found");
    app.patch(
        &format!("/api/v1/orgs/{org}/mailboxes/{theirs}"),
        &alice_token,
        json!({"incoming_method": "none"}),
    )
    .await
    .error(404, "not_found");
    let m = app
        .patch(
            &format!("/api/v1/orgs/{org}/mailboxes/{mine}"),
            &alice_token,
            json!({"incoming_method": "none", "outgoing_method": "router", "username": "alice", "password": "alice-imap-pw"}),
        )
        .await
        .expect(200);
    assert_eq!(m["incoming_method"], "none");
    assert_eq!(m["password_set"], true);
    let e = app
        .patch(
            &format!("/api/v1/orgs/{org}/mailboxes/{mine}"),
            &alice_token,
            json!({"profile_id": profile["id"]}),
        )
        .await
        .error(403, "forbidden");
    assert_eq!(e["field"], "profile_id");
    app.patch(
        &format!("/api/v1/orgs/{org}/mailboxes"),
        &alice_token,
        json!({"ids": [mine], "incoming_method": "none"}),
    )
    .await
    .error(403, "forbidden");
}

async fn discovered_locations_are_shown_and_forgotten_with_the_profile(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let p1 = app.imap_profile(&org, "One").await;
    let p2 = app.imap_profile(&org, "Two").await;
    let user = app
        .post(
            &format!("/api/v1/orgs/{org}/users"),
            &app.admin,
            json!({"full_name": "Alice", "email": "alice@contoso.test"}),
        )
        .await
        .expect(201);
    let id = user["mailbox_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orgs/{org}/mailboxes/{id}");
    app.patch(&path, &app.admin, json!({"profile_id": p1["id"]}))
        .await
        .expect(200);
    let m = app.get(&path, &app.admin).await.expect(200);
    for field in [
        "discovered_incoming_location",
        "discovered_outgoing_location",
        "discovered_source",
        "discovered_at",
    ] {
        assert!(m[field].is_null(), "{field}: {m}");
    }
    // What the engine writes after a lookup (microseconds survive both backends).
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:20:30.123456Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    app.store
        .set_discovered_location(
            &org,
            &id,
            Some("imaps://mail.contoso.test:993"),
            Some("smtp://mail.contoso.test:587"),
            mailbridge_domain::DiscoverySource::Srv,
            at,
        )
        .await
        .unwrap();
    let m = app.get(&path, &app.admin).await.expect(200);
    assert_eq!(
        m["discovered_incoming_location"],
        "imaps://mail.contoso.test:993"
    );
    assert_eq!(
        m["discovered_outgoing_location"],
        "smtp://mail.contoso.test:587"
    );
    assert_eq!(m["discovered_source"], "srv");
    assert_eq!(m["discovered_at"], "2026-03-01T10:20:30.123456Z");
    let stored = app
        .store
        .discovered_location(&org, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.at, at);
    // Another organization's id changes nothing.
    let other = app.org("Fabrikam").await;
    app.store
        .clear_discovered_location(&other, &id)
        .await
        .unwrap();
    assert!(
        app.store
            .discovered_location(&org, &id)
            .await
            .unwrap()
            .is_some()
    );
    // An unrelated edit keeps them; a new profile forgets them.
    app.patch(&path, &app.admin, json!({"track_sent_items": true}))
        .await
        .expect(200);
    assert!(
        app.store
            .discovered_location(&org, &id)
            .await
            .unwrap()
            .is_some()
    );
    app.patch(&path, &app.admin, json!({"profile_id": p2["id"]}))
        .await
        .expect(200);
    let m = app.get(&path, &app.admin).await.expect(200);
    assert!(m["discovered_at"].is_null(), "{m}");
    // And clearing works on its own.
    app.store
        .set_discovered_location(
            &org,
            &id,
            Some("imaps://a.test:993"),
            None,
            mailbridge_domain::DiscoverySource::Autoconfig,
            at,
        )
        .await
        .unwrap();
    app.store
        .clear_discovered_location(&org, &id)
        .await
        .unwrap();
    assert!(
        app.store
            .discovered_location(&org, &id)
            .await
            .unwrap()
            .is_none()
    );
}

/// One mailbox of a list answer, by id.
fn listed<'a>(list: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("mailbox {id} is not listed: {list}"))
}

async fn forward_mailboxes_are_queue_mailboxes_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let queue = app
        .post(
            &format!("/api/v1/orgs/{org}/queues"),
            &app.admin,
            json!({"name": "Forwarded", "email": "forwarded@example.org"}),
        )
        .await
        .expect(201);
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let qm = queue["mailbox_id"].as_str().unwrap();
    let um = alice["mailbox_id"].as_str().unwrap();
    let queue_path = format!("/api/v1/orgs/{org}/mailboxes/{qm}");
    let user_path = format!("/api/v1/orgs/{org}/mailboxes/{um}");

    // New mailboxes are neither, in GET and in the list.
    for path in [&queue_path, &user_path] {
        let m = app.get(path, &app.admin).await.expect(200);
        assert_eq!(m["is_forward_mailbox"], false, "{m}");
        assert_eq!(m["delete_after_processing"], false, "{m}");
    }

    // Both on a queue's mailbox: saved, answered and read back.
    let m = app
        .patch(
            &queue_path,
            &app.admin,
            json!({"is_forward_mailbox": true, "delete_after_processing": true}),
        )
        .await
        .expect(200);
    assert_eq!(m["is_forward_mailbox"], true, "{m}");
    assert_eq!(m["delete_after_processing"], true, "{m}");
    let m = app.get(&queue_path, &app.admin).await.expect(200);
    assert_eq!(m["is_forward_mailbox"], true, "{m}");
    assert_eq!(m["delete_after_processing"], true, "{m}");
    let list = app
        .get(&format!("/api/v1/orgs/{org}/mailboxes"), &app.admin)
        .await
        .expect(200);
    assert_eq!(listed(&list, qm)["is_forward_mailbox"], true, "{list}");
    assert_eq!(listed(&list, qm)["delete_after_processing"], true, "{list}");
    assert_eq!(listed(&list, um)["is_forward_mailbox"], false, "{list}");
    assert_eq!(
        listed(&list, um)["delete_after_processing"],
        false,
        "{list}"
    );

    // Forwarding off while deletion stays on: refused, the mailbox unchanged.
    let e = app
        .patch(
            &queue_path,
            &app.admin,
            json!({"is_forward_mailbox": false}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "delete_after_processing", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("is_forward_mailbox"),
        "the message names the fix: {e}"
    );
    let m = app.get(&queue_path, &app.admin).await.expect(200);
    assert_eq!(m["is_forward_mailbox"], true, "{m}");
    // Both off together is fine; so is forwarding without deletion.
    let m = app
        .patch(
            &queue_path,
            &app.admin,
            json!({"is_forward_mailbox": false, "delete_after_processing": false}),
        )
        .await
        .expect(200);
    assert_eq!(m["is_forward_mailbox"], false, "{m}");
    assert_eq!(m["delete_after_processing"], false, "{m}");
    let m = app
        .patch(&queue_path, &app.admin, json!({"is_forward_mailbox": true}))
        .await
        .expect(200);
    assert_eq!(m["is_forward_mailbox"], true, "{m}");
    assert_eq!(m["delete_after_processing"], false, "{m}");
    // Deletion alone on a queue mailbox that does not forward: refused.
    let e = app
        .patch(
            &queue_path,
            &app.admin,
            json!({"is_forward_mailbox": false, "delete_after_processing": true}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "delete_after_processing", "{e}");
    assert_eq!(e["details"].as_array().unwrap().len(), 1, "{e}");
    assert_eq!(
        app.get(&queue_path, &app.admin).await.expect(200)["is_forward_mailbox"],
        true
    );

    // A user's mailbox cannot forward: the error names the field and the fix.
    let e = app
        .patch(&user_path, &app.admin, json!({"is_forward_mailbox": true}))
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "is_forward_mailbox", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("queue"), "{e}");
    assert!(message.contains("create a queue"), "the fix: {e}");
    // Both on a user's mailbox: only forwarding is wrong, so only it is named.
    let e = app
        .patch(
            &user_path,
            &app.admin,
            json!({"is_forward_mailbox": true, "delete_after_processing": true}),
        )
        .await
        .error(422, "validation_failed");
    let fields: Vec<&str> = e["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["is_forward_mailbox"], "{e}");
    // Deletion alone on a user's mailbox: refused as well.
    let e = app
        .patch(
            &user_path,
            &app.admin,
            json!({"delete_after_processing": true}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "delete_after_processing", "{e}");
    let m = app.get(&user_path, &app.admin).await.expect(200);
    assert_eq!(m["is_forward_mailbox"], false, "{m}");
    assert_eq!(m["delete_after_processing"], false, "{m}");
    // Users may not set it on their own mailbox either: an administrator's field.
    let e = app
        .patch(
            &user_path,
            &alice_token,
            json!({"is_forward_mailbox": false}),
        )
        .await
        .error(403, "forbidden");
    assert_eq!(e["field"], "is_forward_mailbox", "{e}");
}
