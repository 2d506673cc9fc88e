//! An Exchange Web Services (EWS) test server: the operations mailbridge uses against
//! Exchange Server on-premises, on 127.0.0.1 over plain HTTP, built from Microsoft's
//! published EWS schema and reference (learn.microsoft.com/exchange/client-developer/
//! web-service-reference), since no Exchange server is reachable from the test
//! machines.
//!
//! `POST /EWS/Exchange.asmx` answers SOAP 1.1 (`Content-Type: text/xml`, else 415);
//! the operation is the first child of `soap:Body`, in the messages namespace
//! `http://schemas.microsoft.com/exchange/services/2006/messages` (`m:`), its
//! items and folders in the types namespace `…/2006/types` (`t:`):
//!
//! ```xml
//! <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
//!     xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
//!     xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
//!   <soap:Header>
//!     <t:RequestServerVersion Version="Exchange2016"/>
//!     <t:ExchangeImpersonation><t:ConnectingSID>
//!       <t:PrimarySmtpAddress>bob@example.org</t:PrimarySmtpAddress>
//!     </t:ConnectingSID></t:ExchangeImpersonation>
//!   </soap:Header>
//!   <soap:Body><m:GetFolder>…</m:GetFolder></soap:Body>
//! </soap:Envelope>
//! → HTTP 200
//! <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
//!   <s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="1" … Version="V2017_07_11" …/></s:Header>
//!   <s:Body …><m:GetFolderResponse xmlns:m="…/messages" xmlns:t="…/types">
//!     <m:ResponseMessages>
//!       <m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>…
//!       <m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>…</m:MessageText>
//!         <m:ResponseCode>ErrorFolderNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>…
//! ```
//!
//! Operations (each module documents its XML): SyncFolderHierarchy and
//! SyncFolderItems (`sync.rs`: sealed, versioned sync states, paging by
//! `MaxChangesReturned` with `IncludesLastItemInRange`, ErrorInvalidSyncStateData),
//! GetItem, FindItem, MoveItem, DeleteItem (`items.rs`), CreateItem (`create.rs`:
//! send and save, drafts, calendar items, contacts, tasks), UpdateItem
//! (`update.rs`: ChangeKey checks, ErrorIrresolvableConflict, extended properties),
//! CreateFolder, GetFolder, FindFolder (`folders.rs`). Other operations get a SOAP
//! fault `ErrorInvalidRequest` naming them.
//!
//! Errors Exchange raises around an operation are SOAP faults with HTTP 500
//! (`faultcode` `a:ErrorServerBusy`, and in `detail` `e:ResponseCode`, `e:Message`
//! and `t:MessageXml`): ErrorServerBusy (with `<t:Value
//! Name="BackOffMilliseconds">`), ErrorImpersonateUserDenied,
//! ErrorNonExistentMailbox, ErrorInvalidServerVersion, ErrorSchemaValidation —
//! as the EWS Managed API reads them (`ServiceRequestBase.ProcessWebException`
//! turns a 500 with ErrorServerBusy into `ServerBusyException`). Errors about one
//! item or folder are `ResponseClass="Error"` messages with HTTP 200.
//!
//! Authentication: HTTP Basic of [`ServiceAccount`]s, or `Authorization: Bearer`
//! mapped to an account by [`EwsTestServer::set_bearer_check`]; anything else is
//! 401 with `WWW-Authenticate`. NTLM and Negotiate are not emulated. A request with
//! `t:ExchangeImpersonation` acts on that mailbox, which the account must hold the
//! ApplicationImpersonation role for ([`Impersonation`]); without it, on the
//! account's own mailbox.
//!
//! Autodiscover, POX and SOAP (`autodiscover.rs`), answers this server's EWS URL.
//!
//! ```no_run
//! # async fn example() {
//! use mailbridge_testkit::ews_server::{EwsTestServer, ServiceAccount};
//! let ews = EwsTestServer::start().await;
//! ews.add_service_account(ServiceAccount::new("svc@example.org", "secret").impersonating_all());
//! ews.add_mailbox("bob@example.org", "Bob");
//! let id = ews.deliver("bob@example.org", "inbox", b"Subject: hi\r\n\r\nHello\r\n");
//! // ... a client of ews.url() with Basic svc@example.org, impersonating bob@example.org
//! # }
//! ```
//!
//! docs/TESTING.md lists what is verified only against this server.

// Helpers return axum's `Response` as the error (a 401), as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as Extract};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

mod auth;
mod autodiscover;
mod create;
mod fields;
mod folders;
mod items;
mod mime;
mod restriction;
mod schema;
mod series;
mod service;
mod soap;
mod state;
mod sync;
mod sync_state;
mod update;
mod xml;

pub use auth::{BearerCheck, Impersonation, ServiceAccount};
pub use state::ItemKind;
pub use sync::MAX_CHANGES;

use state::{Event, State};
use sync_state::SyncSealer;

/// The path of the EWS endpoint (IIS matches paths without regard to case).
pub const EWS_PATH: &str = "/EWS/Exchange.asmx";

pub(crate) struct Shared {
    state: Mutex<State>,
    sealer: SyncSealer,
    /// `http://127.0.0.1:PORT`.
    origin: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent enough state for tests.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ews_url(&self) -> String {
        format!("{}{EWS_PATH}", self.origin)
    }
}

/// One request the server answered, for tests that check what a client did (and
/// when: back-off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The operation (`SyncFolderItems`, ...); `Autodiscover` for POX, `GetUserSettings`
    /// for SOAP autodiscover; empty when the body was not SOAP.
    pub operation: String,
    /// The authenticated account, `None` when it got 401.
    pub account: Option<String>,
    /// The mailbox it acted on (impersonated, the account's own, or the one asked for
    /// by autodiscover).
    pub mailbox: Option<String>,
    /// Whether it carried `t:ExchangeImpersonation`.
    pub impersonated: bool,
    /// When it arrived.
    pub at: Instant,
    /// The HTTP status answered.
    pub status: u16,
    /// `NoError`, the first error response code, the fault's code, or `Unauthorized`.
    pub code: String,
    /// Whether it arrived while the back-off of an ErrorServerBusy was running (and
    /// was answered ErrorServerBusy again).
    pub during_back_off: bool,
}

/// A message sent with CreateItem (`SendOnly` or `SendAndSaveCopy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The mailbox it was sent from.
    pub mailbox: String,
    /// The RFC 822 bytes as sent (with the `Message-ID` the server added if needed).
    pub mime: Vec<u8>,
    /// Every recipient (To, Cc, Bcc; of the MIME and of the item's properties), lower case.
    pub recipients: Vec<String>,
    /// Its `Message-ID` with angle brackets.
    pub internet_message_id: Option<String>,
    /// The id of the copy saved in Sent Items (`SendAndSaveCopy`).
    pub saved_copy_id: Option<String>,
    /// Whether the client sent `t:MimeContent` (rather than properties).
    pub from_mime: bool,
}

/// One stored item, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    pub id: String,
    pub change_key: String,
    pub folder_id: String,
    pub kind: ItemKind,
    pub subject: Option<String>,
    pub internet_message_id: Option<String>,
    pub categories: Vec<String>,
    pub is_read: bool,
    /// The raw RFC 822 message (messages).
    pub mime: Option<Vec<u8>>,
    /// The properties as `t:` elements, by name (`Start` → `<t:Start>…</t:Start>`).
    pub fields: BTreeMap<String, String>,
    /// Extended properties: key (`PublicStrings|name:claim|String`) → value text.
    pub extended: BTreeMap<String, String>,
}

/// A recurring master's deleted and modified occurrences (what its
/// `t:DeletedOccurrences` and `t:ModifiedOccurrences` list), in series order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeriesOccurrences {
    /// The starts of the deleted occurrences (`2026-03-09T09:00:00Z`).
    pub deleted: Vec<String>,
    /// The exceptions: the start their occurrence had (OriginalStart), the item.
    pub modified: Vec<(String, StoredItem)>,
}

impl StoredItem {
    /// The text of a property (`Start`, `Status`, ...).
    pub fn field_text(&self, name: &str) -> Option<String> {
        let xml = self.fields.get(name)?;
        let wrapped = xml::wrap_fragment(xml);
        let doc = roxmltree::Document::parse(&wrapped).ok()?;
        Some(xml::text_of(doc.root_element()))
    }

    /// The value of a named extended property (any property set and type).
    pub fn extended_property(&self, name: &str) -> Option<String> {
        let needle = format!("|name:{name}|");
        self.extended
            .iter()
            .find(|(k, _)| k.contains(&needle))
            .map(|(_, v)| v.clone())
    }
}

/// One folder, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFolder {
    pub id: String,
    pub change_key: String,
    /// `None` for `msgfolderroot`.
    pub parent_id: Option<String>,
    pub display_name: String,
    pub folder_class: String,
    pub well_known: Option<String>,
}

/// A running EWS test server; it stops when dropped.
pub struct EwsTestServer {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EwsTestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EwsTestServer {
    /// Starts the server on a free port of 127.0.0.1, with no account and no mailbox.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> EwsTestServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding 127.0.0.1:0 for the EWS test server");
        let addr = listener.local_addr().expect("the bound address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            sealer: SyncSealer::new(),
            origin: format!("http://{addr}"),
        });
        let app = Router::new()
            .fallback(route)
            .layer(DefaultBodyLimit::max(64 << 20))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EwsTestServer { shared, task }
    }

    /// The EWS URL, `http://127.0.0.1:PORT/EWS/Exchange.asmx`.
    pub fn url(&self) -> String {
        self.shared.ews_url()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// The POX autodiscover URL, `http://127.0.0.1:PORT/autodiscover/autodiscover.xml`.
    pub fn autodiscover_xml_url(&self) -> String {
        format!("{}/autodiscover/autodiscover.xml", self.shared.origin)
    }

    /// The SOAP autodiscover URL, `http://127.0.0.1:PORT/autodiscover/autodiscover.svc`.
    pub fn autodiscover_svc_url(&self) -> String {
        format!("{}/autodiscover/autodiscover.svc", self.shared.origin)
    }

    /// The EWS URL autodiscover answers (default: [`EwsTestServer::url`]), e.g. a
    /// fault proxy's in front of this server.
    pub fn set_ews_url(&self, url: &str) {
        self.shared.lock().ews_url = Some(url.to_owned());
    }

    /// Adds (or replaces, by user name) an account that may call the server.
    pub fn add_service_account(&self, account: ServiceAccount) {
        let mut st = self.shared.lock();
        st.accounts
            .retain(|a| !a.user.eq_ignore_ascii_case(&account.user));
        st.accounts.push(account);
    }

    /// Accepts `Authorization: Bearer` tokens: `check` maps a token to the user name
    /// of an account added with [`EwsTestServer::add_service_account`] (such as one
    /// made by [`ServiceAccount::oauth`]), or refuses it with `None` (401).
    pub fn set_bearer_check(&self, check: impl Fn(&str) -> Option<String> + Send + Sync + 'static) {
        self.shared.lock().bearer = Some(Arc::new(check));
    }

    /// Adds a mailbox with the well-known folders (no-op when it exists).
    pub fn add_mailbox(&self, address: &str, display_name: &str) {
        self.shared.lock().add_mailbox(address, display_name);
    }

    /// The id of a folder named by its id, a distinguished name (`inbox`,
    /// `sentitems`, `calendar`, `msgfolderroot`, ...) or a path of display names
    /// below `msgfolderroot` (`Inbox/Undeliverable`).
    pub fn folder_id(&self, mailbox: &str, folder: &str) -> Option<String> {
        let st = self.shared.lock();
        let mb = st.mailbox(mailbox)?;
        if mb.folders.contains_key(folder) {
            return Some(folder.to_owned());
        }
        if let Some(id) = mb.well_known(folder) {
            return Some(id);
        }
        let mut parent = mb.root_id();
        for part in folder.split('/') {
            parent = mb.child_named(&parent, part)?;
        }
        Some(parent)
    }

    /// Creates a folder (under `msgfolderroot` when `parent` is `None`); returns its id.
    ///
    /// # Panics
    /// For an unknown mailbox or parent, or an existing name.
    pub fn create_folder(&self, mailbox: &str, parent: Option<&str>, name: &str) -> String {
        let parent = self
            .folder_id(mailbox, parent.unwrap_or(state::ROOT))
            .expect("a parent folder of the EWS test server");
        self.shared
            .lock()
            .create_folder(mailbox, &parent, name, "IPF.Note")
            .expect("a new folder")
    }

    /// Every folder of the mailbox, oldest first.
    pub fn folders(&self, mailbox: &str) -> Vec<StoredFolder> {
        let st = self.shared.lock();
        let Some(mb) = st.mailbox(mailbox) else {
            return Vec::new();
        };
        let mut folders: Vec<_> = mb.folders.values().collect();
        folders.sort_by_key(|f| f.created_seq);
        folders
            .into_iter()
            .map(|f| StoredFolder {
                id: f.id.clone(),
                change_key: f.change_key.clone(),
                parent_id: f.parent_id.clone(),
                display_name: f.display_name.clone(),
                folder_class: f.folder_class.clone(),
                well_known: f.well_known.map(str::to_owned),
            })
            .collect()
    }

    fn folder_or_panic(&self, mailbox: &str, folder: &str) -> String {
        self.folder_id(mailbox, folder)
            .expect("a folder of the EWS test server")
    }

    /// Stores raw RFC 822 bytes as a new unread message; returns its ItemId.
    ///
    /// # Panics
    /// For an unknown mailbox or folder.
    pub fn deliver(&self, mailbox: &str, folder: &str, mime: &[u8]) -> String {
        let fid = self.folder_or_panic(mailbox, folder);
        let fields = mime::message_fields(mime, false);
        self.shared
            .lock()
            .insert_item(
                mailbox,
                &fid,
                ItemKind::Message,
                Some(mime.to_vec()),
                fields,
                Vec::new(),
            )
            .expect("a mailbox of the EWS test server")
    }

    /// Stores an item of `kind` whose properties are `t:` elements, as a client's
    /// CreateItem would give them (`<t:Subject>…</t:Subject><t:Start>…</t:Start>`,
    /// `<t:ExtendedProperty>…</t:ExtendedProperty>`); the server completes it as
    /// Exchange does (UID, CalendarItemType, Status, DisplayName). Returns its ItemId.
    ///
    /// # Panics
    /// For an unknown mailbox or folder, or properties that are not such XML.
    pub fn add_item(
        &self,
        mailbox: &str,
        folder: &str,
        kind: ItemKind,
        properties: &str,
    ) -> String {
        let fid = self.folder_or_panic(mailbox, folder);
        let text = xml::wrap_fragment(&format!("<t:{e}>{properties}</t:{e}>", e = kind.element()));
        let doc = roxmltree::Document::parse(&text).expect("item properties as t: elements");
        let node = xml::elements(doc.root_element())
            .next()
            .expect("the item element");
        let parsed = fields::parse_item(node).expect("item properties EWS accepts");
        let mut item_fields = parsed.fields;
        if kind == ItemKind::Message
            && let Some(m) = &parsed.mime
        {
            for (k, v) in mime::message_fields(m, false) {
                item_fields.entry(k).or_insert(v);
            }
        }
        create::complete_fields(kind, &mut item_fields);
        self.shared
            .lock()
            .insert_item(
                mailbox,
                &fid,
                kind,
                parsed.mime,
                item_fields,
                parsed.extended,
            )
            .expect("a mailbox of the EWS test server")
    }

    /// A single calendar item in the Calendar (`start`/`end` as `xs:dateTime`, e.g.
    /// `2026-03-02T09:00:00Z`).
    pub fn add_calendar_item(
        &self,
        mailbox: &str,
        subject: &str,
        start: &str,
        end: &str,
    ) -> String {
        self.add_item(
            mailbox,
            "calendar",
            ItemKind::CalendarItem,
            &format!(
                "<t:Subject>{}</t:Subject><t:Start>{}</t:Start><t:End>{}</t:End>",
                xml::escape_text(subject),
                xml::escape_text(start),
                xml::escape_text(end)
            ),
        )
    }

    /// A contact in Contacts with one email address (`EmailAddress1`).
    pub fn add_contact(&self, mailbox: &str, given: &str, surname: &str, email: &str) -> String {
        self.add_item(
            mailbox,
            "contacts",
            ItemKind::Contact,
            &format!(
                "<t:GivenName>{}</t:GivenName><t:EmailAddresses><t:Entry Key=\"EmailAddress1\">{}\
                 </t:Entry></t:EmailAddresses><t:Surname>{}</t:Surname>",
                xml::escape_text(given),
                xml::escape_text(email),
                xml::escape_text(surname)
            ),
        )
    }

    /// A task in Tasks, with a due date when given.
    pub fn add_task(&self, mailbox: &str, subject: &str, due: Option<&str>) -> String {
        let due = due.map_or_else(String::new, |d| {
            format!("<t:DueDate>{}</t:DueDate>", xml::escape_text(d))
        });
        self.add_item(
            mailbox,
            "tasks",
            ItemKind::Task,
            &format!("<t:Subject>{}</t:Subject>{due}", xml::escape_text(subject)),
        )
    }

    /// Changes an item as a user in Outlook would: each given `t:` element replaces
    /// the property of its name. The ChangeKey changes; SyncFolderItems reports an
    /// Update (a ReadFlagChange when only `t:IsRead` is given).
    ///
    /// # Panics
    /// For an unknown mailbox or item, or properties that are not such XML.
    pub fn change_item(&self, mailbox: &str, id: &str, properties: &str) {
        let text = xml::wrap_fragment(properties);
        let doc = roxmltree::Document::parse(&text).expect("properties as t: elements");
        let mut st = self.shared.lock();
        let mut names = Vec::new();
        {
            let item = st
                .mailbox_mut(mailbox)
                .and_then(|mb| mb.items.get_mut(id))
                .expect("an item of the EWS test server");
            for node in xml::elements(doc.root_element()) {
                if xml::is(node, xml::T, "ExtendedProperty") {
                    let e = fields::parse_extended(node).expect("an extended property");
                    item.extended.retain(|x| x.key != e.key);
                    item.extended.push(e);
                    names.push("ExtendedProperty".to_owned());
                } else {
                    let name = node.tag_name().name().to_owned();
                    item.fields.insert(name.clone(), xml::serialize(node));
                    names.push(name);
                }
            }
            if item.kind == ItemKind::CalendarItem {
                create::set_item_type(&mut item.fields);
            }
        }
        let event = if names.iter().all(|n| n == "IsRead") {
            Event::ReadFlag
        } else {
            Event::Content
        };
        st.touch(mailbox, id, event);
    }

    /// Marks a message read or unread (a ReadFlagChange for SyncFolderItems).
    pub fn set_read(&self, mailbox: &str, id: &str, read: bool) {
        self.change_item(mailbox, id, &format!("<t:IsRead>{read}</t:IsRead>"));
    }

    /// Replaces an item's categories.
    pub fn set_categories(&self, mailbox: &str, id: &str, categories: &[&str]) {
        let inner: String = categories
            .iter()
            .map(|c| format!("<t:String>{}</t:String>", xml::escape_text(c)))
            .collect();
        self.change_item(
            mailbox,
            id,
            &format!("<t:Categories>{inner}</t:Categories>"),
        );
    }

    /// Sets a `PublicStrings` string extended property, as another client could.
    pub fn set_extended_property(&self, mailbox: &str, id: &str, name: &str, value: &str) {
        self.change_item(
            mailbox,
            id,
            &format!(
                "<t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" \
                 PropertyName=\"{}\" PropertyType=\"String\"/><t:Value>{}</t:Value></t:ExtendedProperty>",
                xml::escape_attr(name),
                xml::escape_text(value)
            ),
        );
    }

    /// Moves an item to another folder; returns its new ItemId (EWS ids change on a move).
    ///
    /// # Panics
    /// For an unknown mailbox, item or folder.
    pub fn move_item(&self, mailbox: &str, id: &str, folder: &str) -> String {
        let fid = self.folder_or_panic(mailbox, folder);
        self.shared
            .lock()
            .move_item(mailbox, id, &fid)
            .expect("an item of the EWS test server")
    }

    /// Deletes an item for good (SyncFolderItems reports a Delete).
    pub fn delete_item(&self, mailbox: &str, id: &str) {
        self.shared.lock().remove_item(mailbox, id);
    }

    /// A stored item.
    pub fn item(&self, mailbox: &str, id: &str) -> Option<StoredItem> {
        let st = self.shared.lock();
        let item = st.mailbox(mailbox)?.items.get(id)?;
        Some(stored(item))
    }

    /// The deleted and modified occurrences of a recurring master (none for an
    /// unknown item).
    pub fn occurrences(&self, mailbox: &str, master: &str) -> SeriesOccurrences {
        let st = self.shared.lock();
        let Some(mb) = st.mailbox(mailbox) else {
            return SeriesOccurrences::default();
        };
        let (Some(item), Some(s)) = (mb.items.get(master), mb.series.get(master)) else {
            return SeriesOccurrences::default();
        };
        let start = |index: u32| {
            series::occurrence(item, index)
                .map(|o| state::ews_time(o.start))
                .unwrap_or_default()
        };
        SeriesOccurrences {
            deleted: s.deleted.iter().map(|i| start(*i)).collect(),
            modified: s
                .exceptions
                .iter()
                .filter_map(|(i, id)| Some((start(*i), stored(mb.items.get(id)?))))
                .collect(),
        }
    }

    /// The items of a folder, oldest first.
    pub fn items_in(&self, mailbox: &str, folder: &str) -> Vec<StoredItem> {
        let Some(fid) = self.folder_id(mailbox, folder) else {
            return Vec::new();
        };
        let st = self.shared.lock();
        let Some(mb) = st.mailbox(mailbox) else {
            return Vec::new();
        };
        let mut items: Vec<_> = mb.items.values().filter(|i| i.folder_id == fid).collect();
        items.sort_by_key(|i| i.created_seq);
        items.into_iter().map(stored).collect()
    }

    /// Refuses every sync state of the folder made so far (ErrorInvalidSyncStateData),
    /// as Exchange does after its sync state data was lost.
    ///
    /// # Panics
    /// For an unknown mailbox or folder.
    pub fn invalidate_sync_states(&self, mailbox: &str, folder: &str) {
        let fid = self.folder_or_panic(mailbox, folder);
        let mut st = self.shared.lock();
        if let Some(f) = st
            .mailbox_mut(mailbox)
            .and_then(|mb| mb.folders.get_mut(&fid))
        {
            f.epoch += 1;
        }
    }

    /// Refuses every SyncFolderHierarchy state of the mailbox made so far.
    pub fn invalidate_hierarchy_sync_states(&self, mailbox: &str) {
        if let Some(mb) = self.shared.lock().mailbox_mut(mailbox) {
            mb.hierarchy_epoch += 1;
        }
    }

    /// The next `n` authenticated EWS requests get ErrorServerBusy (HTTP 500, a SOAP
    /// fault with `BackOffMilliseconds` = `back_off`). A request that comes before a
    /// fault's back-off has run out gets ErrorServerBusy again, with the rest of the
    /// back-off, is marked [`RequestRecord::during_back_off`], and does not count
    /// towards `n`. The back-off is the server's, across accounts and mailboxes (as a
    /// deployment usually has one service account).
    pub fn server_busy_next(&self, n: usize, back_off: Duration) {
        let mut st = self.shared.lock();
        st.busy.remaining += n;
        st.busy.back_off = back_off;
    }

    /// The next `n` sends (CreateItem `SendOnly`/`SendAndSaveCopy`) are done —
    /// sent, recorded in [`EwsTestServer::sent`], the copy saved — but answered
    /// HTTP 504 with no body, as when a proxy in front of Exchange times out:
    /// the client cannot tell that the message went out.
    pub fn lose_next_send_answers(&self, n: usize) {
        self.shared.lock().lost_send_answers += n;
    }

    /// Every request answered, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// How many requests of one operation (`SyncFolderItems`, ...) were answered.
    pub fn request_count(&self, operation: &str) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.operation == operation)
            .count()
    }

    /// Requests that came while an ErrorServerBusy back-off was running.
    pub fn requests_during_back_off(&self) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.during_back_off)
            .count()
    }

    /// Everything sent with CreateItem, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }
}

fn stored(item: &state::Item) -> StoredItem {
    StoredItem {
        id: item.id.clone(),
        change_key: item.change_key.clone(),
        folder_id: item.folder_id.clone(),
        kind: item.kind,
        subject: item.field_text("Subject"),
        internet_message_id: item.field_text("InternetMessageId"),
        categories: item.categories(),
        is_read: item.is_read(),
        mime: item.mime.clone(),
        fields: item.fields.clone(),
        extended: item
            .extended
            .iter()
            .map(|e| {
                let wrapped = xml::wrap_fragment(&e.value_xml);
                let text = roxmltree::Document::parse(&wrapped)
                    .map(|d| xml::text_of(d.root_element()))
                    .unwrap_or_default();
                (e.key.clone(), text)
            })
            .collect(),
    }
}

/// Every request: IIS matches paths without regard to case.
async fn route(
    Extract(shared): Extract<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_ascii_lowercase();
    let known = matches!(
        path.as_str(),
        "/ews/exchange.asmx" | "/autodiscover/autodiscover.xml" | "/autodiscover/autodiscover.svc"
    );
    if !known {
        return StatusCode::NOT_FOUND.into_response();
    }
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    match path.as_str() {
        "/ews/exchange.asmx" => service::ews(shared, headers, body).await,
        "/autodiscover/autodiscover.xml" => autodiscover::pox(shared, headers, body).await,
        _ => autodiscover::soap(shared, headers, body).await,
    }
}
