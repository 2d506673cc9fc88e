//! Appointments, contacts and tasks sync (ACT) through the API: the records' sync
//! fields with their validation, deletes that leave tombstones, users' sync
//! filters, the organization's ACT settings, a profile's DAV location, and a
//! mailbox's ACT decision trail and links.

use mailbridge_domain::act::ActKind;
use mailbridge_domain::act::fingerprint::Fingerprint;
use mailbridge_store::{ActLinkWrite, NewActDecision};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

on_both_backends!(
    appointments_carry_series_attendees_and_zones,
    tasks_and_contacts_carry_their_sync_fields,
    sync_filters_are_the_users_own,
    act_settings_and_dav_location,
    a_mailbox_shows_its_act_trail_and_links,
);

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

async fn appointments_carry_series_attendees_and_zones(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = format!("/api/v1/orgs/{org}/appointments");
    let body = json!({
        "subject": "Quarterly review",
        "start": "2026-03-02T09:00:00Z",
        "end": "2026-03-02T10:00:00Z",
        "time_zone": "Europe/Paris",
        "organizer": "ana@contoso.com",
        "organizer_name": "Ana Silva",
        "attendees": [{"person": {"email": "bo@fabrikam.com", "name": null},
                       "role": "required", "status": "accepted"}],
        "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=10",
                       "exdates": [{"zoned": {"local": "2026-03-16T10:00:00", "tz": "Europe/Paris"}}],
                       "rdates": []},
        "exceptions": [{"recurrence_id": {"zoned": {"local": "2026-03-09T10:00:00", "tz": "Europe/Paris"}},
                        "start": {"zoned": {"local": "2026-03-09T14:00:00", "tz": "Europe/Paris"}},
                        "end": {"zoned": {"local": "2026-03-09T15:00:00", "tz": "Europe/Paris"}},
                        "summary": "Quarterly review (moved)", "location": null, "description": null,
                        "status": "confirmed", "attendees": []}],
        "categories": ["Customer"],
        "ical_uid": "3f1c@crm.example.org",
    });
    let a = app.post(&base, &app.admin, body).await.expect(201);
    assert_eq!(a["version"], 1);
    assert_eq!(a["time_zone"], "Europe/Paris");
    assert_eq!(a["attendees"][0]["status"], "accepted");
    assert_eq!(a["recurrence"]["rrule"], "FREQ=WEEKLY;BYDAY=MO;COUNT=10");
    assert_eq!(a["exceptions"][0]["summary"], "Quarterly review (moved)");
    assert_eq!(a["categories"], json!(["Customer"]));
    assert!(a.get("deleted_at").is_none());
    let path = format!("{base}/{}", id(&a));
    let read = app.get(&path, &app.admin).await.expect(200);
    assert_eq!(read, a);

    // Every write moves the version on.
    let a = app
        .patch(&path, &app.admin, json!({"categories": ["Customer", "Q1"]}))
        .await
        .expect(200);
    assert_eq!(a["version"], 2);

    // One UID, one live appointment.
    let dup = json!({"subject": "Copy", "start": "2026-03-02T09:00:00Z",
                     "end": "2026-03-02T10:00:00Z", "ical_uid": "3f1c@crm.example.org"});
    let e = app
        .post(&base, &app.admin, dup)
        .await
        .error(409, "conflict");
    assert_eq!(e["field"], "ical_uid");

    // Each rule names its field.
    let cases = [
        (json!({"time_zone": "Romance Standard Time"}), "time_zone"),
        (json!({"all_day": true}), "time_zone"),
        (
            json!({"recurrence": {"rrule": "WEEKLY", "exdates": [], "rdates": []}}),
            "recurrence.rrule",
        ),
        (json!({"recurrence": null}), "exceptions"),
        (json!({"organizer": "not an address"}), "organizer"),
        (
            json!({"attendees": [{"person": {"email": "x", "name": null}, "role": "chair",
                               "status": "accepted"}]}),
            "attendees[0].person.email",
        ),
        (json!({"categories": [""]}), "categories[0]"),
    ];
    for (patch, field) in cases {
        let e = app
            .patch(&path, &app.admin, patch.clone())
            .await
            .error(422, "validation_failed");
        assert_eq!(e["field"], field, "{patch}");
    }

    // A delete leaves a tombstone: gone from the API, seen by the sync.
    app.delete(&path, &app.admin).await.expect(204);
    app.get(&path, &app.admin).await.error(404, "not_found");
    app.delete(&path, &app.admin).await.error(404, "not_found");
    app.patch(&path, &app.admin, json!({"subject": "x"}))
        .await
        .error(404, "not_found");
    let list = app.get(&base, &app.admin).await.expect(200);
    assert_eq!(list["items"], json!([]));
    let tomb = app
        .store
        .act_record(&org, ActKind::Appointment, id(&a))
        .await
        .expect("read")
        .expect("a tombstone");
    assert!(tomb.is_deleted());
    assert_eq!(tomb.version(), 3);
    // Its UID is free again.
    app.post(&base, &app.admin, dup_body()).await.expect(201);
}

fn dup_body() -> Value {
    json!({"subject": "Again", "start": "2026-03-02T09:00:00Z",
           "end": "2026-03-02T10:00:00Z", "ical_uid": "3f1c@crm.example.org"})
}

async fn tasks_and_contacts_carry_their_sync_fields(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, _) = app.member(&org, "Alice", "user").await;
    let tasks = format!("/api/v1/orgs/{org}/tasks");
    let t = app
        .post(
            &tasks,
            &app.admin,
            json!({"subject": "Send the quote", "percent_complete": 20, "categories": ["Quotes"]}),
        )
        .await
        .expect(201);
    assert_eq!(
        (&t["percent_complete"], &t["version"]),
        (&json!(20), &json!(1))
    );
    let path = format!("{tasks}/{}", id(&t));
    let e = app
        .patch(&path, &app.admin, json!({"percent_complete": 150}))
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "percent_complete");
    app.delete(&path, &app.admin).await.expect(204);
    app.get(&path, &app.admin).await.error(404, "not_found");

    let contacts = format!("/api/v1/orgs/{org}/contacts");
    let body = json!({
        "name": "Bo Lindqvist", "given_name": "Bo", "family_name": "Lindqvist",
        "job_title": "Buyer", "email": "bo@fabrikam.com", "owner_id": alice["id"],
        "details": {
            "emails": [{"address": "bo@home.example", "kind": "home", "preferred": false}],
            "phones": [{"number": "+46 70 111 22 33", "kind": "mobile"}],
            "addresses": [{"kind": "work", "street": "Drottninggatan 1", "locality": "Stockholm",
                           "region": null, "postal_code": "111 51", "country": "Sweden"}],
            "note": "Met at the fair",
        },
    });
    let c = app.post(&contacts, &app.admin, body).await.expect(201);
    assert_eq!(c["owner_id"], alice["id"]);
    assert_eq!(c["details"]["phones"][0]["kind"], "mobile");
    assert_eq!(c["details"]["addresses"][0]["locality"], "Stockholm");
    assert_eq!(c["details"]["categories"], json!([]));
    assert_eq!(c["version"], 1);
    let path = format!("{contacts}/{}", id(&c));
    let cases = [
        (
            json!({"owner_id": "0190a1b2-0000-7000-8000-000000000000"}),
            "owner_id",
        ),
        (
            json!({"details": {"emails": [{"address": "bo", "kind": "work", "preferred": false}]}}),
            "details.emails[0].address",
        ),
        (
            json!({"details": {"phones": [{"number": "call me", "kind": "work"}]}}),
            "details.phones[0].number",
        ),
        (
            json!({"details": {"addresses": [{"kind": "home", "street": null, "locality": null,
            "region": null, "postal_code": null, "country": null}]}}),
            "details.addresses[0]",
        ),
    ];
    for (patch, field) in cases {
        let e = app
            .patch(&path, &app.admin, patch.clone())
            .await
            .error(422, "validation_failed");
        assert_eq!(e["field"], field, "{patch}");
    }
    let c = app
        .patch(&path, &app.admin, json!({"job_title": "Head of buying"}))
        .await
        .expect(200);
    assert_eq!(c["version"], 2);
    app.delete(&path, &app.admin).await.expect(204);
    app.get(&path, &app.admin).await.error(404, "not_found");
    // A deleted contact no longer resolves an address.
    let found = app
        .get(&format!("{contacts}?email=bo@fabrikam.com"), &app.admin)
        .await
        .expect(200);
    assert_eq!(found["items"], json!([]));
}

async fn sync_filters_are_the_users_own(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let (_, bob_token) = app.member(&org, "Bob", "user").await;
    let (_, admin_token) = app.member(&org, "Ada", "org_admin").await;
    let path = format!("/api/v1/orgs/{org}/users/{}/sync-filters", id(&alice));
    let defaults = app.get(&path, &alice_token).await.expect(200);
    assert_eq!(defaults["tasks"]["include_closed"], false);
    assert_eq!(defaults["appointments"]["window"], Value::Null);

    let put = |token: &str, body: Value| {
        let (path, token) = (path.clone(), token.to_owned());
        let app = &app;
        async move { app.call(Method::PUT, &path, &token, Some(body)).await }
    };
    let mine = json!({"appointments": {"window": {"days_back": 30, "days_ahead": 90}},
                      "tasks": {"include_closed": true}});
    let set = put(&alice_token, mine).await.expect(200);
    assert_eq!(set["appointments"]["window"]["days_ahead"], 90);
    assert_eq!(set["contacts"]["include_regarding_owned"], false);
    // Someone else's filters: only administrators.
    put(&bob_token, json!({})).await.error(403, "forbidden");
    let reset = put(&admin_token, json!({})).await.expect(200);
    assert_eq!(reset["tasks"]["include_closed"], false);
    // Checked by the domain's rules, naming the field.
    let e = put(
        &alice_token,
        json!({"tasks": {"window": {"days_back": 1, "days_ahead": 1}}}),
    )
    .await
    .error(422, "validation_failed");
    assert_eq!(e["field"], "tasks.window");
    let unknown = put(&alice_token, json!({"task": {}})).await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    app.get(
        &format!("/api/v1/orgs/{org}/users/0190a1b2-0000-7000-8000-000000000000/sync-filters"),
        &admin_token,
    )
    .await
    .error(404, "not_found");
}

async fn act_settings_and_dav_location(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let settings = format!("/api/v1/orgs/{org}/email-settings");
    let s = app.get(&settings, &app.admin).await.expect(200);
    assert_eq!(s["act_leaving_filters"], "delete_on_server");
    assert_eq!(s["act_task_deleted_on_server"], "delete_record");
    let s = app
        .patch(
            &settings,
            &app.admin,
            json!({"act_leaving_filters": "unlink", "act_task_deleted_on_server": "unlink"}),
        )
        .await
        .expect(200);
    assert_eq!(
        (&s["act_leaving_filters"], &s["act_task_deleted_on_server"]),
        (&json!("unlink"), &json!("unlink"))
    );
    let e = app
        .patch(
            &settings,
            &app.admin,
            json!({"act_leaving_filters": "delete"}),
        )
        .await
        .error(422, "invalid_value");
    assert_eq!(e["field"], "act_leaving_filters");

    let profile = app.imap_profile(&org, "Dovecot").await;
    assert_eq!(profile["dav_location"], Value::Null);
    let path = format!("/api/v1/orgs/{org}/email-server-profiles/{}", id(&profile));
    let p = app
        .patch(
            &path,
            &app.admin,
            json!({"dav_location": "https://dav.example.org/"}),
        )
        .await
        .expect(200);
    assert_eq!(p["dav_location"], "https://dav.example.org/");
    let e = app
        .patch(
            &path,
            &app.admin,
            json!({"dav_location": "http://dav.example.org/"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "dav_location");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("allow_plaintext"),
        "{e}"
    );
}

async fn a_mailbox_shows_its_act_trail_and_links(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let (bob, _) = app.member(&org, "Bob", "user").await;
    let mailbox = alice["mailbox_id"].as_str().expect("mailbox").to_owned();
    let task = app
        .post(
            &format!("/api/v1/orgs/{org}/tasks"),
            &alice_token,
            json!({"subject": "Send the quote"}),
        )
        .await
        .expect(201);
    let decision = |n: usize, outcome: &str| NewActDecision {
        kind: ActKind::Task,
        record_id: Some(id(&task).to_owned()),
        server_href: Some("/dav/alice/tasks/1.ics".into()),
        action: "update_server".into(),
        reason: format!("the record changed ({n})"),
        outcome: outcome.into(),
        error: (outcome == "failed").then(|| "412 Precondition Failed".into()),
    };
    app.store
        .append_act_decisions(
            &org,
            &mailbox,
            &[decision(1, "done"), decision(2, "failed")],
        )
        .await
        .expect("trail");
    let link = ActLinkWrite {
        kind: ActKind::Task,
        record_id: id(&task).to_owned(),
        collection_href: "/dav/alice/tasks/".into(),
        server_href: "/dav/alice/tasks/1.ics".into(),
        server_uid: None,
        record_version: 1,
        record_fingerprint: Fingerprint("1:aa".into()),
        server_etag: Some("\"e1\"".into()),
        server_fingerprint: Fingerprint("1:bb".into()),
        snapshot: None,
    };
    app.store
        .upsert_act_link(&org, &mailbox, &link)
        .await
        .expect("link");
    app.store
        .record_act_link_error(
            &org,
            &mailbox,
            ActKind::Task,
            id(&task),
            "412 Precondition Failed",
        )
        .await
        .expect("error");

    let base = format!("/api/v1/orgs/{org}/mailboxes/{mailbox}");
    let trail = app
        .get(&format!("{base}/act-decisions"), &alice_token)
        .await
        .expect(200);
    let reasons: Vec<&str> = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        ["the record changed (2)", "the record changed (1)"]
    );
    let failed = app
        .get(
            &format!("{base}/act-decisions?outcome=failed&kind=task"),
            &alice_token,
        )
        .await
        .expect(200);
    assert_eq!(failed["items"][0]["error"], "412 Precondition Failed");
    let none = app
        .get(&format!("{base}/act-decisions?kind=contact"), &alice_token)
        .await
        .expect(200);
    assert_eq!(none["items"], json!([]));

    let links = app
        .get(&format!("{base}/act-links?failing=true"), &alice_token)
        .await
        .expect(200);
    assert_eq!(links["items"][0]["last_error"], "412 Precondition Failed");
    assert_eq!(links["items"][0]["record_version"], 1);
    assert!(links["items"][0].get("snapshot_json").is_none());

    // Another user's mailbox is not found; an administrator sees it.
    let bobs = format!(
        "/api/v1/orgs/{org}/mailboxes/{}/act-links",
        bob["mailbox_id"].as_str().expect("mailbox")
    );
    app.get(&bobs, &alice_token).await.error(404, "not_found");
    app.get(&bobs, &app.admin).await.expect(200);
}
