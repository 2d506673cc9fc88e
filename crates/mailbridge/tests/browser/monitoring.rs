//! Monitoring: KPIs, the throughput chart, profiles and mailboxes worst first.

use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, World, fast_engine, message, wait};
use crate::driver::signed_in;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_shows_kpis_throughput_and_the_failing_mailbox_first() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, good, alice) = w.member("all").await;
    let (_, bad, _) = w.member("all").await;
    w.patch(
        &format!("/mailboxes/{bad}"),
        json!({"password": "not-the-password"}),
    )
    .await;
    w.test_and_enable(&[&good, &bad]).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (raw, id) = message(
            "carl@fabrikam.com",
            &[&alice.address],
            &format!("Order {i}"),
            "",
        );
        w.servers.deliver(&alice.address, &raw).await.unwrap();
        ids.push(id);
    }
    for id in &ids {
        wait("tracking", Duration::from_secs(20), || async {
            w.emails(&format!("&message_id={id}"))
                .await
                .into_iter()
                .next()
        })
        .await;
    }

    let b = signed_in(&w).await;
    b.open("/monitoring").await;
    // (The labels are shown in capitals.)
    let kpis = b.text("#kpis").await.to_lowercase();
    assert!(kpis.contains("failed mailboxes\n1"), "{kpis}");
    // The three orders, and Test & Enable's own "now connected" message.
    let tracked: i64 = kpis
        .split("emails tracked\n")
        .nth(1)
        .and_then(|r| r.lines().next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(tracked >= 3, "{kpis}");
    // The chart has bars for what was tracked.
    let bars = b
        .client
        .find_all(fantoccini::Locator::Css("#throughput rect.bar.tracked"))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "a bar for the tracked emails");
    let profiles = b.text("#profiles-health").await;
    assert!(profiles.contains("Test Dovecot"), "{profiles}");
    // Worst first: the failing mailbox leads the list.
    let first = b.text("#mailboxes-health tbody tr:first-child").await;
    assert!(first.contains("Failure"), "{first}");
    let rows = b.text("#mailboxes-health").await;
    assert!(rows.contains(&alice.address), "{rows}");
    b.screenshot("monitoring").await;

    // The last hour, per minute.
    b.click("a[href^='/monitoring?window=1h']").await;
    b.wait_for_text("last hour", 10).await;
    b.close().await;
}
