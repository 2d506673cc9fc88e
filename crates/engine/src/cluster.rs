//! Cluster mode: this node's place among the nodes sharing the database. It
//! registers, beats every quarter of the lease time (which also keeps its
//! mailboxes assigned to it), and before each scheduler tick takes or gives
//! back mailboxes to hold its fair share (`domain::cluster::rebalance`). A node
//! that stops cleanly gives its mailboxes back at once; one that dies keeps
//! them only until its last renewal runs out, then the others take them.

use std::time::Duration;

use chrono::Utc;
use mailbridge_domain::cluster::{Rebalance, rebalance};
use mailbridge_store::NodeInfo;
use tokio::sync::watch;

use crate::Engine;
use crate::scheduler::chrono;

/// Nodes not heard of for this long leave the node view.
const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

fn this_node(engine: &Engine) -> NodeInfo {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    NodeInfo {
        id: engine.config.node_id.clone(),
        hostname,
        pid: i64::from(std::process::id()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// How often the node beats: four times per lease, so that one or two missed
/// beats (a slow database) do not cost it its mailboxes.
fn beat_every(engine: &Engine) -> Duration {
    (engine.config.lease / 4).max(Duration::from_millis(200))
}

/// Registers this node; retried by the heartbeat until the database answers.
pub(crate) async fn join(engine: &Engine) -> bool {
    match engine
        .store
        .register_node(&this_node(engine), Utc::now())
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cluster: could not register this node; retrying");
            false
        }
    }
}

/// Beats until `shutdown`, then leaves the cluster (the scheduler has finished
/// its runs by then: the engine awaits it first).
pub(crate) async fn heartbeat(engine: &Engine, mut shutdown: watch::Receiver<bool>) {
    let mut joined = join(engine).await;
    let mut last_prune = None::<tokio::time::Instant>;
    let mut failed = false;
    loop {
        // After a failed beat (a database outage), the next comes soon, so that
        // the assignments do not run out while the database is back.
        let wait = if failed || !joined {
            crate::scheduler::RENEW_RETRY.min(beat_every(engine))
        } else {
            beat_every(engine)
        };
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        if !joined {
            joined = join(engine).await;
            continue;
        }
        let now = Utc::now();
        match engine
            .store
            .node_heartbeat(
                &engine.config.node_id,
                now,
                now + chrono(engine.config.lease),
            )
            .await
        {
            Ok(_) => failed = false,
            Err(e) => {
                failed = true;
                tracing::warn!(error = %e, "cluster: heartbeat failed; retrying");
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            last_prune = Some(tokio::time::Instant::now());
            if let Err(e) = engine.store.prune_nodes(now - chrono(FORGET_AFTER)).await {
                tracing::debug!(error = %e, "cluster: could not prune old nodes");
            }
        }
    }
}

/// Gives every mailbox back and marks the node stopped.
pub(crate) async fn leave(engine: &Engine) {
    if let Err(e) = engine
        .store
        .leave_cluster(&engine.config.node_id, Utc::now())
        .await
    {
        tracing::warn!(error = %e, "cluster: could not give the mailboxes back; they free themselves when the assignment runs out");
    }
}

/// Takes free mailboxes up to this node's fair share, or gives back what is
/// over it. Runs before each scheduler tick; a failure only delays the change.
pub(crate) async fn rebalance_now(engine: &Engine) {
    let now = Utc::now();
    let node = &engine.config.node_id;
    let alive_since = now - chrono(engine.config.lease);
    let view = match engine.store.cluster_view(node, now, alive_since).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cluster: could not read the cluster's state; retrying");
            return;
        }
    };
    let until = now + chrono(engine.config.lease);
    let held = match rebalance(view) {
        Rebalance::Claim(n) => match engine.store.claim_mailboxes(node, now, until, n).await {
            Ok(got) => {
                if got > 0 {
                    tracing::info!(
                        claimed = got,
                        share = n + view.held,
                        nodes = view.live_nodes,
                        "cluster: mailboxes taken"
                    );
                }
                view.held + got
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster: could not claim mailboxes");
                view.held
            }
        },
        Rebalance::Release(n) => match engine.store.release_mailboxes(node, now, n).await {
            Ok(gone) => {
                if gone > 0 {
                    tracing::info!(
                        released = gone,
                        nodes = view.live_nodes,
                        "cluster: mailboxes given back for the other nodes"
                    );
                }
                view.held.saturating_sub(gone)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster: could not give mailboxes back");
                view.held
            }
        },
        Rebalance::Keep => view.held,
    };
    engine.metrics.cluster_seen(view.live_nodes.max(1), held);
}
