//! The completeness census's side of the store: each mailbox's census schedule and
//! last result (`mailbox_census`), and what the decision trail knows of a
//! folder's messages, for the comparison with the server's set.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mailbridge_domain::census::Known;

use crate::{Store, StoreResult, now, with_db};

/// A mailbox's census: its schedule and the last result.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CensusState {
    pub next_census_at: DateTime<Utc>,
    pub last_census_at: Option<DateTime<Utc>>,
    pub census_gaps: i64,
    pub census_backfilled: i64,
    pub census_failures: i64,
    pub last_error: Option<String>,
}

/// A decision row as the census reads it.
fn known(outcome: &str, updated_at: DateTime<Utc>) -> Known {
    match outcome {
        "retrying" => Known::Retrying { at: updated_at },
        _ => Known::Decided,
    }
}

impl Store {
    /// The mailbox's census, once its row exists.
    pub async fn mailbox_census(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<Option<CensusState>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT next_census_at, last_census_at, census_gaps, census_backfilled, census_failures, last_error
             FROM mailbox_census WHERE org_id = $1 AND mailbox_id = $2",
        ).bind(org_id).bind(mailbox_id).fetch_optional(p).await?))
    }

    /// The mailbox's census when one is due at `now`. A mailbox seen for the
    /// first time gets its row, with its first census due at `first_at`. One
    /// read once the row exists (this runs after every successful incoming run).
    pub async fn census_due(
        &self,
        org_id: &str,
        mailbox_id: &str,
        now: DateTime<Utc>,
        first_at: DateTime<Utc>,
    ) -> StoreResult<Option<CensusState>> {
        if let Some(state) = self.mailbox_census(org_id, mailbox_id).await? {
            return Ok((state.next_census_at <= now).then_some(state));
        }
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO mailbox_census (org_id, mailbox_id, next_census_at, census_gaps, census_backfilled,
                census_failures, updated_at)
             VALUES ($1, $2, $3, 0, 0, 0, $4)
             ON CONFLICT (org_id, mailbox_id) DO NOTHING",
        ).bind(org_id).bind(mailbox_id).bind(first_at).bind(crate::now()).execute(p).await?.rows_affected());
        Ok(self
            .mailbox_census(org_id, mailbox_id)
            .await?
            .filter(|c| c.next_census_at <= now))
    }

    /// Makes the mailbox's census due at `at` (its next incoming run does it
    /// then), e.g. at an administrator's request.
    pub async fn request_census(
        &self,
        org_id: &str,
        mailbox_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO mailbox_census (org_id, mailbox_id, next_census_at, census_gaps, census_backfilled,
                census_failures, updated_at)
             VALUES ($1, $2, $3, 0, 0, 0, $4)
             ON CONFLICT (org_id, mailbox_id) DO UPDATE SET next_census_at = $3, updated_at = $4",
        ).bind(org_id).bind(mailbox_id).bind(at).bind(now()).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Records a successful census: its time, what it found and back-filled, and
    /// when the next one is due.
    pub async fn census_finished(
        &self,
        org_id: &str,
        mailbox_id: &str,
        gaps: i64,
        backfilled: i64,
        next_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailbox_census SET last_census_at = $3, census_gaps = $4, census_backfilled = $5,
                census_failures = 0, last_error = NULL, next_census_at = $6, updated_at = $3
             WHERE org_id = $1 AND mailbox_id = $2",
        ).bind(org_id).bind(mailbox_id).bind(t).bind(gaps).bind(backfilled).bind(next_at)
        .execute(p).await?.rows_affected());
        Ok(())
    }

    /// Records a failed census (the last result stays) and when to try again.
    pub async fn census_failed(
        &self,
        org_id: &str,
        mailbox_id: &str,
        error: &str,
        next_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailbox_census SET census_failures = census_failures + 1, last_error = $3,
                next_census_at = $4, updated_at = $5
             WHERE org_id = $1 AND mailbox_id = $2",
        ).bind(org_id).bind(mailbox_id).bind(error).bind(next_at).bind(now())
        .execute(p).await?.rows_affected());
        Ok(())
    }

    /// What the decision trail knows of a folder's UIDs up to `up_to` under
    /// `uidvalidity`.
    pub async fn census_known_uids(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        up_to: u32,
    ) -> StoreResult<BTreeMap<u32, Known>> {
        let rows: Vec<(i64, String, DateTime<Utc>)> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT uid, outcome, updated_at FROM message_decisions
             WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3 AND uidvalidity = $4 AND uid <= $5",
        ).bind(org_id).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(i64::from(up_to))
        .fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .filter_map(|(uid, outcome, at)| Some((u32::try_from(uid).ok()?, known(&outcome, at))))
            .collect())
    }

    /// What the decision trail knows of an Exchange Online folder's items, by
    /// item id (an item mapped to a UID without a decision is not known).
    pub async fn census_known_items(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> StoreResult<BTreeMap<String, Known>> {
        let rows: Vec<(String, String, DateTime<Utc>)> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT g.item_id, d.outcome, d.updated_at FROM graph_items g
             JOIN message_decisions d ON d.mailbox_id = g.mailbox_id AND d.folder = g.folder AND d.uid = g.uid
             WHERE d.org_id = $1 AND g.mailbox_id = $2 AND g.folder = $3 AND d.uidvalidity = $4",
        ).bind(org_id).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(id, outcome, at)| (id, known(&outcome, at)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use mailbridge_domain::{Role, TrackingFilter};

    use super::*;
    use crate::{Cipher, IngestWrite, NewUser};

    #[tokio::test]
    async fn census_state_and_known_messages_on_sqlite() {
        census_state_and_known_messages(false).await
    }

    #[tokio::test]
    async fn census_state_and_known_messages_on_postgres() {
        census_state_and_known_messages(true).await
    }

    fn skipped(org: &str, mailbox: &str, folder: &str, uidvalidity: u32, uid: u32) -> IngestWrite {
        IngestWrite {
            org_id: org.to_owned(),
            mailbox_id: mailbox.to_owned(),
            folder: folder.to_owned(),
            uidvalidity,
            uid,
            message_id: None,
            subject: None,
            from_address: None,
            received_at: None,
            outcome: "skipped",
            rule: "filter",
            reason: "a test".to_owned(),
            correlation_method: None,
            correlated_email_id: None,
            email: None,
            link_to: None,
            checkpoint: Some(uid),
        }
    }

    /// The schedule (first census one interval away, due, finished, failed) and
    /// the decisions the comparison reads, on IMAP and Graph folders.
    async fn census_state_and_known_messages(postgres: bool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match postgres {
            false => dir.path().join("census.db").display().to_string(),
            true => mailbridge_testkit::fresh_postgres_url().await,
        };
        let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
        let store = Store::open(&url, cipher).await.expect("store opens");
        let org = store
            .create_organization("Contoso", None)
            .await
            .expect("org")
            .id;
        let user = NewUser {
            full_name: "Alice".to_owned(),
            email: Some("alice@contoso.com".to_owned()),
            role: Role::User,
            tracking_filter: TrackingFilter::None,
        };
        let mb = store
            .create_user(&org, user)
            .await
            .expect("user")
            .mailbox_id;
        let (org, mb) = (org.as_str(), mb.as_str());

        let t0 = now();
        let first = t0 + Duration::hours(6);
        assert_eq!(store.mailbox_census(org, mb).await.expect("read"), None);
        assert_eq!(
            store.census_due(org, mb, t0, first).await.expect("due"),
            None,
            "the first census is one interval away"
        );
        let state = store.mailbox_census(org, mb).await.expect("read");
        assert_eq!(state.map(|s| s.next_census_at), Some(first));
        assert_eq!(
            store
                .census_due(org, mb, t0, t0)
                .await
                .expect("due")
                .map(|s| s.next_census_at),
            None,
            "a second sight keeps the schedule"
        );
        store.request_census(org, mb, t0).await.expect("request");
        let due = store.census_due(org, mb, t0, first).await.expect("due");
        assert!(due.is_some_and(|s| s.last_census_at.is_none()));

        store
            .census_failed(org, mb, "the server went away", t0)
            .await
            .expect("failed");
        store
            .census_failed(org, mb, "the server went away again", t0)
            .await
            .expect("failed");
        let failed = store.mailbox_census(org, mb).await.expect("read").unwrap();
        assert_eq!(failed.census_failures, 2);
        assert_eq!(
            failed.last_error.as_deref(),
            Some("the server went away again")
        );

        store
            .census_finished(org, mb, 3, 2, first)
            .await
            .expect("finished");
        let done = store.mailbox_census(org, mb).await.expect("read").unwrap();
        assert_eq!(
            (
                done.census_gaps,
                done.census_backfilled,
                done.census_failures
            ),
            (3, 2, 0)
        );
        assert!(done.last_census_at.is_some_and(|t| t >= t0));
        assert_eq!(done.last_error, None);
        assert_eq!(store.census_due(org, mb, t0, t0).await.expect("due"), None);

        // IMAP: decisions up to the mark, under one UIDVALIDITY only.
        store.reset_folder(mb, "INBOX", 7).await.expect("folder");
        let writes = [
            skipped(org, mb, "INBOX", 7, 1),
            skipped(org, mb, "INBOX", 7, 3),
            skipped(org, mb, "INBOX", 7, 9),
            skipped(org, mb, "INBOX", 6, 2),
            skipped(org, mb, "Sent", 7, 2),
        ];
        store.ingest_batch(&writes).await.expect("ingest");
        store
            .record_item_failure(
                org, mb, "INBOX", 7, 4, None, None, "retrying", "broken", true,
            )
            .await
            .expect("failure");
        let k = store
            .census_known_uids(org, mb, "INBOX", 7, 5)
            .await
            .expect("known");
        assert_eq!(k.keys().copied().collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(k[&1], Known::Decided);
        assert!(matches!(k[&4], Known::Retrying { at } if at >= t0));

        // Graph: by item id, only items with a decision.
        let uids = store
            .graph_uids(mb, "Inbox", &["a".to_owned(), "b".to_owned()])
            .await
            .expect("uids");
        store.reset_folder(mb, "Inbox", 1).await.expect("folder");
        store
            .ingest_batch(&[skipped(org, mb, "Inbox", 1, uids[0])])
            .await
            .expect("ingest");
        let items = store
            .census_known_items(org, mb, "Inbox", 1)
            .await
            .expect("items");
        assert_eq!(items.keys().cloned().collect::<Vec<_>>(), ["a"]);
    }
}
