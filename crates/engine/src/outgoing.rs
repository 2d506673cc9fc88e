//! The outgoing workload: queued emails are claimed a batch at a time and each is
//! sent as its mailbox through the mailbox's SMTP server and becomes Sent or
//! Failed; a task of its own saves the copies to Sent. An email is `sending` from
//! its claim until it is sent, failed or back in the queue.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use mail_builder::MessageBuilder;
use mailbridge_connectors::{ImapSession, SmtpConfig, SmtpSession, SpecialUse};
use mailbridge_domain::PartyRole;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::schedule::retry_after_failure;
use mailbridge_store::{OutgoingEmail, Store, StoreError};
use tokio::sync::mpsc;

use crate::context::{MailboxContext, store_error};
use crate::metrics::{EngineMetrics, ItemOutcome, OpenConnection, Protocol, Workload};
use crate::{Engine, EngineConfig};

/// How many due emails one claim moves to `sending`.
pub const CLAIM_BATCH: i64 = 50;

/// How many copies may wait for the Sent folder before the send loop waits too:
/// the bound of their memory, and of the copies a crash can lose (their emails
/// are already Sent).
const COPY_BACKLOG: usize = 16;

/// Builds the RFC 5322 message of an email; returns it with its envelope recipients.
pub fn build(from_name: &str, from: &str, out: &OutgoingEmail) -> (Vec<u8>, Vec<String>) {
    let e = &out.email;
    let list = |role: PartyRole| -> Vec<String> {
        e.parties
            .iter()
            .filter(|p| p.role == role)
            .map(|p| p.address.clone())
            .collect()
    };
    let (to, cc, bcc) = (
        list(PartyRole::To),
        list(PartyRole::Cc),
        list(PartyRole::Bcc),
    );
    let mut b = MessageBuilder::new()
        .from((from_name.to_owned(), from.to_owned()))
        .subject(e.subject.clone())
        .message_id(e.message_id.clone().unwrap_or_default())
        .date(Utc::now().timestamp());
    if !to.is_empty() {
        b = b.to(to.clone());
    }
    if !cc.is_empty() {
        b = b.cc(cc.clone());
    }
    if let Some(r) = &e.in_reply_to {
        b = b.in_reply_to(r.clone()).references(r.clone());
    }
    b = b.text_body(e.body.clone().unwrap_or_default());
    if let Some(html) = &out.body_html {
        b = b.html_body(html.clone());
    }
    // Bcc recipients are in the envelope only, never in the header.
    let recipients = to.into_iter().chain(cc).chain(bcc).collect();
    (b.write_to_vec().unwrap_or_default(), recipients)
}

/// Sends every due email of the mailbox over one SMTP connection, claiming them
/// [`CLAIM_BATCH`] at a time, while the copies to Sent are appended over one IMAP
/// connection by a task of their own. Returns how many were sent, once every copy
/// is appended (or its failure logged).
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    recover_in_flight(engine, ctx).await?;
    let smtp_cfg = ctx.smtp(&engine.store, &engine.config).await?;
    let from = ctx.address()?;
    let (copies, copier) = SentCopier::start(engine, ctx);
    let mut run = SendLoop {
        engine,
        ctx,
        smtp_cfg: &smtp_cfg,
        from: &from,
        smtp: None,
        copies,
    };
    let result = run.send_all().await;
    if let Some((s, _open)) = run.smtp.take() {
        s.quit().await;
    }
    drop(run);
    copier.finish().await;
    result
}

/// What the send loop of a run holds.
struct SendLoop<'a> {
    engine: &'a Engine,
    ctx: &'a MailboxContext,
    smtp_cfg: &'a SmtpConfig,
    from: &'a str,
    /// Connected on first use, dropped after a transient error.
    smtp: Option<(SmtpSession, OpenConnection)>,
    copies: mpsc::Sender<SentCopy>,
}

/// Why a send ends the run, and what became of its email.
enum Stop {
    /// Not handed over, or the mailbox or profile is at fault: the email goes back
    /// to the queue with the rest of the claim.
    Unsent(SyncError),
    /// The email's own outcome was recorded (retry or failed), or the store failed.
    Recorded(SyncError),
}

impl SendLoop<'_> {
    async fn send_all(&mut self) -> Result<usize, SyncError> {
        let (store, mailbox) = (&self.engine.store, &self.ctx.mailbox);
        let mut sent = 0;
        loop {
            let batch = store
                .claim_outgoing(&mailbox.org_id, &mailbox.id, Utc::now(), CLAIM_BATCH)
                .await
                .map_err(store_error)?;
            if batch.is_empty() {
                return Ok(sent);
            }
            let mut claimed = Claimed::new(store, &mailbox.org_id, batch);
            while let Some(out) = claimed.next() {
                match self.send(&out).await {
                    Ok(true) => sent += 1,
                    Ok(false) => {}
                    Err(Stop::Unsent(e)) => {
                        claimed.put_back(out);
                        claimed.release().await;
                        return Err(e);
                    }
                    Err(Stop::Recorded(e)) => {
                        claimed.release().await;
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Sends one claimed email: true when the server accepted it (it is marked sent
    /// at once and its copy queued for Sent), false when refused for good.
    async fn send(&mut self, out: &OutgoingEmail) -> Result<bool, Stop> {
        let store = &self.engine.store;
        let recorded = |r: Result<(), StoreError>| r.map_err(|e| Stop::Recorded(store_error(e)));
        confirm_lease(self.engine, &self.ctx.mailbox.id)
            .await
            .map_err(Stop::Unsent)?;
        let (bytes, recipients) = build(&self.ctx.mailbox.name, self.from, out);
        let metrics = &self.engine.metrics;
        let session = match &mut self.smtp {
            Some((s, _)) => s,
            None => {
                let s = SmtpSession::connect(self.smtp_cfg)
                    .await
                    .map_err(Stop::Unsent)?;
                let open = metrics.connection_opened(Protocol::Smtp, Workload::Outgoing);
                &mut self.smtp.insert((s, open)).0
            }
        };
        let e = match session.send(self.from, &recipients, &bytes).await {
            Ok(()) => {
                // Before anything else: a stop before this line sends it again.
                recorded(record_sent(store, &out.email.id).await)?;
                metrics.items(Workload::Outgoing, ItemOutcome::Sent, 1);
                let copy = SentCopy {
                    message_id: out.email.message_id.clone(),
                    bytes,
                };
                if self.copies.send(copy).await.is_err() {
                    tracing::warn!(mailbox = %self.ctx.mailbox.id, email = %out.email.id,
                        "sent, but the copy to Sent failed: the copier stopped");
                }
                return Ok(true);
            }
            Err(e) => e,
        };
        let reason = e.message.clone();
        match (e.class, e.scope) {
            (ErrorClass::Permanent, ErrorScope::Item) => {
                // The session stays usable: the transaction was reset.
                recorded(store.mark_send_failed(&out.email.id, &reason).await)?;
                metrics.items(Workload::Outgoing, ItemOutcome::Failed, 1);
                Ok(false)
            }
            (ErrorClass::Transient { retry_after }, _) => {
                self.smtp = None;
                let attempts = u32::try_from(out.send_attempts).unwrap_or(u32::MAX);
                match retry_after_failure(&self.engine.config.timing, attempts, retry_after) {
                    Some(wait) => {
                        let at = Utc::now()
                            + ChronoDuration::from_std(wait).unwrap_or(ChronoDuration::minutes(5));
                        recorded(store.mark_send_retry(&out.email.id, at, &reason).await)?;
                        metrics.items(Workload::Outgoing, ItemOutcome::Retried, 1);
                    }
                    None => {
                        recorded(store.mark_send_failed(&out.email.id, &reason).await)?;
                        metrics.items(Workload::Outgoing, ItemOutcome::Failed, 1);
                    }
                }
                Err(Stop::Recorded(e))
            }
            // The mailbox or profile is at fault, not this email: it waits in the
            // queue for the workload to be fixed.
            _ => Err(Stop::Unsent(e)),
        }
    }
}

/// How long marking an accepted email sent is retried while the database fails,
/// at most: so that a stop waits for no more than that.
const RECORD_SENT_PATIENCE: Duration = Duration::from_secs(300);

/// Marks an email the SMTP server accepted as sent, retrying while the database
/// fails (a restart of PostgreSQL cuts the query in flight, or outlasts the pool's
/// acquire timeout): an email left `sending` goes back to the queue at the next
/// run's recovery unless its copy is in Sent, and the copy is queued only after
/// this, so giving up here sent it twice (found by tests/reliability, a PostgreSQL
/// restart under load). Giving up earlier never helps that email, so the retries
/// go on until the database answers (at most [`RECORD_SENT_PATIENCE`]), or until
/// the scheduler drops the run because another node took its lease. `mark_sent`
/// changes nothing the second time, so a retry after a commit whose answer was
/// lost is harmless.
async fn record_sent(store: &Store, email_id: &str) -> Result<(), StoreError> {
    let sent_at = Utc::now();
    let deadline = tokio::time::Instant::now() + RECORD_SENT_PATIENCE;
    // Short: while the database is down, each attempt waits for the pool's
    // acquire timeout already; once it is back, the sooner the better.
    let wait = Duration::from_millis(250);
    loop {
        match store.mark_sent(email_id, sent_at).await {
            Err(StoreError::Database(e)) if tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(email = %email_id, error = %e,
                    "sent, but the store failed to record it; retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The emails of a claim not yet handed to the SMTP server. What is left when the
/// run stops goes back to the queue: at once after an error, from a spawned task
/// when the run is dropped (a lost lease). The email being sent is not here: a run
/// dropped during its send leaves it `sending`, for [`recover_in_flight`].
pub(crate) struct Claimed {
    store: Store,
    org_id: String,
    claimed_at: DateTime<Utc>,
    rest: VecDeque<OutgoingEmail>,
}

impl Claimed {
    pub(crate) fn new(store: &Store, org_id: &str, batch: Vec<OutgoingEmail>) -> Claimed {
        Claimed {
            store: store.clone(),
            org_id: org_id.to_owned(),
            claimed_at: batch.first().map_or_else(Utc::now, |e| e.claimed_at),
            rest: batch.into(),
        }
    }

    pub(crate) fn next(&mut self) -> Option<OutgoingEmail> {
        self.rest.pop_front()
    }

    pub(crate) fn put_back(&mut self, out: OutgoingEmail) {
        self.rest.push_front(out);
    }

    fn take_ids(&mut self) -> Vec<String> {
        self.rest.drain(..).map(|o| o.email.id).collect()
    }

    /// Puts the rest back in the queue now.
    pub(crate) async fn release(&mut self) {
        let ids = self.take_ids();
        release(&self.store, &self.org_id, &ids, self.claimed_at).await;
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if self.rest.is_empty() {
            return;
        }
        let ids = self.take_ids();
        let (store, org_id, at) = (self.store.clone(), self.org_id.clone(), self.claimed_at);
        // Without a runtime they stay `sending`, for the next run's recovery.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { release(&store, &org_id, &ids, at).await });
        }
    }
}

async fn release(store: &Store, org_id: &str, ids: &[String], claimed_at: DateTime<Utc>) {
    if ids.is_empty() {
        return;
    }
    if let Err(e) = store.release_outgoing(org_id, ids, claimed_at).await {
        // They stay `sending`: the next run's recovery queues them again.
        tracing::warn!(error = %e, emails = ids.len(), "could not put unsent emails back in the queue");
    }
}

/// A stop during a run can leave emails in `sending`: the one being sent and,
/// when the run could not put them back, the rest of its claim. One whose copy is
/// in Sent was sent: it is marked so. The others go back to the queue.
/// FIXME: a stop after the SMTP server accepted an email but before it was marked
/// sent still sends it twice (its copy is queued only after); a stop after that
/// loses the copies not yet appended. Closing both needs the send and the copy in
/// one step the server confirms (e.g. BURL or Graph's sendMail).
async fn recover_in_flight(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let store = &engine.store;
    let stuck = store
        .in_flight(&ctx.mailbox.id)
        .await
        .map_err(store_error)?;
    if stuck.is_empty() {
        return Ok(());
    }
    let cfg = ctx.imap(store, &engine.config).await?;
    let mut session = ImapSession::connect(&cfg).await?;
    let _open = engine
        .metrics
        .connection_opened(Protocol::Imap, Workload::Outgoing);
    let sent_folder = session
        .find_special_use(SpecialUse::Sent)
        .await?
        .unwrap_or_else(|| "Sent".to_owned());
    session.select(&sent_folder).await?;
    for (org, id) in stuck {
        let email = store.get_email(&org, &id).await.map_err(store_error)?;
        let found = match &email.message_id {
            Some(mid) => !session
                .uids_with_header("Message-ID", mid)
                .await?
                .is_empty(),
            None => false,
        };
        if found {
            tracing::info!(email = %id, "an email in flight at the last stop is in Sent: marked sent");
            store
                .mark_sent(&id, chrono::Utc::now())
                .await
                .map_err(store_error)?;
        } else {
            store
                .transition_email(&id, "sending", "pending_send")
                .await
                .map_err(store_error)?;
        }
    }
    session.logout().await;
    Ok(())
}

/// The task that appends the copies of sent emails to the mailbox's Sent folder
/// over one IMAP connection (opened on first use), so that the send loop never
/// waits for IMAP. A failed copy is tried again (up to [`COPY_ATTEMPTS`], on a
/// new connection, after looking for it in Sent); one that still fails does not
/// unsend its email: it is logged, and the email stays Sent.
struct SentCopier {
    task: tokio::task::JoinHandle<()>,
}

impl SentCopier {
    fn start(engine: &Engine, ctx: &MailboxContext) -> (mpsc::Sender<SentCopy>, SentCopier) {
        let (tx, rx) = mpsc::channel(COPY_BACKLOG);
        let (store, config, ctx) = (engine.store.clone(), engine.config.clone(), ctx.clone());
        let metrics = engine.metrics.clone();
        let task = tokio::spawn(copy_to_sent(store, config, metrics, ctx, rx));
        (tx, SentCopier { task })
    }

    /// Waits until every copy queued is appended; the senders must be dropped first.
    async fn finish(self) {
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the copies to Sent stopped");
        }
    }
}

/// Renews the mailbox's lease before an email is handed to the server (SMTP,
/// Graph or EWS), and stops the run when it is lost. The scheduler renews it only every third
/// of the lease, and a database outage holds its renewals up: the lease can run
/// out, another node take the mailbox and queue this claim again (its recovery
/// of emails left `sending`) and send it, while this run, once the database is
/// back, goes on sending the same emails until the scheduler's next renewal
/// finds the lease lost (a 20 s PostgreSQL restart with a 30 s lease sent 39
/// emails twice in one run of tests/reliability; its lease test takes the lease
/// in the middle of a backlog: 14 more emails in 3 s without this check, 1 with
/// it). One short update per email, beside an SMTP transaction, for never
/// sending as a node that no longer runs the mailbox; the email in flight when
/// the lease is taken is the only one at risk.
pub(crate) async fn confirm_lease(engine: &Engine, mailbox_id: &str) -> Result<(), SyncError> {
    let lease = ChronoDuration::from_std(engine.config.lease).unwrap_or(ChronoDuration::minutes(2));
    let node = &engine.config.node_id;
    match engine
        .store
        .renew_lease(mailbox_id, node, Utc::now() + lease)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(SyncError {
            class: ErrorClass::Transient { retry_after: None },
            scope: ErrorScope::Mailbox,
            message: "the mailbox's lease was lost: another node runs it now".to_owned(),
            fix: None,
        }),
        Err(e) => Err(store_error(e)),
    }
}

/// A sent email's copy for the Sent folder.
struct SentCopy {
    message_id: Option<String>,
    bytes: Vec<u8>,
}

/// Attempts at saving one copy to Sent (reconnecting between them).
const COPY_ATTEMPTS: u32 = 3;

/// An open Sent folder: the session, the folder's name, the open connection.
type SentBox = (ImapSession, String, OpenConnection);

async fn open_sent(
    store: &Store,
    config: &EngineConfig,
    metrics: &EngineMetrics,
    ctx: &MailboxContext,
) -> Result<SentBox, SyncError> {
    let cfg = ctx.imap(store, config).await?;
    let mut session = ImapSession::connect(&cfg).await?;
    let open = metrics.connection_opened(Protocol::Imap, Workload::Outgoing);
    let folder = session
        .find_special_use(SpecialUse::Sent)
        .await?
        .unwrap_or_else(|| "Sent".to_owned());
    Ok((session, folder, open))
}

/// Saves one copy: appended, or already there. An APPEND whose answer was lost
/// may have been stored, so before trying again the folder is searched for the
/// copy's Message-ID: a copy is never saved twice.
async fn save_copy(
    sent_box: &mut Option<SentBox>,
    copy: &SentCopy,
    retry: bool,
    open: impl std::future::Future<Output = Result<SentBox, SyncError>>,
) -> Result<(), SyncError> {
    if sent_box.is_none() {
        *sent_box = Some(open.await?);
    }
    let Some((session, folder, _)) = sent_box.as_mut() else {
        unreachable!("opened above")
    };
    if retry && let Some(mid) = &copy.message_id {
        session.select(folder).await?;
        if !session
            .uids_with_header("Message-ID", mid)
            .await?
            .is_empty()
        {
            return Ok(());
        }
    }
    session.append(folder, &["\\Seen"], &copy.bytes).await
}

async fn copy_to_sent(
    store: Store,
    config: EngineConfig,
    metrics: std::sync::Arc<EngineMetrics>,
    ctx: MailboxContext,
    mut copies: mpsc::Receiver<SentCopy>,
) {
    let mut sent_box: Option<SentBox> = None;
    while let Some(copy) = copies.recv().await {
        let mut attempt = 1;
        loop {
            let open = open_sent(&store, &config, &metrics, &ctx);
            match save_copy(&mut sent_box, &copy, attempt > 1, open).await {
                Ok(()) => break,
                Err(e) => {
                    sent_box = None;
                    if attempt >= COPY_ATTEMPTS || e.class == ErrorClass::Permanent {
                        tracing::warn!(mailbox = %ctx.mailbox.id, error = %e.message, attempts = attempt,
                            "sent, but the copy to Sent failed");
                        break;
                    }
                    tracing::debug!(mailbox = %ctx.mailbox.id, error = %e.message, "the copy to Sent failed; trying again");
                    tokio::time::sleep(config.timing.retry_delay.min(Duration::from_secs(5))).await;
                    attempt += 1;
                }
            }
        }
    }
    if let Some((session, _, _open)) = sent_box {
        session.logout().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mailbridge_domain::activity::{Email, EmailParty};
    use mailbridge_domain::{EmailDirection, EmailStatus, Role, TrackingFilter};
    use mailbridge_store::{Cipher, NewUser};

    use super::*;

    /// A store in a fresh SQLite file with one mailbox holding `n` queued emails.
    async fn queue(n: usize) -> (Store, String, String, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "mailbridge-outgoing-{}.db",
            uuid::Uuid::now_v7().simple()
        ));
        let cipher = Cipher::from_base64(&Cipher::generate_key()).unwrap();
        let store = Store::open(&path.display().to_string(), cipher)
            .await
            .unwrap();
        let org = store.create_organization("Contoso", None).await.unwrap().id;
        let new_user = NewUser {
            full_name: "Alice".into(),
            email: Some("alice@contoso.com".into()),
            role: Role::User,
            tracking_filter: TrackingFilter::None,
        };
        let mailbox = store.create_user(&org, new_user).await.unwrap().mailbox_id;
        for i in 0..n {
            let t = Utc::now();
            let e = Email {
                id: format!("email-{i:02}"),
                org_id: org.clone(),
                subject: format!("Quote {i}"),
                body: None,
                direction: EmailDirection::Outgoing,
                status: EmailStatus::PendingSend,
                message_id: Some(format!("quote-{i}@contoso.com")),
                in_reply_to: None,
                tracking_token: None,
                correlation_method: None,
                regarding_type: None,
                regarding_id: None,
                mailbox_id: Some(mailbox.clone()),
                parties: vec![EmailParty {
                    role: PartyRole::To,
                    address: "bob@fabrikam.com".into(),
                    party_type: None,
                    party_id: None,
                }],
                status_reason: None,
                sent_at: None,
                received_at: None,
                created_at: t,
                updated_at: t,
            };
            store.create_email(&e).await.unwrap();
        }
        (store, org, mailbox, path)
    }

    async fn remove(store: Store, path: std::path::PathBuf) {
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    async fn statuses(store: &Store, org: &str, n: usize) -> Vec<EmailStatus> {
        let mut out = Vec::new();
        for i in 0..n {
            let id = format!("email-{i:02}");
            out.push(store.get_email(org, &id).await.unwrap().status);
        }
        out
    }

    #[tokio::test]
    async fn a_failed_send_puts_it_and_the_rest_of_the_claim_back() {
        use EmailStatus::{PendingSend, Sent};
        let (store, org, mailbox, path) = queue(4).await;
        let batch = store
            .claim_outgoing(&org, &mailbox, Utc::now(), CLAIM_BATCH)
            .await
            .unwrap();
        let mut claimed = Claimed::new(&store, &org, batch);
        let first = claimed.next().unwrap();
        store.mark_sent(&first.email.id, Utc::now()).await.unwrap();
        // The second could not be handed over: it goes back with the rest.
        let second = claimed.next().unwrap();
        claimed.put_back(second);
        claimed.release().await;
        assert_eq!(
            statuses(&store, &org, 4).await,
            [Sent, PendingSend, PendingSend, PendingSend]
        );
        drop(claimed);
        remove(store, path).await;
    }

    #[tokio::test]
    async fn a_dropped_run_puts_back_all_but_the_email_in_flight() {
        use EmailStatus::{PendingSend, Sending};
        let (store, org, mailbox, path) = queue(4).await;
        let batch = store
            .claim_outgoing(&org, &mailbox, Utc::now(), CLAIM_BATCH)
            .await
            .unwrap();
        let mut claimed = Claimed::new(&store, &org, batch);
        let _in_flight = claimed.next().unwrap();
        // A lost lease drops the run in the middle of this send.
        drop(claimed);
        let expected = [Sending, PendingSend, PendingSend, PendingSend];
        let mut now = statuses(&store, &org, 4).await;
        for _ in 0..100 {
            if now == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            now = statuses(&store, &org, 4).await;
        }
        assert_eq!(now, expected, "the one in flight is left to the recovery");
        remove(store, path).await;
    }
}
