//! The inbound SMTP/LMTP listener (the "email router" push route): TCP listeners
//! on the configured addresses, one task per connection driving the domain's
//! protocol state machine (`mailbridge_domain::inbound`), recipients checked
//! against the router mailboxes, and every accepted message written to the store
//! (`inbound_messages`) before it is acknowledged; a failed write answers 451, so
//! the sending server tries again and nothing is lost.
//!
//! The stored messages are processed by [`worker`], on any node.

pub mod auth;
mod connection;
pub mod tls;
pub mod worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailbridge_domain::inbound::cidr::Cidr;
use mailbridge_domain::inbound::{Protocol, RouterAddresses};
use mailbridge_domain::organization::message_size_limit_bytes;
use mailbridge_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinHandle;

use crate::metrics::{EngineMetrics, InboundConnectionOutcome};

/// The listener's settings; with neither address set nothing listens.
#[derive(Clone)]
pub struct InboundConfig {
    pub smtp_listen: Option<SocketAddr>,
    pub lmtp_listen: Option<SocketAddr>,
    /// The name in the greeting.
    pub hostname: String,
    /// STARTTLS is offered when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Clients that need no authentication.
    pub allowed_clients: Vec<Cidr>,
    /// SMTP AUTH users and their passwords' Argon2id hashes (offered on TLS only).
    pub users: BTreeMap<String, auth::PasswordHashString>,
    /// Advertised as SIZE; larger messages are refused with 552. This is the upper
    /// bound for every organization: each may set a smaller limit in its email
    /// settings (`max_message_size_kb`), enforced per recipient.
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Connections held at once; more are answered 421 and closed.
    pub max_connections: usize,
    /// How long the server waits for a command line (RFC 5321 §4.5.3.2.7: 5 minutes).
    pub command_timeout: Duration,
    /// How long the server waits for each line of message text (§4.5.3.2.6: 3 minutes).
    pub data_timeout: Duration,
    /// How long the router mailboxes' addresses are cached between look-ups.
    pub router_cache: Duration,
    /// Notified after each stored message (wakes the processing worker).
    pub stored: Option<Arc<tokio::sync::Notify>>,
    /// Where connections, recipient verdicts, messages and refused logins are
    /// counted (`mailbridge_inbound_*`); nothing is counted without it.
    pub metrics: Option<Arc<EngineMetrics>>,
}

impl InboundConfig {
    /// Nothing listens; the limits are RFC 5321's and 25 MB per message.
    pub fn disabled(hostname: impl Into<String>) -> Self {
        InboundConfig {
            smtp_listen: None,
            lmtp_listen: None,
            hostname: hostname.into(),
            tls: None,
            allowed_clients: Vec::new(),
            users: BTreeMap::new(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 100,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            router_cache: Duration::from_secs(5),
            stored: None,
            metrics: None,
        }
    }
}

impl std::fmt::Debug for InboundConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundConfig")
            .field("smtp_listen", &self.smtp_listen)
            .field("lmtp_listen", &self.lmtp_listen)
            .field("hostname", &self.hostname)
            .field("tls", &self.tls.is_some())
            .field("allowed_clients", &self.allowed_clients)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("max_message_size", &self.max_message_size)
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

/// What every connection shares.
struct Shared {
    store: Store,
    config: InboundConfig,
    connections: Arc<Semaphore>,
    router: Mutex<Option<(Instant, Arc<RouterAddresses>)>>,
}

impl Shared {
    /// The router mailboxes' addresses and their organizations' message size
    /// limits, from the cache while it is fresh.
    async fn router(&self) -> Result<Arc<RouterAddresses>, mailbridge_store::StoreError> {
        let mut cached = self.router.lock().await;
        if let Some((at, router)) = cached.as_ref()
            && at.elapsed() < self.config.router_cache
        {
            return Ok(router.clone());
        }
        let addresses = self.store.router_addresses().await?;
        let limits = self.store.router_message_limits().await?;
        let router = Arc::new(
            RouterAddresses::new(addresses).with_message_limits(
                limits
                    .into_iter()
                    .map(|(org, kb)| (org, message_size_limit_bytes(kb))),
            ),
        );
        *cached = Some((Instant::now(), router.clone()));
        Ok(router)
    }
}

/// The bound listeners, before they accept.
pub struct InboundListener {
    smtp: Option<TcpListener>,
    lmtp: Option<TcpListener>,
    shared: Arc<Shared>,
}

impl InboundListener {
    /// Binds the configured addresses (port 0 picks one: see [`Self::smtp_addr`]).
    pub async fn bind(store: Store, config: InboundConfig) -> std::io::Result<Self> {
        let smtp = match config.smtp_listen {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        let lmtp = match config.lmtp_listen {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        Ok(InboundListener {
            smtp,
            lmtp,
            shared: Arc::new(Shared {
                store,
                connections: Arc::new(Semaphore::new(config.max_connections)),
                config,
                router: Mutex::new(None),
            }),
        })
    }

    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn lmtp_addr(&self) -> Option<SocketAddr> {
        self.lmtp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Starts accepting: one task per listener, one more per connection. Aborting
    /// the returned tasks stops accepting; connections in progress finish.
    pub fn spawn(self) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        for (listener, protocol) in [(self.smtp, Protocol::Smtp), (self.lmtp, Protocol::Lmtp)] {
            if let Some(listener) = listener {
                let shared = self.shared.clone();
                tasks.push(tokio::spawn(accept_loop(listener, protocol, shared)));
            }
        }
        tasks
    }
}

async fn accept_loop(listener: TcpListener, protocol: Protocol, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "inbound listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = shared.connections.clone().try_acquire_owned();
        if let Some(metrics) = &shared.config.metrics {
            let outcome = if permit.is_ok() {
                InboundConnectionOutcome::Accepted
            } else {
                InboundConnectionOutcome::RefusedBusy
            };
            metrics.inbound_connection(protocol.into(), outcome);
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            match permit {
                Ok(_permit) => connection::serve(stream, peer, protocol, &shared).await,
                Err(_) => connection::refuse_busy(stream).await,
            }
        });
    }
}
