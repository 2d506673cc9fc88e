//! The server side of the ACT sync as the executor sees it, whatever the protocol:
//! a collection per kind, its changes since a token, items fetched by id, and
//! version-guarded writes. CalDAV/CardDAV implements it in `dav.rs`; Exchange
//! (Graph) can implement the same trait.

use std::future::Future;

use chrono::{DateTime, Utc};
use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::error_model::SyncError;

/// The collection (calendar, task list, address book) a kind is synchronized with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCollection {
    pub kind: ActKind,
    /// Its href (CalDAV, CardDAV) or id.
    pub href: String,
    /// Every item here comes into the store (not only those with the tracking
    /// category).
    pub tracked: bool,
}

/// What changed in a collection since a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerChanges {
    /// The token to store once the changes are applied.
    pub token: Option<String>,
    /// Created or changed items with their versions.
    pub changed: Vec<(String, String)>,
    /// Deleted items.
    pub deleted: Vec<String>,
    /// A full listing: a known item absent from `changed` was deleted.
    pub full: bool,
}

/// One item read from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerItem {
    pub href: String,
    /// The ETag or change key.
    pub version: String,
    /// The item, or why it cannot be read.
    pub item: Result<ActItem, String>,
}

/// The items fetched, and those the server no longer has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerFetch {
    pub items: Vec<ServerItem>,
    pub missing: Vec<String>,
}

/// A written item: where it is and its new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub href: String,
    pub version: String,
}

/// A write that did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The item is not at the version the write named (a create: an item of that
    /// name exists): read it again and plan again.
    Stale {
        href: String,
    },
    Failed(SyncError),
}

/// "This collection is synchronized with this organization only": which
/// organization claimed it, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgClaim {
    pub organization: String,
    pub claimed_at: DateTime<Utc>,
}

/// A mail system's side of a mailbox's appointments, tasks and contacts.
pub trait ActServer: Sync {
    /// The collection of each kind, in kind order.
    fn collections(&self) -> Vec<ServerCollection>;

    /// Fills in, on an item read from this server before it is written to the
    /// record, what this server cannot carry, from the record's item: so that
    /// writing it loses nothing the server never had. By default what CalDAV and
    /// CardDAV cannot carry (attendee roles, RDATEs, a contact's addresses and
    /// categories); a server that carries those overrides it.
    fn keep_unmapped(&self, server: &mut ActItem, record: &ActItem) {
        super::dav_map::keep_unmapped(server, record);
    }

    /// What changed since `token` (`None`: everything, as a full listing).
    fn changes(
        &self,
        c: &ServerCollection,
        token: Option<&str>,
    ) -> impl Future<Output = Result<ServerChanges, SyncError>> + Send;

    /// Reads items by href. An item of another kind (a task in a calendar read for
    /// appointments) is left out of both lists.
    fn fetch(
        &self,
        c: &ServerCollection,
        hrefs: &[String],
    ) -> impl Future<Output = Result<ServerFetch, SyncError>> + Send;

    /// Creates the item, only if no item of its name exists.
    fn create(
        &self,
        c: &ServerCollection,
        item: &ActItem,
    ) -> impl Future<Output = Result<Written, WriteError>> + Send;

    /// Replaces the item at `href`, only if it is still at `if_match`.
    fn update(
        &self,
        c: &ServerCollection,
        href: &str,
        if_match: &str,
        item: &ActItem,
    ) -> impl Future<Output = Result<Written, WriteError>> + Send;

    /// Deletes the item at `href`, only if it is still at `if_match`.
    fn delete(
        &self,
        href: &str,
        if_match: &str,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// The organization claim on a collection, if any.
    fn claim(
        &self,
        c: &ServerCollection,
    ) -> impl Future<Output = Result<Option<OrgClaim>, SyncError>> + Send;

    /// Writes the organization claim on a collection.
    fn set_claim(
        &self,
        c: &ServerCollection,
        claim: &OrgClaim,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// The item as the server will give it back once written (through the
    /// protocol's mapping), for the fingerprint of its server side.
    fn read_back(&self, item: &ActItem) -> ActItem;
}
