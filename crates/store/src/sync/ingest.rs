//! The ingest transaction: the email (or the link to the existing one), its
//! parties and attachments, the decision, and the folder checkpoint are written
//! together, and writing the same message twice is a no-op — so a crash at any
//! point neither loses nor duplicates an email.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use mailbridge_domain::PartyType;
use mailbridge_domain::activity::Email;
use mailbridge_domain::ingest::Candidate;
use sqlx::QueryBuilder;

use crate::{Store, StoreResult, now, with_db};

/// An attachment as listed with its email (never its content).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AttachmentInfo {
    #[serde(skip)]
    pub email_id: String,
    pub file_name: Option<String>,
    pub content_type: String,
    pub size: i64,
    /// False when it was over the organization's size limit: recorded, not stored.
    pub stored: bool,
}

/// What a batch of messages asks the store about.
#[derive(Debug, Clone, Default)]
pub struct LookupKeys {
    /// Their own Message-IDs and those they refer to.
    pub message_ids: BTreeSet<String>,
    pub fingerprints: BTreeSet<String>,
    pub tokens: BTreeSet<String>,
    pub conversation_keys: BTreeSet<String>,
    /// Normalized subjects, when similarity correlation is on.
    pub subjects: BTreeSet<String>,
    pub addresses: BTreeSet<String>,
}

/// The answers for a batch, from which each message's [`Lookups`] are taken.
#[derive(Debug, Clone, Default)]
pub struct BatchLookups {
    pub by_message_id: BTreeMap<String, String>,
    pub by_fingerprint: BTreeMap<String, String>,
    pub by_token: BTreeMap<String, String>,
    pub by_conversation: BTreeMap<String, String>,
    pub similar: BTreeMap<String, Vec<(String, Vec<String>)>>,
    pub candidates: BTreeMap<String, Vec<Candidate>>,
}

/// What the store knows that the decisions of one message need.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    pub by_message_id: BTreeMap<String, String>,
    pub by_token: Option<String>,
    pub by_conversation: Option<String>,
    pub similar: Vec<(String, Vec<String>)>,
    /// The email already holding this Message-ID or fingerprint.
    pub existing: Option<String>,
    /// Records whose address equals each of the message's addresses.
    pub candidates: BTreeMap<String, Vec<Candidate>>,
}

/// An attachment to store, or to record as over the size limit.
#[derive(Debug, Clone)]
pub struct AttachmentWrite {
    pub file_name: Option<String>,
    pub content_type: String,
    pub size: i64,
    /// `None` when over the organization's limit: recorded, not stored.
    pub content: Option<Vec<u8>>,
}

/// A new incoming (or sent-items) email.
#[derive(Debug, Clone)]
pub struct NewIncomingEmail {
    pub email: Email,
    pub references_header: Option<String>,
    pub conversation_key: Option<String>,
    pub normalized_subject: String,
    pub body_html: Option<String>,
    pub fingerprint: Option<String>,
    pub correlated_email_id: Option<String>,
    pub attachments: Vec<AttachmentWrite>,
}

/// Everything one processed message writes.
#[derive(Debug, Clone)]
pub struct IngestWrite {
    pub org_id: String,
    pub mailbox_id: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub from_address: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub outcome: &'static str,
    pub rule: &'static str,
    pub reason: String,
    pub correlation_method: Option<&'static str>,
    pub correlated_email_id: Option<String>,
    /// A new email to create (outcome `tracked`).
    pub email: Option<NewIncomingEmail>,
    /// The existing email to link this mailbox to (outcome `linked`).
    pub link_to: Option<String>,
    /// The folder checkpoint to advance to, when every earlier UID is done.
    pub checkpoint: Option<u32>,
}

impl Store {
    /// The look-ups for a whole batch of messages, in a handful of queries.
    pub async fn batch_lookups(
        &self,
        org_id: &str,
        keys: &LookupKeys,
    ) -> StoreResult<BatchLookups> {
        let mut l = BatchLookups::default();
        let org = org_id.to_owned();
        let ids: Vec<String> = keys.message_ids.iter().cloned().collect();
        let prints: Vec<String> = keys.fingerprints.iter().cloned().collect();
        let tokens: Vec<String> = keys.tokens.iter().cloned().collect();
        let convs: Vec<String> = keys.conversation_keys.iter().cloned().collect();
        let subjects: Vec<String> = keys.subjects.iter().cloned().collect();
        let addresses: Vec<String> = keys.addresses.iter().cloned().collect();
        with_db!(&self.db, p => {
            for chunk in ids.chunks(500) {
                let mut qb = QueryBuilder::new("SELECT message_id, id FROM emails WHERE org_id = ");
                qb.push_bind(org.clone());
                push_in(&mut qb, "message_id", chunk);
                let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(p).await?;
                l.by_message_id.extend(rows);
            }
            for chunk in prints.chunks(500) {
                let mut qb = QueryBuilder::new("SELECT fingerprint, id FROM emails WHERE org_id = ");
                qb.push_bind(org.clone());
                push_in(&mut qb, "fingerprint", chunk);
                let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(p).await?;
                l.by_fingerprint.extend(rows);
            }
            for chunk in tokens.chunks(500) {
                let mut qb = QueryBuilder::new("SELECT tracking_token, MIN(id) FROM emails WHERE org_id = ");
                qb.push_bind(org.clone());
                push_in(&mut qb, "tracking_token", chunk);
                qb.push(" GROUP BY tracking_token");
                let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(p).await?;
                l.by_token.extend(rows);
            }
            for chunk in convs.chunks(500) {
                let mut qb = QueryBuilder::new("SELECT conversation_key, MAX(id) FROM emails WHERE org_id = ");
                qb.push_bind(org.clone());
                push_in(&mut qb, "conversation_key", chunk);
                qb.push(" GROUP BY conversation_key");
                let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(p).await?;
                l.by_conversation.extend(rows);
            }
            for chunk in subjects.chunks(200) {
                let mut qb = QueryBuilder::new("SELECT normalized_subject, id FROM emails WHERE org_id = ");
                qb.push_bind(org.clone());
                push_in(&mut qb, "normalized_subject", chunk);
                qb.push(" ORDER BY id DESC");
                let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(p).await?;
                for (subject, id) in rows {
                    let list = l.similar.entry(subject).or_default();
                    if list.len() < 20 {
                        let addrs: Vec<String> = sqlx::query_scalar("SELECT lower(address) FROM email_parties WHERE email_id = $1")
                            .bind(&id).fetch_all(p).await?;
                        list.push((id, addrs));
                    }
                }
            }
            for chunk in addresses.chunks(300) {
                let mut qb = QueryBuilder::new(
                    "SELECT 'user' AS kind, id, lower(email) AS address FROM users WHERE disabled = FALSE AND org_id = ",
                );
                qb.push_bind(org.clone());
                push_in(&mut qb, "lower(email)", chunk);
                qb.push(" UNION ALL SELECT 'queue', id, lower(email) FROM queues WHERE org_id = ").push_bind(org.clone());
                push_in(&mut qb, "lower(email)", chunk);
                qb.push(" UNION ALL SELECT kind, id, lower(email) FROM parties WHERE active = TRUE AND org_id = ").push_bind(org.clone());
                push_in(&mut qb, "lower(email)", chunk);
                let rows: Vec<(String, String, String)> = qb.build_query_as().fetch_all(p).await?;
                for (kind, id, address) in rows {
                    let party_type = match kind.as_str() {
                        "user" => PartyType::User,
                        "queue" => PartyType::Queue,
                        "contact" => PartyType::Contact,
                        "account" => PartyType::Account,
                        _ => PartyType::Lead,
                    };
                    l.candidates.entry(address).or_default().push(Candidate { party_type, id });
                }
            }
        });
        Ok(l)
    }

    /// The attachments of these emails, by email id, in one query.
    pub async fn attachments_for_emails(
        &self,
        email_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<AttachmentInfo>>> {
        let mut out: std::collections::HashMap<String, Vec<AttachmentInfo>> = Default::default();
        if email_ids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<AttachmentInfo> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(
                "SELECT email_id, file_name, content_type, size, stored FROM email_attachments WHERE email_id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in email_ids {
                sep.push_bind(id.clone());
            }
            qb.push(") ORDER BY email_id, position");
            qb.build_query_as::<AttachmentInfo>().fetch_all(p).await?
        });
        for a in rows {
            out.entry(a.email_id.clone()).or_default().push(a);
        }
        Ok(out)
    }

    /// The UIDs of a folder at or after `from_uid` that already have a final
    /// decision (anything but `retrying`), so a resumed sync skips them.
    pub async fn decided_uids(
        &self,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        from_uid: u32,
    ) -> StoreResult<BTreeSet<u32>> {
        let rows: Vec<i64> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT uid FROM message_decisions WHERE mailbox_id = $1 AND folder = $2 AND uidvalidity = $3
                AND uid >= $4 AND outcome <> 'retrying'",
        ).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(i64::from(from_uid)).fetch_all(p).await?);
        Ok(rows.into_iter().map(|u| u as u32).collect())
    }

    /// Of these UIDs, those whose message was looked at and skipped.
    pub async fn skipped_uids(
        &self,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> StoreResult<Vec<u32>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<i64> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new("SELECT uid FROM message_decisions WHERE outcome = 'skipped' AND mailbox_id = ");
            qb.push_bind(mailbox_id.to_owned()).push(" AND folder = ").push_bind(folder.to_owned());
            qb.push(" AND uidvalidity = ").push_bind(i64::from(uidvalidity)).push(" AND uid IN (");
            let mut sep = qb.separated(", ");
            for u in uids {
                sep.push_bind(i64::from(*u));
            }
            qb.push(") ORDER BY uid");
            qb.build_query_scalar::<i64>().fetch_all(p).await?
        });
        Ok(rows.into_iter().map(|u| u as u32).collect())
    }

    /// Attempts so far for a message that failed before.
    pub async fn decision_attempts(
        &self,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> StoreResult<i64> {
        let n: Option<i64> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT attempts FROM message_decisions WHERE mailbox_id = $1 AND folder = $2 AND uidvalidity = $3 AND uid = $4",
        ).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(i64::from(uid)).fetch_optional(p).await?);
        Ok(n.unwrap_or(0))
    }

    /// Writes one processed message; returns the email id it produced or linked.
    pub async fn ingest(&self, w: &IngestWrite) -> StoreResult<Option<String>> {
        Ok(self
            .ingest_batch(std::slice::from_ref(w))
            .await?
            .pop()
            .flatten())
    }

    /// Writes a batch of processed messages in one transaction, in order (so a
    /// later message may link to an email an earlier one created); returns, for
    /// each, the email id it produced or linked. All or nothing.
    pub async fn ingest_batch(&self, writes: &[IngestWrite]) -> StoreResult<Vec<Option<String>>> {
        let t = now();
        let ids = with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let mut ids = Vec::with_capacity(writes.len());
            for w in writes {
            let decision_id = mailbridge_domain::ids::new_id();
                let mut outcome = w.outcome;
                let mut rule = w.rule;
                let mut reason = w.reason.clone();
                let mut email_id = w.link_to.clone();
                if let Some(new) = &w.email {
                    let e = &new.email;
                    let inserted = sqlx::query(
                        "INSERT INTO emails (id, org_id, subject, body, direction, status, message_id, in_reply_to,
                            tracking_token, correlation_method, regarding_type, regarding_id, mailbox_id, status_reason,
                            sent_at, received_at, created_at, updated_at, references_header, conversation_key,
                            normalized_subject, body_html, fingerprint, correlated_email_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                            $19, $20, $21, $22, $23, $24)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&e.id).bind(&e.org_id).bind(&e.subject).bind(&e.body).bind(e.direction).bind(e.status)
                    .bind(&e.message_id).bind(&e.in_reply_to).bind(&e.tracking_token).bind(e.correlation_method)
                    .bind(e.regarding_type).bind(&e.regarding_id).bind(&e.mailbox_id).bind(&e.status_reason)
                    .bind(e.sent_at).bind(e.received_at).bind(t).bind(t).bind(&new.references_header)
                    .bind(&new.conversation_key).bind(&new.normalized_subject).bind(&new.body_html)
                    .bind(&new.fingerprint).bind(&new.correlated_email_id)
                    .execute(&mut *tx).await?.rows_affected();
                    if inserted == 1 {
                        for (i, party) in e.parties.iter().enumerate() {
                            sqlx::query(
                                "INSERT INTO email_parties (email_id, position, role, address, party_type, party_id)
                                 VALUES ($1, $2, $3, $4, $5, $6)",
                            )
                            .bind(&e.id).bind(i as i64).bind(party.role).bind(&party.address).bind(party.party_type)
                            .bind(&party.party_id).execute(&mut *tx).await?;
                        }
                        for (i, a) in new.attachments.iter().enumerate() {
                            sqlx::query(
                                "INSERT INTO email_attachments (email_id, position, file_name, content_type, size, stored, content)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            )
                            .bind(&e.id).bind(i as i64).bind(&a.file_name).bind(&a.content_type).bind(a.size)
                            .bind(a.content.is_some()).bind(&a.content).execute(&mut *tx).await?;
                        }
                        email_id = Some(e.id.clone());
                    } else {
                        // Another mailbox tracked the same message between our look-up
                        // and this write: link to its email instead of duplicating it.
                        let existing: Option<String> = match (&e.message_id, &new.fingerprint) {
                            (Some(m), _) => sqlx::query_scalar("SELECT id FROM emails WHERE org_id = $1 AND message_id = $2")
                                .bind(&e.org_id).bind(m).fetch_optional(&mut *tx).await?,
                            (None, Some(f)) => sqlx::query_scalar("SELECT id FROM emails WHERE org_id = $1 AND fingerprint = $2")
                                .bind(&e.org_id).bind(f).fetch_optional(&mut *tx).await?,
                            _ => None,
                        };
                        email_id = existing;
                        outcome = "linked";
                        rule = "already_tracked";
                        reason = "the same message was tracked by another mailbox at the same time".to_owned();
                    }
                }
                if let Some(id) = &email_id {
                    sqlx::query(
                        "INSERT INTO email_mailboxes (email_id, mailbox_id, folder, created_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                    ).bind(id).bind(&w.mailbox_id).bind(&w.folder).bind(t).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO message_decisions (id, org_id, mailbox_id, folder, uidvalidity, uid, message_id, subject,
                        from_address, received_at, outcome, rule, reason, correlation_method, correlated_email_id,
                        email_id, attempts, error, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1, NULL, $17, $17)
                     ON CONFLICT (mailbox_id, folder, uidvalidity, uid) DO UPDATE SET outcome = $11, rule = $12,
                        reason = $13, correlation_method = $14, correlated_email_id = $15, email_id = $16,
                        attempts = message_decisions.attempts + 1, error = NULL, updated_at = $17",
                )
                .bind(&decision_id).bind(&w.org_id).bind(&w.mailbox_id).bind(&w.folder).bind(i64::from(w.uidvalidity))
                .bind(i64::from(w.uid)).bind(&w.message_id).bind(&w.subject).bind(&w.from_address).bind(w.received_at)
                .bind(outcome).bind(rule).bind(&reason).bind(w.correlation_method).bind(&w.correlated_email_id)
                .bind(&email_id).bind(t)
                .execute(&mut *tx).await?;
                if let Some(uid) = w.checkpoint {
                    sqlx::query(
                        "UPDATE folder_sync SET last_uid = $4, updated_at = $5
                         WHERE mailbox_id = $1 AND folder = $2 AND uidvalidity = $3 AND last_uid < $4",
                    ).bind(&w.mailbox_id).bind(&w.folder).bind(i64::from(w.uidvalidity)).bind(i64::from(uid)).bind(t)
                    .execute(&mut *tx).await?;
                }
            ids.push(email_id);
            }
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// Records a failed attempt at a message; returns the attempts so far.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_item_failure(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        uid: u32,
        message_id: Option<&str>,
        subject: Option<&str>,
        outcome: &'static str,
        error: &str,
        count_attempt: bool,
    ) -> StoreResult<i64> {
        let t = now();
        let id = mailbridge_domain::ids::new_id();
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO message_decisions (id, org_id, mailbox_id, folder, uidvalidity, uid, message_id, subject,
                outcome, rule, reason, attempts, error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'creation_failed', $10, 1, $10, $11, $11)
             ON CONFLICT (mailbox_id, folder, uidvalidity, uid) DO UPDATE SET outcome = $9,
                attempts = message_decisions.attempts + $12, error = $10, reason = $10, updated_at = $11",
        ).bind(&id).bind(org_id).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(i64::from(uid))
        .bind(message_id).bind(subject).bind(outcome).bind(error).bind(t).bind(i64::from(count_attempt))
        .execute(p).await?.rows_affected());
        self.decision_attempts(mailbox_id, folder, uidvalidity, uid)
            .await
    }
}

fn push_in<DB>(qb: &mut QueryBuilder<DB>, column: &str, values: &[String])
where
    DB: sqlx::Database,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push(format!(" AND {column} IN ("));
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v.clone());
    }
    qb.push(")");
}
