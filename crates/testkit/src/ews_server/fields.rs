//! Item properties as EWS names them: the element each `FieldURI` stands for,
//! extended properties (`t:ExtendedFieldURI`), indexed members of contacts
//! (`t:IndexedFieldURI`, dictionaries merged by `Key`), the item elements of
//! requests, and the item shapes of GetItem, FindItem and SyncFolderItems
//! (`IdOnly`, `Default`, `AllProperties`, `IncludeMimeContent`,
//! `AdditionalProperties`), answered in schema order (`schema.rs`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

use super::schema::{default_shape, order_key};
use super::state::{Extended, Item, ItemKind, Mailbox, ews_time};
use super::xml::{T, Xml, child, child_text, elements, is, serialize, serialize_children};

/// The element a `FieldURI` names: `item:Subject` is `Subject`.
pub(crate) fn field_element(uri: &str) -> String {
    uri.rsplit(':').next().unwrap_or(uri).to_owned()
}

/// The dictionary element an `IndexedFieldURI` names, and the member it may name
/// (`contacts:PhysicalAddress:Street` is `PhysicalAddresses` and `Street`).
pub(crate) fn indexed_element(uri: &str) -> Option<(&'static str, Option<String>)> {
    let rest = uri.strip_prefix("contacts:")?;
    let (head, member) = match rest.split_once(':') {
        Some((h, m)) => (h, Some(m.to_owned())),
        None => (rest, None),
    };
    let dict = match head {
        "EmailAddress" => "EmailAddresses",
        "PhoneNumber" => "PhoneNumbers",
        "ImAddress" => "ImAddresses",
        "PhysicalAddress" => "PhysicalAddresses",
        _ => return None,
    };
    Some((dict, member))
}

/// The key an extended property is matched by: its property set (distinguished
/// name, GUID or none for a tag), its name, id or tag, and its type.
pub(crate) fn extended_key(uri: Node<'_, '_>) -> String {
    let set = uri
        .attribute("DistinguishedPropertySetId")
        .map(str::to_owned)
        .or_else(|| uri.attribute("PropertySetId").map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let which = if let Some(tag) = uri.attribute("PropertyTag") {
        let tag = tag.trim();
        let parsed = match tag.strip_prefix("0x").or_else(|| tag.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => tag.parse().ok(),
        };
        parsed.map_or_else(|| tag.to_owned(), |t| format!("tag:0x{t:04x}"))
    } else if let Some(name) = uri.attribute("PropertyName") {
        format!("name:{name}")
    } else {
        format!("id:{}", uri.attribute("PropertyId").unwrap_or_default())
    };
    format!(
        "{set}|{which}|{}",
        uri.attribute("PropertyType").unwrap_or_default()
    )
}

/// An item element of a request (`t:Message`, `t:CalendarItem`, ...) as stored
/// properties; `Err` names what is wrong with it.
pub(crate) struct ParsedItem {
    pub kind: ItemKind,
    pub mime: Option<Vec<u8>>,
    pub fields: BTreeMap<String, String>,
    pub extended: Vec<Extended>,
}

pub(crate) fn parse_item(node: Node<'_, '_>) -> Result<ParsedItem, &'static str> {
    let kind = ItemKind::from_element(node.tag_name().name())
        .filter(|_| node.tag_name().namespace() == Some(T))
        .ok_or("ErrorInvalidRequest")?;
    let mut parsed = ParsedItem {
        kind,
        mime: None,
        fields: BTreeMap::new(),
        extended: Vec::new(),
    };
    for c in elements(node) {
        if c.tag_name().namespace() != Some(T) {
            continue;
        }
        match c.tag_name().name() {
            "MimeContent" => {
                let text: String = super::xml::text_of(c)
                    .chars()
                    .filter(|ch| !ch.is_whitespace())
                    .collect();
                let bytes = STANDARD
                    .decode(text)
                    .map_err(|_| "ErrorMimeContentConversionFailed")?;
                parsed.mime = Some(bytes);
            }
            "ExtendedProperty" => parsed.extended.push(parse_extended(c)?),
            "ItemId" | "ParentFolderId" | "DateTimeCreated" | "LastModifiedTime" | "Size" => {}
            name => {
                parsed.fields.insert(name.to_owned(), serialize(c));
            }
        }
    }
    Ok(parsed)
}

/// A `t:ExtendedProperty` element.
pub(crate) fn parse_extended(node: Node<'_, '_>) -> Result<Extended, &'static str> {
    let uri = child(node, T, "ExtendedFieldURI").ok_or("ErrorInvalidRequest")?;
    let value = child(node, T, "Value")
        .or_else(|| child(node, T, "Values"))
        .ok_or("ErrorInvalidRequest")?;
    Ok(Extended {
        key: extended_key(uri),
        uri_xml: serialize(uri),
        value_xml: serialize(value),
    })
}

/// What one requested property is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prop {
    /// An element by name (`Subject`).
    Field(String),
    /// A member of a contact dictionary: the dictionary and the entry key.
    Indexed(&'static str, String),
    /// An extended property: its key and its URI as requested.
    Extended(String, String),
}

/// A parsed `m:ItemShape`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    /// `IdOnly`, `Default` or `AllProperties`.
    pub base: String,
    pub include_mime: bool,
    pub additional: Vec<Prop>,
}

impl Shape {
    pub fn id_only() -> Shape {
        Shape {
            base: "IdOnly".into(),
            include_mime: false,
            additional: Vec::new(),
        }
    }

    pub fn parse(node: Option<Node<'_, '_>>) -> Shape {
        let Some(node) = node else {
            return Shape::id_only();
        };
        let base = child_text(node, T, "BaseShape").unwrap_or_else(|| "IdOnly".into());
        let include_mime = child_text(node, T, "IncludeMimeContent").is_some_and(|v| v == "true");
        let additional = child(node, T, "AdditionalProperties")
            .map(|a| elements(a).filter_map(parse_path).collect())
            .unwrap_or_default();
        Shape {
            base,
            include_mime,
            additional,
        }
    }
}

/// A property path: `t:FieldURI`, `t:IndexedFieldURI` or `t:ExtendedFieldURI`.
pub(crate) fn parse_path(node: Node<'_, '_>) -> Option<Prop> {
    if is(node, T, "FieldURI") {
        return Some(Prop::Field(field_element(node.attribute("FieldURI")?)));
    }
    if is(node, T, "IndexedFieldURI") {
        let (dict, _) = indexed_element(node.attribute("FieldURI")?)?;
        return Some(Prop::Indexed(
            dict,
            node.attribute("FieldIndex")?.to_owned(),
        ));
    }
    if is(node, T, "ExtendedFieldURI") {
        return Some(Prop::Extended(extended_key(node), serialize(node)));
    }
    None
}

/// The item as its element (`t:Message`, ...) in the shape asked for.
pub(crate) fn render_item(x: &mut Xml, mailbox: &Mailbox, item: &Item, shape: &Shape) {
    let all = shape.base == "AllProperties";
    let wants = |name: &str| {
        all || (shape.base == "Default" && default_shape(item.kind).contains(&name))
            || shape
                .additional
                .iter()
                .any(|p| matches!(p, Prop::Field(f) if f == name))
    };
    let mut parts: Vec<((usize, usize), String)> = Vec::new();
    let mut push = |name: &str, xml: String| parts.push((order_key(item.kind, name), xml));
    let mime_asked = shape
        .additional
        .iter()
        .any(|p| matches!(p, Prop::Field(f) if f == "MimeContent"));
    if let Some(mime) = &item.mime
        && (shape.include_mime || mime_asked)
    {
        push(
            "MimeContent",
            format!(
                "<t:MimeContent CharacterSet=\"UTF-8\">{}</t:MimeContent>",
                STANDARD.encode(mime)
            ),
        );
    }
    push(
        "ItemId",
        format!(
            "<t:ItemId Id=\"{}\" ChangeKey=\"{}\"/>",
            super::xml::escape_attr(&item.id),
            super::xml::escape_attr(&item.change_key)
        ),
    );
    if wants("ParentFolderId")
        && let Some(f) = mailbox.folders.get(&item.folder_id)
    {
        push(
            "ParentFolderId",
            format!(
                "<t:ParentFolderId Id=\"{}\" ChangeKey=\"{}\"/>",
                super::xml::escape_attr(&f.id),
                super::xml::escape_attr(&f.change_key)
            ),
        );
    }
    if wants("ItemClass") && !item.fields.contains_key("ItemClass") {
        push(
            "ItemClass",
            format!("<t:ItemClass>{}</t:ItemClass>", item.kind.item_class()),
        );
    }
    if wants("Size") {
        let size = item.mime.as_ref().map_or_else(
            || item.fields.values().map(String::len).sum::<usize>(),
            Vec::len,
        );
        push("Size", format!("<t:Size>{size}</t:Size>"));
    }
    if wants("DateTimeCreated") {
        push(
            "DateTimeCreated",
            format!(
                "<t:DateTimeCreated>{}</t:DateTimeCreated>",
                ews_time(item.created)
            ),
        );
    }
    if wants("LastModifiedTime") {
        push(
            "LastModifiedTime",
            format!(
                "<t:LastModifiedTime>{}</t:LastModifiedTime>",
                ews_time(item.modified)
            ),
        );
    }
    // A series' deleted and modified occurrences (over any stored as fields).
    let series = super::series::master_parts(mailbox, item);
    for (name, xml) in &item.fields {
        if wants(name) && !series.iter().any(|(n, _)| n == name) {
            push(name, xml.clone());
        }
    }
    for (name, xml) in series {
        if wants(name) {
            push(name, xml);
        }
    }
    // Indexed members asked for without their whole dictionary.
    let mut dictionaries: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &shape.additional {
        if let Prop::Indexed(dict, key) = p
            && !wants(dict)
        {
            dictionaries.entry(dict).or_default().push(key);
        }
    }
    for (dict, keys) in dictionaries {
        if let Some(xml) = item.fields.get(dict)
            && let Some(filtered) = filter_entries(xml, &keys)
        {
            push(dict, filtered);
        }
    }
    for p in &shape.additional {
        if let Prop::Extended(key, uri_xml) = p
            && let Some(e) = item.extended.iter().find(|e| &e.key == key)
        {
            push(
                "ExtendedProperty",
                format!(
                    "<t:ExtendedProperty>{uri_xml}{}</t:ExtendedProperty>",
                    e.value_xml
                ),
            );
        }
    }
    parts.sort_by_key(|(k, _)| *k);
    x.open(&format!("t:{}", item.kind.element()), &[]);
    for (_, xml) in parts {
        x.raw(&xml);
    }
    x.close();
}

/// A dictionary element (`t:EmailAddresses`) with only the entries of `keys`.
fn filter_entries(xml: &str, keys: &[&str]) -> Option<String> {
    let wrapped = super::xml::wrap_fragment(xml);
    let doc = roxmltree::Document::parse(&wrapped).ok()?;
    let dict = elements(doc.root_element()).next()?;
    let kept: String = elements(dict)
        .filter(|e| e.attribute("Key").is_some_and(|k| keys.contains(&k)))
        .map(serialize)
        .collect();
    if kept.is_empty() {
        return None;
    }
    let name = dict.tag_name().name();
    Some(format!("<t:{name}>{kept}</t:{name}>"))
}

/// Sets one dictionary entry (or members of it, for physical addresses) from the
/// dictionary element of an update; returns the new dictionary XML.
pub(crate) fn merge_entries(current: Option<&str>, update: Node<'_, '_>) -> String {
    let name = update.tag_name().name();
    let mut entries: Vec<(String, String)> = Vec::new();
    if let Some(cur) = current
        && let Ok(doc) = roxmltree::Document::parse(&super::xml::wrap_fragment(cur))
        && let Some(dict) = elements(doc.root_element()).next()
    {
        for e in elements(dict) {
            entries.push((
                e.attribute("Key").unwrap_or_default().to_owned(),
                serialize(e),
            ));
        }
    }
    for e in elements(update) {
        let key = e.attribute("Key").unwrap_or_default().to_owned();
        let has_members = elements(e).next().is_some();
        let merged = match entries.iter().find(|(k, _)| *k == key) {
            Some((_, old)) if has_members => merge_members(old, e),
            _ => serialize(e),
        };
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = merged,
            None => entries.push((key, merged)),
        }
    }
    let inner: String = entries.into_iter().map(|(_, x)| x).collect();
    format!("<t:{name}>{inner}</t:{name}>")
}

/// An entry with members (`t:Street`, ...) replaced by those of `update`.
fn merge_members(old: &str, update: Node<'_, '_>) -> String {
    let wrapped = super::xml::wrap_fragment(old);
    let Ok(doc) = roxmltree::Document::parse(&wrapped) else {
        return serialize(update);
    };
    let Some(entry) = elements(doc.root_element()).next() else {
        return serialize(update);
    };
    let new: Vec<Node<'_, '_>> = elements(update).collect();
    let mut inner: String = elements(entry)
        .filter(|m| {
            !new.iter()
                .any(|n| n.tag_name().name() == m.tag_name().name())
        })
        .map(serialize)
        .collect();
    inner.extend(new.iter().map(|n| serialize(*n)));
    format!(
        "<t:Entry Key=\"{}\">{inner}</t:Entry>",
        super::xml::escape_attr(entry.attribute("Key").unwrap_or_default())
    )
}

/// A dictionary without the entry `key` (or without its member `member`); `None`
/// when nothing is left.
pub(crate) fn remove_entry(current: &str, key: &str, member: Option<&str>) -> Option<String> {
    let wrapped = super::xml::wrap_fragment(current);
    let doc = roxmltree::Document::parse(&wrapped).ok()?;
    let dict = elements(doc.root_element()).next()?;
    let name = dict.tag_name().name();
    let mut inner = String::new();
    for e in elements(dict) {
        if e.attribute("Key") != Some(key) {
            inner.push_str(&serialize(e));
            continue;
        }
        if let Some(member) = member {
            let rest: String = elements(e)
                .filter(|m| m.tag_name().name() != member)
                .map(serialize)
                .collect();
            if !rest.is_empty() {
                inner.push_str(&format!(
                    "<t:Entry Key=\"{}\">{rest}</t:Entry>",
                    super::xml::escape_attr(key)
                ));
            }
        }
    }
    (!inner.is_empty()).then(|| format!("<t:{name}>{inner}</t:{name}>"))
}

/// `AppendToItemField`: the children (or text) of `update` after those of `current`.
pub(crate) fn append_to(current: Option<&str>, update: Node<'_, '_>) -> String {
    let name = update.tag_name().name();
    let Some(cur) = current else {
        return serialize(update);
    };
    let wrapped = super::xml::wrap_fragment(cur);
    let Ok(doc) = roxmltree::Document::parse(&wrapped) else {
        return serialize(update);
    };
    let Some(old) = elements(doc.root_element()).next() else {
        return serialize(update);
    };
    let attrs: String = old
        .attributes()
        .map(|a| format!(" {}=\"{}\"", a.name(), super::xml::escape_attr(a.value())))
        .collect();
    format!(
        "<t:{name}{attrs}>{}{}</t:{name}>",
        serialize_children(old),
        serialize_children(update)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews_server::xml::wrap_fragment;

    fn node_of(fragment: &str, f: impl FnOnce(Node<'_, '_>)) {
        let text = wrap_fragment(fragment);
        let doc = roxmltree::Document::parse(&text).expect("xml");
        let first = elements(doc.root_element()).next().expect("element");
        f(first);
    }

    #[test]
    fn field_uris_name_elements() {
        let cases = [
            ("item:Subject", "Subject"),
            ("message:IsRead", "IsRead"),
            ("calendar:Start", "Start"),
            ("task:DueDate", "DueDate"),
            ("contacts:GivenName", "GivenName"),
        ];
        for (uri, element) in cases {
            assert_eq!(field_element(uri), element, "{uri}");
        }
        assert_eq!(
            indexed_element("contacts:EmailAddress"),
            Some(("EmailAddresses", None))
        );
        assert_eq!(
            indexed_element("contacts:PhysicalAddress:Street"),
            Some(("PhysicalAddresses", Some("Street".into())))
        );
        assert_eq!(indexed_element("item:Subject"), None);
    }

    #[test]
    fn extended_keys_normalize_the_uri() {
        let cases = [
            (
                "<t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"claim\" PropertyType=\"String\"/>",
                "PublicStrings|name:claim|String",
            ),
            (
                "<t:ExtendedFieldURI PropertySetId=\"C11FF724-AA03-4555-9952-8FA248A11C3E\" PropertyId=\"5\" PropertyType=\"Integer\"/>",
                "c11ff724-aa03-4555-9952-8fa248a11c3e|id:5|Integer",
            ),
            (
                "<t:ExtendedFieldURI PropertyTag=\"0x1081\" PropertyType=\"Integer\"/>",
                "|tag:0x1081|Integer",
            ),
            (
                "<t:ExtendedFieldURI PropertyTag=\"4225\" PropertyType=\"Integer\"/>",
                "|tag:0x1081|Integer",
            ),
        ];
        for (xml, key) in cases {
            node_of(xml, |n| assert_eq!(extended_key(n), key, "{xml}"));
        }
    }

    #[test]
    fn dictionaries_merge_and_shrink_by_key() {
        let current =
            "<t:EmailAddresses><t:Entry Key=\"EmailAddress1\">a@x.org</t:Entry></t:EmailAddresses>";
        node_of(
            "<t:EmailAddresses><t:Entry Key=\"EmailAddress2\">b@x.org</t:Entry></t:EmailAddresses>",
            |u| {
                let merged = merge_entries(Some(current), u);
                assert_eq!(
                    merged,
                    "<t:EmailAddresses><t:Entry Key=\"EmailAddress1\">a@x.org</t:Entry>\
                     <t:Entry Key=\"EmailAddress2\">b@x.org</t:Entry></t:EmailAddresses>"
                );
                assert_eq!(
                    remove_entry(&merged, "EmailAddress1", None).as_deref(),
                    Some(
                        "<t:EmailAddresses><t:Entry Key=\"EmailAddress2\">b@x.org</t:Entry></t:EmailAddresses>"
                    )
                );
            },
        );
        assert_eq!(remove_entry(current, "EmailAddress1", None), None);
        let addr = "<t:PhysicalAddresses><t:Entry Key=\"Business\"><t:Street>1 Main</t:Street>\
                    <t:City>Oslo</t:City></t:Entry></t:PhysicalAddresses>";
        node_of(
            "<t:PhysicalAddresses><t:Entry Key=\"Business\"><t:City>Bergen</t:City></t:Entry></t:PhysicalAddresses>",
            |u| {
                assert_eq!(
                    merge_entries(Some(addr), u),
                    "<t:PhysicalAddresses><t:Entry Key=\"Business\"><t:Street>1 Main</t:Street>\
                     <t:City>Bergen</t:City></t:Entry></t:PhysicalAddresses>"
                );
            },
        );
        assert_eq!(
            remove_entry(addr, "Business", Some("City")).as_deref(),
            Some(
                "<t:PhysicalAddresses><t:Entry Key=\"Business\"><t:Street>1 Main</t:Street></t:Entry></t:PhysicalAddresses>"
            )
        );
    }
}
