//! Test & Enable and Test Connection: statuses, enabling, alerts.

use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, World, fast_engine};

#[tokio::test]
async fn a_wrong_password_fails_alerts_and_a_fixed_one_enables() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let owner = w
        .post(
            "/users",
            json!({"full_name": "Pat Profile Owner", "role": "org_admin"}),
        )
        .await;
    w.patch(
        &format!("/email-server-profiles/{}", w.profile),
        json!({"owner_id": owner["id"]}),
    )
    .await;
    let (user, mailbox, login) = w.member("all").await;
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"password": "not-the-password"}),
    )
    .await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["progress_done"], 1);
    assert_eq!(job["items"][0]["status"], "failed");
    let message = job["items"][0]["message"].as_str().unwrap();
    assert!(message.contains("incoming"), "{message}");
    assert!(
        !message.contains("not-the-password"),
        "no secret in results"
    );
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_status"], "failure");
    assert_eq!(m["incoming_enabled"], false);
    assert_eq!(
        m["outgoing_status"], "failure",
        "SMTP refuses the password too"
    );
    assert!(m["tested_at"].is_string());
    let alerts = w
        .get(&format!("/alerts?mailbox_id={mailbox}&severity=error"))
        .await;
    let alert = &alerts["items"][0];
    let recipients = alert["recipient_ids"].as_array().unwrap();
    assert!(
        recipients.contains(&user["id"]),
        "the mailbox owner is alerted: {alert}"
    );
    assert!(
        recipients.contains(&owner["id"]),
        "the profile owner is alerted: {alert}"
    );
    // Fixed: enabled, success alert to the owner.
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"password": login.password}),
    )
    .await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(
        (
            m["incoming_status"].as_str(),
            m["incoming_enabled"].as_bool()
        ),
        (Some("success"), Some(true))
    );
    assert_eq!(
        (
            m["outgoing_status"].as_str(),
            m["outgoing_enabled"].as_bool()
        ),
        (Some("success"), Some(true))
    );
    assert_eq!(m["act_status"], "not_run");
    let info = w
        .get(&format!(
            "/alerts?mailbox_id={mailbox}&severity=information"
        ))
        .await;
    assert_eq!(info["items"].as_array().unwrap().len(), 1);
    // The test message really went out.
    w.servers
        .wait_smtp_message(Duration::from_secs(10), |m| {
            m.rcpt_tos.contains(&login.address)
                && m.text()
                    .contains(mailbridge_engine::test_enable::TEST_SUBJECT)
        })
        .await;
}

#[tokio::test]
async fn unapproved_mailboxes_are_not_enabled() {
    let w = World::start(Backend::Postgres, fast_engine()).await;
    let (_, mailbox, _) = w.member("all").await;
    let (status, _) = w
        .try_call(
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/reject", w.org),
            json!({"ids": [mailbox]}),
            &w.approver,
        )
        .await;
    assert_eq!(status, 200);
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["items"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not approved"),
        "{job}"
    );
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_enabled"], false);
}

#[tokio::test]
async fn test_connection_shows_each_step() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, _) = w.member("all").await;
    let r = w
        .post(
            &format!("/email-server-profiles/{}/test-connection", w.profile),
            json!({"mailbox_id": mailbox}),
        )
        .await;
    assert_eq!(r["incoming"]["passed"], true, "{r}");
    assert_eq!(r["outgoing"]["passed"], true, "{r}");
    let names: Vec<&str> = r["incoming"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for step in ["connect", "authenticate", "open_mailbox"] {
        assert!(names.contains(&step), "{step} in {names:?}");
    }
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"password": "wrong"}),
    )
    .await;
    let r = w
        .post(
            &format!("/email-server-profiles/{}/test-connection", w.profile),
            json!({"mailbox_id": mailbox}),
        )
        .await;
    assert_eq!(r["incoming"]["passed"], false);
    let failed: Vec<&str> = r["incoming"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["passed"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["authenticate"], "{r}");
    assert!(
        r["incoming"]["error"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{r}"
    );
}

#[tokio::test]
async fn a_rejected_mailbox_processes_nothing_while_approval_is_required() {
    let w = World::start(Backend::Sqlite, crate::common::fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    w.test_and_enable(&[&mailbox]).await;
    let (status, _) = w
        .try_call(
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/reject", w.org),
            json!({"ids": [mailbox]}),
            &w.approver,
        )
        .await;
    assert_eq!(status, 200);
    // A run that started before the rejection may finish; then none starts.
    crate::common::wait("the last run to end", Duration::from_secs(10), || async {
        w.store
            .lease_holder(&mailbox, chrono::Utc::now())
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let (raw, id) =
        crate::common::message("carl@fabrikam.com", &[&login.address], "While rejected", "");
    w.servers.deliver(&login.address, &raw).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        w.decisions(&mailbox, &format!("&message_id={id}"))
            .await
            .is_empty(),
        "not even looked at"
    );
    // The organization stops requiring approval for users: the mail is processed.
    w.patch(
        "/email-settings",
        json!({"process_email_for_approved_users_only": false}),
    )
    .await;
    crate::common::wait(
        "processing without approval",
        Duration::from_secs(10),
        || async {
            w.emails(&format!("&message_id={id}"))
                .await
                .into_iter()
                .next()
        },
    )
    .await;
}

/// The time span in which a mailbox's decisions were written.
async fn span(w: &World, mailbox: &str) -> (String, String) {
    let d = w.decisions(mailbox, "&outcome=tracked").await;
    let mut times: Vec<String> = d
        .iter()
        .filter(|d| {
            d["subject"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Load ")
        })
        .map(|d| d["created_at"].as_str().unwrap().to_owned())
        .collect();
    times.sort();
    (
        times.first().unwrap().clone(),
        times.last().unwrap().clone(),
    )
}

#[tokio::test]
async fn the_profile_connection_cap_serializes_runs() {
    let w = World::start(Backend::Sqlite, crate::common::fast_engine()).await;
    w.patch(
        &format!("/email-server-profiles/{}", w.profile),
        json!({"max_concurrent_connections": 1}),
    )
    .await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let (_, mailbox, login) = w.member("all").await;
        members.push((mailbox, login));
    }
    let ids: Vec<&str> = members.iter().map(|(m, _)| m.as_str()).collect();
    w.test_and_enable(&ids).await;
    for (mailbox, _) in &members {
        crate::common::wait("push", Duration::from_secs(10), || async {
            w.engine.is_watching(mailbox).then_some(())
        })
        .await;
    }
    // Mail for all three at once: all three are due together.
    let per_mailbox = 150;
    for i in 0..per_mailbox {
        for (_, login) in &members {
            let (raw, _) = crate::common::message(
                "carl@fabrikam.com",
                &[&login.address],
                &format!("Load {i}"),
                "",
            );
            w.servers.write_to_inbox(&login.login, &raw);
        }
    }
    for (mailbox, _) in &members {
        crate::common::wait("every message", Duration::from_secs(60), || async {
            (w.decisions(mailbox, "&outcome=tracked").await.len() > per_mailbox).then_some(())
        })
        .await;
    }
    // With one connection allowed, the runs did not overlap.
    let mut spans = Vec::new();
    for (mailbox, _) in &members {
        spans.push(span(&w, mailbox).await);
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 < pair[1].0,
            "runs overlapped under a cap of 1: {spans:?}"
        );
    }
}
