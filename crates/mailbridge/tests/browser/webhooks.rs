//! The Webhooks page: a subscription made through the form, its secret shown once,
//! a test event delivered to a real receiver and seen in the delivery log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{Backend, World, fast_engine};
use crate::driver::signed_in;

/// A receiver on 127.0.0.1 that answers 204 and keeps each request's headers.
async fn receiver() -> (String, Arc<Mutex<Vec<axum::http::HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(headers);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_made_in_the_page_receives_its_test_event() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (url, seen) = receiver().await;
    let b = signed_in(&w).await;
    b.open("/webhooks").await;
    b.wait_for_text("No subscriptions yet", 10).await;

    // Nothing ticked: the API's message appears beside the events.
    b.fill("#new-webhook #url", &url).await;
    b.click("#new-webhook button[type=submit]").await;
    let error = b.text("#field-event_types .error-text").await;
    assert!(error.contains("event"), "{error}");
    assert_eq!(
        b.find("#new-webhook #url")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(url.as_str()),
        "the entered URL is kept"
    );

    b.click("#new-webhook input[value='email.tracked']").await;
    b.click("#new-webhook input[value='alert.raised']").await;
    b.fill("#new-webhook #description", "Contoso CRM").await;
    b.screenshot("webhooks").await;
    b.click("#new-webhook button[type=submit]").await;
    b.wait_for_text("Subscription created", 10).await;
    let secret = b
        .find("#secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.click("a.button.primary").await;
    let page = b.wait_for_text("Send test event", 10).await;
    assert!(!page.contains(&secret), "the secret is shown only once");

    b.click("form[action$='/test'] button").await;
    b.wait_for_text("was queued", 10).await;
    // The engine delivers it; the log shows it delivered after a reload.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        b.client.refresh().await.unwrap();
        let log = b.text("body").await;
        if log.contains("webhook.test") && b.text("#deliveries td.status").await == "Delivered" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.scroll_to(".section-title").await;
    b.screenshot("webhook-deliveries").await;
    let headers = seen.lock().unwrap().clone();
    assert_eq!(headers.len(), 1, "one delivery");
    for h in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert!(headers[0].contains_key(h), "{h} is sent");
    }
    b.close().await;
}
