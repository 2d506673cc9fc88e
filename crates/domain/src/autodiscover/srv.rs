//! SRV records for mail (RFC 6186, RFC 8314 section 5.1): which services to ask
//! for, the order of their targets (RFC 2782), and the locations they give.

use crate::autodiscover::location_text;
use crate::location::{Direction, Scheme};

/// A mail service published with SRV records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrvService {
    /// `_imaps._tcp`: IMAP with implicit TLS (RFC 6186).
    Imaps,
    /// `_imap._tcp`: IMAP with STARTTLS (RFC 6186).
    Imap,
    /// `_submissions._tcp`: submission with implicit TLS (RFC 8314).
    Submissions,
    /// `_submission._tcp`: submission with STARTTLS (RFC 6186).
    Submission,
}

impl SrvService {
    /// The services of one direction, in order of preference: implicit TLS first
    /// (RFC 8314 section 5.1).
    pub fn for_direction(direction: Direction) -> [SrvService; 2] {
        match direction {
            Direction::Incoming => [SrvService::Imaps, SrvService::Imap],
            Direction::Outgoing => [SrvService::Submissions, SrvService::Submission],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SrvService::Imaps => "_imaps._tcp",
            SrvService::Imap => "_imap._tcp",
            SrvService::Submissions => "_submissions._tcp",
            SrvService::Submission => "_submission._tcp",
        }
    }

    /// The fully qualified name to query: `_imaps._tcp.example.org.`.
    pub fn query_name(self, domain: &str) -> String {
        format!("{}.{}.", self.label(), domain.trim_end_matches('.'))
    }

    pub fn direction(self) -> Direction {
        match self {
            SrvService::Imaps | SrvService::Imap => Direction::Incoming,
            SrvService::Submissions | SrvService::Submission => Direction::Outgoing,
        }
    }

    /// The location scheme: `imap://` and `smtp://` mean STARTTLS, which a
    /// profile without `allow_plaintext` requires.
    pub fn scheme(self) -> Scheme {
        match self {
            SrvService::Imaps => Scheme::Imaps,
            SrvService::Imap => Scheme::Imap,
            SrvService::Submissions => Scheme::Smtps,
            SrvService::Submission => Scheme::Smtp,
        }
    }
}

/// One SRV record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// A host name, with or without the final dot; `.` means "not offered".
    pub target: String,
}

impl SrvRecord {
    fn is_dot(&self) -> bool {
        matches!(self.target.as_str(), "." | "")
    }
}

/// Whether the records say the service is decidedly not offered: a single record
/// whose target is `.` (RFC 2782; RFC 6186 section 3.4).
pub fn not_offered(records: &[SrvRecord]) -> bool {
    matches!(records, [only] if only.is_dot())
}

/// The targets in the order to try them (RFC 2782): lowest priority first; within
/// one priority, a weighted random order in which a record of weight w comes first
/// with probability w / (sum of weights), zero weights placed first and chosen
/// rarely. `random(n)` must return a uniform number in `0..=n`. Records with the
/// target `.` or port 0 are dropped.
pub fn order(records: &[SrvRecord], mut random: impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    let mut usable: Vec<SrvRecord> = records
        .iter()
        .filter(|r| !r.is_dot() && r.port != 0)
        .cloned()
        .collect();
    usable.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(usable.len());
    for priority in dedup_priorities(&usable) {
        // Zero weights first, as RFC 2782 asks; the rest keep their order.
        let mut group: Vec<SrvRecord> = usable
            .iter()
            .filter(|r| r.priority == priority)
            .cloned()
            .collect();
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = random(total).min(total);
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

fn dedup_priorities(sorted: &[SrvRecord]) -> Vec<u16> {
    let mut p: Vec<u16> = sorted.iter().map(|r| r.priority).collect();
    p.dedup();
    p
}

/// The location a record gives for its service: `imaps://target:port`.
pub fn location(service: SrvService, record: &SrvRecord) -> String {
    location_text(service.scheme(), &record.target, record.port)
}
