//! Signing in and out, and what protects a session.

use crate::common::{Backend, World, fast_engine};
use crate::driver::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_token_pick_the_organization_and_sign_out() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let b = Browser::start(&w.base).await;

    b.open("/alerts").await;
    assert!(
        b.path().await.starts_with("/sign-in?next=%2Falerts"),
        "{}",
        b.path().await
    );
    b.screenshot("sign-in").await;

    // A wrong token is refused with a message, on the token tab.
    b.click("#tab-token").await;
    b.fill("#token", "mbt_not-a-token").await;
    b.click("#token-form button[type=submit]").await;
    b.wait_for_text("unknown, revoked or expired", 10).await;

    b.click("#tab-token").await;
    b.fill("#token", &w.admin).await;
    b.click("#token-form button[type=submit]").await;
    // The system administrator picks the organization, then lands where they asked.
    b.wait_for_text("Choose an organization", 10).await;
    b.click("button.choice").await;
    b.open("/alerts").await;
    b.wait_for_text("Contoso", 10).await;
    let session_cookie = b
        .client
        .get_named_cookie("__Host-mb_session")
        .await
        .expect("the session cookie is set");
    assert_eq!(session_cookie.secure(), Some(true));
    assert_eq!(session_cookie.http_only(), Some(true));

    b.open("/alerts").await;
    b.wait_for_text("No alerts", 10).await;

    b.click("form[action='/sign-out'] button").await;
    b.wait_for_text("Sign in", 10).await;
    b.open("/alerts").await;
    assert!(
        b.path().await.starts_with("/sign-in"),
        "signed out: {}",
        b.path().await
    );
    b.close().await;
}
