//! The outgoing queue: emails in `pending_send` are sent by the engine as their
//! mailbox; `sending` marks one in flight, so a crash leaves a trace to check.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mailbridge_domain::activity::{Email, EmailParty};
use sqlx::QueryBuilder;

use mailbridge_domain::WebhookEventType;

use crate::webhooks::events::{NewEvent, emit_events};
use crate::{Backend, Db, Store, StoreError, StoreResult, now, with_db};

/// An email to send, with what the API does not show.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub email: Email,
    pub body_html: Option<String>,
    pub send_attempts: i64,
    /// When it was claimed (its `updated_at` since): releasing it checks this.
    pub claimed_at: DateTime<Utc>,
}

/// The email model's columns.
const EMAIL_COLUMNS: &str = "id, org_id, subject, body, direction, status, message_id, in_reply_to,
    tracking_token, correlation_method, regarding_type, regarding_id, mailbox_id, status_reason,
    sent_at, received_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    email: Email,
    body_html: Option<String>,
    send_attempts: i64,
}

#[derive(sqlx::FromRow)]
struct PartyRow {
    email_id: String,
    #[sqlx(flatten)]
    party: EmailParty,
}

impl Store {
    /// The next `(number, counter)` for a mailbox's tracking tokens: the mailbox's
    /// number in its organization (assigned on first use) and its next counter.
    pub async fn take_token_numbers(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<(i64, i64)> {
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE mailboxes SET token_number = (SELECT COALESCE(MAX(token_number), 0) + 1 FROM mailboxes WHERE org_id = $1)
                 WHERE org_id = $1 AND id = $2 AND token_number IS NULL",
            ).bind(org_id).bind(mailbox_id).execute(&mut *tx).await?;
            let row: Option<(i64, i64)> = sqlx::query_as(
                "UPDATE mailboxes SET token_counter = token_counter + 1 WHERE org_id = $1 AND id = $2
                 RETURNING token_number, token_counter",
            ).bind(org_id).bind(mailbox_id).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            row.ok_or(StoreError::NotFound)
        })
    }

    /// Puts a draft in the queue with its generated Message-ID and final subject.
    pub async fn queue_for_sending(
        &self,
        org_id: &str,
        email_id: &str,
        message_id: &str,
        subject: &str,
        token: Option<&str>,
    ) -> StoreResult<()> {
        let t = now();
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE emails SET status = 'pending_send', message_id = $3, subject = $4, tracking_token = $5,
                send_attempts = 0, next_attempt_at = NULL, status_reason = NULL, updated_at = $6
             WHERE org_id = $1 AND id = $2 AND status IN ('draft', 'failed')",
        ).bind(org_id).bind(email_id).bind(message_id).bind(subject).bind(token).bind(t).execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::conflict(
                Some("status"),
                "only a draft or a failed email can be sent",
            ));
        }
        Ok(())
    }

    /// Claims up to `limit` of a mailbox's emails due at `at`, oldest first: each
    /// moves from `pending_send` to `sending` in one statement and is returned once,
    /// with its parties and HTML body. On PostgreSQL rows another claim holds are
    /// skipped (`FOR UPDATE SKIP LOCKED`); SQLite runs one writer at a time.
    pub async fn claim_outgoing(
        &self,
        org_id: &str,
        mailbox_id: &str,
        at: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutgoingEmail>> {
        let claimed_at = now();
        let lock = match self.db {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        // The claim is chosen once, in a materialized CTE: as an `IN (subquery)`
        // PostgreSQL may run the subquery again for each row and claim past `limit`.
        let sql = sqlx::AssertSqlSafe(format!(
            "WITH due AS MATERIALIZED (
                SELECT id FROM emails
                WHERE org_id = $1 AND mailbox_id = $2 AND status = 'pending_send'
                  AND (next_attempt_at IS NULL OR next_attempt_at <= $3)
                ORDER BY id LIMIT $5{lock})
             UPDATE emails SET status = 'sending', updated_at = $4
             WHERE org_id = $1 AND status = 'pending_send' AND id IN (SELECT id FROM due)
             RETURNING {EMAIL_COLUMNS}, body_html, send_attempts"
        ));
        let mut rows: Vec<ClaimedRow> = with_db!(&self.db, p => sqlx::query_as(sql)
            .bind(org_id).bind(mailbox_id).bind(at).bind(claimed_at).bind(limit)
            .fetch_all(p).await?);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // RETURNING keeps no order.
        rows.sort_by(|a, b| a.email.id.cmp(&b.email.id));
        let parties: Vec<PartyRow> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(
                "SELECT email_id, role, address, party_type, party_id FROM email_parties WHERE email_id IN (",
            );
            let mut ids = qb.separated(", ");
            for r in &rows {
                ids.push_bind(r.email.id.clone());
            }
            qb.push(") ORDER BY email_id, position");
            qb.build_query_as::<PartyRow>().fetch_all(p).await?
        });
        let mut by_email: HashMap<String, Vec<EmailParty>> = HashMap::new();
        for row in parties {
            by_email.entry(row.email_id).or_default().push(row.party);
        }
        Ok(rows
            .into_iter()
            .map(|mut r| {
                r.email.parties = by_email.remove(&r.email.id).unwrap_or_default();
                OutgoingEmail {
                    email: r.email,
                    body_html: r.body_html,
                    send_attempts: r.send_attempts,
                    claimed_at,
                }
            })
            .collect())
    }

    /// Puts claimed emails that were not handed to the SMTP server back in the
    /// queue. Only those still in the claim of `claimed_at` move: an email another
    /// run has since recovered or claimed again is left alone. Returns how many moved.
    pub async fn release_outgoing(
        &self,
        org_id: &str,
        email_ids: &[String],
        claimed_at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut released = 0;
        let t = now();
        with_db!(&self.db, p => {
            for chunk in email_ids.chunks(500) {
                let mut qb = QueryBuilder::new("UPDATE emails SET status = 'pending_send', updated_at = ");
                qb.push_bind(t);
                qb.push(" WHERE org_id = ").push_bind(org_id.to_owned());
                qb.push(" AND status = 'sending' AND updated_at = ").push_bind(claimed_at);
                qb.push(" AND id IN (");
                let mut ids = qb.separated(", ");
                for id in chunk {
                    ids.push_bind(id.clone());
                }
                qb.push(")");
                released += qb.build().execute(p).await?.rows_affected();
            }
        });
        Ok(released)
    }

    /// Emails of a mailbox left in `sending` (a stop during the send).
    pub async fn in_flight(&self, mailbox_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT org_id, id FROM emails WHERE mailbox_id = $1 AND status = 'sending' ORDER BY id",
        ).bind(mailbox_id).fetch_all(p).await?))
    }

    /// Moves an email from `from` to `to` status; false when it was not in `from`.
    pub async fn transition_email(
        &self,
        email_id: &str,
        from: &str,
        to: &str,
    ) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE emails SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
        ).bind(email_id).bind(from).bind(to).bind(now()).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Marks an email sent, with its `email.sent` event (once: an email already
    /// sent is left as it is).
    pub async fn mark_sent(&self, email_id: &str, sent_at: DateTime<Utc>) -> StoreResult<()> {
        self.finish_send(
            email_id,
            WebhookEventType::EmailSent,
            "UPDATE emails SET status = 'sent', sent_at = $2, status_reason = $3, updated_at = $2
             WHERE id = $1 AND status <> 'sent'",
            sent_at,
            None,
        )
        .await
    }

    /// A transient failure: back to the queue until `next_attempt_at`.
    pub async fn mark_send_retry(
        &self,
        email_id: &str,
        next_attempt_at: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE emails SET status = 'pending_send', send_attempts = send_attempts + 1, next_attempt_at = $2,
                status_reason = $3, updated_at = $4 WHERE id = $1",
        ).bind(email_id).bind(next_attempt_at).bind(reason).bind(now()).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Gives up sending an email, with its `email.failed` event.
    pub async fn mark_send_failed(&self, email_id: &str, reason: &str) -> StoreResult<()> {
        self.finish_send(
            email_id,
            WebhookEventType::EmailFailed,
            "UPDATE emails SET status = 'failed', send_attempts = send_attempts + 1, status_reason = $3,
                updated_at = $2
             WHERE id = $1 AND status <> 'failed'",
            now(),
            Some(reason),
        )
        .await
    }

    /// Runs the final update of a send (`$1` id, `$2` time, `$3` reason) and
    /// writes the event of the email it changed in the same transaction.
    async fn finish_send(
        &self,
        email_id: &str,
        event: WebhookEventType,
        update: &'static str,
        at: DateTime<Utc>,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(format!("{update} RETURNING {EMAIL_COLUMNS}"));
        let postgres = self.backend() == Backend::Postgres;
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let changed: Option<Email> = sqlx::query_as(sql)
                .bind(email_id).bind(at).bind(reason).fetch_optional(&mut *tx).await?;
            if let Some(email) = changed {
                emit_events!(&mut *tx, &[NewEvent::email(event, &email, at)], postgres);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The HTML bodies of these emails, by id, in one query.
    pub async fn email_bodies_html(
        &self,
        email_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, String>> {
        if email_ids.is_empty() {
            return Ok(Default::default());
        }
        let rows: Vec<(String, String)> = with_db!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new("SELECT id, body_html FROM emails WHERE body_html IS NOT NULL AND id IN (");
            let mut sep = qb.separated(", ");
            for id in email_ids {
                sep.push_bind(id.clone());
            }
            qb.push(")");
            qb.build_query_as::<(String, String)>().fetch_all(p).await?
        });
        Ok(rows.into_iter().collect())
    }

    pub async fn set_email_body_html(&self, email_id: &str, html: Option<&str>) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query("UPDATE emails SET body_html = $2 WHERE id = $1")
            .bind(email_id).bind(html).execute(p).await?.rows_affected());
        Ok(())
    }
}
