//! What the test SMTP server received: one JSON file per message in the sink folder,
//! written by scripts/smtp-relay.py.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::headers::header_value;

/// One message the SMTP server accepted, with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The sink file name; names sort in order of arrival.
    pub id: String,
    pub received_at: DateTime<Utc>,
    /// `MAIL FROM` (empty for the null sender).
    pub mail_from: String,
    /// Every `RCPT TO`, in order.
    pub rcpt_tos: Vec<String>,
    /// The Dovecot user name the client authenticated as (`bob`, not `bob@example.org`).
    pub auth_user: Option<String>,
    /// The message exactly as received, after dot-unstuffing.
    pub raw: Vec<u8>,
    /// Recipients in example.org that Dovecot accepted by LMTP.
    pub lmtp_delivered: Vec<String>,
    /// Recipients in example.org that Dovecot refused: recipient -> (code, text).
    pub lmtp_refused: BTreeMap<String, (u16, String)>,
}

impl ReceivedMessage {
    /// The message as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.raw)
    }

    /// The unfolded value of the first header field `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        header_value(&self.raw, name)
    }
}

#[derive(Deserialize)]
struct SinkFile {
    received_at: DateTime<Utc>,
    mail_from: String,
    rcpt_tos: Vec<String>,
    auth_user: Option<String>,
    data_base64: String,
    #[serde(default)]
    lmtp_delivered: Vec<String>,
    #[serde(default)]
    lmtp_refused: BTreeMap<String, (u16, String)>,
}

/// Every message in the sink folder, in order of arrival. Hidden files are messages
/// still being written and are skipped.
pub(crate) fn read_sink(dir: &Path) -> Vec<ReceivedMessage> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading the SMTP sink {}: {error}", dir.display()));
    let mut names: Vec<String> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|error| panic!("listing the SMTP sink {}: {error}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| !name.starts_with('.') && name.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| read_sink_file(dir, name))
        .collect()
}

fn read_sink_file(dir: &Path, id: String) -> ReceivedMessage {
    let path = dir.join(&id);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("reading SMTP sink file {}: {error}", path.display()));
    let file: SinkFile = serde_json::from_slice(&bytes)
        .unwrap_or_else(|error| panic!("parsing SMTP sink file {}: {error}", path.display()));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&file.data_base64)
        .unwrap_or_else(|error| panic!("decoding data_base64 in {}: {error}", path.display()));
    ReceivedMessage {
        id,
        received_at: file.received_at,
        mail_from: file.mail_from,
        rcpt_tos: file.rcpt_tos,
        auth_user: file.auth_user,
        raw,
        lmtp_delivered: file.lmtp_delivered,
        lmtp_refused: file.lmtp_refused,
    }
}

#[cfg(test)]
mod tests {
    use super::read_sink;

    #[test]
    fn read_sink_orders_by_name_and_skips_files_being_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = |from: &str, data: &str| {
            format!(
                r#"{{"seq": 1, "received_at": "2026-01-02T03:04:05.000006+00:00", "mail_from": "{from}",
                    "rcpt_tos": ["bob@example.org", "x@elsewhere.test"], "auth_user": "alice",
                    "data_base64": "{data}", "lmtp_delivered": ["bob@example.org"],
                    "lmtp_refused": {{"ghost@example.org": [550, "no such user"]}}}}"#
            )
        };
        // "Subject: b\r\n\r\n" and "Subject: a\r\n\r\n" in base64.
        std::fs::write(
            dir.path().join("00000000000000000002-000002.json"),
            record("second@example.org", "U3ViamVjdDogYg0KDQo="),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("00000000000000000001-000001.json"),
            record("first@example.org", "U3ViamVjdDogYQ0KDQo="),
        )
        .expect("write");
        std::fs::write(
            dir.path().join(".00000000000000000003-000003.json.tmp"),
            "{",
        )
        .expect("write");

        let messages = read_sink(dir.path());
        let froms: Vec<&str> = messages.iter().map(|m| m.mail_from.as_str()).collect();
        assert_eq!(froms, ["first@example.org", "second@example.org"]);
        let first = &messages[0];
        assert_eq!(first.header("subject").as_deref(), Some("a"));
        assert_eq!(first.auth_user.as_deref(), Some("alice"));
        assert_eq!(first.rcpt_tos, ["bob@example.org", "x@elsewhere.test"]);
        assert_eq!(
            first.lmtp_refused.get("ghost@example.org"),
            Some(&(550, "no such user".to_owned()))
        );
        assert_eq!(
            first.received_at.to_rfc3339(),
            "2026-01-02T03:04:05.000006+00:00"
        );
    }
}
