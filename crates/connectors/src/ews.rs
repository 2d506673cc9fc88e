//! The EWS connector for `exchange_server` profiles (Exchange Server 2016, 2019
//! and Subscription Edition, on premises): SOAP 1.1 over HTTPS, requests written
//! as XML text with every value escaped, answers read with roxmltree. One
//! [`EwsClient`] per profile (a service account with Basic authentication, or
//! OAuth with hybrid modern authentication), acting as each mailbox through
//! `ApplicationImpersonation` ([`EwsClient::impersonating`]).
//!
//! What it offers: the folder tree's and a folder's changes page by page
//! (`SyncFolderHierarchy`, `SyncFolderItems`, whose sync state is the folder's
//! checkpoint), messages as MIME, moves, folder look-up and creation, sending
//! with the copy saved in Sent Items and the look-up of a sent message by
//! Message-ID, categories, `PublicStrings` properties, and appointments (with
//! recurrence, modified and deleted occurrences), contacts and tasks. Every
//! failure is an [`EwsError`]: a refused sync state and a stale change key are
//! variants of their own, everything else a classified
//! [`SyncError`](mailbridge_domain::error_model::SyncError).
//!
//! Behaviour of Exchange this relies on, each from Microsoft's EWS reference:
//! - `QUIRK_SERVER_BUSY`: throttling is `ErrorServerBusy`, as a SOAP fault (HTTP
//!   500) or per response message, with `BackOffMilliseconds` in `MessageXml`
//!   (not always): the client waits it out and retries, bounded ([`RetryPolicy`]).
//! - `QUIRK_ANCHOR_MAILBOX`: with impersonation, `X-AnchorMailbox` must name the
//!   mailbox so that the front end routes the request to the mailbox's server.
//! - `QUIRK_SCHEMA_ORDER`: elements of an item must come in the schema's sequence
//!   order, or Exchange refuses the request (`ErrorSchemaValidation`).
//! - `QUIRK_DATE_OFFSET`: `xs:date` values may carry an offset (`2026-01-05-08:00`).
//! - `QUIRK_MESSAGE_ID_BRACKETS`: `InternetMessageId` keeps the angle brackets,
//!   and a restriction on it compares the whole text.
//! - `QUIRK_NEW_IDS_ON_MOVE`: a moved item gets a new id (`ReturnNewItemIds`).

mod act;
mod act_calendar;
mod act_contacts;
mod act_tasks;
mod auth;
mod client;
mod errors;
mod folders;
mod mail;
mod model;
mod properties;
mod recurrence;
mod soap;
mod throttle;
mod xml;

pub use act::EwsVersioned;
pub use act_calendar::{
    Attendee, CalendarItem, CalendarItemType, EmailAddress, ModifiedOccurrence,
};
pub use act_contacts::{AddressKey, ContactItem, EmailKey, PhoneKey, PhysicalAddress};
pub use act_tasks::{Importance, TaskItem, TaskStatus};
pub use auth::{EWS_ROLE, ExchangeTokens, exchange_token_request};
pub use client::{EwsAuth, EwsClient, EwsConfig, EwsEvent, EwsObserver};
pub use errors::{EwsError, IMPERSONATION_FIX};
pub use mail::{MAX_BATCH, MAX_CHANGES, bracketed};
pub use model::{
    DistinguishedFolder, Folder, FolderChange, FolderId, FolderKind, FolderRef, HierarchySync,
    ItemChange, ItemId, ItemKind, ItemRef, ItemsSync, MailItem, SyncedItem,
};
pub use soap::REQUEST_SERVER_VERSION;
pub use throttle::{MAILBOX_CONCURRENCY, RetryPolicy};
pub use xml::{format_date_time, parse_date, parse_date_time};
