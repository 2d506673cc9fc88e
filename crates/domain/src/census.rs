//! The completeness census, pure: which messages of a processed folder are on the
//! server but were never decided (gaps), and when the next census runs.
//!
//! Only what the incoming sync has already passed is counted: on IMAP the UIDs at
//! or below the folder's checkpoint under the current UIDVALIDITY (newer ones are
//! not processed yet), on Exchange Online the items last changed before the run's
//! mark. Every message the incoming sync reads gets a decision — including those
//! it deliberately leaves alone, such as messages received before the start date
//! when a mailbox is first enabled (`skipped`, `before_start_date`) — so such
//! messages are never gaps. The census compares the server's set with the
//! decisions, not the other way round: a message that left the server (moved to
//! Undeliverable, deleted or moved by its owner) is not a gap.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What the decision trail holds for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// A final decision (tracked, linked, skipped or failed).
    Decided,
    /// An attempt failed and the message waits for another one; `at` is when
    /// that attempt was recorded.
    Retrying { at: DateTime<Utc> },
}

/// Where the incoming sync stands in an IMAP folder (its checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uidvalidity: u32,
    /// Every UID up to this one has been decided (the checkpoint never passes a
    /// message still being retried).
    pub last_uid: u32,
}

/// The gaps of one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gaps<K> {
    /// Messages on the server that the census looked at (at or below the mark).
    pub considered: usize,
    /// Never decided: lost somewhere. Reported (metric, alert) and back-filled.
    pub missing: Vec<K>,
    /// Retrying, and not retried by the incoming sync (an earlier back-fill that
    /// failed): back-filled again, not reported again. Its attempts are counted,
    /// so it is given up after the last one like any message.
    pub stuck: Vec<K>,
}

impl<K> Gaps<K> {
    /// Everything to back-fill, missing first.
    pub fn to_backfill(&self) -> impl Iterator<Item = &K> {
        self.missing.iter().chain(&self.stuck)
    }
}

/// What the census makes of one IMAP folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderCensus {
    Counted(Gaps<u32>),
    /// The incoming sync has not started the folder: nothing is processed yet.
    NotStarted,
    /// The server's UIDVALIDITY is not the checkpoint's: the incoming sync reads
    /// the folder again from UID 0 on its next run, so the old UIDs mean nothing.
    UidValidityChanged {
        checkpoint: u32,
        server: u32,
    },
}

/// Classifies the messages the census considers, ascending.
fn classify<K: Ord + Clone>(
    considered: impl IntoIterator<Item = K>,
    known: &BTreeMap<K, Known>,
    attempted_before: DateTime<Utc>,
) -> Gaps<K> {
    let mut considered: Vec<K> = considered.into_iter().collect();
    considered.sort();
    considered.dedup();
    let mut gaps = Gaps {
        considered: considered.len(),
        missing: Vec::new(),
        stuck: Vec::new(),
    };
    for k in considered {
        match known.get(&k) {
            None => gaps.missing.push(k),
            Some(Known::Retrying { at }) if *at < attempted_before => gaps.stuck.push(k),
            Some(_) => {}
        }
    }
    gaps
}

/// The census of an IMAP folder: the server's UIDs (any, in any order) and
/// UIDVALIDITY, the folder's checkpoint, and the decisions of the UIDs up to it.
/// `attempted_before` is when the census started: a retrying message below the
/// checkpoint was last attempted by a census (the incoming sync never passes
/// one), so it is stuck.
pub fn imap_folder(
    server_uidvalidity: u32,
    server_uids: &[u32],
    checkpoint: Option<Checkpoint>,
    known: &BTreeMap<u32, Known>,
    attempted_before: DateTime<Utc>,
) -> FolderCensus {
    let Some(cp) = checkpoint else {
        return FolderCensus::NotStarted;
    };
    if cp.uidvalidity != server_uidvalidity {
        return FolderCensus::UidValidityChanged {
            checkpoint: cp.uidvalidity,
            server: server_uidvalidity,
        };
    }
    let below = server_uids
        .iter()
        .copied()
        .filter(|&u| u != 0 && u <= cp.last_uid);
    FolderCensus::Counted(classify(below, known, attempted_before))
}

/// An item of an Exchange Online folder as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedItem {
    pub id: String,
    /// `lastModifiedDateTime` (whole seconds); `None` when the server omitted it.
    pub last_modified: Option<DateTime<Utc>>,
}

/// How long Exchange Online may take to show a change in a folder's delta:
/// items changed since the mark minus this are left to the next census.
pub const GRAPH_SETTLE: Duration = Duration::from_secs(5 * 60);

/// The census of an Exchange Online folder: the items listed, the decisions of
/// the folder's known items by item id, and `mark`, when the incoming run that
/// read the folder's changes to the end started. Only items last changed before
/// `mark - GRAPH_SETTLE` are considered (the run's delta round saw them; the
/// time is given in whole seconds, so one more second is allowed), and only
/// retrying items that run did not attempt are stuck (the incoming sync retries
/// the others itself: their page's link is not stored).
pub fn graph_folder(
    items: &[ListedItem],
    known: &BTreeMap<String, Known>,
    mark: DateTime<Utc>,
) -> Gaps<String> {
    let settle = chrono::Duration::from_std(GRAPH_SETTLE).unwrap_or(chrono::Duration::zero());
    let before = mark - settle;
    let second = chrono::Duration::seconds(1);
    let considered = items
        .iter()
        .filter(|i| i.last_modified.is_some_and(|t| t + second <= before))
        .map(|i| i.id.clone());
    classify(considered, known, mark)
}

/// When the census runs next: one interval after a successful one; after
/// `failures` in a row, the retry delay doubled for each earlier failure, never
/// longer than the interval.
pub fn next_census(
    now: DateTime<Utc>,
    interval: Duration,
    retry_delay: Duration,
    failures: u32,
) -> DateTime<Utc> {
    let wait = match failures {
        0 => interval,
        n => retry_delay
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(interval),
    };
    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(6))
}

/// The alert's text for the gaps found in one folder.
pub fn alert_message(folder: &str, missing: usize, backfilled: usize) -> String {
    let messages = if missing == 1 { "message" } else { "messages" };
    let mut text = format!(
        "The completeness census found {missing} {messages} in the folder {folder} that had not been processed; "
    );
    if backfilled >= missing {
        text.push_str(&format!(
            "{} back-filled through the normal processing",
            if missing == 1 { "it was" } else { "all were" }
        ));
    } else {
        text.push_str(&format!(
            "{backfilled} of them were back-filled through the normal processing, and {} could not be yet (tried again at each census until given up)",
            missing - backfilled
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn known(entries: &[(u32, Option<&str>)]) -> BTreeMap<u32, Known> {
        entries
            .iter()
            .map(|(u, r)| {
                let k = match r {
                    None => Known::Decided,
                    Some(at) => Known::Retrying { at: t(at) },
                };
                (*u, k)
            })
            .collect()
    }

    const NOW: &str = "2026-03-01T12:00:00Z";

    #[test]
    fn imap_gaps_are_server_uids_at_or_below_the_checkpoint_never_decided() {
        let cp = |last_uid| {
            Some(Checkpoint {
                uidvalidity: 7,
                last_uid,
            })
        };
        let gaps = |considered, missing: &[u32], stuck: &[u32]| {
            FolderCensus::Counted(Gaps {
                considered,
                missing: missing.to_vec(),
                stuck: stuck.to_vec(),
            })
        };
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            u32,
            &[u32],
            Option<Checkpoint>,
            BTreeMap<u32, Known>,
            FolderCensus,
        )> = vec![
            (
                "all decided",
                7,
                &[1, 2, 3],
                cp(3),
                known(&[(1, None), (2, None), (3, None)]),
                gaps(3, &[], &[]),
            ),
            ("empty folder", 7, &[], cp(0), known(&[]), gaps(0, &[], &[])),
            (
                "emptied folder: moved or deleted is no gap",
                7,
                &[],
                cp(9),
                known(&[(4, None)]),
                gaps(0, &[], &[]),
            ),
            (
                "a gap in the middle",
                7,
                &[1, 2, 3],
                cp(3),
                known(&[(1, None), (3, None)]),
                gaps(3, &[2], &[]),
            ),
            (
                "gaps at both edges",
                7,
                &[1, 5, 9],
                cp(9),
                known(&[(5, None)]),
                gaps(3, &[1, 9], &[]),
            ),
            (
                "above the checkpoint: not processed yet",
                7,
                &[3, 4, 5],
                cp(3),
                known(&[(3, None), (5, None)]),
                gaps(1, &[], &[]),
            ),
            (
                "unordered, repeated answer",
                7,
                &[9, 1, 9, 5],
                cp(9),
                known(&[(5, None)]),
                gaps(3, &[1, 9], &[]),
            ),
            (
                "a failed back-fill is stuck, not missing",
                7,
                &[1, 2],
                cp(2),
                known(&[(1, None), (2, Some("2026-03-01T06:00:00Z"))]),
                gaps(2, &[], &[2]),
            ),
            (
                "nothing processed yet",
                7,
                &[1, 2],
                None,
                known(&[]),
                FolderCensus::NotStarted,
            ),
            (
                "UIDVALIDITY changed",
                8,
                &[1, 2],
                cp(2),
                known(&[]),
                FolderCensus::UidValidityChanged {
                    checkpoint: 7,
                    server: 8,
                },
            ),
            (
                "UID 0 is no message",
                7,
                &[0, 1],
                cp(1),
                known(&[(1, None)]),
                gaps(1, &[], &[]),
            ),
        ];
        for (what, validity, uids, checkpoint, known, expected) in cases {
            assert_eq!(
                imap_folder(validity, uids, checkpoint, &known, t(NOW)),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn graph_gaps_leave_recent_changes_and_the_runs_retries_alone() {
        let mark = t(NOW);
        let item = |id: &str, at: Option<&str>| ListedItem {
            id: id.to_owned(),
            last_modified: at.map(t),
        };
        let items = [
            item("old-decided", Some("2026-03-01T10:00:00Z")),
            item("old-lost", Some("2026-03-01T10:00:00Z")),
            item("settling", Some("2026-03-01T11:56:00Z")),
            item("just-before-the-settle-time", Some("2026-03-01T11:54:59Z")),
            item("at-the-settle-time", Some("2026-03-01T11:55:00Z")),
            item("no-time", None),
            item("retried-by-this-run", Some("2026-03-01T09:00:00Z")),
            item("retried-by-a-census", Some("2026-03-01T09:00:00Z")),
        ];
        let known: BTreeMap<String, Known> = [
            ("old-decided", Known::Decided),
            (
                "retried-by-this-run",
                Known::Retrying {
                    at: t("2026-03-01T12:00:03Z"),
                },
            ),
            (
                "retried-by-a-census",
                Known::Retrying {
                    at: t("2026-03-01T06:00:00Z"),
                },
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let g = graph_folder(&items, &known, mark);
        assert_eq!(g.missing, ["just-before-the-settle-time", "old-lost"]);
        assert_eq!(g.stuck, ["retried-by-a-census"]);
        assert_eq!(g.considered, 5);
        let all: Vec<&String> = g.to_backfill().collect();
        assert_eq!(all.len(), 3, "missing then stuck");
    }

    #[test]
    fn census_runs_every_interval_and_backs_off_after_failures() {
        let now = t(NOW);
        let (interval, retry) = (Duration::from_secs(6 * 3600), Duration::from_secs(300));
        let cases = [
            (0, 6 * 3600),
            (1, 300),
            (2, 600),
            (4, 2400),
            (8, 6 * 3600),
            (40, 6 * 3600),
        ];
        for (failures, secs) in cases {
            assert_eq!(
                (next_census(now, interval, retry, failures) - now).num_seconds(),
                secs,
                "after {failures} failures"
            );
        }
    }

    #[test]
    fn the_alert_says_how_many_where_and_what_was_done() {
        let cases = [
            (
                (1, 1),
                "found 1 message in the folder INBOX that had not been processed; it was back-filled",
            ),
            (
                (3, 3),
                "found 3 messages in the folder INBOX that had not been processed; all were back-filled",
            ),
            (
                (3, 1),
                "1 of them were back-filled through the normal processing, and 2 could not be yet",
            ),
        ];
        for ((missing, backfilled), expected) in cases {
            let text = alert_message("INBOX", missing, backfilled);
            assert!(text.contains(expected), "{text}");
        }
    }
}
