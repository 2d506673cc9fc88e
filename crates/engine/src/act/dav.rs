//! The ACT server side over CalDAV/CardDAV (`imap_smtp` profiles with a
//! `dav_location`): the mailbox's client (its IMAP credentials), the collections
//! chosen or created for each kind, and [`ActServer`] on the connector.
//!
//! Collections: the user's default calendar for appointments, a task list (a
//! calendar that holds `VTODO`s), the default address book; a missing one is
//! created ("Calendar", "Tasks", "Contacts"). A collection mailbridge created is
//! **tracked**: everything the user puts there comes in. In a collection that was
//! there before, only items with the tracking category come in (and, once linked,
//! every item of a record). The choice is kept in `act_collections`, so later runs
//! use the same collections.

use std::collections::HashMap;
use std::sync::Mutex;

use mailbridge_connectors::Auth;
use mailbridge_connectors::dav::{
    self, CalendarComponent, CalendarResource, Claim, Collection, CollectionKind, DavClient,
    DavConfig, DavError, Discovery, ItemFormat,
};
use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

use super::dav_map;
use super::server::{
    ActServer, OrgClaim, ServerChanges, ServerCollection, ServerFetch, ServerItem, WriteError,
    Written,
};
use crate::Engine;
use crate::context::{MailboxContext, config_error, store_error};

/// The server's copy of an item, kept from a fetch for the next write of it.
#[derive(Debug, Clone)]
enum Previous {
    Calendar(CalendarResource),
    Card(dav::Contact),
}

/// A mailbox's CalDAV/CardDAV side.
#[derive(Debug)]
pub struct DavServer {
    client: DavClient,
    collections: Vec<ServerCollection>,
    previous: Mutex<HashMap<String, Previous>>,
}

/// The mailbox's DAV client: the profile's `dav_location` with the credentials the
/// mailbox signs in to IMAP with.
///
/// # Errors
/// A permanent configuration error without a location or password credentials.
pub async fn client_for(engine: &Engine, ctx: &MailboxContext) -> Result<DavClient, SyncError> {
    let location = ctx.profile.settings.dav_location.clone().ok_or_else(|| {
        config_error(
            "appointments, contacts and tasks are not available for this IMAP/SMTP profile: it has no CalDAV/CardDAV location",
            "Set dav_location on the profile (the CalDAV/CardDAV server's URL), then run Test & Enable",
        )
    })?;
    let imap = ctx.imap(&engine.store, &engine.config).await?;
    let Auth::Password { username, password } = imap.auth else {
        return Err(config_error(
            "CalDAV/CardDAV needs a user name and password; the profile signs in with OAuth",
            "Use credentials_specified_by_user_or_queue or credentials_specified_in_profile on the profile",
        ));
    };
    DavClient::new(DavConfig {
        base_url: location,
        user: username,
        password,
        timeout: engine.config.network_timeout,
        extra_roots: engine.config.extra_roots.clone(),
    })
}

/// Test & Enable's probe: discover the user's collections and list them, and check
/// the claims of those ACT would use. Creates nothing.
///
/// # Errors
/// The server's, or the foreign-claim error.
pub async fn probe(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    let client = client_for(engine, ctx).await?;
    let discovery = client.discover().await.map_err(DavError::into_sync_error)?;
    let store = &engine.store;
    let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
    for kind in ActKind::ALL {
        let known = store
            .act_collections(org, mailbox, kind)
            .await
            .map_err(store_error)?;
        let Some((c, _)) = choose(kind, &discovery, &known) else {
            continue;
        };
        let claim = c.claim.as_ref().map(org_claim);
        if super::claim::check(org, &ctx.mailbox, claim.as_ref())
            == super::claim::ClaimCheck::Foreign
            && !ctx.mailbox.sync_with_this_org_only
            && let Some(claim) = &claim
        {
            return Err(super::claim::foreign_claim_error(claim));
        }
    }
    Ok(discovery.collections.len())
}

impl DavServer {
    /// Connects as the mailbox's user, discovers its collections and chooses (or
    /// creates) one per kind, recording the choice.
    ///
    /// # Errors
    /// The server's, a user without home sets, or the store's.
    pub async fn connect(engine: &Engine, ctx: &MailboxContext) -> Result<DavServer, SyncError> {
        let client = client_for(engine, ctx).await?;
        DavServer::with_client(engine, ctx, client).await
    }

    /// As [`DavServer::connect`], with a client already made.
    ///
    /// # Errors
    /// As [`DavServer::connect`].
    pub async fn with_client(
        engine: &Engine,
        ctx: &MailboxContext,
        client: DavClient,
    ) -> Result<DavServer, SyncError> {
        let discovery = client.discover().await.map_err(DavError::into_sync_error)?;
        let store = &engine.store;
        let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
        let mut collections = Vec::new();
        for kind in ActKind::ALL {
            let known = store
                .act_collections(org, mailbox, kind)
                .await
                .map_err(store_error)?;
            let (href, tracked) = match choose(kind, &discovery, &known) {
                Some((c, tracked)) => (c.href.clone(), tracked),
                None => (create(&client, &discovery, kind).await?.href, true),
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
        Ok(DavServer {
            client,
            collections,
            previous: Mutex::default(),
        })
    }

    pub fn client(&self) -> &DavClient {
        &self.client
    }

    fn remember(&self, href: &str, p: Previous) {
        self.previous
            .lock()
            .expect("previous lock")
            .insert(href.to_owned(), p);
    }

    fn previous(&self, href: &str) -> Option<Previous> {
        self.previous
            .lock()
            .expect("previous lock")
            .get(href)
            .cloned()
    }

    /// The item's text in its format, with what the server's copy lends it.
    fn data(&self, item: &ActItem, href: Option<&str>) -> Result<(ItemFormat, String), WriteError> {
        let previous = href.and_then(|h| self.previous(h));
        match item {
            ActItem::Contact(c) => {
                let card = match &previous {
                    Some(Previous::Card(p)) => Some(p),
                    _ => None,
                };
                Ok((
                    ItemFormat::VCard,
                    dav_map::card_from_contact(c, card).to_vcf(),
                ))
            }
            _ => {
                let cal = match &previous {
                    Some(Previous::Calendar(p)) => Some(p),
                    _ => None,
                };
                let text = dav_map::resource_from_item(item, cal)
                    .ok_or_else(|| item_error("the item is not an appointment or a task".into()))?
                    .to_ics()
                    .map_err(|e| item_error(e.0))?;
                Ok((ItemFormat::ICalendar, text))
            }
        }
    }
}

fn item_error(message: String) -> WriteError {
    WriteError::Failed(SyncError {
        class: ErrorClass::Permanent,
        scope: ErrorScope::Item,
        message,
        fix: Some("Correct the record; it is written again when it changes".to_owned()),
    })
}

fn write_error(e: DavError) -> WriteError {
    match e {
        DavError::PreconditionFailed { href } => WriteError::Stale { href },
        DavError::Failed(e) => WriteError::Failed(e),
    }
}

fn org_claim(c: &Claim) -> OrgClaim {
    OrgClaim {
        organization: c.organization.clone(),
        claimed_at: c.claimed_at,
    }
}

/// Names the user's default collections are known by, on the servers seen.
const DEFAULT_NAMES: [&str; 6] = [
    "default",
    "calendar",
    "personal",
    "home",
    "contacts",
    "addressbook",
];

fn last_segment(href: &str) -> String {
    href.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn named(c: &Collection, names: &[&str]) -> bool {
    let display = c.display_name.as_deref().unwrap_or("").to_ascii_lowercase();
    let segment = last_segment(&c.href);
    names.iter().any(|n| display == *n || segment == *n)
}

/// The collection of `kind`: the one recorded before when it is still there, else
/// the user's default; with whether it is tracked. `None`: there is none.
fn choose<'d>(
    kind: ActKind,
    d: &'d Discovery,
    known: &[mailbridge_store::ActCollection],
) -> Option<(&'d Collection, bool)> {
    let fits = |c: &Collection| match kind {
        ActKind::Appointment => c.holds_events(),
        ActKind::Task => c.holds_tasks(),
        ActKind::Contact => c.kind == CollectionKind::AddressBook,
    };
    for k in known {
        if let Some(c) = d.collections.iter().find(|c| c.href == k.href && fits(c)) {
            return Some((c, k.tracked));
        }
    }
    let candidates: Vec<&Collection> = d.collections.iter().filter(|c| fits(c)).collect();
    let preferred = match kind {
        ActKind::Appointment => candidates
            .iter()
            .find(|c| c.components.iter().any(|x| x == "VEVENT") && named(c, &DEFAULT_NAMES)),
        // A list of tasks only, then one named so, then any calendar that takes them.
        ActKind::Task => candidates
            .iter()
            .find(|c| c.components == ["VTODO"])
            .or_else(|| candidates.iter().find(|c| named(c, &["tasks", "todo"]))),
        ActKind::Contact => candidates.iter().find(|c| named(c, &DEFAULT_NAMES)),
    };
    preferred.or(candidates.first()).map(|c| (*c, false))
}

/// Creates the collection of `kind` in the user's first home set.
async fn create(client: &DavClient, d: &Discovery, kind: ActKind) -> Result<Collection, SyncError> {
    let homes = match kind {
        ActKind::Contact => &d.addressbook_homes,
        _ => &d.calendar_homes,
    };
    let home = homes.first().ok_or_else(|| {
        config_error(
            format!(
                "the CalDAV/CardDAV server names no {} home for the user",
                if kind == ActKind::Contact {
                    "address book"
                } else {
                    "calendar"
                }
            ),
            "Check that the profile's dav_location is the server's CalDAV/CardDAV URL and that the user may have calendars and address books there",
        )
    })?;
    let created = match kind {
        ActKind::Appointment => {
            client
                .create_calendar(home, "calendar", "Calendar", CalendarComponent::Event)
                .await
        }
        ActKind::Task => {
            client
                .create_calendar(home, "tasks", "Tasks", CalendarComponent::Task)
                .await
        }
        ActKind::Contact => {
            client
                .create_address_book(home, "contacts", "Contacts")
                .await
        }
    };
    created.map_err(DavError::into_sync_error)
}

fn collection_kind(kind: ActKind) -> CollectionKind {
    match kind {
        ActKind::Contact => CollectionKind::AddressBook,
        _ => CollectionKind::Calendar,
    }
}

/// A name for a new item from its UID, one path segment of unreserved characters
/// only: a server lists an href in its own spelling (Radicale writes `@` as `%40`),
/// and links compare hrefs as text.
fn item_name(uid: &str, format: ItemFormat) -> String {
    let safe: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    format!("{safe}.{}", format.extension())
}

impl ActServer for DavServer {
    fn collections(&self) -> Vec<ServerCollection> {
        self.collections.clone()
    }

    async fn changes(
        &self,
        c: &ServerCollection,
        token: Option<&str>,
    ) -> Result<ServerChanges, SyncError> {
        let delta = self
            .client
            .sync_collection(&c.href, token)
            .await
            .map_err(DavError::into_sync_error)?;
        Ok(ServerChanges {
            token: delta.token,
            changed: delta
                .changed
                .into_iter()
                .map(|v| (v.href, v.etag))
                .collect(),
            deleted: delta.deleted,
            full: delta.full,
        })
    }

    async fn fetch(
        &self,
        c: &ServerCollection,
        hrefs: &[String],
    ) -> Result<ServerFetch, SyncError> {
        let fetched = self
            .client
            .multiget(&c.href, collection_kind(c.kind), hrefs)
            .await
            .map_err(DavError::into_sync_error)?;
        let mut out = ServerFetch {
            items: Vec::new(),
            missing: fetched.missing,
        };
        for f in fetched.items {
            let item = match c.kind {
                ActKind::Contact => match dav::Contact::parse(&f.data) {
                    Ok(card) => {
                        let fallback = last_segment(&f.href);
                        let contact = dav_map::contact_from_card(&card, &fallback);
                        self.remember(&f.href, Previous::Card(card));
                        Ok(ActItem::Contact(contact))
                    }
                    Err(e) => Err(e.0),
                },
                kind => match CalendarResource::parse(&f.data) {
                    Ok(res) => match dav_map::item_from_resource(kind, &res) {
                        Ok(Some(item)) => {
                            self.remember(&f.href, Previous::Calendar(res));
                            Ok(item)
                        }
                        // Another kind's item sharing the calendar.
                        Ok(None) => continue,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e.0),
                },
            };
            out.items.push(ServerItem {
                href: f.href,
                version: f.etag,
                item,
            });
        }
        Ok(out)
    }

    async fn create(&self, c: &ServerCollection, item: &ActItem) -> Result<Written, WriteError> {
        let (format, data) = self.data(item, None)?;
        let v = self
            .client
            .create(&c.href, &item_name(item.uid(), format), format, &data)
            .await
            .map_err(write_error)?;
        Ok(Written {
            href: v.href,
            version: v.etag,
        })
    }

    async fn update(
        &self,
        _c: &ServerCollection,
        href: &str,
        if_match: &str,
        item: &ActItem,
    ) -> Result<Written, WriteError> {
        let (format, data) = self.data(item, Some(href))?;
        let etag = self
            .client
            .update(href, if_match, format, &data)
            .await
            .map_err(write_error)?;
        Ok(Written {
            href: href.to_owned(),
            version: etag,
        })
    }

    async fn delete(&self, href: &str, if_match: &str) -> Result<(), WriteError> {
        match self.client.delete(href, if_match).await {
            Ok(()) => Ok(()),
            // Already gone: what the delete wanted.
            Err(DavError::Failed(e))
                if e.scope == ErrorScope::Item && e.message.contains("has no item") =>
            {
                Ok(())
            }
            Err(e) => Err(write_error(e)),
        }
    }

    async fn claim(&self, c: &ServerCollection) -> Result<Option<OrgClaim>, SyncError> {
        let claim = self
            .client
            .claim(&c.href)
            .await
            .map_err(DavError::into_sync_error)?;
        Ok(claim.as_ref().map(org_claim))
    }

    async fn set_claim(&self, c: &ServerCollection, claim: &OrgClaim) -> Result<(), SyncError> {
        let claim = Claim {
            organization: claim.organization.clone(),
            claimed_at: claim.claimed_at,
        };
        self.client
            .set_claim(&c.href, &claim)
            .await
            .map_err(DavError::into_sync_error)
    }

    fn read_back(&self, item: &ActItem) -> ActItem {
        dav_map::read_back(item)
    }
}
