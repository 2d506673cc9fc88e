//! Email Configuration Settings in the browser: saved through the API, with the
//! API's message next to a wrong value.

use crate::common::{Backend, World, fast_engine};
use crate::driver::signed_in;
use crate::profiles::{checked, click, displayed, value, wait_displayed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_configuration_settings_save_and_show_the_apis_messages() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let b = signed_in(&w).await;

    b.open("/settings").await;
    b.wait_for_text("Email Configuration Settings", 10).await;
    b.wait_for_text("CRM:", 10).await;
    assert!(checked(&b, "#process_email_for_approved_users_only").await);
    assert_eq!(value(&b, "#tracking_token_prefix").await, "CRM:");
    b.screenshot("settings").await;

    // Save: defaults for new mailboxes, approval, tracking token.
    b.select("#default_profile_id", &w.profile).await;
    b.select("#default_act_method", "server_side_sync").await;
    b.select("#email_between_users", "two_activities").await;
    click(&b, "label[for=process_email_for_approved_queues_only]").await;
    b.fill("#tracking_token_prefix", "CASE:").await;
    b.fill("#tracking_token_counter_digits", "6").await;
    b.fill("#max_attachment_size_kb", "10240").await;
    assert_eq!(value(&b, "#max_message_size_kb").await, "25600");
    b.fill("#max_message_size_kb", "51200").await;
    click(&b, "#save").await;
    b.wait_for_text("settings were saved", 10).await;
    let s = w.get("/email-settings").await;
    assert_eq!(s["default_profile_id"], w.profile.as_str());
    assert_eq!(s["default_act_method"], "server_side_sync");
    assert_eq!(s["email_between_users"], "two_activities");
    assert_eq!(s["process_email_for_approved_queues_only"], false);
    assert_eq!(s["process_email_for_approved_users_only"], true);
    assert_eq!(s["tracking_token_prefix"], "CASE:");
    assert_eq!(s["tracking_token_counter_digits"], 6);
    assert_eq!(s["max_attachment_size_kb"], 10240);
    assert_eq!(s["max_message_size_kb"], 51200);
    assert_eq!(value(&b, "#default_profile_id").await, w.profile);
    assert!(b.text(".token-example").await.contains("CASE:0007000042"));

    // Wrong values: the API's messages next to the fields, the values kept.
    b.fill("#tracking_token_prefix", "CRM ID:").await;
    b.fill("#tracking_token_user_digits", "12").await;
    b.fill("#max_message_size_kb", "0").await;
    click(&b, "#save").await;
    b.wait_for_text("were not saved", 10).await;
    assert_eq!(
        b.text("#field-tracking_token_prefix .error-text").await,
        "tracking_token_prefix must be 1 to 20 characters without spaces, such as CRM:"
    );
    assert_eq!(
        b.text("#field-tracking_token_user_digits .error-text")
            .await,
        "tracking_token_user_digits must be between 1 and 9, got 12"
    );
    assert_eq!(value(&b, "#tracking_token_prefix").await, "CRM ID:");
    assert_eq!(value(&b, "#tracking_token_user_digits").await, "12");
    assert_eq!(
        b.text("#field-max_message_size_kb .error-text").await,
        "max_message_size_kb must be between 1 and 153600, got 0"
    );
    assert_eq!(
        w.get("/email-settings").await["tracking_token_prefix"],
        "CASE:"
    );
    b.screenshot("settings-errors").await;

    // Without tracking tokens their settings are hidden and not sent, so the
    // wrong values no longer matter; the message size limit is set right again.
    b.fill("#max_message_size_kb", "51200").await;
    click(&b, "label[for=tracking_token_enabled]").await;
    wait_displayed(&b, "#field-tracking_token_prefix", false).await;
    assert!(!displayed(&b, "#field-tracking_token_user_digits").await);
    click(&b, "#save").await;
    b.wait_for_text("settings were saved", 10).await;
    let s = w.get("/email-settings").await;
    assert_eq!(s["tracking_token_enabled"], false);
    assert_eq!(s["tracking_token_prefix"], "CASE:");
    b.close().await;
}
