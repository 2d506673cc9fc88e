//! Reading new messages of the selected folder by UID, without setting `\Seen`.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use mailbridge_domain::error_model::SyncError;

use super::{FetchedMessage, ImapSession};

/// What each message is fetched with; `BODY.PEEK[]` leaves `\Seen` alone.
const FETCH_ITEMS: &str = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])";

/// A UID set for IMAP from sorted, distinct UIDs: runs become ranges (`3:5,9`).
pub(super) fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// `QUIRK_UID_RANGE_LAST`: keeps UIDs above `after`, ascending, distinct.
pub(super) fn uids_above(uids: impl IntoIterator<Item = u32>, after: u32) -> Vec<u32> {
    let mut kept: Vec<u32> = uids.into_iter().filter(|&uid| uid > after).collect();
    kept.sort_unstable();
    kept.dedup();
    kept
}

fn flag_name(flag: &async_imap::types::Flag<'_>) -> String {
    use async_imap::types::Flag;
    match flag {
        Flag::Seen => "\\Seen".to_owned(),
        Flag::Answered => "\\Answered".to_owned(),
        Flag::Flagged => "\\Flagged".to_owned(),
        Flag::Deleted => "\\Deleted".to_owned(),
        Flag::Draft => "\\Draft".to_owned(),
        Flag::Recent => "\\Recent".to_owned(),
        Flag::MayCreate => "\\*".to_owned(),
        Flag::Custom(name) => name.to_string(),
    }
}

impl ImapSession {
    /// The UIDs of the selected folder above `after_uid`, ascending: a cheap check
    /// for new mail.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn uids_after(&mut self, after_uid: u32) -> Result<Vec<u32>, SyncError> {
        let Some(first) = after_uid.checked_add(1) else {
            return Ok(Vec::new());
        };
        // What arrives while the search runs is reported again by the next IDLE.
        self.changed = false;
        let timeout = self.timeout;
        let query = format!("UID {first}:*");
        let result = tokio::time::timeout(timeout, self.session.uid_search(&query)).await;
        let uids = self.finish(&format!("UID SEARCH {query}"), result)?;
        Ok(uids_above(uids, after_uid))
    }

    /// The UIDs up to `up_to_uid` of the selected folder that carry any of
    /// `keywords` (matched by the server, as IMAP keywords are), ascending: how a
    /// message tagged by hand after it arrived is found again. `changed_since` is
    /// the caller's last HIGHESTMODSEQ (see `QUIRK_SEARCH_MODSEQ` for why it does
    /// not narrow the search yet).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn uids_with_keywords(
        &mut self,
        keywords: &[&str],
        up_to_uid: u32,
        changed_since: Option<u64>,
    ) -> Result<Vec<u32>, SyncError> {
        let keywords: Vec<&str> = keywords
            .iter()
            .copied()
            .filter(|k| super::store::valid_flag(k) && !k.starts_with('\\'))
            .collect();
        if keywords.is_empty() || up_to_uid == 0 {
            return Ok(Vec::new());
        }
        // OR is binary in IMAP SEARCH: OR k1 OR k2 k3 ...
        let mut query = format!("KEYWORD {}", keywords[keywords.len() - 1]);
        for k in keywords[..keywords.len() - 1].iter().rev() {
            query = format!("OR KEYWORD {k} {query}");
        }
        // QUIRK_SEARCH_MODSEQ: async-imap cannot parse the `(MODSEQ n)` that a
        // CONDSTORE server appends to a SEARCH answer, so the MODSEQ criterion is
        // not sent; callers skip the search when HIGHESTMODSEQ did not move.
        let _ = changed_since;
        let query = format!("UID 1:{up_to_uid} {query}");
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.session.uid_search(&query)).await;
        let uids = self.finish(&format!("UID SEARCH {query}"), result)?;
        let mut uids: Vec<u32> = uids.into_iter().filter(|&u| u <= up_to_uid).collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The UIDs of the selected folder's messages whose `header` contains `value`
    /// (`UID SEARCH HEADER`), e.g. a Message-ID, ascending.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn uids_with_header(
        &mut self,
        header: &str,
        value: &str,
    ) -> Result<Vec<u32>, SyncError> {
        // A quoted string may hold neither quotes nor backslashes unescaped; a
        // Message-ID never needs them, so they are dropped rather than escaped.
        let value: String = value
            .chars()
            .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n'))
            .collect();
        let header: String = header
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let query = format!("HEADER {header} \"{value}\"");
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.session.uid_search(&query)).await;
        let uids = self.finish(&format!("UID SEARCH {query}"), result)?;
        let mut uids: Vec<u32> = uids.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The selected folder's messages with UID above `after_uid`, ascending by UID,
    /// at most `max`, with their exact bytes (`BODY.PEEK[]`: `\Seen` is never set),
    /// flags, INTERNALDATE and size.
    ///
    /// The UIDs are searched first so that only `max` messages cross the wire; the
    /// timeout bounds each message, not the whole batch.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn fetch_after(
        &mut self,
        after_uid: u32,
        max: usize,
    ) -> Result<Vec<FetchedMessage>, SyncError> {
        let mut uids = self.uids_after(after_uid).await?;
        uids.truncate(max);
        self.fetch_uids(&uids).await
    }

    /// The messages of the selected folder with these UIDs (sorted, distinct),
    /// fetched like [`ImapSession::fetch_after`]; UIDs no longer there are absent.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn fetch_uids(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, SyncError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let what = format!("UID FETCH {set}");
        let timeout = self.timeout;
        let mut fetched = BTreeMap::new();
        let mut failure = None;
        {
            let started =
                tokio::time::timeout(timeout, self.session.uid_fetch(&set, FETCH_ITEMS)).await;
            match started {
                Err(elapsed) => failure = Some(Err(elapsed)),
                Ok(Err(e)) => failure = Some(Ok(Err(e))),
                Ok(Ok(mut stream)) => loop {
                    match tokio::time::timeout(timeout, stream.next()).await {
                        Err(elapsed) => {
                            failure = Some(Err(elapsed));
                            break;
                        }
                        Ok(None) => break,
                        Ok(Some(Err(e))) => {
                            failure = Some(Ok(Err(e)));
                            break;
                        }
                        Ok(Some(Ok(fetch))) => {
                            // Unsolicited FETCH responses (flag changes by others)
                            // carry no body; messages not asked for are skipped.
                            let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) else {
                                continue;
                            };
                            if uids.binary_search(&uid).is_err() {
                                continue;
                            }
                            fetched.insert(
                                uid,
                                FetchedMessage {
                                    uid,
                                    flags: fetch.flags().map(|f| flag_name(&f)).collect(),
                                    internal_date: fetch
                                        .internal_date()
                                        .map(|d| d.with_timezone(&chrono::Utc)),
                                    size: fetch.size.unwrap_or(body.len() as u32),
                                    bytes: body.to_vec(),
                                },
                            );
                        }
                    }
                },
            }
        }
        if let Some(failure) = failure {
            self.finish::<()>(&what, failure)?;
        }
        self.drain_unsolicited();
        Ok(fetched.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        let cases: [(&[u32], &str); 5] = [
            (&[], ""),
            (&[7], "7"),
            (&[1, 2, 3], "1:3"),
            (&[1, 2, 3, 5, 8, 9], "1:3,5,8:9"),
            (&[4294967294, 4294967295], "4294967294:4294967295"),
        ];
        for (uids, expected) in cases {
            assert_eq!(uid_set(uids), expected, "{uids:?}");
        }
    }

    #[test]
    fn uid_range_last_quirk_is_filtered() {
        // `UID SEARCH UID 11:*` on a folder whose highest UID is 10 answers 10.
        let cases: [(&[u32], u32, &[u32]); 4] = [
            (&[10], 10, &[]),
            (&[12, 11, 13], 10, &[11, 12, 13]),
            (&[5, 11, 11], 10, &[11]),
            (&[], 0, &[]),
        ];
        for (uids, after, expected) in cases {
            assert_eq!(
                uids_above(uids.iter().copied(), after),
                expected,
                "{uids:?} > {after}"
            );
        }
    }
}
