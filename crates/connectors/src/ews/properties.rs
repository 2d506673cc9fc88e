//! Named String properties of the `PublicStrings` property set on any item
//! (`ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName=...
//! PropertyType="String"`): read along with an item, written with `UpdateItem`,
//! removed with `DeleteItemField`. The caller names the property (e.g. the
//! organization claim or a link to a record).

use std::collections::BTreeMap;

use roxmltree::Node;

use super::client::EwsClient;
use super::errors::{EwsError, Target};
use super::mail::{item_ids, read_updated, update_item_close, update_item_open};
use super::model::{ItemId, ItemRef, short};
use super::soap::first_item;
use super::xml::{XmlWriter, child, children, text};

/// `<t:ExtendedFieldURI .../>` of the String property `name` in `PublicStrings`.
pub(crate) fn write_uri(w: &mut XmlWriter, name: &str) {
    w.empty(
        "t:ExtendedFieldURI",
        &[
            ("DistinguishedPropertySetId", "PublicStrings"),
            ("PropertyName", name),
            ("PropertyType", "String"),
        ],
    );
}

/// `<t:ExtendedProperty>` with the property's value, inside an item.
pub(crate) fn write_value(w: &mut XmlWriter, name: &str, value: &str) {
    w.open("t:ExtendedProperty", &[]);
    write_uri(w, name);
    w.leaf("t:Value", value).close("t:ExtendedProperty");
}

/// The `PublicStrings` String properties of an item element, by name.
pub(crate) fn read_values(item: Node<'_, '_>) -> BTreeMap<String, String> {
    children(item, "ExtendedProperty")
        .filter_map(|p| {
            let uri = child(p, "ExtendedFieldURI")?;
            let public = uri.attribute("DistinguishedPropertySetId") == Some("PublicStrings");
            let string = uri.attribute("PropertyType").is_none_or(|t| t == "String");
            let name = uri.attribute("PropertyName")?;
            (public && string).then(|| (name.to_owned(), text(p, "Value").unwrap_or_default()))
        })
        .collect()
}

/// One change of an `UpdateItem`'s `Updates`, for every kind of field path.
pub(crate) struct Updates<'w> {
    pub w: &'w mut XmlWriter,
    /// The item element the values are written in (`t:CalendarItem`, ...).
    pub element: &'static str,
}

impl Updates<'_> {
    /// Sets a field whose value `write` writes inside the item element.
    pub(crate) fn set(&mut self, uri: &str, write: impl FnOnce(&mut XmlWriter)) {
        self.w
            .open("t:SetItemField", &[])
            .empty("t:FieldURI", &[("FieldURI", uri)])
            .open(self.element, &[]);
        write(self.w);
        self.w.close(self.element).close("t:SetItemField");
    }

    /// Removes a field.
    pub(crate) fn delete(&mut self, uri: &str) {
        self.w
            .open("t:DeleteItemField", &[])
            .empty("t:FieldURI", &[("FieldURI", uri)])
            .close("t:DeleteItemField");
    }

    /// Sets a text field `<element>` (at `uri`), or removes it when `None` or empty.
    pub(crate) fn text(&mut self, uri: &str, element: &str, value: Option<&str>) {
        match value.filter(|v| !v.is_empty()) {
            Some(v) => self.set(uri, |w| {
                w.leaf(element, v);
            }),
            None => self.delete(uri),
        }
    }

    /// Sets an indexed field (an e-mail address, phone or address part by key).
    pub(crate) fn set_indexed(
        &mut self,
        uri: &str,
        index: &str,
        write: impl FnOnce(&mut XmlWriter),
    ) {
        self.w
            .open("t:SetItemField", &[])
            .empty(
                "t:IndexedFieldURI",
                &[("FieldURI", uri), ("FieldIndex", index)],
            )
            .open(self.element, &[]);
        write(self.w);
        self.w.close(self.element).close("t:SetItemField");
    }

    /// Removes an indexed field.
    pub(crate) fn delete_indexed(&mut self, uri: &str, index: &str) {
        self.w
            .open("t:DeleteItemField", &[])
            .empty(
                "t:IndexedFieldURI",
                &[("FieldURI", uri), ("FieldIndex", index)],
            )
            .close("t:DeleteItemField");
    }

    /// Sets (or, with `None`, removes) a `PublicStrings` String property.
    pub(crate) fn extended(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                self.w.open("t:SetItemField", &[]);
                write_uri(self.w, name);
                self.w.open(self.element, &[]);
                write_value(self.w, name, v);
                self.w.close(self.element).close("t:SetItemField");
            }
            None => {
                self.w.open("t:DeleteItemField", &[]);
                write_uri(self.w, name);
                self.w.close("t:DeleteItemField");
            }
        }
    }
}

/// An `UpdateItem` of one item: `ConflictResolution` `NeverOverwrite` when the
/// write must not pass a change made meanwhile (`ErrorIrresolvableConflict`
/// then), `AutoResolve` otherwise.
pub(crate) fn update_request(
    target: &ItemRef,
    change_key: Option<&str>,
    guarded: bool,
    element: &'static str,
    write: impl FnOnce(&mut Updates<'_>),
) -> String {
    let mut w = XmlWriter::new();
    update_item_open(
        &mut w,
        if guarded {
            "NeverOverwrite"
        } else {
            "AutoResolve"
        },
    );
    w.open("t:ItemChange", &[]);
    match (target, change_key) {
        (ItemRef::Item(id), Some(ck)) => {
            ItemId::new(id.id.clone(), Some(ck.to_owned())).write(&mut w)
        }
        (
            ItemRef::Occurrence {
                master_id,
                instance_index,
            },
            Some(ck),
        ) => {
            w.empty(
                "t:OccurrenceItemId",
                &[
                    ("RecurringMasterId", master_id.as_str()),
                    ("ChangeKey", ck),
                    ("InstanceIndex", &instance_index.to_string()),
                ],
            );
        }
        (target, None) => target.write(&mut w),
    }
    w.open("t:Updates", &[]);
    write(&mut Updates { w: &mut w, element });
    w.close("t:Updates").close("t:ItemChange");
    update_item_close(&mut w);
    w.finish()
}

/// `GetItem` of the ids' values of the property `name`.
fn get_request(ids: &[ItemId], name: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetItem", &[])
        .open("m:ItemShape", &[])
        .leaf("t:BaseShape", "IdOnly")
        .open("t:AdditionalProperties", &[]);
    write_uri(&mut w, name);
    w.close("t:AdditionalProperties").close("m:ItemShape");
    item_ids(&mut w, "m:ItemIds", ids);
    w.close("m:GetItem");
    w.finish()
}

impl EwsClient {
    /// The value of the `PublicStrings` String property `name` on each item, in
    /// the order asked (`None`: the item does not have it).
    ///
    /// # Errors
    /// When the request as a whole failed; per item, in the list.
    pub async fn get_extended_property(
        &self,
        ids: &[ItemId],
        name: &str,
    ) -> Result<Vec<Result<Option<String>, EwsError>>, EwsError> {
        let what = format!("read the property {name} of an item");
        let f = self.failed(&what, Target::Item, "");
        let outcomes = self
            .call(&get_request(ids, name), &f, |m| {
                let item = first_item(m).ok_or("the answer holds no item")?;
                Ok(read_values(item).remove(name))
            })
            .await?;
        Ok(outcomes
            .into_iter()
            .zip(ids)
            .map(|(o, id)| {
                let subject = short(&id.id);
                o.map_err(|e| {
                    super::errors::classify(&e, &self.failed(&what, Target::Item, &subject))
                })
            })
            .collect())
    }

    /// Writes (or, with `None`, removes) the `PublicStrings` String property
    /// `name` of an item; returns its id with the new change key. With the
    /// item's change key, a change made meanwhile is [`EwsError::Conflict`].
    ///
    /// # Errors
    /// Classified.
    pub async fn set_extended_property(
        &self,
        item: &ItemId,
        name: &str,
        value: Option<&str>,
    ) -> Result<ItemId, EwsError> {
        let what = format!("write the property {name} of an item");
        let subject = short(&item.id);
        let f = self.failed(&what, Target::Item, &subject);
        let body = update_request(
            &ItemRef::Item(item.clone()),
            item.change_key.as_deref(),
            item.change_key.is_some(),
            "t:Item",
            |u| u.extended(name, value),
        );
        let outcomes = self.call(&body, &f, read_updated).await?;
        self.single(outcomes, &f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_named_in_public_strings() {
        let body = update_request(
            &ItemRef::Item(ItemId::new("AAMk1", None)),
            Some("CQ1"),
            true,
            "t:Item",
            |u| {
                u.extended("MailbridgeLink", Some("org-1;rec-2"));
                u.extended("MailbridgeOld", None);
            },
        );
        assert!(body.starts_with("<m:UpdateItem ConflictResolution=\"NeverOverwrite\""));
        assert!(body.contains("<t:ItemId Id=\"AAMk1\" ChangeKey=\"CQ1\"/>"));
        assert!(body.contains(
            "<t:SetItemField><t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"MailbridgeLink\" PropertyType=\"String\"/><t:Item><t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"MailbridgeLink\" PropertyType=\"String\"/><t:Value>org-1;rec-2</t:Value></t:ExtendedProperty></t:Item></t:SetItemField>"
        ), "{body}");
        assert!(body.contains(
            "<t:DeleteItemField><t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"MailbridgeOld\" PropertyType=\"String\"/></t:DeleteItemField>"
        ));
        let get = get_request(&[ItemId::new("AAMk1", None)], "MailbridgeLink");
        assert!(get.contains("<t:AdditionalProperties><t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"MailbridgeLink\" PropertyType=\"String\"/></t:AdditionalProperties>"));
    }

    #[test]
    fn only_public_string_properties_are_read() {
        let xml = r#"<t:CalendarItem xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <t:ItemId Id="A"/>
  <t:ExtendedProperty>
    <t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="MailbridgeLink" PropertyType="String"/>
    <t:Value>org-1;rec-2</t:Value>
  </t:ExtendedProperty>
  <t:ExtendedProperty>
    <t:ExtendedFieldURI PropertyTag="0x1000" PropertyType="String"/>
    <t:Value>body</t:Value>
  </t:ExtendedProperty>
</t:CalendarItem>"#;
        let doc = roxmltree::Document::parse(xml).expect("xml");
        let values = read_values(doc.root_element());
        assert_eq!(values.len(), 1);
        assert_eq!(
            values.get("MailbridgeLink").map(String::as_str),
            Some("org-1;rec-2")
        );
    }

    #[test]
    fn occurrences_are_updated_by_index_with_their_change_key() {
        let body = update_request(
            &ItemRef::Occurrence {
                master_id: "AAMkM".to_owned(),
                instance_index: 2,
            },
            Some("DwAA"),
            true,
            "t:CalendarItem",
            |u| u.text("item:Subject", "t:Subject", Some("Moved")),
        );
        assert!(body.contains("<t:OccurrenceItemId RecurringMasterId=\"AAMkM\" ChangeKey=\"DwAA\" InstanceIndex=\"2\"/>"), "{body}");
        assert!(body.contains("<t:SetItemField><t:FieldURI FieldURI=\"item:Subject\"/><t:CalendarItem><t:Subject>Moved</t:Subject></t:CalendarItem></t:SetItemField>"));
    }
}
