//! The engine's settings.

use std::net::SocketAddr;
use std::time::Duration;

use mailbridge_domain::schedule::Timing;
use mailbridge_domain::webhook::retry::RetrySchedule;

/// How the engine runs; every duration can be shortened for tests.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This process's name in leases; unique per running node.
    pub node_id: String,
    /// How often the scheduler looks for due work.
    pub tick: Duration,
    /// How long a lease lasts without renewal; a dead node's mailboxes are taken
    /// over after this.
    pub lease: Duration,
    pub timing: Timing,
    /// Hold an IMAP IDLE connection per enabled mailbox, to learn of new mail at once.
    pub push: bool,
    /// How long one IDLE lasts before it is renewed (RFC 2177: under 29 minutes).
    pub idle_timeout: Duration,
    /// Messages fetched per round trip.
    pub fetch_batch: usize,
    /// Attempts at a message that cannot be created before it is given up
    /// (and moved to the Undeliverable folder when the profile says so).
    pub max_item_attempts: i64,
    /// Timeout of every network operation.
    pub network_timeout: Duration,
    /// Extra trusted CA certificates (DER) for lab servers.
    pub extra_roots: Vec<Vec<u8>>,
    /// Mailboxes claimed per scheduler tick.
    pub claim_batch: i64,
    /// Webhook deliveries: the waits after each failed attempt.
    pub webhook_retry: RetrySchedule,
    /// How often the webhook worker looks for due deliveries when idle.
    pub webhook_poll: Duration,
    /// How long a receiver has to answer one webhook request.
    pub webhook_timeout: Duration,
    /// How long a claimed delivery stays this node's; a crashed node's claims
    /// are attempted again after it (longer than `webhook_timeout`).
    pub webhook_lease: Duration,
    /// Deliveries of different mailboxes posted at the same time.
    pub webhook_concurrency: usize,
    /// How often certificates are checked for the 30-day, 7-day and expired alerts.
    pub certificate_check_interval: Duration,
    /// Autodiscover: the DNS server to ask for SRV records and host addresses;
    /// `None` asks the system's (`/etc/resolv.conf`).
    pub discovery_nameserver: Option<SocketAddr>,
    /// Autodiscover: replaces 443 in the autoconfig and Autodiscover URLs built
    /// from an address's domain. Only for loopback test fixtures, which cannot
    /// listen on 443; `None` in production.
    pub discovery_https_port: Option<u16>,
    /// Autodiscover: how long a discovered location is used before it is looked
    /// up again (Test & Enable always looks again).
    pub discovery_max_age: Duration,
    /// Exchange Online change notifications: the public base URL under which
    /// Microsoft Graph reaches this service's API (e.g. `https://mailbridge.example.org`);
    /// notifications are posted to `{url}/api/v1/graph/notifications/{org_id}`.
    /// `None`: no subscriptions, polling alone.
    pub graph_notification_url: Option<String>,
    /// The lifetime asked for a Graph subscription, in minutes (at most 4,230).
    pub graph_subscription_minutes: i64,
    /// A subscription is renewed when less than this is left (at most three
    /// quarters of the lifetime Graph granted).
    pub graph_subscription_renew_margin: Duration,
    /// How often the subscriptions are checked (created, renewed, deleted).
    pub graph_subscription_check: Duration,
    /// How often each mailbox's completeness census runs (the server's messages
    /// of every processed folder compared with what was processed; gaps are
    /// reported and back-filled). It runs within an incoming run, under the lease.
    pub census_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: format!("node-{}", uuid::Uuid::now_v7().simple()),
            tick: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            timing: Timing::default(),
            push: true,
            idle_timeout: Duration::from_secs(25 * 60),
            fetch_batch: 200,
            max_item_attempts: 3,
            network_timeout: Duration::from_secs(60),
            extra_roots: Vec::new(),
            claim_batch: 100,
            webhook_retry: RetrySchedule::default(),
            webhook_poll: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(10),
            webhook_lease: Duration::from_secs(60),
            webhook_concurrency: 8,
            certificate_check_interval: Duration::from_secs(3600),
            discovery_nameserver: None,
            discovery_https_port: None,
            discovery_max_age: Duration::from_secs(24 * 3600),
            graph_notification_url: None,
            graph_subscription_minutes: 4230,
            graph_subscription_renew_margin: Duration::from_secs(12 * 3600),
            graph_subscription_check: Duration::from_secs(60),
            census_interval: Duration::from_secs(6 * 3600),
        }
    }
}
