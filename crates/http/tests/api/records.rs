//! The records of an organization: parties, activities, jobs; paging and filters.

use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(
    parties_crud,
    emails_one_message_id_one_email,
    appointments_and_tasks,
    jobs_are_queued,
    paging_walks_every_record
);

async fn parties_crud(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = format!("/api/v1/orgs/{org}");
    let account = app
        .post(
            &format!("{base}/accounts"),
            &app.admin,
            json!({"name": "Fabrikam", "email": "info@fabrikam.com"}),
        )
        .await
        .expect(201);
    let contact = app
        .post(
            &format!("{base}/contacts"),
            &app.admin,
            json!({"name": "Carl", "email": "Carl@Fabrikam.com", "account_id": account["id"]}),
        )
        .await
        .expect(201);
    assert_eq!(contact["active"], true);
    // A contact's account must be an account: a lead is not.
    let lead = app
        .post(
            &format!("{base}/leads"),
            &app.admin,
            json!({"name": "Lena"}),
        )
        .await
        .expect(201);
    let e = app
        .post(
            &format!("{base}/contacts"),
            &app.admin,
            json!({"name": "X", "account_id": lead["id"]}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "account_id");
    // A contact is not found under /accounts.
    app.get(
        &format!("{base}/accounts/{}", contact["id"].as_str().unwrap()),
        &app.admin,
    )
    .await
    .error(404, "not_found");
    // Filters: exact address ignoring case, search.
    let found = app
        .get(
            &format!("{base}/contacts?email=carl@fabrikam.com"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let found = app
        .get(&format!("{base}/accounts?search=fabri"), &app.admin)
        .await
        .expect(200);
    assert_eq!(found["items"][0]["id"], account["id"]);
    // An account still referenced by a contact cannot be deleted.
    let acc_path = format!("{base}/accounts/{}", account["id"].as_str().unwrap());
    app.delete(&acc_path, &app.admin)
        .await
        .error(409, "conflict");
    let c_path = format!("{base}/contacts/{}", contact["id"].as_str().unwrap());
    let updated = app
        .patch(
            &c_path,
            &app.admin,
            json!({"account_id": null, "active": false}),
        )
        .await
        .expect(200);
    assert_eq!(updated["account_id"], serde_json::Value::Null);
    assert_eq!(updated["active"], false);
    app.delete(&acc_path, &app.admin).await.expect(204);
    app.get(&acc_path, &app.admin).await.error(404, "not_found");
}

async fn emails_one_message_id_one_email(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = format!("/api/v1/orgs/{org}");
    let (alice, _) = app.member(&org, "Alice", "user").await;
    let contact = app
        .post(
            &format!("{base}/contacts"),
            &app.admin,
            json!({"name": "Carl", "email": "carl@fabrikam.com"}),
        )
        .await
        .expect(201);
    let email = app
        .post(
            &format!("{base}/emails"),
            &app.admin,
            json!({
                "subject": "Quote", "direction": "incoming", "message_id": "<quote-1@fabrikam.com>",
                "mailbox_id": alice["mailbox_id"], "correlation_method": "none",
                "regarding_type": "contact", "regarding_id": contact["id"],
                "parties": [
                    {"role": "from", "address": "carl@fabrikam.com", "party_type": "contact", "party_id": contact["id"]},
                    {"role": "to", "address": "alice@example.org", "party_type": "user", "party_id": alice["id"]},
                    {"role": "cc", "address": "someone@elsewhere.org"}
                ]
            }),
        )
        .await
        .expect(201);
    assert_eq!(email["status"], "received");
    assert_eq!(
        email["message_id"], "quote-1@fabrikam.com",
        "stored without angle brackets"
    );
    assert_eq!(email["parties"].as_array().unwrap().len(), 3);
    assert_eq!(email["parties"][0]["role"], "from");
    assert_eq!(email["parties"][2]["party_type"], serde_json::Value::Null);
    // The same Message-ID again is refused, with or without brackets.
    let e = app
        .post(&format!("{base}/emails"), &app.admin, json!({"subject": "Quote", "direction": "incoming", "message_id": "quote-1@fabrikam.com"}))
        .await
        .error(409, "conflict");
    assert_eq!(e["field"], "message_id");
    // Other organizations may hold the same Message-ID (it is their copy).
    let other = app.org("Other").await;
    app.post(
        &format!("/api/v1/orgs/{other}/emails"),
        &app.admin,
        json!({"subject": "Quote", "message_id": "<quote-1@fabrikam.com>"}),
    )
    .await
    .expect(201);
    // Lookup by Message-ID, and parties in lists.
    let found = app
        .get(
            &format!("{base}/emails?message_id=%3Cquote-1@fabrikam.com%3E"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["parties"].as_array().unwrap().len(), 3);
    // Replacing the parties.
    let path = format!("{base}/emails/{}", email["id"].as_str().unwrap());
    let updated = app
        .patch(
            &path,
            &app.admin,
            json!({"parties": [{"role": "from", "address": "carl@fabrikam.com"}]}),
        )
        .await
        .expect(200);
    assert_eq!(updated["parties"].as_array().unwrap().len(), 1);
    let e = app
        .patch(&path, &app.admin, json!({"parties": [{"role": "from", "address": "a@x.org"}, {"role": "from", "address": "b@x.org"}]}))
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "parties");
    let e = app
        .patch(
            &path,
            &app.admin,
            json!({"parties": [{"role": "to", "address": "not an address"}]}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "parties[0].address");
    let e = app
        .patch(
            &path,
            &app.admin,
            json!({"regarding_type": "account", "regarding_id": contact["id"]}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "regarding_id", "a contact is not an account");
    app.delete(&path, &app.admin).await.expect(204);
    app.get(&path, &app.admin).await.error(404, "not_found");
}

async fn appointments_and_tasks(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = format!("/api/v1/orgs/{org}");
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let appt = app
        .post(&format!("{base}/appointments"), &alice_token, json!({"subject": "Demo", "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z", "location": "Teams"}))
        .await
        .expect(201);
    assert_eq!(
        appt["owner_id"], alice["id"],
        "the creator owns it by default"
    );
    assert_eq!(appt["status"], "scheduled");
    app.post(
        &format!("{base}/appointments"),
        &app.admin,
        json!({"subject": "No times"}),
    )
    .await
    .error(422, "missing_field");
    let path = format!("{base}/appointments/{}", appt["id"].as_str().unwrap());
    let done = app
        .patch(&path, &alice_token, json!({"status": "completed"}))
        .await
        .expect(200);
    assert_eq!(done["status"], "completed");
    let task = app
        .post(
            &format!("{base}/tasks"),
            &alice_token,
            json!({"subject": "Call back", "due": "2026-12-02T17:00:00Z", "priority": "high"}),
        )
        .await
        .expect(201);
    assert_eq!(task["status"], "not_started");
    let tpath = format!("{base}/tasks/{}", task["id"].as_str().unwrap());
    let e = app
        .patch(
            &tpath,
            &alice_token,
            json!({"start": "2026-12-03T00:00:00Z"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "due");
    let t = app
        .patch(
            &tpath,
            &alice_token,
            json!({"status": "completed", "completed_at": "2026-12-02T12:00:00Z"}),
        )
        .await
        .expect(200);
    assert_eq!(t["completed_at"], "2026-12-02T12:00:00Z");
    let mine = app
        .get(
            &format!(
                "{base}/tasks?owner_id={}&status=completed",
                alice["id"].as_str().unwrap()
            ),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    app.delete(&tpath, &app.admin).await.expect(204);
    app.delete(&path, &app.admin).await.expect(204);
}

async fn jobs_are_queued(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = format!("/api/v1/orgs/{org}");
    let profile = app.imap_profile(&org, "P").await;
    let (a, _) = app.member(&org, "A", "user").await;
    let (b, _) = app.member(&org, "B", "user").await;
    app.patch(
        &format!("{base}/mailboxes"),
        &app.admin,
        json!({"ids": [a["mailbox_id"], b["mailbox_id"]], "profile_id": profile["id"]}),
    )
    .await
    .expect(200);
    let job = app
        .post(
            &format!("{base}/jobs"),
            &app.admin,
            json!({"kind": "test_and_enable", "profile_id": profile["id"]}),
        )
        .await
        .expect(201);
    assert_eq!(job["status"], "queued");
    assert_eq!(job["progress_total"], 2);
    let items: Vec<_> = job["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["mailbox_id"].clone())
        .collect();
    assert!(items.contains(&a["mailbox_id"]) && items.contains(&b["mailbox_id"]));
    let e = app
        .post(
            &format!("{base}/jobs"),
            &app.admin,
            json!({"kind": "test_and_enable"}),
        )
        .await
        .error(422, "missing_field");
    assert_eq!(e["field"], "mailbox_ids");
    let e = app
        .post(&format!("{base}/jobs"), &app.admin, json!({"kind": "test_and_enable", "mailbox_ids": ["01a216bf-06cf-7442-976f-5f1410e77f48"]}))
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "mailbox_ids[0]");
    let listed = app
        .get(&format!("{base}/jobs?status=queued"), &app.admin)
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let got = app
        .get(
            &format!("{base}/jobs/{}", job["id"].as_str().unwrap()),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(got["items"].as_array().unwrap().len(), 2);
}

async fn paging_walks_every_record(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = format!("/api/v1/orgs/{org}");
    let mut created = Vec::new();
    for i in 0..7 {
        let c = app
            .post(
                &format!("{base}/leads"),
                &app.admin,
                json!({"name": format!("Lead {i}")}),
            )
            .await
            .expect(201);
        created.push(c["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("{base}/leads?limit=3&cursor={c}"),
            None => format!("{base}/leads?limit=3"),
        };
        let page = app.get(&path, &app.admin).await.expect(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created, "every record once, in creation order");
    app.get(&format!("{base}/leads?cursor=garbage"), &app.admin)
        .await
        .error(422, "invalid_value");
}
