//! The ingest transaction: the email (or the link to the existing one), its
//! parties and attachments, the decision, and the folder checkpoint are written
//! together, and writing the same message twice is a no-op — so a crash at any
//! point neither loses nor duplicates an email.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use mailbridge_domain::activity::Email;
use mailbridge_domain::ingest::Candidate;
use mailbridge_domain::{PartyType, RegardingType, WebhookEventType};
use sqlx::QueryBuilder;

use crate::webhooks::events::{NewEvent, emit_events};
use crate::{Backend, Store, StoreResult, now, with_db};

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
    /// The regarding record of every email found above, by email id.
    pub regarding: BTreeMap<String, (Option<RegardingType>, Option<String>)>,
}

impl BatchLookups {
    /// Every email id the look-ups found: what a message may correlate with.
    fn found_ids(&self) -> BTreeSet<String> {
        self.by_message_id
            .values()
            .chain(self.by_fingerprint.values())
            .chain(self.by_token.values())
            .chain(self.by_conversation.values())
            .chain(self.similar.values().flatten().map(|(id, _)| id))
            .cloned()
            .collect()
    }
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
                qb.push(" UNION ALL SELECT kind, id, lower(email) FROM parties WHERE active = TRUE AND deleted_at IS NULL AND org_id = ").push_bind(org.clone());
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
            let found: Vec<String> = l.found_ids().into_iter().collect();
            for chunk in found.chunks(500) {
                let mut qb = QueryBuilder::new("SELECT id, regarding_type, regarding_id FROM emails WHERE org_id = ");
                qb.push_bind(org.clone());
                push_in(&mut qb, "id", chunk);
                let rows: Vec<(String, Option<RegardingType>, Option<String>)> =
                    qb.build_query_as().fetch_all(p).await?;
                l.regarding.extend(rows.into_iter().map(|(id, t, r)| (id, (t, r))));
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

    /// Writes a batch of processed messages (distinct UIDs) in one transaction, in
    /// order (so a later message may link to an email an earlier one created), a
    /// few multi-row statements per table; returns, for each, the email id it
    /// produced or linked. All or nothing.
    pub async fn ingest_batch(&self, writes: &[IngestWrite]) -> StoreResult<Vec<Option<String>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let t = now();
        let new: Vec<&NewIncomingEmail> = writes.iter().filter_map(|w| w.email.as_ref()).collect();
        let checkpoints = checkpoints(writes);
        let postgres = self.backend() == Backend::Postgres;
        let recorded = with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            // The new emails, in order; one whose Message-ID or fingerprint another
            // mailbox took first is not inserted (and not returned).
            let mut inserted = HashSet::new();
            for chunk in new.chunks(ROWS) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO emails (id, org_id, subject, body, direction, status, message_id, in_reply_to,
                        tracking_token, correlation_method, regarding_type, regarding_id, mailbox_id, status_reason,
                        sent_at, received_at, created_at, updated_at, references_header, conversation_key,
                        normalized_subject, body_html, fingerprint, correlated_email_id) ",
                );
                qb.push_values(chunk, |mut b, new| {
                    let e = &new.email;
                    b.push_bind(&e.id).push_bind(&e.org_id).push_bind(&e.subject).push_bind(&e.body)
                        .push_bind(e.direction).push_bind(e.status).push_bind(&e.message_id).push_bind(&e.in_reply_to)
                        .push_bind(&e.tracking_token).push_bind(e.correlation_method).push_bind(e.regarding_type)
                        .push_bind(&e.regarding_id).push_bind(&e.mailbox_id).push_bind(&e.status_reason)
                        .push_bind(e.sent_at).push_bind(e.received_at).push_bind(t).push_bind(t)
                        .push_bind(&new.references_header).push_bind(&new.conversation_key)
                        .push_bind(&new.normalized_subject).push_bind(&new.body_html).push_bind(&new.fingerprint)
                        .push_bind(&new.correlated_email_id);
                });
                qb.push(" ON CONFLICT DO NOTHING RETURNING id");
                let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                inserted.extend(ids);
            }
            let created: Vec<&NewIncomingEmail> =
                new.iter().copied().filter(|n| inserted.contains(&n.email.id)).collect();
            // One email.tracked per email created here; a message linked to an
            // existing email (another mailbox's, or a lost race) reports nothing.
            let events: Vec<NewEvent> = created
                .iter()
                .map(|n| NewEvent::email(WebhookEventType::EmailTracked, &n.email, t))
                .collect();
            let parties: Vec<_> = created
                .iter()
                .flat_map(|n| n.email.parties.iter().enumerate().map(|(i, party)| (&n.email.id, i as i64, party)))
                .collect();
            for chunk in parties.chunks(ROWS) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO email_parties (email_id, position, role, address, party_type, party_id) ",
                );
                qb.push_values(chunk, |mut b, (id, i, party)| {
                    b.push_bind(*id).push_bind(*i).push_bind(party.role).push_bind(&party.address)
                        .push_bind(party.party_type).push_bind(&party.party_id);
                });
                qb.build().execute(&mut *tx).await?;
            }
            let attachments: Vec<_> = created
                .iter()
                .flat_map(|n| n.attachments.iter().enumerate().map(|(i, a)| (&n.email.id, i as i64, a)))
                .collect();
            for chunk in attachments.chunks(ROWS) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO email_attachments (email_id, position, file_name, content_type, size, stored, content) ",
                );
                qb.push_values(chunk, |mut b, (id, i, a)| {
                    b.push_bind(*id).push_bind(*i).push_bind(&a.file_name).push_bind(&a.content_type)
                        .push_bind(a.size).push_bind(a.content.is_some()).push_bind(&a.content);
                });
                qb.build().execute(&mut *tx).await?;
            }
            let mut recorded = Vec::with_capacity(writes.len());
            for w in writes {
                recorded.push(match &w.email {
                    Some(new) if inserted.contains(&new.email.id) => Recorded::as_decided(w, Some(new.email.id.clone())),
                    Some(new) => {
                        // Another mailbox tracked the same message between our look-up
                        // and this write: link to its email instead of duplicating it.
                        let e = &new.email;
                        let existing: Option<String> = match (&e.message_id, &new.fingerprint) {
                            (Some(m), _) => sqlx::query_scalar("SELECT id FROM emails WHERE org_id = $1 AND message_id = $2")
                                .bind(&e.org_id).bind(m).fetch_optional(&mut *tx).await?,
                            (None, Some(f)) => sqlx::query_scalar("SELECT id FROM emails WHERE org_id = $1 AND fingerprint = $2")
                                .bind(&e.org_id).bind(f).fetch_optional(&mut *tx).await?,
                            _ => None,
                        };
                        Recorded::raced(existing)
                    }
                    None => Recorded::as_decided(w, w.link_to.clone()),
                });
            }
            let rows: Vec<(&IngestWrite, &Recorded)> = writes.iter().zip(&recorded).collect();
            let links: Vec<_> = rows
                .iter()
                .filter_map(|(w, r)| r.email_id.as_ref().map(|id| (id, *w)))
                .collect();
            for chunk in links.chunks(ROWS) {
                let mut qb = QueryBuilder::new("INSERT INTO email_mailboxes (email_id, mailbox_id, folder, created_at) ");
                qb.push_values(chunk, |mut b, (id, w)| {
                    b.push_bind(*id).push_bind(&w.mailbox_id).push_bind(&w.folder).push_bind(t);
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in rows.chunks(ROWS) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO message_decisions (id, org_id, mailbox_id, folder, uidvalidity, uid, message_id, subject,
                        from_address, received_at, outcome, rule, reason, correlation_method, correlated_email_id,
                        email_id, attempts, error, created_at, updated_at) ",
                );
                qb.push_values(chunk, |mut b, (w, r)| {
                    b.push_bind(mailbridge_domain::ids::new_id()).push_bind(&w.org_id).push_bind(&w.mailbox_id)
                        .push_bind(&w.folder).push_bind(i64::from(w.uidvalidity)).push_bind(i64::from(w.uid))
                        .push_bind(&w.message_id).push_bind(&w.subject).push_bind(&w.from_address)
                        .push_bind(w.received_at).push_bind(r.outcome).push_bind(r.rule).push_bind(r.reason.as_ref())
                        .push_bind(w.correlation_method).push_bind(&w.correlated_email_id).push_bind(&r.email_id)
                        .push_bind(1_i64).push_bind(None::<String>).push_bind(t).push_bind(t);
                });
                qb.push(
                    " ON CONFLICT (mailbox_id, folder, uidvalidity, uid) DO UPDATE SET outcome = excluded.outcome,
                        rule = excluded.rule, reason = excluded.reason, correlation_method = excluded.correlation_method,
                        correlated_email_id = excluded.correlated_email_id, email_id = excluded.email_id,
                        attempts = message_decisions.attempts + 1, error = NULL, updated_at = excluded.updated_at",
                );
                qb.build().execute(&mut *tx).await?;
            }
            for ((mailbox_id, folder, uidvalidity), uid) in &checkpoints {
                sqlx::query(
                    "UPDATE folder_sync SET last_uid = $4, updated_at = $5
                     WHERE mailbox_id = $1 AND folder = $2 AND uidvalidity = $3 AND last_uid < $4",
                ).bind(*mailbox_id).bind(*folder).bind(i64::from(*uidvalidity)).bind(i64::from(*uid)).bind(t)
                .execute(&mut *tx).await?;
            }
            emit_events!(&mut *tx, &events, postgres);
            tx.commit().await?;
            recorded
        });
        Ok(recorded.into_iter().map(|r| r.email_id).collect())
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

/// Rows per multi-row statement: at 24 columns, far below the bind limits of
/// SQLite (32,766) and PostgreSQL (65,535).
const ROWS: usize = 200;

/// What a write finally records: the email it created or linked, and its
/// decision — a link when another mailbox created the same email first.
struct Recorded<'a> {
    email_id: Option<String>,
    outcome: &'static str,
    rule: &'static str,
    reason: Cow<'a, str>,
}

impl<'a> Recorded<'a> {
    fn as_decided(w: &'a IngestWrite, email_id: Option<String>) -> Self {
        Recorded {
            email_id,
            outcome: w.outcome,
            rule: w.rule,
            reason: Cow::Borrowed(&w.reason),
        }
    }

    fn raced(existing: Option<String>) -> Self {
        Recorded {
            email_id: existing,
            outcome: "linked",
            rule: "already_tracked",
            reason: Cow::Borrowed(
                "the same message was tracked by another mailbox at the same time",
            ),
        }
    }
}

/// The checkpoint each folder reaches with a batch: the highest UID of the
/// writes that carry one (the checkpoint never moves backwards).
fn checkpoints(writes: &[IngestWrite]) -> BTreeMap<(&str, &str, u32), u32> {
    let mut out = BTreeMap::new();
    for w in writes {
        if let Some(uid) = w.checkpoint {
            let at = out
                .entry((w.mailbox_id.as_str(), w.folder.as_str(), w.uidvalidity))
                .or_insert(uid);
            *at = (*at).max(uid);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use mailbridge_domain::activity::{Email, EmailParty};
    use mailbridge_domain::{EmailDirection, EmailStatus, PartyRole, Role, TrackingFilter};

    use super::*;
    use crate::{Cipher, NewUser};

    #[derive(Debug, Clone, Copy)]
    enum Backend {
        Sqlite,
        Postgres,
    }

    #[tokio::test]
    async fn a_batch_is_written_once_on_sqlite() {
        a_batch_is_written_once(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn a_batch_is_written_once_on_postgres() {
        a_batch_is_written_once(Backend::Postgres).await
    }

    const FOLDER: &str = "INBOX";

    /// A message of the batch: a new email when `message_id` is given, else a
    /// link to `link_to` (or a skip without one).
    fn write(
        org: &str,
        mailbox: &str,
        uid: u32,
        new: Option<(&str, &str)>,
        link_to: Option<&str>,
        checkpoint: Option<u32>,
    ) -> IngestWrite {
        let t = Utc::now();
        let email = new.map(|(id, message_id)| NewIncomingEmail {
            email: Email {
                id: id.to_owned(),
                org_id: org.to_owned(),
                subject: format!("Quote {uid}"),
                body: Some(format!("Body {uid}")),
                direction: EmailDirection::Incoming,
                status: EmailStatus::Received,
                message_id: Some(message_id.to_owned()),
                in_reply_to: None,
                tracking_token: None,
                correlation_method: None,
                regarding_type: None,
                regarding_id: None,
                mailbox_id: Some(mailbox.to_owned()),
                parties: ["carl@fabrikam.com", "alice@contoso.com"]
                    .iter()
                    .zip([PartyRole::From, PartyRole::To])
                    .map(|(address, role)| EmailParty {
                        role,
                        address: (*address).to_owned(),
                        party_type: None,
                        party_id: None,
                    })
                    .collect(),
                status_reason: None,
                sent_at: Some(t),
                received_at: Some(t),
                created_at: t,
                updated_at: t,
            },
            references_header: None,
            conversation_key: None,
            normalized_subject: format!("quote {uid}"),
            body_html: None,
            fingerprint: None,
            correlated_email_id: None,
            attachments: vec![AttachmentWrite {
                file_name: Some(format!("q{uid}.pdf")),
                content_type: "application/pdf".to_owned(),
                size: 4,
                content: Some(b"%PDF".to_vec()),
            }],
        });
        let (outcome, rule) = match (&email, link_to) {
            (Some(_), _) => ("tracked", "filter"),
            (None, Some(_)) => ("linked", "already_tracked"),
            (None, None) => ("skipped", "filter"),
        };
        IngestWrite {
            org_id: org.to_owned(),
            mailbox_id: mailbox.to_owned(),
            folder: FOLDER.to_owned(),
            uidvalidity: 7,
            uid,
            message_id: new.map(|(_, m)| m.to_owned()),
            subject: Some(format!("Quote {uid}")),
            from_address: Some("carl@fabrikam.com".to_owned()),
            received_at: Some(t),
            outcome,
            rule,
            reason: format!("message {uid}"),
            correlation_method: None,
            correlated_email_id: None,
            email,
            link_to: link_to.map(str::to_owned),
            checkpoint,
        }
    }

    async fn count(store: &Store, sql: &'static str, mailbox: &str) -> i64 {
        with_db!(&store.db, p => sqlx::query_scalar(sql).bind(mailbox).fetch_one(p).await)
            .expect("count")
    }

    /// New emails with their parties and attachments, a link to an email created
    /// earlier in the batch, an email another mailbox created first (linked, not
    /// duplicated), a skip; the checkpoint stops where the writes stop carrying
    /// one; writing the batch again duplicates nothing.
    async fn a_batch_is_written_once(backend: Backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("ingest.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
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
        let mailbox = store
            .create_user(&org, user)
            .await
            .expect("user")
            .mailbox_id;
        let (org, mb) = (org.as_str(), mailbox.as_str());
        store.reset_folder(mb, FOLDER, 7).await.expect("folder");
        let first = [write(
            org,
            mb,
            1,
            Some(("e-theirs", "raced@x")),
            None,
            Some(1),
        )];
        assert_eq!(
            store.ingest_batch(&first).await.expect("first"),
            [Some("e-theirs".to_owned())]
        );

        let batch = [
            write(org, mb, 2, Some(("e-2", "two@x")), None, Some(2)),
            write(org, mb, 3, Some(("e-3", "raced@x")), None, Some(3)),
            write(org, mb, 4, None, Some("e-2"), None),
            write(org, mb, 5, None, None, None),
        ];
        let expected =
            [Some("e-2"), Some("e-theirs"), Some("e-2"), None].map(|id| id.map(str::to_owned));
        assert_eq!(store.ingest_batch(&batch).await.expect("batch"), expected);
        assert_eq!(
            store.ingest_batch(&batch).await.expect("again"),
            expected,
            "a rewrite links what it created"
        );

        let state = store
            .folder_state(mb, FOLDER)
            .await
            .expect("state")
            .expect("folder");
        assert_eq!(
            state.last_uid, 3,
            "the checkpoint stops where the writes stop carrying one"
        );
        let emails = count(
            &store,
            "SELECT COUNT(*) FROM emails WHERE mailbox_id = $1",
            mb,
        )
        .await;
        assert_eq!(emails, 2, "e-3 lost to e-theirs and was not inserted");
        let parties = count(&store, "SELECT COUNT(*) FROM email_parties WHERE email_id IN (SELECT id FROM emails WHERE mailbox_id = $1)", mb).await;
        assert_eq!(parties, 4);
        let attachments = store
            .attachments_for_emails(&["e-2".to_owned()])
            .await
            .expect("attachments");
        assert_eq!(attachments["e-2"].len(), 1);
        let links = count(
            &store,
            "SELECT COUNT(*) FROM email_mailboxes WHERE mailbox_id = $1",
            mb,
        )
        .await;
        assert_eq!(links, 2);
        let decisions = count(
            &store,
            "SELECT COUNT(*) FROM message_decisions WHERE mailbox_id = $1",
            mb,
        )
        .await;
        assert_eq!(decisions, 5);
        let raced: (String, String, Option<String>) = with_db!(&store.db, p => sqlx::query_as(
            "SELECT outcome, rule, email_id FROM message_decisions WHERE mailbox_id = $1 AND uid = 3",
        ).bind(mb).fetch_one(p).await).expect("decision");
        assert_eq!(
            raced,
            (
                "linked".to_owned(),
                "already_tracked".to_owned(),
                Some("e-theirs".to_owned())
            )
        );
        let keys = LookupKeys {
            message_ids: ["two@x".to_owned()].into(),
            ..Default::default()
        };
        let found = store.batch_lookups(org, &keys).await.expect("look-ups");
        assert_eq!(found.by_message_id["two@x"], "e-2");
        assert_eq!(
            found.regarding["e-2"],
            (None, None),
            "each found email's regarding"
        );
        assert_eq!(
            store
                .decision_attempts(mb, FOLDER, 7, 2)
                .await
                .expect("attempts"),
            2
        );
    }
}
