//! mailbridge's engine: the per-mailbox workloads (incoming and outgoing email;
//! ACT follows), each run under a lease in the store so that exactly one worker
//! owns a mailbox at a time; push wake-ups from IMAP IDLE; background jobs such as
//! Test & Enable; and the error model's consequences (retries, disabling, alerts).
//!
//! The decisions are the domain's pure functions; this crate gathers their inputs,
//! talks to servers through the connectors, and writes through the store.

pub mod act;
mod alerts;
mod batch;
pub mod census;
pub mod certificates;
mod cluster;
pub mod config;
mod context;
pub mod discovery;
pub mod ews;
mod failures;
pub mod forward;
pub mod graph;
pub mod identity;
pub mod inbound;
pub mod incoming;
pub mod metrics;
pub mod outgoing;
pub mod parse;
pub mod pipeline;
mod push;
mod scheduler;
pub mod test_enable;
mod webhooks;

use std::sync::Arc;

use mailbridge_store::{Store, StoreResult};
use tokio::sync::Notify;

pub use config::EngineConfig;
pub use context::MailboxContext;

/// The engine of one node.
pub struct Engine {
    pub store: Store,
    pub config: EngineConfig,
    /// Wakes the scheduler before its next tick (push, a queued email).
    pub wake: Arc<Notify>,
    /// What this engine did since the process started, for `/metrics`.
    pub metrics: Arc<metrics::EngineMetrics>,
    /// The mailboxes whose Inbox this node holds an IDLE on right now.
    watching: std::sync::Mutex<std::collections::HashSet<String>>,
    /// App-only tokens for Exchange Online profiles, cached; made on first use.
    token_source: std::sync::OnceLock<Arc<mailbridge_connectors::identity::TokenSource>>,
    /// Microsoft Graph clients, one per Exchange Online profile.
    graph_clients: graph::GraphClients,
    /// EWS clients, one per Exchange Server profile.
    ews_clients: ews::EwsClients,
}

impl Engine {
    pub fn new(store: Store, config: EngineConfig) -> Arc<Engine> {
        mailbridge_connectors::tls::install_crypto_provider();
        Arc::new(Engine {
            store,
            config,
            wake: Arc::new(Notify::new()),
            metrics: Arc::default(),
            watching: Default::default(),
            token_source: std::sync::OnceLock::new(),
            graph_clients: graph::GraphClients::default(),
            ews_clients: ews::EwsClients::default(),
        })
    }

    /// Whether this node holds an IDLE on the mailbox's Inbox now (push is live).
    pub fn is_watching(&self, mailbox_id: &str) -> bool {
        self.watching
            .lock()
            .expect("watching lock")
            .contains(mailbox_id)
    }

    /// The node's token source for Exchange Online (one cache for every profile).
    pub(crate) fn token_source(
        &self,
    ) -> Result<
        Arc<mailbridge_connectors::identity::TokenSource>,
        mailbridge_domain::error_model::SyncError,
    > {
        if let Some(s) = self.token_source.get() {
            return Ok(s.clone());
        }
        let s = Arc::new(mailbridge_connectors::identity::TokenSource::new(
            self.config.network_timeout,
        )?);
        Ok(self.token_source.get_or_init(|| s).clone())
    }

    pub(crate) fn set_watching(&self, mailbox_id: &str, on: bool) {
        let mut w = self.watching.lock().expect("watching lock");
        if on {
            w.insert(mailbox_id.to_owned());
        } else {
            w.remove(mailbox_id);
        }
    }

    /// Runs the scheduler, the job runner and the push watchers until `shutdown`
    /// turns true; then waits for the runs in flight (their leases are released).
    pub async fn run(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        recover_after_restart(&self.store)
            .await
            .unwrap_or_else(|e| tracing::error!(error = %e, "start-up recovery failed"));
        tracing::info!(node = %self.config.node_id, push = self.config.push, lease_s = self.config.lease.as_secs(),
            poll_s = self.config.timing.poll.as_secs(), tick_ms = self.config.tick.as_millis() as u64, "engine started");
        self.metrics.set_engine_running(true);
        cluster::join(&self).await;
        let heartbeat = {
            let (e, s) = (self.clone(), shutdown.clone());
            tokio::spawn(async move { cluster::heartbeat(&e, s).await })
        };
        let mut tasks = vec![
            tokio::spawn(scheduler::run(self.clone(), shutdown.clone())),
            tokio::spawn(scheduler::run_jobs(self.clone(), shutdown.clone())),
            tokio::spawn(webhooks::run(self.clone(), shutdown.clone())),
            tokio::spawn(certificates::run(self.clone(), shutdown.clone())),
            tokio::spawn(graph::notifications::run(self.clone(), shutdown.clone())),
        ];
        if self.config.push {
            tasks.push(tokio::spawn(push::supervise(
                self.clone(),
                shutdown.clone(),
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
        // The runs are over: the other nodes may take this node's mailboxes now.
        let _ = heartbeat.await;
        cluster::leave(&self).await;
        self.metrics.set_engine_running(false);
        tracing::info!("engine stopped");
    }
}

/// Repairs what a stopped process left behind: jobs it was running go back to
/// the queue so that they run again.
pub async fn recover_after_restart(store: &Store) -> StoreResult<()> {
    let requeued = store.requeue_interrupted_jobs().await?;
    if requeued > 0 {
        tracing::warn!(
            jobs = requeued,
            "jobs interrupted by the last stop were queued again"
        );
    }
    Ok(())
}
