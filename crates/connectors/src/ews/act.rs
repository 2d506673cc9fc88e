//! What appointments, contacts and tasks share over EWS: typed reads by id
//! (`GetItem` with the fields each kind needs, bodies as text, and the caller's
//! `PublicStrings` properties), creation in a folder (`CreateItem`, meeting
//! invitations sent to nobody), updates that name the change key they expect
//! (`UpdateItem` with `NeverOverwrite`: a stale one is [`EwsError::Conflict`]) and
//! deletion (`DeleteItem` to Deleted Items; an item already gone is deleted).
//! Changes of the calendar, contacts and tasks folders are read with
//! [`EwsClient::sync_folder_items`] like mail.

use std::collections::BTreeMap;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope};
use roxmltree::Node;

use super::client::EwsClient;
use super::errors::{EwsError, Target, classify};
use super::mail::read_updated;
use super::model::{FolderRef, ItemId, ItemRef, write_strings};
use super::properties::{self, write_uri};
use super::soap::first_item;
use super::xml::XmlWriter;
use crate::errors::error;

/// An item read from the mailbox with its id and change key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EwsVersioned<T> {
    /// The id, with the change key to name on the next write.
    pub id: ItemId,
    pub item: T,
}

/// What each kind of item declares for the shared plumbing.
pub(crate) trait ActKind: Sized {
    /// `appointment`, `contact`, `task` (for messages).
    const NOUN: &'static str;
    /// The `FieldURI`s a read asks for.
    const FIELDS: &'static [&'static str];

    /// Reads one item element; `Err` is an item-level problem in words.
    fn read(item: Node<'_, '_>) -> Result<Self, String>;
}

/// `GetItem` of `refs` with `fields` and the `PublicStrings` properties `names`.
pub(crate) fn get_request(refs: &[ItemRef], fields: &[&str], names: &[&str]) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetItem", &[])
        .open("m:ItemShape", &[])
        .leaf("t:BaseShape", "IdOnly")
        .leaf("t:BodyType", "Text")
        .open("t:AdditionalProperties", &[]);
    for field in fields {
        w.empty("t:FieldURI", &[("FieldURI", field)]);
    }
    for name in names {
        write_uri(&mut w, name);
    }
    w.close("t:AdditionalProperties").close("m:ItemShape");
    w.open("m:ItemIds", &[]);
    for r in refs {
        r.write(&mut w);
    }
    w.close("m:ItemIds").close("m:GetItem");
    w.finish()
}

/// `CreateItem` of one item (written by `write_item`) in `folder`.
pub(crate) fn create_request(folder: &FolderRef, item_xml: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:CreateItem", &[("SendMeetingInvitations", "SendToNone")])
        .open("m:SavedItemFolderId", &[]);
    folder.write(&mut w);
    w.close("m:SavedItemFolderId")
        .open("m:Items", &[])
        .raw(item_xml)
        .close("m:Items")
        .close("m:CreateItem");
    w.finish()
}

/// `DeleteItem` to Deleted Items, cancellations sent to nobody, one occurrence
/// of a task series only when an occurrence is named.
pub(crate) fn delete_request(target: &ItemRef) -> String {
    let mut w = XmlWriter::new();
    w.open(
        "m:DeleteItem",
        &[
            ("DeleteType", "MoveToDeletedItems"),
            ("SendMeetingCancellations", "SendToNone"),
            ("AffectedTaskOccurrences", "AllOccurrences"),
        ],
    )
    .open("m:ItemIds", &[]);
    target.write(&mut w);
    w.close("m:ItemIds").close("m:DeleteItem");
    w.finish()
}

/// The fields every kind shares, at the head of an item element in schema
/// order: `Subject`, `Body`, `Categories`, then `Importance` (when given) and the
/// `PublicStrings` properties.
pub(crate) fn write_common(
    w: &mut XmlWriter,
    subject: &str,
    body: Option<&str>,
    categories: &[String],
    importance: Option<&str>,
    properties: &BTreeMap<String, String>,
) {
    w.leaf("t:Subject", subject);
    if let Some(body) = body {
        w.leaf_with("t:Body", &[("BodyType", "Text")], body);
    }
    if !categories.is_empty() {
        write_strings(w, "t:Categories", categories);
    }
    if let Some(importance) = importance {
        w.leaf("t:Importance", importance);
    }
    for (name, value) in properties {
        properties::write_value(w, name, value);
    }
}

/// The same shared fields as updates: subject and categories set (or removed),
/// the body set (empty when `None`), and each given property written.
pub(crate) fn update_common(
    u: &mut properties::Updates<'_>,
    subject: &str,
    body: Option<&str>,
    categories: &[String],
    properties: &BTreeMap<String, String>,
) {
    u.set("item:Subject", |w| {
        w.leaf("t:Subject", subject);
    });
    u.set("item:Body", |w| {
        w.leaf_with("t:Body", &[("BodyType", "Text")], body.unwrap_or(""));
    });
    if categories.is_empty() {
        u.delete("item:Categories");
    } else {
        u.set("item:Categories", |w| {
            write_strings(w, "t:Categories", categories)
        });
    }
    for (name, value) in properties {
        u.extended(name, Some(value));
    }
}

/// The shared fields read: subject, body text, categories, properties.
pub(crate) struct Common {
    pub subject: String,
    pub body: Option<String>,
    pub categories: Vec<String>,
    pub properties: BTreeMap<String, String>,
}

impl Common {
    pub(crate) fn read(item: Node<'_, '_>) -> Common {
        Common {
            subject: super::xml::text(item, "Subject").unwrap_or_default(),
            body: super::xml::text(item, "Body"),
            categories: super::model::read_strings(item, "Categories"),
            properties: properties::read_values(item),
        }
    }
}

/// The fields every read asks for.
pub(crate) const COMMON_FIELDS: &[&str] = &["item:Subject", "item:Body", "item:Categories"];

impl EwsClient {
    /// Items of one kind by reference, in the order asked, each read or refused
    /// on its own, with the `PublicStrings` properties `names`.
    pub(crate) async fn get_act<T: ActKind>(
        &self,
        refs: &[ItemRef],
        names: &[&str],
    ) -> Result<Vec<Result<EwsVersioned<T>, EwsError>>, EwsError> {
        let what = format!("read the {}", T::NOUN);
        let f = self.failed(&what, Target::Item, "");
        let fields: Vec<&str> = COMMON_FIELDS.iter().chain(T::FIELDS).copied().collect();
        let outcomes = self
            .call(&get_request(refs, &fields, names), &f, |m| {
                let Some(item) = first_item(m) else {
                    return Ok(Err("the answer holds no item".to_owned()));
                };
                let Some(id) = ItemId::read(item) else {
                    return Ok(Err("the item has no ItemId".to_owned()));
                };
                Ok(T::read(item).map(|item| EwsVersioned { id, item }))
            })
            .await?;
        Ok(outcomes
            .into_iter()
            .zip(refs)
            .map(|(outcome, r)| {
                let subject = r.describe();
                match outcome {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(why)) => Err(EwsError::Failed(error(
                        ErrorClass::Permanent,
                        ErrorScope::Item,
                        format!(
                            "the {} {subject} of the mailbox {} cannot be read: {why}",
                            T::NOUN,
                            self.mailbox()
                        ),
                        "Report this message with the item concerned; the other items go on",
                    ))),
                    Err(e) => Err(classify(&e, &self.failed(&what, Target::Item, &subject))),
                }
            })
            .collect())
    }

    /// Creates one item (its XML from `item_xml`) in `folder`; returns its id.
    pub(crate) async fn create_act(
        &self,
        folder: &FolderRef,
        item_xml: &str,
        noun: &str,
    ) -> Result<ItemId, EwsError> {
        let what = format!("create the {noun}");
        let f = self.failed(&what, Target::Item, "");
        let outcomes = self
            .call(&create_request(folder, item_xml), &f, read_updated)
            .await?;
        self.single(outcomes, &f)
    }

    /// Sends one `UpdateItem` about `target`; returns the item's new id and change key.
    pub(crate) async fn update_act(
        &self,
        body: &str,
        target: &ItemRef,
        noun: &str,
    ) -> Result<ItemId, EwsError> {
        let what = format!("update the {noun}");
        let subject = target.describe();
        let f = self.failed(&what, Target::Item, &subject);
        let outcomes = self.call(body, &f, read_updated).await?;
        self.single(outcomes, &f)
    }

    /// Deletes an item (or one occurrence of a series) to Deleted Items, sending
    /// no cancellation. An item already gone counts as deleted.
    ///
    /// # Errors
    /// Classified.
    pub async fn delete_item(&self, target: &ItemRef) -> Result<(), EwsError> {
        let subject = target.describe();
        let what = format!("delete the item {subject}");
        let f = self.failed(&what, Target::Item, &subject);
        let outcomes = self.call(&delete_request(target), &f, |_| Ok(())).await?;
        match outcomes.into_iter().next() {
            Some(Err(e)) if e.code == "ErrorItemNotFound" => Ok(()),
            other => self.single(other.into_iter().collect(), &f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ask_for_text_bodies_the_fields_and_the_properties() {
        let xml = get_request(
            &[
                ItemRef::Item(ItemId::new("AAMk1", None)),
                ItemRef::Occurrence {
                    master_id: "AAMkM".to_owned(),
                    instance_index: 1,
                },
            ],
            &["item:Subject", "calendar:Start"],
            &["MailbridgeLink"],
        );
        assert!(xml.contains("<t:BaseShape>IdOnly</t:BaseShape><t:BodyType>Text</t:BodyType><t:AdditionalProperties><t:FieldURI FieldURI=\"item:Subject\"/><t:FieldURI FieldURI=\"calendar:Start\"/><t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"MailbridgeLink\" PropertyType=\"String\"/></t:AdditionalProperties>"), "{xml}");
        assert!(xml.contains("<m:ItemIds><t:ItemId Id=\"AAMk1\"/><t:OccurrenceItemId RecurringMasterId=\"AAMkM\" InstanceIndex=\"1\"/></m:ItemIds>"));
    }

    #[test]
    fn creations_and_deletions_inform_nobody() {
        let create = create_request(
            &FolderRef::Distinguished(super::super::model::DistinguishedFolder::Calendar),
            "<t:CalendarItem><t:Subject>x</t:Subject></t:CalendarItem>",
        );
        assert!(create.starts_with("<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem>"));
        let delete = delete_request(&ItemRef::Item(ItemId::new("AAMk1", Some("CQ".to_owned()))));
        assert_eq!(
            delete,
            "<m:DeleteItem DeleteType=\"MoveToDeletedItems\" SendMeetingCancellations=\"SendToNone\" AffectedTaskOccurrences=\"AllOccurrences\"><m:ItemIds><t:ItemId Id=\"AAMk1\" ChangeKey=\"CQ\"/></m:ItemIds></m:DeleteItem>"
        );
    }

    #[test]
    fn shared_fields_are_written_in_schema_order() {
        let mut w = XmlWriter::new();
        let props = BTreeMap::from([("MailbridgeLink".to_owned(), "r-1".to_owned())]);
        write_common(
            &mut w,
            "S",
            Some("B"),
            &["Tracked".to_owned()],
            Some("High"),
            &props,
        );
        let xml = w.finish();
        let order = [
            "t:Subject",
            "t:Body",
            "t:Categories",
            "t:Importance",
            "t:ExtendedProperty",
        ];
        let positions: Vec<_> = order.iter().map(|n| xml.find(n).expect(n)).collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
    }
}
