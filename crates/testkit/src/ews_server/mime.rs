//! The properties of a message that its MIME gives, as Exchange promotes them from
//! the headers and the body, and recipient lists (`t:Mailbox`).

use std::collections::BTreeMap;

use roxmltree::Node;

use super::state::ews_time;
use super::xml::{T, Xml, escape_text, is};

/// The properties a message's MIME gives (as Exchange promotes them from the headers
/// and the body), for a delivered message or a sent copy.
pub(crate) fn message_fields(mime: &[u8], is_read: bool) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |name: &str, inner: String| {
        f.insert(name.to_owned(), format!("<t:{name}>{inner}</t:{name}>"));
    };
    put("ItemClass", "IPM.Note".into());
    put("DateTimeReceived", ews_time(chrono::Utc::now()));
    put("IsRead", is_read.to_string());
    let Some(p) = mail_parser::MessageParser::default().parse(mime) else {
        put("HasAttachments", "false".into());
        return f;
    };
    if let Some(s) = p.subject() {
        put("Subject", escape_text(s));
    }
    if let Some(id) = p.message_id() {
        put("InternetMessageId", escape_text(&format!("<{id}>")));
    }
    if let Some(d) = p.date()
        && let Some(t) = chrono::DateTime::from_timestamp(d.to_timestamp(), 0)
    {
        put("DateTimeSent", ews_time(t));
    }
    put("HasAttachments", (p.attachment_count() > 0).to_string());
    if let Some(body) = p.body_text(0) {
        f.insert(
            "Body".into(),
            format!("<t:Body BodyType=\"Text\">{}</t:Body>", escape_text(&body)),
        );
    }
    let list = |a: Option<&mail_parser::Address<'_>>| -> Vec<(String, String)> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| {
                    Some((
                        x.name().unwrap_or_default().to_owned(),
                        x.address()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    if let Some(from) = list(p.from()).into_iter().next() {
        let m = mailbox_xml(&from.0, &from.1);
        f.insert("From".into(), format!("<t:From>{m}</t:From>"));
        f.insert("Sender".into(), format!("<t:Sender>{m}</t:Sender>"));
    }
    for (name, addrs) in [
        ("ToRecipients", list(p.to())),
        ("CcRecipients", list(p.cc())),
        ("BccRecipients", list(p.bcc())),
    ] {
        if !addrs.is_empty() {
            let inner: String = addrs.iter().map(|(n, a)| mailbox_xml(n, a)).collect();
            f.insert(name.into(), format!("<t:{name}>{inner}</t:{name}>"));
        }
    }
    f
}

/// `t:Mailbox` with `t:Name`, `t:EmailAddress` and `t:RoutingType` SMTP.
pub(crate) fn mailbox_xml(name: &str, address: &str) -> String {
    let mut x = Xml::new();
    x.open("t:Mailbox", &[]);
    if !name.is_empty() {
        x.text("t:Name", name);
    }
    x.text("t:EmailAddress", address)
        .text("t:RoutingType", "SMTP");
    x.finish()
}

/// The `t:EmailAddress` values of the `t:Mailbox` children of a recipient list.
pub(crate) fn addresses(list: Node<'_, '_>) -> Vec<String> {
    list.descendants()
        .filter(|n| is(*n, T, "EmailAddress"))
        .map(|n| super::xml::text_of(n).trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_gives_the_message_properties() {
        let mime = b"From: Ann <ann@example.org>\r\nTo: bob@example.org, Cy <cy@example.org>\r\n\
                     Subject: Q3 & plans\r\nMessage-ID: <m1@example.org>\r\n\
                     Date: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nHello\r\n";
        let f = message_fields(mime, false);
        assert_eq!(f["Subject"], "<t:Subject>Q3 &amp; plans</t:Subject>");
        assert_eq!(
            f["InternetMessageId"],
            "<t:InternetMessageId>&lt;m1@example.org&gt;</t:InternetMessageId>"
        );
        assert_eq!(
            f["DateTimeSent"],
            "<t:DateTimeSent>2026-11-26T08:00:00Z</t:DateTimeSent>"
        );
        assert_eq!(f["IsRead"], "<t:IsRead>false</t:IsRead>");
        assert!(f["ToRecipients"].contains("<t:EmailAddress>cy@example.org</t:EmailAddress>"));
        assert!(f["From"].contains("<t:Name>Ann</t:Name>"));
    }
}
