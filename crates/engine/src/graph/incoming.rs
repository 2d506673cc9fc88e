//! The incoming workload of an Exchange Online mailbox: for each processed folder
//! (the Inbox, tracked folders, Sent Items when asked), the delta pages since the
//! folder's stored link. Each message Graph reports gets its synthetic UID
//! (`Store::graph_uids`); those not decided before are fetched as MIME and go
//! through batch.rs and pipeline.rs like IMAP's. A page's link is stored once its
//! batch is written and its given-up messages are settled, and not while a
//! message of the run is being retried (the next run reads the page again; what
//! was decided is skipped by its decision). An expired link (410) clears the
//! state and reads the folder again: known items keep their UIDs, so nothing is
//! processed twice. Outlook categories are the message's keywords: the category
//! `Tracked` is the tracking keyword. A forward mailbox that deletes after
//! processing deletes each copy once its batch is written.

use std::collections::HashMap;

use mailbridge_connectors::FetchedMessage;
use mailbridge_connectors::graph::{
    DeltaChange, DeltaStep, GraphMailbox, GraphMessage, WellKnownFolder,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::ingest::FolderKind;

use super::GRAPH_UIDVALIDITY;
use crate::Engine;
use crate::batch::{self, FolderRef, GivenUp};
use crate::context::{MailboxContext, store_error};
use crate::incoming::{IncomingReport, UNDELIVERABLE};

use crate::pipeline::{self, TRACKING_KEYWORDS};

/// The name decisions and checkpoints use for the Inbox and Sent Items.
pub const INBOX: &str = "Inbox";
pub const SENT_ITEMS: &str = "Sent Items";

/// A folder to process: (name in the store, Graph folder id, kind).
type Folder = (String, String, FolderKind);

pub(crate) async fn folders(
    engine: &Engine,
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
) -> Result<Vec<Folder>, SyncError> {
    let inbox = mbx.well_known_folder(WellKnownFolder::Inbox).await?;
    let mut out = vec![(INBOX.to_owned(), inbox.id, FolderKind::Inbox)];
    for f in engine
        .store
        .tracked_folders(&ctx.mailbox.org_id, &ctx.mailbox.id)
        .await
        .map_err(store_error)?
    {
        match mbx.find_folder(&f.folder).await? {
            Some(found) => out.push((
                f.folder,
                found.id,
                FolderKind::Tracked {
                    regarding_type: f.regarding_type,
                    regarding_id: f.regarding_id,
                },
            )),
            // As on IMAP: a tracked folder that is gone stops the workload with
            // an alert, rather than leaving its mail silently unread.
            None => {
                return Err(crate::context::config_error(
                    format!(
                        "the tracked folder {} does not exist in the Exchange Online mailbox {}",
                        f.folder,
                        mbx.user()
                    ),
                    format!(
                        "Create the folder {} in the mailbox, or choose another folder, then run Test & Enable",
                        f.folder
                    ),
                ));
            }
        }
    }
    if ctx.track_sent_items {
        let sent = mbx.well_known_folder(WellKnownFolder::SentItems).await?;
        out.push((SENT_ITEMS.to_owned(), sent.id, FolderKind::Sent));
    }
    Ok(out)
}

/// Runs the incoming workload once.
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<IncomingReport, SyncError> {
    let mbx = super::mailbox(engine, ctx).await?;
    let mut report = IncomingReport::default();
    for (name, id, kind) in folders(engine, ctx, &mbx).await? {
        sync_folder(engine, ctx, &mbx, &name, &id, &kind, &mut report).await?;
    }
    Ok(report)
}

fn keywords(m: &GraphMessage) -> Vec<String> {
    m.categories.clone()
}

fn is_tagged(m: &GraphMessage) -> bool {
    m.categories
        .iter()
        .any(|c| TRACKING_KEYWORDS.iter().any(|t| t.eq_ignore_ascii_case(c)))
}

async fn sync_folder(
    engine: &Engine,
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
    name: &str,
    folder_id: &str,
    kind: &FolderKind,
    report: &mut IncomingReport,
) -> Result<(), SyncError> {
    let store = &engine.store;
    let mailbox = &ctx.mailbox.id;
    if store
        .folder_state(mailbox, name)
        .await
        .map_err(store_error)?
        .is_none_or(|k| k.uidvalidity != GRAPH_UIDVALIDITY)
    {
        store
            .reset_folder(mailbox, name, GRAPH_UIDVALIDITY)
            .await
            .map_err(store_error)?;
    }
    let mut state = store
        .folder_sync_state(mailbox, name)
        .await
        .map_err(store_error)?;
    let folder = FolderRef {
        name,
        kind,
        uidvalidity: GRAPH_UIDVALIDITY,
    };
    let mut restarted = false;
    let mut blocked = false;
    loop {
        let page = match mbx.delta_page(folder_id, state.as_deref()).await? {
            DeltaStep::Restart if !restarted => {
                tracing::info!(
                    mailbox,
                    folder = name,
                    "the delta link expired: the folder is read again; known messages keep their UIDs"
                );
                restarted = true;
                state = None;
                store
                    .set_folder_sync_state(mailbox, name, GRAPH_UIDVALIDITY, None)
                    .await
                    .map_err(store_error)?;
                continue;
            }
            DeltaStep::Restart => {
                return Err(SyncError {
                    class: ErrorClass::Transient { retry_after: None },
                    scope: ErrorScope::Mailbox,
                    message: format!(
                        "the changes of the folder {name} could not be read: the delta state expired again at once"
                    ),
                    fix: Some("none: the run is retried".to_owned()),
                });
            }
            DeltaStep::Batch(b) => b,
        };
        let messages: Vec<GraphMessage> = page
            .changes
            .into_iter()
            .filter_map(|c| match c {
                DeltaChange::Upserted(m) => Some(m),
                DeltaChange::Removed { .. } => None,
            })
            .collect();
        process_page(engine, ctx, mbx, folder, messages, &mut blocked, report).await?;
        if !blocked {
            store
                .set_folder_sync_state(mailbox, name, GRAPH_UIDVALIDITY, Some(&page.state))
                .await
                .map_err(store_error)?;
        }
        if !page.more {
            return Ok(());
        }
        state = Some(page.state);
    }
}

/// One delta page's messages: mapped to UIDs, the undecided fetched and
/// processed as a batch, the tagged ones skipped before processed again.
async fn process_page(
    engine: &Engine,
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
    folder: FolderRef<'_>,
    messages: Vec<GraphMessage>,
    blocked: &mut bool,
    report: &mut IncomingReport,
) -> Result<(), SyncError> {
    if messages.is_empty() {
        return Ok(());
    }
    let store = &engine.store;
    let mailbox = &ctx.mailbox.id;
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let uids = store
        .graph_uids(mailbox, folder.name, &ids)
        .await
        .map_err(store_error)?;
    let first = uids.iter().copied().min().unwrap_or(0);
    let decided = store
        .decided_uids(mailbox, folder.name, folder.uidvalidity, first)
        .await
        .map_err(store_error)?;
    let mut by_uid: HashMap<u32, GraphMessage> = HashMap::new();
    for (uid, m) in uids.iter().copied().zip(messages) {
        by_uid.insert(uid, m);
    }
    let mut new: Vec<u32> = by_uid
        .keys()
        .copied()
        .filter(|u| !decided.contains(u))
        .collect();
    new.sort_unstable();
    let fetched = fetch(mbx, ctx, &by_uid, &new).await?;
    if !fetched.is_empty() {
        let parsed = batch::analyze(engine, ctx, folder, fetched).await?;
        let done = batch::process(engine, ctx, folder, parsed, blocked).await?;
        report.processed += done.processed;
        report.tracked += done.tracked;
        for g in &done.given_up {
            let item = by_uid.get(&g.uid).map(|m| m.id.as_str());
            give_up(engine, ctx, mbx, folder, g, item).await?;
        }
        // Only after the decisions are committed: a failure before this leaves
        // the copies in the mailbox, where their decisions skip them.
        if crate::forward::deletes_processed(ctx, folder.kind) {
            delete_processed(ctx, mbx, &by_uid, &done.written).await?;
        }
    }
    // Tracked by hand after it was skipped: a tracking category on a decided message.
    let tagged: Vec<u32> = by_uid
        .iter()
        .filter(|(u, m)| decided.contains(*u) && is_tagged(m))
        .map(|(u, _)| *u)
        .collect();
    if tagged.is_empty() {
        return Ok(());
    }
    let mut skipped = store
        .skipped_uids(mailbox, folder.name, folder.uidvalidity, &tagged)
        .await
        .map_err(store_error)?;
    skipped.sort_unstable();
    for msg in fetch(mbx, ctx, &by_uid, &skipped).await? {
        report.processed += 1;
        report.tracked += usize::from(pipeline::retrack(engine, ctx, folder, &msg).await?);
    }
    Ok(())
}

/// A forward mailbox's copies whose decisions were committed, deleted from the
/// mailbox (to Deleted Items: see `GraphMailbox::delete_many`). One already
/// gone, or refused on its own, is left as it is: its decision skips it.
async fn delete_processed(
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
    by_uid: &HashMap<u32, GraphMessage>,
    written: &[u32],
) -> Result<(), SyncError> {
    let ids: Vec<String> = written
        .iter()
        .filter_map(|u| by_uid.get(u))
        .map(|m| m.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    for (id, result) in ids.iter().zip(mbx.delete_many(&ids).await?) {
        match result {
            Ok(()) => {}
            Err(e) if e.scope == ErrorScope::Item => {
                tracing::warn!(mailbox = %ctx.mailbox.id, item = id, error = %e, "a processed forwarded copy could not be deleted");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The MIME of the messages `uids` (in that order); a message gone meanwhile is
/// left out.
async fn fetch(
    mbx: &GraphMailbox,
    ctx: &MailboxContext,
    by_uid: &HashMap<u32, GraphMessage>,
    uids: &[u32],
) -> Result<Vec<FetchedMessage>, SyncError> {
    let ids: Vec<String> = uids.iter().map(|u| by_uid[u].id.clone()).collect();
    let mut out = Vec::with_capacity(uids.len());
    for (uid, result) in uids.iter().zip(fetch_all(mbx, &ids).await) {
        let m = &by_uid[uid];
        match result {
            Ok(bytes) => out.push(FetchedMessage {
                uid: *uid,
                flags: keywords(m),
                internal_date: m.received_date_time,
                size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                bytes,
            }),
            Err(e) if e.scope == ErrorScope::Item => {
                tracing::info!(mailbox = %ctx.mailbox.id, uid, error = %e, "a message is gone before it was read");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The MIME of each id, in order; the client holds the mailbox to Graph's
/// concurrency (4 requests at once).
async fn fetch_all(mbx: &GraphMailbox, ids: &[String]) -> Vec<Result<Vec<u8>, SyncError>> {
    let calls: Vec<_> = ids.iter().map(|id| mbx.fetch_mime(id)).collect();
    futures::future::join_all(calls).await
}

/// A message given up after its last attempt: moved to Undeliverable (when the
/// profile says so), recorded as failed, the owner alerted.
pub(crate) async fn give_up(
    engine: &Engine,
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
    folder: FolderRef<'_>,
    g: &GivenUp,
    item: Option<&str>,
) -> Result<(), SyncError> {
    let (reason, attempts) = (&g.reason, g.attempts);
    let final_reason = match item {
        Some(id) if ctx.profile.settings.move_failed_to_undeliverable => {
            let target = mbx.ensure_folder(UNDELIVERABLE).await?;
            mbx.move_to(id, &target.id).await?;
            format!("{reason}; moved to the {UNDELIVERABLE} folder after {attempts} attempts")
        }
        _ => format!("{reason}; given up after {attempts} attempts"),
    };
    batch::record_given_up(engine, ctx, folder, g, &final_reason).await
}
