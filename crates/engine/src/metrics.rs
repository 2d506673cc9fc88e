//! The engine's counters since the process started — runs by outcome, items,
//! run durations, connections, push wake-ups — in a Prometheus registry that the
//! HTTP surface encodes at `/metrics` (docs/METRICS.md). Labels are closed
//! vocabularies (workload, outcome, protocol, source): never a mailbox, whose
//! thousands would make as many series.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, SyncError};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Defines a label value enum encoded as its snake_case name.
macro_rules! label_value {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_value!(
    /// What the engine was doing.
    Workload {
        Incoming = "incoming",
        Outgoing = "outgoing",
        TestEnable = "test_enable",
        /// The IMAP IDLE held per enabled Inbox.
        Push = "push",
        /// Appointments, contacts and tasks.
        Act = "act",
    }
);

label_value!(
    /// How a run ended: by the class of its error (a transient error that used up
    /// its retries still counts as transient here; the mailbox's status says the rest).
    RunOutcome {
        Succeeded = "succeeded",
        FailedTransient = "failed_transient",
        FailedPermanent = "failed_permanent",
    }
);

label_value!(
    /// What became of one item (an email; for ACT, an appointment, task or contact).
    ItemOutcome {
        /// Incoming: an email was created or linked for the message.
        Tracked = "tracked",
        /// Incoming: decided and recorded, not tracked (the filter, a duplicate...).
        NotTracked = "not_tracked",
        /// Incoming: an attempt failed and the message will be tried again.
        Retrying = "retrying",
        /// Incoming: given up after its last attempt. Outgoing: failed for good.
        Failed = "failed",
        /// Outgoing: accepted by the SMTP server.
        Sent = "sent",
        /// Outgoing: a transient failure; the email waits for its next attempt.
        Retried = "retried",
        /// ACT: a write to the store or the server (create, update, delete).
        Written = "written",
        /// ACT: a lost race; the item is planned again on the next run.
        Skipped = "skipped",
    }
);

label_value!(
    /// The protocol of a connection to a mail server.
    Protocol {
        Imap = "imap",
        Smtp = "smtp",
    }
);

label_value!(
    /// How Microsoft Graph answered a request.
    GraphOutcome {
        /// 2xx (and 3xx).
        Ok = "ok",
        /// 429, 503 or 504: asked to wait (the request is retried).
        Throttled = "throttled",
        /// Any other 4xx or 5xx.
        Error = "error",
    }
);

label_value!(
    /// What made incoming work due at once.
    WakeSource {
        /// An IMAP IDLE of this node saw a change.
        Idle = "idle",
        /// A mail server called the API's mail-events endpoint.
        MailEvent = "mail_event",
        /// Microsoft Graph posted a change notification (or a `missed` lifecycle event).
        GraphNotification = "graph_notification",
    }
);

label_value!(
    /// The protocol a sending server speaks to the inbound listener.
    InboundProtocol {
        Smtp = "smtp",
        Lmtp = "lmtp",
    }
);

label_value!(
    /// What the inbound listener did with a connection it accepted from the OS.
    InboundConnectionOutcome {
        /// Served: greeted and read until the client or the session closed it.
        Accepted = "accepted",
        /// Over `max_connections`: answered 421 and closed.
        RefusedBusy = "refused_busy",
    }
);

label_value!(
    /// The inbound listener's verdict on one `RCPT TO`.
    InboundRecipientOutcome {
        /// A router mailbox's address: 250.
        Accepted = "accepted",
        /// No router mailbox has this address: 550.
        Unknown = "unknown",
        /// The size declared at MAIL is above the recipient organization's limit: 552.
        TooLarge = "too_large",
        /// Over `max_recipients` for the transaction: 452.
        TooMany = "too_many",
        /// The router mailboxes could not be read (the store is down): 451.
        LookupFailed = "lookup_failed",
    }
);

label_value!(
    /// What became of one message (one transaction) offered to the inbound listener.
    InboundMessageOutcome {
        /// Written to the store, then acknowledged with 250.
        Stored = "stored",
        /// The write failed: 451, the sending server tries again.
        StoreFailed = "store_failed",
        /// Above the listener's or the recipients' organizations' limit: 552, at
        /// MAIL (the declared size) or after the data.
        TooLarge = "too_large",
        /// A line of the text was longer than 998 characters: 554.
        LineTooLong = "line_too_long",
    }
);

impl From<mailbridge_domain::inbound::Protocol> for InboundProtocol {
    fn from(p: mailbridge_domain::inbound::Protocol) -> Self {
        match p {
            mailbridge_domain::inbound::Protocol::Smtp => InboundProtocol::Smtp,
            mailbridge_domain::inbound::Protocol::Lmtp => InboundProtocol::Lmtp,
        }
    }
}

impl RunOutcome {
    /// The outcome of a run's result.
    pub fn of<T>(result: &Result<T, SyncError>) -> RunOutcome {
        match result {
            Ok(_) => RunOutcome::Succeeded,
            Err(e) if e.class == ErrorClass::Permanent => RunOutcome::FailedPermanent,
            Err(_) => RunOutcome::FailedTransient,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RunLabels {
    workload: Workload,
    outcome: RunOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ItemLabels {
    workload: Workload,
    outcome: ItemOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkloadLabels {
    workload: Workload,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConnectionLabels {
    protocol: Protocol,
    workload: Workload,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GraphLabels {
    outcome: GraphOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WakeLabels {
    source: WakeSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CensusLabels {
    outcome: RunOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InboundConnectionLabels {
    protocol: InboundProtocol,
    outcome: InboundConnectionOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InboundRecipientLabels {
    protocol: InboundProtocol,
    outcome: InboundRecipientOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InboundMessageLabels {
    protocol: InboundProtocol,
    outcome: InboundMessageOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InboundProtocolLabels {
    protocol: InboundProtocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type DurationFamily = Family<WorkloadLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 50 ms to about 100 s: an idle poll takes tens of milliseconds, a first
    // sync of a large mailbox minutes (counted in +Inf).
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

/// The engine's metrics. Cheap to update from any task; the handles share their
/// values with the registry.
pub struct EngineMetrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_duration: DurationFamily,
    items: Family<ItemLabels, Counter>,
    connections_opened: Family<ConnectionLabels, Counter>,
    connections_open: Family<ConnectionLabels, Gauge>,
    wakeups: Family<WakeLabels, Counter>,
    graph_requests: Family<GraphLabels, Counter>,
    /// EWS answers, with Graph's vocabulary of outcomes.
    ews_requests: Family<GraphLabels, Counter>,
    census_runs: Family<CensusLabels, Counter>,
    census_gaps_found: Counter,
    census_backfilled: Counter,
    inbound_connections: Family<InboundConnectionLabels, Counter>,
    inbound_recipients: Family<InboundRecipientLabels, Counter>,
    inbound_messages: Family<InboundMessageLabels, Counter>,
    inbound_auth_failures: Family<InboundProtocolLabels, Counter>,
    running: Gauge,
    cluster_nodes: Gauge,
    mailboxes_assigned: Gauge,
    started: AtomicBool,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        EngineMetrics::new()
    }
}

impl EngineMetrics {
    pub fn new() -> EngineMetrics {
        let mut registry = Registry::with_prefix("mailbridge");
        let runs = Family::<RunLabels, Counter>::default();
        let run_duration = DurationFamily::new_with_constructor(duration_histogram);
        let items = Family::<ItemLabels, Counter>::default();
        let connections_opened = Family::<ConnectionLabels, Counter>::default();
        let connections_open = Family::<ConnectionLabels, Gauge>::default();
        let wakeups = Family::<WakeLabels, Counter>::default();
        let graph_requests = Family::<GraphLabels, Counter>::default();
        let ews_requests = Family::<GraphLabels, Counter>::default();
        let census_runs = Family::<CensusLabels, Counter>::default();
        let census_gaps_found = Counter::default();
        let census_backfilled = Counter::default();
        let inbound_connections = Family::<InboundConnectionLabels, Counter>::default();
        let inbound_recipients = Family::<InboundRecipientLabels, Counter>::default();
        let inbound_messages = Family::<InboundMessageLabels, Counter>::default();
        let inbound_auth_failures = Family::<InboundProtocolLabels, Counter>::default();
        let running = Gauge::default();
        let cluster_nodes = Gauge::default();
        let mailboxes_assigned = Gauge::default();
        registry.register(
            "cluster_nodes_live",
            "Nodes sharing this database whose heartbeat is recent, as this node last saw them",
            cluster_nodes.clone(),
        );
        registry.register(
            "mailboxes_assigned",
            "Mailboxes assigned to this node (it schedules their work and watches them for push)",
            mailboxes_assigned.clone(),
        );
        registry.register(
            "build",
            "The version of this process",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        registry.register(
            "engine_running",
            "1 while this process's engine runs (started and not stopped), else 0",
            running.clone(),
        );
        registry.register(
            "runs",
            "Workload runs by outcome (incoming, outgoing, act: one per mailbox run; test_enable: one per mailbox tested)",
            runs.clone(),
        );
        // The unit is in the name without a UNIT line: OpenMetrics allows one
        // on a histogram, but some parsers (openmetrics-parser 0.5) refuse it.
        registry.register(
            "run_duration_seconds",
            "How long workload runs took",
            run_duration.clone(),
        );
        registry.register(
            "items",
            "Emails (and ACT items) processed, by workload and outcome",
            items.clone(),
        );
        registry.register(
            "connections_opened",
            "Connections to mail servers opened (connected and signed in)",
            connections_opened.clone(),
        );
        registry.register(
            "connections_open",
            "Connections to mail servers open now",
            connections_open.clone(),
        );
        registry.register(
            "push_wakeups",
            "Times incoming work was made due at once by a push",
            wakeups.clone(),
        );
        registry.register(
            "graph_requests",
            "Requests answered by Microsoft Graph, by outcome (throttled: 429, 503 or 504, retried after Retry-After)",
            graph_requests.clone(),
        );
        registry.register(
            "ews_requests",
            "Requests answered by Exchange Web Services (Exchange Server), by outcome (throttled: ErrorServerBusy, waited out and retried)",
            ews_requests.clone(),
        );
        registry.register(
            "census_runs",
            "Completeness censuses of a mailbox (its processed folders compared with the server's), by outcome",
            census_runs.clone(),
        );
        registry.register(
            "census_gaps_found",
            "Messages a census found on the server, in a processed folder, never processed",
            census_gaps_found.clone(),
        );
        registry.register(
            "census_backfilled",
            "Census gaps processed through the normal pipeline (each exactly once)",
            census_backfilled.clone(),
        );
        registry.register(
            "inbound_connections",
            "Connections to the inbound SMTP/LMTP listener, by protocol and outcome (refused_busy: over max_connections, answered 421)",
            inbound_connections.clone(),
        );
        registry.register(
            "inbound_recipients",
            "Recipients (RCPT TO) offered to the inbound listener, by protocol and verdict",
            inbound_recipients.clone(),
        );
        registry.register(
            "inbound_messages",
            "Messages offered to the inbound listener, by protocol and outcome (stored: written to the store before the 250)",
            inbound_messages.clone(),
        );
        registry.register(
            "inbound_auth_failures",
            "SMTP AUTH attempts the inbound listener refused (535)",
            inbound_auth_failures.clone(),
        );
        EngineMetrics {
            registry,
            graph_requests,
            ews_requests,
            census_runs,
            census_gaps_found,
            census_backfilled,
            inbound_connections,
            inbound_recipients,
            inbound_messages,
            inbound_auth_failures,
            runs,
            run_duration,
            items,
            connections_opened,
            connections_open,
            wakeups,
            running,
            cluster_nodes,
            mailboxes_assigned,
            started: AtomicBool::new(false),
        }
    }

    /// The registry to encode.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether the engine has started and not stopped.
    pub fn engine_running(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub(crate) fn set_engine_running(&self, on: bool) {
        self.started.store(on, Ordering::SeqCst);
        self.running.set(i64::from(on));
    }

    /// What this node last saw of the cluster.
    pub(crate) fn cluster_seen(&self, live_nodes: u64, assigned: u64) {
        self.cluster_nodes
            .set(i64::try_from(live_nodes).unwrap_or(i64::MAX));
        self.mailboxes_assigned
            .set(i64::try_from(assigned).unwrap_or(i64::MAX));
    }

    /// A run ended.
    pub fn run_finished(&self, workload: Workload, outcome: RunOutcome, took: Duration) {
        self.runs
            .get_or_create(&RunLabels { workload, outcome })
            .inc();
        self.run_duration
            .get_or_create(&WorkloadLabels { workload })
            .observe(took.as_secs_f64());
    }

    /// `n` emails had this outcome.
    pub fn items(&self, workload: Workload, outcome: ItemOutcome, n: usize) {
        if n > 0 {
            self.items
                .get_or_create(&ItemLabels { workload, outcome })
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }

    /// A connection was opened; it counts as open until the guard is dropped, so
    /// keep the guard beside the session.
    #[must_use = "the connection counts as open until the guard is dropped"]
    pub fn connection_opened(&self, protocol: Protocol, workload: Workload) -> OpenConnection {
        let labels = ConnectionLabels { protocol, workload };
        self.connections_opened.get_or_create(&labels).inc();
        let gauge = self.connections_open.get_or_create(&labels).clone();
        gauge.inc();
        OpenConnection { gauge }
    }

    /// Microsoft Graph answered a request with `status`.
    pub fn graph_answer(&self, status: u16) {
        let outcome = match status {
            429 | 503 | 504 => GraphOutcome::Throttled,
            s if s >= 400 => GraphOutcome::Error,
            _ => GraphOutcome::Ok,
        };
        self.graph_requests
            .get_or_create(&GraphLabels { outcome })
            .inc();
    }

    /// Exchange Web Services answered a request with `status`; `busy` when it
    /// was `ErrorServerBusy` (or 429/503), which the client waits out.
    pub fn ews_answer(&self, status: u16, busy: bool) {
        let outcome = match status {
            _ if busy => GraphOutcome::Throttled,
            s if s >= 400 => GraphOutcome::Error,
            _ => GraphOutcome::Ok,
        };
        self.ews_requests
            .get_or_create(&GraphLabels { outcome })
            .inc();
    }

    /// A completeness census ended: the gaps it found and those it back-filled.
    pub fn census_finished(&self, outcome: RunOutcome, gaps_found: usize, backfilled: usize) {
        self.census_runs
            .get_or_create(&CensusLabels { outcome })
            .inc();
        self.census_gaps_found
            .inc_by(u64::try_from(gaps_found).unwrap_or(u64::MAX));
        self.census_backfilled
            .inc_by(u64::try_from(backfilled).unwrap_or(u64::MAX));
    }

    /// Incoming work was made due at once.
    pub fn push_wakeup(&self, source: WakeSource) {
        self.wakeups.get_or_create(&WakeLabels { source }).inc();
    }

    /// The inbound listener accepted a connection from the OS and served or refused it.
    pub fn inbound_connection(&self, protocol: InboundProtocol, outcome: InboundConnectionOutcome) {
        self.inbound_connections
            .get_or_create(&InboundConnectionLabels { protocol, outcome })
            .inc();
    }

    /// The inbound listener answered a `RCPT TO`.
    pub fn inbound_recipient(&self, protocol: InboundProtocol, outcome: InboundRecipientOutcome) {
        self.inbound_recipients
            .get_or_create(&InboundRecipientLabels { protocol, outcome })
            .inc();
    }

    /// The inbound listener finished with a message.
    pub fn inbound_message(&self, protocol: InboundProtocol, outcome: InboundMessageOutcome) {
        self.inbound_messages
            .get_or_create(&InboundMessageLabels { protocol, outcome })
            .inc();
    }

    /// The inbound listener refused an AUTH attempt's credentials.
    pub fn inbound_auth_failure(&self, protocol: InboundProtocol) {
        self.inbound_auth_failures
            .get_or_create(&InboundProtocolLabels { protocol })
            .inc();
    }
}

/// Counts one connection as open while it lives.
#[derive(Debug)]
pub struct OpenConnection {
    gauge: Gauge,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &EngineMetrics) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, m.registry()).unwrap();
        out
    }

    #[test]
    fn counters_carry_their_labels() {
        let m = EngineMetrics::new();
        m.run_finished(
            Workload::Incoming,
            RunOutcome::Succeeded,
            Duration::from_millis(30),
        );
        m.items(Workload::Incoming, ItemOutcome::Tracked, 3);
        m.items(Workload::Incoming, ItemOutcome::NotTracked, 0);
        m.push_wakeup(WakeSource::Idle);
        for status in [200, 202, 429, 503, 504, 404] {
            m.graph_answer(status);
        }
        for (status, busy) in [(200, false), (500, true), (200, true), (500, false)] {
            m.ews_answer(status, busy);
        }
        m.census_finished(RunOutcome::Succeeded, 2, 2);
        m.census_finished(RunOutcome::FailedTransient, 0, 0);
        let t = text(&m);
        for line in [
            "mailbridge_runs_total{workload=\"incoming\",outcome=\"succeeded\"} 1",
            "mailbridge_items_total{workload=\"incoming\",outcome=\"tracked\"} 3",
            "mailbridge_push_wakeups_total{source=\"idle\"} 1",
            "mailbridge_run_duration_seconds_count{workload=\"incoming\"} 1",
            "mailbridge_run_duration_seconds_bucket{le=\"0.05\",workload=\"incoming\"} 1",
            "mailbridge_engine_running 0",
            "mailbridge_graph_requests_total{outcome=\"ok\"} 2",
            "mailbridge_graph_requests_total{outcome=\"throttled\"} 3",
            "mailbridge_graph_requests_total{outcome=\"error\"} 1",
            "mailbridge_ews_requests_total{outcome=\"ok\"} 1",
            "mailbridge_ews_requests_total{outcome=\"throttled\"} 2",
            "mailbridge_ews_requests_total{outcome=\"error\"} 1",
            "mailbridge_census_runs_total{outcome=\"succeeded\"} 1",
            "mailbridge_census_runs_total{outcome=\"failed_transient\"} 1",
            "mailbridge_census_gaps_found_total 2",
            "mailbridge_census_backfilled_total 2",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing from\n{t}");
        }
        assert!(!t.contains("not_tracked"), "no series for a zero count");
    }

    #[test]
    fn a_connection_is_open_while_its_guard_lives() {
        let m = EngineMetrics::new();
        let open = "mailbridge_connections_open{protocol=\"imap\",workload=\"push\"}";
        let a = m.connection_opened(Protocol::Imap, Workload::Push);
        let b = m.connection_opened(Protocol::Imap, Workload::Push);
        assert!(text(&m).contains(&format!("{open} 2")));
        drop(a);
        drop(b);
        let t = text(&m);
        assert!(t.contains(&format!("{open} 0")));
        assert!(t.contains(
            "mailbridge_connections_opened_total{protocol=\"imap\",workload=\"push\"} 2"
        ));
    }
}
