//! The ACT server side over Microsoft Graph (`exchange_online` profiles): the
//! connector's `GraphAct` on the profile's shared client, for the mailbox's email
//! address, behind [`ActServer`].
//!
//! Collections and their hrefs (Graph paths under the user, which also name the
//! kind of an item's href): the default calendar (`calendar`, items
//! `events/{id}`), the To Do list named "Tasks" (`todo/lists/{id}`, items
//! `todo/lists/{id}/tasks/{id}`) and the default contacts folder
//! (`contactFolders/{id}`, items `contacts/{id}`).
//!
//! **Tracking**: the calendar and the contacts folder are the user's own, so only
//! items with the tracking category (`Tracked`) come in, as on DAV. The To Do
//! list is the one recorded in `act_collections`, else the list named "Tasks"
//! (Outlook's default list in English mailboxes), which is not tracked either;
//! when there is none, mailbridge creates it and records it tracked: every task
//! the user puts there comes in.
//!
//! **Changes**: a collection's delta link is its sync token; a round without one,
//! or one Graph restarted because the link expired, is a full listing. The delta
//! pages carry the items, so they are kept for the fetch that follows (no second
//! read). The calendar is a calendar *view* (a window of dates): an event can
//! leave it without being deleted, so a linked event the round reports removed,
//! or that a full listing lacks, is read by id before it counts as deleted.
//!
//! **What Graph cannot carry** (To Do's percent complete, the kinds of a
//! contact's emails, fax/pager/other phones, a second postal address of the same
//! use, `RDATE`s, an attendee's chair role, a cancelled status written by
//! mailbridge) is filled in on each item read from the last synced item (the
//! link's snapshot), and on the item a write gives back from the item written,
//! so that none of it reads as a server change on the next run.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use mailbridge_connectors::graph::{
    ActChange, ActClaim, ActDelta, GraphAct, GraphActError, TodoList, Versioned,
};
use mailbridge_domain::act::model::{
    ActItem, ActKind, AttendeeRole, ContactUse, EventStatus, PhoneKind,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_store::{ActCollection, Store};

use super::server::{
    ActServer, OrgClaim, ServerChanges, ServerCollection, ServerFetch, ServerItem, WriteError,
    Written,
};
use crate::Engine;
use crate::context::{MailboxContext, store_error};

/// The display name of the To Do list tasks are synchronized with.
pub const TASK_LIST: &str = "Tasks";

/// The href of the default calendar.
const CALENDAR: &str = "calendar";

/// What an item's href names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target<'a> {
    Event(&'a str),
    Contact(&'a str),
    Task { list: &'a str, id: &'a str },
}

fn target(href: &str) -> Option<Target<'_>> {
    if let Some(id) = href.strip_prefix("events/") {
        return Some(Target::Event(id));
    }
    if let Some(id) = href.strip_prefix("contacts/") {
        return Some(Target::Contact(id));
    }
    let rest = href.strip_prefix("todo/lists/")?;
    let (list, id) = rest.split_once("/tasks/")?;
    Some(Target::Task { list, id })
}

fn item_href(c: &ServerCollection, id: &str) -> String {
    match c.kind {
        ActKind::Appointment => format!("events/{id}"),
        ActKind::Contact => format!("contacts/{id}"),
        ActKind::Task => format!("{}/tasks/{id}", c.href),
    }
}

/// An item read from Graph: its version and the item, or why it cannot be read.
type Read = (String, Result<ActItem, String>);

/// A mailbox's Exchange Online side.
#[derive(Debug)]
pub struct GraphServer {
    act: GraphAct,
    store: Store,
    org: String,
    mailbox: String,
    collections: Vec<ServerCollection>,
    list_id: String,
    folder_id: String,
    /// Items the delta rounds gave, served once to the fetch that follows.
    read: Mutex<HashMap<String, Read>>,
    /// The last synced item of each linked href.
    snapshots: Mutex<HashMap<String, ActItem>>,
    /// The items Graph gave back for writes, by the item written.
    written: Mutex<HashMap<String, ActItem>>,
    /// The mailbox's claim once read or written in this run.
    claim: Mutex<Option<Option<OrgClaim>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The To Do list for tasks: the one recorded before when it is still there,
/// else the one named [`TASK_LIST`]; with whether it is tracked. `None`: it is to
/// be created (and tracked).
pub fn choose_list<'l>(
    lists: &'l [TodoList],
    known: &[ActCollection],
) -> Option<(&'l TodoList, bool)> {
    for k in known {
        if let Some(l) = lists.iter().find(|l| list_href(&l.id) == k.href) {
            return Some((l, k.tracked));
        }
    }
    lists
        .iter()
        .find(|l| l.display_name.trim().eq_ignore_ascii_case(TASK_LIST))
        .map(|l| (l, false))
}

fn list_href(id: &str) -> String {
    format!("todo/lists/{id}")
}

fn folder_href(id: &str) -> String {
    format!("contactFolders/{id}")
}

fn tracked(known: &[ActCollection], href: &str) -> bool {
    known.iter().any(|k| k.href == href && k.tracked)
}

/// The connector for the mailbox's user on the profile's shared client.
async fn connector(engine: &Engine, ctx: &MailboxContext) -> Result<GraphAct, SyncError> {
    let (client, user) = crate::graph::client(engine, ctx).await?;
    Ok(GraphAct::new(&client, &user))
}

/// Whether Graph said the item is not there (404 `ErrorItemNotFound`).
fn is_gone(e: &SyncError) -> bool {
    e.scope == ErrorScope::Item && e.message.contains("is gone from the mailbox")
}

fn describe(e: &SyncError) -> String {
    match &e.fix {
        Some(fix) => format!("{} ({fix})", e.message),
        None => e.message.clone(),
    }
}

fn org_claim(c: ActClaim) -> OrgClaim {
    OrgClaim {
        organization: c.org_id,
        claimed_at: c.claimed_at,
    }
}

/// Test & Enable's probe: a token, the calendar and its claim, the To Do lists
/// and the contacts folder. Creates and writes nothing (a missing "Tasks" list is
/// created by the first run). The number of collections ACT would use.
///
/// # Errors
/// Graph's, or the foreign-claim error.
pub async fn probe(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    let act = connector(engine, ctx).await?;
    let claim = act.read_claim().await?.map(org_claim);
    // To Do answers only with `Tasks.ReadWrite.All`; the list itself is chosen
    // (or created) by the run.
    act.todo_lists().await?;
    act.default_contact_folder().await?;
    if let Some(claim) = &claim
        && super::claim::check(&ctx.mailbox.org_id, &ctx.mailbox, Some(claim))
            == super::claim::ClaimCheck::Foreign
        && !ctx.mailbox.sync_with_this_org_only
    {
        return Err(super::claim::foreign_claim_error(claim));
    }
    Ok(ActKind::ALL.len())
}

impl GraphServer {
    /// The mailbox's collections, the To Do list created when missing; the choice
    /// is recorded in `act_collections`.
    ///
    /// # Errors
    /// Graph's or the store's.
    pub async fn connect(engine: &Engine, ctx: &MailboxContext) -> Result<GraphServer, SyncError> {
        let act = connector(engine, ctx).await?;
        GraphServer::with_connector(engine, ctx, act).await
    }

    /// As [`GraphServer::connect`], with the connector already made.
    ///
    /// # Errors
    /// As [`GraphServer::connect`].
    pub async fn with_connector(
        engine: &Engine,
        ctx: &MailboxContext,
        act: GraphAct,
    ) -> Result<GraphServer, SyncError> {
        let store = engine.store.clone();
        let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
        let lists = act.todo_lists().await?;
        let known_lists = store
            .act_collections(org, mailbox, ActKind::Task)
            .await
            .map_err(store_error)?;
        let (list_id, list_tracked) = match choose_list(&lists, &known_lists) {
            Some((l, tracked)) => (l.id.clone(), tracked),
            None => (act.ensure_todo_list(TASK_LIST).await?.id, true),
        };
        let folder_id = act.default_contact_folder().await?;
        let mut collections = Vec::new();
        for kind in ActKind::ALL {
            let href = match kind {
                ActKind::Appointment => CALENDAR.to_owned(),
                ActKind::Task => list_href(&list_id),
                ActKind::Contact => folder_href(&folder_id),
            };
            let tracked = match kind {
                ActKind::Task => list_tracked,
                _ => tracked(
                    &store
                        .act_collections(org, mailbox, kind)
                        .await
                        .map_err(store_error)?,
                    &href,
                ),
            };
            store
                .upsert_act_collection(org, mailbox, kind, &href, tracked)
                .await
                .map_err(store_error)?;
            collections.push(ServerCollection {
                kind,
                href,
                tracked,
            });
        }
        Ok(GraphServer {
            act,
            store,
            org: org.clone(),
            mailbox: mailbox.clone(),
            collections,
            list_id,
            folder_id,
            read: Mutex::default(),
            snapshots: Mutex::default(),
            written: Mutex::default(),
            claim: Mutex::default(),
        })
    }

    pub fn connector(&self) -> &GraphAct {
        &self.act
    }

    /// A delta round as changes, its items kept for the fetch.
    fn absorb<T>(
        &self,
        c: &ServerCollection,
        d: ActDelta<T>,
        full: bool,
        wrap: impl Fn(T) -> ActItem,
    ) -> ServerChanges {
        // The last entry of an item wins (changed, then removed, say).
        let mut order: Vec<String> = Vec::new();
        let mut state: HashMap<String, Option<String>> = HashMap::new();
        let mut read = lock(&self.read);
        for change in d.changes {
            let (href, version) = match change {
                ActChange::Upserted(v) => {
                    let href = item_href(c, &v.id);
                    read.insert(href.clone(), (v.etag.clone(), Ok(wrap(v.item))));
                    (href, Some(v.etag))
                }
                ActChange::Removed { id } => {
                    let href = item_href(c, &id);
                    read.remove(&href);
                    (href, None)
                }
                ActChange::Unreadable { id, error } => {
                    let href = item_href(c, &id);
                    read.insert(href.clone(), (String::new(), Err(describe(&error))));
                    (href, Some(String::new()))
                }
            };
            if state.insert(href.clone(), version).is_none() {
                order.push(href);
            }
        }
        let mut out = ServerChanges {
            token: Some(d.delta_link),
            full: full || d.restarted,
            ..ServerChanges::default()
        };
        for href in order {
            match state.remove(&href).flatten() {
                Some(version) => out.changed.push((href, version)),
                None => out.deleted.push(href),
            }
        }
        out
    }

    /// Linked events the round says are gone, or a full listing lacks, are read
    /// by id: the calendar view's window may only have lost them.
    async fn confirm_removals(
        &self,
        linked: &HashSet<String>,
        changes: &mut ServerChanges,
    ) -> Result<(), SyncError> {
        let listed: HashSet<String> = changes.changed.iter().map(|(h, _)| h.clone()).collect();
        let mut suspects: Vec<String> = changes
            .deleted
            .iter()
            .filter(|h| linked.contains(*h))
            .cloned()
            .collect();
        if changes.full {
            let mut absent: Vec<String> = linked
                .iter()
                .filter(|h| !listed.contains(*h) && !changes.deleted.contains(*h))
                .cloned()
                .collect();
            absent.sort();
            suspects.extend(absent);
        }
        for href in suspects {
            let Some(Target::Event(id)) = target(&href) else {
                continue;
            };
            let read: Option<Read> = match self.act.get_event(id).await {
                Ok(v) => Some((v.etag, Ok(ActItem::Appointment(v.item)))),
                Err(GraphActError::Failed(e)) if is_gone(&e) => None,
                Err(GraphActError::Failed(e)) if e.scope == ErrorScope::Item => {
                    Some((String::new(), Err(describe(&e))))
                }
                Err(e) => return Err(e.into_sync_error()),
            };
            changes.deleted.retain(|h| *h != href);
            match read {
                Some((version, item)) => {
                    changes.changed.push((href.clone(), version.clone()));
                    lock(&self.read).insert(href, (version, item));
                }
                None => changes.deleted.push(href),
            }
        }
        Ok(())
    }

    /// Reads one item by href: `None` when it is gone.
    async fn read_one(&self, href: &str) -> Result<Option<Read>, SyncError> {
        let result = match target(href) {
            Some(Target::Event(id)) => self
                .act
                .get_event(id)
                .await
                .map(|v| (v.etag, ActItem::Appointment(v.item))),
            Some(Target::Contact(id)) => self
                .act
                .get_contact(id)
                .await
                .map(|v| (v.etag, ActItem::Contact(v.item))),
            Some(Target::Task { list, id }) => self
                .act
                .get_task(list, id)
                .await
                .map(|v| (v.etag, ActItem::Task(v.item))),
            None => return Ok(None),
        };
        match result {
            Ok((etag, item)) => Ok(Some((etag, Ok(item)))),
            Err(GraphActError::Failed(e)) if is_gone(&e) => Ok(None),
            Err(GraphActError::Failed(e)) if e.scope == ErrorScope::Item => {
                Ok(Some((String::new(), Err(describe(&e)))))
            }
            Err(e) => Err(e.into_sync_error()),
        }
    }

    /// Keeps what Graph gave back for `item` (for [`ActServer::read_back`]); the
    /// href's older reads are dropped.
    fn wrote(&self, href: String, etag: String, item: &ActItem, back: ActItem) -> Written {
        lock(&self.read).remove(&href);
        lock(&self.written).insert(key(item), back);
        Written {
            href,
            version: etag,
        }
    }
}

fn key(item: &ActItem) -> String {
    serde_json::to_string(item).unwrap_or_default()
}

fn write_error(href: &str, e: GraphActError) -> WriteError {
    match e {
        GraphActError::PreconditionFailed { .. } => WriteError::Stale {
            href: href.to_owned(),
        },
        GraphActError::Failed(e) => WriteError::Failed(e),
    }
}

fn wrong_kind() -> WriteError {
    WriteError::Failed(SyncError {
        class: ErrorClass::Permanent,
        scope: ErrorScope::Item,
        message: "the item does not belong in this Exchange Online folder".to_owned(),
        fix: Some("Nothing to do: report this if it persists".to_owned()),
    })
}

/// Fills in, on an item as Graph holds it, what Graph cannot carry from `from`
/// (the item last synchronized, or the item just written); see the module docs.
pub fn fill_uncarried(server: &mut ActItem, from: &ActItem) {
    match (server, from) {
        (ActItem::Task(s), ActItem::Task(f)) if s.percent.is_none() => s.percent = f.percent,
        (ActItem::Contact(s), ActItem::Contact(f)) => {
            for e in &mut s.emails {
                if let Some(k) = f
                    .emails
                    .iter()
                    .find(|k| k.address.eq_ignore_ascii_case(&e.address))
                {
                    e.kind = k.kind;
                    e.preferred = k.preferred;
                }
            }
            for p in &f.phones {
                let carried = matches!(p.kind, PhoneKind::Work | PhoneKind::Home)
                    || (p.kind == PhoneKind::Mobile
                        && f.phones.iter().find(|x| x.kind == PhoneKind::Mobile) == Some(p));
                if !carried && !s.phones.contains(p) {
                    s.phones.push(p.clone());
                }
            }
            for kind in [ContactUse::Work, ContactUse::Home, ContactUse::Other] {
                for a in f.addresses.iter().filter(|a| a.kind == kind).skip(1) {
                    if !s.addresses.contains(a) {
                        s.addresses.push(a.clone());
                    }
                }
            }
        }
        (ActItem::Appointment(s), ActItem::Appointment(f)) => {
            if f.status == EventStatus::Cancelled {
                s.status = EventStatus::Cancelled;
            }
            for a in &mut s.attendees {
                if a.role == AttendeeRole::Required
                    && f.attendees.iter().any(|k| {
                        k.role == AttendeeRole::Chair
                            && k.person.email.eq_ignore_ascii_case(&a.person.email)
                    })
                {
                    a.role = AttendeeRole::Chair;
                }
            }
            if let (Some(sr), Some(fr)) = (&mut s.recurrence, &f.recurrence)
                && sr.rdates.is_empty()
            {
                sr.rdates = fr.rdates.clone();
            }
        }
        _ => {}
    }
}

impl ActServer for GraphServer {
    fn collections(&self) -> Vec<ServerCollection> {
        self.collections.clone()
    }

    /// Graph carries a contact's addresses and categories and an attendee's role:
    /// what it lacks (To Do's percent, email kinds...) is already filled in on the
    /// items it returns, from the link's snapshot, so nothing is taken from the
    /// record here — an Outlook edit of those fields reaches the record.
    fn keep_unmapped(&self, _server: &mut ActItem, _record: &ActItem) {}

    async fn changes(
        &self,
        c: &ServerCollection,
        token: Option<&str>,
    ) -> Result<ServerChanges, SyncError> {
        let links = self
            .store
            .act_links(&self.org, &self.mailbox, c.kind)
            .await
            .map_err(store_error)?;
        let mut linked = HashSet::new();
        {
            let mut snapshots = lock(&self.snapshots);
            for l in links.iter().filter(|l| l.collection_href == c.href) {
                linked.insert(l.server_href.clone());
                if let Ok(Some(s)) = l.snapshot() {
                    snapshots.insert(l.server_href.clone(), s);
                }
            }
        }
        let full = token.is_none();
        match c.kind {
            ActKind::Appointment => {
                let d = self.act.events_delta(token).await?;
                let mut changes = self.absorb(c, d, full, ActItem::Appointment);
                self.confirm_removals(&linked, &mut changes).await?;
                Ok(changes)
            }
            ActKind::Contact => {
                let d = self.act.contacts_delta(&self.folder_id, token).await?;
                Ok(self.absorb(c, d, full, ActItem::Contact))
            }
            ActKind::Task => {
                let d = self.act.tasks_delta(&self.list_id, token).await?;
                Ok(self.absorb(c, d, full, ActItem::Task))
            }
        }
    }

    async fn fetch(
        &self,
        _c: &ServerCollection,
        hrefs: &[String],
    ) -> Result<ServerFetch, SyncError> {
        let mut out = ServerFetch::default();
        for href in hrefs {
            let kept = lock(&self.read).remove(href);
            let read = match kept {
                Some(r) => Some(r),
                None => self.read_one(href).await?,
            };
            let Some((version, mut item)) = read else {
                out.missing.push(href.clone());
                continue;
            };
            if let (Ok(i), Some(s)) = (&mut item, lock(&self.snapshots).get(href)) {
                fill_uncarried(i, s);
            }
            out.items.push(ServerItem {
                href: href.clone(),
                version,
                item,
            });
        }
        Ok(out)
    }

    async fn create(&self, c: &ServerCollection, item: &ActItem) -> Result<Written, WriteError> {
        let (id, etag, back) = match (c.kind, item) {
            (ActKind::Appointment, ActItem::Appointment(a)) => {
                let v = self
                    .act
                    .create_event(a)
                    .await
                    .map_err(|e| write_error("", e))?;
                (v.id, v.etag, ActItem::Appointment(v.item))
            }
            (ActKind::Contact, ActItem::Contact(x)) => {
                let v = self
                    .act
                    .create_contact(&self.folder_id, x)
                    .await
                    .map_err(|e| write_error("", e))?;
                (v.id, v.etag, ActItem::Contact(v.item))
            }
            (ActKind::Task, ActItem::Task(t)) => {
                let v = self
                    .act
                    .create_task(&self.list_id, t)
                    .await
                    .map_err(|e| write_error("", e))?;
                (v.id, v.etag, ActItem::Task(v.item))
            }
            _ => return Err(wrong_kind()),
        };
        Ok(self.wrote(item_href(c, &id), etag, item, back))
    }

    async fn update(
        &self,
        _c: &ServerCollection,
        href: &str,
        if_match: &str,
        item: &ActItem,
    ) -> Result<Written, WriteError> {
        // Whatever the outcome, what the delta round read of it is old now: a
        // lost race reads the item again.
        lock(&self.read).remove(href);
        let fail = |e| write_error(href, e);
        let (etag, back) = match (target(href), item) {
            (Some(Target::Event(id)), ActItem::Appointment(a)) => {
                let v: Versioned<_> = self.act.update_event(id, if_match, a).await.map_err(fail)?;
                (v.etag, ActItem::Appointment(v.item))
            }
            (Some(Target::Contact(id)), ActItem::Contact(x)) => {
                let v = self
                    .act
                    .update_contact(id, if_match, x)
                    .await
                    .map_err(fail)?;
                (v.etag, ActItem::Contact(v.item))
            }
            (Some(Target::Task { list, id }), ActItem::Task(t)) => {
                let v = self
                    .act
                    .update_task(list, id, if_match, t)
                    .await
                    .map_err(fail)?;
                (v.etag, ActItem::Task(v.item))
            }
            _ => return Err(wrong_kind()),
        };
        Ok(self.wrote(href.to_owned(), etag, item, back))
    }

    async fn delete(&self, href: &str, if_match: &str) -> Result<(), WriteError> {
        let result = match target(href) {
            Some(Target::Event(id)) => self.act.delete_event(id, if_match).await,
            Some(Target::Contact(id)) => self.act.delete_contact(id, if_match).await,
            Some(Target::Task { list, id }) => self.act.delete_task(list, id, if_match).await,
            None => return Err(wrong_kind()),
        };
        lock(&self.read).remove(href);
        match result {
            Ok(()) => Ok(()),
            // Already gone: what the delete wanted.
            Err(GraphActError::Failed(e)) if is_gone(&e) => Ok(()),
            Err(e) => Err(write_error(href, e)),
        }
    }

    /// The mailbox has one claim (on its default calendar): every collection
    /// answers it, read once per run.
    async fn claim(&self, _c: &ServerCollection) -> Result<Option<OrgClaim>, SyncError> {
        if let Some(known) = lock(&self.claim).clone() {
            return Ok(known);
        }
        let claim = self.act.read_claim().await?.map(org_claim);
        *lock(&self.claim) = Some(claim.clone());
        Ok(claim)
    }

    /// Written once per run, whatever the number of collections asking.
    async fn set_claim(&self, _c: &ServerCollection, claim: &OrgClaim) -> Result<(), SyncError> {
        if lock(&self.claim).as_ref() == Some(&Some(claim.clone())) {
            return Ok(());
        }
        self.act
            .write_claim(&ActClaim {
                org_id: claim.organization.clone(),
                claimed_at: claim.claimed_at,
            })
            .await?;
        *lock(&self.claim) = Some(Some(claim.clone()));
        Ok(())
    }

    /// The item Graph gave back when it was written, with what Graph cannot carry
    /// filled in from the item itself.
    fn read_back(&self, item: &ActItem) -> ActItem {
        let mut back = lock(&self.written)
            .get(&key(item))
            .cloned()
            .unwrap_or_else(|| item.clone());
        fill_uncarried(&mut back, item);
        back
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use mailbridge_domain::act::model::{Contact, ContactEmail, ContactPhone, Task};

    fn list(id: &str, name: &str) -> TodoList {
        TodoList {
            id: id.to_owned(),
            display_name: name.to_owned(),
            wellknown_list_name: None,
        }
    }

    fn known(href: &str, tracked: bool) -> ActCollection {
        ActCollection {
            mailbox_id: "m".to_owned(),
            kind: "task".to_owned(),
            href: href.to_owned(),
            sync_token: None,
            tracked,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn the_task_list_is_the_recorded_one_else_tasks_else_created() {
        let lists = [list("L1", "Tasks"), list("L2", "Projects")];
        type Case<'a> = (&'a [ActCollection], Option<(&'a str, bool)>);
        let cases: [Case; 4] = [
            (&[], Some(("L1", false))),
            (&[known("todo/lists/L2", true)], Some(("L2", true))),
            (&[known("todo/lists/gone", true)], Some(("L1", false))),
            (&[known("todo/lists/L1", false)], Some(("L1", false))),
        ];
        for (k, expected) in cases {
            let got = choose_list(&lists, k).map(|(l, t)| (l.id.as_str(), t));
            assert_eq!(got, expected, "{k:?}");
        }
        let others = [list("L2", "Projects")];
        assert_eq!(choose_list(&others, &[]), None, "created, then tracked");
    }

    #[test]
    fn hrefs_name_the_item_and_its_kind() {
        let cases = [
            ("events/AAMk=", Some(Target::Event("AAMk="))),
            ("contacts/C1", Some(Target::Contact("C1"))),
            (
                "todo/lists/L1/tasks/T1",
                Some(Target::Task {
                    list: "L1",
                    id: "T1",
                }),
            ),
            ("todo/lists/L1", None),
            ("calendar", None),
        ];
        for (href, expected) in cases {
            assert_eq!(target(href), expected, "{href}");
        }
    }

    #[test]
    fn what_graph_cannot_carry_is_filled_in() {
        let mut task = Task {
            uid: "t1".into(),
            summary: "t".into(),
            description: None,
            start: None,
            due: None,
            completed_at: None,
            percent: Some(40),
            priority: None,
            status: mailbridge_domain::act::model::TodoStatus::InProcess,
            categories: Vec::new(),
        };
        let from = ActItem::Task(task.clone());
        task.percent = None;
        let mut server = ActItem::Task(task);
        fill_uncarried(&mut server, &from);
        assert_eq!(server, from);

        let email = |kind, preferred| ContactEmail {
            address: "Bo@Fabrikam.example".into(),
            kind,
            preferred,
        };
        let phone = |number: &str, kind| ContactPhone {
            number: number.into(),
            kind,
        };
        let record = Contact {
            uid: "c1".into(),
            formatted_name: "Bo".into(),
            name: Default::default(),
            emails: vec![email(ContactUse::Work, true)],
            phones: vec![
                phone("+1 1", PhoneKind::Work),
                phone("+1 2", PhoneKind::Fax),
            ],
            addresses: Vec::new(),
            organization: None,
            title: None,
            note: None,
            categories: Vec::new(),
        };
        let graph = Contact {
            emails: vec![ContactEmail {
                address: "bo@fabrikam.example".into(),
                ..email(ContactUse::Other, true)
            }],
            phones: vec![phone("+1 1", PhoneKind::Work)],
            ..record.clone()
        };
        let mut server = ActItem::Contact(graph);
        fill_uncarried(&mut server, &ActItem::Contact(record));
        let ActItem::Contact(c) = server else {
            panic!("a contact")
        };
        assert_eq!(c.emails[0].kind, ContactUse::Work);
        assert_eq!(c.phones.len(), 2, "the fax number is kept");
    }
}
