//! The census of an IMAP mailbox: for each folder the incoming run processes,
//! `UID SEARCH UID 1:checkpoint` against the decisions up to the checkpoint
//! (current UIDVALIDITY only); gaps are fetched by UID and go through batch.rs.

use std::collections::BTreeSet;

use chrono::Utc;
use mailbridge_connectors::ImapSession;
use mailbridge_domain::census::{Checkpoint, FolderCensus, imap_folder};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::ingest::FolderKind;

use super::FolderReport;
use crate::Engine;
use crate::batch::{self, FolderRef, GivenUp};
use crate::context::{MailboxContext, store_error};
use crate::incoming;
use crate::metrics::{Protocol, Workload};

/// The census of every processed folder, on a session of its own; each
/// folder's report is added to `out` once the folder is done.
pub(super) async fn run(
    engine: &Engine,
    ctx: &MailboxContext,
    out: &mut Vec<FolderReport>,
) -> Result<(), SyncError> {
    let cfg = ctx.imap(&engine.store, &engine.config).await?;
    let mut session = ImapSession::connect(&cfg).await?;
    let _open = engine
        .metrics
        .connection_opened(Protocol::Imap, Workload::Incoming);
    let result = census_folders(engine, ctx, &mut session, out).await;
    session.logout().await;
    result
}

async fn census_folders(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    out: &mut Vec<FolderReport>,
) -> Result<(), SyncError> {
    for (folder, kind) in incoming::folders(&engine.store, ctx, session).await? {
        out.push(census_folder(engine, ctx, session, &folder, &kind).await?);
    }
    Ok(())
}

async fn census_folder(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: &str,
    kind: &FolderKind,
) -> Result<FolderReport, SyncError> {
    let store = &engine.store;
    let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
    let started = Utc::now();
    let state = session.select(folder).await?;
    let checkpoint = store
        .folder_state(mailbox, folder)
        .await
        .map_err(store_error)?
        .map(|s| Checkpoint {
            uidvalidity: s.uidvalidity,
            last_uid: s.last_uid,
        });
    let (server, known) = match checkpoint {
        Some(cp) if cp.uidvalidity == state.uidvalidity && cp.last_uid > 0 => (
            session.uids_up_to(cp.last_uid).await?,
            store
                .census_known_uids(org, mailbox, folder, cp.uidvalidity, cp.last_uid)
                .await
                .map_err(store_error)?,
        ),
        _ => Default::default(),
    };
    let mut report = FolderReport::new(folder);
    let gaps = match imap_folder(state.uidvalidity, &server, checkpoint, &known, started) {
        FolderCensus::Counted(gaps) => gaps,
        other => {
            tracing::debug!(mailbox = %mailbox, folder, census = ?other, "census: the folder is left to the incoming sync");
            return Ok(report);
        }
    };
    report.considered = gaps.considered;
    report.missing = gaps.missing.len();
    report.stuck = gaps.stuck.len();
    let mut todo: Vec<u32> = gaps.to_backfill().copied().collect();
    if todo.is_empty() {
        return Ok(report);
    }
    todo.sort_unstable();
    let folder_ref = FolderRef {
        name: folder,
        kind,
        uidvalidity: state.uidvalidity,
    };
    for chunk in todo.chunks(engine.config.fetch_batch.max(1)) {
        backfill(engine, ctx, session, folder_ref, chunk).await?;
    }
    let after = store
        .census_known_uids(
            org,
            mailbox,
            folder,
            state.uidvalidity,
            todo[todo.len() - 1],
        )
        .await
        .map_err(store_error)?;
    let decided = |uid: &u32| {
        matches!(
            after.get(uid),
            Some(mailbridge_domain::census::Known::Decided)
        )
    };
    report.missing_backfilled = gaps.missing.iter().filter(|u| decided(u)).count();
    report.backfilled = todo.iter().filter(|u| decided(u)).count();
    Ok(report)
}

/// Fetches gaps by UID and processes them as one batch: decisions, emails and
/// links as for new mail (the checkpoint, already past them, stays). A message
/// given up is moved and recorded as the incoming run does; one the server lists
/// but does not return is counted as a failed attempt, and given up after the
/// last one.
async fn backfill(
    engine: &Engine,
    ctx: &MailboxContext,
    session: &mut ImapSession,
    folder: FolderRef<'_>,
    uids: &[u32],
) -> Result<(), SyncError> {
    let fetched = session.fetch_uids(uids).await?;
    let got: BTreeSet<u32> = fetched.iter().map(|m| m.uid).collect();
    let absent: Vec<u32> = uids.iter().copied().filter(|u| !got.contains(u)).collect();
    if !fetched.is_empty() {
        let parsed = batch::analyze(engine, ctx, folder, fetched).await?;
        let mut blocked = false;
        let done = batch::process(engine, ctx, folder, parsed, &mut blocked).await?;
        for g in &done.given_up {
            incoming::give_up(engine, ctx, session, folder, g).await?;
        }
    }
    // Expunged between the search and the fetch: gone, so no gap. Still listed:
    // the server will not give it.
    for uid in session.uids_present(&absent).await? {
        unreadable(engine, ctx, folder, uid).await?;
    }
    Ok(())
}

/// A message the server lists but does not return: a failed attempt; after the
/// last one it is given up (left where it is: it cannot be read to be moved).
async fn unreadable(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: FolderRef<'_>,
    uid: u32,
) -> Result<(), SyncError> {
    let reason = "the mail server lists the message but did not return it when fetched".to_owned();
    let attempts = engine
        .store
        .record_item_failure(
            &ctx.mailbox.org_id,
            &ctx.mailbox.id,
            folder.name,
            folder.uidvalidity,
            uid,
            None,
            None,
            "retrying",
            &reason,
            true,
        )
        .await
        .map_err(store_error)?;
    if attempts < engine.config.max_item_attempts {
        tracing::warn!(mailbox = %ctx.mailbox.id, folder = folder.name, uid, attempts, "census: a gap could not be fetched; tried again at the next census");
        return Ok(());
    }
    let g = GivenUp {
        uid,
        message_id: None,
        subject: String::new(),
        reason: reason.clone(),
        attempts,
    };
    let final_reason = format!("{reason}; given up after {attempts} attempts");
    batch::record_given_up(engine, ctx, folder, &g, &final_reason).await
}
