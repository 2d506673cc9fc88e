//! What the pipeline knows of a message after parsing: headers that matter for
//! tracking and correlation, normalized.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The longest normalized subject, in characters: it is an index key of the
/// store (PostgreSQL's keys stop at about 2,700 bytes), and subjects that agree
/// this far are the same subject for similarity.
const MAX_NORMALIZED_SUBJECT_CHARS: usize = 500;

/// The longest fingerprint kept as it is; a longer one (a sender address of
/// kilobytes) becomes a digest of itself, also an index key.
const MAX_FINGERPRINT_BYTES: usize = 1000;

/// One mailbox address of a message (display name dropped, lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(pub String);

impl Address {
    pub fn new(s: &str) -> Address {
        Address(s.trim().to_ascii_lowercase())
    }
}

/// The facts of one message that decisions use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFacts {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub subject: String,
    pub from: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub date: Option<DateTime<Utc>>,
    /// The conversation part of Outlook's Thread-Index (its first 22 bytes), hex.
    pub conversation_key: Option<String>,
    /// IMAP keywords (and Exchange categories) on the message.
    pub keywords: Vec<String>,
}

impl MessageFacts {
    /// Every address of the message: from, to, cc, bcc.
    pub fn all_addresses(&self) -> impl Iterator<Item = &Address> {
        self.from
            .iter()
            .chain(&self.to)
            .chain(&self.cc)
            .chain(&self.bcc)
    }
}

/// The subject without reply and forward prefixes and tracking tokens, lower-cased
/// and with runs of white space folded: what "the same subject" means for
/// similarity matching.
pub fn normalize_subject(subject: &str, token_prefix: &str) -> String {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let stripped = [
            "re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:", "tr:", "antw:", "r:",
        ]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| s[p.len()..].trim_start());
        match stripped {
            Some(rest) => s = rest,
            None => break,
        }
    }
    let words: Vec<&str> = s
        .split_whitespace()
        .filter(|w| token_prefix.is_empty() || !w.starts_with(token_prefix))
        .collect();
    words
        .join(" ")
        .to_lowercase()
        .chars()
        .take(MAX_NORMALIZED_SUBJECT_CHARS)
        .collect()
}

/// A stable key for a message without a Message-ID, so that the same message seen
/// twice (two mailboxes, a re-sync) is still one email: sender, date, subject and
/// a digest of the body.
pub fn fingerprint(facts: &MessageFacts, body_digest: &str) -> String {
    let print = format!(
        "fp:{}|{}|{}|{}",
        facts.from.as_ref().map_or("", |a| a.0.as_str()),
        facts.date.map(|d| d.timestamp()).unwrap_or_default(),
        normalize_subject(&facts.subject, ""),
        body_digest
    );
    if print.len() <= MAX_FINGERPRINT_BYTES {
        return print;
    }
    let digest: String = Sha256::digest(print.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("fp:sha256:{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_normalize() {
        let cases = [
            ("Re: RE: Fwd: Quote for Q3", "quote for q3"),
            ("AW:  Quote   for Q3 CRM:0001000042", "quote for q3"),
            ("Quote for Q3", "quote for q3"),
            ("Re:", ""),
            ("Regarding the quote", "regarding the quote"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_subject(input, "CRM:"), expected, "{input}");
        }
    }

    #[test]
    fn fingerprints_ignore_reply_prefixes_but_not_the_sender() {
        let a = MessageFacts {
            subject: "Hello".into(),
            from: Some(Address::new("A@x.org")),
            ..Default::default()
        };
        let b = MessageFacts {
            subject: "RE: hello".into(),
            from: Some(Address::new("a@x.org")),
            ..Default::default()
        };
        let c = MessageFacts {
            subject: "Hello".into(),
            from: Some(Address::new("c@x.org")),
            ..Default::default()
        };
        assert_eq!(fingerprint(&a, "d"), fingerprint(&b, "d"));
        assert_ne!(fingerprint(&a, "d"), fingerprint(&c, "d"));
        assert_ne!(fingerprint(&a, "d"), fingerprint(&a, "e"));
    }

    #[test]
    fn long_keys_are_bounded() {
        let subject = "word ".repeat(1000);
        assert_eq!(normalize_subject(&subject, "CRM:").chars().count(), 500);
        let from = |local: &str| MessageFacts {
            from: Some(Address::new(&format!("{local}@x.org"))),
            subject: subject.clone(),
            ..Default::default()
        };
        let (a, b) = (from(&"a".repeat(2000)), from(&"b".repeat(2000)));
        assert!(fingerprint(&a, "d").starts_with("fp:sha256:"));
        assert_eq!(fingerprint(&a, "d").len(), 74);
        assert_ne!(fingerprint(&a, "d"), fingerprint(&b, "d"));
    }
}
