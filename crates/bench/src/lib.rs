//! mailbridge's benchmarks: each runs mailbridge (engine + API in this process, on
//! the real Dovecot and SMTP servers that `scripts/test-servers` starts) and a
//! yardstick on the same servers in the same run, and reports the ratio.
//!
//! - [`ingest`]: initial sync of a filled Inbox, against `mbsync` (isync).
//! - [`outgoing`]: queued emails sent and marked Sent, against a bare SMTP client.
//! - [`push`]: SMTP acceptance to the email in the store, over IMAP IDLE.
//! - [`mailboxes`]: CPU and memory of many idle, polled mailboxes.
//! - [`router`]: messages pushed over LMTP to the inbound listener, against
//!   Dovecot's LMTP delivery.
//!
//! `scripts/bench` is the command; docs/BENCHMARKS.md holds the figures.

pub mod corpus;
pub mod ingest;
pub mod mailboxes;
pub mod outgoing;
pub mod proc;
pub mod push;
pub mod router;
pub mod world;

use std::fmt;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
    /// Seconds: what the test suite runs.
    Tiny,
    /// About a tenth of the figures.
    Small,
    /// The figures (10,000 messages, 1,000 emails, 100 IDLE mailboxes, 10,000 mailboxes).
    Full,
}

/// Which database the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    Sqlite,
    Postgres,
}

/// One benchmark's outcome: the headline figures plus named details.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: &'static str,
    /// The headline line, e.g. `mailbridge 4.21 s, mbsync 3.80 s, ratio 1.11 (target <= 1.0)`.
    pub headline: String,
    /// Whether the target was met.
    pub target_met: bool,
    /// (name, value) pairs for the table.
    pub details: Vec<(String, String)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.headline)
    }
}

/// Prints the final table of all reports.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    out.push_str("| benchmark | figure | value |\n|---|---|---|\n");
    for r in reports {
        out.push_str(&format!(
            "| {} | result | {} ({}) |\n",
            r.name,
            r.headline,
            if r.target_met {
                "target met"
            } else {
                "target MISSED"
            }
        ));
        for (k, v) in &r.details {
            out.push_str(&format!("| {} | {k} | {v} |\n", r.name));
        }
    }
    out
}

/// Seconds with two decimals.
pub fn secs(d: std::time::Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The p-th percentile (0..=100) of sorted values (nearest rank).
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
