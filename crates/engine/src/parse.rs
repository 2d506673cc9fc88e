//! Reading a raw message into the facts the decisions need, the bodies and the
//! attachments. mail-parser is lenient: a malformed message still yields what
//! can be read, so a bad header never stops the pipeline.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use mailbridge_domain::ingest::{Address, MessageFacts};
use sha2::{Digest, Sha256};

/// An attachment as found in the message.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub file_name: Option<String>,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub facts: MessageFacts,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// SHA-256 of the raw bytes, for the fingerprint of a message without a
    /// Message-ID (computed only for those).
    pub digest: Option<String>,
}

/// The longest Message-ID kept as written. No mailer writes longer ones; a
/// longer one is replaced by a digest of itself, which still tells messages
/// apart and fits a PostgreSQL index (whose keys stop at about 2,700 bytes).
const MAX_MESSAGE_ID_BYTES: usize = 500;

/// The longest subject kept, in characters: as many as an email's subject may
/// hold (`activity::validate_email`); the rest is cut.
const MAX_SUBJECT_CHARS: usize = 2000;

/// Text of a message as the store can hold it: PostgreSQL's `text` refuses NUL
/// characters, which a message may carry in any header or part.
fn storable(s: &str) -> Cow<'_, str> {
    match s.contains('\0') {
        true => Cow::Owned(s.replace('\0', "")),
        false => Cow::Borrowed(s),
    }
}

/// A Message-ID as it is stored and looked up: without brackets and NULs, and
/// a digest in place of an overlong one (the same in every header that names it).
fn message_id(s: &str) -> String {
    let id = mailbridge_domain::activity::normalize_message_id(&storable(s));
    if id.len() <= MAX_MESSAGE_ID_BYTES {
        return id;
    }
    let digest: String = Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{digest}@long-message-id.invalid")
}

fn subject(s: &str) -> String {
    storable(s).chars().take(MAX_SUBJECT_CHARS).collect()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .map(|l| {
            l.iter()
                .map(|s| message_id(s))
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(storable)
            .filter(|s| s.contains('@'))
            .map(|s| Address::new(&s))
            .collect()
    })
    .unwrap_or_default()
}

/// The conversation part of an Outlook Thread-Index: its first 22 bytes, in hex.
fn conversation_key(thread_index: Option<&str>) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(thread_index?.trim())
        .ok()?;
    (raw.len() >= 22).then(|| raw[..22].iter().map(|b| format!("{b:02x}")).collect())
}

fn digest(raw: &[u8]) -> String {
    Sha256::digest(raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What is recorded of a message that cannot be read: its keywords, and the
/// digest its fingerprint is made of.
fn unreadable(raw: &[u8], keywords: Vec<String>) -> Parsed {
    Parsed {
        facts: MessageFacts {
            keywords,
            ..Default::default()
        },
        body_text: None,
        body_html: None,
        attachments: Vec::new(),
        digest: Some(digest(raw)),
    }
}

/// Parses a raw RFC 5322 message; never fails (an unreadable message yields
/// empty facts and is still recorded). A panic of the parser on a hostile
/// message (mail-parser 0.11 has `debug_assert!`s that crafted multiparts reach:
/// fuzz/regressions/ingest_message/) makes it unreadable too, rather than
/// taking its batch, and every later run of the mailbox, down with it.
pub fn parse(raw: &[u8], keywords: Vec<String>) -> Parsed {
    let read = std::panic::AssertUnwindSafe(|| read(raw, keywords.clone()));
    std::panic::catch_unwind(read).unwrap_or_else(|_| {
        tracing::warn!(
            bytes = raw.len(),
            "the message parser panicked on a message; it is recorded as unreadable"
        );
        unreadable(raw, keywords)
    })
}

fn read(raw: &[u8], keywords: Vec<String>) -> Parsed {
    let Some(m) = MessageParser::default().parse(raw) else {
        return unreadable(raw, keywords);
    };
    let date: Option<DateTime<Utc>> = m
        .date()
        .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single());
    let facts = MessageFacts {
        message_id: m.message_id().map(message_id).filter(|s| !s.is_empty()),
        in_reply_to: ids(m.in_reply_to()),
        references: ids(m.references()),
        subject: subject(m.subject().unwrap_or_default()),
        from: addresses(m.from()).into_iter().next(),
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        bcc: addresses(m.bcc()),
        date,
        conversation_key: conversation_key(m.header_raw("Thread-Index")),
        keywords,
    };
    let attachments = m
        .attachments()
        .map(|part| Attachment {
            file_name: part.attachment_name().map(|n| storable(n).into_owned()),
            content_type: part
                .content_type()
                .map(|c| {
                    let t = format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream"));
                    storable(&t).into_owned()
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            content: part.contents().to_vec(),
        })
        .collect();
    Parsed {
        body_text: m.body_text(0).map(|b| storable(&b).into_owned()),
        // Only a real HTML part: mail-parser would otherwise convert the text
        // part to HTML, which costs time and stores nothing new.
        body_html: m
            .html_part(0)
            .filter(|p| p.is_text_html())
            .and_then(|_| m.body_html(0))
            .map(|b| storable(&b).into_owned()),
        digest: facts.message_id.is_none().then(|| digest(raw)),
        facts,
        attachments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_facts() {
        let raw = b"From: Carl <Carl@Fabrikam.com>\r\nTo: alice@example.org, Bob <bob@example.org>\r\nCc: x@y.org\r\n\
Subject: Re: Quote CRM:00010042\r\nMessage-ID: <m1@fabrikam.com>\r\nIn-Reply-To: <o1@example.org>\r\n\
References: <r0@x.org> <o1@example.org>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nHello\r\n";
        let p = parse(raw, vec!["$Tracked".into()]);
        let f = &p.facts;
        assert_eq!(f.message_id.as_deref(), Some("m1@fabrikam.com"));
        assert_eq!(f.in_reply_to, ["o1@example.org"]);
        assert_eq!(f.references, ["r0@x.org", "o1@example.org"]);
        assert_eq!(f.from, Some(Address::new("carl@fabrikam.com")));
        assert_eq!(f.to.len(), 2);
        assert_eq!(f.cc, [Address::new("x@y.org")]);
        assert_eq!(f.date.unwrap().to_rfc3339(), "2026-11-26T08:00:00+00:00");
        assert_eq!(p.body_text.as_deref().map(str::trim), Some("Hello"));
        assert_eq!(f.keywords, ["$Tracked"]);
        assert_eq!(p.body_html, None, "a text-only message has no HTML body");
        assert_eq!(p.digest, None, "a Message-ID needs no digest");
    }

    #[test]
    fn an_html_part_is_kept() {
        let raw = b"From: a@x.org\r\nTo: b@x.org\r\nSubject: html\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nplain\r\n\
--b1\r\nContent-Type: text/html\r\n\r\n<p>rich</p>\r\n--b1--\r\n";
        let p = parse(raw, Vec::new());
        assert_eq!(p.body_text.as_deref().map(str::trim), Some("plain"));
        assert!(
            p.body_html
                .as_deref()
                .is_some_and(|h| h.contains("<p>rich</p>")),
            "{:?}",
            p.body_html
        );
    }

    #[test]
    fn garbage_still_parses_to_something() {
        let p = parse(b"\x00\xff not a message", Vec::new());
        assert!(p.facts.message_id.is_none());
        assert_eq!(
            p.digest.map(|d| d.len()),
            Some(64),
            "no Message-ID: a digest for the fingerprint"
        );
    }

    #[test]
    fn attachments_are_found() {
        let raw = b"From: a@x.org\r\nTo: b@x.org\r\nSubject: file\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"q.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";
        let p = parse(raw, Vec::new());
        assert_eq!(p.attachments.len(), 1);
        assert_eq!(p.attachments[0].file_name.as_deref(), Some("q.pdf"));
        assert_eq!(p.attachments[0].content_type, "application/pdf");
        assert_eq!(p.attachments[0].content, b"%PDF-1.4\n");
    }

    #[test]
    fn text_fits_the_store() {
        let long_id = format!("{}@x.org", "i".repeat(10_000));
        let raw = format!(
            "From: C\0arl <carl@fab\0rikam.com>\r\nTo: a@x.org\r\nSubject: q\0uote {}\r\n\
Message-ID: <{long_id}>\r\nReferences: <r\0@x.org> <{long_id}>\r\n\r\nbo\0dy\r\n",
            "s".repeat(5000)
        );
        let p = parse(raw.as_bytes(), Vec::new());
        let f = &p.facts;
        assert_eq!(f.from, Some(Address::new("carl@fabrikam.com")));
        assert!(f.subject.starts_with("quote "));
        assert_eq!(f.subject.chars().count(), MAX_SUBJECT_CHARS);
        let id = f.message_id.clone().unwrap();
        assert!(
            id.len() < 100 && id.ends_with("@long-message-id.invalid"),
            "{id}"
        );
        assert_eq!(
            f.references,
            ["r@x.org".to_owned(), id],
            "the same digest in References"
        );
        assert_eq!(p.body_text.as_deref().map(str::trim), Some("body"));
    }

    #[test]
    fn thread_index_conversation() {
        // 22 bytes of conversation + 5 bytes of child block, base64.
        let ti = "AQHZ3m4rAAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
        assert_eq!(conversation_key(Some(ti)).map(|k| k.len()), Some(44));
        assert_eq!(conversation_key(Some("short")), None);
    }
}
