//! The CalDAV/CardDAV connector for appointments, contacts and tasks: discovery of a
//! user's calendars and address books, creating them, incremental reads
//! (`sync-collection`, multiget) and version-guarded writes, with iCalendar and
//! vCard read into plain values ([`ical`], [`vcard`]) that the ACT planner maps.
//!
//! One [`DavClient`] per mailbox (its user's credentials). Every failure is a
//! [`DavError`]: a lost race on a write is [`DavError::PreconditionFailed`] (read
//! again, plan again); everything else a classified
//! [`SyncError`](mailbridge_domain::error_model::SyncError).
//!
//! **The claim property.** `{https://mailbridge.dev/ns}claim` ([`MAILBRIDGE_NS`],
//! local name `claim`) is a dead property mailbridge sets on a collection it
//! synchronizes with one organization only; its text is
//! `<organization id>;<RFC 3339 UTC time of the claim>` ([`Claim`]). Read it with
//! [`DavClient::claim`] (or from [`Collection::claim`] in any listing), write it with
//! [`DavClient::set_claim`], remove it with [`DavClient::clear_claim`].
//!
//! Server behaviour this relies on or works around:
//! - `QUIRK_NO_SYNC_REPORT`: a server without RFC 6578 refuses the REPORT (400, 405,
//!   501); such collections are listed in full each time (PROPFIND depth 1).
//! - `QUIRK_PUT_WITHOUT_ETAG`: a server that rewrote the data it stored answers a
//!   PUT without an ETag (RFC 4791 section 5.3.4); the version is then read back.
//! - Radicale answers `/.well-known/caldav` with a 301 to `/` and names the principal
//!   there, and the home sets only on the principal itself; its sync tokens are URLs
//!   (`http://radicale.org/ns/sync/<hash>`) and an unknown one gives 403 with
//!   `DAV:valid-sync-token`, which restarts with a full listing.

mod client;
mod collections;
mod discovery;
mod errors;
pub mod ical;
mod items;
mod sync;
pub mod vcard;
mod xml;

pub use client::{DavClient, DavConfig};
pub use collections::{CalendarComponent, Claim, Collection, CollectionKind};
pub use discovery::Discovery;
pub use errors::DavError;
pub use ical::{Attendee, CalDateTime, CalendarResource, DataError, Event, Task};
pub use items::ItemFormat;
pub use sync::{Fetched, FetchedItem, ItemVersion, MULTIGET_BATCH, SyncDelta};
pub use vcard::{CardVersion, Contact, Typed};
pub use xml::MAILBRIDGE_NS;
