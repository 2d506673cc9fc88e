//! Mail received by the inbound SMTP/LMTP listener (the "email router" route): the
//! durable write that comes before the 250 reply, the processing worker's claims,
//! and the router mailboxes' addresses the listener accepts mail for.

use chrono::{DateTime, Utc};
use mailbridge_domain::ids::new_id;

use crate::{Db, Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

/// One accepted recipient of a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRecipient {
    pub org_id: String,
    pub mailbox_id: String,
    /// The RCPT TO address as given.
    pub recipient: String,
    pub tag: Option<String>,
}

/// A message as received, for all its accepted recipients.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedMessage<'a> {
    pub raw: &'a [u8],
    pub envelope_from: &'a str,
    pub client_address: &'a str,
    pub recipients: &'a [InboundRecipient],
}

/// What was written for one recipient of a received message (the bytes are
/// not copied back: a message may be large and have many recipients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundReceipt {
    pub id: String,
    pub mailbox_id: String,
    /// The message's number in the mailbox's router folder.
    pub seq: i64,
}

/// A stored row: one recipient of a received message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboundMessage {
    pub id: String,
    pub org_id: String,
    pub mailbox_id: String,
    /// The message's number in the mailbox's router folder.
    pub seq: i64,
    pub raw: Vec<u8>,
    pub envelope_from: String,
    pub recipient: String,
    pub tag: Option<String>,
    pub client_address: String,
    pub received_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// How the last error of a message held for its mailbox's approval begins (the
/// worker writes it; the counts and the admin view recognize it).
pub const HELD_PREFIX: &str = "held:";

/// Takes a mailbox's next sequence number (SQLite).
const NEXT_SEQ: &str =
    "INSERT INTO inbound_sequences (org_id, mailbox_id, last_seq) VALUES ($1, $2, 1)
    ON CONFLICT (org_id, mailbox_id) DO UPDATE SET last_seq = inbound_sequences.last_seq + 1
    RETURNING last_seq";

const COLUMNS: &str = "id, org_id, mailbox_id, seq, raw, envelope_from, recipient, tag,
    client_address, received_at, status, attempts, last_error";

impl Store {
    /// The router mailboxes' addresses: `(org id, mailbox id, address)`.
    pub async fn router_addresses(&self) -> StoreResult<Vec<(String, String, String)>> {
        let rows = with_db!(&self.db, p => sqlx::query_as(
            "SELECT org_id, id, email_address FROM mailboxes
             WHERE incoming_method = 'router' AND email_address IS NOT NULL
             ORDER BY org_id, id",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// The message size limit (`max_message_size_kb`) of every organization with a
    /// router mailbox: `(org id, limit in KB)`.
    pub async fn router_message_limits(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = with_db!(&self.db, p => sqlx::query_as(
            "SELECT s.org_id, s.max_message_size_kb FROM email_settings s
             WHERE EXISTS (SELECT 1 FROM mailboxes m
                           WHERE m.org_id = s.org_id AND m.incoming_method = 'router')
             ORDER BY s.org_id",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Writes a received message for all its recipients in one transaction (each
    /// recipient's row takes the next seq of its mailbox). Only after this returns
    /// may the client be told the message was accepted.
    pub async fn store_inbound_message(
        &self,
        m: &ReceivedMessage<'_>,
    ) -> StoreResult<Vec<InboundReceipt>> {
        let received_at = now();
        let mut seqs = Vec::with_capacity(m.recipients.len());
        let ids: Vec<String> = m.recipients.iter().map(|_| new_id()).collect();
        match &self.db {
            Db::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for (r, id) in m.recipients.iter().zip(&ids) {
                    // SQLite has one writer: the counter and the row in turn.
                    let (seq,): (i64,) = sqlx::query_as(NEXT_SEQ)
                        .bind(&r.org_id)
                        .bind(&r.mailbox_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO inbound_messages (id, org_id, mailbox_id, seq, raw, envelope_from,
                            recipient, tag, client_address, received_at, status, attempts)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0)",
                    )
                    .bind(id)
                    .bind(&r.org_id)
                    .bind(&r.mailbox_id)
                    .bind(seq)
                    .bind(m.raw)
                    .bind(m.envelope_from)
                    .bind(&r.recipient)
                    .bind(&r.tag)
                    .bind(m.client_address)
                    .bind(received_at)
                    .execute(&mut *tx)
                    .await?;
                    seqs.push(seq);
                }
                tx.commit().await?;
            }
            Db::Postgres(p) => {
                // One statement per recipient: the counter's upsert locks its row
                // (two messages for one mailbox never take the same seq) and feeds
                // the insert. One recipient needs no transaction of its own: one
                // round trip, committed when it returns.
                let one = |r: &InboundRecipient, id: &String| {
                    sqlx::query_scalar::<_, i64>(
                        "WITH next AS (
                             INSERT INTO inbound_sequences (org_id, mailbox_id, last_seq) VALUES ($2, $3, 1)
                             ON CONFLICT (org_id, mailbox_id)
                             DO UPDATE SET last_seq = inbound_sequences.last_seq + 1
                             RETURNING last_seq)
                         INSERT INTO inbound_messages (id, org_id, mailbox_id, seq, raw, envelope_from,
                             recipient, tag, client_address, received_at, status, attempts)
                         SELECT $1, $2, $3, next.last_seq, $4, $5, $6, $7, $8, $9, 'pending', 0 FROM next
                         RETURNING seq",
                    )
                    .bind(id.clone())
                    .bind(r.org_id.clone())
                    .bind(r.mailbox_id.clone())
                    .bind(m.raw)
                    .bind(m.envelope_from)
                    .bind(r.recipient.clone())
                    .bind(r.tag.clone())
                    .bind(m.client_address)
                    .bind(received_at)
                };
                if let ([r], [id]) = (m.recipients, &ids[..]) {
                    seqs.push(one(r, id).fetch_one(p).await?);
                } else {
                    let mut tx = p.begin().await?;
                    for (r, id) in m.recipients.iter().zip(&ids) {
                        seqs.push(one(r, id).fetch_one(&mut *tx).await?);
                    }
                    tx.commit().await?;
                }
            }
        }
        let stored = m
            .recipients
            .iter()
            .zip(ids)
            .zip(seqs)
            .map(|((r, id), seq)| InboundReceipt {
                id,
                mailbox_id: r.mailbox_id.clone(),
                seq,
            })
            .collect();
        Ok(stored)
    }

    /// Claims up to `limit` pending messages for `node_id` for `lease`, oldest
    /// first; a claim that outlived its node expires and is taken again. On
    /// PostgreSQL rows another node is claiming are skipped (`FOR UPDATE SKIP
    /// LOCKED`); SQLite has one writer. The candidates are a materialized CTE, so
    /// that PostgreSQL cannot re-run the `LIMIT` per row of the update.
    pub async fn claim_inbound_messages(
        &self,
        node_id: &str,
        lease: std::time::Duration,
        limit: i64,
    ) -> StoreResult<Vec<InboundMessage>> {
        let t = now();
        let until = t + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        let lock = match self.db {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "WITH due AS MATERIALIZED (
                 SELECT id FROM inbound_messages
                 WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $1)
                 ORDER BY received_at, seq LIMIT $4{lock})
             UPDATE inbound_messages SET claimed_until = $2, claimed_by = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM due)
               AND status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $1)
             RETURNING {COLUMNS}"
        ));
        let mut rows: Vec<InboundMessage> = with_db!(&self.db, p => sqlx::query_as(sql)
            .bind(t).bind(until).bind(node_id).bind(limit).fetch_all(p).await?);
        rows.sort_by(|a, b| {
            (a.received_at, &a.mailbox_id, a.seq).cmp(&(b.received_at, &b.mailbox_id, b.seq))
        });
        Ok(rows)
    }

    /// Marks a claimed message processed; false when the claim no longer held.
    pub async fn complete_inbound_message(&self, id: &str, node_id: &str) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE inbound_messages SET status = 'processed', processed_at = $3, claimed_until = NULL,
                claimed_by = NULL, last_error = NULL
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
        )
        .bind(id).bind(node_id).bind(now())
        .execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Gives a claimed message back after a failure: pending again (taken at the
    /// next claim) or, when `give_up`, failed for good; the error is kept.
    pub async fn release_inbound_message(
        &self,
        id: &str,
        node_id: &str,
        error: &str,
        give_up: bool,
    ) -> StoreResult<bool> {
        let status = if give_up { "failed" } else { "pending" };
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE inbound_messages SET status = $3, last_error = $4, claimed_until = NULL, claimed_by = NULL
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
        )
        .bind(id).bind(node_id).bind(status).bind(error)
        .execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// A mailbox's received messages, in seq order.
    pub async fn inbound_messages_of_mailbox(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<Vec<InboundMessage>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM inbound_messages WHERE org_id = $1 AND mailbox_id = $2 ORDER BY seq"
        ));
        let rows = with_db!(&self.db, p => sqlx::query_as(sql)
            .bind(org_id).bind(mailbox_id).fetch_all(p).await?);
        Ok(rows)
    }
}

impl Store {
    /// Gives claimed messages back to be taken again no sooner than `until` (a
    /// mailbox not approved yet, a message to retry later), keeping the reason.
    pub async fn defer_inbound_messages(
        &self,
        ids: &[String],
        node_id: &str,
        until: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<u64> {
        let mut n = 0;
        for id in ids {
            n += with_db!(&self.db, p => sqlx::query(
                "UPDATE inbound_messages SET claimed_until = $3, claimed_by = NULL, last_error = $4
                 WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
            )
            .bind(id).bind(node_id).bind(until).bind(reason)
            .execute(p).await?.rows_affected());
        }
        Ok(n)
    }

    /// Deletes up to `limit` processed messages received before `before` (their
    /// emails and decisions hold what was tracked; the raw copy is no longer
    /// needed). Failed and pending messages are kept. Returns how many went.
    pub async fn purge_processed_inbound_messages(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<u64> {
        let n = with_db!(&self.db, p => sqlx::query(
            "DELETE FROM inbound_messages WHERE id IN (
                 SELECT id FROM inbound_messages
                 WHERE status = 'processed' AND received_at < $1
                 ORDER BY received_at LIMIT $2)",
        )
        .bind(before).bind(limit)
        .execute(p).await?.rows_affected());
        Ok(n)
    }
}

/// A received message as an administrator sees it: everything but the raw bytes,
/// with their size and the first bytes (enough for the header) instead.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboundMessageSummary {
    pub id: String,
    pub org_id: String,
    pub mailbox_id: String,
    pub seq: i64,
    /// The size of the message as received, in bytes.
    pub size: i64,
    /// The first 8 KiB of the message: enough for the header (Subject, Message-ID).
    pub head: Vec<u8>,
    pub envelope_from: String,
    pub recipient: String,
    pub tag: Option<String>,
    pub client_address: String,
    pub received_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl crate::records::Record for InboundMessageSummary {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The summary columns; `length` and `substr` count bytes on a BLOB (SQLite) and a
/// BYTEA (PostgreSQL) alike.
const SUMMARY_SELECT: &str = "SELECT t.id, t.org_id, t.mailbox_id, t.seq,
        CAST(length(t.raw) AS BIGINT) AS size, substr(t.raw, 1, 8192) AS head, t.envelope_from,
        t.recipient, t.tag, t.client_address, t.received_at, t.status, t.attempts, t.last_error,
        t.processed_at
    FROM inbound_messages t";

/// A mailbox's received messages by status; `held` (also counted in `pending`)
/// are those waiting for the mailbox's approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct InboundCounts {
    pub pending: i64,
    pub held: i64,
    pub processed: i64,
    pub failed: i64,
}

impl Store {
    /// A mailbox's received messages without their bytes, newest first, paged by
    /// id (ids are UUID v7, so newest first is descending id); `status` filters
    /// on `pending`, `processed` or `failed`.
    pub async fn list_inbound_messages(
        &self,
        org_id: &str,
        mailbox_id: &str,
        status: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundMessageSummary>> {
        let mut filters = vec![Filter::Eq("t.mailbox_id", mailbox_id.to_owned())];
        if let Some(s) = status {
            filters.push(Filter::Eq("t.status", s.to_owned()));
        }
        self.list_records_newest_first(SUMMARY_SELECT, org_id, &filters, page)
            .await
    }

    /// One received message of a mailbox, without its bytes.
    pub async fn get_inbound_message(
        &self,
        org_id: &str,
        mailbox_id: &str,
        id: &str,
    ) -> StoreResult<InboundMessageSummary> {
        let page = self
            .list_records_newest_first::<InboundMessageSummary>(
                SUMMARY_SELECT,
                org_id,
                &[
                    Filter::Eq("t.mailbox_id", mailbox_id.to_owned()),
                    Filter::Eq("t.id", id.to_owned()),
                ],
                &PageRequest {
                    after: None,
                    limit: Some(1),
                },
            )
            .await?;
        page.items.into_iter().next().ok_or(StoreError::NotFound)
    }

    /// Sends a failed message through again: pending, unclaimed, with its attempts
    /// reset, and — in the same transaction — without the `failed` decision the
    /// worker recorded when it gave up, which would otherwise make the pipeline
    /// skip its UID as decided. False when the message is not (or no longer)
    /// failed; a decision with any other outcome is kept.
    pub async fn retry_inbound_message(
        &self,
        org_id: &str,
        mailbox_id: &str,
        id: &str,
    ) -> StoreResult<bool> {
        let changed = with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let seq: Option<i64> = sqlx::query_scalar(
                "UPDATE inbound_messages SET status = 'pending', attempts = 0, claimed_until = NULL,
                    claimed_by = NULL
                 WHERE org_id = $1 AND mailbox_id = $2 AND id = $3 AND status = 'failed'
                 RETURNING seq",
            )
            .bind(org_id)
            .bind(mailbox_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(seq) = seq {
                sqlx::query(
                    "DELETE FROM message_decisions
                     WHERE org_id = $1 AND mailbox_id = $2 AND folder = 'router' AND uidvalidity = 1
                       AND uid = $3 AND outcome = 'failed'",
                )
                .bind(org_id)
                .bind(mailbox_id)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            seq.is_some()
        });
        Ok(changed)
    }

    /// How many of a mailbox's received messages are in each status (held: the
    /// pending ones whose last error begins with [`HELD_PREFIX`]).
    pub async fn inbound_message_counts(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<InboundCounts> {
        let counts = with_db!(&self.db, p => sqlx::query_as(
            "SELECT
                COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
                COALESCE(SUM(CASE WHEN status = 'pending' AND last_error LIKE 'held:%' THEN 1 ELSE 0 END), 0) AS held,
                COALESCE(SUM(CASE WHEN status = 'processed' THEN 1 ELSE 0 END), 0) AS processed,
                COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed
             FROM inbound_messages WHERE org_id = $1 AND mailbox_id = $2",
        )
        .bind(org_id)
        .bind(mailbox_id)
        .fetch_one(p)
        .await?);
        Ok(counts)
    }
}
