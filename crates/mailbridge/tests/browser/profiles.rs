//! Email Server Profiles in the browser: the list, the form with its server-type
//! and autodiscover conditions and the API's validation messages, Test Connection,
//! Test & Enable Mailboxes, and delete.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;

use crate::common::{Backend, World, fast_engine};
use crate::driver::{Browser, signed_in};

/// Clicks `css` after scrolling it to the middle of the window, clear of the
/// sticky top bar and command bar.
pub async fn click(b: &Browser, css: &str) {
    let e = b.find(css).await;
    b.client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![serde_json::to_value(&e).unwrap()],
        )
        .await
        .unwrap();
    e.click()
        .await
        .unwrap_or_else(|err| panic!("click {css}: {err}"));
}

/// Sets the value of input `css` as a date picker would (typing into a
/// `datetime-local` box depends on the browser's locale).
pub async fn set_value(b: &Browser, css: &str, value: &str) {
    let e = b.find(css).await;
    b.client
        .execute(
            "arguments[0].value = arguments[1];",
            vec![serde_json::to_value(&e).unwrap(), value.into()],
        )
        .await
        .unwrap();
}

/// Scrolls the window so that `css` starts just below the sticky bars (or to the
/// top for `None`), for a screenshot.
pub async fn scroll_to(b: &Browser, css: Option<&str>) {
    let script = match css {
        Some(css) => format!(
            "const e = document.querySelector({css:?}); \
             window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY - 120);"
        ),
        None => "window.scrollTo(0, 0);".to_owned(),
    };
    b.client.execute(&script, vec![]).await.unwrap();
}

/// Whether an element matching `css` exists and is displayed.
pub async fn displayed(b: &Browser, css: &str) -> bool {
    match b.client.find_all(Locator::Css(css)).await {
        Ok(found) => match found.first() {
            Some(e) => e.is_displayed().await.unwrap_or(false),
            None => false,
        },
        Err(_) => false,
    }
}

/// Waits (up to 10 s) until `css` is displayed (`true`) or not (`false`).
pub async fn wait_displayed(b: &Browser, css: &str, expected: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while displayed(b, css).await != expected {
        assert!(
            Instant::now() < deadline,
            "{css} should {}be displayed on {}",
            if expected { "" } else { "not " },
            b.path().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The current value of input `css`.
pub async fn value(b: &Browser, css: &str) -> String {
    b.find(css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Whether checkbox `css` is ticked.
pub async fn checked(b: &Browser, css: &str) -> bool {
    b.find(css).await.prop("checked").await.unwrap().as_deref() == Some("true")
}

/// Waits until the path starts with `prefix`; returns the path.
pub async fn wait_path(b: &Browser, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let path = b.path().await;
        if path.starts_with(prefix) {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "still at {path}, expected {prefix}…"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_an_imap_profile_through_the_form_with_the_apis_validation() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let b = signed_in(&w).await;

    b.open("/profiles").await;
    b.wait_for_text("Test Dovecot", 10).await;
    click(&b, "#new-profile").await;
    wait_path(&b, "/profiles/new").await;
    b.wait_for_text("New Email Server Profile", 10).await;

    // IMAP/SMTP: locations, no autodiscover, no tenant.
    wait_displayed(&b, "#field-incoming_server_location", true).await;
    assert!(!displayed(&b, "#field-auto_discover").await);
    assert!(!displayed(&b, "#field-tenant_id").await);

    // The server-type switch: Exchange Online autodiscovers and uses the default tenant.
    b.fill("#name", "Lab Dovecot").await;
    b.select("#server_type", "exchange_online").await;
    wait_displayed(&b, "#field-use_default_tenant_id", true).await;
    wait_displayed(&b, "#field-incoming_server_location", false).await;
    assert!(displayed(&b, "#field-auto_discover").await);
    assert!(
        displayed(&b, "#field-application_id").await,
        "server-to-server needs the app id"
    );
    assert!(!displayed(&b, "#field-tenant_id").await);
    assert_eq!(
        value(&b, "#name").await,
        "Lab Dovecot",
        "what was typed stays"
    );
    // Turning off the default tenant shows the tenant; turning off autodiscover the locations.
    click(&b, "label[for=use_default_tenant_id]").await;
    wait_displayed(&b, "#field-tenant_id", true).await;
    click(&b, "label[for=auto_discover]").await;
    wait_displayed(&b, "#field-incoming_server_location", true).await;

    // Back to IMAP/SMTP.
    b.select("#server_type", "imap_smtp").await;
    wait_displayed(&b, "#field-use_default_tenant_id", false).await;
    wait_displayed(&b, "#field-incoming_server_location", true).await;
    assert!(!displayed(&b, "#field-auto_discover").await);
    assert!(!displayed(&b, "#field-application_id").await);
    // Profile credentials show the service account fields.
    assert!(!displayed(&b, "#field-incoming_username").await);
    b.select("#authentication_type", "credentials_specified_in_profile")
        .await;
    wait_displayed(&b, "#field-incoming_username", true).await;
    assert!(!displayed(&b, "#field-outgoing_username").await);
    click(&b, "label[for=use_same_settings_for_outgoing]").await;
    wait_displayed(&b, "#field-outgoing_username", true).await;
    b.select(
        "#authentication_type",
        "credentials_specified_by_user_or_queue",
    )
    .await;
    wait_displayed(&b, "#field-incoming_username", false).await;
    wait_displayed(&b, "#field-outgoing_username", false).await;

    // Wrong values: the API's messages appear next to their fields, values stay.
    let (imap, smtp) = (w.servers.imap_addr(), w.servers.smtp_addr());
    b.fill("#incoming_server_location", "https://mail.example.org")
        .await;
    b.fill("#outgoing_server_location", &format!("smtp://{smtp}"))
        .await;
    click(&b, "label[for=allow_plaintext]").await;
    b.fill("#max_concurrent_connections", "0").await;
    b.fill("#description", "Dovecot in the lab").await;
    click(&b, "#save").await;
    b.wait_for_text("was not created", 10).await;
    let incoming_error = b.text("#field-incoming_server_location .error-text").await;
    assert!(
        incoming_error.contains("`https://` is not an incoming scheme for imap_smtp profiles"),
        "{incoming_error}"
    );
    assert_eq!(
        b.text("#field-max_concurrent_connections .error-text")
            .await,
        "max_concurrent_connections must be between 1 and 300, got 0"
    );
    let summary = b.text(".notice.summary").await;
    assert!(
        summary.contains("Maximum Concurrent Connections"),
        "{summary}"
    );
    assert_eq!(value(&b, "#name").await, "Lab Dovecot");
    assert_eq!(
        value(&b, "#incoming_server_location").await,
        "https://mail.example.org"
    );
    assert_eq!(value(&b, "#max_concurrent_connections").await, "0");
    assert_eq!(value(&b, "#description").await, "Dovecot in the lab");
    assert!(checked(&b, "#allow_plaintext").await);
    scroll_to(&b, None).await;
    b.screenshot("profile-form-errors").await;

    // Corrected, it is created.
    b.fill("#incoming_server_location", &format!("imap://{imap}"))
        .await;
    b.fill("#max_concurrent_connections", "5").await;
    click(&b, "#save").await;
    b.wait_for_text("was created", 10).await;
    scroll_to(&b, None).await;
    b.screenshot("profile-form").await;
    let id = b
        .path()
        .await
        .trim_start_matches("/profiles/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let p = w.get(&format!("/email-server-profiles/{id}")).await;
    assert_eq!(p["name"], "Lab Dovecot");
    assert_eq!(p["server_type"], "imap_smtp");
    assert_eq!(p["incoming_server_location"], format!("imap://{imap}"));
    assert_eq!(p["max_concurrent_connections"], 5);
    assert_eq!(p["allow_plaintext"], true);
    assert_eq!(p["description"], "Dovecot in the lab");
    assert_eq!(
        p["authentication_type"],
        "credentials_specified_by_user_or_queue"
    );

    // Editing saves through PATCH; the server type is fixed.
    assert!(!displayed(&b, "select#server_type").await);
    b.fill("#min_polling_interval_minutes", "3").await;
    set_value(&b, "#process_email_from", "2026-01-15T08:30").await;
    click(&b, "#save").await;
    b.wait_for_text("Your changes were saved", 10).await;
    let p = w.get(&format!("/email-server-profiles/{id}")).await;
    assert_eq!(p["min_polling_interval_minutes"], 3);
    assert_eq!(p["process_email_from"], "2026-01-15T08:30:00Z");
    assert_eq!(value(&b, "#process_email_from").await, "2026-01-15T08:30");

    b.open("/profiles").await;
    b.wait_for_text("Lab Dovecot", 10).await;
    let row = b.text(&format!("tr[data-profile='{id}']")).await;
    assert!(
        row.contains("IMAP/SMTP") && row.contains(&format!("imap://{imap}")),
        "{row}"
    );
    b.screenshot("profiles").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_shows_its_steps_and_test_and_enable_starts_a_job() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_user, mailbox, login) = w.member("all").await;
    let b = signed_in(&w).await;

    // Against Dovecot with the mailbox's own credentials: every step passes.
    b.open(&format!("/profiles/{}", w.profile)).await;
    b.wait_for_text("Test Dovecot", 10).await;
    assert_eq!(value(&b, "#test_mailbox_id").await, mailbox);
    click(&b, "#test-connection").await;
    let page = b.wait_for_text("The connection works.", 30).await;
    for step in ["Resolve", "Connect", "Authenticate", "Open the mailbox"] {
        assert!(page.contains(step), "no step {step}: {page}");
    }
    assert!(displayed(&b, "#test-incoming li.ok[data-step=authenticate]").await);
    assert!(displayed(&b, "#test-outgoing li.ok[data-step=authenticate]").await);
    assert!(!displayed(&b, "#test-result li.bad").await);
    scroll_to(&b, Some("#test-card")).await;
    b.screenshot("profile-test-connection").await;

    // A profile with its own service account and a wrong password fails at
    // authentication, with the reason and the fix.
    let (imap, smtp) = (w.servers.imap_addr(), w.servers.smtp_addr());
    let service = w
        .post(
            "/email-server-profiles",
            json!({"name": "Service account", "server_type": "imap_smtp", "allow_plaintext": true,
                   "incoming_server_location": format!("imap://{imap}"),
                   "outgoing_server_location": format!("smtp://{smtp}"),
                   "authentication_type": "credentials_specified_in_profile",
                   "incoming_username": login.login, "incoming_password": "wrong-password"}),
        )
        .await;
    let service = service["id"].as_str().unwrap().to_owned();
    b.open(&format!("/profiles/{service}")).await;
    b.wait_for_text("Service account", 10).await;
    assert!(b.text("#field-incoming_password").await.contains("Set"));
    b.select("#test_mailbox_id", &mailbox).await;
    click(&b, "#run-test").await;
    b.wait_for_text("The connection failed.", 30).await;
    assert!(displayed(&b, "#test-incoming li.bad[data-step=authenticate]").await);
    let failure = b.text("#test-incoming .test-error").await;
    assert!(failure.contains("How to fix:"), "{failure}");
    scroll_to(&b, Some("#test-card")).await;
    b.screenshot("profile-test-connection-failed").await;

    // The right password typed into the form (write-only) makes it pass.
    b.fill("#incoming_password", &login.password).await;
    click(&b, "#save").await;
    b.wait_for_text("Your changes were saved", 10).await;
    assert_eq!(
        value(&b, "#incoming_password").await,
        "",
        "secrets are never shown back"
    );
    b.select("#test_mailbox_id", &mailbox).await;
    click(&b, "#run-test").await;
    b.wait_for_text("The connection works.", 30).await;

    // Test & Enable Mailboxes of a profile without mailboxes: the API's refusal.
    click(&b, "#test-and-enable").await;
    b.wait_for_text("the profile has no mailboxes yet", 10)
        .await;
    assert!(
        b.text(".notice.summary")
            .await
            .contains("Test & Enable Mailboxes did not start")
    );

    // With mailboxes it starts the job and goes to its progress page.
    b.open(&format!("/profiles/{}", w.profile)).await;
    b.wait_for_text("Test Dovecot", 10).await;
    click(&b, "#test-and-enable").await;
    let path = wait_path(&b, "/jobs/").await;
    let job_id = path.trim_start_matches("/jobs/").to_owned();
    let job = w.get(&format!("/jobs/{job_id}")).await;
    assert_eq!(job["kind"], "test_and_enable");
    assert_eq!(job["profile_id"], w.profile.as_str());
    assert_eq!(job["progress_total"], 1);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_asks_first_and_shows_why_a_profile_in_use_stays() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    w.member("all").await;
    let b = signed_in(&w).await;

    // In use: the API refuses, the page says why.
    b.open(&format!("/profiles/{}", w.profile)).await;
    click(&b, "#delete").await;
    b.wait_for_text("Delete “Test Dovecot”?", 10).await;
    click(&b, "#confirm-delete").await;
    b.wait_for_text("was not deleted", 10).await;
    b.wait_for_text("used by mailboxes", 10).await;
    w.get(&format!("/email-server-profiles/{}", w.profile))
        .await;

    // Unused: deleted, back to the list.
    let spare = w
        .post(
            "/email-server-profiles",
            json!({"name": "Spare", "server_type": "imap_smtp",
                   "incoming_server_location": "imaps://mail.example.org",
                   "outgoing_server_location": "smtps://mail.example.org"}),
        )
        .await;
    let spare = spare["id"].as_str().unwrap().to_owned();
    b.open(&format!("/profiles/{spare}")).await;
    click(&b, "#delete").await;
    b.wait_for_text("Delete “Spare”?", 10).await;
    click(&b, "#confirm-delete").await;
    b.wait_for_text("The email server profile Spare was deleted.", 10)
        .await;
    assert_eq!(b.path().await, "/profiles?deleted=Spare");
    let (status, _) = w
        .try_call(
            reqwest::Method::GET,
            &format!("/api/v1/orgs/{}/email-server-profiles/{spare}", w.org),
            serde_json::Value::Null,
            &w.admin,
        )
        .await;
    assert_eq!(status, 404);
    b.close().await;
}
