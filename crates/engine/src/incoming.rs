//! The incoming workload of one mailbox: for each processed folder, fetch what is
//! new since the checkpoint (by UID, never by \Seen), decide, and write each
//! batch of messages with its checkpoint in one transaction — the next batch is
//! fetched and parsed while the previous one is decided and written.

use std::collections::VecDeque;

use mailbridge_connectors::{FetchedMessage, ImapSession, SpecialUse};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::ingest::FolderKind;
use mailbridge_store::Store;

use crate::Engine;
use crate::batch::{self, BatchDone, Fetched, FolderRef, GivenUp};
use crate::context::{MailboxContext, store_error};
use crate::metrics::{Protocol, Workload};
use crate::pipeline;

/// The Undeliverable folder's name, as Dynamics administrators know it.
pub const UNDELIVERABLE: &str = "Undeliverable";

/// What one incoming run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct IncomingReport {
    pub processed: usize,
    pub tracked: usize,
}

/// The folders to process: the Inbox, tracked folders, and Sent when asked.
pub(crate) async fn folders(
    store: &Store,
    ctx: &MailboxContext,
    session: &mut ImapSession,
) -> Result<Vec<(String, FolderKind)>, SyncError> {
    let mut out = vec![("INBOX".to_owned(), FolderKind::Inbox)];
    for f in store
        .tracked_folders(&ctx.mailbox.org_id, &ctx.mailbox.id)
        .await
        .map_err(store_error)?
    {
        out.push((
            f.folder,
            FolderKind::Tracked {
                regarding_type: f.regarding_type,
                regarding_id: f.regarding_id,
            },
        ));
    }
    if ctx.track_sent_items
        && let Some(sent) = session.find_special_use(SpecialUse::Sent).await?
    {
        out.push((sent, FolderKind::Sent));
    }
    Ok(out)
}

/// Runs the incoming workload once.
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<IncomingReport, SyncError> {
    let cfg = ctx.imap(&engine.store, &engine.config).await?;
    let mut session = ImapSession::connect(&cfg).await?;
    let _open = engine
        .metrics
        .connection_opened(Protocol::Imap, Workload::Incoming);
    let result = sync_folders(engine, ctx, &mut session).await;
    session.logout().await;
    result
}

async fn sync_folders(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
) -> Result<IncomingReport, SyncError> {
    let mut report = IncomingReport::default();
    for (folder, kind) in folders(&engine.store, ctx, session).await? {
        let r = sync_folder(engine, ctx, session, &folder, &kind).await?;
        report.processed += r.processed;
        report.tracked += r.tracked;
    }
    Ok(report)
}

async fn sync_folder(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: &str,
    kind: &FolderKind,
) -> Result<IncomingReport, SyncError> {
    let store = &engine.store;
    let mailbox = &ctx.mailbox.id;
    let state = session.select(folder).await?;
    let known = store
        .folder_state(mailbox, folder)
        .await
        .map_err(store_error)?;
    let last_uid = match known {
        Some(k) if k.uidvalidity == state.uidvalidity => k.last_uid,
        Some(k) => {
            tracing::warn!(
                mailbox,
                folder,
                old = k.uidvalidity,
                new = state.uidvalidity,
                "UIDVALIDITY changed: the folder is read again; tracked messages are linked, not duplicated"
            );
            store
                .reset_folder(mailbox, folder, state.uidvalidity)
                .await
                .map_err(store_error)?;
            0
        }
        None => {
            store
                .reset_folder(mailbox, folder, state.uidvalidity)
                .await
                .map_err(store_error)?;
            0
        }
    };
    let known_modseq = known
        .filter(|k| k.uidvalidity == state.uidvalidity)
        .and_then(|k| k.highestmodseq);
    let mut report = IncomingReport::default();
    let nothing_new = state.uidnext != 0 && state.uidnext <= last_uid + 1;
    // CONDSTORE: an unchanged HIGHESTMODSEQ means nothing in the folder changed.
    if nothing_new && known_modseq.is_some() && known_modseq == state.highestmodseq {
        return Ok(report);
    }
    let since = known_modseq;
    retrack_tagged(
        engine,
        ctx,
        session,
        folder,
        kind,
        state.uidvalidity,
        last_uid,
        since,
        &mut report,
    )
    .await?;
    if nothing_new {
        store
            .set_folder_modseq(mailbox, folder, state.uidvalidity, state.highestmodseq)
            .await
            .map_err(store_error)?;
        return Ok(report);
    }
    let folder = FolderRef {
        name: folder,
        kind,
        uidvalidity: state.uidvalidity,
    };
    ingest_new(engine, ctx, session, folder, last_uid, &mut report).await?;
    store
        .set_folder_modseq(mailbox, folder.name, state.uidvalidity, state.highestmodseq)
        .await
        .map_err(store_error)?;
    Ok(report)
}

/// The UIDs still to fetch: searched once, fetched a batch at a time, and
/// searched again when used up (for what arrived meanwhile).
struct UidQueue {
    after: u32,
    pending: VecDeque<u32>,
}

impl UidQueue {
    /// The next batch of at most `max` messages; `None` when nothing is left.
    async fn next_batch(
        &mut self,
        session: &mut ImapSession,
        max: usize,
    ) -> Result<Option<Vec<FetchedMessage>>, SyncError> {
        loop {
            if self.pending.is_empty() {
                self.pending = session.uids_after(self.after).await?.into();
            }
            if self.pending.is_empty() {
                return Ok(None);
            }
            let n = max.clamp(1, self.pending.len());
            let uids: Vec<u32> = self.pending.drain(..n).collect();
            self.after = uids[uids.len() - 1];
            let batch = session.fetch_uids(&uids).await?;
            // A batch expunged meanwhile is empty: go on with the next.
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
        }
    }
}

/// Ingests the messages after `last_uid`, fetching the next batch while the
/// previous one is decided and written. Each batch's checkpoint moves with its
/// write, or after the messages it gave up are moved and recorded.
async fn ingest_new(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: FolderRef<'_>,
    last_uid: u32,
    report: &mut IncomingReport,
) -> Result<(), SyncError> {
    let mut queue = UidQueue {
        after: last_uid,
        pending: Default::default(),
    };
    let mut blocked = false;
    let mut current = next_parsed(engine, ctx, session, &mut queue, folder).await?;
    while let Some(batch) = current {
        let (next, done) = tokio::join!(
            next_parsed(engine, ctx, session, &mut queue, folder),
            batch::process(engine, ctx, folder, batch, &mut blocked),
        );
        let done = done?;
        report.processed += done.processed;
        report.tracked += done.tracked;
        // A failed fetch leaves the session unusable: the batch's checkpoint
        // then stays where its write put it, and the rest is read again.
        let next = next?;
        settle(engine, ctx, session, folder, done).await?;
        current = next;
    }
    Ok(())
}

/// The next batch, fetched and parsed; `None` when nothing is left.
async fn next_parsed(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    queue: &mut UidQueue,
    folder: FolderRef<'_>,
) -> Result<Option<Fetched>, SyncError> {
    match queue.next_batch(session, engine.config.fetch_batch).await? {
        Some(messages) => Ok(Some(batch::analyze(engine, ctx, folder, messages).await?)),
        None => Ok(None),
    }
}

/// Finishes a processed batch on the session: its given-up messages are moved
/// and recorded, then the checkpoint moves past them.
async fn settle(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: FolderRef<'_>,
    done: BatchDone,
) -> Result<(), SyncError> {
    for g in &done.given_up {
        give_up(engine, ctx, session, folder, g).await?;
    }
    if let Some(uid) = done.advance_to {
        engine
            .store
            .advance_folder(&ctx.mailbox.id, folder.name, folder.uidvalidity, uid)
            .await
            .map_err(store_error)?;
    }
    // Only after the decisions are committed: a crash before this leaves the
    // messages on the server, where their decisions skip them.
    if crate::forward::deletes_processed(ctx, folder.kind) {
        session.delete_uids(&done.written).await?;
    }
    Ok(())
}

/// Mail tracked by hand after it arrived: messages already looked at and skipped
/// that now carry a tracking keyword are processed again, and tracked.
#[allow(clippy::too_many_arguments)]
async fn retrack_tagged(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: &str,
    kind: &FolderKind,
    uidvalidity: u32,
    up_to: u32,
    changed_since: Option<u64>,
    report: &mut IncomingReport,
) -> Result<(), SyncError> {
    if up_to == 0 {
        return Ok(());
    }
    let tagged = session
        .uids_with_keywords(crate::pipeline::TRACKING_KEYWORDS, up_to, changed_since)
        .await?;
    let skipped = engine
        .store
        .skipped_uids(&ctx.mailbox.id, folder, uidvalidity, &tagged)
        .await
        .map_err(store_error)?;
    for msg in session.fetch_uids(&skipped).await? {
        report.processed += 1;
        let at = FolderRef {
            name: folder,
            kind,
            uidvalidity,
        };
        report.tracked += usize::from(pipeline::retrack(engine, ctx, at, &msg).await?);
    }
    Ok(())
}

/// A message given up after its last attempt: moved to Undeliverable (when the
/// profile says so), then recorded as failed, then the owner alerted.
pub(crate) async fn give_up(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: FolderRef<'_>,
    g: &GivenUp,
) -> Result<(), SyncError> {
    let (reason, attempts) = (&g.reason, g.attempts);
    let final_reason = if ctx.profile.settings.move_failed_to_undeliverable {
        session.move_to(g.uid, UNDELIVERABLE).await?;
        format!("{reason}; moved to the {UNDELIVERABLE} folder after {attempts} attempts")
    } else {
        format!("{reason}; given up after {attempts} attempts")
    };
    batch::record_given_up(engine, ctx, folder, g, &final_reason).await
}
