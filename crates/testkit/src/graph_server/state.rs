//! The mailboxes the Graph test server holds: users, folders, messages with their
//! MIME bytes, and the change log that delta queries read (a sequence number per
//! change, tombstones for what left a folder).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Folders every mailbox has, by their well-known name and display name
/// (learn.microsoft.com/graph/api/resources/mailfolder, "Use well-known folder names").
pub(crate) const WELL_KNOWN: [(&str, &str); 7] = [
    ("inbox", "Inbox"),
    ("sentitems", "Sent Items"),
    ("deleteditems", "Deleted Items"),
    ("drafts", "Drafts"),
    ("junkemail", "Junk Email"),
    ("archive", "Archive"),
    ("outbox", "Outbox"),
];

/// The root of the folder tree (`msgfolderroot`); top-level folders are its children.
pub(crate) const ROOT: &str = "msgfolderroot";

#[derive(Debug, Clone)]
pub(crate) struct Folder {
    pub id: String,
    pub display_name: String,
    /// `None` for the root.
    pub parent_id: Option<String>,
    pub well_known: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailer {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub id: String,
    pub folder_id: String,
    pub mime: Vec<u8>,
    pub internet_message_id: Option<String>,
    pub subject: String,
    pub body_preview: String,
    pub from: Option<Mailer>,
    pub to: Vec<Mailer>,
    pub cc: Vec<Mailer>,
    pub bcc: Vec<Mailer>,
    pub received: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub categories: Vec<String>,
    pub is_read: bool,
    pub has_attachments: bool,
    /// The sequence number of the last change seen by delta queries of its folder.
    pub changed_seq: u64,
}

/// Something left a folder (deleted, or moved elsewhere) at `seq`.
#[derive(Debug, Clone)]
pub(crate) struct Tombstone {
    pub folder_id: String,
    pub message_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    /// The user principal name (also the primary SMTP address), lower case.
    pub upn: String,
    pub folders: BTreeMap<String, Folder>,
    pub messages: BTreeMap<String, Message>,
    pub tombstones: Vec<Tombstone>,
}

/// One entry of a delta round still to be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeltaEntry {
    Message(String),
    Removed(String),
}

/// A round of a delta query in progress (what a `$skiptoken` stands for).
#[derive(Debug, Clone)]
pub(crate) struct DeltaRound {
    pub user_id: String,
    pub folder_id: String,
    pub entries: VecDeque<DeltaEntry>,
    /// The change sequence the round's final delta link starts after.
    pub end_seq: u64,
    pub select: Option<Vec<String>>,
}

/// What a `$deltatoken` stands for.
#[derive(Debug, Clone)]
pub(crate) struct DeltaMark {
    pub user_id: String,
    pub folder_id: String,
    pub seq: u64,
    pub select: Option<Vec<String>>,
}

/// A canned failure for the next requests (throttling on demand).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    pub status: u16,
    pub retry_after: Duration,
}

/// A message sent with `sendMail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// The sending user's id.
    pub user_id: String,
    /// The sending user's principal name.
    pub from_upn: String,
    /// The MIME bytes as sent (decoded from base64, or built from the JSON message).
    pub mime: Vec<u8>,
    /// Every recipient address (To, Cc, Bcc), lower case.
    pub recipients: Vec<String>,
    /// The id of the copy in Sent Items, when one was saved.
    pub saved_copy_id: Option<String>,
    /// Whether the request was MIME (`Content-Type: text/plain`) rather than JSON.
    pub was_mime: bool,
}

/// A change to announce to a subscription.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub subscription_id: String,
    pub change_type: &'static str,
    pub user_id: String,
    pub message_id: String,
}

/// A change-notification subscription.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: String,
    pub resource: String,
    /// The user and folder the resource names (`None` folder: all messages).
    pub user_id: String,
    pub folder_id: Option<String>,
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expiration: DateTime<Utc>,
    pub app_id: String,
    pub tenant_id: String,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub users: BTreeMap<String, User>,
    pub seq: u64,
    pub id_counter: u64,
    pub rounds: HashMap<String, DeltaRound>,
    pub marks: HashMap<String, DeltaMark>,
    pub sent: Vec<SentMail>,
    pub subscriptions: BTreeMap<String, Subscription>,
    /// Change notifications to post once the lock is released.
    pub notices: Vec<Notice>,
    pub faults: VecDeque<Fault>,
    pub counts: BTreeMap<String, u64>,
    pub round_trips: u64,
    pub batched: u64,
    pub without_immutable_ids: u64,
    pub in_flight: HashMap<String, u32>,
    pub max_in_flight: HashMap<String, u32>,
    pub latency: Duration,
    /// Requests beyond this many at once for one mailbox get 429 (Outlook's 4).
    pub mailbox_concurrency: u32,
    /// The longest a subscription may run, in minutes.
    pub subscription_max_minutes: i64,
    /// `sendMail` requests still to accept (and save) whose answer is then lost:
    /// they get 504 as from a gateway that gave up waiting.
    pub lost_send_answers: usize,
    /// Calendars, contacts and To Do tasks (`act.rs`).
    pub act: super::act_state::ActState,
}

impl State {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// An opaque id in the style of Exchange's (base64 with `=` padding and `-`),
    /// so that clients must escape it in URLs.
    pub fn new_id(&mut self, kind: &str) -> String {
        self.id_counter += 1;
        let simple = uuid::Uuid::new_v4().simple().to_string();
        format!("AAMk{kind}-{}{:06}AAA=", &simple[..20], self.id_counter)
    }

    pub fn new_token(&mut self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// The user named by an id or a principal name (case-insensitive).
    pub fn user_key(&self, name: &str) -> Option<String> {
        if self.users.contains_key(name) {
            return Some(name.to_owned());
        }
        let lower = name.to_ascii_lowercase();
        self.users
            .values()
            .find(|u| u.upn == lower || u.id == lower)
            .map(|u| u.id.clone())
    }

    pub fn add_user(&mut self, upn: &str) -> String {
        if let Some(id) = self.user_key(upn) {
            return id;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut folders = BTreeMap::new();
        let root_id = self.new_id("Root");
        folders.insert(
            root_id.clone(),
            Folder {
                id: root_id.clone(),
                display_name: "Top of Information Store".to_owned(),
                parent_id: None,
                well_known: Some(ROOT),
            },
        );
        for (name, display) in WELL_KNOWN {
            let fid = self.new_id("Fold");
            folders.insert(
                fid.clone(),
                Folder {
                    id: fid,
                    display_name: display.to_owned(),
                    parent_id: Some(root_id.clone()),
                    well_known: Some(name),
                },
            );
        }
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                upn: upn.to_ascii_lowercase(),
                folders,
                messages: BTreeMap::new(),
                tombstones: Vec::new(),
            },
        );
        id
    }
}

impl User {
    /// The folder named by an id or a well-known name (case-insensitive).
    pub fn folder_key(&self, name: &str) -> Option<String> {
        if self.folders.contains_key(name) {
            return Some(name.to_owned());
        }
        let lower = name.to_ascii_lowercase();
        self.folders
            .values()
            .find(|f| f.well_known == Some(lower.as_str()))
            .map(|f| f.id.clone())
    }

    /// A folder found by display name under `parent` (case-insensitive), for tests.
    pub fn child_named(&self, parent: &str, name: &str) -> Option<String> {
        self.folders
            .values()
            .find(|f| {
                f.parent_id.as_deref() == Some(parent) && f.display_name.eq_ignore_ascii_case(name)
            })
            .map(|f| f.id.clone())
    }

    pub fn root_id(&self) -> String {
        self.folder_key(ROOT).unwrap_or_default()
    }

    /// Records that `message_id` left `folder_id`.
    pub fn bury(&mut self, folder_id: &str, message_id: &str, seq: u64) {
        self.tombstones.push(Tombstone {
            folder_id: folder_id.to_owned(),
            message_id: message_id.to_owned(),
            seq,
        });
    }

    pub fn folder_json(&self, f: &Folder) -> Value {
        let children = self
            .folders
            .values()
            .filter(|c| c.parent_id.as_deref() == Some(f.id.as_str()))
            .count();
        let in_folder = self.messages.values().filter(|m| m.folder_id == f.id);
        let (total, unread) =
            in_folder.fold((0, 0), |(t, u), m| (t + 1, u + usize::from(!m.is_read)));
        json!({
            "id": f.id,
            "displayName": f.display_name,
            "parentFolderId": f.parent_id,
            "childFolderCount": children,
            "unreadItemCount": unread,
            "totalItemCount": total,
            "isHidden": false,
        })
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn mailer(m: &Mailer) -> Value {
    json!({ "emailAddress": { "name": m.name, "address": m.address } })
}

impl Message {
    /// The message resource as Graph returns it (no body), with `$select` applied.
    pub fn to_json(&self, select: Option<&[String]>) -> Value {
        let etag = format!("W/\"CQAAABYAAAA{:08}\"", self.changed_seq);
        let full = json!({
            "@odata.type": "#microsoft.graph.message",
            "@odata.etag": etag,
            "id": self.id,
            "createdDateTime": time(self.created),
            "lastModifiedDateTime": time(self.modified),
            "changeKey": format!("CQAAABYAAAA{:08}", self.changed_seq),
            "categories": self.categories,
            "receivedDateTime": time(self.received),
            "sentDateTime": self.sent.map(time),
            "hasAttachments": self.has_attachments,
            "internetMessageId": self.internet_message_id,
            "subject": self.subject,
            "bodyPreview": self.body_preview,
            "importance": "normal",
            "parentFolderId": self.folder_id,
            "isRead": self.is_read,
            "isDraft": false,
            "from": self.from.as_ref().map(mailer),
            "sender": self.from.as_ref().map(mailer),
            "toRecipients": self.to.iter().map(mailer).collect::<Vec<_>>(),
            "ccRecipients": self.cc.iter().map(mailer).collect::<Vec<_>>(),
            "bccRecipients": self.bcc.iter().map(mailer).collect::<Vec<_>>(),
            "replyTo": [],
        });
        match select {
            None => full,
            Some(fields) => {
                let mut out = serde_json::Map::new();
                if let Value::Object(map) = full {
                    for (k, v) in map {
                        let keep = k == "id"
                            || k.starts_with("@odata")
                            || fields.iter().any(|f| f.eq_ignore_ascii_case(&k));
                        if keep {
                            out.insert(k, v);
                        }
                    }
                }
                Value::Object(out)
            }
        }
    }
}

/// A new message from MIME bytes: the fields Graph shows are read from its headers.
pub(crate) fn message_from_mime(id: String, folder_id: String, mime: Vec<u8>, seq: u64) -> Message {
    use mail_parser::MessageParser;
    let now = Utc::now();
    let parsed = MessageParser::default().parse(&mime);
    let list = |a: Option<&mail_parser::Address<'_>>| -> Vec<Mailer> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| {
                    Some(Mailer {
                        name: x.name().unwrap_or_default().to_owned(),
                        address: x.address()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let (subject, mid, from, to, cc, bcc, sent, preview, attachments) = match &parsed {
        Some(p) => (
            p.subject().unwrap_or_default().to_owned(),
            p.message_id().map(|m| format!("<{m}>")),
            list(p.from()).into_iter().next(),
            list(p.to()),
            list(p.cc()),
            list(p.bcc()),
            p.date()
                .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
            p.body_preview(255)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            p.attachment_count() > 0,
        ),
        None => Default::default(),
    };
    Message {
        id,
        folder_id,
        mime,
        internet_message_id: mid,
        subject,
        body_preview: preview,
        from,
        to,
        cc,
        bcc,
        received: now,
        sent,
        created: now,
        modified: now,
        categories: Vec::new(),
        is_read: false,
        has_attachments: attachments,
        changed_seq: seq,
    }
}
