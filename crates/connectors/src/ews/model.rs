//! EWS's identifiers and the shapes the mail operations return, with how they are
//! written into requests and read from answers.

use chrono::{DateTime, Utc};
use roxmltree::Node;

use super::xml::{XmlWriter, boolean, child, date_time, elements, text};

/// An item's id and the change key of the version it was read at (EWS's
/// optimistic concurrency token: a write naming a stale one is refused).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemId {
    pub id: String,
    pub change_key: Option<String>,
}

impl ItemId {
    pub fn new(id: impl Into<String>, change_key: Option<String>) -> ItemId {
        ItemId {
            id: id.into(),
            change_key,
        }
    }

    /// `<t:ItemId Id="..." ChangeKey="..."/>`.
    pub(crate) fn write(&self, w: &mut XmlWriter) {
        write_id(w, "t:ItemId", &self.id, self.change_key.as_deref());
    }

    /// The `ItemId` child of an item element.
    pub(crate) fn read(item: Node<'_, '_>) -> Option<ItemId> {
        read_id(child(item, "ItemId")?).map(|(id, change_key)| ItemId { id, change_key })
    }
}

/// A folder's id and change key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderId {
    pub id: String,
    pub change_key: Option<String>,
}

impl FolderId {
    pub(crate) fn read(node: Node<'_, '_>) -> Option<FolderId> {
        read_id(node).map(|(id, change_key)| FolderId { id, change_key })
    }
}

fn write_id(w: &mut XmlWriter, name: &str, id: &str, change_key: Option<&str>) {
    match change_key {
        Some(ck) => w.empty(name, &[("Id", id), ("ChangeKey", ck)]),
        None => w.empty(name, &[("Id", id)]),
    };
}

fn read_id(node: Node<'_, '_>) -> Option<(String, Option<String>)> {
    let id = node.attribute("Id").filter(|i| !i.is_empty())?.to_owned();
    Some((id, node.attribute("ChangeKey").map(str::to_owned)))
}

/// The folders every mailbox has, by their distinguished names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DistinguishedFolder {
    Inbox,
    SentItems,
    DeletedItems,
    Drafts,
    Outbox,
    JunkEmail,
    Calendar,
    Contacts,
    Tasks,
    /// The top of the mail folder tree (where Inbox is).
    MsgFolderRoot,
    Root,
}

impl DistinguishedFolder {
    /// The `Id` EWS knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            DistinguishedFolder::Inbox => "inbox",
            DistinguishedFolder::SentItems => "sentitems",
            DistinguishedFolder::DeletedItems => "deleteditems",
            DistinguishedFolder::Drafts => "drafts",
            DistinguishedFolder::Outbox => "outbox",
            DistinguishedFolder::JunkEmail => "junkemail",
            DistinguishedFolder::Calendar => "calendar",
            DistinguishedFolder::Contacts => "contacts",
            DistinguishedFolder::Tasks => "tasks",
            DistinguishedFolder::MsgFolderRoot => "msgfolderroot",
            DistinguishedFolder::Root => "root",
        }
    }
}

/// A folder named by distinguished name or by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FolderRef {
    Distinguished(DistinguishedFolder),
    Id(String),
}

impl FolderRef {
    /// `<t:DistinguishedFolderId Id="inbox"/>` or `<t:FolderId Id="..."/>`.
    pub(crate) fn write(&self, w: &mut XmlWriter) {
        match self {
            FolderRef::Distinguished(d) => {
                w.empty("t:DistinguishedFolderId", &[("Id", d.as_str())])
            }
            FolderRef::Id(id) => w.empty("t:FolderId", &[("Id", id.as_str())]),
        };
    }

    /// How messages name it.
    pub fn describe(&self) -> String {
        match self {
            FolderRef::Distinguished(d) => d.as_str().to_owned(),
            FolderRef::Id(id) => short(id),
        }
    }
}

impl From<DistinguishedFolder> for FolderRef {
    fn from(d: DistinguishedFolder) -> FolderRef {
        FolderRef::Distinguished(d)
    }
}

impl From<&FolderId> for FolderRef {
    fn from(id: &FolderId) -> FolderRef {
        FolderRef::Id(id.id.clone())
    }
}

/// An id shortened for messages (EWS ids are 150 characters of base64).
pub(crate) fn short(id: &str) -> String {
    let n = id.chars().count();
    if n <= 24 {
        id.to_owned()
    } else {
        let tail: String = id.chars().skip(n - 12).collect();
        format!("…{tail}")
    }
}

/// What kind of folder it is (the element EWS writes for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    Mail,
    Calendar,
    Contacts,
    Tasks,
    Search,
}

/// A folder as the hierarchy and `FindFolder` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: FolderId,
    pub parent_id: Option<FolderId>,
    pub display_name: String,
    /// `IPF.Note`, `IPF.Appointment`, ...
    pub folder_class: Option<String>,
    pub kind: FolderKind,
}

impl Folder {
    /// A `Folder`, `CalendarFolder`, `ContactsFolder`, `TasksFolder` or
    /// `SearchFolder` element.
    pub(crate) fn read(node: Node<'_, '_>) -> Option<Folder> {
        let kind = match node.tag_name().name() {
            "Folder" => FolderKind::Mail,
            "CalendarFolder" => FolderKind::Calendar,
            "ContactsFolder" => FolderKind::Contacts,
            "TasksFolder" => FolderKind::Tasks,
            "SearchFolder" => FolderKind::Search,
            _ => return None,
        };
        Some(Folder {
            id: FolderId::read(child(node, "FolderId")?)?,
            parent_id: child(node, "ParentFolderId").and_then(FolderId::read),
            display_name: text(node, "DisplayName").unwrap_or_default(),
            folder_class: text(node, "FolderClass"),
            kind,
        })
    }
}

/// One change of the folder hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderChange {
    Created(Folder),
    Updated(Folder),
    Deleted(FolderId),
}

/// One page of `SyncFolderHierarchy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierarchySync {
    pub changes: Vec<FolderChange>,
    /// Where the next call starts: store it after the page is processed.
    pub sync_state: String,
    /// `IncludesLastFolderInRange`: no more changes now.
    pub includes_last: bool,
}

/// What a synchronized item is (the element EWS writes for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Message,
    MeetingMessage,
    CalendarItem,
    Contact,
    DistributionList,
    Task,
    Post,
    Other,
}

impl ItemKind {
    fn of(element: &str) -> ItemKind {
        match element {
            "Message" => ItemKind::Message,
            "MeetingMessage" | "MeetingRequest" | "MeetingResponse" | "MeetingCancellation" => {
                ItemKind::MeetingMessage
            }
            "CalendarItem" => ItemKind::CalendarItem,
            "Contact" => ItemKind::Contact,
            "DistributionList" => ItemKind::DistributionList,
            "Task" => ItemKind::Task,
            "PostItem" => ItemKind::Post,
            _ => ItemKind::Other,
        }
    }
}

/// An item as `SyncFolderItems` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedItem {
    pub id: ItemId,
    pub kind: ItemKind,
    /// `IPM.Note`, `IPM.Schedule.Meeting.Request`, ...
    pub item_class: Option<String>,
    pub received: Option<DateTime<Utc>>,
}

impl SyncedItem {
    pub(crate) fn read(item: Node<'_, '_>) -> Option<SyncedItem> {
        Some(SyncedItem {
            id: ItemId::read(item)?,
            kind: ItemKind::of(item.tag_name().name()),
            item_class: text(item, "ItemClass"),
            received: date_time(item, "DateTimeReceived"),
        })
    }
}

/// One change of a folder's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    Created(SyncedItem),
    Updated(SyncedItem),
    Deleted(ItemId),
    /// Only the read flag changed (the engine never relies on it).
    ReadFlagChanged {
        id: ItemId,
        is_read: bool,
    },
}

impl ItemChange {
    /// One child of `Changes` (`Create`, `Update`, `Delete`, `ReadFlagChange`).
    pub(crate) fn read(change: Node<'_, '_>) -> Option<ItemChange> {
        let item = || elements(change).next().and_then(SyncedItem::read);
        match change.tag_name().name() {
            "Create" => item().map(ItemChange::Created),
            "Update" => item().map(ItemChange::Updated),
            "Delete" => ItemId::read(change).map(ItemChange::Deleted),
            "ReadFlagChange" => Some(ItemChange::ReadFlagChanged {
                id: ItemId::read(change)?,
                is_read: boolean(change, "IsRead").unwrap_or(false),
            }),
            _ => None,
        }
    }
}

/// One page of `SyncFolderItems`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsSync {
    pub changes: Vec<ItemChange>,
    /// Where the next call starts: store it after the page is processed.
    pub sync_state: String,
    /// `IncludesLastItemInRange`: no more changes now.
    pub includes_last: bool,
}

/// A message as `get_items` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailItem {
    pub id: ItemId,
    /// The RFC 5322 bytes (`MimeContent`, base64-decoded), when asked for.
    pub mime: Option<Vec<u8>>,
    /// With its angle brackets, as Exchange keeps it.
    pub internet_message_id: Option<String>,
    pub subject: Option<String>,
    pub categories: Vec<String>,
    pub received: Option<DateTime<Utc>>,
}

/// An item to act on: a whole item, or one occurrence of a recurring series by
/// its 1-based index in the series (`OccurrenceItemId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRef {
    Item(ItemId),
    Occurrence {
        master_id: String,
        instance_index: u32,
    },
}

impl ItemRef {
    pub(crate) fn write(&self, w: &mut XmlWriter) {
        match self {
            ItemRef::Item(id) => id.write(w),
            ItemRef::Occurrence {
                master_id,
                instance_index,
            } => {
                w.empty(
                    "t:OccurrenceItemId",
                    &[
                        ("RecurringMasterId", master_id.as_str()),
                        ("InstanceIndex", &instance_index.to_string()),
                    ],
                );
            }
        }
    }

    /// How messages name it.
    pub fn describe(&self) -> String {
        match self {
            ItemRef::Item(id) => short(&id.id),
            ItemRef::Occurrence {
                master_id,
                instance_index,
            } => format!("occurrence {instance_index} of {}", short(master_id)),
        }
    }
}

impl From<ItemId> for ItemRef {
    fn from(id: ItemId) -> ItemRef {
        ItemRef::Item(id)
    }
}

/// `<t:Categories><t:String>..</t:String>...</t:Categories>` read.
pub(crate) fn read_strings(node: Node<'_, '_>, local: &str) -> Vec<String> {
    child(node, local)
        .map(|c| elements(c).filter_map(super::xml::own_text).collect())
        .unwrap_or_default()
}

/// `<t:{name}><t:String>..</t:String>...</t:{name}>` written.
pub(crate) fn write_strings(w: &mut XmlWriter, name: &str, values: &[String]) {
    w.open(name, &[]);
    for v in values {
        w.leaf("t:String", v);
    }
    w.close(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_with_their_change_key_and_references_by_kind() {
        let mut w = XmlWriter::new();
        ItemId::new("AAMk+/=", Some("CQA&".to_owned())).write(&mut w);
        ItemRef::Occurrence {
            master_id: "AAMkM".to_owned(),
            instance_index: 3,
        }
        .write(&mut w);
        FolderRef::Distinguished(DistinguishedFolder::SentItems).write(&mut w);
        FolderRef::Id("AQMkF".to_owned()).write(&mut w);
        assert_eq!(
            w.finish(),
            "<t:ItemId Id=\"AAMk+/=\" ChangeKey=\"CQA&amp;\"/>\
             <t:OccurrenceItemId RecurringMasterId=\"AAMkM\" InstanceIndex=\"3\"/>\
             <t:DistinguishedFolderId Id=\"sentitems\"/>\
             <t:FolderId Id=\"AQMkF\"/>"
        );
    }

    #[test]
    fn long_ids_are_shortened_for_messages() {
        assert_eq!(short("AAMk"), "AAMk");
        let long = format!("{}TAIL12345678", "A".repeat(140));
        assert_eq!(short(&long), "…TAIL12345678");
    }
}
