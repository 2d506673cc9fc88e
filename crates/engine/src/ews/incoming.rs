//! The incoming workload of an Exchange Server mailbox, as Exchange Online's
//! (graph/incoming.rs) with EWS at the edge: for each processed folder (the
//! Inbox, tracked folders found by name, Sent Items when asked), the
//! `SyncFolderItems` pages since the folder's stored sync state. Each message
//! gets its synthetic UID (`Store::graph_uids`, keyed by the EWS item id); those
//! not decided before are read as MIME (`GetItem`, 50 at a time) and go through
//! batch.rs and pipeline.rs unchanged. A page's sync state is stored once its
//! batch is written and its given-up messages are settled, and not while a
//! message of the run is being retried. A sync state Exchange refuses
//! (`ErrorInvalidSyncStateData`) is cleared and the folder read again: known
//! items keep their UIDs, so nothing is processed twice. Categories are the
//! message's keywords: the category `Tracked` is the tracking keyword. A forward
//! mailbox that deletes after processing deletes each copy once its batch is
//! written.

use std::collections::HashMap;

use mailbridge_connectors::FetchedMessage;
use mailbridge_connectors::ews::{
    DistinguishedFolder, EwsClient, EwsError, FolderRef as EwsFolder, ItemChange, ItemId, ItemKind,
    SyncedItem,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::ingest::FolderKind;

use super::EWS_UIDVALIDITY;
use crate::Engine;
use crate::batch::{self, FolderRef, GivenUp};
use crate::context::{MailboxContext, store_error};
use crate::graph::incoming::{INBOX, SENT_ITEMS};
use crate::incoming::{IncomingReport, UNDELIVERABLE};

use crate::pipeline::{self, TRACKING_KEYWORDS};

/// Changes asked for per `SyncFolderItems` page: one fetched batch, as IMAP's.
const PAGE: u32 = 200;

/// A folder to process: (name in the store, the EWS folder, kind).
type Folder = (String, EwsFolder, FolderKind);

/// The folders the incoming run processes, in order.
pub(crate) async fn folders(
    engine: &Engine,
    ctx: &MailboxContext,
    client: &EwsClient,
) -> Result<Vec<Folder>, SyncError> {
    let mut out = vec![(
        INBOX.to_owned(),
        EwsFolder::Distinguished(DistinguishedFolder::Inbox),
        FolderKind::Inbox,
    )];
    for f in engine
        .store
        .tracked_folders(&ctx.mailbox.org_id, &ctx.mailbox.id)
        .await
        .map_err(store_error)?
    {
        match find_path(client, &f.folder).await? {
            Some(found) => out.push((
                f.folder,
                found,
                FolderKind::Tracked {
                    regarding_type: f.regarding_type,
                    regarding_id: f.regarding_id,
                },
            )),
            // As on IMAP and Graph: a tracked folder that is gone stops the
            // workload with an alert, rather than leaving its mail unread.
            None => {
                return Err(crate::context::config_error(
                    format!(
                        "the tracked folder {} does not exist in the Exchange mailbox {}",
                        f.folder,
                        client.mailbox()
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
        out.push((
            SENT_ITEMS.to_owned(),
            EwsFolder::Distinguished(DistinguishedFolder::SentItems),
            FolderKind::Sent,
        ));
    }
    Ok(out)
}

/// The folder at `path` (`A/B`: B below A), from the top of the mail folders,
/// each name compared without regard to case.
async fn find_path(client: &EwsClient, path: &str) -> Result<Option<EwsFolder>, SyncError> {
    let mut parent = EwsFolder::Distinguished(DistinguishedFolder::MsgFolderRoot);
    let mut found = None;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        match client.find_folder_by_name(&parent, part).await? {
            Some(f) => {
                parent = EwsFolder::from(&f.id);
                found = Some(parent.clone());
            }
            None => return Ok(None),
        }
    }
    Ok(found)
}

/// Runs the incoming workload once.
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<IncomingReport, SyncError> {
    let client = super::client(engine, ctx).await?;
    let mut report = IncomingReport::default();
    for (name, folder, kind) in folders(engine, ctx, &client).await? {
        sync_folder(engine, ctx, &client, &name, &folder, &kind, &mut report).await?;
    }
    Ok(report)
}

fn is_tagged(categories: &[String]) -> bool {
    categories
        .iter()
        .any(|c| TRACKING_KEYWORDS.iter().any(|t| t.eq_ignore_ascii_case(c)))
}

async fn sync_folder(
    engine: &Engine,
    ctx: &MailboxContext,
    client: &EwsClient,
    name: &str,
    ews_folder: &EwsFolder,
    kind: &FolderKind,
    report: &mut IncomingReport,
) -> Result<(), SyncError> {
    let store = &engine.store;
    let mailbox = &ctx.mailbox.id;
    if store
        .folder_state(mailbox, name)
        .await
        .map_err(store_error)?
        .is_none_or(|k| k.uidvalidity != EWS_UIDVALIDITY)
    {
        store
            .reset_folder(mailbox, name, EWS_UIDVALIDITY)
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
        uidvalidity: EWS_UIDVALIDITY,
    };
    let mut restarted = false;
    let mut blocked = false;
    loop {
        let page = match client
            .sync_folder_items(ews_folder, state.as_deref(), PAGE)
            .await
        {
            Ok(page) => page,
            Err(EwsError::SyncStateInvalid { .. }) if !restarted => {
                tracing::info!(
                    mailbox,
                    folder = name,
                    "Exchange refused the folder's sync state: the folder is read again; known messages keep their UIDs"
                );
                restarted = true;
                state = None;
                store
                    .set_folder_sync_state(mailbox, name, EWS_UIDVALIDITY, None)
                    .await
                    .map_err(store_error)?;
                continue;
            }
            Err(EwsError::SyncStateInvalid { .. }) => {
                return Err(SyncError {
                    class: ErrorClass::Transient { retry_after: None },
                    scope: ErrorScope::Mailbox,
                    message: format!(
                        "the changes of the folder {name} could not be read: Exchange refused the synchronization state again at once"
                    ),
                    fix: Some("none: the run is retried".to_owned()),
                });
            }
            Err(e) => return Err(e.into()),
        };
        process_page(
            engine,
            ctx,
            client,
            folder,
            page.changes,
            &mut blocked,
            report,
        )
        .await?;
        if !blocked {
            store
                .set_folder_sync_state(mailbox, name, EWS_UIDVALIDITY, Some(&page.sync_state))
                .await
                .map_err(store_error)?;
        }
        if page.includes_last {
            return Ok(());
        }
        state = Some(page.sync_state);
    }
}

/// A listed message and whether the page reported it changed (rather than new).
struct Listed {
    item: SyncedItem,
    updated: bool,
}

/// The messages of a page, each once (its last change), in the page's order.
/// Deletions and read-flag changes concern nothing the engine keeps; items that
/// are not messages (a calendar item in the Inbox) have no MIME to read.
fn messages_of(changes: Vec<ItemChange>) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    for change in changes {
        let (item, updated) = match change {
            ItemChange::Created(i) => (i, false),
            ItemChange::Updated(i) => (i, true),
            ItemChange::Deleted(_) | ItemChange::ReadFlagChanged { .. } => continue,
        };
        if !matches!(item.kind, ItemKind::Message | ItemKind::MeetingMessage) {
            continue;
        }
        match out.iter_mut().find(|l| l.item.id.id == item.id.id) {
            Some(l) => {
                l.updated |= updated;
                l.item = item;
            }
            None => out.push(Listed { item, updated }),
        }
    }
    out
}

/// One page's messages: mapped to UIDs, the undecided read and processed as a
/// batch, the changed ones tagged `Tracked` after they were skipped processed
/// again.
async fn process_page(
    engine: &Engine,
    ctx: &MailboxContext,
    client: &EwsClient,
    folder: FolderRef<'_>,
    changes: Vec<ItemChange>,
    blocked: &mut bool,
    report: &mut IncomingReport,
) -> Result<(), SyncError> {
    let listed = messages_of(changes);
    if listed.is_empty() {
        return Ok(());
    }
    let store = &engine.store;
    let mailbox = &ctx.mailbox.id;
    let ids: Vec<String> = listed.iter().map(|l| l.item.id.id.clone()).collect();
    let uids = store
        .graph_uids(mailbox, folder.name, &ids)
        .await
        .map_err(store_error)?;
    let first = uids.iter().copied().min().unwrap_or(0);
    let decided = store
        .decided_uids(mailbox, folder.name, folder.uidvalidity, first)
        .await
        .map_err(store_error)?;
    let by_uid: HashMap<u32, Listed> = uids.iter().copied().zip(listed).collect();
    let mut new: Vec<u32> = by_uid
        .keys()
        .copied()
        .filter(|u| !decided.contains(u))
        .collect();
    new.sort_unstable();
    let fetched = fetch(client, ctx, &by_uid, &new).await?;
    if !fetched.is_empty() {
        let parsed = batch::analyze(engine, ctx, folder, fetched).await?;
        let done = batch::process(engine, ctx, folder, parsed, blocked).await?;
        report.processed += done.processed;
        report.tracked += done.tracked;
        for g in &done.given_up {
            let item = by_uid.get(&g.uid).map(|l| &l.item.id);
            give_up(engine, ctx, client, folder, g, item).await?;
        }
        // Only after the decisions are committed: a failure before this leaves
        // the copies in the mailbox, where their decisions skip them.
        if crate::forward::deletes_processed(ctx, folder.kind) {
            delete_processed(ctx, client, &by_uid, &done.written).await?;
        }
    }
    // Tracked by hand after it was skipped: a changed message, decided before,
    // that now carries a tracking category.
    let changed: Vec<u32> = by_uid
        .iter()
        .filter(|(u, l)| l.updated && decided.contains(*u))
        .map(|(u, _)| *u)
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let mut skipped = store
        .skipped_uids(mailbox, folder.name, folder.uidvalidity, &changed)
        .await
        .map_err(store_error)?;
    skipped.sort_unstable();
    let ids: Vec<ItemId> = skipped.iter().map(|u| by_uid[u].item.id.clone()).collect();
    let mut tagged = Vec::new();
    for (uid, result) in skipped.iter().zip(client.get_items(&ids, false).await?) {
        match result {
            Ok(m) if is_tagged(&m.categories) => tagged.push(*uid),
            Ok(_) => {}
            Err(e) => gone_or_fail(ctx, *uid, e)?,
        }
    }
    for msg in fetch(client, ctx, &by_uid, &tagged).await? {
        report.processed += 1;
        report.tracked += usize::from(pipeline::retrack(engine, ctx, folder, &msg).await?);
    }
    Ok(())
}

/// A forward mailbox's copies whose decisions were committed, deleted to the
/// mailbox's Deleted Items (`EwsClient::delete_items` says why not for good).
/// The ids go without their change keys: the copy goes whatever changed on it
/// since it was listed. One already gone, or refused on its own, is left as it
/// is: its decision skips it.
async fn delete_processed(
    ctx: &MailboxContext,
    client: &EwsClient,
    by_uid: &HashMap<u32, Listed>,
    written: &[u32],
) -> Result<(), SyncError> {
    let ids: Vec<ItemId> = written
        .iter()
        .filter_map(|u| by_uid.get(u))
        .map(|l| ItemId::new(l.item.id.id.clone(), None))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    for (id, result) in ids.iter().zip(client.delete_items(&ids).await?) {
        if let Err(e) = result {
            let e = SyncError::from(e);
            if e.scope != ErrorScope::Item {
                return Err(e);
            }
            tracing::warn!(mailbox = %ctx.mailbox.id, item = id.id, error = %e, "a processed forwarded copy could not be deleted");
        }
    }
    Ok(())
}

/// An item that could not be read: gone meanwhile (an item-level refusal) is
/// left out; anything else stops the run.
fn gone_or_fail(ctx: &MailboxContext, uid: u32, e: EwsError) -> Result<(), SyncError> {
    let e = SyncError::from(e);
    if e.scope == ErrorScope::Item {
        tracing::info!(mailbox = %ctx.mailbox.id, uid, error = %e, "a message is gone before it was read");
        return Ok(());
    }
    Err(e)
}

/// The MIME of the messages `uids` (in that order), with their categories as
/// keywords; a message gone meanwhile is left out.
async fn fetch(
    client: &EwsClient,
    ctx: &MailboxContext,
    by_uid: &HashMap<u32, Listed>,
    uids: &[u32],
) -> Result<Vec<FetchedMessage>, SyncError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<ItemId> = uids.iter().map(|u| by_uid[u].item.id.clone()).collect();
    let mut out = Vec::with_capacity(uids.len());
    for (uid, result) in uids.iter().zip(client.get_items(&ids, true).await?) {
        let m = match result {
            Ok(m) => m,
            Err(e) => {
                gone_or_fail(ctx, *uid, e)?;
                continue;
            }
        };
        let Some(bytes) = m.mime else {
            return Err(SyncError {
                class: ErrorClass::Transient { retry_after: None },
                scope: ErrorScope::Mailbox,
                message: format!(
                    "Exchange answered a message of the mailbox {} without its MIME content",
                    client.mailbox()
                ),
                fix: Some("none: the run is retried".to_owned()),
            });
        };
        out.push(FetchedMessage {
            uid: *uid,
            flags: m.categories,
            internal_date: m.received.or(by_uid[uid].item.received),
            size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            bytes,
        });
    }
    Ok(out)
}

/// A message given up after its last attempt: moved to Undeliverable (created
/// when missing, when the profile says so), recorded as failed, the owner alerted.
pub(crate) async fn give_up(
    engine: &Engine,
    ctx: &MailboxContext,
    client: &EwsClient,
    folder: FolderRef<'_>,
    g: &GivenUp,
    item: Option<&ItemId>,
) -> Result<(), SyncError> {
    let (reason, attempts) = (&g.reason, g.attempts);
    let final_reason = match item {
        Some(id) if ctx.profile.settings.move_failed_to_undeliverable => {
            let root = EwsFolder::Distinguished(DistinguishedFolder::MsgFolderRoot);
            let target = match client.find_folder_by_name(&root, UNDELIVERABLE).await? {
                Some(f) => f.id,
                None => client.create_folder(&root, UNDELIVERABLE).await?,
            };
            client.move_item(id, &EwsFolder::from(&target)).await?;
            format!("{reason}; moved to the {UNDELIVERABLE} folder after {attempts} attempts")
        }
        _ => format!("{reason}; given up after {attempts} attempts"),
    };
    batch::record_given_up(engine, ctx, folder, g, &final_reason).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, kind: ItemKind) -> SyncedItem {
        SyncedItem {
            id: ItemId::new(id, None),
            kind,
            item_class: None,
            received: None,
        }
    }

    #[test]
    fn a_page_gives_each_message_once_with_whether_it_changed() {
        let page = vec![
            ItemChange::Created(item("a", ItemKind::Message)),
            ItemChange::Created(item("cal", ItemKind::CalendarItem)),
            ItemChange::Updated(item("b", ItemKind::Message)),
            ItemChange::Updated(item("a", ItemKind::Message)),
            ItemChange::ReadFlagChanged {
                id: ItemId::new("c", None),
                is_read: true,
            },
            ItemChange::Deleted(ItemId::new("d", None)),
            ItemChange::Created(item("m", ItemKind::MeetingMessage)),
        ];
        let got: Vec<(String, bool)> = messages_of(page)
            .into_iter()
            .map(|l| (l.item.id.id, l.updated))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_owned(), true),
                ("b".to_owned(), true),
                ("m".to_owned(), false)
            ]
        );
    }

    #[test]
    fn the_tracking_category_is_the_tracking_keyword() {
        for (categories, tagged) in [
            (vec!["Tracked".to_owned()], true),
            (vec!["red".to_owned(), "tracked".to_owned()], true),
            (vec!["Red category".to_owned()], false),
            (vec![], false),
        ] {
            assert_eq!(is_tagged(&categories), tagged, "{categories:?}");
        }
    }
}
