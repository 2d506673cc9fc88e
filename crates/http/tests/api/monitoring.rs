//! The views of the Mailboxes grid, monitoring (summary, profiles, mailboxes worst
//! first, throughput), lists read newest first, an email's decision trail, and a
//! job's items page by page.

use chrono::{DateTime, Duration, Utc};
use mailbridge_store::with_db;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

on_both_backends!(
    mailbox_views_count_and_filter,
    monitoring_reports_health_worst_first_and_throughput,
    trails_and_emails_read_newest_first,
    job_items_come_page_by_page_with_counts,
);

/// Sets columns of a mailbox behind the API (what the engine writes).
async fn set_mailbox(app: &TestApp, id: &str, sql: &'static str) {
    with_db!(app.store.db(), p => {
        sqlx::query(sql).bind(id).execute(p).await.expect("update mailbox");
    });
}

/// A decision row, as the engine records it.
async fn decision(
    app: &TestApp,
    org: &str,
    mailbox: &str,
    uid: i64,
    outcome: &str,
    email_id: Option<&str>,
    at: DateTime<Utc>,
) -> String {
    let id = uuid::Uuid::now_v7().hyphenated().to_string();
    with_db!(app.store.db(), p => {
        sqlx::query(
            "INSERT INTO message_decisions (id, org_id, mailbox_id, folder, uidvalidity, uid, message_id,
                subject, from_address, outcome, rule, reason, email_id, attempts, created_at, updated_at)
             VALUES ($1, $2, $3, 'INBOX', 1, $4, $5, $6, 'carl@fabrikam.com', $7, 'filter_all',
                'the owner tracks all email', $8, 1, $9, $9)",
        )
        .bind(&id).bind(org).bind(mailbox).bind(uid).bind(format!("m{uid}@test"))
        .bind(format!("Message {uid}")).bind(outcome).bind(email_id).bind(at)
        .execute(p).await.expect("insert decision");
    });
    id
}

/// Three users with mailboxes (pending approval); returns the org and mailbox ids.
async fn three_mailboxes(app: &TestApp) -> (String, Vec<String>) {
    let org = app.org("Contoso").await;
    let mut ids = Vec::new();
    for name in ["Ann Archer", "Bob Baker", "Cy Carter"] {
        let (u, _) = app.member(&org, name, "user").await;
        ids.push(u["mailbox_id"].as_str().unwrap().to_owned());
    }
    (org, ids)
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn mailbox_views_count_and_filter(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (org, ids) = three_mailboxes(&app).await;
    let base = format!("/api/v1/orgs/{org}/mailboxes");
    // Ann works, Bob failed, Cy waits for approval.
    set_mailbox(&app, &ids[0], "UPDATE mailboxes SET approval_status = 'approved', incoming_enabled = TRUE, incoming_status = 'success' WHERE id = $1").await;
    set_mailbox(&app, &ids[1], "UPDATE mailboxes SET approval_status = 'approved', incoming_enabled = TRUE, outgoing_status = 'failure' WHERE id = $1").await;
    let counts = app
        .get(&format!("{base}/counts"), &app.admin)
        .await
        .expect(200);
    assert_eq!(
        counts,
        json!({"all": 3, "active": 1, "failed": 1, "pending_approval": 1})
    );
    let view = |v: &'static str| format!("{base}?view={v}");
    assert_eq!(
        names(&app.get(&view("active"), &app.admin).await.expect(200)),
        ["Ann Archer"]
    );
    assert_eq!(
        names(&app.get(&view("failed"), &app.admin).await.expect(200)),
        ["Bob Baker"]
    );
    assert_eq!(
        names(
            &app.get(&view("pending_approval"), &app.admin)
                .await
                .expect(200)
        ),
        ["Cy Carter"]
    );
    assert_eq!(
        names(&app.get(&view("all"), &app.admin).await.expect(200)).len(),
        3
    );
    // Search and view together; counts follow the search.
    let found = app
        .get(&format!("{base}?view=failed&search=BAK"), &app.admin)
        .await
        .expect(200);
    assert_eq!(names(&found), ["Bob Baker"]);
    let counts = app
        .get(&format!("{base}/counts?search=carter"), &app.admin)
        .await
        .expect(200);
    assert_eq!(counts["all"], 1);
    assert_eq!(counts["pending_approval"], 1);
    // An unknown view is named.
    let e = app
        .get(&view("sleeping"), &app.admin)
        .await
        .error(422, "invalid_value");
    assert_eq!(e["field"], "view", "{e}");
    // A user counts only their own mailbox.
    let (_, token) = app.member(&org, "Dee Doe", "user").await;
    let own = app.get(&format!("{base}/counts"), &token).await.expect(200);
    assert_eq!(own["all"], 1);
}

async fn monitoring_reports_health_worst_first_and_throughput(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (org, ids) = three_mailboxes(&app).await;
    let profile = app.imap_profile(&org, "Fabrikam IMAP").await;
    let pid = profile["id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/orgs/{org}/mailboxes"),
        &app.admin,
        json!({"ids": ids, "profile_id": pid}),
    )
    .await
    .expect(200);
    let now = Utc::now();
    // Ann: enabled, ran 10 minutes ago; Bob: incoming failed.
    with_db!(app.store.db(), p => {
        sqlx::query("UPDATE mailboxes SET incoming_enabled = TRUE, incoming_status = 'success', last_incoming_success_at = $2, tested_at = $2 WHERE id = $1")
            .bind(&ids[0]).bind(now - Duration::minutes(10)).execute(p).await.unwrap();
        sqlx::query("UPDATE mailboxes SET incoming_status = 'failure', incoming_error = 'the IMAP server rejected the password' WHERE id = $1")
            .bind(&ids[1]).execute(p).await.unwrap();
    });
    for uid in 1..=3 {
        decision(
            &app,
            &org,
            &ids[0],
            uid,
            "tracked",
            None,
            now - Duration::minutes(5),
        )
        .await;
    }
    decision(&app, &org, &ids[0], 4, "skipped", None, now).await;
    decision(&app, &org, &ids[1], 1, "failed", None, now).await;
    // Outside the last hour, inside the day.
    decision(
        &app,
        &org,
        &ids[0],
        5,
        "linked",
        None,
        now - Duration::hours(3),
    )
    .await;
    // A sent email from Ann's mailbox.
    app.post(
        &format!("/api/v1/orgs/{org}/emails"),
        &app.admin,
        json!({"subject": "Quote", "status": "sent", "from_mailbox_id": ids[0], "to": ["carl@fabrikam.com"],
               "sent_at": now.to_rfc3339()}),
    )
    .await
    .expect(201);

    let m = format!("/api/v1/orgs/{org}/monitoring");
    let summary = app
        .get(&format!("{m}/summary"), &app.admin)
        .await
        .expect(200);
    assert_eq!(summary["mailboxes"]["all"], 3, "{summary}");
    assert_eq!(summary["mailboxes"]["failed"], 1);
    assert_eq!(summary["tracked"], 4, "tracked and linked: {summary}");
    assert_eq!(summary["sent"], 1);
    assert_eq!(summary["failures"], 1);
    let lag = summary["oldest_lag_seconds"].as_i64().unwrap();
    assert!((590..700).contains(&lag), "{summary}");
    let hour = app
        .get(&format!("{m}/summary?window=1h"), &app.admin)
        .await
        .expect(200);
    assert_eq!(hour["tracked"], 3, "{hour}");

    let profiles = app
        .get(&format!("{m}/profiles"), &app.admin)
        .await
        .expect(200);
    let p0 = &profiles["items"][0];
    assert_eq!(p0["name"], "Fabrikam IMAP");
    assert_eq!(p0["mailboxes"], 3);
    assert_eq!(p0["failed_mailboxes"], 1);
    assert_eq!(p0["processed"], 5, "{p0}");
    assert_eq!(p0["failed"], 1);
    assert_eq!(p0["sent"], 1);
    assert_eq!(p0["last_error"], "the IMAP server rejected the password");

    // Worst first: Bob (failed) leads; paged by two.
    let page = app
        .get(&format!("{m}/mailboxes?limit=2"), &app.admin)
        .await
        .expect(200);
    assert_eq!(page["items"][0]["name"], "Bob Baker", "{page}");
    assert_eq!(page["items"][0]["failed"], 1);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let rest = app
        .get(
            &format!("{m}/mailboxes?limit=2&cursor={cursor}"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let by_name = app
        .get(&format!("{m}/mailboxes?sort=name"), &app.admin)
        .await
        .expect(200);
    assert_eq!(names(&by_name), ["Ann Archer", "Bob Baker", "Cy Carter"]);
    let ann = &by_name["items"][0];
    assert_eq!(ann["processed"], 5);
    assert_eq!(ann["sent"], 1);
    assert_eq!(ann["profile_name"], "Fabrikam IMAP");
    assert!(ann["lag_seconds"].as_i64().unwrap() >= 590, "{ann}");
    assert!(
        by_name["items"][2]["lag_seconds"].is_null(),
        "not enabled: no lag"
    );
    let one = app
        .get(&format!("{m}/mailboxes/{}", ids[0]), &app.admin)
        .await
        .expect(200);
    assert_eq!(one["processed"], 5);
    app.get(&format!("{m}/mailboxes?sort=sideways"), &app.admin)
        .await
        .error(422, "invalid_value");
    app.get(&format!("{m}/mailboxes?cursor=abc"), &app.admin)
        .await
        .error(422, "invalid_value");

    // Throughput: per hour over a day, per minute over an hour.
    let day = app
        .get(&format!("{m}/throughput"), &app.admin)
        .await
        .expect(200);
    assert_eq!(day["bucket_seconds"], 3600);
    let buckets = day["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24);
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        (sum("tracked"), sum("sent"), sum("failed")),
        (4, 1, 1),
        "{day}"
    );
    let minute = app
        .get(
            &format!("{m}/throughput?window=1h&mailbox_id={}", ids[0]),
            &app.admin,
        )
        .await
        .expect(200);
    let buckets = minute["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    let tracked: i64 = buckets.iter().map(|b| b["tracked"].as_i64().unwrap()).sum();
    assert_eq!(tracked, 3, "Ann's last hour: {minute}");
    let for_profile = app
        .get(&format!("{m}/throughput?profile_id={pid}"), &app.admin)
        .await
        .expect(200);
    let failed: i64 = for_profile["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["failed"].as_i64().unwrap())
        .sum();
    assert_eq!(failed, 1);

    // A user sees their own mailbox's health, not the organization's.
    let (_, token) = app.member(&org, "Dee Doe", "user").await;
    app.get(&format!("{m}/summary"), &token)
        .await
        .error(403, "forbidden");
    app.get(&format!("{m}/mailboxes/{}", ids[0]), &token)
        .await
        .error(404, "not_found");
}

async fn trails_and_emails_read_newest_first(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (org, ids) = three_mailboxes(&app).await;
    let base = format!("/api/v1/orgs/{org}");
    let mut emails = Vec::new();
    for (subject, to) in [
        ("Invoice 1", "carl@fabrikam.com"),
        ("Agenda", "dana@elsewhere.org"),
        ("Invoice 2", "carl@fabrikam.com"),
    ] {
        let e = app
            .post(
                &format!("{base}/emails"),
                &app.admin,
                json!({"subject": subject, "direction": "incoming", "to": [to]}),
            )
            .await
            .expect(201);
        emails.push(e["id"].as_str().unwrap().to_owned());
    }
    let now = Utc::now();
    let d1 = decision(&app, &org, &ids[0], 1, "tracked", Some(&emails[0]), now).await;
    let d2 = decision(&app, &org, &ids[1], 1, "linked", Some(&emails[0]), now).await;
    let d3 = decision(&app, &org, &ids[0], 2, "skipped", None, now).await;

    // The mailbox's trail, newest first, paged.
    let trail = |q: &str| format!("{base}/mailboxes/{}/messages?{q}", ids[0]);
    let first = app
        .get(&trail("order=newest_first&limit=1"), &app.admin)
        .await
        .expect(200);
    assert_eq!(first["items"][0]["id"], d3.as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &trail(&format!("order=newest_first&limit=1&cursor={cursor}")),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(second["items"][0]["id"], d1.as_str());
    assert!(second["next_cursor"].is_null());
    let oldest = app.get(&trail(""), &app.admin).await.expect(200);
    assert_eq!(
        oldest["items"][0]["id"],
        d1.as_str(),
        "oldest first by default"
    );

    // An email's decisions: one per mailbox that saw it.
    let ds = app
        .get(
            &format!("{base}/emails/{}/decisions", emails[0]),
            &app.admin,
        )
        .await
        .expect(200);
    let got: Vec<&str> = ds["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [d1.as_str(), d2.as_str()]);
    app.get(
        &format!("{base}/emails/{}/decisions", uuid::Uuid::now_v7()),
        &app.admin,
    )
    .await
    .error(404, "not_found");

    // Emails newest first, searched by subject or address.
    let list = app
        .get(&format!("{base}/emails?order=newest_first"), &app.admin)
        .await
        .expect(200);
    let subjects: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["Invoice 2", "Agenda", "Invoice 1"]);
    let found = app
        .get(
            &format!("{base}/emails?search=invoice&order=newest_first&limit=1"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(found["items"][0]["subject"], "Invoice 2");
    let cursor = found["next_cursor"].as_str().unwrap();
    let more = app
        .get(
            &format!("{base}/emails?search=invoice&order=newest_first&limit=1&cursor={cursor}"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(more["items"][0]["subject"], "Invoice 1");
    let by_address = app
        .get(&format!("{base}/emails?search=ELSEWHERE"), &app.admin)
        .await
        .expect(200);
    assert_eq!(by_address["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_address["items"][0]["subject"], "Agenda");
}

async fn job_items_come_page_by_page_with_counts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (org, ids) = three_mailboxes(&app).await;
    let base = format!("/api/v1/orgs/{org}");
    let job = app
        .post(
            &format!("{base}/mailboxes/test-and-enable"),
            &app.admin,
            json!({"ids": ids}),
        )
        .await
        .expect(202);
    let id = job["id"].as_str().unwrap();
    let bare = app
        .get(&format!("{base}/jobs/{id}?items=false"), &app.admin)
        .await
        .expect(200);
    assert_eq!(bare["items"], json!([]));
    assert_eq!(bare["progress_total"], 3);
    let full = app
        .get(&format!("{base}/jobs/{id}"), &app.admin)
        .await
        .expect(200);
    assert_eq!(full["items"].as_array().unwrap().len(), 3);

    let page = app
        .get(&format!("{base}/jobs/{id}/items?limit=2"), &app.admin)
        .await
        .expect(200);
    assert_eq!(
        page["counts"],
        json!({"queued": 3, "running": 0, "succeeded": 0, "failed": 0})
    );
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["mailbox_id"], ids[0].as_str());
    assert_eq!(items[0]["mailbox_name"], "Ann Archer");
    assert_eq!(items[0]["email_address"], "ann.archer@example.org");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("{base}/jobs/{id}/items?limit=2&cursor={cursor}"),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(rest["items"][0]["mailbox_name"], "Cy Carter");
    assert!(rest["next_cursor"].is_null());
    let none = app
        .get(&format!("{base}/jobs/{id}/items?status=failed"), &app.admin)
        .await
        .expect(200);
    assert_eq!(none["items"], json!([]));
    app.get(&format!("{base}/jobs/{id}/items?cursor=x"), &app.admin)
        .await
        .error(422, "invalid_value");
    app.get(
        &format!("{base}/jobs/{}/items", uuid::Uuid::now_v7()),
        &app.admin,
    )
    .await
    .error(404, "not_found");
}
