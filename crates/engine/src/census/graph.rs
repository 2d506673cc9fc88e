//! The census of an Exchange Online mailbox: for each folder the incoming run
//! processes, the ids of its messages (paged, `$select=id,lastModifiedDateTime`)
//! against the decisions of its known items; gaps get their synthetic UID (a
//! known item keeps its own), are read as MIME and go through batch.rs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mailbridge_connectors::FetchedMessage;
use mailbridge_connectors::graph::GraphMailbox;
use mailbridge_domain::census::{Known, graph_folder};
use mailbridge_domain::error_model::{ErrorScope, SyncError};
use mailbridge_domain::ingest::FolderKind;

use super::FolderReport;
use crate::Engine;
use crate::batch::{self, FolderRef};
use crate::context::{MailboxContext, store_error};
use crate::graph::GRAPH_UIDVALIDITY;
use crate::graph::incoming as graph_incoming;

/// The census of every processed folder; `mark` is when the incoming run that
/// read every folder's changes to the end started. Each folder's report is
/// added to `out` once the folder is done.
pub(super) async fn run(
    engine: &Engine,
    ctx: &MailboxContext,
    mark: DateTime<Utc>,
    out: &mut Vec<FolderReport>,
) -> Result<(), SyncError> {
    let mbx = crate::graph::mailbox(engine, ctx).await?;
    for (name, id, kind) in graph_incoming::folders(engine, ctx, &mbx).await? {
        out.push(census_folder(engine, ctx, &mbx, &name, &id, &kind, mark).await?);
    }
    Ok(())
}

async fn census_folder(
    engine: &Engine,
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
    name: &str,
    folder_id: &str,
    kind: &FolderKind,
    mark: DateTime<Utc>,
) -> Result<FolderReport, SyncError> {
    let store = &engine.store;
    let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
    let listed = mbx.list_message_ids(folder_id).await?;
    let known = store
        .census_known_items(org, mailbox, name, GRAPH_UIDVALIDITY)
        .await
        .map_err(store_error)?;
    let gaps = graph_folder(&listed, &known, mark);
    let mut report = FolderReport::new(name);
    report.considered = gaps.considered;
    report.missing = gaps.missing.len();
    report.stuck = gaps.stuck.len();
    let todo: Vec<String> = gaps.to_backfill().cloned().collect();
    if todo.is_empty() {
        return Ok(report);
    }
    let folder = FolderRef {
        name,
        kind,
        uidvalidity: GRAPH_UIDVALIDITY,
    };
    for chunk in todo.chunks(engine.config.fetch_batch.max(1)) {
        backfill(engine, ctx, mbx, folder, chunk).await?;
    }
    let after = store
        .census_known_items(org, mailbox, name, GRAPH_UIDVALIDITY)
        .await
        .map_err(store_error)?;
    let decided = |id: &String| matches!(after.get(id), Some(Known::Decided));
    report.missing_backfilled = gaps.missing.iter().filter(|id| decided(id)).count();
    report.backfilled = todo.iter().filter(|id| decided(id)).count();
    Ok(report)
}

/// Reads gaps (properties for their categories and received time, then MIME)
/// and processes them as one batch; an item gone meanwhile is no gap. A
/// message given up is moved and recorded as the incoming run does.
async fn backfill(
    engine: &Engine,
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
    folder: FolderRef<'_>,
    ids: &[String],
) -> Result<(), SyncError> {
    let uids = engine
        .store
        .graph_uids(&ctx.mailbox.id, folder.name, ids)
        .await
        .map_err(store_error)?;
    let mut fetched = Vec::with_capacity(ids.len());
    let mut items: HashMap<u32, &str> = HashMap::new();
    let mut order: Vec<(u32, &String)> = uids.iter().copied().zip(ids).collect();
    order.sort_unstable();
    for (uid, id) in order {
        let read = async {
            let m = mbx.message(id).await?;
            let bytes = mbx.fetch_mime(id).await?;
            Ok::<_, SyncError>((m, bytes))
        };
        match read.await {
            Ok((m, bytes)) => {
                items.insert(uid, id.as_str());
                fetched.push(FetchedMessage {
                    uid,
                    flags: m.categories,
                    internal_date: m.received_date_time,
                    size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                    bytes,
                });
            }
            Err(e) if e.scope == ErrorScope::Item => {
                tracing::info!(mailbox = %ctx.mailbox.id, uid, error = %e, "census: a gap is gone before it was read");
            }
            Err(e) => return Err(e),
        }
    }
    if fetched.is_empty() {
        return Ok(());
    }
    let parsed = batch::analyze(engine, ctx, folder, fetched).await?;
    let mut blocked = false;
    let done = batch::process(engine, ctx, folder, parsed, &mut blocked).await?;
    for g in &done.given_up {
        let item = items.get(&g.uid).copied();
        graph_incoming::give_up(engine, ctx, mbx, folder, g, item).await?;
    }
    Ok(())
}
