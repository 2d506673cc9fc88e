//! SyncFolderHierarchy and SyncFolderItems: the changes since a sync state.
//!
//! ```xml
//! <m:SyncFolderItems>
//!   <m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>
//!   <m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId>
//!   <m:SyncState>…</m:SyncState>          <!-- absent or empty: from the start -->
//!   <m:Ignore><t:ItemId Id="…"/></m:Ignore>
//!   <m:MaxChangesReturned>100</m:MaxChangesReturned>   <!-- 1 to 512 -->
//! </m:SyncFolderItems>
//! → <m:SyncFolderItemsResponseMessage ResponseClass="Success">
//!     <m:ResponseCode>NoError</m:ResponseCode>
//!     <m:SyncState>…</m:SyncState>
//!     <m:IncludesLastItemInRange>false</m:IncludesLastItemInRange>
//!     <m:Changes>
//!       <t:Create><t:Message><t:ItemId Id="…" ChangeKey="…"/>…</t:Message></t:Create>
//!       <t:Update><t:CalendarItem>…</t:CalendarItem></t:Update>
//!       <t:Delete><t:ItemId Id="…" ChangeKey="…"/></t:Delete>
//!       <t:ReadFlagChange><t:ItemId Id="…" ChangeKey="…"/><t:IsRead>true</t:IsRead></t:ReadFlagChange>
//!     </m:Changes>
//! ```
//!
//! The changes of an item since the state are reported once, as what they amount to
//! (created after it: Create; only its read flag changed: ReadFlagChange; else
//! Update; gone: Delete), ordered by the item's first change after the state. A
//! page ends after `MaxChangesReturned` entries; its state is the first change
//! number of its last entry, so that an item changed again meanwhile is reported
//! again (as Exchange may), never skipped. A state of another mailbox or folder, or
//! one made before the folder's states were invalidated, is
//! ErrorInvalidSyncStateData, as is anything the server did not seal; a folder that
//! does not exist is ErrorSyncFolderNotFound.
//!
//! SyncFolderHierarchy (`m:FolderShape`, optional `m:SyncFolderId`, `m:SyncState`)
//! answers every folder below `msgfolderroot` (or below the given folder) as
//! `t:Create` (`t:Folder`, `t:CalendarFolder`, …) on the first call, then the
//! folders created (Create) or changed (Update) since the state, all at once with
//! `m:IncludesLastFolderInRange` true.

use roxmltree::Node;

use super::fields::{Shape, render_item};
use super::folders::{FolderShape, first_ref, id_attrs, render_folder, resolve};
use super::service::Ctx;
use super::soap::{Answer, Responses, fault};
use super::state::{Event, State};
use super::sync_state::SyncMark;
use super::xml::{M, T, Xml, child, child_text, children};

/// The most changes one SyncFolderItems response may hold.
pub const MAX_CHANGES: usize = 512;

/// A sync folder that is not found is ErrorSyncFolderNotFound ("Handling
/// synchronization-related errors in EWS").
fn sync_code(code: &'static str) -> &'static str {
    if code == "ErrorFolderNotFound" {
        "ErrorSyncFolderNotFound"
    } else {
        code
    }
}

/// The previous state of a request, `None` when it starts from the beginning.
fn requested_state(op: Node<'_, '_>) -> Option<String> {
    child_text(op, M, "SyncState").filter(|s| !s.is_empty())
}

pub(crate) fn sync_folder_hierarchy(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("SyncFolderHierarchy");
    let shape = FolderShape::parse(child(op, M, "FolderShape"));
    let Some(mb) = ctx.mailbox.as_deref().and_then(|m| st.mailbox(m)) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    let top = match child(op, M, "SyncFolderId").and_then(first_ref) {
        Some(r) => match resolve(mb, r) {
            Ok(id) => id,
            Err(code) => {
                out.error(sync_code(code), "");
                return out.finish();
            }
        },
        None => mb.root_id(),
    };
    let scope = format!("hierarchy:{top}");
    let base = match requested_state(op) {
        None => 0,
        Some(s) => match ctx.sealer.open(&s) {
            Some(m)
                if m.mailbox == mb.address
                    && m.scope == scope
                    && m.epoch == mb.hierarchy_epoch
                    && m.seq <= st.seq =>
            {
                m.seq
            }
            _ => {
                out.error("ErrorInvalidSyncStateData", "");
                return out.finish();
            }
        },
    };
    let mut changed: Vec<(u64, bool, &super::state::Folder)> = mb
        .descendants(&top, true)
        .iter()
        .filter_map(|id| mb.folders.get(id))
        .filter(|f| f.changed_seq > base || f.created_seq > base)
        .map(|f| (f.created_seq.max(f.changed_seq), f.created_seq > base, f))
        .collect();
    changed.sort_by_key(|(seq, _, _)| *seq);
    let state = ctx.sealer.seal(&SyncMark {
        mailbox: mb.address.clone(),
        scope,
        epoch: mb.hierarchy_epoch,
        seq: st.seq,
    });
    let mut x = Xml::new();
    x.text("m:SyncState", &state);
    x.text("m:IncludesLastFolderInRange", "true");
    x.open("m:Changes", &[]);
    for (_, created, f) in changed {
        x.open(if created { "t:Create" } else { "t:Update" }, &[]);
        render_folder(&mut x, mb, f, &shape);
        x.close();
    }
    out.success(&x.finish());
    out.finish()
}

/// One change to report.
enum Change {
    Create(String),
    Update(String),
    ReadFlag(String),
    Delete { id: String, change_key: String },
}

pub(crate) fn sync_folder_items(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("SyncFolderItems");
    let shape = Shape::parse(child(op, M, "ItemShape"));
    let max = child_text(op, M, "MaxChangesReturned").and_then(|v| v.parse::<usize>().ok());
    let (Some(max), Some(folder_ref)) = (max, child(op, M, "SyncFolderId").and_then(first_ref))
    else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: SyncFolderItems needs SyncFolderId and MaxChangesReturned.",
            &[],
        );
    };
    if !(1..=MAX_CHANGES).contains(&max) {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: MaxChangesReturned must be from 1 to 512.",
            &[],
        );
    }
    let Some(mb) = ctx.mailbox.as_deref().and_then(|m| st.mailbox(m)) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    let folder_id = match resolve(mb, folder_ref) {
        Ok(id) => id,
        Err(code) => {
            out.error(sync_code(code), "");
            return out.finish();
        }
    };
    let epoch = mb.folders[&folder_id].epoch;
    let base = match requested_state(op) {
        None => 0,
        Some(s) => match ctx.sealer.open(&s) {
            Some(m)
                if m.mailbox == mb.address
                    && m.scope == folder_id
                    && m.epoch == epoch
                    && m.seq <= st.seq =>
            {
                m.seq
            }
            _ => {
                out.error("ErrorInvalidSyncStateData", "");
                return out.finish();
            }
        },
    };
    let ignored: Vec<String> = child(op, M, "Ignore")
        .map(|i| {
            children(i, T, "ItemId")
                .filter_map(|n| n.attribute("Id").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();

    let mut entries: Vec<(u64, Change)> = Vec::new();
    for item in mb.items.values().filter(|i| i.folder_id == folder_id) {
        let mut after: Vec<(u64, Event)> = item
            .events
            .iter()
            .copied()
            .filter(|(s, _)| *s > base)
            .collect();
        let created = item.created_seq > base;
        if created {
            after.push((item.created_seq, Event::Content));
        }
        let Some(first) = after.iter().map(|(s, _)| *s).min() else {
            continue;
        };
        let change = if created {
            Change::Create(item.id.clone())
        } else if after.iter().any(|(_, e)| *e == Event::Content) {
            Change::Update(item.id.clone())
        } else {
            Change::ReadFlag(item.id.clone())
        };
        entries.push((first, change));
    }
    for t in mb
        .tombstones
        .iter()
        .filter(|t| t.folder_id == folder_id && t.gone_seq > base && t.created_seq <= base)
    {
        let first = t
            .events
            .iter()
            .copied()
            .filter(|s| *s > base)
            .chain([t.gone_seq])
            .min()
            .unwrap_or(t.gone_seq);
        entries.push((
            first,
            Change::Delete {
                id: t.item_id.clone(),
                change_key: t.change_key.clone(),
            },
        ));
    }
    entries.retain(|(_, c)| {
        let id = match c {
            Change::Create(id) | Change::Update(id) | Change::ReadFlag(id) => id,
            Change::Delete { id, .. } => id,
        };
        !ignored.contains(id)
    });
    entries.sort_by_key(|(first, _)| *first);
    let last = entries.len() <= max;
    entries.truncate(max);
    let seq = if last {
        st.seq
    } else {
        entries.last().map_or(st.seq, |(first, _)| *first)
    };
    let state = ctx.sealer.seal(&SyncMark {
        mailbox: mb.address.clone(),
        scope: folder_id.clone(),
        epoch,
        seq,
    });

    let mut x = Xml::new();
    x.text("m:SyncState", &state);
    x.text("m:IncludesLastItemInRange", &last.to_string());
    x.open("m:Changes", &[]);
    for (_, change) in &entries {
        match change {
            Change::Create(id) | Change::Update(id) => {
                let tag = if matches!(change, Change::Create(_)) {
                    "t:Create"
                } else {
                    "t:Update"
                };
                x.open(tag, &[]);
                render_item(&mut x, mb, &mb.items[id], &shape);
                x.close();
            }
            Change::ReadFlag(id) => {
                let item = &mb.items[id];
                x.open("t:ReadFlagChange", &[]);
                x.raw(&format!(
                    "<t:ItemId {}/>",
                    id_attrs(&item.id, &item.change_key)
                ));
                x.text("t:IsRead", &item.is_read().to_string());
                x.close();
            }
            Change::Delete { id, change_key } => {
                x.open("t:Delete", &[]);
                x.raw(&format!("<t:ItemId {}/>", id_attrs(id, change_key)));
                x.close();
            }
        }
    }
    out.success(&x.finish());
    out.finish()
}
