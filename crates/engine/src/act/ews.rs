//! The ACT server side over EWS (`exchange_server` profiles, Exchange Server on
//! premises): the connector's calendar, contact and task operations on the
//! client acting as the mailbox (`crate::ews::client`), behind [`ActServer`].
//! The items map to the domain in `ews_map.rs`.
//!
//! **Collections** are the distinguished folders `calendar`, `tasks` and
//! `contacts` (their names are the hrefs); an item's href is its EWS item id and
//! its version its change key. The folders are the user's own, so only items
//! with the tracking category come in (as on Graph's calendar).
//!
//! **Changes**: `SyncFolderItems` page by page; the sync state after the last
//! page is the collection's token. No token is a full listing; a state Exchange
//! refuses (`ErrorInvalidSyncStateData`) restarts the folder from no state as a
//! full listing: linked items pair with their links by id, unlinked ones with
//! their records by UID, so nothing is duplicated.
//!
//! **Writes** name the change key the plan read (`UpdateItem` with
//! `NeverOverwrite`); a stale one ([`EwsError::Conflict`]) is the executor's
//! lost race (`WriteError::Stale`), as a 412 on DAV and Graph. A delete reads
//! the item's change key first (Exchange does not check one on `DeleteItem`).
//! What a write gives back is the item read again, for the link's fingerprint.
//!
//! **Claim**: one per mailbox, the `PublicStrings` String property
//! [`CLAIM_PROPERTY`] on the claim item, a task named [`CLAIM_SUBJECT`] in the
//! mail folder [`CLAIM_FOLDER`] below the calendar (out of Outlook's calendar
//! and mail views, and out of every folder ACT or email synchronizes).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use mailbridge_connectors::ews::{
    CalendarItem, CalendarItemType, DistinguishedFolder, EwsClient, EwsError, EwsVersioned,
    FolderRef, ItemChange, ItemId, ItemKind, ItemRef, MAX_CHANGES, TaskItem,
};
use mailbridge_connectors::graph::ActClaim;
use mailbridge_connectors::graph::act::zones;
use mailbridge_domain::act::model::{ActItem, ActKind, Appointment};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_store::Store;

use super::ews_map::{self, UID_PROPERTY};
use super::server::{
    ActServer, OrgClaim, ServerChanges, ServerCollection, ServerFetch, ServerItem, WriteError,
    Written,
};
use crate::Engine;
use crate::context::{MailboxContext, store_error};

/// The `PublicStrings` String property holding the organization claim,
/// `<organization id>;<RFC 3339 UTC time>`.
pub const CLAIM_PROPERTY: &str = "MailbridgeActClaim";
/// The folder (below the calendar) holding the claim item.
pub const CLAIM_FOLDER: &str = "Mailbridge";
/// The subject of the claim item.
pub const CLAIM_SUBJECT: &str =
    "Mailbridge: organization claim for appointments, contacts and tasks";

/// At most this many pages of changes per folder and run (512 changes each);
/// a folder with more goes on from the stored state on the next run.
const MAX_PAGES: usize = 200;

fn folder(kind: ActKind) -> DistinguishedFolder {
    match kind {
        ActKind::Appointment => DistinguishedFolder::Calendar,
        ActKind::Task => DistinguishedFolder::Tasks,
        ActKind::Contact => DistinguishedFolder::Contacts,
    }
}

fn item_kind(kind: ActKind) -> ItemKind {
    match kind {
        ActKind::Appointment => ItemKind::CalendarItem,
        ActKind::Task => ItemKind::Task,
        ActKind::Contact => ItemKind::Contact,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether Exchange said the item is not there.
fn is_gone(e: &EwsError) -> bool {
    e.as_sync_error()
        .is_some_and(|s| s.scope == ErrorScope::Item && s.message.contains("ErrorItemNotFound"))
}

fn describe(e: &SyncError) -> String {
    match &e.fix {
        Some(fix) => format!("{} ({fix})", e.message),
        None => e.message.clone(),
    }
}

fn item_failure(message: String) -> SyncError {
    SyncError {
        class: ErrorClass::Permanent,
        scope: ErrorScope::Item,
        message,
        fix: Some(
            "Change the item so that Exchange can hold it (see docs/ACT-SYNC.md, \"Exchange Server (EWS)\"); the other items go on"
                .to_owned(),
        ),
    }
}

fn write_error(href: &str, e: EwsError) -> WriteError {
    match e {
        EwsError::Conflict { .. } => WriteError::Stale {
            href: href.to_owned(),
        },
        other => WriteError::Failed(other.into_sync_error()),
    }
}

/// An error of a read: item-level ones stay with the item, the rest end the run.
fn read_error(e: EwsError) -> Result<String, SyncError> {
    let e = e.into_sync_error();
    if e.scope == ErrorScope::Item {
        Ok(describe(&e))
    } else {
        Err(e)
    }
}

/// What one read gave.
enum Read {
    /// The version and the item, or why it cannot be read.
    Found(String, Box<Result<ActItem, String>>),
    /// Not in the mailbox any more.
    Gone,
    /// An occurrence or exception of a series: the series is the item.
    PartOfSeries,
}

/// The single answer of a read by one id: `None` when the item is gone.
fn first<T>(
    answers: Vec<Result<EwsVersioned<T>, EwsError>>,
) -> Result<Option<EwsVersioned<T>>, EwsError> {
    match answers.into_iter().next() {
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) if is_gone(&e) => Ok(None),
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

fn version(id: &ItemId) -> String {
    id.change_key.clone().unwrap_or_default()
}

/// The claim item and its claim, if any.
async fn read_claim(client: &EwsClient) -> Result<Option<(ItemId, Option<OrgClaim>)>, SyncError> {
    let calendar = FolderRef::Distinguished(DistinguishedFolder::Calendar);
    let Some(found) = client.find_folder_by_name(&calendar, CLAIM_FOLDER).await? else {
        return Ok(None);
    };
    let folder = FolderRef::from(&found.id);
    let mut state: Option<String> = None;
    let mut item = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .sync_folder_items(&folder, state.as_deref(), MAX_CHANGES)
            .await?;
        item = item.or_else(|| {
            page.changes.iter().find_map(|c| match c {
                ItemChange::Created(i) | ItemChange::Updated(i) if i.kind == ItemKind::Task => {
                    Some(i.id.clone())
                }
                _ => None,
            })
        });
        state = Some(page.sync_state);
        if page.includes_last || item.is_some() {
            break;
        }
    }
    let Some(id) = item else {
        return Ok(None);
    };
    let read = client
        .get_tasks(&[ItemRef::Item(id.clone())], &[CLAIM_PROPERTY])
        .await?;
    let claim = match read.into_iter().next() {
        Some(Ok(v)) => v
            .item
            .properties
            .get(CLAIM_PROPERTY)
            .and_then(|value| ActClaim::parse(value).ok())
            .map(|c| OrgClaim {
                organization: c.org_id,
                claimed_at: c.claimed_at,
            }),
        Some(Err(e)) if is_gone(&e) => return Ok(None),
        Some(Err(e)) => return Err(e.into_sync_error()),
        None => None,
    };
    Ok(Some((id, claim)))
}

/// Writes the claim: on the claim item, created (with its folder) when missing.
async fn write_claim(client: &EwsClient, claim: &OrgClaim) -> Result<(), SyncError> {
    let value = ActClaim {
        org_id: claim.organization.clone(),
        claimed_at: claim.claimed_at,
    }
    .to_value();
    if let Some((id, _)) = read_claim(client).await? {
        let unguarded = ItemId::new(id.id, None);
        client
            .set_extended_property(&unguarded, CLAIM_PROPERTY, Some(&value))
            .await?;
        return Ok(());
    }
    let calendar = FolderRef::Distinguished(DistinguishedFolder::Calendar);
    let folder = client.create_folder(&calendar, CLAIM_FOLDER).await?;
    let mut item = TaskItem {
        subject: CLAIM_SUBJECT.to_owned(),
        ..TaskItem::default()
    };
    item.properties.insert(CLAIM_PROPERTY.to_owned(), value);
    client
        .create_task(Some(&FolderRef::from(&folder)), &item)
        .await?;
    Ok(())
}

/// Test & Enable's probe: the three folders and the claim. Creates and writes
/// nothing. The number of collections ACT would use.
///
/// # Errors
/// Exchange's, or the foreign-claim error.
pub async fn probe(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    let client = crate::ews::client(engine, ctx).await?;
    for kind in ActKind::ALL {
        client
            .sync_folder_items(&FolderRef::Distinguished(folder(kind)), None, 1)
            .await?;
    }
    if let Some((_, Some(claim))) = read_claim(&client).await?
        && super::claim::check(&ctx.mailbox.org_id, &ctx.mailbox, Some(&claim))
            == super::claim::ClaimCheck::Foreign
        && !ctx.mailbox.sync_with_this_org_only
    {
        return Err(super::claim::foreign_claim_error(&claim));
    }
    Ok(ActKind::ALL.len())
}

/// A mailbox's Exchange Server side.
pub struct EwsServer {
    client: EwsClient,
    store: Store,
    org: String,
    mailbox: String,
    collections: Vec<ServerCollection>,
    /// The last synced item of each linked href.
    snapshots: Mutex<HashMap<String, ActItem>>,
    /// The items Exchange holds after writes, by the item written.
    written: Mutex<HashMap<String, ActItem>>,
    /// The mailbox's claim once read or written in this run.
    claim: Mutex<Option<Option<OrgClaim>>>,
}

impl std::fmt::Debug for EwsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsServer")
            .field("mailbox", &self.mailbox)
            .field("collections", &self.collections)
            .finish_non_exhaustive()
    }
}

fn key(item: &ActItem) -> String {
    serde_json::to_string(item).unwrap_or_default()
}

impl EwsServer {
    /// The mailbox's three folders, recorded in `act_collections`.
    ///
    /// # Errors
    /// Exchange's (making the client) or the store's.
    pub async fn connect(engine: &Engine, ctx: &MailboxContext) -> Result<EwsServer, SyncError> {
        let client = crate::ews::client(engine, ctx).await?;
        EwsServer::with_client(engine, ctx, client).await
    }

    /// As [`EwsServer::connect`], with the client already made.
    ///
    /// # Errors
    /// The store's.
    pub async fn with_client(
        engine: &Engine,
        ctx: &MailboxContext,
        client: EwsClient,
    ) -> Result<EwsServer, SyncError> {
        let store = engine.store.clone();
        let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
        let mut collections = Vec::new();
        for kind in ActKind::ALL {
            let href = folder(kind).as_str().to_owned();
            let tracked = store
                .act_collections(org, mailbox, kind)
                .await
                .map_err(store_error)?
                .iter()
                .any(|k| k.href == href && k.tracked);
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
        Ok(EwsServer {
            client,
            store,
            org: org.clone(),
            mailbox: mailbox.clone(),
            collections,
            snapshots: Mutex::default(),
            written: Mutex::default(),
            claim: Mutex::default(),
        })
    }

    pub fn client(&self) -> &EwsClient {
        &self.client
    }

    /// The changes of a folder from `token`, page by page, as the last change
    /// of each item; `None` when Exchange refused the state.
    async fn sync(
        &self,
        c: &ServerCollection,
        token: Option<&str>,
    ) -> Result<Option<ServerChanges>, SyncError> {
        let folder = FolderRef::Distinguished(folder(c.kind));
        let wanted = item_kind(c.kind);
        let mut state = token.map(str::to_owned);
        let mut order: Vec<String> = Vec::new();
        let mut last: HashMap<String, Option<String>> = HashMap::new();
        let mut complete = false;
        for _ in 0..MAX_PAGES {
            let page = match self
                .client
                .sync_folder_items(&folder, state.as_deref(), MAX_CHANGES)
                .await
            {
                Ok(p) => p,
                Err(EwsError::SyncStateInvalid { .. }) if state.is_some() => return Ok(None),
                Err(e) => return Err(e.into_sync_error()),
            };
            for change in page.changes {
                let (id, version) = match change {
                    ItemChange::Created(i) | ItemChange::Updated(i) => {
                        if i.kind != wanted {
                            continue;
                        }
                        let v = version(&i.id);
                        (i.id.id, Some(v))
                    }
                    ItemChange::Deleted(id) => (id.id, None),
                    ItemChange::ReadFlagChanged { .. } => continue,
                };
                if last.insert(id.clone(), version).is_none() {
                    order.push(id);
                }
            }
            state = Some(page.sync_state);
            if page.includes_last {
                complete = true;
                break;
            }
        }
        let mut out = ServerChanges {
            token: state,
            // A listing cut short says nothing of the items it did not reach.
            full: token.is_none() && complete,
            ..ServerChanges::default()
        };
        for id in order {
            match last.remove(&id).flatten() {
                Some(v) => out.changed.push((id, v)),
                None => out.deleted.push(id),
            }
        }
        Ok(Some(out))
    }

    /// A calendar item with its exception items by id.
    async fn read_calendar(
        &self,
        id: &str,
    ) -> Result<Option<(EwsVersioned<CalendarItem>, HashMap<String, CalendarItem>)>, EwsError> {
        let read = self
            .client
            .get_calendar_items(&[ItemRef::Item(ItemId::new(id, None))], &[UID_PROPERTY])
            .await?;
        let Some(v) = first(read)? else {
            return Ok(None);
        };
        let mut exceptions = HashMap::new();
        if !v.item.modified_occurrences.is_empty() {
            let refs: Vec<ItemRef> = v
                .item
                .modified_occurrences
                .iter()
                .map(|m| ItemRef::Item(ItemId::new(m.id.id.clone(), None)))
                .collect();
            // An exception that cannot be read keeps the times its master lists.
            for e in self
                .client
                .get_calendar_items(&refs, &[])
                .await?
                .into_iter()
                .flatten()
            {
                exceptions.insert(e.id.id.clone(), e.item);
            }
        }
        Ok(Some((v, exceptions)))
    }

    /// Reads one item of the collection's kind.
    async fn read_one(&self, kind: ActKind, href: &str) -> Result<Read, SyncError> {
        let target = [ItemRef::Item(ItemId::new(href, None))];
        let props = [UID_PROPERTY, ews_map::PREFIX_PROPERTY];
        let outcome: Result<Option<Read>, EwsError> = match kind {
            ActKind::Appointment => self.read_calendar(href).await.map(|r| {
                r.map(|(v, exceptions)| {
                    if matches!(
                        v.item.item_type,
                        Some(CalendarItemType::Occurrence | CalendarItemType::Exception)
                    ) {
                        return Read::PartOfSeries;
                    }
                    let item = ews_map::appointment(&v.id.id, &v.item, &exceptions)
                        .map(ActItem::Appointment);
                    Read::Found(version(&v.id), Box::new(item))
                })
            }),
            ActKind::Contact => match self.client.get_contacts(&target, &props).await {
                Ok(r) => first(r).map(|v| {
                    v.map(|v| {
                        let item = ews_map::contact(&v.id.id, &v.item);
                        Read::Found(version(&v.id), Box::new(Ok(ActItem::Contact(item))))
                    })
                }),
                Err(e) => Err(e),
            },
            ActKind::Task => match self.client.get_tasks(&target, &props).await {
                Ok(r) => first(r).map(|v| {
                    v.map(|v| {
                        let item = ews_map::task(&v.id.id, &v.item);
                        Read::Found(version(&v.id), Box::new(Ok(ActItem::Task(item))))
                    })
                }),
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(Some(read)) => Ok(read),
            Ok(None) => Ok(Read::Gone),
            Err(e) => Ok(Read::Found(String::new(), Box::new(Err(read_error(e)?)))),
        }
    }

    /// Makes the occurrences of a series what the appointment says: its
    /// `EXDATE`s deleted, its exceptions written where they differ.
    async fn write_occurrences(&self, id: &str, a: &Appointment) -> Result<(), EwsError> {
        let Some(r) = &a.recurrence else {
            return Ok(());
        };
        if r.exdates.is_empty() && a.exceptions.is_empty() {
            return Ok(());
        }
        let Some((v, exceptions)) = self.read_calendar(id).await? else {
            return Ok(());
        };
        let current = ews_map::appointment(id, &v.item, &exceptions)
            .map_err(|why| EwsError::Failed(item_failure(why)))?;
        let Some(pr) = v.item.recurrence.clone() else {
            return Ok(());
        };
        let have_ex = current.recurrence.map(|r| r.exdates).unwrap_or_default();
        let occurrence = |date| {
            ews_map::instance_index(&pr, date).map(|i| ItemRef::Occurrence {
                master_id: v.id.id.clone(),
                instance_index: i,
            })
        };
        for ex in r.exdates.iter().filter(|e| !have_ex.contains(e)) {
            if let Some(target) = occurrence(zones::local_date(ex)) {
                self.client.delete_item(&target).await?;
            }
        }
        for o in &a.exceptions {
            if current.exceptions.contains(o) {
                continue;
            }
            let date = zones::local_date(&o.recurrence_id);
            let modified = v
                .item
                .modified_occurrences
                .iter()
                .find(|m| ews_map::series_date(&v.item, m.original_start) == date);
            let target = match modified {
                Some(m) => ItemRef::Item(ItemId::new(m.id.id.clone(), None)),
                None => match occurrence(date) {
                    Some(t) => t,
                    None => continue,
                },
            };
            let item =
                ews_map::occurrence_item(o).map_err(|why| EwsError::Failed(item_failure(why)))?;
            self.client
                .update_calendar_item(&target, None, &item)
                .await?;
        }
        Ok(())
    }

    /// Reads back what a write left, kept for [`ActServer::read_back`].
    async fn wrote(
        &self,
        kind: ActKind,
        id: &ItemId,
        item: &ActItem,
    ) -> Result<Written, WriteError> {
        let back = self
            .read_one(kind, &id.id)
            .await
            .map_err(WriteError::Failed)?;
        let version = match back {
            Read::Found(version, back) => match *back {
                Ok(back) => {
                    lock(&self.written).insert(key(item), back);
                    version
                }
                Err(_) => version,
            },
            _ => version(id),
        };
        Ok(Written {
            href: id.id.clone(),
            version,
        })
    }
}

impl ActServer for EwsServer {
    fn collections(&self) -> Vec<ServerCollection> {
        self.collections.clone()
    }

    /// EWS carries a contact's addresses and categories and attendees: what it
    /// lacks is filled in from the link's snapshot on the items read, so nothing
    /// is taken from the record here (as on Graph).
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
        {
            let mut snapshots = lock(&self.snapshots);
            for l in links.iter().filter(|l| l.collection_href == c.href) {
                if let Ok(Some(s)) = l.snapshot() {
                    snapshots.insert(l.server_href.clone(), s);
                }
            }
        }
        if let Some(changes) = self.sync(c, token).await? {
            return Ok(changes);
        }
        tracing::info!(mailbox = %self.mailbox, folder = %c.href,
            "Exchange refused the folder's sync state; reading the folder again");
        self.sync(c, None).await?.ok_or_else(|| {
            EwsError::SyncStateInvalid {
                folder: c.href.clone(),
            }
            .into_sync_error()
        })
    }

    async fn fetch(
        &self,
        c: &ServerCollection,
        hrefs: &[String],
    ) -> Result<ServerFetch, SyncError> {
        let mut out = ServerFetch::default();
        let mut seen = HashSet::new();
        // One GetItem per item: a series is read with its exceptions.
        for href in hrefs {
            if !seen.insert(href.clone()) {
                continue;
            }
            match self.read_one(c.kind, href).await? {
                Read::Gone => out.missing.push(href.clone()),
                // Left out of both lists: its series is the item.
                Read::PartOfSeries => {}
                Read::Found(version, item) => {
                    let mut item = *item;
                    if let (Ok(i), Some(s)) = (&mut item, lock(&self.snapshots).get(href)) {
                        ews_map::fill_uncarried(i, s);
                    }
                    out.items.push(ServerItem {
                        href: href.clone(),
                        version,
                        item,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, c: &ServerCollection, item: &ActItem) -> Result<Written, WriteError> {
        let fail = |e| write_error("", e);
        let id = match (c.kind, item) {
            (ActKind::Appointment, ActItem::Appointment(a)) => {
                let ci = ews_map::calendar_item(a)
                    .map_err(|why| WriteError::Failed(item_failure(why)))?;
                let id = self
                    .client
                    .create_calendar_item(None, &ci)
                    .await
                    .map_err(fail)?;
                self.write_occurrences(&id.id, a).await.map_err(fail)?;
                id
            }
            (ActKind::Contact, ActItem::Contact(x)) => self
                .client
                .create_contact(None, &ews_map::contact_item(x))
                .await
                .map_err(fail)?,
            (ActKind::Task, ActItem::Task(t)) => {
                let ti =
                    ews_map::task_item(t).map_err(|why| WriteError::Failed(item_failure(why)))?;
                self.client.create_task(None, &ti).await.map_err(fail)?
            }
            _ => return Err(wrong_kind()),
        };
        self.wrote(c.kind, &id, item).await
    }

    async fn update(
        &self,
        c: &ServerCollection,
        href: &str,
        if_match: &str,
        item: &ActItem,
    ) -> Result<Written, WriteError> {
        let fail = |e| write_error(href, e);
        let target = ItemRef::Item(ItemId::new(href, Some(if_match.to_owned())));
        let guard = Some(if_match).filter(|v| !v.is_empty());
        let id = match (c.kind, item) {
            (ActKind::Appointment, ActItem::Appointment(a)) => {
                let ci = ews_map::calendar_item(a)
                    .map_err(|why| WriteError::Failed(item_failure(why)))?;
                let id = self
                    .client
                    .update_calendar_item(&target, guard, &ci)
                    .await
                    .map_err(fail)?;
                self.write_occurrences(&id.id, a).await.map_err(fail)?;
                id
            }
            (ActKind::Contact, ActItem::Contact(x)) => self
                .client
                .update_contact(&target, guard, &ews_map::contact_item(x))
                .await
                .map_err(fail)?,
            (ActKind::Task, ActItem::Task(t)) => {
                let ti =
                    ews_map::task_item(t).map_err(|why| WriteError::Failed(item_failure(why)))?;
                self.client
                    .update_task(&target, guard, &ti)
                    .await
                    .map_err(fail)?
            }
            _ => return Err(wrong_kind()),
        };
        self.wrote(c.kind, &id, item).await
    }

    async fn delete(&self, href: &str, if_match: &str) -> Result<(), WriteError> {
        // Exchange does not check a change key on DeleteItem: compare it first.
        let kind = self.kind_of(href).await.map_err(WriteError::Failed)?;
        let Some(kind) = kind else {
            return Ok(());
        };
        match self
            .read_one(kind, href)
            .await
            .map_err(WriteError::Failed)?
        {
            Read::Gone => return Ok(()),
            Read::Found(current, _) if !if_match.is_empty() && current != if_match => {
                return Err(WriteError::Stale {
                    href: href.to_owned(),
                });
            }
            _ => {}
        }
        self.client
            .delete_item(&ItemRef::Item(ItemId::new(href, None)))
            .await
            .map_err(|e| write_error(href, e))
    }

    /// The mailbox has one claim (on the claim item): every collection answers
    /// it, read once per run.
    async fn claim(&self, _c: &ServerCollection) -> Result<Option<OrgClaim>, SyncError> {
        if let Some(known) = lock(&self.claim).clone() {
            return Ok(known);
        }
        let claim = read_claim(&self.client).await?.and_then(|(_, c)| c);
        *lock(&self.claim) = Some(claim.clone());
        Ok(claim)
    }

    /// Written once per run, whatever the number of collections asking.
    async fn set_claim(&self, _c: &ServerCollection, claim: &OrgClaim) -> Result<(), SyncError> {
        if lock(&self.claim).as_ref() == Some(&Some(claim.clone())) {
            return Ok(());
        }
        write_claim(&self.client, claim).await?;
        *lock(&self.claim) = Some(Some(claim.clone()));
        Ok(())
    }

    /// The item Exchange held after it was written, with what EWS cannot carry
    /// filled in from the item itself.
    fn read_back(&self, item: &ActItem) -> ActItem {
        let mut back = lock(&self.written)
            .get(&key(item))
            .cloned()
            .unwrap_or_else(|| item.clone());
        ews_map::fill_uncarried(&mut back, item);
        back
    }
}

impl EwsServer {
    /// The kind of the collection a linked href belongs to, from the links.
    async fn kind_of(&self, href: &str) -> Result<Option<ActKind>, SyncError> {
        for kind in ActKind::ALL {
            let links = self
                .store
                .act_links(&self.org, &self.mailbox, kind)
                .await
                .map_err(store_error)?;
            if links.iter().any(|l| l.server_href == href) {
                return Ok(Some(kind));
            }
        }
        Ok(None)
    }
}

fn wrong_kind() -> WriteError {
    WriteError::Failed(SyncError {
        class: ErrorClass::Permanent,
        scope: ErrorScope::Item,
        message: "the item does not belong in this Exchange folder".to_owned(),
        fix: Some("Nothing to do: report this if it persists".to_owned()),
    })
}
