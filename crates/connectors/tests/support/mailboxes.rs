//! A scripted IMAP server that keeps real folders and messages (shared with the
//! test, which inspects them afterwards), for the commands that change a mailbox:
//! LOGIN, CAPABILITY, SELECT, LIST, CREATE, SUBSCRIBE, UID COPY, UID STORE,
//! EXPUNGE, UID EXPUNGE (RFC 4315) and UID MOVE (RFC 6851), answered as RFC 3501
//! has them (sequence numbers renumbered after each EXPUNGE). Runs on
//! tests/support/scripted.rs; the greeting offers no STARTTLS, so connect with
//! `TlsPolicy::None`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::scripted::{Dialogue, Reply};

/// One message: its UID and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    pub flags: Vec<String>,
}

impl Message {
    pub fn new(uid: u32, flags: &[&str]) -> Message {
        Message {
            uid,
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    fn deleted(&self) -> bool {
        self.flags
            .iter()
            .any(|f| f.eq_ignore_ascii_case("\\Deleted"))
    }
}

/// One folder: its UIDVALIDITY, the next UID and its messages in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub messages: Vec<Message>,
    pub subscribed: bool,
}

impl Folder {
    pub fn new(uidvalidity: u32, messages: Vec<Message>) -> Folder {
        let uidnext = messages.iter().map(|m| m.uid + 1).max().unwrap_or(1);
        Folder {
            uidvalidity,
            uidnext,
            messages,
            subscribed: true,
        }
    }

    pub fn uids(&self) -> Vec<u32> {
        self.messages.iter().map(|m| m.uid).collect()
    }

    /// Appends a copy of `message` with the next UID; returns that UID.
    fn add(&mut self, message: &Message) -> u32 {
        let uid = self.uidnext;
        self.uidnext += 1;
        self.messages.push(Message {
            uid,
            flags: message.flags.clone(),
        });
        uid
    }

    /// Removes the `\Deleted` messages that `pick` chooses, one EXPUNGE response
    /// each, numbered as the client sees them at that moment.
    fn expunge(&mut self, pick: impl Fn(&Message) -> bool) -> Vec<String> {
        let mut said = Vec::new();
        while let Some(at) = self.messages.iter().position(|m| m.deleted() && pick(m)) {
            self.messages.remove(at);
            said.push(format!("* {} EXPUNGE", at + 1));
        }
        said
    }
}

/// The folders of the one mailbox, shared by every connection and the test.
#[derive(Debug, Clone, Default)]
pub struct Mailboxes(Arc<Mutex<BTreeMap<String, Folder>>>);

impl Mailboxes {
    pub fn new(folders: impl IntoIterator<Item = (&'static str, Folder)>) -> Mailboxes {
        let folders = folders
            .into_iter()
            .map(|(name, folder)| (name.to_owned(), folder))
            .collect();
        Mailboxes(Arc::new(Mutex::new(folders)))
    }

    /// A copy of `name` as it is now.
    pub fn folder(&self, name: &str) -> Option<Folder> {
        self.0.lock().expect("mailboxes").get(name).cloned()
    }
}

/// How the server behaves.
#[derive(Debug, Clone, Copy)]
pub struct Extensions {
    /// Offers MOVE (RFC 6851).
    pub move_: bool,
    /// Offers UIDPLUS (RFC 4315): UID EXPUNGE and COPYUID.
    pub uidplus: bool,
    /// Refuses every UID COPY with this tagged answer (after the tag), e.g.
    /// `NO [OVERQUOTA] Quota exceeded`.
    pub refuse_copy: Option<&'static str>,
}

/// The words of a command: atoms, quoted strings (unquoted) and parenthesized
/// lists (kept whole).
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => word.extend(chars.next()),
                        '"' => break,
                        c => word.push(c),
                    }
                }
                words.push(word);
            }
            '(' => {
                let mut word = String::new();
                for c in chars.by_ref() {
                    word.push(c);
                    if c == ')' {
                        break;
                    }
                }
                words.push(word);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek().filter(|c| **c != ' ') {
                    word.push(c);
                    chars.next();
                }
                words.push(word);
            }
        }
    }
    words
}

/// Whether `uid` is in the UID set `set` (`7`, `7,9`, `1:*`), `*` being `last`.
fn in_set(set: &str, uid: u32, last: u32) -> bool {
    let number = |n: &str| {
        if n == "*" {
            last
        } else {
            n.parse().expect("a UID in the set")
        }
    };
    set.split(',').any(|part| match part.split_once(':') {
        Some((a, b)) => {
            let (a, b) = (number(a), number(b));
            (a.min(b)..=a.max(b)).contains(&uid)
        }
        None => number(part) == uid,
    })
}

/// A UID set of RFC 4315 (`4,7`) for COPYUID.
fn uid_set(uids: &[u32]) -> String {
    let uids: Vec<String> = uids.iter().map(u32::to_string).collect();
    uids.join(",")
}

/// The server of one connection.
pub struct MailboxServer {
    extensions: Extensions,
    mailboxes: Mailboxes,
    logged_in: bool,
    selected: Option<String>,
}

impl MailboxServer {
    pub fn new(extensions: Extensions, mailboxes: Mailboxes) -> MailboxServer {
        MailboxServer {
            extensions,
            mailboxes,
            logged_in: false,
            selected: None,
        }
    }

    fn capabilities(&self) -> String {
        let mut caps = "IMAP4rev1 LITERAL+ SASL-IR".to_owned();
        if self.logged_in {
            caps.push_str(" IDLE NAMESPACE");
            if self.extensions.uidplus {
                caps.push_str(" UIDPLUS");
            }
            if self.extensions.move_ {
                caps.push_str(" MOVE");
            }
        }
        caps
    }

    /// The answer to a logged-in command (`verb` upper-cased, `args` its words).
    fn command(&mut self, verb: &str, args: &[String]) -> Vec<String> {
        let mut boxes = self.mailboxes.0.lock().expect("mailboxes");
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        let missing = |name: &str| format!("NO [TRYCREATE] Mailbox doesn't exist: {name}");
        let no_such = |name: &str| format!("NO [NONEXISTENT] Mailbox doesn't exist: {name}");
        match verb {
            "NOOP" => vec!["OK NOOP completed.".to_owned()],
            "SELECT" => {
                let Some(folder) = boxes.get(arg(0)) else {
                    self.selected = None;
                    return vec![no_such(arg(0))];
                };
                self.selected = Some(arg(0).to_owned());
                vec![
                    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)".to_owned(),
                    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.".to_owned(),
                    format!("* {} EXISTS", folder.messages.len()),
                    "* 0 RECENT".to_owned(),
                    format!("* OK [UIDVALIDITY {}] UIDs valid", folder.uidvalidity),
                    format!("* OK [UIDNEXT {}] Predicted next UID", folder.uidnext),
                    "OK [READ-WRITE] Select completed.".to_owned(),
                ]
            }
            "LIST" => {
                // Names without hierarchy: `*` lists all, any other pattern is exact.
                let pattern = arg(1);
                let mut said: Vec<String> = boxes
                    .keys()
                    .filter(|name| pattern == "*" || *name == pattern)
                    .map(|name| format!("* LIST (\\HasNoChildren) \"/\" \"{name}\""))
                    .collect();
                said.push("OK List completed.".to_owned());
                said
            }
            "CREATE" => {
                if boxes.contains_key(arg(0)) {
                    return vec!["NO [ALREADYEXISTS] Mailbox already exists".to_owned()];
                }
                let uidvalidity = 1_700_000_000 + u32::try_from(boxes.len()).expect("few");
                let mut folder = Folder::new(uidvalidity, Vec::new());
                folder.subscribed = false;
                boxes.insert(arg(0).to_owned(), folder);
                vec!["OK Create completed.".to_owned()]
            }
            "SUBSCRIBE" => match boxes.get_mut(arg(0)) {
                Some(folder) => {
                    folder.subscribed = true;
                    vec!["OK Subscribe completed.".to_owned()]
                }
                None => vec![no_such(arg(0))],
            },
            "EXPUNGE" | "UID EXPUNGE" | "UID COPY" | "UID MOVE" | "UID STORE" => {
                let Some(selected) = self.selected.clone() else {
                    return vec!["BAD No mailbox selected.".to_owned()];
                };
                let uidplus = self.extensions.uidplus;
                if verb == "EXPUNGE" {
                    let folder = boxes.get_mut(&selected).expect("selected");
                    let mut said = folder.expunge(|_| true);
                    said.push("OK Expunge completed.".to_owned());
                    return said;
                }
                if verb == "UID EXPUNGE" && !uidplus || verb == "UID MOVE" && !self.extensions.move_
                {
                    return vec!["BAD Error in IMAP command UID: Unknown command".to_owned()];
                }
                let set = arg(0);
                let source = boxes.get(&selected).expect("selected");
                let last = source.messages.last().map_or(0, |m| m.uid);
                let picked: Vec<Message> = source
                    .messages
                    .iter()
                    .filter(|m| in_set(set, m.uid, last))
                    .cloned()
                    .collect();
                if verb == "UID EXPUNGE" {
                    let folder = boxes.get_mut(&selected).expect("selected");
                    let mut said = folder.expunge(|m| in_set(set, m.uid, last));
                    said.push("OK Expunge completed.".to_owned());
                    return said;
                }
                if verb == "UID STORE" {
                    return store(boxes.get_mut(&selected).expect("selected"), &picked, args);
                }
                // UID COPY and UID MOVE.
                if let (Some(refusal), "UID COPY") = (self.extensions.refuse_copy, verb) {
                    return vec![refusal.to_owned()];
                }
                let dest_name = arg(1);
                let Some(dest) = boxes.get_mut(dest_name) else {
                    return vec![missing(dest_name)];
                };
                let copied: Vec<u32> = picked.iter().map(|m| dest.add(m)).collect();
                let copyuid = (uidplus && !copied.is_empty()).then(|| {
                    let source: Vec<u32> = picked.iter().map(|m| m.uid).collect();
                    format!(
                        "[COPYUID {} {} {}] ",
                        dest.uidvalidity,
                        uid_set(&source),
                        uid_set(&copied)
                    )
                });
                let copyuid = copyuid.unwrap_or_default();
                if verb == "UID COPY" {
                    return vec![format!("OK {copyuid}Copy completed.")];
                }
                let mut said = Vec::new();
                if !copyuid.is_empty() {
                    said.push(format!("* OK {copyuid}Moved UIDs."));
                }
                let folder = boxes.get_mut(&selected).expect("selected");
                while let Some(at) = folder
                    .messages
                    .iter()
                    .position(|m| picked.iter().any(|p| p.uid == m.uid))
                {
                    folder.messages.remove(at);
                    said.push(format!("* {} EXPUNGE", at + 1));
                }
                said.push("OK Move completed.".to_owned());
                said
            }
            _ => vec!["BAD Error in IMAP command: Unknown command".to_owned()],
        }
    }
}

/// UID STORE `set` `+FLAGS[.SILENT]`/`-FLAGS[.SILENT]`/`FLAGS[.SILENT]` `(flags)`.
fn store(folder: &mut Folder, picked: &[Message], args: &[String]) -> Vec<String> {
    let item = args
        .get(1)
        .map(|a| a.to_ascii_uppercase())
        .unwrap_or_default();
    let flags = words(
        args.get(2)
            .map_or("", String::as_str)
            .trim_start_matches('(')
            .trim_end_matches(')'),
    );
    let (op, silent) = match item.strip_suffix(".SILENT") {
        Some(op) => (op.to_owned(), true),
        None => (item.clone(), false),
    };
    if !matches!(op.as_str(), "+FLAGS" | "-FLAGS" | "FLAGS") || flags.is_empty() {
        return vec!["BAD Error in IMAP command STORE: Invalid arguments".to_owned()];
    }
    let mut said = Vec::new();
    for (at, message) in folder.messages.iter_mut().enumerate() {
        if !picked.iter().any(|p| p.uid == message.uid) {
            continue;
        }
        match op.as_str() {
            "+FLAGS" => {
                for flag in &flags {
                    if !message.flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
                        message.flags.push(flag.clone());
                    }
                }
            }
            "-FLAGS" => message
                .flags
                .retain(|f| !flags.iter().any(|g| g.eq_ignore_ascii_case(f))),
            _ => message.flags = flags.clone(),
        }
        if !silent {
            said.push(format!(
                "* {} FETCH (UID {} FLAGS ({}))",
                at + 1,
                message.uid,
                message.flags.join(" ")
            ));
        }
    }
    said.push("OK Store completed.".to_owned());
    said
}

impl Dialogue for MailboxServer {
    fn greeting(&self) -> String {
        format!(
            "* OK [CAPABILITY {}] scripted IMAP ready",
            self.capabilities()
        )
    }

    fn reply(&mut self, line: &str, _tls: bool) -> Reply {
        let Some((tag, command)) = line.split_once(' ') else {
            return Reply::Send(vec!["* BAD Error in IMAP command: no tag".to_owned()]);
        };
        let mut args = words(command);
        let mut verb = if args.is_empty() {
            String::new()
        } else {
            args.remove(0).to_ascii_uppercase()
        };
        if verb == "UID" && !args.is_empty() {
            verb = format!("UID {}", args.remove(0).to_ascii_uppercase());
        }
        let done = |lines: Vec<String>| {
            let last = lines.len() - 1;
            lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| if i == last { format!("{tag} {l}") } else { l })
                .collect::<Vec<_>>()
        };
        let said = match (verb.as_str(), self.logged_in) {
            ("CAPABILITY", _) => vec![
                format!("* CAPABILITY {}", self.capabilities()),
                "OK Capability completed.".to_owned(),
            ],
            ("LOGOUT", _) => {
                return Reply::Close(vec![
                    "* BYE Logging out".to_owned(),
                    format!("{tag} OK Logout completed."),
                ]);
            }
            ("LOGIN", false) => {
                self.logged_in = true;
                vec![format!("OK [CAPABILITY {}] Logged in", self.capabilities())]
            }
            (_, false) => vec!["BAD Error in IMAP command: Not logged in".to_owned()],
            ("LOGIN", true) => vec!["BAD Error in IMAP command: Already logged in".to_owned()],
            (_, true) => self.command(&verb, &args),
        };
        Reply::Send(done(said))
    }
}
