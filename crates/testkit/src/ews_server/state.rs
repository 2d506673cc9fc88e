//! The mailboxes the EWS test server holds: folders, items with their Id and
//! ChangeKey, and per item the change sequence numbers that SyncFolderItems reads
//! (tombstones for what left a folder). Every change takes the next number of one
//! server-wide sequence.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use super::auth::{BearerCheck, ServiceAccount};
use super::{RequestRecord, SentMessage};

/// The well-known folders of every mailbox: distinguished name, display name, folder
/// class (learn.microsoft.com/exchange/client-developer/web-service-reference/distinguishedfolderid).
/// `msgfolderroot` (the top of the IPM subtree) is their parent.
pub(crate) const WELL_KNOWN: [(&str, &str, &str); 9] = [
    ("inbox", "Inbox", "IPF.Note"),
    ("drafts", "Drafts", "IPF.Note"),
    ("sentitems", "Sent Items", "IPF.Note"),
    ("deleteditems", "Deleted Items", "IPF.Note"),
    ("junkemail", "Junk Email", "IPF.Note"),
    ("outbox", "Outbox", "IPF.Note"),
    ("calendar", "Calendar", "IPF.Appointment"),
    ("contacts", "Contacts", "IPF.Contact"),
    ("tasks", "Tasks", "IPF.Task"),
];

pub(crate) const ROOT: &str = "msgfolderroot";

/// What an item is; each is answered as its own element (`t:Message`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Message,
    CalendarItem,
    Contact,
    Task,
}

impl ItemKind {
    /// The element name in the types namespace.
    pub fn element(self) -> &'static str {
        match self {
            ItemKind::Message => "Message",
            ItemKind::CalendarItem => "CalendarItem",
            ItemKind::Contact => "Contact",
            ItemKind::Task => "Task",
        }
    }

    /// The `ItemClass` an item of this kind gets unless it names one.
    pub fn item_class(self) -> &'static str {
        match self {
            ItemKind::Message => "IPM.Note",
            ItemKind::CalendarItem => "IPM.Appointment",
            ItemKind::Contact => "IPM.Contact",
            ItemKind::Task => "IPM.Task",
        }
    }

    /// The kind an element of the types namespace stands for (`Item` is a message).
    pub(crate) fn from_element(name: &str) -> Option<ItemKind> {
        Some(match name {
            "Message" | "Item" | "MeetingRequest" | "MeetingResponse" | "MeetingCancellation" => {
                ItemKind::Message
            }
            "CalendarItem" => ItemKind::CalendarItem,
            "Contact" => ItemKind::Contact,
            "Task" => ItemKind::Task,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Folder {
    pub id: String,
    pub change_key: String,
    /// `None` for `msgfolderroot`.
    pub parent_id: Option<String>,
    pub display_name: String,
    pub folder_class: String,
    pub well_known: Option<&'static str>,
    /// Sync states made before the last [`Folder::epoch`] change are refused.
    pub epoch: u64,
    pub created_seq: u64,
    pub changed_seq: u64,
}

impl Folder {
    /// `t:Folder`, `t:CalendarFolder`, `t:ContactsFolder` or `t:TasksFolder`.
    pub fn element(&self) -> &'static str {
        let class = self.folder_class.as_str();
        if class.starts_with("IPF.Appointment") {
            "CalendarFolder"
        } else if class.starts_with("IPF.Contact") {
            "ContactsFolder"
        } else if class.starts_with("IPF.Task") {
            "TasksFolder"
        } else {
            "Folder"
        }
    }
}

/// What a change to an item touched: SyncFolderItems reports an item whose only
/// changes since the client's state are of its read flag as `ReadFlagChange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Content,
    ReadFlag,
}

/// An extended MAPI property: its `t:ExtendedFieldURI` as it was written (answered
/// back as is), the key it is matched by, and its `t:Value`/`t:Values` XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extended {
    pub key: String,
    pub uri_xml: String,
    pub value_xml: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub id: String,
    pub folder_id: String,
    pub kind: ItemKind,
    pub change_key: String,
    /// The raw RFC 822 message (messages only).
    pub mime: Option<Vec<u8>>,
    /// The item's properties by element name, each its `t:` element as XML.
    pub fields: BTreeMap<String, String>,
    pub extended: Vec<Extended>,
    pub created_seq: u64,
    /// Every change after the creation, in order.
    pub events: Vec<(u64, Event)>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

impl Item {
    /// The text of a stored property (`Subject`, `IsRead`, ...).
    pub fn field_text(&self, name: &str) -> Option<String> {
        let xml = self.fields.get(name)?;
        let wrapped = super::xml::wrap_fragment(xml);
        let doc = roxmltree::Document::parse(&wrapped).ok()?;
        Some(super::xml::text_of(doc.root_element()))
    }

    pub fn is_read(&self) -> bool {
        self.field_text("IsRead")
            .is_some_and(|v| v.trim() == "true")
    }

    /// The `t:String` entries of `t:Categories`.
    pub fn categories(&self) -> Vec<String> {
        let Some(xml) = self.fields.get("Categories") else {
            return Vec::new();
        };
        let wrapped = super::xml::wrap_fragment(xml);
        let Ok(doc) = roxmltree::Document::parse(&wrapped) else {
            return Vec::new();
        };
        doc.descendants()
            .filter(|n| super::xml::is(*n, super::xml::T, "String"))
            .map(|n| super::xml::text_of(n))
            .collect()
    }
}

/// An item that left a folder (deleted, or moved: a moved item gets a new id).
#[derive(Debug, Clone)]
pub(crate) struct Tombstone {
    pub folder_id: String,
    pub item_id: String,
    pub change_key: String,
    pub created_seq: u64,
    pub events: Vec<u64>,
    pub gone_seq: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    pub address: String,
    pub display_name: String,
    pub folders: BTreeMap<String, Folder>,
    pub items: BTreeMap<String, Item>,
    pub tombstones: Vec<Tombstone>,
    /// Hierarchy sync states made before the last change of this are refused.
    pub hierarchy_epoch: u64,
    /// Deleted occurrences and exceptions of recurring masters, by master id.
    pub series: BTreeMap<String, super::series::Series>,
}

impl Mailbox {
    pub fn root_id(&self) -> String {
        self.well_known(ROOT).unwrap_or_default()
    }

    /// The id of a well-known folder.
    pub fn well_known(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.folders
            .values()
            .find(|f| f.well_known == Some(name.as_str()))
            .map(|f| f.id.clone())
    }

    /// A child folder by display name (case-insensitive, as Exchange compares names).
    pub fn child_named(&self, parent: &str, name: &str) -> Option<String> {
        self.folders
            .values()
            .find(|f| {
                f.parent_id.as_deref() == Some(parent) && f.display_name.eq_ignore_ascii_case(name)
            })
            .map(|f| f.id.clone())
    }

    /// The folder and its descendants' ids (`deep`) or its direct children's.
    pub fn descendants(&self, parent: &str, deep: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut frontier = vec![parent.to_owned()];
        // Bounded: each folder is visited once, as the tree has no cycles.
        for _ in 0..=self.folders.len() {
            let Some(p) = frontier.pop() else { break };
            for f in self
                .folders
                .values()
                .filter(|f| f.parent_id.as_deref() == Some(p.as_str()))
            {
                out.push(f.id.clone());
                if deep {
                    frontier.push(f.id.clone());
                }
            }
        }
        out
    }
}

/// The ErrorServerBusy faults to answer, and the back-off window of the last one.
#[derive(Debug, Default)]
pub(crate) struct Busy {
    pub remaining: usize,
    pub back_off: Duration,
    pub until: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct State {
    pub mailboxes: BTreeMap<String, Mailbox>,
    pub accounts: Vec<ServiceAccount>,
    pub bearer: Option<BearerCheck>,
    pub seq: u64,
    pub counter: u64,
    pub sent: Vec<SentMessage>,
    pub log: Vec<RequestRecord>,
    pub busy: Busy,
    /// The EWS URL autodiscover answers; this server's own unless set.
    pub ews_url: Option<String>,
    /// Sends still to be done but answered 504, as if the answer were lost.
    pub lost_send_answers: usize,
}

/// The first bytes of every id this server makes: ids that do not decode to them are
/// malformed (ErrorInvalidIdMalformed).
const ID_MAGIC: [u8; 3] = [0x00, 0x00, 0x24];
const ID_LEN: usize = 3 + 1 + 16 + 8;

impl State {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A new opaque id in Exchange's style (base64, `=` padded); `tag` is `F` for
    /// folders and `I` for items.
    pub fn new_id(&mut self, tag: u8) -> String {
        self.counter += 1;
        let mut bytes = Vec::with_capacity(ID_LEN);
        bytes.extend_from_slice(&ID_MAGIC);
        bytes.push(tag);
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes.extend_from_slice(&self.counter.to_be_bytes());
        STANDARD.encode(bytes)
    }

    /// A new ChangeKey (every change of an item or folder gets one).
    pub fn new_change_key(&mut self) -> String {
        self.counter += 1;
        let mut bytes = b"CQAAAB".to_vec();
        bytes.extend_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
        bytes.extend_from_slice(&self.counter.to_be_bytes());
        STANDARD.encode(bytes)
    }

    pub fn mailbox(&self, address: &str) -> Option<&Mailbox> {
        self.mailboxes.get(&address.to_ascii_lowercase())
    }

    pub fn mailbox_mut(&mut self, address: &str) -> Option<&mut Mailbox> {
        self.mailboxes.get_mut(&address.to_ascii_lowercase())
    }

    /// Adds a mailbox with the well-known folders (no-op when it exists).
    pub fn add_mailbox(&mut self, address: &str, display_name: &str) {
        let key = address.to_ascii_lowercase();
        if self.mailboxes.contains_key(&key) {
            return;
        }
        let mut mailbox = Mailbox {
            address: key.clone(),
            display_name: display_name.to_owned(),
            folders: BTreeMap::new(),
            items: BTreeMap::new(),
            tombstones: Vec::new(),
            hierarchy_epoch: 1,
            series: BTreeMap::new(),
        };
        let root = self.new_folder(None, "Top of Information Store", "IPF.Note", Some(ROOT));
        let root_id = root.id.clone();
        mailbox.folders.insert(root.id.clone(), root);
        for (name, display, class) in WELL_KNOWN {
            let f = self.new_folder(Some(root_id.clone()), display, class, Some(name));
            mailbox.folders.insert(f.id.clone(), f);
        }
        self.mailboxes.insert(key, mailbox);
    }

    pub fn new_folder(
        &mut self,
        parent_id: Option<String>,
        display_name: &str,
        folder_class: &str,
        well_known: Option<&'static str>,
    ) -> Folder {
        let seq = self.next_seq();
        Folder {
            id: self.new_id(b'F'),
            change_key: self.new_change_key(),
            parent_id,
            display_name: display_name.to_owned(),
            folder_class: folder_class.to_owned(),
            well_known,
            epoch: 1,
            created_seq: seq,
            changed_seq: seq,
        }
    }

    /// Creates a folder under `parent`; `Err(true)` when a sibling has the name,
    /// `Err(false)` when the mailbox or parent does not exist.
    pub fn create_folder(
        &mut self,
        mailbox: &str,
        parent: &str,
        name: &str,
        folder_class: &str,
    ) -> Result<String, bool> {
        let mb = self.mailbox(mailbox).ok_or(false)?;
        if !mb.folders.contains_key(parent) {
            return Err(false);
        }
        if mb.child_named(parent, name).is_some() {
            return Err(true);
        }
        let f = self.new_folder(Some(parent.to_owned()), name, folder_class, None);
        let id = f.id.clone();
        let mb = self.mailbox_mut(mailbox).ok_or(false)?;
        mb.folders.insert(id.clone(), f);
        Ok(id)
    }

    /// Stores a new item; returns its id.
    pub fn insert_item(
        &mut self,
        mailbox: &str,
        folder_id: &str,
        kind: ItemKind,
        mime: Option<Vec<u8>>,
        fields: BTreeMap<String, String>,
        extended: Vec<Extended>,
    ) -> Option<String> {
        if !self.mailbox(mailbox)?.folders.contains_key(folder_id) {
            return None;
        }
        let id = self.new_id(b'I');
        let change_key = self.new_change_key();
        let seq = self.next_seq();
        let now = Utc::now();
        let item = Item {
            id: id.clone(),
            folder_id: folder_id.to_owned(),
            kind,
            change_key,
            mime,
            fields,
            extended,
            created_seq: seq,
            events: Vec::new(),
            created: now,
            modified: now,
        };
        self.mailbox_mut(mailbox)?.items.insert(id.clone(), item);
        Some(id)
    }

    /// Records a change of an item: a new ChangeKey and change number.
    pub fn touch(&mut self, mailbox: &str, id: &str, event: Event) -> Option<String> {
        let change_key = self.new_change_key();
        let seq = self.next_seq();
        let item = self.mailbox_mut(mailbox)?.items.get_mut(id)?;
        item.change_key = change_key.clone();
        item.events.push((seq, event));
        item.modified = Utc::now();
        Some(change_key)
    }

    /// Removes an item from its folder for good (its folder's sync sees a Delete).
    pub fn remove_item(&mut self, mailbox: &str, id: &str) -> Option<Item> {
        let seq = self.next_seq();
        let mb = self.mailbox_mut(mailbox)?;
        let item = mb.items.remove(id)?;
        mb.tombstones.push(Tombstone {
            folder_id: item.folder_id.clone(),
            item_id: item.id.clone(),
            change_key: item.change_key.clone(),
            created_seq: item.created_seq,
            events: item.events.iter().map(|(s, _)| *s).collect(),
            gone_seq: seq,
        });
        Some(item)
    }

    /// Moves an item: as in Exchange, the moved item has a new id (and ChangeKey);
    /// returns it. Moving into its own folder keeps the item as it is.
    pub fn move_item(&mut self, mailbox: &str, id: &str, dest: &str) -> Option<String> {
        let mb = self.mailbox(mailbox)?;
        if !mb.folders.contains_key(dest) {
            return None;
        }
        let item = mb.items.get(id)?;
        if item.folder_id == dest {
            return Some(id.to_owned());
        }
        let item = self.remove_item(mailbox, id)?;
        self.insert_item(
            mailbox,
            dest,
            item.kind,
            item.mime,
            item.fields,
            item.extended,
        )
    }
}

/// `2026-03-02T09:00:00Z`, the `xs:dateTime` form Exchange answers.
pub(crate) fn ews_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether `id` has the shape of this server's ids.
pub(crate) fn id_is_well_formed(id: &str) -> bool {
    STANDARD
        .decode(id.trim())
        .is_ok_and(|b| b.len() == ID_LEN && b[..3] == ID_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_unique() {
        let mut st = State::default();
        let a = st.new_id(b'I');
        let b = st.new_id(b'I');
        assert_ne!(a, b);
        for (id, ok) in [
            (a.as_str(), true),
            ("not base64!", false),
            ("AAAA", false),
            ("", false),
        ] {
            assert_eq!(id_is_well_formed(id), ok, "{id}");
        }
    }

    #[test]
    fn a_moved_item_gets_a_new_id_and_leaves_a_tombstone() {
        let mut st = State::default();
        st.add_mailbox("bob@example.org", "Bob");
        let mb = st.mailbox("bob@example.org").expect("mailbox").clone();
        let inbox = mb.well_known("inbox").expect("inbox");
        let junk = mb.well_known("junkemail").expect("junk");
        let id = st
            .insert_item(
                "bob@example.org",
                &inbox,
                ItemKind::Message,
                None,
                BTreeMap::new(),
                Vec::new(),
            )
            .expect("stored");
        let moved = st.move_item("bob@example.org", &id, &junk).expect("moved");
        assert_ne!(moved, id);
        let mb = st.mailbox("bob@example.org").expect("mailbox");
        assert_eq!(mb.items[&moved].folder_id, junk);
        assert_eq!(mb.tombstones.len(), 1);
        assert_eq!(mb.tombstones[0].item_id, id);
        assert_eq!(mb.tombstones[0].folder_id, inbox);
    }
}
