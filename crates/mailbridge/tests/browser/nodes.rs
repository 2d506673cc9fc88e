//! Nodes: the node running the engine, alive, holding the enabled mailboxes; its
//! mailboxes listed by address; the monitoring page names each mailbox's node.

use std::time::Duration;

use crate::common::{Backend, World, fast_engine, wait};
use crate::driver::signed_in;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_page_shows_which_node_holds_which_mailboxes() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, alice_mailbox, alice) = w.member("all").await;
    let (_, bob_mailbox, bob) = w.member("all").await;
    w.test_and_enable(&[&alice_mailbox, &bob_mailbox]).await;
    let node = w.engine.config.node_id.clone();
    // Both are assigned to the node within a scheduler tick or two.
    wait(
        "the node holding both mailboxes",
        Duration::from_secs(20),
        || async {
            let mut held = 0;
            for m in [&alice_mailbox, &bob_mailbox] {
                if w.store
                    .mailbox_node(m, chrono::Utc::now())
                    .await
                    .unwrap()
                    .as_deref()
                    == Some(node.as_str())
                {
                    held += 1;
                }
            }
            (held == 2).then_some(())
        },
    )
    .await;

    let b = signed_in(&w).await;
    b.open("/nodes").await;
    let kpis = b.text("#cluster-kpis").await.to_lowercase();
    assert!(kpis.contains("nodes alive\n1"), "{kpis}");
    assert!(kpis.contains("mailboxes held\n2"), "{kpis}");
    let row = b.text("#nodes tbody tr:first-child").await;
    assert!(row.contains(&node), "{row}");
    assert!(row.contains("Alive"), "{row}");
    // The node holding mailboxes is chosen: its mailboxes, by address.
    let held = b.text("#node-mailboxes").await;
    let (first, second) = if alice.address < bob.address {
        (&alice.address, &bob.address)
    } else {
        (&bob.address, &alice.address)
    };
    let (i, j) = (held.find(first.as_str()), held.find(second.as_str()));
    assert!(i.is_some() && j.is_some() && i < j, "{held}");
    b.screenshot("nodes").await;
    // Monitoring names each mailbox's node, linking to it.
    b.open("/monitoring").await;
    let tail = &node[node.len() - 8..];
    let rows = b.text("#mailboxes-health").await;
    assert!(rows.contains(tail), "{rows}");
    b.click(&format!("#mailboxes-health td.node a[title='{node}']"))
        .await;
    b.wait_for_text(&alice.address, 10).await;
    assert!(
        b.path().await.starts_with("/nodes?node="),
        "{}",
        b.path().await
    );
    b.open("/nodes").await;
    // A mailbox links to its page.
    b.click(&format!(
        "#node-mailboxes a[href='/mailboxes/{alice_mailbox}']"
    ))
    .await;
    b.wait_for_text(&alice.address, 10).await;
    b.close().await;
}
