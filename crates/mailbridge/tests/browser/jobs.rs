//! A job's page follows the job by itself: opened while a Test & Enable is still
//! running, it shows the outcome without being reloaded.

use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, World, fast_engine};
use crate::driver::signed_in;

/// An "IMAP server" on 127.0.0.1 that accepts connections and never says a word,
/// so that a Test & Enable against it lasts until the network timeout.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("imap://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_updates_itself_until_the_job_ends() {
    let engine = mailbridge_engine::EngineConfig {
        network_timeout: Duration::from_secs(4),
        ..fast_engine()
    };
    let w = World::start(Backend::Sqlite, engine).await;
    let silent = w
        .post(
            "/email-server-profiles",
            json!({"name": "Silent server", "server_type": "imap_smtp", "allow_plaintext": true,
                   "incoming_server_location": silent_server().await,
                   "outgoing_server_location": format!("smtp://{}", w.servers.smtp_addr())}),
        )
        .await;
    let (_, mailbox, _) = w.member("all").await;
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"profile_id": silent["id"]}),
    )
    .await;

    let b = signed_in(&w).await;
    let job = w
        .post("/mailboxes/test-and-enable", json!({"ids": [mailbox]}))
        .await;
    let id = job["id"].as_str().unwrap();
    b.open(&format!("/jobs/{id}")).await;
    let status = b
        .find("#job-progress")
        .await
        .attr("data-status")
        .await
        .unwrap()
        .unwrap();
    assert!(
        status == "queued" || status == "running",
        "the job is still under way when the page opens: {status}"
    );
    b.screenshot("job-progress-running").await;
    // Mark this page: a reload would lose the mark.
    b.client
        .execute("window.__opened_once = true;", vec![])
        .await
        .unwrap();

    let body = b.wait_for_text("Completed with failures", 30).await;
    assert!(
        body.contains("How to fix")
            || body.to_lowercase().contains("timed out")
            || body.contains("Failed"),
        "{body}"
    );
    let still_same_page = b
        .client
        .execute("return window.__opened_once === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        still_same_page,
        serde_json::Value::Bool(true),
        "the outcome arrived without a reload"
    );
    assert_eq!(b.text("#count-failed").await, "1");
    b.close().await;
}
