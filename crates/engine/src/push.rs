//! Push: one IMAP IDLE connection per enabled mailbox's Inbox, held by the node
//! the mailbox is assigned to (crate::cluster). When the server
//! reports a change, the mailbox's incoming work becomes due at once and the
//! scheduler is woken, so new mail is processed without waiting for a poll.
//! These connections are outside the profile's connection cap, which applies to
//! sync runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mailbridge_connectors::{IdleOutcome, ImapSession};
use mailbridge_domain::error_model::ErrorClass;
use tokio::task::JoinHandle;

use crate::Engine;
use crate::context::MailboxContext;
use crate::metrics::{Protocol, WakeSource, Workload};

/// Keeps one watcher per enabled mailbox, starting and stopping them as
/// mailboxes are enabled and disabled.
pub async fn supervise(engine: Arc<Engine>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut watchers: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        // Only the mailboxes assigned to this node: one IDLE per mailbox across
        // the cluster, moving with the assignment.
        match engine
            .store
            .incoming_enabled_mailboxes(&engine.config.node_id, Utc::now())
            .await
        {
            Ok(enabled) => {
                watchers.retain(|id, h| {
                    let keep = enabled.contains(id) && !h.is_finished();
                    if !keep {
                        h.abort();
                    }
                    keep
                });
                for id in enabled {
                    let (e, mid) = (engine.clone(), id.clone());
                    watchers
                        .entry(id)
                        .or_insert_with(|| tokio::spawn(async move { watch(e, mid).await }));
                }
            }
            Err(e) => tracing::warn!(error = %e, "push: could not list enabled mailboxes"),
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    for (_, h) in watchers {
        h.abort();
    }
}

/// Watches one mailbox until it is disabled or its error is permanent.
async fn watch(engine: Arc<Engine>, mailbox_id: String) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match watch_once(&engine, &mailbox_id).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) if e.class == ErrorClass::Permanent => {
                tracing::info!(mailbox = %mailbox_id, error = %e.message, "push stopped: permanent error (the incoming workload reports it)");
                return;
            }
            Err(e) => {
                tracing::debug!(mailbox = %mailbox_id, error = %e.message, "push: reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

async fn watch_once(
    engine: &Engine,
    mailbox_id: &str,
) -> Result<(), mailbridge_domain::error_model::SyncError> {
    let org = engine
        .store
        .mailbox_org(mailbox_id)
        .await
        .map_err(crate::context::store_error)?;
    let ctx = MailboxContext::load(&engine.store, &org, mailbox_id).await?;
    if crate::graph::uses_graph(&ctx) {
        // Exchange Online has no IDLE: polling serves it (Graph change
        // notifications are not wired to the engine yet).
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    if crate::ews::uses_ews(&ctx) {
        // Exchange Server over EWS has no IDLE either (EWS streaming
        // notifications are not used): polling serves it.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    let cfg = ctx.imap(&engine.store, &engine.config).await?;
    let mut session = ImapSession::connect(&cfg).await?;
    let open = engine
        .metrics
        .connection_opened(Protocol::Imap, Workload::Push);
    if !session.capabilities().idle {
        session.logout().await;
        drop(open);
        // No IDLE: polling alone serves this mailbox.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    session.select("INBOX").await?;
    engine.set_watching(mailbox_id, true);
    let _unset = Unset(engine, mailbox_id);
    loop {
        let (s, outcome) = session.idle(engine.config.idle_timeout).await?;
        session = s;
        if outcome == IdleOutcome::Changed {
            engine
                .store
                .wake_incoming(mailbox_id, Utc::now())
                .await
                .map_err(crate::context::store_error)?;
            engine.metrics.push_wakeup(WakeSource::Idle);
            engine.wake.notify_one();
        }
    }
}

/// Clears a mailbox's watching mark when its IDLE loop ends, however it ends.
struct Unset<'a>(&'a Engine, &'a str);

impl Drop for Unset<'_> {
    fn drop(&mut self) {
        self.0.set_watching(self.1, false);
    }
}
