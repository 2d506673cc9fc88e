//! The incoming workload of one mailbox: for each processed folder, fetch what is
//! new since the checkpoint (by UID, never by \Seen), decide, and write each
//! message with its checkpoint in one transaction.

use chrono::Utc;
use mailbridge_connectors::{FetchedMessage, ImapSession, SpecialUse};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::ingest::FolderKind;
use mailbridge_store::Store;

use crate::Engine;
use crate::context::{MailboxContext, store_error};
use crate::pipeline::{self, ItemError};

/// The Undeliverable folder's name, as Dynamics administrators know it.
pub const UNDELIVERABLE: &str = "Undeliverable";

/// What one incoming run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct IncomingReport {
    pub processed: usize,
    pub tracked: usize,
}

/// The folders to process: the Inbox, tracked folders, and Sent when asked.
async fn folders(
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
    let mut last_uid = match known {
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
    // Once a message fails and will be retried, the checkpoint stays before it;
    // later messages are still processed, and skipped on the retry by their decision.
    let mut blocked = false;
    loop {
        let batch = session
            .fetch_after(last_uid, engine.config.fetch_batch)
            .await?;
        let Some(first) = batch.first() else { break };
        let decided = store
            .decided_uids(mailbox, folder, state.uidvalidity, first.uid)
            .await
            .map_err(store_error)?;
        // The batch is decided message by message, then written in one
        // transaction; the checkpoint moves only with (or after) that write.
        let mut pending = pipeline::BatchState::default();
        let mut writes = Vec::with_capacity(batch.len());
        let mut advance_to = None;
        // Parse every new message first, so the batch's look-ups take a handful
        // of queries instead of a few per message.
        let mut analyzed: Vec<Option<pipeline::Analyzed>> = batch
            .iter()
            .map(|m| (!decided.contains(&m.uid)).then(|| pipeline::analyze(ctx, m)))
            .collect();
        let refs: Vec<&pipeline::Analyzed> = analyzed.iter().flatten().collect();
        let found = store
            .batch_lookups(&ctx.mailbox.org_id, &pipeline::keys(ctx, &refs))
            .await
            .map_err(store_error)?;
        for (msg, a) in batch.iter().zip(analyzed.iter_mut()) {
            last_uid = last_uid.max(msg.uid);
            let Some(a) = a.take() else {
                if !blocked {
                    advance_to = Some(msg.uid);
                }
                continue;
            };
            report.processed += 1;
            let checkpoint = (!blocked).then_some(msg.uid);
            match pipeline::prepare(
                engine,
                ctx,
                folder,
                kind,
                state.uidvalidity,
                msg,
                a,
                &found,
                checkpoint,
                &mut pending,
            )
            .await
            {
                Ok(write) => {
                    if !blocked {
                        advance_to = Some(msg.uid);
                    }
                    writes.push(write);
                }
                Err(ItemError::Sync(e)) => return Err(e),
                Err(ItemError::Item(reason)) => {
                    if !give_up_or_retry(
                        engine,
                        ctx,
                        session,
                        folder,
                        state.uidvalidity,
                        msg,
                        &reason,
                    )
                    .await?
                    {
                        blocked = true;
                    } else if !blocked {
                        advance_to = Some(msg.uid);
                    }
                }
            }
        }
        let ids = if writes.is_empty() {
            Vec::new()
        } else {
            store.ingest_batch(&writes).await.map_err(store_error)?
        };
        report.tracked += writes
            .iter()
            .zip(&ids)
            .filter(|(w, id)| pipeline::created(w, id))
            .count();
        if let Some(uid) = advance_to {
            store
                .advance_folder(mailbox, folder, state.uidvalidity, uid)
                .await
                .map_err(store_error)?;
        }
        if batch.len() < engine.config.fetch_batch {
            break;
        }
    }
    store
        .set_folder_modseq(mailbox, folder, state.uidvalidity, state.highestmodseq)
        .await
        .map_err(store_error)?;
    Ok(report)
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
        match pipeline::process(engine, ctx, folder, kind, uidvalidity, &msg, None).await {
            Ok(tracked) => report.tracked += usize::from(tracked),
            Err(ItemError::Sync(e)) => return Err(e),
            Err(ItemError::Item(reason)) => {
                tracing::warn!(mailbox = %ctx.mailbox.id, folder, uid = msg.uid, reason, "a message tagged for tracking could not be created");
            }
        }
    }
    Ok(())
}

/// A message that could not be created: counted; after the last attempt, moved
/// to Undeliverable (when the profile says so) and recorded as an item failure.
/// Returns true when the message is given up (final), false when it will be retried.
async fn give_up_or_retry(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: &str,
    uidvalidity: u32,
    msg: &FetchedMessage,
    reason: &str,
) -> Result<bool, SyncError> {
    let store = &engine.store;
    let parsed = crate::parse::parse(&msg.bytes, Vec::new());
    let (mid, subject) = (
        parsed.facts.message_id.as_deref(),
        Some(parsed.facts.subject.as_str()),
    );
    let org = &ctx.mailbox.org_id;
    let attempts = store
        .record_item_failure(
            org,
            &ctx.mailbox.id,
            folder,
            uidvalidity,
            msg.uid,
            mid,
            subject,
            "retrying",
            reason,
            true,
        )
        .await
        .map_err(store_error)?;
    if attempts < engine.config.max_item_attempts {
        tracing::warn!(mailbox = %ctx.mailbox.id, folder, uid = msg.uid, attempts, reason, "email not created; will retry");
        return Ok(false);
    }
    let moved = ctx.profile.settings.move_failed_to_undeliverable;
    let final_reason = if moved {
        session.move_to(msg.uid, UNDELIVERABLE).await?;
        format!("{reason}; moved to the {UNDELIVERABLE} folder after {attempts} attempts")
    } else {
        format!("{reason}; given up after {attempts} attempts")
    };
    store
        .record_item_failure(
            org,
            &ctx.mailbox.id,
            folder,
            uidvalidity,
            msg.uid,
            mid,
            subject,
            "failed",
            &final_reason,
            false,
        )
        .await
        .map_err(store_error)?;
    crate::alerts::raise(
        store,
        ctx,
        mailbridge_domain::AlertScope::Item,
        mailbridge_domain::AlertSeverity::Warning,
        Some(format!("{folder}/{uidvalidity}/{}", msg.uid)),
        format!("An email could not be tracked: {final_reason} (subject: {})", subject.unwrap_or_default()),
        "Look at the message in the mailbox; fix the cause (for example the record its folder is tracked to), then move it back to be processed again",
        false,
    )
    .await;
    tracing::warn!(mailbox = %ctx.mailbox.id, folder, uid = msg.uid, at = %Utc::now(), "email given up: {final_reason}");
    Ok(true)
}
