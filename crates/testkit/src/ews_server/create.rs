//! CreateItem: messages sent (`SendOnly`, `SendAndSaveCopy`) or saved as drafts
//! (`SaveOnly`), and calendar items, contacts and tasks saved in their folders.
//!
//! ```xml
//! <m:CreateItem MessageDisposition="SendAndSaveCopy">
//!   <m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId>
//!   <m:Items><t:Message><t:MimeContent>base64 RFC 822</t:MimeContent></t:Message></m:Items>
//! </m:CreateItem>
//! → <m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
//!     <m:Items/></m:CreateItemResponseMessage>           (sent: no id is answered)
//! <m:CreateItem SendMeetingInvitations="SendToNone">
//!   <m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>
//!   <m:Items><t:CalendarItem><t:Subject>…</t:Subject><t:Start>…</t:Start>…</t:CalendarItem></m:Items>
//! → <m:Items><t:CalendarItem><t:ItemId Id="…" ChangeKey="…"/></t:CalendarItem></m:Items>
//! ```
//!
//! A message is MIME (`t:MimeContent`) or properties (`t:Subject`, `t:Body
//! BodyType="Text|HTML"`, `t:ToRecipients`, `t:CcRecipients`, `t:BccRecipients`),
//! from which the server writes the MIME. Without a `Message-ID` the server adds
//! one. A sent message is recorded (its MIME, every recipient) and, for
//! `SendAndSaveCopy`, saved read in Sent Items (or `SavedItemFolderId`) with the
//! request's other properties and extended properties. No recipient at all is
//! ErrorInvalidRecipients; a message without `MessageDisposition`,
//! ErrorMessageDispositionRequired.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

use super::SentMessage;
use super::fields::{ParsedItem, parse_item};
use super::folders::{first_ref, id_attrs, resolve};
use super::mime::{addresses, message_fields};
use super::service::Ctx;
use super::soap::{Answer, Responses, fault};
use super::state::{ItemKind, State};
use super::xml::{M, child, elements, text_of, wrap_fragment};

pub(crate) fn create_item(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("CreateItem");
    let Some(items) = child(op, M, "Items") else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: CreateItem needs Items.",
            &[],
        );
    };
    let disposition = op.attribute("MessageDisposition");
    let saved_ref = child(op, M, "SavedItemFolderId").and_then(first_ref);
    let Some(mailbox) = ctx.mailbox.clone().filter(|m| st.mailbox(m).is_some()) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for node in elements(items) {
        let parsed = match parse_item(node) {
            Ok(p) => p,
            Err(code) => {
                out.error(code, "<m:Items/>");
                continue;
            }
        };
        let Some(mb) = st.mailbox(&mailbox) else {
            break;
        };
        let saved = match saved_ref.map(|r| resolve(mb, r)) {
            Some(Ok(id)) => Some(id),
            Some(Err(code)) => {
                out.error(code, "<m:Items/>");
                continue;
            }
            None => None,
        };
        let sending = matches!(disposition, Some("SendOnly" | "SendAndSaveCopy"));
        if parsed.kind == ItemKind::Message && sending {
            let save_to = (disposition == Some("SendAndSaveCopy"))
                .then(|| saved.or_else(|| mb.well_known("sentitems")))
                .flatten();
            match send(st, &mailbox, parsed, save_to) {
                Ok(()) => out.success("<m:Items/>"),
                Err(code) => out.error(code, "<m:Items/>"),
            }
            continue;
        }
        if parsed.kind == ItemKind::Message && disposition != Some("SaveOnly") {
            out.error("ErrorMessageDispositionRequired", "<m:Items/>");
            continue;
        }
        let default_folder = match parsed.kind {
            ItemKind::Message => "drafts",
            ItemKind::CalendarItem => "calendar",
            ItemKind::Contact => "contacts",
            ItemKind::Task => "tasks",
        };
        let Some(folder) = saved.or_else(|| mb.well_known(default_folder)) else {
            out.error("ErrorFolderNotFound", "<m:Items/>");
            continue;
        };
        let ParsedItem {
            kind,
            mime,
            mut fields,
            extended,
        } = parsed;
        if kind == ItemKind::Message {
            if let Some(m) = &mime {
                for (k, v) in message_fields(m, true) {
                    fields.entry(k).or_insert(v);
                }
            }
            fields.insert("IsDraft".into(), "<t:IsDraft>true</t:IsDraft>".into());
        }
        complete_fields(kind, &mut fields);
        match st.insert_item(&mailbox, &folder, kind, mime, fields, extended) {
            Some(id) => {
                let ck = st
                    .mailbox(&mailbox)
                    .and_then(|mb| mb.items.get(&id))
                    .map(|i| i.change_key.clone())
                    .unwrap_or_default();
                let element = kind.element();
                out.success(&format!(
                    "<m:Items><t:{element}><t:ItemId {}/></t:{element}></m:Items>",
                    id_attrs(&id, &ck)
                ));
            }
            None => out.error("ErrorFolderNotFound", "<m:Items/>"),
        }
    }
    out.finish()
}

/// What Exchange sets on a new calendar item, contact or task when the client does
/// not: a calendar item's `UID` and `CalendarItemType`, a task's `Status`, a
/// contact's `DisplayName`.
pub(crate) fn complete_fields(kind: ItemKind, fields: &mut BTreeMap<String, String>) {
    match kind {
        ItemKind::CalendarItem => {
            if !fields.contains_key("UID") {
                // The form of Exchange's UIDs: a GlobalObjectId in hex.
                let random = uuid::Uuid::new_v4()
                    .simple()
                    .to_string()
                    .to_ascii_uppercase();
                fields.insert(
                    "UID".into(),
                    format!("<t:UID>040000008200E00074C5B7101A82E00800000000{random}</t:UID>"),
                );
            }
            set_item_type(fields);
        }
        ItemKind::Task => {
            fields
                .entry("Status".into())
                .or_insert_with(|| "<t:Status>NotStarted</t:Status>".into());
        }
        ItemKind::Contact => {
            if !fields.contains_key("DisplayName") {
                let name = [text_in(fields, "GivenName"), text_in(fields, "Surname")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                if !name.is_empty() {
                    fields.insert(
                        "DisplayName".into(),
                        format!(
                            "<t:DisplayName>{}</t:DisplayName>",
                            super::xml::escape_text(&name)
                        ),
                    );
                }
            }
        }
        ItemKind::Message => {}
    }
}

/// `CalendarItemType`: `RecurringMaster` with a recurrence, else `Single` (unless
/// the item says what it is).
pub(crate) fn set_item_type(fields: &mut BTreeMap<String, String>) {
    let current = text_in(fields, "CalendarItemType");
    let recurring = fields.contains_key("Recurrence");
    let kind = match current.as_deref() {
        Some("Occurrence" | "Exception") => return,
        _ if recurring => "RecurringMaster",
        _ => "Single",
    };
    fields.insert(
        "CalendarItemType".into(),
        format!("<t:CalendarItemType>{kind}</t:CalendarItemType>"),
    );
}

/// The text of a stored property.
pub(crate) fn text_in(fields: &BTreeMap<String, String>, name: &str) -> Option<String> {
    let xml = fields.get(name)?;
    let wrapped = wrap_fragment(xml);
    let doc = roxmltree::Document::parse(&wrapped).ok()?;
    Some(text_of(doc.root_element()).trim().to_owned()).filter(|t| !t.is_empty())
}

/// The addresses of a stored recipient list.
fn recipients_in(fields: &BTreeMap<String, String>, name: &str) -> Vec<String> {
    let Some(xml) = fields.get(name) else {
        return Vec::new();
    };
    roxmltree::Document::parse(&wrap_fragment(xml))
        .map(|doc| addresses(doc.root_element()))
        .unwrap_or_default()
}

fn send(
    st: &mut State,
    mailbox: &str,
    parsed: ParsedItem,
    save_to: Option<String>,
) -> Result<(), &'static str> {
    let display_name = st
        .mailbox(mailbox)
        .map(|m| m.display_name.clone())
        .unwrap_or_default();
    let from_mime = parsed.mime.is_some();
    let mime = match parsed.mime {
        Some(m) => with_message_id(m),
        None => build_mime(&parsed.fields, mailbox, &display_name),
    };
    let parsed_mime = mail_parser::MessageParser::default().parse(&mime);
    let mut recipients: Vec<String> = Vec::new();
    if let Some(p) = &parsed_mime {
        for list in [p.to(), p.cc(), p.bcc()].into_iter().flatten() {
            recipients.extend(
                list.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_ascii_lowercase),
            );
        }
    }
    for name in ["ToRecipients", "CcRecipients", "BccRecipients"] {
        recipients.extend(recipients_in(&parsed.fields, name));
    }
    let mut seen = std::collections::BTreeSet::new();
    recipients.retain(|r| seen.insert(r.clone()));
    if recipients.is_empty() {
        return Err("ErrorInvalidRecipients");
    }
    let internet_message_id = parsed_mime
        .as_ref()
        .and_then(|p| p.message_id())
        .map(|id| format!("<{id}>"));
    let saved_copy_id = match save_to {
        Some(folder) => {
            let mut fields = message_fields(&mime, true);
            for (k, v) in parsed.fields {
                fields.entry(k).or_insert(v);
            }
            st.insert_item(
                mailbox,
                &folder,
                ItemKind::Message,
                Some(mime.clone()),
                fields,
                parsed.extended,
            )
        }
        None => None,
    };
    st.sent.push(SentMessage {
        mailbox: mailbox.to_owned(),
        mime,
        recipients,
        internet_message_id,
        saved_copy_id,
        from_mime,
    });
    Ok(())
}

/// The MIME with a `Message-ID` header, added in front when it has none.
fn with_message_id(mime: Vec<u8>) -> Vec<u8> {
    let has_id = mail_parser::MessageParser::default()
        .parse(&mime)
        .is_some_and(|p| p.message_id().is_some());
    if has_id {
        return mime;
    }
    let mut out = format!(
        "Message-ID: <{}@ews.mailbridge.test>\r\n",
        uuid::Uuid::new_v4().simple()
    )
    .into_bytes();
    out.extend_from_slice(&mime);
    out
}

/// An RFC 822 message from a message's properties, as Exchange writes one.
fn build_mime(fields: &BTreeMap<String, String>, mailbox: &str, display_name: &str) -> Vec<u8> {
    let header_text = |s: &str| -> String {
        let flat: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        if flat.is_ascii() {
            flat
        } else {
            format!("=?utf-8?B?{}?=", STANDARD.encode(flat.as_bytes()))
        }
    };
    let mut head = String::new();
    if display_name.is_empty() {
        head.push_str(&format!("From: {mailbox}\r\n"));
    } else {
        head.push_str(&format!(
            "From: {} <{mailbox}>\r\n",
            header_text(display_name)
        ));
    }
    for (header, name) in [("To", "ToRecipients"), ("Cc", "CcRecipients")] {
        let list = recipients_in(fields, name);
        if !list.is_empty() {
            head.push_str(&format!("{header}: {}\r\n", list.join(", ")));
        }
    }
    if let Some(subject) = text_in(fields, "Subject") {
        head.push_str(&format!("Subject: {}\r\n", header_text(&subject)));
    }
    head.push_str(&format!(
        "Date: {}\r\n",
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S +0000")
    ));
    let id = text_in(fields, "InternetMessageId")
        .unwrap_or_else(|| format!("<{}@ews.mailbridge.test>", uuid::Uuid::new_v4().simple()));
    head.push_str(&format!("Message-ID: {}\r\n", header_text(&id)));
    let (html, body) = fields
        .get("Body")
        .and_then(|xml| {
            let wrapped = wrap_fragment(xml);
            let doc = roxmltree::Document::parse(&wrapped).ok()?;
            let b = elements(doc.root_element()).next()?;
            Some((
                b.attribute("BodyType")
                    .is_some_and(|t| t.eq_ignore_ascii_case("HTML")),
                text_of(b),
            ))
        })
        .unwrap_or((false, String::new()));
    head.push_str("MIME-Version: 1.0\r\n");
    head.push_str(&format!(
        "Content-Type: text/{}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        if html { "html" } else { "plain" }
    ));
    let encoded = STANDARD.encode(body.as_bytes());
    let mut out = head.into_bytes();
    for chunk in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_message_id_gets_one() {
        let with = b"Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody\r\n".to_vec();
        assert_eq!(with_message_id(with.clone()), with);
        let added = with_message_id(b"Subject: x\r\n\r\nbody\r\n".to_vec());
        let p = mail_parser::MessageParser::default()
            .parse(&added)
            .expect("mime");
        assert!(
            p.message_id()
                .is_some_and(|id| id.ends_with("@ews.mailbridge.test"))
        );
        assert_eq!(p.subject(), Some("x"));
    }

    #[test]
    fn properties_become_mime() {
        let mut fields = BTreeMap::new();
        fields.insert("Subject".into(), "<t:Subject>Grüße</t:Subject>".into());
        fields.insert(
            "Body".into(),
            "<t:Body BodyType=\"HTML\">&lt;p&gt;Hi&lt;/p&gt;</t:Body>".into(),
        );
        fields.insert(
            "ToRecipients".into(),
            "<t:ToRecipients><t:Mailbox><t:EmailAddress>Bob@example.org</t:EmailAddress></t:Mailbox></t:ToRecipients>".into(),
        );
        let mime = build_mime(&fields, "ann@example.org", "Ann");
        let p = mail_parser::MessageParser::default()
            .parse(&mime)
            .expect("mime");
        assert_eq!(p.subject(), Some("Grüße"));
        assert_eq!(p.body_html(0).as_deref(), Some("<p>Hi</p>"));
        assert_eq!(
            p.to().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("bob@example.org")
        );
        assert_eq!(
            p.from().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("ann@example.org")
        );
        assert!(p.message_id().is_some());
    }

    #[test]
    fn new_act_items_are_completed_as_exchange_does() {
        let mut cal = BTreeMap::new();
        cal.insert("Recurrence".into(), "<t:Recurrence/>".into());
        complete_fields(ItemKind::CalendarItem, &mut cal);
        assert_eq!(
            text_in(&cal, "CalendarItemType").as_deref(),
            Some("RecurringMaster")
        );
        assert!(text_in(&cal, "UID").is_some_and(|u| u.starts_with("040000008200E000")));
        let mut task = BTreeMap::new();
        complete_fields(ItemKind::Task, &mut task);
        assert_eq!(text_in(&task, "Status").as_deref(), Some("NotStarted"));
        let mut contact = BTreeMap::new();
        contact.insert("GivenName".into(), "<t:GivenName>Ann</t:GivenName>".into());
        contact.insert("Surname".into(), "<t:Surname>Lee</t:Surname>".into());
        complete_fields(ItemKind::Contact, &mut contact);
        assert_eq!(text_in(&contact, "DisplayName").as_deref(), Some("Ann Lee"));
    }
}
