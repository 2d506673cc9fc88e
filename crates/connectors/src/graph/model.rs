//! Graph's JSON as types: messages, mail folders, collection pages and delta pages.
//! Pure functions, table-tested.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// An address as Graph gives it (`{"emailAddress": {"name", "address"}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Recipient {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Deserialize)]
struct Wrapped {
    #[serde(rename = "emailAddress", default)]
    email_address: Recipient,
}

fn recipient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Recipient>, D::Error> {
    Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.email_address))
}

fn recipients<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Recipient>, D::Error> {
    Ok(Option::<Vec<Wrapped>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.email_address)
        .collect())
}

fn strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The properties of a message the sync reads (the body comes as MIME instead).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphMessage {
    /// The immutable id (with `Prefer: IdType="ImmutableId"`): stable across moves.
    pub id: String,
    #[serde(default)]
    pub internet_message_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub received_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    /// Outlook categories; mailbridge's tracking keyword is one of them.
    #[serde(default, deserialize_with = "strings")]
    pub categories: Vec<String>,
    #[serde(default)]
    pub is_read: Option<bool>,
    #[serde(default, deserialize_with = "recipient")]
    pub from: Option<Recipient>,
    #[serde(default, deserialize_with = "recipients")]
    pub to_recipients: Vec<Recipient>,
    #[serde(default)]
    pub change_key: Option<String>,
}

/// The properties a delta query asks for (`$select`; `id` always comes).
pub(crate) const MESSAGE_FIELDS: &str = "internetMessageId,subject,receivedDateTime,parentFolderId,categories,isRead,from,toRecipients,changeKey";

/// A mail folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailFolder {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub child_folder_count: u32,
    #[serde(default)]
    pub total_item_count: u32,
    #[serde(default)]
    pub unread_item_count: u32,
}

/// One entry of a delta page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaChange {
    /// A message that is new in the folder or changed (Graph does not say which).
    Upserted(GraphMessage),
    /// A message that left the folder (deleted or moved away); `reason` is Graph's
    /// (`deleted` or `changed`).
    Removed { id: String, reason: String },
}

/// Where a delta page points next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaLink {
    /// `@odata.nextLink`: more pages in this round.
    Next(String),
    /// `@odata.deltaLink`: the round is complete; the start of the next one.
    Delta(String),
}

impl DeltaLink {
    pub fn url(&self) -> &str {
        match self {
            DeltaLink::Next(u) | DeltaLink::Delta(u) => u,
        }
    }
}

/// One page of a delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaPage {
    pub changes: Vec<DeltaChange>,
    pub link: DeltaLink,
}

/// Reads a delta page.
///
/// # Errors
/// What is wrong, in words: not JSON, no `value`, or neither link.
pub fn parse_delta_page(body: &[u8]) -> Result<DeltaPage, String> {
    let page: Value =
        serde_json::from_slice(body).map_err(|e| format!("the delta page is not JSON: {e}"))?;
    let values = page
        .get("value")
        .and_then(Value::as_array)
        .ok_or("the delta page has no value array")?;
    let mut changes = Vec::with_capacity(values.len());
    for v in values {
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or("an entry of the delta page has no id")?
            .to_owned();
        if let Some(removed) = v.get("@removed") {
            let reason = removed
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("deleted")
                .to_owned();
            changes.push(DeltaChange::Removed { id, reason });
        } else {
            let message: GraphMessage = serde_json::from_value(v.clone())
                .map_err(|e| format!("the message {id} of the delta page cannot be read: {e}"))?;
            changes.push(DeltaChange::Upserted(message));
        }
    }
    let text = |k: &str| page.get(k).and_then(Value::as_str).map(str::to_owned);
    let link = match (text("@odata.nextLink"), text("@odata.deltaLink")) {
        (Some(next), _) => DeltaLink::Next(next),
        (None, Some(delta)) => DeltaLink::Delta(delta),
        (None, None) => {
            return Err(
                "the delta page has neither @odata.nextLink nor @odata.deltaLink".to_owned(),
            );
        }
    };
    Ok(DeltaPage { changes, link })
}

/// Reads one page of a collection: its items and the next page's link.
///
/// # Errors
/// What is wrong, in words.
pub fn parse_collection<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<(Vec<T>, Option<String>), String> {
    #[derive(Deserialize)]
    struct Page<T> {
        value: Vec<T>,
        #[serde(rename = "@odata.nextLink", default)]
        next: Option<String>,
    }
    let page: Page<T> =
        serde_json::from_slice(body).map_err(|e| format!("the collection cannot be read: {e}"))?;
    Ok((page.value, page.next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_pages_hold_messages_removals_and_one_link() {
        let cases: [(&str, usize, usize, Option<DeltaLink>); 4] = [
            (
                r##"{"@odata.nextLink":"https://g/v1.0/x?$skiptoken=a","value":[
                    {"@odata.type":"#microsoft.graph.message","id":"m1","subject":"Hi","categories":["Tracked"],
                     "from":{"emailAddress":{"name":"Dana","address":"dana@example.org"}},
                     "toRecipients":[{"emailAddress":{"address":"bob@example.org"}}],
                     "receivedDateTime":"2025-03-01T10:00:00Z","internetMessageId":"<a@b>"},
                    {"id":"m2"}]}"##,
                2,
                0,
                Some(DeltaLink::Next("https://g/v1.0/x?$skiptoken=a".to_owned())),
            ),
            (
                r##"{"@odata.deltaLink":"https://g/v1.0/x?$deltatoken=b","value":[
                    {"@odata.type":"#microsoft.graph.message","id":"m3","@removed":{"reason":"deleted"}}]}"##,
                0,
                1,
                Some(DeltaLink::Delta(
                    "https://g/v1.0/x?$deltatoken=b".to_owned(),
                )),
            ),
            (
                r#"{"@odata.deltaLink":"d","value":[]}"#,
                0,
                0,
                Some(DeltaLink::Delta("d".to_owned())),
            ),
            (r#"{"value":[]}"#, 0, 0, None),
        ];
        for (body, upserted, removed, link) in cases {
            match (parse_delta_page(body.as_bytes()), link) {
                (Ok(page), Some(link)) => {
                    let ups = page
                        .changes
                        .iter()
                        .filter(|c| matches!(c, DeltaChange::Upserted(_)))
                        .count();
                    assert_eq!(
                        (ups, page.changes.len() - ups),
                        (upserted, removed),
                        "{body}"
                    );
                    assert_eq!(page.link, link);
                }
                (Err(_), None) => {}
                (other, link) => panic!("{body}: {other:?} (expected link {link:?})"),
            }
        }
    }

    #[test]
    fn messages_read_addresses_categories_and_dates() {
        let page = parse_delta_page(
            br#"{"@odata.deltaLink":"d","value":[{"id":"m1","subject":"Hi","categories":["Tracked","Red"],
            "from":{"emailAddress":{"name":"Dana","address":"dana@example.org"}},
            "toRecipients":[{"emailAddress":{"address":"bob@example.org"}}],"isRead":false,
            "receivedDateTime":"2025-03-01T10:00:00Z","internetMessageId":"<a@b>","parentFolderId":"f"},
            {"id":"m2","@removed":{}}]}"#,
        )
        .expect("a page");
        let DeltaChange::Upserted(m) = &page.changes[0] else {
            panic!("an upsert first")
        };
        assert_eq!(m.categories, ["Tracked", "Red"]);
        assert_eq!(
            m.from.as_ref().and_then(|f| f.address.as_deref()),
            Some("dana@example.org")
        );
        assert_eq!(
            m.to_recipients[0].address.as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(
            m.received_date_time.map(|t| t.to_rfc3339()),
            Some("2025-03-01T10:00:00+00:00".to_owned())
        );
        assert_eq!(m.internet_message_id.as_deref(), Some("<a@b>"));
        assert_eq!(
            page.changes[1],
            DeltaChange::Removed {
                id: "m2".to_owned(),
                reason: "deleted".to_owned()
            }
        );
    }

    #[test]
    fn collections_give_items_and_the_next_link() {
        let (folders, next) = parse_collection::<MailFolder>(
            br#"{"value":[{"id":"f1","displayName":"Inbox","childFolderCount":2},{"id":"f2"}],"@odata.nextLink":"n"}"#,
        )
        .expect("a page");
        assert_eq!(folders.len(), 2);
        assert_eq!(
            (
                folders[0].display_name.as_str(),
                folders[0].child_folder_count
            ),
            ("Inbox", 2)
        );
        assert_eq!(next.as_deref(), Some("n"));
        assert!(parse_collection::<MailFolder>(b"{}").is_err());
    }
}
